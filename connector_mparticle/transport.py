"""The one HTTP layer under every mParticle API client.

Each call: wait for the API's throttle budget, send with auth and a (connect, read) timeout, never follow a
redirect, adapt the throttle to what came back, then either return (an accepted status), retry (429, 5xx,
network errors, timeouts, unreadable bodies: ``Retry-After`` honoured, else backoff with full jitter, all
within ``max_retry_seconds``), fetch a new OAuth token once after a 401, or raise the connector's own error.
Nothing from ``requests`` or ``json`` escapes.
"""

from __future__ import annotations

import hashlib
import os
import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NoReturn, TypeVar
from urllib.parse import urljoin, urlsplit

import requests

from connector_mparticle.errors import (
    AlreadyExistsError,
    AuthenticationError,
    ConflictError,
    GoneError,
    MParticleError,
    NotFoundError,
    RejectedError,
    RetryLaterError,
    UnsafeResponseError,
)
from connector_mparticle.oauth import ClientCredentials
from connector_mparticle.retry import retry_delay, should_retry
from connector_mparticle.throttle import Throttle
from dsr_framework.redact import RedactingLogger

__all__ = ["ApiClient", "Download", "Reply"]

T = TypeVar("T")
MAX_REDIRECTS = 3
_REMOTE_MESSAGE_LIMIT = 300

#: What a refused credential means, per API, in words a privacy engineer reads.
AUTH_REFUSED = {
    "dsr": "the DSR API rejected the workspace key and secret",
    "events": "the Events API rejected the input key and secret",
    "identity": "the Identity API rejected the input key and secret",
}


@dataclass(frozen=True)
class Reply:
    """An accepted response: status, parsed JSON body (or None), headers, attempts and time taken."""

    status: int
    body: Any
    headers: Mapping[str, str]
    attempts: int
    elapsed_ms: float


@dataclass(frozen=True)
class Download:
    path: Path
    size_bytes: int
    sha256: str


class _Transient(Exception):
    """Worth another attempt."""

    def __init__(self, what: str, status: int | None = None, retry_after: str | None = None) -> None:
        super().__init__(what)
        self.what, self.status, self.retry_after = what, status, retry_after


class _Unauthorized(Exception):
    def __init__(self, status: int) -> None:
        super().__init__(status)
        self.status = status


def remote_message(response: requests.Response) -> str:
    """mParticle's own error message from a response body (DSR, IDSync, Events and OAuth shapes)."""
    try:
        body = response.json()
    except ValueError:
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
    return message[:_REMOTE_MESSAGE_LIMIT]


