"""Random hostile HTTP responses from a real server on 127.0.0.1 to the real Fetcher.

    .venv/bin/python fuzz/responses.py SEED SECONDS

Each response has a random status (200, 3xx, 304, 4xx, 5xx) and random Location, ETag,
Last-Modified, Content-Encoding, Content-Type, Retry-After, Content-Length or
Transfer-Encoding values built from URL and header fragments (non-ASCII, ports out of range,
delimiters, 300-character runs); each fetch also sends a random stored ETag back. Only
FetchError may come out of `Fetcher.fetch`: anything else would be a poll logged as a crash
with nothing recorded on the feed. Prints the outcome counts and every escape. Needs no atheris;
all traffic stays on 127.0.0.1 (private addresses allowed, so no DNS lookup of a junk name).
"""

from __future__ import annotations

import asyncio
import random
import sys
import time
import traceback
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from monitor.errors import FetchError
from monitor.fetch import Fetcher
from monitor.models import FeedSpec, FeedState
from tests.servers import LocalServer, Request, Response

RSS = (
    b'<?xml version="1.0"?><rss version="2.0"><channel><title>t</title>'
    b"<item><title>x</title></item></channel></rss>"
)
FRAGMENTS = [
    *["", " ", "\u00e9", "\u00ff", "%", "%zz", ":", "::", "[", "]", "@", "#", "?", "/", "//"],
    *["\\", "0", "99999", "65536", "-1", "x" * 300, "http:", "https:", "ftp:", "javascript:"],
    *["127.0.0.1", "localhost", "[::1]", "a.example", "\t", ";", ",", "=", '"', "W/", "gzip"],
    *["deflate", "br", "identity", "charset=", "utf-8", "\u00b2", "1e3"],
    "Mon, 01 Jan 2024 00:00:00 GMT",
]
HEADERS = [
    *["Location", "ETag", "Last-Modified", "Content-Encoding", "Content-Type", "Retry-After"],
    *["Content-Length", "Transfer-Encoding"],
]
STATUSES = [200, 200, 301, 302, 303, 307, 308, 304, 404, 410, 429, 503, 500, 418]


def main() -> int:
    rng = random.Random(int(sys.argv[1]) if len(sys.argv) > 1 else 1)
    seconds = float(sys.argv[2]) if len(sys.argv) > 2 else 60.0

    def value() -> str:
        return "".join(rng.choice(FRAGMENTS) for _ in range(rng.randrange(1, 8)))

    def handle(req: Request) -> Response:
        status = rng.choice(STATUSES)
        headers = {name: value() for name in rng.sample(HEADERS, rng.randrange(0, 4))}
        if 300 <= status < 400 and status != 304 and rng.random() < 0.7:
            headers["Location"] = rng.choice(["/", "http://127.0.0.1/", ""]) + value()
        # http.server writes header values as latin-1: keep them encodable
        headers = {k: v.encode("latin-1", "replace").decode("latin-1") for k, v in headers.items()}
        return Response(status, RSS if rng.random() < 0.8 else b"", headers)

    counts: dict[str, int] = {}

    async def run(url: str) -> None:
        start = time.monotonic()
        async with Fetcher(allow_private=True) as fetcher:
            while time.monotonic() - start < seconds:
                spec = FeedSpec(name="fuzz", url=url, interval=60, timeout=2)
                state = FeedState(url=url, etag=value() if rng.random() < 0.3 else None)
                try:
                    await fetcher.fetch(spec, state)
                    kind = "ok"
                except FetchError:
                    kind = "FetchError"
                except Exception as e:  # what this harness looks for
                    kind = f"ESCAPED {type(e).__name__}"
                    print(f"{kind}: {str(e)[:200]}")
                    traceback.print_exc()
                counts[kind] = counts.get(kind, 0) + 1

    with LocalServer(handle) as server:
        asyncio.run(run(server.url + "/feed.xml"))
    print(", ".join(f"{k}: {n}" for k, n in sorted(counts.items())))
    return 1 if any(k.startswith("ESCAPED") for k in counts) else 0


if __name__ == "__main__":
    raise SystemExit(main())
