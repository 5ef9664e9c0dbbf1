"""What a kept provider answer (``Secrets.scrub_answer``) and an event (``Events`` with the
Router's mask) show, on values built to trip the rules: declared values and their escaped
forms, card numbers, key shapes and auth values at string edges, glued to each other, next
to quotes, backslashes and control characters, at any depth.
"""

from __future__ import annotations

from enum import StrEnum
from types import MappingProxyType
from typing import Any

from hypothesis import example, given, settings
from hypothesis import strategies as st
from pydantic import SecretStr

from payfallback.adapter import Secrets
from payfallback.events import (
    _ANY_SHAPE,
    REDACTED,
    SHORTEST_SHAPE,
    Events,
    is_sensitive_key,
    scrub,
    shaped,
)

SECRET = "test_sk_zXLkKEypNArWmo50nX3l"
BILLING_KEY = "bk-0001-secret-abc"  # a request's own secret: no key shape, masked by value
DECLARED = Secrets(SECRET)
ALSO = Secrets(BILLING_KEY)
PIN = "pw-12"  # shorter than any shape: masked by value alone

FRAGMENTS = [
    SECRET,
    SECRET[:12],
    BILLING_KEY,
    BILLING_KEY[:-1],
    "4111 1111 1111 1111",
    "5365-10**-****-7543",
    "4111111111111111",
    "sk_live_abcdef",
    "Bearer abcdef123456",
    "billing-key-0199aa-bbcc",
    "paid",
    "KRW",
    "15000",
    "2022-10-15T15:31:02+09:00",
    '"',
    "\\",
    "\n",
    "\t",
    " ",
    "-",
    "_",
    "카카오",
    "x",
    "7",
    PIN,
]
KEYS = [
    "status",
    "tid",
    "number",
    "card",
    "receipt_url",
    "message",
    "billingKey",
    "secret",
    "customerName",
    "buyer_tel",
    "phone",
    "note",
]

texts = st.lists(st.sampled_from(FRAGMENTS), max_size=6).map("".join)
leaves = st.one_of(
    texts,
    st.integers(min_value=-(10**20), max_value=10**20),
    st.booleans(),
    st.none(),
    st.floats(allow_nan=False),
)
values = st.recursive(
    leaves,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.tuples(inner, inner),
        st.dictionaries(st.sampled_from(KEYS), inner, max_size=4),
    ),
    max_leaves=12,
)
answers = st.dictionaries(st.sampled_from(KEYS), values, max_size=6)


def strings_in(value: Any, key: str = "") -> list[tuple[str, str]]:
    """Every string of ``value`` with the name of the field it stands in."""
    if isinstance(value, str):
        return [(key, value)]
    if isinstance(value, dict):
        return [pair for k, v in value.items() for pair in strings_in(v, k)]
    if isinstance(value, list | tuple):
        return [pair for v in value for pair in strings_in(v, key)]
    return []


GLUED = f"{BILLING_KEY}4111 1111 1111 1111"  # masking the key ends the number's run


@settings(max_examples=400, deadline=None)
@given(answer=answers, with_also=st.booleans())
@example(answer={"message": GLUED}, with_also=True)
def test_no_secret_card_number_or_key_shape_is_kept_anywhere(
    answer: dict[str, Any], with_also: bool
) -> None:
    also = ALSO if with_also else None
    kept = DECLARED.scrub_answer(answer, also)
    assert set(kept) == set(answer)
    for key, text in strings_in(kept):
        assert not DECLARED.contains(text), (key, text)
        assert not (with_also and ALSO.contains(text)), (key, text)
        assert scrub(text) == text, (key, text)  # no shape left to mask
        if is_sensitive_key(key):
            assert text == REDACTED
    # What holds nothing to mask is kept as it was (tuples as lists, as JSON has them).
    for key, value in answer.items():
        if isinstance(value, str) and scrub(value) == value and not is_sensitive_key(key):
            masked = DECLARED.mask(value)
            if also is not None:
                masked = also.mask(masked)
            if masked == value and key not in ("customerName", "buyer_tel", "phone"):
                assert kept[key] == value


PLAIN = {
    "tid": "txn_0123456789abcdef",
    "order_ref": "sn-1a2b3c4d-17_1",
    "status": "paid",
    "amount": 15000,
    "approved_at": "2022-10-15T15:31:02+09:00",
    "card": {"number": "5365-10**-****-7543", "installment": 0},
    "receipt_url": "https://toss.fake.test/receipts/txn_0123456789abcdef",
}


def test_an_answer_with_nothing_to_mask_is_kept_whole() -> None:
    assert DECLARED.scrub_answer(PLAIN, ALSO) == PLAIN


def test_a_field_named_like_a_secret_or_the_buyer_is_hidden_whole() -> None:
    answer = {**PLAIN, "billingKey": "opaque", "customerName": "Kim", "phone": None}
    kept = DECLARED.scrub_answer(answer)
    assert kept["billingKey"] == REDACTED
    assert kept["customerName"] == REDACTED
    assert kept["phone"] is None  # nothing to hide
    assert kept["status"] == "paid"


