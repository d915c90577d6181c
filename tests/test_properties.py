"""Property-based: arbitrary bytes and arbitrary Unicode through parse, normalize, match and
Slack rendering. No exception escapes but the ones we raise on purpose (ParseError), no
unescaped `<`, `>` or `&` from feed text reaches Slack, and no output field exceeds its cap."""

from __future__ import annotations

import html
import re
from datetime import UTC, datetime

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from monitor import parse, text
from monitor.errors import ParseError
from monitor.identity import make_item
from monitor.match import compile_watchlists
from monitor.models import Alert, FeedSpec, Item, TermSpec, WatchlistSpec
from monitor.notify import slack

SETTINGS = settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
SPEC = FeedSpec("https://feed.example/rss", "feed", 300.0, 20.0)
MATCHER = compile_watchlists(
    [
        WatchlistSpec("moscow", any=(TermSpec("موسكو"),), notify=("d",)),
        WatchlistSpec(
            "is",
            any=(TermSpec("الدولة الإسلامية"), TermSpec("روس*", prefix=True)),
            none=(TermSpec("مسلسل"),),
            notify=("d",),
        ),
        WatchlistSpec("re", any=(TermSpec("(a+)+$", regex=True), TermSpec("علي")), notify=("d",)),
    ]
)

# Text that looks like what feeds carry: Arabic, Latin, markup, entities, controls, bidi marks.
ALPHABET = st.sampled_from(
    list(
        "موسكوالدولةالإسلاميةعلىيؤئءآأإىةـًٌٍَُِّْ٠١٢abc<>&;#x/\"' \n\t|!@^*"
        "\u200b\u200c\u200d\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\ufeff"
        "\x00\x01\x1b\ud7ff\ue000\U0001f600"
    )
)
feedish = st.text(alphabet=ALPHABET, max_size=400) | st.text(max_size=200)


def rss_with(title: str, body: str, link: str) -> bytes:
    e = html.escape
    return (
        '<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>t</title>'
        f"<item><title>{e(title)}</title><link>{e(link)}</link><description>{e(body)}"
        "</description></item></channel></rss>"
    ).encode("utf-8", "surrogatepass")


@SETTINGS
@given(st.binary(max_size=3000))
def test_arbitrary_bytes_parse_or_fail_cleanly(data: bytes) -> None:
    try:
        feed = parse.parse_feed(data, url=SPEC.url)
    except ParseError:
        return
    for e in feed.entries:
        assert len(e.title) <= parse.MAX_TITLE
        assert len(e.summary) <= parse.MAX_SUMMARY
        assert len(e.content) <= parse.MAX_CONTENT
        assert e.link is None or e.link.startswith(("http://", "https://"))
        assert e.link is None or not any(ch <= " " or ch == "\x7f" for ch in e.link)


LINKISH = st.lists(
    st.sampled_from(
        [
            *"hHtTpPsS:/.?#=&%a0",
            "\t",
            "\n",
            "\r",
            " ",
            "\x01",
            "\x7f",
            "\x0c",
            "م",
            "https://",
            "HTTP://",
            "javascript:",
            "//",
            "a.example",
        ]
    ),
    max_size=20,
).map("".join)


@SETTINGS
@given(LINKISH)
def test_entry_links_are_http_with_no_raw_control_or_space(link: str) -> None:
    """Whatever an item's <link> holds, the link kept is http(s), lowercase in its scheme,
    and has no raw whitespace or control character (browsers' reading, WHATWG)."""
    kept = parse.safe_link(link, "http://127.0.0.1/feed")
    if kept is not None:
        assert kept.startswith(("http://", "https://")), kept
        assert not any(ch <= " " or ch == "\x7f" for ch in kept), kept


@SETTINGS
@given(
    feedish,
    feedish,
    st.sampled_from(
        [
            "https://x.example/a b|c<d>",
            "javascript:alert(1)",
            "data:text/html,x",
            "//evil.example/",
            "file:///etc/passwd",
            "https://x.example/موسكو?utm_source=a",
            "",
        ]
    ),
)
def test_feed_text_end_to_end_to_slack(title: str, body: str, link: str) -> None:
    try:
        feed = parse.parse_feed(rss_with(title, body, link), url=SPEC.url)
    except ParseError:
        return
    for entry in feed.entries:
        item = make_item(entry, SPEC)
        matches = MATCHER.match(item.title, item.summary, item.content, feed="feed")
        alert = Alert(
            "al_x",
            "moscow",
            item.id,
            item,
            matches[0].terms if matches else ("t",),
            datetime(2026, 1, 1, tzinfo=UTC),
        )
        check_slack(slack.render(alert))


@SETTINGS
@given(feedish, feedish, feedish)
def test_normalize_and_match_never_raise(title: str, summary: str, content: str) -> None:
    for view_text in (text.normalize(content), text.normalize_strict(content)):
        assert not any(c in view_text for c in "\u200b\u200f\u202e\u2066\u0640")  # deleted
    MATCHER.match(title, summary, content)
    MATCHER.explain(title, summary, content).to_json()


@SETTINGS
@given(feedish, feedish, feedish, st.text(max_size=50))
def test_slack_rendering_of_untrusted_fields(title: str, summary: str, feed: str, url: str) -> None:
    item = Item(
        "u:1",
        feed,
        "https://f.example/",
        None,
        url or None,
        title * 3,
        summary * 20,
        "",
        datetime(2026, 1, 1, tzinfo=UTC),
    )
    alert = Alert(
        "al_1", title[:30] or "w", "s", item, (summary[:20],), datetime(2026, 1, 1, tzinfo=UTC)
    )
    check_slack(slack.render(alert))


ENTITY = re.compile(r"&(amp|lt|gt);")


def check_slack(msg: dict[str, object]) -> None:
    """No raw `<`, `>` or `&` from feed text: the only `<...>` allowed are links we built
    (`<http(s)://...|label>`) and date tokens (`<!date^...>`); every `&` starts an escape."""
    texts = [str(msg["text"])]
    blocks = msg["blocks"]
    assert isinstance(blocks, list)
    assert len(blocks) <= 50
    for b in blocks:
        parts = [b["text"]] if "text" in b else list(b.get("elements", []))
        for p in parts:
            assert p["type"] == "mrkdwn"
            assert p["verbatim"] is True
            assert len(p["text"]) <= 3000
            texts.append(p["text"])
    for t in texts:
        stripped = re.sub(r"<https?://[^|<> ]+\|[^<>]*>|<!date\^[0-9]+\^[^<>|]*\|[^<>]*>", "", t)
        assert "<" not in stripped, t
        assert ">" not in stripped, t
        assert "&" not in ENTITY.sub("", stripped), t
        assert not re.search("[\u202a-\u202e\u2066\u2067]", t), "bidi overrides stripped"
    for flag in ("link_names", "parse"):
        assert flag not in msg
    assert msg["unfurl_links"] is False
