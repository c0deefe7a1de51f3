"""The Acme connector's hooks: what a host calls (through ``dsr_framework.host``) for each privacy request.

Each call does one bounded step and returns: a job Acme is still working on is ``pending`` with its id as
state; the host calls again at ``next_check_at``. Every failure is a classified ``failed`` result, never an
exception; no secret and no unmasked email is ever logged or returned.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import time
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from dsr_framework import AuditEvent, CheckOutcome, ConnectionResult, DsrRequest, OutputFile, Result, hookimpl
from dsr_framework.redact import mask_email

from .client import AcmeClient, AcmeError

log = logging.getLogger(__name__)


def _who(request: DsrRequest) -> dict[str, str]:
    """The identities Acme finds a contact by (email, customer id): either is enough."""
    who = {k: v for k, v in request.identities.items() if k in ("email", "customer_id")}
    if not who:
        raise AcmeError("configuration", "Acme finds people by email or customer id, and the request has neither")
    return who


def _shown(who: Mapping[str, str]) -> str:
    """The contact as a log line may name it: the email masked, else the customer id."""
    return mask_email(who["email"]) if "email" in who else f"customer {who['customer_id']}"


def _pending(request: DsrRequest, config: Mapping[str, Any], state: dict[str, Any], ready_in: Any,
             message: str) -> Result:
    """Ask to be called again when Acme expects the job done, but never sooner than the poll interval."""
    wait = max(float(ready_in or 0), float(config.get("poll_interval_seconds", 300)))
    return Result(request.request_id, request.type, "pending", message, state=state,
                  next_check_at=datetime.now(UTC) + timedelta(seconds=wait),
                  audit=(AuditEvent("check job", "processing", {"job": state["job"]}),))


def _failed(request: DsrRequest, error: AcmeError) -> Result:
    log.warning("%s request %s failed: %s", request.type, request.request_id, error.message)
    return Result.failed(request, error.error_class, error.message)


@hookimpl
def test_connection(config: Mapping[str, Any]) -> ConnectionResult:
    started = time.monotonic()
    try:
        AcmeClient(config).call("GET", "/v1/account")
    except AcmeError as exc:
        return ConnectionResult((CheckOutcome("api", False, exc.message, (time.monotonic() - started) * 1000,
                                              exc.error_class),))
    return ConnectionResult((CheckOutcome("api", True, "Acme accepted the API key",
                                          (time.monotonic() - started) * 1000),))


def _write_export(request: DsrRequest, records: list[Any]) -> OutputFile:
    assert request.output_dir is not None
    stem = re.sub(r"[^A-Za-z0-9._-]", "_", request.request_id)[:120]
    path = Path(request.output_dir) / f"acme-export-{stem}.json"
    data = json.dumps({"source": "Acme CRM", "records": records}, indent=2).encode("utf-8")
    path.write_bytes(data)
    return OutputFile(str(path.resolve()), "application/json", len(data), hashlib.sha256(data).hexdigest(),
                      "the contact's records in Acme CRM")


@hookimpl
def handle_access(config: Mapping[str, Any], request: DsrRequest, state: Mapping[str, Any] | None) -> Result:
    if request.output_dir is None:
        return Result.failed(request, "configuration", "an access request needs an output directory")
    api = AcmeClient(config)
    try:
        if state is None:
            who = _who(request)
            job = api.call("POST", "/v1/exports", who, idempotency_key=request.request_id)
            log.info("asked Acme to export the data of %s", _shown(who))
            return _pending(request, config, {"job": job["id"]}, job.get("ready_in_seconds"), "Acme is exporting")
        job = api.call("GET", f"/v1/exports/{state['job']}")
        if job.get("status") != "ready":
            return _pending(request, config, dict(state), job.get("ready_in_seconds"), "Acme is exporting")
        records = list(job.get("records", []))
        exported = _write_export(request, records)
    except AcmeError as exc:
        return _failed(request, exc)
    return Result(request.request_id, request.type, "completed", f"exported {len(records)} record(s) from Acme",
                  files=(exported,), summary={"records": len(records)},
                  audit=(AuditEvent("download export", "ready", {"job": state["job"]}),))


@hookimpl
def handle_deletion(config: Mapping[str, Any], request: DsrRequest, state: Mapping[str, Any] | None) -> Result:
    api = AcmeClient(config)
    try:
        if state is None:
            who = _who(request)
            job = api.call("POST", "/v1/erasures", who, idempotency_key=request.request_id)
            log.info("asked Acme to erase %s", _shown(who))
            return _pending(request, config, {"job": job["id"]}, job.get("ready_in_seconds"), "Acme is erasing")
        job = api.call("GET", f"/v1/erasures/{state['job']}")
        if job.get("status") != "done":
            return _pending(request, config, dict(state), job.get("ready_in_seconds"), "Acme is erasing")
    except AcmeError as exc:
        return _failed(request, exc)
    return Result(request.request_id, request.type, "completed", "Acme erased the contact",
                  summary={"found": bool(job.get("found"))},
                  audit=(AuditEvent("check erasure", "done", {"job": state["job"]}),))


@hookimpl
def handle_opt_out(config: Mapping[str, Any], request: DsrRequest, state: Mapping[str, Any] | None) -> Result:
    try:
        who = _who(request)
        answer = AcmeClient(config).call("POST", "/v1/opt-outs", {**who, "regulation": request.regulation},
                                         idempotency_key=request.request_id)
    except AcmeError as exc:
        return _failed(request, exc)
    found = bool(answer.get("found"))
    log.info("opt-out for %s: %s", _shown(who), "recorded" if found else "no such contact")
    message = "Acme recorded the opt-out" if found else "Acme has no such contact, so there is nothing to change"
    return Result(request.request_id, request.type, "completed", message, summary={"found": found})
