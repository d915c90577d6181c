"""Fuzz the small readers of untrusted strings: entry links, Content-Type with a body,
Retry-After, Slack fields.

    /tmp/fz/bin/python fuzz/inputs.py -max_len=3000 -timeout=20 [CORPUS]
"""

from __future__ import annotations

import sys

import atheris

with atheris.instrument_imports():
    from monitor.identity import canonical_url
    from monitor.notify.render import safe_url, slack_field
    from monitor.parse import decode_body, safe_link
    from monitor.retryafter import parse_retry_after

BASE = "https://news.example/ar/rss"
NOW, CAP = 1_700_000_000.0, 3600.0


def one(data: bytes) -> None:
    fdp = atheris.FuzzedDataProvider(data)
    kind = fdp.ConsumeIntInRange(0, 3)
    text = fdp.ConsumeUnicodeNoSurrogates(300)
    if kind == 0:
        canonical_url(text)
        link = safe_link(text, BASE)
        if link is not None:
            canonical_url(link)
            shown = safe_url(link)
            assert shown is None or not any(ch in shown for ch in "<>| \n"), shown
    elif kind == 1:
        decoded, _codec = decode_body(fdp.ConsumeBytes(2000), text)
        assert isinstance(decoded, str)
    elif kind == 2:
        delay = parse_retry_after(text, NOW, CAP)
        assert delay is None or 0 <= delay <= CAP, (text, delay)
    else:
        slack_field(text, fdp.ConsumeIntInRange(0, 4000))


if __name__ == "__main__":
    atheris.Setup(sys.argv, one)
    atheris.Fuzz()
