"""OpenDSR v3 (``/v3/...``) as mParticle documents it (``developers/dsr-api/v3/index.md``): submit, status, list
by group, cancel and discovery, plus the processor certificate and the results download."""

from __future__ import annotations

import base64
import time
import uuid
from datetime import datetime
from typing import Any

from connector_mparticle.sandbox.body_schemas import first_problem
from connector_mparticle.sandbox.calls import BadJson, Call, Reply, Route
from connector_mparticle.sandbox.context import SandboxContext
from connector_mparticle.sandbox.error_replies import dsr_error
from connector_mparticle.sandbox.identity_types import IDENTITY_TYPES, by_dsr_key
from connector_mparticle.sandbox.records import DsrRecord

__all__ = ["ROUTES"]

EXTENSION = "opendsr.mparticle.com"
MAX_IDENTITIES = 50  #: "You can specify up to 50 identities in a single request"
#: The /discovery example lists the eleven top-level types, roku as roku_publisher_id.
DISCOVERY_TYPES = sorted({t.dsr[0] for t in IDENTITY_TYPES if t.dsr and not t.dsr_extension_only})


class Invalid(ValueError):
    """The submission breaks a documented rule."""


def _signed(ctx: SandboxContext, status: int, body: Any) -> Reply:
    """OpenDSR signs responses with the processor key (spec sections 7.4 and 8.3)."""
    raw = Reply(status, body).payload()
    return Reply(status, raw=raw, headers=ctx.signature_headers(raw))


def _identities(section: dict[str, Any], extension: bool, where: str) -> dict[str, str]:
    """The identities of one section by canonical name. ``developers/dsr-api/v3`` lists which keys each takes:
    the eleven "Supported OpenDSR Format" types at the top level; only ``mpid``, ``other``…``other10``,
    ``mobile_number`` and ``phone_number_2``/``_3`` in the ``opendsr.mparticle.com`` extension."""
    found: dict[str, str] = {}
    for key, entry in section.items():
        if key == "mpid" and extension:
            found["mpid"] = entry["value"]
            continue
        kind = by_dsr_key(key)
        if kind is None or kind.dsr_extension_only != extension:
            raise Invalid(f"{where}: unsupported identity type '{key}'{_hint(key, extension)}")
        found[kind.name] = entry["value"]
    return found


def _hint(key: str, extension: bool) -> str:
    """Where a known key belongs, when it was sent to the other section."""
    kind = by_dsr_key(key)
    if kind is None and key != "mpid":
        return ""
    if extension:
        return " (send it in subject_identities, not in the opendsr.mparticle.com extension)"
    return " (allowed only in the opendsr.mparticle.com extension)"


def _json_content(call: Call) -> None:
    """``developers/dsr-api/v3``: a submission "takes a JSON request body and requires a Content-Type:
    application/json header" (a charset parameter may follow). The status is not documented; 400 is the one
    the page lists for invalid data."""
    media_type = (call.headers.get("Content-Type") or "").split(";")[0].strip().lower()
    if media_type != "application/json":
        raise Invalid("the request must carry the header Content-Type: application/json")


def _check_request_id(value: str) -> None:
    try:
        parsed: uuid.UUID | None = uuid.UUID(value)
    except ValueError:
        parsed = None
    if parsed is None or parsed.version != 4 or str(parsed) != value.lower():
        raise Invalid("'subject_request_id' must be a UUID v4")


def _check_submitted_time(value: str) -> None:
    try:
        datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise Invalid("'submitted_time' must be an ISO 8601 date-time") from None


def _subject_identities(body: dict[str, Any], mp_ext: dict[str, Any]) -> dict[str, str]:
    """The identities of the top level and of mParticle's extension, together: at least one, at most
    :data:`MAX_IDENTITIES`, one per type, and an mpid only alone."""
    identities = _identities(body.get("subject_identities") or {}, False, "subject_identities")
    extra = _identities(mp_ext.get("subject_identities") or {}, True, f"extensions.{EXTENSION}.subject_identities")
    duplicated = sorted(set(extra) & set(identities))
    if duplicated:
        raise Invalid(f"only one identity per type is allowed: {', '.join(duplicated)}")
    identities.update(extra)
    if not identities:
        raise Invalid("at least one subject identity is required")
    if len(identities) > MAX_IDENTITIES:
        raise Invalid(f"at most {MAX_IDENTITIES} identities per request")
    if "mpid" in identities and len(identities) > 1:
        raise Invalid("If an mpid is provided, it must be the only identity in the request.")
    return identities


def parse_request(body: Any) -> tuple[dict[str, str], dict[str, Any], bool]:
    """Validate a submission; return (canonical identities, extensions, skip_waiting_period)."""
    problem = first_problem("dsr_request", body)
    if problem is not None:
        raise Invalid(problem)
    _check_request_id(body["subject_request_id"])
    _check_submitted_time(body["submitted_time"])
    extensions = body.get("extensions") or {}
    mp_ext = extensions.get(EXTENSION) or {}
    identities = _subject_identities(body, mp_ext)
    # The field table puts skip_waiting_period at the top level, the example inside the extension: accept both.
    skip = mp_ext.get("skip_waiting_period", body.get("skip_waiting_period", False))
    return identities, extensions, skip


