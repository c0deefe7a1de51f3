"""The HTTP pipeline: how every request travels from the socket to a route handler and back.

Each request goes through the same steps: route, injected faults, authentication, the API's rate limits,
the handler, then (for faults that strike after processing) a lost or malformed response. Every request to
an mParticle API is written to the request log, so tests and benchmarks can count what a client really sent.
"""

from __future__ import annotations

import logging
import re
import socket
import struct
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from connector_mparticle.sandbox import events_api
from connector_mparticle.sandbox.caller_auth import authenticate
from connector_mparticle.sandbox.calls import Call, Reply, Route
from connector_mparticle.sandbox.context import SandboxContext
from connector_mparticle.sandbox.error_replies import api_error, server_error, too_many_requests
from connector_mparticle.sandbox.faults import Faults
from connector_mparticle.sandbox.routes import ROUTES

__all__ = ["SandboxHTTPServer"]

log = logging.getLogger("connector_mparticle.sandbox")

_COMPILED = [(re.compile(route.pattern + r"\Z"), route) for route in ROUTES]
_MAX_BODY = 16 * 1024 * 1024  #: bodies beyond this are not read at all


class SandboxHTTPServer(ThreadingHTTPServer):
    """A threading HTTP server that serves one sandbox context."""

    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 256

    def __init__(self, address: tuple[str, int], ctx: SandboxContext) -> None:
        super().__init__(address, _Handler, bind_and_activate=True)
        self.ctx = ctx

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that hangs up (timed out, reset) is normal here; anything else goes to logging."""
        error = sys.exc_info()[1]
        if isinstance(error, (ConnectionError, TimeoutError)):
            return
        log.exception("sandbox: error while serving %s", client_address)


def _route(method: str, path: str) -> tuple[Route, dict[str, str]] | int:
    """The route for ``method`` and ``path``, or 404/405."""
    known = False
    for pattern, route in _COMPILED:
        match = pattern.match(path)
        if match:
            if route.method == method:
                return route, match.groupdict()
            known = True
    return 405 if known else 404


def _injected(ctx: SandboxContext, route: Route, faults: Faults) -> Reply | None:
    """Faults that strike before processing: added latency, then a forced 429 or an injected 5xx."""
    if faults.latency_ms > 0 and ctx.dice.roll(faults.latency_rate):
        time.sleep(faults.latency_ms / 1000.0)
    forced = ctx.faults.take_forced_429(route.api)
    if forced is not None:
        window = ctx.limits.window(route.api)
        return too_many_requests(route.api, window.limit.scope if window else "workspace", forced)
    if ctx.dice.roll(faults.error_rate):
        return server_error(ctx.dice.choice(faults.error_statuses))
    return None


def _authenticated(ctx: SandboxContext, route: Route, call: Call, entry: dict[str, Any]) -> Reply | None:
    """Check the route's credentials; label the call and its log entry with the client, or return the refusal."""
    if route.auth is None:
        return None
    client, refusal = authenticate(ctx, call, route)
    if refusal is None:
        call.client = entry["client"] = client
    return refusal


def _admitted(ctx: SandboxContext, route: Route, call: Call, entry: dict[str, Any],
              faults: Faults) -> float | Reply | None:
    """Injected faults, then credentials, then limits: a Reply refusing the call, else what :func:`_spend` says."""
    refusal = _injected(ctx, route, faults)
    if refusal is None:
        refusal = _authenticated(ctx, route, call, entry)
    return refusal if refusal is not None else _spend(ctx, route, call)


