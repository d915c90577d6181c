"""Signed webhooks against a real local receiver that verifies with the reference
`standardwebhooks` package (tests/servers.py WebhookReceiver). HAZARDS 27, 29 and 37 in ids."""

from __future__ import annotations

import asyncio
import base64
import itertools
import json
import os
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime

import pytest
from standardwebhooks.webhooks import Webhook

from monitor.errors import NotifyError
from monitor.models import Alert, Delivery, Item
from monitor.notify import SendResult, retry_after_seconds, validate_webhook_secret
from monitor.notify.webhook import MAX_RESPONSE_READ, WebhookNotifier, render, sign
from tests.conftest import WEBHOOK_SECRET
from tests.servers import Response, WebhookReceiver

PUBLISHED = datetime(2018, 3, 1, 21, 5, tzinfo=UTC)


def make_alert(title: str = "شويغو يصل إلى موسكو في زيارة") -> Alert:
    item = Item(
        id="item-1",
        feed="france24",
        feed_url="https://www.france24.com/ar/rss",
        guid="g1",
        url="https://www.france24.com/ar/20180301-shoigu",
        title=title,
        summary="وصل وزير الدفاع الروسي سيرغي شويغو إلى موسكو.",
        content="",
        published=PUBLISHED,
    )
    return Alert(
        id="alert-0001",
        watchlist="moscow",
        story_id="story-1",
        item=item,
        matched=("موسكو",),
        created_at=datetime(2018, 3, 1, 21, 6, tzinfo=UTC),
    )


def deliver(alert: Alert | None = None, attempts: int = 0) -> Delivery:
    return Delivery(id=7, alert=alert or make_alert(), destination="archive", attempts=attempts)


def run_sends(notifier: WebhookNotifier, *deliveries: Delivery) -> list[SendResult | NotifyError]:
    """Send each delivery in one event loop; collect results and errors; close the notifier."""

    async def go() -> list[SendResult | NotifyError]:
        out: list[SendResult | NotifyError] = []
        try:
            for d in deliveries:
                try:
                    out.append(await notifier.send(d))
                except NotifyError as e:
                    out.append(e)
        finally:
            await notifier.aclose()
        return out

    return asyncio.run(go())


def one_error(notifier: WebhookNotifier) -> NotifyError:
    [result] = run_sends(notifier, deliver())
    assert isinstance(result, NotifyError), result
    return result


def hook(receiver: WebhookReceiver, **kw: object) -> WebhookNotifier:
    return WebhookNotifier("archive", receiver.url + "/hooks/news", WEBHOOK_SECRET, **kw)  # type: ignore[arg-type]


# ---------------------------------------------------------------- render and sign as data


def test_render_is_utf8_json_of_payload() -> None:
    alert = make_alert()
    body = render(alert)
    assert json.loads(body) == alert.payload()
    assert "موسكو".encode() in body  # not \u-escaped
    assert b"\\u" not in body


def test_sign_matches_reference_package() -> None:
    body = render(make_alert())
    ts = 1_519_938_300
    headers = sign(WEBHOOK_SECRET, "alert-0001", ts, body)
    reference = Webhook(WEBHOOK_SECRET).sign(
        "alert-0001", datetime.fromtimestamp(ts, tz=UTC), body.decode("utf-8")
    )
    assert headers == {
        "webhook-id": "alert-0001",
        "webhook-timestamp": str(ts),
        "webhook-signature": reference,
    }


def test_sign_refuses_bad_secret_without_echoing_it() -> None:
    with pytest.raises(ValueError, match="base64") as info:
        sign("whsec_not*base64*at*all", "id", 1, b"{}")
    assert "not*base64" not in str(info.value)


