"""The decision core: every routing, retry, lookup and compensation decision, written once.

Each Router operation is a generator ("flow") that yields I/O actions — send, sleep, ask
the journal (``payfallback._flow``) — and receives their results. The
:class:`~payfallback.AsyncRouter` and the :class:`~payfallback.Router` only carry actions
out (``payfallback/router.py``), so sync and async behave identically by construction.
Breakers, the retry budget, events and the clock are in-memory and never block, so flows
call them directly.

The core is layered, each layer a class the next one extends:

* ``payfallback._calls.ProviderCalls`` — talking to a provider: send with retries, look
  up, resolve an unknown outcome (the proof rule), void, journal what happened, keys;
* ``payfallback._refunds.Refunds`` — refunds and compensation;
* :class:`Core` (here) — the Router's operations: charge, checkout, recover.

The money rules live here:

1. An attempt is journaled (``PENDING``) before its request is built and sent.
2. Only ``ProviderUnavailable`` (certainly not taken effect) is retried or rerouted.
3. ``OutcomeUnknown`` is resolved by status inquiry (and, where the provider keys requests
   by an idempotency header, by replaying the same request with the same key). Until it
   is resolved the order goes nowhere else — unless the merchant opted in to *reroute
   with compensation* and the provider can be asked about the attempt later; then the
   attempt stays journaled as ``UNKNOWN`` and :meth:`Core.recover` refunds it if it turns
   out to have succeeded.
4. An order's payment is recorded under a database constraint; a second success becomes
   ``SUPERSEDED`` and a compensation refund is journaled before it is sent.
5. A refund is journaled ``OWED`` before its cancel is sent and stays owed until the
   provider confirms it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from functools import partial
from typing import TypeVar

from payfallback._calls import (
    _NOTHING_MOVED,
    _OPEN_CHECKOUT,
    CoreConfig,
    Resolved,
    _method,
    _paid_charge,
    _raise_configuration,
    _request_secrets,
    _require_order,
)
from payfallback._flow import (
    Choice,
    Done,
    FlowGen,
    InFlight,
    JournalCall,
    RecoveryReport,
    Send,
    Sent,
    Sleep,
    advance,
    ask,
)
from payfallback._refunds import Refunds
from payfallback.errors import (
    AllProvidersUnavailable,
    ConfigurationError,
    Declined,
    InvalidRequest,
    OutcomeUnknown,
    PayfallbackError,
    ProviderUnavailable,
)
from payfallback.journal import (
    AttemptInFlight,
    AttemptsOpen,
    CheckoutState,
    OrderAlreadyPaid,
)
from payfallback.journal._checks import attempt_is_open
from payfallback.models import (
    Attempt,
    AttemptState,
    CheckoutSession,
    Instrument,
    Method,
    Order,
    Payment,
    Platform,
    RefundState,
    ReturnUrls,
)
from payfallback.provider import (
    ApproveRequest,
    ChargeRequest,
    Failed,
    Flow,
    Operation,
    Outcome,
    Proof,
    Provider,
    ReadyRequest,
    Redirect,
    Status,
)

__all__ = [
    "Choice",
    "Core",
    "CoreConfig",
    "Done",
    "FlowGen",
    "InFlight",
    "JournalCall",
    "RecoveryReport",
    "Send",
    "Sent",
    "Sleep",
    "advance",
]

T = TypeVar("T")


def _nothing_to_check_out(order: Order, paid: Payment) -> InvalidRequest:
    return InvalidRequest(
        f"order {order.order_id} is already paid ({paid.payment_id}); nothing to check out"
    )


class Core(Refunds):
    """Pure decision logic shared by Router and AsyncRouter. Holds no I/O handles."""

    def charge(self, order: Order, instruments: Sequence[Instrument]) -> FlowGen[Payment]:
        if not instruments:
            raise InvalidRequest(
                "charge() needs at least one Instrument (a billing key at a provider)"
            )
        for inst in instruments:
            if not isinstance(inst, Instrument):
                raise InvalidRequest(
                    "charge() takes a list of Instrument(provider=..., billing_key=...), got "
                    f"a {type(inst).__name__}"
                )
            p = self._provider(inst.provider)
            caps = p.capabilities
            if Flow.SERVER_CHARGE not in caps.flows:
                raise InvalidRequest(
                    f"provider {p.name!r} does not support server-side charges; use "
                    "start_checkout() for it"
                )
            if order.amount.currency not in caps.currencies:
                raise InvalidRequest(
                    f"provider {p.name!r} does not take {order.amount.currency} "
                    f"(takes {', '.join(sorted(caps.currencies))})"
                )
        _require_order(order)
        self.budget.record_request()
        skipped: dict[str, str] = {}
        tried: list[PayfallbackError] = []
        previous: str | None = None
        # The journal is asked nothing before the first attempt is written: begin_attempt
        # checks the order, its payment, a live lease and attempts of unknown outcome in
        # the one transaction that journals the attempt. Only when the order has such
        # attempts are they settled (by lookup, replay or void), and the attempt begun
        # again.
        settled = False
        queue = list(instruments)
        while queue:
            inst = queue[0]
            provider = self.providers[inst.provider]
            breaker = self.breakers.get(provider.name, inst.method.value)
            adm = breaker.admit()
            if not adm.allowed:
                queue.pop(0)
                skipped[provider.name] = adm.reason or "breaker open"
                self.events.emit(
                    "payment.skipped",
                    order_id=order.order_id,
                    provider=provider.name,
                    method=inst.method.value,
                    reason=skipped[provider.name],
                )
                continue
            key = self._mint_key(provider)
            try:
                attempt = yield from ask(
                    "begin_attempt",
                    order,
                    provider=provider.name,
                    method=inst.method,
                    operation=Operation.CHARGE.value,
                    idempotency_key=key,
                    lease_seconds=self.config.lease_seconds,
                    settle_first=not settled,
                )
            except OrderAlreadyPaid as exc:
                breaker.release(adm)
                return self._duplicate(exc.payment)
            except AttemptInFlight as exc:
                breaker.release(adm)
                return (yield from self._wait_in_flight(order, exc))
            except AttemptsOpen:
                breaker.release(adm)
                settled = True
                paid = yield from self._settle_open_attempts(order, instruments)
                if paid is not None:
                    return paid
                continue
            except BaseException:
                # Refused (a changed order) or not written: nothing was sent, and a
                # half-open breaker's probe slot is free again at once.
                breaker.release(adm)
                raise
            settled = True
            queue.pop(0)
            if previous is not None:
                self.events.emit(
                    "payment.rerouted",
                    order_id=order.order_id,
                    from_provider=previous,
                    to_provider=provider.name,
                    reason=skipped.get(previous, ""),
                )
            req = ChargeRequest(
                attempt_id=attempt.attempt_id,
                order=order,
                instrument=inst,
                idempotency_key=attempt.idempotency_key,
            )
            result = yield from self._run_attempt(
                provider,
                breaker,
                adm,
                attempt,
                order,
                inst.method,
                Operation.CHARGE,
                partial(provider.build_charge, req),
                partial(provider.parse_charge, req),
                None,
                _request_secrets(req),
            )
            if isinstance(result, Payment):
                return result
            previous = provider.name
            if isinstance(result, Declined):
                self._emit_declined(order, provider, result)
                raise result
            if isinstance(result, InvalidRequest):
                raise result
            if isinstance(result, OutcomeUnknown):
                if self.config.compensate and provider.capabilities.lookup_by_order_id:
                    skipped[provider.name] = "outcome unknown; will be refunded if it went through"
                    continue
                raise OutcomeUnknown(
                    f"the charge at {provider.name} may have gone through and could not be "
                    "confirmed yet; it is journaled and will not be sent elsewhere — call "
                    "charge() again or recover() later",
                    **result.context(),  # type: ignore[arg-type]
                )
            skipped[provider.name] = result.message
            tried.append(result)
        if not settled:
            # No breaker admitted anything, so the journal was not asked: a paid order is
            # still paid, a changed one still refused, and attempts of unknown outcome are
            # still settled (by lookup) before the shop hears "no provider".
            paid = yield from self._check_same_order(order)
            if paid is not None:
                return self._duplicate(paid)
            paid = yield from self._settle_open_attempts(order, instruments)
            if paid is not None:
                return paid
        _raise_configuration(tried, skipped)
        raise AllProvidersUnavailable(
            f"no provider could charge order {order.order_id}", skipped=skipped
        )

    def _settle_open_attempts(
        self, order: Order, instruments: Sequence[Instrument]
    ) -> FlowGen[Payment | None]:
        """Before a new attempt: resolve this order's attempts of unknown outcome — by
        lookup, then by replaying the charge with its own key where that proves it."""
        attempts = yield from ask("attempts_for_order", order.order_id)
        now = self.clock.now()
        for attempt in attempts:
            if attempt.state not in (AttemptState.UNKNOWN, AttemptState.PENDING):
                continue
            saved = True
            if attempt.state == AttemptState.PENDING and attempt.operation == Operation.READY.value:
                saved = (yield from ask("get_checkout", attempt.attempt_id)) is not None
                if not saved:
                    continue  # a checkout being started: no money moves at ready
            if not attempt_is_open(attempt, now, checkout_saved=saved):
                # Pending with a live lease: another worker is sending it right now. Wait
                # for its result.
                in_flight = AttemptInFlight(order.order_id, attempt.attempt_id)
                return (yield from self._wait_in_flight(order, in_flight))
            provider = self.providers.get(attempt.provider)
            if provider is None:
                raise ConfigurationError(
                    f"order {order.order_id} has an unresolved attempt at {attempt.provider!r}, "
                    "which is not configured on this Router; add it so the attempt can be "
                    "looked up"
                )
            res = yield from self._resolve(provider, attempt, order, attempt.provider_txn_id)
            if res.state is Resolved.PAID and res.approved is not None:
                result = yield from self._succeed(
                    provider, attempt, order, attempt.method, res.approved
                )
                if isinstance(result, Payment):
                    return result
            elif res.state is Resolved.NOT_PAID:
                yield from self._finish(
                    attempt,
                    AttemptState.FAILED,
                    ProviderUnavailable("the provider's record proves no payment was made"),
                    recheck=True,
                )
            else:
                replayed = yield from self._replay_charge(provider, attempt, order, instruments)
                if isinstance(replayed, Payment):
                    return replayed
                if isinstance(replayed, Declined):
                    raise replayed
                if replayed is None and (yield from self._void_open(provider, attempt, order)):
                    continue
                if replayed is None or isinstance(replayed, OutcomeUnknown):
                    if self.config.compensate and provider.capabilities.lookup_by_order_id:
                        continue
                    raise OutcomeUnknown(
                        f"order {order.order_id} has an earlier attempt at {attempt.provider} "
                        "whose outcome is still unknown; it will not be charged elsewhere "
                        "until that is resolved — try again later or run recover()",
                        attempt_id=attempt.attempt_id,
                        provider=attempt.provider,
                    )
        return None

    def _paid_elsewhere(self, attempt: Attempt, order: Order) -> FlowGen[bool]:
        """An unresolved attempt of an order another attempt already paid (reroute with
        compensation): nothing waits on it any more, so it stops counting as open and is
        watched instead — if it turns out charged within ``recheck_window``, the charge is
        refunded like any late charge. Its order is never charged again because of it."""
        paid = yield from ask("payment_for_order", order.order_id)
        if paid is None or paid.attempt_id == attempt.attempt_id:
            return False
        yield from self._finish(
            attempt,
            AttemptState.FAILED,
            ProviderUnavailable(
                f"outcome not proven; order paid by {paid.attempt_id}, so this attempt is "
                "watched for a late charge, refunded if one shows up"
            ),
            recheck=True,
        )
        return True

    def _void_open(self, provider: Provider, attempt: Attempt, order: Order) -> FlowGen[bool]:
        """Net-cancel a journaled attempt of unknown outcome where the provider offers it;
        True when acknowledged (the attempt then ends failed, still watched)."""
        if not (yield from self._void(provider, attempt, order, attempt.provider_txn_id)):
            return False
        yield from self._finish(
            attempt,
            AttemptState.FAILED,
            ProviderUnavailable("the provider acknowledged a void of the attempt"),
            recheck=True,
        )
        return True

    def _replay_charge(
        self,
        provider: Provider,
        attempt: Attempt,
        order: Order,
        instruments: Sequence[Instrument],
    ) -> FlowGen[Payment | PayfallbackError | None]:
        """Replay an unresolved charge with its own idempotency key, where the provider
        answers a replay with the first request's outcome (``Proof.REPLAY``). Needs the
        caller's instrument (billing keys are never journaled); None when it cannot."""
        if Proof.REPLAY not in provider.capabilities.proofs:
            return None
        if attempt.operation != Operation.CHARGE.value:
            return None
        inst = next(
            (i for i in instruments if i.provider == provider.name and i.method == attempt.method),
            None,
        )
        if inst is None:
            return None
        aid = attempt.attempt_id
        # Claimed and PENDING in one write, before the replay is sent.
        claimed = yield from ask("renew_lease", aid, self.config.lease_seconds, pending=True)
        if not claimed:
            return None  # another worker is on it
        req = ChargeRequest(
            attempt_id=aid, order=order, instrument=inst, idempotency_key=attempt.idempotency_key
        )
        breaker = self.breakers.get(provider.name, inst.method.value)
        earlier = OutcomeUnknown(
            attempt.error_message or "an earlier request's outcome is unknown",
            provider=provider.name,
            operation=Operation.CHARGE.value,
            attempt_id=aid,
        )
        return (
            yield from self._run_attempt(
                provider,
                breaker,
                self._unconditional(provider.name, inst.method.value),
                attempt,
                order,
                inst.method,
                Operation.CHARGE,
                lambda: provider.build_charge(req),
                lambda r: provider.parse_charge(req, r),
                None,
                _request_secrets(req),
                uncertain=earlier,
            )
        )

    # -- redirect checkout ---------------------------------------------------------------------

    def start_checkout(
        self,
        order: Order,
        method: Method,
        return_urls: ReturnUrls,
        platform: Platform,
        fallback_methods: Sequence[Method] | None,
    ) -> FlowGen[CheckoutSession]:
        method = _method(method, "method")
        if fallback_methods is not None:
            fallback_methods = [_method(m, "fallback_methods") for m in fallback_methods]
        if not isinstance(return_urls, ReturnUrls):
            raise InvalidRequest(
                "return_urls must be ReturnUrls(success=..., cancel=..., fail=...), got "
                f"{type(return_urls).__name__}"
            )
        methods = [
            method,
            *(
                fallback_methods
                if fallback_methods is not None
                else self.config.fallback_methods.get(method, ())
            ),
        ]
        candidates = [
            (p, m)
            for m in methods
            for p in self.providers.values()
            if m in p.capabilities.methods and Flow.REDIRECT in p.capabilities.flows
        ]
        if not candidates:
            raise InvalidRequest(
                f"no configured provider offers {method.value} checkout; configured: "
                + ", ".join(
                    f"{p.name} ({', '.join(sorted(m.value for m in p.capabilities.methods))})"
                    for p in self.providers.values()
                )
            )
        _require_order(order)
        # As for a charge, the journal is asked nothing before the attempt is written:
        # begin_attempt refuses a changed order and answers a paid one.
        begun = False
        skipped: dict[str, str] = {}
        tried: list[PayfallbackError] = []
        for provider, m in candidates:
            breaker = self.breakers.get(provider.name, m.value)
            adm = breaker.admit()
            label = f"{provider.name}/{m.value}"
            if not adm.allowed:
                skipped[label] = adm.reason or "breaker open"
                self.events.emit(
                    "payment.skipped",
                    order_id=order.order_id,
                    provider=provider.name,
                    method=m.value,
                    reason=skipped[label],
                )
                continue
            try:
                attempt = yield from ask(
                    "begin_attempt",
                    order,
                    provider=provider.name,
                    method=m,
                    operation=Operation.READY.value,
                    idempotency_key=self._mint_key(provider),
                    lease_seconds=self.config.lease_seconds,
                )
            except OrderAlreadyPaid as exc:
                breaker.release(adm)
                raise _nothing_to_check_out(order, exc.payment) from None
            except AttemptInFlight as exc:
                # Another worker is sending this order's payment: its result decides. Paid,
                # there is nothing to check out; otherwise OutcomeUnknown (ask again).
                breaker.release(adm)
                paid = yield from self._wait_in_flight(order, exc)
                raise _nothing_to_check_out(order, paid) from None
            except BaseException:
                breaker.release(adm)  # nothing sent: the probe slot is free again
                raise
            begun = True
            req = ReadyRequest(
                attempt_id=attempt.attempt_id,
                order=order,
                method=m,
                return_urls=return_urls,
                idempotency_key=attempt.idempotency_key,
                platform=platform,
            )
            outcome: Outcome
            try:
                request = provider.build_ready(req)
            except PayfallbackError as exc:
                outcome = Failed(exc)
                request = None
                breaker.release(adm)
            else:
                if request is None:
                    outcome = provider.parse_ready(req, None)
                    breaker.release(adm)
                else:
                    outcome, duration, hard = yield from self._send(
                        provider,
                        request,
                        Operation.READY,
                        attempt.attempt_id,
                        self._timeouts(provider, adm, money=False),
                        partial(provider.parse_ready, req),
                    )
                    self._record(breaker, adm, outcome, duration, hard)
            if isinstance(outcome, Redirect):
                session = CheckoutSession(
                    session_id=attempt.attempt_id,
                    order_id=order.order_id,
                    provider=provider.name,
                    method=m,
                    provider_txn_id=outcome.provider_txn_id,
                    redirect_urls=dict(outcome.redirect_urls),
                    client_params=dict(outcome.client_params),
                    expires_at=outcome.expires_at,
                    fallback_from=dict(skipped),
                )
                yield from ask("save_checkout", session)
                self.events.emit(
                    "checkout.started",
                    order_id=order.order_id,
                    session_id=session.session_id,
                    provider=provider.name,
                    method=m.value,
                    fell_back=bool(skipped),
                )
                return session
            error = (
                outcome.error
                if isinstance(outcome, Failed)
                else OutcomeUnknown(
                    f"unexpected {type(outcome).__name__} answer to ready", provider=provider.name
                )
            )
            # No money moves at ready: whatever happened, this attempt is over.
            yield from self._finish(attempt, AttemptState.FAILED, error)
            if isinstance(error, Declined | InvalidRequest):
                raise error
            skipped[label] = error.message
            tried.append(error)
            self.events.emit(
                "payment.rerouted",
                order_id=order.order_id,
                from_provider=provider.name,
                reason=error.message,
            )
        if not begun:
            # No breaker admitted anything, so the journal was not asked: a paid order is
            # still paid and a changed one still refused.
            journaled = yield from self._check_same_order(order)
            if journaled is not None:
                raise _nothing_to_check_out(order, journaled)
        _raise_configuration(tried, skipped)
        raise AllProvidersUnavailable(
            f"no provider could start a {method.value} checkout for order {order.order_id}",
            skipped=skipped,
        )

    def complete_checkout(
        self, session_id: str, callback_params: Mapping[str, str]
    ) -> FlowGen[Payment]:
        # The session, its order and attempt, and the order's payment: one read.
        found: CheckoutState | None = yield from ask("checkout_state", session_id)
        if found is None:
            raise InvalidRequest(
                f"unknown checkout session {session_id!r}; use the session_id returned by "
                "start_checkout()"
            )
        session, order, attempt, paid = found.session, found.order, found.attempt, found.payment
        if paid is not None:
            # Paid already (this session, a repeated callback, or another session): do not
            # approve again; the order's payment is the answer.
            yield from self._settle_second_checkout(session, attempt, order, callback_params, paid)
            return self._duplicate(paid)
        provider = self._provider(session.provider)
        if attempt.state not in _OPEN_CHECKOUT:
            raise InvalidRequest(
                f"checkout session {session_id} is {attempt.state.value}; start a new checkout"
            )
        txn_id = session.provider_txn_id
        param = provider.capabilities.callback_txn_id_param
        if txn_id is None and param is not None and callback_params.get(param):
            txn_id = callback_params[param]
        req = ApproveRequest(
            attempt_id=session_id,
            order=order,
            method=session.method,
            provider_txn_id=txn_id,
            callback_params=dict(callback_params),
            idempotency_key=self._derived_key(provider, attempt, "-approve"),
        )
        secrets = _request_secrets(req)
        # Read the return before anything is written: anyone can call a return URL, so a
        # hit that says "failed" or carries a wrong amount must not end or block the
        # checkout — the genuine return still completes it.
        try:
            request = provider.build_approve(req)
        except Declined as exc:
            self._clean(provider, exc, secrets)
            return (yield from self._failed_return(provider, session, attempt, order, txn_id, exc))
        except PayfallbackError as exc:
            raise self._clean(provider, exc, secrets) from None
        # An attempt of unknown outcome is resolved before anything is sent; any other is
        # claimed and back to PENDING for the approval in one write, holding the order's
        # lease.
        try:
            claimed = yield from ask(
                "renew_lease",
                session_id,
                self.config.lease_seconds,
                pending=attempt.state is not AttemptState.UNKNOWN,
            )
        except AttemptInFlight as exc:
            # Another attempt of the order is being sent (nothing was written): its result
            # is the answer, and this checkout stays open for the customer's next return.
            # If it paid the order, this return is one that came after the order was paid.
            paid = yield from self._wait_in_flight(order, exc)
            yield from self._settle_second_checkout(session, attempt, order, callback_params, paid)
            return paid
        if not claimed:
            return (
                yield from self._wait_in_flight(order, AttemptInFlight(order.order_id, session_id))
            )
        if attempt.state == AttemptState.UNKNOWN:
            res = yield from self._resolve(
                provider, attempt, order, attempt.provider_txn_id or txn_id
            )
            if res.state is Resolved.PAID and res.approved is not None:
                result = yield from self._succeed(
                    provider, attempt, order, session.method, res.approved
                )
                return self._raise_or_payment(result)
            if res.state is Resolved.UNKNOWN:
                raise OutcomeUnknown(
                    f"the approval of checkout {session_id} is still being resolved; "
                    "try again later",
                    provider=provider.name,
                    attempt_id=session_id,
                )
            # The lookups took time: renew the claim as the attempt goes back to PENDING.
            yield from self._journal_pending(attempt)
        breaker = self.breakers.get(provider.name, session.method.value)
        # The customer already approved there: never skip it, but let it count.
        adm = self._unconditional(provider.name, session.method.value)
        result = yield from self._run_attempt(
            provider,
            breaker,
            adm,
            attempt,
            order,
            session.method,
            Operation.APPROVE,
            lambda: request,
            lambda r: provider.parse_approve(req, r),
            txn_id,
            secrets,
            callback_params=req.callback_params,
        )
        if isinstance(result, ProviderUnavailable):
            # Certainly not approved: the customer may try the same session again.
            yield from ask("update_attempt", session_id, state=AttemptState.REDIRECTED)
        if isinstance(result, Declined):
            self._emit_declined(order, provider, result)
        if isinstance(result, Payment):
            self.events.emit(
                "checkout.completed",
                order_id=order.order_id,
                session_id=session_id,
                provider=provider.name,
            )
        return self._raise_or_payment(result)

    def _failed_return(
        self,
        provider: Provider,
        session: CheckoutSession,
        attempt: Attempt,
        order: Order,
        txn_id: str | None,
        declined: Declined,
    ) -> FlowGen[Payment]:
        """A return whose parameters say the payment failed. They are the browser's word,
        not the provider's: ask the provider. A payment it holds is recorded; otherwise the
        checkout stays open (the customer may pay again on it, and the genuine return still
        completes it) and the decline goes to the caller."""
        outcome = yield from self._lookup(
            provider, attempt, order, txn_id or attempt.provider_txn_id
        )
        approved = _paid_charge(outcome, txn_id or attempt.provider_txn_id)
        if approved is not None:
            result = yield from self._succeed(provider, attempt, order, session.method, approved)
            return self._raise_or_payment(result)
        self._emit_declined(order, provider, declined)
        raise declined

    def _settle_second_checkout(
        self,
        session: CheckoutSession,
        attempt: Attempt,
        order: Order,
        callback_params: Mapping[str, str],
        paid: Payment,
    ) -> FlowGen[None]:
        """``paid`` is the order's payment. If another checkout made it and this one is
        still open: where a provider's own page or SDK takes the money without our approve
        call (PortOne), this one may have been charged too: ask, and give it back
        (journaled first) if so."""
        if paid.attempt_id == session.session_id or attempt.state not in _OPEN_CHECKOUT:
            return
        provider = self._provider(session.provider)
        txn_id = session.provider_txn_id
        param = provider.capabilities.callback_txn_id_param
        if txn_id is None and param is not None and callback_params.get(param):
            txn_id = callback_params[param]
        outcome = yield from self._lookup(provider, attempt, order, txn_id)
        approved = _paid_charge(outcome, txn_id)
        if approved is not None:
            yield from self._succeed(provider, attempt, order, session.method, approved)
            return
        if isinstance(outcome, Status) and (
            # Never approved by us: nothing moved so far. Or an approve that may have
            # been sent, with proof that it did not go through.
            (attempt.state == AttemptState.REDIRECTED and outcome.state in _NOTHING_MOVED)
            or self._proves_nothing_moved(provider, outcome, self._sent_at(attempt))
        ):
            abandoned = Declined("the order was paid by another checkout")
            # The provider's own page may still charge it (PortOne): keep looking.
            yield from self._finish(attempt, AttemptState.FAILED, abandoned, recheck=True)
            return
        # Cannot tell now: keep it open for recover(), which compensates a late charge.
        aid = attempt.attempt_id
        yield from ask("update_attempt", aid, state=AttemptState.UNKNOWN)

    def recover(self) -> FlowGen[RecoveryReport]:
        report = RecoveryReport()
        unresolved = yield from ask("unresolved_attempts")
        for attempt in unresolved:
            aid = attempt.attempt_id
            claimed = yield from ask("renew_lease", aid, self.config.lease_seconds)
            if not claimed:
                # Another worker holds it now: open, and not ours to settle.
                held = yield from ask("get_attempt", aid)
                report.in_flight.append(
                    InFlight(
                        aid,
                        attempt.order_id,
                        attempt.provider,
                        held.lease_until if held is not None else None,
                    )
                )
                continue
            order = yield from ask("get_order", attempt.order_id)
            provider = self.providers.get(attempt.provider)
            if order is None or provider is None:
                report.still_unresolved.append(aid)
                continue
            if (
                attempt.operation == Operation.READY.value
                and attempt.state == AttemptState.PENDING
                and (yield from ask("get_checkout", aid)) is None
            ):
                # Crashed while starting a checkout: no money moves at ready. (A saved
                # checkout back at pending was sending its approval: that is looked up.)
                yield from self._finish(
                    attempt, AttemptState.FAILED, ProviderUnavailable("abandoned at ready")
                )
                report.resolved.append(aid)
                continue
            res = yield from self._resolve(provider, attempt, order, attempt.provider_txn_id)
            if res.state is Resolved.PAID and res.approved is not None:
                report.paid.append(aid)
                if attempt.state == AttemptState.SUPERSEDED:
                    refund = yield from self._compensate(
                        provider, attempt, order, res.approved, reason="order already paid"
                    )
                    if refund is not None:
                        report.compensations.append(refund.refund_id)
                else:
                    result = yield from self._succeed(
                        provider, attempt, order, attempt.method, res.approved
                    )
                    if not (isinstance(result, Payment) and result.attempt_id == aid):
                        report.compensations.append(f"cmp_{aid}")
                report.resolved.append(aid)
            elif res.state is Resolved.NOT_PAID:
                yield from self._finish(
                    attempt,
                    AttemptState.FAILED,
                    ProviderUnavailable("the provider's record proves no payment was made"),
                    recheck=True,
                )
                report.resolved.append(aid)
            elif attempt.state != AttemptState.SUPERSEDED and (
                (yield from self._void_open(provider, attempt, order))
                or (yield from self._paid_elsewhere(attempt, order))
            ):
                report.resolved.append(aid)
            else:
                # Still unknown. A crashed PENDING attempt becomes UNKNOWN, its settle window
                # counting from no earlier than now; either way the claim taken above ends,
                # so the POS's next charge() of the order can replay it at once.
                if attempt.state in (AttemptState.PENDING, AttemptState.UNKNOWN):
                    crashed = attempt.state == AttemptState.PENDING
                    yield from self._finish(attempt, AttemptState.UNKNOWN, None, sent=crashed)
                report.still_unresolved.append(aid)
        in_flight = yield from ask("in_flight_attempts")
        known = {f.attempt_id for f in report.in_flight}
        for attempt in in_flight:
            if attempt.attempt_id not in known and attempt.attempt_id not in report.resolved:
                report.in_flight.append(
                    InFlight(
                        attempt.attempt_id, attempt.order_id, attempt.provider, attempt.lease_until
                    )
                )
        yield from self._recheck_failed(report)
        owed = yield from ask("refunds_owed")
        for refund in owed:
            rid = refund.refund_id
            claimed = yield from self._claim_refund(refund)
            if not claimed:
                report.refunds_still_owed.append(rid)  # another worker is sending it
                continue
            order = yield from ask("get_order", refund.order_id)
            if order is None or refund.provider not in self.providers:
                report.refunds_still_owed.append(rid)
                continue
            try:
                done = yield from self._execute_refund(refund, order)
            except PayfallbackError:
                continue  # refused for good: journaled FAILED with its reason
            if done.state == RefundState.SUCCEEDED:
                report.refunds_settled.append(rid)
            else:
                report.refunds_still_owed.append(rid)
        self.events.emit(
            "recover.finished",
            resolved=len(report.resolved),
            paid=len(report.paid),
            compensations=len(report.compensations),
            refunds_settled=len(report.refunds_settled),
            still_unresolved=len(report.still_unresolved),
            refunds_still_owed=len(report.refunds_still_owed),
            in_flight=len(report.in_flight),
            late_charges=len(report.late_charges),
        )
        return report

    def _recheck_failed(self, report: RecoveryReport) -> FlowGen[None]:
        """Look again at attempts that ended failed after a request may have reached the
        provider (within ``recheck_window``): a charge that appears late is given back,
        journaled first — the caller was told it failed."""
        watched = yield from ask("attempts_to_recheck")
        for attempt in watched:
            provider = self.providers.get(attempt.provider)
            order = yield from ask("get_order", attempt.order_id)
            if provider is None or order is None:
                continue
            outcome = yield from self._lookup(provider, attempt, order, attempt.provider_txn_id)
            approved = _paid_charge(outcome, attempt.provider_txn_id)
            if approved is None:
                continue
            aid = attempt.attempt_id
            txn = approved.provider_txn_id
            if (yield from self._is_the_payment(provider.name, order, txn)):
                continue
            note = "charged after the attempt had ended failed; being given back"
            yield from ask(
                "update_attempt",
                aid,
                state=AttemptState.SUPERSEDED,
                provider_txn_id=txn,
                error_message=note,
            )
            self.events.emit(
                "payment.late_charge",
                order_id=order.order_id,
                attempt_id=aid,
                provider=provider.name,
                amount=approved.amount.amount,
            )
            refund = yield from self._compensate(
                provider, attempt, order, approved, reason="late charge on a failed attempt"
            )
            if refund is None:
                continue
            report.late_charges.append(aid)
            report.compensations.append(refund.refund_id)
            if refund.state != RefundState.SUCCEEDED:
                report.refunds_still_owed.append(refund.refund_id)
