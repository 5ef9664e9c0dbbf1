"""Standard Webhooks signature verification for PortOne V2 webhooks (version 2024-04-25).

PortOne signs each delivery with the Standard Webhooks scheme: the signed content is
``{webhook-id}.{webhook-timestamp}.{raw body}``, the key is the Base64-decoded part of the
``whsec_`` secret, the MAC is HMAC-SHA256, and ``webhook-signature`` holds one or more
space-separated ``v1,<base64>`` entries (several while a secret is being rotated).
A delivery is accepted when any ``v1`` entry matches, compared in constant time, and its
timestamp is within the tolerance of now in either direction (replay protection).

Verify against the raw body bytes, before any JSON parsing or re-encoding. A verified
delivery says *something happened* (``Transaction.Paid`` …); what actually happened is
read back with ``GET /payments/{paymentId}`` (the adapter's ``lookup``), as PortOne's
webhook guide recommends, because redirects and webhooks arrive in no guaranteed order.
Use ``webhook-id`` to de-duplicate redeliveries.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import re
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from pydantic import SecretStr

from payfallback.errors import ConfigurationError, InvalidRequest

__all__ = ["WebhookFailureReason", "WebhookSignatureError", "verify_webhook"]

WebhookFailureReason = Literal[
    "MISSING_REQUIRED_HEADERS",
    "INVALID_TIMESTAMP",
    "TIMESTAMP_TOO_OLD",
    "TIMESTAMP_TOO_NEW",
    "NO_MATCHING_SIGNATURE",
]

_PREFIX = "whsec_"
_REQUIRED = ("webhook-id", "webhook-timestamp", "webhook-signature")
# Unix seconds: ASCII digits only (``str.isdigit`` and ``int`` also take Arabic-Indic and
# fullwidth digits), at most 12 of them (a millisecond timestamp has 13; year 9999 needs
# 11). Compared as integers, so no value can overflow a datetime.
_TIMESTAMP = re.compile(r"[0-9]{1,12}")


class WebhookSignatureError(InvalidRequest):
    """A webhook delivery failed verification; answer it with 4xx and do not act on it.

    ``reason`` says why (``NO_MATCHING_SIGNATURE``, ``TIMESTAMP_TOO_OLD`` …). The message
    never contains the body, the headers or the secret.
    """

    def __init__(self, message: str, *, reason: WebhookFailureReason) -> None:
        super().__init__(message, provider="portone", provider_code=reason)
        self.reason: WebhookFailureReason = reason


def _signing_key(secret: SecretStr | str) -> bytes:
    raw = secret.get_secret_value() if isinstance(secret, SecretStr) else secret
    encoded = raw.removeprefix(_PREFIX)
    try:
        key = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        raise ConfigurationError(
            "the webhook secret is not valid Base64 after its 'whsec_' prefix; "
            "copy it again from the console (결제연동 > 웹훅)",
            provider="portone",
        ) from None
    if not key:
        raise ConfigurationError("the webhook secret is empty", provider="portone")
    return key


def verify_webhook(
    headers: Mapping[str, str],
    body: bytes,
    *,
    secret: SecretStr | str,
    now: datetime | None = None,
    tolerance: timedelta = timedelta(minutes=5),
) -> dict[str, Any]:
    """Verify a PortOne webhook delivery and return its parsed JSON body.

    ``headers`` may use any letter case. ``now`` defaults to the current UTC time (pass it
    in tests). Raises :class:`WebhookSignatureError` when a header is missing, the
    timestamp is malformed (anything but 1-12 ASCII digits: negative, fractional, in
    milliseconds, huge, other scripts' digits) or outside ``tolerance``, or no ``v1``
    signature matches — never another exception for a malformed header;
    :class:`~payfallback.errors.ConfigurationError` when the secret itself is unusable;
    :class:`~payfallback.errors.InvalidRequest` when a correctly signed body is not a JSON
    object.
    """
    key = _signing_key(secret)
    lowered = {name.lower(): value for name, value in headers.items()}
    if any(not lowered.get(name) for name in _REQUIRED):
        missing = ", ".join(name for name in _REQUIRED if not lowered.get(name))
        raise WebhookSignatureError(
            f"webhook rejected: missing header(s) {missing}", reason="MISSING_REQUIRED_HEADERS"
        )
    msg_id = lowered["webhook-id"]
    timestamp = lowered["webhook-timestamp"].strip()
    if not _TIMESTAMP.fullmatch(timestamp):
        raise WebhookSignatureError(
            "webhook rejected: webhook-timestamp is not Unix seconds", reason="INVALID_TIMESTAMP"
        )
    sent_at = int(timestamp)
    current = (now or datetime.now(UTC)).astimezone(UTC).timestamp()
    window = tolerance.total_seconds()
    if sent_at < current - window:
        raise WebhookSignatureError(
            "webhook rejected: its timestamp is older than the tolerance (a replay?)",
            reason="TIMESTAMP_TOO_OLD",
        )
    if sent_at > current + window:
        raise WebhookSignatureError(
            "webhook rejected: its timestamp is in the future beyond the tolerance; "
            "check this server's clock",
            reason="TIMESTAMP_TOO_NEW",
        )

    try:
        signed = msg_id.encode() + b"." + timestamp.encode() + b"." + body
    except UnicodeEncodeError:  # a lone surrogate: nothing could have signed it
        raise WebhookSignatureError(
            "webhook rejected: webhook-id is not encodable text", reason="NO_MATCHING_SIGNATURE"
        ) from None
    expected = hmac.new(key, signed, hashlib.sha256).digest()
    matched = False
    for entry in lowered["webhook-signature"].split():
        version, _, encoded = entry.partition(",")
        if version != "v1" or not encoded:
            continue
        try:
            candidate = base64.b64decode(encoded, validate=True)
        except (binascii.Error, ValueError):
            continue
        # Keep comparing after a match: the time taken must not depend on which entry
        # matched.
        matched |= hmac.compare_digest(candidate, expected)
    if not matched:
        raise WebhookSignatureError(
            "webhook rejected: no v1 signature matches (wrong secret, or the body was "
            "altered or re-encoded before verification)",
            reason="NO_MATCHING_SIGNATURE",
        )

    try:
        payload = json.loads(body)
    except (ValueError, RecursionError):  # undecodable, not JSON, or nested too deep
        raise InvalidRequest(
            "webhook signature is valid but the body is not JSON", provider="portone"
        ) from None
    if not isinstance(payload, dict):
        raise InvalidRequest(
            "webhook signature is valid but the body is not a JSON object", provider="portone"
        )
    return payload
