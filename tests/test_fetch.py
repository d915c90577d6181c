"""Fetch against real HTTP servers on 127.0.0.1: conditional GET, redirects, caps, deadlines,
Retry-After, error classes. No mocks: every answer crosses a real socket."""

from __future__ import annotations

import asyncio
import email.utils
import gzip
import shutil
import ssl
import subprocess
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from monitor.errors import FetchError
from monitor.fetch import MAX_VALIDATOR, Fetcher, backoff_delay, parse_retry_after, validator
from monitor.models import FeedSpec, FeedState, FetchResult
from tests.servers import FeedServer, LocalServer, Request, Response

FEEDS = Path(__file__).resolve().parent / "data" / "feeds"
RSS = (FEEDS / "rss2_utf8.xml").read_bytes()


def spec(url: str, timeout: float = 5.0) -> FeedSpec:
    return FeedSpec(url=url, name="test", interval=300.0, timeout=timeout)


def fetch(url: str, state: FeedState | None = None, timeout: float = 5.0, **kw: Any) -> FetchResult:
    async def go() -> FetchResult:
        async with Fetcher(**kw) as f:
            return await f.fetch(spec(url, timeout), state or FeedState(url=url))

    return asyncio.run(go())


def fetch_error(url: str, timeout: float = 5.0, **kw: Any) -> FetchError:
    with pytest.raises(FetchError) as info:
        fetch(url, timeout=timeout, **kw)
    return info.value


# One server of each kind per module: stopping a server costs its 0.5 s poll interval.
@pytest.fixture(scope="module")
def _server() -> Iterator[LocalServer]:
    with LocalServer() as s:
        yield s


@pytest.fixture
def server(_server: LocalServer) -> LocalServer:
    _server.requests.clear()
    _server.set_handler(lambda req: Response(404, b"no handler"))
    return _server


@pytest.fixture(scope="module")
def _feed_server() -> Iterator[FeedServer]:
    s = FeedServer().start()
    yield s  # type: ignore[misc]  # start() is typed as returning the base class
    s.stop()


@pytest.fixture
def feed_server(_feed_server: FeedServer) -> FeedServer:
    _feed_server.requests.clear()
    _feed_server.docs.clear()
    return _feed_server


# --- 200 and 304 ---------------------------------------------------------------------------


def test_200_returns_body_validators_and_sends_our_headers(feed_server: FeedServer) -> None:
    url = feed_server.publish("/rss", RSS)
    r = fetch(url)
    assert (r.status, r.body, r.final_url) == (200, RSS, url)
    assert r.etag
    assert r.last_modified
    assert r.content_type == "application/rss+xml; charset=utf-8"
    sent = feed_server.requests[0].headers
    assert sent["accept-encoding"] == "gzip, deflate"
    assert sent["user-agent"].startswith("monitor/")
    assert "if-none-match" not in sent


def test_conditional_get_round_trip_gives_304_and_keeps_validators(feed_server: FeedServer) -> None:
    url = feed_server.publish("/rss", RSS)
    first = fetch(url)
    state = FeedState(url=url, etag=first.etag, last_modified=first.last_modified)
    second = fetch(url, state)
    assert second.not_modified
    assert second.body is None
    assert (second.etag, second.last_modified) == (first.etag, first.last_modified)
    sent = feed_server.requests[1].headers
    assert sent["if-none-match"] == first.etag
    assert sent["if-modified-since"] == first.last_modified


def test_a_304_leaves_the_connection_open_for_the_next_poll(feed_server: FeedServer) -> None:
    # A 304 has no body, but httpcore keeps a connection only once the response's end is read:
    # otherwise every conditional poll of a pass opened a new TCP connection.
    url = feed_server.publish("/rss", RSS)

    async def go() -> list[FetchResult]:
        async with Fetcher() as f:
            first = await f.fetch(spec(url), FeedState(url=url))
            state = FeedState(url=url, etag=first.etag, last_modified=first.last_modified)
            return [first] + [await f.fetch(spec(url), state) for _ in range(4)]

    results = asyncio.run(go())
    assert [r.status for r in results] == [200, 304, 304, 304, 304]
    assert len(feed_server.requests) == 5
    assert len({r.peer for r in feed_server.requests}) == 1


def test_changed_document_after_304_is_fetched_again(feed_server: FeedServer) -> None:
    url = feed_server.publish("/rss", RSS)
    first = fetch(url)
    feed_server.publish("/rss", RSS.replace(b"</channel>", b"<!-- new --></channel>"))
    again = fetch(url, FeedState(url=url, etag=first.etag))
    assert again.status == 200
    assert again.etag != first.etag


