"""Slack: `render` builds a chat.postMessage body (pure); `SlackNotifier.send` posts it (I/O).

The message (see render.py for how feed text is made safe):

    text      "<watchlist>: <title>" — the notification fallback
    blocks    section   *<url|title>*                      (title linked when the URL is http(s))
              section   summary snippet                    (when there is one)
              context   watchlist · matched terms / feed · published (shown in the reader's zone)
              context   Follows an earlier story: <url|title>   (a new story that follows one up)
    metadata  {"event_type": "monitor_alert", "event_payload": {"alert_id", "story_id"}}
    unfurl_links = unfurl_media = False; never link_names, never parse=full; every text object
    is mrkdwn with verbatim=True.

A `monitor.story.updated` alert whose delivery carries `thread_ref` (the ts of the story's
first message) becomes a thread reply, "also: <feeds>", instead of a new top-level message.
Its feeds are `alert.extra["story"]["sources"]` (the story's feed names in the order they
joined; the first is the original) less the original, else the new item's feed. Without a
thread_ref it is posted top-level, so nothing is lost.

Sending goes through slack-sdk's sync `WebClient` in a worker thread (its `AsyncWebClient`
needs aiohttp) with `retry_handlers=[]`: slack-sdk's default retries a reset connection,
which can post twice; retries are the sender's. Posts to the channel are paced: at least
`pace` seconds (default 1, Slack's "about one message per second per channel") from the start
of one post to the start of the next, awaited with asyncio.sleep (the one wait a notifier
makes on its own; a sender lane is sequential, so this spaces a burst, it never reorders).
Outcomes:

    ok                                  SendResult(ref=ts)
    HTTP 429 / ratelimited              NotifyError(retry_after=Retry-After)
    5xx, transient ok:false, no answer  NotifyError (retried)
    other ok:false                      NotifyError(permanent=True), disable=True when the
                                        error concerns the token or channel, not the message

`SlackNotifier.check()` (for `monitor check --online`, HAZARDS 37) asks Slack before the first
delivery: auth.test (the token works; `chat:write` among its scopes when Slack lists them)
and conversations.info (the channel exists and the bot is a member).
"""

from __future__ import annotations

import asyncio
import http.client
import re
import time
from datetime import datetime
from typing import Any

from slack_sdk.errors import SlackApiError, SlackClientError
from slack_sdk.web import WebClient

from monitor.errors import NotifyError
from monitor.models import DIGEST, Alert, Delivery, alert_from_payload, followed_story
from monitor.notify import SendResult, retry_after_seconds
from monitor.notify.render import slack_escape, slack_field, slack_link

STORY_UPDATED = "monitor.story.updated"
METADATA_EVENT = "monitor_alert"
UNTITLED = "(untitled)"

# Slack's limits, and ours within them.
SECTION_MAX = 3000
HEADER_MAX = 150
BLOCKS_MAX = 50
TITLE_MAX = 300
SNIPPET_MAX = 400
TERM_MAX = 80
TERMS_SHOWN = 12
FEED_MAX = 120
WATCHLIST_MAX = 120

# ok:false errors that a later try can get past.
RETRYABLE_ERRORS = frozenset(
    {
        "ratelimited",
        "rate_limited",
        "internal_error",
        "fatal_error",
        "service_unavailable",
        "request_timeout",
        "message_limit_exceeded",
        "team_added_to_org",
    }
)
# ok:false errors about the token, the app or the channel: every message to this
# destination will fail the same way until an operator acts.
DESTINATION_ERRORS = frozenset(
    {
        "channel_not_found",
        "not_in_channel",
        "is_archived",
        "invalid_auth",
        "not_authed",
        "account_inactive",
        "token_revoked",
        "token_expired",
        "no_permission",
        "missing_scope",
        "not_allowed_token_type",
        "ekm_access_denied",
        "team_access_not_granted",
        "restricted_action",
        "restricted_action_read_only_channel",
        "restricted_action_thread_only_channel",
        "restricted_action_non_threadable_channel",
        "org_login_required",
        "access_denied",
    }
)
_ERROR_CODE = re.compile(r"^[a-z0-9_]{1,80}$")


