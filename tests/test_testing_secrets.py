"""The echo-test toolkit adapters' secret tests are written with."""

from __future__ import annotations

import json
import subprocess
import sys
from urllib.parse import quote

import httpx
import pydantic
import pytest
from hypothesis import given
from hypothesis import strategies as st

import payfallback.testing
from payfallback.adapter import (
    AdapterKit,
    Secrets,
    Verdict,
    basic_auth,
    field_text,
    fit_bytes,
    installment_months,
    read_part,
    whole_number,
    yes_no,
)
from payfallback.errors import Declined, OutcomeUnknown, PayfallbackError
from payfallback.events import REDACTED
from payfallback.models import Money
from payfallback.provider import Approved, Failed, Operation, Redirect
from payfallback.testing.secrets import (
    assert_no_secret,
    echo_text,
    echoed,
    forms,
    header_text,
    leaks,
    outcome_texts,
)

SECRET = "sk_test_9f2c/b7+e1 a0"
BILLING_KEY = "bk_7a1e2c3d4f5a6b7c"


def _kit() -> AdapterKit:
    return AdapterKit(provider="acme", label="Acme", secrets=Secrets(SECRET, basic_auth(SECRET)))


# -- forms and echo_text ------------------------------------------------------------------------


def test_forms_are_the_value_as_sent_url_escaped_and_json_escaped() -> None:
    value = 'a/b "c" 결'
    assert forms(value) == (value, quote(value, safe=""), json.dumps(value)[1:-1])
    assert forms(value)[2] == 'a/b \\"c\\" \\uacb0'
    # A plain value is the same in every form: listed once.
    assert forms("bk_1234") == ("bk_1234",)


def test_echo_text_holds_every_value_in_every_form() -> None:
    text = echo_text(SECRET, BILLING_KEY)
    assert text.startswith("echo ")
    for value in (SECRET, BILLING_KEY):
        for form in forms(value):
            assert form in text
    assert echo_text("abcd", prefix="") == "abcd"


def test_a_request_in_echo_text_stands_for_its_headers_url_and_body() -> None:
    request = httpx.Request(
        "POST",
        f"https://api.acme.test/v1/billing/{BILLING_KEY}",
        headers={"Authorization": basic_auth(SECRET), "Idempotency-Key": "idem-1"},
        json={"customerKey": "cust 1/2", "orderName": "커피"},
    )
    text = echo_text(request)
    assert basic_auth(SECRET) in text  # the header value alone
    assert f"authorization: {basic_auth(SECRET)}" in text  # the header line
    assert "idempotency-key: idem-1" in text
    assert str(request.url) in text
    body = request.content.decode()
    assert body in text
    assert quote(body, safe="") in text
    assert json.dumps(body)[1:-1] in text


# -- echoed -------------------------------------------------------------------------------------


def test_echoed_replaces_every_string_nested_and_leaves_other_values() -> None:
    answer = {
        "tid": "T1",
        "amount": {"total": 1000, "currency": "KRW"},
        "items": [{"name": "coffee", "qty": 2}, "note"],
        "done": True,
        "extra": None,
    }
    assert echoed(answer, "E") == {
        "tid": "E",
        "amount": {"total": 1000, "currency": "E"},
        "items": [{"name": "E", "qty": 2}, "E"],
        "done": True,
        "extra": None,
    }
    assert answer["tid"] == "T1"  # a copy: the original answer is untouched


def test_echoed_keeps_the_fields_named_at_any_depth_whole() -> None:
    answer = {"tid": "T1", "card": {"status": "PAID", "issuer": "x"}, "meta": {"tid": ["a"]}}
    assert echoed(answer, "E", keep={"tid", "status"}) == {
        "tid": "T1",
        "card": {"status": "PAID", "issuer": "E"},
        "meta": {"tid": ["a"]},
    }
    assert echoed("plain", "E", keep={"plain"}) == "E"


def test_header_text_is_what_a_header_can_carry() -> None:
    text = header_text(echo_text("키 " + SECRET), limit=50)
    assert text.isascii()
    assert len(text) == 50
    assert httpx.Response(200, headers={"x-request-id": text}).headers["x-request-id"] == text


# -- outcome_texts ------------------------------------------------------------------------------


def test_outcome_texts_of_a_failure_are_what_a_caller_a_log_and_the_journal_read() -> None:
    error = Declined(
        "the card issuer refused",
        provider="acme",
        operation="charge",
        attempt_id="ORD-1_1",
        provider_code="REJECT",
        provider_request_id="req-42",
    )
    texts = outcome_texts(Failed(error))
    assert texts == outcome_texts(error)
    assert texts["str"] == str(error)
    assert texts["repr"] == repr(error)
    assert texts["message"] == "the card issuer refused"
    assert texts["provider_code"] == "REJECT"
    assert texts["provider_request_id"] == "req-42"
    assert "ORD-1_1" in texts["context"]
    assert "the card issuer refused" in texts["args"]


