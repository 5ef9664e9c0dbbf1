"""Errors, arranged by one question: *could the provider have acted?*

```
PayfallbackError
 ├── Declined              the provider answered "no": card refused, balance short, user
 │                         cancelled. A customer outcome: never retried, never rerouted,
 │                         never counted against the provider's health.
 ├── ProviderUnavailable   the request certainly did not take effect: connection refused,
 │    │                    connect or pool timeout, 503/maintenance before processing, rate
 │    │                    limited, breaker open. Safe to retry later and to reroute now.
 │    └── AllProvidersUnavailable
 │                         every candidate was skipped or failed; `.skipped` says why each.
 ├── OutcomeUnknown        it may have taken effect: read/write timeout after the request
 │    │                    left, 5xx on a money-moving call, a success body missing what we
 │    │                    need, an unmapped code. Resolved by a status inquiry or an
 │    │                    idempotent replay, never by a blind second attempt.
 │    └── RequestInFlight  the provider is still running the first request with this
 │                         idempotency key; a replay with the same key later answers.
 ├── InvalidRequest        our side is wrong (bad amount, unknown currency, refund larger
 │                         than what is left). Says what to fix; nothing was sent.
 ├── JournalUnavailable    the journal's own database failed (a full disk, a database
 │                         restarting) before anything was sent. A journal failure after a
 │                         request went out is an OutcomeUnknown.
 └── ConfigurationError    the integration is wrong (bad or revoked key, unknown merchant
                           id, provider not installed). Counts against provider health.
```

Every error carries, keyword-only, the provider, the operation, our attempt id, the
provider's code and the provider's request id. None of them ever carries a request or
response body, a header, a key or a card number: messages are written by us, and any text
that comes from a provider is passed through :func:`payfallback.events.scrub` first.
"""

from __future__ import annotations

from collections.abc import Mapping

__all__ = [
    "AllProvidersUnavailable",
    "ConfigurationError",
    "Declined",
    "InvalidRequest",
    "JournalUnavailable",
    "OutcomeUnknown",
    "PayfallbackError",
    "ProviderUnavailable",
    "RequestInFlight",
]


class PayfallbackError(Exception):
    """Base of every error payfallback raises."""

    #: Whether the provider may have acted on the request (see the tree above).
    may_have_acted: bool = False

    def __init__(
        self,
        message: str,
        *,
        provider: str | None = None,
        operation: str | None = None,
        attempt_id: str | None = None,
        provider_code: str | None = None,
        provider_request_id: str | None = None,
        retry_after: float | None = None,
        user_message: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        #: The provider's own words for the customer, as it said them (a Korean card
        #: decline such as "한도초과"), for the cashier's screen; like stripe-python's
        #: ``user_message``. ``message`` is ours, in English, for the log.
        self.user_message = user_message
        self.provider = provider
        self.operation = operation
        self.attempt_id = attempt_id
        self.provider_code = provider_code
        self.provider_request_id = provider_request_id
        #: Seconds the provider asked us to wait (``Retry-After``), if it said.
        self.retry_after = retry_after

    def __str__(self) -> str:
        # Request id first, as stripe-python does: it is what support asks for.
        prefix = f"Request {self.provider_request_id}: " if self.provider_request_id else ""
        where = ", ".join(
            f"{k}={v}"
            for k, v in (
                ("provider", self.provider),
                ("operation", self.operation),
                ("attempt", self.attempt_id),
                ("code", self.provider_code),
            )
            if v
        )
        return f"{prefix}{self.message}" + (f" ({where})" if where else "")

    def __repr__(self) -> str:
        return f"{type(self).__name__}({str(self)!r})"

    def context(self) -> dict[str, str]:
        """The identifying fields, for events and journal rows (never secret)."""
        fields = {
            "provider": self.provider,
            "operation": self.operation,
            "attempt_id": self.attempt_id,
            "provider_code": self.provider_code,
            "provider_request_id": self.provider_request_id,
        }
        return {k: v for k, v in fields.items() if v is not None}


class Declined(PayfallbackError):
    """The provider answered and said no; the customer may try another card or wallet."""


class ProviderUnavailable(PayfallbackError):
    """The request certainly did not take effect; retrying or rerouting is safe."""


class AllProvidersUnavailable(ProviderUnavailable):
    """No provider could take the payment; ``skipped`` maps each provider to the reason."""

    def __init__(self, message: str, *, skipped: Mapping[str, str], **kwargs: object) -> None:
        reasons = "; ".join(f"{p}: {why}" for p, why in skipped.items()) or "none configured"
        super().__init__(f"{message} [{reasons}]", **kwargs)  # type: ignore[arg-type]
        self.skipped: dict[str, str] = dict(skipped)


class OutcomeUnknown(PayfallbackError):
    """The provider may have acted; the outcome is being (or must be) resolved by lookup."""

    may_have_acted = True


class RequestInFlight(OutcomeUnknown):
    """The provider is still processing the first request with this idempotency key (Toss
    ``409 IDEMPOTENT_REQUEST_PROCESSING``); replaying it with the same key after
    ``retry_after`` returns the first request's answer."""


class InvalidRequest(PayfallbackError):
    """The request is wrong on our side; the message says what to fix. Nothing was sent."""


class JournalUnavailable(PayfallbackError):
    """The journal's own database failed (a full disk, a database restarting) before any
    request of the call was sent: nothing was charged. The driver's error is its
    ``__cause__``. Take the payment again once the journal works."""


class ConfigurationError(PayfallbackError):
    """Credentials or settings are wrong; fix the configuration. Counts against health."""
