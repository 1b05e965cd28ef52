"""TLS and mTLS on loopback, with certificates made here: refusals, client certificates, rotation."""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import ssl
import subprocess
import sys
import threading
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from pydantic import ValidationError

from services.common import channels
from services.common.channels import ReloadingChannel, open_channel
from services.common.server import Runner, Service
from services.common.settings import ServiceSettings
from services.common.tls import ClientTls, HttpsContexts, ServerTls
from services.gateway.worker_client import WorkerClient, WorkerUnavailable
from services.local.dev_tls import issue_ca, issue_cert, write_cert, write_key
from tests.model_worker.test_service import start_worker


@dataclass
class Authority:
    """A CA of the test's own and the certificates it signed, as files."""

    dir: Path

    def __post_init__(self) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        self.key, self.cert = issue_ca(f"test CA {self.dir.name}")
        write_cert(self.ca, self.cert)

    @property
    def ca(self) -> Path:
        return self.dir / "ca.pem"

    def leaf(self, name: str, server: bool = True) -> tuple[Path, Path]:
        key, cert = issue_cert(self.key, self.cert, name, ["localhost", "127.0.0.1"] if server else None,
                               server=server)
        write_key(self.dir / f"{name}.key", key)
        write_cert(self.dir / f"{name}.pem", cert)
        return self.dir / f"{name}.pem", self.dir / f"{name}.key"


@pytest.fixture
def ca_a(tmp_path: Path) -> Authority:
    return Authority(tmp_path / "a")


@pytest.fixture
def ca_b(tmp_path: Path) -> Authority:
    return Authority(tmp_path / "b")


class InternalSettings(ServiceSettings):
    require_client_cert: ClassVar[bool] = True


def _health_only(settings: ServiceSettings) -> Service:
    return Service("tls-test", settings, lambda server: None, [])


@pytest.fixture
async def serve() -> AsyncIterator[Callable[[ServiceSettings], asyncio.Future]]:
    runners: list[Runner] = []

    async def start(settings: ServiceSettings) -> Runner:
        runner = Runner(_health_only(settings))
        await runner.start()
        runners.append(runner)
        return runner

    yield start
    for runner in runners:
        await runner.stop()


def credentials(ca: Path | None = None, cert: Path | None = None, key: Path | None = None) -> grpc.ChannelCredentials:
    return grpc.ssl_channel_credentials(ca.read_bytes() if ca else None, key.read_bytes() if key else None,
                                        cert.read_bytes() if cert else None)


async def check(address: str, creds: grpc.ChannelCredentials | None) -> grpc.StatusCode:
    """The status of one health check over a fresh channel (a new connection, a new handshake)."""
    channel = grpc.aio.secure_channel(address, creds) if creds else grpc.aio.insecure_channel(address)
    async with channel:
        try:
            await health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=5)
        except grpc.aio.AioRpcError as exc:
            return exc.code()
    return grpc.StatusCode.OK


async def test_a_tls_port_refuses_plaintext_and_clients_trusting_another_ca(serve, ca_a: Authority,
                                                                            ca_b: Authority) -> None:
    cert, key = ca_a.leaf("server")
    runner = await serve(ServiceSettings(port=0, metrics_port=0, tls_cert=str(cert), tls_key=str(key)))
    address = f"127.0.0.1:{runner.port}"
    assert await check(address, credentials(ca_a.ca)) == grpc.StatusCode.OK
    assert await check(address, None) == grpc.StatusCode.UNAVAILABLE  # plaintext
    assert await check(address, credentials(ca_b.ca)) == grpc.StatusCode.UNAVAILABLE  # trusts another CA