@pytest.mark.parametrize(
    ("encoding", "encode"),
    [
        ("gzip", gzip.compress),
        ("deflate", zlib.compress),
        ("deflate", lambda b: zlib.compress(b)[2:-4]),  # raw deflate, as some servers send it
    ],
    ids=["gzip", "deflate-zlib-wrapped", "deflate-raw-without-header"],
)
def test_compressed_body_is_decoded_by_us(server: LocalServer, encoding: str, encode: Any) -> None:
    server.set_handler(lambda req: Response(200, encode(RSS), {"Content-Encoding": encoding}))
    assert fetch(server.url + "/rss").body == RSS


# --- redirects -----------------------------------------------------------------------------


def redirects(table: dict[str, str]) -> Any:
    def handle(req: Request) -> Response:
        if req.path in table:
            return Response(302, b"", {"Location": table[req.path]})
        return Response(200, RSS, {"Content-Type": "application/rss+xml"})

    return handle


def test_redirect_chain_within_limit_is_followed(server: LocalServer) -> None:
    server.set_handler(redirects({"/a": "/b", "/b": server.url + "/c", "/c": "d"}))
    r = fetch(server.url + "/a")
    assert r.body == RSS
    assert r.final_url == server.url + "/d"
    assert r.url == server.url + "/a"
    assert [q.path for q in server.requests] == ["/a", "/b", "/c", "/d"]


def test_redirect_chain_over_limit_fails(server: LocalServer) -> None:
    server.set_handler(redirects({f"/{i}": f"/{i + 1}" for i in range(10)}))
    err = fetch_error(server.url + "/0", max_redirects=3)
    assert "too many redirects" in err.message
    assert len(server.requests) == 4


def test_redirect_loop_fails(server: LocalServer) -> None:
    server.set_handler(redirects({"/a": "/b", "/b": "/a"}))
    err = fetch_error(server.url + "/a")
    assert "redirect loop" in err.message
    assert len(server.requests) == 2


@pytest.mark.parametrize(
    "target",
    ["file:///etc/passwd", "ftp://127.0.0.1/feed.xml", "gopher://127.0.0.1/"],
    ids=["file-scheme", "ftp-scheme", "gopher-scheme"],
)
def test_redirect_to_other_scheme_is_refused(server: LocalServer, target: str) -> None:
    server.set_handler(redirects({"/a": target}))
    err = fetch_error(server.url + "/a")
    assert "refused scheme" in err.message
    assert err.retryable is False


@pytest.mark.parametrize(
    ("target", "reason"),
    [
        ("http://127.0.0.1:99999/feed.xml", "Port out of range"),
        ("//127.0.0.1:65536/feed.xml", "Port out of range"),
        ("//[::1]99999/feed.xml", "Port out of range 1-65535: 99999"),
    ],
    ids=[
        "port-out-of-range",
        "protocol-relative-port-out-of-range",
        "ipv6-port-without-colon-httpx-reads-urllib-does-not",
    ],
)
def test_redirect_to_an_invalid_url_is_a_fetch_error(
    server: LocalServer, target: str, reason: str
) -> None:
    """These escaped the fetch as unexpected exceptions: urllib's ValueError on a port out of
    range, and the socket's OverflowError (in an ExceptionGroup) on a port httpx reads where
    urllib sees none (found by fuzz/responses.py)."""
    server.set_handler(redirects({"/a": target}))
    err = fetch_error(server.url + "/a")
    assert reason in err.message, err.message
    assert err.retryable is False


def test_feed_url_with_other_scheme_is_refused() -> None:
    err = fetch_error("file:///etc/passwd")
    assert "refused scheme 'file'" in err.message
    assert err.retryable is False


def test_loopback_refused_when_private_addresses_are_blocked(feed_server: FeedServer) -> None:
    url = feed_server.publish("/rss", RSS)
    err = fetch_error(url, block_private=True)
    assert "non-public address" in err.message
    assert feed_server.requests == []


# --- deadlines and caps ----------------------------------------------------------------------


def test_slow_drip_is_ended_by_the_whole_fetch_deadline(server: LocalServer) -> None:
    # 1 byte every 0.2 s: each read is quick, so only a deadline on the whole fetch ends it.
    server.set_handler(lambda req: Response(200, [b"<" for _ in range(40)], chunk_delay=0.2))
    err = fetch_error(server.url + "/drip", timeout=1.0)
    assert err.message == "timed out after 1s"
    assert err.retryable


