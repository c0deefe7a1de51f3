"""Reading a backlog: CSV and JSON Lines become the requests that are sent, and every problem is named at once."""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from pathlib import Path

import pytest

from dsr_framework.batch import Defaults, InputError, read_requests
from tests.support.filesystem import IS_ROOT, OTHER_UID

DEFAULTS = Defaults(regulation="ccpa", output_dir="/srv/backlog/files",
                    submitted_at=datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC))


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_a_csv_row_becomes_the_request_with_its_identifiers_and_the_defaults(tmp_path: Path) -> None:
    path = write(tmp_path, "b.csv", "\ufeffrequest_id,type,due_at,email,customer_id,push_token\n"
                 "T-1,deletion,2025-07-01T00:00:00Z,jane@example.com,C-1,\n"
                 "\n"
                 "T-2,opt_out,,sam@example.com,,tok-9\n")
    first, second = read_requests(path, DEFAULTS)
    assert first.to_dict() == {
        "request_id": "T-1", "type": "deletion", "regulation": "ccpa", "submitted_at": "2025-01-02T03:04:05.000Z",
        "identities": {"email": "jane@example.com", "customer_id": "C-1"}, "output_dir": "/srv/backlog/files",
        "due_at": "2025-07-01T00:00:00.000Z"}
    assert second.identities == {"email": "sam@example.com", "push_token": "tok-9"} and second.due_at is None


def test_jsonl_lines_are_requests_in_the_contracts_form(tmp_path: Path) -> None:
    lines = [{"request_id": "J-1", "type": "access", "regulation": "gdpr", "identities": {"email": "a@example.com"},
              "submitted_at": "2024-12-01T10:00:00+01:00", "output_dir": "/elsewhere"},
             {"request_id": "J-2", "type": "opt_out", "identities": {"phone": "+1 800 555 1111"}, "due_at": None}]
    path = write(tmp_path, "b.jsonl", "\n".join(json.dumps(line) for line in lines) + "\n\n")
    one, two = read_requests(path, DEFAULTS)
    assert (one.regulation, one.output_dir, one.submitted_at) == ("gdpr", "/elsewhere",
                                                                  datetime(2024, 12, 1, 9, tzinfo=UTC))
    assert (two.regulation, two.output_dir) == ("ccpa", "/srv/backlog/files")


def test_every_problem_is_named_with_its_line_and_never_with_an_identifiers_value(tmp_path: Path) -> None:
    path = write(tmp_path, "b.csv", "request_id,type,email,phone\n"
                 "T-1,erasure,jane@example.com,\n"        # not a type
                 "T-2,deletion,not-an-email-secret,\n"    # bad email
                 "T-3,access,,\n"                         # no identifier
                 "T-4,access,ok@example.com\n"            # a cell short
                 "T-1,access,again@example.com,\n"        # a duplicate id
                 "T 5,access,x@example.com,\n")           # a bad id
    with pytest.raises(InputError) as caught:
        read_requests(path, DEFAULTS)
    problems = caught.value.problems
    lines = list(dict.fromkeys(p.split(":")[0] for p in problems))  # a line may break more than one rule
    assert lines == ["line 2", "line 3", "line 4", "line 5", "line 6", "line 7"]
    assert "access" in problems[0] and "deletion" in problems[0]
    assert "$.identities.email" in problems[1] and "not-an-email-secret" not in str(caught.value)
    assert "also on line 2" in problems[4]


@pytest.mark.parametrize(("name", "text", "expected"), [
    ("b.txt", "x", "name the file .csv or .jsonl"),
    ("b.csv", "", "holds no requests"),
    ("b.csv", "request_id,type,Email\n", "identifier categories in lower case"),
    ("b.csv", "request_id,type,email,email\n", "more than once"),
    ("b.jsonl", "{not json\n[1]\n", "is not JSON"),
    ("b.jsonl", '{"request_id": "J", "type": "access", "identities": {"email": "a@b.co"}, "typo": 1}\n',
     "Additional properties are not allowed here"),
    ("b.jsonl", '{"request_id": "J", "type": "access", "identities": {"email": 42}}\n',
     r"\$\.identities\.email: must be of type string"),
    ("b.jsonl", '{"request_id": "J", "type": "access", "identities": {"email": "a@b.co"}, "due_at": "2025-07-01"}\n',
     r"\$\.due_at: must match"),
])
def test_a_file_that_cannot_be_a_backlog_says_why(tmp_path: Path, name: str, text: str, expected: str) -> None:
    with pytest.raises(InputError, match=expected):
        read_requests(write(tmp_path, name, text), DEFAULTS)


