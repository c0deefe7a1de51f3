"""The sandbox HTTP server: one origin serving OpenDSR v3, IDSync v1, Events v2, OAuth and the admin API.

Each request goes through the same steps: route, injected faults, authentication, the API's rate limit,
the handler, then (for faults that strike after processing) a lost or malformed response. Every request
is written to a log the admin API exposes, so tests and benchmarks can count what a client really sent.
"""

from __future__ import annotations

import json
import logging
import queue
import re
import socket
import ssl
import struct
import tempfile
import threading
import time
import urllib.request
from collections import deque
from dataclasses import replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from connector_mparticle.sandbox import admin_api, events_api, identity_api, oauth_api, opendsr_api
from connector_mparticle.sandbox.admin_client import SandboxAdmin
from connector_mparticle.sandbox.auth import authenticate
from connector_mparticle.sandbox.config import SandboxConfig
from connector_mparticle.sandbox.http import Call, Reply, Route
from connector_mparticle.sandbox.limits import FaultDice, Faults, Limit, RateWindow, default_limits, retry_after_header
from connector_mparticle.sandbox.pki import PROCESSOR_DOMAIN, SandboxPKI, default_pki, sign_body
from connector_mparticle.sandbox.store import DsrRecord, Store

__all__ = ["ROUTES", "Sandbox", "SandboxContext"]

log = logging.getLogger("connector_mparticle.sandbox")

ROUTES: list[Route] = [*opendsr_api.ROUTES, *identity_api.ROUTES, *events_api.ROUTES, *oauth_api.ROUTES,
                       *admin_api.ROUTES]
_COMPILED = [(re.compile(route.pattern + r"\Z"), route) for route in ROUTES]
_MAX_BODY = 16 * 1024 * 1024
_LOG_LIMIT = 500_000
_NO_FAULTS = Faults()


def _too_many(api: str, scope: str, retry_after: float) -> Reply:
    message = "Too many requests: the rate limit was exceeded."
    if api == "dsr":
        reply = opendsr_api.dsr_error(429, message, reason="TooManyRequestsException")
    elif api == "identity":
        reply = identity_api.identity_error(429, "TOO_MANY_REQUESTS", message)
    else:
        reply = events_api.events_error(429, message)
    reply.headers.update({"Retry-After": retry_after_header(retry_after), "X-mp-rate-limit-exceeded": scope})
    return reply


def _server_error(status: int) -> Reply:
    return Reply(status, {"errors": [{"code": "INTERNAL_ERROR", "message": f"sandbox fault: HTTP {status}"}]})


class CallbackDispatcher:
    """Sends signed OpenDSR status callbacks from a background thread (only to loopback URLs)."""

    def __init__(self, ctx: SandboxContext) -> None:
        self._ctx = ctx
        self._queue: queue.Queue[tuple[str, bytes, str, str] | None] = queue.Queue()
        self._deliveries: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, name="sandbox-callbacks", daemon=True)
        self._thread.start()

    def enqueue(self, record: DsrRecord) -> None:
        for url in record.callback_urls:
            body = dict(opendsr_api.status_body(self._ctx, record))
            body["status_callback_url"] = url
            self._queue.put((url, json.dumps(body).encode(), record.subject_request_id, record.status))

    def deliveries(self) -> list[dict[str, Any]]:
        with self._lock:
            return list(self._deliveries)

    def clear(self) -> None:
        with self._lock:
            self._deliveries.clear()

    def close(self) -> None:
        self._queue.put(None)
        self._thread.join(timeout=5)

    def _run(self) -> None:
        while (item := self._queue.get()) is not None:
            url, body, request_id, status = item
            entry: dict[str, Any] = {"url": url, "subject_request_id": request_id, "request_status": status,
                                     "at": time.time()}
            host = urlsplit(url).hostname or ""
            if host not in ("127.0.0.1", "localhost", "::1"):
                entry.update(delivered=False, outcome="not sent: the sandbox only delivers to loopback")
            else:
                entry.update(self._post(url, body))
            with self._lock:
                self._deliveries.append(entry)

    def _post(self, url: str, body: bytes) -> dict[str, Any]:
        headers = {"Content-Type": "application/json", "X-OpenDSR-Processor-Domain": PROCESSOR_DOMAIN,
                   "X-OpenDSR-Signature": sign_body(self._ctx.pki.processor.key, body)}
        outcome = "no attempt"
        for attempt in range(3):  # the spec says processors should retry failed callbacks
            request = urllib.request.Request(url, body, headers, method="POST")  # noqa: S310 - loopback only
            try:
                with urllib.request.urlopen(request, timeout=5) as response:  # noqa: S310
                    return {"delivered": True, "http_status": response.status, "attempts": attempt + 1}
            except urllib.error.HTTPError as exc:
                outcome = f"HTTP {exc.code}"
                if exc.code < 500:
                    return {"delivered": False, "http_status": exc.code, "attempts": attempt + 1}
            except OSError as exc:
                outcome = f"{type(exc).__name__}: {exc}"
            time.sleep(0.2 * (attempt + 1))
        return {"delivered": False, "outcome": outcome, "attempts": 3}


