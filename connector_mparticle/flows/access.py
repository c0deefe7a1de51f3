"""Access: once mParticle completes every OpenDSR request, download the results and write them with a summary.

Files appear in the output directory only when they are whole and checked: the downloads, both summaries and
the receipt (``…-receipt.json``: mParticle's signed acknowledgements, :mod:`connector_mparticle.api.receipts`) are
written under unique temporary names and renamed into place together (``os.replace`` is atomic). An
exclusive lock on the output directory itself (``flock``: no lock file is left behind) lets one worker
finish at a time, so threads or processes finishing the same request never share a partial file or remove
another's results. A worker that finds this request's results already written and intact (the summary
names the same mParticle requests; each archive's SHA-256 matches it) returns those files instead of
downloading again: concurrent workers converge on one set of files, and a call repeated after a lost
response returns what was delivered, even once mParticle's results link has expired. Any problem with an
archive (:class:`~connector_mparticle.api.results.ArchiveProblem`) deletes what was downloaded and fails as
``rejected``.

A host request with an mpid and other identifiers is two OpenDSR requests: their archives are kept apart
(``…zip`` and ``…-mpid.zip``) and summarised together.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from connector_mparticle.api.opendsr import DsrStatus
from connector_mparticle.api.receipts import document
from connector_mparticle.api.results import NO_DATA, merge, summarise, summary_text
from connector_mparticle.errors import ConfigurationError, GoneError, MParticleError, NotFoundError, RetryLaterError
from connector_mparticle.flows.common import Flow
from connector_mparticle.flows.state import Part
from connector_mparticle.flows.subject import masked_identities, safe_file_stem
from connector_mparticle.http.deadline import current
from connector_mparticle.http.transport import Download
from dsr_framework.models import OutputFile, Result, format_time, utcnow
from dsr_framework.redact import redact_strings
from dsr_framework.text import for_people

__all__ = ["finish_access"]

MAX_EXPANSION = 50  #: results archive: uncompressed bytes allowed per downloaded byte
LOCK_WAIT_SECONDS = 30.0
ARCHIVE_DESCRIPTION = "mParticle's results archive (JSON Lines: profile and event batches)"
#: The files written next to the archives: name suffix, media type, description.
WRITTEN = {"json": ("-summary.json", "application/json", "readable summary (JSON)"),
           "txt": ("-summary.txt", "text/plain", "readable summary (text)"),
           "receipt": ("-receipt.json", "application/json", "mParticle's signed acknowledgements (receipts)")}


@contextlib.contextmanager
def _exclusive(folder: Path, timeout: float) -> Iterator[bool]:
    """Hold an exclusive ``flock`` on the directory itself (True), or give up after ``timeout`` (False)."""
    handle = os.open(folder, os.O_RDONLY)
    try:
        end = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= end:
                    yield False
                    return
                time.sleep(0.05)
        try:
            yield True
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
    finally:
        os.close(handle)


@dataclass(frozen=True)
class _Fetched:
    """One OpenDSR request's results: its download (None: mParticle holds no data) and what it holds."""

    part: Part
    download: Download | None
    results: dict[str, Any]

    def archive_name(self, stem: str) -> str:
        return f"{stem}.zip" if self.part.label == "identities" else f"{stem}-{self.part.label}.zip"


def _output(path: Path, data: bytes, media_type: str, description: str) -> OutputFile:
    return OutputFile(str(path), media_type, len(data), hashlib.sha256(data).hexdigest(), description)


