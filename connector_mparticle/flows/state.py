"""The resumable state of one asynchronous request: what the host stores between calls.

A host request becomes one OpenDSR request, or two when it carries an mpid with other identifiers
(:mod:`connector_mparticle.flows.subject`); the state holds one part per OpenDSR request.

The host stores the state and hands it back, so it is input from outside and is checked as such. The
connector trusts only state it wrote itself: every state carries an HMAC keyed from the DSR credential, and
state that does not verify (altered by hand, from another request, another credential or an older version,
of the wrong type or shape) is ignored. Ignoring state is always safe: the connector resumes from
mParticle's own record (each submission is found again by its derived id, then its status is checked), so a
forged ``verifying`` phase cannot skip the status check. The counters (verification attempts, calls that ran
out of time) live only in the state, though: the MAC proves the connector wrote a state, not that it is the
latest, so a host that hands back an older state, or none, starts them again and a request whose verification
keeps failing stays pending instead of failing. A host keeps the state each result returns, as its contract
says (``docs/host-contract.md``); the conformance harness checks that a host-side repeat is safe, not this.

The same signed state vouches for files: once an access request's results are written, the state with
``delivered`` (each file's name, size and SHA-256) is kept beside them (:mod:`connector_mparticle.flows.access`),
and a later call for the same request reuses exactly those files, nothing else found in the folder.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, field, fields
from datetime import datetime
from typing import Any

from connector_mparticle.api.opendsr import DSR_STATUSES
from connector_mparticle.flows.subject import TERMS
from dsr_framework.models import AuditEvent, parse_time

__all__ = ["PHASES", "STATE_VERSION", "Part", "RequestState", "signature", "state_key"]

STATE_VERSION = 3
AUDIT_LIMIT = 60
MAX_COUNTER = 1_000_000
#: submitted: waiting for mParticle; verifying: every erasure completed, confirming it.
PHASES = ("submitted", "verifying")
STATUSES = (None, *DSR_STATUSES)  #: None: not checked yet
#: From least to most advanced: a cancelled part stops the request; one not checked yet holds it back.
_PROGRESS = {s: i for i, s in enumerate(("cancelled", None, *(s for s in DSR_STATUSES if s != "cancelled")))}
_COUNTERS = ("status_checks", "overdue_checks", "verify_attempts", "timeouts_in_a_row")
_SHA256 = re.compile(r"[0-9a-f]{64}")
_DELIVERED = {"name": str, "size_bytes": int, "sha256": str, "media_type": str, "description": str}


def state_key(secrets: Iterable[str], purpose: str = "request state") -> bytes:
    """The HMAC key for ``purpose`` (the host's request states; the command line's state files), derived from
    the DSR credential: a rotated credential starts afresh, and no key serves two purposes."""
    material = "\0".join(sorted(secrets)).encode()
    return hashlib.sha256(f"connector-mparticle {purpose}\0".encode() + material).digest()


def signature(key: bytes, data: Any) -> str:
    """HMAC-SHA256 of ``data``'s canonical JSON (sorted keys, no spaces, ASCII), hex."""
    canonical = json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hmac.new(key, canonical.encode(), hashlib.sha256).hexdigest()



def _time(value: str | None) -> datetime | None:
    return parse_time(value) if value else None


@dataclass
class Part:
    """One OpenDSR request of the host request."""

    subject_request_id: str
    label: str  #: identities, or mpid
    last_status: str | None = None
    expected_completion_time: str | None = None
    receipt: dict[str, Any] | None = None  #: signed acknowledgement (:mod:`connector_mparticle.api.receipts`)
    #: where mParticle last said it forwarded this request (:mod:`connector_mparticle.api.partners`), if anywhere
    partners: list[dict[str, Any]] | None = None
    #: what its submission took from outside the identities, fixed when it was first sent
    #: (:func:`connector_mparticle.flows.subject.submission_terms`); None when this connector did not send it
    #: itself (found again after "already exists") or the state predates them
    terms: dict[str, Any] | None = None

    @property
    def expected(self) -> datetime | None:
        return _time(self.expected_completion_time)

    @property
    def done(self) -> bool:
        return self.last_status == "completed"

    @property
    def skip_waiting(self) -> bool:
        """Whether its submission asked mParticle to skip the waiting period."""
        return bool(self.terms and self.terms["skip_waiting"])

    @property
    def sent_at(self) -> datetime | None:
        """When this connector first sent it (None: unknown)."""
        return _time(self.terms["sent_at"]) if self.terms else None


