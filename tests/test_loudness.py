"""Digests, quiet hours, urgent priority and the hourly cap, driven by a controllable clock:
the right alerts land in the right digest, once; urgent ones go through at once."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, time
from pathlib import Path

import pytest

from monitor.config import loads
from monitor.daemon import build_notifiers
from monitor.fetch import Fetcher
from monitor.loudness import Loudness, Quiet, release
from monitor.pipeline import Pipeline, Sender
from monitor.store.sqlite import SQLiteStore
from tests.conftest import WEBHOOK_SECRET
from tests.feedgen import FakeItem, rss
from tests.helpers import Clock
from tests.servers import FeedServer, WebhookReceiver


def ts(s: str) -> float:
    return datetime.fromisoformat(s).replace(tzinfo=UTC).timestamp()


RIYADH_NIGHT = Quiet(time(22, 0), time(7, 0), "Asia/Riyadh")  # UTC+3: 19:00-04:00 UTC


@pytest.mark.parametrize(
    ("rules", "created", "sent", "expected"),
    [
        (Loudness(), "2026-06-01T10:05", 0, ("2026-06-01T10:05", None)),
        (Loudness(digest_every=3600), "2026-06-01T10:05", 0, ("2026-06-01T11:00", "digest")),
        (Loudness(digest_every=3600), "2026-06-01T10:59", 0, ("2026-06-01T11:00", "digest")),
        (Loudness(digest_every=3600), "2026-06-01T11:00", 0, ("2026-06-01T12:00", "digest")),
        (Loudness(quiet=RIYADH_NIGHT), "2026-06-01T20:00", 0, ("2026-06-02T04:00", "quiet")),
        (Loudness(quiet=RIYADH_NIGHT), "2026-06-02T03:59", 0, ("2026-06-02T04:00", "quiet")),
        (Loudness(quiet=RIYADH_NIGHT), "2026-06-02T04:00", 0, ("2026-06-02T04:00", None)),
        (Loudness(quiet=RIYADH_NIGHT), "2026-06-01T18:59", 0, ("2026-06-01T18:59", None)),
        (
            Loudness(digest_every=3600, quiet=RIYADH_NIGHT),
            "2026-06-01T18:30",
            0,
            ("2026-06-02T04:00", "quiet"),
        ),
        (
            Loudness(digest_every=3600, quiet=RIYADH_NIGHT, urgent=True),
            "2026-06-01T20:00",
            0,
            ("2026-06-01T20:00", None),
        ),
        (Loudness(max_per_hour=2), "2026-06-01T10:05", 1, ("2026-06-01T10:05", None)),
        (Loudness(max_per_hour=2), "2026-06-01T10:05", 2, ("2026-06-01T11:00", "capped")),
        (
            Loudness(max_per_hour=2, urgent=True),
            "2026-06-01T10:05",
            2,
            ("2026-06-01T11:00", "capped"),
        ),
    ],
    ids=[
        "default-sends-at-once",
        "digest-waits-for-the-end-of-the-period",
        "digest-one-minute-before-the-hour",
        "digest-on-the-boundary-goes-to-the-next-period",
        "quiet-across-midnight-in-riyadh-holds-to-07:00-local",
        "quiet-last-minute",
        "quiet-ends-exactly-at-07:00-local",
        "before-quiet-starts-sends-at-once",
        "digest-ending-inside-quiet-hours-waits-for-their-end",
        "urgent-bypasses-digest-and-quiet",
        "under-the-cap-sends-at-once",
        "over-the-cap-joins-the-hourly-summary",
        "the-cap-holds-urgent-too",
    ],
)
def test_release_rules(
    rules: Loudness, created: str, sent: int, expected: tuple[str, str | None]
) -> None:
    r = release("w", rules, ts(created), sent)
    at, kind = expected
    assert r.at == ts(at)
    assert (r.key is None) == (kind is None)
    if kind is not None:
        assert r.kind == kind
        assert r.key == f"{'cap' if kind == 'capped' else kind}:w:{int(ts(at))}"


CONFIG = """\
storage: sqlite:///{db}
poll: {{interval: 60, timeout: 5s, jitter: 0}}
max_age: 1000d
feeds:
  - {{url: "{feed}", name: wire}}
destinations:
  hook: {{type: webhook, url: "{hook}/in", secret: "{secret}"}}
watchlists:
  - name: hourly
    any: [موسكو]
    digest: {{every: 1h}}
    notify: [hook]
  - name: night
    any: [كييف]
    quiet: {{from: "22:00", to: "07:00", tz: Asia/Riyadh}}
    notify: [hook]
  - name: urgent
    any: [عاجل]
    digest: {{every: 1h}}
    quiet: {{from: "22:00", to: "07:00", tz: Asia/Riyadh}}
    priority: urgent
    notify: [hook]
  - name: capped
    any: [دمشق]
    max_per_hour: 2
    notify: [hook]
