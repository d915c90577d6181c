"""Hostile HTTP peers for tests and benchmarks (HAZARDS.md, "Servers" and "Deliveries").

Built on tests/servers.py: every hostile behaviour is a `Handler` (Request -> Response) that a
`LocalServer`/`FeedServer` serves on 127.0.0.1, so tests/test_hazards.py and benchmarks/hostile.py
mount the same catalogue. No I/O here beyond what the servers do when asked.

    drip(body, every)             the body one byte at a time, `every` seconds apart
    silence(seconds)              accept, read the request, then say nothing for `seconds`
    endless()                     a chunked body that never ends
    lying_length(claimed, body)   Content-Length says `claimed`, fewer bytes follow
    gzip_bomb(decoded)            a few KB of gzip that decode to `decoded` bytes
    brotli_body()                 a body labelled Content-Encoding: br (never asked for)
    redirect(to, status)          one redirect; loops and chains are built from it
    retry_after(status, value)    429/503 with Retry-After in seconds or as an HTTP date
    status(code)                  404, 410, 500 ...
    html_page() / empty_200()     a 200 that is not a feed

`hostile_routes(base)` maps a path to (handler, what the fetch error must say) for every
hostile feed at once; `HostileSlack` is SlackServer with per-channel scripts, `auth.test`
scopes and `conversations.info`.
"""

from __future__ import annotations

import email.utils
import gzip
import itertools
import json
import threading
import time
import urllib.parse
from collections import deque
from collections.abc import Iterator
from typing import Any

from tests.servers import Handler, Request, Response, SlackServer, slack_json

FEED = (
    b'<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>t</title>'
    b"<item><guid>x</guid><title>x</title></item></channel></rss>"
)


def drip(body: bytes = FEED, every: float = 0.2) -> Handler:
    """HAZARDS 16: a server that sends one byte every `every` seconds (httpx's per-read timeout
    never fires)."""

    def handle(req: Request) -> Response:
        return Response(
            200,
            (body[i : i + 1] for i in range(len(body))),
            {"Content-Type": "application/rss+xml"},
            chunk_delay=every,
        )

    return handle


def silence(seconds: float = 30.0) -> Handler:
    """HAZARDS 16: accept-then-silence: the request is read, nothing is answered for a while."""
    return lambda req: Response(200, FEED, delay=seconds)


def _forever(chunk: bytes) -> Iterator[bytes]:
    return itertools.repeat(chunk)


def endless(chunk_size: int = 64 * 1024) -> Handler:
    """HAZARDS 16: a chunked body that never ends."""
    chunk = b"<item><title>x</title></item>".ljust(chunk_size, b" ")
    return lambda req: Response(200, _forever(chunk), {"Content-Type": "application/rss+xml"})


def lying_length(claimed: int = 100_000, body: bytes = FEED) -> Handler:
    """HAZARDS 16: Content-Length promises more than is sent; the connection stays open."""
    return lambda req: Response(200, body, {"Content-Length": str(claimed)})


_BOMBS: dict[int, bytes] = {}
_BOMB_LOCK = threading.Lock()


def gzip_bomb_bytes(decoded: int) -> bytes:
    with _BOMB_LOCK:
        if decoded not in _BOMBS:
            _BOMBS[decoded] = gzip.compress(b"\0" * decoded, compresslevel=9)
        return _BOMBS[decoded]


def gzip_bomb(decoded: int = 200 * 1024 * 1024) -> Handler:
    """HAZARDS 17: ~200 KB of gzip that decode to `decoded` bytes of zeros."""
    data = gzip_bomb_bytes(decoded)
    return lambda req: Response(
        200, data, {"Content-Encoding": "gzip", "Content-Type": "application/rss+xml"}
    )


def brotli_body() -> Handler:
    """HAZARDS 17: a brotli body we never asked for (Accept-Encoding is gzip, deflate): refused
    before a byte is decoded. (A real brotli bomb needs the brotli package; the fetcher never
    decodes br, so the bytes do not matter.)"""
    return lambda req: Response(200, b"\x1b\xff\xff" * 1000, {"Content-Encoding": "br"})


def redirect(to: str, status: int = 302) -> Handler:
    return lambda req: Response(status, b"", {"Location": to})


def redirect_chain(path: str = "/hop/0") -> Handler:
    """HAZARDS 18: `path?n=N` redirects to `path?n=N+1`, forever (longer than any limit)."""

    def handle(req: Request) -> Response:
        n = int((req.query.get("n") or ["0"])[0])
        return Response(302, b"", {"Location": f"{path}?n={n + 1}"})

    return handle


def retry_after(
    status: int = 429, seconds: float | None = 120, date_in: float | None = None
) -> Handler:
    """HAZARDS 20: 429/503 with Retry-After as seconds, or as an HTTP date `date_in` seconds from
    the moment of the answer."""

    def handle(req: Request) -> Response:
        if date_in is not None:
            value = email.utils.formatdate(time.time() + date_in, usegmt=True)
        else:
            value = f"{seconds:g}"
        return Response(status, b"slow down", {"Retry-After": value})

    return handle


