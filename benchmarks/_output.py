"""What every benchmark's command line does with its figures: print the table, and store
the report as JSON where ``--json PATH`` asks."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

__all__ = ["store_json"]


def store_json(report: Mapping[str, Any], path: str | None) -> int:
    """Write ``report`` to ``path`` as indented JSON (nothing when ``path`` is None); the
    command's exit status."""
    if path:
        Path(path).write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    return 0
