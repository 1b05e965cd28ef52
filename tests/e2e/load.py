"""A bounded load of N clients calling Infer through the gateways, every outcome counted with its time."""

from __future__ import annotations

import threading
import time
from collections import Counter
from dataclasses import dataclass, field

import grpc

from fleet.client import FleetClient


@dataclass
class Load:
    gateways: list[str]
    api_key: str
    model_id: str
    image: bytes
    clients: int = 8
    pause_s: float = 0.1  # each client waits this long between calls: a bounded load on a shared machine
    outcomes: list[tuple[float, str]] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _threads: list[threading.Thread] = field(default_factory=list)

    def _run(self, index: int) -> None:
        with FleetClient(self.gateways[index % len(self.gateways)], self.api_key) as client:
            while not self._stop.is_set():
                try:
                    client.infer(self.model_id, self.image, timeout=20)
                    code = "OK"
                except grpc.RpcError as exc:
                    code = exc.code().name
                self.outcomes.append((time.monotonic(), code))
                self._stop.wait(self.pause_s)

    def start(self) -> Load:
        self._threads = [threading.Thread(target=self._run, args=(i,), daemon=True) for i in range(self.clients)]
        for thread in self._threads:
            thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=30)

    def counts(self, since: float = 0.0, until: float = float("inf")) -> Counter:
        return Counter(code for t, code in list(self.outcomes) if since <= t < until)

    def failures(self, since: float = 0.0, until: float = float("inf")) -> int:
        return sum(n for code, n in self.counts(since, until).items() if code != "OK")

    def __enter__(self) -> Load:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