# ---------------------------------------------------------------- render (pure)


def _mrkdwn(text: str) -> dict[str, Any]:
    return {"type": "mrkdwn", "text": text, "verbatim": True}


def _published(when: datetime | None) -> str | None:
    """Slack's date token: shown in each reader's time zone, with a UTC fallback."""
    if when is None:
        return None
    epoch = int(when.timestamp())
    fallback = when.strftime("%Y-%m-%d %H:%M UTC") if when.utcoffset() is not None else ""
    return f"<!date^{epoch}^{{date_short_pretty}} {{time}}|{slack_escape(fallback)}>"


def _terms(matched: tuple[str, ...]) -> str:
    shown = [slack_field(t, TERM_MAX) for t in matched[:TERMS_SHOWN]]
    shown = [t for t in shown if t]
    more = len(matched) - TERMS_SHOWN
    if more > 0:
        shown.append(f"+{more}")
    return ", ".join(shown)


def _title_line(alert: Alert) -> str:
    title = slack_field(alert.item.title, TITLE_MAX, placeholder=UNTITLED)
    return slack_link(alert.item.url, title)


def _message(alert: Alert, text: str, blocks: list[dict[str, Any]]) -> dict[str, Any]:
    """chat.postMessage arguments: the fallback text, at most BLOCKS_MAX blocks, no unfurling,
    and the alert's id in the message metadata."""
    return {
        "text": text,
        "blocks": blocks[:BLOCKS_MAX],
        "unfurl_links": False,
        "unfurl_media": False,
        "metadata": _metadata(alert),
    }


def _metadata(alert: Alert) -> dict[str, Any]:
    return {
        "event_type": METADATA_EVENT,
        "event_payload": {"alert_id": alert.id, "story_id": alert.story_id, "type": alert.type},
    }


def render(alert: Alert) -> dict[str, Any]:
    """The chat.postMessage arguments (less `channel`) for one alert, top-level."""
    item = alert.item
    watchlist = slack_field(alert.watchlist, WATCHLIST_MAX, placeholder="?")
    title = slack_field(item.title, TITLE_MAX, placeholder=UNTITLED)
    feed = slack_field(item.feed, FEED_MAX, placeholder="?")

    blocks: list[dict[str, Any]] = [
        {"type": "section", "text": _mrkdwn(f"*{_title_line(alert)}*")},
    ]
    snippet = slack_field(item.summary, SNIPPET_MAX)
    if snippet:
        blocks.append({"type": "section", "text": _mrkdwn(snippet)})
    about = f"Watchlist: *{watchlist}*"
    terms = _terms(alert.matched)
    if terms:
        about += f"  ·  Terms: {terms}"
    source = f"Feed: {feed}"
    published = _published(item.published)
    if published:
        source += f"  ·  Published: {published}"
    if alert.type == STORY_UPDATED:
        source += f"  ·  also: {_also(alert)}"
    blocks.append({"type": "context", "elements": [_mrkdwn(about), _mrkdwn(source)]})
    earlier = followed_story(alert) if alert.type != STORY_UPDATED else None
    if earlier is not None:
        label = slack_field(earlier[0], TITLE_MAX, placeholder=UNTITLED)
        line = f"Follows an earlier story: {slack_link(earlier[1], label)}"
        blocks.append({"type": "context", "elements": [_mrkdwn(line)]})

    return _message(alert, f"{watchlist}: {title}", blocks)


def _sources(alert: Alert) -> list[str]:
    story = alert.extra.get("story")
    raw = story.get("sources") if isinstance(story, dict) else None
    names: list[str] = []
    if isinstance(raw, list | tuple):
        for name in raw[1:]:  # the first is the story's original, already in the thread
            if isinstance(name, str) and name not in names and name != raw[0]:
                names.append(name)
    return names or [alert.item.feed]


