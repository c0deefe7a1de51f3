"""The parts of harness v3 on their own: the file watch, the host-process snapshot, the call guard, the observed
settings, personal data in its forms, rates, what a request may change, and a target refused when it starts."""

from __future__ import annotations

import copy
import io
import logging
import os
import socket
import sqlite3
import ssl
import tempfile
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from dsr_framework.conformance import ConformanceTarget, hoststate, threads
from dsr_framework.conformance.configwatch import ObservedConfig, declared_keys, undeclared_in
from dsr_framework.conformance.filewatch import FileWatch, WriteBlocked
from dsr_framework.conformance.guards import CallGuard
from dsr_framework.conformance.leaks import captured
from dsr_framework.conformance.people import Standing, foreign_values, harm
from dsr_framework.conformance.personal import PersonalData
from dsr_framework.conformance.rates import busiest, excess, too_fast
from dsr_framework.conformance.target import target_problems
from dsr_framework.manifest import RateLimit
from dsr_framework.models import DsrRequest
from dsr_framework.redact import Redactor

SECRET = "s3cr3t-Value-4242-xyz"


def _in_connector_thread(work: Any) -> None:
    """Run ``work`` in a thread the harness counts as the connector's, re-raising what it raised."""
    errors: list[BaseException] = []

    def run() -> None:
        try:
            work()
        except BaseException as exc:
            errors.append(exc)

    worker = threading.Thread(target=run)
    threads.adopt(worker)
    worker.start()
    worker.join()
    if errors:
        raise errors[0]


@pytest.fixture
def root() -> Iterator[Path]:
    with tempfile.TemporaryDirectory() as folder:
        yield Path(folder).resolve()


# -- the file watch -----------------------------------------------------------------------------------------------


def test_the_file_watch_blocks_a_connector_write_outside_the_output_directory_wherever_it_is(root: Path) -> None:
    out = root / "out"
    out.mkdir()
    watch = FileWatch()
    watch.allow([out])

    def work() -> None:
        (out / "export.json").write_text("{}")
        os.replace(out / "export.json", out / "final.json")
        for outside in (lambda: (root / "stray.json").write_text("x"), lambda: sqlite3.connect(str(root / "db")),
                        lambda: os.remove(root / "host-file"), lambda: tempfile.mkstemp(dir=root)):
            with pytest.raises(WriteBlocked):
                outside()
        started = threading.Thread(target=lambda: (out / "from-a-thread.json").write_text("{}"))
        started.start()  # a thread the connector starts is the connector's too
        started.join()

    with watch.active():
        (root / "the-harness-own.txt").write_text("not the connector's")
        _in_connector_thread(work)
    assert watch.problems() == [f"wrote {root / 'stray.json'}", f"opened a database at {root / 'db'}",
                                f"removed {root / 'host-file'}", f"created {watch.outside[-1].path}"]
    assert not (root / "stray.json").exists() and not (root / "db").exists()  # blocked, not only reported
    assert str(out / "final.json") in watch.written() and str(root / "the-harness-own.txt") not in watch.written()