class ApiClient:
    """HTTP access to one mParticle API at ``base_url``."""

    def __init__(self, api: str, base_url: str, auth: requests.auth.AuthBase, session: requests.Session,
                 throttle: Throttle, log: RedactingLogger, *, timeout: tuple[float, float],
                 max_retry_seconds: float, max_retry_after_seconds: float, verify: bool | str,
                 sleep: Callable[[float], None] = time.sleep, rng: random.Random | None = None) -> None:
        self.api = api
        self.base_url = base_url
        self.auth = auth
        self.session = session
        self.throttle = throttle
        self.log = log
        self.timeout = timeout
        self.max_retry_seconds = max_retry_seconds
        self.max_retry_after_seconds = max_retry_after_seconds
        self.verify = verify
        self.sleep = sleep
        self.rng = rng or random.Random()

    def __repr__(self) -> str:
        return f"ApiClient({self.api!r}, {self.base_url!r})"

    # -- the retry loop ---------------------------------------------------------------------------------

    def _exchange(self, budgets: tuple[str, ...], attempt: Callable[[], T], what: str) -> tuple[T, int]:
        deadline = time.time() + self.max_retry_seconds
        tries = 0
        refreshed = False
        while True:
            for budget in budgets:
                self.throttle.acquire(budget, deadline)
            tries += 1
            try:
                return attempt(), tries
            except _Unauthorized as exc:
                if isinstance(self.auth, ClientCredentials) and not refreshed:
                    self.log.info("%s: HTTP %s with an OAuth token; fetching a new token once", what, exc.status)
                    self.auth.invalidate()
                    refreshed = True
                    continue
                raise AuthenticationError(f"{AUTH_REFUSED.get(self.api, 'the API rejected the credentials')} "
                                          f"(HTTP {exc.status})", api=self.api, status=exc.status) from None
            except _Transient as exc:
                delay = retry_delay(tries - 1, exc.retry_after, self.max_retry_after_seconds, self.rng)
                if time.time() + delay > deadline:
                    retry_at = datetime.fromtimestamp(time.time() + delay, UTC)
                    raise RetryLaterError(
                        f"the {self.api} API is not answering normally ({exc.what}) after {tries} attempt(s) "
                        f"in {self.max_retry_seconds:g}s", api=self.api, status=exc.status, retry_after=retry_at,
                    ) from None
                self.log.info("%s: %s; retrying in %.2fs (attempt %d)", what, exc.what, delay, tries)
                self.sleep(delay)

    def _send(self, method: str, url: str, budgets: tuple[str, ...], auth: requests.auth.AuthBase | None,
              **kwargs: Any) -> requests.Response:
        try:
            response = self.session.request(method, url, auth=auth, timeout=self.timeout, allow_redirects=False,
                                            verify=self.verify, **kwargs)
        except MParticleError:
            raise  # from the OAuth token fetch
        except requests.exceptions.SSLError as exc:
            raise RejectedError(f"the {self.api} API's TLS certificate could not be verified "
                                f"({type(exc).__name__}); check trust_store", api=self.api) from exc
        except requests.Timeout as exc:
            raise _Transient(f"timed out ({type(exc).__name__})") from exc
        except requests.ConnectionError as exc:
            raise _Transient(f"connection failed ({type(exc).__name__})") from exc
        except requests.RequestException as exc:
            raise _Transient(f"request failed ({type(exc).__name__})") from exc
        for budget in budgets:
            self.throttle.observe(budget, response.status_code, response.headers.get("X-mp-rate-limit-percentage-used"))
        if response.status_code in (401, 403) and auth is not None:
            response.close()
            raise _Unauthorized(response.status_code)
        if should_retry(response.status_code):
            retry_after = response.headers.get("Retry-After")
            response.close()
            raise _Transient(f"HTTP {response.status_code}", response.status_code, retry_after)
        return response

    def _refuse(self, response: requests.Response, what: str) -> NoReturn:
        status = response.status_code
        detail = remote_message(response)
        suffix = f": {detail}" if detail else ""
        if 300 <= status < 400:
            raise UnsafeResponseError(f"{what}: the {self.api} API answered with a redirect (HTTP {status}), "
                                      "which the connector does not follow", api=self.api, status=status)
        kind: type[MParticleError] = {404: NotFoundError, 409: ConflictError, 410: GoneError}.get(status, RejectedError)
        if status == 400 and "already exists" in detail.lower():
            kind = AlreadyExistsError
        raise kind(f"{what}: the {self.api} API refused the request (HTTP {status}){suffix}",
                   api=self.api, status=status)

    # -- JSON calls ---------------------------------------------------------------------------------------

    def call(self, method: str, path: str, *, body: Any = None, accept: tuple[int, ...] = (200,),
             budgets: tuple[str, ...] | None = None, what: str = "") -> Reply:
        """Send a JSON request to ``base_url + path``; return an accepted reply or raise the connector's error."""
        url = self.base_url + path
        what = what or f"{method} {path}"
        budgets = budgets if budgets is not None else (self.api,)
        started = time.perf_counter()

        def attempt() -> Reply:
            response = self._send(method, url, budgets, self.auth, json=body)
            if response.status_code not in accept:
                self._refuse(response, what)
            parsed: Any = None
            if response.content:
                try:
                    parsed = response.json()
                except ValueError:
                    raise _Transient(f"HTTP {response.status_code} with an unreadable body") from None
            return Reply(response.status_code, parsed, dict(response.headers), 0,
                         (time.perf_counter() - started) * 1000)

        reply, tries = self._exchange(budgets, attempt, what)
        return Reply(reply.status, reply.body, reply.headers, tries, (time.perf_counter() - started) * 1000)

    # -- downloads ----------------------------------------------------------------------------------------

    def download(self, url: str, destination: Path, *, max_bytes: int, allowed_hosts: set[str],
                 what: str = "download results") -> Download:
        """Stream ``url`` into ``destination`` (atomically), following redirects only to ``allowed_hosts``.

        Credentials go only to this API's own origin. Raises :class:`NotFoundError` (404), :class:`GoneError`
        (410), :class:`UnsafeResponseError` (a host not allowed, or larger than ``max_bytes``).
        """
        own_origin = _origin(self.base_url)
        partial = destination.with_name(f".{destination.name}.part")

        def attempt() -> Download:
            target = url
            for _ in range(MAX_REDIRECTS + 1):
                check_download_url(target, allowed_hosts, self.api)
                auth = self.auth if _origin(target) == own_origin else None
                response = self._send("GET", target, (), auth, stream=True)
                if 300 <= response.status_code < 400 and response.headers.get("Location"):
                    target = urljoin(target, response.headers["Location"])
                    response.close()
                    continue
                if response.status_code != 200:
                    self._refuse(response, what)
                return _stream_to(response, partial, destination, max_bytes, self.api)
            raise UnsafeResponseError(f"{what}: too many redirects", api=self.api)

        try:
            download, _ = self._exchange((self.api,), attempt, what)
        finally:
            partial.unlink(missing_ok=True)
        return download


