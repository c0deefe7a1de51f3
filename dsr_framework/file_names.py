"""The names of the files a request leaves: one stem per request and subject (:func:`stem`), names that stay a
folder's entries, and the hidden names derived from them (temporaries, locks) within the file systems' limits.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from pathlib import Path

__all__ = ["DIGEST_CHARS", "READABLE_CHARS", "checked_name", "folder_path", "short", "stem", "temp_prefix"]

DIGEST_CHARS = 32  #: hex characters of SHA-256 in a name: 128 bits
READABLE_CHARS = 40  #: characters of the request id kept readable in a name
_KIND = re.compile(r"[a-z][a-z0-9-]*")


def stem(kind: str, request_id: str, subject: str) -> str:
    """``KIND-READABLE-DIGEST``: the start of every file name for one request about one subject.

    READABLE is the id's first :data:`READABLE_CHARS` characters with anything but ``A-Z a-z 0-9 . _ -``
    replaced by ``_``; DIGEST is 128 bits of the SHA-256 of the whole id (any Unicode, any length) and of
    ``subject`` (a digest of who the request is about), so two different ids never share a name, and neither
    does a request id a host reused for another subject: that request never overwrites, nor is handed, the first
    subject's files. Suffixes added to a stem must start with ``-`` or ``.`` (never a hex digit), so no stem plus
    suffix equals another stem plus another suffix.
    """
    if not _KIND.fullmatch(kind):
        raise ValueError(f"not a file kind: {kind!r}")
    readable = re.sub(r"[^A-Za-z0-9._-]", "_", request_id[:READABLE_CHARS])
    whole = json.dumps([request_id, subject], ensure_ascii=True)  # unambiguous: no separator can be forged
    digest = hashlib.sha256(whole.encode("ascii")).hexdigest()[:DIGEST_CHARS]
    return f"{kind}-{readable}-{digest}"


def folder_path(path: str | os.PathLike[str]) -> Path:
    """``path`` made absolute the way a person reads it (``..`` removed by text), its last part not followed."""
    return Path(os.path.abspath(os.fspath(path)))


def checked_name(name: str) -> str:
    """``name`` if it names an entry of a folder, not a path or a special entry."""
    if not name or name in (".", "..") or "/" in name or "\0" in name or len(os.fsencode(name)) > 255:
        raise ValueError("not a usable file name (empty, . or .., holding a / or a NUL character, or longer than "
                         "255 bytes)")
    return name


def short(name: str) -> str:
    """``name``, or for a long one (over 200 bytes) its digest: what the names derived from it start with, so
    every derived name (``.NAME.….tmp``, ``.NAME.lock``) stays under the file systems' 255 bytes."""
    return name if len(os.fsencode(name)) <= 200 else hashlib.sha256(os.fsencode(name)).hexdigest()[:32]


def temp_prefix(name: str) -> str:
    """The start of the hidden temporary names of ``name``."""
    return f".{short(name)}."