def test_a_file_created_relative_to_an_open_folder_is_judged_by_that_folder_not_the_working_directory(
    root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out, elsewhere, cwd = root / "out", root / "elsewhere", root / "cwd"
    for folder in (out, elsewhere, cwd):
        folder.mkdir()
    monkeypatch.chdir(cwd)
    watch = FileWatch([str(out)])
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL

    def work() -> None:
        inside = os.open(out, os.O_RDONLY)
        outside = os.open(elsewhere, os.O_RDONLY)
        try:
            os.close(os.open("export.json", flags, 0o600, dir_fd=inside))  # the safe way: allowed
            os.unlink("export.json", dir_fd=inside)
            with pytest.raises(WriteBlocked, match="elsewhere"):
                os.open("stray.json", flags, 0o600, dir_fd=outside)
            with pytest.raises(WriteBlocked, match="cwd"):
                os.open("in-cwd.json", flags, 0o600)  # no dir_fd: relative to the working directory
        finally:
            os.close(inside)
            os.close(outside)

    with watch.active():
        _in_connector_thread(work)
    assert watch.problems() == [f"wrote {elsewhere / 'stray.json'}", f"wrote {cwd / 'in-cwd.json'}"]
    assert not (elsewhere / "stray.json").exists() and not list(cwd.iterdir())


def test_a_staging_copy_removed_a_moment_later_is_still_seen(root: Path) -> None:
    watch = FileWatch([str(root / "out")])

    def stage_then_remove() -> None:
        staging = Path(tempfile.gettempdir()) / "acme-staging.json"
        try:
            staging.write_text("plaintext personal data")
        finally:
            staging.unlink(missing_ok=True)

    with watch.active(), pytest.raises(WriteBlocked, match=r"acme-staging\.json"):
        _in_connector_thread(stage_then_remove)
    assert any(t.path.endswith("acme-staging.json") for t in watch.outside)


# -- the host process ---------------------------------------------------------------------------------------------


def test_a_snapshot_names_what_changed_in_the_host_process_without_values_and_puts_it_back(root: Path) -> None:
    before = hoststate.snapshot()
    cwd, timeout = os.getcwd(), socket.getdefaulttimeout()
    try:
        socket.setdefaulttimeout(5)
        os.environ["HTTPS_PROXY"] = f"http://user:{SECRET}@proxy.example:3128"
        os.chdir(root)
        logging.disable(logging.INFO)
        ssl._create_default_https_context = ssl._create_unverified_context  # type: ignore[assignment]  # the defect
        changes = before.changes()
    finally:
        before.restore()
    assert {"socket.getdefaulttimeout()", "the working directory (os.getcwd())", "logging.disable()",
            "the environment (HTTPS_PROXY)", "replaced ssl._create_default_https_context"} <= set(changes)
    assert SECRET not in " ".join(changes)
    assert os.getcwd() == cwd and socket.getdefaulttimeout() == timeout and "HTTPS_PROXY" not in os.environ
    assert ssl._create_default_https_context is ssl.create_default_context and logging.root.manager.disable == 0
    assert before.changes() == []


def test_the_call_guard_sees_the_settings_and_request_changed_and_threads_left_behind() -> None:
    config = {"api_key": SECRET, "nested": {"timeout": 1}}
    request = DsrRequest("r-1", "access", "gdpr", {"email": "pat@example.com"}, datetime.now(UTC))
    guard = CallGuard(config, request, first_with_config=False)
    stop = threading.Event()

    def hook() -> None:
        config["nested"]["timeout"] = 99  # type: ignore[index]
        request.identities["email"] = "PAT@EXAMPLE.COM"  # type: ignore[index]
        threading.Thread(target=stop.wait, name="left behind", daemon=True).start()

    worker = threading.Thread(target=hook)
    guard.adopt(worker)
    worker.start()
    worker.join()
    try:
        problems = guard.problems()
    finally:
        stop.set()
    assert problems[:2] == ["changed the settings it was handed (the host's own copy, shared by every call)",
                            "changed the request it was handed (its identities)"]
    assert problems[2].startswith("left 1 thread(s) running after it returned (left behind;")
    assert config == {"api_key": SECRET, "nested": {"timeout": 1}}  # put back


def test_the_first_call_with_a_configuration_may_start_a_long_lived_daemon_but_never_a_non_daemon_thread() -> None:
    stop = threading.Event()
    outcomes = []
    try:
        for daemon in (True, False):
            guard = CallGuard({}, None, first_with_config=True)
            worker = threading.Thread(target=lambda d=daemon: threading.Thread(target=stop.wait, daemon=d).start())
            guard.adopt(worker)
            worker.start()
            worker.join()
            outcomes.append(guard.problems())
    finally:
        stop.set()
    assert outcomes[0] == [] and "non-daemon" in outcomes[1][0]


# -- settings -----------------------------------------------------------------------------------------------------

SCHEMA = {"$schema": "https://json-schema.org/draft/2020-12/schema", "type": "object",
          "properties": {"api_key": {"type": "string"}, "auth": {"$ref": "#/$defs/auth"},
                         "limits": {"type": "object", "additionalProperties": {"type": "number"}}},
          "$defs": {"auth": {"oneOf": [{"type": "object", "properties": {"key": {"type": "string"}}},
                                       {"type": "object", "properties": {"token": {"type": "string"}}}]}}}


def test_observed_settings_record_each_undeclared_key_a_hook_looks_up_and_equal_the_settings() -> None:
    declared = declared_keys(SCHEMA)
    settings = ObservedConfig({"api_key": "k", "auth": {"key": "x"}, "limits": {"dsr": 5}}, declared)
    assert settings == {"api_key": "k", "auth": {"key": "x"}, "limits": {"dsr": 5}}
    settings.get("api_key"), settings["auth"].get("token"), settings["limits"].get("anything")
    settings.get("verify_tls", True)
    "legacy" in settings  # noqa: B015 - a lookup by name, which is what is recorded
    copy.deepcopy(settings)["auth"].get("secret")
    assert settings.undeclared == ["verify_tls", "legacy", "auth.secret"]
    assert undeclared_in({"api_key": "k", "auth": {"key": "x", "extra": 1}, "debug": True}, declared) == [
        "auth.extra", "debug"]


# -- personal data, rates, people -------------------------------------------------------------------------------------


def test_personal_data_is_found_in_its_usual_forms_and_a_masked_email_is_not() -> None:
    people = PersonalData.of([{"email": "pat.doe@example.com", "phone": "+1 415 555 0134"}], ["Pat Doe"])
    found = {text: people.found_in(text) for text in (
        "erasing pat.doe%40example.com", "to=" + b"pat.doe@example.com".hex(), "call (415) 555-0134",
        "digits 14155550134", "name Pat+Doe", "erasing p***@e***.com", "order 415")}
    assert found == {"erasing pat.doe%40example.com": "an unmasked email address",
                     "to=" + b"pat.doe@example.com".hex(): "an unmasked email address",
                     "call (415) 555-0134": "a phone number", "digits 14155550134": "a phone number",
                     "name Pat+Doe": "personal data (a name or another value the target declares)",
                     "erasing p***@e***.com": None, "order 415": None}


def test_a_secret_in_hex_is_a_secret() -> None:
    dump = f"debug dump {SECRET.encode().hex().upper()}"
    assert Redactor([SECRET]).leaks(dump) and Redactor([SECRET]).finds_secret(dump)


def test_hammering_is_a_window_far_over_a_limit_and_an_unthrottled_burst_arrives_within_its_window() -> None:
    second = RateLimit("api", 4, "second", "account", True)
    throttled = [(t, "api") for t in (0.0, 0.01, 0.02, 1.0, 1.01)]  # 3 at once, the rest a second later
    bunched = [(t, "api") for t in (0.6, 0.61, 0.62, 1.0, 1.01)]  # the same, the first three queued 0.6 s
    hammering = [(2.0 + i / 100, "api") for i in range(7)]
    assert busiest([t for t, _ in bunched], 1.0) == 5 and excess(throttled, [second]) == excess(bunched, [second]) == []
    [found] = excess(throttled + hammering + [(2.1, "other")], [second])
    assert found.calls == 7 and "made 7 calls to the api API within 1.00s, far over the 4 per second" in str(found)
    assert not excess(throttled + hammering, [second], since=2.06)  # windows ending later only
    queued = [(t, "api") for t in (0.2, 0.21, 0.22, 1.0, 1.01)]  # the first three queued 0.2 s: still spread
    assert too_fast(throttled, second, since=-1) is None and too_fast(queued, second, since=-1) is None
    burst = too_fast(hammering, second, since=1.5)
    assert burst is not None and burst.calls == 5 and burst.seconds == pytest.approx(0.04)


def test_a_request_may_change_its_own_subject_only_and_only_by_carrying_it_out() -> None:
    here = Standing(True, (("gdpr", False),), ("kettle",))
    opted, gone, changed = (Standing(True, (("gdpr", True),), ("kettle",)), Standing(False, (("gdpr", False),), ()),
                            Standing(True, (("gdpr", False),), ()))
    assert [harm(here, gone, "deletion"), harm(here, opted, "opt_out"), harm(here, here, "access")] == [None] * 3
    assert [harm(here, gone, None), harm(here, opted, None), harm(here, changed, "access"),
            harm(here, gone, "opt_out")] == ["erased", "opted out", "had their data changed", "erased"]
    others = [({"email": "pat.doe@example.org"}, ["Pat Doe", "garden hose", "A-2"])]
    assert foreign_values(["Pat Doe", "blue kettle"], {"email": "pat.doe@example.com"}, others) == [
        "pat.doe@example.org", "garden hose"]  # a shared name, and values too short to tell apart, are left out


# -- capture and the target ---------------------------------------------------------------------------------------


def test_a_record_is_seen_whatever_handler_and_stream_it_goes_to_with_its_extra_fields() -> None:
    private = io.StringIO()
    logger = logging.getLogger("conformance.private")
    handler = logging.StreamHandler(private)  # bound to a stream of its own, and not propagating
    logger.addHandler(handler)
    logger.propagate = False
    try:
        with captured() as output:
            logger.warning("erasing %s", "pat.doe@example.com", extra={"api_key": SECRET})
    finally:
        logger.removeHandler(handler)
        logger.propagate = True
    assert output.records == [f"conformance.private: erasing pat.doe@example.com api_key={SECRET}"]


class _OracleWithoutWrites:
    def exists(self, subject: Any) -> bool:
        return True

    def opted_out(self, subject: Any, regulation: str) -> bool:
        return False

    def held_data(self, subject: Any) -> list[str]:
        return []


def test_a_target_whose_oracle_lacks_a_method_or_whose_bystander_is_the_subject_is_refused() -> None:
    subject = {"email": "pat@example.com"}
    target = ConformanceTarget({}, {}, subject, {"email": "nobody@example.com"}, oracle=_OracleWithoutWrites(),  # type: ignore[arg-type]
                               bystanders=[dict(subject)], concurrent_requests=1)
    assert target_problems(target) == [
        "bystanders[0] is existing_subject or missing_subject; a bystander is someone else",
        "its oracle lacks writes() (an oracle answers exists(), opted_out(), held_data(), writes())",
        "concurrent_requests must be an integer of at least 2"]


def test_the_watchers_cost_little_per_call() -> None:
    started = time.perf_counter()
    for _ in range(20):
        CallGuard({"a": 1}, None, first_with_config=True).problems()
    assert (time.perf_counter() - started) / 20 < 0.05  # a few milliseconds each, even on a loaded machine
