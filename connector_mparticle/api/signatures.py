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
7. its key may sign: a KeyUsage extension allowing digitalSignature ``certificate_key_usage``
   (OpenDSR's security guidelines, "Callback validation" 2.f, require the certificate to carry it; the
   CA/Browser Forum's Baseline Requirements make KeyUsage mandatory in TLS certificates, so a certificate
   without the extension is refused too, although RFC 5280 would read its absence as "any use");
8. its key is RSA of at least 2048 bits or EC of at least 256 bits (anything else cannot be trusted to
   sign evidence), and so is every intermediate the chain is built through;  ``certificate_weak_key``
9. it chains, through the intermediates served with it, to the signature trust anchors
   (``signature_trust_store``; kept apart from the HTTPS ``trust_store``);  ``certificate_untrusted``
10. the signature verifies over the raw body: RSA PKCS#1 v1.5 with SHA-256 (mParticle's "SHA256 RSA"), or
    ECDSA with SHA-256 for an EC key (OpenDSR section 4.2: FIPS 186-4).  ``bad_signature``

A certificate that cannot even be read (steps 4-9 raise while parsing it) is ``certificate_invalid``; like any
refused certificate, it is fetched once more before the refusal stands, and never poisons the cache. The
discovery document and the certificate are read through the decoding layer
(:mod:`connector_mparticle.http.answers`); :meth:`ProcessorSignatures.check` raises nothing but
:class:`SignatureRejected`, whatever a server sent.

A refusal raises :class:`SignatureRejected` with ``reason`` and the HTTP status a callback endpoint answers
(401, as mParticle documents). Success returns :class:`Signed`: what was verified, with which certificate.
Callbacks (:mod:`connector_mparticle.callbacks`) and receipts (:mod:`connector_mparticle.api.receipts`) both go
through :meth:`ProcessorSignatures.check`.
"""

from __future__ import annotations

import base64
import hashlib
import threading
import time
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Self

import requests
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.utils import CryptographyDeprecationWarning
from cryptography.x509.verification import PolicyBuilder, Store, VerificationError

from connector_mparticle.http.answers import (
    MAX_URL_CHARS,
    Malformed,
    bounded_body,
    field_str,
    headers_lowered,
    json_body,
    obj,
)
from connector_mparticle.http.deadline import bounded, held
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
MIN_RSA_BITS = 2048
MIN_EC_BITS = 256
MAX_SIGNATURE_CHARS = 16 * 1024  #: base64 of an RSA-16384 signature is 2,732 characters


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
    lowered = headers_lowered(headers)
    domain = lowered.get("x-opendsr-processor-domain", "").strip().lower()[:256]
    signature = lowered.get("x-opendsr-signature", "")[:MAX_SIGNATURE_CHARS]
    return domain, "".join(signature.split())  # tolerate wrapped base64


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
        try:
            return Signed(domain, signature, hashlib.sha256(body).hexdigest(),
                          certificate.fingerprint(hashes.SHA256()).hex(), certificate.subject.rfc4514_string(),
                          certificate.issuer.rfc4514_string(), certificate.not_valid_after_utc.isoformat(),
                          self.clock().isoformat())
        except Exception as exc:  # names are parsed lazily; a certificate that cannot say is refused
            raise SignatureRejected("certificate_invalid", "the processor certificate cannot be read "
                                    f"({type(exc).__name__})") from exc

    # -- steps --------------------------------------------------------------------------------------------

    def _certificate(self) -> tuple[x509.Certificate, list[x509.Certificate]]:
        """The processor certificate and the intermediates served with it (leaf first, as TLS servers send)."""
        with held(self._fetching):  # one fetch at a time; whoever waited finds its result (or its deadline)
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
        except Exception as exc:  # whatever the fetch or the parse raises, there is no certificate
            why = exc.message if isinstance(exc, SignatureRejected) else \
                f"the processor certificate could not be fetched ({type(exc).__name__})"
            with self._lock:
                self._unavailable_until, self._unavailable_why = time.monotonic() + RETRY_FETCH_SECONDS, why
            raise SignatureRejected("certificate_unavailable", why) from exc
        with self._lock:
            self._cache[self.discovery_url] = (leaf, intermediates)
            self.fetches += 1
        return leaf, intermediates

    def _certificate_url(self) -> str:
        """``processor_certificate`` from ``/discovery``; mParticle's documented URL if discovery fails."""
        try:
            discovery = obj(json_body(self._get(self.discovery_url), max_bytes=MAX_FETCH_BYTES), "a discovery answer")
            url = field_str(discovery.get("processor_certificate"), "a processor_certificate", optional=False,
                            max_chars=MAX_URL_CHARS)
            assert url is not None
            return url
        except (requests.RequestException, Malformed, ValueError):
            if self.known_certificate_url is None:
                raise
            return self.known_certificate_url

    def _get(self, url: str) -> bytes:
        """GET ``url`` through the hardened session; at most :data:`MAX_FETCH_BYTES`; 200 only."""
        response = self._session.get(url, timeout=self.timeout, stream=True)
        try:
            if response.status_code != 200:
                raise ValueError(f"HTTP {response.status_code}")
            return bounded_body(response, MAX_FETCH_BYTES)
        finally:
            response.close()

    def _check_certificate_url(self, url: str) -> None:
        try:
            host = origin_of(url).host
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
                                    f"the processor certificate is not issued to {domain} "
                                    f"({', '.join(dns_names)[:512]})")
        _check_signing_key(certificate, "the processor certificate")
        try:
            verifier = PolicyBuilder().store(self._trust).time(now).build_server_verifier(x509.DNSName(domain))
            chain = verifier.verify(certificate, intermediates)
        except VerificationError as exc:
            raise SignatureRejected("certificate_untrusted",
                                    f"the processor certificate does not chain to a trusted CA ({exc})") from exc
        for issuer in chain[1:-1]:  # the intermediates it was verified through (the anchor is the operator's)
            _check_key_strength(issuer, "an intermediate certificate of its chain")

    @staticmethod
    def _check_signature(certificate: x509.Certificate, signature: str, body: bytes) -> None:
        try:
            key = certificate.public_key()
            raw = base64.b64decode(signature, validate=True)
            if isinstance(key, rsa.RSAPublicKey):
                key.verify(raw, body, padding.PKCS1v15(), hashes.SHA256())
            elif isinstance(key, ec.EllipticCurvePublicKey):
                key.verify(raw, body, ec.ECDSA(hashes.SHA256()))
            else:
                raise InvalidSignature
        except Exception as exc:  # InvalidSignature, bad base64, a key the backend cannot use: all "no"
            raise SignatureRejected("bad_signature", "the signature does not match the body") from exc