def test_silence_after_accept_is_ended_by_the_deadline(server: LocalServer) -> None:
    server.set_handler(lambda req: Response(200, RSS, delay=3.0))
    err = fetch_error(server.url + "/silent", timeout=0.5)
    assert err.message == "timed out after 0.5s"


def test_body_over_cap_with_content_length_is_refused(server: LocalServer) -> None:
    server.set_handler(lambda req: Response(200, b"x" * 5000))
    err = fetch_error(server.url + "/big", max_raw_bytes=1000)
    assert "body exceeds 1000 bytes" in err.message


def test_chunked_body_over_cap_is_stopped_while_streaming(server: LocalServer) -> None:
    server.set_handler(lambda req: Response(200, [b"<item/>" * 100 for _ in range(200)]))
    err = fetch_error(server.url + "/endless", max_raw_bytes=10_000)
    assert err.message == "body exceeds 10000 bytes"


def test_gzip_bomb_is_stopped_at_the_decoded_cap(server: LocalServer) -> None:
    bomb = gzip.compress(b"\0" * (16 * 1024 * 1024), compresslevel=9)
    assert len(bomb) < 64 * 1024  # small on the wire, 16 MiB decoded
    server.set_handler(lambda req: Response(200, bomb, {"Content-Encoding": "gzip"}))
    err = fetch_error(server.url + "/bomb", max_decoded_bytes=1024 * 1024)
    assert err.message == "decoded body exceeds 1 MiB"


def test_unsupported_content_encoding_fails(server: LocalServer) -> None:
    server.set_handler(lambda req: Response(200, b"\x1b\x00", {"Content-Encoding": "br"}))
    assert "unsupported Content-Encoding 'br'" in fetch_error(server.url + "/br").message


# --- answers that are errors -----------------------------------------------------------------

NOW = 1_700_000_000.0


@pytest.mark.parametrize(
    ("status", "header", "expected"),
    [
        (429, "120", 120.0),
        (503, "7", 7.0),
        (429, email.utils.formatdate(NOW + 300, usegmt=True), 300.0),
        (503, email.utils.formatdate(NOW - 60, usegmt=True), 0.0),
        (429, "99999999", 3600.0),
        (429, None, None),
        (503, "soon", None),
    ],
    ids=[
        "429-seconds",
        "503-seconds",
        "429-http-date-in-5-minutes",
        "503-http-date-in-the-past-is-zero",
        "429-huge-seconds-capped",
        "429-without-retry-after",
        "503-unreadable-retry-after-ignored",
    ],
)
def test_rate_limited_is_retryable_with_retry_after(
    server: LocalServer, status: int, header: str | None, expected: float | None
) -> None:
    headers = {"Retry-After": header} if header is not None else {}
    server.set_handler(lambda req: Response(status, b"slow down", headers))
    err = fetch_error(server.url + "/rss", clock=lambda: NOW, max_retry_after=3600.0)
    assert (err.retryable, err.status, err.retry_after) == (True, status, expected)


@pytest.mark.parametrize(
    ("status", "retryable"),
    [(404, False), (410, False), (403, False), (500, True), (502, True)],
    ids=["404-not-retryable", "410-not-retryable", "403-not-retryable", "500-retryable", "502"],
)
def test_http_errors_are_classified(server: LocalServer, status: int, retryable: bool) -> None:
    server.set_handler(lambda req: Response(status, b"error page"))
    err = fetch_error(server.url + "/rss")
    assert (err.status, err.retryable) == (status, retryable)
    assert f"HTTP {status}" in err.message


@pytest.mark.parametrize("body", [b"", b"  \r\n\t "], ids=["empty-200", "whitespace-only-200"])
def test_200_with_empty_body_is_an_error(server: LocalServer, body: bytes) -> None:
    server.set_handler(lambda req: Response(200, body))
    assert "empty body" in fetch_error(server.url + "/rss").message


def test_connection_refused_is_a_clear_retryable_error() -> None:
    with LocalServer() as s:
        url = s.url + "/rss"
    err = fetch_error(url)
    assert err.message == "connection refused"
    assert err.retryable


@pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl command")
def test_self_signed_certificate_fails_closed(tmp_path: Path) -> None:
    key, cert = tmp_path / "key.pem", tmp_path / "cert.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
         "-nodes", "-keyout", key, "-out", cert, "-days", "1", "-subj", "/CN=127.0.0.1"],
        check=True, capture_output=True,
    )  # fmt: skip
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    with LocalServer(lambda req: Response(200, RSS)) as s:
        s.httpd.socket = ctx.wrap_socket(s.httpd.socket, server_side=True)
        err = fetch_error(f"https://127.0.0.1:{s.port}/rss")
    assert err.message == "TLS certificate verify failed"


