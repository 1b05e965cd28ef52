"""Artifact fetching against a real local HTTP server: verify, cache, share, retry, refuse."""

from __future__ import annotations

import asyncio
import hashlib
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from services.common.errors import InvalidArgument, ModelPackageError, Unavailable
from services.model_worker.artifact_policy import ArtifactPolicy
from services.model_worker.artifacts import ArtifactStore
from tests.artifact_server import artifact_server

BODY = b"onnx-bytes" * 50_000
SHA = hashlib.sha256(BODY).hexdigest()


def leftovers(store: ArtifactStore) -> list[str]:
    return sorted(p.name for p in store.dir.iterdir() if not p.name.endswith(".lock")) if store.dir.exists() else []


async def test_download_verifies_caches_and_reuses_without_network(tmp_path: Path) -> None:
    store = ArtifactStore(tmp_path)
    with artifact_server() as server:
        server.files["/m.onnx"] = BODY
        path = await store.fetch(server.url("/m.onnx"), SHA)
        assert path.read_bytes() == BODY and path.name == f"{SHA}.onnx"
        url = server.url("/m.onnx")
    # The server is gone: the cached, verified copy is used.
    assert await store.fetch(url, SHA) == path
    assert leftovers(store) == [f"{SHA}.onnx"]


async def test_mismatched_download_is_rejected_and_not_kept(tmp_path: Path) -> None:
    store = ArtifactStore(tmp_path)
    with artifact_server() as server:
        server.files["/m.onnx"] = BODY + b"tampered"
        with pytest.raises(ModelPackageError, match="expects"):
            await store.fetch(server.url("/m.onnx"), SHA)
        assert server.gets["/m.onnx"] == 1  # a wrong digest is not retried
    assert leftovers(store) == []


async def test_corrupt_cached_file_is_replaced(tmp_path: Path) -> None:
    store = ArtifactStore(tmp_path)
    store.dir.mkdir(parents=True)
    store.cached_path(SHA).write_bytes(b"corrupt")
    with artifact_server() as server:
        server.files["/m.onnx"] = BODY
        path = await store.fetch(server.url("/m.onnx"), SHA)
    assert path.read_bytes() == BODY


async def test_concurrent_fetches_download_once(tmp_path: Path) -> None:
    store = ArtifactStore(tmp_path)
    with artifact_server() as server:
        server.files["/m.onnx"] = BODY
        server.delay_s = 0.2
        paths = await asyncio.gather(*(store.fetch(server.url("/m.onnx"), SHA) for _ in range(10)))
        assert len(set(paths)) == 1 and server.gets["/m.onnx"] == 1


async def test_processes_sharing_the_cache_download_once(tmp_path: Path) -> None:
    script = textwrap.dedent("""
        import asyncio, sys
        from services.model_worker.artifacts import ArtifactStore
        path = asyncio.run(ArtifactStore(sys.argv[1]).fetch(sys.argv[2], sys.argv[3]))
        print(path)
    """)
    with artifact_server() as server:
        server.files["/m.onnx"] = BODY
        server.chunk_delay_s = 0.05  # ~8 chunks: a slow download the other process must wait for
        url = server.url("/m.onnx")
        procs = [subprocess.Popen([sys.executable, "-c", script, str(tmp_path), url, SHA],
                                  stdout=subprocess.PIPE, text=True) for _ in range(3)]
        outs = [p.communicate(timeout=60)[0].strip() for p in procs]
        assert all(p.returncode == 0 for p in procs)
        assert len(set(outs)) == 1 and server.gets["/m.onnx"] == 1


async def test_transient_failures_are_retried_with_backoff(tmp_path: Path) -> None:
    store = ArtifactStore(tmp_path, retries=3, backoff_s=0.01)
    with artifact_server() as server:
        server.files["/m.onnx"] = BODY
        server.fail_first["/m.onnx"] = 2
        assert (await store.fetch(server.url("/m.onnx"), SHA)).read_bytes() == BODY
        assert server.gets["/m.onnx"] == 3


async def test_persistent_failures_give_up_as_unavailable(tmp_path: Path) -> None:
    store = ArtifactStore(tmp_path, retries=1, backoff_s=0.01)
    with artifact_server() as server:
        server.fail_first["/m.onnx"] = 10
        server.files["/m.onnx"] = BODY
        with pytest.raises(Unavailable, match="after 2 attempts"):
            await store.fetch(server.url("/m.onnx"), SHA)
        with pytest.raises(ModelPackageError, match="HTTP 404"):
            await store.fetch(server.url("/missing.onnx"), SHA)
    assert leftovers(store) == []


async def test_paths_cannot_be_steered(tmp_path: Path) -> None:
    store = ArtifactStore(tmp_path)
    for bad in ("../../etc/passwd", "A" * 64, SHA[:-1], SHA + "/x"):
        with pytest.raises(InvalidArgument):
            await store.fetch("http://127.0.0.1:9/x", bad)
    with pytest.raises(ModelPackageError, match="not supported"):
        await store.fetch("ftp://host/model.onnx", SHA)


