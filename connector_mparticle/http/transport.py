"""The one HTTP client under every mParticle API client: JSON calls, and the results download.

Every call goes through :class:`~connector_mparticle.http.exchange.Exchange` (the throttle, the hardened
session, the origin-bound credential, retries within the budget and the call's deadline, refusals as the
connector's own errors); a download is streamed by :mod:`connector_mparticle.http.download`. An answer is
returned only when its body parses as the API documents; one that does not is retried like a 5xx.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

from connector_mparticle.files import Staged
from connector_mparticle.http.answers import MAX_JSON_BYTES, Malformed, decode
from connector_mparticle.http.download import Download, fetch
from connector_mparticle.http.exchange import Exchange, Transient, parsed, read_body

__all__ = ["ApiClient", "Download", "Malformed", "Reply", "encode_json"]

T = TypeVar("T")


def encode_json(value: Any) -> bytes:
    """The exact bytes a JSON request body is sent as (what mParticle echoes back in ``encoded_request``)."""
    return json.dumps(value, allow_nan=False).encode()


@dataclass(frozen=True)
class Reply:
    """An accepted response: status, parsed JSON body (None when empty), headers, attempts, time taken and
    the raw body.

    ``readable`` is False when the body was not JSON (a parser given to :meth:`ApiClient.request` decides
    what that means; :meth:`ApiClient.call` retries it)."""

    status: int
    body: Any
    headers: Mapping[str, str]
    attempts: int
    elapsed_ms: float
    readable: bool = True
    raw: bytes = field(default=b"", repr=False)  #: the body exactly as received (what a signature covers)


class ApiClient(Exchange):
    """HTTP access to one mParticle API at ``base_url`` (already accepted by the URL policy)."""

    def __repr__(self) -> str:
        return f"ApiClient({self.api!r}, {self.base_url!r})"

    def request(self, method: str, path: str, parse: Callable[[Reply], T], *, body: Any = None,
                accept: tuple[int, ...] = (200,), budgets: tuple[str, ...] | None = None, what: str = "") -> T:
        """Send a JSON request to ``base_url + path`` and return ``parse(reply)``.

        ``parse`` raises :class:`Malformed` for an answer that is not what the API documents (retried like
        a 5xx), or one of the connector's errors for a definite refusal.
        """
        url = self.base_url + path
        what = what or f"{method} {path}"
        budgets = budgets if budgets is not None else (self.api,)
        started = time.perf_counter()
        tries = 0

        def attempt() -> T:
            nonlocal tries
            tries += 1
            sent = {} if body is None else {"data": encode_json(body), "headers": {"Content-Type": "application/json"}}
            response = self.send(method, url, budgets, **sent)
            if response.status_code not in accept:
                self.refuse(response, what)
            status, headers = response.status_code, dict(response.headers)
            try:
                raw = read_body(response, MAX_JSON_BYTES)
            except Malformed as exc:
                raise Transient(f"HTTP {status}: {exc}") from None
            value, readable = parsed(raw)
            reply = Reply(status, value, headers, tries, (time.perf_counter() - started) * 1000, readable, raw)
            try:
                return decode(lambda: parse(reply), "an answer")
            except Malformed as exc:
                raise Transient(f"HTTP {status} with {self.redactor.scrub(str(exc))}") from None

        value, _ = self.attempts(budgets, attempt, what)
        return value

    def call(self, method: str, path: str, *, body: Any = None, accept: tuple[int, ...] = (200,),
             budgets: tuple[str, ...] | None = None, what: str = "") -> Reply:
        """:meth:`request` for answers whose body only has to be readable JSON (or empty)."""
        return self.request(method, path, _readable, body=body, accept=accept, budgets=budgets, what=what)

    def download(self, url: str, into: Staged, *, max_bytes: int, what: str = "download results",
                 verdict: Callable[[int, Any], bool] = lambda status, body: True) -> Download:
        """Stream ``url`` into the new private file ``into`` (:mod:`connector_mparticle.files`), following
        redirects only to hosts the download policy allows, each hop checked again.

        Credentials go only to this API's own origin (the credential decides, per hop). Raises
        :class:`NotFoundError` (404) and :class:`GoneError` (410) when ``verdict`` accepts the status and the
        JSON body as the API's own answer, :class:`UnsafeResponseError` (a URL the policy refuses, larger than
        ``max_bytes``, or a 404 or 410 that is not the API's: a proxy's page, a storage error). On any failure ``into``
        is removed. (:func:`connector_mparticle.http.download.fetch` does it.)
        """
        return fetch(self, url, into, max_bytes=max_bytes, what=what, verdict=verdict)


def _readable(reply: Reply) -> Reply:
    if not reply.readable:
        raise Malformed("an unreadable body")
    return reply
