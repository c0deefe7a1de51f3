"""Access: once mParticle completes every OpenDSR request, download the results and write them with a summary.

Every file goes through :mod:`connector_mparticle.files`: the output folder must be the user's alone, files are
0600 and named from the whole request id and the subject (``mparticle-access-READABLE-DIGEST…``), no link is
followed. Each download streams into a new private file; both summaries and the receipt (``…-receipt.json``: mParticle's
signed acknowledgements, :mod:`connector_mparticle.api.receipts`) are written under hidden temporary names;
then every file is renamed into place and, last, the request's signed state listing them (``delivered``: name,
size, SHA-256) is written beside them as ``.STEM.delivered`` (:mod:`connector_mparticle.flows.delivery`). A lock
of this request (a file inside the folder that only its owner can create or open) lets one worker finish at a
time.

A worker that finds this request's delivery record (signed with this connector's state key, for these very
OpenDSR requests) and every file it lists intact returns those files instead of downloading again: concurrent
workers converge on one set of files, and a call repeated after a lost response returns what was delivered,
even once mParticle's results link has expired. Nothing else found in the folder is ever returned: a planted
summary, another request's files or record, a changed archive all mean "not delivered yet", and the results are
downloaded and written again over them. Any problem with an archive
(:class:`~connector_mparticle.api.results.ArchiveProblem`), a results host the download policy refuses or a file
larger than ``download.max_bytes`` deletes what was downloaded and keeps the request pending (mParticle did its
part; the download is tried again), as does a full disk; a refused link or size, refused credentials or an output
folder that cannot be used also name the fix in ``action_required`` (fixing the setting and calling again is
enough). Only mParticle's own verdicts end it: 404 (no data), 410 (the link expired: a new request, under a new
request id, is needed).

When the workspace has login ids and the request carries none, mParticle's export cannot include known
profiles: the result's ``verification`` says so (``unverified``, ``login_id_required``) and the message never
says mParticle holds nothing.

A host request with an mpid and other identifiers is two OpenDSR requests: their archives are kept apart
(``…zip`` and ``…-mpid.zip``) and summarised together.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from connector_mparticle.api.opendsr import DsrStatus, links_to
from connector_mparticle.api.receipts import document
from connector_mparticle.api.results import NO_DATA, ArchiveProblem, merge, summarise, summary_text
from connector_mparticle.errors import GoneError, MParticleError, NotFoundError, RetryLaterError, UnsafeResponseError
from connector_mparticle.files import Folder, Staged, file_error, stem
from connector_mparticle.flows.common import Flow
from connector_mparticle.flows.delivery import Delivered, record_name, seal, unseal, vouched
from connector_mparticle.flows.state import Part
from connector_mparticle.flows.subject import masked_identities
from connector_mparticle.flows.verification import reach_reasons
from connector_mparticle.flows.writing import checked_bytes
from connector_mparticle.http.deadline import current
from connector_mparticle.http.transport import Download
from dsr_framework.models import OutputFile, Result, Verification, format_time, utcnow
from dsr_framework.redact import redact_strings
from dsr_framework.text import for_people

__all__ = ["KIND", "finish_access"]

KIND = "mparticle-access"  #: the start of every access file name
MAX_EXPANSION = 50  #: results archive: uncompressed bytes allowed per downloaded byte
LOCK_WAIT_SECONDS = 30.0
ARCHIVE_DESCRIPTION = "mParticle's results archive (JSON Lines: profile and event batches)"
#: The files written next to the archives: name suffix, media type, description.
WRITTEN = {"json": ("-summary.json", "application/json", "readable summary (JSON)"),
           "txt": ("-summary.txt", "text/plain", "readable summary (text)"),
           "receipt": ("-receipt.json", "application/json", "mParticle's signed acknowledgements (receipts)")}


def _archive_name(file_stem: str, part: Part) -> str:
    return f"{file_stem}.zip" if part.label == "identities" else f"{file_stem}-{part.label}.zip"


@dataclass(frozen=True)
class _Fetched:
    """One OpenDSR request's results: its download (None: mParticle holds no data) and what it holds."""

    part: Part
    staged: Staged
    download: Download | None
    results: dict[str, Any]


def finish_access(flow: Flow, statuses: dict[str, DsrStatus]) -> Result:
    """Download, check and summarise the results of a completed access request."""
    assert flow.state is not None
    links = _links(flow, statuses)
    if isinstance(links, Result):
        return links
    file_stem = stem(KIND, flow.request.request_id, flow.who)
    if not flow.request.output_dir:
        with Folder.temporary(f"{KIND}-") as scratch:
            return _download_and_write(flow, links, scratch, file_stem, keep=False)
    flow.doing = f"writing its results into {flow.request.output_dir}"
    with Folder.open(flow.request.output_dir) as folder, folder.lock(file_stem) as lock:
        if not lock.acquire(flow.lock_wait(LOCK_WAIT_SECONDS)):
            why = "another worker is finishing this access request right now"
            return flow.retry_soon(RetryLaterError(why, api="dsr"), why)
        delivered = _delivered(flow, folder, file_stem)
        if delivered is not None:
            return delivered
        folder.sweep([*(_archive_name(file_stem, p) for p in flow.state.parts),
                      *(file_stem + suffix for suffix, _, _ in WRITTEN.values()), record_name(file_stem)])
        return _download_and_write(flow, links, folder, file_stem, keep=True)


