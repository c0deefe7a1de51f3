"""Static checks: what a host can tell from the connector's files and its import, before calling any hook."""

from __future__ import annotations

import pluggy

from dsr_framework.conformance.checks.registry import check
from dsr_framework.conformance.outcomes import CheckFailed, CheckSkipped
from dsr_framework.conformance.schema_checks import secret_looking_fields
from dsr_framework.conformance.session import ConnectorUnderTest
from dsr_framework.host import plugin_manager, register_checked
from dsr_framework.urls import is_loopback

__all__: list[str] = []


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

