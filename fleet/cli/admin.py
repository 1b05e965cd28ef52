"""Admin commands (through the gateway's fleet.v1.AdminService): keys, catalogs, registered models, aliases.

The admin token comes from ``--admin-token-file FILE``, ``FLEET_ADMIN_TOKEN``, ``FLEET_ADMIN_TOKEN_FILE``,
or the development state ``fleet up`` saved; a token file must not be readable by group or others.
"""

from __future__ import annotations

import argparse
import json
import os
import stat
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import grpc
from google.protobuf.json_format import MessageToDict

from fleet.cli import connection
from fleet.cli.output import table
from fleet.keys import hash_api_key, new_admin_token
from fleet.v1 import admin_pb2, admin_pb2_grpc

ACTION = {admin_pb2.CHANGE_ACTION_ADDED: "+", admin_pb2.CHANGE_ACTION_CHANGED: "~",
          admin_pb2.CHANGE_ACTION_REMOVED: "-"}


class CliError(Exception):
    pass


def read_token_file(path: Path) -> str:
    try:
        mode = path.stat().st_mode
        if mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise CliError(f"{path} is readable by others (mode {stat.S_IMODE(mode):o}); run: chmod 600 {path}")
        token = path.read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise CliError(f"cannot read the admin token file {path}: {exc.strerror}") from None
    if not token:
        raise CliError(f"the admin token file {path} is empty")
    return token


def _saved(args: argparse.Namespace) -> dict[str, str]:
    state = connection.state_path(args)
    if not state.exists():
        return {}
    return json.loads(read_token_file(state))


def admin_token(args: argparse.Namespace) -> str:
    if args.admin_token_file:
        return read_token_file(Path(args.admin_token_file))
    if token := os.environ.get("FLEET_ADMIN_TOKEN"):
        return token
    if path := os.environ.get("FLEET_ADMIN_TOKEN_FILE"):
        return read_token_file(Path(path))
    if token := _saved(args).get("admin_token"):
        return token
    raise CliError("no admin token: set FLEET_ADMIN_TOKEN, pass --admin-token-file FILE (mode 0600), "
                   "or start a development fleet with `fleet up`")


def _stub(args: argparse.Namespace) -> tuple[admin_pb2_grpc.AdminServiceStub, tuple[tuple[str, str], ...], grpc.Channel]:
    channel = connection.target(args, _saved(args)).channel()
    return admin_pb2_grpc.AdminServiceStub(channel), (("authorization", f"Bearer {admin_token(args)}"),), channel


def _call(args: argparse.Namespace, method: str, request):  # type: ignore[no-untyped-def]
    stub, metadata, channel = _stub(args)
    with channel:
        return getattr(stub, method)(request, metadata=metadata, timeout=args.timeout)


def _command(fn):  # type: ignore[no-untyped-def]
    def wrapper(args: argparse.Namespace) -> int:
        try:
            return fn(args)
        except CliError as exc:
            print(f"fleet: {exc}", file=sys.stderr)
            return 2
        except grpc.RpcError as exc:
            print(f"fleet: {exc.code().name}: {exc.details()}", file=sys.stderr)
            return 1
    return wrapper


def _when(ts) -> str:  # noqa: ANN001
    return ts.ToDatetime().strftime("%Y-%m-%d %H:%M:%SZ") if ts.seconds else ""


def _as_json(message) -> dict:  # noqa: ANN001
    return MessageToDict(message, preserving_proto_field_name=True)


def _print_list(args: argparse.Namespace, messages: Sequence, headers: list[str],
                row: Callable[[Any], list[str]]) -> int:
    """A listing's output: the messages as JSON (``--json``), else a table of a row each."""
    if args.json:
        print(json.dumps([_as_json(m) for m in messages], indent=2))
    else:
        print(table(headers, [row(m) for m in messages]))
    return 0


# ---- keys -------------------------------------------------------------------------------------
@_command
def keys_create(args: argparse.Namespace) -> int:
    reply = _call(args, "CreateApiKey", admin_pb2.CreateApiKeyRequest(workspace=args.workspace, name=args.name))
    if args.json:
        print(json.dumps({"api_key": reply.api_key, **_as_json(reply.key)}, indent=2))
    else:
        print(f"api key:   {reply.api_key}\nkey id:    {reply.key.key_id}\nworkspace: {reply.key.workspace}\n"
              "The key is shown this once; the fleet keeps only its sha256.")
    return 0


