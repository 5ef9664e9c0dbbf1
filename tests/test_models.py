"""Models turn pydantic's errors into ``InvalidRequest`` once, at each way in."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from pydantic import ValidationError

from payfallback import InvalidRequest, Money, Order
from payfallback.models import LineItem


def _order(**changes: Any) -> dict[str, Any]:
    return {"order_id": "ORD-1", "amount": Money(amount=1_000), "name": "coffee", **changes}


def _bad_item() -> Order:
    bad = {"name": "bean", "quantity": 0, "unit_price": Money(amount=1_000)}
    return Order(**_order(items=(bad,)))


def _bad_json() -> Order:
    text = '{"order_id": "ORD-1", "amount": {"amount": 1000}, "name": "coffee", "x": 1}'
    return Order.model_validate_json(text)


CASES: list[tuple[Callable[[], object], str]] = [
    (lambda: Order(**_order(name="")), "invalid Order: name: String should have at least"),
    (_bad_item, "invalid Order: items.0.quantity: Input should be greater than or equal to 1"),
    (
        lambda: Order.model_validate(_order(tax_free_amount=-1)),
        "invalid Order: tax_free_amount: Input should be greater than or equal to 0",
    ),
    (_bad_json, "invalid Order: x: Extra inputs are not permitted"),
]


@pytest.mark.parametrize(("build", "says"), CASES)
def test_a_bad_value_is_an_invalid_request_naming_the_field(
    build: Callable[[], object], says: str
) -> None:
    with pytest.raises(InvalidRequest) as raised:
        build()
    assert says in str(raised.value)
    assert not isinstance(raised.value, ValidationError)


def test_a_validators_own_error_passes_through_as_it_is() -> None:
    with pytest.raises(InvalidRequest, match=r"^Money\.amount must not be negative"):
        Order(**_order(amount={"amount": -5, "currency": "KRW"}))


def test_json_from_the_journal_is_read_leniently_and_nested_models_are_built() -> None:
    item = LineItem(name="bean", quantity=2, unit_price=Money(amount=500))
    text = Order(**_order(items=(item,))).model_dump_json()
    again = Order.model_validate_json(text, strict=False)
    assert again.items == (item,)
    assert again.amount == Money(amount=1_000)
