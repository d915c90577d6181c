"""Fuzz the config loader (any text as YAML) or the OPML reader and its import plan.

    /tmp/fz/bin/python fuzz/config.py yaml -max_len=8000 -timeout=20 CORPUS_OF_YAML
    /tmp/fz/bin/python fuzz/config.py opml -max_len=20000 -timeout=20 CORPUS_OF_OPML

Only ConfigError (YAML) or MonitorError (OPML) may escape, and its message must render.
"""

from __future__ import annotations

import sys

import atheris

with atheris.instrument_imports():
    from monitor.config import loads
    from monitor.errors import ConfigError, MonitorError
    from monitor.opml import parse_opml, plan_import

ENV = {"SLACK_BOT_TOKEN": "xoxb-1", "WEBHOOK_SECRET": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"}
MODE = sys.argv.pop(1) if len(sys.argv) > 1 and sys.argv[1] in ("yaml", "opml") else "yaml"


def one(data: bytes) -> None:
    if MODE == "yaml":
        try:
            loads(data.decode("utf-8", "replace"), env=ENV)
        except ConfigError as e:
            str(e)
        return
    try:
        doc = parse_opml(data)
    except MonitorError as e:
        str(e)
        return
    plan_import(doc, [])


if __name__ == "__main__":
    atheris.Setup(sys.argv, one)
    atheris.Fuzz()
