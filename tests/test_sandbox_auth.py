"""Authentication as each API documents it: Basic on DSR, Events and IDSync; OAuth bearer tokens from
/oauth/token on the Profile API, and on the others only for workspaces that accept them (``oauth_apis``)."""

from __future__ import annotations

import os

import pytest
import requests

from connector_mparticle.sandbox import Sandbox
from tests.support.mp import CREDS, batch, dsr_body

TOKEN_REQUEST = {"grant_type": "client_credentials", "client_id": CREDS.client_id,
                 "client_secret": CREDS.client_secret, "audience": "https://api.mparticle.com"}


def token(sb: Sandbox) -> dict[str, str]:
    response = requests.post(f"{sb.url}/oauth/token", json=TOKEN_REQUEST, timeout=5)
    assert response.status_code == 200
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


def calls(sb: Sandbox, headers: dict[str, str]) -> dict[str, int]:
    """Status of one call to each API with ``headers``."""
    search = {"environment": "production", "known_identities": {"email": "nobody@example.com"}}
    profile = f"{sb.url}/userprofile/v1/{CREDS.org_id}/{CREDS.account_id}/{CREDS.workspace_id}/1?fields=user_identities"
    return {
        "dsr": requests.post(f"{sb.url}/v3/requests", json=dsr_body(), headers=headers, timeout=5).status_code,
        "events": requests.post(f"{sb.url}/v2/events", json=batch(), headers=headers, timeout=5).status_code,
        "identity": requests.post(f"{sb.url}/v1/search", json=search, headers=headers, timeout=5).status_code,
        "profile": requests.get(profile, headers=headers, timeout=5).status_code,
    }


def test_oauth_tokens_come_from_form_or_json_bodies_as_documented(sandbox: Sandbox) -> None:
    form = requests.post(f"{sandbox.url}/oauth/token", data=TOKEN_REQUEST, timeout=5)
    as_json = requests.post(f"{sandbox.url}/oauth/token", json=TOKEN_REQUEST, timeout=5)
    for response in (form, as_json):
        assert response.status_code == 200
        assert response.json()["token_type"] == "Bearer" and response.json()["expires_in"] == 28800


def test_bearer_tokens_open_only_the_profile_api_by_default(sandbox: Sandbox) -> None:
    """mParticle documents OAuth for the Platform and Profile APIs; DSR, Events and IDSync take Basic."""
    assert calls(sandbox, token(sandbox)) == {"dsr": 401, "events": 403, "identity": 401, "profile": 400}
    assert sandbox.dsrs() == [] and sandbox.find_profiles() == []


def test_the_oauth_apis_switch_lets_a_workspace_accept_tokens_on_other_apis(sandbox: Sandbox) -> None:
    sandbox.set_workspace(oauth_apis=["dsr", "events", "identity"])
    bearer = token(sandbox)
    assert calls(sandbox, bearer) == {"dsr": 201, "events": 202, "identity": 404, "profile": 400}
    assert {e["client"] for e in sandbox.request_log() if e["status"] < 400 and e["api"] != "oauth"} == {"oauth"}
    sandbox.expire_tokens()
    assert calls(sandbox, bearer) == {"dsr": 401, "events": 403, "identity": 401, "profile": 401}


def test_the_profile_api_takes_no_basic_credentials(sandbox: Sandbox) -> None:
    basic = requests.Request(auth=(CREDS.input_key, CREDS.input_secret), url=sandbox.url).prepare().headers
    assert calls(sandbox, dict(basic))["profile"] == 401
    assert calls(sandbox, {})["profile"] == 401


def test_oauth_refuses_wrong_clients_and_audiences(sandbox: Sandbox) -> None:
    wrong = requests.post(f"{sandbox.url}/oauth/token", data={**TOKEN_REQUEST, "client_secret": "guess"}, timeout=5)
    assert wrong.status_code == 401 and wrong.json()["error"] == "access_denied"
    other = requests.post(f"{sandbox.url}/oauth/token", data={**TOKEN_REQUEST, "audience": "https://evil.example"},
                          timeout=5)
    assert other.status_code == 403
    grant = requests.post(f"{sandbox.url}/oauth/token", data={**TOKEN_REQUEST, "grant_type": "password"}, timeout=5)
    assert grant.status_code == 400 and grant.json()["error"] == "unsupported_grant_type"
    listed = requests.post(f"{sandbox.url}/oauth/token", json=[TOKEN_REQUEST], timeout=5)
    assert listed.status_code == 400 and listed.json()["error"] == "invalid_request"


@pytest.mark.parametrize("encoding", ["json", "form"])
def test_a_token_request_without_the_documented_audience_is_refused(sandbox: Sandbox, encoding: str) -> None:
    """developers/profile-api: the token request body "must contain" audience https://api.mparticle.com; the
    endpoint (Auth0) refuses a client-credentials request without one, and issues nothing."""
    body = {k: v for k, v in TOKEN_REQUEST.items() if k != "audience"}
    sent = {"json": body} if encoding == "json" else {"data": body}
    refused = requests.post(f"{sandbox.url}/oauth/token", timeout=5, **sent)  # type: ignore[arg-type]
    assert refused.status_code == 403 and refused.json()["error"] == "access_denied"
    assert "access_token" not in refused.json()
    with_audience = {"json": TOKEN_REQUEST} if encoding == "json" else {"data": TOKEN_REQUEST}
    assert requests.post(f"{sandbox.url}/oauth/token", timeout=5, **with_audience).status_code == 200  # type: ignore[arg-type]


def test_requests_oauthlib_client_credentials_flow_reaches_the_profile_api(
    sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    from oauthlib.oauth2 import BackendApplicationClient
    from requests_oauthlib import OAuth2Session

    monkeypatch.setitem(os.environ, "OAUTHLIB_INSECURE_TRANSPORT", "1")
    jane = sandbox.seed_profile({"email": "jane@example.com"})
    session = OAuth2Session(client=BackendApplicationClient(client_id=CREDS.client_id))
    fetched = session.fetch_token(token_url=f"{sandbox.url}/oauth/token", client_id=CREDS.client_id,
                                  client_secret=CREDS.client_secret, include_client_id=True,
                                  audience="https://api.mparticle.com")
    assert fetched["expires_in"] == 28800
    url = f"{sandbox.url}/userprofile/v1/{CREDS.org_id}/{CREDS.account_id}/{CREDS.workspace_id}/{jane['mpid']}"
    response = session.get(url, params={"fields": "user_identities"}, timeout=5)
    assert response.status_code == 200 and response.json()["mpid"] == int(jane["mpid"])
