"""Fake Kakao Pay, Naver Pay and Toss Payments on a real loopback port, for the demo and tests.

Each is a :class:`~payfallback.testing.FakeBank` served by one
:class:`~payfallback.testing.FakeServer`; the shop talks to them over HTTP exactly as it
would to the real APIs, and the customer's browser opens each bank's small approval page
(``GET /pay/{tid}``), which stands in for the provider's hosted payment page: its Approve
link returns to the shop with ``token=ok-<tid>&tid=<tid>``, its Cancel link with
``token=cancel``.

Take a provider down with ``backends.set_down("kakaopay", True)`` (every request to it is
then reset, as a crashed service's would be), or from the shop's ``/demo`` page.
"""

from __future__ import annotations

from types import TracebackType
from typing import Self

from payfallback import Method, Provider
from payfallback.testing import FakeBank, FakeProvider, FakeServer

__all__ = ["FAKE_METHODS", "FakeBackends"]

#: What each fake provider offers, in routing order: Kakao Pay first.
FAKE_METHODS: dict[str, tuple[Method, ...]] = {
    "kakaopay": (Method.KAKAOPAY,),
    "naverpay": (Method.NAVERPAY,),
    "tosspayments": (Method.TOSSPAY, Method.CARD),
}


class FakeBackends:
    """The three fake providers and the loopback server in front of them.

    A context manager: the server runs from ``__enter__`` (or :meth:`start`) until
    ``__exit__`` (or :meth:`close`). ``hang_seconds`` bounds how long a hanging fault keeps
    a connection silent.
    """

    def __init__(self, *, hang_seconds: float = 2.0) -> None:
        self.banks: dict[str, FakeBank] = {name: FakeBank(name) for name in FAKE_METHODS}
        self.server = FakeServer(*self.banks.values(), hang_seconds=hang_seconds)

    def start(self) -> Self:
        self.server.start()
        return self

    def close(self) -> None:
        self.server.close()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    @property
    def providers(self) -> list[Provider]:
        """Adapters for the three banks at the server's address (once started)."""
        return [
            FakeProvider(name, base_url=self.server.url_for(name), methods=methods)
            for name, methods in FAKE_METHODS.items()
        ]

    def set_down(self, name: str, down: bool) -> None:
        """Make the provider ``name`` refuse every request (``True``) or answer again."""
        self.banks[name].refuse = down

    def is_down(self, name: str) -> bool:
        return self.banks[name].refuse