class SandboxContext:
    """Everything a route handler can reach: settings, data, limits, faults, tokens and the request log."""

    def __init__(self, config: SandboxConfig, pki: SandboxPKI) -> None:
        self.config = config
        self.pki = pki
        self.base_url = ""
        self.store = Store(config.durations, config.results_ttl_seconds, config.overrun_seconds,
                           config.include_live_profile, config.results_padding_bytes)
        self._default_limits = dict(config.limits or default_limits())
        self.windows = {api: RateWindow(limit) for api, limit in self._default_limits.items()}
        self.fault_settings: dict[str, Faults] = {}
        self.dice = FaultDice(config.seed)
        self.tokens: dict[str, float] = {}
        self._log: deque[dict[str, Any]] = deque(maxlen=_LOG_LIMIT)
        self._seq = 0
        self._log_lock = threading.Lock()
        self._fault_lock = threading.Lock()
        self.callbacks = CallbackDispatcher(self)

    def faults(self, api: str) -> Faults:
        return self.fault_settings.get(api, _NO_FAULTS)

    def take_forced_429(self, api: str) -> int | None:
        """If a run of 429s is switched on for ``api``, use one up and return its Retry-After."""
        with self._fault_lock:
            faults = self.fault_settings.get(api)
            if faults is None or faults.force_429 <= 0:
                return None
            faults.force_429 -= 1
            return faults.retry_after

    def set_limit(self, api: str, limit: Limit) -> None:
        self.windows[api] = RateWindow(limit)

    def advance(self) -> None:
        for record in self.store.advance():
            self.notify(record)

    def notify(self, record: DsrRecord) -> None:
        self.callbacks.enqueue(record)

    def record(self, entry: dict[str, Any]) -> None:
        with self._log_lock:
            self._seq += 1
            entry["seq"] = self._seq
            self._log.append(entry)

    def log_entries(self, since: int = 0) -> list[dict[str, Any]]:
        with self._log_lock:
            return [e for e in self._log if e["seq"] > since]

    def log_next(self) -> int:
        with self._log_lock:
            return self._seq

    def clear_log(self) -> None:
        with self._log_lock:
            self._log.clear()

    def reset(self) -> None:
        self.store.reset()
        with self.store.lock:
            self.tokens.clear()
        self.fault_settings.clear()
        self.windows = {api: RateWindow(limit) for api, limit in self._default_limits.items()}
        self.clear_log()
        self.callbacks.clear()


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 256
    ctx: SandboxContext

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that hangs up (timed out, reset) is normal here; anything else goes to logging."""
        import sys

        error = sys.exc_info()[1]
        if isinstance(error, (ConnectionError, TimeoutError)):
            return
        log.exception("sandbox: error while serving %s", client_address)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go out in two writes; Nagle would hold the body ~40 ms
    server: _Server
    server_version = "mParticleSandbox/1.0"

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
        if (self.headers.get("Transfer-Encoding") or "").lower() == "chunked":
            chunks = []
            while (size := int(self.rfile.readline().strip() or b"0", 16)) > 0:
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
        body = self._read_body()
        if body is None:
            self.close_connection = True
            self._send(Reply(413, {"error": "request body too large"}), entry, started)
            return
        for pattern, route in _COMPILED:
            match = pattern.match(parts.path)
            if match and route.method == self.command:
                break
        else:
            known_path = any(p.match(parts.path) for p, _ in _COMPILED)
            self._send(Reply(405 if known_path else 404, {"error": "no such route"}), entry, started)
            return
        entry["api"] = route.api
        call = Call(self.command, parts.path, parse_qs(parts.query), self.headers, body, match.groupdict())
        faults = ctx.faults(route.api)
        if ctx.dice.roll(faults.reset_rate):
            self._reset(entry, "reset before processing")
            return
        if faults.latency_ms > 0 and ctx.dice.roll(faults.latency_rate):
            time.sleep(faults.latency_ms / 1000.0)
        forced = ctx.take_forced_429(route.api)
        if forced is not None:
            scope = ctx.windows[route.api].limit.scope if route.api in ctx.windows else "workspace"
            self._send(_too_many(route.api, scope, forced), entry, started)
            return
        if ctx.dice.roll(faults.error_rate):
            self._send(_server_error(ctx.dice.choice(faults.error_statuses)), entry, started)
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

    def _spend(self, ctx: SandboxContext, route: Route, call: Call) -> float | Reply | None:
        """Charge the API's rate limit; a Reply (429) when it is exceeded, else the percentage used."""
        checks: list[tuple[str, float]] = []
        if route.api in ("dsr", "identity"):
            checks.append((route.api, 1.0))
        elif route.api == "events":
            checks.append(("events", float(events_api.batch_count(call))))
        if route.api == "dsr" and call.method == "POST":
            checks.append(("dsr_submit", 1.0))
        usage: float | None = None
        now = time.time()
        for name, weight in checks:
            window = ctx.windows.get(name)
            if window is None:
                continue
            admitted, wait, percent = window.take(now, weight)
            if not admitted:
                return _too_many(route.api, window.limit.scope, wait)
            usage = percent if usage is None else max(usage, percent)
        return usage

    def _reset(self, entry: dict[str, Any], outcome: str) -> None:
        """Abort the connection with a TCP reset: the client sees no response at all."""
        entry.update(status=0, outcome=outcome, ms=0.0)
        self.server.ctx.record(entry)
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.close_connection = True

    def _send(self, reply: Reply, entry: dict[str, Any], started: float) -> None:
        payload = b"" if reply.file is not None else reply.payload()
        length = reply.file.stat().st_size if reply.file is not None else len(payload)
        # Logged before the response leaves, so a client that has its answer also finds it in the log.
        entry.update(status=reply.status, ms=round((time.perf_counter() - started) * 1000, 2))
        if entry["api"] != "admin":  # the log counts what clients sent to mParticle's APIs
            self.server.ctx.record(entry)
        try:
            self.send_response(reply.status)
            for name, value in reply.headers.items():
                self.send_header(name, value)
            if length or reply.file is not None or reply.status not in (202, 204):
                self.send_header("Content-Type", reply.content_type)
            self.send_header("Content-Length", str(length))
            self.end_headers()
            if reply.file is not None:
                with reply.file.open("rb") as handle:
                    while chunk := handle.read(256 * 1024):
                        self.wfile.write(chunk)
            elif payload:
                self.wfile.write(payload)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True


