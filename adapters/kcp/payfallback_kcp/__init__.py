"""NHN KCP for payfallback."""

from payfallback_kcp._ops import Kcp

__all__ = ["Kcp"]
