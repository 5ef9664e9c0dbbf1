"""No secret comes back out of the adapter.

The adapter declares its credentials and the auth header values built from them in
``secrets`` (the Router scrubs those everywhere); every error is made by the kit, which
scrubs them from provider text. Extend this as operations are written: for each
operation, an answer that echoes every secret into every string field — on the success
shape and on each error shape — must leave none in ``str(error)``, ``repr(error)``,
``error.message``, ``error.provider_code`` or the fields of a success outcome. Add the
request's own secrets (the billing key of a charge, a one-time token of an approve) to
what must not come back from that request's parse. :mod:`payfallback.testing.secrets`
has the pieces: ``echo_text`` (every secret in the forms a server echoes it in),
``echoed`` (a real answer with every string field replaced) and ``assert_no_secret``
(everything a caller, a log line or the journal could read off the outcome).
"""

from __future__ import annotations

import httpx
import pytest
from payfallback_yourpg import YourPg
from pydantic import SecretStr

from payfallback.provider import Operation
from payfallback.testing.secrets import assert_no_secret, echo_text, echoed

SECRET = "sk_test_yourpg_0123456789abcdef"


@pytest.fixture
def provider() -> YourPg:
    return YourPg(secret_key=SecretStr(SECRET))


def test_credentials_and_auth_header_values_are_declared(provider: YourPg) -> None:
    assert provider.kit.secrets is provider.secrets
    assert provider.secrets.contains(SECRET)
    assert provider.secrets.contains(f"Bearer {SECRET}")
    assert_no_secret((repr(provider), str(vars(provider)), repr(provider.secrets)), (SECRET,))


@pytest.mark.parametrize("status", [400, 401, 404, 409, 429, 500, 503])
@pytest.mark.parametrize("operation", [Operation.CHARGE, Operation.LOOKUP, Operation.CANCEL])
def test_an_error_answer_echoing_the_secret_keeps_it_out(
    provider: YourPg, status: int, operation: Operation
) -> None:
    echo = echo_text(SECRET, f"Bearer {SECRET}")
    answer = httpx.Response(
        status,
        json=echoed({"code": "", "message": ""}, echo),
        headers={"x-yourpg-request-id": SECRET},
    )
    error = provider._error_from(answer, operation, "ORD-1_1")
    assert_no_secret(error, (SECRET,), declared=provider.secrets)
