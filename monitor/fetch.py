"""Fetch: one feed's bytes over HTTP. I/O: this is the network edge, and the only module that
talks to httpx; its errors are wrapped here into FetchError with the cause chained.

    Fetcher(...).fetch(spec, state) -> FetchResult            (200 with a body, or 304)
                                    raises FetchError(retryable, retry_after, status)
    backoff_delay(interval, error_streak, retry_after, cap)   pure: seconds to the next poll

One `Fetcher` owns one shared `httpx.AsyncClient` (connection pooling across every feed). Its
transport splits the connection pool in shards of about POOL_SHARD connections, a feed always in
the same shard (`_ShardedTransport`): httpcore's pool walks every connection, and for each idle
one every connection again, on each request it queues or ends, so one pool of 32 connections
cost ~1,100 calls per request (docs/bench-poll.md). Each fetch is bounded on every axis a
hostile server can stretch:

- time: `asyncio.timeout(spec.timeout)` around the whole fetch, redirects and body included
  (httpx's own timeout is per read, so a server dripping a byte a second would never trip it);
- bytes: Content-Length above the raw cap is refused before reading, the streamed body is counted
  as it arrives, and gzip/deflate are decoded here with a bounded zlib decompressor (httpx's
  decoder has no output cap), stopping at the decoded cap;
- redirects: followed by hand, at most `max_redirects`, http/https only on every hop, loops
  refused; with `block_private=True` every hop's host must resolve to public addresses only.
- addresses (HAZARDS 18): unless `allow_private=True` (config `poll.allow_private`), a redirect
  may not lead to a loopback, link-local (169.254.169.254, the cloud metadata address),
  private or otherwise non-public address of a class the configured URL itself does not
  resolve to. A desk may poll its own internal feed server on purpose (its configured URL is
  private, and its redirects may stay inside that class), but a public feed can never bounce
  the fetcher onto the host, the LAN or the metadata service (SSRF by redirect). The target is
  resolved and refused before any connection is made. (httpx resolves the name again when it
  connects, so a DNS answer that changes between the two is not caught: the check bounds
  redirects, not DNS rebinding.)

Answers: 304 is a result (validators kept); 429/503 retryable with Retry-After (seconds or an
HTTP date, capped); 404/410 and other 4xx not retryable (the feed still backs off, never dropped);
5xx retryable; a 200 with an empty body is an error, never "the feed is now empty".
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import ssl
import time
import zlib
from collections.abc import Callable, Iterator
from urllib.parse import urljoin, urlsplit

import httpx

from monitor import __version__
from monitor.errors import FetchError
from monitor.models import FeedSpec, FeedState, FetchResult
from monitor.retryafter import parse_retry_after
from monitor.urls import url_problem

MiB = 1024 * 1024
DEFAULT_USER_AGENT = f"monitor/{__version__} (Arabic news monitor; +https://example.org/monitor)"
ACCEPT = (
    "application/rss+xml, application/atom+xml, application/rdf+xml;q=0.9, "
    "application/xml;q=0.9, text/xml;q=0.9, */*;q=0.5"
)
REDIRECTS = frozenset({301, 302, 303, 307, 308})
MAX_VALIDATOR = 1024  # characters of an ETag or Last-Modified kept to send back


def _redirect_target(feed: str, url: str, location: str) -> str:
    """The absolute URL a Location header points to. Raises FetchError (not retryable) when
    it could not be connected to (`url_problem`): a port out of range raised ValueError, and
    "//[::1]99999" an OverflowError from the socket, both of which escaped the fetch."""
    try:
        target = urljoin(url, location.strip())
    except ValueError as exc:
        problem: str | None = str(exc)
    else:
        problem = url_problem(target)
    if problem is not None:
        why = f"redirect to an invalid URL ({problem}): {location.strip()[:200]!r}"
        raise FetchError(feed, why, retryable=False)
    return target


def validator(value: str | None) -> str | None:
    """An ETag or Last-Modified value fit to send back as a request header: printable ASCII,
    at most MAX_VALIDATOR characters. Anything else is dropped (the feed is then told apart by
    its body hash): HTTP clients refuse to send a non-ASCII header value, so a server's
    '"café"' ETag, kept, made every later poll of that feed fail before it left."""
    if not value or len(value) > MAX_VALIDATOR or not value.isascii() or not value.isprintable():
        return None
    return value


_RETRY_STATUSES = frozenset({408, 425, 429, 500, 502, 503, 504})


def _size(n: int) -> str:
    return f"{n / MiB:g} MiB" if n >= MiB else f"{n} bytes"


def _secs(t: float) -> str:
    return f"{t:g}s"


def backoff_delay(
    interval: float, error_streak: int, retry_after: float | None, cap: float
) -> float:
    """Seconds until a feed's next poll. With no errors, its interval. After n consecutive
    failures, interval x 2**n, but never more than `cap` (or the interval, if that is longer: a
    feed is never polled more often than configured, and never dropped). A server's Retry-After
    is honoured when it asks for longer, within the same ceiling."""
    ceiling = max(cap, interval)
    delay = interval if error_streak <= 0 else interval * 2.0 ** min(error_streak, 60)
    if retry_after is not None and retry_after > delay:
        delay = retry_after
    return min(delay, ceiling)


class _Decoder:
    """Content-Encoding decoding with an output cap: memory stays bounded however small the
    compressed input."""

    def __init__(self, encoding: str, limit: int) -> None:
        self.limit = limit
        self.size = 0
        self._raw_deflate = False
        enc = encoding.strip().lower()
        if enc in ("", "identity"):
            self._z = None
        elif enc in ("gzip", "x-gzip"):
            self._z = zlib.decompressobj(16 + zlib.MAX_WBITS)
        elif enc == "deflate":
            self._z = zlib.decompressobj(zlib.MAX_WBITS)  # zlib-wrapped; raw deflate on failure
        else:
            raise ValueError(f"unsupported Content-Encoding {encoding[:100]!r}")

    def _check(self, n: int) -> None:
        self.size += n
        if self.size > self.limit:
            raise OverflowError(f"decoded body exceeds {_size(self.limit)}")

    def feed(self, chunk: bytes) -> bytes:
        if self._z is None:
            self._check(len(chunk))
            return chunk
        out = bytearray()
        data = chunk
        while data:
            room = self.limit - self.size + 1
            try:
                piece = self._z.decompress(data, room)
            except zlib.error:
                if self.size == 0 and not self._raw_deflate and not out:
                    # "deflate" servers often send raw deflate without the zlib header.
                    self._raw_deflate = True
                    self._z = zlib.decompressobj(-zlib.MAX_WBITS)
                    piece = self._z.decompress(data, room)
                else:
                    raise
            self._check(len(piece))
            out += piece
            data = self._z.unconsumed_tail
            if self._z.eof:
                break
        return bytes(out)

    def flush(self) -> bytes:
        if self._z is None:
            return b""
        piece = self._z.flush(self.limit - self.size + 1)
        self._check(len(piece))
        return piece


def _causes(exc: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    cur: BaseException | None = exc
    while cur is not None and id(cur) not in seen:
        seen.add(id(cur))
        yield cur
        cur = cur.__cause__ or cur.__context__


def _connect_message(exc: BaseException) -> str:
    """A short reason for a failed connection, from the whole chain of causes."""
    chain = list(_causes(exc))
    for e in chain:
        if isinstance(e, ssl.SSLCertVerificationError):
            return "TLS certificate verify failed"
        if isinstance(e, ConnectionRefusedError):
            return "connection refused"
        if isinstance(e, socket.gaierror):
            return "DNS lookup failed"
    text = " ".join(str(e) for e in chain).lower()
    if "certificate_verify_failed" in text or "certificate verify failed" in text:
        return "TLS certificate verify failed"
    if "refused" in text:
        return "connection refused"
    if "name or service not known" in text or "nodename nor servname" in text:
        return "DNS lookup failed"
    for e in chain:
        if isinstance(e, ssl.SSLError):
            return f"TLS error: {e}"
    if "unreachable" in text:
        return "network unreachable"
    return f"connect error: {exc or type(exc).__name__}"


def _ip(addr: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    ip = ipaddress.ip_address(addr.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    return ip


def _is_public(addr: str) -> bool:
    ip = _ip(addr)
    return ip.is_global and not ip.is_multicast


def address_class(addr: str) -> str:
    """public, loopback, link-local, private or reserved (multicast, unspecified, ...). Pure."""
    ip = _ip(addr)
    if ip.is_loopback:
        return "loopback"
    if ip.is_link_local:
        return "link-local"
    if ip.is_global and not ip.is_multicast:
        return "public"
    if ip.is_private and not ip.is_unspecified and not ip.is_multicast:
        return "private"
    return "reserved"


def redirect_refusal(origin: frozenset[str], target: frozenset[str]) -> str | None:
    """Why a redirect from a feed whose configured URL resolves to address classes `origin`
    to a host resolving to `target` is refused, or None when it may be followed. Pure.
    Public targets are always fine; a non-public one only in a class the origin shares."""
    bad = sorted(c for c in target if c != "public" and c not in origin)
    if not bad:
        return None
    return f"redirect to a {'/'.join(bad)} address refused (set poll.allow_private to allow)"


POOL_SHARD = 8  # connections per pool shard


class _ShardedTransport(httpx.AsyncBaseTransport):
    """Several httpcore pools behind one transport, a request's shard chosen by its URL (a
    feed's polls reuse its shard's connections). Each shard may open up to twice its share,
    so an uneven spread waits for nothing the global limits (the Fetcher's callers) allow."""

    def __init__(self, max_connections: int) -> None:
        count = max(1, max_connections // POOL_SHARD)
        per = 2 * -(-max_connections // count)
        limits = httpx.Limits(max_connections=per, max_keepalive_connections=per)
        self._shards = [httpx.AsyncHTTPTransport(limits=limits) for _ in range(count)]

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        url = request.url
        key = f"{url.host}:{url.port}{url.raw_path.decode('ascii', 'replace')}"
        shard = self._shards[zlib.crc32(key.encode()) % len(self._shards)]
        return await shard.handle_async_request(request)

    async def aclose(self) -> None:
        for shard in self._shards:
            await shard.aclose()


DRAIN_BYTES = 64 * 1024


async def _drain(response: httpx.Response) -> None:
    """Read a body we do not need to its end (at most DRAIN_BYTES), so that httpcore returns
    the connection to the pool instead of closing it: a 304 has no body, but until its end is
    read the connection is mid-response. Measured on benchmarks/poll.py's all-304 pass: without
    this, every request opened a new TCP connection (docs/bench-poll.md)."""
    read = 0
    async for chunk in response.aiter_raw():
        read += len(chunk)
        if read > DRAIN_BYTES:
            return  # not worth reading: aclose() drops the connection


class Fetcher:
    """Fetches feeds through one shared `httpx.AsyncClient`. Inject `transport` (or a whole
    `client`) to swap the network layer in tests; the Fetcher closes only a client it made."""

    def __init__(
        self,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        client: httpx.AsyncClient | None = None,
        max_redirects: int = 5,
        max_raw_bytes: int = 10 * MiB,
        max_decoded_bytes: int = 10 * MiB,
        max_retry_after: float = 6 * 3600.0,
        user_agent: str = DEFAULT_USER_AGENT,
        block_private: bool = False,
        allow_private: bool = False,
        max_connections: int = 64,
        max_per_host: int | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.max_per_host = max_per_host
        self._slots_loop: asyncio.AbstractEventLoop | None = None
        self._slots: dict[str, asyncio.Semaphore] = {}
        self.max_redirects = max_redirects
        self.max_raw_bytes = max_raw_bytes
        self.max_decoded_bytes = max_decoded_bytes
        self.max_retry_after = max_retry_after
        self.user_agent = user_agent
        self.block_private = block_private
        self.allow_private = allow_private
        self._clock = clock
        self._owns_client = client is None
        self._client = client or httpx.AsyncClient(
            transport=transport or _ShardedTransport(max_connections),
            follow_redirects=False,
            trust_env=False,  # proxies only when configured (HAZARDS 22)
            limits=httpx.Limits(
                max_connections=max_connections, max_keepalive_connections=max_connections
            ),
            timeout=httpx.Timeout(30.0),
        )

    async def aclose(self) -> None:
        if self._owns_client:
            await self._client.aclose()

    async def __aenter__(self) -> Fetcher:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    def _headers(self, state: FeedState) -> dict[str, str]:
        headers = {
            "User-Agent": self.user_agent,
            "Accept": ACCEPT,
            "Accept-Encoding": "gzip, deflate",
        }
        etag, modified = validator(state.etag), validator(state.last_modified)
        if etag:  # a value stored before validators were checked is checked here too
            headers["If-None-Match"] = etag
        if modified:
            headers["If-Modified-Since"] = modified
        return headers

    async def _classes(self, feed: str, url: str) -> frozenset[str]:
        """The address classes a URL's host resolves to (an IP literal needs no DNS)."""
        parts = urlsplit(url)
        host = parts.hostname or ""
        try:
            infos = await asyncio.get_running_loop().getaddrinfo(
                host,
                parts.port or (443 if parts.scheme == "https" else 80),
                type=socket.SOCK_STREAM,
            )
        except OSError as exc:
            raise FetchError(feed, f"DNS lookup failed for {host}") from exc
        return frozenset(address_class(str(info[4][0])) for info in infos)

    async def _check_host(self, feed: str, url: str) -> None:
        if await self._classes(feed, url) != {"public"}:
            host = urlsplit(url).hostname or ""
            raise FetchError(
                feed, f"refused: {host} resolves to a non-public address", retryable=False
            )

    async def _check_redirect(self, feed: str, target: str) -> None:
        classes = await self._classes(feed, target)
        if classes == {"public"}:
            return
        refusal = redirect_refusal(await self._classes(feed, feed), classes)
        if refusal is not None:
            host = urlsplit(target).hostname or ""
            raise FetchError(feed, f"{refusal}: {host}", retryable=False)

    def _host_slots(self, url: str) -> asyncio.Semaphore | None:
        if self.max_per_host is None:
            return None
        loop = asyncio.get_running_loop()
        if self._slots_loop is not loop:  # semaphores belong to one event loop
            self._slots_loop, self._slots = loop, {}
        host = (urlsplit(url).hostname or "").lower()
        slots = self._slots.get(host)
        if slots is None:
            slots = self._slots[host] = asyncio.Semaphore(self.max_per_host)
        return slots

    async def fetch(self, spec: FeedSpec, state: FeedState) -> FetchResult:
        """Fetch one feed with conditional GET, within `spec.timeout` for the whole exchange.
        At most `max_per_host` fetches to one host run at once (an outlet serving dozens of
        feeds from one host is not hit by all of them together); the wait for a slot is not
        counted against the deadline."""
        slots = self._host_slots(spec.url)
        if slots is None:
            return await self._fetch_within_deadline(spec, state)
        async with slots:
            return await self._fetch_within_deadline(spec, state)

    async def _fetch_within_deadline(self, spec: FeedSpec, state: FeedState) -> FetchResult:
        started = time.monotonic()
        try:
            async with asyncio.timeout(spec.timeout):
                return await self._fetch(spec, state, started)
        except TimeoutError as exc:
            raise FetchError(spec.url, f"timed out after {_secs(spec.timeout)}") from exc
        except httpx.TimeoutException as exc:
            raise FetchError(spec.url, f"timed out after {_secs(spec.timeout)}") from exc
        except httpx.ConnectError as exc:
            raise FetchError(spec.url, _connect_message(exc)) from exc
        except (httpx.UnsupportedProtocol, httpx.InvalidURL) as exc:
            raise FetchError(spec.url, f"invalid URL: {exc}", retryable=False) from exc
        except httpx.RemoteProtocolError as exc:
            raise FetchError(spec.url, f"protocol error: {exc}") from exc
        except httpx.HTTPError as exc:
            raise FetchError(spec.url, f"{type(exc).__name__}: {exc}") from exc
        except OSError as exc:
            raise FetchError(spec.url, _connect_message(exc)) from exc

    async def _fetch(self, spec: FeedSpec, state: FeedState, started: float) -> FetchResult:
        feed = spec.url
        url = spec.url
        seen = {url}
        headers = self._headers(state)
        hops = 0
        while True:
            scheme = urlsplit(url).scheme.lower()
            if scheme not in ("http", "https"):
                raise FetchError(
                    feed, f"refused scheme {scheme or '(none)'!r}: {url}", retryable=False
                )
            if self.block_private:
                await self._check_host(feed, url)
            elif hops and not self.allow_private:
                await self._check_redirect(feed, url)
            request = self._client.build_request(
                "GET", url, headers=headers, timeout=httpx.Timeout(spec.timeout)
            )
            response = await self._client.send(request, stream=True)
            try:
                status = response.status_code
                if status in REDIRECTS and "location" in response.headers:
                    hops += 1
                    target = _redirect_target(feed, url, response.headers["location"])
                    if hops > self.max_redirects:
                        raise FetchError(
                            feed, f"too many redirects (more than {self.max_redirects})"
                        )
                    if target in seen:
                        raise FetchError(feed, f"redirect loop back to {target}")
                    seen.add(target)
                    url = target
                    continue
                return await self._answer(spec, state, url, response, started)
            finally:
                await response.aclose()

    async def _answer(
        self, spec: FeedSpec, state: FeedState, url: str, response: httpx.Response, started: float
    ) -> FetchResult:
        feed = spec.url
        status = response.status_code
        h = response.headers
        if status == 304:
            await _drain(response)
            return FetchResult(
                url=feed,
                final_url=url,
                status=304,
                body=None,
                content_type=h.get("content-type"),
                etag=validator(h.get("etag")) or validator(state.etag),
                last_modified=validator(h.get("last-modified")) or validator(state.last_modified),
                elapsed=time.monotonic() - started,
            )
        if status in (429, 503):
            retry_after = parse_retry_after(
                h.get("retry-after"), self._clock(), self.max_retry_after
            )
            raise FetchError(
                feed,
                f"HTTP {status}"
                + (f", retry after {retry_after:g}s" if retry_after is not None else ""),
                retryable=True,
                retry_after=retry_after,
                status=status,
            )
        if status in (404, 410):
            what = "not found" if status == 404 else "gone"
            raise FetchError(feed, f"HTTP {status} {what}", retryable=False, status=status)
        if status >= 400:
            raise FetchError(
                feed,
                f"HTTP {status}",
                retryable=status in _RETRY_STATUSES or status >= 500,
                status=status,
            )
        if status != 200:
            raise FetchError(feed, f"unexpected HTTP {status}", status=status)

        length = h.get("content-length")
        if length and length.strip().isdigit() and int(length) > self.max_raw_bytes:
            raise FetchError(
                feed, f"body exceeds {_size(self.max_raw_bytes)} (Content-Length {length})"
            )
        try:
            decoder = _Decoder(h.get("content-encoding", ""), self.max_decoded_bytes)
        except ValueError as exc:
            raise FetchError(feed, str(exc)) from exc
        body = bytearray()
        raw = 0
        try:
            async for chunk in response.aiter_raw():
                raw += len(chunk)
                if raw > self.max_raw_bytes:
                    raise FetchError(feed, f"body exceeds {_size(self.max_raw_bytes)}")
                body += decoder.feed(chunk)
            body += decoder.flush()
        except OverflowError as exc:
            raise FetchError(feed, str(exc)) from exc
        except zlib.error as exc:
            raise FetchError(feed, f"bad {h.get('content-encoding')} body: {exc}") from exc
        if not body.strip():
            raise FetchError(feed, "empty body (HTTP 200 with nothing in it)", status=200)
        return FetchResult(
            url=feed,
            final_url=url,
            status=200,
            body=bytes(body),
            content_type=h.get("content-type"),
            etag=validator(h.get("etag")),
            last_modified=validator(h.get("last-modified")),
            elapsed=time.monotonic() - started,
        )
