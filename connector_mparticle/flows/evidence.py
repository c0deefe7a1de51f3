"""Evidence: one record of how a request was carried out, for a regulator or an auditor, with no personal data.

What it holds, from the request and its latest result (the host's, or a ``--state`` file's):

* the request: its id (its SHA-256 instead when it holds one of the identifiers in any spelling: compared
  lower-case with only letters and digits kept, so ``jane.doe_at_example.com`` or ``ticket-15550100123`` count
  for ``jane.doe@example.com`` or ``+1 555 0100 123``; an email's local part alone counts too), type, regulation,
  when it was made and when it was due, and the *categories* of the identifiers it named (never their values);
* mParticle's requests (derived ids, never an identity) and its signed answers: each receipt with the signature,
  the certificate that made it and the verdict (an acknowledgement's ``encoded_request``, which holds the
  identities, is already withheld in receipts: :func:`connector_mparticle.api.receipts.withhold_encoded_request`);
* the status history: each step's time, action and outcome, with only the details listed in :data:`DETAILS`;
* where mParticle forwarded the request, and each partner's status (its name and domain, as mParticle's free text,
  with the subject's identifier values withheld);
* verification: which identifier categories were searched and what was found, and what could not be checked;
* the files delivered, by name, size and SHA-256 (never their content);
* timings: submitted, first sent, last step, due, expected, and whether it was at risk; and how it ended.

Everything is taken by name from known places, nothing copied wholesale; a detail not listed is left out. Free
text (the result's message, each step's outcome, a receipt's reason) can quote what a server sent: every value
of the request's identifiers in it (any category, any letter case, a phone number's digits alone too, an email's
local part) is replaced by ``[withheld]`` first (:func:`masked`). Every byte written passes the redactor's check
(:mod:`connector_mparticle.flows.writing`). The
record is text a person reads and a tool parses (sorted JSON), and its own SHA-256 is in :func:`write`'s answer.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from pathlib import PurePath
from typing import Any

from connector_mparticle.files import READABLE_CHARS, Folder, stem
from connector_mparticle.flows.subject import subject_digest
from connector_mparticle.flows.writing import write_checked
from dsr_framework.models import DsrRequest, OutputFile, Result, format_time, utcnow
from dsr_framework.redact import Redactor
from dsr_framework.text import json_for_people

__all__ = ["DETAILS", "KIND", "evidence_record", "masked", "shown_id", "write_evidence"]

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
_PARTNER_FIELDS = ("subject_request_id", "domain", "name", "status")
#: Receipt fields that are free text (may quote a server), masked like the messages.
_RECEIPT_TEXT = ("reason", "detail")
WITHHELD = "[withheld]"


def _kept(entry: Mapping[str, Any], names: tuple[str, ...]) -> dict[str, Any]:
    return {name: entry[name] for name in names if name in entry}


def _forms(request: DsrRequest) -> list[str]:
    """Every spelling of the request's identifier values free text is searched for, longest first."""
    forms: set[str] = set()
    for value in request.identities.values():
        forms.add(value)
        digits = re.sub(r"\D", "", value)
        if len(digits) >= 6 and len(digits) * 2 >= len(re.sub(r"\s", "", value)):  # a phone number's digits
            forms.add(digits)
        if "@" in value:
            forms.add(value.split("@", 1)[0])
    return sorted((f for f in forms if len(f) >= 3), key=len, reverse=True)


def masked(request: DsrRequest, text: Any) -> Any:
    """``text`` with every identifier value of ``request`` (see :func:`_forms`) replaced by ``[withheld]``, in
    any letter case; anything not a string as it is."""
    forms = _forms(request)
    if not isinstance(text, str) or not forms:
        return text
    return re.sub("|".join(re.escape(f) for f in forms), WITHHELD, text, flags=re.IGNORECASE)


def _history(request: DsrRequest, result: Result) -> list[dict[str, Any]]:
    return [{"at": format_time(e.at), "action": e.action, "outcome": masked(request, e.outcome),
             **({"detail": kept} if (kept := _kept(e.detail, DETAILS)) else {})} for e in result.audit]


def _receipts(request: DsrRequest, summary: Mapping[str, Any]) -> list[dict[str, Any]]:
    cancel = summary.get("cancel") or {}
    found = [*(summary.get("receipts") or []), *(cancel.get("cancellation_receipts") or [])]
    kept = [_kept(r, _RECEIPT_FIELDS) for r in found if isinstance(r, Mapping)]
    return [{**r, **{k: masked(request, r[k]) for k in _RECEIPT_TEXT if k in r}} for r in kept]


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


def _outcome(request: DsrRequest, result: Result) -> dict[str, Any]:
    cancel = result.summary.get("cancel") or {}
    return {"status": result.status, "error_class": result.error.error_class if result.error else None,
            "cancelled": cancel.get("outcome") == "cancelled", "mparticle_status": result.summary.get(
                "mparticle_status") or cancel.get("mparticle_status"), "message": masked(request, result.message)}


def _normalised(text: str) -> str:
    return re.sub(r"[^a-z0-9]", "", text.lower())


def _personal_id(request: DsrRequest) -> bool:
    """Whether the host's request id holds one of the request's identifiers in any spelling (an email used as
    the id, a phone number's digits in a ticket number): compared lower-case, letters and digits only."""
    shown = _normalised(request.request_id)
    return any(len(form) >= 3 and form in shown for form in map(_normalised, _forms(request)))


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
    partners = [{k: masked(request, v) for k, v in _kept(p, _PARTNER_FIELDS).items()}
                for p in summary.get("partners") or [] if isinstance(p, Mapping)]  # names are the server's text
    return {
        "format": FORMAT, "version": 1, "written_at": format_time(utcnow()),
        "request": {"request_id": shown_id(request), "type": request.type, "regulation": request.regulation,
                    "identifier_categories": sorted(request.identities),
                    "identifiers_sent": summary.get("identifiers_sent"),
                    "identifiers_not_used": sorted(summary.get("identifiers_not_used") or {})},
        "processor": {"name": "mParticle (OpenDSR v3)", "subject_request_ids": summary.get("subject_request_ids"),
                      "request_type": summary.get("request_type")},
        "outcome": _outcome(request, result),
        "signed_receipts": _receipts(request, summary),
        "status_history": _history(request, result),
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


def write_evidence(folder_path: str, request: DsrRequest, result: Result, redactor: Redactor) -> OutputFile:
    """Write the record as ``mparticle-evidence-…json`` in ``folder_path`` (a private folder, 0600, replaced
    whole: :mod:`connector_mparticle.files`) once its bytes passed ``redactor``'s check (an
    :class:`~connector_mparticle.errors.UnsafeResponseError` and nothing written if not); what was written."""
    data = (json_for_people(evidence_record(request, result), indent=2, sort_keys=True) + "\n")
    with Folder.open(folder_path) as folder:
        record = write_checked(redactor, folder, f"{stem(KIND, shown_id(request), subject_digest(request))}.json",
                               data.encode(), "the evidence record")
        return OutputFile(str(folder.path_of(record.name)), "application/json", record.size, record.sha256,
                          "evidence record: receipts, status history, partners, verification, file digests, timings")
