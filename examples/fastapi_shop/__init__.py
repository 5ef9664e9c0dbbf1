"""A small shop backend on payfallback: FastAPI + uvicorn, :class:`~payfallback.AsyncRouter`.

Kakao Pay is the primary wallet; Naver Pay and Toss Payments (Toss Pay, cards) are the
fallbacks, with PortOne as a further card provider when configured. Every payment is
journaled in SQLite before it is sent. The checkout page offers only the ways to pay that
``router.available()`` reports healthy, and says so when Kakao Pay is down; return URLs
complete the checkout; there is a refund endpoint, ``/health`` with the breakers, and
webhooks from PortOne (signature verified) and Toss Payments (re-fetched before use),
processed once per event id.

Run it with one command from the repository root::

    python -m examples.fastapi_shop            # fake providers on loopback; open /demo
    SHOP_MODE=live KAKAOPAY_SECRET_KEY=… python -m examples.fastapi_shop

``examples/README.md`` lists every environment variable. In code::

    app = create_app(Settings(data_dir=Path("shop-data")), providers)
"""

from .app import Shop, create_app
from .fakes import FakeBackends
from .settings import Settings, demo_breaker_policy, live_providers, settings_from_env

__all__ = [
    "FakeBackends",
    "Settings",
    "Shop",
    "create_app",
    "demo_breaker_policy",
    "live_providers",
    "settings_from_env",
]
