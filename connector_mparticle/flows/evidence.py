"""Evidence: one record of how a request was carried out, for a regulator or an auditor, with no personal data.

What it holds, from the request and its latest result (the host's, or a ``--state`` file's):

* the request: its id (its SHA-256 instead when the host put one of the identifiers in it), type, regulation,
  when it was made and when it was due, and the *categories* of the identifiers it named (never their values);
* mParticle's requests (derived ids, never an identity) and its signed answers: each receipt with the signature,
  the certificate that made it and the verdict (an acknowledgement's ``encoded_request``, which holds the
  identities, is already withheld in receipts: :func:`connector_mparticle.api.receipts.withhold_encoded_request`);
* the status history: each step's time, action and outcome, with only the details listed in :data:`DETAILS`;
* where mParticle forwarded the request, and each partner's status;
* verification: which identifier categories were searched and what was found, and what could not be checked;
* the files delivered, by name, size and SHA-256 (never their content);
* timings: submitted, first sent, last step, due, expected, and whether it was at risk; and how it ended.

Everything is taken by name from known places, nothing copied wholesale; a detail not listed is left out. The
record is text a person reads and a tool parses (sorted JSON), and its own SHA-256 is in :func:`write`'s answer.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from pathlib import PurePath
from typing import Any

from connector_mparticle.files import READABLE_CHARS, Folder, stem
from connector_mparticle.flows.subject import subject_digest
from dsr_framework.models import DsrRequest, OutputFile, Result, format_time, utcnow

__all__ = ["DETAILS", "KIND", "evidence_record", "shown_id", "write_evidence"]

KIND = "mparticle-evidence"
FORMAT = "connector-mparticle evidence record"
#: The audit details an evidence record keeps (ids mParticle gave or the connector derived, times, counts).
DETAILS = ("subject_request_id", "expected_completion_time", "attempts", "regulation", "identities", "statuses",
           "size_bytes", "sha256")
#: The summary entries about verification and their meaning is the connector's own (flows/deletion.py).
VERIFICATION = ("verified", "verified_identifiers", "not_verifiable", "verification_searches")
_RECEIPT_FIELDS = ("kind", "subject_request_id", "label", "http_status", "body", "body_sha256", "body_withheld",
                   "processor_domain", "signature", "controller_id", "checked_at", "verified", "reason", "detail",
                   "certificate", "encoded_request_matches")
_PARTNER_FIELDS = ("subject_request_id", "domain", "name", "status", "status_message")


def _kept(entry: Mapping[str, Any], names: tuple[str, ...]) -> dict[str, Any]:
    return {name: entry[name] for name in names if name in entry}


def _history(result: Result) -> list[dict[str, Any]]:
    return [{"at": format_time(e.at), "action": e.action, "outcome": e.outcome,
             **({"detail": kept} if (kept := _kept(e.detail, DETAILS)) else {})} for e in result.audit]


def _receipts(summary: Mapping[str, Any]) -> list[dict[str, Any]]:
    cancel = summary.get("cancel") or {}
    found = [*(summary.get("receipts") or []), *(cancel.get("cancellation_receipts") or [])]
    return [_kept(r, _RECEIPT_FIELDS) for r in found if isinstance(r, Mapping)]


def _timings(request: DsrRequest, result: Result) -> dict[str, Any]:
    times = [e.at for e in result.audit]
    deadline = result.summary.get("deadline") or {}
    return {"subject_asked": format_time(request.submitted_at),
            "first_step": format_time(min(times)) if times else None,
            "last_step": format_time(max(times)) if times else None,
            "due_at": deadline.get("due_at") or (format_time(request.due_at) if request.due_at else None),
            "due_from": deadline.get("due_from"), "expected_completion": deadline.get("expected_completion"),
            "at_risk": deadline.get("at_risk"),
            "hours_taken": round((max(times) - request.submitted_at).total_seconds() / 3600, 2) if times else None}


def _outcome(result: Result) -> dict[str, Any]:
    cancel = result.summary.get("cancel") or {}
    return {"status": result.status, "error_class": result.error.error_class if result.error else None,
            "cancelled": cancel.get("outcome") == "cancelled", "mparticle_status": result.summary.get(
                "mparticle_status") or cancel.get("mparticle_status"), "message": result.message}


def _personal_id(request: DsrRequest) -> bool:
    """Whether the host's request id holds one of the request's identifiers (an email used as the id, say)."""
    shown = request.request_id.lower()
    return any(len(value) >= 3 and (value.lower() in shown or _readable(value).lower() in shown)
               for value in request.identities.values())


def _readable(text: str) -> str:
    """``text`` as a file name's readable part shows it (:func:`connector_mparticle.files.stem`)."""
    return re.sub(r"[^A-Za-z0-9._-]", "_", text)


