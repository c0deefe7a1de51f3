"""The conformance checks. Each test is one named check; every skip states its reason.

Static checks read the manifest and credentials schema. Runtime checks load the connector through the host
facade with the target's configuration and drive each declared capability to a final result, with the
network limited to the declared egress hosts and the target.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Iterator, Mapping
from typing import Any

import jsonschema
import pytest

from dsr_framework.conformance import ConformanceTarget
from dsr_framework.conformance.plugin import handle_for
from dsr_framework.conformance.support import EgressGuard, drive, new_request, secret_looking_fields
from dsr_framework.hookspecs import HOOK_NAMES
from dsr_framework.host import WITHHELD_MESSAGE, ConnectorHandle
from dsr_framework.manifest import Manifest, load_manifest
from dsr_framework.models import HOOK_FOR_TYPE, DsrRequest, Result
from dsr_framework.validation import SchemaViolation, framework_validator, secret_paths, secret_values

pytestmark = pytest.mark.dsr_conformance

CAPABILITIES = ["access", "deletion", "opt_out"]


def _manifest(plugin: object) -> Manifest:
    try:
        return load_manifest(plugin)
    except SchemaViolation as exc:
        pytest.fail(f"the manifest does not match manifest.schema.json:\n{exc}")
    except Exception as exc:  # noqa: BLE001
        pytest.fail(f"the manifest cannot be read: {type(exc).__name__}: {exc}")


def _budget(target: ConformanceTarget, manifest: Manifest, hook: str) -> float:
    capability = manifest.capability(hook)
    default = 60.0 if capability is not None and capability.asynchronous else 20.0
    return float(target.budgets.get(hook, default))


def _declared(manifest: Manifest, kind: str) -> str:
    hook = HOOK_FOR_TYPE[kind]  # type: ignore[index]
    if hook not in manifest.hooks:
        pytest.skip(f"the connector does not declare {hook}, so {kind} requests are not part of its contract")
    return hook


def _request(kind: str, subject: Mapping[str, str], target: ConformanceTarget, folder: Any) -> DsrRequest:
    """A fresh request (new id) for ``subject``, writing into ``folder``."""
    return new_request(kind, subject, target.regulation, str(folder), f"conformance-{uuid.uuid4().hex[:12]}")


def _secrets(plugin: object, target: ConformanceTarget) -> set[str]:
    paths = secret_paths(_manifest(plugin).credentials_schema())
    return {s for s in secret_values(target.good_config, paths) | secret_values(target.bad_config, paths)
            if len(s) >= 4}


def _leaks(text: str, secrets: set[str]) -> list[str]:
    return sorted(f"{s[:2]}…({len(s)} chars)" for s in secrets if s in text)


@pytest.fixture
def guard(dsr_target_required: ConformanceTarget, dsr_plugin: object) -> Iterator[EgressGuard]:
    """Only the manifest's egress hosts and the target may be contacted during a runtime check."""
    egress = EgressGuard(set(_manifest(dsr_plugin).egress_hosts) | set(dsr_target_required.allowed_hosts))
    with egress.active():
        yield egress
    assert not egress.violations, (
        "the connector contacted hosts it does not declare in its manifest's egress_hosts: "
        + ", ".join(sorted(set(egress.violations))))


# -- static checks -------------------------------------------------------------------------------------------


def test_manifest_validates(dsr_plugin: object, dsr_connector_name: str) -> None:
    manifest = _manifest(dsr_plugin)
    assert manifest.id == dsr_connector_name, f"manifest id {manifest.id!r} is not the entry-point name"


def test_declared_hooks_match_the_implementations(dsr_plugin: object) -> None:
    import pluggy

    from dsr_framework import hookspecs

    manifest = _manifest(dsr_plugin)
    pm = pluggy.PluginManager(hookspecs.PROJECT)
    pm.add_hookspecs(hookspecs)
    pm.register(dsr_plugin)
    implemented = {caller.name for caller in pm.get_hookcallers(dsr_plugin) or []}
    unknown = sorted(implemented - set(HOOK_NAMES))
    assert not unknown, f"implements hook(s) that are not part of the contract (misspelled?): {', '.join(unknown)}"
    undeclared = sorted(implemented - set(manifest.hooks))
    assert not undeclared, f"implements hook(s) its manifest does not declare: {', '.join(undeclared)}"
    missing = sorted(set(manifest.hooks) - implemented)
    assert not missing, f"declares hook(s) it does not implement: {', '.join(missing)}"
    for hook in manifest.hooks:
        if hook != "test_connection":
            assert manifest.capability(hook) is not None, f"{hook} is declared without a capability entry"


