"""The upstream model source (the seed's Roboflow-API role): ids not known locally are looked up over HTTP.

Contract (docs/operations.md has it in full): ``GET {FLEET_REGISTRY_UPSTREAM_URL}/models/{project}/{version}
?workspace={caller's workspace}``, with ``Authorization: Bearer {FLEET_REGISTRY_UPSTREAM_TOKEN}`` when set.

- 200 with a JSON object: ``model_id`` (must equal the id asked for), ``workspace``, ``public``,
  ``task_type``, ``model_type``, ``class_names``, ``input`` ({width, height, and optionally resize_mode,
  color_order, pad_value, scale, mean, std, name}), optional ``outputs``, ``multi_label``,
  ``max_batch_size``, ``defaults``, ``weights`` ({url, sha256, optional size_bytes}), optional ``ttl_s``.
- 404: the model does not exist (remembered for a short while).
- anything else, a timeout, or a body that does not fit the contract: UNAVAILABLE, never remembered.
"""

from __future__ import annotations

import logging
import time
from typing import Any
from urllib.parse import quote

import httpx
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from services.common.errors import FleetError, Unavailable
from services.common.model_record import ModelRecord
from services.common.model_spec import ModelSpec
from services.common.redact import redact_urls
from services.registry.metrics import UPSTREAM_ERRORS, UPSTREAM_SECONDS

log = logging.getLogger("fleet.registry.upstream")


class UpstreamUnavailable(Unavailable):
    pass


class _Weights(BaseModel):
    url: str = Field(min_length=1)
    sha256: str
    size_bytes: int | None = None


class UpstreamAnswer(BaseModel):
    """The JSON body of a 200 answer."""

    model_config = ConfigDict(extra="ignore")

    model_id: str
    workspace: str
    public: bool = False
    task_type: str
    model_type: str
    class_names: list[str]
    input: dict[str, Any]
    outputs: list[str] | None = None
    multi_label: bool = False
    max_batch_size: int = 1
    defaults: dict[str, Any] = Field(default_factory=dict)
    weights: _Weights
    ttl_s: int | None = Field(default=None, gt=0)

    def record(self) -> ModelRecord:
        spec: dict[str, Any] = {
            "name": self.model_id, "task_type": self.task_type, "model_type": self.model_type,
            "class_names": self.class_names, "multi_label": self.multi_label, "input": self.input,
            "batch": {"max_batch_size": self.max_batch_size}, "defaults": self.defaults,
            "weights": {"sha256": self.weights.sha256, "size_bytes": self.weights.size_bytes},
            "provenance": {"source": "upstream"},
        }
        if self.outputs is not None:
            spec["outputs"] = self.outputs
        return ModelRecord(model_id=self.model_id, workspace=self.workspace, artifact_uri=self.weights.url,
                           spec=ModelSpec.model_validate(spec), public=self.public)


class Upstream:
    def __init__(self, base_url: str, timeout_s: float, token: str = "", default_ttl_s: int = 3600) -> None:
        self.base_url = base_url.rstrip("/")
        self.default_ttl_s = default_ttl_s
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._http = httpx.AsyncClient(timeout=timeout_s, headers=headers, follow_redirects=False)

    def _fail(self, kind: str, detail: str) -> UpstreamUnavailable:
        UPSTREAM_ERRORS.labels(kind).inc()
        log.warning("upstream lookup failed", extra={"kind": kind, "details": detail})
        return UpstreamUnavailable(f"the upstream model source is unavailable ({kind}); try again shortly")

    async def lookup(self, model_id: str, workspace: str) -> tuple[ModelRecord, int] | None:
        """The model and how long to keep it (seconds), None when upstream says 404."""
        project, _, version = model_id.partition("/")
        url = f"{self.base_url}/models/{quote(project, safe='')}/{quote(version, safe='')}"
        started = time.perf_counter()
        try:
            response = await self._http.get(url, params={"workspace": workspace})
        except httpx.TimeoutException as exc:
            raise self._fail("timeout", type(exc).__name__) from None
        except httpx.HTTPError as exc:
            raise self._fail("connect", type(exc).__name__) from None
        finally:
            UPSTREAM_SECONDS.observe(time.perf_counter() - started)
        if response.status_code == 404:
            return None
        if response.status_code != 200:
            raise self._fail("status", f"HTTP {response.status_code}")
        try:
            answer = UpstreamAnswer.model_validate_json(response.content)
            record = answer.record()
        except (ValidationError, ValueError, FleetError) as exc:
            raise self._fail("malformed", redact_urls(str(exc))[:300]) from None
        if record.model_id != model_id:
            raise self._fail("malformed", f"answered {record.model_id!r} for {model_id!r}")
        return record, answer.ttl_s or self.default_ttl_s

    async def close(self) -> None:
        await self._http.aclose()
