"""The one way the connector's writers put text into a file: its final bytes pass the redactor's check first.

A file the connector writes holds what servers sent, re-encoded (``json.dumps`` decodes ``\\u`` escapes a results
line carried and may escape other characters; a CSV cell quotes). The check that counts is therefore the one on
the bytes as they will be read (:meth:`dsr_framework.redact.Redactor.written`), not on what came in. Every writer
of text (the access summaries and receipt, the portable files, the evidence record) goes through this module:

* :func:`checked_bytes`: a whole document, checked; :class:`LeakInOutput` becomes an
  :class:`~connector_mparticle.errors.UnsafeResponseError` (what the server sent made it so: the flows keep the
  request pending for a person, as for any answer they refuse);
* :func:`write_checked`: a whole document checked, then written atomically in a folder;
* :class:`CheckedStream`: a large file written in pieces (the portable export), checked block by block with the
  end of the block before it, so that a secret split across two writes is still seen whole; nothing reaches the
  staged file before its block passed.
"""

from __future__ import annotations

from types import TracebackType
from typing import BinaryIO

from connector_mparticle.errors import UnsafeResponseError
from connector_mparticle.files import FileRecord, Folder, Staged
from dsr_framework.redact import LeakInOutput, Redactor, reduced

__all__ = ["BLOCK_BYTES", "OVERLAP_BYTES", "CheckedStream", "checked_bytes", "write_checked"]

#: How much a stream gathers before it checks and writes (the check costs about the same per byte at any size).
BLOCK_BYTES = 1 << 20
#: Characters of the end of what was written, in reduced form, checked again with the next block: longer than any
#: credential in its most expanded written form once padding is taken out (JSON ``\\u`` escapes make six bytes of a
#: character, two rounds of escaping more).
OVERLAP_BYTES = 16 << 10


def checked_bytes(redactor: Redactor, data: bytes, what: str) -> bytes:
    """``data`` unchanged once :meth:`Redactor.written` passed it; :class:`UnsafeResponseError` if it leaks."""
    try:
        return redactor.written(data, what)
    except LeakInOutput as exc:
        raise UnsafeResponseError(str(exc), api="dsr") from None


def write_checked(redactor: Redactor, folder: Folder, name: str, data: bytes, what: str) -> FileRecord:
    """Replace ``name`` in ``folder`` with ``data`` once its bytes passed the check (nothing written if not)."""
    return folder.write(name, checked_bytes(redactor, data, what))


class CheckedStream:
    """A writable stream onto a staged file whose bytes are checked before they reach it (see the module).

    Each block is checked with the end of what came before it, in :func:`~dsr_framework.redact.reduced` form: the
    rule also finds a secret whose characters a server spread apart with padding the rule's decodings remove
    (escaped zero-width spaces, say, any number of them), so that padding is taken out of the carried end first,
    and its characters sit next to each other however wide they were in the file."""

    def __init__(self, redactor: Redactor, staged: Staged, what: str, block_bytes: int = BLOCK_BYTES,
                 overlap_chars: int = OVERLAP_BYTES) -> None:
        self._redactor = redactor
        self._what = what
        self._handle: BinaryIO = staged.open()
        self._pending: list[bytes] = []
        self._size = 0
        self._tail = ""
        self._block, self._overlap = block_bytes, overlap_chars

    def write(self, data: bytes) -> None:
        self._pending.append(data)
        self._size += len(data)
        if self._size >= self._block:
            self._flush()

    def _flush(self) -> None:
        block = b"".join(self._pending)
        self._pending, self._size = [], 0
        # the carried end is checked again with this block; only this block is written
        checked_bytes(self._redactor, self._tail.encode("utf-8", "replace") + block, self._what)
        self._handle.write(block)
        self._tail = reduced(self._tail + block.decode("utf-8", "replace"))[-self._overlap:]

    def __enter__(self) -> CheckedStream:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        try:
            if kind is None:
                self._flush()
        finally:
            self._handle.close()
