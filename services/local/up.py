"""``fleet up``: the whole fleet on this machine, with the demo models and a dev API key."""

from __future__ import annotations

import argparse
import json
import os
import signal
import threading
from pathlib import Path

import grpc
import yaml

from fleet.cli.output import response_table
from fleet.client import FleetClient
from services.local.processes import FleetStartError, LocalFleet
from fleet.paths import DEMO_CATALOG, SAMPLES_DIR, client_state_file, state_dir
from fleet.keys import hash_api_key, new_admin_token, new_api_key
from services.cache.embedded import EmbeddedRedis


def write_catalog(source: Path, dest: Path, api_key: str, workspace: str = "demo") -> None:
    """Copy a catalog with absolute package paths and the dev key's hash added to ``workspace``."""
    data = yaml.safe_load(source.read_text(encoding="utf-8")) or {}
    for model in data.get("models", []):
        model["package"] = str((source.parent / model["package"]).resolve())
    workspaces = data.setdefault("workspaces", [])
    entry = next((w for w in workspaces if w.get("name") == workspace), None)
    if entry is None:
        entry = {"name": workspace}
        workspaces.append(entry)
    entry["api_key_sha256"] = [*entry.get("api_key_sha256", []), hash_api_key(api_key)]
    dest.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")


def fleet_state(fleet: LocalFleet, api_key: str) -> dict[str, object]:
    """What scripts need to drive the running fleet (the state file's content).

    ``http_address``/``http_url`` are null when the HTTP API is off; ``ca`` is the CA to trust on
    both ports (null without ``--tls``).
    """
    return {
        "grpc_address": fleet.gateway.address,
        "http_address": f"127.0.0.1:{fleet.gateway.http_port}" if fleet.gateway.http_port else None,
        "http_url": fleet.gateway.http_url or None,
        "api_key": api_key,
        "admin_token": fleet.admin_token,
        "ca": str(fleet.ca_path) if fleet.ca_path else None,
        "tls": fleet.ca_path is not None,
        "pid": os.getpid(),
        "pipelines": fleet.pipelines_processes[0].address if fleet.pipelines_processes else None,
    }


def write_state(path: Path, state: dict[str, object]) -> Path:
    """Write ``state`` as JSON, readable by its owner only (it holds the dev API key and the admin token)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.unlink(missing_ok=True)  # created afresh, so the mode is 0600 whatever an older file had
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        json.dump(state, fh, indent=2)
    os.replace(tmp, path)
    return path


def _sample() -> str:
    """A committed sample image, relative to the working directory when possible."""
    found = sorted(SAMPLES_DIR.glob("*.jpg"))
    if not found:
        return ""
    try:
        return str(found[0].relative_to(Path.cwd()))
    except ValueError:
        return str(found[0])


def first_inference(address: str, api_key: str, model_id: str = "shapes-det/1", ca: Path | None = None) -> None:
    """Show that the fleet serves: one inference on a sample image, printed as a table."""
    sample = _sample()
    if not sample:
        return
    try:
        with FleetClient(address, api_key, ca=ca) as client:
            response = client.infer(model_id, Path(sample), timeout=120)
    except grpc.RpcError as exc:
        print(f"first inference failed: {exc.code().name}: {exc.details()}")
        return
    print(f"\nFirst inference: {model_id} on {sample}\n{response_table(response)}")


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("up", help="run registry, workers and gateway here, with the demo models",
                       description="Start the fleet as local processes and keep it up until Ctrl-C or SIGTERM. "
                                   "Uses REDIS_URL when set, else starts an embedded Redis.")
    p.add_argument("--port", type=int, default=50051, help="gateway port (default 50051; 0 picks a free one)")
    p.add_argument("--http-port", type=int, default=9001,
                   help="HTTP API port: Roboflow-compatible and KServe v2 REST routes (default 9001; 0 picks a free one)")
    p.add_argument("--workers", type=int, default=1, help="number of model workers (default 1)")
    p.add_argument("--catalog", type=Path, default=DEMO_CATALOG, help="catalog YAML (default: the demo models)")
    p.add_argument("--redis-url", default=os.environ.get("REDIS_URL", ""), help="Redis to use (default: embedded)")
    p.add_argument("--tls", action="store_true",
                   help="make a development CA and certificates in the state directory and run every hop over "
                        "TLS (client certificates on the internal plane); the CLI trusts the CA on its own")
    p.add_argument("--artifact-root", type=Path, action="append", default=[], metavar="DIR",
                   help="a directory workers may read model weights from, beyond the catalog's packages "
                        "(for packages added later with `fleet catalog apply`; repeatable)")
    p.add_argument("--video-root", type=Path, action="append", default=[], metavar="DIR",
                   help="a directory video pipelines may read files from (repeatable; default: none)")
    p.add_argument("--state-file", type=Path,
                   help="also write the fleet's state here as JSON (0600): gRPC address, dev API key, CA path; "
                        "removed when the fleet stops")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    run_dir = state_dir() / "run"
    run_dir.mkdir(parents=True, exist_ok=True)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    embedded = None if args.redis_url else EmbeddedRedis().start()
    try:
        return _serve(args, run_dir, args.redis_url or embedded.url, embedded is not None, stop)
    finally:
        if embedded is not None:
            embedded.stop()


def _serve(args: argparse.Namespace, run_dir: Path, redis_url: str, embedded: bool, stop: threading.Event) -> int:
    api_key = new_api_key()
    catalog = run_dir / "catalog.yaml"
    write_catalog(args.catalog, catalog, api_key)
    # The registry's database persists in the run directory (keys and aliases made with the CLI survive a
    # restart); the catalog is applied with prune, so the previous run's development key is revoked.
    fleet = LocalFleet(redis_url, catalog, workers=args.workers, state_dir=run_dir, gateway_port=args.port,
                       http_port=args.http_port, namespace="fleet-dev", admin_token=new_admin_token(),
                       catalog_prune=True, tls=args.tls, artifact_roots=args.artifact_root, pipelines=1,
                       video_roots=args.video_root)
    try:
        fleet.start()
    except FleetStartError as exc:
        print(f"fleet up: {exc}")
        return 1
    content = fleet_state(fleet, api_key)
    states = [write_state(client_state_file(), content)]
    if args.state_file:
        states.append(write_state(args.state_file.resolve(), content))
    tls_line = f"\n  TLS CA    {fleet.ca_path}   (every hop over TLS; mTLS inside)" if fleet.ca_path else ""
    try:
        first_inference(fleet.gateway.address, api_key, ca=fleet.ca_path)
        print(f"""
