"""A results archive as plain tables: identities, attributes, consent, audiences and events.

mParticle answers access and portability requests the same way (``guides/data-subject-requests``, "Access /
Portability Response Format"): a zip of JSON Lines, ``profile.jsonl`` (the live profile, when the workspace
includes it) and files of event batches in the Events API format (``developers/server/json-reference``). A person
moving their data elsewhere needs it flat, so each line becomes rows of five tables with fixed columns
(:data:`TABLES`). Rows are plain dicts of the values mParticle wrote; a value of the wrong shape is skipped, never
guessed at (the archive itself was already checked line by line, :func:`connector_mparticle.api.results.lines`).

Identities, attributes, consent and audiences repeat on every batch; :class:`Tables` keeps each distinct row once,
as its JSON text (never as live objects, whose size in memory can be many times the text's), up to
:data:`MAX_ROWS` rows per table and :data:`MAX_BYTES` of text in all: a small archive whose lines differ a little
each time cannot cost hundreds of megabytes. What was not kept is counted per table (``left_out``). Events are not
kept: :func:`event_rows` yields them for the caller to stream to its files.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from typing import Any

__all__ = ["EVENT_COLUMNS", "TABLES", "Tables", "batch_context", "event_rows"]

#: The small tables and their columns, in the order files list them.
TABLES: dict[str, tuple[str, ...]] = {
    "identities": ("mpid", "source", "kind", "type", "value"),
    "attributes": ("mpid", "source", "name", "value"),
    "consent": ("mpid", "source", "regulation", "purpose", "consented", "document", "timestamp_unixtime_ms",
                "location", "hardware_id"),
    "audiences": ("mpid", "audience_id", "audience_name", "time_added"),
}
EVENT_COLUMNS = ("mpid", "source", "event_type", "event_name", "custom_event_type", "timestamp_unixtime_ms",
                 "timestamp_utc", "attributes")
#: At most this many distinct rows per small table (a profile has tens; the rest are counted, not kept).
MAX_ROWS = 100_000
#: At most this much row text in all the small tables together (the rest is counted, not kept).
MAX_BYTES = 16 << 20
_CONSENT_FIELDS = ("consented", "document", "timestamp_unixtime_ms", "location", "hardware_id")


def _object(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, dict) else {}


def _mpid(value: Any) -> str | None:
    return str(value) if isinstance(value, (int, str)) and not isinstance(value, bool) else None


class Tables:
    """The distinct rows of the small tables, from every line of one or more archives."""

    def __init__(self) -> None:
        # each table's rows by a digest of their text (the digest, not the text, is the key: kept once)
        self.rows: dict[str, dict[bytes, str]] = {name: {} for name in TABLES}
        self.left_out: dict[str, int] = {name: 0 for name in TABLES}
        self.kept_bytes = 0

    def _add(self, table: str, row: dict[str, Any]) -> None:
        text = json.dumps([row.get(c) for c in TABLES[table]], ensure_ascii=True)
        key = hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=16).digest()
        kept = self.rows[table]
        if key in kept:
            return
        if len(kept) >= MAX_ROWS or self.kept_bytes + len(text) > MAX_BYTES:
            self.left_out[table] += 1
            return
        kept[key] = text
        self.kept_bytes += len(text)

    def profile(self, data: Any) -> None:
        """One line of ``profile.jsonl``: ``id``, identities as ``{type, value}``, attributes, audiences, consent."""
        line = _object(data)
        mpid = _mpid(line.get("id"))
        for kind in ("user_identities", "device_identities"):
            for entry in line.get(kind) or []:
                entry = _object(entry)
                if isinstance(entry.get("type"), str) and entry.get("value") is not None:
                    self._add("identities", {"mpid": mpid, "source": "profile", "kind": kind.split("_")[0],
                                             "type": entry["type"], "value": entry["value"]})
        for field in ("account_userattributes", "user_attributes"):
            self._attributes(mpid, "profile", line.get(field))
        for entry in line.get("audience_memberships") or []:
            self._add("audiences", {"mpid": mpid, **_object(entry)})
        self._consent(mpid, "profile", line.get("consent_state"))

    def batch(self, data: Any, source: str) -> None:
        """One event batch: its identities (user, and device ids from ``device_info``), attributes and consent."""
        line = _object(data)
        mpid = _mpid(line.get("mpid"))
        for kind, value in _object(line.get("user_identities")).items():
            if value is not None:
                self._add("identities", {"mpid": mpid, "source": source, "kind": "user", "type": kind,
                                         "value": value})
        for kind, value in _object(line.get("device_info")).items():
            if kind.endswith(("_identifier", "_advertising_id", "_id")) and isinstance(value, str):
                self._add("identities", {"mpid": mpid, "source": source, "kind": "device", "type": kind,
                                         "value": value})
        self._attributes(mpid, source, line.get("user_attributes"))
        self._consent(mpid, source, line.get("consent_state"))

    def _attributes(self, mpid: str | None, source: str, attributes: Any) -> None:
        for name, value in _object(attributes).items():
            self._add("attributes", {"mpid": mpid, "source": source, "name": name, "value": value})

    def _consent(self, mpid: str | None, source: str, state: Any) -> None:
        for regulation, purposes in _object(state).items():
            for purpose, entry in _object(purposes).items():
                fields = _object(entry)
                self._add("consent", {"mpid": mpid, "source": source, "regulation": regulation, "purpose": purpose,
                                      **{f: fields.get(f) for f in _CONSENT_FIELDS}})

    def count(self, name: str) -> int:
        return len(self.rows[name])

    def table(self, name: str) -> Iterator[dict[str, Any]]:
        """The rows of table ``name`` in the order first seen, each made again from its text when asked for."""
        columns = TABLES[name]
        for text in self.rows[name].values():
            yield dict(zip(columns, json.loads(text), strict=True))


def _utc(stamp: Any) -> str | None:
    try:
        number = int(stamp)
        return datetime.fromtimestamp(number / 1000, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    except (TypeError, ValueError, OverflowError, OSError):
        return None


def batch_context(data: Any) -> dict[str, Any]:
    """Everything a batch holds but its events (device, application, location, IP, ...), as mParticle wrote it:
    the JSON document keeps it whole, since the tables' fixed columns cannot."""
    return {name: value for name, value in _object(data).items() if name != "events"}


def event_rows(data: Any, source: str) -> Iterator[dict[str, Any]]:
    """One row per event of a batch: type, name, time (as mParticle wrote it, and in UTC) and its attributes;
    ``event`` holds the whole event as mParticle wrote it (screen names, products, prices: the JSON keeps them,
    the events table's fixed columns do not)."""
    line = _object(data)
    mpid = _mpid(line.get("mpid"))
    for event in line.get("events") or []:
        event = _object(event)
        payload = _object(event.get("data"))
        stamp = payload.get("timestamp_unixtime_ms")
        yield {"mpid": mpid, "source": source, "event_type": event.get("event_type"),
               "event_name": payload.get("event_name"), "custom_event_type": payload.get("custom_event_type"),
               "timestamp_unixtime_ms": stamp, "timestamp_utc": _utc(stamp),
               "attributes": payload.get("custom_attributes") or None, "event": event}