def _also(alert: Alert) -> str:
    return ", ".join(slack_field(n, FEED_MAX, placeholder="?") for n in _sources(alert)[:20])


def render_reply(alert: Alert, thread_ref: str) -> dict[str, Any]:
    """The thread reply for a story update: "also: <feeds>" and the new item's title."""
    also = _also(alert)
    blocks: list[dict[str, Any]] = [
        {"type": "section", "text": _mrkdwn(f"also: *{also}*")},
        {"type": "context", "elements": [_mrkdwn(_title_line(alert))]},
    ]
    return {**_message(alert, f"also: {also}", blocks), "thread_ts": thread_ref}


DIGEST_SHOWN = 40  # alerts listed in one digest message (Slack allows 50 blocks)
DIGEST_KINDS = {
    "digest": "digest",
    "quiet": "held during quiet hours",
    "capped": "more than the hourly cap",
    "burst": "more than one poll may send one by one",
}


def render_digest(alert: Alert) -> dict[str, Any]:
    """One message for several alerts: a digest, the end of quiet hours, or an hourly cap's
    "N more" summary. Each alert is a line with its linked title and feed."""
    digest = alert.extra.get("digest", {})
    members = [alert_from_payload(p) for p in digest.get("alerts", [])]
    watchlist = slack_field(alert.watchlist, WATCHLIST_MAX, placeholder="?")
    kind = str(digest.get("kind", "digest"))
    n = len(members)
    if kind == "capped":
        head = f"*{watchlist}*: {n} more alerts in the last hour (over the hourly cap)"
    else:
        head = f"*{watchlist}*: {n} alerts ({DIGEST_KINDS.get(kind, 'digest')})"
    blocks: list[dict[str, Any]] = [{"type": "section", "text": _mrkdwn(head)}]
    for m in members[:DIGEST_SHOWN]:
        feed = slack_field(m.item.feed, FEED_MAX, placeholder="?")
        also = "  ·  also" if m.type == STORY_UPDATED else ""
        blocks.append(
            {"type": "context", "elements": [_mrkdwn(f"{_title_line(m)}  ·  {feed}{also}")]}
        )
    if n > DIGEST_SHOWN:
        blocks.append({"type": "context", "elements": [_mrkdwn(f"and {n - DIGEST_SHOWN} more")]})
    return _message(alert, f"{watchlist}: {n} alerts", blocks)


def message_for(delivery: Delivery) -> dict[str, Any]:
    """What to post for a delivery: a thread reply for a story update that has a thread."""
    alert = delivery.alert
    if alert.type == DIGEST:
        return render_digest(alert)
    if alert.type == STORY_UPDATED and delivery.thread_ref:
        return render_reply(alert, delivery.thread_ref)
    return render(alert)


# ---------------------------------------------------------------- classify (pure)


def classify(
    dest: str, status: int, error: str | None, retry_after: str | None, now: float
) -> NotifyError:
    """The NotifyError for a Slack answer that was not ok."""
    code = (error or "").strip()
    shown = code if _ERROR_CODE.match(code) else "unexpected answer"
    message = f"chat.postMessage: {shown} (HTTP {status})"
    if status == 429 or code in ("ratelimited", "rate_limited"):
        wait = retry_after_seconds(retry_after, now)
        return NotifyError(dest, message, retry_after=wait)
    if status >= 500 or code in RETRYABLE_ERRORS or not _ERROR_CODE.match(code):
        return NotifyError(dest, message, retry_after=retry_after_seconds(retry_after, now))
    return NotifyError(dest, message, permanent=True, disable=code in DESTINATION_ERRORS)


# ---------------------------------------------------------------- send (I/O)

_CONNECTION_ERRORS = (SlackClientError, OSError, http.client.HTTPException, ValueError)


