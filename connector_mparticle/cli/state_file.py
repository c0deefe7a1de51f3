"""The ``--state`` file: the request and its last result, written atomically, locked while a command uses it.

The lock is an advisory ``flock`` on a hidden file beside the state file (``.NAME.lock``), which also
records who holds it (process id, command with emails masked, since when) so a second command can say so.
The kernel releases the lock when the holder exits, even on SIGKILL, so a crash never leaves it stuck.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from connector_mparticle.cli.exits import CliError, StateBusy
from dsr_framework import DsrRequest, Result
from dsr_framework.redact import mask_email
from dsr_framework.validation import SchemaViolation

__all__ = ["Saved", "StateFile"]

POLL_SECONDS = 0.2


@dataclass(frozen=True)
class Saved:
    """What a state file holds: the request, and the last result (None before the first call returned)."""

    request: DsrRequest
    result: Result | None


def _holder(lock_path: Path) -> str:
    try:
        info = json.loads(lock_path.read_text(encoding="utf-8"))
        return f"process {info['pid']} ({info['command']}, since {info['since']})"
    except (OSError, ValueError, KeyError, TypeError):
        return "another process"


class StateFile:
    """One state file, held under an exclusive lock for as long as the ``with`` block runs."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.lock_path = path.with_name(f".{path.name}.lock")

    @classmethod
    @contextlib.contextmanager
    def locked(cls, path: Path, wait_seconds: float | None, notify: Callable[[str], None]) -> Iterator[StateFile]:
        """Lock ``path`` (creating its directory); wait up to ``wait_seconds`` (None: for as long as it takes)."""
        state = cls(path)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(state.lock_path, os.O_RDWR | os.O_CREAT, 0o600)
        except OSError as exc:
            raise CliError(f"cannot use --state {path}: {exc.strerror or exc}", kind="state_file") from None
        try:
            state._acquire(fd, wait_seconds, notify)
            yield state
        finally:
            os.close(fd)  # closing releases the lock

    def _acquire(self, fd: int, wait_seconds: float | None, notify: Callable[[str], None]) -> None:
        deadline = None if wait_seconds is None else time.monotonic() + wait_seconds
        told = False
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                holder = _holder(self.lock_path)
                if deadline is not None and time.monotonic() >= deadline:
                    raise StateBusy(f"{self.path} is in use by {holder}; nothing was done. Run this again when "
                                    "that command has finished, or add --wait to wait for it.") from None
                if not told:
                    bound = "" if wait_seconds is None else f" (up to {wait_seconds:.0f} s)"
                    notify(f"{self.path} is in use by {holder}; waiting for it to finish{bound}, Ctrl-C to stop")
                    told = True
                time.sleep(POLL_SECONDS)
        command = mask_email(" ".join(["mparticle-dsr", *sys.argv[1:]]))
        record = json.dumps({"pid": os.getpid(), "command": command,
                             "since": datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")})
        os.ftruncate(fd, 0)
        os.pwrite(fd, record.encode(), 0)

    def read(self) -> Saved | None:
        """The saved request and result, or None if there is no state file yet."""
        if not self.path.exists():
            return None
        try:
            data: Any = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise CliError(f"the state file {self.path} is unreadable ({type(exc).__name__})",
                           kind="state_file") from None
        if not isinstance(data, dict) or not isinstance(data.get("request"), dict):
            raise CliError(f"{self.path} is not a state file written by mparticle-dsr", kind="state_file")
        try:
            request = DsrRequest.from_dict(data["request"])
            result = Result.from_dict(data["result"]) if data.get("result") else None
        except (SchemaViolation, ValueError, KeyError, TypeError) as exc:
            raise CliError(f"the state file {self.path} is damaged ({type(exc).__name__})", kind="state_file") \
                from None
        return Saved(request, result)

    def write(self, request: DsrRequest, result: Result | None) -> None:
        """Replace the file atomically, so a crash mid-write leaves the previous state, never a torn one."""
        document = {"connector": "mparticle", "request": request.to_dict(),
                    "result": result.to_dict() if result is not None else None}
        try:
            with tempfile.NamedTemporaryFile("w", encoding="utf-8", dir=self.path.parent,
                                             prefix=f".{self.path.name}.", suffix=".tmp", delete=False) as partial:
                partial.write(json.dumps(document, indent=2) + "\n")
            os.replace(partial.name, self.path)
        except OSError as exc:
            with contextlib.suppress(OSError, NameError):
                os.unlink(partial.name)
            raise CliError(f"cannot write the state file {self.path}: {exc.strerror or exc}",
                           kind="state_file") from None