def _origin(url: str) -> tuple[str, str, int | None]:
    parts = urlsplit(url)
    return parts.scheme, (parts.hostname or "").lower(), parts.port


def check_download_url(url: str, allowed_hosts: set[str], api: str) -> None:
    """Refuse a URL whose host is not allowed, or that is plain http outside loopback."""
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    loopback = host in ("127.0.0.1", "localhost", "::1")
    if parts.scheme not in ("https", "http") or (parts.scheme == "http" and not loopback):
        raise UnsafeResponseError(f"refused to download from a non-https URL on {host or 'no host'}", api=api)
    if host not in allowed_hosts:
        raise UnsafeResponseError(
            f"refused to download results from {host}: not an mParticle host this connector trusts "
            "(add it to download.allowed_hosts if mParticle really serves results there)", api=api)


def _stream_to(response: requests.Response, partial: Path, destination: Path, max_bytes: int,
               api: str) -> Download:
    declared = response.headers.get("Content-Length")
    if declared and declared.isdigit() and int(declared) > max_bytes:
        response.close()
        raise UnsafeResponseError(f"the results file ({int(declared)} bytes) is larger than download.max_bytes",
                                  api=api)
    digest = hashlib.sha256()
    size = 0
    try:
        with partial.open("wb") as handle:
            for chunk in response.iter_content(chunk_size=256 * 1024):
                size += len(chunk)
                if size > max_bytes:
                    raise UnsafeResponseError("the results file is larger than download.max_bytes", api=api)
                digest.update(chunk)
                handle.write(chunk)
            handle.flush()
            os.fsync(handle.fileno())
    except requests.RequestException as exc:
        raise _Transient(f"the download broke off ({type(exc).__name__})") from exc
    finally:
        response.close()
    if declared and declared.isdigit() and int(declared) != size:
        raise _Transient(f"the download was cut short ({size} of {declared} bytes)")
    partial.replace(destination)
    return Download(destination, size, digest.hexdigest())
