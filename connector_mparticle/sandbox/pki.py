"""Certificates for the sandbox: a root CA, an intermediate CA, the OpenDSR processor's signing certificate and
a TLS server certificate.

mParticle signs callbacks with the key of a certificate issued by a public CA to ``opendsr.mparticle.com``
and names it in ``/discovery``. Public CAs issue leaves from an intermediate, never from the root a client
trusts, so a verifier must be given the intermediate served with the leaf. The sandbox does the same: its
root CA (the one clients download and trust) signs an intermediate, which issues the processor and TLS
certificates; both are served as a chain (leaf, then intermediate). Keys are RSA 2048; generating one takes
tens of milliseconds, so the default set is made once per process and shared by every sandbox in it.

Leaves carry what a public CA issues today (the CA/Browser Forum's Baseline Requirements): a critical KeyUsage
with digitalSignature (and keyEncipherment, for TLS with RSA) and serverAuth. Tests make non-conforming ones
with :meth:`CertificateAuthority.issue`'s ``key_usage`` and ``key`` (a KeyUsage without digitalSignature, none
at all, an RSA-1024 or P-192 key: :func:`rsa_key`, :func:`ec_key`).
"""

from __future__ import annotations

import base64
import functools
import ipaddress
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

__all__ = ["LEAF_USAGE", "CertificateAuthority", "Issued", "SandboxPKI", "default_pki", "ec_key", "rsa_key",
           "sign_body", "usage"]

PROCESSOR_DOMAIN = "opendsr.mparticle.com"
PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey


@dataclass(frozen=True)
class Issued:
    """A certificate with its private key."""

    certificate: x509.Certificate
    key: PrivateKey
    chain: tuple[x509.Certificate, ...] = ()  #: the intermediates between this certificate and its root

    @property
    def cert_pem(self) -> bytes:
        return self.certificate.public_bytes(serialization.Encoding.PEM)

    @property
    def chain_pem(self) -> bytes:
        """The certificate followed by its intermediates: what a server presents."""
        return self.cert_pem + b"".join(c.public_bytes(serialization.Encoding.PEM) for c in self.chain)

    @property
    def key_pem(self) -> bytes:
        return self.key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )


def rsa_key(bits: int = 2048) -> rsa.RSAPrivateKey:
    """An RSA key (tests: 1024 bits for a weak one)."""
    return rsa.generate_private_key(public_exponent=65537, key_size=bits)


def ec_key(curve: ec.EllipticCurve | None = None) -> ec.EllipticCurvePrivateKey:
    """An EC key, P-256 by default (tests: ``ec.SECP192R1()`` for a weak one)."""
    return ec.generate_private_key(curve or ec.SECP256R1())


_key = rsa_key


def usage(*allowed: str) -> x509.KeyUsage:
    """A KeyUsage allowing exactly ``allowed`` (``digital_signature``, ``key_encipherment``, ...)."""
    names = ("digital_signature", "content_commitment", "key_encipherment", "data_encipherment", "key_agreement",
             "key_cert_sign", "crl_sign", "encipher_only", "decipher_only")
    unknown = set(allowed) - set(names)
    if unknown:
        raise ValueError(f"unknown key usages: {sorted(unknown)}")
    return x509.KeyUsage(**{name: name in allowed for name in names})


#: What a public CA puts in a TLS leaf with an RSA key (Baseline Requirements 7.1.2.7.11).
LEAF_USAGE = usage("digital_signature", "key_encipherment")


def _name(common_name: str) -> x509.Name:
    return x509.Name([
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, "connector-mparticle sandbox"),
        x509.NameAttribute(NameOID.COMMON_NAME, common_name),
    ])


_CA_USAGE = usage("digital_signature", "key_cert_sign", "crl_sign")


