"""Certificates for the sandbox: a root CA, an intermediate CA, the OpenDSR processor's signing certificate and
a TLS server certificate.

mParticle signs callbacks with the key of a certificate issued by a public CA to ``opendsr.mparticle.com``
and names it in ``/discovery``. Public CAs issue leaves from an intermediate, never from the root a client
trusts, so a verifier must be given the intermediate served with the leaf. The sandbox does the same: its
root CA (the one clients download and trust) signs an intermediate, which issues the processor and TLS
certificates; both are served as a chain (leaf, then intermediate). Keys are RSA 2048; generating one takes
tens of milliseconds, so the default set is made once per process and shared by every sandbox in it.
"""

from __future__ import annotations

import base64
import functools
import ipaddress
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

__all__ = ["CertificateAuthority", "Issued", "SandboxPKI", "default_pki", "sign_body"]

PROCESSOR_DOMAIN = "opendsr.mparticle.com"


@dataclass(frozen=True)
class Issued:
    """A certificate with its private key."""

    certificate: x509.Certificate
    key: rsa.RSAPrivateKey
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


def _key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _name(common_name: str) -> x509.Name:
    return x509.Name([
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, "connector-mparticle sandbox"),
        x509.NameAttribute(NameOID.COMMON_NAME, common_name),
    ])


_CA_USAGE = x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True, content_commitment=False,
                          key_encipherment=False, data_encipherment=False, key_agreement=False,
                          encipher_only=False, decipher_only=False)


class CertificateAuthority:
    """A certificate authority that issues leaf certificates (for tests: also expired or self-signed ones).

    A root by default; :meth:`intermediate` makes a CA signed by this one, as public CAs issue leaves."""

    issued: Issued
    is_root: bool

    def __init__(self, common_name: str = "connector-mparticle sandbox CA", *,
                 _parent: CertificateAuthority | None = None) -> None:
        key = _key()
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

    def intermediate(self, common_name: str) -> CertificateAuthority:
        """A CA signed by this one (its chain leads back to this root)."""
        return CertificateAuthority(common_name, _parent=self)

    def issue(self, names: list[str], *, valid_days: float = 825, not_before: datetime | None = None) -> Issued:
        """A TLS (serverAuth) leaf certificate for DNS names or IP addresses ``names``, signed by this CA.

        mParticle's processor certificate is an ordinary TLS certificate for ``opendsr.mparticle.com`` from a
        public CA, so the sandbox's is one too (issued by the sandbox CA)."""
        key = _key()
        start = not_before or datetime.now(UTC) - timedelta(days=1)
        alt: list[x509.GeneralName] = []
        for n in names:
            try:
                alt.append(x509.IPAddress(ipaddress.ip_address(n)))
            except ValueError:
                alt.append(x509.DNSName(n))
        cert = (
            x509.CertificateBuilder()
            .subject_name(_name(names[0])).issuer_name(self.issued.certificate.subject)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(start).not_valid_after(start + timedelta(days=valid_days))
            .add_extension(x509.SubjectAlternativeName(alt), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(self.issued.key.public_key()),
                           critical=False)
            .sign(self.issued.key, hashes.SHA256())
        )
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


def sign_body(key: rsa.RSAPrivateKey, body: bytes) -> str:
    """``X-OpenDSR-Signature``: base64 of an RSA PKCS#1 v1.5 SHA-256 signature over the raw body."""
    return base64.b64encode(key.sign(body, padding.PKCS1v15(), hashes.SHA256())).decode("ascii")
