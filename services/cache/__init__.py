"""The one Redis layer of the fleet: every service reaches Redis through ``FleetCache``."""

from services.cache.fleet_cache import FleetCache, create_redis

__all__ = ["FleetCache", "create_redis"]