class CertificateAuthority:
    """A certificate authority that issues leaf certificates (for tests: also expired or self-signed ones).

    A root by default; :meth:`intermediate` makes a CA signed by this one, as public CAs issue leaves."""

    issued: Issued
    is_root: bool

    def __init__(self, common_name: str = "connector-mparticle sandbox CA", *,
                 _parent: CertificateAuthority | None = None, key: PrivateKey | None = None) -> None:
        key = key or _key()
        now = datetime.now(UTC)
        name = _name(common_name)
        issuer_name, signing_key = (name, key) if _parent is None else (
            _parent.issued.certificate.subject, _parent.issued.key)
        builder = (
            x509.CertificateBuilder()
            .subject_name(name).issuer_name(issuer_name).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(days=1)).not_valid_after(now + timedelta(days=3650))
            .add_extension(x509.BasicConstraints(ca=True, path_length=1 if _parent is None else 0), critical=True)
            .add_extension(_CA_USAGE, critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        )
        if _parent is not None:
            builder = builder.add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(_parent.issued.key.public_key()), critical=False)
        cert = builder.sign(signing_key, hashes.SHA256())
        chain = () if _parent is None or _parent.is_root else (_parent.issued.certificate, *_parent.issued.chain)
        self.issued = Issued(cert, key, chain)
        self.is_root = _parent is None

    @property
    def cert_pem(self) -> bytes:
        return self.issued.cert_pem

    def intermediate(self, common_name: str, key: PrivateKey | None = None) -> CertificateAuthority:
        """A CA signed by this one (its chain leads back to this root); ``key`` for a weak one in tests."""
        return CertificateAuthority(common_name, _parent=self, key=key)

    def issue(self, names: list[str], *, valid_days: float = 825, not_before: datetime | None = None,
              key_usage: x509.KeyUsage | None = LEAF_USAGE, key: PrivateKey | None = None) -> Issued:
        """A TLS (serverAuth) leaf certificate for DNS names or IP addresses ``names``, signed by this CA.

        mParticle's processor certificate is an ordinary TLS certificate for ``opendsr.mparticle.com`` from a
        public CA, so the sandbox's is one too (issued by the sandbox CA). ``key_usage`` None leaves the
        extension out; ``key`` replaces the RSA-2048 key (tests of certificates a verifier must refuse)."""
        key = key or _key()
        start = not_before or datetime.now(UTC) - timedelta(days=1)
        alt: list[x509.GeneralName] = []
        for n in names:
            try:
                alt.append(x509.IPAddress(ipaddress.ip_address(n)))
            except ValueError:
                alt.append(x509.DNSName(n))
        builder = (
            x509.CertificateBuilder()
            .subject_name(_name(names[0])).issuer_name(self.issued.certificate.subject)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(start).not_valid_after(start + timedelta(days=valid_days))
            .add_extension(x509.SubjectAlternativeName(alt), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(self.issued.key.public_key()),
                           critical=False)
        )
        if key_usage is not None:
            builder = builder.add_extension(key_usage, critical=True)
        cert = builder.sign(self.issued.key, hashes.SHA256())
        chain = self.issued.chain if self.is_root else (self.issued.certificate, *self.issued.chain)
        return Issued(cert, key, chain)


def self_signed(name: str) -> Issued:
    """A self-signed leaf certificate (which a careful verifier must refuse)."""
    return CertificateAuthority(name).issued


@dataclass(frozen=True)
class SandboxPKI:
    """The sandbox's root CA (the one to trust), processor signing certificate and TLS certificate.

    ``issuer`` is the intermediate CA that issued them (the root itself in PKIs built without one)."""

    ca: CertificateAuthority
    processor: Issued
    tls: Issued
    issuer: CertificateAuthority | None = None


@functools.cache
def default_pki() -> SandboxPKI:
    """The process-wide default PKI (made on first use): root -> intermediate -> processor and TLS leaves."""
    root = CertificateAuthority()
    issuer = root.intermediate("connector-mparticle sandbox issuing CA")
    return SandboxPKI(root, issuer.issue([PROCESSOR_DOMAIN]), issuer.issue(["localhost", "127.0.0.1", "::1"]),
                      issuer)


def sign_body(key: PrivateKey, body: bytes) -> str:
    """``X-OpenDSR-Signature``: base64 of an RSA PKCS#1 v1.5 SHA-256 signature over the raw body (mParticle's
    "SHA256 RSA"); ECDSA with SHA-256 for an EC key."""
    if isinstance(key, ec.EllipticCurvePrivateKey):
        return base64.b64encode(key.sign(body, ec.ECDSA(hashes.SHA256()))).decode("ascii")
    return base64.b64encode(key.sign(body, padding.PKCS1v15(), hashes.SHA256())).decode("ascii")
