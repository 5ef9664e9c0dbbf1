"""Events carry reasons and never secrets; a failover run proves it end to end."""

from __future__ import annotations

import ast
from collections.abc import Mapping
from enum import IntEnum, StrEnum
from pathlib import Path
from typing import Any

import pytest
import structlog
from pydantic import SecretStr
from structlog.testing import capture_logs

from payfallback import EVENT_NAMES, Instrument, ManualClock, PayfallbackError, redact_processor
from payfallback.adapter import Secrets
from payfallback.events import (
    CATALOGUE,
    REDACTED,
    REGENERATE,
    SHORTEST_SHAPE,
    Events,
    Level,
    Only,
    catalogue_markdown,
    redact,
    scrub,
)
from payfallback.testing import FakeBank, FakeProvider, Fault
from tests.conftest import MakeRouter
from tests.helpers import order

CARD = "4111 1111 1111 1111"
BILLING_KEY = "bk-ok-7f3a9c2e51d04b6aa1c0"
SECRET = "test_sk_zXLkKEypNArWmo50nX3lmeaxYG5R"


def test_scrub_masks_card_numbers_and_key_shaped_tokens() -> None:
    text = scrub(f"card {CARD} and 4111111111111111 key {SECRET} auth Basic dGVzdF9za19abc123==")
    assert "4111 1111" not in text
    assert "4111111111111111" not in text
    assert "****1111" in text
    assert SECRET not in text
    assert "dGVzdF9za19abc123" not in text
    # A long number that is not a card (fails Luhn) stays: order numbers are not secrets.
    assert scrub("order 1234567890123456") == "order 1234567890123456"


def test_redact_by_key_and_by_type() -> None:
    clean = redact(
        {
            "billing_key": "bk-1",
            "secret_key": "x",
            "Authorization": "Basic abc",
            "token": SecretStr("t"),
            "nested": {"cid_secret": "s", "provider": "toss"},
            "provider": "toss",
            "attempt_id": "O_1",
        }
    )
    assert clean["billing_key"] == clean["secret_key"] == clean["Authorization"] == "[redacted]"
    assert clean["token"] == "[redacted]"
    assert clean["nested"] == {"cid_secret": "[redacted]", "provider": "toss"}
    assert clean["provider"] == "toss"
    assert clean["attempt_id"] == "O_1"


def test_redact_judges_every_kind_of_value_by_its_field_first() -> None:
    """Numbers, flags and None are shown as they are, except under a field named like a
    secret; a ``str`` subclass (a ``StrEnum``) is scrubbed as any text is."""

    class Kind(StrEnum):
        PAN = "4111 1111 1111 1111"

    class Code(IntEnum):
        DECLINED = 51

    clean = redact(
        {
            "amount": 39_000,
            "rate": 0.5,
            "final": True,
            "code": None,
            "kind": Code.DECLINED,
            "api_key": 1234,
            "cvc": None,
            "card_number": 4111111111111111,
            "note": Kind.PAN,
            "items": (1, "sk_live_abcdef123", None),
        }
    )
    assert clean["amount"] == 39_000
    assert clean["rate"] == 0.5
    assert clean["final"] is True
    assert clean["code"] is None
    assert clean["kind"] == 51
    assert clean["api_key"] == clean["cvc"] == clean["card_number"] == REDACTED
    assert "4111" not in clean["note"]
    assert clean["items"] == (1, REDACTED, None)


def test_redact_processor_for_merchants_own_logs() -> None:
    out = redact_processor(None, "info", {"event": f"paid with {CARD}", "api_key": "k"})
    assert CARD not in str(out)
    assert out["api_key"] == "[redacted]"


def test_unknown_event_names_are_refused() -> None:
    with pytest.raises(ValueError, match="unknown event name"):
        Events().emit("payment.oops")


def test_a_broken_listener_never_breaks_a_payment() -> None:
    def broken(name: str, fields: Mapping[str, Any]) -> None:
        raise RuntimeError("metrics backend down")

    seen: list[str] = []
    events = Events([broken, lambda name, fields: seen.append(name)])
    with capture_logs() as logs:
        events.emit("payment.attempt", provider="toss")
    assert seen == ["payment.attempt"]
    assert any(log["event"] == "listener.failed" for log in logs)


