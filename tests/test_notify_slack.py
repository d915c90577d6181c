"""Slack: the rendered message as data, and sends through slack-sdk to a real local Slack
Web API (tests/servers.py SlackServer). HAZARDS cases 9-13, 24-26 and 37 in the test ids."""

from __future__ import annotations

import asyncio
import json
import logging
import re
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from monitor.errors import NotifyError
from monitor.models import Alert, Delivery, Item
from monitor.notify import SendResult
from monitor.notify.render import FSI, PDI, safe_url, slack_escape, utf16_len
from monitor.notify.slack import (
    BLOCKS_MAX,
    SECTION_MAX,
    SNIPPET_MAX,
    STORY_UPDATED,
    TITLE_MAX,
    UNTITLED,
    SlackNotifier,
    message_for,
    render,
)
from tests.servers import Response, SlackServer, slack_json

TOKEN = "xoxb-1234-5678-SECRETTOKENVALUE"  # noqa: S105 - a fake token the tests look for
PUBLISHED = datetime(2018, 3, 1, 21, 5, tzinfo=UTC)


def make_alert(
    title: str = "شويغو يصل إلى موسكو",
    url: str | None = "https://www.france24.com/ar/20180301-shoigu",
    summary: str = "وصل وزير الدفاع الروسي إلى موسكو.",
    *,
    type: str = "monitor.alert",
    extra: dict[str, Any] | None = None,
    feed: str = "france24",
    matched: tuple[str, ...] = ("موسكو", "شويغو"),
) -> Alert:
    item = Item(
        id="item-1",
        feed=feed,
        feed_url="https://www.france24.com/ar/rss",
        guid="g1",
        url=url,
        title=title,
        summary=summary,
        content="",
        published=PUBLISHED,
    )
    return Alert(
        id="alert-0001",
        watchlist="moscow",
        story_id="story-1",
        item=item,
        matched=matched,
        created_at=PUBLISHED,
        type=type,
        extra=extra or {},
    )


def deliver(alert: Alert, thread_ref: str | None = None) -> Delivery:
    return Delivery(id=1, alert=alert, destination="desk", attempts=0, thread_ref=thread_ref)


def notifier(server: SlackServer) -> SlackNotifier:
    return SlackNotifier("desk", TOKEN, "C0123456", base_url=server.url + "/api/")


def send(server: SlackServer, delivery: Delivery) -> SendResult:
    n = notifier(server)

    async def go() -> SendResult:
        try:
            return await n.send(delivery)
        finally:
            await n.aclose()

    return asyncio.run(go())


def send_error(server: SlackServer, delivery: Delivery) -> NotifyError:
    with pytest.raises(NotifyError) as info:
        send(server, delivery)
    return info.value


def posts(server: SlackServer) -> int:
    return sum(1 for r in server.requests if r.path.endswith("/chat.postMessage"))


def texts(message: dict[str, Any]) -> list[str]:
    """Every text Slack will parse in a message: the fallback and each block's text objects."""
    out = [message["text"]]
    for block in message["blocks"]:
        if "text" in block:
            out.append(block["text"]["text"])
        for el in block.get("elements", []):
            out.append(el["text"])
    return out


_OUR_DATE = re.compile(r"<!date\^\d+\^\{date_short_pretty\} \{time\}\|[^<>]*>")
_OUR_LINK = re.compile(r"<(https?://[^|<>\s]+)\|([^<>]*)>")


def feed_markup(text: str) -> tuple[str, list[str]]:
    """The text with our own date tokens and links removed (labels kept), and the link URLs."""
    urls = [m.group(1) for m in _OUR_LINK.finditer(text)]
    return _OUR_LINK.sub(r"\2", _OUR_DATE.sub("", text)), urls


def assert_no_feed_markup(message: dict[str, Any], allowed_urls: set[str]) -> None:
    for text in texts(message):
        rest, urls = feed_markup(text)
        assert "<" not in rest, text
        assert ">" not in rest, text
        assert re.search(r"&(?!amp;|lt;|gt;)", rest) is None, text
        assert set(urls) <= allowed_urls, text


# ---------------------------------------------------------------- render as data


