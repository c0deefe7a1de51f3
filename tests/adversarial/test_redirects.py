"""Class 2: no redirect is ever followed where a secret travels, and nothing comes from the environment.

The OAuth token endpoint (requests-oauthlib follows redirects by default, re-posting the client secret),
discovery and the processor certificate, and every API call share one session policy.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from connector_mparticle import plugin
from connector_mparticle.callbacks import CallbackRejected, CallbackVerifier
from connector_mparticle.sandbox import Sandbox
from connector_mparticle.sandbox.pki import PROCESSOR_DOMAIN, sign_body
from tests.adversarial.conftest import CREDS, config_for, handle_for
from tests.adversarial.hostile import Answer, HostileServer, Seen
from tests.support.hosting import request

FOREIGN_TOKEN = "token-issued-by-a-foreign-host-0123456789"


def token_endpoint_redirects(hostile: HostileServer, foreign: HostileServer, status: int) -> None:
    hostile.on("POST", r"^/oauth/token",
               lambda seen, forward: Answer(status, {"Location": f"{foreign.url}/oauth/token"}))
    foreign.on("POST", r"^/oauth/token", lambda seen, forward: Answer.of_json(
        200, {"access_token": FOREIGN_TOKEN, "expires_in": 28800, "token_type": "Bearer"}))


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
def test_the_oauth_client_secret_never_follows_a_redirect(sandbox: Sandbox, hostile: HostileServer,
                                                          foreign: HostileServer, status: int) -> None:
    token_endpoint_redirects(hostile, foreign, status)
    config = config_for(hostile, sandbox, oauth=True)
    check = plugin.test_connection(config=config)
    result = plugin.handle_opt_out(config=config, request=request("opt_out"), state=None)
    assert not check.ok and result.status == "failed"
    assert result.error is not None and result.error.error_class in ("rejected", "authentication")
    assert "redirect" in result.message
    assert foreign.seen == [], "the token request (and its client secret) went to the redirect target"
    assert not [s for s in hostile.seen if s.authorization and FOREIGN_TOKEN in s.authorization]


def test_a_token_is_only_ever_taken_from_the_configured_endpoint(sandbox: Sandbox, hostile: HostileServer,
                                                                 foreign: HostileServer) -> None:
    """Even an endpoint that answers 200 after a foreign host's redirect chain is not consulted: the connector
    asks the configured token_url and nothing else, and sends only the token that endpoint issued."""
    config = config_for(hostile, sandbox, oauth=True)
    plugin.handle_opt_out(config=config, request=request("opt_out"), state=None)
    token_requests = hostile.requests(r"^/oauth/token")
    assert len(token_requests) == 1 and token_requests[0].json()["client_secret"] == CREDS.client_secret
    assert token_requests[0].headers["content-type"].startswith("application/json")  # as mParticle documents
    assert foreign.seen == []


def verifier(sandbox: Sandbox, discovery_url: str) -> CallbackVerifier:
    return CallbackVerifier(discovery_url, trust_store=sandbox.pki.ca.cert_pem)


def signed(sandbox: Sandbox) -> tuple[dict[str, str], bytes]:
    body = (b'{"controller_id": "1", "subject_request_id": "3f1e8c8e-2b53-4b1e-9d9b-8d0a5c1e2f00", '
            b'"request_status": "completed", "expected_completion_time": null, "results_url": null, '
            b'"extensions": null}')
    return ({"X-OpenDSR-Processor-Domain": PROCESSOR_DOMAIN,
             "X-OpenDSR-Signature": sign_body(sandbox.pki.processor.key, body)}, body)


@pytest.mark.parametrize("where", ["discovery", "certificate"])
def test_discovery_and_certificate_fetches_never_follow_a_redirect(sandbox: Sandbox, hostile: HostileServer,
                                                                   foreign: HostileServer, where: str) -> None:
    foreign.upstream = sandbox.url  # the redirect target would even serve the right certificate
    pattern = r"^/v3/discovery" if where == "discovery" else r"opendsr_cert\.pem"
    hostile.on("GET", pattern, lambda seen, forward: Answer(302, {"Location": f"{foreign.url}{seen.path}"}))
    with pytest.raises(CallbackRejected) as caught:
        verifier(sandbox, f"{hostile.url}/v3/discovery").verify(*signed(sandbox))
    assert caught.value.reason == "certificate_unavailable" and foreign.seen == []


def test_a_huge_discovery_answer_is_refused_without_reading_it_all(sandbox: Sandbox, hostile: HostileServer) -> None:
    hostile.on("GET", r"^/v3/discovery", lambda seen, forward: Answer(200, {}, b"{" + b" " * 5_000_000 + b"}"))
    with pytest.raises(CallbackRejected) as caught:
        verifier(sandbox, f"{hostile.url}/v3/discovery").verify(*signed(sandbox))
    assert caught.value.reason == "certificate_unavailable"


@pytest.mark.parametrize("variable", ["HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy"])
def test_proxies_from_the_environment_are_never_used(sandbox: Sandbox, hostile: HostileServer,
                                                     foreign: HostileServer, monkeypatch: pytest.MonkeyPatch,
                                                     variable: str) -> None:
    sandbox.seed_profile({"email": "jane@example.com"})
    monkeypatch.setenv(variable, foreign.url)
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    assert handle_for(config_for(hostile, sandbox)).handle(request("opt_out")).status == "completed"
    assert foreign.seen == []


def test_netrc_credentials_from_the_environment_are_never_sent(sandbox: Sandbox, hostile: HostileServer,
                                                               tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    netrc = tmp_path / ".netrc"
    netrc.write_text("machine 127.0.0.1 login netrc-user password netrc-password-123\n")
    netrc.chmod(0o600)
    monkeypatch.setenv("NETRC", str(netrc))
    monkeypatch.setenv("HOME", str(tmp_path))
    config = config_for(hostile, sandbox)
    config["dsr"]["base_url"] = hostile.url
    plugin.test_connection(config=config)
    import base64

    netrc_header = "Basic " + base64.b64encode(b"netrc-user:netrc-password-123").decode()
    assert hostile.seen and all(s.authorization != netrc_header for s in hostile.seen)


def test_cookies_a_server_sets_are_never_sent_back(sandbox: Sandbox, hostile: HostileServer) -> None:
    def with_cookie(seen: Seen, forward: Any) -> Answer:
        answer = forward()
        answer.headers["Set-Cookie"] = "session=attacker-chosen; Path=/"
        return answer

    hostile.on("*", r"^/v", with_cookie)
    handle = handle_for(config_for(hostile, sandbox))
    handle.test_connection()
    handle.test_connection()
    assert hostile.seen and not [s for s in hostile.seen if "cookie" in s.headers]
