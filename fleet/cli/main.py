"""The ``fleet`` command.

Client commands need only the client install (stubs, ``fleet.client``); ``fleet up`` runs the
fleet itself and needs the server install (``pip install 'inference-fleet[server,cpu]'``); ``fleet package``
builds model packages and needs the ``package`` extra (``pip install 'inference-fleet[package]'``: ONNX
tooling, no Redis, no server), its ``--check`` the server install.
"""

from __future__ import annotations

import argparse
import sys

from fleet.cli import commands
from services.local import package  # its packaging code is imported when the command runs (the package extra)
from services.tasks import registry


def _server_parsers(sub: argparse._SubParsersAction) -> None:
    try:
        from services.local import up  # noqa: PLC0415 - present only with the server install
    except ImportError as exc:
        missing = exc.name or "a server dependency"

        def unavailable(args: argparse.Namespace) -> int:
            print(f"fleet {args.command}: needs the server install ({missing} is missing): "
                  "pip install 'inference-fleet[server,cpu]'", file=sys.stderr)
            return 2

        p = sub.add_parser("up", help="run the fleet here (needs the server install)")
        p.add_argument("arguments", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)
        p.set_defaults(func=unavailable)
    else:
        up.add_parser(sub)
    package.add_parser(sub)


def main(argv: list[str] | None = None) -> None:
    registry.load_plugins()  # FLEET_TASK_MODULES: plug-in tasks render their answers too
    parser = argparse.ArgumentParser(prog="fleet", description="Inference Fleet: run and call the fleet.")
    sub = parser.add_subparsers(dest="command", required=True)
    _server_parsers(sub)
    commands.add_parsers(sub)
    args = parser.parse_args(argv)
    sys.exit(args.func(args))


if __name__ == "__main__":
    main()
