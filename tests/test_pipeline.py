"""The pipeline in-process against real local servers and a real SQLite file: poll, dedup by
identity, max_age, conditional GET, failures isolated per feed, and the sender's retry ladder."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from monitor.config import Config, loads
from monitor.daemon import build_notifiers
from monitor.fetch import Fetcher
from monitor.pipeline import Pipeline, Sender
from monitor.store.sqlite import SQLiteStore
from tests.conftest import WEBHOOK_SECRET
from tests.feedgen import FakeItem, rss
from tests.helpers import Clock, close
from tests.servers import FeedServer, Response, WebhookReceiver

CONFIG = """\
storage: sqlite:///{db}
poll: {{interval: 60, timeout: 3s, jitter: 0, max_backoff: 10m}}
max_age: 6h
feeds:
  - url: {a}
    name: outlet-a
  - url: {b}
    name: outlet-b
destinations:
  archive: {{type: webhook, url: "{hook}/in", secret: "{secret}"}}
watchlists:
  - name: moscow
    any: [موسكو]
    notify: [archive]
"""


def setup(
    tmp_path: Path, feeds: FeedServer, hook: WebhookReceiver, poll: str = "", more: str = ""
) -> Config:
    """CONFIG for these servers; `poll` adds keys to the poll mapping, `more` top-level YAML."""
    text = CONFIG.format(
        db=tmp_path / "m.db",
        a=feeds.url + "/a.xml",
        b=feeds.url + "/b.xml",
        hook=hook.url,
        secret=WEBHOOK_SECRET,
    )
    if poll:
        text = text.replace("max_backoff: 10m}", f"max_backoff: 10m, {poll}}}")
    return loads(text + more, env={})


def item(n: int, title: str, published: float, link: str | None = None) -> FakeItem:
    return FakeItem(
        f"g-{n}", title, title + " والتفاصيل في النص.", link or f"https://a.example/{n}", published
    )


def run(coro):  # type: ignore[no-untyped-def]
    return asyncio.run(coro)


def test_poll_match_outbox_send(
    tmp_path: Path, feed_server: FeedServer, webhook_receiver: WebhookReceiver
) -> None:
    now = time.time()
    feed_server.publish(
        "/a.xml",
        rss(
            [
                item(1, "وصول وفد إلى موسكو", now - 100),
                item(2, "مباراة كرة قدم في القاهرة", now - 100),
                item(
                    3, "موسكو قبل ثلاثة أيام", now - 3 * 86400
                ),  # older than max_age: never alerts
            ]
        ),
    )
    # outlet-b carries item 1 again, with tracking parameters on its link.
    feed_server.publish(
        "/b.xml",
        rss(
            [
                FakeItem(
                    "other-guid",
                    "وصول وفد إلى موسكو",
                    "نص",
                    "https://a.example/1?utm_source=x",
                    now - 50,
                )
            ]
        ),
    )
    cfg = setup(tmp_path, feed_server, webhook_receiver)
    store = SQLiteStore(str(tmp_path / "m.db"))
    clock = Clock(now)

    async def go() -> None:
        fetcher = Fetcher()
        pipe = Pipeline(cfg, store, fetcher, clock=clock)
        notifiers = build_notifiers(cfg)
        sender = Sender(store, notifiers, clock=clock)
        ra = await pipe.poll(cfg.feeds[0])
        assert (ra.outcome, ra.items, ra.new_items, ra.alerts) == ("new", 3, 3, 1)
        rb = await pipe.poll(cfg.feeds[1])
        assert (rb.outcome, rb.new_items, rb.alerts) == ("new", 0, 0), "same item, other outlet"
        assert await sender.send_due() == 1
        again = await pipe.poll(cfg.feeds[0])
        assert again.outcome == "not_modified", "conditional GET with the stored ETag"
        assert await sender.send_due() == 0
        await close(fetcher, notifiers)

    run(go())
    assert len(webhook_receiver.received) == 1
    headers, payload, verified = webhook_receiver.received[0]
    assert verified
    assert payload["type"] == "monitor.alert"
    assert payload["watchlist"] == "moscow"
    assert payload["matched"] == ["موسكو"]
    assert payload["item"]["title"] == "وصول وفد إلى موسكو"
    assert payload["item"]["feed"] == {"name": "outlet-a", "url": feed_server.url + "/a.xml"}
    assert payload["story"]["id"]
    assert headers["webhook-id"] == payload["id"]
    store.close()


def test_failing_feed_backs_off_and_touches_no_other(
    tmp_path: Path, feed_server: FeedServer, webhook_receiver: WebhookReceiver
) -> None:
    now = time.time()
    feed_server.publish("/a.xml", rss([item(1, "موسكو اليوم", now - 10)]))
    feed_server.overrides["/b.xml"] = lambda req: Response(503, b"down", {"Retry-After": "120"})
    cfg = setup(tmp_path, feed_server, webhook_receiver)
    store = SQLiteStore(str(tmp_path / "m.db"))

    async def go() -> None:
        fetcher = Fetcher()
        pipe = Pipeline(cfg, store, fetcher, clock=Clock(now))
        rb, ra = await asyncio.gather(pipe.poll(cfg.feeds[1]), pipe.poll(cfg.feeds[0]))
        assert rb.outcome == "error"
        assert "503" in (rb.error or "")
        assert rb.next_in >= 120, "Retry-After honoured"
        assert ra.alerts == 1
        feed_server.overrides["/b.xml"] = lambda req: Response(500, b"broken")
        delays = []
        for _ in range(6):
            r = await pipe.poll(cfg.feeds[1])
            delays.append(r.next_in)
        assert delays == sorted(delays), "backoff grows"
        assert delays[-1] <= 600 * 1.5, "and is capped (max_backoff, with jitter)"
        st = store.feed_state(cfg.feeds[1].url)
        assert st.error_streak == 7
        del feed_server.overrides["/b.xml"]
        feed_server.publish("/b.xml", rss([item(9, "خبر", now)]))
        rec = await pipe.poll(cfg.feeds[1])
        assert rec.outcome == "new"
        assert store.feed_state(cfg.feeds[1].url).error_streak == 0, (
            "recovers when the feed is back"
        )
        await fetcher.aclose()

    run(go())
    store.close()


def test_webhook_500_is_retried_on_the_ladder_with_the_same_id(
    tmp_path: Path, feed_server: FeedServer, webhook_receiver: WebhookReceiver
) -> None:
    now = time.time()
    feed_server.publish("/a.xml", rss([item(1, "موسكو تعلن", now - 10)]))
    cfg = setup(tmp_path, feed_server, webhook_receiver)
    store = SQLiteStore(str(tmp_path / "m.db"))
    clock = Clock(now)
    webhook_receiver.script.extend([Response(500, b"oops"), Response(502, b"bad gateway")])

    async def go() -> None:
        fetcher = Fetcher()
        notifiers = build_notifiers(cfg)
        pipe = Pipeline(cfg, store, fetcher, clock=clock)
        sender = Sender(store, notifiers, clock=clock, ladder=(5, 300))
        await pipe.poll(cfg.feeds[0])
        assert await sender.send_due() == 0  # 500
        assert await sender.send_due() == 0  # not due yet: nothing sent
        clock.t += 5
        assert await sender.send_due() == 0  # 502
        clock.t += 299
        assert await sender.send_due() == 0
        clock.t += 1
        assert await sender.send_due() == 1
        await close(fetcher, notifiers)

    run(go())
    ids = [h["webhook-id"] for h, _, _ in webhook_receiver.received]
    stamps = [h["webhook-timestamp"] for h, _, _ in webhook_receiver.received]
    assert len(ids) == 3
    assert len(set(ids)) == 1, "the same webhook-id on every try"
    assert all(v for _, _, v in webhook_receiver.received), "a fresh valid signature per try"
    assert stamps == sorted(stamps)
    store.close()


@pytest.mark.parametrize("status", [410, 400], ids=["410-gone-disables", "4xx-is-permanent"])
def test_permanent_failures_become_dead_letters(
    tmp_path: Path, feed_server: FeedServer, webhook_receiver: WebhookReceiver, status: int
) -> None:
    now = time.time()
    feed_server.publish("/a.xml", rss([item(1, "موسكو تعلن", now - 10)]))
    cfg = setup(tmp_path, feed_server, webhook_receiver)
    store = SQLiteStore(str(tmp_path / "m.db"))
    webhook_receiver.script.append(Response(status, b"no"))

    async def go() -> None:
        fetcher = Fetcher()
        pipe = Pipeline(cfg, store, fetcher, clock=Clock(now))
        notifiers = build_notifiers(cfg)
        sender = Sender(store, notifiers, clock=Clock(now + 10_000))
        await pipe.poll(cfg.feeds[0])
        await sender.send_due()
        await sender.send_due()
        await close(fetcher, notifiers)

    run(go())
    (row,) = store.deliveries()
    assert row.state == "dead"
    assert str(status) in (row.last_error or "")
    assert len(webhook_receiver.received) == 1
    store.close()


def test_hazard_21_unhealthy_feed_is_reported_once_and_recovery_too(
    tmp_path: Path, feed_server: FeedServer, webhook_receiver: WebhookReceiver
) -> None:
    cfg = setup(
        tmp_path, feed_server, webhook_receiver, "unhealthy_after: 3", "operator: [archive]\n"
    )
    store = SQLiteStore(str(tmp_path / "m.db"))
    feed_server.overrides["/b.xml"] = lambda req: Response(410, b"gone")
    clock = Clock(time.time())

    async def go() -> None:
        fetcher = Fetcher()
        notifiers = build_notifiers(cfg)
        pipe = Pipeline(cfg, store, fetcher, clock=clock)
        sender = Sender(store, notifiers, clock=clock)
        for _ in range(6):
            r = await pipe.poll(cfg.feeds[1])
            assert r.outcome == "error"
            await sender.send_due()
            clock.t += 60
        del feed_server.overrides["/b.xml"]
        feed_server.publish("/b.xml", rss([item(1, "خبر عادي", clock.t)]))
        assert (await pipe.poll(cfg.feeds[1])).outcome == "new"
        assert (await pipe.poll(cfg.feeds[1])).outcome == "not_modified"
        await sender.send_due()
        await close(fetcher, notifiers)

    run(go())
    notices = [p for _, p, _ in webhook_receiver.received]
    assert [p["type"] for p in notices] == ["monitor.notice", "monitor.notice"]
    assert "outlet-b is unhealthy: 3 failed polls" in notices[0]["item"]["title"]
    assert "410" in notices[0]["item"]["title"]
    assert "outlet-b recovered after 6 failed polls" in notices[1]["item"]["title"]
    assert store.feed_state(cfg.feeds[1].url).error_streak == 0
    store.close()


def test_operator_must_name_a_destination(tmp_path: Path) -> None:
    from monitor.errors import ConfigError

    with pytest.raises(ConfigError, match=r"operator\[0\]: unknown destination 'pager'"):
        loads("feeds: []\ndestinations: {}\nwatchlists: []\noperator: [pager]\n", env={})


def test_hazard_07_items_over_the_per_poll_cap_are_suppressed_and_the_operator_told(
    tmp_path: Path, feed_server: FeedServer, webhook_receiver: WebhookReceiver
) -> None:
    now = time.time()
    feed_server.publish("/a.xml", rss([item(i, f"موسكو {i}", now - 100 - i) for i in range(8)]))
    cfg = setup(tmp_path, feed_server, webhook_receiver, "max_items: 5", "operator: [archive]\n")
    store = SQLiteStore(str(tmp_path / "m.db"))

    async def go() -> None:
        fetcher = Fetcher()
        notifiers = build_notifiers(cfg)
        pipe = Pipeline(cfg, store, fetcher, clock=Clock(now))
        report = await pipe.poll(cfg.feeds[0])
        assert (report.new_items, report.alerts) == (8, 6), "5 alerts and 1 notice"
        await Sender(store, notifiers, clock=Clock(now)).send_due()
        assert (await pipe.poll(cfg.feeds[0])).new_items == 0, "the other 3 were marked seen"
        await close(fetcher, notifiers)

    run(go())
    bodies = [p for _, p, _ in webhook_receiver.received]
    alerts = [p["item"]["title"] for p in bodies if p["type"] == "monitor.alert"]
    assert alerts == [f"موسكو {i}" for i in reversed(range(5))], (
        "the newest five, in publication order"
    )
    (notice,) = [p for p in bodies if p["type"] == "monitor.notice"]
    assert "8 new items in one poll" in notice["item"]["title"]
    assert "3 more were suppressed" in notice["item"]["title"]
    store.close()


def _row(store: SQLiteStore, url: str) -> tuple[int, str]:
    (row,) = [r for r in store.feed_rows() if r["url"] == url]
    return row["polls"], row["last_status"]


def test_quiet_outcomes_are_written_together_and_before_the_feed_is_read_again(
    tmp_path: Path, feed_server: FeedServer, webhook_receiver: WebhookReceiver
) -> None:
    """With `defer_quiet` (the daemon's setting), a healthy feed's 304 is written with the
    others of the next QUIET_DELAY seconds in one transaction; it is written before that feed is
    read for its next poll, on flush, and by the timer, so nothing is skipped or counted twice."""
    now = time.time()
    feed_server.publish("/a.xml", rss([item(1, "خبر", now - 60)]))
    feed_server.publish("/b.xml", rss([item(2, "خبر آخر", now - 60)]))
    cfg = setup(tmp_path, feed_server, webhook_receiver)
    store = SQLiteStore(str(tmp_path / "m.db"))
    a, b = (f.url for f in cfg.feeds)

    async def go() -> None:
        fetcher = Fetcher()
        pipe = Pipeline(cfg, store, fetcher)
        pipe.defer_quiet = True
        assert (await pipe.poll(cfg.feeds[0])).outcome == "new"
        assert _row(store, a) == (1, "new"), "a poll with items is written at once"
        assert (await pipe.poll(cfg.feeds[0])).outcome == "not_modified"
        assert _row(store, a) == (1, "new"), "the 304 waits for others"
        assert (await pipe.poll(cfg.feeds[0])).outcome == "not_modified", "validators kept"
        assert _row(store, a) == (2, "not_modified"), "the waiting 304 went first"
        pipe.flush_feeds()
        assert _row(store, a) == (3, "not_modified")
        await pipe.poll(cfg.feeds[1])
        await pipe.poll(cfg.feeds[1])
        assert _row(store, b) == (1, "new")
        await asyncio.sleep(pipe.QUIET_DELAY + 0.2)
        assert _row(store, b) == (2, "not_modified"), "written by the timer"
        await fetcher.aclose()

    run(go())
    store.close()


def test_a_failing_feeds_recovery_is_written_at_once(
    tmp_path: Path, feed_server: FeedServer, webhook_receiver: WebhookReceiver
) -> None:
    """A 304 after failures ends an error streak (and may tell the operator): not deferred."""
    now = time.time()
    feed_server.publish("/a.xml", rss([item(1, "خبر", now - 60)]))
    cfg = setup(tmp_path, feed_server, webhook_receiver)
    store = SQLiteStore(str(tmp_path / "m.db"))
    url = cfg.feeds[0].url

    async def go() -> None:
        fetcher = Fetcher()
        pipe = Pipeline(cfg, store, fetcher)
        pipe.defer_quiet = True
        await pipe.poll(cfg.feeds[0])
        feed_server.overrides["/a.xml"] = lambda req: Response(503, b"down")
        assert (await pipe.poll(cfg.feeds[0])).outcome == "error"
        assert store.feed_state(url).error_streak == 1
        del feed_server.overrides["/a.xml"]
        assert (await pipe.poll(cfg.feeds[0])).outcome == "not_modified"
        assert store.feed_state(url).error_streak == 0, "written at once"
        await fetcher.aclose()

    run(go())
    store.close()


def test_the_daemon_writes_waiting_quiet_outcomes_when_it_closes(
    tmp_path: Path, feed_server: FeedServer, webhook_receiver: WebhookReceiver
) -> None:
    from monitor.daemon import Daemon

    now = time.time()
    feed_server.publish("/a.xml", rss([item(1, "خبر", now - 60)]))
    feed_server.publish("/b.xml", rss([item(2, "خبر آخر", now - 60)]))
    cfg = setup(tmp_path, feed_server, webhook_receiver)

    async def go() -> None:
        daemon = Daemon(cfg, use_pool=False)
        await daemon.poll_all()
        await daemon.poll_all()  # both 304, waiting
        await daemon.close()

    run(go())
    store = SQLiteStore(str(tmp_path / "m.db"))
    assert [_row(store, f.url) for f in cfg.feeds] == [(2, "not_modified")] * 2
    store.close()
