"""One exchange with an mParticle API, under the JSON calls (:mod:`.transport`) and the download (:mod:`.download`).

Each attempt: wait for the API's throttle budget, send through the hardened session (no redirects, TLS
verified, timeouts capped by the hook call's deadline) with an origin-bound credential, and adapt the throttle
to what came back. Attempts repeat (429, 5xx, network errors, timeouts, unreadable or malformed bodies:
``Retry-After`` honoured, else backoff with full jitter, all within ``max_retry_seconds`` and the call's
deadline), the credential is asked for a fresh one once after a 401/403 (an OAuth token), and a refusal becomes
the connector's own error. Nothing from ``requests`` or ``json`` escapes, and text a server sent is scrubbed of
any fragment of a secret before it is quoted. Bodies are read in chunks with a size cap, so neither time nor
memory depends on what the server sends, and every header and body is read through
:mod:`connector_mparticle.http.answers` (the one decoding layer).
"""

from __future__ import annotations

import errno
import http.client
import random
import socket
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, NoReturn, TypeVar
from urllib.parse import urlsplit

import requests
import urllib3

from connector_mparticle.errors import (
    AlreadyExistsError,
    AuthenticationError,
    ConflictError,
    GoneError,
    MParticleError,
    NotFoundError,
    OutOfTimeError,
    RejectedError,
    RetryLaterError,
    UnsafeResponseError,
)
from connector_mparticle.http.answers import Malformed, bounded_body, json_body
from connector_mparticle.http.auth import OriginAuth
from connector_mparticle.http.deadline import Deadline, current
from connector_mparticle.http.retry import retry_delay, should_retry
from connector_mparticle.http.session import HardenedSession
from connector_mparticle.http.throttle import Throttle
from connector_mparticle.http.urls import UrlPolicy
from dsr_framework.redact import RedactingLogger, Redactor, mask_email

__all__ = ["AUTH_REFUSED", "CHUNK_BYTES", "MAX_ERROR_BYTES", "UNREACHABLE_RETRY_SECONDS", "WHERE_SETTING",
           "WIRE_ERRORS", "Exchange", "Transient", "parsed", "read_body", "remote_message"]

T = TypeVar("T")
MAX_ERROR_BYTES = 64 * 1024  #: of an error body, only this much is read for its message
CHUNK_BYTES = 256 * 1024
_REMOTE_MESSAGE_LIMIT = 300
#: What the libraries under ``requests`` may raise for bytes a server sent that ``requests`` does not wrap (a
#: urllib3 error outside its list, ``http.client``'s own): a broken answer, worth another attempt.
WIRE_ERRORS = (requests.RequestException, urllib3.exceptions.HTTPError, http.client.HTTPException)

#: How long to keep trying a host that refuses connections (or whose name does not resolve): a service that is
#: down or a wrong base URL is named within seconds, while timeouts and 5xx keep ``max_retry_seconds``.
UNREACHABLE_RETRY_SECONDS = 3.0
#: The setting that says where each API is, for "is it running, and is ... right?".
WHERE_SETTING = {"dsr": "dsr.base_url", "events": "inputs.events_base_url (or pod)",
                 "identity": "inputs.identity_base_url (or pod)", "profile": "profile.base_url"}

#: What a refused credential means, per API, in words a privacy engineer reads.
AUTH_REFUSED = {
    "dsr": "the DSR API rejected the workspace key and secret",
    "events": "the Events API rejected the input key and secret",
    "identity": "the Identity API rejected the input key and secret",
    "profile": "the Profile API rejected the OAuth token",
}


class Transient(Exception):
    """Worth another attempt. ``unreachable``: no connection could be made at all (refused, or a name that does
    not resolve), retried only briefly (:data:`UNREACHABLE_RETRY_SECONDS`)."""

    def __init__(self, what: str, status: int | None = None, retry_after: str | None = None,
                 unreachable: tuple[str, str] | None = None) -> None:
        super().__init__(what)
        self.what, self.status, self.retry_after, self.unreachable = what, status, retry_after, unreachable


class _Unauthorized(Exception):
    def __init__(self, status: int) -> None:
        super().__init__(status)
        self.status = status


def read_body(response: requests.Response, limit: int) -> bytes:
    """The body, read in chunks; ``Transient`` if it is cut short, ``Malformed`` if it exceeds ``limit``."""
    deadline = current()
    try:
        return bounded_body(response, limit, CHUNK_BYTES, deadline.check if deadline is not None else lambda: None)
    except WIRE_ERRORS as exc:
        if deadline is not None and deadline.expired:
            raise deadline.error() from exc  # cut off by the deadline: not something the server said
        raise Transient(f"the answer broke off ({type(exc).__name__})") from exc
    finally:
        response.close()


