"""The provider contract's central classification and discovery."""

from __future__ import annotations

import httpx
import pytest

from payfallback import ConfigurationError, OutcomeUnknown, ProviderUnavailable, load_provider
from payfallback.errors import InvalidRequest
from payfallback.provider import (
    MONEY_MOVING,
    Operation,
    classify_http_status,
    classify_transport_error,
    installed_providers,
    parse_retry_after,
)

REQUEST = httpx.Request("POST", "https://api.example.test/v1/charges")

NEVER_SENT = [httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout]
MAYBE_SENT = [httpx.ReadTimeout, httpx.WriteTimeout, httpx.RemoteProtocolError, httpx.ReadError]


def _classify(exc_type: type[httpx.TransportError], op: Operation) -> Exception:
    return classify_transport_error(
        exc_type("boom", request=REQUEST), provider="p", operation=op, attempt_id="O_1"
    )


@pytest.mark.parametrize("exc_type", NEVER_SENT)
@pytest.mark.parametrize("op", list(Operation))
def test_never_sent_errors_are_unavailable_on_every_operation(
    exc_type: type[httpx.TransportError], op: Operation
) -> None:
    assert isinstance(_classify(exc_type, op), ProviderUnavailable)


@pytest.mark.parametrize("exc_type", MAYBE_SENT)
@pytest.mark.parametrize("op", sorted(MONEY_MOVING))
def test_maybe_sent_errors_on_money_moving_calls_are_unknown(
    exc_type: type[httpx.TransportError], op: Operation
) -> None:
    error = _classify(exc_type, op)
    assert isinstance(error, OutcomeUnknown)
    assert error.may_have_acted


@pytest.mark.parametrize("exc_type", MAYBE_SENT)
def test_maybe_sent_errors_on_read_only_calls_are_unavailable(
    exc_type: type[httpx.TransportError],
) -> None:
    assert isinstance(_classify(exc_type, Operation.LOOKUP), ProviderUnavailable)
    assert isinstance(_classify(exc_type, Operation.READY), ProviderUnavailable)


def _every_transport_error() -> list[type[httpx.TransportError]]:
    found: list[type[httpx.TransportError]] = []
    todo: list[type[httpx.TransportError]] = [httpx.TransportError]
    while todo:
        cls = todo.pop()
        found.append(cls)
        todo.extend(cls.__subclasses__())
    return found


@pytest.mark.parametrize("exc_type", _every_transport_error())
def test_every_httpx_transport_error_is_classified_safely(
    exc_type: type[httpx.TransportError],
) -> None:
    # Completeness by reflection: whatever httpx adds later lands on the safe side.
    error = _classify(exc_type, Operation.CHARGE)
    if exc_type in NEVER_SENT or issubclass(exc_type, tuple(NEVER_SENT)):
        assert isinstance(error, ProviderUnavailable)
    elif exc_type is not httpx.UnsupportedProtocol:
        assert isinstance(error, OutcomeUnknown)


@pytest.mark.parametrize(
    ("status", "op", "expected"),
    [
        (503, Operation.CHARGE, ProviderUnavailable),
        (429, Operation.APPROVE, ProviderUnavailable),
        (500, Operation.CHARGE, OutcomeUnknown),
        (502, Operation.APPROVE, OutcomeUnknown),
        (500, Operation.LOOKUP, ProviderUnavailable),
        (401, Operation.CHARGE, ConfigurationError),
        (403, Operation.LOOKUP, ConfigurationError),
        (400, Operation.CHARGE, InvalidRequest),
        (302, Operation.CHARGE, OutcomeUnknown),
    ],
)
def test_http_status_fallback(status: int, op: Operation, expected: type[Exception]) -> None:
    response = httpx.Response(status, headers={"x-request-id": "req-42", "retry-after": "3"})
    error = classify_http_status(response, provider="p", operation=op, attempt_id="O_1")
    assert type(error) is expected
    assert error.provider_request_id == "req-42"
    assert str(error).startswith("Request req-42: ")
    if status in (429, 503):
        assert error.retry_after == 3.0


def test_retry_after_parsing() -> None:
    assert parse_retry_after("7") == 7.0
    assert parse_retry_after("999999") == 3600.0
    assert parse_retry_after(None) is None
    assert parse_retry_after("soon") is None
    assert parse_retry_after("Sat, 15 Oct 2022 06:30:10 GMT", now=1665815400.0) == 10.0


def test_fake_provider_is_discoverable_and_unknown_names_list_the_installed() -> None:
    assert "fake" in installed_providers()
    provider = load_provider("fake", name="kakaopay")
    assert provider.name == "kakaopay"
    with pytest.raises(
        ConfigurationError, match=r"no payment provider named 'nope'.*installed: .*fake"
    ):
        load_provider("nope")


def test_a_missing_or_misspelt_setting_names_the_provider_and_what_it_takes() -> None:
    with pytest.raises(
        ConfigurationError, match=r"provider 'fake': .*unexpected keyword.*it takes: name"
    ):
        load_provider("fake", secret_kee="x")
