"""Every case of HAZARDS.md (issue 5, "Must show" 1), with its number in the test id.

Cases already tested next to their stage are listed in COVERED (case -> node ids); the
`hazard-NN-...` rows check that each of those tests still exists and is collected, so the map
cannot rot. The other cases are tested here, against real local servers (tests/hostile.py,
tests/servers.py) and a real SQLite file.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import AsyncIterator, Iterator, Mapping
from contextlib import asynccontextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from monitor.config import Config, loads
from monitor.daemon import ClockWatch, Daemon, build_notifiers
from monitor.errors import ConfigError, FetchError, StoreError
from monitor.fetch import Fetcher, redirect_refusal
from monitor.models import FeedState
from monitor.notify.slack import SlackNotifier
from monitor.parse import parse_feed
from monitor.pipeline import NOTICE, RETRY_LADDER, Pipeline, Sender
from monitor.store import FeedOutcome
from monitor.store.sqlite import SQLiteStore
from tests import hostile
from tests.conftest import ROOT, WEBHOOK_SECRET
from tests.feedgen import FakeItem, rss
from tests.helpers import Clock, close
from tests.servers import FeedServer, LocalServer, Request, Response, WebhookReceiver
from tests.test_ops import value

TOKEN = "xoxb-test-token"  # noqa: S105 - a test-only token

# --- cases tested next to their stage --------------------------------------------------------

COVERED: dict[str, tuple[str, ...]] = {
    "hazard-01-entities-xxe-external-dtd": (
        "tests/test_parse.py::test_entity_attacks_are_neutralized[billion-laughs-not-expanded]",
        "tests/test_parse.py::test_entity_attacks_are_neutralized[huge-internal-entity-not-expanded]",
        "tests/test_parse.py::test_entity_attacks_are_neutralized[xxe-no-file-read]",
        "tests/test_parse.py::test_prolog_declarations_are_removed[external-dtd-dropped]",
    ),
    "hazard-02-redos-huge-feeds-deep-nesting": (
        "tests/test_parsepool.py::test_hazard_02_deadline_ends_a_long_parse",
        "tests/test_parsepool.py::test_hazard_02_memory_limit_fails_only_that_feed",
        "tests/test_parse.py::test_long_author_is_cut_before_feedparser",
        "tests/test_parse.py::test_item_count_is_capped_with_a_warning",
        "tests/test_fetch.py::test_body_over_cap_with_content_length_is_refused",
    ),
    "hazard-03-truncated-bad-entities-controls": (
        "tests/test_parse.py::test_truncated_document_keeps_what_is_recoverable",
        "tests/test_parse.py::test_title_cleaning[control-chars-dropped]",
        "tests/test_parse.py::test_title_cleaning[unknown-entity-literal]",
        "tests/test_properties.py::test_arbitrary_bytes_parse_or_fail_cleanly",
    ),
    "hazard-04-html-or-empty-200": (
        "tests/test_fetch.py::test_200_with_empty_body_is_an_error[empty-200]",
        "tests/test_parse.py::test_not_a_feed[html-page-file]",
    ),
    "hazard-05-arabic-encodings": (
        "tests/test_parse.py::test_feed_files[windows-1256-labelled-utf8-in-header-and-declaration]",
        "tests/test_parse.py::test_feed_files[iso-8859-6-declared]",
        "tests/test_parse.py::test_feed_files[utf16-with-bom]",
        "tests/test_parse.py::test_feed_files[utf8-bom-beats-wrong-header]",
    ),
    "hazard-06-no-guid-no-link": (
        "tests/test_identity.py::test_no_guid_no_link_items_are_stable_across_polls",
        "tests/test_parse.py::test_no_guid_no_link_entries_keep_their_text",
    ),
    "hazard-07-edited-item-and-tracking-parameters": (
        "tests/test_identity.py::test_same_item[same-guid-edited-title-is-one-item]",
        "tests/test_identity.py::test_same_item[same-url-across-feeds-with-tracking-and-fragment]",
    ),
    "hazard-08-dates-far-future-missing-unparseable": (
        "tests/test_parse.py::test_published_dates[far-future-kept]",
        "tests/test_parse.py::test_published_dates[unparseable-none]",
        "tests/test_parse.py::test_clamp_published[future-clamped-to-now]",
        "tests/test_parse.py::test_clamp_published[missing-is-now]",
    ),
    "hazard-09-slack-mentions-and-masked-links-literal": (
        "tests/test_notify_slack.py::test_injection_titles_shown_literally[09-channel]",
        "tests/test_notify_slack.py::test_injection_titles_shown_literally[09-here]",
        "tests/test_notify_slack.py::test_injection_titles_shown_literally[09-user-mention]",
        "tests/test_notify_slack.py::test_injection_titles_shown_literally[09-channel-link]",
        "tests/test_notify_slack.py::test_injection_titles_shown_literally[09-subteam]",
        "tests/test_notify_slack.py::test_injection_titles_shown_literally[09-masked-link]",
        "tests/test_notify_slack.py::test_injection_round_trip_through_slack_sdk_09",
    ),
    "hazard-10-unsafe-link-schemes": (
        "tests/test_notify_slack.py::test_safe_url[10-javascript]",
        "tests/test_notify_slack.py::test_safe_url[10-data]",
        "tests/test_notify_slack.py::test_safe_url[10-file]",
        "tests/test_notify_slack.py::test_safe_url[10-protocol-relative]",
        "tests/test_notify_slack.py::test_safe_url[10-pipe-encoded]",
        "tests/test_notify_slack.py::test_safe_url[10-angles-encoded]",
        "tests/test_notify_slack.py::test_safe_url[10-space-encoded]",
        "tests/test_parse.py::test_safe_link[javascript-dropped]",
    ),
    "hazard-11-bidi-overrides": (
        "tests/test_notify_slack.py::test_bidi_stripped_and_fields_isolated[11-rlo-pdf]",
        "tests/test_notify_slack.py::test_mixed_arabic_latin_numbers_each_field_isolated_11",
        "tests/test_parse.py::test_title_cleaning[bidi-override-stripped]",
    ),
    "hazard-12-huge-title-and-content": (
        "tests/test_notify_slack.py::test_huge_title_truncated_before_escaping_12",
        "tests/test_notify_slack.py::test_huge_arabic_title_cut_on_grapheme_boundary_12",
        "tests/test_parse.py::test_fields_are_capped",
        "tests/test_properties.py::test_slack_rendering_of_untrusted_fields",
    ),
    "hazard-13-empty-title-placeholder": (
        "tests/test_notify_slack.py::test_empty_title_placeholder_13[13-empty]",
        "tests/test_notify_slack.py::test_empty_title_placeholder_13[13-only-bidi-controls]",
    ),
    "hazard-15-catastrophic-watchlist-regex": (
        "tests/test_match.py::test_catastrophic_pattern_is_linear",
        "tests/test_match.py::test_term_problems[backreference refused]",
    ),
    "hazard-16-drip-silence-chunked": (
        "tests/test_fetch.py::test_slow_drip_is_ended_by_the_whole_fetch_deadline",
        "tests/test_fetch.py::test_silence_after_accept_is_ended_by_the_deadline",
        "tests/test_fetch.py::test_chunked_body_over_cap_is_stopped_while_streaming",
    ),
    "hazard-17-gzip-bomb": ("tests/test_fetch.py::test_gzip_bomb_is_stopped_at_the_decoded_cap",),
    "hazard-18-redirect-loops-and-chains": (
        "tests/test_fetch.py::test_redirect_chain_over_limit_fails",
        "tests/test_fetch.py::test_redirect_loop_fails",
        "tests/test_fetch.py::test_loopback_refused_when_private_addresses_are_blocked",
    ),
    "hazard-19-not-modified": (
        "tests/test_fetch.py::test_conditional_get_round_trip_gives_304_and_keeps_validators",
    ),
    "hazard-20-retry-after-both-forms": (
        "tests/test_fetch.py::test_rate_limited_is_retryable_with_retry_after[429-seconds]",
        "tests/test_fetch.py::test_rate_limited_is_retryable_with_retry_after[429-http-date-in-5-minutes]",
        "tests/test_fetch.py::test_rate_limited_is_retryable_with_retry_after[429-huge-seconds-capped]",
    ),
    "hazard-21-gone-for-days-unhealthy-operator-told": (
        "tests/test_pipeline.py::test_hazard_21_unhealthy_feed_is_reported_once_and_recovery_too",
        "tests/test_pipeline.py::test_failing_feed_backs_off_and_touches_no_other",
    ),
    "hazard-22-bad-tls-fails-closed": (
        "tests/test_fetch.py::test_self_signed_certificate_fails_closed",
    ),
    "hazard-23-non-http-feed-urls": (
        "tests/test_config.py::test_errors_name_file_line_and_path[file-url-refused]",
        "tests/test_fetch.py::test_feed_url_with_other_scheme_is_refused",
    ),
    "hazard-24-slack-429": ("tests/test_notify_slack.py::test_429_retry_after_honoured_24",),
    "hazard-25-slack-reset-after-accept": (
        "tests/test_notify_slack.py::test_reset_connection_retryable_and_posted_once_25",
        "tests/test_store.py::test_crash_between_send_and_ack_resends_once",
    ),
    "hazard-26-slack-ok-false-classified": (
        "tests/test_notify_slack.py::test_ok_false_classified[26-channel-not-found]",
        "tests/test_notify_slack.py::test_ok_false_classified[26-not-in-channel]",
        "tests/test_notify_slack.py::test_ok_false_classified[26-invalid-auth]",
        "tests/test_notify_slack.py::test_ok_false_classified[26-msg-too-long]",
        "tests/test_notify_slack.py::test_ok_false_classified[26-invalid-blocks]",
    ),
    "hazard-27-webhook-slow-3xx-410-5xx-huge-body": (
        "tests/test_notify_webhook.py::test_slow_drip_ends_at_deadline_27",
        "tests/test_notify_webhook.py::test_redirect_not_followed_27[27-302-not-followed]",
        "tests/test_notify_webhook.py::test_status_classified[27-410-disables]",
        "tests/test_notify_webhook.py::test_retry_same_id_fresh_timestamp_and_signature_27",
        "tests/test_notify_webhook.py::test_huge_success_body_read_bounded_27",
        "tests/test_notify_webhook.py::test_huge_error_body_excerpt_bounded_27",
    ),
    "hazard-28-retry-ladder-and-replay": (
        "tests/test_pipeline.py::test_webhook_500_is_retried_on_the_ladder_with_the_same_id",
        "tests/test_status.py::test_status_and_dead_letters_round_trip",
    ),
    "hazard-29-kill-after-200-before-record": (
        "tests/test_store.py::test_crash_between_send_and_ack_resends_once",
        "tests/test_crash.py::test_kill_9_at_random_moments_loses_nothing_and_repeats_only_in_flight",
    ),
    "hazard-30-kill-anywhere-in-ingest": (
        "tests/test_crash.py::test_kill_9_at_random_moments_loses_nothing_and_repeats_only_in_flight",
        "tests/test_store.py::test_failed_transaction_writes_nothing",
    ),
    "hazard-31-parse-worker-killed": (
        "tests/test_parsepool.py::test_hazard_31_a_killed_worker_costs_only_its_own_feed",
    ),
    "hazard-32-second-daemon-same-sqlite": (
        "tests/test_store.py::test_second_daemon_on_the_same_file_is_refused",
    ),
    "hazard-37-bad-webhook-secret": (
        "tests/test_notify_webhook.py::test_bad_secret_refused_at_construction_37",
        "tests/test_config.py::test_bad_secret_is_reported_without_echoing_it",
        "tests/test_notify_webhook.py::test_validate_webhook_secret[37-too-short]",
    ),
}


@pytest.fixture(scope="module")
def collected(request: pytest.FixtureRequest) -> set[str]:
    """Node ids pytest collects for the files COVERED names: from this session when it
    collected them, else from a `--collect-only` run of just those files."""
    here = {item.nodeid for item in request.session.items}
    wanted = {n for ids in COVERED.values() for n in ids}
    if wanted <= here:
        return here
    files = sorted({n.split("::", 1)[0] for n in wanted})
    out = subprocess.run(
        [sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider", *files],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    return here | {line.strip() for line in out.stdout.splitlines() if "::" in line}


@pytest.mark.parametrize("case", sorted(COVERED), ids=sorted(COVERED))
def test_hazard_covered_elsewhere(case: str, collected: set[str]) -> None:
    missing = [n for n in COVERED[case] if n not in collected]
    assert not missing, f"{case}: these tests are gone or renamed: {missing}"


def test_every_case_has_a_test() -> None:
    """1..38: each case is in COVERED or has a test_hazard_NN_ function in this module."""
    here = {
        int(name.split("_")[2])
        for name in globals()
        if name.startswith("test_hazard_") and name.split("_")[2].isdigit()
    }
    mapped = {int(c.split("-")[1]) for c in COVERED}
    assert set(range(1, 39)) - here - mapped == set()


# --- helpers ---------------------------------------------------------------------------------


def config(
    tmp_path: Path,
    feeds: Mapping[str, str],
    destinations: Mapping[str, Any],
    notify: list[str],
    *,
    poll: Mapping[str, Any] | None = None,
    operator: list[str] | None = None,
    terms: list[str] | None = None,
) -> Config:
    data: dict[str, Any] = {
        "storage": f"sqlite:///{tmp_path / 'm.db'}",
        "poll": {"interval": 60, "timeout": "3s", "jitter": 0, "max_backoff": "1h", **(poll or {})},
        "max_age": "6h",
        "feeds": [{"url": url, "name": name} for name, url in feeds.items()],
        "destinations": dict(destinations),
        "watchlists": [{"name": "moscow", "any": terms or ["موسكو"], "notify": notify}],
        "operator": operator or [],
    }
    return loads(json.dumps(data, ensure_ascii=False), env={})


def hook(url: str, **extra: Any) -> dict[str, Any]:
    return {"type": "webhook", "url": url + "/in", "secret": WEBHOOK_SECRET, **extra}


def slack(url: str, channel: str, pace: float = 0) -> dict[str, Any]:
    return {
        "type": "slack",
        "token": TOKEN,
        "channel": channel,
        "base_url": url + "/api/",
        "pace": pace,
    }


def items(n: int, now: float, word: str = "موسكو", start: int = 0) -> list[FakeItem]:
    return [
        FakeItem(
            f"g-{i}",
            f"{word} خبر رقم {i} عن الاجتماع {i * 7919 % 1000}",
            f"تفاصيل الخبر {i} في النص {i * 104729 % 9973}",
            f"https://a.example/news/{i}",
            now - 60,
        )
        for i in range(start, start + n)
    ]


def run(coro):  # type: ignore[no-untyped-def]
    return asyncio.run(coro)


@asynccontextmanager
async def polling(cfg: Config, store: SQLiteStore, clock: Clock) -> AsyncIterator[Pipeline]:
    """A Pipeline on a fresh Fetcher, closed on the way out."""
    fetcher = Fetcher()
    try:
        yield Pipeline(cfg, store, fetcher, clock=clock)
    finally:
        await fetcher.aclose()


@asynccontextmanager
async def delivering(
    cfg: Config, store: SQLiteStore, clock: Clock, **sender: Any
) -> AsyncIterator[tuple[Pipeline, Sender]]:
    """A Pipeline and a Sender on the destinations of `cfg`; `sender` adds Sender keywords. The
    fetcher and the notifiers are closed on the way out."""
    fetcher = Fetcher()
    notifiers = build_notifiers(cfg)
    pipe = Pipeline(cfg, store, fetcher, clock=clock)
    try:
        yield pipe, Sender(store, notifiers, clock=clock, **sender)
    finally:
        await close(fetcher, notifiers)


def spec(url: str, timeout: float = 2.0) -> Any:
    from monitor.models import FeedSpec

    return FeedSpec(url=url, name=url.rsplit("/", 1)[-1], interval=60, timeout=timeout)


# --- 4, 7, 14, 19: feeds ---------------------------------------------------------------------


def test_hazard_04_html_or_empty_200_is_a_failure_not_all_items_removed(
    tmp_path: Path, feed_server: FeedServer, webhook_receiver: WebhookReceiver
) -> None:
    now = time.time()
    body = rss(items(2, now))
    feed_server.publish("/a.xml", body)
    cfg = config(
        tmp_path, {"a": feed_server.url + "/a.xml"}, {"h": hook(webhook_receiver.url)}, ["h"]
    )
    store = SQLiteStore(str(tmp_path / "m.db"))

    async def go() -> None:
        async with polling(cfg, store, Clock(now)) as pipe:
            assert (await pipe.poll(cfg.feeds[0])).alerts == 2
            broken = (
                b"<title</description<item<title</title<link<item<title<svg</title</item</link>"
            )
            for handler, why in (
                (hostile.html_page(), "HTML"),
                (hostile.empty_200(), "empty"),
                (hostile.status(200, broken), "feedparser failed"),  # feedparser's own KeyError
            ):
                feed_server.overrides["/a.xml"] = handler
                r = await pipe.poll(cfg.feeds[0])
                assert r.outcome == "error", why
                assert why in (r.error or ""), r.error
            del feed_server.overrides["/a.xml"]
            feed_server.publish("/a.xml", body + b" ")  # the same items again, a new ETag
            back = await pipe.poll(cfg.feeds[0])
            assert (back.outcome, back.new_items, back.alerts) == ("new", 0, 0)

    run(go())
    assert store.counts()["items"] == 2
    store.close()


def test_hazard_07_duplicate_guids_changing_guids_and_a_restored_backup(
    tmp_path: Path, feed_server: FeedServer, webhook_receiver: WebhookReceiver
) -> None:
    now = time.time()
    dup = [FakeItem("same", f"موسكو نسخة {i}", "نص", None, now - 60) for i in range(3)]
    feed_server.publish("/a.xml", rss(dup + items(2, now, start=10)))
    cfg = config(
        tmp_path, {"a": feed_server.url + "/a.xml"}, {"h": hook(webhook_receiver.url)}, ["h"]
    )
    store = SQLiteStore(str(tmp_path / "m.db"))

    async def go() -> None:
        async with polling(cfg, store, Clock(now)) as pipe:
            first = await pipe.poll(cfg.feeds[0])
            assert (first.new_items, first.alerts) == (3, 3), "three guids, the duplicate once"
            # The same articles under GUIDs that change every poll: their links identify them.
            moved = [
                FakeItem("new-" + it.guid, it.title, it.body, it.link, it.published)
                for it in items(2, now, start=10)
            ]
            feed_server.publish("/a.xml", rss(moved))
            assert (await pipe.poll(cfg.feeds[0])).alerts == 0
            # A feed restored from backup re-publishes 500 old items: max_age keeps them quiet.
            old = [
                FakeItem(it.guid, it.title, it.body, it.link, now - 30 * 86400)
                for it in items(500, now, start=1000)
            ]
            feed_server.publish("/a.xml", rss(old))
            restored = await pipe.poll(cfg.feeds[0])
            assert restored.alerts == 0
            assert restored.new_items == 500

    run(go())
    store.close()


def test_hazard_14_thousands_of_categories_and_enclosures_are_bounded() -> None:
    cats = "".join(f"<category>وسم {i}</category>" for i in range(20_000))
    encs = "".join(
        f'<enclosure url="https://a.example/{i}.mp3" length="1" type="audio/mpeg"/>'
        for i in range(5_000)
    )
    doc = (
        '<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>t</title>'
        f"<item><guid>g</guid><title>موسكو</title>{cats}{encs}<description>نص</description>"
        "</item></channel></rss>"
    ).encode()
    parsed = parse_feed(doc, url="https://a.example/feed.xml")
    (entry,) = parsed.entries
    assert entry.title == "موسكو"
    assert len(entry.summary) + len(entry.content) < 100_000, "categories do not leak into text"


def test_hazard_19_byte_identical_body_is_not_parsed_again(
    tmp_path: Path, webhook_receiver: WebhookReceiver
) -> None:
    now = time.time()
    body = rss(items(1, now))
    # No ETag, no Last-Modified: only the body hash can tell it is unchanged.
    server = LocalServer(lambda req: Response(200, body, {"Content-Type": "application/rss+xml"}))
    with server:
        cfg = config(
            tmp_path, {"a": server.url + "/a.xml"}, {"h": hook(webhook_receiver.url)}, ["h"]
        )
        store = SQLiteStore(str(tmp_path / "m.db"))

        async def go() -> None:
            async with polling(cfg, store, Clock(now)) as pipe:
                assert (await pipe.poll(cfg.feeds[0])).alerts == 1
                again = await pipe.poll(cfg.feeds[0])
                assert (again.outcome, again.items, again.alerts) == ("unchanged", 0, 0)

        run(go())
        assert store.feed_state(cfg.feeds[0].url).body_hash
        store.close()


@pytest.mark.parametrize(
    ("header", "value", "stored"),
    [
        ("ETag", '"caf\u00e9"', None),
        ("Last-Modified", "Mon, 01 Jan 2024 00:00:00 GMT\u00ff", None),
        ("ETag", '"' + "a" * 5000 + '"', None),
        ("ETag", '"caf\u00e9"', '"caf\u00e9"'),
    ],
    ids=[
        "non-ascii-etag-not-kept-next-poll-still-leaves",
        "non-ascii-last-modified-not-kept",
        "5000-char-etag-not-kept-bounded",
        "bad-etag-stored-by-an-older-version-not-sent",
    ],
)
def test_hazard_19_validators_that_cannot_be_sent_back_are_dropped(
    tmp_path: Path, webhook_receiver: WebhookReceiver, header: str, value: str, stored: str | None
) -> None:
    """A server's ETag or Last-Modified that no HTTP client can send back (non-ASCII, which
    http.server writes as latin-1 bytes) or an oversized one: kept, it made every later poll
    of the feed fail before the request left (UnicodeEncodeError). The feed goes on, told
    apart by its body hash."""
    now = time.time()
    body = rss(items(1, now))
    headers = {"Content-Type": "application/rss+xml", header: value}
    sent: list[tuple[str | None, str | None]] = []

    def handle(req: Request) -> Response:
        sent.append((req.headers.get("if-none-match"), req.headers.get("if-modified-since")))
        return Response(200, body, headers)

    with LocalServer(handle) as server:
        cfg = config(
            tmp_path, {"a": server.url + "/a.xml"}, {"h": hook(webhook_receiver.url)}, ["h"]
        )
        store = SQLiteStore(str(tmp_path / "m.db"))
        if stored is not None:  # what a version before this check wrote
            store.record_feeds([FeedOutcome(cfg.feeds[0].url, ok=True, etag=stored, at=now)])

        async def go() -> None:
            async with polling(cfg, store, Clock(now)) as pipe:
                first = await pipe.poll(cfg.feeds[0])
                assert (first.outcome, first.alerts) == ("new", 1), first.error
                again = await pipe.poll(cfg.feeds[0])
                assert (again.outcome, again.alerts) == ("unchanged", 0), again.error

        run(go())
        assert sent == [(None, None), (None, None)]  # both polls left, with nothing to echo
        if stored is None:
            state = store.feed_state(cfg.feeds[0].url)
            assert (state.etag, state.last_modified) == (None, None)
        store.close()


# --- 16, 17, 18, 20, 22, 23: servers ---------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "timeout", "reason"),
    [
        ("/lying-length.xml", 1.0, "timed out"),
        ("/endless.xml", 5.0, "body exceeds"),
        ("/drip.xml", 1.0, "timed out"),
        ("/brotli.xml", 5.0, "unsupported Content-Encoding"),
    ],
    ids=[
        "hazard-16-content-length-lies",
        "hazard-16-endless-chunked-body",
        "hazard-16-drip",
        "hazard-17-brotli-never-asked-for",
    ],
)
def test_hazard_16_17_hostile_bodies_fail_the_feed(
    feed_server: FeedServer, path: str, timeout: float, reason: str
) -> None:
    handler, _ = hostile.hostile_routes(feed_server.url)[path]
    feed_server.overrides[path] = handler

    async def go() -> FetchError:
        async with Fetcher(max_raw_bytes=2 * 1024 * 1024) as f:
            with pytest.raises(FetchError) as e:
                await f.fetch(spec(feed_server.url + path, timeout), FeedState(url=path))
            return e.value

    err = run(go())
    assert reason in err.message


def test_hazard_16_other_feeds_keep_their_cadence(
    tmp_path: Path, feed_server: FeedServer, webhook_receiver: WebhookReceiver
) -> None:
    """One dripping feed and three normal ones polled at once by one Pipeline and Fetcher:
    every normal poll is done (and its alert committed) before the drip's deadline ends it."""
    now = time.time()
    feed_server.overrides["/drip.xml"] = hostile.drip(every=0.3)
    feeds = {"drip": feed_server.url + "/drip.xml"}
    for n in range(3):
        feed_server.publish(f"/n{n}.xml", rss(items(1, now, start=n)))
        feeds[f"n{n}"] = feed_server.url + f"/n{n}.xml"
    cfg = config(tmp_path, feeds, {"h": hook(webhook_receiver.url)}, ["h"], poll={"timeout": "2s"})
    store = SQLiteStore(str(tmp_path / "m.db"))
    finished: list[str] = []

    async def go() -> None:
        async with polling(cfg, store, Clock(now)) as pipe:

            async def one(i: int) -> None:
                r = await pipe.poll(cfg.feeds[i])
                finished.append(f"{r.feed}:{r.outcome}")

            await asyncio.gather(*(one(i) for i in range(4)))

    run(go())
    assert finished[-1] == "drip:error"
    assert sorted(finished[:3]) == ["n0:new", "n1:new", "n2:new"]
    store.close()


