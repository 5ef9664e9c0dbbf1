"""Shared keys, payload loading and request builders for the KCP tests.

The merchant's key pair and service certificate are generated here, once per test run: a
2048-bit RSA key stored as an encrypted PKCS#8 PEM with the password KCP's own test key
uses ("changeit"), and a self-signed certificate standing in for the one KCP issues.
"""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, datetime, timedelta
from functools import cache
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID
from payfallback_kcp import Kcp
from pydantic import SecretStr

from payfallback.models import Instrument, Method, Money, Order, ReturnUrls
from payfallback.provider import (
    Approved,
    ApproveRequest,
    Cancelled,
    CancelRequest,
    ChargeRequest,
    LookupRequest,
    Outcome,
    ReadyRequest,
)

PAYLOADS = Path(__file__).parent / "payloads"

SITE_CD = "T0000"
GROUP_ID = "BA0011000348"
PASSWORD = "changeit"
TNO = "20221015998877"
BILLING_TNO = "20221015998878"
ATTEMPT = "ORD-1001_1"
BILLING_ATTEMPT = "SUB-2001_1"
BATCH_KEY = "BKEY20221015ABCDEFGHIJ0123456789"
ENC_DATA = "ENCDATA4f1c2b9a7e6d5c4b3a29180716253443aBcDeFgHiJkLmNoPqRsTuVwXyZ"
ENC_INFO = "ENCINFO0a9b8c7d6e5f4a3b2c1d0e9f8a7b6c5d4e3f2a1b"

URLS = ReturnUrls(
    success="https://shop.example/pay/kcp/return",
    cancel="https://shop.example/pay/cancel",
    fail="https://shop.example/pay/fail",
)


@cache
def private_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@cache
def private_key_pem() -> str:
    """The key as KCP hands it out: encrypted PKCS#8 PEM (splPrikeyPKCS8.pem)."""
    return (
        private_key()
        .private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(PASSWORD.encode()),
        )
        .decode("ascii")
    )


@cache
def certificate_pem() -> str:
    """A certificate PEM with its line breaks, as the file from the merchant admin is."""
    key = private_key()
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "20221015100068")])
    now = datetime(2022, 10, 1, tzinfo=UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "spl.kcp.co.kr")]))
        .public_key(key.public_key())
        .serial_number(0x7A30D6057A48F7)
        .not_valid_before(now)
        .not_valid_after(now + timedelta(days=1825))
        .sign(key, hashes.SHA256())
    )
    return cert.public_bytes(serialization.Encoding.PEM).decode("ascii")


def one_line_cert() -> str:
    return "".join(certificate_pem().splitlines())


def provider(**settings: Any) -> Kcp:
    """The adapter with the test site's settings, ``settings`` replacing any of them."""
    options: dict[str, Any] = {
        "site_cd": SITE_CD,
        "cert_info": SecretStr(certificate_pem()),
        "private_key": SecretStr(private_key_pem()),
        "private_key_password": SecretStr(PASSWORD),
        "batch_group_id": GROUP_ID,
        "sandbox": False,
    }
    options.update(settings)
    return Kcp(**options)


def make_order(
    order_id: str = "ORD-1001", amount: int = 12000, name: str = "아메리카노 외 2건"
) -> Order:
    return Order(order_id=order_id, amount=Money(amount=amount), name=name, customer_ref="cust-7")


def load(name: str, **overrides: Any) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((PAYLOADS / name).read_text(encoding="utf-8"))
    return {**data, **overrides}


def callback(
    *, order_id: str | None = ATTEMPT, code: str = "0000", message: str = "정상처리"
) -> dict[str, str]:
    """What the payment window submits to Ret_URL after the customer authenticated."""
    params = {
        "res_cd": code,
        "res_msg": message,
        "tran_cd": "00100000",
        "enc_data": ENC_DATA,
        "enc_info": ENC_INFO,
        "use_pay_method": "100000000000",
        "site_cd": SITE_CD,
    }
    if order_id is not None:
        params["ordr_idxx"] = order_id
    return params


def ready_request(method: Method = Method.CARD, order: Order | None = None) -> ReadyRequest:
    return ReadyRequest(
        attempt_id=ATTEMPT,
        order=order or make_order(),
        method=method,
        return_urls=URLS,
        idempotency_key="idem-ready-1",
    )


def approve_request(
    params: dict[str, str] | None = None, order: Order | None = None, attempt_id: str = ATTEMPT
) -> ApproveRequest:
    return ApproveRequest(
        attempt_id=attempt_id,
        order=order or make_order(),
        method=Method.CARD,
        provider_txn_id=None,
        callback_params=callback() if params is None else params,
        idempotency_key="idem-approve-1",
    )


def charge_request(
    *, key: str = BATCH_KEY, instrument_provider: str = "kcp", amount: int = 9900
) -> ChargeRequest:
    return ChargeRequest(
        attempt_id=BILLING_ATTEMPT,
        order=make_order("SUB-2001", amount, "월간 구독"),
        instrument=Instrument(provider=instrument_provider, billing_key=SecretStr(key)),
        idempotency_key="idem-charge-1",
    )


def lookup_request(tno: str | None = TNO) -> LookupRequest:
    return LookupRequest(attempt_id=ATTEMPT, order=make_order(), provider_txn_id=tno)


def cancel_request(
    amount: int = 12000,
    remaining: int = 12000,
    *,
    order: Order | None = None,
    key: str = "3f2a9c1e5b7d4f60a1b2c3d4e5f60718",
) -> CancelRequest:
    return CancelRequest(
        refund_id="rf_3f2a9c1e5b7d4f60a1b2",
        attempt_id=ATTEMPT,
        order=order or make_order(),
        provider_txn_id=TNO,
        amount=Money(amount=amount),
        expected_remaining=remaining,
        reason="고객 요청",
        idempotency_key=key,
    )


def bare(outcome: Outcome) -> Outcome:
    """``outcome`` without its receipt and kept answer (pinned in test_receipts)."""
    if isinstance(outcome, Approved | Cancelled):
        return dataclasses.replace(outcome, receipt=None, answer=None)
    return outcome