def test_render_happy_path_exact() -> None:
    alert = make_alert(title="Moscow talks", summary="Talks began.", matched=("Moscow",))
    url = "https://www.france24.com/ar/20180301-shoigu"
    assert render(alert) == {
        "text": f"{FSI}moscow{PDI}: {FSI}Moscow talks{PDI}",
        "blocks": [
            {
                "type": "section",
                "text": {
                    "type": "mrkdwn",
                    "text": f"*<{url}|{FSI}Moscow talks{PDI}>*",
                    "verbatim": True,
                },
            },
            {
                "type": "section",
                "text": {"type": "mrkdwn", "text": f"{FSI}Talks began.{PDI}", "verbatim": True},
            },
            {
                "type": "context",
                "elements": [
                    {
                        "type": "mrkdwn",
                        "text": f"Watchlist: *{FSI}moscow{PDI}*  ·  Terms: {FSI}Moscow{PDI}",
                        "verbatim": True,
                    },
                    {
                        "type": "mrkdwn",
                        "text": f"Feed: {FSI}france24{PDI}  ·  Published: "
                        "<!date^1519938300^{date_short_pretty} {time}|2018-03-01 21:05 UTC>",
                        "verbatim": True,
                    },
                ],
            },
        ],
        "unfurl_links": False,
        "unfurl_media": False,
        "metadata": {
            "event_type": "monitor_alert",
            "event_payload": {
                "alert_id": "alert-0001",
                "story_id": "story-1",
                "type": "monitor.alert",
            },
        },
    }


INJECTIONS = [
    ("<!channel> عاجل", "09-channel"),
    ("<!here> عاجل", "09-here"),
    ("خبر <@U024BE7LH>", "09-user-mention"),
    ("خبر <#C0123>", "09-channel-link"),
    ("<!subteam^S1> خبر", "09-subteam"),
    ("<https://evil.example|بنك>", "09-masked-link"),
    ("<!everyone|x> &lt;!here&gt; & more", "09-pre-escaped-and-ampersand"),
    ("a > b < c", "09-bare-angles"),
]


@pytest.mark.parametrize("title", [t for t, _ in INJECTIONS], ids=[i for _, i in INJECTIONS])
def test_injection_titles_shown_literally(title: str) -> None:
    alert = make_alert(title=title, summary=title, matched=(title,), feed=title)
    message = render(alert)
    assert_no_feed_markup(message, {"https://www.france24.com/ar/20180301-shoigu"})
    # Shown literally: Slack decodes the three escapes back to exactly the title.
    label = _OUR_LINK.search(message["blocks"][0]["text"]["text"])
    assert label is not None
    decoded = label.group(2).replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")
    assert decoded == f"{FSI}{title}{PDI}"
    assert "link_names" not in message
    assert "parse" not in message


def test_injection_round_trip_through_slack_sdk_09(slack_server: SlackServer) -> None:
    alert = make_alert(title="<!channel> <@U024BE7LH> <https://evil.example|بنك>")
    send(slack_server, deliver(alert))
    [posted] = slack_server.messages
    assert posted["blocks"] == render(alert)["blocks"]
    assert_no_feed_markup(posted, {"https://www.france24.com/ar/20180301-shoigu"})
    assert "link_names" not in posted
    assert "parse" not in posted


LINKS = [
    ("javascript:alert(1)", None, "10-javascript"),
    ("JaVaScRiPt:alert(1)", None, "10-javascript-mixed-case"),
    ("data:text/html,<b>x</b>", None, "10-data"),
    ("file:///etc/passwd", None, "10-file"),
    ("//evil.example/x", None, "10-protocol-relative"),
    ("/relative/path", None, "10-relative"),
    ("https://user:pw@example.org/", None, "10-credentials"),
    ("https://example.org/a b", "https://example.org/a%20b", "10-space-encoded"),
    ("https://example.org/a|b", "https://example.org/a%7Cb", "10-pipe-encoded"),
    ("https://example.org/<x>", "https://example.org/%3Cx%3E", "10-angles-encoded"),
    ("https://example.org/?a=1&b=2", "https://example.org/?a=1&b=2", "10-query-kept"),
    ("https://example.org/%zz", "https://example.org/%25zz", "10-bare-percent-encoded"),
    (
        "https://example.org/أخبار",
        "https://example.org/%D8%A3%D8%AE%D8%A8%D8%A7%D8%B1",
        "10-arabic-path-encoded",
    ),
    ("https://مثال.example/", "https://xn--mgbh0fb.example/", "10-idn-host"),
    ("https://example.org/\u202eexe.fdp", "https://example.org/exe.fdp", "11-bidi-in-url"),
    ("HTTP://Example.org/X", "http://example.org/X", "10-scheme-host-lowered"),
]


@pytest.mark.parametrize(
    ("url", "expected"), [(u, e) for u, e, _ in LINKS], ids=[i for _, _, i in LINKS]
)
def test_safe_url(url: str, expected: str | None) -> None:
    assert safe_url(url) == expected


