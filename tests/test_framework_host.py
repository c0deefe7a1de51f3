"""The host side of the contract: discovery, enabling, validation and the crash-proof facade."""

from __future__ import annotations

import logging
import sys
from datetime import UTC, datetime

import pytest

from dsr_framework import DsrRequest
from dsr_framework.host import load_host
from tests.support.connectors import GOOD_HOOKS, ConnectorFactory

GOOD_CONFIG = {"endpoint": "https://api.example.com", "api_key": "k3y-abcdef-123456"}


def request(kind: str = "access", request_id: str = "req-1") -> DsrRequest:
    return DsrRequest(request_id, kind, "gdpr", {"email": "jane@example.com"},  # type: ignore[arg-type]
                      datetime(2026, 11, 1, tzinfo=UTC))


def enabled(*names: str, config: dict[str, object] | None = None) -> dict[str, object]:
    return {"connectors": {n: {"enabled": True, "config": config or GOOD_CONFIG} for n in names}}


def test_connector_registered_by_entry_point_is_discovered_and_called(connectors: ConnectorFactory) -> None:
    connectors.write("alpha", entry_point=True)
    host = load_host(enabled("alpha"))
    assert host.problems == []
    assert "alpha" in host.connectors
    handle = host.connector("alpha")
    first = handle.handle_access(request())
    assert first.status == "pending" and first.state == {"polls": 1}
    done = handle.handle_access(request(), state=first.state)
    assert done.status == "completed" and done.summary == {"by": "alpha"}
    assert handle.test_connection().ok


def test_installed_but_disabled_connector_is_never_imported(connectors: ConnectorFactory) -> None:
    connectors.write("dormant", "raise RuntimeError('imported!')", entry_point=True)
    host = load_host({"connectors": {"dormant": {"enabled": False}}})
    assert "dormant" not in sys.modules
    assert host.discovered["dormant"] is False
    with pytest.raises(KeyError, match="not enabled"):
        host.connector("dormant")


def test_unlisted_connector_is_disabled_by_default(connectors: ConnectorFactory) -> None:
    connectors.write("unlisted", entry_point=True)
    host = load_host({})
    assert "unlisted" not in host.connectors and "unlisted" not in sys.modules


def test_broken_import_is_reported_and_the_other_connectors_still_work(connectors: ConnectorFactory) -> None:
    connectors.write("broken", "import module_that_does_not_exist\n", entry_point=True)
    connectors.write("healthy", entry_point=True)
    host = load_host(enabled("broken", "healthy"))
    assert host.connectors == ["healthy"]
    [problem] = host.problems
    assert problem.connector == "broken" and problem.stage == "import"
    assert "module_that_does_not_exist" in problem.message
    with pytest.raises(KeyError, match="import failed"):
        host.connector("broken")
    assert host.connector("healthy").handle_deletion(request("deletion")).status == "completed"


@pytest.mark.parametrize(
    ("declared", "source_extra", "expected"),
    [
        (["test_connection", "handle_access", "handle_deletion", "handle_opt_out"], "",
         "declares hook(s) it does not implement: handle_opt_out"),
        (["test_connection", "handle_access"], "", "not declared in its manifest: handle_deletion"),
        (["test_connection", "handle_access", "handle_deletion"],
         "\n@hookimpl\ndef handle_optout(config, request, state):\n    return None\n",
         "unknown hook(s) handle_optout"),
    ],
    ids=["declared-but-missing", "implemented-but-undeclared", "misspelled-hook"],
)
def test_hooks_that_do_not_match_the_manifest_skip_the_connector(
    connectors: ConnectorFactory, declared: list[str], source_extra: str, expected: str
) -> None:
    connectors.write("mismatch", GOOD_HOOKS + source_extra, hooks=declared)
    host = load_host(enabled("mismatch"), plugins={"mismatch": connectors.load("mismatch")}, use_entry_points=False)
    assert host.connectors == []
    [problem] = host.problems
    assert problem.stage == "hooks" and expected in problem.message
    assert host.plugin_manager.get_plugins() == set()  # unregistered: nothing of it can be called


def test_hook_with_an_argument_the_spec_lacks_is_rejected(connectors: ConnectorFactory) -> None:
    source = GOOD_HOOKS.replace("def handle_deletion(config, request, state)",
                                "def handle_deletion(config, request, state, extra)")
    connectors.write("badargs", source)
    host = load_host(enabled("badargs"), plugins={"badargs": connectors.load("badargs")}, use_entry_points=False)
    [problem] = host.problems
    assert problem.stage == "hooks" and "extra" in problem.message


def test_invalid_manifest_is_reported_with_every_problem(connectors: ConnectorFactory) -> None:
    bad = connectors.manifest("badman", ["test_connection"], version="one", target_share=2, egress_hosts="x")
    connectors.write("badman", manifest=bad)
    host = load_host(enabled("badman"), plugins={"badman": connectors.load("badman")}, use_entry_points=False)
    [problem] = host.problems
    assert problem.stage == "manifest"
    for path in ("$.version", "$.target_share", "$.egress_hosts"):
        assert path in problem.message


