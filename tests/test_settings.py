"""Settings: defaults come from the credentials schema, filled by jsonschema itself."""

from __future__ import annotations

import copy
from typing import Any

from connector_mparticle.settings import _with_defaults, credentials_schema, manifest, parse_settings

BASIC = {"type": "basic", "key": "key-1", "secret": "secret-1"}
OAUTH = {"type": "oauth2_client_credentials", "client_id": "client-1", "client_secret": "client-secret-1"}


def config(**extra: Any) -> dict[str, Any]:
    return {"dsr": {"auth": dict(BASIC)}, "inputs": {"auth": dict(BASIC)}, **extra}


def test_the_schema_is_the_file_the_manifest_names() -> None:
    assert manifest().credentials_schema_path == "schemas/credentials.schema.json"
    assert credentials_schema() == manifest().credentials_schema()


def test_only_the_matching_auth_branch_gets_its_defaults() -> None:
    full = _with_defaults(config(inputs={"auth": dict(OAUTH)}))
    assert full["dsr"]["auth"] == BASIC  # the OAuth branch's token_url and audience are not for a basic key
    assert full["inputs"]["auth"] == {**OAUTH, "token_url": "https://sso.auth.mparticle.com/oauth/token",
                                      "audience": "https://api.mparticle.com"}
    given = config(dsr={"auth": {**OAUTH, "audience": "https://elsewhere.example.com"}})
    assert _with_defaults(given)["dsr"]["auth"]["audience"] == "https://elsewhere.example.com"


def test_missing_sections_get_their_defaults_and_optional_blocks_stay_out() -> None:
    full = _with_defaults(config(throttle={"backend": "sqlite", "sqlite_path": "/tmp/budget"}))
    assert full["throttle"] == {"backend": "sqlite", "sqlite_path": "/tmp/budget", "target_share": 0.75,
                                "max_retry_seconds": 60, "max_retry_after_seconds": 30}
    assert full["polling"] == {"min_interval_seconds": 300, "max_interval_seconds": 604800}
    assert full["identities"] == {} and full["callback_urls"] == []
    assert "profile" not in full and "trust_store" not in full and "limits" not in full["throttle"]


def test_filling_defaults_changes_neither_the_config_nor_the_schema() -> None:
    given = config()
    before, schema_before = copy.deepcopy(given), copy.deepcopy(credentials_schema())
    first = _with_defaults(given)
    first["callback_urls"].append("https://changed.example.com")
    first["download"]["allowed_hosts"].append("changed.example.com")
    assert given == before and credentials_schema() == schema_before
    assert _with_defaults(given)["callback_urls"] == [] and parse_settings(given).callback_urls == ()