def remote_message(raw: bytes, redactor: Redactor) -> str:
    """mParticle's own error message from a body (DSR, IDSync, Events and OAuth shapes), scrubbed of any
    fragment of a secret (before it is shortened, so a cut cannot leave part of one) and shortened."""
    try:
        body = json_body(raw)
    except Malformed:
        return ""
    message = ""
    if isinstance(body, dict):
        errors = body.get("errors")
        if isinstance(body.get("message"), str):
            message = body["message"]
        elif isinstance(errors, list) and errors and isinstance(errors[0], dict):
            message = str(errors[0].get("message", ""))
        elif isinstance(body.get("error_description"), str):
            message = body["error_description"]
    message = mask_email(redactor.scrub(" ".join(message.split())))
    return message if len(message) <= _REMOTE_MESSAGE_LIMIT else message[:_REMOTE_MESSAGE_LIMIT] + "…"


class Exchange:
    """Attempts at one mParticle API at ``base_url`` (already accepted by the URL policy); :class:`.transport.ApiClient`
    adds the JSON calls and the download on top."""

    def __init__(self, api: str, base_url: str, auth: OriginAuth | None, session: HardenedSession,
                 throttle: Throttle, log: RedactingLogger, redactor: Redactor, *, timeout: tuple[float, float],
                 max_retry_seconds: float, max_retry_after_seconds: float, download_policy: UrlPolicy | None = None,
                 sleep: Callable[[float], None] = time.sleep, rng: random.Random | None = None) -> None:
        self.api = api
        self.base_url = base_url
        self.auth = auth
        self.session = session
        self.throttle = throttle
        self.log = log
        self.redactor = redactor
        self.timeout = timeout
        self.max_retry_seconds = max_retry_seconds
        self.max_retry_after_seconds = max_retry_after_seconds
        self.download_policy = download_policy
        self.sleep = sleep
        self.rng = rng or random.Random()

    def attempts(self, budgets: tuple[str, ...], attempt: Callable[[], T], what: str) -> tuple[T, int]:
        """``attempt()`` and the number of tries: throttled, retried within the retry budget and the call's
        deadline, with one credential refresh after a 401/403."""
        deadline = current()
        end = time.monotonic() + self.max_retry_seconds
        if deadline is not None:
            end = min(end, deadline.end)
        tries = 0
        refreshed = False
        unreachable_since: float | None = None
        while True:
            if deadline is not None:
                deadline.check()
            for budget in budgets:
                self.throttle.acquire(budget, end)
            tries += 1
            try:
                return attempt(), tries
            except _Unauthorized as exc:
                self._refresh_once(exc, refreshed, what)
                refreshed = True
            except Transient as exc:
                unreachable_since = (unreachable_since or time.monotonic()) if exc.unreachable else None
                until = end if unreachable_since is None else min(end, unreachable_since + UNREACHABLE_RETRY_SECONDS)
                self.sleep(self._backoff(exc, tries, until, deadline, what))

    def _refresh_once(self, exc: _Unauthorized, refreshed: bool, what: str) -> None:
        """Fetch new credentials after a 401/403, once per call; :class:`AuthenticationError` otherwise."""
        if not refreshed and self.auth is not None and self.auth.refresh():
            self.log.info("%s: HTTP %s; fetching new credentials once", what, exc.status)
            return
        raise AuthenticationError(f"{AUTH_REFUSED.get(self.api, 'the API rejected the credentials')} "
                                  f"(HTTP {exc.status})", api=self.api, status=exc.status) from None

    def _backoff(self, exc: Transient, tries: int, end: float, deadline: Deadline | None, what: str) -> float:
        """How long to wait before trying again; the call's error when there is no time left for that."""
        if deadline is not None and deadline.expired:
            raise deadline.error() from None
        delay = retry_delay(tries - 1, exc.retry_after, self.max_retry_after_seconds, self.rng)
        if time.monotonic() + delay > end:
            retry_at = datetime.fromtimestamp(time.time() + delay, UTC)
            message = f"the {self.api} API is not answering normally ({exc.what}) after {tries} attempt(s)"
            if exc.unreachable:
                origin, why = exc.unreachable
                message = (f"cannot connect to the {self.api} API at {origin}: {why} ({tries} attempt(s)); is it "
                           f"running, and is {WHERE_SETTING.get(self.api, 'its URL')} right?")
            raise RetryLaterError(message, api=self.api, status=exc.status, retry_after=retry_at) from None
        self.log.info("%s: %s; retrying in %.2fs (attempt %d)", what, exc.what, delay, tries)
        return delay

    def send(self, method: str, url: str, budgets: tuple[str, ...], **kwargs: Any) -> requests.Response:
        """One request: lower-layer failures translated, throttle told the usage, 401/403 and retryable
        statuses raised as :class:`_Unauthorized` and :class:`Transient`."""
        try:
            response = self.session.request(method, url, auth=self.auth, timeout=self.timeout, stream=True,
                                            **kwargs)
        except OutOfTimeError:
            raise
        except RetryLaterError as exc:  # the OAuth token endpoint, through the credential
            raise Transient(exc.message, exc.status) from exc
        except MParticleError:
            raise
        except WIRE_ERRORS as exc:
            raise _network_error(exc, self.api, url) from exc
        for budget in budgets:
            self.throttle.observe(budget, response.status_code, response.headers.get("X-mp-rate-limit-percentage-used"))
        if response.status_code in (401, 403):
            response.close()
            raise _Unauthorized(response.status_code)
        if should_retry(response.status_code):
            retry_after = response.headers.get("Retry-After")
            response.close()
            raise Transient(f"HTTP {response.status_code}", response.status_code, retry_after)
        return response

    def refuse(self, response: requests.Response, what: str) -> NoReturn:
        """A status the caller does not accept, as the connector's error (a redirect is never followed here)."""
        status = response.status_code
        if status < 300 or status > 599:  # a 1xx, 2xx or non-HTTP status the API does not document: no verdict
            response.close()
            raise Transient(f"an unexpected HTTP {status}", status)
        if 300 <= status < 400:
            response.close()
            raise UnsafeResponseError(f"{what}: the {self.api} API answered with a redirect (HTTP {status}), "
                                      "which the connector does not follow", api=self.api, status=status)
        try:
            detail = remote_message(read_body(response, MAX_ERROR_BYTES), self.redactor)
        except (Malformed, Transient):
            detail = ""  # the status is the answer; its explanation is only a courtesy
        suffix = f": {detail}" if detail else ""
        kind: type[MParticleError] = {404: NotFoundError, 409: ConflictError, 410: GoneError}.get(status, RejectedError)
        if status == 400 and "already exists" in detail.lower():
            kind = AlreadyExistsError
        raise kind(f"{what}: the {self.api} API refused the request (HTTP {status}){suffix}",
                   api=self.api, status=status)