def submit(ctx: SandboxContext, call: Call) -> Reply:
    try:
        _json_content(call)
        body = call.json()
        identities, extensions, skip = parse_request(body)
    except (BadJson, Invalid) as exc:
        return dsr_error(400, str(exc))
    now = time.time()
    kind = body["subject_request_type"]
    starts, completes, expected = ctx.store.schedule(kind, now, skip)
    partners = ctx.workspace.current.forwarding_partners if kind == "erasure" else ()
    # developers/dsr-api/v3: subject_request_id is "the controller-provided identifier"; every answer echoes it
    # as sent, upper case included (look-ups ignore case: Store.submit).
    record = DsrRecord(
        subject_request_id=body["subject_request_id"], regulation=body["regulation"], request_type=kind,
        identities=identities, extensions=extensions, group_id=body.get("group_id"),
        callback_urls=list(body.get("status_callback_urls", [])), received_at=now, starts_at=starts,
        completes_at=completes, expected_completion_at=expected,
        encoded_request=base64.b64encode(call.body).decode("ascii"), api_version=body.get("api_version", "3.0"),
        partners=partners,
    )
    refusal = ctx.store.submit(record)
    if refusal == "exists":
        return dsr_error(400, "Subject request already exists.")
    if refusal is not None:
        return dsr_error(409, f"There is an in-progress request with the same identities, extensions and type: "
                              f"{refusal}", reason="ConflictException")
    ctx.notify(record)
    shapes, key = ctx.shapes.current, (record.seq, "created")
    return _signed(ctx, 201, shapes.ordered({
        "expected_completion_time": shapes.timestamp(record.expected_completion_at, record.seq, "expected", by=True),
        "received_time": shapes.timestamp(record.received_at, record.seq, "received"),
        "encoded_request": record.encoded_request,
        "subject_request_id": record.subject_request_id,
        "controller_id": str(ctx.config.credentials.workspace_id),
    }, *key))


def get_status(ctx: SandboxContext, call: Call) -> Reply:
    ctx.advance()
    record = ctx.store.dsr(call.params["id"])
    if record is None:
        return dsr_error(404, "The specified subject request id could not be found.", reason="NotFoundException")
    return _signed(ctx, 200, ctx.status_body(record))


def list_by_group(ctx: SandboxContext, call: Call) -> Reply:
    group = call.arg("group_id")
    if not group:
        return dsr_error(400, "'group_id' is required")
    ctx.advance()
    return _signed(ctx, 200, [ctx.status_body(r) for r in ctx.store.dsrs(group)])


def cancel(ctx: SandboxContext, call: Call) -> Reply:
    ctx.advance()
    outcome, record = ctx.store.cancel(call.params["id"])
    if record is None:
        return dsr_error(404, "The specified subject request id could not be found.", reason="NotFoundException")
    if outcome == "not_pending":  # the status is not documented; 400 like other invalid operations
        return dsr_error(400, f"The request is {record.status} and can no longer be cancelled; "
                              "only pending requests can be.")
    ctx.notify(record)
    shapes, key = ctx.shapes.current, (record.seq, "cancel")
    return _signed(ctx, 202, shapes.ordered({
        "expected_completion_time": None,
        "received_time": shapes.timestamp(record.cancelled_at, record.seq, "cancelled"),
        "subject_request_id": record.subject_request_id,
        "controller_id": str(ctx.config.credentials.workspace_id)}, *key))


def discovery(ctx: SandboxContext, call: Call) -> Reply:
    return _signed(ctx, 200, ctx.shapes.current.ordered({
        "api_version": "3.0",
        "supported_identities": [{"identity_type": t, "identity_format": "raw"} for t in DISCOVERY_TYPES],
        "supported_subject_request_types": ["access", "erasure", "portability"],
        "processor_certificate": f"{ctx.base_url}/dsr/opendsr_cert.pem",
    }, "discovery"))


def processor_certificate(ctx: SandboxContext, call: Call) -> Reply:
    return Reply(200, raw=ctx.pki.processor.chain_pem, content_type="application/x-pem-file")  # leaf, then intermediate


def results(ctx: SandboxContext, call: Call) -> Reply:
    """The results link: a zip, 404 when nothing matched, 410 once expired."""
    ctx.advance()
    record = ctx.store.dsr(call.params["id"])
    if record is None or record.results_token is None or call.params["token"] != record.results_token:
        return dsr_error(404, "Results not found.", reason="NotFoundException")
    if record.results_expire_at is not None and time.time() >= record.results_expire_at:
        return dsr_error(410, "The results link has expired.", reason="GoneException")
    if record.results_file is None:
        return dsr_error(404, "No records match the identities in the request.", reason="NotFoundException")
    return Reply(200, file=record.results_file, content_type="application/zip",
                 headers={"Content-Disposition": f'attachment; filename="{record.subject_request_id}.zip"'})


ROUTES = [
    Route("POST", r"/v3/requests/?", "dsr", submit, "workspace"),
    Route("GET", r"/v3/requests/?", "dsr", list_by_group, "workspace"),
    Route("GET", r"/v3/requests/(?P<id>[^/]+)", "dsr", get_status, "workspace"),
    Route("DELETE", r"/v3/requests/(?P<id>[^/]+)", "dsr", cancel, "workspace"),
    # The page documents GET /discovery/ (with the slash); the spec uses /discovery. Both are served.
    Route("GET", r"/v3/discovery/?", "dsr", discovery, None),
    Route("GET", r"/dsr/opendsr_cert\.pem", "results", processor_certificate, None),
    Route("GET", r"/dsr-results/(?P<id>[^/]+)/(?P<token>[^/]+)\.zip", "results", results, None),
]