def finish_access(flow: Flow, statuses: dict[str, DsrStatus]) -> Result:
    """Download, check and summarise the results of a completed access request."""
    assert flow.state is not None
    links = {}
    for part in flow.state.parts:
        status = statuses.get(part.subject_request_id) or flow.check(part)
        if not status.results_url:
            # mParticle sets results_url when a request completes; completed without one is not a verdict yet.
            why = "mParticle reports the access request completed but has given no results link yet"
            return flow.retry_soon(RetryLaterError(why, api="dsr"), why)
        links[part.subject_request_id] = status.results_url
    request = flow.request
    stem = f"mparticle-access-{safe_file_stem(request.request_id)}"
    if not request.output_dir:
        with tempfile.TemporaryDirectory(prefix="mparticle-access-") as scratch:
            return _download_and_write(flow, links, Path(scratch), stem, keep=False)
    folder = Path(request.output_dir).absolute()
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        return flow.failed(ConfigurationError(f"cannot create the output directory ({type(exc).__name__})"))
    deadline = current()
    wait = min(LOCK_WAIT_SECONDS, max(0.0, deadline.remaining() - 1)) if deadline else LOCK_WAIT_SECONDS
    with _exclusive(folder, wait) as locked:
        if not locked:
            why = "another worker is finishing this access request right now"
            return flow.retry_soon(RetryLaterError(why, api="dsr"), why)
        delivered = _delivered(flow, folder, stem)
        if delivered is not None:
            return delivered
        return _download_and_write(flow, links, folder, stem, keep=True)


def _delivered(flow: Flow, folder: Path, stem: str) -> Result | None:
    """The completed result for files an earlier call wrote for this very request, if they are intact."""
    summary_path = folder / f"{stem}-summary.json"
    try:
        raw = summary_path.read_bytes()
        summary = json.loads(raw)
        requests, results = summary["mparticle"]["requests"], summary["results"]
        if sorted(r["subject_request_id"] for r in requests) != sorted(flow.subject_ids):
            return None
        written = {key: folder / f"{stem}{name}" for key, (name, _, _) in WRITTEN.items()}
        texts = {key: path.read_bytes() for key, path in written.items()}
        files = _intact_archives(folder, requests)
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if files is None:
        return None
    files += [_output(written[key], texts[key], media_type, description)
              for key, (_, media_type, description) in WRITTEN.items()]
    flow.note("results", "already written by an earlier call for this request; returning those files")
    return flow.result("completed", _message(results), files=tuple(files),
                       summary={**results, "downloaded_at": summary["mparticle"].get("downloaded_at")})


def _intact_archives(folder: Path, requests: list[dict[str, Any]]) -> list[OutputFile] | None:
    """The archives an earlier call's summary lists, or None when one was changed or lies outside ``folder``."""
    files = []
    for entry in requests:
        if entry["results_sha256"] is None:
            continue
        archive = folder / entry["file"]
        digest, size = _hash(archive)
        if digest != entry["results_sha256"] or archive.parent != folder:
            return None
        files.append(OutputFile(str(archive), "application/zip", size, digest, ARCHIVE_DESCRIPTION))
    return files


def _hash(path: Path) -> tuple[str, int]:
    digest, size = hashlib.sha256(), 0
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size


def _message(results: dict[str, Any]) -> str:
    if not results.get("data_found"):
        return "mParticle completed the access request and holds no data for this subject"
    return (f"mParticle returned data for {results.get('profiles_found', 0)} profile(s) with "
            f"{results.get('event_batches', 0)} event batch(es)")


def _fetch(flow: Flow, part: Part, url: str, into: Path) -> _Fetched:
    """Download and read one request's results (404: mParticle holds no data for it)."""
    conn = flow.conn
    try:
        download = conn.dsr.download(url, into, conn.settings.download.max_bytes)
    except NotFoundError:
        flow.note("download results", "HTTP 404: mParticle holds no data for these identities",
                  subject_request_id=part.subject_request_id)
        return _Fetched(part, None, dict(NO_DATA))
    except GoneError as exc:
        raise GoneError("the results link has expired (mParticle keeps results for 7 days after completion); "
                        "submit a new access request", api="dsr", status=exc.status) from None
    flow.note("download results", "HTTP 200", subject_request_id=part.subject_request_id,
              size_bytes=download.size_bytes, sha256=download.sha256)
    deadline = current()
    results = summarise(download.path, MAX_EXPANSION * download.size_bytes + 1_000_000,
                        check=deadline.check if deadline else lambda: None, holds_secret=conn.redactor.finds_secret)
    # What the summaries quote comes from the server: cut out any fragment of a credential, and make every
    # string safe to show a person (the summaries are read in terminals and editors).
    return _Fetched(part, download, redact_strings(results, lambda text: for_people(conn.redactor.scrub(text))))