def test_config_with_several_mistakes_reports_all_of_them_without_the_secret(connectors: ConnectorFactory) -> None:
    connectors.write("strict")
    config = {"endpoint": "http://plain.example.com", "api_key": "short", "retries": -1, "colour": "blue"}
    host = load_host(enabled("strict", config=config), plugins={"strict": connectors.load("strict")},
                     use_entry_points=False)
    [problem] = host.problems
    assert problem.stage == "config"
    for expected in ("$.endpoint", "$.api_key: must be at least 8 characters", "$.retries",
                     "$: Additional properties are not allowed here (allowed: api_key, endpoint, retries)"):
        assert expected in problem.message
    # No value, and no unknown key either (a key can be a value typed in the wrong place).
    assert "short" not in problem.message and "plain.example.com" not in problem.message
    assert "colour" not in problem.message
    assert "5 problems" not in problem.message and "4 problems" in problem.message


def test_secrets_come_from_environment_references(connectors: ConnectorFactory) -> None:
    connectors.write("envy")
    config = {"endpoint": "https://${ENVY_HOST}", "api_key": "${ENVY_KEY}", "retries": 1}
    host = load_host(enabled("envy", config=config), plugins={"envy": connectors.load("envy")},
                     use_entry_points=False, environ={"ENVY_HOST": "api.envy.example.com", "ENVY_KEY": "from-env-123"})
    assert host.problems == []
    assert host.connector("envy").test_connection().ok


def test_missing_environment_variables_are_all_named(connectors: ConnectorFactory) -> None:
    connectors.write("envless")
    config = {"endpoint": "https://${HOST_A}", "api_key": "${KEY_A}${KEY_B}"}
    host = load_host(enabled("envless", config=config), plugins={"envless": connectors.load("envless")},
                     use_entry_points=False, environ={})
    [problem] = host.problems
    assert problem.stage == "environment" and "HOST_A, KEY_A, KEY_B" in problem.message


def test_enabled_but_not_installed_connector_is_reported() -> None:
    host = load_host(enabled("ghost"), use_entry_points=False)
    [problem] = host.problems
    assert problem.connector == "ghost" and "not installed" in problem.message


RAISER = GOOD_HOOKS + '''
@hookimpl
def handle_opt_out(config, request, state):
    raise ValueError("boom while using key " + config["api_key"])
'''


def test_connector_that_raises_gives_a_failed_result_without_the_secret(
    connectors: ConnectorFactory, caplog: pytest.LogCaptureFixture
) -> None:
    connectors.write("raiser", RAISER,
                     hooks=["test_connection", "handle_access", "handle_deletion", "handle_opt_out"])
    host = load_host(enabled("raiser"), plugins={"raiser": connectors.load("raiser")}, use_entry_points=False)
    with caplog.at_level(logging.ERROR):
        result = host.connector("raiser").handle_opt_out(request("opt_out"))
    assert result.status == "failed" and result.error is not None
    assert result.error.error_class == "internal"
    assert "ValueError" in result.message and "boom" in result.message
    assert GOOD_CONFIG["api_key"] not in result.message
    assert caplog.records, "the crash is logged for the operator"
    assert all(GOOD_CONFIG["api_key"] not in r.getMessage() for r in caplog.records)


def test_result_that_carries_a_secret_is_withheld(connectors: ConnectorFactory) -> None:
    leaky = GOOD_HOOKS.replace('summary={"by": "NAME"})', 'summary={"key": config["api_key"]})')
    connectors.write("leaky", leaky)
    host = load_host(enabled("leaky"), plugins={"leaky": connectors.load("leaky")}, use_entry_points=False)
    result = host.connector("leaky").handle_deletion(request("deletion"))
    assert result.status == "failed" and "withheld" in result.message
    assert GOOD_CONFIG["api_key"] not in str(result.to_dict())


@pytest.mark.parametrize("form", [
    'base64.b64encode(("user-" + config["api_key"]).encode()).decode()',   # the secret inside a Basic value
    'base64.b64encode(("us:" + config["api_key"]).encode()).decode()',     # at another alignment
    'urllib.parse.quote(config["api_key"], safe="")',
    'config["api_key"].upper()',
    'config["api_key"][:-1]',  # the secret minus one character: a fragment, not the whole
    'config["api_key"][3:12].encode().hex()',
    'config["api_key"][::-1]',
    '"\u200b".join(config["api_key"][2:])',
], ids=["basic-header", "basic-other-alignment", "url-encoded", "other-case", "fragment", "hex", "reversed",
        "interleaved"])
def test_result_that_carries_a_secret_in_any_wire_form_is_withheld(connectors: ConnectorFactory, form: str) -> None:
    leaky = "import base64, urllib.parse\n" + GOOD_HOOKS.replace(
        'summary={"by": "NAME"})', f'summary={{"header": {form}}})')
    connectors.write("encoded", leaky)
    host = load_host(enabled("encoded"), plugins={"encoded": connectors.load("encoded")}, use_entry_points=False)
    result = host.connector("encoded").handle_deletion(request("deletion"))
    assert result.status == "failed" and "withheld" in result.message