@_command
def keys_list(args: argparse.Namespace) -> int:
    reply = _call(args, "ListApiKeys", admin_pb2.ListApiKeysRequest(workspace=args.workspace or ""))
    return _print_list(args, reply.keys, ["id", "prefix", "workspace", "name", "created", "revoked", "last used"],
                       lambda k: [k.key_id, k.prefix, k.workspace, k.name, _when(k.created_at),
                                  _when(k.revoked_at) or "", _when(k.last_used_at)])


@_command
def keys_revoke(args: argparse.Namespace) -> int:
    reply = _call(args, "RevokeApiKey", admin_pb2.RevokeApiKeyRequest(key_id=args.key_id))
    print(f"revoked {reply.key.key_id} (workspace {reply.key.workspace}) at {_when(reply.key.revoked_at)}")
    return 0


# ---- catalogs ---------------------------------------------------------------------------------
@_command
def catalog_apply(args: argparse.Namespace) -> int:
    path = Path(args.file)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise CliError(f"cannot read {path}: {exc}") from None
    request = admin_pb2.ApplyCatalogRequest(catalog_yaml=text, source_name=str(path),
                                            base_dir=str(path.resolve().parent), prune=args.prune,
                                            dry_run=args.dry_run)
    reply = _call(args, "ApplyCatalog", request)
    if args.json:
        print(json.dumps(_as_json(reply), indent=2))
        return 0
    for c in reply.changes:
        print(f"{ACTION.get(c.action, '?')} {c.kind} {c.name}" + (f" ({c.detail})" if c.detail else ""))
    counts = {a: sum(1 for c in reply.changes if c.action == a) for a in ACTION}
    summary = ", ".join(f"{counts[a]} {w}" for a, w in zip(ACTION, ("added", "changed", "removed")))
    print(f"{'dry run, nothing applied' if args.dry_run else 'applied'}: {summary}" if reply.changes
          else "no changes")
    return 0


# ---- registered models and aliases ------------------------------------------------------------
@_command
def models_list(args: argparse.Namespace) -> int:
    models, token = [], ""
    while True:
        reply = _call(args, "ListModels", admin_pb2.ListModelsRequest(workspace=args.workspace or "",
                                                                       page_size=500, page_token=token))
        models += reply.models
        token = reply.next_page_token
        if not token:
            break
    return _print_list(args, models, ["model", "workspace", "public", "type", "aliases", "source"],
                       lambda m: [m.summary.model_id, m.workspace, "yes" if m.summary.public else "",
                                  m.summary.model_type, ",".join(m.summary.aliases), m.source])


@_command
def models_register(args: argparse.Namespace) -> int:
    """Register a package directory (model.json + weights), referencing its weights where they are."""
    package = Path(args.package).resolve()
    try:
        spec_json = (package / "model.json").read_text(encoding="utf-8")
        weights = json.loads(spec_json).get("weights", {}).get("file", "model.onnx")
    except (OSError, ValueError, AttributeError) as exc:
        raise CliError(f"{package} is not a model package (model.json unreadable: {exc})") from None
    uri = args.artifact_uri or (package / str(weights)).as_uri()
    reply = _call(args, "RegisterModel", admin_pb2.RegisterModelRequest(
        model_id=args.id, workspace=args.workspace, public=args.public, spec_json=spec_json, artifact_uri=uri,
        aliases=args.alias or [], replace=args.replace))
    if args.json:
        print(json.dumps(_as_json(reply.model), indent=2))
        return 0
    m = reply.model
    print(f"registered {m.summary.model_id} in {m.workspace} ({m.summary.model_type}, "
          f"{len(m.summary.class_names)} classes, sha256 {m.sha256[:12]}…) -> {m.artifact_uri}")
    return 0


@_command
def models_delete(args: argparse.Namespace) -> int:
    _call(args, "DeleteModel", admin_pb2.DeleteModelRequest(model_id=args.model_id))
    print(f"deleted {args.model_id}")
    return 0


@_command
def models_alias(args: argparse.Namespace) -> int:
    reply = _call(args, "SetAlias", admin_pb2.SetAliasRequest(workspace=args.workspace, alias=args.alias,
                                                              model_id=args.model_id))
    moved = f" (was {reply.previous_model_id})" if reply.previous_model_id else ""
    print(f"{args.workspace}: {args.alias} -> {args.model_id}{moved}")
    return 0