"""


def test_digests_quiet_hours_urgent_and_cap(
    tmp_path: Path, feed_server: FeedServer, webhook_receiver: WebhookReceiver
) -> None:
    url = feed_server.publish("/wire.xml", b"")
    cfg = loads(
        CONFIG.format(
            db=tmp_path / "m.db", feed=url, hook=webhook_receiver.url, secret=WEBHOOK_SECRET
        ),
        env={},
    )
    store = SQLiteStore(str(tmp_path / "m.db"))
    clock = Clock(ts("2026-06-01T10:05"))
    n = 0

    def publish(*titles: str) -> None:
        nonlocal n
        items = []
        for t in titles:
            n += 1
            items.append(FakeItem(f"g{n}", t, t + " والتفاصيل.", f"https://w.example/{n}", clock.t))
        feed_server.publish("/wire.xml", rss(items))

    def received() -> list[tuple[str, str, int]]:
        return [
            (p["type"], p["watchlist"], p.get("count", 1)) for _, p, _ in webhook_receiver.received
        ]

    async def go() -> None:
        fetcher = Fetcher()
        notifiers = build_notifiers(cfg)
        pipe = Pipeline(cfg, store, fetcher, clock=clock)
        sender = Sender(store, notifiers, clock=clock)

        async def step(at: str, *titles: str) -> None:
            clock.t = ts(at)
            if titles:
                publish(*titles)
                await pipe.poll(cfg.feeds[0])
            await sender.send_due()

        await step(
            "2026-06-01T10:05",
            "وفد في موسكو",
            "عاجل: زلزال",
            "مؤتمر في دمشق الأول",
            "دمشق الثاني",
            "دمشق الثالث",
            "دمشق الرابع",
            "دمشق الخامس",
        )
        # urgent at once; the cap lets two through now
        assert sorted(received()) == [("monitor.alert", "capped", 1)] * 2 + [
            ("monitor.alert", "urgent", 1)
        ]
        await step("2026-06-01T10:40", "محادثات موسكو")
        await step("2026-06-01T10:59")
        assert len(received()) == 3, "nothing more before the hour"
        await step("2026-06-01T11:00")
        digests = [p for _, p, _ in webhook_receiver.received if p["type"] == "monitor.digest"]
        assert sorted((p["watchlist"], p["kind"], p["count"]) for p in digests) == [
            ("capped", "capped", 3),
            ("hourly", "digest", 2),
        ]
        hourly = next(p for p in digests if p["watchlist"] == "hourly")
        assert [a["item"]["title"] for a in hourly["alerts"]] == ["وفد في موسكو", "محادثات موسكو"]
        # quiet hours in Riyadh: 23:00 local is 20:00 UTC
        await step("2026-06-01T20:00", "انفجار في كييف", "عاجل: كييف")
        assert received()[-1] == ("monitor.alert", "urgent", 1)
        await step("2026-06-01T23:00", "كييف ليلا")
        await step("2026-06-02T03:59")
        assert not any(w == "night" for _, w, _ in received()), "held during quiet hours"
        await step("2026-06-02T04:00")
        night = [p for _, p, _ in webhook_receiver.received if p["watchlist"] == "night"]
        assert len(night) == 1
        assert night[0]["type"] == "monitor.digest"
        assert night[0]["kind"] == "quiet"
        # "عاجل: كييف" went at once to `urgent`, and waits with the rest for `night`
        assert [a["item"]["title"] for a in night[0]["alerts"]] == [
            "انفجار في كييف",
            "عاجل: كييف",
            "كييف ليلا",
        ]
        await step("2026-06-02T09:00")
        for x in notifiers.values():
            await x.aclose()
        await fetcher.aclose()

    asyncio.run(go())
    ids = [h["webhook-id"] for h, _, _ in webhook_receiver.received]
    assert len(ids) == len(set(ids)), "every alert and digest delivered once"
    assert all(v for _, _, v in webhook_receiver.received)
    assert store.deliveries() == [], "nothing left waiting"
    store.close()


def test_quiet_config_is_validated(tmp_path: Path) -> None:
    from monitor.errors import ConfigError

    text = (
        "feeds: []\ndestinations: {d: {type: console}}\nwatchlists:\n"
        "  - name: w\n    any: [x]\n    notify: [d]\n"
        "    quiet: {from: '25:00', to: '07:00', tz: Mars/Olympus}\n"
    )
    with pytest.raises(ConfigError) as info:
        loads(text, path="c.yaml", env={})
    msgs = [str(p) for p in info.value.problems]
    assert any("watchlists[0].quiet.from: expected a time of day" in m for m in msgs), msgs
    assert any("watchlists[0].quiet.tz: unknown time zone 'Mars/Olympus'" in m for m in msgs), msgs