@pytest.mark.parametrize(
    ("origin", "target", "refused"),
    [
        ({"public"}, {"public"}, False),
        ({"public"}, {"loopback"}, True),
        ({"public"}, {"link-local"}, True),
        ({"public"}, {"private"}, True),
        ({"public"}, {"public", "private"}, True),
        ({"loopback"}, {"loopback"}, False),
        ({"loopback"}, {"link-local"}, True),
        ({"private"}, {"private"}, False),
        ({"private"}, {"loopback"}, True),
        ({"loopback"}, {"public"}, False),
    ],
    ids=[
        "hazard-18-public-to-public",
        "hazard-18-public-to-loopback-refused",
        "hazard-18-public-to-metadata-refused",
        "hazard-18-public-to-lan-refused",
        "hazard-18-mixed-answer-refused",
        "hazard-18-internal-feed-server-redirecting-inside",
        "hazard-18-loopback-to-metadata-refused",
        "hazard-18-lan-feed-within-lan",
        "hazard-18-lan-to-loopback-refused",
        "hazard-18-internal-to-public",
    ],
)
def test_hazard_18_redirect_address_rule(origin: set[str], target: set[str], refused: bool) -> None:
    assert (redirect_refusal(frozenset(origin), frozenset(target)) is not None) == refused


