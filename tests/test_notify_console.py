"""Console destination: the printed block as data, and a real write to a stream."""

from __future__ import annotations

import asyncio
import io
from datetime import UTC, datetime

import pytest

from monitor.errors import NotifyError
from monitor.models import Alert, Delivery, Item
from monitor.notify import SendResult
from monitor.notify.console import ConsoleNotifier, render


def make_alert(
    title: str = "شويغو يصل إلى موسكو",
    url: str | None = "https://www.france24.com/ar/20180301-shoigu",
    *,
    type: str = "monitor.alert",
    extra: dict[str, object] | None = None,
) -> Alert:
    item = Item(
        id="item-1",
        feed="france24",
        feed_url="https://www.france24.com/ar/rss",
        guid=None,
        url=url,
        title=title,
        summary="وصل وزير الدفاع الروسي إلى موسكو.",
        content="",
        published=datetime(2018, 3, 1, 21, 5, tzinfo=UTC),
    )
    return Alert(
        id="alert-0001",
        watchlist="moscow",
        story_id="story-1",
        item=item,
        matched=("موسكو", "شويغو"),
        created_at=datetime(2018, 3, 1, 21, 6, tzinfo=UTC),
        type=type,
        extra=dict(extra or {}),
    )


def test_render_block() -> None:
    lines = render(make_alert()).split("\n")
    assert lines[0].startswith("── moscow ──")
    assert lines[1:] == [
        "Terms:     موسكو, شويغو",
        "Title:     شويغو يصل إلى موسكو",
        "URL:       https://www.france24.com/ar/20180301-shoigu",
        "Feed:      france24",
        "Published: 2018-03-01 21:05 UTC",
        "Summary:   وصل وزير الدفاع الروسي إلى موسكو.",
        "",
        "",
    ]


CLEANED = [
    ("\x1b]0;owned\x07\x1b[2Jخبر", "]0;owned [2Jخبر", "03-terminal-escapes-removed"),
    ("\u202eعاجل\u202c", "عاجل", "11-bidi-override-removed"),
    ("سطر\nثان\r\nثالث", "سطر ثان ثالث", "03-newlines-collapsed"),
    ("   ", "(untitled)", "13-empty-placeholder"),
    ("ب" * 10_000, "ب" * 499 + "…", "12-long-title-truncated"),
]


@pytest.mark.parametrize(
    ("title", "shown"), [(t, s) for t, s, _ in CLEANED], ids=[i for *_, i in CLEANED]
)
def test_feed_text_cleaned(title: str, shown: str) -> None:
    block = render(make_alert(title=title))
    assert f"Title:     {shown}\n" in block
    assert "\x1b" not in block
    assert "\u202e" not in block


def test_unsafe_url_not_printed() -> None:
    block = render(make_alert(url="javascript:alert(1)"))
    assert "URL:" not in block
    assert "javascript" not in block


def test_story_update_lists_sources() -> None:
    alert = make_alert(
        type="monitor.story.updated", extra={"story": {"sources": ["France24", "BBC عربي"]}}
    )
    block = render(alert)
    assert "(story update)" in block.split("\n")[0]
    assert "Sources:   France24, BBC عربي\n" in block


class Recording(io.StringIO):
    def __init__(self) -> None:
        super().__init__()
        self.flushes = 0

    def flush(self) -> None:
        self.flushes += 1
        super().flush()


def test_send_writes_and_flushes() -> None:
    stream = Recording()
    alert = make_alert()
    notifier = ConsoleNotifier("screen", stream)
    delivery = Delivery(id=1, alert=alert, destination="screen", attempts=0)
    assert asyncio.run(notifier.send(delivery)) == SendResult()
    assert stream.getvalue() == render(alert)
    assert stream.flushes == 1


def test_default_stream_is_stdout(capsys: pytest.CaptureFixture[str]) -> None:
    delivery = Delivery(id=1, alert=make_alert(), destination="screen", attempts=0)
    asyncio.run(ConsoleNotifier("screen").send(delivery))
    assert "Title:     شويغو يصل إلى موسكو" in capsys.readouterr().out


def test_closed_stream_is_retryable_error() -> None:
    stream = io.StringIO()
    stream.close()
    notifier = ConsoleNotifier("screen", stream)
    delivery = Delivery(id=1, alert=make_alert(), destination="screen", attempts=0)
    with pytest.raises(NotifyError) as info:
        asyncio.run(notifier.send(delivery))
    assert not info.value.permanent


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        (
            "https://www.france24.com/ar/%D9%88%D8%B2%D9%8A%D8%B1",
            "https://www.france24.com/ar/وزير",
        ),
        ("https://x.example/a%20b", "https://x.example/a%20b"),
        ("https://x.example/%E2%80%AEevil", "https://x.example/%E2%80%AEevil"),
        ("https://x.example/%FF", "https://x.example/%FF"),
        ("https://x.example/plain", "https://x.example/plain"),
    ],
    ids=[
        "arabic-path-shown-as-written",
        "a-space-stays-encoded",
        "a-bidi-override-stays-encoded",
        "invalid-utf8-stays-encoded",
        "nothing-to-decode",
    ],
)
def test_urls_are_shown_readable_when_safe(url: str, shown: str) -> None:
    from monitor.notify.console import _readable

    assert _readable(url) == shown


@pytest.mark.parametrize(
    ("title", "url", "shown"),
    [
        (
            "خبر سابق",
            "https://www.france24.com/ar/1",
            "Follows:   خبر سابق (https://www.france24.com/ar/1)",
        ),
        ("خبر\x1b[31m سابق", "javascript:alert(1)", "Follows:   خبر [31m سابق"),
        ("", None, "Follows:   (untitled)"),
    ],
    ids=["title-and-url", "escape-sequence-cleaned-unsafe-url-dropped", "empty-title-placeholder"],
)
def test_follow_up_line(title: str, url: str | None, shown: str) -> None:
    follows = {"story": "s0", "item": "i0", "title": title, "url": url}
    lines = render(make_alert(extra={"story": {"follows": follows}})).split("\n")
    assert shown in lines
    assert lines.index(shown) == lines.index("Published: 2018-03-01 21:05 UTC") + 1
