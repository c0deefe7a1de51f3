"""The conformance harness catches what it promises to catch, on deliberately broken example connectors.

Each example is a tiny third-party connector with its own conformance target (an in-memory "remote"),
installed through fake entry points; the harness runs in a separate pytest process, as a host would run it.
"""

from __future__ import annotations

import json
import textwrap
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support.connectors import BASIC_SCHEMA

TOY = '''
import socket
import uuid
from contextlib import contextmanager

from dsr_framework import hookimpl, CheckOutcome, ConnectionResult, Result
from dsr_framework.conformance import ConformanceTarget

GOOD_KEY = "good-key-1234567890"
WRITES = []


def _ok(config):
    return config["api_key"] == GOOD_KEY


@hookimpl
def test_connection(config):
    ok = _ok(config)
    message = "the API accepted the key" if ok else "the API rejected the key"
    #LEAK#
    return ConnectionResult((CheckOutcome("api", ok, message, 1.0, None if ok else "authentication"),))


@hookimpl
def handle_access(config, request, state):
    if not _ok(config):
        return Result.failed(request, "authentication", "the API rejected the key")
    #RAISE#
    #CHATTY#
    remote_id = "r-" + request.request_id
    #DUPLICATE#
    if remote_id not in WRITES:
        WRITES.append(remote_id)
    return Result(request.request_id, request.type, "completed", "exported the subject's data")

#EXTRA#

@contextmanager
def target():
    yield ConformanceTarget(
        good_config={"endpoint": "https://api.NAME.example.com", "api_key": GOOD_KEY},
        bad_config={"endpoint": "https://api.NAME.example.com", "api_key": "bad-key-1234567890"},
        existing_subject={"email": "jane@example.com"}, missing_subject={"email": "nobody@example.com"},
        remote_writes=lambda: len(WRITES), budgets={"handle_access": 5})
'''

VARIANTS: dict[str, dict[str, str]] = {
    "toy": {},
    "undeclared": {"#EXTRA#": "@hookimpl\ndef handle_opt_out(config, request, state):\n"
                              "    return Result(request.request_id, request.type, 'completed', 'ok')\n"},
    "unflagged": {},  # its schema is changed below
    "leaky": {"#LEAK#": "message = message if ok else message + ' ' + config['api_key']"},
    "raiser": {"#RAISE#": "raise ValueError('the export job crashed')"},
    "duplicator": {"#DUPLICATE#": "remote_id = 'r-' + str(uuid.uuid4())"},
    "chatty": {"#CHATTY#": "try:\n        socket.getaddrinfo('tracker.analytics.invalid', 443)\n"
                           "    except OSError:\n        pass"},
}


def write_example(root: Path, name: str) -> None:
    source = TOY.replace("NAME", name)
    for marker, code in VARIANTS[name].items():
        source = source.replace(marker, code)
    package = root / name
    (package / "schemas").mkdir(parents=True)
    (package / "__init__.py").write_text(source)
    schema: dict[str, Any] = json.loads(json.dumps(BASIC_SCHEMA))
    if name == "unflagged":
        del schema["properties"]["api_key"]["writeOnly"], schema["properties"]["api_key"]["x-secret"]
    (package / "schemas" / "credentials.schema.json").write_text(json.dumps(schema))
    manifest = {
        "id": name, "name": name.title(), "version": "1.0.0", "description": f"Example {name}.",
        "documentation_url": f"https://docs.{name}.example.com",
        "credentials_schema": "schemas/credentials.schema.json",
        "capabilities": [{"hook": "handle_access", "identifier_categories": ["email"], "mode": "synchronous",
                          "description": "exports the subject's data"}],
        "egress_hosts": [f"api.{name}.example.com"],
        "rate_limits": [{"api": "api", "limit": 10, "per": "second", "scope": "account", "published": True}],
        "target_share": 0.75, "hooks": ["test_connection", "handle_access"],
    }
    (package / "manifest.yaml").write_text(yaml.safe_dump(manifest))
    dist = root / f"example_{name}-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text(f"Metadata-Version: 2.1\nName: example-{name}\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text(textwrap.dedent(f"""\
        [dsr.connectors]
        {name} = {name}
        [dsr.conformance]
        {name} = {name}:target
        """))


