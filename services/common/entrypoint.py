"""The shared ``main`` of every service: --help lists settings; the rest come from the environment."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import TypeVar

from pydantic import ValidationError

from services.common.logging_setup import configure_logging
from services.common.server import Service, run
from services.common.settings import ServiceSettings, env_help

S = TypeVar("S", bound=ServiceSettings)


def main_for(name: str, description: str, settings_cls: type[S], build: Callable[[S], Service]) -> Callable[[], None]:
    def main(argv: list[str] | None = None) -> None:
        parser = argparse.ArgumentParser(
            prog=f"fleet-{name}", description=description, epilog=env_help(settings_cls),
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        parser.parse_args(argv)
        try:
            settings = settings_cls()
        except ValidationError as exc:
            parser.exit(2, f"fleet-{name}: invalid settings:\n{exc}\n")
        configure_logging(name, settings.log_level, settings.log_format)
        run(lambda: build(settings))

    return main
