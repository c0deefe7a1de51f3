"""A hostile mParticle for tests: a loopback HTTP server under the test's control.

It sits in front of a real sandbox (``upstream``) and forwards by default, so the connector goes through its
normal flows; rules registered with :meth:`HostileServer.on` can answer instead, tamper with the forwarded
answer, or write raw bytes slowly. Every request it receives is recorded with its headers and body, so a
test can prove where credentials went. Bind it to another loopback address (``127.0.0.2``) to play a
"foreign" host.
"""

from __future__ import annotations

import http.client
import json
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, BinaryIO
from urllib.parse import urlsplit

from connector_mparticle.sandbox.server import Serving

HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade", "proxy-authorization",
              "proxy-authenticate", "content-length", "host"}


@dataclass
class Seen:
    """One request the server received."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes

    @property
    def authorization(self) -> str | None:
        return self.headers.get("authorization")

    def json(self) -> Any:
        return json.loads(self.body) if self.body else None


@dataclass
class Answer:
    """A response: status, headers, body; or ``stream``, which writes the raw response itself."""

    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    stream: Callable[[BinaryIO], None] | None = None

    @classmethod
    def of_json(cls, status: int, data: Any, **headers: str) -> Answer:
        return cls(status, {"Content-Type": "application/json", **headers}, json.dumps(data).encode())

    def json(self) -> Any:
        return json.loads(self.body) if self.body else None

    def with_json(self, data: Any) -> Answer:
        return Answer(self.status, {**self.headers, "Content-Type": "application/json"}, json.dumps(data).encode())


Rule = Callable[[Seen, Callable[[], Answer]], Answer]


def drip(status_line: bytes, headers: bytes, body: bytes, every: float, *, from_start: bool = False) -> Callable[
        [BinaryIO], None]:
    """A ``stream`` that sends one byte every ``every`` seconds: the body only, or (``from_start``) the whole
    response including its status line, so each read finishes just inside a read timeout."""
    def write(out: BinaryIO) -> None:
        head = status_line + b"\r\n" + headers + b"\r\n"
        if not from_start:
            out.write(head)
            out.flush()
        for byte in (head + body if from_start else body):
            time.sleep(every)
            out.write(bytes([byte]))
            out.flush()

    return write


class HostileServer:
    """An HTTP server on ``host`` (a loopback address) that forwards to ``upstream`` unless a rule answers."""

    def __init__(self, host: str = "127.0.0.1", upstream: str | None = None) -> None:
        self.upstream = upstream
        self.seen: list[Seen] = []
        self._rules: list[tuple[str, re.Pattern[str], Rule]] = []
        self._lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _any(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                seen = Seen(self.command, self.path, {k.lower(): v for k, v in self.headers.items()},
                            self.rfile.read(length) if length else b"")
                with server._lock:
                    server.seen.append(seen)
                answer = server._answer(seen)
                try:
                    if answer.stream is not None:
                        self.close_connection = True
                        answer.stream(self.wfile)
                        return
                    self.send_response(answer.status)
                    for key, value in answer.headers.items():
                        if key.lower() not in HOP_BY_HOP:
                            self.send_header(key, value)
                    self.send_header("Content-Length", str(len(answer.body)))
                    self.end_headers()
                    self.wfile.write(answer.body)
                except (BrokenPipeError, ConnectionResetError, TimeoutError):
                    self.close_connection = True

            do_GET = do_POST = do_PUT = do_DELETE = _any

            def log_message(self, *args: Any) -> None:
                return

        class Server(ThreadingHTTPServer):
            daemon_threads = True

            def handle_error(self, request: Any, client_address: Any) -> None:
                return  # a client that hung up mid-drip is the point of some tests

        self._server = Server((host, 0), Handler)
        self.url = f"http://{host}:{self._server.server_address[1]}"
        self.host = host
        self.port = int(self._server.server_address[1])
        self._serving = Serving(self._server, "hostile-http")

    def __enter__(self) -> HostileServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._serving.stop()

    def on(self, method: str, pattern: str, rule: Rule) -> None:
        """Answer requests matching ``method`` and ``pattern`` (a regex over the path) with ``rule(seen, forward)``;
        later rules win."""
        self._rules.insert(0, (method, re.compile(pattern), rule))

    def clear(self) -> None:
        self._rules.clear()
        with self._lock:
            self.seen.clear()

    def requests(self, pattern: str = "") -> list[Seen]:
        with self._lock:
            return [s for s in self.seen if re.search(pattern, s.path)]

    def _answer(self, seen: Seen) -> Answer:
        for method, pattern, rule in self._rules:
            if method in (seen.method, "*") and pattern.search(seen.path):
                return rule(seen, lambda: self._forward(seen))
        return self._forward(seen)

    def _forward(self, seen: Seen) -> Answer:
        if self.upstream is None:
            return Answer.of_json(404, {"error": "nothing here"})
        target = urlsplit(self.upstream)
        connection = http.client.HTTPConnection(target.hostname or "", target.port, timeout=30)
        try:
            headers = {k: v for k, v in seen.headers.items() if k not in HOP_BY_HOP}
            connection.request(seen.method, seen.path, body=seen.body or None, headers=headers)
            response = connection.getresponse()
            body = response.read()
            return Answer(response.status, {k: v for k, v in response.getheaders() if k.lower() not in HOP_BY_HOP},
                          body.replace(self.upstream.encode(), self.url.encode()))
        finally:
            connection.close()