def _check_signing_key(certificate: x509.Certificate, what: str) -> None:
    """Steps 7 and 8: the key may sign (KeyUsage digitalSignature) and is strong enough."""
    try:
        usage = certificate.extensions.get_extension_for_class(x509.KeyUsage).value
    except x509.ExtensionNotFound:
        raise SignatureRejected("certificate_key_usage", f"{what} carries no key usage extension, so it is not "
                                "issued for digital signatures (OpenDSR security guidelines 2.f)") from None
    if not usage.digital_signature:
        raise SignatureRejected("certificate_key_usage", f"{what}'s key usage does not allow digital signatures")
    _check_key_strength(certificate, what)


def _check_key_strength(certificate: x509.Certificate, what: str) -> None:
    """RSA of at least :data:`MIN_RSA_BITS` or EC of at least :data:`MIN_EC_BITS`; ``certificate_weak_key`` if not."""
    key = certificate.public_key()
    if isinstance(key, rsa.RSAPublicKey):
        if key.key_size < MIN_RSA_BITS:
            raise SignatureRejected("certificate_weak_key", f"{what} has an RSA key of {key.key_size} bits "
                                    f"(at least {MIN_RSA_BITS} are required)")
    elif isinstance(key, ec.EllipticCurvePublicKey):
        if key.curve.key_size < MIN_EC_BITS:
            raise SignatureRejected("certificate_weak_key", f"{what} has an EC key of {key.curve.key_size} bits "
                                    f"(at least {MIN_EC_BITS} are required)")
    else:
        raise SignatureRejected("certificate_weak_key", f"{what} has a key that is neither RSA nor EC "
                                f"({type(key).__name__.removesuffix('PublicKey').lstrip('_')})")


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

