"""Reading a running service from outside, as an operator would: its Prometheus metrics."""

from __future__ import annotations

import httpx

from services.local.processes import ServiceProcess


def metric(process: ServiceProcess, name: str, **labels: str) -> float:
    """The sum of the series of ``name`` whose labels include ``labels`` (0 when there are none)."""
    text = httpx.get(f"http://127.0.0.1:{process.metrics_port}/metrics", timeout=10).text
    total = 0.0
    for line in text.splitlines():
        head, _, value = line.rpartition(" ")
        if head.split("{")[0] == name and all(f'{k}="{v}"' in head for k, v in labels.items()):
            total += float(value)
    return total