@dataclass
class RequestState:
    """What is known about one host request between calls."""

    parts: list[Part]
    phase: str = "submitted"
    submitted_at: str | None = None
    status_checks: int = 0
    overdue_checks: int = 0
    verify_attempts: int = 0
    #: Calls in a row that ran out of time with no step going through in between (a call stopped by another
    #: passing trouble, a 503 say, neither counts nor starts the count again); after two,
    #: :meth:`connector_mparticle.flows.common.Flow.retry_soon` asks a person.
    timeouts_in_a_row: int = 0
    #: Erasure: did the request's login and immutable ids find a profile before it was submitted (None: unknown,
    #: or the request carries none)? :func:`connector_mparticle.flows.lookup.blind_spots` reads it.
    found_before: bool | None = None
    audit: list[dict[str, Any]] = field(default_factory=list)
    #: Files written for the request: name, size_bytes, sha256, media_type, description.
    delivered: list[dict[str, Any]] = field(default_factory=list)

    def part(self, subject_request_id: str) -> Part | None:
        return next((p for p in self.parts if p.subject_request_id == subject_request_id), None)

    @property
    def expected(self) -> datetime | None:
        """The latest expected completion among unfinished parts: when the whole request should be done."""
        times = [t for p in self.parts if not p.done and (t := p.expected) is not None]
        return max(times) if times else None

    def sent_at(self, fallback: datetime) -> datetime:
        """When this connector first sent the request to mParticle (``fallback``, the subject's request time, for a
        state written before it was recorded)."""
        return _time(self.submitted_at) or fallback

    @property
    def last_status(self) -> str | None:
        """The least advanced status of the parts (what the request as a whole is)."""
        return min((p.last_status for p in self.parts), key=lambda s: _PROGRESS[s], default=None)

    def to_dict(self, key: bytes, scrub: Callable[[Any], Any] = lambda data: data) -> dict[str, Any]:
        """The state as the host stores it: ``scrub`` applied to every value, then signed."""
        data = asdict(self)
        data["audit"] = self.audit[-AUDIT_LIMIT:]
        data = scrub(json.loads(json.dumps({"v": STATE_VERSION, **data})))  # exactly what the host will store
        return {**data, "mac": signature(key, data)}

    @classmethod
    def from_dict(cls, data: Any, expected_ids: Iterable[str], key: bytes) -> RequestState | None:
        """The state, or None when it is absent or not trusted (see the module docstring). Its parts must be
        OpenDSR requests of this host request (``expected_ids``)."""
        body = _authentic(data, key)
        state = cls._well_formed(body) if body is not None else None
        if state is None or not state.parts or not {p.subject_request_id for p in state.parts} <= set(expected_ids):
            return None
        return state

    @classmethod
    def _well_formed(cls, body: Mapping[str, Any]) -> RequestState | None:
        """Defence in depth behind the MAC: every field of the right type and in range."""
        known = {f.name: body[f.name] for f in fields(cls) if f.name in body}
        if not _fields_in_range(known):
            return None
        try:
            parts = [Part(**p) for p in known.pop("parts", [])]
            if not all(_part_well_formed(p) for p in parts) or not _delivered_well_formed(known.get("delivered", [])):
                return None
            state = cls(parts=parts, **known)
            state.expected  # noqa: B018 - an unreadable time must not break the next call
            state.audit_events()
        except (TypeError, ValueError, KeyError, OverflowError, AttributeError):
            return None
        return state

    def audit_events(self) -> list[AuditEvent]:
        return [AuditEvent.from_dict(e) for e in self.audit]


def _authentic(data: Any, key: bytes) -> Mapping[str, Any] | None:
    """The state's body without its MAC, when the MAC verifies and the version is this one's."""
    if not isinstance(data, Mapping) or not data:
        return None
    body = {k: v for k, v in data.items() if k != "mac"}
    mac = data.get("mac")
    try:
        expected = signature(key, body)
    except (TypeError, ValueError, RecursionError):  # not JSON, or nested deeper than JSON can be written
        return None
    # compared as bytes: compare_digest raises TypeError for a str with any non-ASCII character
    if not isinstance(mac, str) or not hmac.compare_digest(mac.encode("utf-8", "surrogatepass"), expected.encode()) \
            or body.get("v") != STATE_VERSION:
        return None
    return body


def _fields_in_range(known: Mapping[str, Any]) -> bool:
    """The state's scalar fields: counters within bounds, a known phase, an audit list, a time or None."""
    return (all(type(known.get(k, 0)) is int and 0 <= known.get(k, 0) <= MAX_COUNTER for k in _COUNTERS)
            and known.get("phase", "submitted") in PHASES and isinstance(known.get("audit", []), list)
            and (known.get("submitted_at") is None or (isinstance(known["submitted_at"], str)
                                                       and _zoned(known["submitted_at"])))
            and known.get("found_before") in (True, False, None) and type(known.get("found_before")) is not int)


def _delivered_well_formed(entries: Any) -> bool:
    """Each delivered file: a plain name (no folder), a size, a SHA-256, a media type and a description."""
    return isinstance(entries, list) and all(_delivered_entry(e) for e in entries)


def _delivered_entry(entry: Any) -> bool:
    if not (isinstance(entry, dict) and set(entry) == set(_DELIVERED)
            and all(type(entry[k]) is t for k, t in _DELIVERED.items())):
        return False
    name = entry["name"]
    return (entry["size_bytes"] >= 0 and _SHA256.fullmatch(entry["sha256"]) is not None
            and name not in ("", ".", "..") and "/" not in name and "\0" not in name)


def _part_well_formed(part: Part) -> bool:
    return (isinstance(part.subject_request_id, str) and part.last_status in STATUSES
            and isinstance(part.receipt, (dict, type(None))) and _terms_well_formed(part.terms)
            and (part.partners is None or (isinstance(part.partners, list)
                                           and all(isinstance(p, dict) for p in part.partners))))


def _terms_well_formed(terms: Any) -> bool:
    """None, or each of the submission's terms with its type, the URLs text, the times readable with a zone."""
    if terms is None:
        return True
    if not isinstance(terms, dict) or set(terms) != set(TERMS) or \
            not all(type(terms[k]) is t for k, t in TERMS.items()) or \
            not all(isinstance(u, str) for u in terms["callback_urls"]):
        return False
    return all(_zoned(terms[k]) for k in ("submitted_time", "sent_at"))


def _zoned(text: str) -> bool:
    try:
        return parse_time(text).tzinfo is not None
    except (TypeError, ValueError, OverflowError):
        return False
