"""Verify mParticle's OpenDSR status callbacks before trusting them.

mParticle POSTs a callback to each ``status_callback_urls`` entry whenever a request's status changes, with
``X-OpenDSR-Processor-Domain`` and ``X-OpenDSR-Signature`` (base64 RSA-SHA256 over the raw body). A host's
web endpoint hands the raw body and headers to :meth:`CallbackVerifier.verify`, which checks, in order:

1. both headers are present;                                       ``missing_headers``
2. the processor domain is on the allow-list;                      ``domain_not_allowed``
3. the certificate named by ``/discovery`` can be fetched (from a trusted host only) and is cached for its
   lifetime;                                                        ``certificate_unavailable``
4. it is within its validity period;                               ``certificate_expired``
5. it is not self-signed;                                          ``certificate_self_signed``
6. it is issued to the processor domain;                           ``certificate_name_mismatch``
7. it chains to the configured trust store;                        ``certificate_untrusted``
8. the signature verifies over the raw body;                       ``bad_signature``
9. the body is a status object.                                    ``invalid_body``

A rejection raises :class:`CallbackRejected` with ``reason`` and the HTTP status to answer (401, as mParticle
documents; 400 for a signed but unusable body). A verified callback returns :class:`CallbackStatus`; when it
concerns a stored pending request (:meth:`CallbackStatus.applies_to`), call the hook again now with that
state instead of waiting for ``next_check_at``: a callback replaces polling.
"""

from __future__ import annotations

import base64
import binascii
import json
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import requests
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.verification import PolicyBuilder, Store, VerificationError

__all__ = ["CallbackRejected", "CallbackStatus", "CallbackVerifier"]

PROCESSOR_DOMAIN = "opendsr.mparticle.com"
CERTIFICATE_HOSTS = ("static.mparticle.com",)
_LOOPBACK = {"127.0.0.1", "localhost", "::1"}


class CallbackRejected(Exception):
    """The callback must not be trusted; answer ``http_status`` and ignore it."""

    def __init__(self, reason: str, message: str, http_status: int = 401) -> None:
        super().__init__(f"{reason}: {message}")
        self.reason = reason
        self.message = message
        self.http_status = http_status


@dataclass(frozen=True)
class CallbackStatus:
    """A verified status callback."""

    subject_request_id: str
    request_status: str
    expected_completion_time: str | None
    results_url: str | None
    body: Mapping[str, Any]

    def applies_to(self, state: Mapping[str, Any] | None) -> bool:
        """True when ``state`` (a pending result's state) is for the same mParticle request."""
        return bool(state) and state.get("subject_request_id") == self.subject_request_id  # type: ignore[union-attr]


