"""Settings: defaults come from the credentials schema, filled by jsonschema itself."""

from __future__ import annotations

import copy
import dataclasses
from pathlib import Path
from typing import Any

import pytest

from connector_mparticle.errors import ConfigurationError
from connector_mparticle.settings import (
    AS_GIVEN,
    SECTIONS,
    Settings,
    credentials_schema,
    manifest,
    parse_settings,
)
from connector_mparticle.settings_schema import with_defaults

BASIC = {"type": "basic", "key": "key-1", "secret": "secret-1"}
OAUTH = {"type": "oauth2_client_credentials", "client_id": "client-1", "client_secret": "client-secret-1"}


def config(**extra: Any) -> dict[str, Any]:
    return {"dsr": {"auth": dict(BASIC)}, "inputs": {"auth": dict(BASIC)}, **extra}


def test_the_schema_is_the_file_the_manifest_names() -> None:
    assert manifest().credentials_schema_path == "schemas/credentials.schema.json"
    assert credentials_schema() == manifest().credentials_schema()


def test_only_the_matching_auth_branch_gets_its_defaults() -> None:
    full = with_defaults(config(inputs={"auth": dict(OAUTH)}))
    assert full["dsr"]["auth"] == BASIC  # the OAuth branch's token_url and audience are not for a basic key
    assert full["inputs"]["auth"] == {**OAUTH, "token_url": "https://sso.auth.mparticle.com/oauth/token",
                                      "audience": "https://api.mparticle.com"}
    given = config(dsr={"auth": {**OAUTH, "audience": "https://elsewhere.example.com"}})
    assert with_defaults(given)["dsr"]["auth"]["audience"] == "https://elsewhere.example.com"


def test_missing_sections_get_their_defaults_and_optional_blocks_stay_out() -> None:
    full = with_defaults(config(throttle={"backend": "sqlite", "sqlite_path": "/tmp/budget"}))
    assert full["throttle"] == {"backend": "sqlite", "sqlite_path": "/tmp/budget", "target_share": 0.75,
                                "max_retry_seconds": 60, "max_retry_after_seconds": 30}
    assert full["polling"] == {"min_interval_seconds": 300, "max_interval_seconds": 604800}
    assert full["identities"] == {} and full["callback_urls"] == []
    assert "profile" not in full and "trust_store" not in full and "limits" not in full["throttle"]


def test_filling_defaults_changes_neither_the_config_nor_the_schema() -> None:
    given = config()
    before, schema_before = copy.deepcopy(given), copy.deepcopy(credentials_schema())
    first = with_defaults(given)
    first["callback_urls"].append("https://changed.example.com")
    first["download"]["allowed_hosts"].append("changed.example.com")
    assert given == before and credentials_schema() == schema_before
    assert with_defaults(given)["callback_urls"] == [] and parse_settings(given).callback_urls == ()


@pytest.mark.parametrize("section", sorted(SECTIONS))
def test_each_section_has_one_field_per_schema_property(section: str) -> None:
    """A setting added to (or removed from) a schema section without its field fails here, and vice versa."""
    properties = set(credentials_schema()["properties"][section]["properties"])
    assert {f.name for f in dataclasses.fields(SECTIONS[section])} == properties
    assert section in {f.name for f in dataclasses.fields(Settings)}


def test_every_top_level_setting_is_a_field_a_section_or_worked_out() -> None:
    derived = {"dsr", "inputs", "identities", "profile"}  # become auth, base URLs, identity_mapping, profile
    assert set(credentials_schema()["properties"]) == {*AS_GIVEN, *SECTIONS, *derived}
    assert set(AS_GIVEN) <= {f.name for f in dataclasses.fields(Settings)}


