"""A backlog's requests, read from a CSV or JSON Lines file, with every problem found at once.

**CSV**: a header row, then one request per row. The columns ``request_id`` and ``type`` are required;
``regulation``, ``submitted_at``, ``due_at`` and ``output_dir`` are optional; every other column is an
identifier category (``email``, ``customer_id``, ``phone``, ``push_token``…), and an empty cell means the
request has no identifier of that category::

    request_id,type,regulation,due_at,email,customer_id
    T-1001,deletion,gdpr,2025-07-01T00:00:00Z,jane@example.com,C-1042
    T-1002,opt_out,ccpa,,sam@example.com,

**JSON Lines** (``.jsonl``): one request per line in the form of ``request.schema.json``; ``regulation``,
``submitted_at`` and ``output_dir`` may be left out there too.

What is left out comes from :class:`Defaults` (the configured regulation, the time the file is read, the
backlog's own folder for result files). Problems name the line and the field, never an identifier's value.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from dsr_framework.files import FileError, read_trusted
from dsr_framework.models import DsrRequest, format_time, parse_time, utcnow
from dsr_framework.text import lines, say
from dsr_framework.validation import SchemaViolation, framework_schema

__all__ = ["CSV_FIELDS", "Defaults", "InputError", "read_requests", "requests_from"]

#: CSV columns that are not identifier categories.
CSV_FIELDS = ("request_id", "type", "regulation", "submitted_at", "due_at", "output_dir")
_CATEGORY = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
MAX_SHOWN = 20  #: problems listed in full; the rest are counted
#: The largest backlog file read (about a million requests of a few identifiers each).
MAX_FILE_BYTES = 256 * 1024 * 1024
FORMATS = {".csv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl"}
_FIELDS = frozenset(framework_schema("request")["properties"])

Numbered = tuple[int, Mapping[str, Any] | str]  #: (line, the request's JSON form or the problem with that line)


@dataclass(frozen=True)
class Defaults:
    """What a request that leaves a field out gets."""

    regulation: str = "gdpr"
    output_dir: str | None = None
    submitted_at: datetime = field(default_factory=utcnow)

    def fill(self, document: Mapping[str, Any]) -> dict[str, Any]:
        filled = {k: v for k, v in document.items() if v not in ("", None)}
        filled.setdefault("regulation", self.regulation)
        filled.setdefault("submitted_at", format_time(self.submitted_at))
        if self.output_dir is not None:
            filled.setdefault("output_dir", self.output_dir)
        return filled


class InputError(ValueError):
    """The file cannot become a backlog; ``problems`` lists every reason (``line N: …``)."""

    def __init__(self, source: str, problems: list[str]) -> None:
        self.source = source
        self.problems = problems
        more = [say("  … and {} more", len(problems) - MAX_SHOWN)] if len(problems) > MAX_SHOWN else []
        #: the message for people: one line per problem, each value in it escaped (:func:`~dsr_framework.text.say`)
        self.shown = lines(say("{}: {} problem{}:", source, len(problems), "s" * (len(problems) != 1)),
                           *(say("  {}", p) for p in problems[:MAX_SHOWN]), *more)
        super().__init__(self.shown)


def read_requests(path: Path, defaults: Defaults | None = None) -> list[DsrRequest]:
    """The requests in ``path`` (``.csv`` or ``.jsonl``); :class:`InputError` with every problem otherwise."""
    kind = FORMATS.get(path.suffix.lower())
    if kind is None:
        raise InputError(str(path), [f"unknown format {path.suffix or '(no suffix)'!r}: name the file .csv or .jsonl"])
    try:  # it says whose data is erased: refused, as a configuration is, when another user could change it
        data = read_trusted(path, MAX_FILE_BYTES, "backlog")
        text = data.decode("utf-8-sig")  # a spreadsheet's byte-order mark is not part of the header
    except FileError as exc:
        raise InputError(str(path), [str(exc)]) from None
    except UnicodeDecodeError as exc:
        raise InputError(str(path), [f"cannot be read: {exc.reason} at byte {exc.start} (not UTF-8)"]) from None
    documents = _csv_documents(text) if kind == "csv" else _jsonl_documents(text)
    return requests_from(documents, defaults or Defaults(), str(path))


def requests_from(documents: Iterable[Numbered], defaults: Defaults, source: str) -> list[DsrRequest]:
    """Build and check every request; duplicate request ids are problems too."""
    requests: list[DsrRequest] = []
    problems: list[str] = []
    first_line: dict[str, int] = {}
    for line, document in documents:
        built = _build(line, document, defaults, first_line)
        if isinstance(built, DsrRequest):
            requests.append(built)
        else:
            problems += [f"line {line}: {problem}" for problem in built]
    if not requests and not problems:
        problems.append("holds no requests")
    if problems:
        raise InputError(source, problems)
    return requests


def _build(line: int, document: Mapping[str, Any] | str, defaults: Defaults,
           first_line: dict[str, int]) -> DsrRequest | list[str]:
    """The request on ``line``, or its problems (a repeated request id among them)."""
    if isinstance(document, str):
        return [document]
    request_id = document.get("request_id")
    if isinstance(request_id, str):
        if request_id in first_line:
            return [f"request id {request_id} is also on line {first_line[request_id]}"]
        first_line[request_id] = line
    try:
        return _request(defaults.fill(document))
    except SchemaViolation as exc:
        return [str(p) for p in exc.problems]
    except ValueError as exc:  # a timestamp that matches the pattern but is no date
        return [f"a timestamp is not a real date ({exc})"]


def _request(document: Mapping[str, Any]) -> DsrRequest:
    """The request, checked against the schema once (by its constructor) rather than twice (``from_dict`` checks
    the document, then the constructor the request): 100,000 lines read in half the time. A document that cannot
    even be built is checked as it is, for every problem with its path."""
    try:
        if set(document) - _FIELDS:
            raise KeyError("a field the schema does not know")
        due = document.get("due_at")
        return DsrRequest(document["request_id"], document["type"], document["regulation"],
                          dict(document["identities"]), parse_time(document["submitted_at"]),
                          document.get("output_dir"), parse_time(due) if due else None)
    except (KeyError, TypeError, ValueError, AttributeError):  # SchemaViolation too: report the document's paths
        return DsrRequest.from_dict(document)


def _csv_documents(text: str) -> Iterator[Numbered]:
    reader = csv.reader(io.StringIO(text, newline=""))
    header = _next_row(reader)
    if header is None:
        return
    if isinstance(header, str):
        yield 1, header
        return
    names = [name.strip() for name in header]
    problem = _header_problem(names)
    if problem is not None:
        yield 1, problem
        return
    while (row := _next_row(reader)) is not None:
        if isinstance(row, str):  # one unreadable row is that line's problem; the reader goes on past it
            yield reader.line_num, row
        elif any(cell.strip() for cell in row):  # blank lines between requests are skipped
            yield reader.line_num, _csv_row(names, row)


def _next_row(reader: Any) -> list[str] | str | None:
    """The next row, the problem with it (a cell over the csv module's 128 KB field limit, say), or None at
    the end."""
    try:
        return next(reader)  # type: ignore[no-any-return]
    except StopIteration:
        return None
    except csv.Error as exc:
        return f"cannot be read as CSV ({exc})"


def _csv_row(names: list[str], row: list[str]) -> dict[str, Any] | str:
    if len(row) != len(names):
        return f"has {len(row)} cells, the header has {len(names)}"
    return _csv_request(dict(zip(names, row, strict=True)))


def _header_problem(names: list[str]) -> str | None:
    bad = [name for name in names if name not in CSV_FIELDS and not _CATEGORY.match(name)]
    if bad:
        return (f"the header has column(s) {', '.join(repr(b) for b in bad)}: besides {', '.join(CSV_FIELDS)}, "
                "columns are identifier categories in lower case (email, customer_id, phone, push_token, …)")
    twice = sorted({n for n in names if names.count(n) > 1})
    return f"the header names {', '.join(twice)} more than once" if twice else None


def _csv_request(cells: dict[str, str]) -> dict[str, Any]:
    document: dict[str, Any] = {name: cells[name] for name in CSV_FIELDS if name in cells}
    document["identities"] = {name: value for name, value in cells.items() if name not in CSV_FIELDS and value}
    return document


def _jsonl_documents(text: str) -> Iterator[Numbered]:
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            document = json.loads(line)
        except json.JSONDecodeError as exc:
            yield number, f"is not JSON ({exc.msg} at column {exc.colno})"
            continue
        except RecursionError:  # the parser nests as deep as the line does: it stops at the recursion limit
            yield number, "is nested too deeply to be a request"
            continue
        except ValueError:  # an integer of more digits than int() converts
            yield number, "holds a number too long to be read"
            continue
        yield number, document if isinstance(document, dict) else "is not a JSON object"
