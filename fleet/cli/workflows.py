"""``fleet workflows ...``: stored workflow definitions per workspace (admin, through fleet.v1.AdminService)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from fleet.cli.admin import CliError, _as_json, _call, _command, _print_list, _when, admin_command
from fleet.v1 import admin_pb2


@_command
def workflows_put(args: argparse.Namespace) -> int:
    try:
        text = Path(args.file).read_text(encoding="utf-8")
    except OSError as exc:
        raise CliError(f"cannot read {args.file}: {exc.strerror}") from None
    reply = _call(args, "PutWorkflow", admin_pb2.PutWorkflowRequest(
        workspace=args.workspace, workflow_id=args.workflow_id, definition_json=text, public=args.public))
    w = reply.workflow
    if args.json:
        print(json.dumps(_as_json(w), indent=2))
    else:
        print(f"{w.workspace}/{w.workflow_id}: version {w.version_id} is current ({w.versions} kept)")
    return 0


@_command
def workflows_list(args: argparse.Namespace) -> int:
    reply = _call(args, "ListWorkflows", admin_pb2.ListWorkflowsRequest(workspace=args.workspace or ""))
    return _print_list(args, reply.workflows, ["workspace", "workflow", "version", "versions", "public", "updated"],
                       lambda w: [w.workspace, w.workflow_id, w.version_id, str(w.versions), "yes" if w.public else "",
                                  _when(w.updated_at)])


@_command
def workflows_delete(args: argparse.Namespace) -> int:
    _call(args, "DeleteWorkflow", admin_pb2.DeleteWorkflowRequest(workspace=args.workspace,
                                                                  workflow_id=args.workflow_id))
    print(f"deleted {args.workspace}/{args.workflow_id} and its versions")
    return 0


def add_parsers(sub: argparse._SubParsersAction) -> None:
    workflows = sub.add_parser("workflows", help="stored workflow definitions: put, list, delete (admin)")
    commands = workflows.add_subparsers(dest="workflows_command", required=True)
    p = commands.add_parser("put", help="store a definition (JSON file) as the workflow's new current version")
    p.add_argument("workspace")
    p.add_argument("workflow_id")
    p.add_argument("file", help="the definition's JSON file")
    p.add_argument("--public", action="store_true", help="every workspace may run it")
    admin_command(p, workflows_put, json_output=True)
    p = commands.add_parser("list", help="stored workflows with their current version")
    p.add_argument("--workspace", help="only this workspace's")
    admin_command(p, workflows_list, json_output=True)
    p = commands.add_parser("delete", help="delete a stored workflow and every version of it")
    p.add_argument("workspace")
    p.add_argument("workflow_id")
    admin_command(p, workflows_delete)