@pytest.mark.parametrize(
    ("path", "reason"),
    [
        ("/metadata.xml", "link-local address refused"),
        ("/private.xml", "private address refused"),
        ("/loop-a.xml", "redirect loop"),
        ("/hop/0", "too many redirects"),
    ],
    ids=[
        "hazard-18-redirect-to-169.254.169.254",
        "hazard-18-redirect-to-private-range",
        "hazard-18-redirect-loop",
        "hazard-18-long-chain",
    ],
)
def test_hazard_18_redirects_refused_without_connecting(
    feed_server: FeedServer, path: str, reason: str
) -> None:
    for p, (handler, _) in hostile.hostile_routes(feed_server.url).items():
        feed_server.overrides[p] = handler

    async def go() -> FetchError:
        async with Fetcher() as f:
            with pytest.raises(FetchError) as e:
                await f.fetch(spec(feed_server.url + path), FeedState(url=path))
            return e.value

    err = run(go())
    assert reason in err.message
    if "address" in reason:
        assert not err.retryable


def test_hazard_18_allowed_by_the_operator_and_inside_one_class(feed_server: FeedServer) -> None:
    """A loopback feed may redirect within loopback; with allow_private the metadata redirect
    is followed (here it fails to connect, which shows the refusal was lifted)."""
    feed_server.publish("/real.xml", hostile.FEED)
    feed_server.overrides["/moved.xml"] = hostile.redirect(feed_server.url + "/real.xml", 301)
    feed_server.overrides["/metadata.xml"] = hostile.redirect("http://169.254.169.254:9/x")

    async def go() -> tuple[int, str]:
        async with Fetcher() as f:
            ok = await f.fetch(spec(feed_server.url + "/moved.xml"), FeedState(url="m"))
        async with Fetcher(allow_private=True) as f:
            with pytest.raises(FetchError) as e:
                await f.fetch(spec(feed_server.url + "/metadata.xml", 1.0), FeedState(url="x"))
        return ok.status, e.value.message

    status, message = run(go())
    assert status == 200
    assert "refused" not in message or "connection refused" in message


