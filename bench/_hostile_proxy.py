"""A hostile results host for benchmarks: forwards to a sandbox, but serves a given file as every results zip.

    python -m bench._hostile_proxy UPSTREAM_URL ZIP_PATH

Prints its URL on the first line, then serves until killed. The file is streamed from disk, so this
process's memory stays small whatever the file's size.
"""

from __future__ import annotations

import http.client
import shutil
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

SKIP = {"connection", "keep-alive", "transfer-encoding", "content-length", "host"}


def main() -> None:
    upstream, archive = urlsplit(sys.argv[1]), Path(sys.argv[2])

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _any(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            if self.path.startswith("/dsr-results/"):
                self.send_response(200)
                self.send_header("Content-Type", "application/zip")
                self.send_header("Content-Length", str(archive.stat().st_size))
                self.end_headers()
                with archive.open("rb") as source:
                    shutil.copyfileobj(source, self.wfile, 1 << 20)
                return
            connection = http.client.HTTPConnection(upstream.hostname or "", upstream.port, timeout=30)
            connection.request(self.command, self.path, body=body or None,
                               headers={k: v for k, v in self.headers.items() if k.lower() not in SKIP})
            response = connection.getresponse()
            data = response.read().replace(sys.argv[1].encode(), own_url.encode())
            self.send_response(response.status)
            for key, value in response.getheaders():
                if key.lower() not in SKIP:
                    self.send_header(key, value)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
            connection.close()

        do_GET = do_POST = _any

        def log_message(self, *args: Any) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    own_url = f"http://127.0.0.1:{server.server_address[1]}"
    print(own_url, flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