def test_outcome_texts_follow_the_errors_an_error_was_raised_from() -> None:
    try:
        try:
            raise ValueError(f"bad field {BILLING_KEY}")
        except ValueError as inner:
            raise KeyError("outer") from inner
    except KeyError as middle:
        error = OutcomeUnknown("answer unreadable")
        error.__cause__ = middle
    texts = outcome_texts(error)
    assert "outer" in texts["cause 1"]
    assert BILLING_KEY in texts["cause 2"]
    assert leaks(error, (BILLING_KEY,)) == ["cause 2: bk_7a1e2c3d4…"]


def test_outcome_texts_of_a_success_are_its_repr_and_each_field() -> None:
    outcome = Approved(provider_txn_id="T123", amount=Money(amount=1000, currency="KRW"))
    texts = outcome_texts(outcome)
    assert texts["repr"] == repr(outcome)
    assert texts["provider_txn_id"] == "T123"
    assert texts["amount"] == str(outcome.amount)
    assert set(texts) == {
        "repr",
        "provider_txn_id",
        "amount",
        "approved_at",
        "provider_status",
        "receipt",
        "answer",
    }


def test_an_answer_is_read_as_the_router_keeps_it_and_left_out_of_the_repr() -> None:
    answer = {"message": f"echo {SECRET}", "billingKey": BILLING_KEY, "status": "DONE"}
    outcome = Approved(provider_txn_id="T1", amount=Money(amount=1000), answer=answer)
    assert SECRET not in repr(outcome)
    texts = outcome_texts(outcome, Secrets(SECRET))
    assert SECRET not in texts["answer"]
    assert BILLING_KEY not in texts["answer"]  # a field named like a secret is hidden
    assert "DONE" in texts["answer"]
    assert_no_secret(outcome, [SECRET, BILLING_KEY], declared=Secrets(SECRET))


# -- leaks and assert_no_secret -----------------------------------------------------------------


ODD = 'sk_live_"키"/9f2c'  # a different text in each form


@pytest.mark.parametrize("form", forms(ODD))
def test_a_secret_is_found_in_each_form_a_server_echoes_it_in(form: str) -> None:
    assert len(forms(ODD)) == 3
    outcome = Redirect(provider_txn_id="T1", redirect_urls={}, client_params={"k": f"x{form}y"})
    assert f"client_params: {ODD[:12]}…" in leaks(outcome, (ODD,))
    with pytest.raises(AssertionError, match=r"secret\(s\) came back out: .*client_params"):
        assert_no_secret(outcome, (ODD,))


def test_an_escaped_form_the_scrubber_knows_is_found_too() -> None:
    # quote(..., safe="/") is not among the echo forms, but Secrets scrubs it.
    text = f"at {quote(SECRET, safe='/')}"
    assert not any(form in text for form in forms(SECRET))
    assert leaks(text, (SECRET,)) == ["text: an escaped form of a secret"]


def test_declared_secrets_are_looked_for_in_every_place() -> None:
    declared = Secrets(SECRET, basic_auth(SECRET))
    error = PayfallbackError("rejected", provider_code=basic_auth(SECRET))
    found = leaks(error, (), declared)
    assert f"provider_code: a declared secret {declared!r}" in found
    assert f"message: a declared secret {declared!r}" not in found
    assert SECRET not in "".join(found)  # the report never quotes a declared value


def test_clean_subjects_of_every_kind_pass() -> None:
    clean = "nothing to see"
    assert_no_secret(clean, (SECRET, BILLING_KEY), declared=Secrets(SECRET))
    assert_no_secret([clean, "again"], (SECRET,))
    assert_no_secret({"where": clean}, (SECRET,))
    assert_no_secret(Failed(Declined(clean)), (SECRET,))
    assert leaks(("a", f"b {BILLING_KEY}"), (BILLING_KEY,)) == ["text 2: bk_7a1e2c3d4…"]
    assert leaks({"log line": BILLING_KEY}, (BILLING_KEY,)) == ["log line: bk_7a1e2c3d4…"]