def test_hazard_18_allow_private_is_a_config_option() -> None:
    base = "feeds: []\ndestinations: {}\nwatchlists: []\n"
    assert loads(base, env={}).raw.poll.allow_private is False
    assert loads(base + "poll: {allow_private: true}\n", env={}).raw.poll.allow_private is True


@pytest.mark.parametrize(
    ("handler", "at_least"),
    [
        (hostile.retry_after(429, 900), 900),
        (hostile.retry_after(503, None, date_in=1800), 1700),
        (hostile.retry_after(429, 10 * 86400), 3600),
    ],
    ids=[
        "hazard-20-429-seconds",
        "hazard-20-503-http-date",
        "hazard-20-ten-days-capped-at-max-backoff",
    ],
)
def test_hazard_20_the_next_poll_waits_capped(
    tmp_path: Path, feed_server: FeedServer, handler: Any, at_least: float
) -> None:
    feed_server.overrides["/a.xml"] = handler
    cfg = config(tmp_path, {"a": feed_server.url + "/a.xml"}, {}, [])
    store = SQLiteStore(str(tmp_path / "m.db"))
    now = time.time()

    async def go() -> float:
        async with polling(cfg, store, Clock(now)) as pipe:
            r = await pipe.poll(cfg.feeds[0])
        assert r.outcome == "error"
        return r.next_in

    wait = run(go())
    assert at_least <= wait <= 3600, "honoured, and never beyond max_backoff (1h)"
    next_at = store.feed_state(cfg.feeds[0].url).next_poll_at
    assert next_at is not None
    assert next_at - now == pytest.approx(wait), "the store (and so a restart) waits too"
    store.close()


