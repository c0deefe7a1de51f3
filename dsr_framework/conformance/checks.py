"""The conformance checks, in the order they run. Each is a plain function; :data:`CHECKS` lists them with
what each proves. Static checks read the connector and its files; runtime checks drive its hooks through
the host facade against its conformance target and judge the outcome by the target's oracle.

A check passes by returning; it ends otherwise by raising :class:`CheckFailed` (a defect, named),
:class:`CheckSkipped` (not part of this connector's contract) or :class:`MissingPiece` (the target or its
oracle lacks what the check needs).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Collection
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pluggy

from dsr_framework import hookspecs
from dsr_framework.conformance.files import file_texts
from dsr_framework.conformance.leaks import captured, email_values, leaked, unmasked_emails
from dsr_framework.conformance.outcomes import CheckFailed, CheckSkipped
from dsr_framework.conformance.schema_checks import secret_looking_fields
from dsr_framework.conformance.session import ConnectorUnderTest, Runtime
from dsr_framework.conformance.target import Oracle
from dsr_framework.host import plugin_manager, register_checked
from dsr_framework.models import HOOK_FOR_TYPE, Result
from dsr_framework.redact import mask_email
from dsr_framework.urls import is_loopback

__all__ = ["CHECKS", "KINDS", "Check", "run_check"]

KINDS = ("access", "deletion", "opt_out")
_REFUSAL_CLASSES = ("authentication", "configuration")


@dataclass(frozen=True)
class Check:
    """One named check: what it proves, whether it needs the target, and its parameters (if any)."""

    name: str
    proves: str
    function: Callable[..., None]
    runtime: bool
    params: tuple[str, ...] = ()

    def ids(self) -> list[tuple[str, str | None]]:
        """``(display name, parameter)`` for each run of this check."""
        if not self.params:
            return [(self.name, None)]
        return [(f"{self.name}[{param}]", param) for param in self.params]


CHECKS: list[Check] = []


def check(name: str, proves: str, *, runtime: bool = False,
          params: tuple[str, ...] = ()) -> Callable[[Callable[..., None]], Callable[..., None]]:
    def register(function: Callable[..., None]) -> Callable[..., None]:
        CHECKS.append(Check(name, proves, function, runtime, params))
        return function

    return register


def run_check(cut: ConnectorUnderTest, selected: Check, param: str | None) -> None:
    """Run one check on ``cut``; returns if it passed, raises an outcome otherwise."""
    if selected.runtime:
        cut.run_runtime(selected.function, param)
    else:
        selected.function(cut, param)


# -- static checks ---------------------------------------------------------------------------------------------


@check("manifest_is_valid", "the manifest matches manifest.schema.json and its id is the connector's name")
def manifest_is_valid(cut: ConnectorUnderTest, _: str | None) -> None:
    manifest = cut.manifest
    if manifest.id != cut.name:
        raise CheckFailed(f"the manifest's id {manifest.id!r} is not the connector's entry-point name {cut.name!r}")


@check("hooks_match_manifest",
       "every capability names an implemented hook and every hook a capability; no unknown hook")
def hooks_match_the_manifest(cut: ConnectorUnderTest, _: str | None) -> None:
    manifest = cut.manifest
    try:
        problems = register_checked(plugin_manager(), cut.plugin, manifest)
    except (pluggy.PluginValidationError, ValueError) as exc:
        raise CheckFailed(f"a hook implementation does not match its specification: {exc}") from None
    if problems:
        raise CheckFailed("the connector " + "; ".join(problems))


@check("credentials_schema_usable",
       "a valid Draft 2020-12 schema whose every $ref resolves; each top-level setting has a title and description")
def credentials_schema_is_usable(cut: ConnectorUnderTest, _: str | None) -> None:
    manifest = cut.manifest
    try:
        schema = manifest.credentials_schema()
    except Exception as exc:  # noqa: BLE001 - UnusableSchema, a missing file, bad JSON: all the connector's
        raise CheckFailed(f"the credentials schema {manifest.credentials_schema_path!r} is unusable: {exc}") from None
    if schema.get("$schema") != "https://json-schema.org/draft/2020-12/schema":
        raise CheckFailed(f"the credentials schema must declare Draft 2020-12, not {schema.get('$schema')!r}")
    untitled = [name for name, sub in (schema.get("properties") or {}).items()
                if not (isinstance(sub, dict) and sub.get("title") and sub.get("description"))]
    if untitled:
        raise CheckFailed(f"top-level settings without a title and description: {', '.join(untitled)}")


@check("secret_fields_flagged", "every secret-looking setting is flagged writeOnly or x-secret")
def secret_fields_are_flagged(cut: ConnectorUnderTest, _: str | None) -> None:
    try:
        schema = cut.manifest.credentials_schema()
    except Exception:  # noqa: BLE001 - credentials_schema_is_usable names the problem
        raise CheckSkipped("the credentials schema is unusable (see credentials_schema_usable)") from None
    unflagged = [path for path, flagged in secret_looking_fields(schema) if not flagged]
    if unflagged:
        raise CheckFailed("secret-looking setting(s) not flagged as secret (writeOnly: true or x-secret: true): "
                          + ", ".join(unflagged))


@check("egress_hosts_declared", "the manifest names the concrete hosts the connector contacts")
def egress_hosts_are_declared(cut: ConnectorUnderTest, _: str | None) -> None:
    hosts = cut.manifest.egress_hosts
    if not hosts:
        raise CheckFailed("the manifest declares no egress_hosts: a host cannot tell where the connector connects")
    bad = [h for h in hosts if "*" in h or is_loopback(h)]
    if bad:
        raise CheckFailed(f"egress hosts must be concrete remote names: {', '.join(bad)}")


@check("import_contacts_nothing", "importing the connector opens no connection, looks up no host, starts no process")
def import_contacts_nothing(cut: ConnectorUnderTest, _: str | None) -> None:
    cut.plugin  # noqa: B018 - imports it (under the guard) if that has not happened yet
    if cut.import_violations:
        raise CheckFailed(f"code run at import time: the connector {'; '.join(dict.fromkeys(cut.import_violations))}")
    if not cut.import_observed:
        raise CheckSkipped("the connector was imported before the harness could watch it (run "
                           "pytest --dsr-conformance=NAME to watch import-time code)")


# -- runtime checks --------------------------------------------------------------------------------------------


def _completed(result: Result, hook: str, what: str) -> None:
    if result.status != "completed":
        kind = f" ({result.error.error_class})" if result.error else ""
        raise CheckFailed(f"{hook} ended {result.status}{kind} {what}, not completed: {result.message}")


@check("host_loads_target_configs",
       "load_host accepts the connector with the target's good and bad configuration", runtime=True)
def host_loads_it(rt: Runtime, _: str | None) -> None:
    rt.handle("good")
    rt.handle("bad")


@check("connection_with_good_credentials", "test_connection passes, with a message per check",
       runtime=True)
def connection_succeeds(rt: Runtime, _: str | None) -> None:
    if "test_connection" not in rt.cut.manifest.hooks:
        raise CheckSkipped("the connector does not declare test_connection")
    result = rt.connection(rt.good)
    failed = [f"{c.name}: {c.message}" for c in result.checks if not c.ok]
    if not result.ok:
        raise CheckFailed(f"test_connection failed with the good config: {'; '.join(failed) or result.message}")
    if not all(c.message for c in result.checks):
        raise CheckFailed("test_connection returned a check without a message")


@check("connection_with_refused_credentials",
       "test_connection fails (a result, not an exception) when the service refuses the credentials", runtime=True)
def connection_fails_cleanly(rt: Runtime, _: str | None) -> None:
    if "test_connection" not in rt.cut.manifest.hooks:
        raise CheckSkipped("the connector does not declare test_connection")
    result = rt.connection(rt.bad)
    if result.ok:
        raise CheckFailed("test_connection passed with credentials the service refuses")
    if any(c.error_class == "internal" for c in result.checks):
        raise CheckFailed(f"test_connection raised instead of returning a failed check: {result.message}")


@check("refused_credentials_fail",
       "with credentials the service refuses, the request ends failed (authentication or configuration) and "
       "changes nothing", runtime=True, params=KINDS)
def refused_credentials_fail(rt: Runtime, kind: str) -> None:
    hook = rt.hook_for(kind)
    rt.prepare()
    subject = rt.target.existing_subject
    oracle = rt.target.oracle
    writes = rt.ask(oracle.writes) if oracle is not None else 0
    final = rt.run(rt.bad, rt.request(kind, subject)).result
    if final.status != "failed":
        raise CheckFailed(f"{hook} ended {final.status} with credentials the service refuses; it must end failed "
                          f"(class authentication or configuration): {final.message}")
    if final.error is None or final.error.error_class not in _REFUSAL_CLASSES:
        found = final.error.error_class if final.error else "none"
        raise CheckFailed(f"{hook} failed with class {found} for refused credentials; expected authentication or "
                          f"configuration: {final.message}")
    if oracle is not None:
        _nothing_changed(rt, oracle, kind, hook, writes)


def _nothing_changed(rt: Runtime, oracle: Oracle, kind: str, hook: str, writes: int) -> None:
    """Fail unless the oracle says a refused request left the subject as it was, with no new write."""
    subject = rt.target.existing_subject
    if kind == "deletion" and not rt.ask(oracle.exists, subject):
        raise CheckFailed(f"{hook} with refused credentials, yet the subject is gone from the service")
    if kind == "opt_out" and rt.ask(oracle.opted_out, subject, rt.target.regulation):
        raise CheckFailed(f"{hook} with refused credentials, yet the service records an opt-out")
    if rt.ask(oracle.writes) != writes:
        raise CheckFailed(f"{hook} with refused credentials, yet the service recorded a write")


def _forms(value: str) -> tuple[str, ...]:
    """How ``value`` may appear in a file scanned as latin-1: as UTF-8 bytes, or JSON-escaped."""
    return (value.encode("utf-8").decode("latin-1"), json.dumps(value)[1:-1])


def _absent(held: Collection[str], texts: list[str]) -> list[str]:
    return [v for v in held if not any(form in text for form in _forms(str(v)) for text in texts)]


@check("access_exports_subject_data",
       "access completes with at least one file, each as listed, together holding what the service holds",
       runtime=True)
def access_exports_the_data(rt: Runtime, _: str | None) -> None:
    hook = rt.hook_for("access")
    rt.prepare()
    subject = rt.target.existing_subject
    oracle = rt.oracle("an access exports the subject's data")
    held = list(rt.ask(oracle.held_data, subject))
    if not held:
        raise CheckFailed("the target's oracle reports no data held for existing_subject, so no export can be "
                          "compared: prepare() must seed some")
    final = rt.run(rt.good, rt.request("access", subject)).result
    _completed(final, hook, "for a subject the service holds data for")
    if not final.files:
        raise CheckFailed(f"{hook} completed for a subject the service holds data for, but listed no file")
    texts = [text for listed in final.files for text in file_texts(Path(listed.path))]
    missing = _absent(held, texts)
    if missing:
        example = mask_email(str(missing[0]))[:40]
        raise CheckFailed(f"{hook}'s files lack {len(missing)} of the {len(held)} values the service holds for the "
                          f"subject (such as {example!r})")


@check("deletion_removes_subject", "after a completed deletion the service no longer holds the subject",
       runtime=True)
def deletion_leaves_the_subject_gone(rt: Runtime, _: str | None) -> None:
    hook = rt.hook_for("deletion")
    rt.prepare()
    subject = rt.target.existing_subject
    oracle = rt.oracle("a deletion leaves the subject gone")
    if not rt.ask(oracle.exists, subject):
        raise CheckFailed("the target's oracle says existing_subject does not exist before the deletion: "
                          "prepare() must create it")
    final = rt.run(rt.good, rt.request("deletion", subject)).result
    _completed(final, hook, "for a subject the service holds")
    if rt.ask(oracle.exists, subject):
        raise CheckFailed(f"{hook} reported completed, but the service still holds the subject (its oracle found "
                          "it after the deletion)")


@check("opt_out_recorded", "after a completed opt-out the service records the subject as opted out",
       runtime=True)
def opt_out_is_recorded(rt: Runtime, _: str | None) -> None:
    hook = rt.hook_for("opt_out")
    rt.prepare()
    subject, regulation = rt.target.existing_subject, rt.target.regulation
    oracle = rt.oracle("an opt-out is recorded")
    if rt.ask(oracle.opted_out, subject, regulation):
        raise CheckFailed("the target's oracle says existing_subject has opted out before the request: prepare() "
                          "must reset it")
    final = rt.run(rt.good, rt.request("opt_out", subject)).result
    _completed(final, hook, "for a subject the service holds")
    if not rt.ask(oracle.opted_out, subject, regulation):
        raise CheckFailed(f"{hook} reported completed, but the service does not record the opt-out (its oracle "
                          f"says the subject has not opted out under {regulation})")


@check("unknown_subject_completes",
       "a request for a subject the service never had completes (nothing to do) and creates nothing",
       runtime=True, params=KINDS)
def unknown_subject_completes(rt: Runtime, kind: str) -> None:
    hook = rt.hook_for(kind)
    rt.prepare()
    subject = rt.target.missing_subject
    final = rt.run(rt.good, rt.request(kind, subject)).result
    _completed(final, hook, "for a subject the service never had (nothing to do is a success)")
    oracle = rt.target.oracle
    if oracle is not None and rt.ask(oracle.exists, subject):
        raise CheckFailed(f"{hook} for an unknown subject created it in the service")


@check("repeat_is_idempotent",
       "calling again with the same request id and no state makes no new write in the service",
       runtime=True, params=KINDS)
def repeated_request_is_idempotent(rt: Runtime, kind: str) -> None:
    hook = rt.hook_for(kind)
    rt.prepare()
    oracle = rt.oracle("a repeated request makes no second write")
    request = rt.request(kind, rt.target.existing_subject)
    rt.run(rt.good, request)
    after_first = rt.ask(oracle.writes)
    rt.run(rt.good, request)  # no state: as after a crash before the host stored it
    after_second = rt.ask(oracle.writes)
    if after_second != after_first:
        raise CheckFailed(f"calling {hook} again with the same request id made {after_second - after_first} new "
                          "write(s) in the service; a repeated call must find the earlier submission")


@check("no_secret_or_email_in_output",
       "no configured secret (any form, or 8+ characters of one) in logs, stdout or stderr; no unmasked email "
       "in them either", runtime=True)
def no_secret_or_email_in_output(rt: Runtime, _: str | None) -> None:
    manifest = rt.cut.manifest
    outputs: list[dict[str, str]] = []
    if "test_connection" in manifest.hooks:
        with captured() as output:
            rt.connection(rt.good)
            rt.connection(rt.bad)
        outputs.append(output.streams())
    for kind in KINDS:
        if HOOK_FOR_TYPE[kind] not in manifest.hooks:  # type: ignore[index]
            continue
        rt.prepare()
        with captured() as output:
            rt.run(rt.good, rt.request(kind, rt.target.existing_subject))
            rt.run(rt.bad, rt.request(kind, rt.target.existing_subject))
            rt.run(rt.good, rt.request(kind, rt.target.missing_subject))
        outputs.append(output.streams())
    emails = email_values(rt.target.existing_subject, rt.target.missing_subject)
    for where in ("log records", "stderr", "stdout"):
        text = "\n".join(streams[where] for streams in outputs)
        if leaked(text, rt.cut.redactor):
            raise CheckFailed(f"a configured secret (or 8 or more characters of one, or an encoded form) appeared in "
                              f"{where}")
        if unmasked_emails(text, emails):
            raise CheckFailed(f"an unmasked email address of the request's subject appeared in {where} (mask it: "
                              "dsr_framework.redact.mask_email)")


@check("host_survives_raise", "an exception inside a hook becomes a failed result of class internal",
       runtime=True, params=hookspecs.HOOK_NAMES)
def host_survives_a_raise(rt: Runtime, hook: str) -> None:
    handle = rt.good
    if not handle.implements(hook):
        raise CheckSkipped(f"the connector does not declare {hook}")
    impl = handle.hookimpl(hook)

    def explode(*_: Any, **__: Any) -> None:
        raise RuntimeError("conformance: simulated defect inside the connector")

    original = impl.function
    setattr(impl, "function", explode)  # noqa: B010 - pluggy types it Final; swapped back below
    try:
        if hook == "test_connection":
            outcome = handle.test_connection()
            if outcome.ok or outcome.checks[0].error_class != "internal":
                raise CheckFailed("a test_connection that raises did not become a failed check of class internal")
        else:
            kind = next(k for k, h in HOOK_FOR_TYPE.items() if h == hook)
            result = handle.handle(rt.request(kind, rt.target.existing_subject))
            if result.status != "failed" or result.error is None or result.error.error_class != "internal":
                raise CheckFailed(f"a {hook} that raises did not become a failed result of class internal")
    finally:
        setattr(impl, "function", original)  # noqa: B010
