"""Promptable segmentation's image-embedding cache and affinity routing, on a real fleet of three workers that
all hold shapes-sam: an image's prompts meet its cached embedding on one worker; each worker's cache stays
within FLEET_WORKER_EMBEDDING_CACHE_BYTES (two of shapes-sam's 400 KiB embeddings); unloading the model drops
its entries everywhere."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest

from fleet.client import FleetClient
from fleet.v1 import gateway_pb2
from services.cache.embedded import delete_namespace
from services.local.processes import LocalFleet
from tests.conftest import TEST_KEY, demo_models, write_catalog
from tests.e2e.foundation import SAM, infer, inner_point, points, scene
from tests.e2e.probes import metric
from tests.e2e.test_inference import encode

CACHE_BYTES = 1_000_000  # shapes-sam's embedding: 64 x 40 x 40 FP32 = 409,600 bytes, so two fit
WORKERS = 3


@pytest.fixture(scope="module")
def fleet3(tmp_path_factory: pytest.TempPathFactory, redis_url: str) -> Iterator[LocalFleet]:
    tmp = tmp_path_factory.mktemp("fleet3")
    catalog = write_catalog(tmp / "catalog.yaml", [m for m in demo_models() if m["id"] == SAM])
    namespace = f"e2e-{uuid.uuid4().hex[:10]}"
    local = LocalFleet(redis_url, catalog, workers=WORKERS, namespace=namespace, state_dir=tmp / "run",
                       worker_env={"FLEET_WORKER_EMBEDDING_CACHE_BYTES": str(CACHE_BYTES)})
    try:
        yield local.start()
    finally:
        local.stop()
        delete_namespace(redis_url, namespace)


def segment(client: FleetClient, image: bytes, xy: tuple[float, float]):  # noqa: ANN201 - an InferResponse
    return infer(client, SAM, image, points=points(xy))


def cache(fleet: LocalFleet, name: str) -> list[float]:
    return [metric(w, f"fleet_worker_embedding_cache_{name}") for w in fleet.worker_processes]


def test_affinity_cache_bounds_and_unload(fleet3: LocalFleet) -> None:
    with FleetClient(fleet3.gateway.address, TEST_KEY) as client:
        added = client.stub.AddModel(gateway_pb2.AddModelRequest(model_id=SAM, copies=WORKERS),
                                     metadata=client.metadata, timeout=120)
        assert len(added.worker_ids) == WORKERS

        # Several prompts on one image, one after another: one worker, the encoder run once.
        s = scene(31)
        image = encode(s.image, ".png")
        answers = [segment(client, image, inner_point(mask)) for mask in list(s.masks) * 3]
        assert len({a.worker_id for a in answers}) == 1
        assert [a.promptable_segmentation.embedding_cached for a in answers] == [False] + [True] * (len(answers) - 1)

        # Concurrently, on another image: still one worker (the encodes in flight there are shared).
        s2 = scene(32)
        image2 = encode(s2.image, ".png")
        with ThreadPoolExecutor(6) as pool:
            burst = list(pool.map(lambda m: segment(client, image2, inner_point(m)), list(s2.masks) * 3))
        assert len({a.worker_id for a in burst}) == 1
        assert sum(not a.promptable_segmentation.embedding_cached for a in burst) <= 1

        # Different images spread over the holders; each image's repeat lands where its first prompt did.
        images = [encode(scene(40 + i).image, ".png") for i in range(8)]
        first = [segment(client, img, (5.0, 5.0)).worker_id for img in images]
        again = [segment(client, img, (6.0, 6.0)) for img in images]
        assert len(set(first)) >= 2 and [a.worker_id for a in again] == first

        # Bounded in bytes: no worker holds more than two embeddings; some worker had to let older ones go.
        held, entries = cache(fleet3, "bytes"), cache(fleet3, "entries")
        assert max(held) <= CACHE_BYTES and max(entries) <= 2 and sum(entries) >= len(set(first))
        assert sum(metric(w, "fleet_worker_embedding_cache_lookups_total", result="hit")
                   for w in fleet3.worker_processes) >= len(answers) - 1
        busiest = max(set(first), key=first.count)
        if first.count(busiest) > 2:  # more images than its cache holds went there: the oldest was evicted
            oldest = images[first.index(busiest)]
            assert not segment(client, oldest, (7.0, 7.0)).promptable_segmentation.embedding_cached

        # Unloading the model drops its embeddings on every worker.
        client.stub.RemoveModel(gateway_pb2.RemoveModelRequest(model_id=SAM), metadata=client.metadata, timeout=60)
        deadline = time.monotonic() + 10
        while sum(cache(fleet3, "entries")) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert cache(fleet3, "entries") == [0] * WORKERS and cache(fleet3, "bytes") == [0] * WORKERS
        assert not segment(client, image, inner_point(s.masks[0])).promptable_segmentation.embedding_cached