def _links(flow: Flow, statuses: dict[str, DsrStatus]) -> dict[str, str] | Result:
    """Each part's results link, or the pending result when one is missing or names another request (a link
    from a faulty or hostile status would hand over another person's archive: :func:`links_to`)."""
    assert flow.state is not None
    links = {}
    for part in flow.state.parts:
        status = statuses.get(part.subject_request_id) or flow.check(part)
        if not status.results_url:
            # mParticle sets results_url when a request completes; completed without one is not a verdict yet.
            why = "mParticle reports the access request completed but has given no results link yet"
            return flow.retry_soon(RetryLaterError(why, api="dsr"), why)
        if not links_to(status.results_url, part.subject_request_id):
            why = ("mParticle reports the access request completed, but its results link names another request, "
                   "so the archive behind it is not this request's and is not taken")
            return flow.retry_soon(RetryLaterError(why, api="dsr"), why)
        links[part.subject_request_id] = status.results_url
    return links


def _delivered(flow: Flow, folder: Folder, file_stem: str) -> Result | None:
    """The completed result for the files an earlier call delivered for this very request, if all are intact."""
    files = vouched(flow, folder, file_stem)
    summary_file = next((f for f in files or [] if f.record.name == file_stem + WRITTEN["json"][0]), None)
    if files is None or summary_file is None:
        return None
    try:
        summary: Any = json.loads(folder.read(summary_file.record.name, summary_file.record.size) or b"null")
        results, downloaded_at = summary["results"], summary["mparticle"]["downloaded_at"]
    except (MParticleError, ValueError, RecursionError, KeyError, TypeError):
        return None
    flow.note("results", "already delivered by an earlier call for this request; returning those files")
    return _completed(flow, results, tuple(f.output(folder) for f in files), downloaded_at)


def _verification(flow: Flow) -> Verification:
    """Whether the export can be the whole subject: an access checks nothing afterwards (``not_applicable``),
    but known profiles the request could not reach make it ``unverified``."""
    return Verification.of(reach_reasons(flow.conn, flow.subject), checked=False)


def _completed(flow: Flow, results: dict[str, Any], files: tuple[OutputFile, ...], downloaded_at: str) -> Result:
    """The completed result: what mParticle returned, and whether it can be the whole subject."""
    verification = _verification(flow)
    return flow.result("completed", _message(results, verification), files=files, verification=verification,
                       summary={**results, "downloaded_at": downloaded_at})


def _message(results: dict[str, Any], verification: Verification) -> str:
    gaps = "; ".join(r.message for r in verification.reasons)
    if not results.get("data_found"):
        if gaps:
            return ("mParticle completed the access request and returned no data for these identifiers, which is "
                    f"not proof that it holds none: {gaps}")
        return "mParticle completed the access request and holds no data for this subject"
    found = (f"mParticle returned data for {results.get('profiles_found', 0)} profile(s) with "
             f"{results.get('event_batches', 0)} event batch(es)")
    return f"{found}; it may not be all of the subject's data: {gaps}" if gaps else found


def _fetch(flow: Flow, part: Part, url: str, into: Staged) -> _Fetched:
    """Download and read one request's results (404: mParticle holds no data for it)."""
    conn = flow.conn
    try:
        download = conn.dsr.download(url, into, conn.settings.download.max_bytes)
    except NotFoundError:
        flow.note("download results", "HTTP 404: mParticle holds no data for these identities",
                  subject_request_id=part.subject_request_id)
        return _Fetched(part, into, None, dict(NO_DATA))
    except GoneError as exc:
        raise GoneError("mParticle completed the access request, but its results link has expired (mParticle "
                        "keeps results for 7 days after completion): submit a new access request under a new "
                        "request id (this one's results are gone; the same id finds the same expired link)",
                        api="dsr", status=exc.status) from None
    except OSError as exc:  # writing the file (the transport translates every network error)
        raise file_error(exc, f"write the results in {into.folder.path}") from None
    flow.note("download results", "HTTP 200", subject_request_id=part.subject_request_id,
              size_bytes=download.size_bytes, sha256=download.sha256)
    deadline = current()
    with into.reader() as source:
        results = summarise(source, MAX_EXPANSION * download.size_bytes + 1_000_000,
                            check=deadline.check if deadline else lambda: None,
                            holds_secret=conn.redactor.holds_part)
    # What the summaries quote comes from the server: make every string safe to show a person (the summaries are
    # read in terminals and editors), then cut out any fragment of a credential: in this order, so that the
    # escapes for_people writes are looked at too (the files written are checked once more, as written).
    return _Fetched(part, into, download,
                    redact_strings(results, lambda text: conn.redactor.scrub(for_people(text))))


