"""What access results hold, as a summary people can read: bounded, whatever the archive holds.

The full data stays in the results archive (the export file the host receives); the summary lists at most the
first :data:`CAPS` of each kind (profiles, their attributes, identities, audiences and consent purposes,
identity types and values, event types, archive entries) and counts what it leaves out under ``not_listed``,
which the text summary says in words ("and 3,412 more user attributes not listed; the full data is in the export
file"). Every string is cut to :data:`MAX_TEXT_BYTES` of JSON (an ellipsis marks the cut); a user attribute that
is a list keeps its first :data:`MAX_LIST_ITEMS` items; any other structure is shown as shortened JSON text.
So the summary's JSON is at most :data:`SUMMARY_BOUND` bytes and the memory it takes while an archive is read
line by line is bounded the same way. Counts of what is left out are of distinct items, exact for the first
:data:`MAX_TRACKED` of each kind and an upper estimate beyond (a hostile archive, not a person's data). When
the archives of one request are merged (an mpid makes a second OpenDSR request), a profile or value listed in
both is counted once; what either left out is added up, so it may count twice.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Hashable, Mapping
from functools import partial
from typing import Any, Generic, TypeVar

__all__ = ["CAPS", "MAX_TEXT_BYTES", "NO_DATA", "SUMMARY_BOUND", "Listing", "Summary", "brief", "clip",
           "not_listed_lines"]

V = TypeVar("V")
MAX_TEXT_BYTES = 128  #: of JSON per string (about 120 ASCII characters)
MAX_LIST_ITEMS = 5  #: of a user attribute that is a list
MAX_TRACKED = 10_000  #: distinct items left out that are remembered, per kind, to count them exactly
#: How many of each are listed; what is left out is counted in ``not_listed`` under the same name.
CAPS = {"profiles": 5, "user_attributes": 20, "user_identities": 10, "device_identities": 10,
        "audience_memberships": 10, "consent_purposes": 10, "identity_types": 30, "identity_values": 10,
        "event_types": 30, "archive_entries": 50}
#: What the summary's JSON never exceeds (tests/adversarial/test_result_sizes.py holds it to this).
SUMMARY_BOUND = 256 * 1024
AUDIENCE_FIELDS = ("audience_id", "audience_name", "time_added")
CONSENT_FIELDS = ("consented", "document", "timestamp_unixtime_ms", "location", "hardware_id")
#: What a request whose results link answered 404 (nothing matched) adds to a summary.
NO_DATA: dict[str, Any] = {"data_found": False, "profiles_found": 0, "profiles": [], "identities": {},
                           "event_batches": 0, "events": 0, "event_types": {}, "first_event_unixtime_ms": None,
                           "last_event_unixtime_ms": None, "no_event_data": False, "archive_entries": [],
                           "not_listed": {}}
#: How ``not_listed`` reads in words.
WORDS = {"profiles": "profiles", "user_attributes": "user attributes", "user_identities": "user identities",
         "device_identities": "device identities", "audience_memberships": "audience memberships",
         "consent_purposes": "consent purposes", "attribute_list_items": "items of list attributes",
         "identity_types": "identity types", "identity_values": "identity values", "event_types": "event types",
         "archive_entries": "archive entries"}


def clip(text: str, limit: int = MAX_TEXT_BYTES) -> str:
    """``text`` cut so that its JSON form (escapes included) is at most ``limit`` bytes; "…" marks a cut."""
    if len(text) * 12 <= limit or len(json.dumps(text)) <= limit:  # 12: the longest escape of one character
        return text
    cut = text[:limit]
    while cut and len(json.dumps(cut + "…")) > limit:
        cut = cut[: len(cut) * 3 // 4]
    return cut + "…"


def brief(value: Any) -> Any:
    """A scalar as it is (strings clipped); anything else as clipped JSON text."""
    if isinstance(value, str):
        return clip(value)
    if value is None or isinstance(value, (bool, int, float)):
        return value
    return clip(json.dumps(value, sort_keys=True, default=str))


def _attribute(value: Any, left_out: dict[str, int]) -> Any:
    """A user attribute: a list keeps its first items (briefly), counted in ``attribute_list_items``."""
    if not isinstance(value, list):
        return brief(value)
    if len(value) > MAX_LIST_ITEMS:
        left_out["attribute_list_items"] = left_out.get("attribute_list_items", 0) + len(value) - MAX_LIST_ITEMS
    return [brief(item) for item in value[:MAX_LIST_ITEMS]]


class Listing(Generic[V]):
    """The first ``cap`` distinct keys (with a value each) in arrival order, and how many others were seen."""

    def __init__(self, cap: int) -> None:
        self.cap = cap
        self.items: dict[Hashable, V] = {}
        self._others: set[int] = set()  #: hashes of the keys left out (at most MAX_TRACKED)
        self._more = 0  #: left out past MAX_TRACKED, or counted in another summary (merge)

    def add(self, key: Hashable, make: Callable[[], V]) -> V | None:
        """The listed value for ``key`` (made on first sight, while there is room); None when it is left out."""
        if key in self.items:
            return self.items[key]
        if len(self.items) < self.cap:
            value = self.items[key] = make()
            return value
        marker = hash(key)
        if marker not in self._others:
            if len(self._others) < MAX_TRACKED:
                self._others.add(marker)
            else:
                self._more += 1
        return None

    def count_more(self, count: int) -> None:
        self._more += count

    @property
    def not_listed(self) -> int:
        return len(self._others) + self._more


def _first(items: list[Any], cap: int, name: str, left_out: dict[str, int]) -> list[Any]:
    if len(items) > cap:
        left_out[name] = left_out.get(name, 0) + len(items) - cap
    return items[:cap]


def profile_entry(mpid: str | None, data: Mapping[str, Any], identities: list[tuple[str, str]],
                  devices: list[tuple[str, str]], attributes: Mapping[str, Any]) -> dict[str, Any]:
    """One profile as the summary lists it (from a line of ``profile.jsonl`` whose types were checked)."""
    left_out: dict[str, int] = {}
    listed = _first(list(attributes.items()), CAPS["user_attributes"], "user_attributes", left_out)
    audiences = _first(data.get("audience_memberships") or [], CAPS["audience_memberships"], "audience_memberships",
                       left_out)
    entry = {
        "mpid": clip(mpid) if mpid is not None else None,
        "created_timestamp_ms": data.get("created_timestamp_ms"),
        "last_stored_timestamp_ms": data.get("last_stored_timestamp_ms"),
        "is_opted_out": data.get("is_opted_out"),
        "user_identities": [{"type": clip(k), "value": clip(v)} for k, v in
                            _first(identities, CAPS["user_identities"], "user_identities", left_out)],
        "device_identities": [{"type": clip(k), "value": clip(v)} for k, v in
                              _first(devices, CAPS["device_identities"], "device_identities", left_out)],
        "user_attributes": {clip(str(k)): _attribute(v, left_out) for k, v in listed},
        "audience_memberships": [_fields(a, AUDIENCE_FIELDS) for a in audiences],
        "consent_state": _consent(data.get("consent_state") or {}, left_out),
    }
    return {**entry, "not_listed": left_out}


def _fields(value: Any, names: tuple[str, ...]) -> Any:
    """The known fields of an object, each brief; anything else as brief JSON text."""
    if not isinstance(value, dict):
        return brief(value)
    return {name: brief(value[name]) for name in names if name in value}


def _consent(state: Mapping[str, Any], left_out: dict[str, int]) -> dict[str, Any]:
    """``{regulation: {purpose: {consented, document, ...}}}``, at most CAPS["consent_purposes"] purposes."""
    out: dict[str, Any] = {}
    room = CAPS["consent_purposes"]
    for regulation, purposes in state.items():
        purposes = purposes if isinstance(purposes, dict) else {}
        kept = list(purposes.items())[:max(0, room)]
        room -= len(kept)
        if len(purposes) > len(kept):
            left_out["consent_purposes"] = left_out.get("consent_purposes", 0) + len(purposes) - len(kept)
        if kept:
            out[clip(str(regulation))] = {clip(str(p)): _fields(s, CONSENT_FIELDS) for p, s in kept}
    return out


class Summary:
    """What one or more archives hold, accumulated line by line (or summary by summary, :meth:`absorb`),
    in bounded memory."""

    def __init__(self) -> None:
        self.profiles: Listing[dict[str, Any]] = Listing(CAPS["profiles"])  #: by mpid: found twice, listed once
        self.identities: Listing[Listing[None]] = Listing(CAPS["identity_types"])
        self.more_identity_values = 0  #: counted in summaries absorbed
        self.batches = 0
        self.events = 0
        self.event_types: Listing[list[int]] = Listing(CAPS["event_types"])
        self.first_ms: int | None = None
        self.last_ms: int | None = None
        self.empty = False
        self.entries: list[str] = []
        self.more_entries = 0

    def add_identity(self, kind: str, value: str) -> None:
        values = self.identities.add(_key(kind), lambda: Listing(CAPS["identity_values"]))
        if values is not None:
            values.add(_key(value), lambda: None)

    def add_event_type(self, kind: str, count: int = 1) -> None:
        tally = self.event_types.add(_key(kind), lambda: [0])
        if tally is not None:
            tally[0] += count

    def add_time(self, stamp: int | None) -> None:
        if stamp is not None:
            self.first_ms = stamp if self.first_ms is None else min(self.first_ms, stamp)
            self.last_ms = stamp if self.last_ms is None else max(self.last_ms, stamp)

    def add_profile(self, mpid: str | None, make: Callable[[], dict[str, Any]]) -> None:
        """A profile, listed while there is room (a profile without an mpid is always a new one)."""
        self.profiles.add(_key(mpid) if mpid is not None else object(), make)

    def add_entry(self, name: str) -> None:
        if len(self.entries) < CAPS["archive_entries"]:
            self.entries.append(clip(name))
        else:
            self.more_entries += 1

    def absorb(self, summary: Mapping[str, Any]) -> None:
        """Add a summary :meth:`to_dict` made (of another archive), counts of what it left out included."""
        left_out = summary.get("not_listed") or {}
        for profile in summary["profiles"]:
            self.add_profile(profile.get("mpid"), partial(dict, profile))
        self.profiles.count_more(left_out.get("profiles", 0))
        for kind, values in summary["identities"].items():
            for value in values:
                self.add_identity(kind, value)
        self.identities.count_more(left_out.get("identity_types", 0))
        self.more_identity_values += left_out.get("identity_values", 0)
        self.batches += summary["event_batches"]
        self.events += summary["events"]
        for kind, count in summary["event_types"].items():
            self.add_event_type(kind, count)
        self.event_types.count_more(left_out.get("event_types", 0))
        self.add_time(summary["first_event_unixtime_ms"])
        self.add_time(summary["last_event_unixtime_ms"])
        self.empty = self.empty or summary["no_event_data"]
        for name in summary["archive_entries"]:
            self.add_entry(name)
        self.more_entries += left_out.get("archive_entries", 0)

    def _left_out(self) -> dict[str, int]:
        values = self.more_identity_values + sum(v.not_listed for v in self.identities.items.values())
        counts = {"profiles": self.profiles.not_listed, "identity_types": self.identities.not_listed,
                  "identity_values": values,
                  "event_types": self.event_types.not_listed, "archive_entries": self.more_entries}
        return {name: count for name, count in counts.items() if count}

    def to_dict(self) -> dict[str, Any]:
        found = len(self.profiles.items) + self.profiles.not_listed
        return {
            "data_found": bool(found or self.batches),
            "profiles_found": found,
            "profiles": list(self.profiles.items.values()),
            "identities": {_text(k): sorted(_text(x) for x in v.items) for k, v in
                           sorted(self.identities.items.items(), key=lambda kv: _text(kv[0]))},
            "event_batches": self.batches,
            "events": self.events,
            "event_types": {_text(k): v[0] for k, v in sorted(self.event_types.items.items(),
                                                                key=lambda kv: _text(kv[0]))},
            "first_event_unixtime_ms": self.first_ms,
            "last_event_unixtime_ms": self.last_ms,
            "no_event_data": self.empty,
            "archive_entries": list(self.entries),
            "not_listed": self._left_out(),
        }


def _key(text: str) -> tuple[str, int]:
    """What a listing remembers of a text: at most MAX_TEXT_BYTES of it (two long texts sharing their first part
    stay apart by the hash of the whole), so what is kept is bounded whatever the archive's lines hold."""
    return clip(text), hash(text)


def _text(key: Hashable) -> str:
    return key[0] if isinstance(key, tuple) else str(key)


def not_listed_lines(left_out: Mapping[str, Any], indent: str = "") -> list[str]:
    """``not_listed`` in words, one line each, ending with where the full data is."""
    return [f"{indent}and {count:,} more {WORDS.get(name, name)} not listed; the full data is in the export file"
            for name, count in sorted(left_out.items()) if isinstance(count, int) and count > 0]
