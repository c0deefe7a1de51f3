"""Portability: an access request submitted to mParticle as ``portability``, whose export a person can take away.

mParticle processes access and portability the same way and answers both with a zip of JSON Lines
(``developers/dsr-api/v3``: ``subject_request_type`` is ``access``, ``portability`` or ``erasure``;
``guides/data-subject-requests``, "Access / Portability Response Format"). The access flow downloads, checks and
keeps that zip as mParticle sent it (:mod:`connector_mparticle.flows.access`); this adds, next to it, the same data
normalised (:mod:`connector_mparticle.api.portable`):

* ``…-portable.json``: the four small tables, then every batch whole (device, application, location, IP, ...) with
  each event's row and the whole event as mParticle wrote it (screen names, products, prices); rows a table could
  not keep (:data:`connector_mparticle.api.portable.MAX_ROWS`, ``MAX_BYTES``) are counted in ``rows_not_kept``;
* ``…-identities.csv``, ``…-attributes.csv``, ``…-consent.csv``, ``…-audiences.csv``, ``…-events.csv``: one table
  each, UTF-8 with a header row, each cell as :func:`dsr_framework.text.spreadsheet_cell` makes it safe to open.

Every file passes the redactor's check on its final bytes before it is renamed into place
(:mod:`connector_mparticle.flows.writing`): an archive line may carry a credential as ``\\u`` escapes that the JSON
decoding turns into plain text. A file that would carry one is not written and the request stays pending with
``action_required``, as does local trouble writing (mParticle completed the request). They are written from the
delivered archives only after each one's SHA-256 matches what was delivered, under
temporary names renamed into place (:mod:`connector_mparticle.files`), and again on any later call (they are a
function of the archives). Without an output folder nothing is written, as for access.
"""

from __future__ import annotations

import csv
import hashlib
import io
from collections.abc import Iterable, Iterator
from dataclasses import replace
from typing import IO, Any

from connector_mparticle.api.opendsr import DsrStatus
from connector_mparticle.api.portable import EVENT_COLUMNS, TABLES, Tables, batch_context, event_rows
from connector_mparticle.api.results import ArchiveProblem, Line, lines
from connector_mparticle.errors import MParticleError, RetryLaterError
from connector_mparticle.files import Folder, Staged, file_error, stem
from connector_mparticle.flows.access import KIND, MAX_EXPANSION, finish_access
from connector_mparticle.flows.common import Flow
from connector_mparticle.flows.writing import CheckedStream
from connector_mparticle.http.deadline import current
from dsr_framework.models import OutputFile, Result
from dsr_framework.text import json_for_people, spreadsheet_cell

__all__ = ["finish_portability"]

FORMAT = "connector-mparticle portable export"
JSON_FILE = ("-portable.json", "application/json",
             "your data normalised: identities, attributes, consent, audiences and events (JSON)")
_CHUNK = 1 << 20


def finish_portability(flow: Flow, statuses: dict[str, DsrStatus]) -> Result:
    """The access result, with the normalised files added when it completed into an output folder."""
    result = finish_access(flow, statuses)
    if result.status != "completed" or not flow.request.output_dir:
        return result
    archives = [f for f in result.files if f.media_type == "application/zip"]
    try:
        with Folder.open(flow.request.output_dir) as folder:
            written, counts = _write_all(flow, folder, archives)
    except RetryLaterError as exc:
        return flow.retry_soon(exc)
    except MParticleError as exc:
        # mParticle completed the request and its archives are delivered: what went wrong here is local (the
        # folder, a file in the way) or a file that would carry a secret: a person looks, the request stays
        # pending and the files are written again at the next call (as the access writer does)
        flow.note("normalise results", f"refused: {type(exc).__name__}")
        return flow.needs_person(exc)
    flow.note("normalise results", f"wrote {len(written)} files", **counts)
    return replace(result, files=(*result.files, *written),
                   summary={**result.summary, "portable": {"format": FORMAT, "rows": counts}})


def _name(path: str) -> str:
    return path.rsplit("/", 1)[-1]


def _verified_lines(flow: Flow, folder: Folder, archive: OutputFile) -> Iterator[Line]:
    """The lines of one delivered archive, once its bytes are the ones delivered."""
    deadline = current()
    check = deadline.check if deadline else (lambda: None)
    for attempt in ("digest", "read"):
        handle = folder.reader(_name(archive.path))
        if handle is None:
            raise RetryLaterError(f"{archive.path} disappeared before it could be normalised", api="dsr")
        with handle:
            if attempt == "digest":
                if _sha256(handle, check) != archive.sha256:
                    raise RetryLaterError(f"{archive.path} changed before it could be normalised", api="dsr")
                continue
            # the delivered archive was judged whole for secrets before it was delivered (results.summarise)
            yield from lines(handle, MAX_EXPANSION * archive.size_bytes + 1_000_000, check)


def _sha256(handle: IO[bytes], check: Any) -> str:
    digest = hashlib.sha256()
    while chunk := handle.read(_CHUNK):
        digest.update(chunk)
        check()
    return digest.hexdigest()


