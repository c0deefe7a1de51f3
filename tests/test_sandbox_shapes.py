"""Shape variation: the sandbox answers in the shapes mParticle's documents show (timestamps with 0, 3, 6 or 7
fractional digits, ``Z``, ``+00:00`` or, where v2 documents it, no zone; null members present or absent; any
member order), deterministically per seed; and access results hold batches in the stored form of mParticle's
published sample (``static/downloads/portability-response-sample.zip``).
"""

from __future__ import annotations

import io
import json
import os
import re
import subprocess
import sys
import zipfile
from collections import Counter
from datetime import UTC, datetime
from typing import Any

import pytest
import requests
from hypothesis import given
from hypothesis import strategies as st

from connector_mparticle.sandbox import Sandbox, ShapeSettings
from connector_mparticle.sandbox.pytest_plugin import shapes_for
from connector_mparticle.sandbox.shapes import Shapes, default_settings
from tests.support.mp import WORKSPACE, batch, dsr_body

pytest_plugins = ["pytester"]

#: The forms of developers/dsr-api/v3 and v2 examples: date, time, 0/3/6/7 fractional digits, a zone or none.
DOCUMENTED_TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.(\d{3}|\d{6}|\d{7}))?(Z|\+00:00)?")


def form(text: str) -> tuple[int, str]:
    match = DOCUMENTED_TIME.fullmatch(text)
    assert match is not None, f"{text!r} is not a documented timestamp form"
    return len(match.group(1) or ""), match.group(2) or "none"


def submit_many(sb: Sandbox, count: int) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    """(201 body, status body) for ``count`` new access requests."""
    out = []
    for n in range(count):
        body = dsr_body(email=f"user{n}@example.com")
        created = requests.post(f"{sb.url}/v3/requests", json=body, auth=WORKSPACE, timeout=5).json()
        status = requests.get(f"{sb.url}/v3/requests/{body['subject_request_id']}", auth=WORKSPACE, timeout=5).json()
        out.append((created, status))
    return out


def test_variation_writes_every_documented_timestamp_form_and_only_those() -> None:
    with Sandbox(shapes=ShapeSettings(variation=True, seed=11)) as sb:
        answers = submit_many(sb, 40)
    created = Counter(form(c[f]) for c, _ in answers for f in ("received_time", "expected_completion_time"))
    statuses = Counter(form(s["expected_completion_time"]) for _, s in answers)
    assert {digits for digits, _ in created} == {0, 3, 6, 7}
    assert {zone for _, zone in created} == {"Z", "+00:00"}  # a 201 always names its zone
    assert "none" in {zone for _, zone in statuses}  # the v2 form, documented for a status's expected time
    assert len({tuple(c) for c, _ in answers}) > 1, "members come in more than one order"


def test_variation_leaves_null_members_out_sometimes_and_never_drops_a_documented_value() -> None:
    with Sandbox(shapes=ShapeSettings(variation=True, seed=3)) as sb:
        statuses = [s for _, s in submit_many(sb, 20)]
    assert any("results_url" not in s for s in statuses) and any("results_url" in s for s in statuses)
    for status in statuses:
        assert {"controller_id", "expected_completion_time", "subject_request_id", "request_status",
                "api_version"} <= set(status)
        assert all(status.get(k) is None for k in ("group_id", "results_url", "extensions"))


def test_tidy_answers_in_one_shape_milliseconds_and_z_every_member_in_the_documented_order() -> None:
    with Sandbox(shapes=ShapeSettings(variation=False)) as sb:
        answers = submit_many(sb, 5)
    for created, status in answers:
        assert list(created) == ["expected_completion_time", "received_time", "encoded_request",
                                 "subject_request_id", "controller_id"]
        assert list(status) == ["controller_id", "expected_completion_time", "subject_request_id", "group_id",
                                "request_status", "api_version", "results_url", "extensions"]
        assert form(created["received_time"]) == (3, "Z") and form(status["expected_completion_time"]) == (3, "Z")


