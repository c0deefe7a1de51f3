"""Class 1: credentials go only to the origin they belong to, as the HTTP client sees it.

A hostile mParticle names results URLs built to make two URL parsers disagree about the host (backslashes,
user info, percent-encoding, other ports, other spellings of the host); a foreign host on 127.0.0.2
records whatever reaches it. No credential may ever arrive there, and nothing refused may be contacted.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from connector_mparticle import plugin
from connector_mparticle.sandbox import Sandbox
from tests.adversarial.conftest import CREDS, config_for, handle_for
from tests.adversarial.hostile import Answer, HostileServer, Seen
from tests.support.hosting import request

STATUS_PATH = r"^/v3/requests/[0-9a-f-]{36}$"


def results_url_is(hostile: HostileServer, url_for: Any) -> None:
    """Every status answer names ``url_for(original)`` as its results_url."""
    def tamper(seen: Seen, forward: Any) -> Answer:
        answer = forward()
        body = answer.json()
        if isinstance(body, dict) and body.get("results_url"):
            body["results_url"] = url_for(body["results_url"])
        return answer.with_json(body)

    hostile.on("GET", STATUS_PATH, tamper)


def finish_access(sandbox: Sandbox, config: dict[str, Any], folder: Path) -> Any:
    """Submit an access request, let mParticle complete it, and make the call that downloads the results."""
    handle = handle_for(config)
    req = request("access", output_dir=str(folder))
    first = handle.handle(req)
    assert first.status == "pending", first.message
    sandbox.force_status(first.summary["subject_request_id"], "completed")
    return handle.handle(req, first.state)


def basic_headers_seen(server: HostileServer) -> list[str]:
    return [s.authorization for s in server.seen if s.authorization]


@pytest.mark.parametrize("make_url", [
    lambda f, own: f"{f.url}\\@{own.removeprefix('http://')}/dsr-results/x.zip",  # urlsplit: own; urllib3: foreign
    lambda f, own: f"{own}\\@{f.url.removeprefix('http://')}/dsr-results/x.zip",        # the reverse
    lambda f, own: f"http://user:pass@{f.url.removeprefix('http://')}/x.zip",            # user info
    lambda f, own: f"http://{CREDS.workspace_key}@{own.removeprefix('http://')}/x.zip",  # user info on our own host
    lambda f, own: f"http://127%2e0.0.2:{f.port}/x.zip",                                 # percent-encoded host
    lambda f, own: f"http://127.0.0.1:{f.port}/x.zip",                                   # our host, another port
    lambda f, own: f"http://localhost:{own.rsplit(':', 1)[1]}/x.zip",                    # another name for our host
    lambda f, own: f"{f.url}/x.zip",                                                     # plainly foreign
    lambda f, own: f" {f.url}/x.zip",                                                    # leading whitespace
    lambda f, own: f"http://127.0.0.2\t:{f.port}/x.zip",                                 # control character
    lambda f, own: f"http://\uff46oreign.example:{f.port}/x.zip",                        # IDNA / non-ASCII
    lambda f, own: f"HTTP://127.0.0.2:{f.port}/x.zip",                                   # case
    lambda f, own: f"//127.0.0.2:{f.port}/x.zip",                                        # scheme-relative
    lambda f, own: f"ftp://127.0.0.2:{f.port}/x.zip",                                    # another scheme
], ids=["backslash", "backslash-reverse", "userinfo-foreign", "userinfo-own", "percent-host", "other-port",
        "localhost-alias", "foreign", "whitespace", "control-char", "idna", "upper-scheme", "scheme-relative",
        "ftp"])
def test_a_results_url_the_policy_refuses_is_never_contacted(sandbox: Sandbox, hostile: HostileServer,
                                                              foreign: HostileServer, tmp_path: Path,
                                                              make_url: Any) -> None:
    sandbox.seed_profile({"email": "jane@example.com"})
    # each URL names the request (as mParticle's do), so that only the download policy can refuse it
    results_url_is(hostile, lambda original: make_url(foreign, hostile.url).replace(
        "x.zip", urlsplit(original).path.lstrip("/")))
    result = finish_access(sandbox, config_for(hostile, sandbox), tmp_path)
    assert result.status == "pending" and result.state is not None, result.message
    # mParticle completed it: a link the connector refuses is a setting for a person to look at, not a verdict
    assert result.message.startswith("mParticle completed the access request") and result.action_required
    assert foreign.seen == [], "a refused results URL was contacted"
    downloads = hostile.requests(r"\.zip")
    assert downloads == [], "a refused results URL reached our own host under another name"
    assert [p.name for p in tmp_path.iterdir()] == []


def test_an_allowed_foreign_download_host_gets_no_credentials(sandbox: Sandbox, hostile: HostileServer,
                                                              foreign: HostileServer, tmp_path: Path) -> None:
    sandbox.seed_profile({"email": "jane@example.com"})
    foreign.upstream = sandbox.url  # serves the real results file
    results_url_is(hostile, lambda original: original.replace(hostile.url, foreign.url))
    config = config_for(hostile, sandbox, download={"allowed_hosts": [f"127.0.0.2:{foreign.port}"]})
    result = finish_access(sandbox, config, tmp_path)
    assert result.status == "completed", result.message
    assert [s.path for s in foreign.seen] and basic_headers_seen(foreign) == []


def test_a_download_redirect_is_followed_only_to_allowed_hosts_and_never_with_credentials(
        sandbox: Sandbox, hostile: HostileServer, foreign: HostileServer, tmp_path: Path) -> None:
    sandbox.seed_profile({"email": "jane@example.com"})
    foreign.upstream = sandbox.url
    hostile.on("GET", r"^/dsr-results/", lambda seen, forward: Answer(302, {"Location": f"{foreign.url}{seen.path}"}))
    allowed = config_for(hostile, sandbox, download={"allowed_hosts": [f"127.0.0.2:{foreign.port}"]})
    result = finish_access(sandbox, allowed, tmp_path)
    assert result.status == "completed", result.message
    assert hostile.requests(r"^/dsr-results/")[0].authorization is not None  # the first hop is mParticle's own
    assert foreign.requests(r"^/dsr-results/") and basic_headers_seen(foreign) == []


def test_a_download_redirect_to_a_host_not_allowed_is_not_followed(sandbox: Sandbox, hostile: HostileServer,
                                                                   foreign: HostileServer, tmp_path: Path) -> None:
    sandbox.seed_profile({"email": "jane@example.com"})
    hostile.on("GET", r"^/dsr-results/", lambda seen, forward: Answer(302, {"Location": f"{foreign.url}/steal"}))
    result = finish_access(sandbox, config_for(hostile, sandbox), tmp_path)
    assert result.status == "pending" and result.state is not None, result.message
    assert result.message.startswith("mParticle completed the access request") and result.action_required
    assert foreign.seen == []


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
def test_an_api_redirect_is_never_followed(sandbox: Sandbox, hostile: HostileServer, foreign: HostileServer,
                                           status: int) -> None:
    hostile.on("*", r"^/(v1|v2|v3|userprofile)/",
               lambda seen, forward: Answer(status, {"Location": f"{foreign.url}{seen.path}"}))
    config = config_for(hostile, sandbox)
    check = plugin.test_connection(config=config)
    assert not check.ok and all("redirect" in c.message for c in check.checks)
    for kind in ("access", "deletion", "opt_out"):
        result = plugin.handle_access(config=config, request=request("access"), state=None) if kind == "access" else (
            plugin.handle_deletion(config=config, request=request("deletion"), state=None) if kind == "deletion"
            else plugin.handle_opt_out(config=config, request=request("opt_out"), state=None))
        assert result.status == "failed" and result.error is not None and result.error.error_class == "rejected"
    assert foreign.seen == []


def test_each_credential_goes_only_to_its_own_api_host(sandbox: Sandbox, foreign: HostileServer) -> None:
    """DSR, Events, Identity and the Profile API on four hosts: the workspace key never reaches the input hosts,
    the input key never reaches the DSR host, the bearer token only the Profile API's, although all four are the
    same sandbox behind different origins."""
    sandbox.seed_profile({"email": "jane@example.com"})
    with HostileServer("127.0.0.1", sandbox.url) as dsr, HostileServer("127.0.0.2", sandbox.url) as events, \
            HostileServer("127.0.0.3", sandbox.url) as identity, HostileServer("127.0.0.4", sandbox.url) as profile:
        config = config_for(dsr, sandbox)
        config["inputs"]["events_base_url"] = events.url
        config["inputs"]["identity_base_url"] = identity.url
        config["profile"]["base_url"] = profile.url
        handle = handle_for(config)
        assert handle.test_connection().ok
        assert handle.handle(request("opt_out")).status == "completed"
        pending = handle.handle(request("deletion"))
        sandbox.force_status(pending.summary["subject_request_id"], "completed")
        assert handle.handle(request("deletion"), pending.state).status == "completed"
        workspace = _basic(CREDS.workspace_key, CREDS.workspace_secret)
        inputs = _basic(CREDS.input_key, CREDS.input_secret)
        assert set(basic_headers_seen(dsr)) == {workspace}  # the token request there carries no credential header
        assert set(basic_headers_seen(events)) == {inputs} and set(basic_headers_seen(identity)) == {inputs}
        bearer = set(basic_headers_seen(profile))
        assert bearer and all(h.startswith("Bearer ") for h in bearer)


def _basic(key: str, secret: str) -> str:
    import base64

    return "Basic " + base64.b64encode(f"{key}:{secret}".encode()).decode()


@pytest.mark.parametrize("url", ["http://127.0.0.1:1\\@127.0.0.2:1", "http://user:pw@127.0.0.1:8080",
                                 "http://127.0.0.1:8080%2f@127.0.0.2", "https://opendsr.mparticle.com\\.evil.example",
                                 "http://10.0.0.1:8080", "https://\uff4fpendsr.mparticle.com"])
def test_a_base_url_the_policy_refuses_is_a_configuration_error_before_anything_is_sent(
        sandbox: Sandbox, url: str) -> None:
    config = sandbox.connector_config()
    config["dsr"]["base_url"] = url
    started = time.monotonic()
    result = plugin.handle_access(config=config, request=request("access"), state=None)
    assert result.status == "failed" and result.error is not None and result.error.error_class == "configuration"
    assert "$.dsr.base_url" in result.message and time.monotonic() - started < 2
    assert sandbox.request_log() == []