@pytest.mark.parametrize(
    "url", ["javascript:alert(1)", "data:text/html,x"], ids=["10-javascript", "10-data"]
)
def test_unsafe_link_dropped_title_kept(url: str) -> None:
    message = render(make_alert(title="خبر", url=url))
    title_text = message["blocks"][0]["text"]["text"]
    assert title_text == f"*{FSI}خبر{PDI}*"
    assert "javascript" not in json.dumps(message)


def test_link_ampersand_escaped_inside_link() -> None:
    message = render(make_alert(title="x", url="https://example.org/?a=1&b=<2>"))
    assert message["blocks"][0]["text"]["text"] == (
        f"*<https://example.org/?a=1&amp;b=%3C2%3E|{FSI}x{PDI}>*"
    )


def test_huge_title_truncated_before_escaping_12() -> None:
    # 100 KB of ampersands and angles: each costs 4-5 once escaped.
    title = "&<>" * 34_000
    message = render(make_alert(title=title, summary=title * 3))
    for block in message["blocks"]:
        texts_ = [block["text"]["text"]] if "text" in block else []
        texts_ += [el["text"] for el in block.get("elements", [])]
        for text in texts_:
            assert utf16_len(text) <= SECTION_MAX
    assert_no_feed_markup(message, {"https://www.france24.com/ar/20180301-shoigu"})
    first = message["blocks"][0]["text"]["text"]
    assert first.endswith(f"…{PDI}>*")
    label = _OUR_LINK.search(first)
    assert label is not None
    assert TITLE_MAX - 5 < utf16_len(label.group(2)) <= TITLE_MAX  # counted once escaped
    snippet = message["blocks"][1]["text"]["text"]
    assert SNIPPET_MAX - 5 < utf16_len(snippet) <= SNIPPET_MAX
    assert len(message["blocks"]) <= BLOCKS_MAX