def _download_and_write(flow: Flow, links: dict[str, str], folder: Folder, file_stem: str, keep: bool) -> Result:
    assert flow.state is not None
    staged: list[Staged] = []
    flow.doing = "downloading its results"
    try:
        fetched = []
        for part in flow.state.parts:
            staged.append(folder.stage(_archive_name(file_stem, part)))
            fetched.append(_fetch(flow, part, links[part.subject_request_id], staged[-1]))
        results = merge([f.results for f in fetched])
        downloaded_at = format_time(utcnow())
        summary = _summary_document(flow, fetched, file_stem, results, downloaded_at)
        receipt = document(flow.request.request_id, flow.request_type, flow.regulation,
                           [p.receipt for p in flow.state.parts if p.receipt])
        files = _write(flow, folder, file_stem, summary, receipt, fetched, staged) if keep else ()
    except RetryLaterError:
        raise  # not a verdict: the request stays pending (Flow.run)
    except MParticleError as exc:
        return _refused(flow, exc)
    finally:
        for item in staged:
            item.discard()
    return _completed(flow, results, files, downloaded_at)


def _refused(flow: Flow, exc: MParticleError) -> Result:
    """The result when the results could not be taken: mParticle's own verdicts (404 handled before, 410) end the
    request; anything else (an archive the connector refused, where the link points, its size, credentials, the
    output folder) does not: mParticle completed the request."""
    flow.note("download results", f"refused: {type(exc).__name__}")
    if isinstance(exc, GoneError):
        return flow.failed(exc)
    if isinstance(exc, ArchiveProblem) or (isinstance(exc, UnsafeResponseError) and exc.status in (404, 410)):
        # Only what the link gave this time could not be used (an archive refused, a 404 or a 410 that is not
        # mParticle's own answer: a garbled body, a proxy's page): it is downloaded again at the next check (the
        # link lasts 7 days; then mParticle's own 410 is final).
        why = f"its results could not be used ({exc.message})"
        return flow.retry_soon(RetryLaterError(why, api="dsr"), why)
    return flow.needs_person(exc)


def _summary_document(flow: Flow, fetched: list[_Fetched], file_stem: str, results: dict[str, Any],
                      downloaded_at: str) -> dict[str, Any]:
    """The ``-summary.json`` document: the host request, mParticle's requests and files, and the results."""
    request = flow.request
    return {
        "request": {"request_id": request.request_id, "type": request.type,
                    "regulation": flow.regulation, "identities": masked_identities(request.identities),
                    "submitted_at": format_time(request.submitted_at)},
        "mparticle": {"regulation": flow.regulation, "downloaded_at": downloaded_at, "requests": [
            {"subject_request_id": f.part.subject_request_id, "label": f.part.label,
             "file": f.staged.name if f.download else None,
             "results_size_bytes": f.download.size_bytes if f.download else None,
             "results_sha256": f.download.sha256 if f.download else None,
             "acknowledgement_verified": f.part.receipt["verified"] if f.part.receipt else None}
            for f in fetched]},
        "results": results,
        "verification": _verification(flow).to_dict(),
    }


def _write(flow: Flow, folder: Folder, file_stem: str, summary: dict[str, Any], receipt: bytes,
           fetched: list[_Fetched], staged: list[Staged]) -> tuple[OutputFile, ...]:
    """Write both summaries and the receipt under temporary names, rename every file into place, then seal
    the delivery record that vouches for them (until then, nothing in the folder is vouched for)."""
    flow.doing = f"writing its results into {folder.path}"
    redactor = flow.conn.redactor  # a leak is what the server sent, not a verdict on the request (see _refused)
    texts = {"json": checked_bytes(redactor, (json.dumps(summary, indent=2, sort_keys=True) + "\n").encode(),
                                   "the summary"),
             "txt": checked_bytes(redactor, summary_text(summary).encode(), "the readable summary"),
             "receipt": checked_bytes(redactor, receipt, "the receipt")}
    kinds: list[tuple[Staged, str, str]] = [(f.staged, "application/zip", ARCHIVE_DESCRIPTION)
                                            for f in fetched if f.download is not None]
    for key, (suffix, media_type, description) in WRITTEN.items():
        staged.append(folder.stage(file_stem + suffix))
        staged[-1].write(texts[key])
        kinds.append((staged[-1], media_type, description))
    unseal(folder, file_stem)
    return seal(flow, folder, file_stem, [Delivered(item.commit(), media_type, description)
                                          for item, media_type, description in kinds])


