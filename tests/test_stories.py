"""One story, one alert, end to end: five outlets' feeds on 127.0.0.1 carry the seed story three
times among other stories. Each matching watchlist alerts once; the two later copies become story
updates: `monitor.story.updated` webhooks and Slack thread replies, never new top-level messages."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from monitor.config import Config, loads
from monitor.daemon import build_notifiers
from monitor.fetch import Fetcher
from monitor.pipeline import Pipeline, Sender
from monitor.store.sqlite import SQLiteStore
from tests.conftest import WEBHOOK_SECRET
from tests.feedgen import FakeItem, rss
from tests.helpers import close
from tests.servers import FeedServer, SlackServer, WebhookReceiver
from tests.test_cli import monitor
from tests.test_dedup import EMBEDDED, FOLLOW_UP, FRANCE24, SEED, STRIKE, WIRE

OUTLETS = ["france24", "aggregator", "alarabiya", "skynews", "bbc"]
CONFIG = """\
storage: sqlite:///{db}
poll: {{interval: 60, timeout: 5s, jitter: 0}}
max_age: 6h
feeds:
{feeds}
destinations:
  desk: {{type: slack, token: xoxb-test, channel: C0123456, base_url: "{slack}/api/"}}
  archive: {{type: webhook, url: "{hook}/in", secret: "{secret}"}}
watchlists:
  - name: moscow
    any: [موسكو]
    notify: [desk, archive]
  - name: islamic-state
    any: [الدولة الإسلامية]
    notify: [archive]
