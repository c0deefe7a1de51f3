"""TLS: certificates are always verified; an untrusted one fails cleanly; there is no switch to turn it off."""

from __future__ import annotations

from pathlib import Path

import pytest

from connector_mparticle import plugin
from connector_mparticle.sandbox import Sandbox
from connector_mparticle.sandbox.pki import CertificateAuthority
from tests.support.hosting import drive, mparticle, request


@pytest.fixture(scope="module")
def https_sandbox() -> Sandbox:
    with Sandbox(https=True) as sb:
        yield sb


def test_the_connector_works_over_https_when_it_trusts_the_sandbox_ca(https_sandbox: Sandbox) -> None:
    https_sandbox.seed_profile({"email": "tls@example.com"})
    assert https_sandbox.connector_config()["trust_store"] == https_sandbox.ca_file
    handle = mparticle(https_sandbox)
    assert handle.test_connection().ok
    assert handle.handle(request("opt_out", email="tls@example.com")).status == "completed"


def test_an_untrusted_certificate_fails_the_call_with_a_clear_reason(https_sandbox: Sandbox, tmp_path: Path) -> None:
    stranger = tmp_path / "other-ca.pem"
    stranger.write_bytes(CertificateAuthority("someone else").cert_pem)
    for trust in (None, str(stranger)):  # the system store, or a CA that did not issue the sandbox's certificate
        config = https_sandbox.connector_config()
        config.pop("trust_store")
        if trust:
            config["trust_store"] = trust
        result = plugin.handle_opt_out(config=config, request=request("opt_out"), state=None)
        assert result.status == "failed" and result.error is not None
        assert result.error.error_class == "rejected"
        assert "TLS certificate could not be verified" in result.message
        check = plugin.test_connection(config=config)
        assert not check.ok and all("TLS certificate" in c.message for c in check.checks)


@pytest.mark.parametrize("switch", [{"verify_tls": False}, {"insecure": True}, {"tls": {"verify": False}}])
def test_verification_cannot_be_switched_off(https_sandbox: Sandbox, switch: dict[str, object]) -> None:
    config = {**https_sandbox.connector_config(), **switch}
    result = plugin.handle_opt_out(config=config, request=request("opt_out"), state=None)
    assert result.status == "failed" and result.error is not None and result.error.error_class == "configuration"
    assert "Additional properties are not allowed" in result.message


@pytest.mark.parametrize("url", ["http://opendsr.mparticle.com", "http://10.0.0.5:8080", "ftp://127.0.0.1",
                                 "https://user:pass@opendsr.mparticle.com", "http://127.0.0.1.evil.example"])
def test_plain_http_is_refused_except_for_loopback(https_sandbox: Sandbox, url: str) -> None:
    config = https_sandbox.connector_config()
    config["dsr"]["base_url"] = url
    result = plugin.handle_access(config=config, request=request("access"), state=None)
    assert result.status == "failed" and result.error is not None and result.error.error_class == "configuration"
    assert "$.dsr.base_url" in result.message


def test_no_tls_key_log_is_written_whatever_sslkeylogfile_says(https_sandbox: Sandbox, tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """SSLKEYLOGFILE makes ssl.create_default_context and urllib3 write every session key (enough to decrypt the
    traffic, credentials included). Every connection the connector opens (the APIs, the OAuth token endpoint,
    discovery and the processor certificate) ignores it; a plain requests call in the same environment does not,
    which shows the test can fail."""
    import requests

    keylog = tmp_path / "keys.log"
    https_sandbox.seed_profile({"email": "keylog@example.com"})  # the test's own admin calls log no keys
    handle = mparticle(https_sandbox, timeouts={"total_seconds": 59})  # a connector of its own: new connections
    monkeypatch.setenv("SSLKEYLOGFILE", str(keylog))
    assert handle.test_connection().ok
    deletion = request("deletion", request_id="keylog-1", email="keylog@example.com", mpid="42424242")
    first = handle.handle(deletion)  # the DSR API and the signed acknowledgement (discovery, certificate)
    assert first.status == "pending" and first.summary["receipts"][0]["verified"] is True, first.message
    monkeypatch.delenv("SSLKEYLOGFILE")
    for subject_request_id in first.summary["subject_request_ids"]:
        https_sandbox.force_status(subject_request_id, "completed")
    monkeypatch.setenv("SSLKEYLOGFILE", str(keylog))
    assert handle.handle(deletion, first.state).status == "completed"  # IDSync, the token endpoint, Profile API
    assert not keylog.exists(), "a TLS key log was written"
    requests.get(f"{https_sandbox.url}/v3/discovery", verify=https_sandbox.ca_file, timeout=5)
    assert keylog.exists() and keylog.read_text().strip(), "the control call should have logged its keys"


def test_the_redis_backend_builds_its_tls_context_without_a_key_log(tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    import redis

    from connector_mparticle.http.throttle import _no_key_log_ssl

    keylog = tmp_path / "keys.log"
    monkeypatch.setenv("SSLKEYLOGFILE", str(keylog))
    context = _no_key_log_ssl(redis)(host="127.0.0.1", port=6391, ssl_cert_reqs="required")._build_ssl_context()
    assert context.keylog_filename is None and context.verify_mode.name == "CERT_REQUIRED" and context.check_hostname
    assert not keylog.exists()
    redis.SSLConnection(host="127.0.0.1", port=6391)._build_ssl_context()  # redis-py's own: honours it
    assert keylog.exists()


def test_a_mistyped_trust_store_on_resume_keeps_the_request_pending_until_it_is_fixed(https_sandbox: Sandbox,
                                                                                       tmp_path: Path) -> None:
    """Issue 21: mParticle holds the erasure; a trust-store path mistyped when resuming is a local mistake, not a
    final failure written over what mParticle did. Fixing it and calling again finishes the same request."""
    https_sandbox.seed_profile({"email": "tls-resume@example.com", "customer_id": "c-tls"})
    req = request("deletion", request_id="tls-resume-1", email="tls-resume@example.com", customer_id="c-tls")
    good = https_sandbox.connector_config(polling={"min_interval_seconds": 0.1, "max_interval_seconds": 1})
    first = plugin.handle_deletion(config=good, request=req, state=None)
    assert first.status == "pending" and first.state
    mistyped = {**good, "trust_store": str(tmp_path / "no-such-ca.pem")}
    kept = plugin.handle_deletion(config=mistyped, request=req, state=first.state)
    assert kept.status == "pending" and kept.state == first.state and kept.error is None
    assert kept.action_required is not None and kept.action_required.error_class == "configuration"
    assert "trust_store" in kept.action_required.message
    done, _ = drive(mparticle(https_sandbox), req, state=dict(kept.state))
    assert done.status == "completed", done.message
    assert [d["group_id"] for d in https_sandbox.dsrs()].count("tls-resume-1") == 1  # never submitted twice
