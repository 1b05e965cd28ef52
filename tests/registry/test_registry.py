"""The registry: catalog parsing, resolution and auth against a real Redis, and its gRPC API."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import pytest

from fleet.internal.v1 import registry_pb2, registry_pb2_grpc
from services.cache import FleetCache
from services.cache.api_keys import hash_api_key
from services.common import descriptors
from services.common.errors import (
    AlreadyExists, InvalidArgument, ModelNotFound, ModelPackageError, PermissionDenied, Unauthenticated,
)
from services.common.server import Runner
from services.registry.catalog import Catalog
from services.registry.server import build
from services.registry.service import Registry
from services.registry.settings import RegistrySettings
from tests.conftest import OTHER_KEY, TEST_KEY, write_catalog


def make_package(root: Path, name: str, **overrides: object) -> Path:
    pkg = root / name
    pkg.mkdir(parents=True)
    spec = {"format_version": 1, "name": name, "task_type": "object-detection", "model_type": "yolov8",
            "class_names": ["circle", "rectangle"], "input": {"width": 320, "height": 320},
            "weights": {"file": "model.onnx", "sha256": "1" * 64, "size_bytes": 10}, **overrides}
    (pkg / "model.json").write_text(json.dumps(spec))
    return pkg


@pytest.fixture
def catalog_path(tmp_path: Path) -> Path:
    make_package(tmp_path, "det")
    make_package(tmp_path, "private")
    return write_catalog(tmp_path / "catalog.yaml", [
        {"id": "det/1", "workspace": "demo", "package": "det", "public": True, "aliases": ["detector"]},
        {"id": "private/1", "workspace": "demo", "package": "private"},
    ])


@pytest.fixture
async def registry(cache: FleetCache, catalog_path: Path) -> Registry:
    reg = Registry(cache)
    await reg.load_catalog(Catalog.load(catalog_path))
    return reg


def test_catalog_resolves_packages_relative_to_itself(catalog_path: Path) -> None:
    catalog = Catalog.load(catalog_path)
    det = next(r for r in catalog.records if r.model_id == "det/1")
    assert det.artifact_uri == (catalog_path.parent / "det" / "model.onnx").resolve().as_uri()
    assert det.spec.class_names == ("circle", "rectangle")
    assert catalog.key_hashes[hash_api_key(TEST_KEY)] == "demo"


@pytest.mark.parametrize("mutate,message", [
    (lambda d: d["workspaces"][0].update(api_key_sha256=["not-a-hash"]), "never keys"),
    (lambda d: d["models"][0].update(workspace="ghost"), "not declared"),
    (lambda d: d["models"][0].update(package="missing"), "does not exist"),
    (lambda d: d["models"][0].update(id="no-version"), "project>/<version"),
    (lambda d: d["models"].append(dict(d["models"][0])), "twice"),
    (lambda d: d.update(surprise=1), "Extra inputs"),
])
def test_bad_catalogs_are_refused_with_the_reason(catalog_path: Path, mutate, message: str) -> None:
    import yaml

    data = yaml.safe_load(catalog_path.read_text())
    mutate(data)
    catalog_path.write_text(yaml.safe_dump(data))
    with pytest.raises(ModelPackageError, match=message):
        Catalog.load(catalog_path)


def test_bad_model_json_is_refused_with_every_problem(tmp_path: Path) -> None:
    make_package(tmp_path, "bad", model_type="yolov9", class_names=[])
    write_catalog(tmp_path / "c.yaml", [{"id": "bad/1", "workspace": "demo", "package": "bad"}])
    with pytest.raises(ModelPackageError) as err:
        Catalog.load(tmp_path / "c.yaml")
    assert "class_names" in err.value.message and "model.json is invalid" in err.value.message


async def test_resolve_by_id_and_alias(registry: Registry) -> None:
    assert (await registry.resolve("det/1", "demo")).model_id == "det/1"
    assert (await registry.resolve("detector", "other")).model_id == "det/1"  # public: any workspace


async def test_resolve_errors(registry: Registry) -> None:
    with pytest.raises(ModelNotFound):
        await registry.resolve("nope/1", "demo")
    with pytest.raises(PermissionDenied):
        await registry.resolve("private/1", "other")
    with pytest.raises(InvalidArgument):
        await registry.resolve("../../etc/passwd", "demo")


async def test_authenticate(registry: Registry) -> None:
    assert await registry.authenticate(hash_api_key(TEST_KEY)) == "demo"
    assert await registry.authenticate(hash_api_key(OTHER_KEY)) == "other"
    with pytest.raises(Unauthenticated):
        await registry.authenticate(hash_api_key("wrong"))


async def test_register_list_delete(registry: Registry) -> None:
    record = (await registry.resolve("private/1", "demo")).model_copy(update={"model_id": "new/1", "aliases": ()})
    await registry.register(record, replace=False)
    with pytest.raises(AlreadyExists):
        await registry.register(record, replace=False)
    page, token = await registry.list("demo", page_size=2, page_token="")
    assert [r.model_id for r in page] == ["det/1", "new/1"] and token == "new/1"
    page, token = await registry.list("demo", page_size=2, page_token=token)
    assert [r.model_id for r in page] == ["private/1"] and token == ""
    assert [r.model_id for r in (await registry.list("other", 10, ""))[0]] == ["det/1"]
    with pytest.raises(PermissionDenied):
        await registry.delete("new/1", "other")
    await registry.delete("new/1", "demo")
    with pytest.raises(ModelNotFound):
        await registry.resolve("new/1", "demo")


@pytest.fixture
async def registry_server(redis_url: str, namespace: str, catalog_path: Path) -> AsyncIterator[str]:
    settings = RegistrySettings(port=0, metrics_port=0, catalog=str(catalog_path), redis_url=redis_url,
                                redis_namespace=namespace)
    runner = Runner(build(settings))
    await runner.start()
    try:
        yield f"127.0.0.1:{runner.port}"
    finally:
        await runner.stop()


async def test_grpc_api(registry_server: str) -> None:
    async with grpc.aio.insecure_channel(registry_server) as channel:
        stub = registry_pb2_grpc.RegistryServiceStub(channel)
        reply = await stub.ResolveModel(registry_pb2.ResolveModelRequest(model_id="detector", workspace="other"))
        record = descriptors.from_proto(reply.model)
        assert record.model_id == "det/1" and record.spec.class_names == ("circle", "rectangle")
        assert (await stub.Authenticate(registry_pb2.AuthenticateRequest(
            api_key_sha256=hash_api_key(TEST_KEY)))).workspace == "demo"
        for call, request, code in [
            (stub.ResolveModel, registry_pb2.ResolveModelRequest(model_id="nope/1", workspace="demo"),
             grpc.StatusCode.NOT_FOUND),
            (stub.ResolveModel, registry_pb2.ResolveModelRequest(model_id="private/1", workspace="other"),
             grpc.StatusCode.PERMISSION_DENIED),
            (stub.Authenticate, registry_pb2.AuthenticateRequest(api_key_sha256=hash_api_key("bad")),
             grpc.StatusCode.UNAUTHENTICATED),
        ]:
            with pytest.raises(grpc.aio.AioRpcError) as err:
                await call(request)
            assert err.value.code() == code
        listed = await stub.ListModels(registry_pb2.ListModelsRequest(workspace="demo"))
        assert [m.model_id for m in listed.models] == ["det/1", "private/1"]
