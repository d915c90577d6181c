"""`monitor replay`: backtest watchlists and story grouping on an archive, delivering nothing.
Reads the configured store (its seen items and story index) and writes nothing to it, so two runs
on the same store give the same answer, and a fresh store gives a clean backtest.

Items are taken in order from RSS/Atom files or JSONL files of
``{"id", "url", "title", "summary", "content", "published", "feed"}``. The clock is the archive's:
each item is judged at its own publication time (else the previous item's), so the story window
applies to 2018 archives as it did in 2018; `max_age` does not apply.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from monitor.config import Config
from monitor.dedup import Fingerprint, StoryIndex, fingerprint
from monitor.errors import MonitorError
from monitor.identity import make_item
from monitor.match import compile_watchlists
from monitor.models import Entry, FeedSpec, Item
from monitor.parse import parse_feed
from monitor.store import Store


class ReplayError(MonitorError):
    """An archive file cannot be read; names the file and line."""


@dataclass(frozen=True, slots=True)
class ReplayResult:
    item: Item
    story: str
    new_story: bool
    matches: tuple[str, ...]  # watchlists this item matches
    alerts: tuple[str, ...]  # of those, the ones it would alert (first for its story)
    reason: str

    def to_json(self) -> dict[str, Any]:
        return {
            "item": self.item.guid or self.item.id,
            "story": self.story,
            "new_story": self.new_story,
            "matches": list(self.matches),
            "alerts": list(self.alerts),
            "feed": self.item.feed,
            "title": self.item.title,
            "reason": self.reason,
        }


def _published(value: object, where: str) -> datetime | None:
    if value in (None, ""):
        return None
    if isinstance(value, int | float):
        return datetime.fromtimestamp(value, UTC)
    try:
        dt = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        raise ReplayError(f"{where}: published: not an ISO 8601 date: {value!r}") from None
    return dt if dt.tzinfo else dt.replace(tzinfo=UTC)


def read_items(path: str) -> Iterator[Item]:
    """The items of one archive file, in file order."""
    p = Path(path)
    try:
        data = p.read_bytes()
    except OSError as e:
        raise ReplayError(f"{path}: cannot read: {e.strerror or e}") from e
    if p.suffix.lower() in (".jsonl", ".ndjson") or data.lstrip()[:1] == b"{":
        # Records end at "\n" only (JSON Lines): str.splitlines would also break a record at
        # U+2028, U+2029, U+0085 and other separators JSON strings may hold unescaped (real
        # Arabic news carries U+2029 between paragraphs).
        for n, raw in enumerate(data.decode("utf-8", "replace").split("\n"), 1):
            line = raw.removesuffix("\r")
            if not line.strip():
                continue
            where = f"{path}:{n}"
            try:
                obj = json.loads(line)
            except ValueError as e:
                raise ReplayError(f"{where}: not JSON: {e}") from None
            if not isinstance(obj, dict):
                raise ReplayError(f"{where}: expected an object")
            feed = str(obj.get("feed") or p.stem)
            entry = Entry(
                guid=str(obj["id"]) if obj.get("id") is not None else None,
                link=obj.get("url") or None,
                title=str(obj.get("title") or ""),
                summary=str(obj.get("summary") or ""),
                content=str(obj.get("content") or obj.get("text") or ""),
                published=_published(obj.get("published"), where),
            )
            yield make_item(entry, FeedSpec(f"replay://{feed}", feed, 0.0, 0.0))
        return
    parsed = parse_feed(data, url=p.resolve().as_uri(), max_items=100_000)
    spec = FeedSpec(p.resolve().as_uri(), p.stem, 0.0, 0.0)
    yield from (make_item(e, spec) for e in parsed.entries)


def replay(config: Config, store: Store, paths: list[str]) -> Iterator[ReplayResult]:
    matcher = compile_watchlists(config.watchlists)
    st = config.raw.stories
    index = StoryIndex(st.window, st.same_outlet_threshold, st.cross_outlet_threshold)
    for row in store.fingerprints(0.0):
        try:
            index.add(
                row.item_id,
                row.story_id,
                Fingerprint.from_bytes(row.blob, outlet=row.outlet, at=row.at),
            )
        except ValueError:
            continue
    stories: dict[str, str] = {}  # identity key -> story, for items seen in this run
    alerted: set[tuple[str, str]] = set()
    clock = time.time()
    for path in paths:
        for item in read_items(path):
            if item.published is not None:
                clock = item.published.timestamp()
            matches = tuple(
                m.watchlist
                for m in matcher.match(item.title, item.summary, item.content, feed=item.feed)
            )
            known = next((stories[k] for k in item.keys if k in stories), None)
            if known is None:
                seen = store.seen_keys(list(item.keys))
                if seen:
                    known = store.story_of(next(iter(seen.values())))
            if known is not None:
                story, new, reason = known, False, "the same item (identity)"
            else:
                fp = fingerprint(
                    item.title, item.content or item.summary, outlet=item.feed, at=clock
                )
                story, new, reason = index.lookup(fp, clock).story(item.id)
                index.add(item.id, story, fp)
            for k in item.keys:
                stories.setdefault(k, story)
            alerts = tuple(w for w in matches if (w, story) not in alerted)
            alerted.update((w, story) for w in alerts)
            yield ReplayResult(item, story, new, matches, alerts, reason)
