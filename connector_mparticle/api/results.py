"""Read an access-results zip into a summary people can read, without extracting anything, in constant memory.

mParticle's results zip (data-subject-requests guide, "Access / Portability Response Format"; sample at
``static/downloads/portability-response-sample.zip`` in mParticle/docs) holds ``profile.jsonl`` (the live
profile: ``id``, timestamps, ``user_identities`` and ``device_identities`` as ``{type, encoding, value}``,
attributes, audience memberships), further ``.jsonl`` files of event batches in the Events API format, or
``empty.txt`` (profiles found, no data). The published sample also carries macOS metadata
(``__MACOSX/._*``), which is skipped.

Entries are streamed in chunks and split into lines without ever holding more than one line (at most
:data:`MAX_LINE_BYTES`); names are never used as paths; declared sizes and compression ratios are checked
before anything is decompressed (zip bombs), and the central directory's records are counted before
:mod:`zipfile` builds an object for each (:mod:`~connector_mparticle.api.zip_directory`). Each line is read
through the decoding layer (:func:`~connector_mparticle.http.answers.json_body`: UTF-8, nesting, containers,
numbers, duplicate keys) and what it holds goes into a bounded summary (:mod:`connector_mparticle.api.summary`),
so neither the summary nor the memory it takes grows with the archive. The call's deadline is checked between
chunks and every :data:`EVENTS_PER_CHECK` events inside a line, not only between lines. Every problem (not a
zip, bad CRC, corrupt data, encryption, an unknown compression method, a line too long or not JSON, a field
of the wrong type, one of the connector's own credentials inside) raises :class:`ArchiveProblem`, which the
caller reports as ``rejected`` after deleting the file. The summary as people read it is
:func:`~connector_mparticle.api.summary_text.summary_text` (re-exported here).
"""

from __future__ import annotations

import codecs
import contextlib
import lzma
import zipfile
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from connector_mparticle.api.summary import NO_DATA, Summary, clip, profile_entry
from connector_mparticle.api.summary_text import summary_text
from connector_mparticle.api.zip_directory import TooLarge, directory_records
from connector_mparticle.errors import UnsafeResponseError
from connector_mparticle.http.answers import Malformed, decode, field_int, json_body

__all__ = ["MAX_LINE_BYTES", "NO_DATA", "ArchiveProblem", "Line", "lines", "merge", "summarise", "summary_text"]


MAX_ENTRIES = 10_000
MAX_RECORDS = 3 * MAX_ENTRIES  #: central directory records: an entry, its macOS metadata twin and a folder, each
EVENTS_PER_CHECK = 4096  #: events read between two deadline checks inside one line
MAX_RATIO = 200  #: uncompressed / compressed, per entry larger than a megabyte
MAX_LINE_BYTES = 4 * 1024 * 1024  #: an event batch is at most 128 KB (Events API limit); a profile far less
MAX_LINE_DEPTH = 32  #: a profile line nests 4 levels, an event batch about 6
CHUNK_BYTES = 256 * 1024
_READ_ERRORS = (zipfile.BadZipFile, zlib.error, lzma.LZMAError, EOFError, OSError, RuntimeError,
                NotImplementedError, ValueError)


class ArchiveProblem(UnsafeResponseError):
    """The results file cannot be read as mParticle's results archive; the message says why."""

    def __init__(self, message: str) -> None:
        super().__init__(f"the results archive is unusable: {message}", api="dsr")


def _lines(stream: IO[bytes], name: str, check: Callable[[], None]) -> Iterator[tuple[int, bytes]]:
    """(line number, line) for each non-empty line of ``stream``, read in chunks; no line longer than the cap."""
    pending = b""
    number = 0
    while True:
        chunk = stream.read(CHUNK_BYTES)
        check()
        if not chunk:
            break
        pending += chunk
        *complete, pending = pending.split(b"\n")
        for line in complete:
            number += 1
            if line.strip():
                yield number, line
        if len(pending) > MAX_LINE_BYTES:
            raise ArchiveProblem(f"line {number + 1} of {name} is longer than {MAX_LINE_BYTES // (1024 * 1024)} MB")
    if pending.strip():
        yield number + 1, pending


def _json(text: str, where: str) -> Any:
    try:
        return json_body(text, max_bytes=4 * MAX_LINE_BYTES, max_depth=MAX_LINE_DEPTH,  # bytes: checked per line
                         repair_text=True)
    except Malformed as exc:
        raise ArchiveProblem(f"{where} is not JSON mParticle writes ({exc})") from None


