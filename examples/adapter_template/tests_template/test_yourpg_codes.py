"""The code table against the codes YourPG documents, kept as data in documented_codes.json.

A documented code the table lacks fails here, and so does a table row nobody documented
(a misspelt code would otherwise sit there unused while the real one goes unmapped). Every
row is an adapter-kit ``CodeRule`` that says what the code means and where that was read.
"""

from __future__ import annotations

import json
from pathlib import Path

from payfallback_yourpg import CODE_TABLE

from payfallback.adapter import CodeRule

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


def test_every_row_says_what_the_code_means_and_where_that_was_read() -> None:
    for code, rule in CODE_TABLE.items():
        assert isinstance(rule, CodeRule)
        assert rule.meaning, f"{code}: say what the code means"
        assert rule.source, f"{code}: cite the page the meaning was read on"
