"""``python -m bench.gpu_check``: the GPU path of issue 16, proved on one machine in one command.

    python -m bench.gpu_check --provider cuda --out "$OUT"     # on a GPU machine
    python -m bench.gpu_check --provider cpu --smoke --out DIR  # its CPU path, in seconds (the test runs this)

On the demo detector (``bench.config.DEFAULT_PACKAGE``) and the suite's scene JPEGs:

1. raw ONNX Runtime: an ``InferenceSession`` asked for [CUDAExecutionProvider, CPUExecutionProvider]
   (or CPU alone) must report the asked provider first in ``get_providers()``, or the check stops;
   then decode + pre-process + run + post-process in this process (``bench.scenarios.baseline``, the
   worker's own ``run_alone`` and ``open_session``) from 1, 8 and 32 threads, and ONNX Runtime alone
   on batches of 1..16;
2. worker-only and fleet (client -> gateway -> worker) at concurrency 1, 8 and 32, the worker on
   ``FLEET_WORKER_EXECUTION_PROVIDER`` with dynamic batching (``FLEET_WORKER_MAX_BATCH_SIZE``); the
   worker's own answer (``DescribeModels``, ``LoadModel``) must name the provider for every model;
3. memory-pressure eviction (``bench.gpu_eviction``): on CUDA driven by the NVML figures, on CPU by
   the host's.

Writes ``gpu_check.json`` and ``gpu_check.md`` to ``--out`` (default ``$OUT``, else
``bench/results/gpu/``, or ``bench/results/smoke/gpu/`` with ``--smoke``) and prints the table with
each setup's req/s, p50/p99, mean batch and ratio to raw ONNX Runtime at the same concurrency, and
the target: fleet at c=32 >= 0.9x raw ONNX Runtime (CUDA). Exit code 0 when every check passed (the
target is reported, not checked), 1 when one failed, 2 on bad arguments. The full run is planned at
about 3 minutes (3 s warm-up and 10 s per point, ``--warmup-s``/``--measure-s`` change them).

On a GPU machine: run ``python3 -m bench.gpu_probe`` first; its verdict says what is missing. The
check needs the server extra's packages, ``onnxruntime-gpu`` and ``nvidia-ml-py`` importable (carried
wheels installed with ``pip install --no-index --no-deps --target /tmp/site .whl/*.whl`` and
``PYTHONPATH=/tmp/site``; carry ``.whl``). The CUDA libraries of pip's ``nvidia-*`` wheels are put on
``LD_LIBRARY_PATH`` by re-executing this command once, so this process and the worker it starts find them.

Bringing ``onnxruntime-gpu`` (read off the wheel, not yet tried on a GPU machine): PyPI's 1.31.1 is built
for CUDA 13 (its CUDA provider needs libcublasLt.so.13, libcublas.so.13, libcurand.so.10, libcudart.so.13,
and cuDNN 9 for CUDA 13), the versions the pip ``nvidia-*`` CUDA 13 wheels beside a cu130 PyTorch provide.
Its cp312 manylinux_2_28 wheel is 255,569,273 bytes, about four times what one call may carry (64 MiB,
the repo included), so it travels only in parts (``split -b 40M``), one per call while the machine stays
warm, each copied to /tmp there and joined (``cat``) before ``pip install``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

from bench.config import DEFAULT_PACKAGE, RESULTS_DIR, SEED, BenchConfig
from bench.gpu_probe import CUDA_EP, nvidia_library_dirs, nvml_info, onnxruntime_info, with_library_dirs

PROVIDERS = {"cuda": CUDA_EP, "cpu": "CPUExecutionProvider"}
REEXEC_MARK = "FLEET_GPU_CHECK_REEXEC"


class CheckFailed(Exception):
    """A check that must hold for the numbers to mean anything (e.g. CUDA really used)."""


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.gpu_check", description=__doc__.split("\n\n")[0])
    p.add_argument("--provider", choices=sorted(PROVIDERS), default="cuda", help="execution provider (default cuda)")
    p.add_argument("--smoke", action="store_true", help="about 1 s per point: checks that it runs")
    p.add_argument("--out", type=Path, default=Path(os.environ["OUT"]) if os.environ.get("OUT") else None,
                   help="output directory (default $OUT, else bench/results/gpu/, or smoke/gpu/ there)")
    p.add_argument("--package", type=Path, default=DEFAULT_PACKAGE, help="model package (default: shapes-det)")
    p.add_argument("--concurrency", default="1,8,32", help="comma-separated concurrencies (default 1,8,32)")
    p.add_argument("--warmup-s", type=float, default=None, help="warm-up per point (default 3, smoke 0.3)")
    p.add_argument("--measure-s", type=float, default=None, help="measured window per point (default 10, smoke 1)")
    p.add_argument("--max-batch-size", type=int, default=16, help="FLEET_WORKER_MAX_BATCH_SIZE (default 16)")
    p.add_argument("--eviction-models", type=int, default=4, help="package copies loaded for eviction (default 4)")
    p.add_argument("--worker-env", action="append", default=[], metavar="NAME=VALUE",
                   help="extra worker setting, e.g. FLEET_WORKER_MAX_QUEUE_DELAY_US=1000 (repeatable)")
    p.add_argument("--keep-logs", action="store_true", help="keep the fleet's state directory and service logs")
    return p.parse_args(argv)


def reexec_with_cuda_libraries(argv: list[str]) -> None:
    """Start this command again with pip's NVIDIA library folders on LD_LIBRARY_PATH, if they are not
    (the dynamic loader reads it only at a process's start; the worker inherits it)."""
    env = with_library_dirs(dict(os.environ), nvidia_library_dirs())
    if env.get("LD_LIBRARY_PATH", "") != os.environ.get("LD_LIBRARY_PATH", "") and not os.environ.get(REEXEC_MARK):
        print(f"[gpu_check] re-executing with LD_LIBRARY_PATH={env['LD_LIBRARY_PATH']}", file=sys.stderr, flush=True)
        os.execve(sys.executable, [sys.executable, "-m", "bench.gpu_check", *argv], {**env, REEXEC_MARK: "1"})


def config(args: argparse.Namespace, package: Path) -> BenchConfig:
    concurrency = tuple(int(c) for c in args.concurrency.split(",") if c.strip())
    warmup = args.warmup_s if args.warmup_s is not None else (0.3 if args.smoke else 3.0)
    measure = args.measure_s if args.measure_s is not None else (1.0 if args.smoke else 10.0)
    return BenchConfig(smoke=args.smoke, warmup_s=warmup, measure_s=measure, min_samples=5 if args.smoke else 20,
                       images=4 if args.smoke else 32, baseline_threads=concurrency, worker_concurrency=concurrency,
                       fleet_concurrency=concurrency, churn_models=args.eviction_models + 2,
                       churn_capacity=args.eviction_models + 8, cold_repeats=0, package=package)


def require_session_provider(weights: Path, provider: str) -> dict[str, Any]:
    """Open a plain InferenceSession asked for ``provider`` (then CPU): it must really run on ``provider``."""
    import onnxruntime as ort  # noqa: PLC0415 - after the re-exec, so CUDA libraries are found

    asked = [PROVIDERS[provider]] + (["CPUExecutionProvider"] if provider != "cpu" else [])
    session = ort.InferenceSession(str(weights), providers=asked)
    got = session.get_providers()
    out = {"asked": asked, "got": got, "available": ort.get_available_providers()}
    if got[0] != PROVIDERS[provider]:
        raise CheckFailed(f"ONNX Runtime was asked for {asked} but runs on {got} (available: {out['available']}); "
                          f"{PROVIDERS[provider]} is not really used: run python -m bench.gpu_probe for why")
    return out


async def worker_providers(address: str, expected: str) -> dict[str, Any]:
    """What the worker says its models run on (DescribeModels); every model must name ``expected``."""
    from bench.clients import TIMEOUT_S, aio_channel  # noqa: PLC0415 - the server side's imports, on demand
    from fleet.internal.v1 import worker_pb2, worker_pb2_grpc  # noqa: PLC0415

    async with aio_channel(address) as channel:
        reply = await worker_pb2_grpc.ModelWorkerServiceStub(channel).DescribeModels(
            worker_pb2.ModelWorkerServiceDescribeModelsRequest(), timeout=TIMEOUT_S)
    models = {m.model_id: m.execution_provider for m in reply.models}
    out = {"models": models, "requested": list(reply.load.execution_providers),
           "memory_free_fraction": reply.load.memory_free_fraction}
    wrong = {k: v for k, v in models.items() if v != expected}
    if not models or wrong:
        raise CheckFailed(f"the worker's models do not run on {expected}: {models or 'none loaded'}")
    return out


def measure(args: argparse.Namespace, cfg: BenchConfig, results: dict[str, Any]) -> None:
    """Every step, each recorded in ``results`` as it completes (a failure keeps what came before)."""
    from bench import gpu_eviction  # noqa: PLC0415 - imports the services: after the re-exec
    from bench.environment import BenchEnv  # noqa: PLC0415
    from bench.scenarios import baseline, fleet, worker_only  # noqa: PLC0415
    from bench.workload import Package, scene_jpegs  # noqa: PLC0415
    from services.model_worker.runtime import RuntimeOptions  # noqa: PLC0415

    provider, expected = args.provider, PROVIDERS[args.provider]
    package = Package(cfg.package)
    images = scene_jpegs(cfg.images, SEED)
    scenarios, checks = results["scenarios"], results["checks"]
    checks["raw_session_on_provider"] = False
    results["raw_session"] = require_session_provider(package.weights, provider)
    checks["raw_session_on_provider"] = True
    step("raw ONNX Runtime", results)
    scenarios["baseline"] = baseline.run(cfg, images, threads=cfg.baseline_threads, setup=f"raw ORT ({provider})",
                                         options=RuntimeOptions(execution_provider=provider))
    if scenarios["baseline"]["provider"] != expected:
        raise CheckFailed(f"the in-process pipeline's session runs on {scenarios['baseline']['provider']}, "
                          f"not {expected}")
    worker_env = {"FLEET_WORKER_EXECUTION_PROVIDER": provider, "FLEET_WORKER_MAX_BATCH_SIZE": str(args.max_batch_size),
                  "FLEET_WORKER_DRAIN_NOTICE_S": "0", **gpu_eviction.worker_env(provider),
                  **dict(item.split("=", 1) for item in args.worker_env)}
    results["worker_env"] = worker_env
    env = BenchEnv(cfg, keep_logs=args.keep_logs, worker_env=worker_env)
    try:
        step("fleet start", results)
        t0 = time.perf_counter()
        env.fleet  # noqa: B018 - starts Redis (if needed), registry, worker and gateway
        results["fleet_start_s"] = time.perf_counter() - t0
        step("worker-only", results)
        scenarios["worker_only"] = worker_only.run(cfg, env, images)
        step("fleet", results)
        scenarios["fleet"] = fleet.run(cfg, env, images)
        results["worker_session"] = asyncio.run(worker_providers(env.worker.address, expected))
        checks["worker_models_on_provider"] = True
        step("eviction", results)
        scenarios["eviction"] = eviction = asyncio.run(gpu_eviction.run(env, provider, args.eviction_models))
        checks["eviction_loads_on_provider"] = all(p == expected for p in eviction["load_providers"].values())
        checks["memory_pressure_eviction"] = bool(eviction["ok"])
    finally:
        env.close()
    points = [p for name in ("baseline", "worker_only", "fleet") for p in scenarios[name]["points"]]
    checks["every_point_answered_without_errors"] = all(p["count"] > 0 and not p["errors"] for p in points)


def step(name: str, results: dict[str, Any]) -> None:
    print(f"[gpu_check] {name} ({time.perf_counter() - results['_t0']:.0f} s in)", file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    if args.provider == "cuda":
        reexec_with_cuda_libraries(argv)
    from bench import gpu_report  # noqa: PLC0415 - imports the services: after the re-exec
    from bench.machine import machine_info  # noqa: PLC0415
    from bench.workload import Package  # noqa: PLC0415

    out = args.out or (RESULTS_DIR / "smoke" / "gpu" if args.smoke else RESULTS_DIR / "gpu")
    if not (args.package / "model.json").exists() or not Package(args.package).verified():
        print(f"no verified model package at {args.package}: build the demo models or pass --package", file=sys.stderr)
        return 2
    cfg = config(args, args.package)
    results: dict[str, Any] = {"_t0": time.perf_counter(), "provider": args.provider,
                               "expected": PROVIDERS[args.provider],
                               "runtime": {"onnxruntime": onnxruntime_info(), "nvml": nvml_info()},
                               "machine": machine_info(), "config": cfg.as_dict(), "scenarios": {}, "checks": {}}
    try:
        measure(args, cfg, results)
    except CheckFailed as exc:
        results["failure"] = str(exc)
    except Exception as exc:  # noqa: BLE001 - recorded with what was measured before it, then re-raised
        results["failure"] = f"{type(exc).__name__}: {exc}"
        gpu_report.write(results, out)
        raise
    text = gpu_report.write(results, out)
    print(text)
    ok = "failure" not in results and all(results["checks"].values())
    outcome = "all checks passed" if ok else "FAILED: " + results.get("failure", json.dumps(results["checks"]))
    print(f"[gpu_check] {outcome}; wrote {out} in {results['total_wall_s']:.0f} s", file=sys.stderr)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
