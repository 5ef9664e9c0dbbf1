"""Constants and loaders shared by the Kakao Pay adapter tests.

Named uniquely (not ``support.py``) so it cannot clash with another adapter's helpers
when several adapters' tests run in one session; ``conftest.py`` puts this directory on
``sys.path`` because the project runs pytest with ``--import-mode=importlib``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

HERE = Path(__file__).parent
PAYLOADS = HERE / "payloads"

SECRET = "DEV7c0ffee5ecretKEY"
ADMIN_KEY = "ADMINd00dfeedKEY"
CID_SECRET = "abcdef0123456789abcdef01"
SID = "S3333333333333333333"
TID = "T1234567890123456789"
ATTEMPT = "ORDER123_1"


def load(name: str) -> dict[str, Any]:
    """A payload file (``payloads/<name>.json``), fresh on every call."""
    data = json.loads((PAYLOADS / f"{name}.json").read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


def documented(kind: str) -> dict[str, str]:
    """Documented codes of one kind (``error_codes``, ``method_result_codes``,
    ``statuses``) from ``documented_codes.json``, in the order the source lists them."""
    data = json.loads((HERE / "documented_codes.json").read_text(encoding="utf-8"))
    codes = data[kind]["codes"]
    assert isinstance(codes, dict)
    return {str(k): str(v) for k, v in codes.items()}
