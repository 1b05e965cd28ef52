"""Fetching images by URL, with the address vetted once and connected to (SSRF guard).

- The URL is parsed by the same parser that makes the request (httpx); anything malformed
  (bad port, brackets, characters, credentials, other schemes) is INVALID_ARGUMENT.
- The host must be on the allow-list when one is configured (exact names, or ``.example.com`` for a
  domain and its subdomains), every redirect hop included.
- The host is resolved once; every address it resolves to must be public (unless the service
  allows private ones), and the connection goes to that vetted address, with the original
  Host header and TLS server name: the name is never resolved a second time (no DNS rebinding).
- Redirects are followed by hand, each hop parsed, resolved and vetted the same way.
- One deadline covers the whole fetch (resolution, connection, every hop, the whole body),
  so a server that drips bytes cannot hold a request for longer than ``timeout_s``.

The workers fetch the URLs of ``Infer`` requests; the gateway fetches a workflow's image URLs (a run needs
the bytes itself: it decodes each image once and may crop or draw on it), each with its own settings of the
same names (``FLEET_WORKER_URL_*``, ``FLEET_GATEWAY_URL_*``).
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import ssl
from collections.abc import Awaitable, Callable

import httpx

from services.common.errors import DeadlineExceeded, InvalidArgument, InvalidImage
from services.common.messages import quoted
from services.common.redact import redact_url

MAX_URL_CHARS = 4096
MAX_REDIRECTS = 3
_REDIRECTS = frozenset({301, 302, 303, 307, 308})
_NAT64 = ipaddress.ip_network("64:ff9b::/96")

Resolver = Callable[[str, int], Awaitable[list[str]]]
Address = ipaddress.IPv4Address | ipaddress.IPv6Address


async def resolve(host: str, port: int) -> list[str]:
    """The addresses ``host`` resolves to (the system resolver, off the event loop)."""
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


def parse_image_url(text: str) -> httpx.URL:
    """A well-formed http(s) URL with a host and a valid port, or InvalidArgument."""
    if not text or len(text) > MAX_URL_CHARS:
        raise InvalidArgument(f"image URLs must be 1 to {MAX_URL_CHARS} characters")
    try:
        url = httpx.URL(text)
        port = url.port
    except (httpx.InvalidURL, ValueError, TypeError, UnicodeError):
        raise InvalidArgument(f"the image URL {quoted(redact_url(text))} is malformed") from None
    if url.scheme not in ("http", "https") or not url.raw_host:
        raise InvalidArgument("image URLs must be http:// or https:// with a host")
    if url.userinfo:
        raise InvalidArgument("image URLs must not carry credentials (user:password@)")
    if port is not None and not 1 <= port <= 65535:
        raise InvalidArgument(f"the image URL's port {port} is not between 1 and 65535")
    try:
        url.raw_host.decode("ascii")
    except UnicodeDecodeError:
        raise InvalidArgument(f"the image URL {quoted(redact_url(text))} is malformed") from None
    return url


def _embedded_ipv4(addr: Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 one stands for (mapped, 6to4, Teredo, NAT64), if any."""
    if not isinstance(addr, ipaddress.IPv6Address):
        return None
    if addr.ipv4_mapped is not None:
        return addr.ipv4_mapped
    if addr.sixtofour is not None:
        return addr.sixtofour
    if addr.teredo is not None:
        return addr.teredo[1]
    if addr in _NAT64:
        return ipaddress.IPv4Address(int(addr) & 0xFFFFFFFF)
    return None


def is_public(addr: Address) -> bool:
    """A globally routable unicast address (and so is any IPv4 address it embeds)."""
    inner = _embedded_ipv4(addr)
    if inner is not None and not is_public(inner):
        return False
    return addr.is_global and not addr.is_multicast


def _redirect_target(base: httpx.URL, location: str) -> httpx.URL:
    try:
        joined = str(base.join(location))
    except (httpx.InvalidURL, ValueError, TypeError, UnicodeError):
        raise InvalidArgument(f"the image URL redirects to a malformed URL {quoted(redact_url(location))}") from None
    return parse_image_url(joined)


def host_allowed(host: str, hosts: tuple[str, ...]) -> bool:
    """``host`` is on the allow-list (empty: every host): an exact name, or under a ``.domain`` entry."""
    host = host.lower().rstrip(".")
    return not hosts or any(host == h or (h.startswith(".") and (host.endswith(h) or host == h[1:]))
                            for h in hosts)