async def test_internal_ports_require_a_client_certificate_from_their_ca(serve, ca_a: Authority,
                                                                         ca_b: Authority) -> None:
    cert, key = ca_a.leaf("server")
    good_cert, good_key = ca_a.leaf("client", server=False)
    foreign_cert, foreign_key = ca_b.leaf("client", server=False)
    # The client CA defaults to FLEET_TLS_CA on the registry and workers.
    runner = await serve(InternalSettings(port=0, metrics_port=0, tls_cert=str(cert), tls_key=str(key),
                                          internal_tls_ca=str(ca_a.ca)))
    address = f"127.0.0.1:{runner.port}"
    assert await check(address, credentials(ca_a.ca, good_cert, good_key)) == grpc.StatusCode.OK
    assert await check(address, credentials(ca_a.ca)) == grpc.StatusCode.UNAVAILABLE  # no client certificate
    assert await check(address, credentials(ca_a.ca, foreign_cert, foreign_key)) == grpc.StatusCode.UNAVAILABLE


def test_internal_services_refuse_tls_without_client_certificates() -> None:
    from services.model_worker.settings import WorkerSettings
    from services.registry.settings import RegistrySettings

    for cls in (WorkerSettings, RegistrySettings):
        with pytest.raises(ValidationError, match="requires client certificates"):
            cls(tls_cert="/c.pem", tls_key="/k.pem")
    with pytest.raises(ValidationError, match="must be set together"):
        ServiceSettings(tls_cert="/c.pem")
    with pytest.raises(ValidationError, match="FLEET_TLS_CERT and FLEET_TLS_KEY"):
        ServiceSettings(internal_tls_cert="/c.pem")


def test_the_environment_names_of_the_issue(monkeypatch: pytest.MonkeyPatch) -> None:
    from services.gateway.settings import GatewaySettings
    from services.model_worker.settings import WorkerSettings

    monkeypatch.setenv("FLEET_WORKER_TLS_CERT", "/w.pem")
    monkeypatch.setenv("FLEET_WORKER_TLS_KEY", "/w.key")
    monkeypatch.setenv("FLEET_GATEWAY_TLS_CLIENT_CA", "/callers.pem")
    monkeypatch.setenv("FLEET_GATEWAY_TLS_CERT", "/g.pem")
    monkeypatch.setenv("FLEET_GATEWAY_TLS_KEY", "/g.key")
    for name, value in (("FLEET_TLS_CA", "/ca.pem"), ("FLEET_TLS_CERT", "/c.pem"), ("FLEET_TLS_KEY", "/c.key")):
        monkeypatch.setenv(name, value)
    worker = WorkerSettings()
    assert (worker.server_tls().cert, worker.server_tls().client_ca) == ("/w.pem", "/ca.pem")
    assert worker.client_tls() == ClientTls("/ca.pem", "/c.pem", "/c.key")
    gateway = GatewaySettings()
    assert gateway.server_tls().client_ca == "/callers.pem" and gateway.client_tls().cert == "/c.pem"


async def test_a_worker_refuses_a_gateway_without_a_client_certificate(tmp_path: Path, redis_url: str,
                                                                       namespace: str, ca_a: Authority) -> None:
    cert, key = ca_a.leaf("server")
    client_cert, client_key = ca_a.leaf("gateway", server=False)
    harness = await start_worker(tmp_path, redis_url, namespace, tls_cert=str(cert), tls_key=str(key),
                                 internal_tls_ca=str(ca_a.ca))
    address = f"127.0.0.1:{harness.runner.port}"
    anonymous = WorkerClient(address, 1 << 20, ClientTls(ca=str(ca_a.ca)))
    trusted = WorkerClient(address, 1 << 20, ClientTls(str(ca_a.ca), str(client_cert), str(client_key)))
    try:
        with pytest.raises(WorkerUnavailable):
            await anonymous.describe(5)
        described = await trusted.describe(5)
        assert described.load.worker_id == "w-test"
    finally:
        await anonymous.close()
        await trusted.close()
        await harness.runner.stop()