def _download_and_write(flow: Flow, links: dict[str, str], folder: Path, stem: str, keep: bool) -> Result:
    assert flow.state is not None
    token = uuid.uuid4().hex[:12]
    temps: list[Path] = []
    try:
        fetched = []
        for part in flow.state.parts:
            partial = folder / f".{stem}.{token}.{part.label}.zip.part"
            temps.append(partial)
            fetched.append(_fetch(flow, part, links[part.subject_request_id], partial))
        results = merge([f.results for f in fetched])
        downloaded_at = format_time(utcnow())
        summary = _summary_document(flow, fetched, stem, results, downloaded_at)
        receipt = document(flow.request.request_id, flow.request_type, flow.regulation,
                           [p.receipt for p in flow.state.parts if p.receipt])
        files = _write(folder, stem, token, summary, receipt, fetched, temps) if keep else ()
    except RetryLaterError:
        raise  # not a verdict: the request stays pending (Flow.run)
    except MParticleError as exc:
        flow.note("download results", f"refused: {type(exc).__name__}")
        return flow.failed(exc)
    finally:
        for path in temps:
            path.unlink(missing_ok=True)
    return flow.result("completed", _message(results), files=files,
                       summary={**results, "downloaded_at": downloaded_at})


def _summary_document(flow: Flow, fetched: list[_Fetched], stem: str, results: dict[str, Any],
                      downloaded_at: str) -> dict[str, Any]:
    """The ``-summary.json`` document: the host request, mParticle's requests and files, and the results."""
    request = flow.request
    return {
        "request": {"request_id": request.request_id, "type": request.type,
                    "regulation": flow.regulation, "identities": masked_identities(request.identities),
                    "submitted_at": format_time(request.submitted_at)},
        "mparticle": {"regulation": flow.regulation, "downloaded_at": downloaded_at, "requests": [
            {"subject_request_id": f.part.subject_request_id, "label": f.part.label,
             "file": f.archive_name(stem) if f.download else None,
             "results_size_bytes": f.download.size_bytes if f.download else None,
             "results_sha256": f.download.sha256 if f.download else None,
             "acknowledgement_verified": f.part.receipt["verified"] if f.part.receipt else None}
            for f in fetched]},
        "results": results,
    }


def _write(folder: Path, stem: str, token: str, summary: dict[str, Any], receipt: bytes, fetched: list[_Fetched],
           temps: list[Path]) -> tuple[OutputFile, ...]:
    """Write both summaries and the receipt under temporary names, then rename every file into place."""
    texts = {"json": (json.dumps(summary, indent=2, sort_keys=True) + "\n").encode(),
             "txt": summary_text(summary).encode(), "receipt": receipt}
    outputs: list[OutputFile] = []
    moves: list[tuple[Path, Path]] = []
    for item in fetched:
        if item.download is not None:
            final = folder / item.archive_name(stem)
            moves.append((item.download.path, final))
            outputs.append(OutputFile(str(final), "application/zip", item.download.size_bytes, item.download.sha256,
                                      ARCHIVE_DESCRIPTION))
    for key, (name, media_type, description) in WRITTEN.items():
        temp = folder / f".{stem}.{token}{name}.part"
        temps.append(temp)
        with temp.open("wb") as handle:
            handle.write(texts[key])
            handle.flush()
            os.fsync(handle.fileno())
        final = folder / f"{stem}{name}"
        moves.append((temp, final))
        outputs.append(_output(final, texts[key], media_type, description))
    for source, target in moves:
        os.replace(source, target)
    return tuple(outputs)
