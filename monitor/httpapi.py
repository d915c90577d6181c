"""The daemon's HTTP endpoint: `/healthz` and `/metrics`. I/O (a socket on the daemon's loop).

A minimal HTTP/1.1 server on asyncio streams, one request per connection (`Connection: close`):
GET or HEAD, no request body, headers bounded in size and time. It binds only where the config
says (`http: {listen: HOST:PORT}`, 127.0.0.1 unless told otherwise) and serves

    /healthz   200 `{"status": "ok"}`, or 503 `{"status": "unavailable", "reason": ...}`
    /metrics   Prometheus text exposition (prometheus-client's)

The answers come from two callables the daemon passes in; they run on the event loop, so they
see the daemon's state between two of its steps and never race it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass

from monitor.config import parse_listen

log = logging.getLogger("monitor")

MAX_HEAD = 16 * 1024  # request line and headers
READ_TIMEOUT = 10.0  # a client has this long to send its request
# What generate_latest() writes (every name here is a classic one), which every Prometheus reads;
# newer prometheus-client versions label it "version=1.0.0", which Prometheus 2.x does not know.
METRICS_TYPE = "text/plain; version=0.0.4; charset=utf-8"


@dataclass(frozen=True, slots=True)
class Health:
    ok: bool
    reason: str = ""


@dataclass(frozen=True, slots=True)
class Answer:
    status: int
    body: bytes
    content_type: str = "text/plain; charset=utf-8"


REASONS = {200: "OK", 400: "Bad Request", 404: "Not Found", 405: "Method Not Allowed"}
REASONS[503] = "Service Unavailable"


def route(
    method: str, path: str, health: Callable[[], Health], metrics: Callable[[], bytes]
) -> Answer:
    """Which answer a request gets. Calls `health` or `metrics` for their paths only."""
    path = path.split("?", 1)[0]
    if path not in ("/", "/healthz", "/metrics"):
        return Answer(404, b"not found; try /healthz or /metrics\n")
    if method not in ("GET", "HEAD"):
        return Answer(405, b"only GET and HEAD\n")
    if path == "/healthz":
        h = health()
        body = {"status": "ok"} if h.ok else {"status": "unavailable", "reason": h.reason}
        return Answer(200 if h.ok else 503, _json(body), "application/json")
    if path == "/metrics":
        return Answer(200, metrics(), METRICS_TYPE)
    return Answer(200, b"monitor: /healthz /metrics\n")


def _json(obj: object) -> bytes:
    return (json.dumps(obj, ensure_ascii=False) + "\n").encode()


class HttpApi:
    """`await start()` binds; `address` is then "http://HOST:PORT"; `await close()` unbinds."""

    def __init__(
        self, listen: str, health: Callable[[], Health], metrics: Callable[[], bytes]
    ) -> None:
        self.listen = listen
        self.health = health
        self.metrics = metrics
        self._server: asyncio.Server | None = None
        self.address = ""

    async def start(self) -> str:
        host, port = parse_listen(self.listen)
        self._server = await asyncio.start_server(self._serve, host, port, limit=MAX_HEAD)
        sock = self._server.sockets[0].getsockname()
        shown = f"[{sock[0]}]" if ":" in sock[0] else sock[0]
        self.address = f"http://{shown}:{sock[1]}"
        return self.address

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):  # a client that never reads must not block exit
                async with asyncio.timeout(2.0):
                    await self._server.wait_closed()
            self._server = None

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            try:
                async with asyncio.timeout(READ_TIMEOUT):
                    head = await reader.readuntil(b"\r\n\r\n")
            except (TimeoutError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
                return
            method, path = _request_line(head)
            if not method:
                answer = Answer(400, b"bad request\n")
            else:
                try:
                    answer = route(method, path, self.health, self.metrics)
                except Exception as e:  # an endpoint's bug is a 503, never a dead server
                    log.exception("http path=%s outcome=error", path)
                    answer = Answer(503, _json({"status": "unavailable", "reason": repr(e)}))
            head_out = (
                f"HTTP/1.1 {answer.status} {REASONS.get(answer.status, '')}\r\n"
                f"Content-Type: {answer.content_type}\r\n"
                f"Content-Length: {len(answer.body)}\r\n"
                "Cache-Control: no-store\r\n"
                "Connection: close\r\n\r\n"
            ).encode()
            writer.write(head_out if method == "HEAD" else head_out + answer.body)
            await writer.drain()
        except ConnectionError:
            pass
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()


def _request_line(head: bytes) -> tuple[str, str]:
    line = head.split(b"\r\n", 1)[0].decode("latin-1")
    parts = line.split(" ")
    if len(parts) != 3 or not parts[2].startswith("HTTP/1.") or not parts[1].startswith("/"):
        return "", ""
    return parts[0], parts[1]