async def test_local_files_are_verified_in_place(tmp_path: Path) -> None:
    store = ArtifactStore(tmp_path / "cache", policy=ArtifactPolicy(roots=(tmp_path,)))
    local = tmp_path / "model.onnx"
    local.write_bytes(BODY)
    assert await store.fetch(local.as_uri(), SHA) == local
    local.write_bytes(BODY[:-1])
    with pytest.raises(ModelPackageError, match="expects"):
        await store.fetch(local.as_uri(), SHA)
    with pytest.raises(ModelPackageError, match="does not exist"):
        await store.fetch((tmp_path / "nope.onnx").as_uri(), SHA)


async def test_local_artifacts_only_under_the_configured_roots(tmp_path: Path) -> None:
    root, outside = tmp_path / "models", tmp_path / "elsewhere"
    root.mkdir(), outside.mkdir()
    (root / "m.onnx").write_bytes(BODY)
    (outside / "m.onnx").write_bytes(BODY)
    (root / "link.onnx").symlink_to(outside / "m.onnx")  # inside by name, outside once resolved
    store = ArtifactStore(tmp_path / "cache", policy=ArtifactPolicy(roots=(root,)))
    assert await store.fetch((root / "m.onnx").as_uri(), SHA) == root / "m.onnx"
    refused = [(outside / "m.onnx").as_uri(), (root / "link.onnx").as_uri(), f"file://{root}/../elsewhere/m.onnx",
               "file:///etc/passwd", f"file://otherhost{root}/m.onnx"]
    for uri in refused:
        with pytest.raises(ModelPackageError, match="not allowed on this worker") as err:
            await store.fetch(uri, SHA)
        assert str(tmp_path) not in err.value.message and "passwd" not in err.value.message  # no paths to callers
    with pytest.raises(ModelPackageError, match="not allowed"):  # no roots: no local artifacts at all
        await ArtifactStore(tmp_path / "cache").fetch((root / "m.onnx").as_uri(), SHA)


async def test_schemes_and_download_hosts_are_allow_listed_redirects_included(tmp_path: Path) -> None:
    with artifact_server() as server:
        server.files["/m.onnx"] = BODY
        url = server.url("/m.onnx")
        only_https = ArtifactStore(tmp_path / "a", policy=ArtifactPolicy(schemes=frozenset({"https"})))
        with pytest.raises(ModelPackageError, match="FLEET_WORKER_ARTIFACT_SCHEMES"):
            await only_https.fetch(url, SHA)
        other_host = ArtifactStore(tmp_path / "b", policy=ArtifactPolicy(hosts=("models.example.com",)))
        with pytest.raises(ModelPackageError, match="FLEET_WORKER_ARTIFACT_HOSTS"):
            await other_host.fetch(url, SHA)
        allowed = ArtifactStore(tmp_path / "c", policy=ArtifactPolicy(hosts=("127.0.0.1",)))
        assert (await allowed.fetch(url, SHA)).read_bytes() == BODY
        # A redirect to a host off the list is refused at that hop, before it is requested.
        with artifact_server() as elsewhere:
            elsewhere.files["/m.onnx"] = BODY
            server.redirects["/hop.onnx"] = elsewhere.url("/m.onnx").replace("127.0.0.1", "localhost")
            with pytest.raises(ModelPackageError, match="FLEET_WORKER_ARTIFACT_HOSTS"):
                await ArtifactStore(tmp_path / "d", policy=ArtifactPolicy(hosts=("127.0.0.1",))).fetch(
                    server.url("/hop.onnx"), SHA)
            assert elsewhere.gets["/m.onnx"] == 0
            assert (await ArtifactStore(tmp_path / "e").fetch(server.url("/hop.onnx"), SHA)).read_bytes() == BODY
        for store in (only_https, other_host, allowed):
            await store.close()


def test_host_patterns() -> None:
    policy = ArtifactPolicy(hosts=(".example.com", "models.internal"))
    for host in ("example.com", "a.example.com", "a.b.example.com", "MODELS.internal"):
        policy.check_host(host, "uri")
    for host in ("badexample.com", "example.com.evil", "internal", "x.models.internal"):
        with pytest.raises(ModelPackageError):
            policy.check_host(host, "uri")


def test_a_local_fleet_lets_workers_read_exactly_its_catalogs_packages(tmp_path: Path) -> None:
    from fleet.paths import MODELS_DIR
    from services.local.processes import artifact_roots
    from tests.conftest import write_catalog

    (tmp_path / "pkgs" / "a").mkdir(parents=True)
    catalog = write_catalog(tmp_path / "catalog.yaml", [{"id": "a/1", "workspace": "demo", "package": "pkgs/a"}])
    assert artifact_roots(catalog, [tmp_path / "more"]) == sorted(
        {(tmp_path / "pkgs" / "a").resolve(), MODELS_DIR.resolve(), (tmp_path / "more").resolve()})
