"""The shop's settings, and its real providers built from environment variables.

Everything the shop needs is passed to :func:`~examples.fastapi_shop.app.create_app` as a
:class:`Settings` value and a list of providers; nothing is read from module globals.
:func:`settings_from_env` and :func:`live_providers` read the environment once, at start-up
(``python -m examples.fastapi_shop``). The variables are listed in ``examples/README.md``.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from pydantic import SecretStr

from payfallback import (
    BreakerPolicy,
    BreakerSettings,
    ConfigurationError,
    Method,
    Provider,
    load_provider,
)

__all__ = [
    "METHOD_LABELS",
    "PROVIDER_LABELS",
    "SHOP_METHODS",
    "Settings",
    "demo_breaker_policy",
    "live_providers",
    "only_methods",
    "settings_from_env",
]

#: The ways to pay the checkout page offers, in the order it offers them.
SHOP_METHODS: tuple[Method, ...] = (Method.KAKAOPAY, Method.NAVERPAY, Method.TOSSPAY, Method.CARD)

METHOD_LABELS: dict[Method, str] = {
    Method.KAKAOPAY: "Kakao Pay",
    Method.NAVERPAY: "Naver Pay",
    Method.TOSSPAY: "Toss Pay",
    Method.CARD: "Card",
}

PROVIDER_LABELS: dict[str, str] = {
    "kakaopay": "Kakao Pay",
    "naverpay": "Naver Pay",
    "tosspayments": "Toss Payments",
    "portone": "PortOne",
}


def demo_breaker_policy() -> BreakerPolicy:
    """A policy that trips after a couple of failed checkouts, for the demo and its tests.

    A demo shop sees a handful of checkouts, so the breaker judges on three calls; it has
    no peak windows, so it behaves the same whatever the hour. A real shop keeps
    :meth:`BreakerPolicy.default` (stricter at Friday-Sunday evening peaks).
    """
    return BreakerPolicy(
        normal=BreakerSettings(
            window_seconds=120.0,
            minimum_calls=3,
            failure_rate_threshold=0.5,
            hard_failure_run=2,
            open_seconds=60.0,
            connect_timeout=2.0,
            read_timeout=10.0,
        )
    )


@dataclass(frozen=True, kw_only=True)
class Settings:
    """How one shop runs. Providers are passed to ``create_app`` separately."""

    #: Where ``journal.sqlite3`` (payfallback's journal) and ``shop.sqlite3`` live.
    data_dir: Path
    #: The shop's public base URL for return URLs (``https://shop.example``); None: the
    #: scheme and host of each request, which is right unless a proxy rewrites them.
    public_url: str | None = None
    #: The ``whsec_…`` secret of PortOne webhooks; None turns the endpoint off (404).
    portone_webhook_secret: SecretStr | None = None
    #: None: :meth:`BreakerPolicy.default` (peak hours Friday-Sunday 17:00-21:00 KST).
    breaker_policy: BreakerPolicy | None = None
    #: Seconds between ``router.recover()`` runs (owed refunds, unknown outcomes); None: never.
    recover_every: float | None = 60.0
    #: Provider lookups one attempt's webhook deliveries may cause per window (seconds);
    #: past that, deliveries about it are answered 429 and the provider delivers later.
    webhook_refetch_limit: int = 3
    webhook_refetch_window: float = 600.0
    #: The wallet most customers use; the checkout page says so when it is down.
    usual_method: Method = Method.KAKAOPAY
    #: What a checkout may fall back to when the chosen method has no healthy provider.
    fallback_methods: Mapping[Method, Sequence[Method]] = field(
        default_factory=lambda: {Method.KAKAOPAY: (Method.NAVERPAY, Method.TOSSPAY)}
    )

    @property
    def journal_path(self) -> Path:
        return self.data_dir / "journal.sqlite3"

    @property
    def shop_db_path(self) -> Path:
        return self.data_dir / "shop.sqlite3"


def _secret(env: Mapping[str, str], name: str) -> SecretStr | None:
    value = env.get(name, "").strip()
    return SecretStr(value) if value else None


def settings_from_env(env: Mapping[str, str] | None = None, *, fake: bool) -> Settings:
    """Settings from ``SHOP_*`` and ``PORTONE_WEBHOOK_SECRET``; fake mode uses the demo policy."""
    env = os.environ if env is None else env
    every = env.get("SHOP_RECOVER_EVERY", "").strip()
    return Settings(
        data_dir=Path(env.get("SHOP_DATA_DIR", "shop-data")),
        public_url=env.get("SHOP_PUBLIC_URL") or None,
        portone_webhook_secret=_secret(env, "PORTONE_WEBHOOK_SECRET"),
        breaker_policy=demo_breaker_policy() if fake else None,
        recover_every=float(every) if every else 60.0,
    )


def only_methods(provider: Provider, methods: frozenset[Method]) -> Provider:
    """Narrow what ``provider`` offers the Router to ``methods`` (in place; returns it)."""
    # PortOne's adapter declares every method PortOne can front, but a merchant's channel
    # serves only what it was contracted for; a method the channel cannot take must not be
    # offered to the Router as a fallback candidate.
    provider.capabilities = dataclasses.replace(provider.capabilities, methods=methods)
    return provider


def live_providers(env: Mapping[str, str] | None = None) -> list[Provider]:
    """The real providers whose credentials are set, in routing order.

    Kakao Pay (``KAKAOPAY_SECRET_KEY``), Naver Pay (``NAVERPAY_CLIENT_ID`` …), Toss
    Payments for Toss Pay and cards (``TOSS_SECRET_KEY``, ``TOSS_CLIENT_KEY``) and PortOne
    for cards (``PORTONE_API_SECRET``, ``PORTONE_STORE_ID``, ``PORTONE_CHANNEL_KEY``).
    Raises ``ConfigurationError`` when none is configured.
    """
    env = os.environ if env is None else env
    providers: list[Provider] = []
    if kakao_key := _secret(env, "KAKAOPAY_SECRET_KEY"):
        providers.append(
            load_provider(
                "kakaopay", secret_key=kakao_key, cid=env.get("KAKAOPAY_CID") or "TC0ONETIME"
            )
        )
    if naver_secret := _secret(env, "NAVERPAY_CLIENT_SECRET"):
        providers.append(
            load_provider(
                "naverpay",
                client_id=env.get("NAVERPAY_CLIENT_ID", ""),
                client_secret=naver_secret,
                chain_id=env.get("NAVERPAY_CHAIN_ID", ""),
                partner_id=env.get("NAVERPAY_PARTNER_ID", ""),
                sandbox=env.get("NAVERPAY_SANDBOX", "1") == "1",
            )
        )
    if toss_key := _secret(env, "TOSS_SECRET_KEY"):
        providers.append(
            load_provider(
                "tosspayments",
                secret_key=toss_key,
                client_key=env.get("TOSS_CLIENT_KEY") or None,
                methods=[Method.TOSSPAY, Method.CARD],
            )
        )
    if portone_secret := _secret(env, "PORTONE_API_SECRET"):
        portone = load_provider(
            "portone",
            api_secret=portone_secret,
            store_id=env.get("PORTONE_STORE_ID") or None,
            channel_key=env.get("PORTONE_CHANNEL_KEY") or None,
        )
        providers.append(only_methods(portone, frozenset({Method.CARD})))
    if not providers:
        raise ConfigurationError(
            "live mode needs credentials of at least one provider: set KAKAOPAY_SECRET_KEY, "
            "NAVERPAY_CLIENT_SECRET (and NAVERPAY_CLIENT_ID, _CHAIN_ID, _PARTNER_ID), "
            "TOSS_SECRET_KEY or PORTONE_API_SECRET (see examples/README.md), or run in fake "
            "mode: SHOP_MODE=fake"
        )
    return providers
