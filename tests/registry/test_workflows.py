"""Stored workflows in the registry (SQLite and PostgreSQL): versions, validation before storing, tenancy,
deletion, and the invalidation every change announces through Redis."""

from __future__ import annotations

import asyncio
import json

import pytest

from services.cache import FleetCache
from services.common.errors import InvalidArgument, NotFound
from services.registry.cached import CacheTtls, ReadThrough
from services.registry.store.store import Store
from services.registry.workflows import Workflows
from tests.workflows.definitions import detect_crop_classify, one_step


@pytest.fixture
async def workflows(store: Store, cache: FleetCache) -> Workflows:
    return Workflows(store, ReadThrough(store, cache.registry, CacheTtls()))


async def test_versions_are_kept_and_the_latest_is_current(workflows: Workflows) -> None:
    first = await workflows.put("demo", "flow", json.dumps(one_step()), public=False)
    assert (first.current_version, first.versions) == (1, 1)
    second = await workflows.put("demo", "flow", json.dumps(detect_crop_classify()), public=False)
    assert (second.current_version, second.versions) == (2, 2)
    current, version = await workflows.get("demo", "demo", "flow")
    assert version == "2" and json.loads(current) == detect_crop_classify()
    old, version = await workflows.get("demo", "demo", "flow", "1")
    assert version == "1" and json.loads(old) == one_step()
    with pytest.raises(NotFound, match="no version '7'"):
        await workflows.get("demo", "demo", "flow", "7")
    with pytest.raises(InvalidArgument, match="version number"):
        await workflows.get("demo", "demo", "flow", "latest")


async def test_nothing_is_stored_when_validation_fails(workflows: Workflows) -> None:
    await workflows.put("demo", "flow", json.dumps(one_step()), public=False)
    bad = {**one_step(), "steps": [{"type": "Nope", "name": "x"}]}
    with pytest.raises(InvalidArgument, match="step 'x'"):
        await workflows.put("demo", "flow", json.dumps(bad), public=False)
    with pytest.raises(InvalidArgument, match="not JSON"):
        await workflows.put("demo", "other", "{nope", public=False)
    with pytest.raises(InvalidArgument, match="workflow_id"):
        await workflows.put("demo", "bad id!", json.dumps(one_step()), public=False)
    (only,) = await workflows.list("demo")
    assert (only.workflow_id, only.current_version, only.versions) == ("flow", 1, 1)


async def test_a_foreign_private_workflow_answers_as_an_unknown_one(workflows: Workflows) -> None:
    await workflows.put("demo", "private", json.dumps(one_step()), public=False)
    await workflows.put("demo", "shared", json.dumps(one_step()), public=True)
    with pytest.raises(NotFound) as foreign:
        await workflows.get("other", "demo", "private")
    with pytest.raises(NotFound) as unknown:
        await workflows.get("other", "demo", "missing")
    assert foreign.value.message.replace("private", "X") == unknown.value.message.replace("missing", "X")
    assert (await workflows.get("other", "demo", "shared"))[1] == "1"
    assert [w.workflow_id for w in await workflows.list()] == ["private", "shared"]


async def test_changes_are_announced_and_deletion_removes_every_version(workflows: Workflows,
                                                                       cache: FleetCache) -> None:
    heard = []
    listener = cache.invalidation_listener(heard.append, lambda: None)
    listener.start()
    try:
        await asyncio.sleep(0.3)  # subscribed
        await workflows.put("demo", "flow", json.dumps(one_step()), public=False)
        await workflows.delete("demo", "flow")
        for _ in range(50):
            if len(heard) >= 2:
                break
            await asyncio.sleep(0.05)
    finally:
        await listener.close()
    assert [(i.kind, i.workspace, i.workflow_id) for i in heard] == [("workflow", "demo", "flow")] * 2
    with pytest.raises(NotFound):
        await workflows.get("demo", "demo", "flow")
    with pytest.raises(NotFound):
        await workflows.delete("demo", "flow")
    assert await workflows.list("demo") == []
