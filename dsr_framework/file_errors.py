"""What a problem with a file or folder becomes: the framework's own errors (:data:`ERRORS`), or the classes a caller
names (:class:`FileErrors`; the mParticle connector names its own), and the operating system's errors translated.
"""

from __future__ import annotations

import contextlib
import errno
from collections.abc import Iterator
from dataclasses import dataclass

__all__ = ["ERRORS", "FileError", "FileErrors", "NoSpaceError", "UnsafePathError", "file_error", "translated"]

_FULL = (errno.ENOSPC, errno.EDQUOT)


class FileError(Exception):
    """A file or folder that cannot be used (the framework's own vocabulary: :data:`ERRORS`); the message is safe
    to show and never holds a file's content."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class UnsafePathError(FileError):
    """A folder or file that will not be used; the message says why and what to do instead."""


class NoSpaceError(FileError):
    """The disk (or the user's quota) is full: worth trying again later, the request is not at fault."""


@dataclass(frozen=True)
class FileErrors:
    """The exception classes problems become: a folder or file refused, a full disk, anything else. Each takes
    the message as its one positional argument."""

    unsafe: type[Exception]
    no_space: type[Exception]
    other: type[Exception]

    @property
    def refusals(self) -> tuple[type[Exception], ...]:
        """Everything a read may raise for a file that is not there as expected (``ValueError``: a bad name)."""
        return self.unsafe, self.no_space, self.other, ValueError

    def from_os(self, exc: OSError, what: str) -> Exception:
        """An operating-system error while doing ``what``: a full disk is worth retrying, the rest is not."""
        reason = exc.strerror or type(exc).__name__
        return (self.no_space if exc.errno in _FULL else self.other)(f"cannot {what}: {reason}")


ERRORS = FileErrors(UnsafePathError, NoSpaceError, FileError)  #: the framework's own


def file_error(exc: OSError, what: str) -> Exception:
    """An operating-system error while doing ``what`` in the framework's vocabulary (:data:`ERRORS`)."""
    return ERRORS.from_os(exc, what)


@contextlib.contextmanager
def translated(what: str, errors: FileErrors) -> Iterator[None]:
    """Raise an operating-system error met while doing ``what`` as one of ``errors``."""
    try:
        yield
    except OSError as exc:
        raise errors.from_os(exc, what) from None
