"""The real adapters, configured with the credentials of their own tests.

Each adapter's tests keep uniquely named helper modules next to them
(``adapters/<name>/tests/<name>_support.py`` and ``<name>_kit.py``): the made-up keys, the
payload files of the provider's documented answers, and the conformance kit's answer
builders. Their ``conftest.py`` puts that folder on ``sys.path``; this module does the same
and hands out typed handles, so the emulator builds its answers with the same code (and the
same keys: NICEPAY's answers are signed with them) as the adapters' own tests.
"""

from __future__ import annotations

import base64
import importlib
import sys
from collections.abc import Callable
from functools import cache
from pathlib import Path
from types import ModuleType
from typing import Any, cast
from urllib.parse import quote

from payfallback_nicepay import Nicepay
from payfallback_portone import PortOne
from payfallback_tosspayments import TossPayments
from pydantic import SecretStr

from payfallback.models import Instrument
from payfallback.provider import Provider
from payfallback.testing.conformance import ConformanceKit

ADAPTERS = Path(__file__).resolve().parents[2] / "adapters"

TOSS = "tosspayments"
NICE = "nicepay"
PORTONE = "portone"
#: The providers whose server-side billing charge the suite drives.
BILLING = (TOSS, NICE, PORTONE)


def helper(name: str) -> ModuleType:
    """``adapters/<adapter>/tests/<name>.py``, imported by its unique module name."""
    adapter = name.split("_", 1)[0]
    folder = str(ADAPTERS / adapter / "tests")
    if folder not in sys.path:
        sys.path.append(folder)
    return importlib.import_module(name)


def kit(module: str, cls: str) -> ConformanceKit:
    """A fresh conformance kit of an adapter's tests (``portone_kit``, ``PortOneBillingKit``)."""
    made = getattr(helper(module), cls)()
    assert isinstance(made, ConformanceKit)
    return made


def loader(module: str) -> Callable[..., dict[str, Any]]:
    """The ``load(name, **overrides)`` payload loader of an adapter's support module."""
    return cast(Callable[..., dict[str, Any]], helper(module).load)


def _const(module: str, name: str) -> str:
    value = getattr(helper(module), name)
    assert isinstance(value, str)
    return value


def _basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


@cache
def credentials() -> dict[str, dict[str, str]]:
    """Each billing provider's made-up credentials, as its adapter tests define them."""
    toss_secret = _const("tosspayments_support", "SECRET")
    nice_client = _const("nicepay_support", "CLIENT_KEY")
    nice_secret = _const("nicepay_support", "SECRET")
    portone_secret = _const("portone_support", "API_SECRET")
    return {
        TOSS: {
            "secret": toss_secret,
            "client": _const("tosspayments_support", "CLIENT"),
            "authorization": _basic(toss_secret, ""),
            "billing_key": _const("tosspayments_support", "BILLING_KEY"),
            "customer_key": _const("tosspayments_support", "CUSTOMER_KEY"),
        },
        NICE: {
            "client": nice_client,
            "secret": nice_secret,
            "authorization": _basic(nice_client, nice_secret),
            "billing_key": _const("nicepay_support", "BID"),
        },
        PORTONE: {
            "secret": portone_secret,
            "authorization": f"PortOne {portone_secret}",
            "billing_key": _const("portone_support", "BILLING_KEY"),
            "store_id": _const("portone_support", "STORE_ID"),
            "channel_key": _const("portone_support", "CHANNEL_KEY"),
        },
    }


def secret_values() -> tuple[str, ...]:
    """Every value that must never come back out of the library, in the forms it travels
    in: raw, the ``Authorization`` value whole and its token alone, and URL-escaped (a
    billing key travels in a URL path). Transaction ids and idempotency keys are not
    secrets."""
    out: set[str] = set()
    for creds in credentials().values():
        for name in ("secret", "authorization", "billing_key"):
            value = creds[name]
            out.add(value)
            out.add(quote(value, safe=""))
        auth = creds["authorization"]
        out.add(auth.split(" ", 1)[1])
    return tuple(sorted(out))


def provider(name: str) -> Provider:
    """The real adapter for ``name``, configured as its own tests configure it."""
    creds = credentials()[name]
    if name == TOSS:
        return TossPayments(secret_key=SecretStr(creds["secret"]), client_key=creds["client"])
    if name == NICE:
        return Nicepay(client_key=creds["client"], secret_key=SecretStr(creds["secret"]))
    if name == PORTONE:
        return PortOne(
            api_secret=SecretStr(creds["secret"]),
            store_id=creds["store_id"],
            channel_key=creds["channel_key"],
            pg_provider="TOSSPAYMENTS",
        )
    raise ValueError(f"no billing provider {name!r}")


def instrument(name: str) -> Instrument:
    """The stored billing key a POS keeps for one customer at ``name``."""
    creds = credentials()[name]
    return Instrument(
        provider=name,
        billing_key=SecretStr(creds["billing_key"]),
        customer_key=creds.get("customer_key"),
    )


__all__ = [
    "BILLING",
    "NICE",
    "PORTONE",
    "TOSS",
    "credentials",
    "helper",
    "instrument",
    "kit",
    "loader",
    "provider",
    "secret_values",
]