def test_failover_run_leaks_no_secret_in_events_or_messages(
    make_router: MakeRouter, clock: ManualClock
) -> None:
    a = FakeBank("toss", clock=clock, secret=SECRET)
    b = FakeBank("nice", clock=clock, secret=SECRET)
    a.fail_next("charge", Fault.LOST_RESPONSE)
    a.fail_next("lookup", Fault.UNAVAILABLE_503, times=20)
    seen: list[Mapping[str, Any]] = []
    router = make_router(
        a,
        b,
        providers=[
            FakeProvider("toss", secret=SECRET, idempotency=False),
            FakeProvider("nice", secret=SECRET),
        ],
        listeners=[lambda name, fields: seen.append({"event": name, **fields})],
        compensate=True,
    )
    messages: list[str] = []
    instruments = [
        Instrument(provider="toss", billing_key=SecretStr(BILLING_KEY)),
        Instrument(provider="nice", billing_key=SecretStr(BILLING_KEY)),
    ]
    with capture_logs() as logs:
        payment = router.charge(order(customer_ref=f"card {CARD}"), instruments)
        b.refuse = True
        try:
            router.charge(order("ORD-2"), instruments)
        except PayfallbackError as exc:
            messages += [str(exc), repr(exc)]
        refund = router.refund(payment.payment_id)
        messages += [repr(refund), repr(payment), repr(instruments), str(router.router.health())]
    assert {log["event"] for log in logs} >= {
        "payment.unknown",
        "payment.rerouted",
        "payment.succeeded",
    }
    assert {log["event"] for log in logs} <= EVENT_NAMES
    assert len(seen) == len(logs)
    everything = " ".join(str(x) for x in [*logs, *seen, *messages])
    for secret in (SECRET, BILLING_KEY, CARD, CARD.replace(" ", "")):
        assert secret not in everything
    # Every routing decision says why.
    for log in logs:
        if log["event"] in (
            "payment.rerouted",
            "payment.skipped",
            "payment.unknown",
            "breaker.opened",
        ):
            assert log.get("reason"), log


def test_structlog_configuration_is_not_touched() -> None:
    before = structlog.get_config()["processors"]
    Events().emit("payment.attempt", provider="toss")
    assert structlog.get_config()["processors"] == before