def test_hazard_22_proxy_variables_are_ignored(
    feed_server: FeedServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    proxy = LocalServer(lambda req: Response(502, b"proxy"))
    with proxy:
        for var in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy"):
            monkeypatch.setenv(var, proxy.url)
        monkeypatch.delenv("NO_PROXY", raising=False)
        monkeypatch.delenv("no_proxy", raising=False)
        feed_server.publish("/a.xml", hostile.FEED)

        async def go() -> int:
            async with Fetcher() as f:
                return (await f.fetch(spec(feed_server.url + "/a.xml"), FeedState(url="a"))).status

        assert run(go()) == 200
        assert proxy.requests == []


@pytest.mark.parametrize(
    "url",
    ["file:///etc/passwd", "/var/feeds/a.xml", "ftp://a.example/feed.xml", "gopher://a.example/"],
    ids=[
        "hazard-23-file-url",
        "hazard-23-bare-path",
        "hazard-23-ftp",
        "hazard-23-gopher",
    ],
)
def test_hazard_23_check_refuses_non_http_feed_urls(url: str) -> None:
    text = f"feeds:\n  - url: {url!r}\ndestinations: {{}}\nwatchlists: []\n"
    with pytest.raises(ConfigError, match=r"feeds\[0\]\.url: feed URL must be http"):
        loads(text, env={})


# --- 24-28: deliveries -----------------------------------------------------------------------


@pytest.fixture
def hostile_slack() -> Iterator[hostile.HostileSlack]:
    with hostile.HostileSlack() as s:
        yield s  # type: ignore[misc]


def test_hazard_24_slack_429_storm_holds_only_that_channel(
    tmp_path: Path,
    feed_server: FeedServer,
    webhook_receiver: WebhookReceiver,
    hostile_slack: hostile.HostileSlack,
) -> None:
    now = time.time()
    feed_server.publish("/a.xml", rss(items(3, now)))
    dests = {
        "stormy": slack(hostile_slack.url, "CSTORM"),
        "calm": slack(hostile_slack.url, "CCALM"),
        "archive": hook(webhook_receiver.url),
    }
    cfg = config(tmp_path, {"a": feed_server.url + "/a.xml"}, dests, list(dests))
    store = SQLiteStore(str(tmp_path / "m.db"))
    clock = Clock(now)
    hostile_slack.storm["CSTORM"] = 30

    async def go() -> None:
        async with delivering(cfg, store, clock) as (pipe, sender):
            await pipe.poll(cfg.feeds[0])
            assert await sender.send_due() == 6, "calm and archive get all three"
            for _ in range(10):  # minutes of 429s with Retry-After 30
                clock.t += 30
                assert await sender.send_due() == 0
            del hostile_slack.storm["CSTORM"]
            clock.t += 30
            assert await sender.send_due() == 3

    run(go())
    by_channel: dict[str, list[str]] = {}
    for m in hostile_slack.messages:
        by_channel.setdefault(m["channel"], []).append(m["text"])
    assert by_channel["CCALM"] == by_channel["CSTORM"], "nothing lost, order kept"
    assert len(by_channel["CSTORM"]) == 3
    assert len(webhook_receiver.received) == 3
    assert len(hostile_slack.rejected) == 11, "one try per round: a lane stops at its first 429"
    assert {r.state for r in store.deliveries(("pending", "sending", "dead"))} == set()
    store.close()


def test_hazard_24_slack_posts_are_paced_per_channel(hostile_slack: hostile.HostileSlack) -> None:
    from monitor.models import Alert, Delivery, Item, utc

    pace = 0.4
    n = SlackNotifier("desk", TOKEN, "CPACE", base_url=hostile_slack.url + "/api/", pace=pace)

    def delivery(i: int) -> Delivery:
        item = Item(f"i{i}", "feed", "https://a.example/f", None, None, f"خبر {i}", "", "", utc(0))
        return Delivery(i, Alert(f"al_{i}", "w", f"i{i}", item, (), utc(0)), "desk", 0)

    async def go() -> None:
        for i in range(3):
            await n.send(delivery(i))

    run(go())
    posts = [r.at for r in hostile_slack.requests if r.path.endswith("chat.postMessage")]
    assert len(posts) == 3
    gaps = [b - a for a, b in itertools.pairwise(posts)]
    assert all(g >= pace * 0.9 for g in gaps), gaps


def test_hazard_25_reset_after_accept_one_duplicate_with_the_same_alert_id(
    tmp_path: Path, feed_server: FeedServer, hostile_slack: hostile.HostileSlack
) -> None:
    now = time.time()
    feed_server.publish("/a.xml", rss(items(1, now)))
    cfg = config(
        tmp_path,
        {"a": feed_server.url + "/a.xml"},
        {"desk": slack(hostile_slack.url, "C1")},
        ["desk"],
    )
    store = SQLiteStore(str(tmp_path / "m.db"))
    clock = Clock(now)
    accepted: list[dict[str, Any]] = []

    def reset_after_accept(req: Request) -> None:
        # The first post is accepted (recorded as a message), then the connection dies.
        if req.path.endswith("chat.postMessage") and not accepted:
            accepted.append(json.loads(req.body))
            hostile_slack.channel_script.setdefault("C1", deque()).append(Response(reset=True))

    hostile_slack.on_request = reset_after_accept

    async def go() -> None:
        async with delivering(cfg, store, clock) as (pipe, sender):
            await pipe.poll(cfg.feeds[0])
            assert await sender.send_due() == 0, "no answer: retried later, not twice now"
            clock.t += RETRY_LADDER[0]
            assert await sender.send_due() == 1

    run(go())
    posts = [r for r in hostile_slack.requests if r.path.endswith("chat.postMessage")]
    assert len(posts) == 2, "at most one duplicate"
    ids = {json.loads(r.body)["metadata"]["event_payload"]["alert_id"] for r in posts}
    assert len(ids) == 1, "both carry the same alert id in message metadata"
    store.close()


def test_hazard_26_ok_false_is_dead_lettered_with_its_reason_and_the_operator_told(
    tmp_path: Path,
    feed_server: FeedServer,
    webhook_receiver: WebhookReceiver,
    hostile_slack: hostile.HostileSlack,
) -> None:
    now = time.time()
    feed_server.publish("/a.xml", rss(items(2, now)))
    dests = {"desk": slack(hostile_slack.url, "CGONE"), "ops": hook(webhook_receiver.url)}
    cfg = config(tmp_path, {"a": feed_server.url + "/a.xml"}, dests, ["desk"], operator=["ops"])
    store = SQLiteStore(str(tmp_path / "m.db"))
    clock = Clock(now)
    from tests.servers import slack_json

    hostile_slack.channel_script["CGONE"] = deque(
        [slack_json({"ok": False, "error": "msg_too_long"})]
    )

    async def go() -> None:
        async with delivering(cfg, store, clock, operator=cfg.raw.operator) as (pipe, sender):
            await pipe.poll(cfg.feeds[0])
            await sender.send_due()
            await sender.send_due()
            clock.t += 10_000
            await sender.send_due()

    run(go())
    rows = {
        r.state: r
        for r in store.deliveries(("pending", "sending", "dead", "done"))
        if r.destination == "desk"
    }
    assert "dead" in rows
    assert "msg_too_long" in (rows["dead"].last_error or "")
    assert len(hostile_slack.rejected) == 1, "not retried blindly"
    assert len(hostile_slack.messages) == 1, "the other alert still goes out"
    notices = [p for _, p, _ in webhook_receiver.received if p["type"] == NOTICE]
    assert len(notices) == 1
    assert "msg_too_long" in notices[0]["item"]["title"]
    assert "dead letters" in notices[0]["item"]["title"]
    store.close()


def test_hazard_27_410_disables_the_destination_and_its_other_alerts_wait(
    tmp_path: Path, feed_server: FeedServer, webhook_receiver: WebhookReceiver
) -> None:
    now = time.time()
    feed_server.publish("/a.xml", rss(items(3, now)))
    with WebhookReceiver(WEBHOOK_SECRET) as ops:
        dests = {"gone": hook(webhook_receiver.url), "ops": hook(ops.url)}
        cfg = config(tmp_path, {"a": feed_server.url + "/a.xml"}, dests, ["gone"], operator=["ops"])
        store = SQLiteStore(str(tmp_path / "m.db"))
        clock = Clock(now)
        webhook_receiver.script.append(Response(410, b"gone"))

        async def go() -> None:
            async with delivering(cfg, store, clock, operator=cfg.raw.operator) as (pipe, sender):
                await pipe.poll(cfg.feeds[0])
                for _ in range(3):
                    await sender.send_due()
                    clock.t += 3600
                assert "gone" in sender.disabled
                # A reload that rebuilds the destination enables it again.
                sender.notifiers["gone"] = build_notifiers(cfg)["gone"]
                assert await sender.send_due() == 2
                await close(sender.notifiers)  # the rebuilt one, with the others again

        run(go())
        states = sorted(
            r.state
            for r in store.deliveries(("pending", "sending", "dead", "done"))
            if r.destination == "gone"
        )
        assert states == ["dead", "done", "done"]
        assert len(webhook_receiver.received) == 3, "one 410, nothing while disabled, then two"
        (notice,) = [p for _, p, _ in ops.received]
        assert "disabled" in notice["item"]["title"]
        store.close()


def test_hazard_27_slow_receiver_times_out_and_is_retried_with_the_same_id(
    tmp_path: Path, feed_server: FeedServer, webhook_receiver: WebhookReceiver
) -> None:
    now = time.time()
    feed_server.publish("/a.xml", rss(items(1, now)))
    dests = {"slow": hook(webhook_receiver.url, timeout="500ms")}
    cfg = config(tmp_path, {"a": feed_server.url + "/a.xml"}, dests, ["slow"])
    store = SQLiteStore(str(tmp_path / "m.db"))
    clock = Clock(now)
    webhook_receiver.script.append(Response(200, b"ok", delay=3.0))  # "60 s", scaled down

    async def go() -> None:
        async with delivering(cfg, store, clock) as (pipe, sender):
            await pipe.poll(cfg.feeds[0])
            assert await sender.send_due() == 0
            (row,) = store.deliveries(("pending",))
            assert "no answer within 0.5 s" in (row.last_error or "")
            clock.t += RETRY_LADDER[0]
            assert await sender.send_due() == 1

    run(go())
    ids = {h["webhook-id"] for h, _, _ in webhook_receiver.received}
    assert len(ids) == 1
    store.close()


def test_hazard_28_receiver_down_for_days_ladder_then_dead_letter_then_replay(
    tmp_path: Path, feed_server: FeedServer
) -> None:
    now = time.time()
    feed_server.publish("/a.xml", rss(items(1, now)))
    down = LocalServer()  # never started: connections are refused
    url = down.url
    down.httpd.server_close()
    cfg = config(tmp_path, {"a": feed_server.url + "/a.xml"}, {"h": hook(url)}, ["h"])
    store = SQLiteStore(str(tmp_path / "m.db"))
    clock = Clock(now)
    assert RETRY_LADDER == (5, 300, 1800, 7200, 18000, 36000, 36000), "Svix's schedule"

    async def go() -> list[float]:
        async with delivering(cfg, store, clock) as (pipe, sender):
            await pipe.poll(cfg.feeds[0])
            waits = []
            for _ in range(8):
                await sender.send_due()  # the first try is immediate
                nxt = store.next_due_at()
                if nxt is None:
                    break
                waits.append(nxt - clock.t)
                clock.t = nxt
        return waits

    waits = run(go())
    assert [round(w) for w in waits] == list(RETRY_LADDER)
    (row,) = store.deliveries(("dead",))
    assert "gave up after 8 tries" in (row.last_error or "")
    assert store.requeue([row.id]) == 1, "`monitor deliveries --retry` sends it again"
    assert [r.state for r in store.deliveries(("pending",))] == ["pending"]
    store.close()


# --- 33-36: process, storage, clock ----------------------------------------------------------


def test_hazard_33_disk_full_during_commit_rolls_back_and_recovers(
    tmp_path: Path, feed_server: FeedServer, webhook_receiver: WebhookReceiver
) -> None:
    """A full disk, made with SQLite's max_page_count (no root mount needed): the commit fails
    with SQLITE_FULL, nothing of the poll is kept, and the next poll after space returns
    ingests it all."""
    now = time.time()
    feed_server.publish("/a.xml", rss(items(40, now)))
    cfg = config(
        tmp_path, {"a": feed_server.url + "/a.xml"}, {"h": hook(webhook_receiver.url)}, ["h"]
    )
    store = SQLiteStore(str(tmp_path / "m.db"))
    pages = store.db.execute("PRAGMA page_count").fetchone()[0]
    store.db.execute(f"PRAGMA max_page_count = {pages}")

    async def go() -> None:
        async with polling(cfg, store, Clock(now)) as pipe:
            with pytest.raises(StoreError, match="full"):
                await pipe.poll(cfg.feeds[0])
            assert store.counts()["items"] == 0
            assert store.seen_keys(["g:" + "x"]) == {}
            assert store.feed_state(cfg.feeds[0].url).etag is None, "validators not kept either"
            store.db.execute("PRAGMA max_page_count = 1073741823")
            r = await pipe.poll(cfg.feeds[0])
            assert (r.outcome, r.new_items, r.alerts) == ("new", 40, 40)

    run(go())
    store.close()


def test_hazard_34_database_locked_by_another_process_waits_and_retries(
    tmp_path: Path, feed_server: FeedServer, webhook_receiver: WebhookReceiver
) -> None:
    """Another process holds the write lock (BEGIN IMMEDIATE) for ~1.5 s (the case says 10 s;
    busy_timeout is 15 s, and the test keeps it short): the poll's commit waits for it."""
    now = time.time()
    feed_server.publish("/a.xml", rss(items(3, now)))
    cfg = config(
        tmp_path, {"a": feed_server.url + "/a.xml"}, {"h": hook(webhook_receiver.url)}, ["h"]
    )
    store = SQLiteStore(str(tmp_path / "m.db"))
    db = tmp_path / "m.db"
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sqlite3, sys, time\n"
            "c = sqlite3.connect(sys.argv[1], isolation_level=None)\n"
            "c.execute('BEGIN IMMEDIATE')\n"
            "c.execute(\"INSERT INTO meta VALUES ('held', 'x')\")\n"
            "print('locked', flush=True)\n"
            "time.sleep(1.5)\n"
            "c.execute('ROLLBACK')\n",
            str(db),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == "locked"

        async def go() -> None:
            async with polling(cfg, store, Clock(now)) as pipe:
                r = await pipe.poll(cfg.feeds[0])
                assert (r.outcome, r.alerts) == ("new", 3)

        run(go())
        assert holder.poll() is not None, "the poll committed only after the other let go"
    finally:
        holder.communicate(timeout=10)
    assert store.counts()["items"] == 3
    assert store.db.execute("SELECT count(*) FROM meta WHERE key = 'held'").fetchone()[0] == 0
    store.close()


@pytest.mark.slow
def test_hazard_35_sigterm_during_50_in_flight_sends_exits_0_within_grace(
    tmp_path: Path, feed_server: FeedServer
) -> None:
    from monitor.daemon import GRACE

    now = time.time()
    feed_server.publish("/a.xml", rss(items(50, now)))
    arrived = threading.Event()

    def slow(req: Request) -> Response:
        arrived.set()
        return Response(200, b"ok", delay=30.0)  # slower than the grace period

    n_dests = 50  # one lane per destination: 50 sends in flight at once
    with LocalServer(slow) as receiver:
        receiver.httpd.socket.listen(128)  # 50 connections at once (the default backlog is 5)
        dests = {f"h{i}": hook(receiver.url, timeout="60s") for i in range(n_dests)}
        cfg = config(
            tmp_path,
            {"a": feed_server.url + "/a.xml"},
            dests,
            list(dests),
            poll={"interval": 3600},
        )
        path = tmp_path / "monitor.yaml"
        path.write_text(json.dumps(cfg.raw.model_dump(mode="json", exclude_none=True)), "utf-8")
        log = (tmp_path / "daemon.log").open("w", encoding="utf-8")
        proc = subprocess.Popen(
            [sys.executable, "-m", "monitor", "-c", str(path), "run"],
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            # A file, not a pipe: parse-pool workers orphaned by a hard exit may hold it open.
            stderr=log,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
        )
        try:
            assert arrived.wait(30), "deliveries started"
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline and len(receiver.requests) < n_dests:
                time.sleep(0.05)
            in_flight = len(receiver.requests)
            proc.send_signal(signal.SIGTERM)
            code = proc.wait(timeout=GRACE + 10)
        finally:
            if proc.poll() is None:
                proc.kill()
            log.close()
        err = (tmp_path / "daemon.log").read_text("utf-8")
    assert code == 0, err[-2000:]
    assert in_flight >= 40, in_flight
    assert len(receiver.requests) == in_flight, "no new work after the signal"
    assert "grace_expired" in err
    store = SQLiteStore(str(tmp_path / "m.db"))
    assert store.recover() == in_flight, "unfinished sends are kept, sent again after restart"
    store.close()


@pytest.mark.slow
def test_hazard_35_a_second_signal_exits_at_once(tmp_path: Path, feed_server: FeedServer) -> None:
    now = time.time()
    feed_server.publish("/a.xml", rss(items(1, now)))
    arrived = threading.Event()

    def slow(req: Request) -> Response:
        arrived.set()
        return Response(200, b"ok", delay=30.0)

    with LocalServer(slow) as receiver:
        cfg = config(
            tmp_path,
            {"a": feed_server.url + "/a.xml"},
            {"h": hook(receiver.url, timeout="60s")},
            ["h"],
        )
        path = tmp_path / "monitor.yaml"
        path.write_text(json.dumps(cfg.raw.model_dump(mode="json", exclude_none=True)), "utf-8")
        log = (tmp_path / "daemon.log").open("w", encoding="utf-8")
        proc = subprocess.Popen(
            [sys.executable, "-m", "monitor", "-c", str(path), "run"],
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            # A file, not a pipe: parse-pool workers orphaned by a hard exit may hold it open.
            stderr=log,
        )
        try:
            assert arrived.wait(30)
            proc.send_signal(signal.SIGTERM)
            time.sleep(0.3)  # the first signal is handled (the daemon is stopping)
            proc.send_signal(signal.SIGTERM)
            code = proc.wait(timeout=5)  # far less than the grace period
        finally:
            if proc.poll() is None:
                proc.kill()
            log.close()
        err = (tmp_path / "daemon.log").read_text("utf-8")
    assert code == 1, err[-2000:]
    assert "second signal" in err


def test_hazard_36_clock_steps_cause_no_burst_and_lose_nothing(
    tmp_path: Path, feed_server: FeedServer, webhook_receiver: WebhookReceiver
) -> None:
    """What monitor computes from the clock is an interval added to `now`: a step forward of a
    day makes one poll and at most one try per delivery (no catch-up burst); a step back of an
    hour re-sends nothing delivered and loses nothing pending. (The daemon's schedule is
    APScheduler's: coalesce=True and max_instances=1 run a missed job once, not once per missed
    interval; see docs/design.md.)"""
    now = time.time()
    feed_server.publish("/a.xml", rss(items(2, now)))
    cfg = config(
        tmp_path, {"a": feed_server.url + "/a.xml"}, {"h": hook(webhook_receiver.url)}, ["h"]
    )
    store = SQLiteStore(str(tmp_path / "m.db"))
    clock = Clock(now)
    webhook_receiver.script.append(Response(500, b"later"))

    async def go() -> None:
        async with delivering(cfg, store, clock) as (pipe, sender):
            r = await pipe.poll(cfg.feeds[0])
            assert r.next_in == 60
            assert await sender.send_due() == 0  # 500: the lane stops, both wait
            clock.t += 86400  # forward a day
            assert (await pipe.poll(cfg.feeds[0])).next_in == 60, "one poll, the interval again"
            assert await sender.send_due() == 2, (
                "each delivery tried once, not once per missed step"
            )
            assert len(webhook_receiver.received) == 3
            clock.t -= 3600  # back an hour
            assert await sender.send_due() == 0, "nothing delivered is sent again"
            assert (await pipe.poll(cfg.feeds[0])).alerts == 0

    run(go())
    assert len(webhook_receiver.received) == 3
    store.close()


class _Clocks:
    """A wall clock and a monotonic clock that the test steps, for ClockWatch."""

    def __init__(self) -> None:
        self.wall, self.mono = 1_800_000_000.0, 500.0

    def advance(self, wall: float, mono: float) -> None:
        self.wall += wall
        self.mono += mono


@pytest.mark.parametrize(
    ("wall", "mono", "back"),
    [
        (5.0, 5.0, 0.0),
        (-3595.0, 5.0, 3600.0),
        (86405.0, 5.0, 0.0),
        (3600.0, 0.0, 0.0),
        (4.5, 5.0, 0.0),
        (2.9, 5.0, 0.0),
        (2.0, 5.0, 3.0),
    ],
    ids=[
        "hazard-36-steady-clocks-no-step",
        "hazard-36-wall-stepped-back-an-hour",
        "hazard-36-wall-stepped-forward-a-day-left-to-the-scheduler",
        "hazard-36-resumed-from-suspend-monotonic-stood-still-not-a-step-back",
        "hazard-36-ntp-slew-half-a-second-is-noise",
        "hazard-36-at-the-tolerance-is-noise",
        "hazard-36-just-past-the-tolerance-is-a-step",
    ],
)
def test_hazard_36_clock_watch_tells_a_step_back(wall: float, mono: float, back: float) -> None:
    clocks = _Clocks()
    watch = ClockWatch(wall=lambda: clocks.wall, mono=lambda: clocks.mono, tolerance=2.1)
    clocks.advance(wall, mono)
    assert watch.stepped_back() == pytest.approx(back)
    clocks.advance(5.0, 5.0)
    assert watch.stepped_back() == 0.0, "a step is reported once"


def test_hazard_36_a_running_daemon_keeps_polling_after_the_clock_steps_back(
    tmp_path: Path, feed_server: FeedServer
) -> None:
    """APScheduler plans polls as wall-clock dates: after the wall clock steps back an hour,
    every planned poll is an hour further away than its interval. The daemon's clock watch
    sees the step and moves each poll back by it. Here the step is made where each side reads
    the wall clock: the planned poll is moved an hour ahead (what the step leaves for
    APScheduler), and the daemon's watch reads a wall clock an hour behind."""
    now = time.time()
    body = rss(items(1, now))
    polls: list[float] = []
    polled: list[tuple[asyncio.AbstractEventLoop, asyncio.Event]] = []

    def serve(req: Request) -> Response:  # runs in the server's thread
        polls.append(time.monotonic())
        for loop, event in polled:
            loop.call_soon_threadsafe(event.set)
        return Response(200, body, {"Content-Type": "application/rss+xml; charset=utf-8"})

    feed_server.overrides["/a.xml"] = serve
    cfg = config(tmp_path, {"a": feed_server.url + "/a.xml"}, {}, [], poll={"interval": "1s"})
    offset = [0.0]
    daemon = Daemon(cfg, use_pool=False)
    daemon.clock_watch = ClockWatch(wall=lambda: time.time() + offset[0])
    daemon.clock_check = 0.05

    async def next_poll(seconds: float) -> bool:
        event = polled[0][1]
        event.clear()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                await event.wait()
        return event.is_set()

    async def go() -> None:
        polled.append((asyncio.get_running_loop(), asyncio.Event()))
        task = asyncio.create_task(daemon.run())
        try:
            assert polls or await next_poll(10), "the first poll"
            await asyncio.sleep(0.3)  # the first poll is over; the next is planned 1 s after it
            assert daemon.scheduler is not None
            job = daemon.scheduler.get_job(cfg.feeds[0].url)
            assert job is not None
            job.modify(next_run_time=job.next_run_time + timedelta(hours=1))
            offset[0] = -3600.0
            assert await next_poll(5), "polled again, not an hour later"
            planned = daemon.scheduler.get_job(cfg.feeds[0].url).next_run_time.timestamp()
            assert planned < time.time() + 60, "and planned an interval ahead, not an hour"
            metrics = daemon.metrics.render().decode()
            assert value(metrics, "monitor_clock_steps_back_total") == 1, "counted once"
        finally:
            daemon.stopping.set()
            await task

    run(go())


@pytest.mark.parametrize(
    ("remembered", "expected"),
    [(30.0, 30.0), (-30.0, 0.0), (36_000.0, 3600.0)],
    ids=[
        "hazard-36-restart-keeps-the-remembered-poll-time",
        "hazard-36-restart-polls-an-overdue-feed-now",
        "hazard-36-restart-after-a-step-back-waits-at-most-max-backoff",
    ],
)
def test_hazard_36_restart_after_a_clock_step(
    tmp_path: Path, remembered: float, expected: float
) -> None:
    """The store remembers each feed's next poll as a wall-clock time; a clock stepped back
    10 hours while the daemon was down must not leave the feed unpolled for 10 hours."""
    url = "http://127.0.0.1:9/a.xml"
    cfg = config(tmp_path, {"a": url}, {}, [], poll={"interval": "1m", "max_backoff": "1h"})
    now = time.time()
    store = SQLiteStore(str(tmp_path / "m.db"))
    store.record_feed(FeedOutcome(url, ok=True, next_poll_at=now + remembered, at=now))
    store.close()
    daemon = Daemon(cfg, use_pool=False)
    try:
        assert daemon._first_poll(cfg.feeds[0], now) == pytest.approx(now + expected)
    finally:
        daemon.store.close()


# --- 37, 38 ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("setup", "problem"),
    [
        (lambda s: None, None),
        (lambda s: setattr(s, "auth_error", "invalid_auth"), "token is refused (invalid_auth)"),
        (lambda s: setattr(s, "scopes", "channels:read"), "lacks the chat:write scope"),
        (lambda s: s.members.discard("C1"), "not a member of channel C1"),
        (lambda s: s.missing.add("C1"), "channel C1 not found"),
    ],
    ids=[
        "hazard-37-all-good",
        "hazard-37-invalid-token",
        "hazard-37-missing-scope",
        "hazard-37-bot-not-in-channel",
        "hazard-37-no-such-channel",
    ],
)
def test_hazard_37_slack_check_online(
    hostile_slack: hostile.HostileSlack, setup: Any, problem: str | None
) -> None:
    hostile_slack.members.add("C1")
    setup(hostile_slack)
    n = SlackNotifier("desk", TOKEN, "C1", base_url=hostile_slack.url + "/api/")
    problems, _notes = n.check()
    if problem is None:
        assert problems == []
    else:
        assert len(problems) == 1, problems
        assert problem in problems[0], problems
        assert TOKEN not in problems[0]