def test_huge_arabic_title_cut_on_grapheme_boundary_12() -> None:
    # Each letter carries a fatha (a combining mark): no letter may lose its mark at the cut.
    title = "بَ" * 60_000
    message = render(make_alert(title=title))
    label = _OUR_LINK.search(message["blocks"][0]["text"]["text"])
    assert label is not None
    body = label.group(2).removeprefix(FSI).removesuffix(PDI)
    assert body.endswith("…")
    kept = body.removesuffix("…")
    assert len(kept) > 0
    assert kept == "بَ" * (len(kept) // 2)


def test_astral_characters_counted_as_two_12() -> None:
    message = render(make_alert(title="😀" * 5000))
    assert utf16_len(message["blocks"][0]["text"]["text"]) <= SECTION_MAX


BIDI = [
    ("\u202eعاجل\u202c", "عاجل", "11-rlo-pdf"),
    ("\u202bموسكو 2018\u202c", "موسكو 2018", "11-rle"),
    ("\u2066خبر\u2069 \u2067x\u2069 \u2068y\u2069", "خبر x y", "11-isolates-from-feed"),
    ("\u202a\u202d12\u202c", "12", "11-lre-lro"),
    ("شويغو\x1b[31m red\x00", "شويغو [31m red", "03-controls-to-spaces"),
]


@pytest.mark.parametrize(
    ("title", "shown"), [(t, s) for t, s, _ in BIDI], ids=[i for *_, i in BIDI]
)
def test_bidi_stripped_and_fields_isolated(title: str, shown: str) -> None:
    message = render(make_alert(title=title, url=None))
    assert message["blocks"][0]["text"]["text"] == f"*{FSI}{slack_escape(shown)}{PDI}*"


def test_mixed_arabic_latin_numbers_each_field_isolated_11() -> None:
    alert = make_alert(title="قمة G20 في 2018", matched=("G20", "قمة"), feed="BBC عربي")
    context = render(alert)["blocks"][-1]["elements"]
    assert f"Terms: {FSI}G20{PDI}, {FSI}قمة{PDI}" in context[0]["text"]
    assert context[1]["text"].startswith(f"Feed: {FSI}BBC عربي{PDI}")


EMPTY_TITLES = [
    ("", "13-empty"),
    ("   \n\t ", "13-whitespace"),
    ("\u202e\u202c\u2066", "13-only-bidi-controls"),
    ("\x00\x01", "13-only-controls"),
]


@pytest.mark.parametrize("title", [t for t, _ in EMPTY_TITLES], ids=[i for _, i in EMPTY_TITLES])
def test_empty_title_placeholder_13(title: str) -> None:
    message = render(make_alert(title=title, url=None))
    assert message["blocks"][0]["text"]["text"] == f"*{UNTITLED}*"
    assert message["text"].endswith(UNTITLED)


def test_no_summary_no_snippet_block() -> None:
    message = render(make_alert(summary="  "))
    assert [b["type"] for b in message["blocks"]] == ["section", "context"]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(title=st.text(max_size=400), summary=st.text(max_size=400), url=st.text(max_size=60))
def test_any_text_renders_safely(title: str, summary: str, url: str) -> None:
    message = render(make_alert(title=title, summary=summary, url=url, matched=(title,)))
    allowed = {u for u in [safe_url(url)] if u}
    assert_no_feed_markup(message, {slack_escape(u) for u in allowed})
    for text in texts(message):
        assert utf16_len(text) <= SECTION_MAX
        assert not any(c in text for c in "\u202a\u202b\u202c\u202d\u202e\u2066\u2067")


# ---------------------------------------------------------------- story updates


def test_story_update_with_thread_is_a_reply(slack_server: SlackServer) -> None:
    update = make_alert(
        type=STORY_UPDATED,
        feed="BBC Arabic",
        extra={"story": {"sources": ["AFP", "France24", "BBC Arabic", "France24"]}},
    )
    result = send(slack_server, deliver(update, thread_ref="1700000001.000100"))
    [posted] = slack_server.messages
    assert posted["thread_ts"] == "1700000001.000100"
    assert posted["text"] == f"also: {FSI}France24{PDI}, {FSI}BBC Arabic{PDI}"
    assert "reply_broadcast" not in posted
    assert posted["metadata"]["event_payload"]["alert_id"] == "alert-0001"
    assert result.ref == posted["ts"]


def test_story_update_without_sources_names_its_feed() -> None:
    update = make_alert(type=STORY_UPDATED, feed="DW عربية")
    message = message_for(deliver(update, thread_ref="1.2"))
    assert message["text"] == f"also: {FSI}DW عربية{PDI}"


def test_story_update_without_thread_is_top_level() -> None:
    update = make_alert(type=STORY_UPDATED, feed="DW")
    message = message_for(deliver(update))
    assert "thread_ts" not in message
    assert message["blocks"][0] == render(make_alert())["blocks"][0]


def test_alert_with_thread_ref_is_not_a_reply() -> None:
    assert "thread_ts" not in message_for(deliver(make_alert(), thread_ref="1.2"))


# ---------------------------------------------------------------- sending


def test_send_posts_once_and_returns_ts(slack_server: SlackServer) -> None:
    alert = make_alert()
    result = send(slack_server, deliver(alert))
    [posted] = slack_server.messages
    assert result == SendResult(ref=posted["ts"])
    assert posted["auth"] == f"Bearer {TOKEN}"
    assert posted["channel"] == "C0123456"
    assert posted["unfurl_links"] is False
    assert posted["unfurl_media"] is False
    assert posted["metadata"] == {
        "event_type": "monitor_alert",
        "event_payload": {"alert_id": "alert-0001", "story_id": "story-1", "type": "monitor.alert"},
    }
    assert posted["blocks"] == render(alert)["blocks"]
    assert posts(slack_server) == 1


def test_429_retry_after_honoured_24(slack_server: SlackServer) -> None:
    slack_server.script.append(
        slack_json({"ok": False, "error": "ratelimited"}, 429, {"Retry-After": "30"})
    )
    err = send_error(slack_server, deliver(make_alert()))
    assert not err.permanent
    assert err.retry_after == 30
    assert posts(slack_server) == 1  # slack-sdk did not retry by itself
    assert slack_server.messages == []


OK_FALSE = [
    ("channel_not_found", 200, True, True, "26-channel-not-found"),
    ("not_in_channel", 200, True, True, "26-not-in-channel"),
    ("invalid_auth", 200, True, True, "26-invalid-auth"),
    ("token_revoked", 200, True, True, "26-token-revoked"),
    ("missing_scope", 200, True, True, "37-missing-scope"),
    ("is_archived", 200, True, True, "26-is-archived"),
    ("msg_too_long", 200, True, False, "26-msg-too-long"),
    ("invalid_blocks", 200, True, False, "26-invalid-blocks"),
    ("some_future_error", 200, True, False, "26-unknown-code-not-retried-blindly"),
    ("internal_error", 200, False, False, "26-internal-error-retried"),
    ("fatal_error", 200, False, False, "26-fatal-error-retried"),
    ("service_unavailable", 200, False, False, "26-service-unavailable-retried"),
    ("request_timeout", 200, False, False, "26-request-timeout-retried"),
    ("ratelimited", 200, False, False, "24-ratelimited-in-body"),
    ("internal_error", 500, False, False, "26-http-500"),
]


@pytest.mark.parametrize(
    ("code", "status", "permanent", "disable"),
    [row[:4] for row in OK_FALSE],
    ids=[row[4] for row in OK_FALSE],
)
def test_ok_false_classified(
    slack_server: SlackServer, code: str, status: int, permanent: bool, disable: bool
) -> None:
    slack_server.script.append(slack_json({"ok": False, "error": code}, status))
    err = send_error(slack_server, deliver(make_alert()))
    assert (err.permanent, err.disable) == (permanent, disable)
    assert code in err.message
    assert posts(slack_server) == 1


def test_non_json_502_is_retried(slack_server: SlackServer) -> None:
    slack_server.script.append(
        Response(502, b"<html>Bad Gateway</html>", {"Content-Type": "text/html"})
    )
    err = send_error(slack_server, deliver(make_alert()))
    assert not err.permanent
    assert "502" in err.message
    assert "<html>" not in err.message


def test_reset_connection_retryable_and_posted_once_25(slack_server: SlackServer) -> None:
    slack_server.script.append(Response(reset=True))
    err = send_error(slack_server, deliver(make_alert()))
    assert not err.permanent
    assert posts(slack_server) == 1  # slack-sdk's connection retry handler is off


def test_connection_refused_retryable() -> None:
    server = SlackServer()  # bound but never started or listening after close
    url = server.url
    server.httpd.server_close()
    n = SlackNotifier("desk", TOKEN, "C0123456", base_url=url + "/api/")
    with pytest.raises(NotifyError) as info:
        asyncio.run(n.send(deliver(make_alert())))
    assert not info.value.permanent


def test_token_never_in_errors_or_logs_37(
    slack_server: SlackServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    slack_server.script.append(slack_json({"ok": False, "error": "invalid_auth"}))
    slack_server.script.append(Response(reset=True))
    errors = [send_error(slack_server, deliver(make_alert())) for _ in range(2)]
    for err in errors:
        assert TOKEN not in str(err)
        assert TOKEN not in repr(err)
    assert TOKEN not in caplog.text


def _follows(title: object, url: object) -> dict[str, Any]:
    return {"story": {"follows": {"story": "s0", "item": "i0", "title": title, "url": url}}}


@pytest.mark.parametrize("title", [t for t, _ in INJECTIONS], ids=[i for _, i in INJECTIONS])
def test_follow_up_line_shows_the_earlier_title_literally(title: str) -> None:
    earlier = "https://www.france24.com/ar/earlier"
    message = render(make_alert(extra=_follows(title, earlier)))
    assert_no_feed_markup(message, {"https://www.france24.com/ar/20180301-shoigu", earlier})
    last = message["blocks"][-1]["elements"][0]["text"]
    assert last.startswith(f"Follows an earlier story: <{earlier}|")
    label = last.split("|", 1)[1].rsplit(">", 1)[0]
    decoded = label.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")
    assert decoded == f"{FSI}{title}{PDI}"


@pytest.mark.parametrize(
    ("follows", "line"),
    [
        (
            _follows("خبر سابق", "javascript:alert(1)"),
            f"Follows an earlier story: {FSI}خبر سابق{PDI}",
        ),
        (_follows("خبر سابق", None), f"Follows an earlier story: {FSI}خبر سابق{PDI}"),
        (_follows(None, "https://x.example/1"), None),
        ({"story": {"follows": "s0"}}, None),
        ({"story": {"sources": ["france24"]}}, None),
    ],
    ids=[
        "unsafe-earlier-url-dropped-title-kept",
        "no-earlier-url-title-alone",
        "no-earlier-title-no-line",
        "malformed-follows-from-another-version-no-line",
        "no-follows-no-line",
    ],
)
def test_follow_up_line_reads_the_payload_defensively(
    follows: dict[str, Any], line: str | None
) -> None:
    blocks = render(make_alert(extra=follows))["blocks"]
    shown = [b["elements"][0]["text"] for b in blocks if b["type"] == "context"]
    assert shown[1:] == ([line] if line else [])


def test_a_story_update_has_no_follow_up_line() -> None:
    update = make_alert(type="monitor.story.updated", extra=_follows("خبر سابق", None))
    assert "Follows" not in str(render(update))
