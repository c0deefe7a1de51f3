"""The ``--state`` file: the request and its last result, signed, written atomically, locked while in use.

It goes through :mod:`connector_mparticle.files` like every file the connector writes: its folder must be the
user's alone (a missing one is created 0700), the file is 0600 and replaced by a rename, and it is never read
through a link: a symbolic link, a FIFO, a device, a folder or a hard-linked file given as ``--state`` is
refused with the reason.

**Integrity.** A resumed command sends what the file says, so an edited file must never be obeyed. Every state
file carries an HMAC-SHA256 of its whole content, keyed from the configured DSR credentials (a key of its own,
apart from the one request states are signed with). A file that does not verify is refused before anything is
sent, naming what was changed (its request id, request type, regulation, the subject's identifiers, the
output folder, or the last result: each of the first five also has a signature of its own so the message can
say which). A file written with other DSR credentials (rotated ones, or another workspace's config) is
refused saying so; such a request resumes by giving its options again without ``--state`` (or with a new
file): its mParticle requests are found again by their derived ids, so nothing is submitted twice.

**Lock.** An advisory ``flock`` on ``.NAME.lock`` beside the state file (:class:`~connector_mparticle.files.
FolderLock`: only the user can create or open it, removed on release), which also records who holds it
(process id, command with emails masked, since when) so a second command can say so. The kernel releases the
lock when the holder exits, even on SIGKILL, so a crash never leaves it stuck.
"""

from __future__ import annotations

import contextlib
import hmac
import json
import os
import sys
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from connector_mparticle.cli.exits import CliError, StateBusy
from connector_mparticle.errors import MParticleError
from connector_mparticle.files import Folder, FolderLock, folder_path
from connector_mparticle.flows.state import signature, state_key
from connector_mparticle.http.answers import Malformed, json_body
from dsr_framework import DsrRequest, Result
from dsr_framework.redact import mask_email
from dsr_framework.validation import SchemaViolation

__all__ = ["PROTECTED", "Saved", "StateFile", "state_file_key"]

#: A state file holds one request and its last result, which is at most 512 KB of JSON (twice the summary's
#: bound, ``api.summary.SUMMARY_BOUND``; the connector's own state, receipts included, is a few KB a part),
#: written indented: 4 MB leaves room for all of it; far larger is not a state file.
MAX_BYTES = 4 * 1024 * 1024
#: The request's fields signed one by one, and how a message names each.
PROTECTED = {"request_id": "its request id", "type": "its request type", "regulation": "its regulation",
             "identities": "its subject (the identifiers)", "output_dir": "its output folder"}
RESUME_HINT = ("to carry on with the request, run the command again without --state (or with a new --state "
               "file), giving --request-id, --submitted and the subject's identifiers as when it started: "
               "mParticle's record of it is found again, nothing is submitted twice")


def state_file_key(dsr_secrets: tuple[str, ...]) -> bytes:
    """The key state files are signed with, from the configured DSR credentials."""
    return state_key(dsr_secrets, "command-line state file")


@dataclass(frozen=True)
class Saved:
    """What a state file holds: the request, and the last result (None before the first call returned)."""

    request: DsrRequest
    result: Result | None


def _key_id(key: bytes) -> str:
    """Which key signed a file (so a rotated credential is told apart from an edit); reveals nothing of it."""
    return signature(key, "key id")[:16]


def _whole(document: Mapping[str, Any]) -> dict[str, Any]:
    """What the file's MAC covers: everything in it but the MAC itself (the field signatures included)."""
    integrity = document.get("integrity")
    return {**document, "integrity": {k: v for k, v in integrity.items() if k != "mac"}
            if isinstance(integrity, dict) else integrity}


def _integrity(document: Mapping[str, Any], key: bytes) -> dict[str, Any]:
    request = document["request"]
    integrity: dict[str, Any] = {"key": _key_id(key),
                                 "fields": {name: signature(key, [name, request.get(name)]) for name in PROTECTED}}
    return {**integrity, "mac": signature(key, _whole({**document, "integrity": integrity}))}


def _same(mac: Any, expected: str) -> bool:
    # compared as bytes: compare_digest refuses (TypeError) a str with any non-ASCII character
    return isinstance(mac, str) and hmac.compare_digest(mac.encode("utf-8", "surrogatepass"), expected.encode())


def _distrust(data: Mapping[str, Any], key: bytes) -> str | None:
    """Why the state file ``data`` cannot be trusted, or None when its signature verifies."""
    integrity = data.get("integrity")
    if not isinstance(integrity, dict) or "mac" not in integrity:
        return "it carries no signature (it was written by hand, or by an older mparticle-dsr)"
    if integrity.get("key") != _key_id(key):
        return ("it was signed with other DSR credentials (were they rotated, or is this another workspace's "
                "config?)")
    if _same(integrity["mac"], signature(key, _whole(data))):
        return None
    fields = integrity.get("fields")
    fields = fields if isinstance(fields, dict) else {}
    request = data["request"]
    changed = [label for name, label in PROTECTED.items()
               if not _same(fields.get(name), signature(key, [name, request.get(name)]))]
    return f"it was changed after mparticle-dsr wrote it: {', '.join(changed) or 'its last result'}"


