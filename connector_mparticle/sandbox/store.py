"""The sandbox's data: profiles with their events and consent, and DSR requests with their lifecycle.

One lock guards all of it (an erasure removes profiles while DSRs and batches are written elsewhere), and
nothing outside reaches the data itself: methods return copies. Profiles are found through
:class:`~connector_mparticle.sandbox.profile_index.ProfileIndex` (identity resolution follows
:mod:`~connector_mparticle.sandbox.resolution`); what a batch changes on a profile is
:mod:`~connector_mparticle.sandbox.batch_effects`. The workspace's rules are passed in with each call.

A DSR moves pending -> in_progress -> completed on a schedule set per request type (seconds by default, so
tests and the demo run fast). Its ``expected_completion_time`` is honest: the scheduled completion, unless
``overrun_seconds`` makes requests finish late on purpose. Completing an erasure removes the profile the
identities resolve to, with its events; completing an access or portability request writes a results zip.
"""

from __future__ import annotations

import copy
import secrets
import shutil
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

from connector_mparticle.sandbox.batch_effects import apply_attributes, apply_consent, apply_event, historical_problem
from connector_mparticle.sandbox.identity_types import by_name
from connector_mparticle.sandbox.profile_index import ProfileIndex
from connector_mparticle.sandbox.records import BatchOutcome, DsrRecord, Durations, Match, Profile, merge_consent
from connector_mparticle.sandbox.resolution import is_logged_in
from connector_mparticle.sandbox.results_zip import write_results_zip
from connector_mparticle.sandbox.shapes import ShapeBook, ShapeSettings
from connector_mparticle.sandbox.workspace import IdentityStrategy, WorkspaceSettings

__all__ = ["Store"]

#: With skip_waiting_period an erasure's cancellation window is under 24 hours (guides/data-subject-requests); the
#: sandbox halves a shorter waiting period, so compressed test timings still show the difference.
SKIPPED_WAIT_SECONDS = 86400.0