def _malform(reply: Reply, entry: dict[str, Any]) -> None:
    """Cut a JSON answer in half and end it with a NUL byte (the ``malformed`` fault)."""
    payload = reply.payload()
    reply.raw = (payload[: max(1, len(payload) // 2)] if payload else b"{") + b"\x00"
    entry["malformed"] = True


def _charges(route: Route, call: Call) -> list[tuple[str, float]]:
    """(limit name, weight) for each limit the call spends: one request, or one per Events batch."""
    charges: list[tuple[str, float]] = []
    if route.api in ("dsr", "identity", "profile"):
        charges.append((route.api, 1.0))
    elif route.api == "events":
        charges.append(("events", float(events_api.batch_count(call))))
    if route.api == "dsr" and call.method == "POST":
        charges.append(("dsr_submit", 1.0))
    return charges


def _spend(ctx: SandboxContext, route: Route, call: Call) -> float | Reply | None:
    """Charge the API's limits: a 429 Reply when one is exceeded, else the highest percentage used."""
    usage: float | None = None
    now = time.time()
    for name, weight in _charges(route, call):
        window = ctx.limits.window(name)
        if window is None:
            continue
        outcome = window.take(now, weight)
        if not outcome.admitted:
            assert outcome.exceeded is not None
            return too_many_requests(route.api, outcome.exceeded, outcome.retry_after)
        usage = outcome.percent_used if usage is None else max(usage, outcome.percent_used)
    return usage


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go out in two writes; Nagle would hold the body ~40 ms
    server: SandboxHTTPServer
    server_version = "mParticleSandbox/2.0"

    def log_message(self, format: str, *args: Any) -> None:
        return

    def do_GET(self) -> None:
        self._serve()

    def do_POST(self) -> None:
        self._serve()

    def do_PUT(self) -> None:
        self._serve()

    def do_DELETE(self) -> None:
        self._serve()

    def _read_body(self) -> bytes | None:
        """The request body, or None when it is larger than the sandbox will read."""
        if (self.headers.get("Transfer-Encoding") or "").lower() == "chunked":
            chunks, total = [], 0
            while (size := int(self.rfile.readline().strip() or b"0", 16)) > 0:
                total += size
                if total > _MAX_BODY:
                    return None
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
            self.rfile.readline()
            return b"".join(chunks)
        length = int(self.headers.get("Content-Length") or 0)
        if length > _MAX_BODY:
            return None
        return self.rfile.read(length) if length else b""

    def _serve(self) -> None:
        started = time.perf_counter()
        entry: dict[str, Any] = {"at": time.time(), "method": self.command, "path": self.path, "api": "unknown",
                                 "client": "anonymous"}
        received = self._receive(entry)
        reply = received if isinstance(received, Reply) else self._process(*received, entry)
        if reply is not None:
            self._send(reply, entry, started)

    def _receive(self, entry: dict[str, Any]) -> tuple[Route, Call] | Reply:
        """The route and the call, or the answer when there is no route or the body is too large (the
        connection then closes: the body was not read)."""
        parts = urlsplit(self.path)
        routed = _route(self.command, parts.path)
        if isinstance(routed, int):
            self.close_connection = True
            return Reply(routed, {"error": "no such route" if routed == 404 else "method not allowed"})
        route, params = routed
        entry["api"] = route.api
        body = self._read_body()
        if body is None:
            self.close_connection = True
            # Undocumented for every API; 400 is what each documents for a request it cannot accept.
            return api_error(route.api, 400, "BAD_REQUEST", "The request body is too large.")
        if route.api in self.server.ctx.config.log_bodies and route.api != "oauth":  # the token request: a secret
            entry["body"] = body.decode("utf-8", "replace")
        return route, Call(self.command, parts.path, parse_qs(parts.query), self.headers, body, params,
                           query_string=parts.query)

    def _process(self, route: Route, call: Call, entry: dict[str, Any]) -> Reply | None:
        """Faults before, authentication, limits, the handler, faults after; None when the connection was reset."""
        ctx = self.server.ctx
        faults = ctx.faults.get(route.api)
        if ctx.dice.roll(faults.reset_rate):
            self._reset(entry, "reset before processing")
            return None
        usage = _admitted(ctx, route, call, entry, faults)
        if isinstance(usage, Reply):
            return usage
        reply = route.handler(ctx, call)
        if usage is not None and 200 <= reply.status < 300:
            reply.headers["X-mp-rate-limit-percentage-used"] = str(round(usage))
        if ctx.dice.roll(faults.lost_response_rate):
            entry["processed_status"] = reply.status
            self._reset(entry, "response lost after processing")
            return None
        if reply.content_type == "application/json" and ctx.dice.roll(faults.malformed_rate):
            _malform(reply, entry)
        return reply

    def _reset(self, entry: dict[str, Any], outcome: str) -> None:
        """Abort the connection with a TCP reset: the client sees no response at all."""
        entry.update(status=0, outcome=outcome, ms=0.0)
        self.server.ctx.log.record(entry)
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.close_connection = True

    def _send(self, reply: Reply, entry: dict[str, Any], started: float) -> None:
        payload = b"" if reply.file is not None else reply.payload()
        length = reply.file.stat().st_size if reply.file is not None else len(payload)
        # Logged before the response leaves, so a client that has its answer also finds it in the log.
        entry.update(status=reply.status, ms=round((time.perf_counter() - started) * 1000, 2))
        if entry["api"] != "admin":  # the log counts what clients sent to mParticle's APIs
            self.server.ctx.log.record(entry)
        try:
            self._send_head(reply, length)
            self._send_body(reply, payload)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True

    def _send_head(self, reply: Reply, length: int) -> None:
        self.send_response(reply.status)
        for name, value in reply.headers.items():
            self.send_header(name, value)
        if length or reply.file is not None or reply.status not in (202, 204):
            self.send_header("Content-Type", reply.content_type)
        self.send_header("Content-Length", str(length))
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()

    def _send_body(self, reply: Reply, payload: bytes) -> None:
        if reply.file is None:
            if payload:
                self.wfile.write(payload)
            return
        with reply.file.open("rb") as handle:
            while chunk := handle.read(256 * 1024):
                self.wfile.write(chunk)
