"""Messages built from values can never gain a line or drive a terminal: each value is escaped before it is put
into its message (:func:`dsr_framework.text.say`), and a message built any other way is escaped whole
(:func:`~dsr_framework.text.shown`). Generated hostile values go through the template rule, the command line's
errors (its own and click's), configuration errors from a YAML key, the sandbox's banner and a backlog's reports.

Before, the command line built a message and then split it on ``\\n`` to escape each line, so a newline inside a
path, an option or a YAML key started a line of its own (``Error: FORGED``).
"""

from __future__ import annotations

import csv
import io
import json
import string
from datetime import UTC, datetime
from pathlib import Path

import click
import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from connector_mparticle.cli import main
from connector_mparticle.cli.exits import CliError, report
from dsr_framework import DsrRequest, Result
from dsr_framework.batch import Backlog
from dsr_framework.models import OutputFile
from dsr_framework.text import has_control, lines, say, shown
from tests.test_config_errors import BASE, ENV
from tests.test_text_for_people import HOSTILE

FORGED = "Error: FORGED"
#: Values that try to start a line of their own, with everything else hostile around them.
LINE_FORGERS = st.tuples(HOSTILE, st.sampled_from(["\n", "\r\n", "\r", "\u2028", "\x85", "\n\n"]), HOSTILE).map(
    lambda parts: f"{parts[0]}{parts[1]}{FORGED}{parts[2]}")
PROPERTY = settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
CLI = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def forged_lines(text: str) -> list[str]:
    return [line for line in text.split("\n") if line.lstrip().startswith(FORGED)]


def assert_fit_for_people(text: str, lines_expected: int | None = None) -> None:
    assert not has_control(text.replace("\n", "")), repr(text)
    assert forged_lines(text) == [], text
    if lines_expected is not None:
        assert text.count("\n") == lines_expected - 1, text


@PROPERTY
@given(template=st.lists(st.sampled_from(["{}", "text ", "\n", ": "]), max_size=10).map("".join),
       values=st.lists(st.one_of(LINE_FORGERS, HOSTILE), min_size=10, max_size=10))
def test_a_template_keeps_its_own_lines_whatever_the_values(template: str, values: list[str]) -> None:
    message = say(template, *values[:template.count("{}")])
    assert message.count("\n") == template.count("\n")
    assert_fit_for_people(message)
    assert shown(message) is message and lines(message, message).count("\n") == 2 * template.count("\n") + 1


@PROPERTY
@given(value=st.one_of(LINE_FORGERS, HOSTILE))
def test_a_message_not_built_by_the_rule_is_shown_on_one_line(value: str) -> None:
    assert_fit_for_people(shown(f"cannot use --state {value}: refused"), 1)


def printed(error: click.ClickException, as_json: bool = False) -> str:
    runner = CliRunner()

    @click.command()
    def show() -> None:
        report(error, as_json)

    return runner.invoke(show, []).output


@PROPERTY
@given(value=LINE_FORGERS, hint=st.one_of(LINE_FORGERS, HOSTILE))
def test_a_cli_error_prints_exactly_its_own_lines(value: str, hint: str) -> None:
    text = printed(CliError(f"cannot write the results to {value}", [hint]))
    assert_fit_for_people(text.rstrip("\n"), 2)
    assert text.startswith("Error: cannot write the results to ")
    document = json.loads(printed(CliError(value, [hint]), as_json=True))
    assert forged_lines(document["error"]["message"]) == []


@CLI
@given(option=LINE_FORGERS)
def test_clicks_own_usage_errors_cannot_gain_a_line_from_what_was_typed(option: str) -> None:
    done = CliRunner().invoke(main, ["check", "--config", "x.yaml", f"--x{option}"])
    assert done.exit_code == 2
    assert_fit_for_people(done.output)
    assert sum(line.startswith("Error: ") for line in done.output.split("\n")) == 1


