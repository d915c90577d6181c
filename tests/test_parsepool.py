"""The parse pool: worker processes with a deadline and a memory limit; a dead worker costs
only the feed that killed it (HAZARDS 2, 31)."""

from __future__ import annotations

import asyncio
import os
import signal
import time

import pytest

from monitor.errors import ParseError
from monitor.models import FeedSpec, TermSpec, WatchlistSpec
from monitor.parsepool import ParsePool
from tests.feedgen import FakeItem, rss

URL = "http://127.0.0.1/feed.xml"
WATCHLISTS = (WatchlistSpec("moscow", any=(TermSpec("موسكو"),), notify=("d",)),)


def spec(name: str) -> FeedSpec:
    return FeedSpec(URL, name, 60.0, 10.0)


def feed(n: int, body: str = "نص الخبر عن موسكو والكرملين. ") -> bytes:
    now = time.time()
    return rss(
        [
            FakeItem(f"g{i}", f"خبر رقم {i}", body * 20, f"https://x.example/{i}", now)
            for i in range(n)
        ]
    )


@pytest.fixture
def pool() -> ParsePool:
    p = ParsePool(workers=2, deadline=10.0, watchlists=WATCHLISTS)
    yield p  # type: ignore[misc]
    p.shutdown()


def test_parses_identifies_fingerprints_and_matches_in_a_worker(pool: ParsePool) -> None:
    out = asyncio.run(pool.analyze(spec("f"), feed(5), None, 100, time.time()))
    assert [a.item.title for a in out] == [f"خبر رقم {i}" for i in range(5)]
    assert len({a.item.id for a in out}) == 5
    assert all(a.fingerprint.words > 0 for a in out)
    assert all([m.watchlist for m in a.matches] == ["moscow"] for a in out)


def test_new_watchlists_reach_the_workers(pool: ParsePool) -> None:
    pool.reconfigure((WatchlistSpec("kremlin", any=(TermSpec("الكرملين"),), notify=("d",)),))
    out = asyncio.run(pool.analyze(spec("f"), feed(1), None, 100, time.time()))
    assert [m.watchlist for m in out[0].matches] == ["kremlin"]


def test_not_a_feed_is_a_parse_error_of_that_feed(pool: ParsePool) -> None:
    with pytest.raises(ParseError, match="not a feed") as info:
        asyncio.run(
            pool.analyze(
                spec("f"), b"<html><body>hello</body></html>", "text/html", 100, time.time()
            )
        )
    assert info.value.feed == "f"


def test_hazard_02_deadline_ends_a_long_parse() -> None:
    slow = ParsePool(workers=1, deadline=0.05)
    try:
        with pytest.raises(ParseError, match=r"longer than 0\.05s"):
            asyncio.run(slow.analyze(spec("big"), feed(3000), None, 100_000, time.time()))
        # the worker survived its deadline and parses the next feed
        slow.deadline = 10.0
        assert asyncio.run(slow.analyze(spec("small"), feed(2), None, 100, time.time()))
        assert slow.restarts == 0
    finally:
        slow.shutdown()


def test_hazard_02_memory_limit_fails_only_that_feed() -> None:
    tight = ParsePool(workers=1, deadline=10.0, memory=400 << 20)
    try:
        # 60 MB of one text node: feedparser's copies exceed 400 MB of address space
        huge = rss([FakeItem("g", "عنوان", "ك" * 30_000_000, "https://x.example/1", time.time())])
        with pytest.raises(ParseError, match="more memory"):
            asyncio.run(tight.analyze(spec("huge"), huge, None, 10, time.time()))
        assert asyncio.run(tight.analyze(spec("small"), feed(2), None, 100, time.time()))
    finally:
        tight.shutdown()


def test_hazard_31_a_killed_worker_costs_only_its_own_feed(pool: ParsePool) -> None:
    async def go() -> None:
        doomed = asyncio.create_task(
            pool.analyze(spec("doomed"), feed(6000), None, 100_000, time.time())
        )
        await asyncio.sleep(0.3)
        for pid in list(pool._pool._processes or {}):  # the test plays the OOM killer
            os.kill(pid, signal.SIGKILL)
        # The parse in flight is tried again on a fresh pool, and succeeds.
        parsed = await doomed
        assert len(parsed) == 6000
        assert pool.restarts == 1
        assert await pool.analyze(spec("next"), feed(2), None, 100, time.time())

    asyncio.run(go())


@pytest.mark.parametrize(
    "opening",
    [
        pytest.param("<category ", id="element-starts-without-a-close"),
        pytest.param("<![CDATA[ ", id="cdata-sections-never-closed"),
        pytest.param("<description><![CDATA[ ", id="descriptions-with-unclosed-cdata"),
        pytest.param("<category><![CDATA[ ", id="categories-with-unclosed-cdata"),
    ],
)
def test_unclosed_openings_are_parsed_not_killed_by_the_deadline(
    pool: ParsePool, opening: str
) -> None:
    """A megabyte of openings that never close: the element dropping and the stash before
    feedparser scan once (a rescan per opening took 30 s for 180 KB before), so the worker
    answers with what the document is, not with the deadline it ran into."""
    body = feed(2).replace(
        b"</channel>", opening.encode() * (1_000_000 // len(opening)) + b"</channel>"
    )
    try:
        outcome = (
            f"{len(asyncio.run(pool.analyze(spec('f'), body, None, 100, time.time())))} entries"
        )
    except ParseError as e:
        outcome = e.message
    assert outcome == "2 entries", outcome
