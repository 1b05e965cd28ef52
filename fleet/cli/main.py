"""The ``fleet`` command."""

from __future__ import annotations

import argparse
import sys

from fleet.cli import commands, package, up


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="fleet", description="Inference Fleet: run and call the fleet.")
    sub = parser.add_subparsers(dest="command", required=True)
    up.add_parser(sub)
    commands.add_parsers(sub)
    package.add_parser(sub)
    args = parser.parse_args(argv)
    sys.exit(args.func(args))


if __name__ == "__main__":
    main()
