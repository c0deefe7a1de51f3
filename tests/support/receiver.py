"""A loopback HTTP endpoint that records what is POSTed to it (status callbacks)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any

from connector_mparticle.sandbox.server import Serving


@contextmanager
def callback_receiver() -> Iterator[tuple[str, list[tuple[dict[str, str], bytes]]]]:
    """Yields (url, received), where received lists (lower-cased headers, raw body) per POST."""
    received: list[tuple[dict[str, str], bytes]] = []

    class Receiver(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            received.append(({k.lower(): v for k, v in self.headers.items()}, body))
            self.send_response(202)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            return

    server = HTTPServer(("127.0.0.1", 0), Receiver)
    serving = Serving(server, "callback-receiver")
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/dsr-callback", received
    finally:
        serving.stop()
