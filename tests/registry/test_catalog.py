"""Catalogs: parsing with file:line errors, and applying them to a real database (SQLite and PostgreSQL)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from fleet.keys import hash_api_key
from services.common.errors import AlreadyExists
from services.registry.catalog import Catalog, CatalogError
from services.registry.catalog_apply import apply_catalog
from services.registry.store.store import Store
from tests.conftest import OTHER_KEY, TEST_KEY, write_catalog
from tests.registry.helpers import make_package


@pytest.fixture
def catalog_path(tmp_path: Path) -> Path:
    make_package(tmp_path, "det")
    make_package(tmp_path, "private")
    return write_catalog(tmp_path / "catalog.yaml", [
        {"id": "det/1", "workspace": "demo", "package": "det", "public": True, "aliases": ["detector"]},
        {"id": "det/2", "workspace": "demo", "package": "det", "public": True},
        {"id": "private/1", "workspace": "demo", "package": "private"},
    ])


def test_packages_resolve_relative_to_the_catalog(catalog_path: Path) -> None:
    catalog = Catalog.load(catalog_path)
    det = catalog.models["det/1"]
    assert det.artifact_uri == (catalog_path.parent / "det" / "model.onnx").resolve().as_uri()
    assert det.spec.class_names == ("circle", "rectangle")
    assert catalog.keys[hash_api_key(TEST_KEY)] == "demo" and catalog.keys[hash_api_key(OTHER_KEY)] == "other"
    assert catalog.aliases == {("demo", "detector"): "det/1"}


def _line_of(text: str, needle: str) -> int:
    """The last line holding ``needle`` (a duplicate is reported where it is repeated)."""
    return [i for i, line in enumerate(text.splitlines(), 1) if needle in line][-1]


@pytest.mark.parametrize("mutate,message,needle", [
    (lambda d: d["workspaces"][0].update(api_key_sha256=["not-a-hash"]), "never keys", "not-a-hash"),
    (lambda d: d["models"][0].update(workspace="ghost"), "not declared", "ghost"),
    (lambda d: d["models"][0].update(package="missing"), "does not exist", "package: missing"),
    (lambda d: d["models"][0].update(id="no-version"), "project>/<version", "no-version"),
    (lambda d: d["models"][1].update(id="det/1"), "listed twice", "id: det/1"),
    (lambda d: d["models"][0].update(id="det/latest"), "reserved", "det/latest"),
    (lambda d: d.update(surprise=1), "Extra inputs", "surprise"),
])
def test_broken_catalogs_name_the_file_and_line(catalog_path: Path, mutate, message: str, needle: str) -> None:
    data = yaml.safe_load(catalog_path.read_text())
    mutate(data)
    text = yaml.safe_dump(data, sort_keys=False)
    catalog_path.write_text(text)
    with pytest.raises(CatalogError, match=message) as err:
        Catalog.load(catalog_path)
    where = f"{catalog_path}:"
    assert err.value.message.startswith(where), err.value.message
    line = int(err.value.message.split(":")[1])
    assert abs(line - _line_of(text, needle)) <= 1, (err.value.message, text)


def test_every_problem_is_reported_and_yaml_errors_have_a_line(tmp_path: Path) -> None:
    make_package(tmp_path, "bad", model_type="yolov9", class_names=[])
    path = write_catalog(tmp_path / "c.yaml", [{"id": "bad/1", "workspace": "demo", "package": "bad"},
                                               {"id": "x/1", "workspace": "nobody", "package": "bad"}])
    with pytest.raises(CatalogError) as err:
        Catalog.load(path)
    assert "class_names" in err.value.message and "model.json is invalid" in err.value.message
    assert "'nobody' is not declared" in err.value.message and len(err.value.message.splitlines()) == 2
    path.write_text("models:\n  - id: a/1\n    workspace: [unclosed\n")
    with pytest.raises(CatalogError, match=rf"{path}:\d+: not valid YAML"):
        Catalog.load(path)


async def _state(store: Store) -> tuple:
    async with store.read() as tx:
        return (sorted(await tx.workspaces()), [(k.id, k.workspace, k.revoked) for k in await tx.keys()],
                [(m.record.model_id, m.record.public, m.record.aliases) for m in await tx.models()],
                [(a.workspace, a.alias, a.model_id) for a in await tx.aliases()])


async def test_apply_is_idempotent_prunes_and_changes_nothing_on_error(store: Store, catalog_path: Path) -> None:
    catalog = Catalog.load(catalog_path)
    changes, invalidations = await apply_catalog(store, catalog)
    assert {str(c) for c in changes} >= {"+ workspace demo", "+ model det/1 (workspace demo)",
                                         "+ alias demo/detector (-> det/1)"}
    assert any(i.kind == "model" and i.model_id == "det/1" for i in invalidations)
    first = await _state(store)
    again, invalidations = await apply_catalog(store, Catalog.load(catalog_path))
    assert again == [] and invalidations == [] and await _state(store) == first

    data = yaml.safe_load(catalog_path.read_text())
    data["models"] = [m for m in data["models"] if m["id"] != "private/1"]
    data["models"][0]["public"] = False
    data["workspaces"][1]["api_key_sha256"] = []  # "other" loses its key
    catalog_path.write_text(yaml.safe_dump(data))
    dry, _ = await apply_catalog(store, Catalog.load(catalog_path), prune=True, dry_run=True)
    assert await _state(store) == first  # a dry run only tells
    without_prune, _ = await apply_catalog(store, Catalog.load(catalog_path))
    assert [str(c) for c in without_prune] == ["~ model det/1 (public)"]
    pruned, invalidations = await apply_catalog(store, Catalog.load(catalog_path), prune=True)
    assert {str(c) for c in dry} == {str(c) for c in without_prune} | {str(c) for c in pruned}
    assert {(c.action, c.kind) for c in pruned} == {("removed", "model"), ("removed", "key")}
    assert any(i.kind == "key" and i.key_sha256 == hash_api_key(OTHER_KEY) for i in invalidations)
    async with store.read() as tx:
        assert await tx.model("private/1") is None
        assert (await tx.key_by_hash(hash_api_key(OTHER_KEY))).revoked  # revoked, kept: never valid again
    # Declaring the revoked key's hash again does not bring it back.
    data["workspaces"][1]["api_key_sha256"] = [hash_api_key(OTHER_KEY)]
    catalog_path.write_text(yaml.safe_dump(data))
    assert await apply_catalog(store, Catalog.load(catalog_path)) == ([], [])
    async with store.read() as tx:
        assert (await tx.key_by_hash(hash_api_key(OTHER_KEY))).revoked

    before = await _state(store)
    data["aliases"] = [{"workspace": "other", "alias": "mine", "model": "private/1"}]  # no such model any more
    data["models"].append({"id": "new/1", "workspace": "demo", "package": "det"})
    catalog_path.write_text(yaml.safe_dump(data))
    with pytest.raises(CatalogError, match=rf"{catalog_path}:\d+: alias 'mine'.*not registered"):
        await apply_catalog(store, Catalog.load(catalog_path), prune=True)
    assert await _state(store) == before  # one transaction: the new model was not added either


async def test_aliases_to_other_workspaces_must_be_public(store: Store, catalog_path: Path) -> None:
    data = yaml.safe_load(catalog_path.read_text())
    data["aliases"] = [{"workspace": "other", "alias": "theirs", "model": "private/1"}]
    catalog_path.write_text(yaml.safe_dump(data))
    with pytest.raises(CatalogError, match="private model of another workspace"):
        await apply_catalog(store, Catalog.load(catalog_path))
    data["aliases"] = [{"workspace": "other", "alias": "theirs", "model": "det/2"}]
    catalog_path.write_text(yaml.safe_dump(data))
    changes, _ = await apply_catalog(store, Catalog.load(catalog_path))
    assert "+ alias other/theirs (-> det/2)" in {str(c) for c in changes}


def test_already_exists_is_not_a_catalog_error() -> None:
    assert not issubclass(AlreadyExists, CatalogError)