@CLI
@given(path=LINE_FORGERS.map(lambda text: text.replace("/", "_").replace("\x00", "")[:120]))
def test_a_config_path_with_a_line_in_it_stays_on_its_line(tmp_path_factory: pytest.TempPathFactory,
                                                           path: str) -> None:
    folder = tmp_path_factory.mktemp("cfg")
    try:
        (folder / path).write_text("a: [\n")
    except (OSError, ValueError, UnicodeEncodeError):
        return  # not a name this file system takes
    for extra in ([], ["--json"]):
        done = CliRunner().invoke(main, ["check", "--config", str(folder / path), *extra])
        assert done.exit_code == 2
        assert_fit_for_people(done.output.rstrip("\n"))


@CLI
@given(key=LINE_FORGERS)
def test_a_yaml_key_cannot_forge_a_line_of_a_configuration_error(tmp_path_factory: pytest.TempPathFactory,
                                                                 monkeypatch: pytest.MonkeyPatch, key: str) -> None:
    for name, value in ENV.items():
        monkeypatch.setenv(name, value)
    folder = tmp_path_factory.mktemp("cfg")
    quoted = json.dumps(key)  # a YAML double-quoted key, escapes and all
    for body in (f"identities:\n  {quoted}: customer\n", f"opt_out:\n  {quoted}: \"${{oops\"\n"):
        (folder / "mp.yaml").write_text(BASE + body)
        for extra in ([], ["--json"]):
            done = CliRunner().invoke(main, ["check", "--config", str(folder / "mp.yaml"), *extra])
            assert done.exit_code == 2, done.output
            assert_fit_for_people(done.output.rstrip("\n"))


@CLI
@given(name=LINE_FORGERS.map(lambda t: "".join(c for c in t if c not in "/\x00")[:100]).filter(bool))
def test_the_sandbox_banner_names_a_hostile_config_file_on_its_own_lines(name: str) -> None:
    from connector_mparticle.sandbox.command_line import _show_files

    runner = CliRunner()

    @click.command()
    def show() -> None:
        _show_files("", "", Path(name))

    output = runner.invoke(show, []).output
    assert_fit_for_people(output)
    assert output.count("\n") == 5


DANGEROUS_STARTS = st.sampled_from(["=", "+", "-", "@", "=cmd|' /C calc'!A0", "+1+1", "@SUM(1)"])


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(message=st.tuples(DANGEROUS_STARTS, st.one_of(LINE_FORGERS, HOSTILE)).map("".join),
       output_dir=st.text(string.ascii_letters, min_size=1, max_size=5))
def test_every_cell_of_a_backlog_report_is_fit_for_people(tmp_path_factory: pytest.TempPathFactory,
                                                          message: str, output_dir: str) -> None:
    """t14 of the attack: an ``output_dir`` from the backlog file, and a connector's message, holding escapes, bidi
    overrides and line breaks were written raw into report.csv and report.json."""
    request_id = "R1"
    folder = tmp_path_factory.mktemp("backlog")
    request = DsrRequest(request_id, "deletion", "gdpr", {"email": "a@example.com"}, datetime.now(UTC),
                         output_dir=f"/tmp/{output_dir}\x1b]0;T\x07\n{FORGED}")
    with Backlog.open(folder) as backlog:
        backlog.add([request])
        (claim,) = backlog.store.claim(1, 0)
        result = Result(request_id, "deletion", "failed", message,
                        files=(OutputFile(f"{request.output_dir}/r.zip", "application/zip", 1, "0" * 64),))
        backlog.store.record(request_id, claim.token, result, "failed", None, False, 0)
        csv_path, json_path = backlog.write_reports()
    csv_text = csv_path.read_text()
    rows = list(csv.reader(io.StringIO(csv_text)))
    assert len(rows) == 2
    for cell in rows[1]:
        assert not has_control(cell) and not cell.startswith(("=", "+", "-", "@")), cell
    json_text = json_path.read_text()
    assert json_text.isascii() and forged_lines(json_text) == []
    assert not has_control(json_text.replace("\n", ""))
    line = json.loads(json_text)["requests"][0]
    assert not any(has_control(str(value)) for value in line.values())