def test_result_that_breaks_the_schema_becomes_an_internal_failure(connectors: ConnectorFactory) -> None:
    sloppy = GOOD_HOOKS.replace(
        'return Result(request.request_id, request.type, "completed", "NAME deleted", summary={"by": "NAME"})',
        'return {"status": "done"}',
    )
    connectors.write("sloppy", sloppy)
    host = load_host(enabled("sloppy"), plugins={"sloppy": connectors.load("sloppy")}, use_entry_points=False)
    result = host.connector("sloppy").handle_deletion(request("deletion"))
    assert result.status == "failed" and result.error and result.error.error_class == "internal"
    assert "invalid result" in result.message


def test_unsupported_request_type_fails_cleanly(connectors: ConnectorFactory) -> None:
    connectors.write("partial")
    host = load_host(enabled("partial"), plugins={"partial": connectors.load("partial")}, use_entry_points=False)
    result = host.connector("partial").handle(request("opt_out"))
    assert result.status == "failed" and "does not support opt_out" in result.message


def test_two_connectors_side_by_side_each_call_reaches_only_its_own(connectors: ConnectorFactory) -> None:
    connectors.write("left", entry_point=True)
    connectors.write("right", entry_point=True)
    host = load_host(enabled("left", "right"))
    left, right = connectors.load("left"), connectors.load("right")
    assert host.connector("right").handle_deletion(request("deletion")).summary == {"by": "right"}
    assert left.CALLS == [] and right.CALLS == [("handle_deletion", "req-1")]
    assert host.connector("left").test_connection().checks[0].message == "left accepted the key"
    assert right.CALLS == [("handle_deletion", "req-1")]


def test_failing_connection_check_is_a_result_not_an_exception(connectors: ConnectorFactory) -> None:
    connectors.write("auth")
    config = {**GOOD_CONFIG, "api_key": "wrong-key-000"}
    host = load_host(enabled("auth", config=config), plugins={"auth": connectors.load("auth")}, use_entry_points=False)
    outcome = host.connector("auth").test_connection()
    assert not outcome.ok and outcome.checks[0].error_class == "authentication"
    assert outcome.to_dict()["message"] == "failed: api"


CAUSED = GOOD_HOOKS + '''
class Holder:
    def __init__(self, key):
        self.key = key

    def __repr__(self):
        return f"Holder({self.key[1:]!r})"

@hookimpl
def handle_opt_out(config, request, state):
    try:
        raise ValueError("inner " + config["api_key"][2:].encode().hex())
    except ValueError as inner:
        raise RuntimeError(f"outer {Holder(config['api_key'])!r}") from inner
'''


def test_a_crash_whose_cause_and_repr_hold_fragments_of_a_secret_leaves_none(
    connectors: ConnectorFactory, caplog: pytest.LogCaptureFixture
) -> None:
    from dsr_framework.redact import Redactor

    connectors.write("caused", CAUSED, hooks=["test_connection", "handle_access", "handle_deletion", "handle_opt_out"])
    host = load_host(enabled("caused"), plugins={"caused": connectors.load("caused")}, use_entry_points=False)
    with caplog.at_level(logging.ERROR):
        result = host.connector("caused").handle_opt_out(request("opt_out"))
    assert result.status == "failed" and "RuntimeError" in result.message
    rule = Redactor([GOOD_CONFIG["api_key"]])
    logged = "\n".join(r.getMessage() + (r.exc_text or "") for r in caplog.records)
    assert "inner" in logged, "the cause is logged for the operator"
    assert not rule.leaks(str(result.to_dict())) and not rule.leaks(logged)


def test_a_request_under_a_regulation_the_manifest_does_not_declare_never_reaches_the_hook(
    connectors: ConnectorFactory,
) -> None:
    manifest = connectors.manifest("narrow", ["test_connection", "handle_access", "handle_deletion"],
                                   regulations=["gdpr", "ccpa"])
    manifest["capabilities"][1]["regulations"] = ["gdpr"]  # handle_deletion: GDPR only
    connectors.write("narrow", manifest=manifest)
    module = connectors.load("narrow")
    host = load_host(enabled("narrow"), plugins={"narrow": module}, use_entry_points=False)
    handle = host.connector("narrow")
    now = datetime.now(UTC)
    refused = handle.handle(DsrRequest("r-1", "deletion", "ccpa", {"email": "a@example.com"}, now))
    served = handle.handle(DsrRequest("r-2", "deletion", "gdpr", {"email": "a@example.com"}, now))
    assert (refused.status, refused.error and refused.error.error_class) == ("failed", "configuration")
    assert "does not carry out ccpa deletion requests" in refused.message
    assert served.status == "completed" and module.CALLS == [("handle_deletion", "r-2")]
    assert handle.manifest.regulations_for("handle_access") == ("gdpr", "ccpa")
