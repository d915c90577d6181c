"""Console: one readable block per alert on a text stream. `render` is pure; `send` writes
and flushes (I/O).

    ── moscow ─────────────────────────────
    Terms:     موسكو, شويغو
    Title:     <the item's title>
    URL:       https://...
    Feed:      france24
    Published: 2018-03-01 21:05 UTC

Feed text is cleaned first (render.clean): control characters, so no terminal escape
sequence from a feed reaches the operator's terminal, and bidi overrides. Story updates
add an "Also:" line with the story's other sources; a new story that follows up an earlier one
adds a "Follows:" line with that story's first title.
"""

from __future__ import annotations

import sys
from typing import TextIO
from urllib.parse import unquote

from monitor.errors import NotifyError
from monitor.models import DIGEST, Alert, Delivery, alert_from_payload, followed_story
from monitor.notify import SendResult
from monitor.notify.render import clean, safe_url, truncate

STORY_UPDATED = "monitor.story.updated"
FIELD_MAX = 500
RULE_WIDTH = 60


def _f(text: str, limit: int = FIELD_MAX) -> str:
    return truncate(clean(text, limit_hint=limit), limit)


def _readable(url: str) -> str:
    """An Arabic path as a reader writes it (%D9%85... -> م...), when it decodes to plain
    printable text; else the URL as it is, so nothing can hide in the decoded form."""
    try:
        decoded = unquote(url, errors="strict")
    except UnicodeDecodeError:
        return url
    if decoded == url or not decoded.isprintable() or any(c.isspace() for c in decoded):
        return url
    if any("\u2066" <= c <= "\u2069" or "\u202a" <= c <= "\u202e" for c in decoded):
        return url
    return decoded


def render(alert: Alert) -> str:
    """The block printed for one alert (or one digest), ending with a blank line."""
    if alert.type == DIGEST:
        return _render_digest(alert)
    item = alert.item
    head = f"── {_f(alert.watchlist, 100)} "
    if alert.type == STORY_UPDATED:
        head += "(story update) "
    lines = [head + "─" * max(3, RULE_WIDTH - len(head))]
    terms = ", ".join(t for t in (_f(m, 80) for m in alert.matched) if t)
    if terms:
        lines.append(f"Terms:     {terms}")
    lines.append(f"Title:     {_f(item.title) or '(untitled)'}")
    url = safe_url(item.url)
    if url:
        lines.append(f"URL:       {_readable(url)}")
    lines.append(f"Feed:      {_f(item.feed, 120)}")
    if item.published is not None:
        lines.append(f"Published: {item.published.strftime('%Y-%m-%d %H:%M %Z').strip()}")
    if alert.type == STORY_UPDATED:
        story = alert.extra.get("story")
        sources = story.get("sources") if isinstance(story, dict) else None
        if isinstance(sources, list | tuple) and sources:
            names = ", ".join(_f(str(s), 120) for s in sources)
            lines.append(f"Sources:   {names}")
    earlier = followed_story(alert) if alert.type != STORY_UPDATED else None
    if earlier is not None:
        url = safe_url(earlier[1])
        where = f" ({_readable(url)})" if url else ""
        lines.append(f"Follows:   {_f(earlier[0]) or '(untitled)'}{where}")
    summary = _f(item.summary, 300)
    if summary:
        lines.append(f"Summary:   {summary}")
    return "\n".join(lines) + "\n\n"


def _render_digest(alert: Alert) -> str:
    digest = alert.extra.get("digest", {})
    members = [alert_from_payload(p) for p in digest.get("alerts", [])]
    kind = str(digest.get("kind", "digest"))
    head = f"── {_f(alert.watchlist, 100)} ({kind}: {len(members)} alerts) "
    lines = [head + "─" * max(3, RULE_WIDTH - len(head))]
    for m in members:
        url = safe_url(m.item.url)
        also = " (also)" if m.type == STORY_UPDATED else ""
        lines.append(f"• {_f(m.item.title, 200) or '(untitled)'} [{_f(m.item.feed, 60)}]{also}")
        if url:
            lines.append(f"  {url}")
    return "\n".join(lines) + "\n\n"


class ConsoleNotifier:
    """Writes to `stream` (stdout by default). A closed or broken stream is a retryable error."""

    def __init__(self, name: str, stream: TextIO | None = None) -> None:
        self.name = name
        self._stream = stream

    async def send(self, delivery: Delivery) -> SendResult:
        stream = self._stream if self._stream is not None else sys.stdout
        try:
            stream.write(render(delivery.alert))
            stream.flush()
        except (OSError, ValueError) as e:
            raise NotifyError(self.name, f"cannot write ({type(e).__name__})") from e
        return SendResult()

    async def aclose(self) -> None:
        return None
