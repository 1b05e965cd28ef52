"""TLS material for servers and internal clients, re-read when its files change.

Certificates are files (a Kubernetes Secret mounted as a volume is replaced in place when it is
rotated), so nothing here holds them for the life of the process:

- ``ServerTls`` gives gRPC dynamic server credentials: on every new connection gRPC asks for the
  current configuration, and the files are read again when their identity (inode, size, mtime)
  has changed. A half-written rotation (a key that does not match its certificate) is refused
  and the previous certificate kept until the files are consistent again.
- ``HttpsContexts`` does the same for an HTTPS server, switching each handshake to a context
  built from the current files.
- ``ClientTls`` makes channel credentials and a fingerprint of its files, so a channel can be
  rebuilt when they change (``services.common.channels``).
"""

from __future__ import annotations

import logging
import os
import ssl
import threading
from dataclasses import dataclass, field
from pathlib import Path

import grpc

log = logging.getLogger("fleet.tls")

Stamp = tuple[tuple[int, int, int, int], ...]


class TlsConfigError(ValueError):
    """TLS files missing, unreadable or inconsistent."""


def stamp(paths: tuple[str, ...]) -> Stamp:
    """Identity of the files now: changes when any of them is replaced or rewritten."""
    out = []
    for path in paths:
        try:
            st = os.stat(path)
        except OSError:
            out.append((-1, -1, -1, -1))
            continue
        out.append((st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns))
    return tuple(out)


def read_pem(path: str, what: str) -> bytes:
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise TlsConfigError(f"{what} {path} cannot be read: {exc.strerror or exc}") from None
    if b"-----BEGIN" not in data:
        raise TlsConfigError(f"{what} {path} is not PEM")
    return data


def check_pair(cert: bytes, key: bytes, where: str) -> None:
    """The key is the private half of the certificate's public key (and both parse)."""
    from cryptography import x509  # noqa: PLC0415 - server side only
    from cryptography.hazmat.primitives import serialization  # noqa: PLC0415

    try:
        leaf = x509.load_pem_x509_certificates(cert)[0]
        private = serialization.load_pem_private_key(key, password=None)
    except (ValueError, TypeError) as exc:
        raise TlsConfigError(f"{where}: the certificate or key does not parse ({exc})") from None
    spki = serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    if leaf.public_key().public_bytes(*spki) != private.public_key().public_bytes(*spki):
        raise TlsConfigError(f"{where}: the key does not belong to the certificate")


def check_ca(ca: bytes, where: str) -> None:
    from cryptography import x509  # noqa: PLC0415

    try:
        x509.load_pem_x509_certificates(ca)
    except ValueError as exc:
        raise TlsConfigError(f"{where}: the CA bundle does not parse ({exc})") from None


@dataclass
class ServerTls:
    """A server's certificate and key, and the CA its clients' certificates must chain to (if any)."""

    cert: str
    key: str
    client_ca: str = ""
    _stamp: Stamp = field(default=(), init=False, repr=False)  # the files as last looked at
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)
    reloads: int = field(default=0, init=False)

    @property
    def paths(self) -> tuple[str, ...]:
        return (self.cert, self.key, self.client_ca) if self.client_ca else (self.cert, self.key)

    def _configuration(self) -> grpc.ServerCertificateConfiguration:
        cert, key = read_pem(self.cert, "TLS certificate"), read_pem(self.key, "TLS key")
        check_pair(cert, key, self.cert)
        ca = None
        if self.client_ca:
            ca = read_pem(self.client_ca, "TLS client CA")
            check_ca(ca, self.client_ca)
        return grpc.ssl_server_certificate_configuration([(key, cert)], root_certificates=ca)

    def check(self) -> None:
        """Raise TlsConfigError unless the files are usable now."""
        self._configuration()

    def credentials(self) -> grpc.ServerCredentials:
        """Dynamic credentials; raises TlsConfigError now if the files are not usable."""
        with self._lock:
            self._stamp = stamp(self.paths)
            initial = self._configuration()
        return grpc.dynamic_ssl_server_credentials(
            initial, self._fetch, require_client_authentication=bool(self.client_ca)
        )

    def _fetch(self) -> grpc.ServerCertificateConfiguration | None:
        """Called by gRPC (on its own threads) for every new connection: None keeps the current one."""
        with self._lock:
            now = stamp(self.paths)
            if now == self._stamp:
                return None
            self._stamp = now  # files that cannot be used are tried again once they change again
            try:
                configuration = self._configuration()
            except Exception as exc:  # noqa: BLE001 - never fail a handshake over a rotation in progress
                log.warning("TLS files changed but cannot be used yet; keeping the current certificate",
                            extra={"cert": self.cert, "error": str(exc)[:300]})
                return None
            self.reloads += 1
        log.info("TLS certificate reloaded", extra={"cert": self.cert, "reloads": self.reloads})
        return configuration


