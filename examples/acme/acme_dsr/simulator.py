"""A local stand-in for Acme CRM's privacy API, on a loopback port: what the conformance target starts.

It imports nothing from the connector, so the two cannot share a mistake. The harness's oracle reads its
state directly (:meth:`AcmeSimulator.exists` and friends), never through the connector; its witness reads the
raw store (:meth:`AcmeSimulator.dump`).

API (JSON; ``Authorization: Bearer <key>``, else 401; ``Idempotency-Key`` makes a repeated POST answer with
the original job and write nothing). A contact is found by ``email`` or ``customer_id`` (either is enough):

* ``GET /v1/account``: 200 when the key is good.
* ``GET /v1/contacts[?name=…]``: the contacts (``email``, ``customer_id``), all of them or those whose records
  carry that name.
* ``POST /v1/exports {"email"|"customer_id"}`` then ``GET /v1/exports/{id}``: ``processing`` (with
  ``ready_in_seconds``) until the job is ready, then ``ready`` with the contact's ``records`` (none for an
  unknown contact).
* ``POST /v1/erasures {"email"|"customer_id"}`` then ``GET /v1/erasures/{id}``: ``processing`` until done; the
  contact is erased when the job is done.
* ``POST /v1/opt-outs {"email"|"customer_id", "regulation"}``: records the opt-out; ``{"found": false}`` for no
  contact.

Every request is logged with its time (:meth:`AcmeSimulator.calls`), as a vendor counts calls against its limits.
"""

from __future__ import annotations

import json
import re
import threading
import time
import uuid
from collections import deque
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

__all__ = ["AcmeSimulator"]

_JOB = re.compile(r"^/v1/(exports|erasures)/([A-Za-z0-9-]+)$")


class _Server(ThreadingHTTPServer):
    request_queue_size = 128  # many clients at once (the harness's bursts) are queued, not refused


@dataclass
class _Contact:
    email: str
    customer_id: str | None
    records: list[dict[str, Any]]
    opted_out: set[str] = field(default_factory=set)


@dataclass
class _Job:
    kind: str
    email: str | None  #: the contact the job is for (None: no such contact)
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
        self._calls: deque[tuple[float, str]] = deque(maxlen=100_000)
        self._server = _Server(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        name="acme simulator", daemon=True)  # stops within 50 ms of shutdown()

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

    # -- what the target, its oracle and its witness use (in process, not HTTP) ----------------------------

    def reset(self) -> None:
        """Forget every contact, job and write (the log of calls stays: it is the vendor's, not the data's)."""
        with self._lock:
            self._contacts.clear()
            self._jobs.clear()
            self._keys.clear()
            self._writes = 0

    def seed(self, email: str, records: list[dict[str, Any]], customer_id: str | None = None) -> None:
        with self._lock:
            self._contacts[email.lower()] = _Contact(email.lower(), customer_id, [dict(r) for r in records])

    def _find(self, who: Mapping[str, Any]) -> _Contact | None:
        """The contact with this email or customer id (either is enough)."""
        email, customer_id = who.get("email"), who.get("customer_id")
        if isinstance(email, str) and email.lower() in self._contacts:
            return self._contacts[email.lower()]
        return next((c for c in self._contacts.values() if customer_id and c.customer_id == customer_id), None)

    def exists(self, who: Mapping[str, str]) -> bool:
        with self._lock:
            self._settle()
            return self._find(who) is not None

    def opted_out(self, who: Mapping[str, str], regulation: str) -> bool:
        with self._lock:
            contact = self._find(who)
            return contact is not None and regulation in contact.opted_out

    def records(self, who: Mapping[str, str]) -> list[dict[str, Any]]:
        with self._lock:
            contact = self._find(who)
            return [dict(r) for r in contact.records] if contact else []

    def writes(self) -> int:
        with self._lock:
            return self._writes

    def calls(self) -> list[tuple[float, str]]:
        """Every request served, as ``(time.monotonic(), "api")``: what Acme counts against its rate limit."""
        with self._lock:
            return list(self._calls)

    def dump(self) -> str:
        """The raw store as JSON text: every contact, as it sits in storage (for an independent witness)."""
        with self._lock:
            self._settle()
            contacts = [{**asdict(c), "opted_out": sorted(c.opted_out)} for c in self._contacts.values()]
            return json.dumps({"contacts": contacts, "writes": self._writes})

    # -- the API ------------------------------------------------------------------------------------------

    def _settle(self) -> None:
        """Finish the jobs whose time has come (an erasure erases then)."""
        now = time.monotonic()
        for job in self._jobs.values():
            if not job.done and now >= job.ready_at:
                job.done = True
                contact = self._contacts.get(job.email) if job.email else None
                job.found = contact is not None
                if job.kind == "exports" and contact is not None:
                    job.records = [dict(r) for r in contact.records]
                if job.kind == "erasures" and job.email:
                    self._contacts.pop(job.email, None)

    def _start(self, kind: str, who: Mapping[str, Any], key: str | None) -> dict[str, Any]:
        if key is not None and (kind, key) in self._keys:
            job_id = self._keys[(kind, key)]
        else:
            job_id = str(uuid.uuid4())
            contact = self._find(who)
            self._jobs[job_id] = _Job(kind, contact.email if contact else None,
                                      time.monotonic() + self.processing_seconds)
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

    def _opt_out(self, who: Mapping[str, Any], regulation: str, key: str | None) -> dict[str, Any]:
        contact = self._find(who)
        if contact is None:
            return {"found": False}
        if key is None or ("opt-outs", key) not in self._keys:
            contact.opted_out.add(regulation)
            self._writes += 1
            if key is not None:
                self._keys[("opt-outs", key)] = contact.email
        return {"found": True}

    def _contacts_named(self, name: str | None) -> dict[str, Any]:
        found = [c for c in self._contacts.values()
                 if name is None or any(r.get("name") == name for r in c.records)]
        return {"contacts": [{"email": c.email, "customer_id": c.customer_id} for c in found]}

    def answer(self, method: str, path: str, headers: Mapping[str, str], body: Any) -> tuple[int, dict[str, Any]]:
        """The status and JSON answer for one request."""
        with self._lock:
            self._calls.append((time.monotonic(), "api"))
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
        who = body if isinstance(body, dict) else {}
        if method != "POST" or not any(isinstance(who.get(k), str) for k in ("email", "customer_id")):
            return None
        if path in ("/v1/exports", "/v1/erasures"):
            return 202, self._start(path.rsplit("/", 1)[1], who, key)
        if path == "/v1/opt-outs":
            return 200, self._opt_out(who, str(who.get("regulation", "")), key)
        return None

    def _get(self, target: str) -> tuple[int, dict[str, Any]] | None:
        parts = urlsplit(target)
        if parts.path == "/v1/account":
            return 200, {"account": "Acme test account"}
        if parts.path == "/v1/contacts":
            return 200, self._contacts_named(parse_qs(parts.query).get("name", [None])[0])
        match = _JOB.match(parts.path)
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
