"""The request/result/manifest contract, the hook documentation, and what the wheel ships."""

from __future__ import annotations

import inspect
import json
import os
import re
import subprocess
import sys
import sysconfig
import venv
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from dsr_framework import hookspecs
from dsr_framework.models import (
    AuditEvent,
    CheckOutcome,
    ConnectionResult,
    DsrRequest,
    FailureInfo,
    OutputFile,
    Result,
)
from dsr_framework.validation import SchemaViolation, framework_validator

ROOT = Path(__file__).resolve().parent.parent
WHEN = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)


def test_request_round_trips_through_json() -> None:
    data = {"request_id": "host-42", "type": "deletion", "regulation": "ccpa",
            "identities": {"email": "jane@example.com", "customer_id": "c-1"},
            "submitted_at": "2026-11-01T12:00:00Z", "output_dir": "/tmp/out"}
    parsed = DsrRequest.from_dict(data)
    assert parsed.submitted_at == WHEN and parsed.identities["customer_id"] == "c-1"
    assert DsrRequest.from_dict(json.loads(json.dumps(parsed.to_dict()))) == parsed


def test_request_with_several_mistakes_lists_every_one() -> None:
    with pytest.raises(SchemaViolation) as caught:
        DsrRequest.from_dict({"request_id": "", "type": "erase", "regulation": "gdpr",
                              "identities": {"email": "not-an-email"}, "submitted_at": "yesterday"})
    paths = {p.path for p in caught.value.problems}
    assert {"$.request_id", "$.type", "$.identities.email", "$.submitted_at"} <= paths


def test_request_repr_does_not_show_identities() -> None:
    text = repr(DsrRequest("r", "access", "gdpr", {"email": "jane@example.com"}, WHEN))
    assert "jane" not in text and "email" in text


def test_naive_timestamps_are_refused() -> None:
    with pytest.raises(ValueError, match="timezone"):
        DsrRequest("r", "access", "gdpr", {"email": "jane@example.com"}, datetime(2026, 1, 1))


def full_result(status: str) -> Result:
    extra: dict[str, object] = {}
    if status == "pending":
        extra = {"state": {"remote": "abc"}, "next_check_at": WHEN + timedelta(hours=1)}
    if status == "failed":
        extra = {"error": FailureInfo("retry_later", "throttled", WHEN)}
    return Result("r-1", "access", status, "one sentence", audit=(AuditEvent("submit", "HTTP 201", {"id": "x"}, WHEN),),  # type: ignore[arg-type]
                  files=(OutputFile("r-1/results.zip", "application/zip", 10, "a" * 64),), summary={"profiles": 1},
                  **extra)  # type: ignore[arg-type]


@pytest.mark.parametrize("status", ["completed", "pending", "failed"])
def test_every_result_status_validates_and_round_trips(status: str) -> None:
    result = full_result(status)
    document = json.loads(json.dumps(result.to_dict()))
    assert list(framework_validator("result").iter_errors(document)) == []
    assert Result.from_dict(document) == result


@pytest.mark.parametrize(
    ("mutation", "status"),
    [({"state": None}, "pending"), ({"error": None}, "failed"), ({"next_check_at": None}, "pending")],
    ids=["pending-without-state", "failed-without-error", "pending-without-next-check"],
)
def test_result_schema_refuses_incomplete_results(mutation: dict[str, None], status: str) -> None:
    document = full_result(status).to_dict()
    for key in mutation:
        document.pop(key, None)
    assert list(framework_validator("result").iter_errors(document))


def test_connection_result_verdict_is_true_only_when_every_check_passed() -> None:
    good = CheckOutcome("dsr", True, "ok", 12.5)
    bad = CheckOutcome("events", False, "the Events API rejected the input key", 3.0, "authentication")
    assert ConnectionResult((good,)).ok
    mixed = ConnectionResult((good, bad)).to_dict()
    assert mixed["ok"] is False and mixed["message"] == "failed: events"
    assert list(framework_validator("result").iter_errors(mixed)) == []
    assert not ConnectionResult(()).ok


@pytest.mark.parametrize("name", hookspecs.HOOK_NAMES)
def test_every_hook_is_documented_for_connector_authors(name: str) -> None:
    doc = inspect.getdoc(getattr(hookspecs, name)) or ""
    for section in ("Returns", "When called", "Must never"):
        assert section in doc or (name != "test_connection" and "as for" in doc), f"{name} lacks {section}"
    readme = (ROOT / "README.md").read_text()
    assert f"| `{name}`" in readme, f"the README's table of hooks does not list {name}"


def test_top_level_schemas_and_manifest_are_the_packaged_files() -> None:
    assert (ROOT / "manifest.yaml").resolve() == (ROOT / "connector_mparticle" / "manifest.yaml").resolve()
    for name in ("credentials", "manifest", "request", "result"):
        top = (ROOT / "schemas" / f"{name}.schema.json").resolve()
        assert top.is_file() and top.parent.name == "schemas" and top.parent.parent.name in (
            "dsr_framework", "connector_mparticle")


def tagged_block(page: str, tag: str) -> str:
    """The code block after ``<!-- tag -->`` in ``page`` (a path from the repository's root)."""
    text = (ROOT / page).read_text()
    match = re.search(rf"<!-- {tag} -->\s*```(?:python|bash)\n(.*?)```", text, re.S)
    assert match, f"{page} has no block tagged {tag}"
    return match.group(1)


