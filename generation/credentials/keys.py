"""The certificate chain and key that sign manifests, read from the files settings name, and a
development chain for laptops and tests.

c2pa refuses a self-signed signing certificate ("the certificate is invalid"): the signing
certificate must be issued by a CA, not be a CA itself, and allow digital signatures for a C2PA
purpose (here email protection, which c2pa accepts). `development_chain` makes such a pair: a
root CA and a signing certificate it issued. The trust anchors are what verify accepts as ours.
"""

from __future__ import annotations

import datetime as dt
import os
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import c2pa
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

PEM = serialization.Encoding.PEM
CURVES = {"secp256r1": c2pa.C2paSigningAlg.ES256, "secp384r1": c2pa.C2paSigningAlg.ES384}
CURVES["secp521r1"] = c2pa.C2paSigningAlg.ES512


@dataclass(frozen=True)
class SigningKeys:
    chain: bytes  # PEM: the signing certificate first, then the CAs that issued it
    key: bytes  # PEM private key of the signing certificate
    anchors: bytes  # PEM: the CA certificates a manifest of ours chains to
    alg: c2pa.C2paSigningAlg

    def signer(self) -> c2pa.Signer:
        # No timestamp authority: the workers and tests reach no network (docs/content-credentials.md).
        return c2pa.Signer.from_info(c2pa.C2paSignerInfo(self.alg, self.chain, self.key, None))


def signing_keys() -> SigningKeys | None:
    """The configured chain and key, or None when the studio has no certificate (then downloads
    carry the XMP source type and the watermark, but no manifest). Read again when a file changes."""
    cert, key, trust = settings.STUDIO_C2PA_CERT_FILE, settings.STUDIO_C2PA_KEY_FILE, settings.STUDIO_C2PA_TRUST_FILE
    if not cert and not key:
        return None
    if not (cert and key):
        raise ImproperlyConfigured("Set both STUDIO_C2PA_CERT_FILE and STUDIO_C2PA_KEY_FILE, or neither.")
    return _load(cert, key, trust, tuple(_changed_at(path) for path in (cert, key, trust) if path))


def _changed_at(path: str) -> int:
    try:
        return os.stat(path).st_mtime_ns
    except OSError as exc:
        raise ImproperlyConfigured(f"The signing file {path} cannot be read: {exc.strerror}.") from None


@lru_cache(maxsize=4)
def _load(cert: str, key: str, trust: str, stamp: tuple[int, ...]) -> SigningKeys:
    chain, key_pem = Path(cert).read_bytes(), Path(key).read_bytes()
    try:
        certificates = x509.load_pem_x509_certificates(chain)
        private = serialization.load_pem_private_key(key_pem, password=None)
    except ValueError as exc:
        raise ImproperlyConfigured(f"The signing certificate or key is not readable PEM: {exc}") from None
    if _public(private.public_key()) != _public(certificates[0].public_key()):
        raise ImproperlyConfigured(f"{key} is not the key of the first certificate in {cert}.")
    anchors = Path(trust).read_bytes() if trust else certificates[-1].public_bytes(PEM)
    return SigningKeys(chain=chain, key=key_pem, anchors=anchors, alg=_algorithm(private))


def _public(key: object) -> bytes:
    return key.public_bytes(PEM, serialization.PublicFormat.SubjectPublicKeyInfo)  # type: ignore[attr-defined]


def _algorithm(key: object) -> c2pa.C2paSigningAlg:
    if isinstance(key, ec.EllipticCurvePrivateKey) and key.curve.name in CURVES:
        return CURVES[key.curve.name]
    if isinstance(key, rsa.RSAPrivateKey):
        return c2pa.C2paSigningAlg.PS256
    if isinstance(key, ed25519.Ed25519PrivateKey):
        return c2pa.C2paSigningAlg.ED25519
    raise ImproperlyConfigured("The signing key must be EC (P-256, P-384, P-521), RSA or Ed25519.")


@dataclass(frozen=True)
class DevelopmentChain:
    chain: bytes  # the signing certificate, then the root: STUDIO_C2PA_CERT_FILE
    key: bytes  # STUDIO_C2PA_KEY_FILE
    root: bytes  # the trust anchor (also the chain's last certificate)


def development_chain(*, organisation: str = "Brand Studio (development)", days: int = 365) -> DevelopmentChain:
    """A root CA and a P-256 signing certificate it issued: what c2pa accepts, trusted by nobody else."""
    now = dt.datetime.now(dt.UTC)
    root_key, signing_key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    root_name, signing_name = _name(organisation, "root CA"), _name(organisation, "content signing")
    root = (
        _certificate(root_name, root_name, root_key.public_key(), now, days * 10)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_usage(key_cert_sign=True), critical=True)
        .sign(root_key, hashes.SHA256())
    )
    signing = (
        _certificate(signing_name, root_name, signing_key.public_key(), now, days)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_usage(digital_signature=True), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.EMAIL_PROTECTION]), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(root_key.public_key()), critical=False)
        .sign(root_key, hashes.SHA256())
    )
    key = signing_key.private_bytes(PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    root_pem = root.public_bytes(PEM)
    return DevelopmentChain(chain=signing.public_bytes(PEM) + root_pem, key=key, root=root_pem)


def _name(organisation: str, role: str) -> x509.Name:
    attributes = [x509.NameAttribute(NameOID.ORGANIZATION_NAME, organisation)]
    return x509.Name([*attributes, x509.NameAttribute(NameOID.COMMON_NAME, f"{organisation} {role}")])


def _certificate(
    subject: x509.Name, issuer: x509.Name, public: ec.EllipticCurvePublicKey, now: dt.datetime, days: int
) -> x509.CertificateBuilder:
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(public)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))  # clocks of other machines run a little behind
        .not_valid_after(now + dt.timedelta(days=days))
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
    )


def _usage(*, digital_signature: bool = False, key_cert_sign: bool = False) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=digital_signature,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=key_cert_sign,
        crl_sign=key_cert_sign,
        encipher_only=False,
        decipher_only=False,
    )
