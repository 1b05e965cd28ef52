"""The control plane as a user meets it: tenancy, the admin CLI, revocation, Redis and registry outages.

One fleet of real processes (a registry, two gateways, a worker) on a Redis of its own, which the
tests flush and restart; the registry's database is a SQLite file.
"""

from __future__ import annotations

import concurrent.futures
import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
import redis
import yaml

from fleet.client import FleetClient, build_request
from fleet.keys import hash_api_key
from fleet.v1 import admin_pb2, admin_pb2_grpc, gateway_pb2
from services.cache.embedded import EmbeddedRedis
from services.local.processes import LocalFleet
from tests.conftest import OTHER_KEY, PACKAGES, TEST_KEY, write_catalog
from tests.e2e.load import Load

THIRD_KEY = "fk_test_third_key"
SAMPLE = (Path(__file__).resolve().parents[2] / "models" / "samples" / "shapes-1.jpg").read_bytes()
KEYS = {"demo": TEST_KEY, "other": OTHER_KEY, "third": THIRD_KEY}


def tenancy_models() -> list[dict]:
    det, cls = str(PACKAGES / "shapes-det"), str(PACKAGES / "shapes-cls")
    return [
        {"id": "shapes-det/1", "workspace": "demo", "package": det, "aliases": ["detector"]},
        {"id": "shapes-cls/1", "workspace": "demo", "package": cls, "public": True, "aliases": ["classifier"]},
        {"id": "otherdet/1", "workspace": "other", "package": det, "aliases": ["detector"]},
        {"id": "otherdet/2", "workspace": "other", "package": det},
        {"id": "thirddet/1", "workspace": "third", "package": det, "aliases": ["mine"]},
    ]


@pytest.fixture(scope="module")
def control(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalFleet]:
    tmp = tmp_path_factory.mktemp("control")
    catalog = write_catalog(tmp / "catalog.yaml", tenancy_models(), {w: [k] for w, k in KEYS.items()})
    redis = EmbeddedRedis().start()
    timeouts = {f"FLEET_{s}_REDIS_TIMEOUT_S": "0.5" for s in ("GATEWAY", "REGISTRY", "WORKER")}
    fleet = LocalFleet(redis.url, catalog, workers=1, gateways=2, namespace=f"cp-{uuid.uuid4().hex[:8]}",
                       state_dir=tmp / "run", redis=redis,
                       env={**timeouts, "FLEET_GATEWAY_AUTH_REFRESH_S": "60"})
    try:
        yield fleet.start()
    finally:
        fleet.stop()
        redis.stop()


def admin_stub(fleet: LocalFleet, gateway: int = 0) -> tuple[admin_pb2_grpc.AdminServiceStub, tuple]:
    channel = grpc.insecure_channel(fleet.gateway_processes[gateway].address)
    return admin_pb2_grpc.AdminServiceStub(channel), (("authorization", f"Bearer {fleet.admin_token}"),)


def fleet_cli(fleet: LocalFleet, *args: str, token: bool = True) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "FLEET_ADDRESS": fleet.gateway.address, "XDG_STATE_HOME": str(fleet.state_dir)}
    env.pop("FLEET_ADMIN_TOKEN", None)
    if token:
        env["FLEET_ADMIN_TOKEN"] = fleet.admin_token
    return subprocess.run([sys.executable, "-m", "fleet.cli.main", *args], env=env, capture_output=True,
                          text=True, timeout=120)


def snapshot(fleet: LocalFleet) -> tuple:
    """Keys, models and aliases as the admin plane lists them."""
    stub, md = admin_stub(fleet)
    keys = stub.ListApiKeys(admin_pb2.ListApiKeysRequest(), metadata=md, timeout=30).keys
    models = stub.ListModels(admin_pb2.ListModelsRequest(), metadata=md, timeout=30).models
    return (sorted((k.key_id, k.workspace, k.revoked) for k in keys),
            sorted((m.summary.model_id, m.workspace, m.summary.public, tuple(m.summary.aliases)) for m in models))


