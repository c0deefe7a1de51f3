"""The framework's file module (:mod:`dsr_framework.files`) speaking the connector's errors.

Every file the connector and its command line write goes through :class:`Folder`, which is the framework's
:class:`dsr_framework.files.Folder` with the connector's error classes: a refused folder or file is an
:class:`UnsafePathError` (a :class:`~connector_mparticle.errors.ConfigurationError`), a full disk a
:class:`NoSpaceError` (a :class:`~connector_mparticle.errors.RetryLaterError`: the request stays pending),
anything else a :class:`~connector_mparticle.errors.ConfigurationError`. The rules themselves live in the
framework, once.
"""

from __future__ import annotations

from typing import cast

from connector_mparticle.errors import ConfigurationError, MParticleError, RetryLaterError
from dsr_framework import files as _files
from dsr_framework.files import READABLE_CHARS, FileErrors, FileRecord, FolderLock, Staged, folder_path, stem

__all__ = ["ERRORS", "READABLE_CHARS", "FileRecord", "Folder", "FolderLock", "NoSpaceError", "Staged",
           "UnsafePathError", "file_error", "folder_path", "stem"]


class UnsafePathError(ConfigurationError):
    """A folder or file the connector will not use; the message says why and what to do instead."""


class NoSpaceError(RetryLaterError):
    """The disk (or the user's quota) is full: worth trying again later, the request is not at fault."""


ERRORS = FileErrors(UnsafePathError, NoSpaceError, ConfigurationError)


class Folder(_files.Folder):
    """:class:`dsr_framework.files.Folder` raising the connector's errors."""

    errors = ERRORS


def file_error(exc: OSError, what: str) -> MParticleError:
    """An operating-system error while doing ``what`` as the connector's error: a full disk is worth retrying,
    the rest is not."""
    return cast(MParticleError, ERRORS.from_os(exc, what))
