"""Echo tests for an adapter's secrets: a provider answer that echoes every secret we sent,
in every string field, must leave none in what the adapter hands back.

A server may echo a value as it was sent, URL-escaped or JSON-escaped (:func:`forms`). An
adapter's secret tests build one text holding every secret in every form
(:func:`echo_text`), put it in every string field of a real answer but the few fields that
choose the parser's path (:func:`echoed`), parse, and check what comes out
(:func:`assert_no_secret`) — everything a caller, a log line or the journal could read off
the outcome or the error (:func:`outcome_texts`)::

    from payfallback.testing.secrets import assert_no_secret, echo_text, echoed

    def test_a_success_answer_echoing_secrets_keeps_them_out(provider, charge_req):
        request = provider.build_charge(charge_req)
        echo = echo_text(SECRET, BILLING_KEY, request)  # the request: headers, URL, body
        body = echoed(load("charge_paid"), echo, keep={"tid", "status"})
        outcome = provider.parse_charge(charge_req, httpx.Response(200, json=body))
        assert isinstance(outcome, Approved)
        assert_no_secret(outcome, (SECRET, BILLING_KEY), declared=provider.secrets)

The adapter's own credentials are declared in ``provider.secrets`` (pass it as
``declared``: none of its values, in any form it scrubs, may show); the request's own
secrets (a billing key, a one-time token) are listed in ``secrets``. Nothing here imports
pytest: a failed check raises :class:`AssertionError`.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Collection, Iterable, Mapping
from typing import Any
from urllib.parse import quote

import httpx

from payfallback.adapter import Secrets
from payfallback.errors import PayfallbackError
from payfallback.provider import Approved, Cancelled, Failed, Outcome, Redirect, Status

__all__ = [
    "assert_no_secret",
    "echo_text",
    "echoed",
    "forms",
    "header_text",
    "leaks",
    "outcome_texts",
]

#: What :func:`leaks` and :func:`assert_no_secret` read: an outcome or an error (read with
#: :func:`outcome_texts`), texts by where they were read, or plain text(s).
_Subject = Outcome | PayfallbackError | Mapping[str, str] | Iterable[str] | str

#: How many causes of an error are read: a log line with the traceback shows the chain.
_CHAIN_MAX = 8


def forms(value: str) -> tuple[str, ...]:
    """``value`` as sent, URL-escaped and JSON-escaped (as ``json.dumps`` writes it inside
    a string): the forms a server echoes a value in. Each form once, in that order."""
    return tuple(dict.fromkeys((value, quote(value, safe=""), json.dumps(value)[1:-1])))


def echo_text(*values: str | httpx.Request, prefix: str = "echo ") -> str:
    """One text holding every value in each of its :func:`forms`.

    A request stands for everything it carries: each header as a ``name: value`` line and
    its value alone (the ``Authorization`` value an adapter built), the URL (a billing key
    in the path) and the body, so an answer pasting the request back is tried too.
    """
    texts: list[str] = []
    for value in values:
        if isinstance(value, httpx.Request):
            texts.extend(_request_texts(value))
        else:
            texts.append(value)
    return prefix + " | ".join(form for text in texts for form in forms(text))


def _request_texts(request: httpx.Request) -> list[str]:
    headers = list(request.headers.items())
    return [
        "\n".join(f"{name}: {value}" for name, value in headers),
        *(value for _, value in headers),
        str(request.url),
        request.read().decode("utf-8", "replace"),
    ]


def echoed(value: Any, text: str, keep: Collection[str] = frozenset()) -> Any:
    """A copy of the JSON ``value`` with every string (nested in objects and arrays too)
    replaced by ``text``, but the fields named in ``keep``: those stay as they are (what
    the parser must see to take the path under test — an id, a status, a result code)."""
    if isinstance(value, dict):
        return {k: v if k in keep else echoed(v, text, keep) for k, v in value.items()}
    if isinstance(value, list):
        return [echoed(v, text, keep) for v in value]
    if isinstance(value, str):
        return text
    return value


def header_text(text: str, limit: int = 2000) -> str:
    """``text`` as a response header can carry it (ASCII only, clipped to ``limit``): for
    echoing secrets in a provider's request-id or trace-id header."""
    return text.encode("ascii", "ignore").decode("ascii")[:limit]


