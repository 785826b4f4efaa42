"""The cluster's certificates: a CA, the API server's serving certificate, the
admin's client certificate, and the key that signs service account tokens.

They are made once, on the first start, and kept in the data folder; later starts
reuse them, so kubeconfigs written earlier stay valid.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

# cryptography is imported where certificates are made or read: a restart with
# every file in place needs none of it, and importing it costs ~40 ms of startup.
if TYPE_CHECKING:
    from cryptography import x509
    from cryptography.hazmat.primitives.asymmetric import ec

_VALIDITY = dt.timedelta(days=3650)


@dataclass(frozen=True)
class ClusterPKI:
    """Paths of the cluster's PEM files and the admin bearer token."""

    ca_cert: Path
    ca_key: Path
    server_cert: Path
    server_key: Path
    admin_cert: Path
    admin_key: Path
    admin_token: str
    # Signs service account tokens (kubeadm's sa.key); its public half verifies them.
    sa_key: Path | None = None

    def pem(self, path: Path) -> bytes:
        """The bytes of one of the PEM files."""
        return path.read_bytes()


def _key() -> ec.EllipticCurvePrivateKey:
    # P-256 keys are generated in microseconds; RSA-2048 would cost ~50 ms each
    # and dominate a first start.
    from cryptography.hazmat.primitives.asymmetric import ec

    return ec.generate_private_key(ec.SECP256R1())


def _write_private(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    from cryptography.hazmat.primitives import serialization

    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _name(cn: str, orgs: tuple[str, ...] = ()) -> x509.Name:
    from cryptography import x509
    from cryptography.x509.oid import NameOID

    attrs = [x509.NameAttribute(NameOID.COMMON_NAME, cn)]
    attrs += [x509.NameAttribute(NameOID.ORGANIZATION_NAME, o) for o in orgs]
    return x509.Name(attrs)


def _issue(
    subject: x509.Name,
    key: ec.EllipticCurvePrivateKey,
    issuer: x509.Name,
    issuer_key: ec.EllipticCurvePrivateKey,
    *,
    ca: bool = False,
    server_names: tuple[str, ...] = (),
    client: bool = False,
) -> x509.Certificate:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.x509.oid import ExtendedKeyUsageOID

    now = dt.datetime.now(dt.UTC)
    b = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + _VALIDITY)
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if ca:
        b = b.add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False), True
        )
    else:
        b = b.add_extension(
            x509.KeyUsage(True, False, True, False, False, False, False, False, False), True
        )
        usages = [ExtendedKeyUsageOID.CLIENT_AUTH] if client else [ExtendedKeyUsageOID.SERVER_AUTH]
        b = b.add_extension(x509.ExtendedKeyUsage(usages), critical=False)
    if server_names:
        alts: list[x509.GeneralName] = []
        for n in server_names:
            try:
                alts.append(x509.IPAddress(ipaddress.ip_address(n)))
            except ValueError:
                alts.append(x509.DNSName(n))
        b = b.add_extension(x509.SubjectAlternativeName(alts), critical=False)
    return b.sign(issuer_key, hashes.SHA256())


SERVER_NAMES = (
    "localhost",
    "127.0.0.1",
    "::1",
    "kubernetes",
    "kubernetes.default",
    "kubernetes.default.svc",
    "kubernetes.default.svc.cluster.local",
)


def ensure_pki(folder: Path, extra_names: tuple[str, ...] = ()) -> ClusterPKI:
    """Load the cluster's certificates from `folder`, creating any that are missing."""
    folder.mkdir(parents=True, exist_ok=True)
    p = ClusterPKI(
        ca_cert=folder / "ca.crt",
        ca_key=folder / "ca.key",
        server_cert=folder / "apiserver.crt",
        server_key=folder / "apiserver.key",
        admin_cert=folder / "admin.crt",
        admin_key=folder / "admin.key",
        admin_token=_ensure_token(folder / "admin.token"),
        sa_key=folder / "sa.key",
    )
    # Clusters made before tokens were served get their signing key on the next start.
    _ensure_signing_key(folder / "sa.key")
    if all(f.exists() for f in (p.ca_cert, p.ca_key, p.server_cert, p.server_key,
                                p.admin_cert, p.admin_key)):
        return p
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    if not (p.ca_cert.exists() and p.ca_key.exists()):
        ca_key = _key()
        ca_name = _name("skiff-ca")
        ca = _issue(ca_name, ca_key, ca_name, ca_key, ca=True)
        _write_private(p.ca_key, _key_pem(ca_key))
        p.ca_cert.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    ca_key = serialization.load_pem_private_key(p.ca_key.read_bytes(), None)
    assert isinstance(ca_key, ec.EllipticCurvePrivateKey)
    ca_cert = x509.load_pem_x509_certificate(p.ca_cert.read_bytes())
    if not (p.server_cert.exists() and p.server_key.exists()):
        k = _key()
        names = SERVER_NAMES + extra_names
        c = _issue(_name("kube-apiserver"), k, ca_cert.subject, ca_key, server_names=names)
        _write_private(p.server_key, _key_pem(k))
        p.server_cert.write_bytes(c.public_bytes(serialization.Encoding.PEM))
    if not (p.admin_cert.exists() and p.admin_key.exists()):
        k = _key()
        c = _issue(_name("admin", ("system:masters",)), k, ca_cert.subject, ca_key, client=True)
        _write_private(p.admin_key, _key_pem(k))
        p.admin_cert.write_bytes(c.public_bytes(serialization.Encoding.PEM))
    return p


def _ensure_signing_key(path: Path) -> None:
    if path.exists():
        return
    _write_private(path, _key_pem(_key()))


def _ensure_token(path: Path) -> str:
    if path.exists():
        return path.read_text().strip()
    token = secrets.token_hex(24)
    _write_private(path, token.encode())
    return token


def issue_client_cert(pki: ClusterPKI, user: str, groups: tuple[str, ...]) -> tuple[bytes, bytes]:
    """A new client certificate and key (PEM) for `user` in `groups`, signed by the CA."""
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    ca_key = serialization.load_pem_private_key(pki.ca_key.read_bytes(), None)
    assert isinstance(ca_key, ec.EllipticCurvePrivateKey)
    ca_cert = x509.load_pem_x509_certificate(pki.ca_cert.read_bytes())
    k = _key()
    c = _issue(_name(user, groups), k, ca_cert.subject, ca_key, client=True)
    return c.public_bytes(serialization.Encoding.PEM), _key_pem(k)


def self_signed_server_cert(cn: str, names: tuple[str, ...]) -> tuple[bytes, bytes]:
    """A self-signed serving certificate and key (PEM), as a kubelet makes for itself."""
    from cryptography.hazmat.primitives import serialization

    k = _key()
    c = _issue(_name(cn), k, _name(cn), k, server_names=names)
    return c.public_bytes(serialization.Encoding.PEM), _key_pem(k)