@_command
def models_unalias(args: argparse.Namespace) -> int:
    _call(args, "DeleteAlias", admin_pb2.DeleteAliasRequest(workspace=args.workspace, alias=args.alias))
    print(f"{args.workspace}: alias {args.alias} removed")
    return 0


def admin_token_command(args: argparse.Namespace) -> int:
    token = new_admin_token()
    print(f"admin token:        {token}\nadmin_token_sha256: {hash_api_key(token)}   "
          "(give the registry this: FLEET_REGISTRY_ADMIN_TOKEN_SHA256)")
    return 0


def admin_args(p: argparse.ArgumentParser) -> None:
    connection.add_arguments(p)
    p.add_argument("--admin-token-file", help="file holding the admin token, mode 0600 (default: FLEET_ADMIN_TOKEN)")
    p.add_argument("--timeout", type=float, default=60.0, help="deadline in seconds (default 60)")


def admin_command(p: argparse.ArgumentParser, func: Callable[[argparse.Namespace], int], *, json_output: bool = False) -> None:
    """Finish an admin subcommand's parser, after its own arguments: ``--json`` (when it prints a reply), the
    connection and admin-token flags, and the function it runs."""
    if json_output:
        p.add_argument("--json", action="store_true")
    admin_args(p)
    p.set_defaults(func=func)


def add_parsers(sub: argparse._SubParsersAction, models: argparse._SubParsersAction) -> None:
    keys = sub.add_parser("keys", help="API keys: create, list, revoke (admin)").add_subparsers(
        dest="keys_command", required=True)
    p = keys.add_parser("create", help="make a key for a workspace; prints it once")
    p.add_argument("--workspace", required=True)
    p.add_argument("--name", default="", help="a label for the key")
    admin_command(p, keys_create, json_output=True)
    p = keys.add_parser("list", help="keys with id, prefix, name, created, revoked, last used (never the key)")
    p.add_argument("--workspace", help="only this workspace's keys")
    admin_command(p, keys_list, json_output=True)
    p = keys.add_parser("revoke", help="revoke a key for good (every gateway refuses it within about a second)")
    p.add_argument("key_id")
    admin_command(p, keys_revoke)

    catalog = sub.add_parser("catalog", help="apply a catalog file (admin)").add_subparsers(
        dest="catalog_command", required=True)
    p = catalog.add_parser("apply", help="import a catalog: idempotent; prints the diff; nothing changes on error")
    p.add_argument("file")
    p.add_argument("--prune", action="store_true", help="also remove what earlier catalogs made and this one lacks")
    p.add_argument("--dry-run", action="store_true", help="only print the diff")
    admin_command(p, catalog_apply, json_output=True)

    p = models.add_parser("list", help="registered models (admin)")
    p.add_argument("--workspace", help="only this workspace's models")
    admin_command(p, models_list, json_output=True)
    p = models.add_parser("register", help="register a model package directory (admin; see `fleet package`)")
    p.add_argument("package", help="the package directory (model.json and the weights it names)")
    p.add_argument("--id", required=True, help="the model id, project/version")
    p.add_argument("--workspace", required=True, help="the owning workspace")
    p.add_argument("--public", action="store_true", help="visible to every workspace")
    p.add_argument("--alias", action="append", help="an alias in the workspace (repeatable)")
    p.add_argument("--artifact-uri", help="where workers fetch the weights: http(s):// or file:// (default: the "
                                          "package's own weights file, which workers must be allowed to read)")
    p.add_argument("--replace", action="store_true", help="replace an existing registration with this id")
    admin_command(p, models_register, json_output=True)
    p = models.add_parser("delete", help="delete a registered model and its aliases (admin)")
    p.add_argument("model_id")
    admin_command(p, models_delete)
    p = models.add_parser("alias", help="point a workspace's alias at a model (admin)")
    p.add_argument("workspace")
    p.add_argument("alias")
    p.add_argument("model_id")
    admin_command(p, models_alias)
    p = models.add_parser("unalias", help="remove a workspace's alias (admin)")
    p.add_argument("workspace")
    p.add_argument("alias")
    admin_command(p, models_unalias)

    p = sub.add_parser("admin-token", help="make a new admin token and the hash to give the registry")
    p.set_defaults(func=admin_token_command)