def parsed(raw: bytes) -> tuple[Any, bool]:
    """A body's JSON value (None when empty) and whether it could be read (:func:`~.answers.json_body`)."""
    if not raw.strip():
        return None, True
    try:
        return json_body(raw), True
    except Malformed:
        return None, False


def _network_error(exc: Exception, api: str, url: str) -> Exception:
    """What a failure below HTTP means: a certificate is a refusal; the rest is worth retrying while the call
    has time (briefly, when no connection could be made at all: :func:`_unreachable`)."""
    if isinstance(exc, requests.exceptions.SSLError):  # a ConnectionError, but retrying cannot fix it
        return RejectedError(f"the {api} API's TLS certificate could not be verified "
                             f"({type(exc).__name__}); check trust_store", api=api)
    if isinstance(exc, (requests.Timeout, requests.ConnectionError)):
        deadline = current()
        if deadline is not None and deadline.expired:
            return deadline.error()
        if not isinstance(exc, requests.Timeout) and (why := _unreachable(exc)) is not None:
            return Transient(f"{why} ({_origin(url)})", unreachable=(_origin(url), why))
        return Transient(f"{'timed out' if isinstance(exc, requests.Timeout) else 'connection failed'} "
                          f"({type(exc).__name__})")
    return Transient(f"request failed ({type(exc).__name__})")


def _unreachable(exc: BaseException) -> str | None:
    """"connection refused" or "its host name does not resolve" when that is why no connection was made (found
    in the chain of exceptions requests and urllib3 wrap it in); None for anything else."""
    seen: BaseException | None = exc
    for _ in range(12):  # bounded: a chain is short, and a cycle must not hang the call
        if seen is None:
            return None
        if isinstance(seen, ConnectionRefusedError) or getattr(seen, "errno", None) == errno.ECONNREFUSED:
            return "connection refused"
        if isinstance(seen, socket.gaierror):
            return "its host name does not resolve"
        seen = _inner(seen)
    return None


def _inner(exc: BaseException) -> BaseException | None:
    """The exception ``exc`` wraps: its cause, the exception it was built from (urllib3 passes it as the first
    argument or as ``reason``), or the one being handled when it was raised."""
    wrapped = exc.args[0] if exc.args and isinstance(exc.args[0], BaseException) else None
    reason = getattr(exc, "reason", None)
    return exc.__cause__ or wrapped or (reason if isinstance(reason, BaseException) else None) or exc.__context__


def _origin(url: str) -> str:
    """``scheme://host:port`` of a URL the policy accepted (no user info, no path): safe to name in a message."""
    parts = urlsplit(url)
    host = f"[{parts.hostname}]" if parts.hostname and ":" in parts.hostname else parts.hostname
    try:
        port = f":{parts.port}" if parts.port else ""
    except ValueError:  # not a URL the policy lets through; say no more than its host
        port = ""
    return f"{parts.scheme}://{host}{port}"


