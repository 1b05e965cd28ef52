"""Image URLs: malformed ones refused, one deadline per fetch, the vetted address connected to, redirects vetted."""

from __future__ import annotations

import asyncio
import ipaddress
import ssl
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from services.common.errors import DeadlineExceeded, InvalidArgument, InvalidImage
from services.local.dev_tls import issue_ca, issue_cert, write_cert, write_key
from services.common.url_fetch import UrlFetcher, is_public, parse_image_url

BODY = b"image bytes " * 100


class Site:
    """A loopback HTTP server: /img, /drip (one byte at a time), /to?<url> (a redirect), /loop (redirects forever)."""

    def __init__(self, host: str = "127.0.0.1", tls: ssl.SSLContext | None = None) -> None:
        self.hosts: list[str] = []
        site = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:  # noqa: N802
                site.hosts.append(self.headers.get("Host", ""))
                path, _, query = self.path.partition("?")
                if path == "/img":
                    self.send_response(200)
                    self.send_header("Content-Length", str(len(BODY)))
                    self.end_headers()
                    self.wfile.write(BODY)
                elif path == "/drip":
                    self.send_response(200)
                    self.send_header("Content-Length", "100000")
                    self.end_headers()
                    try:
                        for _ in range(100000):
                            self.wfile.write(b"x")
                            self.wfile.flush()
                            time.sleep(0.05)
                    except OSError:
                        return
                elif path in ("/to", "/loop"):
                    self.send_response(302)
                    self.send_header("Location", query if path == "/to" else "/loop")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                else:
                    self.send_error(404)

        self.httpd = ThreadingHTTPServer((host, 0), Handler)
        if tls is not None:
            self.httpd.socket = tls.wrap_socket(self.httpd.socket, server_side=True)
        self.port = self.httpd.server_port
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def site() -> Iterator[Site]:
    s = Site()
    yield s
    s.stop()


class Resolver:
    """Stands in for DNS: maps names to addresses and counts lookups."""

    def __init__(self, table: dict[str, list[str]]) -> None:
        self.table, self.calls = table, 0

    async def __call__(self, host: str, port: int) -> list[str]:
        self.calls += 1
        if host not in self.table:
            raise OSError("name does not resolve")
        return self.table[host]


def fetcher(resolver: Resolver | None = None, allow_private: bool = True, timeout_s: float = 5.0) -> UrlFetcher:
    if resolver is None:
        return UrlFetcher(True, allow_private, timeout_s, 1 << 20)
    return UrlFetcher(True, allow_private, timeout_s, 1 << 20, resolver=resolver)


@pytest.mark.parametrize("url", [
    "http://127.0.0.1:99999/", "http://[::1/", "http://host:0/x", "ftp://example.com/a.jpg", "http:///a.jpg",
    "http://user:pw@example.com/a.jpg", "http://a\nb/", "h" * 5000, "", "not a url", "http://[::1]:99999/",
    "http://xn--/", "https://[fe80::1%25eth0]:80/",
])
async def test_malformed_image_urls_are_invalid_argument(url: str) -> None:
    with pytest.raises(InvalidArgument) as err:
        await asyncio.wait_for(fetcher(Resolver({}), allow_private=False).fetch(url), 10)
    assert len(err.value.message) <= 200


async def test_a_slow_drip_is_cut_at_one_deadline_for_the_whole_fetch(site: Site) -> None:
    started = time.monotonic()
    with pytest.raises(DeadlineExceeded, match="longer than 1s"):
        # Each byte arrives well within any per-read timeout; only a deadline for the whole fetch ends it.
        await asyncio.wait_for(fetcher(timeout_s=1.0).fetch(f"http://127.0.0.1:{site.port}/drip"), 15)
    elapsed = time.monotonic() - started
    print(f"slow drip cut after {elapsed:.2f}s (deadline 1s)")
    assert elapsed < 5


async def test_the_vetted_address_is_connected_to_without_resolving_again(site: Site) -> None:
    # "images.invalid" never resolves through real DNS (RFC 6761): only the vetted address can be reached.
    resolver = Resolver({"images.invalid": ["127.0.0.1"]})
    body = await fetcher(resolver).fetch(f"http://images.invalid:{site.port}/img")
    assert body == BODY
    assert resolver.calls == 1
    assert site.hosts == [f"images.invalid:{site.port}"]  # the original Host header travels


