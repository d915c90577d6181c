"""The frozen values that flow through the pipeline. Pure: no I/O, no clock.

    FeedSpec -> FetchResult -> ParsedFeed(Entry...) -> Item -> Match -> Alert -> Delivery

Names follow their direction: a `FeedState` is read from the store before a poll, a
`FeedOutcome` is written back after it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from monitor.loudness import Loudness

Field = Literal["title", "summary", "content"]
DIGEST = "monitor.digest"  # one message for several alerts (digests, quiet hours, caps)
ALL_FIELDS: tuple[Field, ...] = ("title", "summary", "content")


@dataclass(frozen=True, slots=True)
class FeedSpec:
    """A feed as configured."""

    url: str
    name: str
    interval: float  # seconds between polls
    timeout: float  # deadline for one whole fetch, seconds
    boilerplate: tuple[str, ...] = ()  # extra boilerplate markers for this feed (see text.py)


@dataclass(frozen=True, slots=True)
class FeedState:
    """What the store remembers of a feed between polls (and restarts)."""

    url: str
    etag: str | None = None
    last_modified: str | None = None
    body_hash: str | None = None
    error_streak: int = 0
    next_poll_at: float | None = None  # epoch seconds
    last_success_at: float | None = None
    last_error_at: float | None = None
    last_error: str | None = None


@dataclass(frozen=True, slots=True)
class FetchResult:
    """A successful fetch: 200 with a body, or 304 (a result, not an error)."""

    url: str
    final_url: str
    status: int
    body: bytes | None  # None when not modified
    content_type: str | None = None
    etag: str | None = None
    last_modified: str | None = None
    elapsed: float = 0.0

    @property
    def not_modified(self) -> bool:
        return self.status == 304


@dataclass(frozen=True, slots=True)
class Entry:
    """One feed entry as parsed: plain text, bounded fields, only http(s) links."""

    guid: str | None
    link: str | None
    title: str
    summary: str
    content: str
    published: datetime | None  # aware, UTC


@dataclass(frozen=True, slots=True)
class ParsedFeed:
    title: str
    link: str | None
    entries: tuple[Entry, ...]
    warning: str | None = None  # what the parser had to forgive, if anything


@dataclass(frozen=True, slots=True)
class Item:
    """An entry with its identity and its feed: the unit that is seen once, matched and alerted."""

    id: str  # identity key: from the GUID, else the canonical URL, else the content
    feed: str  # feed name
    feed_url: str
    guid: str | None
    url: str | None  # canonical http(s) URL
    title: str
    summary: str
    content: str
    published: datetime | None
    # Other identity keys of the same item (e.g. its link's key when `id` comes from a non-URL
    # GUID): an item is seen when any of its keys was seen, so a feed that changes its GUIDs, or
    # a second feed that links the same article, does not make it new again.
    alt_keys: tuple[str, ...] = ()

    @property
    def keys(self) -> tuple[str, ...]:
        return (self.id, *self.alt_keys)

    def text(self, fld: Field) -> str:
        return str(getattr(self, fld))

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "title": self.title,
            "url": self.url,
            "summary": self.summary,
            "published": self.published.isoformat() if self.published else None,
            "feed": {"name": self.feed, "url": self.feed_url},
        }


@dataclass(frozen=True, slots=True)
class TermSpec:
    """One watchlist term as written, with its options."""

    text: str
    exact: bool = False  # no folding at all: the term's letters must appear as written
    prefix: bool = False  # the last word may continue (روس* matches روسيا, الروسية)
    regex: bool = False  # a regular expression over the normalized text, time-bounded
    clitics: bool | None = None  # None: automatic (on for words longer than three letters)
    strict: bool | None = None  # None: automatic (on when the folded form is a function word)


@dataclass(frozen=True, slots=True)
class WatchlistSpec:
    name: str
    any: tuple[TermSpec, ...] = ()
    all: tuple[TermSpec, ...] = ()
    none: tuple[TermSpec, ...] = ()
    notify: tuple[str, ...] = ()
    feeds: tuple[str, ...] = ()  # feed names; empty means every feed
    fields: tuple[Field, ...] = ALL_FIELDS
    loudness: Loudness = field(default_factory=Loudness)


@dataclass(frozen=True, slots=True)
class Match:
    """A watchlist matched an item on these terms (as written in the watchlist)."""

    watchlist: str
    terms: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Alert:
    """One alert: a (watchlist, story) pair, delivered once to each destination."""

    id: str  # stable across retries and restarts
    watchlist: str
    story_id: str
    item: Item
    matched: tuple[str, ...]
    created_at: datetime
    type: str = "monitor.alert"
    extra: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)

    def payload(self) -> dict[str, Any]:
        """The webhook body (and the record kept in the outbox)."""
        if self.type == DIGEST:
            digest = self.extra.get("digest", {})
            return {
                "type": self.type,
                "id": self.id,
                "watchlist": self.watchlist,
                "kind": digest.get("kind", "digest"),
                "count": len(digest.get("alerts", [])),
                "alerts": list(digest.get("alerts", [])),
                "created_at": self.created_at.isoformat(),
            }
        body: dict[str, Any] = {
            "type": self.type,
            "id": self.id,
            "watchlist": self.watchlist,
            "matched": list(self.matched),
            "story": {"id": self.story_id, **self.extra.get("story", {})},
            "item": self.item.to_json(),
            "created_at": self.created_at.isoformat(),
        }
        return body


def followed_story(alert: Alert) -> tuple[str, str | None] | None:
    """(title, url) of the earlier story this alert's new story follows up (shared text under
    a new lead: see monitor.dedup.Lookup), or None. Read defensively: the payload may come
    from the store written by another version."""
    story = alert.extra.get("story")
    follows = story.get("follows") if isinstance(story, dict) else None
    if not isinstance(follows, dict):
        return None
    title, url = follows.get("title"), follows.get("url")
    if not isinstance(title, str):
        return None
    return title, url if isinstance(url, str) else None


def alert_from_payload(body: dict[str, Any]) -> Alert:
    """Rebuild an Alert from its stored payload (the inverse of Alert.payload)."""
    it = body["item"]
    published = datetime.fromisoformat(it["published"]) if it.get("published") else None
    item = Item(
        id=it["id"],
        feed=it["feed"]["name"],
        feed_url=it["feed"]["url"],
        guid=None,
        url=it.get("url"),
        title=it.get("title") or "",
        summary=it.get("summary") or "",
        content="",
        published=published,
    )
    story = dict(body.get("story") or {})
    story_id = story.pop("id")
    return Alert(
        id=body["id"],
        watchlist=body["watchlist"],
        story_id=story_id,
        item=item,
        matched=tuple(body.get("matched") or ()),
        created_at=datetime.fromisoformat(body["created_at"]),
        type=body.get("type", "monitor.alert"),
        extra={"story": story} if story else {},
    )


@dataclass(frozen=True, slots=True)
class Delivery:
    """One alert due at one destination, as the sender reads it from the outbox."""

    id: int
    alert: Alert
    destination: str
    attempts: int
    thread_ref: str | None = None  # e.g. the Slack ts of the story's first message
    digest: str | None = None  # deliveries with the same digest key go out as one message


def utc(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, tz=UTC)