def shown_id(request: DsrRequest) -> str:
    """The request id as the record shows it: as given, or its SHA-256 when it holds one of the identifiers."""
    if not _personal_id(request):
        return request.request_id
    return "sha256:" + hashlib.sha256(request.request_id.encode("utf-8", "surrogatepass")).hexdigest()


def _files(request: DsrRequest, result: Result) -> list[dict[str, Any]]:
    """Each delivered file by name, size and digest; a name's readable part is withheld with a personal id."""
    readable = _readable(request.request_id[:READABLE_CHARS])
    def name(path: str) -> str:
        found = PurePath(path).name
        return found.replace(readable, "withheld") if _personal_id(request) else found

    return [{"name": name(f.path), "media_type": f.media_type, "size_bytes": f.size_bytes, "sha256": f.sha256}
            for f in result.files]


def evidence_record(request: DsrRequest, result: Result) -> dict[str, Any]:
    """The evidence record of ``request`` as ``result`` (its latest) leaves it; see the module docstring."""
    summary = result.summary
    partners = [_kept(p, _PARTNER_FIELDS) for p in summary.get("partners") or [] if isinstance(p, Mapping)]
    return {
        "format": FORMAT, "version": 1, "written_at": format_time(utcnow()),
        "request": {"request_id": shown_id(request), "type": request.type, "regulation": request.regulation,
                    "identifier_categories": sorted(request.identities),
                    "identifiers_sent": summary.get("identifiers_sent"),
                    "identifiers_not_used": sorted(summary.get("identifiers_not_used") or {})},
        "processor": {"name": "mParticle (OpenDSR v3)", "subject_request_ids": summary.get("subject_request_ids"),
                      "request_type": summary.get("request_type")},
        "outcome": _outcome(result),
        "signed_receipts": _receipts(summary),
        "status_history": _history(result),
        "partners": partners,
        "verification": _verification(summary, result),
        "files": _files(request, result),
        "timings": _timings(request, result),
    }


def _verification(summary: Mapping[str, Any], result: Result) -> dict[str, Any] | None:
    """What was checked: the result contract's verification (status and coded reasons, which name identifier
    types, never values) and the summary's searches."""
    kept = _kept(summary, VERIFICATION)
    if result.verification is not None:
        kept["result"] = result.verification.to_dict()
    return kept or None


def write_evidence(folder_path: str, request: DsrRequest, result: Result) -> OutputFile:
    """Write the record as ``mparticle-evidence-…json`` in ``folder_path`` (a private folder, 0600, replaced
    whole: :mod:`connector_mparticle.files`); what was written."""
    data = (json.dumps(evidence_record(request, result), indent=2, sort_keys=True, ensure_ascii=False) + "\n")
    with Folder.open(folder_path) as folder:
        record = folder.write(f"{stem(KIND, shown_id(request), subject_digest(request))}.json", data.encode())
        return OutputFile(str(folder.path_of(record.name)), "application/json", record.size, record.sha256,
                          "evidence record: receipts, status history, partners, verification, file digests, timings")
