"""No secret comes back out: Kakao Pay answers that echo every secret we sent, in every
string field, on every operation, on the success shape and on each error shape.

The secrets: the secret key, the legacy admin key, the cid secret, the ``Authorization``
values built from them (the adapter's own :attr:`KakaoPay.secrets`), and the request
secrets the adapter has in hand while it parses — the ``sid`` of a subscription charge
and the one-time ``pg_token`` of an approve. The ``tid`` is not a secret.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from urllib.parse import quote

import httpx
import pytest
from kakaopay_support import ADMIN_KEY, CID_SECRET, SECRET, SID, load
from payfallback_kakaopay import KakaoPay

from payfallback.errors import InvalidRequest, ProviderUnavailable
from payfallback.provider import (
    Approved,
    ApproveRequest,
    Cancelled,
    CancelRequest,
    ChargeRequest,
    Failed,
    LookupRequest,
    Outcome,
    ReadyRequest,
    Redirect,
    Status,
)
from payfallback.testing.secrets import assert_no_secret, echo_text, echoed

PG_TOKEN = "pgtok7b1e2c3d4f5a6b7c8d9"
OPERATIONS = ("ready", "approve", "charge", "lookup", "cancel")

#: The answer each operation succeeds with, and the fields that must stay as Kakao sent
#: them for the success path to be reached (everything else is echoed).
SUCCESS: dict[str, tuple[str, type[object], frozenset[str]]] = {
    # The redirect URLs and app schemes are handed to the customer as they are, so they
    # are kept here; a secret inside one is refused (see below).
    "ready": (
        "ready",
        Redirect,
        frozenset(
            {
                "tid",
                "next_redirect_pc_url",
                "next_redirect_mobile_url",
                "next_redirect_app_url",
                "android_app_scheme",
                "ios_app_scheme",
            }
        ),
    ),
    "approve": ("approve", Approved, frozenset({"tid"})),
    "charge": ("subscription", Approved, frozenset({"tid"})),
    "lookup": ("order_success", Status, frozenset({"status"})),
    "cancel": ("cancel_partial", Cancelled, frozenset({"tid"})),
}

#: Error bodies of both generations, and statuses Kakao answers them with.
ERRORS = (
    ("error_user_locked", 400),
    ("legacy_error_user_locked", 400),
    ("error_lack_balance", 400),
    ("error_unauthorized", 401),
)
CODE_FIELDS = frozenset({"error_code", "code", "method_result_code"})


@dataclasses.dataclass
class Case:
    provider: KakaoPay
    request: httpx.Request
    parse: Callable[[httpx.Response], Outcome]
    #: Values that must not appear anywhere in what the parse hands back.
    forbidden: tuple[str, ...]


def _providers() -> dict[str, KakaoPay]:
    return {
        "current": KakaoPay(secret_key=SECRET, cid_secret=CID_SECRET),
        "legacy": KakaoPay(legacy=True, admin_key=ADMIN_KEY, cid_secret=CID_SECRET),
    }


@pytest.fixture(params=["current", "legacy"])
def provider(request: pytest.FixtureRequest) -> KakaoPay:
    made = _providers()[request.param]
    assert isinstance(made, KakaoPay)
    return made


@pytest.fixture
def pg_approve_req(approve_req: ApproveRequest) -> ApproveRequest:
    return dataclasses.replace(approve_req, callback_params={"pg_token": PG_TOKEN})


@pytest.fixture
def cases(
    provider: KakaoPay,
    ready_req: ReadyRequest,
    pg_approve_req: ApproveRequest,
    charge_req: ChargeRequest,
    lookup_req: LookupRequest,
    cancel_req: CancelRequest,
) -> dict[str, Case]:
    # What this provider was configured with, and the Authorization value it sends.
    key = ADMIN_KEY if provider.legacy else SECRET
    own = (key, CID_SECRET, provider.build_ready(ready_req).headers["authorization"])
    p = provider
    return {
        "ready": Case(p, p.build_ready(ready_req), lambda r: p.parse_ready(ready_req, r), own),
        "approve": Case(
            p,
            p.build_approve(pg_approve_req),
            lambda r: p.parse_approve(pg_approve_req, r),
            (*own, PG_TOKEN),
        ),
        "charge": Case(
            p, p.build_charge(charge_req), lambda r: p.parse_charge(charge_req, r), (*own, SID)
        ),
        "lookup": Case(p, p.build_lookup(lookup_req), lambda r: p.parse_lookup(lookup_req, r), own),
        "cancel": Case(p, p.build_cancel(cancel_req), lambda r: p.parse_cancel(cancel_req, r), own),
    }


def _echo(case: Case) -> str:
    """Every secret we know of, and the request itself, in the forms a server may echo."""
    return echo_text(SECRET, ADMIN_KEY, CID_SECRET, SID, PG_TOKEN, case.request)


def _assert_clean(outcome: Outcome, case: Case) -> None:
    assert_no_secret(outcome, case.forbidden, declared=case.provider.secrets)


# -- the adapter declares its secrets -----------------------------------------------------------


def test_own_secrets_and_auth_header_values_are_declared(cases: dict[str, Case]) -> None:
    for case in cases.values():
        secrets = case.provider.secrets
        assert case.provider.kit.secrets is secrets
        assert secrets.contains(case.request.headers["authorization"])
        assert secrets.contains(CID_SECRET)
        assert "SECRET" not in repr(secrets)
        # The tid is not a secret: it must stay readable in errors and ids.
        assert not secrets.contains("T1234567890123456789")


def test_the_declared_secrets_are_the_configured_ones() -> None:
    providers = _providers()
    assert providers["current"].secrets.contains(SECRET)
    assert providers["current"].secrets.contains(f"SECRET_KEY {SECRET}")
    assert providers["legacy"].secrets.contains(ADMIN_KEY)
    assert providers["legacy"].secrets.contains(f"KakaoAK {ADMIN_KEY}")
    for provider in providers.values():
        assert_no_secret((repr(provider), str(vars(provider))), (SECRET, ADMIN_KEY, CID_SECRET))


# -- success shapes -----------------------------------------------------------------------------


@pytest.mark.parametrize("op", OPERATIONS)
def test_a_success_answer_echoing_secrets_keeps_them_out_of_the_outcome(
    cases: dict[str, Case], op: str
) -> None:
    case = cases[op]
    name, success, keep = SUCCESS[op]
    body = echoed(load(name), _echo(case), keep)
    outcome = case.parse(httpx.Response(200, json=body))
    assert isinstance(outcome, success), outcome
    _assert_clean(outcome, case)


@pytest.mark.parametrize("op", OPERATIONS)
def test_a_success_answer_with_secrets_in_every_field_is_never_taken_as_it_is(
    cases: dict[str, Case], op: str
) -> None:
    # tid, status and redirect URLs echoed too. Where the outcome would carry them
    # (a redirect, a new tid, a status), the answer cannot be used as it stands; a cancel
    # outcome carries only our own tid and Kakao's amounts.
    case = cases[op]
    name, _, _ = SUCCESS[op]
    body = echoed(load(name), _echo(case), frozenset())
    outcome = case.parse(httpx.Response(200, json=body))
    if op == "cancel":
        assert isinstance(outcome, Cancelled)
    else:
        assert isinstance(outcome, Failed)
    _assert_clean(outcome, case)


@pytest.mark.parametrize(
    "field", ["next_redirect_pc_url", "next_redirect_app_url", "android_app_scheme"]
)
def test_a_ready_answer_with_a_secret_in_a_redirect_url_is_refused(
    cases: dict[str, Case], field: str
) -> None:
    case = cases["ready"]
    key = ADMIN_KEY if case.provider.legacy else SECRET
    body = load("ready")
    body[field] += "&k=" + quote(key)
    outcome = case.parse(httpx.Response(200, json=body))
    # ready moves no money: unavailable, and the customer is never sent there.
    assert isinstance(outcome, Failed)
    assert isinstance(outcome.error, ProviderUnavailable)
    _assert_clean(outcome, case)


# -- error shapes -------------------------------------------------------------------------------


@pytest.mark.parametrize("op", OPERATIONS)
@pytest.mark.parametrize(("name", "status"), ERRORS)
@pytest.mark.parametrize("codes", ["kept", "echoed"])
def test_an_error_answer_echoing_secrets_keeps_them_out_of_the_error(
    cases: dict[str, Case], op: str, name: str, status: int, codes: str
) -> None:
    case = cases[op]
    keep = CODE_FIELDS if codes == "kept" else frozenset()
    body = echoed(load(name), _echo(case), keep)
    outcome = case.parse(httpx.Response(status, json=body))
    assert isinstance(outcome, Failed)
    _assert_clean(outcome, case)


@pytest.mark.parametrize("op", OPERATIONS)
@pytest.mark.parametrize("status", [400, 401, 404, 429, 500, 503])
def test_a_non_json_error_page_echoing_secrets_keeps_them_out(
    cases: dict[str, Case], op: str, status: int
) -> None:
    case = cases[op]
    outcome = case.parse(httpx.Response(status, text=f"<html>{_echo(case)}</html>"))
    assert isinstance(outcome, Failed)
    _assert_clean(outcome, case)


@pytest.mark.parametrize("op", OPERATIONS)
def test_an_undocumented_code_made_of_a_secret_is_masked(cases: dict[str, Case], op: str) -> None:
    # The code itself travels into provider_code; it passes through the kit's cleaner.
    case = cases[op]
    for secret in case.forbidden:
        body = {
            "error_code": secret,
            "error_message": secret,
            "extras": {"method_result_code": secret},
        }
        outcome = case.parse(httpx.Response(400, json=body))
        assert isinstance(outcome, Failed)
        _assert_clean(outcome, case)


def test_an_unknown_order_status_made_of_a_secret_is_masked(cases: dict[str, Case]) -> None:
    case = cases["lookup"]
    for secret in case.forbidden:
        body = load("order_success")
        body["status"] = secret
        outcome = case.parse(httpx.Response(200, json=body))
        assert isinstance(outcome, Failed)
        _assert_clean(outcome, case)


# -- requests refused before sending ------------------------------------------------------------


def test_refusals_before_sending_never_quote_request_secrets(
    provider: KakaoPay, charge_req: ChargeRequest, pg_approve_req: ApproveRequest
) -> None:
    # Kakao would refuse a partner_user_id over 100 characters; the refusal names the
    # field, never a value.
    long_user = charge_req.instrument.model_copy(update={"customer_key": "m" * 101})
    refusals: list[Callable[[], object]] = [
        lambda: provider.build_charge(dataclasses.replace(charge_req, instrument=long_user)),
        lambda: provider.build_approve(dataclasses.replace(pg_approve_req, provider_txn_id=None)),
        lambda: provider.build_approve(
            dataclasses.replace(pg_approve_req, callback_params={"pg_token": "x" * 101})
        ),
    ]
    for refuse in refusals:
        with pytest.raises(InvalidRequest) as caught:
            refuse()
        assert_no_secret(caught.value, (SID, PG_TOKEN, "x" * 101, SECRET, ADMIN_KEY, CID_SECRET))
