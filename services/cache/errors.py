"""Redis failures surface as one domain error, ``CacheUnavailable`` (gRPC UNAVAILABLE)."""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from typing import ParamSpec, TypeVar

from redis.exceptions import RedisError

from services.common.errors import CacheUnavailable

P = ParamSpec("P")
T = TypeVar("T")


def redis_call(fn: Callable[P, Awaitable[T]]) -> Callable[P, Awaitable[T]]:
    """Translate any Redis error raised by ``fn`` into CacheUnavailable."""

    @functools.wraps(fn)
    async def wrapper(*args: P.args, **kwargs: P.kwargs) -> T:
        try:
            return await fn(*args, **kwargs)
        except (RedisError, OSError) as exc:
            raise CacheUnavailable(f"Redis is unavailable ({type(exc).__name__}); try again shortly") from exc

    return wrapper