def status_of(call) -> str:  # noqa: ANN001
    try:
        call()
    except grpc.RpcError as exc:
        return exc.code().name
    return "OK"


def message_of(call) -> str:  # noqa: ANN001
    try:
        call()
    except grpc.RpcError as exc:
        return f"{exc.code().name}: {exc.details()}"
    return "OK"


# ---- tenancy ------------------------------------------------------------------------------------
def test_tenancy_matrix(control: LocalFleet) -> None:
    """Three workspaces; every RPC; another workspace's private model answers exactly as an unknown id."""
    own = {"demo": ["shapes-det/1", "detector", "shapes-cls/1", "classifier", "shapes-cls/latest", "shapes-det/latest"],
           "other": ["otherdet/1", "otherdet/latest", "detector", "shapes-cls/1"],
           "third": ["thirddet/1", "mine", "thirddet/latest", "shapes-cls/1"]}
    private = {"demo": ["shapes-det/1"], "other": ["otherdet/1", "otherdet/2"], "third": ["thirddet/1"]}
    resolved = {("other", "detector"): "otherdet/1", ("other", "otherdet/latest"): "otherdet/2",
                ("demo", "detector"): "shapes-det/1"}
    for workspace, key in KEYS.items():
        with FleetClient(control.gateway.address, key) as c:
            for name in own[workspace]:
                response = c.infer(name, SAMPLE, timeout=60)
                assert response.model_id == resolved.get((workspace, name), response.model_id), (workspace, name)
            foreign = [m for w, ids in private.items() if w != workspace for m in ids]
            foreign += [f"{m.split('/')[0]}/latest" for m in foreign] + (["mine"] if workspace != "third" else [])
            unknown = {name: message_of(lambda n=name: c.infer(n, SAMPLE, timeout=30)) for name in ["nope/1", *foreign]}
            for name, answer in unknown.items():
                assert answer.replace(repr(name), "<id>") == unknown["nope/1"].replace("'nope/1'", "<id>"), (
                    workspace, name, answer)
                assert answer.startswith("NOT_FOUND")
                for rpc, request in [
                    (c.stub.AddModel, gateway_pb2.AddModelRequest(model_id=name)),
                    (c.stub.RemoveModel, gateway_pb2.RemoveModelRequest(model_id=name)),
                ]:
                    assert status_of(lambda: rpc(request, metadata=c.metadata, timeout=60)) == "NOT_FOUND", (
                        workspace, name, rpc)
                item = gateway_pb2.InferStreamRequest(correlation_id="1", request=build_request(name, SAMPLE))
                [reply] = list(c.stub.InferStream(iter([item]), metadata=c.metadata, timeout=60))
                assert reply.error.code == grpc.StatusCode.NOT_FOUND.value[0], (workspace, name)
            loaded = {m.model_id for m in c.describe_models().models}
            assert not loaded & {m for w, ids in private.items() if w != workspace for m in ids}, (workspace, loaded)
            assert c.server_info().workers
            admin = admin_pb2_grpc.AdminServiceStub(c.channel)
            assert status_of(lambda: admin.ListApiKeys(admin_pb2.ListApiKeysRequest(), metadata=c.metadata,
                                                       timeout=30)) == "PERMISSION_DENIED"
    # A workspace clears only its own models: the others' stay loaded.
    with FleetClient(control.gateway.address, OTHER_KEY) as c:
        c.infer("otherdet/1", SAMPLE, timeout=60)
        c.stub.ClearModels(gateway_pb2.ClearModelsRequest(), metadata=c.metadata, timeout=60)
    with FleetClient(control.gateway.address, THIRD_KEY) as c:
        c.infer("thirddet/1", SAMPLE, timeout=60)
        c.stub.ClearModels(gateway_pb2.ClearModelsRequest(), metadata=c.metadata, timeout=60)
    with FleetClient(control.gateway.address, TEST_KEY) as c:
        assert "shapes-det/1" in {m.model_id for m in c.describe_models().models}
    # The admin token administers but runs nothing.
    with FleetClient(control.gateway.address, control.admin_token) as c:
        assert status_of(lambda: c.infer("shapes-cls/1", SAMPLE, timeout=30)) == "PERMISSION_DENIED"


