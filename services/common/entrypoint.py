"""The shared ``main`` of every service: --help lists settings; the rest come from the environment."""

from __future__ import annotations

import argparse
import ctypes
import logging
import os
import signal
import sys
from collections.abc import Callable
from typing import TypeVar

from pydantic import ValidationError

from services.common import grpc_polling, native_output, tracing
from services.common.errors import FleetError
from services.common.logging_setup import configure_logging
from services.common.server import Service, run
from services.common.settings import ServiceSettings, env_help
from services.common.tls import TlsConfigError
from services.tasks import registry as tasks

S = TypeVar("S", bound=ServiceSettings)


def die_with_parent() -> None:
    """When started by a supervisor that set FLEET_PARENT_PID, exit (SIGTERM) if it dies (Linux)."""
    parent = os.environ.get("FLEET_PARENT_PID")
    if not parent or not sys.platform.startswith("linux"):
        return
    pr_set_pdeathsig = 1
    ctypes.CDLL("libc.so.6", use_errno=True).prctl(pr_set_pdeathsig, signal.SIGTERM)
    if os.getppid() != int(parent):  # the parent died before the call above
        sys.exit(1)


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
        try:
            for tls in (settings.server_tls(), settings.client_tls()):
                if tls is not None:
                    tls.check()
        except TlsConfigError as exc:
            parser.exit(2, f"fleet-{name}: {exc}\n")
        stream = native_output.capture() if settings.capture_native_output else None
        configure_logging(name, settings.log_level, settings.log_format, stream)
        logging.getLogger(f"fleet.{name}").info("gRPC socket polling: %s", grpc_polling.chosen)
        die_with_parent()
        tracing.configure(name)
        try:
            tasks.load_plugins(settings.task_modules)
            run(lambda: build(settings))
        except FleetError as exc:  # a start-up precondition (e.g. an unmigrated database): say what to do
            logging.getLogger(f"fleet.{name}").error("cannot start: %s", exc.message)
            sys.exit(f"fleet-{name}: cannot start: {exc.message}")
        finally:
            tracing.shutdown()

    # Deployment checks read the settings a console script takes (tests/deploy/test_drift.py).
    main.settings_class = settings_cls  # type: ignore[attr-defined]
    return main