def test_the_host_contracts_example_runs_as_written(capsys: pytest.CaptureFixture[str]) -> None:
    namespace: dict[str, object] = {}
    code = tagged_block("docs/host-contract.md", "host-example")
    exec(compile(code, "docs/host-contract.md", "exec"), namespace)  # noqa: S102 - our own docs
    result = namespace["result"]
    assert isinstance(result, Result) and result.status == "completed"
    assert capsys.readouterr().out.splitlines() == [
        "True", "completed recorded the opt-out in mParticle (ccpa.data_sale_opt_out)"]


def test_the_readmes_five_line_host_example_runs_as_written(capsys: pytest.CaptureFixture[str]) -> None:
    code = tagged_block("README.md", "readme-host-example")
    assert len(code.strip().splitlines()) <= 5
    exec(compile(code, "README.md", "exec"), {})  # noqa: S102 - our own docs
    assert capsys.readouterr().out.splitlines() == ["True"]


@pytest.mark.slow
def test_built_wheel_ships_schemas_and_manifest_readable_through_importlib_resources(tmp_path: Path) -> None:
    dist = tmp_path / "dist"
    subprocess.run([sys.executable, "-m", "build", "--wheel", "--no-isolation", "--outdir", str(dist), str(ROOT)],
                   check=True, capture_output=True)
    [wheel] = dist.glob("connector_mparticle-*.whl")
    env_dir = tmp_path / "fresh"
    venv.EnvBuilder(with_pip=False).create(env_dir)
    python = env_dir / "bin" / "python"
    target = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                            check=True, capture_output=True, text=True).stdout.strip()
    subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "--no-index", "--target", target, str(wheel)],
                   check=True, capture_output=True)
    probe = """
import json, sys
sys.path.insert(0, TARGET)  # the fresh install wins over anything on PYTHONPATH
from importlib import resources
import connector_mparticle, dsr_framework
assert connector_mparticle.__file__.startswith(sys.prefix), connector_mparticle.__file__
names = {}
for pkg in ("dsr_framework", "connector_mparticle"):
    for item in resources.files(pkg).joinpath("schemas").iterdir():
        names[item.name] = json.loads(item.read_text())["$schema"]
print(json.dumps({"schemas": sorted(names),
                  "manifest": resources.files("connector_mparticle").joinpath("manifest.yaml").read_text()}))
""".replace("TARGET", repr(target))
    # Dependencies come from this environment; the packages themselves only from the fresh install.
    env = {**os.environ, "PYTHONPATH": sysconfig.get_paths()["purelib"]}
    out = subprocess.run([str(python), "-c", probe], check=True, capture_output=True, text=True, cwd=tmp_path, env=env)
    shipped = json.loads(out.stdout)
    assert shipped["schemas"] == ["credentials.schema.json", "manifest.schema.json", "request.schema.json",
                                  "result.schema.json"]
    assert "id: mparticle" in shipped["manifest"]


def test_verification_and_action_required_round_trip_and_the_schema_holds_them_to_their_status() -> None:
    """Issue 21: whether an outcome was checked, and what a person must fix, are data a host routes on."""
    from dsr_framework.models import ActionRequired, Verification, VerificationReason

    reason = VerificationReason("login_id_required", "known profiles need a customer_id", ("customer_id",))
    done = Result("r-1", "deletion", "completed", "mParticle completed the erasure, but it is not verified",
                  verification=Verification.of([reason]))
    assert done.unverified and Result.from_dict(json.loads(json.dumps(done.to_dict()))) == done
    assert done.to_dict()["verification"] == {"status": "unverified", "reasons": [
        {"code": "login_id_required", "message": "known profiles need a customer_id",
         "identifiers": ["customer_id"]}]}
    waiting = Result("r-1", "deletion", "pending", "mParticle completed the erasure; verifying it failed",
                     state={"v": 1}, next_check_at=WHEN,
                     action_required=ActionRequired("authentication", "fix the Identity API secret"))
    assert not waiting.final and Result.from_dict(json.loads(json.dumps(waiting.to_dict()))) == waiting
    wrong = [
        {**done.to_dict(), "verification": {"status": "unverified", "reasons": []}},  # unverified gives reasons
        {**done.to_dict(), "verification": {"status": "verified", "reasons": [reason.to_dict()]}},
        {**done.to_dict(), "verification": {"status": "unverified", "reasons": [{**reason.to_dict(), "code": "x"}]}},
        {**done.to_dict(), "action_required": {"class": "configuration", "message": "m"}},  # only when pending
        {**waiting.to_dict(), "verification": {"status": "verified", "reasons": []}},  # not while pending
    ]
    for document in wrong:
        with pytest.raises(SchemaViolation):
            Result.from_dict(document)
    with pytest.raises(ValueError):
        VerificationReason("made_up", "m")


def test_the_schema_lists_exactly_the_reason_codes_the_framework_defines() -> None:
    from dsr_framework.verification import REASON_CODES

    schema = json.loads((ROOT / "schemas" / "result.schema.json").read_text())
    codes = schema["$defs"]["verification"]["properties"]["reasons"]["items"]["properties"]["code"]["enum"]
    assert codes == list(REASON_CODES)
