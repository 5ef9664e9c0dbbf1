"""Settings from the environment and a TOML file, and routers built from them."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import pytest
from pydantic import SecretStr

from payfallback import AsyncRouter, ConfigurationError, Router
from payfallback.journal import SQLiteJournal
from payfallback.models import Instrument, Money, Order
from payfallback.settings import ADAPTERS_URL, Settings, redact_url
from payfallback.testing import FakeBank, FakeProvider, mock_transport

SECRET = "test_sk_settings-do-not-show-4f1c"


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    import os  # noqa: PLC0415 - only for the names to clear

    for name in list(os.environ):
        if name.startswith("PAYFALLBACK_"):
            monkeypatch.delenv(name)


def test_environment_gives_journal_state_store_and_provider_secrets(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("PAYFALLBACK_JOURNAL", "postgresql://pos:pg-pass-77@db:5432/shop")
    monkeypatch.setenv("PAYFALLBACK_STATE_STORE", "redis://:redis-pass-88@10.0.0.5:6379/0")
    monkeypatch.setenv("PAYFALLBACK_PROVIDERS__TOSSPAYMENTS__SECRET_KEY", SECRET)
    monkeypatch.setenv("PAYFALLBACK_PROVIDERS__NICEPAY__CLIENT_KEY", "R2_client")
    monkeypatch.setenv("PAYFALLBACK_PROVIDER_ORDER", "nicepay, tosspayments")
    settings = Settings.load()
    assert settings.journal == "postgresql://pos:pg-pass-77@db:5432/shop"
    assert settings.provider_order == ["nicepay", "tosspayments"]
    secret = settings.providers["tosspayments"].options["secret_key"]
    assert isinstance(secret, SecretStr)
    assert secret.get_secret_value() == SECRET
    shown = f"{settings!r} {settings}"
    for leaked in (SECRET, "pg-pass-77", "redis-pass-88", "R2_client"):
        assert leaked not in shown
    assert "postgresql://pos:***@db:5432/shop" in shown


def test_the_environment_overrides_the_file_key_by_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "payfallback.toml"
    path.write_text(
        'journal = "sqlite:///from-file.sqlite3"\n'
        'provider_order = ["toss", "nice"]\n'
        '[providers.toss]\nadapter = "fake"\nname = "toss"\nsecret = "from-file"\n'
        '[providers.nice]\nadapter = "fake"\nname = "nice"\nidempotency = false\n',
        encoding="utf-8",
    )
    monkeypatch.setenv("PAYFALLBACK_PROVIDERS__TOSS__SECRET", "from-env")
    settings = Settings.load(path)
    assert settings.journal == "sqlite:///from-file.sqlite3"
    toss = settings.providers["toss"]
    assert toss.adapter == "fake"
    assert toss.options["secret"].get_secret_value() == "from-env"
    assert toss.options["name"].get_secret_value() == "toss"
    assert settings.providers["nice"].options["idempotency"] is False
    assert Settings.load(path, journal="sqlite:///given.sqlite3").journal == (
        "sqlite:///given.sqlite3"
    )


def test_providers_are_built_in_order_with_text_converted_to_what_they_take(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("PAYFALLBACK_PROVIDERS__B__ADAPTER", "fake")
    monkeypatch.setenv("PAYFALLBACK_PROVIDERS__B__NAME", "nice")
    # A bool from the environment is text; the adapter gets a bool.
    monkeypatch.setenv("PAYFALLBACK_PROVIDERS__B__IDEMPOTENCY", "false")
    monkeypatch.setenv("PAYFALLBACK_PROVIDERS__A__ADAPTER", "fake")
    monkeypatch.setenv("PAYFALLBACK_PROVIDERS__A__NAME", "toss")
    monkeypatch.setenv("PAYFALLBACK_PROVIDERS__A__SECRET", SECRET)
    monkeypatch.setenv("PAYFALLBACK_PROVIDER_ORDER", "a,b")
    toss, nice = Settings.load().build_providers()
    assert (toss.name, nice.name) == ("toss", "nice")
    assert nice.capabilities.idempotency_header is None
    assert toss.capabilities.idempotency_header == "Idempotency-Key"
    # The key reached the adapter as a secret it declares (and the Router scrubs).
    assert isinstance(toss, FakeProvider)
    assert toss.secrets.contains(f"key {SECRET}")


def test_a_bad_bool_names_the_setting_not_its_value(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PAYFALLBACK_PROVIDERS__FAKE__IDEMPOTENCY", "maybe-secret-7")
    with pytest.raises(ConfigurationError) as caught:
        Settings.load().build_providers()
    assert "idempotency takes true or false" in caught.value.message
    assert "maybe-secret-7" not in str(caught.value)


def test_an_unknown_adapter_points_at_the_adapter_list(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PAYFALLBACK_PROVIDERS__BANKX__SECRET_KEY", SECRET)
    with pytest.raises(ConfigurationError) as caught:
        Settings.load().build_providers()
    message = caught.value.message
    assert "no payment provider named 'bankx' is installed" in message
    assert ADAPTERS_URL in message
    assert "pip install payfallback-bankx" not in message
    assert SECRET not in message


def test_an_unknown_setting_is_named_without_its_value(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PAYFALLBACK_PROVIDERS__FAKE__COLOUR", "red-secret-9")
    with pytest.raises(ConfigurationError) as caught:
        Settings.load().build_providers()
    assert "colour" in caught.value.message
    assert "red-secret-9" not in str(caught.value)


def test_provider_order_must_name_configured_providers(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PAYFALLBACK_PROVIDER_ORDER", "ghost")
    monkeypatch.setenv("PAYFALLBACK_PROVIDERS__FAKE__NAME", "toss")
    with pytest.raises(ConfigurationError, match="provider_order names ghost"):
        Settings.load().build_providers()


def test_a_missing_or_broken_file_is_a_configuration_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="no settings file at"):
        Settings.load(tmp_path / "missing.toml")
    broken = tmp_path / "broken.toml"
    broken.write_text('journal = "sqlite:///x\n[providers.toss\n', encoding="utf-8")
    with pytest.raises(ConfigurationError, match=r"settings file .*broken\.toml"):
        Settings.load(broken)


def test_settings_of_the_wrong_shape_never_echo_the_value(tmp_path: Path) -> None:
    path = tmp_path / "wrong.toml"
    path.write_text('providers = "sk-wrong-shape-3"\n', encoding="utf-8")
    with pytest.raises(ConfigurationError) as caught:
        Settings.load(path)
    assert "invalid payfallback settings" in caught.value.message
    assert "providers" in caught.value.message
    assert "sk-wrong-shape-3" not in str(caught.value)


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("postgresql://pos:pw@db:5432/shop?x=1", "postgresql://pos:***@db:5432/shop?x=1"),
        ("redis://:pw@h:6379/0", "redis://:***@h:6379/0"),
        ("redis://h:6379/0", "redis://h:6379/0"),
        ("sqlite:///a.sqlite3", "sqlite:///a.sqlite3"),
    ],
)
def test_redact_url_masks_passwords_only(url: str, shown: str) -> None:
    assert redact_url(url) == shown


def _fake_settings(monkeypatch: pytest.MonkeyPatch, journal: Path) -> Settings:
    monkeypatch.setenv("PAYFALLBACK_JOURNAL", f"sqlite:///{journal}")
    monkeypatch.setenv("PAYFALLBACK_PROVIDERS__TOSS__ADAPTER", "fake")
    monkeypatch.setenv("PAYFALLBACK_PROVIDERS__TOSS__NAME", "toss")
    monkeypatch.setenv("PAYFALLBACK_PROVIDERS__NICE__ADAPTER", "fake")
    monkeypatch.setenv("PAYFALLBACK_PROVIDERS__NICE__NAME", "nice")
    monkeypatch.setenv("PAYFALLBACK_PROVIDER_ORDER", "toss,nice")
    return Settings.load()


def test_router_from_settings_fails_over_and_journals_where_told(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "terminal-1.sqlite3"
    settings = _fake_settings(monkeypatch, path)
    toss, nice = FakeBank("toss"), FakeBank("nice")
    toss.refuse = True
    cards = [Instrument(provider=p, billing_key=SecretStr("bk-ok")) for p in ("toss", "nice")]
    with (
        httpx.Client(transport=mock_transport(toss, nice)) as client,
        Router.from_settings(settings, client=client) as router,
    ):
        assert list(router.providers) == ["toss", "nice"]
        payment = router.charge(
            Order(order_id="SET-1", amount=Money(amount=3_000), name="tea"), cards
        )
    assert payment.provider == "nice"
    with SQLiteJournal(path) as journal:
        assert journal.counts().payments == 1


def test_router_options_win_over_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    settings = _fake_settings(monkeypatch, tmp_path / "unused.sqlite3")
    with (
        httpx.Client(transport=mock_transport(FakeBank("toss"))) as client,
        SQLiteJournal(":memory:") as journal,
        Router.from_settings(settings, client=client, journal=journal) as router,
    ):
        assert router.journal is journal
    assert not (tmp_path / "unused.sqlite3").exists()


def test_async_router_from_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    settings = _fake_settings(monkeypatch, tmp_path / "shop.sqlite3")
    toss = FakeBank("toss")

    async def main() -> str:
        async with (
            httpx.AsyncClient(transport=mock_transport(toss)) as client,
            AsyncRouter.from_settings(settings, client=client) as router,
        ):
            card = [Instrument(provider="toss", billing_key=SecretStr("bk-ok"))]
            payment = await router.charge(
                Order(order_id="SET-2", amount=Money(amount=900), name="tea"), card
            )
            return payment.provider

    assert asyncio.run(main()) == "toss"
    wrong = httpx.AsyncClient()
    with pytest.raises(ConfigurationError, match=r"Router needs an httpx\.Client"):
        Router.from_settings(settings, client=wrong)  # type: ignore[arg-type]
    asyncio.run(wrong.aclose())