class Store:
    """Profiles and DSRs, safe to use from many server threads."""

    def __init__(self, durations: Mapping[str, Durations], results_ttl: float, overrun: float = 0.0,
                 padding_bytes: int = 0, shapes: ShapeBook | None = None) -> None:
        self._lock = threading.RLock()
        self._shapes = shapes or ShapeBook(ShapeSettings())  #: the form results files are written in
        self._durations = {k: replace(v) for k, v in durations.items()}
        self._default_timing = (copy.deepcopy(self._durations), results_ttl, overrun)
        self._results_ttl = results_ttl
        self._overrun = overrun
        self._padding = padding_bytes
        self._people = ProfileIndex()
        self._dsrs: dict[str, DsrRecord] = {}
        self._source_request_ids: set[tuple[str, str]] = set()
        self._stats: Counter[str] = Counter()
        self._audiences: dict[str, int] = {}
        self._dir = Path(tempfile.mkdtemp(prefix="mparticle-sandbox-"))

    def close(self) -> None:
        shutil.rmtree(self._dir, ignore_errors=True)

    def reset(self) -> None:
        """Forget every profile, DSR, statistic and audience; restore the starting durations, and number profiles
        from the first mpid again (as a fresh store does)."""
        with self._lock:
            self._people.clear(restart_mpids=True)
            self._dsrs.clear()
            self._source_request_ids.clear()
            self._stats.clear()
            self._audiences.clear()
            durations, self._results_ttl, self._overrun = self._default_timing
            self._durations = copy.deepcopy(durations)
            for child in self._dir.iterdir():
                child.unlink()

    # -- timing -------------------------------------------------------------------------------------------

    def timing(self) -> dict[str, Any]:
        with self._lock:
            return {"durations": {k: {"pending": d.pending, "in_progress": d.in_progress}
                                  for k, d in self._durations.items()},
                    "overrun_seconds": self._overrun, "results_ttl_seconds": self._results_ttl}

    def set_timing(self, durations: Mapping[str, Durations] | None = None, overrun: float | None = None,
                   results_ttl: float | None = None) -> None:
        with self._lock:
            self._durations.update(durations or {})
            if overrun is not None:
                self._overrun = overrun
            if results_ttl is not None:
                self._results_ttl = results_ttl

    # -- profiles ---------------------------------------------------------------------------------------

    def _new_profile(self, identities: Mapping[str, str], strategy: IdentityStrategy,
                     mpid: int | None = None) -> Profile:
        self._stats["profiles_created"] += 1
        return self._people.new(identities, strategy, mpid)

    def add_profile(self, identities: Mapping[str, str], strategy: IdentityStrategy, *,
                    attributes: Mapping[str, Any] | None = None, consent: Mapping[str, Any] | None = None,
                    batches: Iterable[Mapping[str, Any]] = (), mpid: int | None = None,
                    audiences: Iterable[str] = ()) -> dict[str, Any]:
        """Seed a profile (admin API). Identities use canonical names; a unique id must not be taken."""
        for name in identities:
            if by_name(name) is None:
                raise ValueError(f"unknown identity type '{name}'")
        with self._lock:
            for kind, value in identities.items():
                if self._people.unique_elsewhere(None, kind, value, strategy):
                    raise ValueError(f"{kind} is a unique id and {value!r} already belongs to another profile")
            if mpid is not None and mpid in self._people:
                raise ValueError(f"mpid {mpid} already exists")
            profile = self._new_profile(identities, strategy, mpid)
            profile.attributes.update(attributes or {})
            profile.audiences.extend(audiences)
            if consent:
                merge_consent(profile.consent, consent)
            now = int(time.time() * 1000)
            for batch in batches:
                profile.keep(batch, now, historical=False)
            return profile.view()

    def profile(self, mpid: int) -> dict[str, Any] | None:
        """The admin view of one profile, with its batches; None if it never existed or was erased."""
        with self._lock:
            found = self._people.get(mpid)
            return found.view(with_batches=True) if found else None

    def profile_copy(self, mpid: int) -> Profile | None:
        """A deep copy of one profile (for the Profile API)."""
        with self._lock:
            found = self._people.get(mpid)
            return copy.deepcopy(found) if found else None

    def find_profiles(self, identities: Mapping[str, str]) -> list[dict[str, Any]]:
        """Profiles holding any of ``identities`` (all profiles when empty): a plain lookup, not IDSync."""
        with self._lock:
            found = self._people.candidates(identities) if identities else self._people.all()
            return [p.view() for p in sorted(found, key=lambda p: (p.created_ms, p.mpid))]

    def holder_of(self, kind: str, value: str) -> Profile | None:
        """A copy of the profile holding ``kind`` = ``value`` (for immutable-id look-ups)."""
        with self._lock:
            holders = sorted(self._people.holders(kind, value), key=lambda p: (p.created_ms, p.mpid))
            return copy.deepcopy(holders[0]) if holders else None

    def audience_id(self, name: str) -> int:
        """A stable numeric id for an audience name."""
        with self._lock:
            return self._audiences.setdefault(name, 17_000 + len(self._audiences))

    # -- IDSync -----------------------------------------------------------------------------------------

    def identify(self, known: Mapping[str, str], strategy: IdentityStrategy, *, write: bool,
                 lookup: bool = False) -> Match | None:
        """Resolve ``known`` to a profile; with ``write``, add its new identities or create one (identify,
        login, logout). Without ``write`` (search, read_only) nothing changes and no match is None; ``lookup``
        marks a search (see :func:`~connector_mparticle.sandbox.resolution.resolve`)."""
        with self._lock:
            profile = self._people.resolve(known, strategy, lookup)
            created = False
            if write:
                if profile is None:
                    profile, created = self._new_profile(known, strategy), True
                else:
                    self._people.adopt(profile, known, strategy)
            if profile is None:
                return None
            matched = {k: v for k, v in known.items() if profile.identities.get(k) == v}
            return Match(profile.mpid, matched, is_logged_in(profile.identities, strategy), created)

    def modify(self, mpid: int, changes: list[tuple[str, str | None, str | None]], strategy: IdentityStrategy) -> None:
        """Apply IDSync identity changes to an existing profile (``None`` adds or removes a value).

        ``guides/idsync/user-data``: a unique id moves to this profile and leaves any other (which may be left
        "orphaned"); an immutable id cannot be changed once set. ``LookupError`` for an unknown mpid,
        ``ValueError`` for a change that is not allowed."""
        with self._lock:
            profile = self._people.get(mpid)
            if profile is None:
                raise LookupError(f"no profile with mpid {mpid}")
            for kind, _old, new in changes:
                held = profile.identities.get(kind)
                if kind in strategy.immutable_ids and held is not None and new != held:
                    raise ValueError(f"{kind} is an immutable id and cannot be changed")
            for kind, _old, new in changes:
                self._people.unlink(profile, kind)
                if new is None:
                    continue
                if kind in strategy.unique_ids:
                    for other in self._people.holders(kind, new):
                        self._people.unlink(other, kind)
                self._people.link(profile, kind, new)

    # -- Events ------------------------------------------------------------------------------------------

    def store_batch(self, batch: Mapping[str, Any], identities: Mapping[str, str], client: str,
                    workspace: WorkspaceSettings, historical: bool = False) -> BatchOutcome:
        """Attach a validated batch to its profile (by mpid, else by identities; new identities create one)."""
        now = int(time.time() * 1000)
        if historical and (reason := historical_problem(batch, now)) is not None:
            self.count("historical_batches_not_processed")
            return BatchOutcome("not_processed", reason=reason)
        with self._lock:
            if self._seen_before(client, batch.get("source_request_id")):
                self._stats["duplicate_batches_ignored"] += 1
                return BatchOutcome("duplicate")
            profile = self._batch_profile(batch, identities, workspace.identity)
            if profile is None:
                self._stats["batches_unattributed"] += 1
                return BatchOutcome("unattributed", reason="the batch has no identities and no known mpid")
            self._people.adopt(profile, identities, workspace.identity)
            self._apply(profile, batch, workspace, now)
            profile.keep(batch, now, historical)
            self._stats["batches_stored"] += 1
            return BatchOutcome("stored", profile.mpid)

    def _seen_before(self, client: str, source_id: Any) -> bool:
        """Whether ``client`` already sent a batch with this ``source_request_id`` (recording it if not); the
        ids are scoped per API key (json-reference)."""
        if not isinstance(source_id, str) or not source_id:
            return False
        if (client, source_id) in self._source_request_ids:
            return True
        self._source_request_ids.add((client, source_id))
        return False

    def _batch_profile(self, batch: Mapping[str, Any], identities: Mapping[str, str],
                       strategy: IdentityStrategy) -> Profile | None:
        """The profile a batch belongs to: its mpid "if known" (an mpid the sandbox does not hold is ignored),
        else the one its identities resolve to, else a new one; None when it has neither."""
        if batch.get("mpid") is not None and (profile := self._people.get(int(batch["mpid"]))) is not None:
            return profile
        if not identities:
            return None
        return self._people.resolve(identities, strategy) or self._new_profile(identities, strategy)

    def _apply(self, profile: Profile, batch: Mapping[str, Any], workspace: WorkspaceSettings, now: int) -> None:
        """Apply what a batch changes on its profile: attributes, device settings, consent and events."""
        apply_attributes(profile, batch)
        ignored = apply_consent(profile, batch.get("consent_state") or {}, workspace.gdpr_purposes, now)
        if ignored:
            self._stats["consent_purposes_ignored"] += ignored
        for event in batch.get("events") or []:
            apply_event(profile, event)

    # -- DSRs ---------------------------------------------------------------------------------------------

    def schedule(self, request_type: str, received_at: float, skip_waiting: bool) -> tuple[float, float, float]:
        """(in-progress time, completion time, expected completion time) for a new request."""
        with self._lock:
            durations = self._durations["access" if request_type == "portability" else request_type]
            pending = durations.pending
            if skip_waiting and request_type == "erasure":  # guides/data-subject-requests: "less than 24 hours"
                pending = min(pending / 2, SKIPPED_WAIT_SECONDS)
            starts = received_at + pending
            expected = starts + durations.in_progress
            return starts, expected + self._overrun, expected

    def submit(self, record: DsrRecord) -> str | None:
        """Add a new request; None, or why not: ``exists`` (same id) or the id of an identical one in flight.

        Requests are kept by their id in lower case (a UUID is the same in either case), while the record keeps
        the id as the controller sent it, which every answer echoes."""
        with self._lock:
            if record.subject_request_id.lower() in self._dsrs:
                return "exists"
            for other in self._dsrs.values():
                if (not other.final and other.request_type == record.request_type
                        and other.identities == record.identities and other.extensions == record.extensions):
                    return other.subject_request_id
            record.seq = len(self._dsrs) + 1
            self._dsrs[record.subject_request_id.lower()] = record
            return None

    def dsr(self, subject_request_id: str) -> DsrRecord | None:
        """A copy of one request."""
        with self._lock:
            found = self._dsrs.get(subject_request_id.lower())
            return replace(found) if found else None

    def dsrs(self, group_id: str | None = None) -> list[DsrRecord]:
        """Copies of every request (of one group), oldest first."""
        with self._lock:
            found = [replace(r) for r in self._dsrs.values() if group_id is None or r.group_id == group_id]
        return sorted(found, key=lambda r: r.received_at)

    def cancel(self, subject_request_id: str) -> tuple[str, DsrRecord | None]:
        """Cancel a pending request: ("cancelled" | "missing" | "not_pending", copy)."""
        with self._lock:
            record = self._dsrs.get(subject_request_id.lower())
            if record is None:
                return "missing", None
            if record.status != "pending":
                return "not_pending", replace(record)
            record.status = "cancelled"
            record.cancelled_at = time.time()
            return "cancelled", replace(record)

    def force_status(self, subject_request_id: str, status: str, workspace: WorkspaceSettings) -> DsrRecord | None:
        """Set a request's status (and its effects) and stop its schedule."""
        with self._lock:
            record = self._dsrs.get(subject_request_id.lower())
            if record is None:
                return None
            record.forced = True
            self._set_status(record, status, time.time(), workspace)
            return replace(record)

    def advance(self, workspace: WorkspaceSettings, now: float | None = None) -> list[DsrRecord]:
        """Move every DSR to the status its schedule says; return copies of those that changed."""
        now = time.time() if now is None else now
        changed = []
        with self._lock:
            for record in self._dsrs.values():
                if record.final or record.forced:
                    continue
                target = "completed" if now >= record.completes_at else (
                    "in_progress" if now >= record.starts_at else "pending")
                if target != record.status:
                    self._set_status(record, target, now, workspace)
                    changed.append(replace(record))
        return changed

    def _set_status(self, record: DsrRecord, status: str, now: float, workspace: WorkspaceSettings) -> None:
        if record.status == status:
            return
        record.status = status
        if status == "completed":
            self._complete(record, now, workspace)
        elif status == "cancelled":
            record.cancelled_at = now

    def _subject(self, identities: Mapping[str, str], strategy: IdentityStrategy) -> Profile | None:
        """The one profile a DSR's identities resolve to (v3 "enforces identity resolution to map to a single
        mpid"; an mpid sent in the extension names it directly)."""
        if "mpid" in identities:
            try:
                return self._people.get(int(identities["mpid"]))
            except ValueError:
                return None
        return self._people.resolve(identities, strategy, lookup=True)

    def _complete(self, record: DsrRecord, now: float, workspace: WorkspaceSettings) -> None:
        subject = self._subject(record.identities, workspace.identity)
        record.matched_mpids = [subject.mpid] if subject else []
        if record.request_type == "erasure":
            if subject is not None:
                self._people.remove(subject)
                self._stats["profiles_erased"] += 1
            return
        record.results_token = secrets.token_urlsafe(24)
        record.results_expire_at = now + self._results_ttl
        if subject is not None:
            record.results_file = self._dir / f"{record.subject_request_id}.zip"
            write_results_zip(record.results_file, record.subject_request_id, [subject],
                              workspace.include_live_profile, self.audience_id, self._shapes.current, record.seq,
                              self._padding, workspace.audience_exclusions)

    def count(self, name: str) -> None:
        """Add one to statistic ``name``."""
        with self._lock:
            self._stats[name] += 1

    def stats(self) -> dict[str, int]:
        """Writes that took effect."""
        with self._lock:
            counts = {"dsrs": len(self._dsrs), "profiles": len(self._people), "batches_stored": 0,
                      "duplicate_batches_ignored": 0}
            counts.update(self._stats)
            return counts

    def ignored_consent(self) -> list[dict[str, Any]]:
        """Every consent purpose a batch sent that the workspace has not defined, with its profile."""
        with self._lock:
            return [{"mpid": str(p.mpid), **entry} for p in self._people.all() for entry in p.ignored_consent]