async def test_https_keeps_the_name_for_sni_and_certificate_checks(tmp_path) -> None:  # noqa: ANN001
    ca_key, ca_cert = issue_ca()
    key, cert = issue_cert(ca_key, ca_cert, "images", ["images.invalid"])  # the name only: no IP in the certificate
    write_cert(tmp_path / "ca.pem", ca_cert), write_cert(tmp_path / "cert.pem", cert), write_key(tmp_path / "key.pem", key)
    server_context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_context.load_cert_chain(tmp_path / "cert.pem", tmp_path / "key.pem")
    names: list[str | None] = []
    server_context.sni_callback = lambda sock, name, ctx: names.append(name)
    site = Site(tls=server_context)
    try:
        f = fetcher(Resolver({"images.invalid": ["127.0.0.1"]}))
        f._ssl = ssl.create_default_context(cafile=str(tmp_path / "ca.pem"))
        assert await f.fetch(f"https://images.invalid:{site.port}/img") == BODY
        assert names == ["images.invalid"] and site.hosts == [f"images.invalid:{site.port}"]
        wrong = fetcher(Resolver({"other.invalid": ["127.0.0.1"]}))  # the certificate does not name it
        wrong._ssl = f._ssl
        with pytest.raises(InvalidArgument, match="could not be fetched"):
            await wrong.fetch(f"https://other.invalid:{site.port}/img")
    finally:
        site.stop()


async def test_only_hosts_on_the_allow_list_are_fetched_every_redirect_included(site: Site) -> None:
    resolver = Resolver({"img.example.invalid": ["127.0.0.1"], "example.invalid": ["127.0.0.1"],
                         "other.invalid": ["127.0.0.1"]})
    allowed = UrlFetcher(True, True, 5.0, 1 << 20, resolver=resolver, hosts=(".example.invalid", " 127.0.0.1 "))
    for host in ("img.example.invalid", "example.invalid", "127.0.0.1"):
        assert await allowed.fetch(f"http://{host}:{site.port}/img") == BODY
    for url in (f"http://other.invalid:{site.port}/img", f"http://localhost:{site.port}/img",
                f"http://127.0.0.1:{site.port}/to?http://other.invalid:{site.port}/img"):  # a redirect off the list
        with pytest.raises(InvalidArgument, match="allow-list"):
            await allowed.fetch(url)
    assert await fetcher(resolver).fetch(f"http://other.invalid:{site.port}/img") == BODY  # no list: any host


async def test_a_name_resolving_to_any_private_address_is_refused() -> None:
    resolver = Resolver({"mixed.invalid": ["8.8.8.8", "10.0.0.7"], "inside.invalid": ["127.0.0.1"]})
    for host in ("mixed.invalid", "inside.invalid", "127.0.0.1", "[::1]", "[::ffff:127.0.0.1]", "169.254.169.254"):
        with pytest.raises(InvalidArgument, match="non-public address"):
            await fetcher(resolver, allow_private=False).fetch(f"http://{host}/a.jpg")


@pytest.mark.parametrize("address, public", [
    ("8.8.8.8", True), ("2606:4700::1111", True), ("127.0.0.1", False), ("10.1.2.3", False),
    ("100.64.0.1", False), ("169.254.169.254", False), ("224.0.0.1", False), ("::1", False),
    ("::ffff:10.0.0.1", False), ("2002:7f00:1::1", False), ("64:ff9b::7f00:1", False), ("fd00::1", False),
    ("0.0.0.0", False),
])
def test_public_addresses(address: str, public: bool) -> None:
    assert is_public(ipaddress.ip_address(address)) is public


class RefusingSecondLoopback(UrlFetcher):
    """Allows 127.0.0.1 (the test site) but not 127.0.0.2, as a worker refuses private addresses."""

    def address_allowed(self, addr):  # noqa: ANN001, ANN201
        return str(addr) == "127.0.0.1"


async def test_redirects_are_vetted_hop_by_hop(site: Site) -> None:
    base = f"http://127.0.0.1:{site.port}"
    f = RefusingSecondLoopback(True, False, 5.0, 1 << 20)
    assert await f.fetch(f"{base}/to?/img") == BODY  # a relative redirect to an allowed place is followed
    assert await f.fetch(f"{base}/to?{base}/to?/img") == BODY
    with pytest.raises(InvalidArgument, match="non-public address"):
        await f.fetch(f"{base}/to?http://127.0.0.2:{site.port}/img")
    with pytest.raises(InvalidArgument, match="http:// or https://"):
        await f.fetch(f"{base}/to?file:///etc/passwd")
    with pytest.raises(InvalidArgument, match="redirects more than"):
        await f.fetch(f"{base}/loop")


async def test_bodies_over_the_limit_are_refused(site: Site) -> None:
    small = UrlFetcher(True, True, 5.0, 100)
    with pytest.raises(InvalidImage, match="larger than 100 bytes"):
        await small.fetch(f"http://127.0.0.1:{site.port}/img")


def test_parse_keeps_what_httpx_will_request() -> None:
    url = parse_image_url("https://Example.COM:8443/a b.jpg?x=1")
    assert (url.scheme, url.host, url.port) == ("https", "example.com", 8443)