class Sandbox(SandboxAdmin):
    """A local mParticle: ``with Sandbox() as sb:`` serves every API at ``sb.url`` until the block ends."""

    def __init__(self, config: SandboxConfig | None = None, *, pki: SandboxPKI | None = None,
                 **overrides: Any) -> None:
        self.config = replace(config or SandboxConfig(), **overrides)
        self.pki = pki or default_pki()
        self.ctx = SandboxContext(self.config, self.pki)
        self._server: _Server | None = None
        self._threads: list[threading.Thread] = []
        self._stop = threading.Event()
        self._ca_dir: tempfile.TemporaryDirectory[str] | None = None
        super().__init__("")

    def start(self) -> Sandbox:
        """Bind, start serving in background threads, and return self."""
        server = _Server((self.config.host, self.config.port), _Handler, bind_and_activate=True)
        server.ctx = self.ctx
        self._ca_dir = tempfile.TemporaryDirectory(prefix="mparticle-sandbox-ca-")
        ca_file = Path(self._ca_dir.name) / "sandbox-ca.pem"
        ca_file.write_bytes(self.pki.ca.cert_pem)
        if self.config.https:
            key_file = Path(self._ca_dir.name) / "tls.pem"
            key_file.write_bytes(self.pki.tls.key_pem + self.pki.tls.cert_pem)
            tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            tls.load_cert_chain(key_file)
            server.socket = tls.wrap_socket(server.socket, server_side=True)
        host, port = server.server_address[:2]
        scheme = "https" if self.config.https else "http"
        shown = "127.0.0.1" if host in ("127.0.0.1", "0.0.0.0") else str(host)  # noqa: S104
        self.url = f"{scheme}://{shown}:{port}"
        self.ctx.base_url = self.url
        self.ca_file = str(ca_file)
        self._verify = self.ca_file if self.config.https else True
        self._server = server
        self._threads = [
            threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1}, name="sandbox-http",
                             daemon=True),
            threading.Thread(target=self._tick, name="sandbox-clock", daemon=True),
        ]
        for thread in self._threads:
            thread.start()
        return self

    def _tick(self) -> None:
        while not self._stop.wait(0.05):
            self.ctx.advance()

    def close(self) -> None:
        """Stop serving and remove temporary files."""
        self._stop.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        self.ctx.callbacks.close()
        self.ctx.store.close()
        self.session.close()
        if self._ca_dir is not None:
            self._ca_dir.cleanup()
            self._ca_dir = None

    def __enter__(self) -> Sandbox:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def connector_config(self, oauth: bool = False, **extra: Any) -> dict[str, Any]:
        """A connector configuration pointing every API at this sandbox (merged with ``extra``)."""
        config: dict[str, Any] = self.config.credentials.connector_config(self.url, oauth=oauth)
        if self.config.https:
            config["trust_store"] = self.ca_file
        config.update(extra)
        return config
