"""Everything a connector says while it runs, captured so it can be searched for secrets and personal data.

:func:`captured` takes over ``sys.stdout``/``sys.stderr`` and file descriptors 1 and 2 (so ``print``,
``os.write`` and C code are all seen) and adds a DEBUG handler first in line on the root logger, so it sees
each record before any other handler. What was captured is not passed on: it never reaches pytest's
captured-output sections, where a failing check would print it.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import sys
import tempfile
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field

from dsr_framework.redact import Redactor

__all__ = ["Captured", "captured", "email_values", "leaked", "unmasked_emails"]


@dataclass
class Captured:
    """What was written and logged while :func:`captured` ran (filled in when the block ends)."""

    stdout: str = ""
    stderr: str = ""
    records: list[str] = field(default_factory=list)

    def streams(self) -> dict[str, str]:
        """Each place output went, by the name a message should use."""
        return {"log records": "\n".join(self.records), "stdout": self.stdout, "stderr": self.stderr}


class _Recorder(logging.Handler):
    def __init__(self, into: list[str]) -> None:
        super().__init__(logging.DEBUG)
        self.into = into

    def emit(self, record: logging.LogRecord) -> None:
        try:
            text = record.getMessage()
        except Exception:  # noqa: BLE001 - an unformattable record is kept as its template
            text = str(record.msg)
        if record.exc_info and not record.exc_text:
            text += "\n" + logging.Formatter().formatException(record.exc_info)
        elif record.exc_text:
            text += "\n" + record.exc_text
        self.into.append(f"{record.name}: {text}")


def _flush() -> None:
    for stream in (sys.stdout, sys.stderr, sys.__stdout__, sys.__stderr__):
        with contextlib.suppress(OSError, ValueError, AttributeError):
            stream.flush()  # type: ignore[union-attr]


@contextlib.contextmanager
def _fd(fd: int) -> Iterator[list[str]]:
    out: list[str] = []
    with tempfile.TemporaryFile() as sink:
        _flush()  # what was written before belongs where it was going
        saved = os.dup(fd)
        os.dup2(sink.fileno(), fd)
        try:
            yield out
        finally:
            _flush()  # what was written inside, still buffered, belongs to the capture
            os.dup2(saved, fd)
            os.close(saved)
            sink.seek(0)
            out.append(sink.read().decode("utf-8", "replace"))


@contextlib.contextmanager
def captured() -> Iterator[Captured]:
    """Capture stdout, stderr (Python and file-descriptor level) and every log record while the block runs."""
    result = Captured()
    root = logging.getLogger()
    recorder = _Recorder(result.records)
    level = root.level
    out, err = io.StringIO(), io.StringIO()
    with _fd(1) as fd_out, _fd(2) as fd_err:
        saved_streams = sys.stdout, sys.stderr
        sys.stdout, sys.stderr = out, err
        root.handlers.insert(0, recorder)  # first in line: sees each record before a filter can redact it
        root.setLevel(logging.DEBUG)
        try:
            yield result
        finally:
            root.setLevel(level)
            with contextlib.suppress(ValueError):
                root.handlers.remove(recorder)
            sys.stdout, sys.stderr = saved_streams
    result.stdout = out.getvalue() + "".join(fd_out)
    result.stderr = err.getvalue() + "".join(fd_err)


def email_values(*subjects: Mapping[str, str]) -> set[str]:
    """The identity values that are email addresses, in the subjects the harness sends."""
    return {value for subject in subjects for value in subject.values() if "@" in value}


def unmasked_emails(text: str, emails: Iterable[str]) -> bool:
    """True when ``text`` holds one of ``emails`` as written (any case)."""
    folded = text.lower()
    return any(email.lower() in folded for email in emails)


def leaked(text: str, redactor: Redactor) -> bool:
    """True when ``text`` holds a configured secret in any form, or a run of 8 or more characters of one."""
    return redactor.leaks(text)
