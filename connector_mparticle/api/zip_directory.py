"""How many entries a zip file's central directory holds, counted before :mod:`zipfile` reads it.

``zipfile.ZipFile`` parses the whole central directory into ``ZipInfo`` objects as it opens a file, and reads
as many records as the directory's declared *size* holds, whatever its declared entry count says: a 53 MB
archive of one million records costs 17 s and 340 MB before anyone can count them. So the directory is judged
here first, from the end-of-central-directory record (APPNOTE 4.3.16, and the ZIP64 record and locator, 4.3.14
and 4.3.15): its declared size is capped, and its records are walked header by header (46 bytes plus the three
lengths each declares), without building anything, stopping as soon as there are more than asked for.
"""

from __future__ import annotations

import struct
import zipfile
from collections.abc import Callable
from typing import IO

__all__ = ["MAX_DIRECTORY_BYTES", "TooLarge", "directory_records"]

MAX_DIRECTORY_BYTES = 16 * 1024 * 1024  #: 10,000 entries with their macOS twins take about 2 MB
_END = struct.Struct("<4s4H2LH")  #: the end-of-central-directory record
_LOCATOR = struct.Struct("<4sLQL")  #: the ZIP64 end-of-central-directory locator
_END64 = struct.Struct("<4sQ2H2L4Q")  #: the ZIP64 end-of-central-directory record
_RECORD = struct.Struct("<4s4B4HL2L5H2L")  #: a central directory file header
_MAX_COMMENT = 0xFFFF
_RECORD_SIGNATURE, _END_SIGNATURE = b"PK\x01\x02", b"PK\x05\x06"
_LOCATOR_SIGNATURE, _END64_SIGNATURE = b"PK\x06\x07", b"PK\x06\x06"
CHECK_EVERY = 4096  #: records walked between two deadline checks


class TooLarge(Exception):
    """The central directory declares more than :data:`MAX_DIRECTORY_BYTES`; the message says so."""


def directory_records(stream: IO[bytes], limit: int, check: Callable[[], None] = lambda: None) -> int:
    """The number of records in the central directory of the zip file ``stream`` (seekable), or ``limit + 1`` as
    soon as there are more than ``limit``; :class:`TooLarge` for a directory larger than
    :data:`MAX_DIRECTORY_BYTES`, :class:`zipfile.BadZipFile` for one that cannot be found."""
    start, size, declared = _directory(stream)
    if declared > limit:
        return limit + 1
    if size > MAX_DIRECTORY_BYTES:
        raise TooLarge(f"its central directory is larger than {MAX_DIRECTORY_BYTES // (1024 * 1024)} MB")
    stream.seek(start)
    directory = stream.read(size)
    count = pos = 0
    while pos + _RECORD.size <= len(directory) and count <= limit:
        record = _RECORD.unpack_from(directory, pos)
        if record[0] != _RECORD_SIGNATURE:
            break  # what zipfile would refuse too ("Bad magic number for central directory")
        pos += _RECORD.size + record[12] + record[13] + record[14]  # name, extra field and comment lengths
        count += 1
        if count % CHECK_EVERY == 0:
            check()
    return count


def _directory(stream: IO[bytes]) -> tuple[int, int, int]:
    """Where the central directory starts, its size and its declared number of entries (ZIP64 when set)."""
    stream.seek(0, 2)
    length = stream.tell()
    tail_start = max(0, length - _END.size - _MAX_COMMENT)
    stream.seek(tail_start)
    tail = stream.read()
    at = tail.rfind(_END_SIGNATURE)
    if at < 0 or len(tail) - at < _END.size:
        raise zipfile.BadZipFile("no end of central directory record")
    end = _END.unpack_from(tail, at)
    entries, size, position = end[4], end[5], tail_start + at
    position, size, entries = _zip64(stream, position) or (position, size, entries)
    if size > position:
        raise zipfile.BadZipFile("the central directory does not fit before its end record")
    return position - size, size, entries


def _zip64(stream: IO[bytes], end_position: int) -> tuple[int, int, int] | None:
    """The ZIP64 end record's position, directory size and entry count, found through its locator just before
    the end record; None when there is no locator (a plain zip, whatever its fields say: so zipfile reads it)."""
    if end_position < _LOCATOR.size + _END64.size:
        return None
    stream.seek(end_position - _LOCATOR.size)
    locator = _LOCATOR.unpack(stream.read(_LOCATOR.size))
    if locator[0] != _LOCATOR_SIGNATURE:
        return None
    position = end_position - _LOCATOR.size - _END64.size  # where zipfile looks for it, too
    stream.seek(position)
    record = _END64.unpack(stream.read(_END64.size))
    if record[0] != _END64_SIGNATURE:
        raise zipfile.BadZipFile("no ZIP64 end of central directory record")
    return position, record[8], record[7]
