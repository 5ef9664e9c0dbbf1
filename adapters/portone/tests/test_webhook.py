"""Standard Webhooks verification of PortOne webhooks.

Two vectors: the Standard Webhooks project's own (``libraries/python/tests/
test_webhooks.py::test_sign_function``: secret ``whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw``,
id ``msg_p5jXN8AQM9LWM0D4loKWxJek``, timestamp 1614265330, payload
``{"test": 2432232314}`` → ``v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=``), and one
computed here with :mod:`hmac` over a PortOne-shaped ``Transaction.Paid`` body.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from datetime import UTC, datetime, timedelta

import pytest
from payfallback_portone import PortOne, WebhookSignatureError, verify_webhook
from portone_support import API_SECRET, WEBHOOK_SECRET
from pydantic import SecretStr

from payfallback.errors import ConfigurationError, InvalidRequest

OFFICIAL_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
OFFICIAL_ID = "msg_p5jXN8AQM9LWM0D4loKWxJek"
OFFICIAL_TS = 1614265330
OFFICIAL_BODY = b'{"test": 2432232314}'
OFFICIAL_SIGNATURE = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="

SENT_AT = datetime(2025, 3, 14, 5, 12, 31, tzinfo=UTC)
BODY = json.dumps(
    {
        "type": "Transaction.Paid",
        "timestamp": "2025-03-14T05:12:31.502Z",
        "data": {
            "storeId": "store-4ff4af41-85e3-4559-8eb8-0d08a2c6ceec",
            "paymentId": "ORDER123_1",
            "transactionId": "01936a8b-6c31-3c5b-a9e0-5a5c2b1f0e11",
        },
    },
    ensure_ascii=False,
).encode()


def sign(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    key = base64.b64decode(secret.removeprefix("whsec_"))
    mac = hmac.new(key, f"{msg_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()
    return "v1," + base64.b64encode(mac).decode()


def headers(signature: str, *, msg_id: str = "msg_2f3a", ts: int | None = None) -> dict[str, str]:
    stamp = int(SENT_AT.timestamp()) if ts is None else ts
    return {"webhook-id": msg_id, "webhook-timestamp": str(stamp), "webhook-signature": signature}


def portone_headers() -> dict[str, str]:
    return headers(sign(WEBHOOK_SECRET, "msg_2f3a", int(SENT_AT.timestamp()), BODY))


def test_the_standard_webhooks_vector() -> None:
    # The vector's signature is what our own signing helper computes, too.
    assert sign(OFFICIAL_SECRET, OFFICIAL_ID, OFFICIAL_TS, OFFICIAL_BODY) == OFFICIAL_SIGNATURE
    event = verify_webhook(
        headers(OFFICIAL_SIGNATURE, msg_id=OFFICIAL_ID, ts=OFFICIAL_TS),
        OFFICIAL_BODY,
        secret=SecretStr(OFFICIAL_SECRET),
        now=datetime.fromtimestamp(OFFICIAL_TS, tz=UTC),
    )
    assert event == {"test": 2432232314}


def test_a_portone_delivery_verifies_and_parses() -> None:
    event = verify_webhook(portone_headers(), BODY, secret=SecretStr(WEBHOOK_SECRET), now=SENT_AT)
    assert event["type"] == "Transaction.Paid"
    assert event["data"]["paymentId"] == "ORDER123_1"


def test_the_secret_works_without_its_prefix_and_as_str() -> None:
    bare = WEBHOOK_SECRET.removeprefix("whsec_")
    assert verify_webhook(portone_headers(), BODY, secret=bare, now=SENT_AT)["data"]


def test_header_names_are_case_insensitive() -> None:
    upper = {k.upper(): v for k, v in portone_headers().items()}
    assert verify_webhook(upper, BODY, secret=WEBHOOK_SECRET, now=SENT_AT)["type"]


def test_any_matching_v1_entry_is_enough() -> None:
    good = portone_headers()["webhook-signature"]
    rotated = f"v1,Ceo5qEr07ixe2NLpvHk3FH9bwy/WavXrAFQ/9tdO6mc= v2,abc v1,!!notbase64 {good}"
    assert verify_webhook(headers(rotated), BODY, secret=WEBHOOK_SECRET, now=SENT_AT)["type"]


@pytest.mark.parametrize(
    ("mutate", "reason"),
    [
        (lambda h: h.pop("webhook-id"), "MISSING_REQUIRED_HEADERS"),
        (lambda h: h.pop("webhook-timestamp"), "MISSING_REQUIRED_HEADERS"),
        (lambda h: h.pop("webhook-signature"), "MISSING_REQUIRED_HEADERS"),
        (lambda h: h.update({"webhook-signature": ""}), "MISSING_REQUIRED_HEADERS"),
        (lambda h: h.update({"webhook-timestamp": "hello"}), "INVALID_TIMESTAMP"),
        (lambda h: h.update({"webhook-id": "msg_other"}), "NO_MATCHING_SIGNATURE"),
        (
            lambda h: h.update({"webhook-signature": h["webhook-signature"].replace("v1,", "v2,")}),
            "NO_MATCHING_SIGNATURE",
        ),
    ],
)
def test_malformed_deliveries_are_refused(mutate: object, reason: str) -> None:
    h = portone_headers()
    mutate(h)  # type: ignore[operator]
    with pytest.raises(WebhookSignatureError) as caught:
        verify_webhook(h, BODY, secret=WEBHOOK_SECRET, now=SENT_AT)
    assert caught.value.reason == reason
    assert caught.value.provider_code == reason
    assert isinstance(caught.value, InvalidRequest)


def test_a_tampered_or_reencoded_body_is_refused() -> None:
    reencoded = json.dumps(json.loads(BODY), separators=(",", ":")).encode()  # compacted
    for body in (BODY.replace(b"ORDER123_1", b"ORDER999_1"), reencoded, BODY + b"\n"):
        with pytest.raises(WebhookSignatureError, match="no v1 signature matches"):
            verify_webhook(portone_headers(), body, secret=WEBHOOK_SECRET, now=SENT_AT)


def test_the_wrong_secret_is_refused() -> None:
    other = "whsec_" + base64.b64encode(b"another-secret-entirely").decode()
    with pytest.raises(WebhookSignatureError) as caught:
        verify_webhook(portone_headers(), BODY, secret=other, now=SENT_AT)
    assert caught.value.reason == "NO_MATCHING_SIGNATURE"


@pytest.mark.parametrize(
    ("offset", "reason"),
    [
        (timedelta(minutes=5, seconds=1), "TIMESTAMP_TOO_OLD"),
        (-timedelta(minutes=5, seconds=1), "TIMESTAMP_TOO_NEW"),
    ],
)
def test_timestamps_outside_the_tolerance_are_refused(offset: timedelta, reason: str) -> None:
    with pytest.raises(WebhookSignatureError) as caught:
        verify_webhook(portone_headers(), BODY, secret=WEBHOOK_SECRET, now=SENT_AT + offset)
    assert caught.value.reason == reason


@pytest.mark.parametrize("offset", [timedelta(minutes=5), -timedelta(minutes=5), timedelta(0)])
def test_timestamps_at_the_tolerance_are_accepted(offset: timedelta) -> None:
    assert verify_webhook(portone_headers(), BODY, secret=WEBHOOK_SECRET, now=SENT_AT + offset)


def test_the_tolerance_can_be_set() -> None:
    late = SENT_AT + timedelta(minutes=9)
    with pytest.raises(WebhookSignatureError):
        verify_webhook(portone_headers(), BODY, secret=WEBHOOK_SECRET, now=late)
    tolerant = timedelta(minutes=10)
    assert verify_webhook(
        portone_headers(), BODY, secret=WEBHOOK_SECRET, now=late, tolerance=tolerant
    )


@pytest.mark.parametrize("secret", ["whsec_%%%not-base64%%%", "whsec_", ""])
def test_an_unusable_secret_is_a_configuration_error(secret: str) -> None:
    with pytest.raises(ConfigurationError):
        verify_webhook(portone_headers(), BODY, secret=secret, now=SENT_AT)


@pytest.mark.parametrize("body", [b"not json", b"[1, 2]", b"\xff\xfe"])
def test_a_signed_body_that_is_not_a_json_object_is_invalid(body: bytes) -> None:
    h = headers(sign(WEBHOOK_SECRET, "msg_2f3a", int(SENT_AT.timestamp()), body))
    with pytest.raises(InvalidRequest) as caught:
        verify_webhook(h, body, secret=WEBHOOK_SECRET, now=SENT_AT)
    assert not isinstance(caught.value, WebhookSignatureError)


def test_failures_never_echo_the_secret_body_or_signature() -> None:
    h = portone_headers()
    h["webhook-id"] = "msg_other"
    with pytest.raises(WebhookSignatureError) as caught:
        verify_webhook(h, BODY, secret=WEBHOOK_SECRET, now=SENT_AT)
    text = f"{caught.value} {caught.value!r}"
    for leak in (
        WEBHOOK_SECRET,
        WEBHOOK_SECRET.removeprefix("whsec_"),
        "ORDER123_1",
        h["webhook-signature"],
    ):
        assert leak not in text


def test_the_adapter_verifies_with_its_configured_secret(portone: PortOne) -> None:
    assert (
        portone.verify_webhook(portone_headers(), BODY, now=SENT_AT)["type"] == "Transaction.Paid"
    )
    without = PortOne(api_secret=API_SECRET)
    with pytest.raises(ConfigurationError, match="no webhook_secret configured"):
        without.verify_webhook(portone_headers(), BODY, now=SENT_AT)


# -- malformed timestamps: always the verifier's own error, never a crash ----------------------


@pytest.mark.parametrize(
    "stamp",
    [
        str(10**30),  # huge: would overflow a datetime
        str(int(SENT_AT.timestamp()) * 1000),  # milliseconds (13 digits)
        "-1614265330",  # negative
        "1614265330.5",  # fractional
        "1.6e9",
        "   ",  # blank after trimming
        "\u0661\u0666\u0661\u0664\u0662\u0666\u0665\u0663\u0663\u0660",  # Arabic-Indic digits
        "\uff11\uff16\uff11\uff14\uff12\uff16\uff15\uff13\uff13\uff10",  # fullwidth digits
        "\u00b2",  # a superscript: str.isdigit() says yes, int() says no
        "0x60365f32",
        "+1614265330",
    ],
)
def test_a_malformed_timestamp_is_a_verification_error(stamp: str) -> None:
    h = portone_headers()
    h["webhook-timestamp"] = stamp
    with pytest.raises(WebhookSignatureError) as caught:
        verify_webhook(h, BODY, secret=WEBHOOK_SECRET, now=SENT_AT)
    assert caught.value.reason == "INVALID_TIMESTAMP"
    assert caught.value.message == "webhook rejected: webhook-timestamp is not Unix seconds"


def test_an_empty_timestamp_is_a_missing_header() -> None:
    h = portone_headers()
    h["webhook-timestamp"] = ""
    with pytest.raises(WebhookSignatureError) as caught:
        verify_webhook(h, BODY, secret=WEBHOOK_SECRET, now=SENT_AT)
    assert caught.value.reason == "MISSING_REQUIRED_HEADERS"


@pytest.mark.parametrize(
    ("stamp", "reason"),
    [("0", "TIMESTAMP_TOO_OLD"), ("999999999999", "TIMESTAMP_TOO_NEW")],
)
def test_the_extremes_of_the_accepted_form_are_compared_not_converted(
    stamp: str, reason: str
) -> None:
    h = portone_headers()
    h["webhook-timestamp"] = stamp
    with pytest.raises(WebhookSignatureError) as caught:
        verify_webhook(h, BODY, secret=WEBHOOK_SECRET, now=SENT_AT)
    assert caught.value.reason == reason


def test_a_webhook_id_that_is_not_text_is_refused() -> None:
    h = portone_headers()
    h["webhook-id"] = "msg_\ud800"  # a lone surrogate cannot be encoded, so never signed
    with pytest.raises(WebhookSignatureError) as caught:
        verify_webhook(h, BODY, secret=WEBHOOK_SECRET, now=SENT_AT)
    assert caught.value.reason == "NO_MATCHING_SIGNATURE"


def test_a_signed_body_nested_too_deep_is_invalid_not_a_crash() -> None:
    body = b"[" * 100_000 + b"]" * 100_000
    h = headers(sign(WEBHOOK_SECRET, "msg_2f3a", int(SENT_AT.timestamp()), body))
    with pytest.raises(InvalidRequest) as caught:
        verify_webhook(h, body, secret=WEBHOOK_SECRET, now=SENT_AT)
    assert not isinstance(caught.value, WebhookSignatureError)
