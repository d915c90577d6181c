"""The Store protocol: everything the daemon remembers. I/O.

SQLite (store/sqlite.py) is the embedded default; a PostgreSQL implementation satisfies the
same protocol for several replicas. The invariants every implementation keeps:

- `ingest()` is one transaction: the items become seen, their alerts enter the outbox with one
  delivery row per destination, and the feed's validators advance, together or not at all.
- An alert is unique per (watchlist, story): a story alerts a watchlist once, ever.
- A delivery is claimed (`begin_attempt`) before it is sent and settled after; a crash between the
  two leaves it `sending`, and `recover()` at start-up makes it due again: at most one resend.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from monitor.models import Alert, Delivery, FeedState, Item


@dataclass(frozen=True, slots=True)
class FeedOutcome:
    """What a poll wrote back about its feed."""

    url: str
    ok: bool
    etag: str | None = None
    last_modified: str | None = None
    body_hash: str | None = None
    error: str | None = None
    next_poll_at: float | None = None
    at: float = 0.0
    status: str = ""  # "new", "not_modified", "unchanged", "error"


@dataclass(frozen=True, slots=True)
class NewItem:
    """An item to mark seen, with the story it belongs to and why."""

    item: Item
    story_id: str
    new_story: bool = True
    reason: str = ""  # why it joined its story (or "new story")
    fingerprint: bytes | None = None  # dedup.Fingerprint.to_bytes(), kept for the window
    at: float | None = None  # the fingerprint's time (published, else first seen)


@dataclass(frozen=True, slots=True)
class StoredFingerprint:
    item_id: str
    story_id: str
    outlet: str
    at: float
    blob: bytes


@dataclass(frozen=True, slots=True)
class StoryItem:
    """One item of a story, as `monitor story` shows it."""

    item_id: str
    feed: str
    title: str
    url: str | None
    seen_at: float
    reason: str


@dataclass(frozen=True, slots=True)
class OutboxEntry:
    """An alert and the destinations it must reach."""

    alert: Alert
    destinations: tuple[str, ...]
    parent: str | None = None  # a story update names the alert it updates
    release_at: float | None = None  # not before (digests, quiet hours, caps); None: now
    digest: str | None = None  # entries with the same key are sent as one digest message


@dataclass(frozen=True, slots=True)
class IngestResult:
    items_added: int
    alerts_added: tuple[str, ...]  # ids of alerts that were new (the others existed already)


@dataclass(frozen=True, slots=True)
class DeliveryRow:
    """A delivery as `monitor status` and `monitor deliveries` show it."""

    id: int
    alert_id: str
    destination: str
    state: str
    attempts: int
    next_at: float | None
    last_error: str | None
    watchlist: str
    title: str


class Store(Protocol):
    def close(self) -> None: ...

    def ping(self) -> None: ...

    # feeds
    def feed_state(self, url: str) -> FeedState: ...

    def feed_states(self) -> dict[str, FeedState]: ...

    def record_feed(self, outcome: FeedOutcome) -> None: ...

    def record_feeds(self, outcomes: Sequence[FeedOutcome]) -> None: ...

    # items and the outbox
    def seen_keys(self, keys: Sequence[str]) -> dict[str, str]: ...

    def unseen(self, item_ids: Sequence[str]) -> set[str]: ...

    def ingest(
        self, outcome: FeedOutcome, items: Sequence[NewItem], outbox: Sequence[OutboxEntry]
    ) -> IngestResult: ...

    def enqueue(self, outbox: Sequence[OutboxEntry], now: float) -> tuple[str, ...]:
        """Add alerts that come from no feed poll (operator notices) to the outbox; returns
        the ids that were new (an id already stored is not queued again)."""
        ...

    # stories
    def fingerprints(self, since: float) -> Iterator[StoredFingerprint]: ...

    def prune_fingerprints(self, before: float) -> int: ...

    def story_alerts(self, story_id: str) -> dict[str, str]: ...

    def story_sources(self, story_id: str) -> list[str]: ...

    def story_of(self, ref: str) -> str | None: ...

    def story_first(self, story_id: str) -> StoryItem | None: ...

    def story_items(self, story_id: str) -> list[StoryItem]: ...

    def items_by_reason(self, prefix: str, limit: int = 100) -> list[StoryItem]: ...

    # deliveries
    def recover(self) -> int: ...

    def due(self, now: float, limit: int = 100, exclude: Iterable[str] = ()) -> list[Delivery]: ...

    def next_due_at(self) -> float | None: ...

    def pending_destinations(self) -> set[str]: ...

    def digest_group(self, destination: str, key: str) -> list[Delivery]: ...

    def alerts_since(self, watchlist: str, since: float) -> int: ...

    def begin_attempt(self, delivery_id: int, now: float) -> None: ...

    def delivered(self, delivery_id: int, now: float, ref: str | None) -> None: ...

    def retry_later(self, delivery_id: int, at: float, error: str) -> None: ...

    def shift_retries(self, by: float, now: float) -> int: ...

    def dead(self, delivery_id: int, now: float, error: str) -> None: ...

    def deliveries(
        self, states: Sequence[str] = ("pending", "sending", "dead")
    ) -> list[DeliveryRow]: ...

    def requeue(self, ids: Sequence[int] | None = None) -> int: ...

    def feed_rows(self) -> list[dict[str, Any]]: ...

    def counts(self) -> dict[str, int]: ...

    def outbox_summary(self) -> dict[str, tuple[int, float | None]]: ...


def open_store(dsn: str, *, lock: bool = False) -> Store:
    """Open the store a DSN names. `lock=True` takes the instance lock (the daemon does)."""
    if dsn.startswith("sqlite:///"):
        from monitor.store.sqlite import SQLiteStore

        return SQLiteStore(dsn[len("sqlite:///") :], lock=lock)
    raise NotImplementedError(
        f"storage {dsn.split(':', 1)[0]} is not available yet; use sqlite:///"
    )
