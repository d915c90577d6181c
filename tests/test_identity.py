"""Identity rules as tables: canonical URLs, the GUID -> URL -> content fallback, feed scoping."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path

import pytest

from monitor.identity import canonical_url, item_id, make_item
from monitor.models import Entry, FeedSpec
from monitor.parse import parse_feed

FEEDS = Path(__file__).resolve().parent / "data" / "feeds"
SEED_ITEM = Path(__file__).resolve().parent.parent / "seeds" / "seed_item.xml"
FEED_A = "https://a.example/rss"
FEED_B = "https://b.example/feed.xml"
F24 = "https://www.france24.com/ar/20240403-%D9%85%D9%88%D8%B3%D9%83%D9%88"  # .../20240403-موسكو


def entry(
    guid: str | None = None,
    link: str | None = None,
    title: str = "هجوم موسكو",
    summary: str = "ملخص الخبر",
    content: str = "",
) -> Entry:
    return Entry(guid, link, title, summary, content, datetime(2024, 4, 3, tzinfo=UTC))


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("HTTPS://WWW.France24.COM/ar/x", "https://www.france24.com/ar/x"),
        ("https://a.example:443/x", "https://a.example/x"),
        ("http://a.example:80/x", "http://a.example/x"),
        ("https://a.example:8443/x", "https://a.example:8443/x"),
        ("https://a.example/x#comments", "https://a.example/x"),
        ("https://a.example/x/", "https://a.example/x"),
        ("https://a.example", "https://a.example/"),
        ("https://a.example/x?utm_source=tw&utm_medium=social&id=7", "https://a.example/x?id=7"),
        (
            "https://a.example/x?fbclid=AbC&gclid=1&at_medium=RSS&at_campaign=f24",
            "https://a.example/x",
        ),
        ("https://a.example/x?b=2&a=1", "https://a.example/x?a=1&b=2"),
        ("https://a.example/news/amp/123", "https://a.example/news/123"),
        ("https://a.example/news/123/amp/", "https://a.example/news/123"),
        ("https://a.example/news/123?amp", "https://a.example/news/123"),
        ("https://a.example/news/123?outputType=amp", "https://a.example/news/123"),
        ("https://amp.a.example/news/123", "https://a.example/news/123"),
        ("https://www.bbc.com/arabic/world-123.amp", "https://www.bbc.com/arabic/world-123"),
        ("https://www.france24.com/ar/20240403-موسكو", F24),
        (F24.lower(), F24),
        ("https://user:pw@a.example/x", "https://a.example/x"),
        ("https://a.example./x", "https://a.example/x"),
        ("javascript:alert(1)", None),
        ("file:///etc/passwd", None),
        ("ftp://a.example/x", None),
        ("/relative/path", None),
        ("", None),
        (None, None),
        ("https://[::1", None),
        ("https://[::1]:8443/x", "https://[::1]:8443/x"),
        ("https://موقع.example/x", "https://موقع.example/x"),
        ("http://a b.example/x", None),
        ("http://a%20b.example/x", None),
        ("http://a\u00a0b.example/x", None),
        ("http://a\u200bb.example/x", None),
        ("http://a<b>.example/x", None),
        ("http://a.example/x y\x01", "http://a.example/x%20y%01"),
    ],
    ids=[
        "lowercase-scheme-and-host",
        "default-https-port-dropped",
        "default-http-port-dropped",
        "other-port-kept",
        "fragment-dropped",
        "trailing-slash-dropped",
        "empty-path-is-root",
        "utm-params-dropped-others-kept",
        "click-ids-and-at-internet-dropped",
        "params-sorted",
        "amp-path-segment",
        "amp-trailing-segment",
        "amp-query-flag",
        "amp-output-type",
        "amp-host-prefix",
        "amp-suffix",
        "arabic-path-percent-encoded",
        "lowercase-percent-escapes-uppercased",
        "userinfo-dropped",
        "trailing-dot-host",
        "javascript-none",
        "file-none",
        "ftp-none",
        "relative-none",
        "empty-none",
        "missing-none",
        "malformed-none",
        "ipv6-literal-kept-with-its-port",
        "arabic-host-kept",
        "space-in-host-is-no-host",
        "percent-encoded-host-is-no-host",
        "no-break-space-in-host-is-no-host",
        "zero-width-space-in-host-is-no-host",
        "angle-brackets-in-host-are-no-host",
        "space-and-control-in-path-percent-encoded",
    ],
)
def test_canonical_url(url: str | None, expected: str | None) -> None:
    assert canonical_url(url) == expected


# Pairs of entries (feed_url, entry) that must get the same id, or different ids.
SAME = [
    ((FEED_A, entry(guid="123")), (FEED_A, entry(guid="123", title="عنوان معدل"))),
    ((FEED_A, entry(guid=" 123 ")), (FEED_A, entry(guid="123"))),
    ((FEED_A, entry(link=F24)), (FEED_B, entry(link=F24 + "?utm_source=rss#top"))),
    ((FEED_A, entry(link="http://www.france24.com/ar/x")), (FEED_B, entry(link="https://france24.com/ar/x"))),
    ((FEED_A, entry(guid=F24)), (FEED_B, entry(link=F24))),
    ((FEED_A, entry(link="https://a.example/news/amp/1")), (FEED_B, entry(link="https://a.example/news/1"))),
    ((FEED_A, entry(title="هجوم  موسكو\n")), (FEED_A, entry(title="هجوم موسكو"))),
    ((FEED_A, entry()), ("HTTPS://A.example/rss/", entry())),
    ((FEED_A, entry(title="", summary="", content="نص")),
     (FEED_A, entry(title="", summary="", content="نص  "))),
]  # fmt: skip
SAME_IDS = [
    "same-guid-edited-title-is-one-item",
    "guid-whitespace-ignored",
    "same-url-across-feeds-with-tracking-and-fragment",
    "http-https-and-www-are-one-item",
    "url-guid-equals-link-of-other-feed",
    "amp-variant-is-one-item",
    "content-hash-whitespace-normalized",
    "feed-url-spelling-does-not-matter",
    "content-only-entry-stable",
]

DIFFERENT = [
    ((FEED_A, entry(guid="123")), (FEED_B, entry(guid="123"))),
    ((FEED_A, entry(guid="123")), (FEED_A, entry(guid="124"))),
    ((FEED_A, entry()), (FEED_B, entry())),
    ((FEED_A, entry(title="خبر", summary="أ")), (FEED_A, entry(title="خبر", summary="ب"))),
    ((FEED_A, entry(link="https://a.example/x?id=1")), (FEED_A, entry(link="https://a.example/x?id=2"))),
    ((FEED_A, entry(guid="abc", link="https://a.example/x")), (FEED_A, entry(link="https://a.example/x"))),
    ((FEED_A, entry(title="أ ب", summary="")), (FEED_A, entry(title="أ", summary="ب"))),
]  # fmt: skip
DIFFERENT_IDS = [
    "same-non-url-guid-in-two-feeds-differs",
    "different-guids",
    "same-text-in-two-feeds-without-guid-or-link-differs",
    "different-summary",
    "meaningful-query-param-kept",
    "guid-wins-over-link",
    "title-summary-boundary-not-ambiguous",
]


@pytest.mark.parametrize(("a", "b"), SAME, ids=SAME_IDS)
def test_same_item(a: tuple[str, Entry], b: tuple[str, Entry]) -> None:
    assert item_id(a[1], a[0]) == item_id(b[1], b[0])


@pytest.mark.parametrize(("a", "b"), DIFFERENT, ids=DIFFERENT_IDS)
def test_different_items(a: tuple[str, Entry], b: tuple[str, Entry]) -> None:
    assert item_id(a[1], a[0]) != item_id(b[1], b[0])


@pytest.mark.parametrize(
    ("e", "prefix"),
    [
        (entry(guid="FR-123", link=F24), "g:"),
        (entry(guid=F24, link="https://other.example/x"), "u:"),
        (entry(link=F24), "u:"),
        (entry(link="javascript:alert(1)"), "c:"),
        (entry(), "c:"),
        (entry(guid="   "), "c:"),
    ],
    ids=[
        "non-url-guid-is-g",
        "url-guid-is-u",
        "no-guid-link-is-u",
        "unsafe-link-falls-back-to-content",
        "nothing-is-content",
        "blank-guid-ignored",
    ],
)
def test_id_form(e: Entry, prefix: str) -> None:
    key = item_id(e, FEED_A)
    assert re.fullmatch(re.escape(prefix) + "[0-9a-f]{24}", key)


def test_make_item_from_the_seed_feed() -> None:
    spec = FeedSpec(
        url="https://www.france24.com/ar/rss", name="france24", interval=120, timeout=20
    )
    (e,) = parse_feed(SEED_ITEM.read_bytes(), url=spec.url).entries
    item = make_item(e, spec)
    assert item.id.startswith("u:")
    assert item.id == item_id(e, spec.url)
    assert item.url is not None
    assert item.url.startswith("https://www.france24.com/ar/20240403-%D9%88")
    assert (item.feed, item.feed_url, item.guid) == ("france24", spec.url, e.guid)
    assert (item.title, item.summary, item.content, item.published) == (
        e.title,
        e.summary,
        e.content,
        e.published,
    )


def test_no_guid_no_link_items_are_stable_across_polls() -> None:
    spec = FeedSpec(url="https://press.example/ar/rss", name="press", interval=300, timeout=20)
    body = (FEEDS / "no_guid_no_link.xml").read_bytes()
    first = [make_item(e, spec).id for e in parse_feed(body, url=spec.url).entries]
    again = [make_item(e, spec).id for e in parse_feed(body, url=spec.url).entries]
    assert first == again
    assert len(set(first)) == 2
    assert all(i.startswith("c:") for i in first)