def test_credentials_schema_is_valid_draft_2020_12(dsr_plugin: object) -> None:
    schema = _manifest(dsr_plugin).credentials_schema()
    assert schema.get("$schema") == "https://json-schema.org/draft/2020-12/schema", (
        f"the credentials schema must declare Draft 2020-12, not {schema.get('$schema')!r}")
    jsonschema.Draft202012Validator.check_schema(schema)
    untitled = [name for name, sub in (schema.get("properties") or {}).items()
                if not (isinstance(sub, dict) and sub.get("title") and sub.get("description"))]
    assert not untitled, f"top-level settings without a title and description: {', '.join(untitled)}"


def test_secret_fields_are_flagged(dsr_plugin: object) -> None:
    fields = secret_looking_fields(_manifest(dsr_plugin).credentials_schema())
    unflagged = [path for path, flagged in fields if not flagged]
    assert not unflagged, ("secret-looking field(s) not flagged as secret (writeOnly: true or x-secret: true): "
                           + ", ".join(unflagged))


def test_egress_hosts_are_declared(dsr_plugin: object) -> None:
    hosts = _manifest(dsr_plugin).egress_hosts
    assert hosts, "the manifest declares no egress_hosts: a host cannot tell where the connector will connect"
    bad = [h for h in hosts if "*" in h or h in ("localhost", "127.0.0.1")]
    assert not bad, f"egress hosts must be concrete remote names: {', '.join(bad)}"


# -- runtime checks ------------------------------------------------------------------------------------------


def test_connection_succeeds_with_the_good_config(dsr_handle: ConnectorHandle, guard: EgressGuard) -> None:
    if not dsr_handle.implements("test_connection"):
        pytest.skip("the connector does not declare test_connection")
    result = dsr_handle.test_connection()
    failed = [f"{c.name}: {c.message}" for c in result.checks if not c.ok]
    assert result.ok, f"test_connection failed with the good config: {'; '.join(failed) or result.message}"
    assert all(c.message for c in result.checks)


def test_connection_fails_cleanly_with_the_bad_config(dsr_connector_name: str, dsr_plugin: object,
                                                     dsr_target_required: ConformanceTarget,
                                                     guard: EgressGuard) -> None:
    handle = handle_for(dsr_connector_name, dsr_plugin, dsr_target_required.bad_config)
    if not handle.implements("test_connection"):
        pytest.skip("the connector does not declare test_connection")
    result = handle.test_connection()  # the facade turns exceptions into results; look for their traces
    text = json.dumps(result.to_dict())
    assert not result.ok, "test_connection passed with credentials the target refuses"
    assert WITHHELD_MESSAGE not in text, "the connector put a configured secret in its test_connection result"
    assert not any(c.error_class == "internal" for c in result.checks), (
        f"test_connection raised instead of returning a failed check: {result.message}")
    leaked = _leaks(text, _secrets(dsr_plugin, dsr_target_required))
    assert not leaked, f"secret value(s) in the test_connection result: {', '.join(leaked)}"


@pytest.mark.parametrize("kind", CAPABILITIES)
def test_capability_reaches_a_final_result(kind: str, dsr_handle: ConnectorHandle, dsr_plugin: object,
                                           dsr_target_required: ConformanceTarget, guard: EgressGuard,
                                           tmp_path: Any) -> None:
    manifest = _manifest(dsr_plugin)
    hook = _declared(manifest, kind)
    target = dsr_target_required
    request = _request(kind, target.existing_subject, target, tmp_path)
    try:
        final, seen = drive(dsr_handle, request, _budget(target, manifest, hook))
    except TimeoutError as exc:
        pytest.fail(str(exc))
    for result in seen:
        assert list(framework_validator("result").iter_errors(result.to_dict())) == []
        if result.state is not None:
            assert json.loads(json.dumps(result.state)) == dict(result.state), "state is not plain JSON"
    assert not (final.error and final.error.error_class == "internal"), f"{hook} misbehaved: {final.message}"
    assert final.status == "completed", f"{hook} did not complete for an existing subject: {final.message}"
    for file in final.files:
        assert str(tmp_path) in file.path, f"{hook} wrote {file.path} outside the request's output directory"


@pytest.mark.parametrize("kind", CAPABILITIES)
def test_capability_for_an_unknown_subject_completes(kind: str, dsr_handle: ConnectorHandle, dsr_plugin: object,
                                                     dsr_target_required: ConformanceTarget, guard: EgressGuard,
                                                     tmp_path: Any) -> None:
    manifest = _manifest(dsr_plugin)
    hook = _declared(manifest, kind)
    target = dsr_target_required
    request = _request(kind, target.missing_subject, target, tmp_path)
    final, _ = drive(dsr_handle, request, _budget(target, manifest, hook))
    assert final.status == "completed", (
        f"{hook} for a subject the remote never had must complete (nothing to do), not: {final.message}")


