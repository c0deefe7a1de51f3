"""The sandbox's data: profiles with their events and consent, DSR requests and their lifecycle.

A DSR moves pending -> in_progress -> completed on a schedule set per request type (seconds by default,
so tests and the demo run fast). Its ``expected_completion_time`` is honest: the scheduled completion,
unless ``overrun_seconds`` makes requests finish late on purpose. Completing an erasure really removes the
matching profiles and their events; completing an access or portability request writes a results zip.
"""

from __future__ import annotations

import copy
import itertools
import json
import os
import secrets
import shutil
import tempfile
import threading
import time
import zipfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from connector_mparticle.identities import identity_type

__all__ = ["DsrRecord", "Durations", "Profile", "Store"]

#: Identity types that identify a device, not a person (a login-ID profile is not matched by these alone).
DEVICE_TYPES = frozenset({"ios_idfa", "ios_idfv", "android_aaid", "android_uuid", "fire_aid", "roku_aid",
                          "roku_publisher_id", "microsoft_aid", "microsoft_publisher_id", "push_token"})
LOGIN_TYPES = frozenset({"customer_id"})


@dataclass
class Profile:
    """One mParticle user profile."""

    mpid: int
    identities: dict[str, str]  #: canonical identity type -> value
    attributes: dict[str, Any] = field(default_factory=dict)
    consent: dict[str, dict[str, Any]] = field(default_factory=lambda: {"gdpr": {}, "ccpa": {}})
    batches: list[dict[str, Any]] = field(default_factory=list)
    audiences: list[str] = field(default_factory=list)
    created_ms: int = field(default_factory=lambda: int(time.time() * 1000))

    def to_dict(self) -> dict[str, Any]:
        return {
            "mpid": str(self.mpid),
            "identities": dict(self.identities),
            "attributes": copy.deepcopy(self.attributes),
            "consent_state": copy.deepcopy(self.consent),
            "audience_memberships": list(self.audiences),
            "event_batch_count": len(self.batches),
            "created_timestamp_ms": self.created_ms,
        }


@dataclass
class Durations:
    """Seconds a request of one type stays pending, then in progress."""

    pending: float
    in_progress: float


@dataclass
class DsrRecord:
    """One OpenDSR request as the sandbox holds it."""

    subject_request_id: str
    regulation: str
    request_type: str
    identities: dict[str, str]  #: canonical type -> value
    extensions: dict[str, Any]
    group_id: str | None
    callback_urls: list[str]
    received_at: float
    starts_at: float
    completes_at: float
    expected_completion_at: float
    encoded_request: str
    api_version: str = "3.0"
    status: str = "pending"
    forced: bool = False
    results_token: str | None = None
    results_file: Path | None = None
    results_expire_at: float | None = None
    matched_mpids: list[int] = field(default_factory=list)
    cancelled_at: float | None = None

    @property
    def final(self) -> bool:
        return self.status in ("completed", "cancelled")


