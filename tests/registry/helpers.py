"""Model packages and registry parts for registry tests."""

from __future__ import annotations

import json
from pathlib import Path

from services.cache import FleetCache
from services.registry.admin import Admin
from services.registry.cached import CacheTtls, ReadThrough
from services.registry.service import Registry
from services.registry.store.store import Store
from services.registry.upstream import Upstream


def make_package(root: Path, name: str, **overrides: object) -> Path:
    pkg = root / name
    pkg.mkdir(parents=True, exist_ok=True)
    spec = {"format_version": 1, "name": name, "task_type": "object-detection", "model_type": "yolov8",
            "class_names": ["circle", "rectangle"], "input": {"width": 320, "height": 320},
            "weights": {"file": "model.onnx", "sha256": "1" * 64, "size_bytes": 10}, **overrides}
    (pkg / "model.json").write_text(json.dumps(spec))
    return pkg


def parts(store: Store, cache: FleetCache | None, admin_sha256: str = "",
          upstream: Upstream | None = None) -> tuple[Registry, Admin]:
    lookups = ReadThrough(store, cache.registry if cache else None, CacheTtls())
    registry = Registry(store, lookups, admin_sha256, upstream, negative_ttl_s=30)
    return registry, Admin(store, lookups, registry)
