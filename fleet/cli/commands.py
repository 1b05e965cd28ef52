"""Client commands: ``fleet infer``, ``fleet models``, ``fleet info``, ``fleet keygen``, and the commands and
``fleet infer`` flags the tasks declare (``services.tasks``: ``Task.cli_inputs``, ``Task.cli_parameters``,
``Task.cli_commands``)."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import grpc
from google.protobuf.json_format import MessageToDict

from fleet.cli import admin, connection, pipelines, workflows
from fleet.cli.output import response_table, loaded_models_table
from fleet.client import FleetClient, read_state
from fleet.keys import hash_api_key, new_api_key
from fleet.v1 import inference_pb2
from services.tasks import registry as tasks
from services.tasks.base import CliCommand, CliInput, CliParameter, Task


def _client(args: argparse.Namespace) -> FleetClient:
    """A client from the flags, else the environment, else the state `fleet up` saved."""
    saved = read_state(connection.state_path(args))
    api_key = args.api_key or os.environ.get("FLEET_API_KEY") or saved.get("api_key")
    if not api_key:
        sys.exit("fleet: no API key; pass --api-key, set FLEET_API_KEY, or start the fleet with `fleet up`")
    where = connection.target(args, saved)
    return FleetClient(where.address, api_key, ca=where.ca)


def _connection_args(p: argparse.ArgumentParser) -> None:
    connection.add_arguments(p)
    p.add_argument("--api-key", help="API key (default: FLEET_API_KEY, or the one `fleet up` saved)")


def _rpc(fn):  # type: ignore[no-untyped-def]
    def wrapper(args: argparse.Namespace) -> int:
        try:
            return fn(args)
        except grpc.RpcError as exc:
            print(f"fleet: {exc.code().name}: {exc.details()}", file=sys.stderr)
            return 1
    return wrapper


def _visual_path(pattern: str, index: int, count: int) -> Path:
    """OUT.jpg for one image; OUT-1.jpg, OUT-2.jpg, ... for several."""
    path = Path(pattern)
    return path if count == 1 else path.with_name(f"{path.stem}-{index + 1}{path.suffix}")


def _show(response: object, args: argparse.Namespace, visual: Path | None) -> None:
    if visual is not None:
        visual.write_bytes(response.visualization)  # type: ignore[attr-defined]
    if args.json:
        body = MessageToDict(response, preserving_proto_field_name=True)  # type: ignore[arg-type]
        body.pop("visualization", None)
        print(json.dumps(body, indent=2))
    else:
        print(response_table(response))  # type: ignore[arg-type]
        if visual is not None:
            print(f"annotated image written to {visual}")


def _task_inputs() -> list[tuple[Task, CliInput]]:
    """The ``fleet infer`` flags the tasks declare for their typed inputs, in registry order."""
    return [(task, option) for task in tasks.all_tasks() for option in task.cli_inputs]


def _task_parameters() -> list[CliParameter]:
    """The ``fleet infer`` flags the tasks declare for InferenceParameters fields, each once, in registry order."""
    found: dict[str, CliParameter] = {}
    for option in (o for task in tasks.all_tasks() for o in task.cli_parameters):
        if found.setdefault(option.flag, option) != option:
            raise ValueError(f"tasks declare {option.flag} twice, differently: {found[option.flag]} and {option}")
    return list(found.values())


def _input_dest(option: CliInput) -> str:
    return f"task_input:{option.flag}"


def typed_inputs(args: argparse.Namespace) -> dict[str, inference_pb2.InputValue]:
    values = ((option, getattr(args, _input_dest(option))) for _, option in _task_inputs())
    return {option.input: option.build(given) for option, given in values if given}


def _article(word: str) -> str:
    return f"{'an' if word[:1].lower() in 'aeiou' else 'a'} {word}"


def _flags(options: list[str]) -> str:
    return options[0] if len(options) == 1 else f"{', '.join(options[:-1])} and {options[-1]}"


def parameters(args: argparse.Namespace) -> dict[str, object]:
    """``FleetClient.infer``'s parameter keywords from ``fleet infer``'s flags (the tasks' own included)."""
    return dict(confidence=args.confidence, visualize=bool(args.visualize),
                **{o.parameter: getattr(args, o.parameter) for o in _task_parameters()})


@_rpc
def infer(args: argparse.Namespace) -> int:
    images = [i if i.startswith(("http://", "https://")) else Path(i) for i in args.image]
    params = parameters(args)
    inputs = typed_inputs(args)
    if not images and not inputs:
        alone = " or ".join(f"{o.flag} for {_article(t.name)} model" for t, o in _task_inputs() if o.without_image)
        sys.exit(f"fleet infer: give an image{f' (or {alone})' if alone else ''}")
    if inputs and len(images) > 1:
        sys.exit(f"fleet infer: {_flags([o.flag for _, o in _task_inputs()])} go with one image (or none)")
    with _client(args) as client:
        if len(images) <= 1:
            _show(client.infer(args.model, images[0] if images else None, timeout=args.timeout, inputs=inputs,
                               **params), args, Path(args.visualize) if args.visualize and images else None)
            return 0
        batch = client.infer_batch(args.model, images, timeout=args.timeout, **params)
    failed = 0
    for index, (image, item) in enumerate(zip(args.image, batch.items)):
        print(f"== {image}")
        if item.HasField("error"):
            failed += 1
            name = next((c.name for c in grpc.StatusCode if c.value[0] == item.error.code), str(item.error.code))
            print(f"error: {name}: {item.error.message}")
            continue
        _show(item.response, args, _visual_path(args.visualize, index, len(images)) if args.visualize else None)
    return 1 if failed else 0


def _task_command(command: CliCommand):  # type: ignore[no-untyped-def]
    @_rpc
    def run(args: argparse.Namespace) -> int:
        with _client(args) as client:
            return command.run(client, args)
    return run


@_rpc
def models(args: argparse.Namespace) -> int:
    with _client(args) as client:
        print(loaded_models_table(client.describe_models().models))
    return 0


@_rpc
def info(args: argparse.Namespace) -> int:
    with _client(args) as client:
        print(json.dumps(MessageToDict(client.server_info(), preserving_proto_field_name=True), indent=2))
    return 0


def keygen(args: argparse.Namespace) -> int:
    key = new_api_key()
    print(f"api key:        {key}\napi_key_sha256: {hash_api_key(key)}   (put this in a catalog; or let the fleet "
          "make keys: `fleet keys create`)")
    return 0


def add_parsers(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("infer", help="run a model on images and print the results")
    p.add_argument("image", nargs="*", help="image file paths or http(s) URLs (several: one InferBatch call; none: "
                                            "texts only, with --text)")
    p.add_argument("--model", required=True, help="model id or alias, e.g. shapes-det/1")
    p.add_argument("--confidence", type=float)
    for parameter in _task_parameters():
        p.add_argument(parameter.flag, **parameter.argument())
    for _, option in _task_inputs():
        p.add_argument(option.flag, action="append", type=option.parse, dest=_input_dest(option), help=option.help,
                       metavar=option.metavar or option.flag.lstrip("-").replace("-", "_").upper())
    p.add_argument("--visualize", metavar="OUT.jpg", help="write an annotated JPEG here (OUT-1.jpg, ... for several): "
                                                          "what the model's task draws of its answer")
    p.add_argument("--json", action="store_true", help="print the whole response as JSON")
    p.add_argument("--timeout", type=float, default=60.0, help="deadline in seconds (default 60)")
    _connection_args(p)
    p.set_defaults(func=infer)

    for command in (c for task in tasks.all_tasks() for c in task.cli_commands):
        p = sub.add_parser(command.name, help=command.help)
        command.arguments(p)
        _connection_args(p)
        p.set_defaults(func=_task_command(command))

    p = sub.add_parser("models", help="models loaded across the fleet (no subcommand); registered models (admin)",
                       description="`fleet models` lists the models loaded across the fleet; its subcommands "
                                   "manage registered models and aliases with the admin token.")
    _connection_args(p)
    p.set_defaults(func=models)
    model_commands = p.add_subparsers(dest="models_command")
    loaded = model_commands.add_parser("loaded", help="the models loaded across the fleet (the default)")
    _connection_args(loaded)
    loaded.set_defaults(func=models)
    admin.add_parsers(sub, model_commands)
    workflows.add_parsers(sub)

    p = sub.add_parser("info", help="server version and each worker's load")
    _connection_args(p)
    p.set_defaults(func=info)

    pipelines.add_parser(sub)

    p = sub.add_parser("keygen", help="make a new API key and the hash to put in a catalog")
    p.set_defaults(func=keygen)
