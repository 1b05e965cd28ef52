"""API keys on the client side: making one, and the only form in which one is ever stored or sent."""

from __future__ import annotations

import hashlib
import secrets

KEY_PREFIX = "fk_"


def new_api_key() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(24)


def hash_api_key(api_key: str) -> str:
    """Hex sha256 of a key: what is stored, cached, logged or sent between services in its place."""
    return hashlib.sha256(api_key.encode("utf-8")).hexdigest()


ADMIN_TOKEN_PREFIX = "fa_"


def new_admin_token() -> str:
    """A fleet admin token (FLEET_ADMIN_TOKEN); only its sha256 is given to the registry."""
    return ADMIN_TOKEN_PREFIX + secrets.token_urlsafe(32)