def test_hazard_37_check_online_command(
    tmp_path: Path, hostile_slack: hostile.HostileSlack
) -> None:
    cfg = config(tmp_path, {}, {"desk": slack(hostile_slack.url, "C1")}, ["desk"])
    path = tmp_path / "monitor.yaml"
    path.write_text(json.dumps(cfg.raw.model_dump(mode="json", exclude_none=True)), "utf-8")
    cmd = [sys.executable, "-m", "monitor", "-c", str(path), "check", "--online"]
    bad = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=60, check=False)
    assert bad.returncode == 1
    assert "not a member of channel C1" in bad.stdout + bad.stderr
    assert "Traceback" not in bad.stderr
    hostile_slack.members.add("C1")
    good = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=60, check=False)
    assert good.returncode == 0, good.stdout + good.stderr


def test_hazard_38_a_too_broad_watchlist_is_capped_with_one_summary(
    tmp_path: Path,
    feed_server: FeedServer,
    webhook_receiver: WebhookReceiver,
    caplog: pytest.LogCaptureFixture,
) -> None:
    now = time.time()
    feed_server.publish("/a.xml", rss(items(300, now, word="خبر")))
    cfg = config(
        tmp_path,
        {"a": feed_server.url + "/a.xml"},
        {"h": hook(webhook_receiver.url)},
        ["h"],
        terms=["خبر"],  # in every item
        poll={"max_alerts_per_watchlist": 20, "max_items": 1000},
    )
    store = SQLiteStore(str(tmp_path / "m.db"))
    clock = Clock(now)

    async def go() -> None:
        async with delivering(cfg, store, clock) as (pipe, sender):
            await pipe.poll(cfg.feeds[0])
            await sender.send_due(limit=1000)

    with caplog.at_level("WARNING", logger="monitor"):
        run(go())
    payloads = [p for _, p, _ in webhook_receiver.received]
    singles = [p for p in payloads if p["type"] == "monitor.alert"]
    digests = [p for p in payloads if p["type"] == "monitor.digest"]
    assert len(singles) == 20
    assert len(digests) == 1
    assert digests[0]["kind"] == "burst"
    assert digests[0]["count"] == 280, "nothing lost: all in one summary"
    warnings = [r for r in caplog.records if "max_alerts_per_watchlist" in r.getMessage()]
    assert len(warnings) == 1
    store.close()