def _skeleton(value: Any) -> Any:
    """The shape of a JSON value without its data: member names in order, timestamp forms, types."""
    if isinstance(value, dict):
        return [(k, _skeleton(v)) for k, v in value.items() if k not in ("subject_request_id", "encoded_request")]
    if isinstance(value, (list, tuple)):
        return [_skeleton(v) for v in value]
    if isinstance(value, str) and DOCUMENTED_TIME.fullmatch(value):
        return form(value)
    return type(value).__name__


def test_the_same_seed_gives_the_same_shapes_and_another_seed_others() -> None:
    def run(seed: int) -> list[Any]:
        with Sandbox(shapes=ShapeSettings(variation=True, seed=seed)) as sb:
            return [_skeleton(pair) for pair in submit_many(sb, 8)]

    assert run(5) == run(5)
    assert run(5) != run(6)


def test_the_admin_api_switches_variation_and_the_seed_and_reset_restores_them() -> None:
    with Sandbox(shapes=ShapeSettings(variation=False, seed=1)) as sb:
        assert sb.shapes() == {"variation": False, "seed": 1}
        assert sb.set_shapes(variation=True) == {"variation": True, "seed": 1}
        assert sb.set_shapes(seed=9) == {"variation": True, "seed": 9}
        refused = requests.put(f"{sb.url}/_sandbox/shapes", json={"variation": "yes"}, timeout=5)
        assert refused.status_code == 400 and "$.variation" in refused.json()["error"]
        sb.reset()
        assert sb.shapes() == {"variation": False, "seed": 1}


def test_the_fixture_varies_per_test_from_the_session_seed(sandbox: Sandbox, request: pytest.FixtureRequest) -> None:
    """The fixture's sandbox takes the session's setting (this suite: ``vary``, pyproject.toml), with a seed of
    its own derived from the session seed and the test's id."""
    session = default_settings()
    assert sandbox.shapes() == shapes_for(request.node.nodeid, session).to_dict()
    assert sandbox.shapes()["seed"] != session.seed


def test_the_plugin_prints_the_seed_and_names_it_in_a_failing_tests_report(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("""
        def test_fails(mparticle_sandbox):
            assert mparticle_sandbox.shapes()["variation"] is False
    """)
    result = pytester.runpytest_subprocess("--sandbox-shapes=vary", "--sandbox-shape-seed=42", "-p", "no:cacheprovider")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["mparticle sandbox: shape variation on, seed 42*",
                                 "*mparticle sandbox shapes*", "vary, seed * (session seed 42)"])


# -- stored-form batches in access results ------------------------------------------------------------------------

def _results(sb: Sandbox) -> list[dict[str, Any]]:
    body = dsr_body()
    requests.post(f"{sb.url}/v3/requests", json=body, auth=WORKSPACE, timeout=5)
    done = sb.force_status(body["subject_request_id"], "completed")
    content = requests.get(done["results_url"], timeout=5).content
    with zipfile.ZipFile(io.BytesIO(content)) as archive:
        return [json.loads(line) for name in sorted(archive.namelist()) if name != "profile.jsonl"
                for line in archive.read(name).decode().splitlines() if line]


