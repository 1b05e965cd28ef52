"""Opening a model's files: every file of its package fetched and checked (its weights at ``artifact_uri``, the
further graphs and assets beside them), its first graph opened as the session its batcher runs, its further
graphs (model.json's ``graphs``: a text encoder, a prompt decoder) opened beside it, its other files kept as
paths. Runs on the manager's load executor; the manager counts, times and holds what comes back."""

from __future__ import annotations

import asyncio
from concurrent.futures import Executor
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urljoin

from services.common.model_record import ModelRecord
from services.model_worker.artifacts import ArtifactStore
from services.model_worker.runtime import Graph, RuntimeOptions, Session, open_graph, open_session


@dataclass(frozen=True)
class OpenedFiles:
    session: Session  # the first graph's
    graphs: dict[str, Graph]  # the further graphs, by name
    assets: dict[str, Path]  # the other files (checked copies), by name


def sibling_uri(artifact_uri: str, file: str) -> str:
    """Where a package's other file is: beside its weights (file:// and http(s):// alike)."""
    return urljoin(artifact_uri, file)


async def fetch_files(artifacts: ArtifactStore, record: ModelRecord) -> dict[str, Path]:
    """Every file of the model (its weights at ``artifact_uri``; the other graphs and assets beside them), each
    checked against its sha256."""
    files = record.spec.files
    paths = await asyncio.gather(*(
        artifacts.fetch(record.artifact_uri if name == "model" else sibling_uri(record.artifact_uri, w.file),
                        w.sha256) for name, w in files.items()))
    return dict(zip(files, paths))


async def open_files(artifacts: ArtifactStore, record: ModelRecord, runtime: RuntimeOptions,
                     executor: Executor) -> OpenedFiles:
    """Fetch the model's files, then open its first graph's session and its further graphs in ``executor``."""
    paths = await fetch_files(artifacts, record)
    loop = asyncio.get_running_loop()
    session = await loop.run_in_executor(executor, open_session, paths.pop("model"), record.spec, runtime)
    graphs = {name: await loop.run_in_executor(executor, open_graph, paths.pop(name), runtime)
              for name in record.spec.graphs}
    return OpenedFiles(session, graphs, paths)
