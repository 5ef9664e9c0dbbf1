"""Adapters are found by name through the ``payfallback.providers`` entry-point group.

Each shipped adapter is its own distribution (``pip install -e adapters/<name>``) with one
entry-point line; ``load_provider(name, **settings)`` builds it. A provider of one's own
is found the same way: the template in ``examples/adapter_template`` is made visible here
through a distribution record built from its own ``pyproject.toml``, as ``pip install``
would leave it.
"""

from __future__ import annotations

import re
import sys
import tomllib
from collections.abc import Callable, Iterator
from importlib.metadata import distribution
from pathlib import Path
from typing import Any

import httpx
import pytest
from payfallback_kakaopay import KakaoPay
from payfallback_naverpay import NaverPay
from payfallback_nicepay import Nicepay
from payfallback_portone import PortOne
from payfallback_tosspayments import TossPayments
from pydantic import SecretStr

from payfallback import (
    ConfigurationError,
    Instrument,
    InvalidRequest,
    Method,
    Money,
    Order,
    OutcomeUnknown,
    PayfallbackError,
    ProviderUnavailable,
    ReturnUrls,
)
from payfallback.provider import (
    ApproveRequest,
    CancelRequest,
    ChargeRequest,
    LookupRequest,
    Operation,
    Provider,
    ReadyRequest,
    VoidRequest,
    installed_providers,
    load_provider,
)

GROUP = "payfallback.providers"
SECRET = "sk-discovery-0123456789abcdef"
TEMPLATE = Path(__file__).resolve().parents[1] / "examples" / "adapter_template"

#: Each shipped adapter: its class and the settings a shop passes to build it.
SHIPPED: dict[str, tuple[type[Any], dict[str, Any]]] = {
    "kakaopay": (KakaoPay, {"secret_key": SecretStr(SECRET), "cid": "TC0ONETIME"}),
    "naverpay": (
        NaverPay,
        {
            "client_id": "np-client-id",
            "client_secret": SecretStr(SECRET),
            "chain_id": "np-chain-id",
            "partner_id": "np_partner",
            "sandbox": True,
        },
    ),
    "nicepay": (
        Nicepay,
        {"client_key": "S2_0a1b2c3d4e5f40718293a4b5c6d7e8f9", "secret_key": SecretStr(SECRET)},
    ),
    "portone": (
        PortOne,
        {"api_secret": SecretStr(SECRET), "store_id": "store-1", "channel_key": "channel-key-1"},
    ),
    "tosspayments": (
        TossPayments,
        {"secret_key": SecretStr(f"test_sk_{SECRET}"), "client_key": "test_ck_discovery"},
    ),
}


@pytest.mark.parametrize("name", sorted(SHIPPED))
def test_each_shipped_adapter_is_built_by_name(name: str) -> None:
    cls, settings = SHIPPED[name]
    provider = load_provider(name, **settings)
    assert type(provider) is cls
    assert isinstance(provider, Provider)
    assert provider.name == name
    assert provider.capabilities.methods
    assert SECRET not in repr(provider)
    assert installed_providers()[name] == f"{cls.__module__.split('.')[0]}:{cls.__name__}"


@pytest.mark.parametrize("name", sorted(SHIPPED))
def test_each_adapter_is_its_own_distribution_with_one_entry_point(name: str) -> None:
    dist = distribution(f"payfallback-{name}")
    [entry] = dist.entry_points.select(group=GROUP)
    assert entry.name == name
    assert entry.load() is SHIPPED[name][0]


def _installed_in(message: str) -> set[str]:
    listed = re.search(r"\(installed: ([^)]*)\)", message)
    assert listed is not None, message
    return set(listed.group(1).split(", "))


@pytest.mark.parametrize("name", ["ksnet", "toss", "KakaoPay", ""])
def test_an_unknown_name_lists_the_installed_providers(name: str) -> None:
    with pytest.raises(ConfigurationError) as info:
        load_provider(name)
    message = str(info.value)
    assert f"no payment provider named {name!r} is installed" in message
    assert {*SHIPPED, "fake"} <= _installed_in(message)
    # Where the adapters are listed, never a guessed package name.
    assert "#providers" in message
    assert f"pip install payfallback-{name}" not in message


@pytest.mark.parametrize(
    ("name", "settings", "setting"),
    [
        ("kakaopay", {}, "secret_key"),
        ("naverpay", {**SHIPPED["naverpay"][1], "client_secret": ""}, "client_secret"),
        ("nicepay", {**SHIPPED["nicepay"][1], "secret_key": ""}, "secret_key"),
        ("portone", {"api_secret": ""}, "api_secret"),
        ("tosspayments", {"secret_key": ""}, "secret_key"),
    ],
)
def test_bad_settings_are_a_configuration_error_naming_the_setting(
    name: str, settings: dict[str, Any], setting: str
) -> None:
    with pytest.raises(ConfigurationError, match=setting) as info:
        load_provider(name, **settings)
    assert info.value.provider == name


# -- a provider of one's own: the adapter template -------------------------------------------