"""


@asynccontextmanager
async def wired(cfg: Config, store: SQLiteStore) -> AsyncIterator[tuple[Pipeline, Sender]]:
    """A Pipeline and a Sender on the destinations of `cfg`, closed on the way out."""
    fetcher = Fetcher()
    notifiers = build_notifiers(cfg)
    try:
        yield Pipeline(cfg, store, fetcher), Sender(store, notifiers)
    finally:
        await close(fetcher, notifiers)


def test_one_story_three_outlets_one_alert_two_updates(
    tmp_path: Path,
    feed_server: FeedServer,
    slack_server: SlackServer,
    webhook_receiver: WebhookReceiver,
) -> None:
    now = time.time()
    docs = {
        "france24": [
            FakeItem(
                "f-1",
                "روسيا وفرنسا: اتصال بين وزيري الدفاع",
                FRANCE24,
                "https://f24.example/1",
                now - 3 * 3600,
            ),
            FakeItem(
                "f-2",
                "مقتل 7 مدنيين بغارات على حلب",
                STRIKE.format(n=7, city="حلب", k=3),
                "https://f24.example/2",
                now - 3 * 3600,
            ),
        ],
        "aggregator": [
            FakeItem(
                "g-1",
                "وزير الدفاع الفرنسي يتصل بنظيره الروسي",
                SEED,
                "https://agg.example/1",
                now - 2 * 3600,
            ),
        ],
        "alarabiya": [
            FakeItem(
                "a-1",
                "لوكورنو وشويغو يتحادثان للمرة الأولى منذ 2022",
                WIRE,
                "https://ar.example/1",
                now - 3600,
            ),
            FakeItem(
                "a-2",
                "مقتل 12 مدنيا بغارات على إدلب",
                STRIKE.format(n=12, city="إدلب", k=5),
                "https://ar.example/2",
                now - 3600,
            ),
        ],
        "skynews": [
            FakeItem(
                "s-1",
                "زيلينسكي يدعو الولايات المتحدة إلى تعزيز العقوبات",
                EMBEDDED,
                "https://sky.example/1",
                now - 1800,
            ),
        ],
        "bbc": [
            FakeItem(
                "b-1",
                "موجة حر في الخليج",
                "درجات حرارة قياسية في عدة مدن خليجية اليوم.",
                "https://bbc.example/1",
                now - 600,
            ),
        ],
    }
    feeds = "\n".join(
        f"  - url: {feed_server.publish(f'/{o}.xml', rss(docs[o]))}\n    name: {o}" for o in OUTLETS
    )
    cfg = loads(
        CONFIG.format(
            db=tmp_path / "m.db",
            feeds=feeds,
            slack=slack_server.url,
            hook=webhook_receiver.url,
            secret=WEBHOOK_SECRET,
        ),
        env={},
    )
    store = SQLiteStore(str(tmp_path / "m.db"))

    async def go() -> None:
        async with wired(cfg, store) as (pipe, sender):
            for spec in cfg.feeds:  # one outlet after another, as their polls come due
                report = await pipe.poll(spec)
                assert report.outcome == "new", report
                await sender.send_due()

    asyncio.run(go())

    hooks = [p for _, p, _ in webhook_receiver.received]
    assert all(v for _, _, v in webhook_receiver.received)
    alerts = [p for p in hooks if p["type"] == "monitor.alert"]
    updates = [p for p in hooks if p["type"] == "monitor.story.updated"]
    assert sorted(p["watchlist"] for p in alerts) == ["islamic-state", "moscow"]
    assert {p["item"]["feed"]["name"] for p in alerts} == {"france24"}
    story_id = alerts[0]["story"]["id"]
    assert {p["story"]["id"] for p in alerts} == {story_id}
    # Two updates per alerted watchlist: the aggregator's copy, then alarabiya's rewrite.
    assert sorted(
        (p["watchlist"], p["item"]["feed"]["name"], p["story"]["source_count"]) for p in updates
    ) == [
        ("islamic-state", "aggregator", 2),
        ("islamic-state", "alarabiya", 3),
        ("moscow", "aggregator", 2),
        ("moscow", "alarabiya", 3),
    ]
    assert all(p["story"]["id"] == story_id for p in updates)
    assert updates[-1]["story"]["sources"] == ["france24", "aggregator", "alarabiya"]
    assert len({p["id"] for p in hooks}) == len(hooks) == 6

    # Slack: one top-level message, then two replies in its thread.
    top, *replies = slack_server.messages
    assert "thread_ts" not in top
    assert len(replies) == 2
    assert all(r["thread_ts"] == top["ts"] for r in replies)
    assert "aggregator" in str(replies[0]["text"])
    assert "alarabiya" in str(replies[1]["text"])

    # The store explains the story: who joined, and why.
    items = store.story_items(story_id)
    assert [i.feed for i in items] == ["france24", "aggregator", "alarabiya"]
    assert items[0].reason == "new story"
    assert "containment" in items[1].reason
    assert store.story_of("https://ar.example/1") == story_id
    assert store.story_of("https://ar.example/2") != story_id, (
        "same template, other city and numbers"
    )
    store.close()


def test_story_index_survives_a_restart(
    tmp_path: Path, feed_server: FeedServer, webhook_receiver: WebhookReceiver
) -> None:
    now = time.time()
    a = feed_server.publish(
        "/a.xml",
        rss(
            [
                FakeItem(
                    "f-1", "اتصال بين وزيري الدفاع", FRANCE24, "https://f24.example/1", now - 3600
                )
            ]
        ),
    )
    b = feed_server.publish(
        "/b.xml",
        rss(
            [
                FakeItem(
                    "g-1",
                    "وزير الدفاع الفرنسي يتصل بنظيره",
                    SEED,
                    "https://agg.example/1",
                    now - 60,
                )
            ]
        ),
    )
    text = CONFIG.format(
        db=tmp_path / "m.db",
        feeds=f"  - url: {a}\n    name: a\n  - url: {b}\n    name: b",
        slack="http://127.0.0.1:9",
        hook=webhook_receiver.url,
        secret=WEBHOOK_SECRET,
    )
    cfg = loads(text, env={})

    async def poll(i: int) -> None:
        store = SQLiteStore(str(tmp_path / "m.db"))
        fetcher = Fetcher()
        pipe = Pipeline(cfg, store, fetcher)  # a fresh process: the index comes from the store
        await pipe.poll(cfg.feeds[i])
        await fetcher.aclose()
        store.close()

    asyncio.run(poll(0))
    asyncio.run(poll(1))
    store = SQLiteStore(str(tmp_path / "m.db"))
    first, second = store.story_of("https://f24.example/1"), store.story_of("https://agg.example/1")
    assert first is not None
    assert first == second
    store.close()


# A follow-up of the strike story: a new lead (the funerals, no new numbers), then the story's
# own paragraphs below it as background.
STRIKE_FOLLOW_UP = (
    "شيع آلاف من سكان المدينة ظهر الأربعاء ضحايا الغارات الجوية في جنازة جماعية انطلقت من "
    "الجامع الكبير وسط هتافات غاضبة، فيما أعلنت السلطات المحلية الحداد العام وإغلاق المدارس "
    "والأسواق، وطالبت منظمات إنسانية بتحقيق دولي مستقل في استهداف المناطق السكنية المكتظة."
    "\n\n" + "\n\n".join(STRIKE.format(n=7, city="حلب", k=3).split("\n\n")[1:])
)
FOLLOW_WATCHLIST = """\
  - name: syria
    any: [سوريا]
    notify: [desk, archive]
