"""Fuzz `analyze` (parse, identity, matching, fingerprint) with any bytes as a feed document.

    /tmp/fz/bin/python fuzz/analyze.py -max_len=20000 -timeout=20 -rss_limit_mb=3000 CORPUS

Only ParseError may escape; every item URL is http(s) with no raw space or control character;
every title and link renders for Slack. See fuzz/README.md.
"""

from __future__ import annotations

import sys
from pathlib import Path

import atheris

with atheris.instrument_imports():
    from monitor.analyze import analyze
    from monitor.config import load
    from monitor.errors import ParseError
    from monitor.match import compile_watchlists
    from monitor.notify.render import slack_field, slack_link

CONFIG = Path(__file__).resolve().parent.parent / "config" / "monitor.yaml"
ENV = {
    "SLACK_BOT_TOKEN": "xoxb-1",
    "SLACK_CHANNEL": "C1",
    "WEBHOOK_URL": "http://127.0.0.1:1/hook",
    "WEBHOOK_SECRET": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
}
CFG = load(str(CONFIG), env=ENV)
MATCHER = compile_watchlists(CFG.watchlists)
SPEC = CFG.feeds[0]


def one(data: bytes) -> None:
    try:
        out = analyze(data, spec=SPEC, content_type=None, max_items=50, now=1.9e9, matcher=MATCHER)
    except ParseError:
        return
    for a in out:
        url = a.item.url
        assert url is None or url.startswith(("http://", "https://")), url
        assert url is None or not any(ch <= " " or ch == "\x7f" for ch in url), url
        slack_field(a.item.title, 3000)
        slack_link(url, a.item.title)


if __name__ == "__main__":
    atheris.Setup(sys.argv, one)
    atheris.Fuzz()