@pytest.fixture
def template_installed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """The template on the import path with the distribution record ``pip install`` writes,
    its entry points taken from the template's ``pyproject.toml``; yields the name."""
    project = tomllib.loads((TEMPLATE / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    [(name, target)] = project["entry-points"][GROUP].items()
    record = tmp_path / f"{project['name'].replace('-', '_')}-{project['version']}.dist-info"
    record.mkdir()
    (record / "METADATA").write_text(
        f"Metadata-Version: 2.1\nName: {project['name']}\nVersion: {project['version']}\n",
        encoding="utf-8",
    )
    (record / "entry_points.txt").write_text(f"[{GROUP}]\n{name} = {target}\n", encoding="utf-8")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.syspath_prepend(str(TEMPLATE))
    package = target.split(":")[0]
    yield name
    for module in [m for m in sys.modules if m == package or m.startswith(f"{package}.")]:
        del sys.modules[module]


def test_the_template_is_found_by_its_entry_point_and_listed(template_installed: str) -> None:
    provider = load_provider(template_installed, secret_key=SecretStr(SECRET))
    assert isinstance(provider, Provider)
    assert provider.name == template_installed
    assert SECRET not in repr(provider)
    assert template_installed in installed_providers()
    with pytest.raises(ConfigurationError) as info:
        load_provider("not-installed")
    assert {*SHIPPED, "fake", template_installed} <= _installed_in(str(info.value))


def test_the_templates_unwritten_operations_say_which_function_is_missing(
    template_installed: str,
) -> None:
    provider = load_provider(template_installed, secret_key=SecretStr(SECRET))
    order = Order(order_id="ORD-1", amount=Money(amount=1_000), name="template")
    urls = ReturnUrls(
        success="https://s.example/ok", cancel="https://s.example/no", fail="https://s.example/f"
    )
    method = next(iter(provider.capabilities.methods))
    ready = ReadyRequest("ORD-1_1", order, method, urls, "key-1")
    approve = ApproveRequest("ORD-1_1", order, method, None, {}, "key-1")
    charge = ChargeRequest(
        "ORD-1_1",
        order,
        Instrument(provider=template_installed, billing_key=SecretStr("bk"), method=Method.CARD),
        "key-1",
    )
    lookup = LookupRequest("ORD-1_1", order, None)
    cancel = CancelRequest("R-1", "ORD-1_1", order, "T-1", order.amount, 1_000, "r", "key-2")
    void = VoidRequest("ORD-1_1", order, "T-1", order.amount, "key-3")
    answer = httpx.Response(200, json={})
    calls: dict[str, Callable[[], object]] = {
        "build_ready": lambda: provider.build_ready(ready),
        "parse_ready": lambda: provider.parse_ready(ready, answer),
        "build_approve": lambda: provider.build_approve(approve),
        "parse_approve": lambda: provider.parse_approve(approve, answer),
        "build_charge": lambda: provider.build_charge(charge),
        "parse_charge": lambda: provider.parse_charge(charge, answer),
        "build_lookup": lambda: provider.build_lookup(lookup),
        "parse_lookup": lambda: provider.parse_lookup(lookup, answer),
        "build_cancel": lambda: provider.build_cancel(cancel),
        "parse_cancel": lambda: provider.parse_cancel(cancel, answer),
        "build_void": lambda: provider.build_void(void),
        "parse_void": lambda: provider.parse_void(void, answer),
    }
    for function, call in calls.items():
        with pytest.raises(NotImplementedError) as info:
            call()
        assert str(info.value) == f"{template_installed}: {function} is not written yet"


@pytest.mark.parametrize(
    ("operation", "answer", "expected"),
    [
        # An undocumented code on a money-moving call: the provider may have acted.
        (Operation.CHARGE, httpx.Response(400, json={"code": "NEW_CODE"}), OutcomeUnknown),
        # No code at all: the HTTP status decides.
        (Operation.CHARGE, httpx.Response(500, text="Internal Server Error"), OutcomeUnknown),
        (Operation.CHARGE, httpx.Response(503, headers={"Retry-After": "7"}), ProviderUnavailable),
        (Operation.LOOKUP, httpx.Response(500, text="oops"), ProviderUnavailable),
        (Operation.LOOKUP, httpx.Response(404, json={"code": "NEW_CODE"}), InvalidRequest),
        (Operation.CANCEL, httpx.Response(401, json={"message": "bad key"}), ConfigurationError),
    ],
)
def test_the_templates_error_classification_takes_the_safe_side(
    template_installed: str,
    operation: Operation,
    answer: httpx.Response,
    expected: type[PayfallbackError],
) -> None:
    provider = load_provider(template_installed, secret_key=SecretStr(SECRET))
    error = provider._error_from(answer, operation, "ORD-1_1")  # type: ignore[attr-defined]
    assert type(error) is expected
    assert (error.provider, error.operation, error.attempt_id) == (
        template_installed,
        operation.value,
        "ORD-1_1",
    )
    if answer.status_code == 503:
        assert error.retry_after == 7.0


def test_the_template_masks_card_numbers_in_provider_text(template_installed: str) -> None:
    provider = load_provider(template_installed, secret_key=SecretStr(SECRET))
    answer = httpx.Response(400, json={"message": "card 4111 1111 1111 1111 refused"})
    error = provider._error_from(answer, Operation.CHARGE, "ORD-1_1")  # type: ignore[attr-defined]
    assert "4111 1111 1111 1111" not in str(error)
    assert "1111" in str(error)