def _secret_volume(root: Path, cert: Path, key: Path, ca: Path | None, version: str) -> None:
    """Lay files out as a mounted Kubernetes Secret does: names -> ..data/ -> a versioned directory, swapped atomically."""
    versioned = root / f"..{version}"
    versioned.mkdir()
    shutil.copy(cert, versioned / "tls.crt")
    shutil.copy(key, versioned / "tls.key")
    if ca is not None:
        shutil.copy(ca, versioned / "ca.crt")
    link = root / "..data_tmp"
    link.symlink_to(versioned.name)
    os.replace(link, root / "..data")
    for name in ("tls.crt", "tls.key", "ca.crt"):
        if not (root / name).is_symlink():
            (root / name).symlink_to(f"..data/{name}")


async def test_a_rotated_server_certificate_is_picked_up_without_a_restart(serve, tmp_path: Path, ca_a: Authority,
                                                                           ca_b: Authority) -> None:
    secret = tmp_path / "secret"
    secret.mkdir()
    _secret_volume(secret, *ca_a.leaf("server"), None, "v1")
    runner = await serve(ServiceSettings(port=0, metrics_port=0, tls_cert=str(secret / "tls.crt"),
                                         tls_key=str(secret / "tls.key")))
    address = f"127.0.0.1:{runner.port}"
    assert await check(address, credentials(ca_a.ca)) == grpc.StatusCode.OK
    assert await check(address, credentials(ca_b.ca)) == grpc.StatusCode.UNAVAILABLE

    # Half a rotation (B's key beside A's certificate) is not taken: the current certificate keeps serving.
    b_cert, b_key = ca_b.leaf("server")
    os.unlink(secret / "tls.key")
    shutil.copy(b_key, secret / "tls.key")
    assert await check(address, credentials(ca_a.ca)) == grpc.StatusCode.OK
    assert runner.tls.reloads == 0

    os.unlink(secret / "tls.key")
    (secret / "tls.key").symlink_to("..data/tls.key")
    _secret_volume(secret, b_cert, b_key, None, "v2")
    assert await check(address, credentials(ca_b.ca)) == grpc.StatusCode.OK
    assert await check(address, credentials(ca_a.ca)) == grpc.StatusCode.UNAVAILABLE
    assert runner.tls.reloads == 1


async def test_a_rotated_client_certificate_reaches_new_connections(serve, tmp_path: Path, ca_a: Authority,
                                                                    ca_b: Authority, monkeypatch) -> None:
    monkeypatch.setattr(channels, "RELOAD_CHECK_S", 0.0)
    server_cert, server_key = ca_a.leaf("server")
    # The server trusts client certificates from A, then (after rotation) only from B.
    server_secret, client_secret = tmp_path / "server-secret", tmp_path / "client-secret"
    server_secret.mkdir(), client_secret.mkdir()
    _secret_volume(server_secret, server_cert, server_key, ca_a.ca, "v1")
    _secret_volume(client_secret, *ca_a.leaf("client", server=False), ca_a.ca, "v1")
    runner = await serve(InternalSettings(port=0, metrics_port=0, tls_cert=str(server_secret / "tls.crt"),
                                          tls_key=str(server_secret / "tls.key"),
                                          tls_client_ca=str(server_secret / "ca.crt")))
    address = f"127.0.0.1:{runner.port}"
    tls = ClientTls(ca=str(client_secret / "ca.crt"), cert=str(client_secret / "tls.crt"),
                    key=str(client_secret / "tls.key"))
    channel = open_channel(address, 1 << 20, tls)
    assert isinstance(channel, ReloadingChannel)
    stub = health_pb2_grpc.HealthStub(channel)  # made once, as services make theirs
    try:
        await stub.Check(health_pb2.HealthCheckRequest(), timeout=5)
        both = tmp_path / "ca-a-and-b.pem"  # the client keeps trusting A's server certificate
        both.write_bytes(ca_a.ca.read_bytes() + ca_b.ca.read_bytes())
        _secret_volume(server_secret, server_cert, server_key, ca_b.ca, "v2")
        _secret_volume(client_secret, *ca_b.leaf("client", server=False), both, "v2")
        old_cert = credentials(ca_a.ca, *ca_a.leaf("old-client", server=False))
        assert await check(address, old_cert) == grpc.StatusCode.UNAVAILABLE  # A's client certificates: refused now
        await stub.Check(health_pb2.HealthCheckRequest(), timeout=5)  # a new channel, with B's certificate
        assert channel.generation == 1
    finally:
        await channel.close()