def _expect(value: Any, kinds: type | tuple[type, ...], where: str, optional: bool = True) -> Any:
    """``value`` if it has one of ``kinds`` (or is None and ``optional``); :class:`ArchiveProblem` otherwise."""
    if value is None and optional:
        return None
    allowed = kinds if isinstance(kinds, tuple) else (kinds,)
    if not isinstance(value, allowed) or (isinstance(value, bool) and bool not in allowed):
        raise ArchiveProblem(f"{where} has the wrong type")
    return value


def _identities(entries: Any, where: str) -> list[tuple[str, str]]:
    out = []
    for i, entry in enumerate(_expect(entries, list, where) or []):
        entry = _expect(entry, dict, f"{where}[{i}]", optional=False)
        kind = _expect(entry.get("type"), str, f"{where}[{i}].type")
        value = _expect(entry.get("value"), (str, int), f"{where}[{i}].value")
        if kind is not None and value is not None:
            out.append((kind, str(value)))
    return out


class _Reader:
    """Reads lines of an archive's files into a :class:`~connector_mparticle.api.summary.Summary`."""

    def __init__(self, summary: Summary, check: Callable[[], None] = lambda: None) -> None:
        self.summary = summary
        self.check = check

    def profile(self, data: Any, where: str) -> None:
        """One line of ``profile.jsonl``."""
        data = _expect(data, dict, where, optional=False)
        mpid = _expect(data.get("id"), (int, str), f"{where}: id")
        for field in ("created_timestamp_ms", "last_stored_timestamp_ms"):
            _expect(data.get(field), int, f"{where}: {field}")
        _expect(data.get("is_opted_out"), bool, f"{where}: is_opted_out")
        identities = _identities(data.get("user_identities"), f"{where}: user_identities")
        devices = _identities(data.get("device_identities"), f"{where}: device_identities")
        for kind, value in identities + devices:
            self.summary.add_identity(kind, value)
        attributes = _expect(data.get("user_attributes"), dict, f"{where}: user_attributes") or {}
        account = _expect(data.get("account_userattributes"), dict, f"{where}: account_userattributes") or {}
        _expect(data.get("audience_memberships"), list, f"{where}: audience_memberships")
        _expect(data.get("consent_state"), dict, f"{where}: consent_state")
        key = str(mpid) if mpid is not None else None
        self.summary.add_profile(key, lambda: profile_entry(key, data, identities, devices, {**account, **attributes}))

    def batch(self, data: Any, where: str) -> None:
        """One line of an event-batch ``.jsonl`` file (the Events API format)."""
        data = _expect(data, dict, where, optional=False)
        self.summary.batches += 1
        for kind, value in (_expect(data.get("user_identities"), dict, f"{where}: user_identities") or {}).items():
            if _expect(value, (str, int), f"{where}: user_identities.{kind}") is not None:
                self.summary.add_identity(str(kind), str(value))
        for i, event in enumerate(_expect(data.get("events"), list, f"{where}: events") or []):
            if i % EVENTS_PER_CHECK == EVENTS_PER_CHECK - 1:
                self.check()  # a line may hold many events: the deadline is not left until the line's end
            self.event(event, f"{where}: events[{i}]")

    def event(self, event: Any, where: str) -> None:
        event = _expect(event, dict, where, optional=False)
        self.summary.events += 1
        self.summary.add_event_type(_expect(event.get("event_type"), str, f"{where}.event_type") or "unknown")
        payload = _expect(event.get("data"), dict, f"{where}.data") or {}
        self.summary.add_time(_timestamp(payload.get("timestamp_unixtime_ms")))


def _timestamp(stamp: Any) -> int | None:
    """An event's ``timestamp_unixtime_ms`` (the published sample writes it as a string), if plausible: a
    positive 64-bit integer, or its ASCII digits ("²" and "٣" are not digits here)."""
    try:
        return field_int(stamp, "a timestamp", 1, 2**63 - 1, text=True)
    except Malformed:
        return None


def _metadata(name: str) -> bool:
    """macOS archive metadata (``__MACOSX/``, ``._name``), as in mParticle's published sample."""
    return name.startswith("__MACOSX/") or name.rsplit("/", 1)[-1].startswith("._")