# ---- the admin CLI ----------------------------------------------------------------------------
def test_admin_cli(control: LocalFleet, tmp_path: Path) -> None:
    made = fleet_cli(control, "keys", "create", "--workspace", "third", "--name", "cli", "--json")
    assert made.returncode == 0, made.stderr
    key = json.loads(made.stdout)
    with FleetClient(control.gateway.address, key["api_key"]) as c:
        assert c.infer("mine", SAMPLE, timeout=60).model_id == "thirddet/1"
    listed = fleet_cli(control, "keys", "list", "--workspace", "third", "--json")
    entries = json.loads(listed.stdout)
    assert key["key_id"] in {e["key_id"] for e in entries}
    assert key["api_key"] not in listed.stdout and hash_api_key(key["api_key"]) not in listed.stdout
    assert {"key_id", "prefix", "name", "created_at"} <= set(next(e for e in entries if e["key_id"] == key["key_id"]))
    text = fleet_cli(control, "keys", "list")
    assert text.returncode == 0 and "last used" in text.stdout
    assert fleet_cli(control, "keys", "revoke", key["key_id"]).returncode == 0

    # Aliases: moved atomically, visible through both gateways.
    assert fleet_cli(control, "models", "alias", "other", "current", "otherdet/1").returncode == 0
    for gateway in control.gateway_processes:  # both gateways have the alias cached
        with FleetClient(gateway.address, OTHER_KEY) as c:
            assert c.infer("current", SAMPLE, timeout=60).model_id == "otherdet/1"
    stub, md = admin_stub(control)
    moved_at = time.monotonic()
    moved = stub.SetAlias(admin_pb2.SetAliasRequest(workspace="other", alias="current", model_id="otherdet/2"),
                          metadata=md, timeout=30)
    assert moved.previous_model_id == "otherdet/1"
    seen = []
    for gateway in control.gateway_processes:
        with FleetClient(gateway.address, OTHER_KEY) as c:
            while c.infer("current", SAMPLE, timeout=60).model_id != "otherdet/2":
                assert time.monotonic() < moved_at + 5, "a moved alias did not reach every gateway"
                time.sleep(0.02)
            seen.append(round(time.monotonic() - moved_at, 3))
    print(f"\nalias moved: served as the new target by both gateways {seen} s after SetAlias was sent")
    cli_moved = fleet_cli(control, "models", "alias", "other", "current", "otherdet/1")
    assert cli_moved.returncode == 0 and "(was otherdet/2)" in cli_moved.stdout
    refused = fleet_cli(control, "models", "alias", "other", "theirs", "shapes-det/1")
    assert refused.returncode == 1 and "NOT_FOUND" in refused.stderr
    assert "otherdet/2" in fleet_cli(control, "models", "list", "--workspace", "other").stdout

    # Catalogs: the same one twice changes nothing; --prune removes; a broken one changes nothing.
    catalog = write_catalog(tmp_path / "third.yaml", [  # workspace third's own catalog
        {"id": "thirddet/1", "workspace": "third", "package": "shapes-det", "aliases": ["mine"]},
        {"id": "extra/1", "workspace": "third", "package": "shapes-det", "aliases": ["extra"]},
        {"id": "extra/2", "workspace": "third", "package": "shapes-det"},
    ], {"third": [THIRD_KEY]})
    (tmp_path / "shapes-det").symlink_to(PACKAGES / "shapes-det")
    dry = fleet_cli(control, "catalog", "apply", str(catalog), "--dry-run")
    assert dry.returncode == 0 and "+ model extra/1" in dry.stdout and "dry run" in dry.stdout
    first = fleet_cli(control, "catalog", "apply", str(catalog))
    assert first.returncode == 0 and "+ model extra/2" in first.stdout, first.stderr
    again = fleet_cli(control, "catalog", "apply", str(catalog))
    assert again.returncode == 0 and again.stdout.strip() == "no changes", again.stdout
    before = snapshot(control)
    broken = yaml.safe_load(catalog.read_text())
    broken["models"][0]["package"] = "nowhere"
    broken["models"].append({"id": "extra/3", "workspace": "third", "package": "shapes-det"})
    catalog.write_text(yaml.safe_dump(broken, sort_keys=False))
    failed = fleet_cli(control, "catalog", "apply", str(catalog), "--prune")
    assert failed.returncode == 1 and "INVALID_ARGUMENT" in failed.stderr
    assert f"{catalog}:" in failed.stderr and "does not exist" in failed.stderr, failed.stderr
    assert snapshot(control) == before
    write_catalog(catalog, [m for m in tenancy_models() if m["workspace"] == "third"]
                  + [{"id": "extra/2", "workspace": "third", "package": "shapes-det"}], {"third": [THIRD_KEY]})
    pruned = fleet_cli(control, "catalog", "apply", str(catalog), "--prune")
    assert pruned.returncode == 0, pruned.stderr
    removed = {line for line in pruned.stdout.splitlines() if line.startswith("-")}
    # Only in the workspaces this catalog declares: demo's and other's models are left alone.
    assert removed == {"- model extra/1", "- alias third/extra (was -> extra/1)"}, pruned.stdout
    deleted = fleet_cli(control, "models", "delete", "extra/2")
    assert deleted.returncode == 0
    with FleetClient(control.gateway.address, THIRD_KEY) as c:
        assert status_of(lambda: c.infer("extra/2", SAMPLE, timeout=30)) == "NOT_FOUND"
    nokey = fleet_cli(control, "keys", "list", token=False)
    assert nokey.returncode == 2 and "no admin token" in nokey.stderr