@pytest.mark.parametrize("kind", CAPABILITIES)
def test_repeated_call_with_the_same_request_id_is_idempotent(
    kind: str, dsr_handle: ConnectorHandle, dsr_plugin: object, dsr_target_required: ConformanceTarget,
    guard: EgressGuard, tmp_path: Any,
) -> None:
    manifest = _manifest(dsr_plugin)
    hook = _declared(manifest, kind)
    target = dsr_target_required
    if target.remote_writes is None:
        pytest.skip("the target does not count remote writes (ConformanceTarget.remote_writes), so a second "
                    "submission could not be detected")
    request = _request(kind, target.existing_subject, target, tmp_path)
    budget = _budget(target, manifest, hook)
    first, _ = drive(dsr_handle, request, budget)
    after_first = target.remote_writes()
    second, _ = drive(dsr_handle, request, budget)  # no state: as after a crash before the host stored it
    after_second = target.remote_writes()
    assert after_second == after_first, (
        f"calling {hook} again with request id {request.request_id} made {after_second - after_first} new "
        "remote write(s); a repeated call must find the earlier submission instead")
    assert second.status == first.status, f"the repeat ended {second.status}, the first call {first.status}"


def test_no_secret_in_logs_results_or_errors(dsr_connector_name: str, dsr_handle: ConnectorHandle,
                                            dsr_plugin: object, dsr_target_required: ConformanceTarget,
                                            guard: EgressGuard, caplog: pytest.LogCaptureFixture,
                                            tmp_path: Any) -> None:
    target = dsr_target_required
    manifest = _manifest(dsr_plugin)
    secrets = _secrets(dsr_plugin, target)
    results: list[Result] = []
    with caplog.at_level(logging.DEBUG):
        bad = handle_for(dsr_connector_name, dsr_plugin, target.bad_config)
        texts = []
        if "test_connection" in manifest.hooks:
            texts += [json.dumps(dsr_handle.test_connection().to_dict()), json.dumps(bad.test_connection().to_dict())]
        for kind in CAPABILITIES:
            if HOOK_FOR_TYPE[kind] not in manifest.hooks:  # type: ignore[index]
                continue
            request = _request(kind, target.existing_subject, target, tmp_path)
            results.append(drive(dsr_handle, request, _budget(target, manifest, HOOK_FOR_TYPE[kind]))[0])  # type: ignore[index]
            results.append(bad.handle(request))
    texts += [json.dumps(r.to_dict()) for r in results]
    withheld = [r.request_type for r in results if WITHHELD_MESSAGE in r.message]
    assert not withheld, f"the connector put a configured secret in its {', '.join(withheld)} result(s)"
    leaked = _leaks("\n".join(texts), secrets)
    assert not leaked, f"secret value(s) in results: {', '.join(leaked)}"
    logged = [r.getMessage() + (r.exc_text or "") for r in caplog.records]
    leaked = _leaks("\n".join(logged), secrets)
    assert not leaked, f"secret value(s) in log records: {', '.join(leaked)}"


@pytest.mark.parametrize("hook", list(HOOK_NAMES))
def test_the_host_survives_a_hook_that_raises(hook: str, dsr_handle: ConnectorHandle, dsr_plugin: object,
                                              dsr_target_required: ConformanceTarget, tmp_path: Any) -> None:
    if not dsr_handle.implements(hook):
        pytest.skip(f"the connector does not declare {hook}")
    impl = dsr_handle.hookimpl(hook)

    def explode(*_: Any, **__: Any) -> None:
        raise RuntimeError("conformance: simulated defect inside the connector")

    original = impl.function
    setattr(impl, "function", explode)  # noqa: B010 - pluggy types it Final; swapped back below
    try:
        if hook == "test_connection":
            outcome = dsr_handle.test_connection()
            assert not outcome.ok and outcome.checks[0].error_class == "internal"
        else:
            kind = next(k for k, h in HOOK_FOR_TYPE.items() if h == hook)
            result = dsr_handle.handle(new_request(kind, dsr_target_required.existing_subject,
                                                   dsr_target_required.regulation, str(tmp_path), "conformance-raise"))
            assert result.status == "failed" and result.error is not None and result.error.error_class == "internal"
            assert "simulated defect" in result.message
    finally:
        setattr(impl, "function", original)  # noqa: B010