def status(code: int, body: bytes = b"no") -> Handler:
    return lambda req: Response(code, body)


def html_page() -> Handler:
    """HAZARDS 4: a 200 with a login or error page instead of the feed."""
    page = b"<!DOCTYPE html><html><head><title>Login</title></head><body>sign in</body></html>"
    return lambda req: Response(200, page, {"Content-Type": "text/html; charset=utf-8"})


def empty_200() -> Handler:
    return lambda req: Response(200, b"", {"Content-Type": "application/rss+xml"})


def hostile_routes(base: str) -> dict[str, tuple[Handler, str]]:
    """Every hostile feed, by path on one server at `base` (its URL), with a piece of the
    FetchError message each must end with. Deadline-bound ones assume a short fetch timeout."""
    return {
        "/drip.xml": (drip(every=0.5), "timed out"),
        "/silence.xml": (silence(60), "timed out"),
        "/endless.xml": (endless(), "body exceeds"),
        "/lying-length.xml": (lying_length(), "timed out"),
        "/gzip-bomb.xml": (gzip_bomb(), "decoded body exceeds"),
        "/brotli.xml": (brotli_body(), "unsupported Content-Encoding"),
        "/loop-a.xml": (redirect("/loop-b.xml"), "redirect loop"),
        "/loop-b.xml": (redirect("/loop-a.xml"), "redirect loop"),
        "/hop/0": (redirect_chain(), "too many redirects"),
        "/metadata.xml": (
            redirect("http://169.254.169.254/latest/meta-data/"),
            "link-local address refused",
        ),
        "/private.xml": (redirect("http://10.0.0.1/feed.xml"), "private address refused"),
        "/429-seconds.xml": (retry_after(429, 120), "HTTP 429, retry after"),
        "/503-date.xml": (retry_after(503, None, date_in=600), "HTTP 503, retry after"),
        "/404.xml": (status(404), "HTTP 404"),
        "/410.xml": (status(410), "HTTP 410"),
        "/html.xml": (html_page(), ""),  # a parse failure, not a fetch failure
        "/empty.xml": (empty_200(), "empty body"),
    }


class HostileSlack(SlackServer):
    """SlackServer with per-channel answers: `channel_script[channel]` is a queue of Responses
    consumed before the normal `ok: true`; `storm[channel]` answers every post with 429 while
    set. auth.test lists `scopes` in X-OAuth-Scopes; conversations.info answers from `members`
    (channels the bot is in) and `missing` (channels that do not exist)."""

    def __init__(self) -> None:
        self.channel_script: dict[str, deque[Response]] = {}
        self.storm: dict[str, float] = {}  # channel -> Retry-After seconds while storming
        self.scopes = "chat:write,channels:read"
        self.auth_error: str | None = None
        self.members: set[str] = set()
        self.missing: set[str] = set()
        self.rejected: list[dict[str, Any]] = []  # posts answered with an error
        super().__init__()
        self.set_handler(self._hostile)

    def _args(self, req: Request) -> dict[str, Any]:
        args: dict[str, Any] = {k: v[0] for k, v in req.query.items()}
        if req.headers.get("content-type", "").startswith("application/json"):
            args.update(json.loads(req.body or b"{}"))
        elif req.body:
            parsed = urllib.parse.parse_qs(req.body.decode())
            args.update({k: v[0] for k, v in parsed.items()})
        return args

    def _hostile(self, req: Request) -> Response:
        method = req.path.rsplit("/", 1)[-1]
        args = self._args(req)
        if method == "auth.test":
            if self.auth_error:
                return slack_json({"ok": False, "error": self.auth_error})
            return slack_json(
                {"ok": True, "user_id": "UBOT", "team": "test"},
                200,
                {"X-OAuth-Scopes": self.scopes},
            )
        if method == "conversations.info":
            ch = str(args.get("channel", ""))
            if ch in self.missing:
                return slack_json({"ok": False, "error": "channel_not_found"})
            if "channels:read" not in self.scopes.split(","):
                return slack_json(
                    {"ok": False, "error": "missing_scope", "needed": "channels:read"}
                )
            return slack_json({"ok": True, "channel": {"id": ch, "is_member": ch in self.members}})
        if method == "chat.postMessage":
            ch = str(args.get("channel", ""))
            if ch in self.storm:
                self.rejected.append(args)
                return slack_json(
                    {"ok": False, "error": "ratelimited"},
                    429,
                    {"Retry-After": f"{self.storm[ch]:g}"},
                )
            queue = self.channel_script.get(ch)
            if queue:
                self.rejected.append(args)
                return queue.popleft()
        return self._serve_slack(req)