class UrlFetcher:
    def __init__(self, enabled: bool, allow_private: bool, timeout_s: float, max_bytes: int,
                 resolver: Resolver = resolve, hosts: tuple[str, ...] = ()) -> None:
        self.enabled, self.allow_private = enabled, allow_private
        self.hosts = tuple(h.strip().lower() for h in hosts if h.strip())
        self.timeout_s, self.max_bytes = timeout_s, max_bytes
        self.resolver = resolver
        self._ssl: ssl.SSLContext | None = None

    @property
    def ssl_context(self) -> ssl.SSLContext:
        """Made once (loading the system's roots takes a while); every fetch gets a fresh client over it."""
        if self._ssl is None:
            self._ssl = ssl.create_default_context()
        return self._ssl

    def address_allowed(self, addr: Address) -> bool:
        return self.allow_private or is_public(addr)

    async def vet(self, url: httpx.URL) -> list[str]:
        """The addresses to connect to for ``url``: all of them allowed, or InvalidArgument."""
        host = url.raw_host.decode("ascii")
        if not host_allowed(host, self.hosts):
            raise InvalidArgument(f"image URL host {quoted(host)} is not on this service's URL allow-list "
                                  "(*_URL_HOSTS); send the image bytes instead")
        port = url.port or (443 if url.scheme == "https" else 80)
        try:
            literal = ipaddress.ip_address(host)
        except ValueError:
            literal = None
        if literal is not None:
            addresses = [str(literal)]
        else:
            try:
                addresses = await self.resolver(host, port)
            except (OSError, UnicodeError):
                raise InvalidArgument(f"image URL host {quoted(host)} does not resolve") from None
            if not addresses:
                raise InvalidArgument(f"image URL host {quoted(host)} does not resolve")
        for address in addresses:
            if not self.address_allowed(ipaddress.ip_address(address.split("%", 1)[0])):
                raise InvalidArgument(
                    f"image URL host {quoted(host)} resolves to a non-public address; "
                    "send the image bytes instead (or allow private URLs: *_URL_ALLOW_PRIVATE)"
                )
        return addresses

    async def fetch(self, url: str) -> bytes:
        if not self.enabled:
            raise InvalidArgument("this fleet does not accept image URLs; send the image bytes")
        target = parse_image_url(url)
        try:
            async with asyncio.timeout(self.timeout_s):
                async with httpx.AsyncClient(verify=self.ssl_context, trust_env=False, follow_redirects=False,
                                             timeout=self.timeout_s) as client:
                    for _ in range(MAX_REDIRECTS + 1):
                        body, location = await self._get(client, target)
                        if body is not None:
                            return body
                        target = _redirect_target(target, location)
                    raise InvalidArgument(f"the image URL redirects more than {MAX_REDIRECTS} times")
        except (TimeoutError, httpx.TimeoutException):
            raise DeadlineExceeded(
                f"fetching the image URL took longer than {self.timeout_s:g}s; send the image bytes instead"
            ) from None

    async def _get(self, client: httpx.AsyncClient, url: httpx.URL) -> tuple[bytes | None, str]:
        """GET ``url`` at its vetted address: (the body, "") or, for a redirect, (None, its Location)."""
        addresses = await self.vet(url)
        host = url.raw_host.decode("ascii")
        extensions = {"sni_hostname": host} if url.scheme == "https" else {}
        last: httpx.TransportError | None = None
        for address in addresses[:3]:
            pinned = url.copy_with(host=address)
            request = client.build_request("GET", pinned, headers={"Host": url.netloc.decode("ascii")},
                                           extensions=extensions)
            try:
                response = await client.send(request, stream=True)
            except httpx.ConnectError as exc:  # try the host's next vetted address
                last = exc
                continue
            except httpx.TimeoutException:
                raise
            except httpx.HTTPError as exc:
                raise InvalidArgument(f"the image URL could not be fetched: {type(exc).__name__}") from None
            try:
                return await self._read(response)
            finally:
                await response.aclose()
        raise InvalidArgument(f"the image URL could not be fetched: {type(last).__name__}")

    async def _read(self, response: httpx.Response) -> tuple[bytes | None, str]:
        if response.status_code in _REDIRECTS and "location" in response.headers:
            return None, response.headers["location"]
        if response.status_code != 200:
            raise InvalidArgument(f"fetching the image URL answered HTTP {response.status_code}")
        declared = response.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > self.max_bytes:
            raise InvalidImage(f"the image at the URL is larger than {self.max_bytes} bytes")
        chunks, size = [], 0
        try:
            async for chunk in response.aiter_bytes():
                size += len(chunk)
                if size > self.max_bytes:
                    raise InvalidImage(f"the image at the URL is larger than {self.max_bytes} bytes")
                chunks.append(chunk)
        except httpx.TimeoutException:
            raise
        except httpx.HTTPError as exc:
            raise InvalidArgument(f"the image URL could not be fetched: {type(exc).__name__}") from None
        return b"".join(chunks), ""