def _holder(lock: FolderLock) -> str:
    try:
        info = json.loads(lock.holder() or "")
        return f"process {info['pid']} ({info['command']}, since {info['since']})"
    except (ValueError, KeyError, TypeError):
        return "another process"


class StateFile:
    """One state file, held under an exclusive lock for as long as the ``with`` block of :meth:`locked` runs."""

    def __init__(self, folder: Folder, path: Path, key: bytes) -> None:
        self.folder = folder
        self.path = path  #: as the user gave it (for messages)
        self.name = folder_path(path).name
        self._key = key

    @classmethod
    @contextlib.contextmanager
    def locked(cls, path: Path, key: bytes, wait_seconds: float | None,
               notify: Callable[[str], None]) -> Iterator[StateFile]:
        """Lock ``path`` (creating its folder); wait up to ``wait_seconds`` (None: for as long as it takes)."""
        try:
            folder = Folder.open(folder_path(path).parent)
            lock = folder.lock(folder_path(path).name)
        except (MParticleError, ValueError) as exc:
            raise CliError(f"cannot use --state {path}: {getattr(exc, 'message', exc)}", kind="state_file") from None
        with folder, lock:
            state = cls(folder, path, key)
            state._acquire(lock, wait_seconds, notify)
            with contextlib.suppress(MParticleError):
                folder.sweep([state.name])  # what a command killed mid-write left
            yield state

    def _acquire(self, lock: FolderLock, wait_seconds: float | None, notify: Callable[[str], None]) -> None:
        told: list[bool] = []

        def busy() -> None:
            if not told:
                bound = "" if wait_seconds is None else f" (up to {wait_seconds:.0f} s)"
                notify(f"{self.path} is in use by {_holder(lock)}; waiting for it to finish{bound}, Ctrl-C to stop")
                told.append(True)

        try:
            taken = lock.acquire(wait_seconds, busy)
        except MParticleError as exc:
            raise CliError(f"cannot use --state {self.path}: {exc.message}", kind="state_file") from None
        if not taken:
            raise StateBusy(f"{self.path} is in use by {_holder(lock)}; nothing was done. Run this again when "
                            "that command has finished, or add --wait to wait for it.")
        command = mask_email(" ".join(["mparticle-dsr", *sys.argv[1:]]))
        lock.note(json.dumps({"pid": os.getpid(), "command": command,
                              "since": datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")}))

    def read(self) -> Saved | None:
        """The saved request and result, or None if there is no state file yet; :class:`CliError` if it cannot
        be read or trusted (nothing is sent then)."""
        try:
            raw = self.folder.read(self.name, MAX_BYTES)
        except MParticleError as exc:
            raise CliError(f"cannot use --state {self.path}: {exc.message}", kind="state_file") from None
        if raw is None:
            return None
        try:  # the decoding layer: depth and containers judged in one linear pass before anything is built
            data: Any = json_body(raw, max_bytes=MAX_BYTES)
            why = _distrust(data, self._key) if isinstance(data, dict) and isinstance(data.get("request"), dict) \
                else "it is not a state file written by mparticle-dsr"
        except (Malformed, ValueError, RecursionError) as exc:
            why = str(exc) if isinstance(exc, Malformed) else type(exc).__name__  # Malformed's text is ours
            raise CliError(f"the state file {self.path} is unreadable ({why})", kind="state_file") from None
        if why is not None:
            raise CliError(f"the state file {self.path} cannot be trusted: {why}. Nothing was sent.",
                           [RESUME_HINT], kind="state_file_untrusted")
        return self._parsed(data)

    def _parsed(self, data: dict[str, Any]) -> Saved:
        try:
            request = DsrRequest.from_dict(data["request"])
            result = Result.from_dict(data["result"]) if data.get("result") else None
        except (SchemaViolation, ValueError, KeyError, TypeError) as exc:
            raise CliError(f"the state file {self.path} is damaged ({type(exc).__name__})", kind="state_file") \
                from None
        return Saved(request, result)

    def write(self, request: DsrRequest, result: Result | None) -> None:
        """Replace the file atomically and signed, so a crash mid-write leaves the previous state, never a torn
        one, and no edit goes unnoticed."""
        document: dict[str, Any] = {"connector": "mparticle", "request": request.to_dict(),
                                    "result": result.to_dict() if result is not None else None}
        document = json.loads(json.dumps(document))  # exactly what is read back
        document["integrity"] = _integrity(document, self._key)
        try:
            self.folder.write(self.name, (json.dumps(document, indent=2) + "\n").encode())
        except MParticleError as exc:
            raise CliError(f"cannot write the state file {self.path}: {exc.message}", kind="state_file") from None
