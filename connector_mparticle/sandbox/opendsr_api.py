"""OpenDSR v3 (``/v3/...``) as mParticle implements it: submit, status, list by group, cancel, discovery."""

from __future__ import annotations

import base64
import time
import uuid
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from connector_mparticle.identities import IDENTITY_TYPES, by_dsr_key
from connector_mparticle.sandbox.http import BadJson, Call, Reply, Route
from connector_mparticle.sandbox.pki import PROCESSOR_DOMAIN, sign_body
from connector_mparticle.sandbox.store import DsrRecord

if TYPE_CHECKING:
    from connector_mparticle.sandbox.server import SandboxContext

__all__ = ["ROUTES", "dsr_error", "iso"]

EXTENSION = "opendsr.mparticle.com"
REQUEST_FIELDS = {"regulation", "subject_request_id", "subject_request_type", "submitted_time",
                  "subject_identities", "api_version", "status_callback_urls", "group_id", "extensions",
                  "skip_waiting_period"}
TOP_LEVEL_KEYS = {t.dsr for t in IDENTITY_TYPES if t.dsr and not t.dsr_extension_only} | {
    a for t in IDENTITY_TYPES if not t.dsr_extension_only for a in t.dsr_aliases}
EXTENSION_KEYS = {t.dsr for t in IDENTITY_TYPES if t.dsr} | TOP_LEVEL_KEYS