def _tables(flow: Flow, folder: Folder, archives: list[OutputFile]) -> Tables:
    tables = Tables()
    for archive in archives:
        for line in _verified_lines(flow, folder, archive):
            tables.profile(line.data) if line.kind == "profile" else tables.batch(line.data, line.entry)
    return tables


def _csv_row(columns: tuple[str, ...], row: dict[str, Any]) -> bytes:
    out = io.StringIO()
    csv.writer(out, lineterminator="\r\n").writerow([spreadsheet_cell(row.get(c)) for c in columns])
    return out.getvalue().encode("utf-8")


def _write_all(flow: Flow, folder: Folder, archives: list[OutputFile]) -> tuple[list[OutputFile], dict[str, int]]:
    """Write the JSON document and the five tables; each file appears whole or not at all, and only once its
    bytes passed the redactor's check (:mod:`connector_mparticle.flows.writing`)."""
    file_stem = stem(KIND, flow.request.request_id, flow.who)
    try:
        tables = _tables(flow, folder, archives)
    except ArchiveProblem as exc:
        raise RetryLaterError(f"the delivered archive could not be normalised ({exc.message})", api="dsr") from None
    staged = {name: folder.stage(f"{file_stem}-{name}.csv") for name in (*TABLES, "events")}
    staged["json"] = folder.stage(file_stem + JSON_FILE[0])
    try:
        counts = _fill(flow, folder, archives, tables, staged)
        return [_committed(folder, item, key) for key, item in staged.items()], counts
    except OSError as exc:  # writing (a full disk is "try again later", as for the archive itself)
        raise file_error(exc, f"write in {folder.path}") from None
    finally:
        for item in staged.values():
            item.discard()


def _fill(flow: Flow, folder: Folder, archives: list[OutputFile], tables: Tables,
          staged: dict[str, Staged]) -> dict[str, int]:
    """Fill the staged files: the small tables, then the batches and their events streamed from the archives
    again (the JSON document keeps each batch and event whole)."""
    redactor = flow.conn.redactor
    counts = {name: tables.count(name) for name in TABLES}
    # rows a table could not keep (its row or byte bound) are said in the result too, never dropped silently
    counts.update({f"{name}_not_kept": left for name, left in tables.left_out.items() if left})
    head = {"format": FORMAT, "version": 1, "request_id": flow.request.request_id, "request_type": flow.request.type,
            "archives": [{"file": _name(a.path), "sha256": a.sha256} for a in archives],
            "rows_not_kept": tables.left_out}
    with CheckedStream(redactor, staged["json"], "the portable export") as document:
        document.write(json_for_people(head, indent=1)[:-2].encode())
        for name in TABLES:
            document.write(f',\n "{name}": ['.encode())
            _json_rows(document, tables.table(name))
            document.write(b"\n ]")
        document.write(b',\n "batches": [')
        counts["events"] = _batches(flow, folder, archives, document, staged["events"])
        document.write(b"\n ]\n}\n")
    for name, columns in TABLES.items():
        with CheckedStream(redactor, staged[name], f"the {name} table") as table:
            table.write(_csv_row(columns, {c: c for c in columns}))
            for row in tables.table(name):
                table.write(_csv_row(columns, row))
    return counts


def _json_rows(document: CheckedStream, rows: Iterable[dict[str, Any]]) -> int:
    count = 0
    for row in rows:
        document.write((",\n  " if count else "\n  ").encode() + json_for_people(row, indent=None).encode())
        count += 1
    return count


def _batches(flow: Flow, folder: Folder, archives: list[OutputFile], document: CheckedStream,
             events_file: Staged) -> int:
    """Each batch of every delivered archive, in order: into the document whole, its events into the table."""
    count = batches = 0
    with CheckedStream(flow.conn.redactor, events_file, "the events table") as events:
        events.write(_csv_row(EVENT_COLUMNS, {c: c for c in EVENT_COLUMNS}))
        for archive in archives:
            for line in _verified_lines(flow, folder, archive):
                if line.kind != "batch":
                    continue
                rows = list(event_rows(line.data, line.entry))
                entry = {"source": line.entry, "batch": batch_context(line.data)}
                document.write((",\n  " if batches else "\n  ").encode()
                               + json_for_people(entry, indent=None)[:-1].encode() + b', "events": [')
                _json_rows(document, rows)
                document.write(b"]}")
                for row in rows:
                    events.write(_csv_row(EVENT_COLUMNS, row))
                count, batches = count + len(rows), batches + 1
    return count


def _committed(folder: Folder, item: Staged, key: str) -> OutputFile:
    record = item.commit()
    media_type, description = (JSON_FILE[1], JSON_FILE[2]) if key == "json" else (
        "text/csv", f"your {key} as a table (CSV, UTF-8; fixed columns: everything else is in the JSON)")
    return OutputFile(str(folder.path_of(record.name)), media_type, record.size, record.sha256, description)
