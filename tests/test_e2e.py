"""End to end: `monitor run` as a subprocess against real local feeds, a local Slack Web API and
a local webhook receiver; SIGTERM, restart, more items, and no alert ever repeated."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.conftest import ROOT, WEBHOOK_SECRET
from tests.feedgen import FakeItem, rss
from tests.helpers import start, stop, wait_for
from tests.servers import FeedServer, SlackServer, WebhookReceiver

pytestmark = pytest.mark.slow

CONFIG = """\
storage: sqlite:///{db}
poll: {{interval: 1, timeout: 5s, jitter: 0}}
max_age: 6h
feeds:
  - url: {feed_a}
    name: outlet-a
  - url: {feed_b}
    name: outlet-b
  - url: {feed_1256}
    name: cp1256
  - url: {feed_seed}
    name: aggregator
destinations:
  desk: {{type: slack, token: "${{TEST_SLACK_TOKEN}}", channel: C0123456, base_url: "{slack}/api/"}}
  archive: {{type: webhook, url: "{hook}/hooks/news", secret: "${{TEST_WEBHOOK_SECRET}}"}}
watchlists:
  - name: moscow
    any: [موسكو]
    notify: [desk, archive]
  - name: islamic-state
    any: [الدولة الإسلامية]
    notify: [archive]
  - name: zelensky
    any: [زيلينسكي]
    notify: [desk, archive]
"""


def test_run_alerts_once_across_restart(
    tmp_path: Path,
    feed_server: FeedServer,
    slack_server: SlackServer,
    webhook_receiver: WebhookReceiver,
) -> None:
    now = time.time()
    a1 = FakeItem(
        "a-1",
        "هجوم موسكو: الكرملين يتهم أوكرانيا",
        "قال الكرملين إن هجوم موسكو دبر في الخارج.",
        "https://a.example/news/1",
        now - 60,
    )
    a2 = FakeItem(
        "a-2",
        "الطقس في الرياض",
        "درجات حرارة مرتفعة في الرياض اليوم.",
        "https://a.example/news/2",
        now - 60,
    )
    old = FakeItem(
        "a-0",
        "أرشيف: موسكو قبل عام",
        "خبر قديم عن موسكو.",
        "https://a.example/news/0",
        now - 86400 * 3,
    )
    feed_a = feed_server.publish("/a.xml", rss([a1, a2, old]))
    # outlet-b republishes a1 under the same link with tracking parameters: the same item.
    b1 = FakeItem("b-77", a1.title, a1.body, a1.link + "?utm_source=rss", now - 30)
    feed_b = feed_server.publish("/b.xml", rss([b1]))
    w1 = FakeItem(
        "w-1",
        "وزير الخارجية الروسي يصل إلى موسكو",
        "وصل الوزير إلى موسكو مساء اليوم.",
        "https://w.example/1",
        now - 120,
    )
    feed_1256 = feed_server.publish(
        "/cp1256.xml",
        rss([w1], encoding="windows-1256"),
        "application/rss+xml; charset=windows-1256",
    )
    seed_doc = (ROOT / "seeds" / "seed_item.xml").read_bytes()
    feed_seed = feed_server.publish("/seed.xml", _fresh(seed_doc))
    cfg = tmp_path / "monitor.yaml"
    cfg.write_text(
        CONFIG.format(
            db=tmp_path / "m.db",
            feed_a=feed_a,
            feed_b=feed_b,
            feed_1256=feed_1256,
            feed_seed=feed_seed,
            slack=slack_server.url,
            hook=webhook_receiver.url,
        ),
        encoding="utf-8",
    )
    log = tmp_path / "daemon.log"

    proc = start(cfg, log)
    try:
        # a1 -> moscow (desk + archive); seed -> moscow (desk + archive) + islamic-state (archive).
        wait_for(
            lambda: len(webhook_receiver.received) >= 4 and len(slack_server.messages) >= 3,
            "the first alerts",
        )
        time.sleep(1.5)  # two more poll rounds: nothing else may arrive
        assert stop(proc) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
    text = log.read_text(encoding="utf-8")
    assert "feed=outlet-a outcome=new" in text
    assert "feed=cp1256 outcome=new" in text
    assert "xoxb-test-token" not in text
    assert WEBHOOK_SECRET not in text

    hooks = [p for _, p, _ in webhook_receiver.received]
    assert all(v for _, _, v in webhook_receiver.received), "every webhook verifies"
    # a1 reaches us from outlet-a and outlet-b (same link): whichever poll lands first alerts.
    feeds_of = sorted(
        (p["watchlist"], p["item"]["feed"]["name"].replace("-b", "-a")) for p in hooks
    )
    assert feeds_of == [
        ("islamic-state", "aggregator"),
        ("moscow", "aggregator"),
        ("moscow", "cp1256"),
        ("moscow", "outlet-a"),
    ]
    assert w1.title in {p["item"]["title"] for p in hooks}, "windows-1256 decodes to correct Arabic"
    assert not any(p["watchlist"] == "zelensky" for p in hooks), "زيلينسكي is only in 'إقرأ أيضاً'"
    assert len(slack_server.messages) == 3
    assert all(m["channel"] == "C0123456" for m in slack_server.messages)
    assert all(m["auth"] == "Bearer xoxb-test-token" for m in slack_server.messages)
    first_ids = {p["id"] for p in hooks}

    # Restart on the same store; publish one new item and re-publish the old ones.
    a3 = FakeItem(
        "a-3",
        "موسكو تستدعي السفير الفرنسي",
        "استدعت موسكو السفير الفرنسي اليوم.",
        "https://a.example/news/3",
        time.time(),
    )
    feed_server.publish("/a.xml", rss([a3, a1, a2, old]))
    proc = start(cfg, log)
    try:
        wait_for(lambda: len(webhook_receiver.received) >= 5, "the alert for the new item")
        time.sleep(1.5)
        assert stop(proc) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
    hooks = [p for _, p, _ in webhook_receiver.received]
    ids = [p["id"] for p in hooks]
    assert len(ids) == len(set(ids)) == 5, "no alert repeated after the restart"
    assert set(ids) - first_ids == {hooks[-1]["id"]}
    assert hooks[-1]["item"]["title"] == a3.title
    assert len(slack_server.messages) == 4


def _fresh(doc: bytes) -> bytes:  # see also monitor.demo.seed_feed
    """Give the seed item a current pubDate so max_age lets it alert."""
    import re
    from email.utils import formatdate

    return re.sub(
        rb"<pubDate>[^<]*</pubDate>",
        b"<pubDate>" + formatdate(time.time(), usegmt=True).encode() + b"</pubDate>",
        doc,
    )
