"""Real HTTP servers on 127.0.0.1 for tests: feeds, Slack's Web API, webhook receivers.

Every server runs in a thread of the test process on an ephemeral port, records what it was
asked, and answers what the test scripted. Nothing here is a mock of monitor's own code: the
daemon talks to these over real sockets, exactly as it talks to the internet.
"""

from __future__ import annotations

import email.utils
import hashlib
import json
import threading
import time
import urllib.parse
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes
    at: float = field(default_factory=time.monotonic)
    peer: tuple[str, int] = ("", 0)  # the client's address: one per TCP connection


@dataclass
class Response:
    status: int = 200
    body: bytes | Iterable[bytes] = b""
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0  # seconds before the status line
    chunk_delay: float = 0.0  # seconds between chunks when body is an iterable
    reset: bool = False  # close the connection without answering


Handler = Callable[[Request], Response]


class LocalServer:
    """A threaded HTTP/1.1 server on 127.0.0.1; `handle` decides every answer."""

    def __init__(self, handle: Handler | None = None) -> None:
        self.requests: list[Request] = []
        self._handle = handle or (lambda req: Response(404, b"not found"))
        self._lock = threading.Lock()
        # Called in the server thread for every request, after it is recorded and before it is
        # answered: a test can learn that a request arrived, or hold the answer (by blocking).
        self.on_request: Callable[[Request], None] | None = None
        outer = self

        class _H(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def _serve(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                parsed = urllib.parse.urlsplit(self.path)
                req = Request(
                    method=self.command,
                    path=parsed.path,
                    query=urllib.parse.parse_qs(parsed.query),
                    headers={k.lower(): v for k, v in self.headers.items()},
                    body=body,
                    peer=(str(self.client_address[0]), int(self.client_address[1])),
                )
                with outer._lock:
                    outer.requests.append(req)
                if outer.on_request is not None:
                    outer.on_request(req)
                resp = outer._handle(req)
                if resp.delay:
                    time.sleep(resp.delay)
                if resp.reset:
                    self.close_connection = True
                    self.connection.shutdown(2)
                    return
                self.send_response(resp.status)
                for k, v in resp.headers.items():
                    self.send_header(k, v)
                try:
                    if isinstance(resp.body, bytes | bytearray):
                        if "content-length" not in {k.lower() for k in resp.headers}:
                            self.send_header("Content-Length", str(len(resp.body)))
                        self.end_headers()
                        if self.command != "HEAD":
                            self.wfile.write(resp.body)
                    else:
                        self.send_header("Transfer-Encoding", "chunked")
                        self.end_headers()
                        for chunk in resp.body:
                            if resp.chunk_delay:
                                time.sleep(resp.chunk_delay)
                            self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                            self.wfile.flush()
                        self.wfile.write(b"0\r\n\r\n")
                except (BrokenPipeError, ConnectionResetError):
                    self.close_connection = True

            do_GET = do_POST = do_HEAD = do_PUT = _serve

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), _H)
        self.httpd.daemon_threads = True
        # A short poll interval: shutdown() waits up to one interval (0.5 s by default).
        self._thread = threading.Thread(
            target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    @property
    def port(self) -> int:
        return int(self.httpd.server_address[1])

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def set_handler(self, handle: Handler) -> None:
        self._handle = handle

    def start(self) -> LocalServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def __enter__(self) -> LocalServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class FeedServer(LocalServer):
    """Serves feed documents by path, with ETag and Last-Modified, answering 304 when the
    client's validators match. `publish(path, body)` replaces a document."""

    def __init__(self) -> None:
        self.docs: dict[str, tuple[bytes, str, str, str]] = {}
        self.overrides: dict[str, Handler] = {}
        super().__init__(self._serve_feed)

    def publish(
        self, path: str, body: bytes | str, content_type: str = "application/rss+xml; charset=utf-8"
    ) -> str:
        data = body.encode("utf-8") if isinstance(body, str) else body
        etag = '"' + hashlib.sha256(data).hexdigest()[:16] + '"'
        modified = email.utils.formatdate(time.time(), usegmt=True)
        self.docs[path] = (data, content_type, etag, modified)
        return self.url + path

    def _serve_feed(self, req: Request) -> Response:
        if req.path in self.overrides:
            return self.overrides[req.path](req)
        doc = self.docs.get(req.path)
        if doc is None:
            return Response(404, b"no such feed")
        data, ctype, etag, modified = doc
        headers = {"Content-Type": ctype, "ETag": etag, "Last-Modified": modified}
        if req.headers.get("if-none-match") == etag:
            return Response(304, b"", headers)
        return Response(200, data, headers)


class SlackServer(LocalServer):
    """Slack's Web API as far as monitor uses it. slack-sdk reaches it through
    `base_url=server.url + "/api/"`. Records every chat.postMessage; answers from `script`
    (a queue of Responses) first, then `ok: true` with a fresh ts."""

    def __init__(self) -> None:
        self.messages: list[dict[str, Any]] = []
        self.script: deque[Response] = deque()
        self._ts = 1700000000
        super().__init__(self._serve_slack)

    def _serve_slack(self, req: Request) -> Response:
        if req.headers.get("content-type", "").startswith("application/json"):
            args: dict[str, Any] = json.loads(req.body or b"{}")
        else:
            args = {k: v[0] for k, v in urllib.parse.parse_qs(req.body.decode()).items()}
        method = req.path.rsplit("/", 1)[-1]
        if method == "auth.test":
            return _json({"ok": True, "user_id": "UBOT", "team": "test"})
        if self.script:
            return self.script.popleft()
        if method == "chat.postMessage":
            self._ts += 1
            ts = f"{self._ts}.000100"
            self.messages.append({"auth": req.headers.get("authorization"), "ts": ts, **args})
            return _json({"ok": True, "channel": args.get("channel"), "ts": ts})
        return _json({"ok": False, "error": "unknown_method"})


class WebhookReceiver(LocalServer):
    """A webhook receiver that verifies Standard Webhooks signatures with the reference
    `standardwebhooks` package. Records (headers, payload, verified) for every POST;
    answers from `script` first, then 200."""

    def __init__(self, secret: str | None = None) -> None:
        self.secret = secret
        self.received: list[tuple[dict[str, str], dict[str, Any], bool]] = []
        self.script: deque[Response] = deque()
        super().__init__(self._serve_hook)

    def _serve_hook(self, req: Request) -> Response:
        verified = False
        if self.secret:
            from standardwebhooks.webhooks import Webhook, WebhookVerificationError

            try:
                Webhook(self.secret).verify(req.body, req.headers)
                verified = True
            except (WebhookVerificationError, ValueError):
                verified = False
        try:
            payload = json.loads(req.body)
        except ValueError:
            payload = {"_raw": req.body.decode("utf-8", "replace")}
        self.received.append((req.headers, payload, verified))
        if self.script:
            return self.script.popleft()
        return Response(200, b"ok")


def _json(
    obj: dict[str, Any], status: int = 200, headers: dict[str, str] | None = None
) -> Response:
    return Response(
        status, json.dumps(obj).encode(), {"Content-Type": "application/json", **(headers or {})}
    )


def slack_json(
    obj: dict[str, Any], status: int = 200, headers: dict[str, str] | None = None
) -> Response:
    """A scripted Slack answer, e.g. slack_json({"ok": False, "error": "ratelimited"}, 429,
    {"Retry-After": "3"})."""
    return _json(obj, status, headers)
