"""OpenDSR processor signatures: one verifier for callbacks and for mParticle's answers.

mParticle signs its status callbacks and its answer to ``POST /requests`` with ``X-OpenDSR-Processor-Domain``
and ``X-OpenDSR-Signature`` (base64 RSA-SHA256 over the raw body; OpenDSR spec sections 4 and 7.4, mParticle's
DSR v3 page). :meth:`ProcessorSignatures.check` checks, in order:

1. both headers are present;                                       ``missing_headers``
2. the processor domain is on the allow-list;                      ``domain_not_allowed``
3. the certificate named by ``/discovery`` (for mParticle's own host, its documented URL when discovery
   fails) can be fetched from a trusted host only, through the connector's hardened session (no
   redirects, TLS verified), and is cached for its lifetime; a failed fetch is not tried again for
   :data:`RETRY_FETCH_SECONDS`, so an unreachable host costs one timeout;
                                                                    ``certificate_unavailable``
4. it is within its validity period;                               ``certificate_expired``
5. it is not self-signed;                                          ``certificate_self_signed``
6. it is issued to the processor domain;                           ``certificate_name_mismatch``
7. it chains, through the intermediates served with it, to the signature trust anchors
   (``signature_trust_store``; kept apart from the HTTPS ``trust_store``);  ``certificate_untrusted``
8. the signature verifies over the raw body.                       ``bad_signature``

A certificate that cannot even be read (steps 4-7 raise while parsing it) is ``certificate_invalid``; like any
refused certificate, it is fetched once more before the refusal stands, and never poisons the cache.

A refusal raises :class:`SignatureRejected` with ``reason`` and the HTTP status a callback endpoint answers
(401, as mParticle documents). Success returns :class:`Signed`: what was verified, with which certificate.
Callbacks (:mod:`connector_mparticle.callbacks`) and receipts (:mod:`connector_mparticle.api.receipts`) both go
through :meth:`ProcessorSignatures.check`.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import threading
import time
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Self

import requests
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.utils import CryptographyDeprecationWarning
from cryptography.x509.verification import PolicyBuilder, Store, VerificationError

from connector_mparticle.errors import MParticleError
from connector_mparticle.http.deadline import bounded
from connector_mparticle.http.session import HardenedSession
from connector_mparticle.http.urls import UrlRefused, origin_of
from connector_mparticle.settings import Settings

__all__ = ["CERTIFICATE_HOSTS", "PROCESSOR_DOMAIN", "ProcessorSignatures", "SignatureRejected", "Signed"]

PROCESSOR_DOMAIN = "opendsr.mparticle.com"
CERTIFICATE_HOSTS = ("static.mparticle.com",)
#: ``processor_certificate`` in mParticle's documented /discovery answer (``developers/dsr-api/v3``).
DOCUMENTED_CERTIFICATE = "https://static.mparticle.com/dsr/opendsr_cert.pem"
MAX_FETCH_BYTES = 256 * 1024  #: discovery documents and certificate chains are a few kilobytes
RETRY_FETCH_SECONDS = 60.0  #: after a failed certificate fetch, refuse at once for this long instead of waiting again


class SignatureRejected(Exception):
    """A signature (or its certificate) must not be trusted; a callback endpoint answers ``http_status``."""

    def __init__(self, reason: str, message: str, http_status: int = 401) -> None:
        super().__init__(f"{reason}: {message}")
        self.reason = reason
        self.message = message
        self.http_status = http_status


@dataclass(frozen=True)
class Signed:
    """A body whose processor signature verified, and the certificate that signed it."""

    domain: str
    signature: str  #: base64, as received (whitespace removed)
    body_sha256: str
    certificate_sha256: str
    certificate_subject: str
    certificate_issuer: str
    certificate_not_after: str
    verified_at: str

    def to_dict(self) -> dict[str, str]:
        return dict(self.__dict__)


def _headers(headers: Mapping[str, str]) -> tuple[str, str]:
    lowered = {k.lower(): v for k, v in headers.items()}
    domain = (lowered.get("x-opendsr-processor-domain") or "").strip().lower()
    return domain, "".join((lowered.get("x-opendsr-signature") or "").split())  # tolerate wrapped base64


class ProcessorSignatures:
    """Verifies processor signatures; safe to share between threads; caches the processor certificate."""

    def __init__(self, discovery_url: str, *, trust_store: str | bytes | None = None,
                 tls_trust_store: str | None = None, allowed_domains: tuple[str, ...] = (PROCESSOR_DOMAIN,),
                 certificate_hosts: tuple[str, ...] = CERTIFICATE_HOSTS, timeout: float = 10.0,
                 known_certificate_url: str | None = None,
                 clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        """``trust_store``: the anchors a processor certificate must chain to (PEM file or bytes; default
        certifi). ``tls_trust_store``: what HTTPS to ``/discovery`` trusts (default certifi).
        ``known_certificate_url``: where the certificate is when ``/discovery`` cannot say (it is checked the
        same way, and its host must be a certificate host too)."""
        self.discovery_url = discovery_url
        self.allowed_domains = tuple(d.lower() for d in allowed_domains)
        self.certificate_hosts = {h.lower() for h in certificate_hosts} | {origin_of(discovery_url).host}
        self.timeout = timeout
        self.known_certificate_url = known_certificate_url
        self.clock = clock
        self._trust = _load_trust_store(trust_store)
        self._session = HardenedSession(tls_trust_store or True)
        self._cache: dict[str, tuple[x509.Certificate, list[x509.Certificate]]] = {}
        self._lock = threading.Lock()
        self._fetching = threading.Lock()
        self._unavailable_until, self._unavailable_why = 0.0, ""
        self.fetches = 0

    @classmethod
    def for_settings(cls, settings: Settings) -> Self:
        """Signatures for the configured DSR host: its ``/v3/discovery``, ``signature_trust_store`` for the
        certificate chain and ``trust_store`` for HTTPS."""
        production = origin_of(settings.dsr_url).host == PROCESSOR_DOMAIN
        return cls(f"{settings.dsr_url}/v3/discovery", trust_store=settings.signature_trust_store,
                   tls_trust_store=settings.trust_store, timeout=settings.timeouts.connect + settings.timeouts.read,
                   known_certificate_url=DOCUMENTED_CERTIFICATE if production else None)

    def check(self, headers: Mapping[str, str], body: bytes) -> Signed:
        """Check the signature on ``body``; return what verified or raise :class:`SignatureRejected`."""
        domain, signature = _headers(headers)
        if not domain or not signature:
            raise SignatureRejected("missing_headers",
                                    "X-OpenDSR-Processor-Domain and X-OpenDSR-Signature are required")
        if domain not in self.allowed_domains:
            raise SignatureRejected("domain_not_allowed", f"processor domain {domain!r} is not on the allow-list")
        for attempt in (1, 2):  # a cached certificate may have been replaced (or revoked): fetch it once more
            certificate, intermediates = self._certificate()
            try:
                self._check_certificate(certificate, intermediates, domain)
                break
            except SignatureRejected:
                with self._lock:  # a refused certificate never stays cached
                    self._cache.clear()
                if attempt == 2:
                    raise
        self._check_signature(certificate, signature, body)
        return Signed(domain, signature, hashlib.sha256(body).hexdigest(),
                      certificate.fingerprint(hashes.SHA256()).hex(), certificate.subject.rfc4514_string(),
                      certificate.issuer.rfc4514_string(), certificate.not_valid_after_utc.isoformat(),
                      self.clock().isoformat())

    # -- steps --------------------------------------------------------------------------------------------

    def _certificate(self) -> tuple[x509.Certificate, list[x509.Certificate]]:
        """The processor certificate and the intermediates served with it (leaf first, as TLS servers send)."""
        with self._fetching:  # one fetch at a time; whoever waited finds its result
            return self._cached() or self._fetch()

    def _cached(self) -> tuple[x509.Certificate, list[x509.Certificate]] | None:
        with self._lock:
            cached = self._cache.get(self.discovery_url)
            if cached is not None and cached[0].not_valid_after_utc > self.clock():
                return cached
            if time.monotonic() < self._unavailable_until:  # a fetch just failed: do not wait on it again
                raise SignatureRejected("certificate_unavailable", self._unavailable_why)
        return None

    def _fetch(self) -> tuple[x509.Certificate, list[x509.Certificate]]:
        try:
            with bounded(self.timeout, "fetching the processor certificate"):
                url = self._certificate_url()
                self._check_certificate_url(url)
                leaf, *intermediates = x509.load_pem_x509_certificates(self._get(url))
        except (SignatureRejected, requests.RequestException, MParticleError, ValueError, KeyError, TypeError) as exc:
            why = exc.message if isinstance(exc, SignatureRejected) else \
                f"the processor certificate could not be fetched ({type(exc).__name__})"
            with self._lock:
                self._unavailable_until, self._unavailable_why = time.monotonic() + RETRY_FETCH_SECONDS, why
            raise SignatureRejected("certificate_unavailable", why) from exc
        with self._lock:
            self._cache[self.discovery_url] = (leaf, intermediates)
            self.fetches += 1
        return leaf, intermediates

    def _certificate_url(self) -> Any:
        """``processor_certificate`` from ``/discovery``; mParticle's documented URL if discovery fails."""
        try:
            return json.loads(self._get(self.discovery_url))["processor_certificate"]
        except (requests.RequestException, ValueError, KeyError, TypeError):
            if self.known_certificate_url is None:
                raise
            return self.known_certificate_url

    def _get(self, url: str) -> bytes:
        """GET ``url`` through the hardened session; at most :data:`MAX_FETCH_BYTES`; 200 only."""
        response = self._session.get(url, timeout=self.timeout, stream=True)
        try:
            if response.status_code != 200:
                raise ValueError(f"HTTP {response.status_code}")
            body = b""
            for chunk in response.iter_content(64 * 1024):
                body += chunk
                if len(body) > MAX_FETCH_BYTES:
                    raise ValueError("the answer is too large")
            return body
        finally:
            response.close()

    def _check_certificate_url(self, url: Any) -> None:
        try:
            host = origin_of(str(url)).host
        except UrlRefused:
            host = ""
        if host not in self.certificate_hosts:
            raise SignatureRejected("certificate_unavailable",
                                    f"/discovery names a certificate on an untrusted host ({host or 'none'})")

    def _check_certificate(self, certificate: x509.Certificate, intermediates: list[x509.Certificate],
                           domain: str) -> None:
        """Steps 4-7. The certificate came from a server: whatever its parsing raises is a refusal."""
        try:
            self._check_parsed(certificate, intermediates, domain)
        except SignatureRejected:
            raise
        except Exception as exc:  # cryptography parses extensions lazily and raises many types
            raise SignatureRejected("certificate_invalid", "the processor certificate cannot be read "
                                    f"({type(exc).__name__})") from exc

    def _check_parsed(self, certificate: x509.Certificate, intermediates: list[x509.Certificate],
                      domain: str) -> None:
        now = self.clock()
        if not certificate.not_valid_before_utc <= now <= certificate.not_valid_after_utc:
            raise SignatureRejected("certificate_expired", "the processor certificate is not valid at this time "
                                    f"(valid {certificate.not_valid_before_utc:%Y-%m-%d} to "
                                    f"{certificate.not_valid_after_utc:%Y-%m-%d})")
        if certificate.issuer == certificate.subject:
            raise SignatureRejected("certificate_self_signed", "the processor certificate is self-signed")
        try:
            names = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
            dns_names = [n.lower() for n in names.get_values_for_type(x509.DNSName)]
        except x509.ExtensionNotFound:
            dns_names = []
        if domain not in dns_names:
            raise SignatureRejected("certificate_name_mismatch",
                                    f"the processor certificate is not issued to {domain} ({', '.join(dns_names)})")
        try:
            verifier = PolicyBuilder().store(self._trust).time(now).build_server_verifier(x509.DNSName(domain))
            verifier.verify(certificate, intermediates)
        except VerificationError as exc:
            raise SignatureRejected("certificate_untrusted",
                                    f"the processor certificate does not chain to a trusted CA ({exc})") from exc

    @staticmethod
    def _check_signature(certificate: x509.Certificate, signature: str, body: bytes) -> None:
        try:
            key = certificate.public_key()
            raw = base64.b64decode(signature, validate=True)
            if not isinstance(key, rsa.RSAPublicKey):
                raise InvalidSignature
            key.verify(raw, body, padding.PKCS1v15(), hashes.SHA256())
        except (InvalidSignature, binascii.Error, ValueError, TypeError) as exc:
            raise SignatureRejected("bad_signature", "the signature does not match the body") from exc


def _load_trust_store(trust_store: str | bytes | None) -> Store:
    if trust_store is None:
        import certifi

        pem = Path(certifi.where()).read_bytes()
    elif isinstance(trust_store, bytes):
        pem = trust_store
    else:
        pem = Path(trust_store).read_bytes()
    with warnings.catch_warnings():  # certifi carries old roots with non-positive serial numbers
        warnings.simplefilter("ignore", CryptographyDeprecationWarning)
        return Store(x509.load_pem_x509_certificates(pem))

