"""A results file, streamed from the API (or a host the download policy allows) into a new private file.

Redirects are followed only to hosts the policy allows, each hop judged again; credentials go only to the API's
own origin (the credential decides, per hop); the size is capped by ``download.max_bytes`` before and while the
body is read, and the whole download by the call's deadline. A 404 is the API's verdict only when its body is
the API's own answer.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, NoReturn

import requests

from connector_mparticle.errors import GoneError, NotFoundError, UnsafeResponseError
from connector_mparticle.files import Staged
from connector_mparticle.http.answers import Malformed, header_size, redirect_target
from connector_mparticle.http.deadline import Deadline, current
from connector_mparticle.http.exchange import (
    CHUNK_BYTES,
    MAX_ERROR_BYTES,
    WIRE_ERRORS,
    Exchange,
    Transient,
    parsed,
    read_body,
)
from connector_mparticle.http.urls import UrlPolicy, UrlRefused

__all__ = ["MAX_REDIRECTS", "Download", "fetch"]

MAX_REDIRECTS = 3


@dataclass(frozen=True)
class Download:
    """A results file on disk: where, how many bytes, and their SHA-256."""

    path: Path
    size_bytes: int
    sha256: str


def fetch(client: Exchange, url: str, into: Staged, *, max_bytes: int, what: str,
          verdict: Callable[[int, Any], bool]) -> Download:
    """Stream ``url`` into ``into`` through ``client``'s attempts (see :meth:`.transport.ApiClient.download`);
    on any failure ``into`` is removed."""
    policy = client.download_policy
    if policy is None:
        raise UnsafeResponseError(f"{what}: no download hosts are configured", api=client.api)
    try:
        done, _ = client.attempts((client.api,), lambda: _follow(client, policy, url, into, max_bytes, what,
                                                                 verdict), what)
    except BaseException:
        into.discard()
        raise
    return done


def _follow(client: Exchange, policy: UrlPolicy, url: str, into: Staged, max_bytes: int, what: str,
            verdict: Callable[[int, Any], bool]) -> Download:
    """One attempt: the redirect chain from ``url``, each hop judged by the policy, to the file's body."""
    target = url
    for _ in range(MAX_REDIRECTS + 1):
        try:
            policy.check(target)
        except UrlRefused as exc:
            raise UnsafeResponseError(f"refused to {what}: {client.redactor.scrub(str(exc))} (add the host "
                                      "to download.allowed_hosts if mParticle really serves results there)",
                                      api=client.api) from None
        response = client.send("GET", target, ())
        location = response.headers.get("Location")
        if 300 <= response.status_code < 400 and location:
            response.close()
            target = _hop(target, location)
            continue
        if response.status_code in (404, 410):
            _not_found(client, response, what, verdict)
        if response.status_code != 200:
            client.refuse(response, what)
        return _stream_to(response, into, max_bytes, client.api)
    raise UnsafeResponseError(f"{what}: too many redirects", api=client.api)


def _not_found(client: Exchange, response: requests.Response, what: str,
               theirs: Callable[[int, Any], bool]) -> NoReturn:
    """A 404 or a 410 to a download: the API's verdict (:class:`NotFoundError`: nothing matched;
    :class:`GoneError`: the link expired) only when its body is the API's own answer (``theirs``); anything else
    is :class:`UnsafeResponseError`, which no caller reads as a verdict."""
    status = response.status_code
    try:
        body, readable = parsed(read_body(response, MAX_ERROR_BYTES))
    except (Malformed, Transient):
        body, readable = None, False
    if readable and theirs(status, body):
        verdict = NotFoundError if status == 404 else GoneError
        raise verdict(f"{what}: the {client.api} API answered {status}", api=client.api, status=status)
    raise UnsafeResponseError(f"{what}: a {status} that is not the {client.api} API's own answer (a proxy's or a "
                              "storage service's error page), so it says nothing about the results",
                              api=client.api, status=status)


def _hop(url: str, location: str) -> str:
    """The next URL of a redirect chain; an unreadable ``Location`` is a broken answer, worth another attempt."""
    try:
        return redirect_target(url, location)
    except Malformed as exc:
        raise Transient(str(exc)) from None


def _stream_to(response: requests.Response, into: Staged, max_bytes: int, api: str) -> Download:
    """Write the body into ``into`` within ``max_bytes`` and the call's deadline; its size and SHA-256."""
    declared = header_size(response.headers.get("Content-Length"))
    if declared is not None and declared > max_bytes:
        response.close()
        raise UnsafeResponseError(f"the results file ({declared} bytes) is larger than download.max_bytes",
                                  api=api)
    deadline = current()
    try:
        with into.open() as handle:
            digest, size = _copy(response, handle, max_bytes, api, deadline)
            handle.flush()
            os.fsync(handle.fileno())
    except WIRE_ERRORS as exc:
        if deadline is not None and deadline.expired:
            raise deadline.error() from exc
        raise Transient(f"the download broke off ({type(exc).__name__})") from exc
    finally:
        response.close()
    if declared is not None and declared != size:
        raise Transient(f"the download was cut short ({size} of {declared} bytes)")
    return Download(into.path, size, digest)


def _copy(response: requests.Response, handle: BinaryIO, max_bytes: int, api: str,
          deadline: Deadline | None) -> tuple[str, int]:
    """Copy the body chunk by chunk, refusing it past ``max_bytes``; its SHA-256 and size."""
    digest = hashlib.sha256()
    size = 0
    for chunk in response.iter_content(chunk_size=CHUNK_BYTES):
        size += len(chunk)
        if size > max_bytes:
            raise UnsafeResponseError("the results file is larger than download.max_bytes", api=api)
        digest.update(chunk)
        handle.write(chunk)
        if deadline is not None:
            deadline.check()
    return digest.hexdigest(), size