def test_a_service_with_unusable_tls_files_exits_with_a_clear_message(tmp_path: Path, ca_a: Authority,
                                                                      ca_b: Authority) -> None:
    cert, _ = ca_a.leaf("server")
    _, other_key = ca_b.leaf("server")
    env = {**os.environ, "FLEET_REGISTRY_TLS_CERT": str(cert), "FLEET_REGISTRY_TLS_KEY": str(other_key),
           "FLEET_TLS_CA": str(ca_a.ca), "FLEET_REGISTRY_PORT": "0", "FLEET_REGISTRY_METRICS_PORT": "0"}
    out = subprocess.run([sys.executable, "-m", "services.registry"], env=env, capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 2 and "does not belong to the certificate" in out.stderr, out.stderr
    env["FLEET_REGISTRY_TLS_KEY"] = str(tmp_path / "missing.key")
    out = subprocess.run([sys.executable, "-m", "services.registry"], env=env, capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 2 and "cannot be read" in out.stderr, out.stderr


async def test_without_tls_settings_channels_are_plaintext() -> None:
    assert ServiceSettings().client_tls() is None and ServiceSettings().server_tls() is None
    channel = open_channel("127.0.0.1:1", 1 << 20, ServiceSettings().client_tls())
    assert not isinstance(channel, ReloadingChannel)
    await channel.close()


def _https_handshake(port: int, ca: Path, cert: tuple[Path, Path] | None = None) -> str:
    """Issuer CN of the certificate a fresh TLS connection to 127.0.0.1:port is served (or the error)."""
    context = ssl.create_default_context(cafile=str(ca))
    if cert is not None:
        context.load_cert_chain(*map(str, cert))
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
            with context.wrap_socket(raw, server_hostname="127.0.0.1") as conn:
                conn.sendall(b"x")
                conn.recv(1)
                return dict(item[0] for item in conn.getpeercert()["issuer"])["commonName"]
    except (ssl.SSLError, OSError) as exc:
        return type(exc).__name__


def _serve_tls(context: ssl.SSLContext) -> tuple[socket.socket, threading.Event]:
    listener = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()

    def loop() -> None:
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                raw, _ = listener.accept()
            except OSError:
                continue
            try:
                with context.wrap_socket(raw, server_side=True) as conn:
                    conn.recv(1)
                    conn.sendall(b"y")
            except (ssl.SSLError, OSError):
                pass

    threading.Thread(target=loop, daemon=True).start()
    return listener, stop


def test_https_follows_rotated_files_and_requires_client_certificates(tmp_path: Path, ca_a: Authority,
                                                                      ca_b: Authority) -> None:
    secret = tmp_path / "secret"
    secret.mkdir()
    _secret_volume(secret, *ca_a.leaf("server"), ca_a.ca, "v1")
    contexts = HttpsContexts(ServerTls(str(secret / "tls.crt"), str(secret / "tls.key"), str(secret / "ca.crt")))
    listener, stop = _serve_tls(contexts.front)
    port = listener.getsockname()[1]
    try:
        client_a = ca_a.leaf("client", server=False)
        assert _https_handshake(port, ca_a.ca, client_a) == "test CA a"
        assert _https_handshake(port, ca_a.ca) != "test CA a"  # no client certificate: refused
        _secret_volume(secret, *ca_b.leaf("server"), ca_b.ca, "v2")
        assert _https_handshake(port, ca_b.ca, ca_b.leaf("client", server=False)) == "test CA b"
        assert _https_handshake(port, ca_a.ca, client_a) != "test CA a"
        assert contexts.reloads == 1
    finally:
        stop.set()
        listener.close()
