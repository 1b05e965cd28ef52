"""Secrets inside URLs stay out of the fleet's logs and error answers, end to end: a model whose weights
come from a presigned URL (its signature in the query) that fails before it serves, and images by URLs
carrying ``user:password@`` or a token in the query, over gRPC and HTTP; then every service log and every
error the callers got is searched for the secrets."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import grpc
import httpx
import pytest

from fleet.client import FleetClient
from services.cache.embedded import delete_namespace
from services.local.processes import LocalFleet
from tests.artifact_server import ArtifactServer, artifact_server
from tests.conftest import PACKAGES, TEST_KEY, demo_models, write_catalog

SIGNATURE = "SIGSECRET0123456789abcdef"
CREDENTIAL = "AKIACREDSECRET42"
PASSWORD = "PWSECRET9876"
TOKEN = "TOKSECRET5555"
SECRETS = (SIGNATURE, CREDENTIAL, PASSWORD, TOKEN)
ARTIFACT = (f"/bucket/presigned-det/model.onnx?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential={CREDENTIAL}"
            f"&X-Amz-Signature={SIGNATURE}")
SAMPLE = Path(__file__).resolve().parents[2] / "models" / "samples" / "shapes-1.jpg"
AUTH = {"Authorization": f"Bearer {TEST_KEY}"}


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory, redis_url: str) -> Iterator[tuple[LocalFleet, ArtifactServer]]:
    tmp = tmp_path_factory.mktemp("redaction")
    with artifact_server() as server:
        server.files[ARTIFACT] = (PACKAGES / "shapes-det" / "model.onnx").read_bytes()
        server.files["/images/shapes-1.jpg"] = SAMPLE.read_bytes()
        server.fail_first[ARTIFACT] = 10**6  # every GET answers 503 until the test lets it through
        presigned = {"id": "presigned-det/1", "workspace": "demo", "package": str(PACKAGES / "shapes-det"),
                     "artifact_uri": server.url(ARTIFACT), "public": False, "aliases": []}
        catalog = write_catalog(tmp / "catalog.yaml", [*demo_models()[:1], presigned])
        namespace = f"redact-{uuid.uuid4().hex[:10]}"
        fleet = LocalFleet(redis_url, catalog, workers=1, namespace=namespace, state_dir=tmp / "run",
                           worker_env={"FLEET_WORKER_MODEL_CACHE_DIR": str(tmp / "cache"),  # nothing cached before
                                       "FLEET_WORKER_DOWNLOAD_RETRIES": "1", "FLEET_WORKER_URL_ALLOW_PRIVATE": "true",
                                       "FLEET_WORKER_URL_TIMEOUT_S": "5"})
        try:
            yield fleet.start(), server
        finally:
            fleet.stop()
            delete_namespace(redis_url, namespace)


def grpc_error(client: FleetClient, model: str, image: str) -> str:
    with pytest.raises(grpc.RpcError) as info:
        client.infer(model, image, timeout=60)
    return f"{info.value.code().name}: {info.value.details()}"


@pytest.mark.slow
def test_url_secrets_reach_no_log_and_no_error_answer(served: tuple[LocalFleet, ArtifactServer]) -> None:
    fleet, server = served
    answers: list[str] = []
    with FleetClient(fleet.gateway.address, TEST_KEY) as client:
        # The presigned artifact: every GET answers 503, the load fails (logged with the URI); then it serves.
        answers.append(grpc_error(client, "presigned-det/1", str(SAMPLE)))
        assert answers[-1].startswith(("UNAVAILABLE", "FAILED_PRECONDITION")), answers[-1]
        assert server.gets[ARTIFACT] >= 2
        server.fail_first[ARTIFACT] = 0
        assert client.infer("presigned-det/1", SAMPLE.read_bytes(), timeout=60).model_id == "presigned-det/1"
        # Images by URL: credentials (refused), credentials in a malformed URL (quoted in the answer),
        # a token in the query of a URL that works and of one that answers 404.
        answers.append(grpc_error(client, "shapes-det/1", server.url(f"/images/shapes-1.jpg").replace(
            "http://", f"http://user:{PASSWORD}@")))
        answers.append(grpc_error(client, "shapes-det/1", f"http://user:{PASSWORD}@[not-a-host/x.jpg"))
        answers.append(grpc_error(client, "shapes-det/1", server.url(f"/images/missing.jpg?token={TOKEN}")))
        server.files[f"/images/shapes-1.jpg?token={TOKEN}"] = SAMPLE.read_bytes()
        assert client.infer("shapes-det/1", server.url(f"/images/shapes-1.jpg?token={TOKEN}"),
                            timeout=60).model_id == "shapes-det/1"
    with httpx.Client(base_url=fleet.gateway.http_url, timeout=60) as http:
        for value in (f"ftp://user:{PASSWORD}@files.example/x.jpg", f"http://user:{PASSWORD}@[bad/x.jpg",
                      server.url(f"/images/missing.jpg?token={TOKEN}")):
            answer = http.post("/infer/object_detection", headers=AUTH,
                               json={"model_id": "shapes-det/1", "image": {"type": "url", "value": value}})
            assert answer.status_code == 400, answer.text
            answers.append(answer.text)
        legacy = http.post("/shapes-det/1", params={"api_key": TEST_KEY,
                                                    "image": f"http://user:{PASSWORD}@[bad/x.jpg"})
        assert legacy.status_code == 400, legacy.text
        answers.append(legacy.text)
    assert len(answers) == 8
    logs = sorted(fleet.state_dir.glob("*.log"))
    assert {p.name for p in logs} >= {"gateway.log", "registry.log", "worker-0.log"}
    text = {p.name: p.read_text(errors="replace") for p in logs}
    assert "artifact download failed" in text["worker-0.log"]  # the log line that names the URI
    leaks = [f"answer {a}" for a in answers if any(s in a for s in SECRETS)]
    leaks += [f"{name}: {s}" for name, t in text.items() for s in SECRETS if s in t]
    assert not leaks, "secrets in error answers or service logs:\n" + "\n".join(leaks)
    assert any("[redacted]" in a for a in answers), answers  # the malformed URLs are quoted, redacted
