"""The conformance suite every adapter passes, written once.

An adapter's tests supply a :class:`ConformanceKit`: its provider object and, for each
scenario, the HTTP answer the real provider gives (shaped like the provider's documented
examples). The suite drives the *Router* through an :class:`httpx.MockTransport` whose
answers come from the kit in the order the Router asks, and asserts what the merchant sees:
a payment, a decline, a lookup before anything else after a lost answer, refunds, and
typed errors. Use it from an adapter's tests with::

    from payfallback.testing.conformance import ConformanceKit, conformance_tests

    class TossKit(ConformanceKit): ...

    test_conformance = conformance_tests(TossKit)

Scenarios (each a test): happy path, decline (unless the kit says the provider documents
none), user cancel (redirect flows), read timeout then lookup, 5xx on approve/charge then
lookup, full cancel, partial cancel, refund over the paid amount refused before sending,
bad credentials → ``ConfigurationError``, replayed idempotent request (where the provider
declares an idempotency header).
"""

from __future__ import annotations

import abc
from collections.abc import Callable, Mapping

import httpx

from payfallback.models import Instrument, Money
from payfallback.provider import Flow, Operation, Provider

__all__ = ["ConformanceKit", "conformance_tests"]


class ConformanceKit(abc.ABC):
    """What an adapter's tests tell the conformance suite about their provider.

    Every ``*_response`` method receives the request the Router sent (so it can echo ids
    such as ``orderId`` or ``tid`` back) and returns the provider's answer. ``amount`` is
    in minor units; ``txn_id`` is the provider transaction id to put in the answer.
    """

    #: The flow the suite drives: REDIRECT (ready → approve) or SERVER_CHARGE (charge).
    flow: Flow
    #: False where the provider documents no decline for this flow, so that the adapter
    #: reads every refusal as an unknown outcome resolved by lookup: the suite then leaves
    #: out its decline scenario, and the adapter's own tests pin that stricter behaviour.
    documented_declines: bool = True

    @abc.abstractmethod
    def make_provider(self) -> Provider:
        """A provider configured with test credentials."""

    @abc.abstractmethod
    def operation_of(self, request: httpx.Request) -> Operation:
        """Which of our operations ``request`` is (from its method and path)."""

    def instrument(self) -> Instrument:
        """The stored instrument for SERVER_CHARGE kits."""
        raise NotImplementedError("instrument: SERVER_CHARGE kits must supply one")

    def callback_params(self, txn_id: str, amount: int) -> Mapping[str, str]:
        """What the provider appends to the return URL after the customer approves."""
        return {}

    def ready_response(self, request: httpx.Request, *, txn_id: str) -> httpx.Response:
        """Answer to a successful ``ready`` (REDIRECT kits)."""
        raise NotImplementedError("ready_response: REDIRECT kits must supply one")

    @abc.abstractmethod
    def paid_response(self, request: httpx.Request, *, txn_id: str, amount: int) -> httpx.Response:
        """Answer to a successful ``approve`` (REDIRECT) or ``charge`` (SERVER_CHARGE)."""

    @abc.abstractmethod
    def decline_response(self, request: httpx.Request) -> httpx.Response:
        """The provider refusing the payment (card declined, balance short)."""

    def user_cancel_response(self, request: httpx.Request) -> httpx.Response | None:
        """Approve after the customer cancelled at the provider; None if not applicable."""
        return None

    @abc.abstractmethod
    def server_error_response(self, request: httpx.Request) -> httpx.Response:
        """A 5xx on a money-moving call (the provider may have acted)."""

    @abc.abstractmethod
    def lookup_paid_response(
        self, request: httpx.Request, *, txn_id: str, amount: int
    ) -> httpx.Response:
        """Status inquiry answer: paid in full."""

    @abc.abstractmethod
    def lookup_not_paid_response(self, request: httpx.Request, *, txn_id: str) -> httpx.Response:
        """Status inquiry answer: no money moved (not found, failed or abandoned)."""

    @abc.abstractmethod
    def cancel_response(
        self, request: httpx.Request, *, txn_id: str, amount: int, remaining: int
    ) -> httpx.Response:
        """Successful cancel of ``amount``, leaving ``remaining`` cancellable."""

    @abc.abstractmethod
    def bad_credentials_response(self, request: httpx.Request) -> httpx.Response:
        """The provider rejecting our key."""

    def void_response(self, request: httpx.Request) -> httpx.Response | None:
        """An acknowledged void / net cancel; None if the provider has none."""
        return None

    def replay_in_progress_response(self, request: httpx.Request) -> httpx.Response | None:
        """Idempotent replay while the first request is still processing; None if the
        provider has no idempotency header."""
        return None

    def money(self, amount: int) -> Money:
        return Money(amount=amount, currency="KRW")


def conformance_tests(kit_cls: type[ConformanceKit]) -> Callable[[str, str], None]:
    """A pytest test parametrized over every scenario that applies, on both routers.

    Assign it to a module-level ``test_…`` name in the adapter's tests.
    """
    # pytest is a test-time dependency, and _suite imports this module.
    import pytest  # noqa: PLC0415

    from payfallback.testing._suite import run, scenarios  # noqa: PLC0415

    names = sorted(scenarios(kit_cls()))

    @pytest.mark.parametrize("kind", ["sync", "async"])
    @pytest.mark.parametrize("scenario", names)
    def test_conformance(scenario: str, kind: str) -> None:
        run(kit_cls, scenario, kind)  # type: ignore[arg-type]

    return test_conformance
