"""Test helpers: a scriptable fake provider, router harness and the adapter conformance suite.

* :class:`FakeBank` — a fake provider's server side (its own small JSON API, a ledger and
  a fault schedule), reached through :meth:`FakeBank.transport`, :func:`mock_transport`
  for several banks behind one client, or a real socket with :class:`FakeServer`.
* :class:`FakeProvider` — the sans-IO adapter for that API (entry point ``fake``).
* :class:`RouterHarness` — one synchronous face over ``Router`` or ``Router``, so one
  test runs through both.
* :mod:`payfallback.testing.conformance` — the suite every adapter passes.
* :mod:`payfallback.testing.secrets` — echo tests: an answer echoing every secret in every
  field leaves none in what the adapter hands back (:func:`echo_text`, :func:`echoed`,
  :func:`outcome_texts`, :func:`assert_no_secret`).
"""

from payfallback.testing._fake import (
    FakeBank,
    Fault,
    FaultMode,
    LedgerEntry,
    double_charges,
    mock_transport,
)
from payfallback.testing._harness import RouterHarness
from payfallback.testing._provider import FakeProvider
from payfallback.testing._server import FakeServer, WireFault
from payfallback.testing.secrets import (
    assert_no_secret,
    echo_text,
    echoed,
    forms,
    header_text,
    leaks,
    outcome_texts,
)

__all__ = [
    "FakeBank",
    "FakeProvider",
    "FakeServer",
    "Fault",
    "FaultMode",
    "LedgerEntry",
    "RouterHarness",
    "WireFault",
    "assert_no_secret",
    "double_charges",
    "echo_text",
    "echoed",
    "forms",
    "header_text",
    "leaks",
    "mock_transport",
    "outcome_texts",
]