def _entries(archive: zipfile.ZipFile, max_uncompressed: int) -> list[zipfile.ZipInfo]:
    """The entries to read, once the number, declared sizes and compression ratios of all entries (every one is
    decompressed to be checked for credentials) are acceptable."""
    every = archive.infolist()
    if len(every) > MAX_ENTRIES:
        raise ArchiveProblem(f"it has more than {MAX_ENTRIES} entries")
    if sum(i.file_size for i in every) > max_uncompressed or any(
            i.file_size > 1_000_000 and i.file_size > MAX_RATIO * max(1, i.compress_size) for i in every):
        raise ArchiveProblem("it would expand too far (a zip bomb?)")
    return [i for i in every if not i.is_dir() and not _metadata(i.filename)]


def summarise(path: Path | IO[bytes], max_uncompressed: int, check: Callable[[], None] = lambda: None,
              holds_secret: Callable[[str], bool] = lambda _: False) -> dict[str, Any]:
    """What a results zip holds: profiles, identities, attributes, consent, event counts and dates.

    ``check`` is called between chunks and within long lines (the hook call's deadline). ``holds_secret`` is
    asked about everything the archive carries, since the file is handed on as it came: its raw bytes, every
    member's content (read or not), name, comment and extra field, and the archive's comment. An archive that
    carries part of one of the connector's own credentials is not mParticle's data.
    """
    with _opened(path) as stream, _zip(stream, check) as archive:
        return _summary(archive, stream, max_uncompressed, check, holds_secret)


@contextmanager
def _zip(stream: IO[bytes], check: Callable[[], None]) -> Iterator[zipfile.ZipFile]:
    """``stream`` opened as a zip, once its central directory was counted without building anything (a
    directory of a million records is refused before :mod:`zipfile` reads it)."""
    try:
        if directory_records(stream, MAX_RECORDS, check) > MAX_RECORDS:
            raise ArchiveProblem(f"it has more than {MAX_ENTRIES} entries")
        archive = zipfile.ZipFile(stream)
    except TooLarge as exc:
        raise ArchiveProblem(str(exc)) from None
    except _READ_ERRORS as exc:
        raise ArchiveProblem(f"it is not a valid zip file ({type(exc).__name__})") from None
    with archive:
        yield archive


@contextmanager
def _opened(path: Path | IO[bytes]) -> Iterator[IO[bytes]]:
    if not isinstance(path, Path):
        yield path
        return
    try:
        stream = path.open("rb")
    except OSError as exc:
        raise ArchiveProblem(f"it cannot be opened ({type(exc).__name__})") from None
    with stream:
        yield stream


def _summary(archive: zipfile.ZipFile, stream: IO[bytes], max_uncompressed: int, check: Callable[[], None],
             holds_secret: Callable[[str], bool]) -> dict[str, Any]:
    entries = _entries(archive, max_uncompressed)
    _carried(archive, stream, check, holds_secret)
    summary = Summary()
    for info in entries:
        summary.add_entry(info.filename)
        _read_entry(archive, info, summary, check)
    return summary.to_dict()


#: Characters each chunk shares with the next, so that a run across a boundary is seen whole, escaped too (a
#: JSON escape of an escape writes a character in twelve).
_OVERLAP = 16 * 12


def _chunks(stream: IO[bytes], check: Callable[[], None], encoding: str) -> Iterator[str]:
    """``stream`` as text, in chunks that overlap by :data:`_OVERLAP` characters."""
    decoder = codecs.getincrementaldecoder(encoding)("replace")
    tail = ""
    while block := stream.read(CHUNK_BYTES):
        check()
        text = tail + decoder.decode(block)
        yield text
        tail = text[-_OVERLAP:]


def _carried(archive: zipfile.ZipFile, path: Path | IO[bytes], check: Callable[[], None],
             holds_secret: Callable[[str], bool]) -> None:
    """:class:`ArchiveProblem` when anything in the archive holds part of a credential: the names, comments and
    extra fields, every byte of the file (stored members, data before, between or after them), and every member's
    content once decompressed."""
    meta = [archive.comment, *(f for i in archive.infolist() for f in (i.filename.encode(), i.comment, i.extra))]
    if any(holds_secret(m.decode("latin-1")) or holds_secret(m.decode("utf-8", "replace")) for m in meta):
        raise _carries("a name, comment or extra field")
    with _raw(path) as raw:
        if any(holds_secret(text) for text in _chunks(raw, check, "latin-1")):
            raise _carries("the file")
    for info in archive.infolist():
        _member_carries(archive, info, check, holds_secret)


def _carries(where: str) -> ArchiveProblem:
    return ArchiveProblem(f"{where} carries part of one of the connector's credentials, which mParticle's data "
                          "never does")


