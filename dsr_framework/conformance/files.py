"""Where a connector may write, and what it wrote: fresh directories per check, and checks on listed files.

A :class:`Workspace` gives each runtime check its own directories: output directories for the requests, a
working directory and a temporary directory (``TMPDIR`` and :data:`tempfile.tempdir` point there while the
check runs), all under one root. Before and after, the whole root is listed: anything new outside the
output directories (``output_dir/../``, the working directory, the temporary directory) is a defect. The
listing backs up :mod:`~dsr_framework.conformance.filewatch`, which sees writes anywhere as they happen
(by audit hooks): what native code writes under the root is still found here.
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import io
import os
import shutil
import tempfile
import zipfile
from collections.abc import Iterator
from pathlib import Path

from dsr_framework.models import OutputFile
from dsr_framework.redact import Redactor

__all__ = ["Workspace", "file_texts", "listed_file_problems", "unlisted_files_with_secrets"]

#: Read at most this much of a file (or of all the members of an archive) when scanning it.
MAX_SCAN_BYTES = 64 * 1024 * 1024
_ENV = ("TMPDIR", "TEMP", "TMP")


class Workspace:
    """Fresh directories for one runtime check, and what appeared where it should not."""

    def __init__(self) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="dsr-conformance-")).resolve()
        self.cwd = self.root / "cwd"
        self.tmp = self.root / "tmp"
        self.cwd.mkdir()
        self.tmp.mkdir()
        self.outputs: list[Path] = []
        self._before: set[Path] = set()
        self._saved: tuple[str, str | None, dict[str, str | None]] | None = None

    def output_dir(self) -> Path:
        """A new, empty output directory for one request."""
        path = self.root / f"out-{len(self.outputs) + 1}"
        path.mkdir()
        self.outputs.append(path)
        return path

    def _listing(self) -> set[Path]:
        found: set[Path] = set()
        for folder, dirs, files in os.walk(self.root):
            here = Path(folder)
            dirs[:] = [d for d in dirs if here / d not in self.outputs]
            found.update(here / name for name in (*dirs, *files))
        return found

    def strays(self) -> list[str]:
        """Paths (relative to the root) that appeared outside every output directory since :meth:`enter`."""
        return sorted(str(p.relative_to(self.root)) for p in self._listing() - self._before)

    def _apply(self) -> None:
        os.chdir(self.cwd)
        tempfile.tempdir = str(self.tmp)
        for name in _ENV:
            os.environ[name] = str(self.tmp)

    def _restore(self) -> None:
        assert self._saved is not None
        cwd, tempdir, env = self._saved
        os.chdir(cwd)
        tempfile.tempdir = tempdir
        for name, value in env.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value

    @contextlib.contextmanager
    def entered(self) -> Iterator[Workspace]:
        """Point the working and temporary directories here while the block runs; list the root first."""
        self._saved = (os.getcwd(), tempfile.tempdir, {name: os.environ.get(name) for name in _ENV})
        self._before = self._listing()
        self._apply()
        try:
            yield self
        finally:
            self._restore()

    @contextlib.contextmanager
    def left(self) -> Iterator[None]:
        """Step out for a moment (the harness's own trusted code runs with the usual directories)."""
        self._restore()
        try:
            yield
        finally:
            self._apply()

    def remove(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)


def _inside(path: Path, folder: Path) -> bool:
    try:
        path.relative_to(folder)
    except ValueError:
        return False
    return True


def listed_file_problems(files: tuple[OutputFile, ...], output_dir: str, redactor: Redactor) -> list[str]:
    """Every way the listed files differ from what was written: missing, outside, wrong size or hash, a secret."""
    problems = []
    real_dir = Path(os.path.realpath(output_dir))
    for listed in files:
        name = Path(listed.path).name
        path = Path(listed.path)
        if not path.is_absolute():
            problems.append(f"lists {listed.path!r}, a relative path (paths must be absolute)")
            continue
        real = Path(os.path.realpath(path))
        if not _inside(real, real_dir):
            problems.append(f"lists {listed.path}, which resolves outside the output directory")
            continue
        if not real.is_file():
            problems.append(f"lists {name}, which does not exist")
            continue
        data = real.read_bytes()
        if len(data) != listed.size_bytes:
            problems.append(f"lists {name} with size {listed.size_bytes}, but it holds {len(data)} bytes")
        if hashlib.sha256(data).hexdigest() != listed.sha256.lower():
            problems.append(f"lists {name} with a SHA-256 that does not match its contents")
        if any(redactor.leaks(text) for text in file_texts(real)):
            problems.append(f"wrote a configured secret (or 8 or more characters of one) into {name}")
    return problems


def unlisted_files_with_secrets(output_dir: str, files: tuple[OutputFile, ...], redactor: Redactor) -> list[str]:
    """Files in the output directory that the result does not list and that hold a secret (or part of one)."""
    listed = {os.path.realpath(f.path) for f in files}
    found = []
    for folder, _, names in os.walk(output_dir):
        for name in names:
            path = Path(folder) / name
            if os.path.realpath(path) in listed or not path.is_file():
                continue
            if any(redactor.leaks(text) for text in file_texts(path)):
                found.append(f"wrote a configured secret (or 8 or more characters of one) into {name}, a file it "
                             "does not list")
    return found


def file_texts(path: Path) -> Iterator[str]:
    """The file's bytes as text (latin-1, so every byte survives), then the same for each member of a zip or
    gzip archive: what a scan for secrets or for the subject's data must look through."""
    data = path.read_bytes()[:MAX_SCAN_BYTES]
    yield data.decode("latin-1")
    budget = MAX_SCAN_BYTES
    if zipfile.is_zipfile(io.BytesIO(data)):
        with contextlib.suppress(zipfile.BadZipFile, OSError, EOFError), zipfile.ZipFile(io.BytesIO(data)) as zf:
            for info in zf.infolist():
                if budget <= 0:
                    break
                with zf.open(info) as member:
                    chunk = member.read(budget)
                budget -= len(chunk)
                yield chunk.decode("latin-1")
    elif data[:2] == b"\x1f\x8b":
        with contextlib.suppress(OSError, EOFError), gzip.GzipFile(fileobj=io.BytesIO(data)) as gz:
            yield gz.read(budget).decode("latin-1")
