"""Everything a connector says while it runs, captured so it can be searched for secrets and personal data.

:func:`captured` takes over ``sys.stdout``/``sys.stderr`` and file descriptors 1 and 2 (so ``print``,
``os.write`` and C code are all seen). It records every log record as it reaches its logger's handlers
(``logging.Logger.callHandlers``, wrapped while the block runs), whatever those handlers are: a logger that does
not propagate to the root, or a handler bound to a stream or file the capture does not own, is seen too, with
the record's ``extra`` fields. The streams that were ``sys.stdout``/``sys.stderr`` when the block began (a
connector may have kept a reference at import time, such as pytest's capture) have their ``write`` recorded
too, where Python lets an instance's method be replaced. What was captured is not passed on: it never reaches
pytest's captured-output sections, where a failing check would print it.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import sys
import tempfile
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field

from dsr_framework.conformance.personal import PersonalData
from dsr_framework.redact import Redactor

__all__ = ["Captured", "captured", "email_values", "leaked", "output_problems", "record_text",
           "unmasked_emails"]


@dataclass
class Captured:
    """What was written and logged while :func:`captured` ran (filled in when the block ends)."""

    stdout: str = ""
    stderr: str = ""
    records: list[str] = field(default_factory=list)

    def streams(self) -> dict[str, str]:
        """Each place output went, by the name a message should use."""
        return {"log records": "\n".join(self.records), "stdout": self.stdout, "stderr": self.stderr}


_STANDARD = {*vars(logging.LogRecord("", 0, "", 0, "", (), None)), "message", "asctime"}


def record_text(record: logging.LogRecord) -> str:
    """A record as a handler might write it: the message, the traceback, the stack, and every ``extra`` field."""
    try:
        text = record.getMessage()
    except Exception:  # noqa: BLE001 - an unformattable record is kept as its template
        text = str(record.msg)
    if record.exc_info and not record.exc_text:
        text += "\n" + logging.Formatter().formatException(record.exc_info)
    elif record.exc_text:
        text += "\n" + record.exc_text
    if record.stack_info:
        text += "\n" + record.stack_info
    extra = {key: value for key, value in vars(record).items() if key not in _STANDARD}
    if extra:
        text += " " + " ".join(f"{key}={value}" for key, value in extra.items())
    return f"{record.name}: {text}"


@contextlib.contextmanager
def _records(into: list[str], only: Callable[[], bool] | None) -> Iterator[None]:
    """Record every log record that reaches a logger's handlers (from threads where ``only()``, if given)."""
    original = logging.Logger.callHandlers

    def call_handlers(logger: logging.Logger, record: logging.LogRecord) -> None:
        if only is None or only():
            into.append(record_text(record))
        original(logger, record)

    logging.Logger.callHandlers = call_handlers  # type: ignore[method-assign,assignment]
    try:
        yield
    finally:
        logging.Logger.callHandlers = original  # type: ignore[method-assign]


@contextlib.contextmanager
def _kept_streams(streams: tuple[object, ...], into: io.StringIO) -> Iterator[None]:
    """Record writes to stream objects a connector may hold on to, where their ``write`` can be replaced."""
    replaced = []
    for stream in dict.fromkeys(s for s in streams if s not in (sys.__stdout__, sys.__stderr__, None)):
        try:
            stream.write = into.write  # type: ignore[attr-defined]
        except (AttributeError, TypeError):
            continue  # a C stream (no instance dict): what it writes reaches a file descriptor, captured anyway
        replaced.append(stream)
    try:
        yield
    finally:
        for stream in replaced:
            with contextlib.suppress(AttributeError):
                del stream.write  # type: ignore[attr-defined]


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
def captured(only: Callable[[], bool] | None = None) -> Iterator[Captured]:
    """Capture stdout, stderr (Python and file-descriptor level) and every log record while the block runs.

    ``only``, if given, says whether a log record comes from a thread worth recording (the connector's).
    """
    result = Captured()
    root = logging.getLogger()
    level = root.level
    out, err, kept = io.StringIO(), io.StringIO(), io.StringIO()
    with _fd(1) as fd_out, _fd(2) as fd_err, _records(result.records, only):
        saved_streams = sys.stdout, sys.stderr
        sys.stdout, sys.stderr = out, err
        root.setLevel(logging.DEBUG)  # every record is made, so every record can be searched
        try:
            with _kept_streams(saved_streams, kept):
                yield result
        finally:
            root.setLevel(level)
            sys.stdout, sys.stderr = saved_streams
    result.stdout = out.getvalue() + "".join(fd_out)
    result.stderr = err.getvalue() + "".join(fd_err) + kept.getvalue()


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


def output_problems(streams: Mapping[str, str], redactor: Redactor, people: PersonalData) -> list[str]:
    """What a connector's output gives away, per place (``log records``, ``stderr``, ``stdout`` …), for a message
    that shows none of it: a configured secret in any form, or a person's personal data."""
    found = []
    for where, text in streams.items():
        if leaked(text, redactor):
            found.append("a configured secret (or 8 or more characters of one, or an encoded form) appeared in "
                         f"{where}")
        what = people.found_in(text)
        if what is not None:
            mask = " (mask emails: dsr_framework.redact.mask_email)" if what.endswith("email address") else ""
            found.append(f"{what} of a person the request involves appeared in {where}{mask}")
    return found
