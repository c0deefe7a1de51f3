"""Portability: an access request submitted to mParticle as ``portability``, whose export a person can take away.

mParticle processes access and portability the same way and answers both with a zip of JSON Lines
(``developers/dsr-api/v3``: ``subject_request_type`` is ``access``, ``portability`` or ``erasure``;
``guides/data-subject-requests``, "Access / Portability Response Format"). The access flow downloads, checks and
keeps that zip as mParticle sent it (:mod:`connector_mparticle.flows.access`); this adds, next to it, the same data
normalised (:mod:`connector_mparticle.api.portable`):

* ``…-portable.json``: every table in one document (the exact values);
* ``…-identities.csv``, ``…-attributes.csv``, ``…-consent.csv``, ``…-audiences.csv``, ``…-events.csv``: one table
  each, UTF-8 with a header row, each cell as :func:`dsr_framework.text.spreadsheet_cell` makes it safe to open.

They are written from the delivered archives only after each one's SHA-256 matches what was delivered, under
temporary names renamed into place (:mod:`connector_mparticle.files`), and again on any later call (they are a
function of the archives). Without an output folder nothing is written, as for access.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
from collections.abc import Iterator
from dataclasses import replace
from typing import IO, Any

from connector_mparticle.api.opendsr import DsrStatus
from connector_mparticle.api.portable import EVENT_COLUMNS, TABLES, Tables, event_rows
from connector_mparticle.api.results import ArchiveProblem, Line, lines
from connector_mparticle.errors import MParticleError, RetryLaterError
from connector_mparticle.files import Folder, Staged, file_error, stem
from connector_mparticle.flows.access import KIND, MAX_EXPANSION, finish_access
from connector_mparticle.flows.common import Flow
from connector_mparticle.http.deadline import current
from dsr_framework.models import OutputFile, Result
from dsr_framework.text import spreadsheet_cell

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
        return flow.failed(exc)
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
    """Write the JSON document and the five tables; each file appears whole or not at all."""
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
    """Fill the staged files: the small tables at once, then the events streamed from the archives again."""
    counts = {name: len(tables.table(name)) for name in TABLES}
    head = {"format": FORMAT, "version": 1, "request_id": flow.request.request_id, "request_type": flow.request.type,
            "archives": [{"file": _name(a.path), "sha256": a.sha256} for a in archives],
            **{name: tables.table(name) for name in TABLES}, "rows_not_kept": tables.left_out}
    with staged["json"].open() as document, staged["events"].open() as events:
        document.write(json.dumps(head, ensure_ascii=False, indent=1)[:-2].encode() + b',\n "events": [')
        events.write(_csv_row(EVENT_COLUMNS, {c: c for c in EVENT_COLUMNS}))
        counts["events"] = 0
        for row in _events(flow, folder, archives):
            document.write((",\n  " if counts["events"] else "\n  ").encode()
                           + json.dumps(row, ensure_ascii=False).encode())
            events.write(_csv_row(EVENT_COLUMNS, row))
            counts["events"] += 1
        document.write(b"\n ]\n}\n")
    for name, columns in TABLES.items():
        with staged[name].open() as table:
            table.write(_csv_row(columns, {c: c for c in columns}))
            for row in tables.table(name):
                table.write(_csv_row(columns, row))
    return counts


def _events(flow: Flow, folder: Folder, archives: list[OutputFile]) -> Iterator[dict[str, Any]]:
    """Every event of every delivered archive, in order, as a row."""
    for archive in archives:
        for line in _verified_lines(flow, folder, archive):
            if line.kind == "batch":
                yield from event_rows(line.data, line.entry)


def _committed(folder: Folder, item: Staged, key: str) -> OutputFile:
    record = item.commit()
    media_type, description = (JSON_FILE[1], JSON_FILE[2]) if key == "json" else (
        "text/csv", f"your {key} as a table (CSV, UTF-8; the exact values are in the JSON)")
    return OutputFile(str(folder.path_of(record.name)), media_type, record.size, record.sha256, description)
