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
from connector_mparticle.http.deadline import current
from dsr_framework.redact import LeakInOutput, Redactor, reduced

__all__ = ["BLOCK_BYTES", "OVERLAP_BYTES", "CheckedStream", "checked_bytes", "write_checked"]

#: How much a stream gathers before it checks and writes: the check costs about the same per byte at any size,
#: and at worst (text built to be slow to decode) about a second per 256 KB, which bounds how far past its
#: deadline a call can run.
BLOCK_BYTES = 1 << 18
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

    Each block (a write larger than a block is cut into blocks) is checked with the end of what came before it,
    twice carried: as written, for a leak across the boundary in any form the rule reads; and in
    :func:`~dsr_framework.redact.reduced` form, because the rule also finds a secret whose characters a server
    spread apart with padding the rule's decodings remove (escaped zero-width spaces, say, any number of them):
    taken out of the carried end, its characters sit next to each other however wide they were in the file. The
    call's deadline is looked at before each block, so a long file cannot hold a call past its budget by more
    than one block's check."""

    def __init__(self, redactor: Redactor, staged: Staged, what: str, block_bytes: int = BLOCK_BYTES,
                 overlap_chars: int = OVERLAP_BYTES) -> None:
        self._redactor = redactor
        self._what = what
        self._handle: BinaryIO = staged.open()
        self._pending: list[bytes] = []
        self._size = 0
        self._tail = self._raw_tail = ""
        self._block, self._overlap = block_bytes, overlap_chars
        deadline = current()
        self._check = deadline.check if deadline is not None else (lambda: None)

    def write(self, data: bytes) -> None:
        self._pending.append(data)
        self._size += len(data)
        if self._size >= self._block:
            self._flush()

    def _flush(self) -> None:
        data = b"".join(self._pending)
        self._pending, self._size = [], 0
        for block in _blocks(data, self._block):
            self._check()
            text = block.decode("utf-8", "replace")
            # the carried ends are checked again with this block; only this block is written
            checked_bytes(self._redactor, self._tail.encode("utf-8", "replace") + block, self._what)
            checked_bytes(self._redactor, (self._raw_tail + text[:self._overlap]).encode("utf-8", "replace"),
                          self._what)
            self._handle.write(block)
            self._raw_tail = (self._raw_tail + text)[-self._overlap:]
            self._tail = reduced(self._tail + text)[-self._overlap:]

    def __enter__(self) -> CheckedStream:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        try:
            if kind is None:
                self._flush()
        finally:
            self._handle.close()


def _blocks(data: bytes, size: int) -> list[bytes]:
    """``data`` in pieces of about ``size`` bytes, each cut before a byte that starts a UTF-8 character."""
    pieces, start = [], 0
    while len(data) - start > size:
        cut = start + size
        while cut > start + 1 and data[cut] & 0xC0 == 0x80:  # a continuation byte: the character began earlier
            cut -= 1
        pieces.append(data[start:cut])
        start = cut
    return [*pieces, data[start:]] if start < len(data) or not pieces else pieces
