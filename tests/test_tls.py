"""TLS: certificates are always verified; an untrusted one fails cleanly; there is no switch to turn it off."""

from __future__ import annotations

from pathlib import Path

import pytest

from connector_mparticle import plugin
from connector_mparticle.sandbox import Sandbox
from connector_mparticle.sandbox.pki import CertificateAuthority
from tests.support.hosting import mparticle, request


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
