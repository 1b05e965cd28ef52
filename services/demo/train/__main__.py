"""Command line: ``python -m services.demo.train [--task det|seg|cls|pose|obb|all ...] [--out DIR]``."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch

from services.demo.evaluate import DEFAULT_IMAGES, format_table
from services.demo.package import PACKAGES_DIR
from services.demo.train.tasks import TASKS, run_tasks, scaled_plans

THREADS = 2


def _log(message: str) -> None:
    print(message, flush=True)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m services.demo.train", description="Train the demo models and write their model packages."
    )
    parser.add_argument(
        "--task", choices=[*TASKS, "all"], default=["all"], nargs="+",
        help="what to train (seg, cls, pose and obb start from the detector, which is trained first)",
    )
    parser.add_argument("--out", type=Path, default=PACKAGES_DIR, help="directory of model packages")
    parser.add_argument("--train-images", type=int, help="override the number of training scenes")
    parser.add_argument("--epochs", type=int, help="override the number of epochs")
    parser.add_argument("--eval-images", type=int, default=DEFAULT_IMAGES, help="held-out scenes per package (0: skip the evaluation)")
    parser.add_argument("--threads", type=int, default=THREADS, help=f"torch threads (default {THREADS}; 1 on a busy "
                                                                      "machine, where threads waiting for each other cost more)")
    args = parser.parse_args(argv)

    torch.set_num_threads(args.threads)
    tasks = list(TASKS) if "all" in args.task else list(args.task)
    started = time.monotonic()
    plans = scaled_plans(args.train_images, args.epochs)
    metrics = run_tasks(tasks, plans, args.out, args.eval_images, _log)
    _log(f"\ntotal wall time {time.monotonic() - started:.0f}s\n{format_table(metrics)}")


if __name__ == "__main__":
    main()
