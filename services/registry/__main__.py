"""Entry point: ``fleet-registry`` / ``python -m services.registry``; ``fleet-registry migrate`` migrates its database."""

from __future__ import annotations

from services.common import grpc_polling

grpc_polling.choose()  # before anything imports grpc: gRPC core reads the choice once, on import

import asyncio  # noqa: E402 - after the choice above
import sys

from pydantic import ValidationError

from services.common.entrypoint import main_for
from services.common.errors import FleetError
from services.registry.server import build
from services.registry.settings import RegistrySettings
from services.registry.store import migrate
from services.registry.store.engine import create_engine, safe_url

serve = main_for("registry", "The fleet's model registry: ids, aliases, metadata, workspaces, API-key hashes. "
                 "`fleet-registry migrate` migrates its database (FLEET_REGISTRY_DATABASE_URL) and exits.",
                 RegistrySettings, build)


async def run_migrations(url: str) -> str:
    engine = create_engine(url)
    try:
        await migrate.upgrade(engine)
        return await migrate.current_revision(engine) or ""
    finally:
        await engine.dispose()


def migrate_main() -> None:
    try:
        settings = RegistrySettings()
    except ValidationError as exc:
        sys.exit(f"fleet-registry migrate: invalid settings:\n{exc}")
    try:
        revision = asyncio.run(run_migrations(settings.database_url))
    except (FleetError, OSError, ValueError) as exc:
        sys.exit(f"fleet-registry migrate: {getattr(exc, 'message', exc)}")
    except Exception as exc:  # noqa: BLE001 - database drivers raise their own types
        sys.exit(f"fleet-registry migrate: {safe_url(settings.database_url)}: {type(exc).__name__}: {exc}")
    print(f"registry database {safe_url(settings.database_url)} is at revision {revision} (head)")


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    if args[:1] == ["migrate"]:
        migrate_main()
        return
    serve(args)


main.settings_class = RegistrySettings  # type: ignore[attr-defined] - read by tests/deploy/test_drift.py


if __name__ == "__main__":
    main()