@pytest.mark.parametrize("variation", [False, True], ids=["tidy", "vary"])
def test_access_results_hold_batches_in_the_stored_form_of_the_published_sample(variation: bool) -> None:
    sent = batch(environment="development", user_attributes={"food": "pie"},
                 device_info={"platform": "iOS", "ios_idfv": "9d2c6f3a-1b7e-4e58-a0c4-5f8e2d1b3a77"},
                 consent_state={"gdpr": {"location 1": {"consented": True, "timestamp_unixtime_ms": 1527088499833}}})
    with Sandbox(shapes=ShapeSettings(variation=variation, seed=2), gdpr_purposes=("location 1",)) as sb:
        jane = sb.seed_profile({"email": "jane@example.com"}, batches=[sent])
        [stored] = _results(sb)
    assert stored["mpid"] == int(jane["mpid"]) and isinstance(stored["batch_id"], int)
    assert isinstance(stored["timestamp_unixtime_ms"], int) and stored["environment"] == "Development"
    assert stored["lock_key"] is None and stored["source_request_id"] is None and stored["api_key"] is None
    assert stored["source_info"]["channel"] == "server_to_server"
    [event] = stored["events"]
    data = event["data"]
    assert data["event_name"] == "Viewed Pricing" and data["timestamp_unixtime_ms"] == "1764400000000"
    assert re.fullmatch(r"-?\d+", data["event_id"]) and data["session_start_unixtime_ms"] == "0"
    assert stored["consent_state"]["gdpr"]["location 1"] == {"regulation": "GDPR", "consented": True,
                                                             "timestamp_unixtime_ms": 1527088499833}
    assert stored["user_attributes"] == {"food": "pie"} and stored["device_info"]["platform"] == "iOS"


def test_the_connector_reads_every_timestamp_form_the_sandbox_writes() -> None:
    """The connector's reader (connector_mparticle.api.opendsr.read_time) takes each documented form as the same
    instant, the zone-less one as UTC."""
    from connector_mparticle.api.opendsr import read_time

    with Sandbox(shapes=ShapeSettings(variation=True, seed=11)) as sb:
        answers = submit_many(sb, 20)
    for created, status in answers:
        for text in (created["expected_completion_time"], status["expected_completion_time"]):
            parsed = read_time(text, "expected_completion_time")
            assert parsed is not None and parsed.utcoffset() is not None
        assert abs((read_time(created["expected_completion_time"], "t") - read_time(  # type: ignore[operator]
            status["expected_completion_time"], "t")).total_seconds()) < 1


@pytest.mark.parametrize(("args", "expected"), [
    (["--shapes", "tidy", "--shape-seed", "3"], {"variation": False, "seed": 3}),
    (["--shapes", "vary"], {"variation": True, "seed": 0}),
], ids=["tidy", "vary"])
def test_the_command_line_sets_the_shapes(args: list[str], expected: dict[str, Any]) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MPARTICLE_SANDBOX_SHAPE")}
    process = subprocess.Popen([sys.executable, "-m", "connector_mparticle.sandbox", "--port", "0", "--json", *args],
                               stdout=subprocess.PIPE, text=True, env=env)
    try:
        assert process.stdout is not None
        url = json.loads(process.stdout.readline())["url"]
        assert requests.get(f"{url}/_sandbox/shapes", timeout=5).json() == expected
    finally:
        process.terminate()
        assert process.wait(timeout=10) == 0


@given(epoch=st.floats(min_value=1.5e9, max_value=4e9, allow_nan=False), seed=st.integers(0, 2**32),
       key=st.integers(0, 1000))
def test_an_expected_completion_time_is_never_written_before_the_time_it_stands_for(
    epoch: float, seed: int, key: int
) -> None:
    """Fewer fractional digits cut a time short, but "the estimated time by which the request will be
    fulfilled" is rounded up: a client that checks at the stated time finds the request done."""
    shapes = Shapes(ShapeSettings(variation=True, seed=seed))
    stated = utc(shapes.timestamp(epoch, key, by=True, zoneless=True))  # type: ignore[arg-type]
    received = utc(shapes.timestamp(epoch, key))  # type: ignore[arg-type]
    assert received <= epoch + 1e-6 and stated >= epoch - 1e-6 and stated - received < 1.0 + 1e-6


def utc(text: str) -> float:
    """A documented timestamp form as epoch seconds (no zone: UTC), exactly (no float rounding of the digits)."""
    digits, zone = form(text)
    whole, _, fraction = text.removesuffix("Z").removesuffix("+00:00").partition(".")
    seconds = datetime.strptime(whole, "%Y-%m-%dT%H:%M:%S").replace(tzinfo=UTC).timestamp()
    assert len(fraction) == digits and zone in ("Z", "+00:00", "none")
    return seconds + (int(fraction) / 10 ** len(fraction) if fraction else 0.0)
