"""What one benchmark run measures and for how long: the full suite or the ``--smoke`` one."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path

from fleet.paths import MODELS_DIR

SEED = 20240605
DEFAULT_PACKAGE = MODELS_DIR / "packages" / "shapes-det"
RESULTS_DIR = Path(__file__).resolve().parent / "results"
SCENARIO_LIMIT_S = 60.0  # every scenario is planned to fit in this


@dataclass(frozen=True)
class BenchConfig:
    smoke: bool = False
    warmup_s: float = 2.0
    measure_s: float = 10.0
    min_samples: int = 20  # a point runs past measure_s (up to 3x) until it has this many
    images: int = 32  # distinct scene JPEGs, cycled in a fixed order
    baseline_threads: tuple[int, ...] = (1, 2, 4)
    worker_concurrency: tuple[int, ...] = (1, 2, 4, 8)
    fleet_concurrency: tuple[int, ...] = (1, 4, 16, 64)
    stream_concurrency: int = 16
    edge_concurrency: tuple[int, ...] = (1, 16)  # HTTP and OIP edges, compared with the same fleet points
    churn_models: int = 50
    churn_capacity: int = 5
    churn_zipf_s: float = 1.1
    churn_concurrency: int = 4
    churn_warmup_s: float = 5.0
    churn_measure_s: float = 40.0
    rss_interval_s: float = 0.5
    cold_repeats: int = 5
    package: Path = field(default=DEFAULT_PACKAGE)

    @classmethod
    def full(cls, package: Path = DEFAULT_PACKAGE) -> BenchConfig:
        return cls(package=package)

    @classmethod
    def quick(cls, package: Path = DEFAULT_PACKAGE) -> BenchConfig:
        """--smoke: every scenario for a couple of seconds; the numbers only prove it still runs."""
        return cls(smoke=True, warmup_s=0.3, measure_s=1.0, min_samples=5, images=4, churn_models=12,
                   churn_capacity=3, churn_warmup_s=0.5, churn_measure_s=2.5, rss_interval_s=0.25,
                   cold_repeats=1, package=package)

    def as_dict(self) -> dict:
        return {**asdict(self), "package": str(self.package)}
