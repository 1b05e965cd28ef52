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

from fleet.cli.output import detections_table
from fleet.client import FleetClient
from services.local.processes import FleetStartError, LocalFleet
from fleet.paths import DEMO_CATALOG, SAMPLES_DIR, client_state_file, state_dir
from fleet.keys import hash_api_key, new_api_key
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


def write_client_state(address: str, api_key: str) -> Path:
    path = client_state_file()
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        json.dump({"address": address, "api_key": api_key}, fh)
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


def first_inference(address: str, api_key: str, model_id: str = "shapes-det/1") -> None:
    """Show that the fleet serves: one inference on a sample image, printed as a table."""
    sample = _sample()
    if not sample:
        return
    try:
        with FleetClient(address, api_key) as client:
            response = client.infer(model_id, Path(sample), timeout=120)
    except grpc.RpcError as exc:
        print(f"first inference failed: {exc.code().name}: {exc.details()}")
        return
    print(f"\nFirst inference: {model_id} on {sample}\n{detections_table(response)}")


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("up", help="run registry, workers and gateway here, with the demo models",
                       description="Start the fleet as local processes and keep it up until Ctrl-C or SIGTERM. "
                                   "Uses REDIS_URL when set, else starts an embedded Redis.")
    p.add_argument("--port", type=int, default=50051, help="gateway port (default 50051; 0 picks a free one)")
    p.add_argument("--workers", type=int, default=1, help="number of model workers (default 1)")
    p.add_argument("--catalog", type=Path, default=DEMO_CATALOG, help="catalog YAML (default: the demo models)")
    p.add_argument("--redis-url", default=os.environ.get("REDIS_URL", ""), help="Redis to use (default: embedded)")
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
    fleet = LocalFleet(redis_url, catalog, workers=args.workers, state_dir=run_dir, gateway_port=args.port,
                       namespace="fleet-dev")
    try:
        fleet.start()
    except FleetStartError as exc:
        print(f"fleet up: {exc}")
        return 1
    state = write_client_state(fleet.gateway.address, api_key)
    try:
        first_inference(fleet.gateway.address, api_key)
        print(f"""
Inference Fleet is up.
  gateway   {fleet.gateway.address}   (metrics http://127.0.0.1:{fleet.gateway.metrics_port}/metrics)
  registry  {fleet.registry.address}
  workers   {', '.join(w.address for w in fleet.worker_processes)}
  redis     {redis_url}{' (embedded)' if embedded else ''}
  logs      {run_dir}
  API key   {api_key}
            (saved for `fleet infer` in {state})

Try:  fleet infer --model shapes-det/1 --visualize out.jpg {_sample() or 'IMAGE.jpg'}
      fleet models
Stop with Ctrl-C.
""", flush=True)
        while not stop.wait(0.5):
            dead = [p.name for p in fleet.processes if not p.alive()]
            if dead:
                print(f"fleet up: {', '.join(dead)} exited; stopping the fleet (logs in {run_dir})")
                break
    finally:
        codes = fleet.stop()
        state.unlink(missing_ok=True)
        print("fleet stopped: " + ", ".join(f"{k} exit {v}" for k, v in codes.items()), flush=True)
    return 0
