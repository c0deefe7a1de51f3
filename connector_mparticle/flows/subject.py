"""Who a request is about, in mParticle's terms: its identifiers, the OpenDSR requests they make, and the bodies.

The host names identifiers by category (``email``, ``phone``, ``vendor_id``…); the configuration's ``identities``
(over the defaults in :data:`~connector_mparticle.identities.DEFAULT_CATEGORIES`) says which mParticle identity
type each category is; an mParticle type name used as a category is that type.

OpenDSR allows an ``mpid`` only alone. A request that carries an mpid *and* other identifiers becomes two
OpenDSR requests: one with the other identifiers (mParticle resolves them through IDSync, which may reach
profiles the mpid does not) and one with the mpid alone (exactly that profile). Identifiers the DSR API has
no name for (social and push ids) are not sent to it; they still serve identity searches.

Exactly-once rests on one rule: every id sent to mParticle is derived, never random: from the host's request
id, the kind of request, the group, the request's own regulation and the request's own identifiers
(:func:`subject_digest`). Resubmitting after a crash, a timeout or a lost response reuses the same
``subject_request_id``, so mParticle answers "already exists"; a host request id reused for another subject (or
another regulation) is a different mParticle request, never a resumption of someone else's. Nothing of the
configuration enters the id: an operator who edits the identities mapping or the configured regulation while a
request is pending resumes that request, never submits a second one. An opt-out resent with the same
``source_request_id`` (derived from the request id, the subject and the batch) is de-duplicated by the Events API.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from connector_mparticle.api.identity import read_mpid
from connector_mparticle.errors import ConfigurationError
from connector_mparticle.flows.deadlines import skip_waiting
from connector_mparticle.http.answers import Malformed
from connector_mparticle.identities import MPID, IdentityType, identity_type
from connector_mparticle.settings import Settings
from dsr_framework.models import DsrRequest, format_time
from dsr_framework.redact import mask_email

__all__ = ["DsrGroup", "Identifier", "Subject", "derived_uuid", "masked_identities", "opt_out_batch", "regulation",
           "subject_digest"]

#: Namespace for ids this connector derives (fixed forever: changing it would break idempotency).
NAMESPACE = uuid.UUID("5b0f6f52-4c1e-4f2a-9d0e-6d7a1c3e8b21")
OPENDSR_EXTENSION = "opendsr.mparticle.com"


def derived_uuid(host_request_id: str, purpose: str) -> str:
    """A UUID derived from the host request id (UUID v5-style hashing), formatted as the v4 mParticle requires."""
    digest = uuid.uuid5(NAMESPACE, f"{purpose}:{host_request_id}")
    return str(uuid.UUID(bytes=digest.bytes, version=4))


def subject_digest(request: DsrRequest) -> str:
    """Who the request is about, as 128 bits of SHA-256 over the request's own identifiers (category and value,
    in a canonical order): the same for every call of one request whatever the configuration, different for a
    request id reused for another subject. It binds the derived ids and the output files to the subject."""
    canonical = json.dumps(sorted(request.identities.items()), ensure_ascii=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode("ascii")).hexdigest()[:32]


def _kind(category: str, settings: Settings) -> IdentityType | None:
    """The mParticle identity type a request category is (through the configuration's mapping), or None."""
    name = settings.identity_mapping.get(category, category)
    try:
        return identity_type(name) if name is not None else None
    except KeyError:
        return None


def _mpid(category: str, value: str) -> str:
    """The request's mpid in canonical form, read by the one rule (:func:`~connector_mparticle.api.identity.read_mpid`);
    :class:`ConfigurationError` (naming the category, never the value) for anything else."""
    try:
        return read_mpid(value)
    except Malformed:
        raise ConfigurationError(f"the request's {category} is an mParticle ID (mpid), which must be a non-zero "
                                 "64-bit integer written in ASCII digits (with an optional leading minus)") from None


def regulation(request: DsrRequest, settings: Settings) -> str:
    """The regulation sent to mParticle: the configured one, or the request's (``from_request``)."""
    return request.regulation if settings.regulation == "from_request" else settings.regulation


@dataclass(frozen=True)
class Identifier:
    """One of the request's identifiers, as an mParticle identity type."""

    category: str
    kind: IdentityType
    value: str


@dataclass(frozen=True)
class DsrGroup:
    """The identifiers of one OpenDSR request, and its derived id."""

    label: str  #: ``identities`` or ``mpid``
    identifiers: tuple[Identifier, ...]
    subject_request_id: str


@dataclass(frozen=True)
class Subject:
    """The request's identifiers the connector can use, and those it cannot (with the reason)."""

    identifiers: tuple[Identifier, ...]
    unused: tuple[tuple[str, str], ...]  #: (category, why it is not used)

    @classmethod
    def of(cls, request: DsrRequest, settings: Settings) -> Subject:
        """Map the request's categories to mParticle types; :class:`ConfigurationError` if nothing is usable or
        two categories give one type different values."""
        chosen: dict[str, Identifier] = {}
        unused: list[tuple[str, str]] = []
        for category, value in sorted(request.identities.items()):
            kind = _kind(category, settings)
            if kind is None:
                why = "configured never to be sent" if category in settings.identity_mapping else (
                    "not an mParticle identity type; map it in the configuration's 'identities'")
                unused.append((category, why))
                continue
            if kind.name == MPID:
                value = _mpid(category, value)
            earlier = chosen.get(kind.name)
            if earlier is not None and earlier.value != value:
                raise ConfigurationError(f"the request's {earlier.category} and {category} are both mParticle "
                                         f"{kind.name}, with different values; mParticle takes one per type")
            chosen.setdefault(kind.name, Identifier(category, kind, value))
        if not chosen:
            raise ConfigurationError(
                "none of the request's identifiers is one mParticle knows ("
                + "; ".join(f"{c}: {why}" for c, why in unused) + ")")
        return cls(tuple(chosen.values()), tuple(unused))

    def values(self) -> dict[str, str]:
        """Identity type -> value, for every usable identifier."""
        return {i.kind.name: i.value for i in self.identifiers}

    def get(self, name: str) -> str | None:
        return next((i.value for i in self.identifiers if i.kind.name == name), None)

    def groups(self, request: DsrRequest, settings: Settings, request_type: str) -> list[DsrGroup]:
        """The OpenDSR requests this subject needs (see the module docstring); empty if the DSR API takes none
        of its identifiers."""
        sendable = [i for i in self.identifiers if i.kind.dsr is not None]
        parts = [("identities", [i for i in sendable if i.kind.name != MPID]),
                 ("mpid", [i for i in sendable if i.kind.name == MPID])]
        # the request's own regulation and identifiers, never the configured ones (see the module docstring)
        purpose = f"{request_type}:{{}}:{request.regulation}:{subject_digest(request)}"
        return [DsrGroup(label, tuple(identifiers), derived_uuid(request.request_id, purpose.format(label)))
                for label, identifiers in parts if identifiers]


#: What a submission takes from outside the request's identities, and the type of each: fixed when it is first
#: sent and kept with it (``Part.terms``), so the bytes rebuilt on a later call, to check mParticle's signed
#: acknowledgement, are the ones sent, whatever the settings, the clock or the host's copy of the request say then.
TERMS = {"regulation": str, "submitted_time": str, "callback_urls": list, "skip_waiting": bool, "sent_at": str}


def submission_terms(request: DsrRequest, settings: Settings, request_type: str, now: datetime) -> dict[str, Any]:
    """The :data:`TERMS` of a submission sent at ``now``: the regulation, when the subject asked, the callback
    URLs, the waiting-period policy's decision (:func:`~connector_mparticle.flows.deadlines.skip_waiting`)."""
    return {"regulation": regulation(request, settings), "submitted_time": format_time(request.submitted_at),
            "callback_urls": list(settings.callback_urls),
            "skip_waiting": request_type == "erasure" and skip_waiting(request, settings, now),
            "sent_at": format_time(now)}


def dsr_body(request: DsrRequest, request_type: str, group: DsrGroup, terms: Mapping[str, Any]) -> dict[str, Any]:
    """The OpenDSR v3 submission of ``group`` (``request_type`` is ``access``, ``portability`` or ``erasure``)
    on ``terms`` (:func:`submission_terms`)."""
    top: dict[str, Any] = {}
    extension: dict[str, Any] = {}
    for identifier in group.identifiers:
        key = identifier.kind.dsr
        assert key is not None
        (extension if identifier.kind.dsr_extension else top)[key] = {"value": identifier.value, "encoding": "raw"}
    body: dict[str, Any] = {
        "regulation": terms["regulation"],
        "subject_request_id": group.subject_request_id,
        "subject_request_type": request_type,
        "submitted_time": terms["submitted_time"],
        "api_version": "3.0",
        "group_id": request.request_id,
    }
    if top:
        body["subject_identities"] = top
    if terms["callback_urls"]:
        body["status_callback_urls"] = list(terms["callback_urls"])
    mparticle: dict[str, Any] = {}
    if extension:
        mparticle["subject_identities"] = extension
    if request_type == "erasure" and terms["skip_waiting"]:  # the policy: flows/deadlines.py
        mparticle["skip_waiting_period"] = True  # mParticle's example puts it in the extension
    if mparticle:
        body["extensions"] = {OPENDSR_EXTENSION: mparticle}
    return body


def opt_out_batch(request: DsrRequest, settings: Settings, mpid: str,
                  user_identities: Mapping[str, str] | None = None) -> dict[str, Any]:
    """An Events API batch for ``mpid`` that records the opt-out as consent state (with ``user_identities``, the
    Events API names of identities that let mParticle attribute it too).

    CCPA ``data_sale_opt_out`` consented=true means the user has opted out of sale; each configured GDPR
    purpose consented=false means the user refused it. The timestamp is when the subject asked.

    ``source_request_id`` is mParticle's de-duplication key (kept 30-60 days per API key). It is derived from the
    host request id, the subject (:func:`subject_digest`) *and the whole batch*: the same call repeated records
    once, while a request id reused for another person, another profile or a changed configuration (another
    purpose) is a new batch that mParticle records, never one it silently drops as a duplicate.
    """
    stamp = int(request.submitted_at.timestamp() * 1000)

    def state(consented: bool) -> dict[str, Any]:
        return {"consented": consented, "document": settings.opt_out.document,
                "timestamp_unixtime_ms": stamp, "location": settings.opt_out.location}

    consent: dict[str, Any] = {}
    if settings.opt_out.ccpa_data_sale_opt_out:
        consent["ccpa"] = {"data_sale_opt_out": state(True)}
    if settings.opt_out.gdpr_purposes:
        consent["gdpr"] = {purpose: state(False) for purpose in settings.opt_out.gdpr_purposes}
    if not consent:
        raise ConfigurationError("opt-out records nothing: enable opt_out.ccpa_data_sale_opt_out or list "
                                 "opt_out.gdpr_purposes")
    batch: dict[str, Any] = {"environment": settings.environment, "mpid": int(read_mpid(mpid)),
                             "consent_state": consent, "events": []}
    if user_identities:
        batch["user_identities"] = dict(user_identities)
    content = hashlib.sha256(json.dumps(batch, sort_keys=True, separators=(",", ":")).encode()).hexdigest()
    return {**batch, "source_request_id": derived_uuid(request.request_id,
                                                       f"opt_out:{subject_digest(request)}:{content}")}


def masked_identities(identities: Mapping[str, str]) -> dict[str, str]:
    """Identifiers masked for files people pass around (``j***@e***.com``, ``CU***42``)."""
    def mask(value: str) -> str:
        if "@" in value:
            return mask_email(value)
        return f"{value[:2]}***{value[-2:]}" if len(value) > 6 else "***"

    return {name: mask(value) for name, value in sorted(identities.items())}