class HttpsContexts:
    """An ``ssl.SSLContext`` for an HTTPS server (the gateway's HTTP API) that follows the files.

    Its SNI callback, which OpenSSL calls on every handshake (with or without a server name),
    hands the connection a context built from the current files, rebuilt when they change.
    """

    def __init__(self, tls: ServerTls) -> None:
        self.tls = tls
        self._stamp = stamp(tls.paths)
        self.front = self._build()
        self.front.sni_callback = self._pick
        self.current = self.front
        self.reloads = 0

    def _build(self) -> ssl.SSLContext:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        try:
            ctx.load_cert_chain(self.tls.cert, self.tls.key)
            if self.tls.client_ca:
                ctx.load_verify_locations(cafile=self.tls.client_ca)
                ctx.verify_mode = ssl.CERT_REQUIRED
        except (OSError, ssl.SSLError) as exc:
            raise TlsConfigError(f"{self.tls.cert}: {exc}") from None
        return ctx

    def _pick(self, connection: ssl.SSLObject, server_name: str | None, context: ssl.SSLContext) -> None:
        now = stamp(self.tls.paths)
        if now != self._stamp:
            self._stamp = now
            try:
                self.current = self._build()
                self.reloads += 1
                log.info("TLS certificate reloaded (HTTPS)", extra={"cert": self.tls.cert, "reloads": self.reloads})
            except TlsConfigError as exc:
                log.warning("TLS files changed but cannot be used yet; keeping the current certificate",
                            extra={"cert": self.tls.cert, "error": str(exc)[:300]})
        if self.current is not self.front:
            connection.context = self.current


@dataclass(frozen=True)
class ClientTls:
    """What an internal client presents and trusts: a CA bundle, and a certificate and key for mTLS."""

    ca: str = ""
    cert: str = ""
    key: str = ""
    server_name: str = ""  # the name servers' certificates carry, when it differs from the address dialled

    @property
    def paths(self) -> tuple[str, ...]:
        return tuple(p for p in (self.ca, self.cert, self.key) if p)

    def credentials(self) -> grpc.ChannelCredentials:
        ca = read_pem(self.ca, "TLS CA") if self.ca else None
        cert = read_pem(self.cert, "TLS client certificate") if self.cert else None
        key = read_pem(self.key, "TLS client key") if self.key else None
        return grpc.ssl_channel_credentials(root_certificates=ca, private_key=key, certificate_chain=cert)

    def check(self) -> None:
        """Raise TlsConfigError unless the files are usable now."""
        if self.ca:
            check_ca(read_pem(self.ca, "TLS CA"), self.ca)
        if self.cert:
            check_pair(read_pem(self.cert, "TLS client certificate"), read_pem(self.key, "TLS client key"), self.cert)

    def stamp(self) -> Stamp:
        return stamp(self.paths)


def server_tls(cert: str, key: str, client_ca: str) -> ServerTls | None:
    return ServerTls(cert, key, client_ca) if cert else None


def client_tls(ca: str, cert: str, key: str, server_name: str = "") -> ClientTls | None:
    return ClientTls(ca, cert, key, server_name) if (ca or cert) else None
