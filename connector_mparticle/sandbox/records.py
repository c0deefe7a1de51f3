"""The records the sandbox keeps: profiles, DSR requests, and what IDSync and the Events API answer about them."""

from __future__ import annotations

import copy
import time
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["BatchOutcome", "DsrRecord", "Durations", "Match", "Profile", "merge_consent"]


def _now_ms() -> int:
    return int(time.time() * 1000)


@dataclass
class Profile:
    """One mParticle user profile."""

    mpid: int
    identities: dict[str, str]  #: canonical identity type -> value
    attributes: dict[str, Any] = field(default_factory=dict)
    consent: dict[str, dict[str, Any]] = field(default_factory=lambda: {"gdpr": {}, "ccpa": {}})
    batches: list[dict[str, Any]] = field(default_factory=list)  #: exactly as received
    receipts: list[dict[str, Any]] = field(default_factory=list)  #: per batch: when it came and by which path
    audiences: list[str] = field(default_factory=list)
    created_ms: int = field(default_factory=_now_ms)
    last_stored_ms: int = 0
    is_opted_out: bool = False
    limit_ad_tracking: bool | None = None
    attribution: list[dict[str, Any]] = field(default_factory=list)
    ignored_consent: list[dict[str, Any]] = field(default_factory=list)

    def in_audiences(self, exclusions: Collection[str] = ()) -> list[str]:
        """The audiences the profile is in now: none while it holds an attribute the workspace's audience criteria
        exclude (``WorkspaceSettings.audience_exclusions``)."""
        return [] if any(name in self.attributes for name in exclusions) else list(self.audiences)

    def view(self, with_batches: bool = False, exclusions: Collection[str] = ()) -> dict[str, Any]:
        """The admin API's view of the profile."""
        data: dict[str, Any] = {
            "mpid": str(self.mpid),
            "identities": dict(self.identities),
            "attributes": copy.deepcopy(self.attributes),
            "consent_state": copy.deepcopy(self.consent),
            "ignored_consent": copy.deepcopy(self.ignored_consent),
            "audience_memberships": self.in_audiences(exclusions),
            "event_batch_count": len(self.batches),
            "created_timestamp_ms": self.created_ms,
            "last_stored_timestamp_ms": self.last_stored_ms,
            "is_opted_out": self.is_opted_out,
        }
        if with_batches:
            data["batches"] = copy.deepcopy(self.batches)
            data["batch_receipts"] = copy.deepcopy(self.receipts)
        return data

    def keep(self, batch: Mapping[str, Any], now_ms: int, historical: bool) -> None:
        """Keep a batch exactly as it was sent, with its receipt."""
        self.batches.append(copy.deepcopy(dict(batch)))
        self.receipts.append({"received_timestamp_ms": now_ms, "historical": historical})
        self.last_stored_ms = now_ms


@dataclass(frozen=True)
class Match:
    """What IDSync answers about the profile a request resolved to."""

    mpid: int
    matched: dict[str, str]  #: canonical type -> value, the request's identities the profile holds
    logged_in: bool
    created: bool = False


@dataclass(frozen=True)
class BatchOutcome:
    """What became of one Events batch."""

    status: str  #: stored, duplicate, unattributed, not_processed
    mpid: int | None = None
    reason: str | None = None


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
    identities: dict[str, str]  #: canonical type -> value (or {"mpid": ...})
    extensions: dict[str, Any]
    group_id: str | None
    callback_urls: list[str]
    received_at: float
    starts_at: float
    completes_at: float
    expected_completion_at: float
    encoded_request: str
    api_version: str = "3.0"
    partners: tuple[Any, ...] = ()  #: forwarding partners configured when the request came in
    status: str = "pending"
    forced: bool = False
    results_token: str | None = None
    results_file: Path | None = None
    results_expire_at: float | None = None
    matched_mpids: list[int] = field(default_factory=list)
    cancelled_at: float | None = None
    seq: int = 0  #: the order it came in (1, 2, ...): names it to shape variation, whatever its random id

    @property
    def final(self) -> bool:
        return self.status in ("completed", "cancelled")


def merge_consent(target: dict[str, dict[str, Any]], update: Mapping[str, Any]) -> None:
    """Apply a ``consent_state`` object (gdpr purposes, ccpa data_sale_opt_out) to a profile's consent."""
    for regulation in ("gdpr", "ccpa"):
        for purpose, state in (update.get(regulation) or {}).items():
            target.setdefault(regulation, {})[purpose.lower()] = dict(state)
