"""The parse pool: worker processes with a deadline and a memory limit; a dead worker costs
only the feed that killed it (HAZARDS 2, 31)."""

from __future__ import annotations

import asyncio
import os
import signal
import time

import pytest

from monitor.errors import ParseError
from monitor.parsepool import ParsePool
from tests.feedgen import FakeItem, rss

URL = "http://127.0.0.1/feed.xml"


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
    p = ParsePool(workers=2, deadline=10.0)
    yield p  # type: ignore[misc]
    p.shutdown()


def test_parses_in_a_worker(pool: ParsePool) -> None:
    parsed = asyncio.run(pool.parse("f", feed(5), URL, None, 100))
    assert [e.title for e in parsed.entries] == [f"خبر رقم {i}" for i in range(5)]


def test_not_a_feed_is_a_parse_error_of_that_feed(pool: ParsePool) -> None:
    with pytest.raises(ParseError, match="not a feed") as info:
        asyncio.run(pool.parse("f", b"<html><body>hello</body></html>", URL, "text/html", 100))
    assert info.value.feed == "f"


def test_hazard_02_deadline_ends_a_long_parse() -> None:
    slow = ParsePool(workers=1, deadline=0.05)
    try:
        with pytest.raises(ParseError, match=r"longer than 0\.05s"):
            asyncio.run(slow.parse("big", feed(3000), URL, None, 100_000))
        # the worker survived its deadline and parses the next feed
        slow.deadline = 10.0
        assert asyncio.run(slow.parse("small", feed(2), URL, None, 100)).entries
        assert slow.restarts == 0
    finally:
        slow.shutdown()


def test_hazard_02_memory_limit_fails_only_that_feed() -> None:
    tight = ParsePool(workers=1, deadline=10.0, memory=400 << 20)
    try:
        # 60 MB of one text node: feedparser's copies exceed 400 MB of address space
        huge = rss([FakeItem("g", "عنوان", "ك" * 30_000_000, "https://x.example/1", time.time())])
        with pytest.raises(ParseError, match="more memory"):
            asyncio.run(tight.parse("huge", huge, URL, None, 10))
        assert asyncio.run(tight.parse("small", feed(2), URL, None, 100)).entries
    finally:
        tight.shutdown()


def test_hazard_31_a_killed_worker_costs_only_its_own_feed(pool: ParsePool) -> None:
    async def go() -> None:
        doomed = asyncio.create_task(pool.parse("doomed", feed(6000), URL, None, 100_000))
        await asyncio.sleep(0.3)
        for pid in list(pool._pool._processes or {}):  # the test plays the OOM killer
            os.kill(pid, signal.SIGKILL)
        # The parse in flight is tried again on a fresh pool, and succeeds.
        parsed = await doomed
        assert len(parsed.entries) == 6000
        assert pool.restarts == 1
        assert (await pool.parse("next", feed(2), URL, None, 100)).entries

    asyncio.run(go())