def test_a_long_list_of_problems_is_cut_but_counted(tmp_path: Path) -> None:
    rows = "".join(f"T-{i},nope,a{i}@example.com\n" for i in range(30))
    with pytest.raises(InputError) as caught:
        read_requests(write(tmp_path, "b.csv", "request_id,type,email\n" + rows), DEFAULTS)
    assert len(caught.value.problems) == 30 and "… and 10 more" in str(caught.value)


def test_hostile_lines_are_each_a_problem_of_their_own_line_and_the_rest_is_still_read(tmp_path: Path) -> None:
    """A JSON Lines line nested 200,000 deep (the parser's recursion limit), a number of 5,000 digits and a CSV
    cell over the csv module's 128 KB field limit crashed the batch command (exit 1, a traceback); each is now
    a problem named with its line, and the lines after it are read as usual."""
    good = {"request_id": "J-9", "type": "opt_out", "identities": {"email": "a@example.com"}}
    path = write(tmp_path, "b.jsonl", "[" * 200_000 + "]" * 200_000 + "\n" + '{"n": ' + "9" * 5_000 + "}\n"
                 + json.dumps(good) + "\n" + json.dumps({**good, "request_id": 7}) + "\n")
    with pytest.raises(InputError) as caught:
        read_requests(path, DEFAULTS)
    problems = caught.value.problems
    assert problems[:2] == ["line 1: is nested too deeply to be a request",
                            "line 2: holds a number too long to be read"]
    assert {p.split(":")[0] for p in problems[2:]} == {"line 4"}  # line 3 was read: it is no problem

    path = write(tmp_path, "b.csv", "request_id,type,email\nT-1,deletion," + "a" * 200_000 + "@example.com\n"
                 "T-2,opt_out,sam@example.com\nT-3,deletion,\n")
    with pytest.raises(InputError) as caught:
        read_requests(path, DEFAULTS)
    assert caught.value.problems[0] == "line 2: cannot be read as CSV (field larger than field limit (131072))"
    assert [p.split(":")[0] for p in caught.value.problems] == ["line 2", "line 4"]


# -- the backlog file gives orders (whose data is erased): read only when nobody else could have written it --


def _backlog(folder: Path) -> Path:
    path = folder / "erasures.csv"
    path.write_text("request_id,type,email\nT-1,deletion,victim@example.com\n")
    return path


def test_a_backlog_another_user_could_have_written_is_refused(tmp_path: Path) -> None:
    """Before, a backlog that was a link to another user's world-writable file was read and its erasures sent
    with this user's credentials; now it is refused as a configuration file is (nothing is read from it)."""
    path = _backlog(tmp_path)
    path.chmod(0o666)
    with pytest.raises(InputError, match="can be changed by"):
        read_requests(path)
    if IS_ROOT:
        path.chmod(0o600)
        os.chown(path, OTHER_UID, -1)
        with pytest.raises(InputError, match="belongs to another user"):
            read_requests(path)


def test_a_backlog_that_is_a_fifo_is_refused_at_once(tmp_path: Path) -> None:
    fifo = tmp_path / "backlog.csv"
    os.mkfifo(fifo)
    with pytest.raises(InputError, match="not a regular file"):
        read_requests(fifo)  # before, this waited for ever for a writer


def test_the_users_own_backlog_is_read(tmp_path: Path) -> None:
    [request] = read_requests(_backlog(tmp_path))
    assert request.request_id == "T-1" and request.identities == {"email": "victim@example.com"}
