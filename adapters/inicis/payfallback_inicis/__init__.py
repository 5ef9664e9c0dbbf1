"""KG Inicis for payfallback: placeholder docstring, replaced below."""

from payfallback_inicis._ops import GOPAYMETHOD, KST, Inicis
from payfallback_inicis._wire import CODE_TABLE, CODES_SOURCE, INQUIRY_STATUS

__all__ = ["CODES_SOURCE", "CODE_TABLE", "GOPAYMETHOD", "INQUIRY_STATUS", "KST", "Inicis"]
