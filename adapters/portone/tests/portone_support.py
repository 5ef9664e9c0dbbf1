"""Constants, payload loaders and OpenAPI helpers shared by the PortOne adapter tests.

Named uniquely (not ``support.py``) so it cannot clash with another adapter's helpers when
several adapters' tests run in one session; ``conftest.py`` puts this directory on
``sys.path`` because the project runs pytest with ``--import-mode=importlib``.

The OpenAPI helpers read ``spec/portone-v2.payments.openapi.json``, an unmodified excerpt
of PortOne's published spec (the four payment paths and every schema they reference).
"""

from __future__ import annotations

import copy
import dataclasses
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
from jsonschema import Draft7Validator

from payfallback.provider import Approved, Cancelled, Outcome, Status

HERE = Path(__file__).parent
PAYLOADS = HERE / "payloads"
SPEC_PATH = HERE / "spec" / "portone-v2.payments.openapi.json"

BASE_URL = "https://api.portone.io"
API_SECRET = "pOrT0nE-v2-sEcReT-nEvEr-lOgGeD-9f8e7d6c"
WEBHOOK_SECRET = "whsec_c2VjcmV0LWtleS1mb3ItcG9ydG9uZS13ZWJob29rcw=="
BILLING_KEY = "billing-key-0193b0f1-bk-SECRET-77aa"
CARD_NUMBER = "4242424242424242"
STORE_ID = "store-4ff4af41-85e3-4559-8eb8-0d08a2c6ceec"
CHANNEL_KEY = "channel-key-893597d6-e62d-410f-83f9-119f530b4b11"
KAKAO_CHANNEL_KEY = "channel-key-kakaopay-1d2c3b4a"
ATTEMPT = "ORDER123_1"
KEY = "0f8c1d2e3b4a59687766554433221100"

#: Our operation (table key) → the spec's operationId.
SPEC_OPERATIONS: dict[str, str] = {
    "approve": "getPayment",
    "lookup": "getPayment",
    "charge": "payWithBillingKey",
    "instant": "payInstantly",
    "cancel": "cancelPayment",
}


def load(name: str) -> dict[str, Any]:
    """A payload file (``payloads/<name>.json``), fresh on every call."""
    data = json.loads((PAYLOADS / f"{name}.json").read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


def documented() -> dict[str, Any]:
    data = json.loads((HERE / "documented_codes.json").read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


def respond(status: int, body: dict[str, Any] | str, **headers: str) -> httpx.Response:
    if isinstance(body, str):
        return httpx.Response(status, text=body, headers=headers)
    return httpx.Response(status, json=body, headers=headers)


# -- the OpenAPI excerpt ----------------------------------------------------------------------


def spec() -> dict[str, Any]:
    data = json.loads(SPEC_PATH.read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


def _operations(doc: dict[str, Any]) -> Iterator[tuple[str, str, str, dict[str, Any]]]:
    for path, item in doc["paths"].items():
        for method, operation in item.items():
            yield operation["operationId"], path, method, operation


def operation(doc: dict[str, Any], operation_id: str) -> tuple[str, str, dict[str, Any]]:
    """(path, method, operation object) of ``operation_id``."""
    for op_id, path, method, op in _operations(doc):
        if op_id == operation_id:
            return path, method, op
    raise KeyError(operation_id)


def schema_name(ref: str) -> str:
    prefix = "#/components/schemas/"
    assert ref.startswith(prefix), ref
    return ref[len(prefix) :]


def request_schema(doc: dict[str, Any], operation_id: str) -> str:
    """The component name of an operation's JSON request body."""
    _, _, op = operation(doc, operation_id)
    return schema_name(op["requestBody"]["content"]["application/json"]["schema"]["$ref"])


def error_types(doc: dict[str, Any], operation_id: str) -> dict[str, int]:
    """Every error ``type`` an operation documents, with its HTTP status.

    Walks the operation's non-2xx responses to their error union, and the union's
    discriminator mapping to each error schema's ``x-portone-status-code``.
    """
    schemas = doc["components"]["schemas"]
    _, _, op = operation(doc, operation_id)
    found: dict[str, int] = {}
    for status, response in op["responses"].items():
        if status.startswith("2"):
            continue
        union = schemas[schema_name(response["content"]["application/json"]["schema"]["$ref"])]
        for error_type, ref in union["discriminator"]["mapping"].items():
            declared = schemas[schema_name(ref)].get("x-portone-status-code")
            found[error_type] = int(declared)
    return found


def _closed(node: Any) -> Any:
    """Every object schema with ``properties`` made ``additionalProperties: false``."""
    if isinstance(node, dict):
        out = {key: _closed(value) for key, value in node.items()}
        if out.get("type") == "object" and "properties" in out:
            out.setdefault("additionalProperties", False)
        return out
    if isinstance(node, list):
        return [_closed(item) for item in node]
    return node


def _discriminated(node: Any) -> Any:
    """OpenAPI ``oneOf`` + ``discriminator`` as plain JSON Schema.

    PortOne's union members share a shape (``status`` is any string in each), so a bare
    ``oneOf`` matches several and fails; the discriminator picks the one member to check.
    """
    if isinstance(node, list):
        return [_discriminated(item) for item in node]
    if not isinstance(node, dict):
        return node
    out = {key: _discriminated(value) for key, value in node.items()}
    if "oneOf" in out and "discriminator" in out:
        prop = out["discriminator"]["propertyName"]
        mapping = out["discriminator"]["mapping"]
        del out["oneOf"], out["discriminator"]
        out |= {
            "type": "object",
            "required": [prop],
            "properties": {prop: {"enum": sorted(mapping)}},
            "allOf": [
                {"if": {"properties": {prop: {"const": value}}}, "then": {"$ref": ref}}
                for value, ref in sorted(mapping.items())
            ],
        }
    return out


def validator(doc: dict[str, Any], name: str, *, closed: bool = False) -> Draft7Validator:
    """A validator for component ``name`` that resolves ``$ref``s within the spec.

    Discriminated unions are checked against the member their discriminator names.
    ``closed`` also refuses fields the schema does not define: a body we build must use
    only fields PortOne documents.
    """
    components = _discriminated(copy.deepcopy(doc["components"]))
    if closed:
        components = _closed(components)
    return Draft7Validator({"$ref": f"#/components/schemas/{name}", "components": components})


def violations(doc: dict[str, Any], name: str, instance: Any, *, closed: bool = False) -> list[str]:
    found = validator(doc, name, closed=closed).iter_errors(instance)
    return sorted(f"{'/'.join(map(str, e.absolute_path)) or '<root>'}: {e.message}" for e in found)


def money_of(outcome: Outcome) -> Outcome:
    """An approval, a cancel or a status without its receipt and answer: what moved, to
    compare whole (the receipt and the answer are pinned by their own tests)."""
    if isinstance(outcome, Approved | Cancelled | Status):
        return dataclasses.replace(outcome, receipt=None, answer=None)
    return outcome