SECRETS = [
    (WEBHOOK_SECRET, None, "ok-24-bytes"),
    ("whsec_" + base64.b64encode(b"k" * 64).decode(), None, "ok-64-bytes"),
    ("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "must start with", "37-no-prefix"),
    ("whsec_", "nothing after", "37-empty-after-prefix"),
    ("whsec_!!!notbase64!!!", "not valid base64", "37-not-base64"),
    ("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaS", "not valid base64", "37-bad-padding"),
    ("whsec_" + base64.b64encode(b"k" * 16).decode(), "too short: 16 bytes", "37-too-short"),
    ("whsec_ MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "not valid base64", "37-space-inside"),
]


@pytest.mark.parametrize(
    ("secret", "problem"), [(s, p) for s, p, _ in SECRETS], ids=[i for *_, i in SECRETS]
)
def test_validate_webhook_secret(secret: str, problem: str | None) -> None:
    got = validate_webhook_secret(secret)
    if problem is None:
        assert got is None
    else:
        assert got is not None
        assert problem in got
        if secret.removeprefix("whsec_"):
            assert secret.removeprefix("whsec_") not in got


def test_bad_secret_refused_at_construction_37() -> None:
    with pytest.raises(NotifyError) as info:
        WebhookNotifier("archive", "https://example.org/h", "whsec_c2hvcnQ=")
    assert info.value.permanent
    assert "too short" in info.value.message


def test_non_http_url_refused_at_construction() -> None:
    with pytest.raises(NotifyError):
        WebhookNotifier("archive", "file:///etc/passwd", None)


NOW = 1_700_000_000.0
RETRY_AFTER = [
    (None, None, "absent"),
    ("", None, "empty"),
    ("120", 120.0, "seconds"),
    (" 7 ", 7.0, "seconds-padded"),
    ("-5", 0.0, "negative-clamped"),
    ("999999999", 86400.0, "huge-capped"),
    ("Tue, 14 Nov 2023 22:15:20 GMT", 120.0, "http-date"),
    ("Tue, 14 Nov 2023 22:00:00 GMT", 0.0, "http-date-past"),
    ("soon", None, "garbage"),
    ("nan", None, "nan"),
]


@pytest.mark.parametrize(
    ("value", "seconds"), [(v, s) for v, s, _ in RETRY_AFTER], ids=[i for *_, i in RETRY_AFTER]
)
def test_retry_after_seconds(value: str | None, seconds: float | None) -> None:
    assert retry_after_seconds(value, NOW) == seconds


# ---------------------------------------------------------------- against the receiver


def test_signed_post_verifies_with_reference(webhook_receiver: WebhookReceiver) -> None:
    alert = make_alert()
    [result] = run_sends(hook(webhook_receiver), deliver(alert))
    assert result == SendResult(ref=None)
    [(headers, payload, verified)] = webhook_receiver.received
    assert verified
    assert payload == alert.payload()
    assert headers["webhook-id"] == "alert-0001"
    assert headers["content-type"] == "application/json"
    [req] = webhook_receiver.requests
    assert req.method == "POST"
    assert req.path == "/hooks/news"
    assert req.body == render(alert)


@pytest.fixture
def riyadh() -> Iterator[None]:
    old = os.environ.get("TZ")
    os.environ["TZ"] = "Asia/Riyadh"
    time.tzset()
    try:
        yield
    finally:
        if old is None:
            del os.environ["TZ"]
        else:
            os.environ["TZ"] = old
        time.tzset()


@pytest.mark.usefixtures("riyadh")
def test_signature_verifies_under_riyadh_time_zone(webhook_receiver: WebhookReceiver) -> None:
    assert time.localtime(0).tm_gmtoff == 3 * 3600  # the zone really is in force
    run_sends(hook(webhook_receiver), deliver())
    [(headers, _, verified)] = webhook_receiver.received
    assert verified
    assert abs(int(headers["webhook-timestamp"]) - time.time()) < 300


def stepping_clock(*values: float) -> Callable[[], float]:
    it = itertools.chain(values, itertools.repeat(values[-1]))
    return lambda: next(it)


def test_retry_same_id_fresh_timestamp_and_signature_27(webhook_receiver: WebhookReceiver) -> None:
    webhook_receiver.script.append(Response(500, b"oops"))
    now = time.time()
    # Each try reads the clock twice: once to sign, once to read a Retry-After.
    notifier = hook(webhook_receiver, clock=stepping_clock(now - 90, now - 90, now, now))
    first, second = run_sends(notifier, deliver(attempts=0), deliver(attempts=1))
    assert isinstance(first, NotifyError)
    assert not first.permanent
    assert second == SendResult()
    (h1, p1, v1), (h2, p2, v2) = webhook_receiver.received
    assert v1
    assert v2
    assert p1 == p2
    assert h1["webhook-id"] == h2["webhook-id"] == "alert-0001"
    assert int(h2["webhook-timestamp"]) - int(h1["webhook-timestamp"]) == 90
    assert h1["webhook-signature"] != h2["webhook-signature"]


def test_without_secret_no_signature(webhook_receiver: WebhookReceiver) -> None:
    notifier = WebhookNotifier("archive", webhook_receiver.url + "/h", None)
    run_sends(notifier, deliver())
    [(headers, _, verified)] = webhook_receiver.received
    assert not verified
    assert headers["webhook-id"] == "alert-0001"
    assert "webhook-signature" not in headers


STATUSES = [
    (500, {}, False, False, None, "27-500-retried"),
    (503, {"Retry-After": "120"}, False, False, 120.0, "27-503-retry-after"),
    (429, {"Retry-After": "30"}, False, False, 30.0, "27-429-retry-after"),
    (408, {}, False, False, None, "27-408-retried"),
    (410, {}, True, True, None, "27-410-disables"),
    (400, {}, True, False, None, "27-400-permanent"),
    (404, {}, True, False, None, "27-404-permanent"),
    (401, {}, True, False, None, "27-401-permanent"),
]


@pytest.mark.parametrize(
    ("status", "headers", "permanent", "disable", "retry_after"),
    [row[:5] for row in STATUSES],
    ids=[row[5] for row in STATUSES],
)
def test_status_classified(
    webhook_receiver: WebhookReceiver,
    status: int,
    headers: dict[str, str],
    permanent: bool,
    disable: bool,
    retry_after: float | None,
) -> None:
    webhook_receiver.script.append(Response(status, b"nope", headers))
    err = one_error(hook(webhook_receiver))
    assert (err.permanent, err.disable) == (permanent, disable)
    assert err.retry_after == retry_after
    assert str(status) in err.message
    assert webhook_receiver.url not in str(err)
    assert len(webhook_receiver.requests) == 1


@pytest.mark.parametrize("status", [301, 302, 307, 308], ids=lambda s: f"27-{s}-not-followed")
def test_redirect_not_followed_27(webhook_receiver: WebhookReceiver, status: int) -> None:
    target = webhook_receiver.url + "/elsewhere"
    webhook_receiver.script.append(Response(status, b"", {"Location": target}))
    err = one_error(hook(webhook_receiver))
    assert not err.permanent
    assert "redirect" in err.message
    assert [r.path for r in webhook_receiver.requests] == ["/hooks/news"]


def endless(chunk: bytes, produced: list[int]) -> Iterator[bytes]:
    while True:
        produced.append(len(chunk))
        yield chunk


def test_huge_success_body_read_bounded_27(webhook_receiver: WebhookReceiver) -> None:
    produced: list[int] = []
    webhook_receiver.script.append(Response(200, endless(b"x" * 65536, produced)))
    [result] = run_sends(hook(webhook_receiver), deliver())
    # An endless body: reading it to the end would never return (the deadline would fire).
    assert result == SendResult()


def test_huge_error_body_excerpt_bounded_27(webhook_receiver: WebhookReceiver) -> None:
    produced: list[int] = []
    webhook_receiver.script.append(Response(500, endless(b"\x1b[2J" + b"E" * 65532, produced)))
    err = one_error(hook(webhook_receiver))
    assert not err.permanent
    assert len(err.message) < MAX_RESPONSE_READ
    assert "\x1b" not in err.message


def test_slow_drip_ends_at_deadline_27(webhook_receiver: WebhookReceiver) -> None:
    produced: list[int] = []
    webhook_receiver.script.append(Response(200, endless(b"x", produced), chunk_delay=0.05))
    err = one_error(hook(webhook_receiver, timeout=0.3))
    assert not err.permanent
    assert "no answer within 0.3 s" in err.message


def test_connection_refused_retryable() -> None:
    receiver = WebhookReceiver(WEBHOOK_SECRET)
    url = receiver.url
    receiver.httpd.server_close()
    err = one_error(WebhookNotifier("archive", url + "/h", WEBHOOK_SECRET))
    assert not err.permanent


def test_injected_client_not_closed(webhook_receiver: WebhookReceiver) -> None:
    import httpx

    async def go() -> bool:
        async with httpx.AsyncClient() as client:
            notifier = hook(webhook_receiver, client=client)
            await notifier.send(deliver())
            await notifier.aclose()
            return client.is_closed

    assert asyncio.run(go()) is False
    [(_, _, verified)] = webhook_receiver.received
    assert verified
