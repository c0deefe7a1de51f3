"""mParticle's OpenDSR status callbacks: verify them, and a small WSGI endpoint that receives them.

mParticle POSTs a callback to each ``status_callback_urls`` entry whenever a request's status changes, signed
like its API answers (``X-OpenDSR-Processor-Domain``, ``X-OpenDSR-Signature``). :meth:`CallbackVerifier.verify`
checks the signature with :class:`~connector_mparticle.api.signatures.ProcessorSignatures` (the one verifier, steps
and reasons listed there), then that the body is a status object (``invalid_body``, HTTP 400).

A verified callback returns :class:`CallbackStatus`; when it concerns a stored pending request
(:meth:`CallbackStatus.applies_to`), call the hook again now with that state instead of waiting for
``next_check_at``: a callback replaces polling.

**Replay.** A callback only ever tells the host to check now. The status the connector acts on always comes
from the DSR API itself, so a replayed (or reordered) callback, even a genuine one, changes nothing: at
worst it causes one extra status check.

**An endpoint.** :func:`callback_app` is a WSGI application for hosts without one: it verifies each callback
and hands the status to a function the host supplies. Any WSGI server can run it (``wsgiref`` for a trial,
gunicorn or uWSGI behind the host's TLS terminator in production; the README shows both).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from connector_mparticle.api.opendsr import DSR_STATUSES
from connector_mparticle.api.signatures import ProcessorSignatures, SignatureRejected
from connector_mparticle.http.answers import (
    MAX_URL_CHARS,
    Malformed,
    decode,
    field_enum,
    field_str,
    header_size,
    json_body,
    obj,
)

__all__ = ["CallbackRejected", "CallbackStatus", "CallbackVerifier", "callback_app"]

#: A refused callback: ``reason`` and the HTTP status to answer (401; 400 for a signed but unusable body).
CallbackRejected = SignatureRejected
MAX_CALLBACK_BYTES = 64 * 1024  #: a status object is a few hundred bytes; its forwarding list a few more
_log = logging.getLogger("connector_mparticle.callbacks")

Environ = Mapping[str, Any]
StartResponse = Callable[[str, list[tuple[str, str]]], Any]


@dataclass(frozen=True)
class CallbackStatus:
    """A verified status callback."""

    subject_request_id: str
    request_status: str
    expected_completion_time: str | None
    results_url: str | None
    body: Mapping[str, Any]

    def applies_to(self, state: Mapping[str, Any] | None) -> bool:
        """True when ``state`` (a pending result's state) includes this mParticle request."""
        parts = state.get("parts") if isinstance(state, Mapping) else None
        return isinstance(parts, list) and any(
            isinstance(p, Mapping) and p.get("subject_request_id") == self.subject_request_id for p in parts)


class CallbackVerifier(ProcessorSignatures):
    """Verifies callbacks; safe to share between threads; caches the processor certificate."""

    @classmethod
    def for_config(cls, config: Mapping[str, Any]) -> CallbackVerifier:
        """A verifier for the connector configured by ``config`` (its DSR host and signature trust store)."""
        from connector_mparticle.settings import parse_settings

        return cls.for_settings(parse_settings(config))

    def verify(self, headers: Mapping[str, str], body: bytes) -> CallbackStatus:
        """Check a callback (its raw body and headers); return its status or raise :class:`CallbackRejected`."""
        self.check(headers, body)
        return _parse(body)


def _parse(body: bytes) -> CallbackStatus:
    """The status a signed callback carries, read through the decoding layer (``invalid_body`` if it is none)."""
    try:
        return decode(lambda: _status(body), "a callback")
    except Malformed as exc:
        raise CallbackRejected("invalid_body", "the signed body is not an OpenDSR status object",
                               http_status=400) from exc


def _status(body: bytes) -> CallbackStatus:
    data = obj(json_body(body, max_bytes=MAX_CALLBACK_BYTES), "a callback")
    request_id = field_str(data.get("subject_request_id"), "a subject_request_id", max_chars=64, optional=False)
    assert request_id is not None
    return CallbackStatus(request_id, field_enum(data.get("request_status"), "a request_status", DSR_STATUSES),
                          field_str(data.get("expected_completion_time"), "an expected_completion_time", max_chars=64),
                          field_str(data.get("results_url"), "a results_url", max_chars=MAX_URL_CHARS), data)


# -- the WSGI endpoint ------------------------------------------------------------------------------------

_REASONS = {202: "202 Accepted", 400: "400 Bad Request", 401: "401 Unauthorized", 405: "405 Method Not Allowed",
            411: "411 Length Required", 413: "413 Content Too Large", 500: "500 Internal Server Error"}


def callback_app(verifier: CallbackVerifier, on_status: Callable[[CallbackStatus], None], *,
                 max_body_bytes: int = MAX_CALLBACK_BYTES) -> Callable[[Environ, StartResponse], Iterable[bytes]]:
    """A WSGI application that receives mParticle's status callbacks at any path it is mounted on.

    ``POST`` with a verified callback: ``on_status(status)`` runs, then **202**. A refused signature: **401**
    (mParticle's documented answer); a signed body that is not a status object: **400**; no
    ``Content-Length``: **411**; a body over ``max_body_bytes``: **413** (not read); another method: **405**.
    If ``on_status`` raises, the answer is **500**, so mParticle sends the callback again (spec 8.5).
    Answers are a short JSON object; nothing from the request is echoed back.
    """
    def app(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        status, body = _handle(environ, verifier, on_status, max_body_bytes)
        payload = json.dumps(body).encode()
        headers = [("Content-Type", "application/json"), ("Content-Length", str(len(payload)))]
        if status == 405:
            headers.append(("Allow", "POST"))
        start_response(_REASONS[status], headers)
        return [payload]

    return app


def _handle(environ: Environ, verifier: CallbackVerifier, on_status: Callable[[CallbackStatus], None],
            max_body_bytes: int) -> tuple[int, dict[str, Any]]:
    if environ.get("REQUEST_METHOD") != "POST":
        return 405, {"error": "method_not_allowed"}
    length = header_size(environ.get("CONTENT_LENGTH"))  # ASCII digits only: "٣" or "-1" is no length
    if length is None:
        return 411, {"error": "length_required"}
    if length > max_body_bytes:
        return 413, {"error": "too_large"}
    body = environ["wsgi.input"].read(length)
    headers = {key[5:].replace("_", "-").lower(): value for key, value in environ.items()
               if key.startswith("HTTP_") and isinstance(value, str)}
    return _deliver(headers, body, verifier, on_status)


def _deliver(headers: Mapping[str, str], body: bytes, verifier: CallbackVerifier,
             on_status: Callable[[CallbackStatus], None]) -> tuple[int, dict[str, Any]]:
    """Verify a received callback and hand its status to ``on_status``; the answer for mParticle."""
    try:
        status = verifier.verify(headers, body)
    except CallbackRejected as refusal:
        _log.warning("callback refused: %s", refusal.reason)
        return refusal.http_status, {"error": refusal.reason}
    try:
        on_status(status)
    except Exception:  # noqa: BLE001 - whatever the host's function raised, mParticle must retry the callback
        _log.exception("callback for %s verified, but the handler failed", status.subject_request_id)
        return 500, {"error": "handler_failed"}
    return 202, {"accepted": True}
