"""`monitor status` and `monitor deliveries` against a store filled by the real pipeline."""

from __future__ import annotations

import json
import time
from pathlib import Path

from tests.conftest import WEBHOOK_SECRET
from tests.feedgen import FakeItem, rss
from tests.servers import FeedServer, Response, WebhookReceiver
from tests.test_cli import monitor

CONFIG = """\
storage: sqlite:///{db}
poll: {{unhealthy_after: 2}}
feeds:
  - {{url: "{ok}", name: good}}
  - {{url: "{bad}", name: broken}}
destinations:
  archive: {{type: webhook, url: "{hook}/in", secret: "{secret}"}}
watchlists:
  - name: moscow
    any: [موسكو]
    notify: [archive]
"""


def test_status_and_dead_letters_round_trip(
    tmp_path: Path, feed_server: FeedServer, webhook_receiver: WebhookReceiver
) -> None:
    ok = feed_server.publish(
        "/ok.xml",
        rss(
            [
                FakeItem(
                    "1",
                    "وفد يصل إلى موسكو",
                    "وصل وفد إلى موسكو.",
                    "https://x.example/1",
                    time.time(),
                ),
            ]
        ),
    )
    cfg = tmp_path / "c.yaml"
    cfg.write_text(
        CONFIG.format(
            db=tmp_path / "m.db",
            ok=ok,
            bad=feed_server.url + "/missing.xml",
            hook=webhook_receiver.url,
            secret=WEBHOOK_SECRET,
        ),
        encoding="utf-8",
    )
    webhook_receiver.script.append(Response(400, b"bad request"))  # a permanent failure
    assert monitor("-c", str(cfg), "poll-once").returncode == 0
    assert monitor("-c", str(cfg), "poll-once").returncode == 0  # broken fails twice: unhealthy

    status = json.loads(monitor("-c", str(cfg), "status", "--json").stdout)
    feeds = {f["feed"]: f for f in status["feeds"]}
    assert feeds["good"]["state"] == "ok"
    assert feeds["good"]["items_24h"] == 1
    assert feeds["broken"]["state"] == "unhealthy"
    assert feeds["broken"]["error_streak"] == 2
    assert "404" in feeds["broken"]["last_error"]
    assert status["outbox"]["dead"] == 1
    text = monitor("-c", str(cfg), "status").stdout
    assert "broken" in text
    assert "unhealthy" in text
    assert "1 dead letters" in text

    dead = json.loads(monitor("-c", str(cfg), "deliveries", "--json", "--dead").stdout)
    assert len(dead) == 1
    assert dead[0]["state"] == "dead"
    assert "HTTP 400" in dead[0]["error"]
    # `monitor replay --dead-letters ID` and `monitor deliveries --retry ID` are the same verb
    assert monitor("-c", str(cfg), "replay", "--dead-letters", str(dead[0]["id"])).returncode == 0
    assert monitor("-c", str(cfg), "poll-once").returncode == 0  # delivers the requeued one
    assert json.loads(monitor("-c", str(cfg), "deliveries", "--json").stdout) == []
    ids = [h["webhook-id"] for h, _, _ in webhook_receiver.received]
    assert len(ids) == 2
    assert ids[0] == ids[1], "the same alert id when a dead letter is sent again"
    assert monitor("-c", str(cfg), "deliveries", "--retry-all").returncode == 1  # none left
    assert monitor("-c", str(cfg), "replay", "--dead-letters").returncode == 1  # the same verb
    assert monitor("-c", str(cfg), "replay").returncode == 2  # neither files nor dead letters