def outcome_texts(
    subject: Outcome | PayfallbackError, declared: Secrets | None = None
) -> dict[str, str]:
    """Everything a caller, a log line or the journal could read off an outcome or an
    error, by where it is read.

    An error (alone or in a :class:`~payfallback.provider.Failed`): ``str``, ``repr``,
    ``message``, ``args``, ``provider_code``, ``provider_request_id``, ``user_message``,
    ``context()`` and the errors it was raised from (a logged traceback shows them). Any
    other outcome: its ``repr`` and each field — its ``answer`` as the Router keeps it, masked
    with ``declared`` (the adapter's secrets), since the raw answer never leaves the core.
    """
    error = subject.error if isinstance(subject, Failed) else subject
    if isinstance(error, PayfallbackError):
        texts = {
            "str": str(error),
            "repr": repr(error),
            "message": error.message,
            "args": _shown(error.args),
            "provider_code": str(error.provider_code),
            "provider_request_id": str(error.provider_request_id),
            "user_message": str(error.user_message),
            "context": _shown(error.context()),
        }
        cause: BaseException | None = error.__cause__ or error.__context__
        for depth in range(1, _CHAIN_MAX + 1):
            if cause is None:
                break
            texts[f"cause {depth}"] = f"{type(cause).__name__}: {cause!s} {cause!r}"
            cause = cause.__cause__ or cause.__context__
        return texts
    outcome = error  # not a failure: a redirect, an approval, a cancel or a status
    texts = {"repr": repr(outcome)}
    for field in dataclasses.fields(outcome):
        value = getattr(outcome, field.name)
        if field.name == "answer" and isinstance(value, Mapping):
            value = (declared or Secrets()).scrub_answer(value)
        texts[field.name] = _shown(value)
    return texts


def _shown(value: object) -> str:
    """``str(value)``, and for a container each string inside it as it is: ``str`` of a
    mapping or a list shows its strings escaped (a backslash doubled), which would hide a
    JSON-escaped secret from a plain search."""
    leaves: list[str] = []

    def walk(node: object) -> None:
        if isinstance(node, str):
            leaves.append(node)
        elif isinstance(node, Mapping):
            for key, item in node.items():
                walk(key)
                walk(item)
        elif isinstance(node, list | tuple | set | frozenset):
            for item in node:
                walk(item)

    if isinstance(value, str):
        return value
    walk(value)
    return "\n".join((str(value), *leaves))


def _texts(subject: _Subject, declared: Secrets | None) -> Mapping[str, str]:
    if isinstance(subject, str):
        return {"text": subject}
    if isinstance(subject, PayfallbackError | Redirect | Approved | Cancelled | Status | Failed):
        return outcome_texts(subject, declared)
    if isinstance(subject, Mapping):
        return subject
    return {f"text {i}": text for i, text in enumerate(subject, 1)}


def leaks(
    subject: _Subject, secrets: Iterable[str] = (), declared: Secrets | None = None
) -> list[str]:
    """Where a secret shows in ``subject``: one ``"<where>: <secret's first characters>…"``
    per place and value found, empty when none does.

    ``secrets`` are looked for in each of their :func:`forms` (and in every form
    :class:`~payfallback.adapter.Secrets` scrubs); ``declared`` is an adapter's
    ``secrets``, any value of which must not show either.
    """
    values = tuple(secrets)
    listed = Secrets(*values)
    found: list[str] = []
    for where, text in _texts(subject, declared).items():
        hits = [v for v in values if any(form in text for form in forms(v))]
        found += [f"{where}: {v[:12]}…" for v in hits]
        if not hits and listed.contains(text):
            found.append(f"{where}: an escaped form of a secret")
        if declared is not None and declared.contains(text):
            found.append(f"{where}: a declared secret {declared!r}")
    return found


def assert_no_secret(
    subject: _Subject, secrets: Iterable[str] = (), declared: Secrets | None = None
) -> None:
    """Raise :class:`AssertionError` naming where, if any of ``secrets`` (in any of its
    forms) or any value ``declared`` holds shows in ``subject`` (see :func:`leaks`)."""
    found = leaks(subject, secrets, declared)
    if found:
        raise AssertionError(f"{len(found)} secret(s) came back out: " + "; ".join(found))