def test_each_kind_of_secret_is_masked_where_it_stands() -> None:
    dirty = {
        "declared value": {**PLAIN, "message": f"key {SECRET} refused"},
        "request's own secret": {**PLAIN, "echo": BILLING_KEY},
        "card number": {**PLAIN, "card": {"number": "4111-1111-1111-1111"}},
        "key shape": {**PLAIN, "hint": "use live_sk_abcdef123"},
        "escaped text": {**PLAIN, "message": "line one\nline two"},
        "not JSON": {**PLAIN, "key": SecretStr("x")},
        "not a dict": {**PLAIN, "card": MappingProxyType({"number": "5365"})},
    }
    kept = {why: DECLARED.scrub_answer(answer, ALSO) for why, answer in dirty.items()}
    assert kept["declared value"]["message"] == f"key {REDACTED} refused"
    assert kept["request's own secret"]["echo"] == REDACTED
    assert "1111-1111" not in kept["card number"]["card"]["number"]
    assert kept["key shape"]["hint"] == f"use {REDACTED}"
    assert kept["not JSON"]["key"] == REDACTED
    assert kept["not a dict"]["card"] == {"number": "5365"}


def test_a_secret_split_by_an_escape_in_the_text_is_still_masked() -> None:
    assert DECLARED.scrub_answer({"message": "\nlive_sk_abcdef123\t"}) == {
        "message": f"\n{REDACTED}\t"
    }
    assert DECLARED.scrub_answer({"note": f'"{SECRET}"'}) == {"note": f'"{REDACTED}"'}


def test_a_kept_answer_judges_every_kind_of_value_by_its_field_first() -> None:
    """Numbers, flags and None are kept as they are, except under a field named like a
    secret; text of a ``str`` subclass is masked as any text is."""

    class Text(StrEnum):
        CARD = "4111-1111-1111-1111"

    answer = {
        **PLAIN,
        "paid": True,
        "rate": 0.5,
        "discount": None,
        "secret_key": 1234,
        "billingKey": None,
        "label": Text.CARD,
        "parts": [1, None, f"key {SECRET}"],
    }
    kept = DECLARED.scrub_answer(answer, ALSO)
    assert kept["paid"] is True
    assert kept["rate"] == 0.5
    assert kept["discount"] is None
    assert kept["secret_key"] == kept["billingKey"] == REDACTED
    assert "1111-1111" not in kept["label"]
    assert kept["parts"] == [1, None, f"key {REDACTED}"]


def test_a_long_number_outside_any_string_is_kept_as_it_is() -> None:
    answer = {**PLAIN, "amount": 4111111111111111}
    assert DECLARED.scrub_answer(answer)["amount"] == 4111111111111111


#: Fields of ``payment.unknown``: two of the Router's own ids, shown unscrubbed by shape.
EVENT_FIELDS = st.fixed_dictionaries(
    {},
    optional={"reason": values, "code": texts, "order_id": texts, "attempt_id": texts},
)


@settings(max_examples=300, deadline=None)
@given(fields=EVENT_FIELDS, told_shortest=st.booleans())
@example(fields={"reason": [GLUED], "order_id": "20221015153102123"}, told_shortest=True)
@example(fields={"code": PIN, "order_id": PIN}, told_shortest=True)
def test_an_event_shows_no_secret_and_no_card_number_outside_the_routers_ids(
    fields: dict[str, Any], told_shortest: bool
) -> None:
    declared = DECLARED | ALSO | Secrets(PIN)
    events = Events()
    # Told the shortest declared value, events skip the search in what is shorter.
    events.scrub_with(declared.mask, shortest=declared.shortest if told_shortest else 0)
    seen: list[dict[str, Any]] = []
    events.add_listener(lambda name, shown: seen.append(dict(shown)))
    events.emit("payment.unknown", **fields)
    [shown] = seen
    assert set(shown) == set(fields)
    for key, text in strings_in(shown):
        assert not declared.contains(text), (key, text)
        if key in ("order_id", "attempt_id"):
            assert text == declared.mask(fields[key])
        else:
            assert scrub(text) == text, (key, text)


SHAPE_PIECES = [
    *FRAGMENTS,
    "4111-1111-1111-1111",
    "\uff14\uff11\uff11\uff11",  # fullwidth digits: \d takes them too
    "٤١١١",
    "0",
    "12",
    "Basic ",
    "KakaoAK ",
    "SECRET_KEY ",
    "PortOne ",
    "gsk_",
    "whsec_",
    "live_",
    "billing-key-",
    "abcdef12",
    "+/=",
    ".",
    "\x00",
]


@settings(max_examples=1500, deadline=None)
@given(text=st.lists(st.sampled_from(SHAPE_PIECES), max_size=10).map("".join))
@example(text="x" + "1 " * 12 + "1")
@example(text="Bearer " + "a" * 16)
def test_the_shape_check_answers_what_one_search_of_every_shape_answers(text: str) -> None:
    # shaped() looks for each shape only where what it cannot match without is there; it
    # must answer exactly what the one search over all three shapes answers.
    assert shaped(text) == (len(text) >= SHORTEST_SHAPE and _ANY_SHAPE.search(text) is not None)
