"""A development PKI (``fleet up --tls``, tests): a CA, a server certificate, an internal client certificate.

Made with ``cryptography`` in a directory of its own (private keys 0600). The server
certificate names localhost, 127.0.0.1, ::1 and this host, so every service on this machine
can serve it; the client certificate is what the gateway and workers present on the internal
plane. Files are reused across runs until they come within a day of expiring.
"""

from __future__ import annotations

import datetime
import ipaddress
import os
import socket
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

VALIDITY = datetime.timedelta(days=30)
RENEW_BEFORE = datetime.timedelta(days=1)
Key = ec.EllipticCurvePrivateKey


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.timezone.utc)


def new_key() -> Key:
    return ec.generate_private_key(ec.SECP256R1())


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Inference Fleet (development)"),
                      x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _usage(ca: bool) -> x509.KeyUsage:
    return x509.KeyUsage(digital_signature=True, key_cert_sign=ca, crl_sign=ca, content_commitment=False,
                         key_encipherment=False, data_encipherment=False, key_agreement=False,
                         encipher_only=False, decipher_only=False)


def issue_ca(common_name: str = "fleet development CA", validity: datetime.timedelta = VALIDITY,
             ) -> tuple[Key, x509.Certificate]:
    key = new_key()
    name = _name(common_name)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(_now() - datetime.timedelta(minutes=5)).not_valid_after(_now() + validity)
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(_usage(ca=True), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .sign(key, hashes.SHA256()))
    return key, cert


def default_names() -> list[str]:
    return sorted({"localhost", "127.0.0.1", "::1", socket.gethostname()})


def issue_cert(ca_key: Key, ca_cert: x509.Certificate, common_name: str, names: list[str] | None = None,
               server: bool = True, client: bool = True, validity: datetime.timedelta = VALIDITY,
               ) -> tuple[Key, x509.Certificate]:
    """A leaf certificate signed by the CA, for server and/or client use, naming ``names`` (DNS or IP)."""
    key = new_key()
    usages = ([ExtendedKeyUsageOID.SERVER_AUTH] if server else []) + ([ExtendedKeyUsageOID.CLIENT_AUTH] if client else [])
    builder = (x509.CertificateBuilder().subject_name(_name(common_name)).issuer_name(ca_cert.subject)
               .public_key(key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(_now() - datetime.timedelta(minutes=5)).not_valid_after(_now() + validity)
               .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
               .add_extension(_usage(ca=False), critical=True)
               .add_extension(x509.ExtendedKeyUsage(usages), critical=False)
               .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False))
    alt: list[x509.GeneralName] = []
    for n in names or []:
        try:
            alt.append(x509.IPAddress(ipaddress.ip_address(n)))
        except ValueError:
            alt.append(x509.DNSName(n))
    if alt:
        builder = builder.add_extension(x509.SubjectAlternativeName(alt), critical=False)
    return key, builder.sign(ca_key, hashes.SHA256())


def write_key(path: Path, key: Key) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                   serialization.NoEncryption()))


def write_cert(path: Path, cert: x509.Certificate) -> None:
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))


def _file(name: str) -> property:
    return property(lambda self: self.dir / name, doc=f"{name} in the PKI's directory")


@dataclass(frozen=True)
class DevPki:
    """Paths of the development CA and the certificates it signed."""

    dir: Path
    ca = _file("ca.pem")
    ca_key = _file("ca.key")
    server_cert = _file("server.pem")
    server_key = _file("server.key")
    client_cert = _file("client.pem")
    client_key = _file("client.key")

    def _fresh(self) -> bool:
        paths = (self.ca, self.ca_key, self.server_cert, self.server_key, self.client_cert, self.client_key)
        if not all(p.exists() for p in paths):
            return False
        for cert in (self.ca, self.server_cert, self.client_cert):
            if x509.load_pem_x509_certificate(cert.read_bytes()).not_valid_after_utc - _now() < RENEW_BEFORE:
                return False
        return True

    def ensure(self) -> DevPki:
        """Make the CA and certificates unless usable ones are there already."""
        if self._fresh():
            return self
        self.dir.mkdir(parents=True, exist_ok=True)
        os.chmod(self.dir, 0o700)
        ca_key, ca_cert = issue_ca()
        server_key, server_cert = issue_cert(ca_key, ca_cert, "fleet services", default_names())
        client_key, client_cert = issue_cert(ca_key, ca_cert, "fleet internal client", server=False)
        write_key(self.ca_key, ca_key)
        write_cert(self.ca, ca_cert)
        write_key(self.server_key, server_key)
        write_cert(self.server_cert, server_cert)
        write_key(self.client_key, client_key)
        write_cert(self.client_cert, client_cert)
        return self

    def service_env(self, prefix: str, internal: bool) -> dict[str, str]:
        """Environment for one service: its port's TLS (mTLS for internal ones) and its internal client."""
        env = {f"{prefix}TLS_CERT": str(self.server_cert), f"{prefix}TLS_KEY": str(self.server_key)}
        if internal:
            env[f"{prefix}TLS_CLIENT_CA"] = str(self.ca)
        env.update(FLEET_TLS_CA=str(self.ca), FLEET_TLS_CERT=str(self.client_cert),
                   FLEET_TLS_KEY=str(self.client_key))
        return env