def test_errors_the_kit_makes_from_an_echoing_answer_pass_and_a_leaky_error_does_not() -> None:
    kit = _kit()
    echo = echo_text(SECRET, basic_auth(SECRET))
    answer = httpx.Response(
        400,
        json=echoed({"code": "", "message": ""}, echo),
        headers={"x-request-id": header_text(echo)},
    )
    error = kit.classify(Operation.CHARGE, "ORD-1_1", answer, code=echo, message=echo)
    assert_no_secret(error, (SECRET, basic_auth(SECRET)), declared=kit.secrets)
    made = kit.error(Verdict.DECLINED, Operation.CHARGE, "ORD-1_1", response=answer, message=echo)
    assert_no_secret(Failed(made), (SECRET,), declared=kit.secrets)
    # An adapter that quotes the answer itself, past the kit's cleaner, is caught.
    leaky = Declined(f"Acme said: {answer.text}", provider="acme")
    with pytest.raises(AssertionError, match="message"):
        assert_no_secret(leaky, (SECRET,), declared=kit.secrets)


# -- the module -----------------------------------------------------------------------------------


def test_the_toolkit_is_exported_from_payfallback_testing() -> None:
    for name in ("assert_no_secret", "echo_text", "echoed", "forms", "leaks", "outcome_texts"):
        assert getattr(payfallback.testing, name) is getattr(payfallback.testing.secrets, name)


def test_the_toolkit_imports_without_pytest() -> None:
    code = (
        "import sys; sys.modules['pytest'] = None; "
        "import payfallback.testing.secrets, payfallback.testing; print('ok')"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=False, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"


def test_a_request_the_wire_model_refuses_carries_no_refused_value_anywhere() -> None:
    # pydantic's own error quotes the refused input; the kit's error must not carry it,
    # not even as the implicit __context__ that tracebacks and error reporters walk.
    class Wire(pydantic.BaseModel):
        card_number: str = pydantic.Field(max_length=4)

    with pytest.raises(PayfallbackError) as caught:
        _kit().body(Wire, Operation.CHARGE, "ord-1_1", card_number=SECRET)
    assert "card_number" in str(caught.value)
    chain: list[BaseException] = []
    error: BaseException | None = caught.value
    while error is not None:
        chain.append(error)
        error = error.__cause__ or error.__context__
    assert chain == [caught.value]
    assert_no_secret(caught.value, [SECRET])


@pytest.mark.parametrize(
    ("value", "months"),
    [
        (0, 0),
        ("00", 0),
        ("03", 3),
        (" 12 ", 12),
        (36, 36),
        (37, None),
        ("-1", None),
        ("\uff13", None),  # a full-width digit three: not ASCII
        (True, None),
        (None, None),
        ("x", None),
    ],
)
def test_installment_months_reads_what_providers_send(value: object, months: int | None) -> None:
    assert installment_months(value) == months


def test_receipt_field_readers_leave_out_what_does_not_read() -> None:
    assert field_text("  신한 ") == "신한"
    assert field_text(41) == "41"
    assert field_text("") is None
    assert field_text(False) is None
    assert whole_number("0010") == 10
    assert whole_number(-5) is None
    assert (yes_no("y"), yes_no("N"), yes_no("maybe"), yes_no(None)) == (True, False, None, None)

    class Card(pydantic.BaseModel):  # a part of a provider's answer
        approveNo: str
        installmentPlanMonths: int = 0

    assert read_part(Card, {"approveNo": "0001"}) == Card(approveNo="0001")
    assert read_part(Card, {"approveNo": ["not", "text"]}) is None
    assert read_part(Card, "0001") is None


def test_fit_bytes_counts_as_korean_pgs_do_and_cuts_on_a_character() -> None:
    assert fit_bytes("아메리카노", 6) == "아메리"  # a Hangul syllable is 2 bytes
    assert fit_bytes("아메리카노", 7) == "아메리"  # never half a character
    assert fit_bytes("Latte 라떼", 8) == "Latte 라"
    assert fit_bytes("커피☕", 8) == "커피☕"  # outside CP949: its UTF-8 size (3 bytes)
    assert fit_bytes("커피☕", 6) == "커피"
    assert fit_bytes("", 10) == ""


@given(st.text(alphabet=st.characters(codec="utf-8"), min_size=4, max_size=24))
def test_a_secret_is_masked_in_every_form_it_can_travel_in(raw: str) -> None:
    """Plain, URL-escaped (with and without ``/``) and JSON-escaped: a value made only of
    unreserved characters has one form, and every other value is masked in all four."""
    secrets = Secrets(raw)
    value = raw.strip()
    if len(value) < 4:
        assert not secrets
        return
    json_form = value.replace("\\", "\\\\").replace('"', '\\"').replace("/", "\\/")
    for form in {value, quote(value, safe=""), quote(value, safe="/"), json_form}:
        assert secrets.mask(form) == REDACTED, form
