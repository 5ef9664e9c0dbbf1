"""The shared conformance suite, driven through the Router with YourPG's answers.

The kit tells the suite which of our operations a request is and what YourPG answers in
each scenario. Build every answer from a payload file shaped like the provider's documented
example (``payloads/*.json`` next to this file) and echo what the request carried — order
id, amount, transaction id — as the provider does. Until an answer is written the suite's
tests fail, naming it.
"""

from __future__ import annotations

import httpx
from payfallback_yourpg import YourPg
from pydantic import SecretStr

from payfallback.models import Instrument
from payfallback.provider import Flow, Operation, Provider
from payfallback.testing.conformance import ConformanceKit, conformance_tests


def _unwritten(function: str) -> NotImplementedError:
    return NotImplementedError(f"yourpg kit: {function} is not written yet")


class YourPgKit(ConformanceKit):
    """YourPG's answers for the conformance scenarios (billing-key charges).

    For a redirect checkout write a second kit with ``flow = Flow.REDIRECT`` that also
    answers ``ready_response`` (when ready is server-side), ``callback_params`` and
    ``user_cancel_response``. Where the provider has an idempotency header, answer
    ``replay_in_progress_response`` too.
    """

    flow = Flow.SERVER_CHARGE

    def make_provider(self) -> Provider:
        return YourPg(secret_key=SecretStr("sk_test_conformance"))

    def operation_of(self, request: httpx.Request) -> Operation:
        """From the method and path, e.g. ``POST /v1/billing/…`` → ``Operation.CHARGE``."""
        raise _unwritten("operation_of")

    def instrument(self) -> Instrument:
        return Instrument(provider="yourpg", billing_key=SecretStr("bk_test_conformance"))

    def paid_response(self, request: httpx.Request, *, txn_id: str, amount: int) -> httpx.Response:
        raise _unwritten("paid_response")

    def decline_response(self, request: httpx.Request) -> httpx.Response:
        raise _unwritten("decline_response")

    def server_error_response(self, request: httpx.Request) -> httpx.Response:
        raise _unwritten("server_error_response")

    def lookup_paid_response(
        self, request: httpx.Request, *, txn_id: str, amount: int
    ) -> httpx.Response:
        raise _unwritten("lookup_paid_response")

    def lookup_not_paid_response(self, request: httpx.Request, *, txn_id: str) -> httpx.Response:
        raise _unwritten("lookup_not_paid_response")

    def cancel_response(
        self, request: httpx.Request, *, txn_id: str, amount: int, remaining: int
    ) -> httpx.Response:
        raise _unwritten("cancel_response")

    def bad_credentials_response(self, request: httpx.Request) -> httpx.Response:
        raise _unwritten("bad_credentials_response")


test_conformance = conformance_tests(YourPgKit)