Inference Fleet is up.
  gateway   {fleet.gateway.address}   (gRPC: fleet.v1 and the Open Inference Protocol; metrics http://127.0.0.1:{fleet.gateway.metrics_port}/metrics)
  http      {fleet.gateway.http_url}   (Roboflow-compatible and KServe v2 REST routes; OpenAPI at {fleet.gateway.http_url}/docs)
  workflows {fleet.gateway.workflows.address}   (the workflow engine behind the gateway, which forwards workflow calls to it; metrics http://127.0.0.1:{fleet.gateway.workflows.metrics_port}/metrics)
  registry  {fleet.registry.address}
  workers   {', '.join(w.address for w in fleet.worker_processes)}
  pipelines {fleet.pipelines_processes[0].address}   (video pipelines: `fleet pipelines ...`; stream manager routes at {fleet.pipelines_processes[0].http_url}/inference_pipelines)
  redis     {redis_url}{' (embedded)' if embedded else ''}
  database  {fleet.database_url}
  logs      {run_dir}{tls_line}
  API key   {api_key}   (workspace demo)
  admin     {fleet.admin_token}
            (both saved, mode 0600, for the CLI in {', '.join(map(str, states))})

Try:  fleet infer --model shapes-det/1 --visualize out.jpg {_sample() or 'IMAGE.jpg'}
      fleet models                                   # loaded models
      fleet keys create --workspace demo --name me   # admin: a new API key (shown once)
      fleet models list                              # admin: registered models and aliases
      fleet catalog apply models/catalog.yaml --dry-run
  Elsewhere, give the CLI the admin token with FLEET_ADMIN_TOKEN or --admin-token-file FILE (mode 0600).
Stop with Ctrl-C.
""", flush=True)
        while not stop.wait(0.5):
            dead = [p.name for p in fleet.processes if not p.alive()]
            if dead:
                print(f"fleet up: {', '.join(dead)} exited; stopping the fleet (logs in {run_dir})")
                break
    finally:
        codes = fleet.stop()
        for path in states:
            path.unlink(missing_ok=True)
        print("fleet stopped: " + ", ".join(f"{k} exit {v}" for k, v in codes.items()), flush=True)
    return 0