# ---- revocation -----------------------------------------------------------------------------------
def _refused_at(address: str, api_key: str, deadline: float) -> float:
    """Poll one gateway with ``api_key`` until it answers UNAUTHENTICATED; the time it first did."""
    with FleetClient(address, api_key) as c:
        while time.monotonic() < deadline:
            if status_of(lambda: c.stub.GetServerInfo(gateway_pb2.GetServerInfoRequest(), metadata=c.metadata,
                                                      timeout=5)) == "UNAUTHENTICATED":
                return time.monotonic()
            time.sleep(0.01)
    raise AssertionError(f"a revoked key still works at {address}")


@pytest.mark.slow
def test_a_revoked_key_is_refused_by_every_gateway_and_never_works_again(control: LocalFleet) -> None:
    stub, md = admin_stub(control)
    made = stub.CreateApiKey(admin_pb2.CreateApiKeyRequest(workspace="demo", name="doomed"), metadata=md, timeout=30)
    for gateway in control.gateway_processes:  # both gateways have it cached (auth refresh is 60 s here)
        with FleetClient(gateway.address, made.api_key) as c:
            assert c.infer("detector", SAMPLE, timeout=60).model_id == "shapes-det/1"
    with concurrent.futures.ThreadPoolExecutor(len(control.gateway_processes)) as pool:
        revoked = time.monotonic()
        stub.RevokeApiKey(admin_pb2.RevokeApiKeyRequest(key_id=made.key.key_id), metadata=md, timeout=30)
        answered = time.monotonic()
        refused = list(pool.map(lambda g: _refused_at(g.address, made.api_key, revoked + 30),
                                control.gateway_processes))
    delays = [round(t - revoked, 3) for t in refused]
    print(f"\nrevocation: RevokeApiKey took {answered - revoked:.3f} s; refused by the two gateways "
          f"{delays} s after it was sent")
    assert max(delays) < 3.0, delays  # the goal is 1 s; the bound is generous for a loaded 2-core machine
    control.restart_redis()  # the registry's Redis cache is gone: the database still says revoked
    time.sleep(1.0)
    for gateway in control.gateway_processes:
        with FleetClient(gateway.address, made.api_key) as c:
            assert status_of(lambda: c.infer("detector", SAMPLE, timeout=30)) == "UNAUTHENTICATED"
    # Nor after the gateways forgot everything (restarted) and asked again.
    restarted = control.restart(control.gateway_processes[1].name)
    with FleetClient(restarted.address, made.api_key) as c:
        assert status_of(lambda: c.infer("detector", SAMPLE, timeout=30)) == "UNAUTHENTICATED"


