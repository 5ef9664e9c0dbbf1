"""The public surface: what ``payfallback`` exports is exactly what it documents."""

from __future__ import annotations

import inspect

import pytest

import payfallback
import payfallback.testing


def _isort_order(name: str) -> tuple[int, str]:
    # CONSTANTS, then Classes, then functions: the order ruff's RUF022 keeps.
    return (0 if name.isupper() else 1 if name[0].isupper() else 2, name)


def test_all_is_sorted_and_complete() -> None:
    assert payfallback.__all__ == sorted(payfallback.__all__, key=_isort_order)
    public = {
        name
        for name in dir(payfallback)
        if not name.startswith("_") and not inspect.ismodule(getattr(payfallback, name))
    }
    assert public == set(payfallback.__all__)


def test_every_export_resolves_to_the_object_its_module_defines() -> None:
    # The exports are imported on first use: each name must reach a real object, the same
    # one its defining module holds, and an unknown name must fail as a missing attribute.
    for name in payfallback.__all__:
        value = getattr(payfallback, name)
        assert value is not None, name
    assert payfallback.Router is payfallback.router.Router
    assert payfallback.Order is payfallback.models.Order
    with pytest.raises(AttributeError, match="no attribute 'Rooter'"):
        _ = payfallback.Rooter


def test_testing_exports() -> None:
    assert payfallback.testing.__all__ == sorted(payfallback.testing.__all__, key=_isort_order)
    for name in payfallback.testing.__all__:
        assert hasattr(payfallback.testing, name)


def test_router_signatures_match_between_sync_and_async() -> None:
    # One decision core, two drivers: the public operations must line up exactly.
    for name in ("charge", "start_checkout", "complete_checkout", "refund", "recover"):
        sync = inspect.signature(getattr(payfallback.Router, name))
        async_ = inspect.signature(getattr(payfallback.AsyncRouter, name))
        assert list(sync.parameters) == list(async_.parameters), name
        assert inspect.iscoroutinefunction(getattr(payfallback.AsyncRouter, name))
        assert not inspect.iscoroutinefunction(getattr(payfallback.Router, name))