@pytest.fixture(scope="module")
def outcomes(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[str, str]]:
    """Run the harness once over every example; map 'check[connector-param]' to (outcome, message)."""
    import subprocess
    import sys

    root = tmp_path_factory.mktemp("examples")
    for name in VARIANTS:
        write_example(root, name)
    report = root / "report.xml"
    subprocess.run([sys.executable, "-m", "pytest", f"--dsr-conformance={','.join(VARIANTS)}", "-q",
                    "-p", "no:cacheprovider", f"--junitxml={report}"], cwd=root, capture_output=True, text=True,
                   timeout=300)
    results: dict[str, tuple[str, str]] = {}
    for case in ET.parse(report).getroot().iter("testcase"):  # noqa: S314 - pytest's own report, just written
        outcome, message = "passed", ""
        for kind in ("failure", "error", "skipped"):
            node = case.find(kind)
            if node is not None:
                outcome, message = kind, (node.get("message") or "") + (node.text or "")
        results[case.get("name", "")] = (outcome, message)
    return results


def outcome(results: dict[str, tuple[str, str]], check: str, connector: str, param: str = "") -> tuple[str, str]:
    key = f"{check}[{connector}{'-' + param if param else ''}]"
    assert key in results, f"{key} did not run; ran: {sorted(results)[:5]}…"
    return results[key]


def test_a_well_behaved_connector_passes_and_every_skip_says_why(outcomes: dict[str, tuple[str, str]]) -> None:
    toy = {k: v for k, v in outcomes.items() if k.endswith("[toy]") or "[toy-" in k}
    assert toy, "the harness ran no check on the well-behaved example"
    failed = {k: v[1][:200] for k, v in toy.items() if v[0] in ("failure", "error")}
    assert not failed, failed
    skipped = {k: v[1] for k, v in toy.items() if v[0] == "skipped"}
    assert skipped, "deletion and opt-out are not declared, so their checks must be skipped"
    assert all("does not declare" in reason for reason in skipped.values()), skipped


def test_an_undeclared_hook_fails_the_hook_check(outcomes: dict[str, tuple[str, str]]) -> None:
    status, message = outcome(outcomes, "test_declared_hooks_match_the_implementations", "undeclared")
    assert status == "failure" and "implements hook(s) its manifest does not declare: handle_opt_out" in message


def test_an_unflagged_secret_fails_the_secret_check(outcomes: dict[str, tuple[str, str]]) -> None:
    status, message = outcome(outcomes, "test_secret_fields_are_flagged", "unflagged")
    assert status == "failure" and "$.api_key" in message
    assert outcome(outcomes, "test_secret_fields_are_flagged", "toy")[0] == "passed"


def test_a_secret_leaked_in_a_message_fails(outcomes: dict[str, tuple[str, str]]) -> None:
    status, message = outcome(outcomes, "test_connection_fails_cleanly_with_the_bad_config", "leaky")
    assert status == "failure" and "put a configured secret in its test_connection result" in message
    assert "bad-key-1234567890" not in message


def test_a_hook_that_raises_fails_the_capability_check_and_the_host_survives(
    outcomes: dict[str, tuple[str, str]],
) -> None:
    status, message = outcome(outcomes, "test_capability_reaches_a_final_result", "raiser", "access")
    assert status == "failure" and "handle_access misbehaved" in message and "ValueError" in message
    assert outcome(outcomes, "test_the_host_survives_a_hook_that_raises", "raiser", "handle_access")[0] == "passed"


def test_a_non_idempotent_submission_fails_the_idempotency_check(outcomes: dict[str, tuple[str, str]]) -> None:
    status, message = outcome(outcomes, "test_repeated_call_with_the_same_request_id_is_idempotent",
                              "duplicator", "access")
    assert status == "failure" and "made 1 new remote write(s)" in message
    assert outcome(outcomes, "test_repeated_call_with_the_same_request_id_is_idempotent", "toy", "access")[0] == \
        "passed"


def test_traffic_to_an_undeclared_host_is_blocked_and_fails(outcomes: dict[str, tuple[str, str]]) -> None:
    status, message = outcome(outcomes, "test_capability_reaches_a_final_result", "chatty", "access")
    assert status == "error" and "tracker.analytics.invalid" in message