class SlackNotifier:
    """Posts to one channel with one bot token. The token is never put in a message."""

    def __init__(
        self,
        name: str,
        token: str,
        channel: str,
        base_url: str | None = None,
        *,
        timeout: float = 10.0,
        pace: float = 1.0,
    ) -> None:
        self.name = name
        self.channel = channel
        self.pace = max(0.0, pace)
        self._not_before = 0.0  # time.monotonic() before which the next post waits
        kwargs: dict[str, Any] = {
            "token": token,
            "timeout": max(1, round(timeout)),
            "retry_handlers": [],  # retries are ours: the default one can post twice
        }
        if base_url:
            kwargs["base_url"] = base_url
        self._client = WebClient(**kwargs)

    def _post(self, message: dict[str, Any]) -> dict[str, Any]:
        resp = self._client.api_call("chat.postMessage", json={"channel": self.channel, **message})
        return dict(resp.data) if isinstance(resp.data, dict) else {}

    async def _paced(self) -> None:
        wait = self._not_before - time.monotonic()
        if wait > 0:
            await asyncio.sleep(wait)
        self._not_before = time.monotonic() + self.pace

    async def send(self, delivery: Delivery) -> SendResult:
        message = message_for(delivery)
        await self._paced()
        try:
            data = await asyncio.to_thread(self._post, message)
        except SlackApiError as e:
            resp = e.response
            body = resp.data if isinstance(resp.data, dict) else {}
            error = body.get("error")
            retry_after = resp.headers.get("Retry-After") or resp.headers.get("retry-after")
            raise classify(
                self.name,
                int(resp.status_code),
                error if isinstance(error, str) else None,
                retry_after if isinstance(retry_after, str) else None,
                time.time(),
            ) from e
        except _CONNECTION_ERRORS as e:
            detail = " ".join(str(e).split())[:200]
            raise NotifyError(
                self.name, f"chat.postMessage: no answer ({type(e).__name__}: {detail})"
            ) from e
        ts = data.get("ts")
        return SendResult(ref=str(ts) if ts else None)

    def check(self) -> tuple[list[str], list[str]]:
        """(problems, notes) found by asking Slack: the token, its scope, the channel and the
        bot's membership. I/O (two Web API calls); never raises for an answer Slack gives."""
        try:
            auth = self._client.api_call("auth.test")
        except SlackApiError as e:
            return [f"{self.name}: the token is refused ({_code(e)})"], []
        except _CONNECTION_ERRORS as e:
            return [f"{self.name}: Slack did not answer auth.test ({type(e).__name__})"], []
        problems: list[str] = []
        notes: list[str] = []
        scopes = auth.headers.get("x-oauth-scopes") or auth.headers.get("X-OAuth-Scopes")
        if isinstance(scopes, str) and scopes.strip():
            have = {s.strip() for s in scopes.split(",")}
            if "chat:write" not in have:
                problems.append(f"{self.name}: the token lacks the chat:write scope")
        try:
            info = self._client.api_call("conversations.info", params={"channel": self.channel})
        except SlackApiError as e:
            code = _code(e)
            if code == "missing_scope":
                notes.append(
                    f"{self.name}: cannot check channel {self.channel} (the token lacks "
                    "channels:read); posting may still work"
                )
            elif code == "channel_not_found":
                problems.append(
                    f"{self.name}: channel {self.channel} not found (or private and the bot "
                    "is not in it)"
                )
            else:
                problems.append(f"{self.name}: conversations.info: {code}")
            return problems, notes
        except _CONNECTION_ERRORS as e:
            problems.append(f"{self.name}: Slack did not answer ({type(e).__name__})")
            return problems, notes
        channel = info.get("channel")
        if isinstance(channel, dict) and not channel.get("is_im") and not channel.get("is_member"):
            problems.append(
                f"{self.name}: the bot is not a member of channel {self.channel} "
                "(invite it: /invite @<bot>)"
            )
        return problems, notes

    async def aclose(self) -> None:
        return None


def _code(e: SlackApiError) -> str:
    data = e.response.data if isinstance(e.response.data, dict) else {}
    code = str(data.get("error") or "")
    return code if _ERROR_CODE.match(code) else f"HTTP {e.response.status_code}"
