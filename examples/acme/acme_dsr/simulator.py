"""A local stand-in for Acme CRM's privacy API, on a loopback port: what the conformance target starts.

It imports nothing from the connector, so the two cannot share a mistake. The harness's oracle reads its
state directly (:meth:`AcmeSimulator.exists` and friends), never through the connector.

API (JSON; ``Authorization: Bearer <key>``, else 401; ``Idempotency-Key`` makes a repeated POST answer with
the original job and write nothing):

* ``GET /v1/account``: 200 when the key is good.
* ``POST /v1/exports {"email"}`` then ``GET /v1/exports/{id}``: ``processing`` (with ``ready_in_seconds``)
  until the job is ready, then ``ready`` with the contact's ``records`` (none for an unknown contact).
* ``POST /v1/erasures {"email"}`` then ``GET /v1/erasures/{id}``: ``processing`` until done; the contact is
  erased when the job is done.
* ``POST /v1/opt-outs {"email", "regulation"}``: records the opt-out; ``{"found": false}`` for no contact.
"""

from __future__ import annotations

import json
import re
import threading
import time
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

__all__ = ["AcmeSimulator"]

_JOB = re.compile(r"^/v1/(exports|erasures)/([A-Za-z0-9-]+)$")


@dataclass
class _Contact:
    records: list[dict[str, Any]]
    opted_out: set[str] = field(default_factory=set)


@dataclass
class _Job:
    kind: str
    email: str
    ready_at: float
    found: bool = False
    records: list[dict[str, Any]] = field(default_factory=list)
    done: bool = False


class AcmeSimulator:
    """Acme's API on ``http://127.0.0.1:<port>``, with jobs that take ``processing_seconds``."""

    def __init__(self, api_key: str, processing_seconds: float = 0.05) -> None:
        self.api_key = api_key
        self.processing_seconds = processing_seconds
        self._lock = threading.Lock()
        self._contacts: dict[str, _Contact] = {}
        self._jobs: dict[str, _Job] = {}
        self._keys: dict[tuple[str, str], str] = {}
        self._writes = 0
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="acme simulator", daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    @contextmanager
    def running(self) -> Iterator[AcmeSimulator]:
        """Serve while the block runs."""
        self._thread.start()
        try:
            yield self
        finally:
            self._server.shutdown()
            self._server.server_close()

    # -- what the target and its oracle use (in process, not HTTP) ------------------------------------------

    def reset(self) -> None:
        with self._lock:
            self._contacts.clear()
            self._jobs.clear()
            self._keys.clear()
            self._writes = 0

    def seed(self, email: str, records: list[dict[str, Any]]) -> None:
        with self._lock:
            self._contacts[email.lower()] = _Contact([dict(r) for r in records])

    def exists(self, email: str) -> bool:
        with self._lock:
            self._settle()
            return email.lower() in self._contacts

    def opted_out(self, email: str, regulation: str) -> bool:
        with self._lock:
            contact = self._contacts.get(email.lower())
            return contact is not None and regulation in contact.opted_out

    def records(self, email: str) -> list[dict[str, Any]]:
        with self._lock:
            contact = self._contacts.get(email.lower())
            return [dict(r) for r in contact.records] if contact else []

    def writes(self) -> int:
        with self._lock:
            return self._writes

    # -- the API ------------------------------------------------------------------------------------------

    def _settle(self) -> None:
        """Finish the jobs whose time has come (an erasure erases then)."""
        now = time.monotonic()
        for job in self._jobs.values():
            if not job.done and now >= job.ready_at:
                job.done = True
                contact = self._contacts.get(job.email)
                job.found = contact is not None
                if job.kind == "exports" and contact is not None:
                    job.records = [dict(r) for r in contact.records]
                if job.kind == "erasures":
                    self._contacts.pop(job.email, None)

    def _start(self, kind: str, email: str, key: str | None) -> dict[str, Any]:
        if key is not None and (kind, key) in self._keys:
            job_id = self._keys[(kind, key)]
        else:
            job_id = str(uuid.uuid4())
            self._jobs[job_id] = _Job(kind, email.lower(), time.monotonic() + self.processing_seconds)
            self._writes += 1
            if key is not None:
                self._keys[(kind, key)] = job_id
        return self._describe(job_id)

    def _describe(self, job_id: str) -> dict[str, Any]:
        job = self._jobs[job_id]
        if not job.done:
            return {"id": job_id, "status": "processing",
                    "ready_in_seconds": round(max(0.0, job.ready_at - time.monotonic()), 3)}
        answer: dict[str, Any] = {"id": job_id, "status": "ready" if job.kind == "exports" else "done",
                                  "found": job.found}
        if job.kind == "exports":
            answer["records"] = job.records
        return answer

    def _opt_out(self, email: str, regulation: str, key: str | None) -> dict[str, Any]:
        contact = self._contacts.get(email.lower())
        if contact is None:
            return {"found": False}
        if key is None or ("opt-outs", key) not in self._keys:
            contact.opted_out.add(regulation)
            self._writes += 1
            if key is not None:
                self._keys[("opt-outs", key)] = email
        return {"found": True}

    def answer(self, method: str, path: str, headers: Mapping[str, str], body: Any) -> tuple[int, dict[str, Any]]:
        """The status and JSON answer for one request."""
        if headers.get("authorization") != f"Bearer {self.api_key}":
            return 401, {"error": "invalid API key"}
        with self._lock:
            self._settle()
            routed = self._route(method, path, body, headers.get("idempotency-key"))
        return routed or (404, {"error": "no such route or job"})

    def _route(self, method: str, path: str, body: Any, key: str | None) -> tuple[int, dict[str, Any]] | None:
        """The answer of the route ``method path`` serves (None: no such route, or a body it cannot take)."""
        if method == "GET":
            return self._get(path)
        email = body.get("email") if isinstance(body, dict) else None
        if method != "POST" or not isinstance(email, str):
            return None
        if path in ("/v1/exports", "/v1/erasures"):
            return 202, self._start(path.rsplit("/", 1)[1], email, key)
        if path == "/v1/opt-outs":
            return 200, self._opt_out(email, str(body.get("regulation", "")), key)
        return None

    def _get(self, path: str) -> tuple[int, dict[str, Any]] | None:
        if path == "/v1/account":
            return 200, {"account": "Acme test account"}
        match = _JOB.match(path)
        if match and match.group(2) in self._jobs and self._jobs[match.group(2)].kind == match.group(1):
            return 200, self._describe(match.group(2))
        return None

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        simulator = self

        class Handler(BaseHTTPRequestHandler):
            def _serve(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                try:
                    body = json.loads(raw) if raw else None
                except ValueError:
                    body = None
                headers = {k.lower(): v for k, v in self.headers.items()}
                status, answer = simulator.answer(self.command, self.path, headers, body)
                data = json.dumps(answer).encode("utf-8")
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = _serve  # http.server's names

            def log_message(self, format: str, *args: Any) -> None:  # quiet: and no emails in logs
                pass

        return Handler
