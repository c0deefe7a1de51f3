"""The backlog's embedded store: one SQLite file (WAL), one row per request.

Each row holds the request as it is sent, the connector's opaque state as last returned, where the request
stands (``new``, ``pending``, ``completed``, ``failed``), when to call again, how many calls and retries it
took, its last result and its timings. A row is written before the request's first call and again after
every call, in its own transaction, so a crash loses at most the call in flight (whose request the
connector resumes idempotently).

A step in flight holds a *claim*: a random token on the row. Only the holder of the token may record a
result or release it, so a request is never driven twice at once, and a late answer from a step that was
given up on is ignored. Rows are claimed nearest due date first (then in file order).
"""

from __future__ import annotations

import json
import os
import secrets
import sqlite3
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dsr_framework.files import Folder
from dsr_framework.models import DsrRequest, Result

__all__ = ["FAR_FUTURE", "STORE_FOLDER", "Claim", "Counts", "Imported", "Row", "Store", "StoreConflict"]

STORE_FOLDER = "store"  #: the private folder holding the database and SQLite's own files
STORE_FILE = "store.sqlite"
#: What SQLite may keep beside the database (its rollback journal too, should WAL mode ever be left).
STORE_NAMES = frozenset(STORE_FILE + suffix for suffix in ("", "-wal", "-shm", "-journal"))