"""


def test_a_follow_up_alerts_as_a_new_story_that_names_the_story_it_follows(
    tmp_path: Path,
    feed_server: FeedServer,
    slack_server: SlackServer,
    webhook_receiver: WebhookReceiver,
) -> None:
    """A new lead on an earlier story's text is a new development: it alerts, and the alert
    names the story it follows (its first title and URL), whether that story was stored by an
    earlier poll (france24) or opened by the same poll (alarabiya)."""
    now = time.time()
    call = FakeItem(
        "f-1",
        "روسيا وفرنسا: اتصال بين وزيري الدفاع",
        FRANCE24,
        "https://f24.example/1",
        now - 3 * 3600,
    )
    visit = FakeItem(
        "f-3", "بوتين يستقبل توكاييف في سوتشي", FOLLOW_UP, "https://f24.example/3", now - 3600
    )
    strike = FakeItem(
        "a-1",
        "مقتل 7 مدنيين بغارات على حلب",
        STRIKE.format(n=7, city="حلب", k=3),
        "https://ar.example/1",
        now - 2 * 3600,
    )
    funerals = FakeItem(
        "a-2", "حلب تشيع ضحايا الغارات", STRIKE_FOLLOW_UP, "https://ar.example/2", now - 1800
    )
    f24 = feed_server.publish("/france24.xml", rss([call]))
    ar = feed_server.publish("/alarabiya.xml", rss([funerals, strike]))
    cfg_file = tmp_path / "c.yaml"  # for `monitor story` below
    cfg_file.write_text(
        CONFIG.format(
            db=tmp_path / "m.db",
            feeds=f"  - {{url: {f24}, name: france24}}\n  - {{url: {ar}, name: alarabiya}}",
            slack=slack_server.url,
            hook=webhook_receiver.url,
            secret=WEBHOOK_SECRET,
        )
        + FOLLOW_WATCHLIST,
        encoding="utf-8",
    )
    cfg = loads(cfg_file.read_text(encoding="utf-8"), env={})
    store = SQLiteStore(str(tmp_path / "m.db"))

    async def go() -> None:
        async with wired(cfg, store) as (pipe, sender):
            await pipe.poll(cfg.feeds[0])  # the call, alone
            feed_server.publish("/france24.xml", rss([visit, call]))
            await pipe.poll(cfg.feeds[0])  # then its follow-up
            await pipe.poll(cfg.feeds[1])  # the strike and its follow-up in one document
            await sender.send_due()

    asyncio.run(go())

    hooks = [p for _, p, _ in webhook_receiver.received]
    alerts = {
        (p["watchlist"], p["item"]["url"]): p
        for p in hooks
        if p["type"] == "monitor.alert" and p["watchlist"] != "islamic-state"
    }
    assert sorted(alerts) == [
        ("moscow", "https://f24.example/1"),
        ("moscow", "https://f24.example/3"),
        ("syria", "https://ar.example/1"),
        ("syria", "https://ar.example/2"),
    ], "a follow-up is a new story: it alerts"
    assert not any(p["type"] == "monitor.story.updated" for p in hooks)
    first_call = alerts[("moscow", "https://f24.example/1")]["story"]
    first_strike = alerts[("syria", "https://ar.example/1")]["story"]
    assert "follows" not in first_call
    assert "follows" not in first_strike
    assert alerts[("moscow", "https://f24.example/3")]["story"]["follows"] == {
        "story": first_call["id"],
        "item": first_call["id"],
        "title": "روسيا وفرنسا: اتصال بين وزيري الدفاع",
        "url": "https://f24.example/1",
        "feed": "france24",
    }
    assert alerts[("syria", "https://ar.example/2")]["story"]["follows"] == {
        "story": first_strike["id"],
        "item": first_strike["id"],
        "title": "مقتل 7 مدنيين بغارات على حلب",
        "url": "https://ar.example/1",
        "feed": "alarabiya",
    }

    # Slack: four top-level messages; the two follow-ups name the story they follow.
    messages = slack_server.messages
    assert len(messages) == 4
    assert not any("thread_ts" in m for m in messages)

    def texts(message: dict[str, Any]) -> str:
        blocks = message["blocks"]
        parts = [b["text"] for b in blocks if "text" in b]
        parts += [e for b in blocks for e in b.get("elements", [])]
        return "\n".join(p["text"] for p in parts)

    follows = [texts(m) for m in messages if "Follows an earlier story" in texts(m)]
    assert len(follows) == 2
    # Titles are bidi-isolated (render.slack_field), as every feed text in a message is.
    assert "<https://f24.example/1|\u2068روسيا وفرنسا: اتصال بين وزيري الدفاع\u2069>" in follows[0]
    assert "<https://ar.example/1|\u2068مقتل 7 مدنيين بغارات على حلب\u2069>" in follows[1]

    # `monitor story` says why the follow-up opened a story of its own, and lists, under the
    # story it follows, the new stories that followed it.
    shown = monitor("-c", str(cfg_file), "story", "--json", "https://f24.example/1")
    assert shown.returncode == 0, shown.stderr
    followed = json.loads(shown.stdout)["followed_by"]
    assert [(f["url"], f["title"]) for f in followed] == [
        ("https://f24.example/3", "بوتين يستقبل توكاييف في سوتشي")
    ]
    text = monitor("-c", str(cfg_file), "story", "https://ar.example/1").stdout
    assert "followed by 1 new stories" in text
    assert "حلب تشيع ضحايا الغارات" in text
    later = monitor("-c", str(cfg_file), "story", "--json", "https://f24.example/3").stdout
    assert json.loads(later)["followed_by"] == [], "the follow-up itself is followed by nothing"
    (visit_item,) = store.story_items(alerts[("moscow", "https://f24.example/3")]["story"]["id"])
    assert visit_item.reason.startswith(
        f"new story, following story {first_call['id']} (item {first_call['id']} of france24): "
        "lead "
    )
    store.close()