def test_sections_are_typed_and_frozen() -> None:
    settings = parse_settings(config(opt_out={"gdpr_purposes": ["marketing"]}, throttle={"limits": {"dsr": 2}}))
    assert settings.opt_out.gdpr_purposes == ("marketing",) and settings.opt_out.document == "dsr_opt_out"
    assert settings.throttle.limits == {"dsr": 2} and settings.limit("dsr") == (2.0, 1.0)
    assert settings.polling.min_interval_seconds == 300 and settings.timeouts.total_seconds == 60
    with pytest.raises(dataclasses.FrozenInstanceError):
        settings.polling.min_interval_seconds = 1  # type: ignore[misc]


def test_secrets_include_the_redis_url_and_repr_hides_them() -> None:
    settings = parse_settings(config(throttle={"backend": "redis", "redis_url": "redis://user:pw-1@redis.example"}))
    assert "redis://user:pw-1@redis.example" in settings.secrets()
    assert not any(secret in repr(settings) for secret in settings.secrets())


def test_unknown_setting_hints_follow_references_and_auth_branches() -> None:
    from connector_mparticle.cli.config_file import unknown_key_hints

    typos = config(pollin={}, throttle={"limits": {"dsx": 1}, "backnd": "memory"}, identities={"app_user": "other"},
                   dsr={"auth": {**OAUTH, "token_ur": "https://sso.example.com"}, "base_ur": "https://x.example.com"})
    hints = sorted(unknown_key_hints(typos, credentials_schema()))
    assert hints == [  # the place and the known name, never the unknown key (it may be a misplaced value)
        "$.dsr.auth: unknown setting; did you mean 'token_url'?",
        "$.dsr: unknown setting; did you mean 'base_url'?",
        "$.throttle.limits: unknown setting; did you mean 'dsr'?",
        "$.throttle: unknown setting; did you mean 'backend'?",
        "$: unknown setting; did you mean 'polling'?"]


def test_every_url_setting_the_schema_declares_is_judged_by_the_url_policy() -> None:
    from connector_mparticle.settings_schema import url_paths

    assert set(url_paths()) == {("dsr", "base_url"), ("dsr", "auth", "token_url"), ("inputs", "events_base_url"),
                                 ("inputs", "identity_base_url"), ("inputs", "auth", "token_url"),
                                 ("profile", "base_url"), ("profile", "auth", "token_url"), ("callback_urls", "*")}


def test_urls_the_parser_refuses_and_missing_files_are_reported_with_their_paths(tmp_path: Any) -> None:
    bad = "https://host.example.com:99999"  # the schema's pattern allows it; the URL parser does not
    given = config(callback_urls=["https://ok.example.com", bad], trust_store=str(tmp_path / "missing.pem"),
                   inputs={"auth": dict(BASIC), "events_base_url": bad})
    with pytest.raises(ConfigurationError) as raised:
        parse_settings(given)
    message = str(raised.value)
    for path in ("$.callback_urls[1]", "$.inputs.events_base_url", "$.trust_store: no such file"):
        assert path in message
    assert "$.callback_urls[0]" not in message and "3 problems" in message


@pytest.mark.parametrize("name", ["x" * 5000, "a\x00b"])
def test_a_trust_store_name_the_system_refuses_is_no_such_file_not_a_crash(name: str) -> None:
    """Found by the hostile-config property: a 5,000-character path made ``Path.is_file`` raise ENAMETOOLONG."""
    with pytest.raises(ConfigurationError, match=r"\$\.trust_store: no such file"):
        parse_settings(config(trust_store=name))


@pytest.mark.parametrize("setting", ["trust_store", "signature_trust_store"])
def test_a_certificate_file_others_could_change_is_refused(setting: str, tmp_path: Path) -> None:
    """The file decides which servers and which signed receipts are trusted: like the configuration that names
    it, it is refused when another user could change it (before, a world-writable file of another user's was
    used under ``signatures: strict``)."""
    import certifi

    pem = tmp_path / "ca.pem"
    pem.write_bytes(Path(certifi.where()).read_bytes())
    assert parse_settings(config(**{setting: str(pem)}))  # the user's own: fine
    pem.chmod(0o666)
    with pytest.raises(ConfigurationError, match=rf"\$\.{setting}: can be changed by"):
        parse_settings(config(**{setting: str(pem)}))