def _member_carries(archive: zipfile.ZipFile, info: zipfile.ZipInfo, check: Callable[[], None],
                    holds_secret: Callable[[str], bool]) -> None:
    shown = clip(info.filename, 80)  # a name is the server's text: quoted short
    try:
        with archive.open(info) as stream:
            if any(holds_secret(text) for text in _chunks(stream, check, "utf-8")):
                raise _carries(f"the member {shown}")
    except _READ_ERRORS as exc:
        raise ArchiveProblem(f"{shown} cannot be read ({type(exc).__name__}: {_reason(exc)})") from None


@contextlib.contextmanager
def _raw(path: Path | IO[bytes]) -> Iterator[IO[bytes]]:
    """The archive's bytes from the start: the file at ``path``, or the stream rewound (and left where it was)."""
    if isinstance(path, Path):
        with path.open("rb") as stream:
            yield stream
        return
    at = path.tell()
    path.seek(0)
    try:
        yield path
    finally:
        path.seek(at)


def _read_entry(archive: zipfile.ZipFile, info: zipfile.ZipInfo, summary: Summary, check: Callable[[], None]) -> None:
    """Read one entry into ``summary`` by the last part of its name: ``profile.jsonl``, other ``.jsonl``
    files (event batches), ``empty.txt``; anything else is listed but not read."""
    name = info.filename.rsplit("/", 1)[-1]
    if name == "empty.txt":
        summary.empty = True
    if not name.endswith(".jsonl"):
        return
    reader = _Reader(summary, check)
    read = reader.profile if name == "profile.jsonl" else reader.batch
    shown = clip(name, 80)  # a name is the server's text: quoted short
    try:
        with archive.open(info) as stream:
            for number, line in _lines(stream, shown, check):
                where = f"line {number} of {shown}"
                _read_line(read, _json(_text(line, where), where), where)
    except ArchiveProblem:
        raise
    except _READ_ERRORS as exc:
        raise ArchiveProblem(f"{shown} cannot be read ({type(exc).__name__}: {_reason(exc)})") from None


@dataclass(frozen=True)
class Line:
    """One JSON line of a results archive: ``profile`` (of ``profile.jsonl``) or ``batch`` (an event batch)."""

    kind: str
    entry: str  #: the entry's name, clipped (the server's text)
    data: Any


def lines(source: IO[bytes], max_uncompressed: int, check: Callable[[], None] = lambda: None) -> Iterator[Line]:
    """Every JSON line of a results zip, with the same limits as :func:`summarise` (what a line holds is the
    caller's to read; a malformed archive raises :class:`ArchiveProblem`). Secrets are :func:`summarise`'s to
    judge, on the whole archive, before it is delivered."""
    with _zip(source, check) as archive:
        for info in _entries(archive, max_uncompressed):
            name = info.filename.rsplit("/", 1)[-1]
            if not name.endswith(".jsonl"):
                continue
            shown, kind = clip(name, 80), "profile" if name == "profile.jsonl" else "batch"
            try:
                with archive.open(info) as stream:
                    for number, line in _lines(stream, shown, check):
                        where = f"line {number} of {shown}"
                        yield Line(kind, shown, _json(_text(line, where), where))
            except _READ_ERRORS as exc:
                raise ArchiveProblem(f"{shown} cannot be read ({type(exc).__name__}: {_reason(exc)})") from None


def _read_line(read: Callable[[Any, str], None], data: Any, where: str) -> None:
    """``read(data, where)``, total: whatever it raises beyond :class:`ArchiveProblem` is one too."""
    try:
        decode(lambda: read(data, where), where)
    except Malformed as exc:
        raise ArchiveProblem(f"{where} cannot be read ({exc})") from None


def _text(line: bytes, where: str) -> str:
    try:
        return line.decode("utf-8")
    except UnicodeDecodeError:
        raise ArchiveProblem(f"{where} is not UTF-8") from None


def merge(summaries: list[dict[str, Any]]) -> dict[str, Any]:
    """One summary of several archives (one per OpenDSR request): a profile found twice is listed once."""
    merged = Summary()
    for summary in summaries:
        merged.absorb(summary)
    return merged.to_dict()


def _reason(exc: BaseException) -> str:
    """A short, fixed reason: messages of zipfile and zlib are safe but can name entries at length."""
    text = str(exc).lower()
    for needle, reason in (("crc", "bad CRC"), ("encrypted", "encrypted"), ("compression", "unsupported compression"),
                           ("invalid", "corrupt data"), ("incorrect", "corrupt data"), ("truncated", "truncated")):
        if needle in text:
            return reason
    return "corrupt data"