class CallbackVerifier:
    """Verifies callbacks; safe to share between threads; caches the processor certificate."""

    def __init__(self, discovery_url: str, *, trust_store: str | bytes | None = None,
                 allowed_domains: tuple[str, ...] = (PROCESSOR_DOMAIN,),
                 certificate_hosts: tuple[str, ...] = CERTIFICATE_HOSTS, timeout: float = 10.0,
                 clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self.discovery_url = discovery_url
        self.allowed_domains = tuple(d.lower() for d in allowed_domains)
        self.certificate_hosts = {h.lower() for h in certificate_hosts} | {urlsplit(discovery_url).hostname or ""}
        self.timeout = timeout
        self.clock = clock
        self._trust = _load_trust_store(trust_store)
        self._verify_tls: bool | str = trust_store if isinstance(trust_store, str) else True
        self._cache: dict[str, x509.Certificate] = {}
        self._lock = threading.Lock()
        self.fetches = 0

    @classmethod
    def for_config(cls, config: Mapping[str, Any], **options: Any) -> CallbackVerifier:
        """A verifier for the connector configured by ``config`` (its DSR host and trust store)."""
        from connector_mparticle.settings import parse_settings

        settings = parse_settings(config)
        return cls(f"{settings.dsr_url}/v3/discovery", trust_store=settings.trust_store, **options)

    def verify(self, headers: Mapping[str, str], body: bytes) -> CallbackStatus:
        """Check a callback (its raw body and headers); return its status or raise :class:`CallbackRejected`."""
        lowered = {k.lower(): v for k, v in headers.items()}
        domain = (lowered.get("x-opendsr-processor-domain") or "").strip().lower()
        signature = lowered.get("x-opendsr-signature") or ""
        if not domain or not signature.strip():
            raise CallbackRejected("missing_headers", "X-OpenDSR-Processor-Domain and X-OpenDSR-Signature are required")
        if domain not in self.allowed_domains:
            raise CallbackRejected("domain_not_allowed", f"processor domain {domain!r} is not on the allow-list")
        certificate = self._certificate()
        try:
            self._check_certificate(certificate, domain)
        except CallbackRejected:
            with self._lock:  # a cached certificate may have been replaced (or revoked): fetch it once more
                self._cache.clear()
            certificate = self._certificate()
            self._check_certificate(certificate, domain)
        self._check_signature(certificate, signature, body)
        return _parse(body)

    # -- steps --------------------------------------------------------------------------------------------

    def _certificate(self) -> x509.Certificate:
        with self._lock:
            cached = self._cache.get(self.discovery_url)
            if cached is not None and cached.not_valid_after_utc > self.clock():
                return cached
        try:
            discovery = requests.get(self.discovery_url, timeout=self.timeout, verify=self._verify_tls,
                                     allow_redirects=False)
            discovery.raise_for_status()
            url = discovery.json()["processor_certificate"]
            self._check_certificate_url(url)
            response = requests.get(url, timeout=self.timeout, verify=self._verify_tls, allow_redirects=False)
            response.raise_for_status()
            certificate = x509.load_pem_x509_certificate(response.content)
        except CallbackRejected:
            raise
        except (requests.RequestException, ValueError, KeyError, TypeError) as exc:
            raise CallbackRejected("certificate_unavailable",
                                   f"the processor certificate could not be fetched ({type(exc).__name__})") from exc
        with self._lock:
            self._cache[self.discovery_url] = certificate
            self.fetches += 1
        return certificate

    def _check_certificate_url(self, url: Any) -> None:
        parts = urlsplit(str(url))
        host = (parts.hostname or "").lower()
        secure = parts.scheme == "https" or (parts.scheme == "http" and host in _LOOPBACK)
        if not secure or host not in self.certificate_hosts:
            raise CallbackRejected("certificate_unavailable",
                                   f"/discovery names a certificate on an untrusted host ({host or 'none'})")

    def _check_certificate(self, certificate: x509.Certificate, domain: str) -> None:
        now = self.clock()
        if not certificate.not_valid_before_utc <= now <= certificate.not_valid_after_utc:
            raise CallbackRejected("certificate_expired", "the processor certificate is not valid at this time "
                                   f"(valid {certificate.not_valid_before_utc:%Y-%m-%d} to "
                                   f"{certificate.not_valid_after_utc:%Y-%m-%d})")
        if certificate.issuer == certificate.subject:
            raise CallbackRejected("certificate_self_signed", "the processor certificate is self-signed")
        try:
            names = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
            dns_names = [n.lower() for n in names.get_values_for_type(x509.DNSName)]
        except x509.ExtensionNotFound:
            dns_names = []
        if domain not in dns_names:
            raise CallbackRejected("certificate_name_mismatch",
                                   f"the processor certificate is not issued to {domain} ({', '.join(dns_names)})")
        try:
            verifier = PolicyBuilder().store(self._trust).time(now).build_server_verifier(x509.DNSName(domain))
            verifier.verify(certificate, [])
        except VerificationError as exc:
            raise CallbackRejected("certificate_untrusted",
                                   f"the processor certificate does not chain to a trusted CA ({exc})") from exc

    @staticmethod
    def _check_signature(certificate: x509.Certificate, signature: str, body: bytes) -> None:
        key = certificate.public_key()
        try:
            raw = base64.b64decode("".join(signature.split()), validate=True)  # tolerate wrapped base64
            if not isinstance(key, rsa.RSAPublicKey):
                raise InvalidSignature
            key.verify(raw, body, padding.PKCS1v15(), hashes.SHA256())
        except (InvalidSignature, binascii.Error, ValueError) as exc:
            raise CallbackRejected("bad_signature", "the signature does not match the body") from exc


def _parse(body: bytes) -> CallbackStatus:
    try:
        data = json.loads(body)
        if not isinstance(data, dict) or not isinstance(data.get("subject_request_id"), str) or \
                data.get("request_status") not in ("pending", "in_progress", "completed", "cancelled"):
            raise ValueError("not a status object")
    except (ValueError, UnicodeDecodeError) as exc:
        raise CallbackRejected("invalid_body", "the signed body is not an OpenDSR status object",
                               http_status=400) from exc
    return CallbackStatus(data["subject_request_id"], data["request_status"], data.get("expected_completion_time"),
                          data.get("results_url"), data)


def _load_trust_store(trust_store: str | bytes | None) -> Store:
    if trust_store is None:
        import certifi

        pem = Path(certifi.where()).read_bytes()
    elif isinstance(trust_store, bytes):
        pem = trust_store
    else:
        pem = Path(trust_store).read_bytes()
    return Store(x509.load_pem_x509_certificates(pem))
