"""analyze(): what a worker computes for each entry, and what it skips for old items."""

from __future__ import annotations

import time

from monitor.analyze import analyze
from monitor.match import compile_watchlists
from monitor.models import FeedSpec, TermSpec, WatchlistSpec
from tests.feedgen import FakeItem, rss

SPEC = FeedSpec("http://127.0.0.1/f.xml", "f", 60.0, 10.0)
MATCHER = compile_watchlists([WatchlistSpec("moscow", any=(TermSpec("موسكو"),), notify=("d",))])
HOUR = 3600.0


def test_old_items_are_neither_matched_nor_fingerprinted() -> None:
    now = time.time()
    body = "أعلنت موسكو اليوم عن محادثات جديدة مع الوفد الزائر في العاصمة الروسية. " * 3
    doc = rss(
        [
            FakeItem("new", "موسكو اليوم", body, "https://x.example/1", now - HOUR),
            FakeItem("day", "موسكو أمس", body, "https://x.example/2", now - 30 * HOUR),
            FakeItem("week", "موسكو قبل أسبوع", body, "https://x.example/3", now - 200 * HOUR),
            FakeItem("future", "موسكو غدا", body, "https://x.example/4", now + 50 * HOUR),
        ]
    )
    out = analyze(
        doc,
        spec=SPEC,
        content_type=None,
        max_items=10,
        now=now,
        matcher=MATCHER,
        max_age=6 * HOUR,
        window=72 * HOUR,
    )
    by_guid = {a.item.guid: a for a in out}
    assert [m.watchlist for m in by_guid["new"].matches] == ["moscow"]
    assert by_guid["day"].matches == (), "older than max_age: never alerts, so not matched"
    assert by_guid["day"].fingerprint is not None, "still inside the story window"
    assert by_guid["week"].fingerprint is None, "older than the story window"
    assert by_guid["future"].at == now, "a date in the future is clamped to now"
    assert [m.watchlist for m in by_guid["future"].matches] == ["moscow"]


def test_the_summary_an_alert_shows_is_the_story_without_its_boilerplate() -> None:
    now = time.time()
    summary = (
        "إعداد: فرانس24 تابِع إعلان اقرأ المزيد\n"
        "أجرى وزير الجيوش الفرنسي اتصالا مع نظيره الروسي في موسكو."
    )
    doc = rss([FakeItem("g", "اتصال في موسكو", summary, "https://x.example/1", now)])
    (a,) = analyze(doc, spec=SPEC, content_type=None, max_items=10, now=now, matcher=MATCHER)
    assert "إعداد" not in a.item.summary, "the credit line is boilerplate"
    assert a.item.summary.startswith("أجرى وزير الجيوش الفرنسي")
    assert a.item.content == "", "the body stays in the worker"
