"""The protobuf contract: lint-clean under buf STANDARD, committed stubs match the protos."""

from __future__ import annotations

import filecmp
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("package", ["fleet/v1", "fleet/internal/v1", "fleet_oip/v2"])
def test_committed_stubs_match_the_protos(tmp_path: Path, package: str) -> None:
    subprocess.run([sys.executable, str(ROOT / "scripts" / "gen_protos.py"), "--out", str(tmp_path)], check=True)
    generated = sorted(p.name for p in (tmp_path / package).iterdir() if p.suffix in (".py", ".pyi"))
    committed = sorted(p.name for p in (ROOT / package).iterdir() if p.suffix in (".py", ".pyi"))
    assert generated == committed
    mismatched = [n for n in generated if not filecmp.cmp(tmp_path / package / n, ROOT / package / n, shallow=False)]
    assert not mismatched, f"stale stubs {mismatched}: run `make protos` and commit"


def test_buf_lint_standard_is_clean() -> None:
    npx = shutil.which("npx")
    if npx is None:
        pytest.fail("npx (Node.js) is needed to run buf lint")
    result = subprocess.run([npx, "--yes", "@bufbuild/buf@1.75.0", "lint"], cwd=ROOT / "protos",
                            capture_output=True, text=True, timeout=240)
    assert result.returncode == 0, result.stdout + result.stderr


def test_stubs_import_and_expose_the_services() -> None:
    from fleet.internal.v1 import registry_pb2, worker_pb2
    from fleet.v1 import gateway_pb2

    assert gateway_pb2.DESCRIPTOR.services_by_name["GatewayService"].full_name == "fleet.v1.GatewayService"
    assert set(gateway_pb2.DESCRIPTOR.services_by_name["GatewayService"].methods_by_name) == {
        "Infer", "InferBatch", "InferStream", "AddModel", "RemoveModel", "ClearModels", "DescribeModels",
        "GetServerInfo"}
    assert "ResolveModel" in registry_pb2.DESCRIPTOR.services_by_name["RegistryService"].methods_by_name
    from fleet.v1 import workflow_pb2

    assert set(workflow_pb2.DESCRIPTOR.services_by_name["WorkflowService"].methods_by_name) == {
        "RunWorkflow", "RunWorkflowStream", "ValidateWorkflow"}
    assert "GetWorkflow" in registry_pb2.DESCRIPTOR.services_by_name["RegistryService"].methods_by_name
    assert "LoadModel" in worker_pb2.DESCRIPTOR.services_by_name["ModelWorkerService"].methods_by_name


def test_the_admin_plane_is_public_and_mirrored_internally() -> None:
    from fleet.internal.v1 import registry_pb2
    from fleet.v1 import admin_pb2

    public = set(admin_pb2.DESCRIPTOR.services_by_name["AdminService"].methods_by_name)
    assert public == {"ApplyCatalog", "RegisterModel", "DeleteModel", "ListModels", "SetAlias", "DeleteAlias",
                      "CreateApiKey", "ListApiKeys", "RevokeApiKey", "PutWorkflow", "ListWorkflows", "DeleteWorkflow"}
    internal = registry_pb2.DESCRIPTOR.services_by_name["RegistryAdminService"].methods_by_name
    assert set(internal) == public
    for name, method in internal.items():  # each internal message wraps the public one
        assert method.input_type.fields_by_name["request"].message_type.full_name == f"fleet.v1.{name}Request"
    # The registry's data plane no longer takes registrations naming their own workspace.
    assert "RegisterModel" not in registry_pb2.DESCRIPTOR.services_by_name["RegistryService"].methods_by_name
