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
from connector_mparticle.sandbox.auth import authenticate
from connector_mparticle.sandbox.context import SandboxContext
from connector_mparticle.sandbox.errors import api_error, server_error, too_many_requests
from connector_mparticle.sandbox.http import Call, Reply, Route
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
        ctx = self.server.ctx
        started = time.perf_counter()
        parts = urlsplit(self.path)
        entry: dict[str, Any] = {"at": time.time(), "method": self.command, "path": self.path, "api": "unknown",
                                 "client": "anonymous"}
        routed = _route(self.command, parts.path)
        if isinstance(routed, int):
            self.close_connection = True  # the body (if any) was not read
            self._send(Reply(routed, {"error": "no such route" if routed == 404 else "method not allowed"}),
                       entry, started)
            return
        route, params = routed
        entry["api"] = route.api
        body = self._read_body()
        if body is None:
            self.close_connection = True
            # Undocumented for every API; 400 is what each documents for a request it cannot accept.
            self._send(api_error(route.api, 400, "BAD_REQUEST", "The request body is too large."), entry, started)
            return
        if route.api in ctx.config.log_bodies and route.api != "oauth":  # the token request holds a secret
            entry["body"] = body.decode("utf-8", "replace")
        call = Call(self.command, parts.path, parse_qs(parts.query), self.headers, body, params)
        faults = ctx.faults.get(route.api)
        if ctx.dice.roll(faults.reset_rate):
            self._reset(entry, "reset before processing")
            return
        if faults.latency_ms > 0 and ctx.dice.roll(faults.latency_rate):
            time.sleep(faults.latency_ms / 1000.0)
        forced = ctx.faults.take_forced_429(route.api)
        if forced is not None:
            window = ctx.limits.window(route.api)
            self._send(too_many_requests(route.api, window.limit.scope if window else "workspace", forced),
                       entry, started)
            return
        if ctx.dice.roll(faults.error_rate):
            self._send(server_error(ctx.dice.choice(faults.error_statuses)), entry, started)
            return
        if route.auth is not None:
            client, refusal = authenticate(ctx, call, route)
            if refusal is not None:
                self._send(refusal, entry, started)
                return
            call.client = entry["client"] = client
        usage = self._spend(ctx, route, call)
        if isinstance(usage, Reply):
            self._send(usage, entry, started)
            return
        reply = route.handler(ctx, call)
        if usage is not None and 200 <= reply.status < 300:
            reply.headers["X-mp-rate-limit-percentage-used"] = str(round(usage))
        if ctx.dice.roll(faults.lost_response_rate):
            entry["processed_status"] = reply.status
            self._reset(entry, "response lost after processing")
            return
        if reply.content_type == "application/json" and ctx.dice.roll(faults.malformed_rate):
            payload = reply.payload()
            reply.raw = (payload[: max(1, len(payload) // 2)] if payload else b"{") + b"\x00"
            entry["malformed"] = True
        self._send(reply, entry, started)

    @staticmethod
    def _spend(ctx: SandboxContext, route: Route, call: Call) -> float | Reply | None:
        """Charge the API's limits: a 429 Reply when one is exceeded, else the highest percentage used."""
        charges: list[tuple[str, float]] = []
        if route.api in ("dsr", "identity", "profile"):
            charges.append((route.api, 1.0))
        elif route.api == "events":
            charges.append(("events", float(events_api.batch_count(call))))
        if route.api == "dsr" and call.method == "POST":
            charges.append(("dsr_submit", 1.0))
        usage: float | None = None
        now = time.time()
        for name, weight in charges:
            window = ctx.limits.window(name)
            if window is None:
                continue
            outcome = window.take(now, weight)
            if not outcome.admitted:
                assert outcome.exceeded is not None
                return too_many_requests(route.api, outcome.exceeded, outcome.retry_after)
            usage = outcome.percent_used if usage is None else max(usage, outcome.percent_used)
        return usage

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
            self.send_response(reply.status)
            for name, value in reply.headers.items():
                self.send_header(name, value)
            if length or reply.file is not None or reply.status not in (202, 204):
                self.send_header("Content-Type", reply.content_type)
            self.send_header("Content-Length", str(length))
            if self.close_connection:
                self.send_header("Connection", "close")
            self.end_headers()
            if reply.file is not None:
                with reply.file.open("rb") as handle:
                    while chunk := handle.read(256 * 1024):
                        self.wfile.write(chunk)
            elif payload:
                self.wfile.write(payload)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True