def test_connection_reset_without_answer_is_retryable(server: LocalServer) -> None:
    server.set_handler(lambda req: Response(reset=True))
    err = fetch_error(server.url + "/rss")
    assert err.retryable
    assert err.feed == server.url + "/rss"


def test_one_fetcher_serves_many_feeds_concurrently(feed_server: FeedServer) -> None:
    urls = [feed_server.publish(f"/f{i}", RSS) for i in range(5)]

    async def go() -> list[FetchResult]:
        async with Fetcher() as f:
            return await asyncio.gather(*(f.fetch(spec(u), FeedState(url=u)) for u in urls))

    assert [r.final_url for r in asyncio.run(go())] == urls


# --- backoff (pure) --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("streak", "retry_after", "expected"),
    [
        (0, None, 300.0),
        (1, None, 600.0),
        (3, None, 2400.0),
        (10, None, 3600.0),
        (10_000, None, 3600.0),
        (0, 1200.0, 1200.0),
        (1, 60.0, 600.0),
        (1, 99_999.0, 3600.0),
    ],
    ids=[
        "no-errors-is-the-interval",
        "one-error-doubles",
        "three-errors",
        "long-streak-capped",
        "huge-streak-no-overflow-still-capped",
        "retry-after-longer-than-interval-honoured",
        "retry-after-shorter-than-backoff-ignored",
        "retry-after-capped",
    ],
)
def test_backoff_delay(streak: int, retry_after: float | None, expected: float) -> None:
    assert backoff_delay(300.0, streak, retry_after, cap=3600.0) == expected


def test_backoff_never_polls_faster_than_the_interval() -> None:
    assert backoff_delay(7200.0, 5, None, cap=3600.0) == 7200.0


@pytest.mark.parametrize(
    ("value", "expected"),
    [("-5", 0.0), ("1.5", 1.5), ("nan", None), ("", None), ("Sun, 06 Nov 1994 08:49:37 GMT", 0.0)],
    ids=["negative-is-zero", "fractional", "nan-ignored", "empty-ignored", "date-long-past"],
)
def test_parse_retry_after_edges(value: str, expected: float | None) -> None:
    assert parse_retry_after(value, NOW, 60.0) == expected


def test_at_most_per_host_fetches_to_one_host_at_once() -> None:
    """Issue 5: per-host concurrency. Eight feeds on one host, two slots: the server never
    sees more than two requests at once, and every feed is fetched."""
    import threading
    import time as _time

    lock = threading.Lock()
    active = peak = 0

    def slow(req: Request) -> Response:
        nonlocal active, peak
        with lock:
            active += 1
            peak = max(peak, active)
        _time.sleep(0.05)
        with lock:
            active -= 1
        return Response(200, b"<rss version='2.0'><channel><title>t</title></channel></rss>")

    async def go(url: str) -> list[int]:
        fetcher = Fetcher(max_per_host=2)
        specs = [FeedSpec(f"{url}/f{i}.xml", f"f{i}", 60.0, 10.0) for i in range(8)]
        results = await asyncio.gather(*(fetcher.fetch(s, FeedState(s.url)) for s in specs))
        await fetcher.aclose()
        return [r.status for r in results]

    with LocalServer(slow) as server:
        assert asyncio.run(go(server.url)) == [200] * 8
    assert peak == 2


@pytest.mark.parametrize(
    ("value", "kept"),
    [
        ('"5f2a-9c"', '"5f2a-9c"'),
        ('W/"5f2a-9c"', 'W/"5f2a-9c"'),
        ("Mon, 01 Jan 2024 00:00:00 GMT", "Mon, 01 Jan 2024 00:00:00 GMT"),
        ('"caf\u00e9"', None),
        ('"a\tb"', None),
        ('"a\x7fb"', None),
        ("", None),
        (None, None),
        ("x" * MAX_VALIDATOR, "x" * MAX_VALIDATOR),
        ("x" * (MAX_VALIDATOR + 1), None),
    ],
    ids=[
        "strong-etag-kept",
        "weak-etag-kept",
        "http-date-kept",
        "non-ascii-dropped-no-client-can-send-it",
        "tab-dropped",
        "del-dropped",
        "empty-dropped",
        "missing-stays-missing",
        "at-the-bound-kept",
        "past-the-bound-dropped",
    ],
)
def test_validator(value: str | None, kept: str | None) -> None:
    assert validator(value) == kept