FORMAT = "1"
FAR_FUTURE = 1e18  #: the due key of a request without a due date: after every dated one
FINAL = ("completed", "failed")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS requests (
    request_id TEXT PRIMARY KEY,
    seq INTEGER NOT NULL,
    type TEXT NOT NULL,
    identifiers INTEGER NOT NULL,
    request TEXT NOT NULL,
    due_key REAL NOT NULL,
    status TEXT NOT NULL,
    state TEXT,
    next_at REAL,
    calls INTEGER NOT NULL DEFAULT 0,
    retries INTEGER NOT NULL DEFAULT 0,
    token TEXT,
    claimed_at REAL,
    result TEXT,
    started_at REAL,
    last_call_at REAL,
    finished_at REAL,
    added_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS new_by_due ON requests (due_key, seq) WHERE status = 'new';
CREATE INDEX IF NOT EXISTS pending_by_time ON requests (next_at) WHERE status = 'pending';
CREATE INDEX IF NOT EXISTS by_start ON requests (started_at);
"""


class StoreConflict(ValueError):
    """Requests that contradict the store (a request id it holds for another type, regulation or subject);
    nothing was imported."""

    def __init__(self, request_ids: list[str]) -> None:
        self.request_ids = request_ids
        shown = ", ".join(request_ids[:10]) + (f" and {len(request_ids) - 10} more" if len(request_ids) > 10 else "")
        super().__init__(f"{len(request_ids)} request id(s) already in the store hold a request of another type, "
                         f"regulation or subject: {shown}")


@dataclass(frozen=True)
class Imported:
    """What importing requests did: how many were new, and how many the store already held unchanged."""

    added: int
    known: int


@dataclass(frozen=True)
class Claim:
    """A request claimed for one step: the request, its stored state, and the token that holds the claim."""

    request: DsrRequest
    state: dict[str, Any] | None
    token: str
    new: bool


@dataclass(frozen=True)
class Counts:
    """Where the backlog stands."""

    new: int = 0
    pending: int = 0
    completed: int = 0
    failed: int = 0
    in_flight: int = 0

    @property
    def total(self) -> int:
        return self.new + self.pending + self.completed + self.failed

    @property
    def final(self) -> int:
        return self.completed + self.failed

    @property
    def open(self) -> int:
        return self.new + self.pending


@dataclass(frozen=True)
class Row:
    """One request as the report shows it: its JSON form and its last result's (as validated when it arrived)."""

    request: dict[str, Any]
    status: str
    result: dict[str, Any] | None
    calls: int
    retries: int
    started_at: float | None
    finished_at: float | None


def _due_key(request: DsrRequest) -> float:
    return request.due_at.timestamp() if request.due_at is not None else FAR_FUTURE


def _document(request: DsrRequest) -> str:
    return json.dumps(request.to_dict(), sort_keys=True, separators=(",", ":"))


def _who_and_what(document: dict[str, Any]) -> tuple[Any, ...]:
    """What makes a request that request: its type, regulation and subject (other fields, such as a default
    submission time, may differ between two readings of one file; the stored request is the one sent)."""
    return document["type"], document["regulation"], sorted(document["identities"].items())


class Store:
    """One backlog's SQLite file; thread-safe (one connection, one lock: every write is a short transaction)."""

    def __init__(self, connection: sqlite3.Connection, path: Path, home: Folder | None = None) -> None:
        self._db = connection
        self._lock = threading.Lock()
        self._home = home
        self.path = path

    @classmethod
    def open(cls, folder: Folder) -> Store:
        """Open (creating) the store in ``folder``'s private ``store/`` folder
        (:meth:`~dsr_framework.files.Folder.private`: 0700, nothing in it but the store's own 0600 files), so
        the ``-wal`` and ``-shm`` SQLite creates by path are as private as the database."""
        home = folder.private(STORE_FOLDER, STORE_NAMES.__contains__)
        try:
            return cls._connected(home)
        except BaseException:
            home.close()
            raise

    @classmethod
    def _connected(cls, home: Folder) -> Store:
        existed = os.path.lexists(home.path_of(STORE_FILE))
        path = home.ensure(STORE_FILE)  # SQLite gives its -wal and -shm files the database file's mode: 0600
        connection = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None, timeout=30)
        connection.execute("PRAGMA journal_mode=WAL")
        connection.execute("PRAGMA synchronous=NORMAL")  # a commit survives a crash of this process
        connection.executescript(_SCHEMA)
        store = cls(connection, path, home)
        if not existed or store.meta("format") is None:
            store.set_meta("format", FORMAT)
            store.set_meta("batch_id", secrets.token_hex(8))
        elif store.meta("format") != FORMAT:
            connection.close()
            raise ValueError(f"{path} was written by another version of this store (format {store.meta('format')})")
        return store

    def close(self) -> None:
        with self._lock:
            self._db.close()
            if self._home is not None:
                self._home.close()

    # -- metadata -------------------------------------------------------------------------------------------

    def meta(self, key: str) -> str | None:
        with self._lock:
            row = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def set_meta(self, key: str, value: str) -> None:
        with self._lock:
            self._db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (key, value))

    # -- importing ------------------------------------------------------------------------------------------

    def conflicts(self, requests: Sequence[DsrRequest]) -> list[str]:
        """Request ids in ``requests`` that the store holds for another type, regulation or subject."""
        with self._lock:
            stored = dict(self._db.execute("SELECT request_id, request FROM requests").fetchall())
        return [r.request_id for r in requests if r.request_id in stored
                and _who_and_what(json.loads(stored[r.request_id])) != _who_and_what(r.to_dict())]

    def add(self, requests: Sequence[DsrRequest]) -> Imported:
        """Store the requests it does not hold yet (in order); :class:`StoreConflict` and nothing stored if any
        request id is held for another type, regulation or subject. A request already held stays as stored."""
        conflicting = self.conflicts(requests)
        if conflicting:
            raise StoreConflict(conflicting)
        now = time.time()
        with self._lock:
            known = {row[0] for row in self._db.execute("SELECT request_id FROM requests")}
            (last,) = self._db.execute("SELECT COALESCE(MAX(seq), 0) FROM requests").fetchone()
            fresh = [r for r in requests if r.request_id not in known]
            rows = [(r.request_id, last + i, r.type, len(r.identities), _document(r), _due_key(r), now)
                    for i, r in enumerate(fresh, start=1)]
            self._db.execute("BEGIN IMMEDIATE")
            self._db.executemany(
                "INSERT INTO requests (request_id, seq, type, identifiers, request, due_key, status, added_at) "
                "VALUES (?, ?, ?, ?, ?, ?, 'new', ?)", rows)
            self._db.execute("COMMIT")
        return Imported(len(fresh), len(requests) - len(fresh))

    # -- claiming -------------------------------------------------------------------------------------------

    def claim(self, limit: int, now: float, admit: Callable[[str, int], bool] | None = None,
              new: bool = True) -> list[Claim]:
        """Claim up to ``limit`` requests whose time has come, nearest due date first.

        Requests already under way whose next check is due are always eligible; a request not started yet only
        with ``new`` and when ``admit(type, identifiers)`` allows it (a cap over a long window, such as new
        requests a day).
        """
        if limit <= 0:
            return []
        with self._lock:
            candidates = self._candidates(limit, now, new)
            chosen = [c for c in candidates if c[5] == "pending" or admit is None or admit(c[2], c[3])][:limit]
            claims = []
            self._db.execute("BEGIN IMMEDIATE")
            for request_id, _, _, _, document, status, state in chosen:
                token = secrets.token_hex(8)
                self._db.execute("UPDATE requests SET token = ?, claimed_at = ?, started_at = COALESCE(started_at, ?) "
                                 "WHERE request_id = ?", (token, now, now, request_id))
                claims.append(Claim(DsrRequest.from_dict(json.loads(document)),
                                    json.loads(state) if state else None, token, status == "new"))
            self._db.execute("COMMIT")
        return claims

    def _candidates(self, limit: int, now: float, new: bool) -> list[tuple[Any, ...]]:
        """Due rows without a claim, merged from both indexes by (due date, file order)."""
        columns = "request_id, due_key, type, identifiers, request, status, state, seq"
        due = self._db.execute(
            f"SELECT {columns} FROM requests WHERE status = 'pending' AND next_at <= ? AND token IS NULL "  # noqa: S608
            "ORDER BY due_key, seq LIMIT ?", (now, limit)).fetchall()
        fresh = self._db.execute(
            f"SELECT {columns} FROM requests WHERE status = 'new' AND token IS NULL "  # noqa: S608
            "ORDER BY due_key, seq LIMIT ?", (limit * 4 if new else 0,)).fetchall()
        merged = sorted(due + fresh, key=lambda row: (row[1], row[7]))
        return [row[:7] for row in merged]

    def release(self, request_id: str, token: str) -> bool:
        """End the claim ``token`` holds (True), or do nothing if it no longer holds it (False)."""
        with self._lock:
            done = self._db.execute("UPDATE requests SET token = NULL, claimed_at = NULL "
                                    "WHERE request_id = ? AND token = ?", (request_id, token))
        return done.rowcount == 1

    def claims(self) -> list[Claim]:
        """Every claim held (steps an earlier run left in flight), in file order."""
        with self._lock:
            rows = self._db.execute("SELECT request, state, token FROM requests WHERE token IS NOT NULL "
                                    "ORDER BY seq").fetchall()
        return [Claim(DsrRequest.from_dict(json.loads(r)), json.loads(s) if s else None, t, False) for r, s, t in rows]

    def renew_claim(self, request_id: str, token: str) -> Claim | None:
        """Replace the claim ``token`` by a new one (a step given up as lost); None if it no longer holds it."""
        fresh = secrets.token_hex(8)
        with self._lock:
            done = self._db.execute("UPDATE requests SET token = ?, claimed_at = ? WHERE request_id = ? AND token = ?",
                                    (fresh, time.time(), request_id, token))
            row = self._db.execute("SELECT request, state FROM requests WHERE request_id = ?", (request_id,)).fetchone()
        if done.rowcount != 1:
            return None
        return Claim(DsrRequest.from_dict(json.loads(row[0])), json.loads(row[1]) if row[1] else None, fresh, False)

    # -- recording ------------------------------------------------------------------------------------------

    def record(self, request_id: str, token: str, result: Result, status: str, next_at: float | None,
               retried: bool, at: float) -> bool:
        """Save one call's result under the claim ``token``: False (and nothing saved) without the claim.

        ``status`` and ``next_at`` are where the request now stands (a failure to be retried is ``pending``);
        the state is the result's when pending, kept when a failure is retried, dropped once final.
        """
        document = result.to_dict()
        state = document.pop("state", None)
        final = status in FINAL
        with self._lock:
            done = self._db.execute(
                "UPDATE requests SET status = ?, next_at = ?, retries = retries + ?, calls = calls + 1, "
                "last_call_at = ?, result = ?, finished_at = ?, "
                "state = CASE WHEN ? THEN NULL ELSE COALESCE(?, state) END "
                "WHERE request_id = ? AND token = ?",
                (status, next_at, int(retried), at, json.dumps(document, separators=(",", ":")),
                 at if final else None, int(final), json.dumps(state) if state is not None else None,
                 request_id, token))
        return done.rowcount == 1

    # -- reading --------------------------------------------------------------------------------------------

    def holds(self, request_id: str) -> bool:
        with self._lock:
            return self._db.execute("SELECT 1 FROM requests WHERE request_id = ?", (request_id,)).fetchone() is not None

    def retries(self, request_id: str) -> int:
        """How many times the request's failures were retried."""
        with self._lock:
            row = self._db.execute("SELECT retries FROM requests WHERE request_id = ?", (request_id,)).fetchone()
        return int(row[0]) if row else 0

    def counts(self) -> Counts:
        with self._lock:
            by_status = dict(self._db.execute("SELECT status, COUNT(*) FROM requests GROUP BY status").fetchall())
            (flying,) = self._db.execute("SELECT COUNT(*) FROM requests WHERE token IS NOT NULL").fetchone()
        return Counts(by_status.get("new", 0), by_status.get("pending", 0), by_status.get("completed", 0),
                      by_status.get("failed", 0), flying)

    def open_by_type(self) -> Counter[tuple[str, int, bool]]:
        """How many requests are not final yet, by (type, identifiers, started)."""
        with self._lock:
            rows = self._db.execute("SELECT type, identifiers, status, COUNT(*) FROM requests "
                                    "WHERE status IN ('new', 'pending') GROUP BY type, identifiers, status").fetchall()
        return Counter({(t, n, s == "pending"): c for t, n, s, c in rows})

    def has_new(self) -> bool:
        """True while some request not started yet is unclaimed."""
        with self._lock:
            row = self._db.execute("SELECT 1 FROM requests WHERE status = 'new' AND token IS NULL LIMIT 1").fetchone()
        return row is not None

    def next_check(self) -> float | None:
        """When the soonest unclaimed pending request is due (None when none is pending)."""
        with self._lock:
            (soonest,) = self._db.execute("SELECT MIN(next_at) FROM requests WHERE status = 'pending' "
                                          "AND token IS NULL").fetchone()
        return None if soonest is None else float(soonest)

    def next_wake(self) -> float | None:
        """When the next unclaimed request is due (0 for one not started; None when none is open)."""
        return 0.0 if self.has_new() else self.next_check()

    def latest_check(self) -> float | None:
        """The furthest next check among pending requests (None when none is pending)."""
        with self._lock:
            (latest,) = self._db.execute("SELECT MAX(next_at) FROM requests WHERE status = 'pending'").fetchone()
        return None if latest is None else float(latest)

    def first_start_since(self, moment: float) -> float | None:
        """When the earliest request started at or after ``moment`` started."""
        with self._lock:
            (first,) = self._db.execute("SELECT MIN(started_at) FROM requests WHERE started_at >= ?",
                                        (moment,)).fetchone()
        return None if first is None else float(first)

    def started_since(self, moment: float) -> Counter[tuple[str, int]]:
        """How many requests were started at or after ``moment``, by (type, identifiers)."""
        with self._lock:
            rows = self._db.execute("SELECT type, identifiers, COUNT(*) FROM requests WHERE started_at >= ? "
                                    "GROUP BY type, identifiers", (moment,)).fetchall()
        return Counter({(t, n): c for t, n, c in rows})

    def rows(self) -> Iterator[Row]:
        """Every request in file order, as the report shows it."""
        with self._lock:
            fetched = self._db.execute("SELECT request, status, result, calls, retries, started_at, finished_at "
                                       "FROM requests ORDER BY seq").fetchall()
        for document, status, result, calls, retries, started, finished in fetched:
            yield Row(json.loads(document), status, json.loads(result) if result else None, calls, retries,
                      started, finished)
