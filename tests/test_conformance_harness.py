"""The conformance harness trusts the honest example connector and refuses every broken copy of it, naming the defect.

The connectors live in ``examples/acme`` (honest) and ``tests/conformance/defects.py`` (one defect each). A run is
``pytest --dsr-conformance=NAME`` exactly as a host types it, run in this process (pytester); the connectors are
found through entry points, as if installed. Every broken copy is run through the check that must name its defect
(fast, in the default suite); the whole harness on every copy is the ``slow`` matrix.
"""

from __future__ import annotations

import secrets
import socket
import sys
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from dsr_framework.conformance import (
    egress,  # imported here, so the inner runs share its one audit hook
    run_conformance,
)
from dsr_framework.redact import Redactor
from tests.conformance.defects import ALL, HONEST, Defect, write_all

pytest_plugins = ["pytester"]
Run = Callable[..., tuple[pytest.RunResult, dict[str, tuple[str, str]], str]]
assert egress.install is not None


@pytest.fixture(scope="module")
def connectors_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("connectors")
    write_all(root)
    return root


@pytest.fixture
def keys(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The secrets the example target will draw (it asks ``secrets.token_urlsafe``), so tests can look for them."""
    drawn: list[str] = []
    real = secrets.token_urlsafe

    def token_urlsafe(nbytes: int | None = None) -> str:
        drawn.append(real(nbytes))
        return drawn[-1]

    monkeypatch.setattr(secrets, "token_urlsafe", token_urlsafe)
    return drawn


@pytest.fixture
def audit_first(monkeypatch: pytest.MonkeyPatch) -> None:
    """The suite's own network guard (conftest) refuses non-loopback traffic before CPython raises its audit
    event. Announce the event first, as CPython's own socket functions do, so the harness's guard sees it; the
    suite's guard still stands behind it, so nothing can leave the machine."""
    guarded_lookup, guarded_connect, guarded_connect_ex = socket.getaddrinfo, socket.socket.connect, \
        socket.socket.connect_ex

    def getaddrinfo(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        sys.audit("socket.getaddrinfo", host, port, 0, 0, 0)
        return guarded_lookup(host, port, *args, **kwargs)

    def connect(self: socket.socket, address: Any) -> None:
        sys.audit("socket.connect", self, address)
        return guarded_connect(self, address)

    def connect_ex(self: socket.socket, address: Any) -> int:
        sys.audit("socket.connect", self, address)
        return guarded_connect_ex(self, address)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    monkeypatch.setattr(socket.socket, "connect", connect)
    monkeypatch.setattr(socket.socket, "connect_ex", connect_ex)


@pytest.fixture
def harness(pytester: pytest.Pytester, connectors_dir: Path, audit_first: None) -> Run:
    """``pytest ARGS`` with the example connectors installed: the run, each check's (outcome, message), the junit
    report."""
    pytester.syspathinsert(connectors_dir)

    def run(*args: str) -> tuple[pytest.RunResult, dict[str, tuple[str, str]], str]:
        report = pytester.path / "report.xml"
        # -rA and junit_logging=all: every captured section of every check, passed or not, where a leak would show
        result = pytester.runpytest_inprocess(*args, "-p", "no:cacheprovider", "-p", "no:hypothesispytest", "-rA",
                                             "-o", "junit_logging=all",
                                             f"--junitxml={report}")
        return result, _outcomes(report), report.read_text()

    return run


def _outcomes(report: Path) -> dict[str, tuple[str, str]]:
    """'connector::check' -> (passed/failure/error/skipped, message) from pytest's own junit report."""
    found: dict[str, tuple[str, str]] = {}
    for case in ET.parse(report).getroot().iter("testcase"):  # noqa: S314 - pytest's own report, just written
        outcome, message = "passed", ""
        for kind in ("failure", "error", "skipped"):
            node = case.find(kind)
            if node is not None:
                outcome, message = kind, (node.get("message") or "") + "\n" + (node.text or "")
        found[f"{case.get('classname', '').rsplit('.', 1)[-1]}::{case.get('name')}"] = (outcome, message)
    return found


def _leaks(text: str, keys: list[str]) -> bool:
    return Redactor(keys).leaks(text)


def test_the_honest_example_passes_every_check_and_the_run_exits_0(harness: Run, keys: list[str]) -> None:
    result, outcomes, _ = harness(f"--dsr-conformance={HONEST}")
    assert result.ret == 0, result.stdout.str()[-3000:]
    passed = [name for name, (outcome, _) in outcomes.items() if outcome == "passed"]
    skipped = {name: why for name, (outcome, why) in outcomes.items() if outcome == "skipped"}
    assert len(passed) >= 41 and len(passed) + len(skipped) == len(outcomes), outcomes
    # the target's own regulation (every other check sends it), and the optional handle_cancel it does not declare
    assert sorted(skipped) == sorted([f"{HONEST}::regulation_served[gdpr]", f"{HONEST}::cancel_is_honest",
                                      f"{HONEST}::host_survives_raise[handle_cancel]"]), skipped
    assert "optional" in skipped[f"{HONEST}::cancel_is_honest"]
    text = result.stdout.str()
    assert "DSR conformance verdict" in text and f"{HONEST}: TRUSTED ({len(passed)} pass, 3 skip)" in text
    for check in ("others_left_untouched[deletion]", "repeat_and_resume_in_fresh_process", "oracle_answers_consistent",
                  "concurrent_requests_kept_apart", "declared_rate_limits_kept", "host_process_left_as_found"):
        assert f"{check}  " in text


@pytest.fixture
def installed(connectors_dir: Path, monkeypatch: pytest.MonkeyPatch, audit_first: None) -> Iterator[None]:
    """The broken copies importable in this process (and in the fresh processes the harness starts); each copy's
    modules are forgotten afterwards, so the next run imports (and watches) its own."""
    monkeypatch.syspath_prepend(str(connectors_dir))
    before = set(sys.modules)
    yield
    for name in set(sys.modules) - before:
        if name.split(".")[0] in {d.name for d in ALL} | {HONEST}:
            del sys.modules[name]


@pytest.mark.parametrize("defect", ALL, ids=[d.name for d in ALL])
def test_each_broken_connector_fails_the_check_that_names_its_defect(
    installed: None, keys: list[str], defect: Defect,
) -> None:
    verdict = run_conformance(defect.name, checks=[defect.caught_by.split("[")[0]])
    rows = {row.check: row for row in verdict.rows}
    row = rows[defect.caught_by]
    expected = "fail" if defect.registers_target and "no_oracle" not in defect.name else "missing"
    assert (row.outcome, defect.message in row.reason) == (expected, True), (defect.defect, row)
    assert not verdict.ok and f"{defect.name}: NOT TRUSTED" in verdict.table()
    assert not _leaks(verdict.table(200) + "".join(r.reason for r in verdict.rows), keys)


@pytest.mark.slow
@pytest.mark.parametrize("defect", ALL, ids=[d.name for d in ALL])
def test_each_broken_connector_fails_the_run_with_a_message_naming_its_defect(
    harness: Run, keys: list[str], defect: Defect,
) -> None:
    result, outcomes, report = harness(f"--dsr-conformance={defect.name}")
    text = result.stdout.str() + result.stderr.str()
    assert result.ret != 0, f"{defect.name} ({defect.defect}) was trusted:\n{text[-3000:]}"
    key = f"{defect.name}::{defect.caught_by}"
    assert key in outcomes, sorted(outcomes)[:5]
    outcome, message = outcomes[key]
    assert outcome == "failure" and defect.message in message, (defect.defect, outcome, message)
    assert f"{defect.name}: NOT TRUSTED" in text
    assert defect.registers_target == bool(keys)  # the target drew its keys (and the test knows them)
    assert not _leaks(text + report, keys), "a secret reached pytest's output or its junit report"


def test_missing_pieces_can_be_accepted_explicitly(harness: Run) -> None:
    result, outcomes, _ = harness("--dsr-conformance=no_oracle", "--dsr-conformance-allow-skips")
    assert result.ret == 0
    outcome, message = outcomes["no_oracle::deletion_removes_subject"]
    assert outcome == "skipped" and "has no oracle" in message
    assert "no_oracle: TRUSTED" in result.stdout.str()


def test_a_broken_connector_does_not_stop_the_others_in_the_same_run(harness: Run) -> None:
    result, outcomes, _ = harness(f"--dsr-conformance=dangling_ref,{HONEST}")
    assert result.ret != 0
    assert all(o in ("passed", "skipped") for k, (o, _) in outcomes.items() if k.startswith(f"{HONEST}::"))
    assert outcomes["dangling_ref::host_loads_target_configs"][0] == "failure"
    text = result.stdout.str()
    assert f"{HONEST}: TRUSTED" in text and "dangling_ref: NOT TRUSTED" in text


def test_an_unknown_connector_name_fails_the_run(harness: Run) -> None:
    result, outcomes, _ = harness("--dsr-conformance=no_such_connector")
    assert result.ret != 0
    assert "no connector 'no_such_connector'" in outcomes["no_such_connector::manifest_is_valid"][1]


def test_authors_can_run_the_checks_from_their_own_tests(
    pytester: pytest.Pytester, connectors_dir: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.syspath_prepend(str(connectors_dir))
    pytester.makepyfile(test_mine="""
        def test_acme_conforms(dsr_conformance):
            verdict = dsr_conformance("acme")
            assert verdict.ok, verdict.table()
            assert "acme: TRUSTED" in verdict.table()

        def test_a_broken_copy_does_not(dsr_conformance):
            verdict = dsr_conformance("deletes_nothing", checks=["deletion_removes_subject", "opt_out_recorded"])
            assert not verdict.ok
            assert [(r.check, r.outcome) for r in verdict.rows] == [
                ("deletion_removes_subject", "fail"), ("opt_out_recorded", "pass")]
        """)
    result = pytester.runpytest_inprocess("-p", "no:cacheprovider", "-p", "no:hypothesispytest")
    result.assert_outcomes(passed=2)


@pytest.mark.parametrize("name", ["secret_prefix_in_log", "secret_encoded_in_log", "email_in_logs"])
def test_live_log_output_is_redacted_too(harness: Run, keys: list[str], name: str) -> None:
    result, outcomes, report = harness(f"--dsr-conformance={name}", "--log-cli-level=DEBUG")
    text = result.stdout.str() + result.stderr.str()
    assert result.ret != 0 and outcomes[f"{name}::no_secret_or_email_in_output"][0] == "failure"
    assert "live log" in text  # the records were shown as they happened...
    assert not _leaks(text + report, keys)  # ...with no secret in them
    assert "pat.doe@example.com" not in text + report
