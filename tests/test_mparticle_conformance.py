"""The mParticle conformance target and its oracle: the sandbox's own state is the ground truth, so a connector that
reports success without doing the work is caught."""

from __future__ import annotations

import types
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from typing import Any

import pytest

from connector_mparticle import plugin as mparticle_plugin
from connector_mparticle.conformance import EXISTING, MISSING, SandboxOracle, target
from dsr_framework import DsrRequest, Result, hookimpl
from dsr_framework.conformance import ConformanceTarget, run_conformance
from dsr_framework.models import Verification


@pytest.fixture(scope="module")
def conformance_target() -> Iterator[ConformanceTarget]:
    with target() as started:
        yield started


def test_the_oracle_reads_the_seeded_subject_from_the_sandbox(conformance_target: ConformanceTarget) -> None:
    assert conformance_target.prepare is not None
    conformance_target.prepare()
    oracle = conformance_target.oracle
    assert isinstance(oracle, SandboxOracle)
    assert oracle.exists(EXISTING) and not oracle.exists(MISSING)
    assert not oracle.opted_out(EXISTING, "gdpr")
    [screen] = oracle.held_data(EXISTING)
    assert screen.startswith("conformance-screen-")
    oracle.sandbox.seed_profile({"email": "other@example.com", "customer_id": "C-1"})
    assert oracle.exists({"email": "other@example.com"})  # a plain lookup: stricter than IDSync's login ids


def test_the_oracle_sees_a_real_opt_out_and_counts_its_write(conformance_target: ConformanceTarget) -> None:
    assert conformance_target.prepare is not None
    conformance_target.prepare()
    oracle = conformance_target.oracle
    assert oracle is not None
    writes = oracle.writes()
    request = DsrRequest("oracle-opt-out", "opt_out", "gdpr", dict(EXISTING), datetime.now(UTC))
    result = mparticle_plugin.handle_opt_out(config=conformance_target.good_config, request=request, state=None)
    assert result.status == "completed", result.message
    assert oracle.opted_out(EXISTING, "gdpr") and oracle.writes() == writes + 1


def test_opted_out_needs_the_sale_opt_out_and_every_configured_purpose_refused(
    conformance_target: ConformanceTarget,
) -> None:
    oracle = conformance_target.oracle
    assert isinstance(oracle, SandboxOracle)
    sale = {"data_sale_opt_out": {"consented": True, "timestamp_unixtime_ms": 1}}
    refused = {purpose: {"consented": False, "timestamp_unixtime_ms": 1} for purpose in oracle.gdpr_purposes}
    oracle.sandbox.seed_profile({"email": "half@example.com"}, consent={"ccpa": sale})
    oracle.sandbox.seed_profile({"email": "whole@example.com"}, consent={"ccpa": sale, "gdpr": refused})
    assert not oracle.opted_out({"email": "half@example.com"}, "gdpr")
    assert oracle.opted_out({"email": "whole@example.com"}, "gdpr")


def _liar() -> types.ModuleType:
    """The real mParticle hooks, except that access drops its files and deletion and opt-out do nothing; each
    result is well-formed and even claims a verification, so only the oracle can catch it."""
    module = types.ModuleType("connector_mparticle.liar")
    module.__package__ = "connector_mparticle"  # so the host finds the mParticle manifest

    @hookimpl
    def handle_access(config: Mapping[str, Any], request: DsrRequest, state: Any) -> Result:
        result: Result = mparticle_plugin.handle_access(config=config, request=request, state=state)
        if result.status != "completed":
            return result
        return Result(result.request_id, result.request_type, "completed", result.message,
                      verification=result.verification)

    @hookimpl
    def handle_deletion(config: Mapping[str, Any], request: DsrRequest, state: Any) -> Result:
        return Result(request.request_id, request.type, "completed", "mParticle erased the profile",
                      verification=Verification("verified"))

    @hookimpl
    def handle_opt_out(config: Mapping[str, Any], request: DsrRequest, state: Any) -> Result:
        return Result(request.request_id, request.type, "completed", "recorded the opt-out",
                      verification=Verification("not_applicable"))

    module.test_connection = mparticle_plugin.test_connection  # type: ignore[attr-defined]
    module.handle_access = handle_access  # type: ignore[attr-defined]
    module.handle_deletion = handle_deletion  # type: ignore[attr-defined]
    module.handle_opt_out = handle_opt_out  # type: ignore[attr-defined]
    module.handle_cancel = mparticle_plugin.handle_cancel  # type: ignore[attr-defined]  # the manifest declares it
    return module


def test_a_connector_that_reports_work_it_did_not_do_is_caught_by_the_oracle() -> None:
    verdict = run_conformance("mparticle", plugin=_liar(), checks=[
        "access_exports_subject_data", "deletion_removes_subject", "opt_out_recorded"])
    reasons = {row.check: (row.outcome, row.reason) for row in verdict.rows}
    assert not verdict.ok
    assert reasons["access_exports_subject_data"] == ("fail", "handle_access completed for a subject the service "
                                                              "holds data for, but listed no file")
    assert reasons["deletion_removes_subject"][0] == "fail"
    assert "the service still holds the subject" in reasons["deletion_removes_subject"][1]
    assert reasons["opt_out_recorded"][0] == "fail"
    assert "does not record the opt-out" in reasons["opt_out_recorded"][1]