class Store:
    """Profiles and DSRs, safe to use from many server threads."""

    def __init__(self, durations: Mapping[str, Durations], results_ttl: float, overrun: float = 0.0,
                 include_live_profile: bool = True, padding_bytes: int = 0) -> None:
        self.lock = threading.RLock()
        self.durations = dict(durations)
        self.results_ttl = results_ttl
        self.overrun = overrun
        self.include_live_profile = include_live_profile
        self.padding_bytes = padding_bytes
        self.profiles: dict[int, Profile] = {}
        self.dsrs: dict[str, DsrRecord] = {}
        self.source_request_ids: set[tuple[str, str]] = set()
        self.stats = {"batches_stored": 0, "duplicate_batches_ignored": 0}
        self._mpids = itertools.count(8_000_000_000_000_000_001)
        self._dir = Path(tempfile.mkdtemp(prefix="mparticle-sandbox-"))

    def close(self) -> None:
        shutil.rmtree(self._dir, ignore_errors=True)

    def reset(self) -> None:
        with self.lock:
            self.profiles.clear()
            self.dsrs.clear()
            self.source_request_ids.clear()
            self.stats = dict.fromkeys(self.stats, 0)
            for child in self._dir.iterdir():
                child.unlink()

    # -- profiles ---------------------------------------------------------------------------------------

    def add_profile(self, identities: Mapping[str, str], attributes: Mapping[str, Any] | None = None,
                    consent: Mapping[str, Any] | None = None, batches: Iterable[Mapping[str, Any]] = (),
                    mpid: int | None = None, audiences: Iterable[str] = ()) -> Profile:
        for name in identities:
            identity_type(name)  # KeyError for an unknown type
        with self.lock:
            profile = Profile(mpid or next(self._mpids), dict(identities), dict(attributes or {}),
                              audiences=list(audiences))
            if consent:
                merge_consent(profile.consent, consent, int(time.time() * 1000))
            profile.batches.extend(copy.deepcopy(dict(b)) for b in batches)
            self.profiles[profile.mpid] = profile
            return profile

    def match(self, identities: Mapping[str, str]) -> list[Profile]:
        """Profiles matching any of ``identities`` (IDSync-style; a login-ID profile needs more than a device id)."""
        if "mpid" in identities:
            try:
                found = self.profiles.get(int(identities["mpid"]))
            except ValueError:
                return []
            return [found] if found else []
        device_only = bool(identities) and set(identities) <= DEVICE_TYPES
        out = []
        with self.lock:
            for profile in self.profiles.values():
                if device_only and LOGIN_TYPES & set(profile.identities):
                    continue
                if any(profile.identities.get(k) == v for k, v in identities.items()):
                    out.append(profile)
        return out

    def new_profile_mpid(self) -> int:
        return next(self._mpids)

    # -- DSR lifecycle ----------------------------------------------------------------------------------

    def add_dsr(self, record: DsrRecord) -> None:
        with self.lock:
            self.dsrs[record.subject_request_id] = record

    def schedule(self, request_type: str, received_at: float, skip_waiting: bool) -> tuple[float, float, float]:
        """(in-progress time, completion time, expected completion time) for a new request."""
        durations = self.durations["access" if request_type == "portability" else request_type]
        pending = durations.pending / 2 if skip_waiting and request_type == "erasure" else durations.pending
        starts = received_at + pending
        expected = starts + durations.in_progress
        return starts, expected + self.overrun, expected

    def advance(self, now: float | None = None) -> list[DsrRecord]:
        """Move every DSR to the status its schedule says; return those whose status changed."""
        now = time.time() if now is None else now
        changed = []
        with self.lock:
            for record in self.dsrs.values():
                if record.final or record.forced:
                    continue
                target = "completed" if now >= record.completes_at else (
                    "in_progress" if now >= record.starts_at else "pending")
                if target != record.status:
                    self.set_status(record, target, now)
                    changed.append(record)
        return changed

    def set_status(self, record: DsrRecord, status: str, now: float | None = None) -> None:
        """Apply a status change and its effects (erasure, results) exactly once."""
        now = time.time() if now is None else now
        with self.lock:
            if record.status == status:
                return
            record.status = status
            if status == "completed":
                self._complete(record, now)
            elif status == "cancelled":
                record.cancelled_at = now

    def _complete(self, record: DsrRecord, now: float) -> None:
        matched = self.match(record.identities)
        record.matched_mpids = [p.mpid for p in matched]
        if record.request_type == "erasure":
            for profile in matched:
                self.profiles.pop(profile.mpid, None)
            return
        record.results_token = secrets.token_urlsafe(24)
        record.results_expire_at = now + self.results_ttl
        if matched:
            record.results_file = self._dir / f"{record.subject_request_id}.zip"
            write_results_zip(record.results_file, matched, self.include_live_profile, self.padding_bytes)

    def results_path(self, record: DsrRecord) -> str:
        return f"/dsr-results/{record.subject_request_id}/{record.results_token}.zip"


def merge_consent(target: dict[str, dict[str, Any]], update: Mapping[str, Any], now_ms: int) -> None:
    """Apply a ``consent_state`` object (gdpr purposes, ccpa data_sale_opt_out) to a profile's consent."""
    for regulation in ("gdpr", "ccpa"):
        for purpose, state in (update.get(regulation) or {}).items():
            entry = dict(state)
            entry.setdefault("timestamp_unixtime_ms", now_ms)
            target.setdefault(regulation, {})[purpose.lower()] = entry


def _identity_list(profile: Profile, device: bool) -> list[dict[str, Any]]:
    return [{"identity_type": name, "identity": value}
            for name, value in sorted(profile.identities.items()) if (name in DEVICE_TYPES) == device]


def write_results_zip(path: Path, profiles: list[Profile], include_live_profile: bool, padding: int = 0) -> None:
    """An access/portability results file: ``profile.jsonl``, ``event_batches.jsonl`` or ``empty.txt``
    (plus ``padding.bin`` of random bytes when a benchmark asks for a large file)."""
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        if padding > 0:
            with archive.open(zipfile.ZipInfo("padding.bin"), "w", force_zip64=True) as blob:
                for start in range(0, padding, 1 << 20):
                    blob.write(os.urandom(min(1 << 20, padding - start)))
        if include_live_profile:
            lines = [json.dumps({
                "mpid": str(p.mpid),
                "user_identities": _identity_list(p, device=False),
                "device_identities": _identity_list(p, device=True),
                "user_attributes": p.attributes,
                "audience_memberships": p.audiences,
                "consent_state": p.consent,
            }, sort_keys=True) for p in profiles]
            archive.writestr("profile.jsonl", "\n".join(lines) + "\n")
        batches = [json.dumps({**b, "mpid": str(p.mpid)}, sort_keys=True) for p in profiles for b in p.batches]
        if batches:
            archive.writestr("event_batches.jsonl", "\n".join(batches) + "\n")
        else:
            archive.writestr("empty.txt", "MPIDs were found for this request, but no event data exists for them.\n")
