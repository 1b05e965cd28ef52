"""Client commands: ``fleet infer``, ``fleet models``, ``fleet info``, ``fleet keygen``."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import grpc
from google.protobuf.json_format import MessageToDict

from fleet.cli import admin, connection, pipelines, workflows
from fleet.cli.output import detections_table, loaded_models_table, table
from fleet.client import Box, FleetClient, Point, build_inputs, read_state
from fleet.keys import hash_api_key, new_api_key


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
        print(detections_table(response))  # type: ignore[arg-type]
        if visual is not None:
            print(f"annotated image written to {visual}")


def _floats(values: list[str], flag: str, form: str) -> list[float]:
    try:
        return [float(v) for v in values]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{flag} expects {form}, got {','.join(values)!r}") from None


def point_arg(text: str) -> Point:
    """``X,Y`` (a positive point) or ``X,Y,neg`` (a negative one), original-image pixels."""
    parts = [p.strip() for p in text.split(",")]
    sign = parts[2].lower() if len(parts) == 3 else "pos"
    if len(parts) not in (2, 3) or sign not in ("pos", "positive", "neg", "negative"):
        raise argparse.ArgumentTypeError(f"--point expects X,Y or X,Y,neg, got {text!r}")
    x, y = _floats(parts[:2], "--point", "X,Y or X,Y,neg")
    return (x, y, sign.startswith("neg"))


def box_arg(text: str) -> Box:
    """``X,Y,W,H``: centre x, centre y, width, height in original-image pixels."""
    parts = [p.strip() for p in text.split(",")]
    if len(parts) != 4:
        raise argparse.ArgumentTypeError(f"--box expects X,Y,W,H (centre, width, height), got {text!r}")
    x, y, w, h = _floats(parts, "--box", "X,Y,W,H")
    return (x, y, w, h)


@_rpc
def infer(args: argparse.Namespace) -> int:
    images = [i if i.startswith(("http://", "https://")) else Path(i) for i in args.image]
    params = dict(confidence=args.confidence, iou_threshold=args.iou, max_detections=args.max_detections,
                  class_filter=args.class_filter, class_agnostic_nms=True if args.agnostic else None,
                  visualize=bool(args.visualize), top_k=args.top_k, mask_format=args.mask_format)
    inputs = build_inputs(args.text, args.point, args.box)
    if not images and not inputs:
        sys.exit("fleet infer: give an image (or --text for an embedding model)")
    if inputs and len(images) > 1:
        sys.exit("fleet infer: --text, --point and --box go with one image (or none)")
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


@_rpc
def compare(args: argparse.Namespace) -> int:
    image = args.image if args.image.startswith(("http://", "https://")) else Path(args.image)
    with _client(args) as client:
        ranked = client.compare(args.model, image, args.prompt, timeout=args.timeout)
    if args.json:
        print(json.dumps([{"prompt": p, "similarity": s} for p, s in ranked], indent=2))
    else:
        print(table(["rank", "prompt", "similarity"], [[str(i + 1), p, f"{s:.4f}"] for i, (p, s) in enumerate(ranked)]))
    return 0


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
    p.add_argument("--iou", type=float, help="NMS IoU threshold")
    p.add_argument("--max-detections", type=int)
    p.add_argument("--class", dest="class_filter", action="append", help="keep only this class (repeatable)")
    p.add_argument("--agnostic", action="store_true", help="class-agnostic NMS (default: the model's)")
    p.add_argument("--top-k", type=int, help="classification: only the best k classes")
    p.add_argument("--mask-format", choices=["outline", "polygons", "rle"], default="outline",
                   help="segmentation: the largest outline (default), every part and hole, or an RLE mask")
    p.add_argument("--text", action="append", help="embedding models: a text to embed (repeatable; input 'text')")
    p.add_argument("--point", action="append", type=point_arg, metavar="X,Y[,neg]",
                   help="promptable segmentation: a point prompt, ',neg' for background (repeatable; input 'points')")
    p.add_argument("--box", action="append", type=box_arg, metavar="X,Y,W,H",
                   help="promptable segmentation: a box prompt, centre x, y, width, height (input 'boxes')")
    p.add_argument("--visualize", metavar="OUT.jpg", help="write an annotated JPEG here (OUT-1.jpg, ... for several): "
                                                          "boxes, masks, keypoints, OCR lines")
    p.add_argument("--json", action="store_true", help="print the whole response as JSON")
    p.add_argument("--timeout", type=float, default=60.0, help="deadline in seconds (default 60)")
    _connection_args(p)
    p.set_defaults(func=infer)

    p = sub.add_parser("compare", help="rank text prompts by their similarity to an image (embedding models)")
    p.add_argument("image", help="an image file path or http(s) URL")
    p.add_argument("prompt", nargs="+", help="text prompts")
    p.add_argument("--model", default="clip", help="embedding model id or alias (default: clip)")
    p.add_argument("--json", action="store_true", help="print the ranking as JSON")
    p.add_argument("--timeout", type=float, default=60.0, help="deadline in seconds (default 60)")
    _connection_args(p)
    p.set_defaults(func=compare)

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
