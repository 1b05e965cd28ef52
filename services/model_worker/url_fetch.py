"""Fetching images by URL, refusing private addresses unless allowed (SSRF guard)."""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from urllib.parse import urlparse

import httpx

from services.common.errors import InvalidArgument, InvalidImage, Unavailable


class UrlFetcher:
    def __init__(self, enabled: bool, allow_private: bool, timeout_s: float, max_bytes: int) -> None:
        self.enabled, self.allow_private = enabled, allow_private
        self.timeout_s, self.max_bytes = timeout_s, max_bytes

    async def _check_host(self, host: str, port: int) -> None:
        try:
            infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except socket.gaierror:
            raise InvalidArgument(f"image URL host {host!r} does not resolve") from None
        for info in infos:
            addr = ipaddress.ip_address(info[4][0])
            if not addr.is_global and not self.allow_private:
                raise InvalidArgument(
                    f"image URL host {host!r} resolves to a non-public address; "
                    "send the image bytes instead (or enable private URLs on the worker)"
                )

    async def fetch(self, url: str) -> bytes:
        if not self.enabled:
            raise InvalidArgument("this fleet does not accept image URLs; send the image bytes")
        parsed = urlparse(url)
        if parsed.scheme not in ("http", "https") or not parsed.hostname:
            raise InvalidArgument("image URLs must be http:// or https:// with a host")
        await self._check_host(parsed.hostname, parsed.port or (443 if parsed.scheme == "https" else 80))
        try:
            async with httpx.AsyncClient(timeout=self.timeout_s, follow_redirects=False) as client:
                async with client.stream("GET", url) as response:
                    if response.status_code != 200:
                        raise InvalidArgument(f"fetching the image URL answered HTTP {response.status_code}")
                    chunks, size = [], 0
                    async for chunk in response.aiter_bytes():
                        size += len(chunk)
                        if size > self.max_bytes:
                            raise InvalidImage(f"the image at the URL is larger than {self.max_bytes} bytes")
                        chunks.append(chunk)
        except httpx.TimeoutException:
            raise Unavailable(f"fetching the image URL timed out after {self.timeout_s}s") from None
        except httpx.HTTPError as exc:
            raise InvalidArgument(f"the image URL could not be fetched: {type(exc).__name__}") from None
        return b"".join(chunks)
