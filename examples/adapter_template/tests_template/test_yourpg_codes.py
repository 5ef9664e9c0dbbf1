"""The code table against the codes YourPG documents, kept as data in documented_codes.json.

A documented code the table lacks fails here, and so does a table row nobody documented
(a misspelt code would otherwise sit there unused while the real one goes unmapped).
"""

from __future__ import annotations

import json
from pathlib import Path

from payfallback_yourpg import CODE_TABLE

DOCUMENTED = Path(__file__).with_name("documented_codes.json")


def documented_codes() -> set[str]:
    data = json.loads(DOCUMENTED.read_text(encoding="utf-8"))
    return {str(code) for code in data["codes"]}


def test_the_documented_codes_are_recorded() -> None:
    assert documented_codes(), (
        "copy the provider's documented result codes into documented_codes.json, with the "
        "page they come from"
    )


def test_every_documented_code_is_in_the_table() -> None:
    missing = sorted(documented_codes() - set(CODE_TABLE))
    assert not missing, f"CODE_TABLE has no rule for: {', '.join(missing)}"


def test_every_table_row_is_documented() -> None:
    extra = sorted(set(CODE_TABLE) - documented_codes())
    assert not extra, f"CODE_TABLE has rows no page documents: {', '.join(extra)}"