def test_events_are_quiet_until_logging_is_configured(
    capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    Events().emit("payment.attempt", order_id="POS-20261204-214626-001", provider="toss")
    out = capsys.readouterr()
    assert (out.out, out.err) == ("", "")
    # The application turns them on through the standard logging module.
    with caplog.at_level("INFO", logger="payfallback"):
        Events().emit("payment.unknown", order_id="POS-20261204-214626-001", provider="toss")
    [record] = [r for r in caplog.records if r.name == "payfallback"]
    assert record.levelname == "WARNING"
    assert "payment.unknown" in record.getMessage()
    # An order id of date and time digits is an id, not a card number to mask.
    assert "POS-20261204-214626-001" in record.getMessage()


def test_the_level_is_checked_before_anything_else_and_one_logger_serves_many_events(
    caplog: pytest.LogCaptureFixture,
) -> None:
    events = Events()
    with caplog.at_level("WARNING", logger="payfallback"):
        events.emit("payment.attempt", provider="toss")  # info: below the level
        events.emit("payment.unknown", provider="toss")  # warning: written
    written = [r.getMessage() for r in caplog.records if r.name == "payfallback"]
    assert len(written) == 1
    assert "payment.unknown" in written[0]
    # Wrapped once, reused while structlog's configuration stays the same.
    with caplog.at_level("INFO", logger="payfallback"):
        events.emit("payment.attempt", provider="toss")
        first = events._logger()
        events.emit("payment.attempt", provider="nice")
        assert events._logger() is first


def test_a_new_structlog_configuration_takes_effect_at_the_next_event() -> None:
    events = Events()
    with capture_logs() as first:
        events.emit("payment.attempt", provider="toss")
    with capture_logs() as second:
        events.emit("payment.attempt", provider="nice")
    assert [e["provider"] for e in first] == ["toss"]
    assert [e["provider"] for e in second] == ["nice"]


def test_listeners_hear_events_that_logging_does_not_write() -> None:
    heard: list[tuple[str, dict[str, object]]] = []
    Events([lambda name, fields: heard.append((name, dict(fields)))]).emit(
        "payment.failed", provider="toss", reason="card 4111 1111 1111 1111 refused"
    )
    [(name, fields)] = heard
    assert name == "payment.failed"
    assert fields["provider"] == "toss"
    # Redacted for listeners even though no log line was written.
    assert "4111 1111 1111 1111" not in str(fields["reason"])
    assert "1111" in str(fields["reason"])


def test_secret_values_given_by_the_router_are_masked_in_every_field() -> None:
    events = Events()
    events.scrub_with(lambda text: text.replace(BILLING_KEY, "[redacted]"))
    seen: list[Mapping[str, Any]] = []
    events.add_listener(lambda name, fields: seen.append(fields))
    events.emit("payment.unknown", reason=f"echoed {BILLING_KEY}", order_id=BILLING_KEY)
    assert BILLING_KEY not in repr(seen)


def test_a_value_masked_first_leaves_no_card_number_standing_after_it() -> None:
    # The mask, then the shapes: the card number after the key is no longer glued to it.
    events = Events()
    events.scrub_with(Secrets(BILLING_KEY).mask)
    seen: list[Mapping[str, Any]] = []
    events.add_listener(lambda name, fields: seen.append(fields))
    glued = f"{BILLING_KEY}4111 1111 1111 1111"
    events.emit("payment.unknown", reason=glued)
    events.emit("storage.degraded", store="redis", error=ValueError(f"echo {glued}"))
    for value in (seen[0]["reason"], seen[1]["error"]):
        assert BILLING_KEY not in value
        assert "1111 1111 1111" not in value, value
        assert "[card ****1111]" in value


def test_with_the_routers_mask_an_order_id_of_digits_is_still_readable(
    make_router: MakeRouter,
) -> None:
    # A POS numbers its orders by date and time: that is no card number, in events too.
    seen: list[tuple[str, dict[str, Any]]] = []
    bank = FakeBank("toss", secret=SECRET)
    router = make_router(
        bank,
        providers=[FakeProvider("toss", secret=SECRET)],
        listeners=[lambda name, fields: seen.append((name, dict(fields)))],
    )
    pos_id = "20221015153102123"
    router.charge(order(pos_id), [Instrument(provider="toss", billing_key=SecretStr(BILLING_KEY))])
    ids = {fields["order_id"] for name, fields in seen if "order_id" in fields}
    assert ids == {pos_id}
    # A declared value is masked there all the same.
    events = Events()
    events.scrub_with(Secrets(SECRET).mask)
    got: list[Mapping[str, Any]] = []
    events.add_listener(lambda name, fields: got.append(fields))
    events.emit("payment.unknown", order_id=f"x-{SECRET}")
    assert got == [{"order_id": "x-[redacted]"}]


# -- the catalogue ---------------------------------------------------------------------------

ROOT = Path(__file__).resolve().parent.parent


def test_docs_events_md_is_generated_from_the_catalogue() -> None:
    written = (ROOT / "docs" / "events.md").read_text(encoding="utf-8")
    assert written == catalogue_markdown(), (
        f"docs/events.md differs from payfallback/events.py; regenerate it: {REGENERATE}"
    )


def test_every_event_has_a_level_a_meaning_and_described_fields() -> None:
    assert set(CATALOGUE) == EVENT_NAMES
    for name, spec in CATALOGUE.items():
        assert spec.name == name
        assert spec.level in set(Level)
        assert spec.meaning.endswith((".", ")"))
        assert spec.fields, name
        assert all(meaning.strip() for meaning in spec.fields.values()), name
    # The warnings an operator is paged for are warnings.
    warnings = {n for n, s in CATALOGUE.items() if s.level is Level.WARNING}
    assert {"payment.unknown", "refund.owed", "breaker.opened", "storage.degraded"} <= warnings
    assert CATALOGUE["listener.failed"].level is Level.ERROR


def test_a_field_outside_the_catalogue_is_refused() -> None:
    heard: list[str] = []
    events = Events([lambda name, fields: heard.append(name)])
    with pytest.raises(ValueError, match="no field amount_won"):
        events.emit("payment.attempt", provider="toss", amount_won=1)
    assert heard == []


def _emit_calls() -> list[tuple[str, int, str, list[str | None]]]:
    """(file, line, event, keyword names) of every emit("literal", ...) in payfallback/."""
    found = []
    for path in sorted((ROOT / "payfallback").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr == "emit"
                and node.args
                and isinstance(node.args[0], ast.Constant)
                and isinstance(node.args[0].value, str)
            ):
                keywords = [k.arg for k in node.keywords]
                found.append((path.name, node.lineno, node.args[0].value, keywords))
    return found


def test_every_emit_in_the_code_uses_catalogued_names_and_fields() -> None:
    calls = _emit_calls()
    assert len(calls) >= 20
    for where, line, name, keywords in calls:
        assert name in CATALOGUE, f"{where}:{line}"
        assert None not in keywords, f"{where}:{line}: list the fields, no **fields"
        assert set(keywords) <= CATALOGUE[name].allowed, f"{where}:{line}: {name} {keywords}"


def test_every_catalogued_event_is_emitted_somewhere_unless_reserved() -> None:
    # Where events come from: the core's emit() calls, and the breakers' and state stores'
    # transitions, which the Router passes to emit(). (Listeners such as payfallback.metrics
    # name events too, but only to read them.)
    emitted = {name for _, _, name, _ in _emit_calls()}
    producers = " ".join(
        path.read_text(encoding="utf-8")
        for path in sorted((ROOT / "payfallback" / "breaker").rglob("*.py"))
    )
    emitted |= {name for name in CATALOGUE if f'"{name}"' in producers}
    emitted.add("listener.failed")  # logged by Events.emit itself when a listener raises
    for name, spec in CATALOGUE.items():
        assert (name in emitted) != spec.reserved, name


def test_a_listener_for_some_events_hears_only_those_and_costs_nothing_for_the_rest() -> None:
    heard: list[str] = []
    everything: list[str] = []
    events = Events(
        [
            Only({"breaker.opened"}, lambda name, _: heard.append(name)),
            lambda name, _: everything.append(name),
        ]
    )
    events.emit("breaker.opened", provider="toss", method="card")
    events.emit("payment.attempt", provider="toss")
    assert heard == ["breaker.opened"]
    assert everything == ["breaker.opened", "payment.attempt"]
    assert "breaker.opened" in repr(Only({"breaker.opened"}, print))
    with pytest.raises(ValueError, match="unknown event name"):
        Only({"breaker.openned"}, print)


def test_no_shape_fits_in_a_text_shorter_than_shortest_shape() -> None:
    """``scrub`` skips texts shorter than SHORTEST_SHAPE: true only while no pattern can
    match anything shorter (re's own parser gives each pattern's narrowest match)."""
    from re import _parser  # type: ignore[attr-defined]  # noqa: PLC0415

    from payfallback import events  # noqa: PLC0415

    widths = [
        _parser.parse(p.pattern).getwidth()[0] for p in (events._PAN, events._KEYLIKE, events._AUTH)
    ]
    assert min(widths) == SHORTEST_SHAPE
    assert scrub("sk_abcdef") == REDACTED  # exactly the shortest: still masked
    assert scrub("sk_abcde") == "sk_abcde"


def test_a_secret_is_masked_in_any_text_long_enough_to_hold_it() -> None:
    secrets = Secrets("pw-1234", SecretStr("billing-key-00000000-aaaa"))
    assert secrets.mask("pw-123") == "pw-123"
    assert secrets.mask("pw-1234") == REDACTED
    assert secrets.mask("x pw-1234 y") == f"x {REDACTED} y"
    assert not secrets.contains("pw-12")
    assert secrets.contains("--pw-1234--")
    assert Secrets().mask("anything at all") == "anything at all"
