"""What a route handler can reach: settings, data, limits, faults, tokens, the request log and callbacks.

Each shared part owns its own lock (the store, limits, faults, tokens, the log, the workspace settings, the
callback sender); the context itself holds no mutable state of its own besides the base URL set at start.
"""

from __future__ import annotations

import json
from typing import Any

from connector_mparticle.sandbox.callback_sender import Callback, CallbackSender
from connector_mparticle.sandbox.dsr_status import status_body
from connector_mparticle.sandbox.faults import FaultBook, FaultDice
from connector_mparticle.sandbox.instance_config import SandboxConfig
from connector_mparticle.sandbox.limits import LimitBook, default_limits
from connector_mparticle.sandbox.pki import PROCESSOR_DOMAIN, SandboxPKI, sign_body
from connector_mparticle.sandbox.records import DsrRecord
from connector_mparticle.sandbox.request_log import RequestLog
from connector_mparticle.sandbox.shapes import ShapeBook
from connector_mparticle.sandbox.store import Store
from connector_mparticle.sandbox.tokens import TokenBook
from connector_mparticle.sandbox.workspace import WorkspaceBook

__all__ = ["SandboxContext"]


class SandboxContext:
    """Everything the sandbox serves from, shared by every request thread."""

    def __init__(self, config: SandboxConfig, pki: SandboxPKI) -> None:
        self.config = config
        self.pki = pki
        self.base_url = ""
        self.shapes = ShapeBook(config.shapes)
        self.store = Store(config.durations, config.results_ttl_seconds, config.overrun_seconds,
                           config.results_padding_bytes, self.shapes)
        self.workspace = WorkspaceBook(config.workspace())
        self.limits = LimitBook(dict(config.limits or default_limits()))
        self.faults = FaultBook()
        self.dice = FaultDice(config.seed)
        self.tokens = TokenBook()
        self.log = RequestLog()
        self.callbacks = CallbackSender()

    def advance(self) -> None:
        """Move DSRs along their schedule and send callbacks for those that changed."""
        for record in self.store.advance(self.workspace.current):
            self.notify(record)

    def signature_headers(self, body: bytes) -> dict[str, str]:
        """``X-OpenDSR-Processor-Domain`` and ``X-OpenDSR-Signature`` for a DSR response or callback body
        (spec 7.4, 8.3, 8.6), unless the ``signature`` fault says to send a bad one or none."""
        mode = self.faults.get("dsr").signature
        headers = {"X-OpenDSR-Processor-Domain": PROCESSOR_DOMAIN}
        if mode == "missing":
            return headers
        key = self.pki.processor.key if mode == "valid" else self.pki.tls.key  # "invalid": another key
        headers["X-OpenDSR-Signature"] = sign_body(key, body)
        return headers

    def status_body(self, record: DsrRecord, purpose: str = "status", tidy: bool = False) -> dict[str, Any]:
        """The OpenDSR status object of ``record`` (results linked from a foreign origin under that fault), in
        a shape the current shape settings pick for ``purpose`` (always the tidy one with ``tidy``)."""
        foreign = self.faults.get("dsr").foreign_results_url
        origin = "https://results.untrusted.example" if foreign else self.base_url
        shapes = None if tidy else self.shapes.current
        return status_body(record, str(self.config.credentials.workspace_id), origin, shapes, purpose)

    def notify(self, record: DsrRecord) -> None:
        """Queue a status callback to each of the request's callback URLs."""
        for n, url in enumerate(record.callback_urls):  # by position: a URL's port differs from run to run
            body = self.status_body(record, purpose=f"callback {n}")
            body["status_callback_url"] = url  # the spec requires it (8.6); mParticle's example omits it
            raw = json.dumps(body).encode()
            headers = {"Content-Type": "application/json", **self.signature_headers(raw)}
            self.callbacks.send(Callback(url, raw, headers, record.subject_request_id, record.status))

    def reset(self) -> None:
        """Back to the state of a freshly started sandbox of the same configuration: no profiles, DSRs, tokens,
        faults, log entries or callbacks; starting durations, limits (usage too), workspace settings and shapes;
        mpids, log numbers and fault rolls start over."""
        self.store.reset()
        self.workspace.reset()
        self.tokens.revoke_all()
        self.faults.clear()
        self.dice.reset()
        self.limits.reset()
        self.log.reset()
        self.callbacks.reset()
        self.shapes.reset()

    def close(self) -> None:
        self.callbacks.close()
        self.store.close()
