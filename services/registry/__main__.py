"""Entry point: ``fleet-registry`` / ``python -m services.registry``."""

from __future__ import annotations

from services.common.entrypoint import main_for
from services.registry.server import build
from services.registry.settings import RegistrySettings

main = main_for("registry", "The fleet's model registry: ids, aliases, metadata, workspaces, API-key hashes.",
                RegistrySettings, build)

if __name__ == "__main__":
    main()
