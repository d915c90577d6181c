"""`monitor demo`: the seed story, served as a feed on 127.0.0.1, through the whole pipeline to
the console. Needs no network, no Slack and no config. I/O.

The seed (seeds/) is an AFP story as an aggregator republished it, with a tag list, an
embedded second story and related headlines: the demo shows which watchlists it alerts and that a
second pass alerts nothing again.
"""

from __future__ import annotations

import re
import tempfile
import threading
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any


def seed_dir() -> Path:
    here = Path.cwd() / "seeds"
    if here.is_dir():
        return here
    return Path(__file__).resolve().parent.parent / "seeds"


def seed_feed(pub_ts: float | None = None) -> bytes:
    """seeds/seed_item.xml (the seed article as one RSS item, its aggregator page in
    content:encoded), with a current pubDate so that max_age lets it alert."""
    doc = (seed_dir() / "seed_item.xml").read_bytes()
    pub = formatdate(pub_ts, usegmt=True).encode()
    return re.sub(rb"<pubDate>[^<]*</pubDate>", b"<pubDate>" + pub + b"</pubDate>", doc)


DEMO_CONFIG = """\
storage: sqlite:///{db}
poll: {{interval: 1m, timeout: 10s}}
max_age: 6h
feeds:
  - url: {url}
    name: seed
destinations:
  screen: {{type: console}}
watchlists:
  - name: moscow
    any: [موسكو]
    notify: [screen]
  - name: islamic-state
    any: [الدولة الإسلامية, داعش]
    notify: [screen]
  - name: zelensky
    any: [زيلينسكي]
    notify: [screen]
  - name: iran
    any: [إيران]
    notify: [screen]
"""


def run_demo(keep: bool = False) -> int:
    from monitor.cli import main as cli_main

    feed = seed_feed()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "application/rss+xml; charset=utf-8")
            self.send_header("Content-Length", str(len(feed)))
            self.end_headers()
            self.wfile.write(feed)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    tmp = tempfile.mkdtemp(prefix="monitor-demo-")
    cfg = Path(tmp) / "demo.yaml"
    url = f"http://127.0.0.1:{server.server_address[1]}/seed.xml"
    cfg.write_text(DEMO_CONFIG.format(db=Path(tmp) / "demo.db", url=url), encoding="utf-8")
    try:
        print(f"demo: serving the seed story at {url}; config {cfg}")
        print("demo: watchlists moscow, islamic-state (in the story), zelensky and iran (only in")
        print("      the embedded 'إقرأ أيضاً' story and the tag list: they must not alert)\n")
        rc = cli_main(["-c", str(cfg), "poll-once"])
        print("\ndemo: second pass (the same story again: nothing may alert twice)")
        rc = rc or cli_main(["-c", str(cfg), "poll-once"])
        return rc
    finally:
        server.shutdown()
        server.server_close()
        if not keep:
            import shutil

            shutil.rmtree(tmp, ignore_errors=True)
