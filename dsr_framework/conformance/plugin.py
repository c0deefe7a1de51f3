"""The pytest plugin behind ``pytest --dsr-conformance=NAME[,NAME...]``.

Registered through the ``pytest11`` entry point, it only adds its options and the ``dsr_conformance`` fixture
until ``--dsr-conformance`` is given; then it installs the egress audit hook (before any connector is
imported), collects one item per check and connector instead of the project's own tests (unless paths are
passed explicitly), scrubs every report of configured secrets and emails, prints the verdict table, and fails
the run when a check could not run for lack of a target or oracle (unless ``--dsr-conformance-allow-skips``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Generator, Iterator
from pathlib import Path
from typing import Any

import pytest

from dsr_framework.conformance import egress, filewatch, threads
from dsr_framework.conformance.checks import CHECKS, Check, run_check
from dsr_framework.conformance.outcomes import CheckFailed, CheckSkipped, MissingPiece
from dsr_framework.conformance.runner import run_conformance
from dsr_framework.conformance.session import ConnectorUnderTest
from dsr_framework.conformance.verdict import Outcome, Row, Verdict
from dsr_framework.redact import RedactingFilter, Redactor

#: The file ``--dsr-conformance`` collects its checks from (a marker: the checks live in checks.py).
COLLECT_FROM = Path(__file__).with_name("conformance.txt")
_CONNECTORS = pytest.StashKey[dict[str, ConnectorUnderTest]]()
_VERDICT = pytest.StashKey[Verdict]()
_REDACTOR = pytest.StashKey[Redactor]()
_MISSING = "MISSING: "  #: how a check that lacked a target or oracle begins its failure message
_COULD_NOT_RUN = "the check could not run: "  #: an exception from the target, or a harness bug


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("dsr-conformance", "DSR connector conformance")
    group.addoption("--dsr-conformance", action="store", default=None, metavar="NAMES",
                    help="run the DSR connector conformance checks on these connectors (comma-separated)")
    group.addoption("--dsr-conformance-allow-skips", action="store_true", default=False,
                    help="accept checks that cannot run for lack of a conformance target or oracle (otherwise "
                         "they fail the run)")


def _names(config: pytest.Config) -> list[str]:
    return [n.strip() for n in (config.getoption("dsr_conformance") or "").split(",") if n.strip()]


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "dsr_conformance: a DSR connector conformance check")
    if not _names(config):
        return
    egress.install()  # before any connector is imported: import-time code is watched too
    threads.install()  # likewise: a thread started at import time is the connector's
    filewatch.install()  # before the first snapshot of the process's functions (it wraps os.open for good)
    config.stash[_CONNECTORS] = {}
    config.stash[_VERDICT] = Verdict(allow_skips=config.getoption("dsr_conformance_allow_skips"))
    config.stash[_REDACTOR] = Redactor()
    if config.args_source != pytest.Config.ArgsSource.ARGS:
        config.args[:] = [str(COLLECT_FROM)]


@pytest.hookimpl(trylast=True)
def pytest_sessionstart(session: pytest.Session) -> None:
    """Redact live log output (``--log-cli-level``, ``--log-file``): it is written before any report exists."""
    if _REDACTOR not in session.config.stash:
        return
    logging_plugin = session.config.pluginmanager.get_plugin("logging-plugin")
    for name in ("log_cli_handler", "log_file_handler"):
        handler = getattr(logging_plugin, name, None)
        if isinstance(handler, logging.Handler):
            handler.addFilter(RedactingFilter(session.config.stash[_REDACTOR]))


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> pytest.Collector | None:
    if _CONNECTORS in parent.config.stash and file_path == COLLECT_FROM:
        collector: pytest.Collector = ConformanceFile.from_parent(parent, path=file_path, nodeid="dsr-conformance")
        return collector
    return None


class ConformanceFile(pytest.File):
    """The checks, once per connector named on the command line."""

    def collect(self) -> Iterator[pytest.Item | pytest.Collector]:
        for name in _names(self.config):
            yield ConnectorChecks.from_parent(self, name=name)


class ConnectorChecks(pytest.Collector):
    """Every check of one connector, sharing one :class:`ConnectorUnderTest` (and its target)."""

    def collect(self) -> Iterator[pytest.Item | pytest.Collector]:
        for selected in CHECKS:
            for display, param in selected.ids():
                yield CheckItem.from_parent(self, name=display, check=selected, param=param)

    def under_test(self) -> ConnectorUnderTest:
        connectors = self.config.stash[_CONNECTORS]
        if self.name not in connectors:
            connectors[self.name] = ConnectorUnderTest(self.name, redactor=self.config.stash[_REDACTOR])
        return connectors[self.name]


class CheckItem(pytest.Item):
    """One check on one connector. Its failure report is the harness's message only: never a traceback, whose
    local variables could hold a secret."""

    def __init__(self, *, check: Check, param: str | None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.check = check
        self.param = param
        self.add_marker("dsr_conformance")

    @property
    def connector(self) -> ConnectorUnderTest:
        assert isinstance(self.parent, ConnectorChecks)
        return self.parent.under_test()

    def runtest(self) -> None:
        cut = self.connector
        try:
            run_check(cut, self.check, self.param)
        except CheckSkipped as exc:
            pytest.skip(self._clean(str(exc)))
        except MissingPiece as exc:
            if self.config.getoption("dsr_conformance_allow_skips"):
                pytest.skip(f"missing: {self._clean(str(exc))}")
            raise CheckFailed(f"{_MISSING}{exc}") from None

    def _clean(self, text: str) -> str:
        return self.connector.clean(text)

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException],
                     style: Any = None) -> str:
        if isinstance(excinfo.value, CheckFailed):
            return self._clean(str(excinfo.value))
        return self._clean(f"{_COULD_NOT_RUN}{excinfo.typename}: {excinfo.value}")

    def reportinfo(self) -> tuple[Path, int | None, str]:
        return self.path, None, f"{self.parent.name if self.parent else ''}: {self.name}"


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Generator[None, Any, Any]:
    report: pytest.TestReport = yield
    if isinstance(item, CheckItem):
        clean = item._clean
        report.sections = [(title, clean(content)) for title, content in report.sections]
        if isinstance(report.longrepr, str):
            report.longrepr = clean(report.longrepr)
        elif isinstance(report.longrepr, tuple):
            path, line, reason = report.longrepr
            report.longrepr = (path, line, clean(reason))
        _record(item, report)
    return report


def _row(item: CheckItem, report: pytest.TestReport) -> Row:
    outcome: Outcome = "pass"
    reason = ""
    if report.failed:
        text = str(report.longrepr) if report.longrepr else ""
        outcome = "missing" if text.startswith(_MISSING) else "fail"
        if report.when != "call" or text.startswith(_COULD_NOT_RUN):
            outcome = "error"
        reason = text.removeprefix(_MISSING)
    elif report.skipped:
        outcome = "skip"
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        reason = reason.removeprefix("Skipped: ")
    return Row(item.connector.name, item.name, outcome, reason)


def _record(item: pytest.Item, report: pytest.TestReport) -> None:
    counted = report.when == "call" or (report.when == "setup" and not report.passed)
    if isinstance(item, CheckItem) and _VERDICT in item.config.stash and counted:
        item.config.stash[_VERDICT].rows.append(_row(item, report))


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    if _VERDICT not in config.stash:
        return
    verdict = config.stash[_VERDICT]
    terminalreporter.section("DSR conformance verdict")
    terminalreporter.write(verdict.table(terminalreporter._tw.fullwidth))


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if _CONNECTORS not in session.config.stash:
        return
    for cut in session.config.stash[_CONNECTORS].values():
        cut.close()


@pytest.fixture
def dsr_conformance() -> Callable[..., Verdict]:
    """Run the conformance checks from your own tests: ``verdict = dsr_conformance("acme"); assert verdict.ok``."""
    return run_conformance