# ---- Redis flushed and restarted under load ---------------------------------------------------
@pytest.mark.slow
def test_redis_flushed_and_restarted_under_load_loses_nothing(control: LocalFleet) -> None:
    before = snapshot(control)
    gateways = [g.address for g in control.gateway_processes]
    with Load(gateways, TEST_KEY, "detector", SAMPLE, clients=8) as load:
        time.sleep(3)
        flushed = time.monotonic()
        raw = redis.Redis.from_url(control.redis_url)
        raw.flushall()
        raw.close()
        time.sleep(4)
        stopped = time.monotonic()
        control.restart_redis()  # empty, same port
        back = time.monotonic()
        time.sleep(6)
    after_back = load.failures(since=back + 1.0)
    print(f"\nredis under load: {len(load.outcomes)} requests; {dict(load.counts())}; "
          f"failed during flush {load.failures(flushed, stopped)}, during restart {load.failures(stopped, back + 1)}, "
          f"from 1 s after Redis answered again {after_back}")
    assert load.counts(since=back + 1.0)["OK"] > 0
    assert after_back == 0
    assert snapshot(control) == before  # keys, models and aliases unchanged
    with FleetClient(control.gateway.address, OTHER_KEY) as c:  # and a key first used now still works
        assert c.infer("detector", SAMPLE, timeout=60).model_id == "otherdet/1"


# ---- the registry SIGKILLed for 30 s under load -----------------------------------------------
@pytest.mark.slow
def test_registry_killed_for_30_s_under_load(control: LocalFleet) -> None:
    stub, md = admin_stub(control)
    fresh = stub.CreateApiKey(admin_pb2.CreateApiKeyRequest(workspace="other", name="unseen"), metadata=md,
                              timeout=30).api_key
    gateways = [g.address for g in control.gateway_processes]
    with Load(gateways, TEST_KEY, "detector", SAMPLE, clients=8) as load:
        time.sleep(2)
        registry = control.registry
        registry.proc.kill()
        registry.proc.wait()
        killed = time.monotonic()
        with FleetClient(control.gateway.address, fresh) as c:  # a key never seen fails closed
            assert status_of(lambda: c.infer("detector", SAMPLE, timeout=30)) == "UNAVAILABLE"
        time.sleep(max(0.0, killed + 30 - time.monotonic()))
        down = load.counts(killed, time.monotonic())
        control.restart("registry")
        back = time.monotonic()
        time.sleep(3)
    print(f"\nregistry killed for 30 s under load: {dict(down)} while it was down; {dict(load.counts(back))} after")
    assert down["OK"] > 0 and load.failures(killed, back) == 0
    assert load.failures(back) == 0
    deadline = time.monotonic() + 15
    with FleetClient(control.gateway.address, fresh) as c:  # everything recovers: the new key now works
        while status_of(lambda: c.infer("detector", SAMPLE, timeout=30)) != "OK":
            assert time.monotonic() < deadline, "the new key did not start working after the registry came back"
            time.sleep(0.2)