def iso(epoch: float | None) -> str | None:
    if epoch is None:
        return None
    return datetime.fromtimestamp(epoch, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def dsr_error(status: int, message: str, reason: str = "InvalidOperationException",
              domain: str = "Validation") -> Reply:
    """mParticle's DSR error body: code, message and a list of errors, at the top level."""
    return Reply(status, {"code": status, "message": message,
                          "errors": [{"domain": domain, "reason": reason, "message": message}]})


class Invalid(ValueError):
    pass


def _signed(ctx: SandboxContext, status: int, body: Any) -> Reply:
    """OpenDSR signs responses with the processor key (spec sections 7.4 and 8.3)."""
    raw = Reply(status, body).payload()
    return Reply(status, raw=raw, headers={"X-OpenDSR-Processor-Domain": PROCESSOR_DOMAIN,
                                           "X-OpenDSR-Signature": sign_body(ctx.pki.processor.key, raw)})


def _identities(section: Any, allowed: set[str], where: str) -> dict[str, str]:
    if not isinstance(section, dict):
        raise Invalid(f"{where} must be an object keyed by identity type")
    found: dict[str, str] = {}
    for key, entry in section.items():
        if key not in allowed:
            raise Invalid(f"{where}: unsupported identity type '{key}'")
        if not isinstance(entry, dict) or not isinstance(entry.get("value"), str) or not entry["value"].strip():
            raise Invalid(f"{where}.{key} must be an object with a non-empty string 'value'")
        if entry.get("encoding", "raw") != "raw":
            raise Invalid(f"{where}.{key}: only 'raw' encoding is supported")
        kind = by_dsr_key(key)
        assert kind is not None
        found[kind.name] = entry["value"]
    return found


def parse_request(body: Any) -> tuple[dict[str, str], dict[str, Any], bool]:
    """Validate a submission; return (canonical identities, extensions, skip_waiting_period)."""
    if not isinstance(body, dict):
        raise Invalid("the request body must be a JSON object")
    unknown = sorted(set(body) - REQUEST_FIELDS)
    if unknown:
        raise Invalid(f"unknown field(s): {', '.join(unknown)}")
    for name in ("regulation", "subject_request_id", "subject_request_type", "submitted_time"):
        if not isinstance(body.get(name), str) or not body[name]:
            raise Invalid(f"'{name}' is required")
    if body["regulation"] not in ("gdpr", "ccpa"):
        raise Invalid("'regulation' must be 'gdpr' or 'ccpa'")
    if body["subject_request_type"] not in ("access", "portability", "erasure"):
        raise Invalid("'subject_request_type' must be 'access', 'portability' or 'erasure'")
    try:
        parsed_id = uuid.UUID(body["subject_request_id"])
    except ValueError:
        raise Invalid("'subject_request_id' must be a UUID v4") from None
    if parsed_id.version != 4 or str(parsed_id) != body["subject_request_id"].lower():
        raise Invalid("'subject_request_id' must be a UUID v4")
    try:
        datetime.fromisoformat(body["submitted_time"].replace("Z", "+00:00"))
    except ValueError:
        raise Invalid("'submitted_time' must be an ISO 8601 date-time") from None
    extensions = body.get("extensions") or {}
    if not isinstance(extensions, dict):
        raise Invalid("'extensions' must be an object")
    mp_ext = extensions.get(EXTENSION) or {}
    if not isinstance(mp_ext, dict):
        raise Invalid(f"extensions.{EXTENSION} must be an object")
    identities = _identities(body.get("subject_identities") or {}, TOP_LEVEL_KEYS, "subject_identities")
    if "subject_identities" in mp_ext:
        extra = _identities(mp_ext["subject_identities"], EXTENSION_KEYS,
                            f"extensions.{EXTENSION}.subject_identities")
        duplicated = sorted(set(extra) & set(identities))
        if duplicated:
            raise Invalid(f"only one identity per type is allowed: {', '.join(duplicated)}")
        identities.update(extra)
    if not identities:
        raise Invalid("at least one subject identity is required")
    # mParticle caps a request at 50 identities, one per type; with 25 identity types the cap cannot be hit.
    if "mpid" in identities and len(identities) > 1:
        raise Invalid("an mpid cannot be sent together with other identities")
    urls = body.get("status_callback_urls", [])
    if not isinstance(urls, list) or not all(isinstance(u, str) and u.startswith(("https://", "http://"))
                                             for u in urls):
        raise Invalid("'status_callback_urls' must be a list of URLs")
    if "group_id" in body and not isinstance(body["group_id"], str):
        raise Invalid("'group_id' must be a string")
    skip = mp_ext.get("skip_waiting_period", body.get("skip_waiting_period", False))
    if not isinstance(skip, bool):
        raise Invalid("'skip_waiting_period' must be true or false")
    return identities, extensions, skip


def submit(ctx: SandboxContext, call: Call) -> Reply:
    try:
        body = call.json()
        identities, extensions, skip = parse_request(body)
    except (BadJson, Invalid) as exc:
        return dsr_error(400, str(exc))
    store = ctx.store
    now = time.time()
    with store.lock:
        request_id = body["subject_request_id"].lower()
        if request_id in store.dsrs:
            return dsr_error(400, "Subject request already exists.")
        for other in store.dsrs.values():
            if (not other.final and other.request_type == body["subject_request_type"]
                    and other.identities == identities and other.extensions == extensions):
                return dsr_error(409, f"A request with the same identities is already in progress: "
                                      f"{other.subject_request_id}", reason="ConflictException")
        starts, completes, expected = store.schedule(body["subject_request_type"], now, skip)
        record = DsrRecord(
            subject_request_id=request_id, regulation=body["regulation"],
            request_type=body["subject_request_type"], identities=identities, extensions=extensions,
            group_id=body.get("group_id"), callback_urls=list(body.get("status_callback_urls", [])),
            received_at=now, starts_at=starts, completes_at=completes, expected_completion_at=expected,
            encoded_request=base64.b64encode(call.body).decode("ascii"), api_version=body.get("api_version", "3.0"),
        )
        store.add_dsr(record)
    ctx.notify(record)
    return _signed(ctx, 201, {
        "expected_completion_time": iso(record.expected_completion_at),
        "received_time": iso(record.received_at),
        "encoded_request": record.encoded_request,
        "subject_request_id": record.subject_request_id,
        "controller_id": str(ctx.config.credentials.workspace_id),
    })


def status_body(ctx: SandboxContext, record: DsrRecord) -> dict[str, Any]:
    """The status object of GET /requests/{id}, list results and callbacks."""
    results_url = None
    if record.status == "completed" and record.request_type != "erasure":
        path = ctx.store.results_path(record)
        origin = "https://results.untrusted.example" if ctx.faults("dsr").foreign_results_url else ctx.base_url
        results_url = origin + path
    partner_status = {"pending": "pending", "in_progress": "pending", "completed": "sent", "cancelled": "skipped"}
    forwarding = [] if record.request_type != "erasure" else [{
        "domain": "partner.sandbox.invalid", "name": "Sandbox Webhook",
        "status": partner_status[record.status], "status_message": None,
    }]
    return {
        "controller_id": str(ctx.config.credentials.workspace_id),
        "expected_completion_time": iso(record.expected_completion_at) if record.status != "cancelled" else None,
        "subject_request_id": record.subject_request_id,
        "group_id": record.group_id,
        "request_status": record.status,
        "api_version": record.api_version,
        "results_url": results_url,
        "extensions": forwarding,
    }


def get_status(ctx: SandboxContext, call: Call) -> Reply:
    ctx.advance()
    record = ctx.store.dsrs.get(call.params["id"].lower())
    if record is None:
        return dsr_error(404, "Subject request not found.", reason="NotFoundException")
    return _signed(ctx, 200, status_body(ctx, record))


def list_by_group(ctx: SandboxContext, call: Call) -> Reply:
    group = call.arg("group_id")
    if not group:
        return dsr_error(400, "'group_id' is required")
    ctx.advance()
    with ctx.store.lock:
        records = [r for r in ctx.store.dsrs.values() if r.group_id == group]
    return _signed(ctx, 200, [status_body(ctx, r) for r in sorted(records, key=lambda r: r.received_at)])


def cancel(ctx: SandboxContext, call: Call) -> Reply:
    ctx.advance()
    store = ctx.store
    with store.lock:
        record = store.dsrs.get(call.params["id"].lower())
        if record is None:
            return dsr_error(404, "Subject request not found.", reason="NotFoundException")
        if record.status != "pending":
            return dsr_error(400, f"The request is {record.status} and can no longer be cancelled; "
                                  "only pending requests can be.")
        store.set_status(record, "cancelled")
    ctx.notify(record)
    return _signed(ctx, 202, {"expected_completion_time": None, "received_time": iso(record.cancelled_at),
                              "subject_request_id": record.subject_request_id,
                              "controller_id": str(ctx.config.credentials.workspace_id)})


def discovery(ctx: SandboxContext, call: Call) -> Reply:
    top = [t for t in IDENTITY_TYPES if t.dsr and not t.dsr_extension_only]
    return _signed(ctx, 200, {
        "api_version": "3.0",
        "supported_identities": [{"identity_type": t.dsr, "identity_format": "raw"} for t in top],
        "supported_subject_request_types": ["access", "erasure", "portability"],
        "processor_certificate": f"{ctx.base_url}/dsr/opendsr_cert.pem",
    })


def processor_certificate(ctx: SandboxContext, call: Call) -> Reply:
    return Reply(200, raw=ctx.pki.processor.cert_pem, content_type="application/x-pem-file")


def results(ctx: SandboxContext, call: Call) -> Reply:
    """The results link: a zip, 404 when nothing matched, 410 once expired."""
    ctx.advance()
    record = ctx.store.dsrs.get(call.params["id"].lower())
    if record is None or record.results_token is None or call.params["token"] != record.results_token:
        return dsr_error(404, "Results not found.", reason="NotFoundException")
    if record.results_expire_at is not None and time.time() >= record.results_expire_at:
        return dsr_error(410, "The results link has expired.", reason="GoneException")
    if record.results_file is None:
        return dsr_error(404, "No data was found for the subject's identities.", reason="NotFoundException")
    return Reply(200, file=record.results_file, content_type="application/zip",
                 headers={"Content-Disposition": f'attachment; filename="{record.subject_request_id}.zip"'})


ROUTES = [
    Route("POST", r"/v3/requests/?", "dsr", submit, "workspace"),
    Route("GET", r"/v3/requests/?", "dsr", list_by_group, "workspace"),
    Route("GET", r"/v3/requests/(?P<id>[^/]+)", "dsr", get_status, "workspace"),
    Route("DELETE", r"/v3/requests/(?P<id>[^/]+)", "dsr", cancel, "workspace"),
    Route("GET", r"/v3/discovery", "dsr", discovery, None),
    Route("GET", r"/dsr/opendsr_cert\.pem", "results", processor_certificate, None),
    Route("GET", r"/dsr-results/(?P<id>[^/]+)/(?P<token>[^/]+)\.zip", "results", results, None),
]
