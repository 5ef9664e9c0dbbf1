"""The campaign command runs schedules and prints its figures as a table or JSON."""

from __future__ import annotations

import json

import pytest

from tests.faults import campaign


def test_campaign_prints_the_figures_as_json(capsys: pytest.CaptureFixture[str]) -> None:
    status = campaign.main(["--schedules", "12", "--seed", "3", "--json"])
    doc = json.loads(capsys.readouterr().out)
    assert doc["schedules"] == 12
    assert doc["orders"] >= 12
    for figure in ("double_charges", "orphaned_charges", "lost_refunds", "secrets_leaked"):
        assert doc[figure] == 0, doc
    assert status == (0 if doc["ok"] else 1)


def test_campaign_table_and_one_schedule_alone(capsys: pytest.CaptureFixture[str]) -> None:
    campaign.main(["--schedules", "4", "--seed", "3"])
    out = capsys.readouterr().out
    for label in ("schedules run", "double charges", "orphaned charges", "secrets leaked"):
        assert label in out
    campaign.main(["--seed", "3", "--only", "2"])
    assert str(campaign.schedule_for(3, 2)) in capsys.readouterr().out


def test_a_schedule_is_the_same_every_time() -> None:
    assert campaign.schedule_for(5, 17) == campaign.schedule_for(5, 17)
    one, two = campaign.run_one(5, 17), campaign.run_one(5, 17)
    assert one.figures() == two.figures()
