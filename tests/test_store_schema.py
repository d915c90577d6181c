"""The SQLite store's schema and WAL on real files: a version 1 store opens migrated with all its
data, a newer one is refused, checkpoints run off the caller's thread, the WAL stays bounded and
close() folds it back into the database."""

from __future__ import annotations

import json
import sqlite3
from datetime import UTC, datetime
from pathlib import Path

import pytest

from monitor.errors import StoreError
from monitor.models import Alert, Item
from monitor.store import FeedOutcome, NewItem, OutboxEntry
from monitor.store.sqlite import SCHEMA_VERSION, SQLiteStore
from tests.helpers import wait_for
from tests.test_store import item as store_item

# The schema of version 1, as monitor/store/sqlite.py created it (frozen here).
SCHEMA_V1 = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS feeds (
    url TEXT PRIMARY KEY,
    etag TEXT, last_modified TEXT, body_hash TEXT,
    error_streak INTEGER NOT NULL DEFAULT 0,
    next_poll_at REAL, last_success_at REAL, last_error_at REAL, last_error TEXT,
    last_status TEXT, polls INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS items (
    id TEXT PRIMARY KEY,
    feed TEXT NOT NULL, feed_url TEXT NOT NULL, url TEXT, title TEXT NOT NULL,
    story_id TEXT NOT NULL, published_at REAL, seen_at REAL NOT NULL, reason TEXT
);
CREATE INDEX IF NOT EXISTS items_url ON items(url);
CREATE TABLE IF NOT EXISTS fingerprints (
    item_id TEXT PRIMARY KEY, story_id TEXT NOT NULL, outlet TEXT NOT NULL, at REAL NOT NULL,
    blob BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS fingerprints_at ON fingerprints(at);
CREATE INDEX IF NOT EXISTS items_story ON items(story_id);
CREATE INDEX IF NOT EXISTS items_seen ON items(seen_at);
CREATE TABLE IF NOT EXISTS item_keys (key TEXT PRIMARY KEY, item_id TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS stories (
    id TEXT PRIMARY KEY, first_item TEXT NOT NULL, created_at REAL NOT NULL,
    updated_at REAL NOT NULL, items INTEGER NOT NULL DEFAULT 1
);
CREATE TABLE IF NOT EXISTS alerts (
    id TEXT PRIMARY KEY, watchlist TEXT NOT NULL, story_id TEXT NOT NULL, item_id TEXT NOT NULL,
    type TEXT NOT NULL, created_at REAL NOT NULL, payload TEXT NOT NULL,
    parent TEXT  -- for a story update: the alert it updates (its thread)
);
CREATE INDEX IF NOT EXISTS alerts_story ON alerts(story_id, watchlist);
CREATE INDEX IF NOT EXISTS alerts_recent ON alerts(watchlist, created_at);
CREATE TABLE IF NOT EXISTS deliveries (
    id INTEGER PRIMARY KEY,
    alert_id TEXT NOT NULL REFERENCES alerts(id), destination TEXT NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('pending', 'sending', 'done', 'dead')),
    attempts INTEGER NOT NULL DEFAULT 0, next_at REAL NOT NULL, created_at REAL NOT NULL,
    last_error TEXT, ref TEXT, done_at REAL,
    digest TEXT,  -- deliveries with the same key go out as one digest message
    UNIQUE (alert_id, destination)
);
CREATE INDEX IF NOT EXISTS deliveries_digest ON deliveries(destination, digest);
CREATE INDEX IF NOT EXISTS deliveries_due ON deliveries(state, next_at);
"""

FEED = "http://127.0.0.1/f.xml"


def item(n: int, alt: tuple[str, ...] = ()) -> Item:
    """test_store's item, with the four-digit ids (`u:0001`) this file spells out."""
    return store_item(n, FEED, alt=alt, width=4)


def alert(n: int, story: str) -> Alert:
    return Alert(
        id=f"al_{n}",
        watchlist="moscow",
        story_id=story,
        item=item(n),
        matched=("موسكو",),
        created_at=datetime(2026, 1, 1, tzinfo=UTC),
    )


def write_v1(path: Path) -> None:
    """A version 1 store with what version 1's ingest wrote for 30 items (every third joins the
    story of the item before it, each has an alternative key, every fifth alerted to two
    destinations) and a feed; one delivery done, one dead."""
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.executescript(SCHEMA_V1)
    db.execute("INSERT OR IGNORE INTO meta VALUES ('schema_version', '1')")
    db.execute("BEGIN")
    for n in range(30):
        it = item(n, (f"u:alt{n}",))
        story = item(n - 1).id if n % 3 == 2 else it.id
        at = 1000.0 + n
        db.execute(
            "INSERT OR IGNORE INTO items (id, feed, feed_url, url, title, story_id,"
            " published_at, seen_at, reason) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (it.id, "f", FEED, it.url, it.title, story, 1767225600.0, at, "new story"),
        )
        db.execute(
            "INSERT OR IGNORE INTO fingerprints (item_id, story_id, outlet, at, blob)"
            " VALUES (?, ?, ?, ?, ?)",
            (it.id, story, "f", at, bytes([n]) * 40),
        )
        for k in it.keys:
            db.execute("INSERT OR IGNORE INTO item_keys (key, item_id) VALUES (?, ?)", (k, it.id))
        if story == it.id:
            db.execute(
                "INSERT OR IGNORE INTO stories (id, first_item, created_at, updated_at)"
                " VALUES (?, ?, ?, ?)",
                (story, it.id, at, at),
            )
        else:
            db.execute(
                "UPDATE stories SET items = items + 1, updated_at = ? WHERE id = ?", (at, story)
            )
        if n % 5 == 0:
            a = alert(n, story)
            db.execute(
                "INSERT INTO alerts (id, watchlist, story_id, item_id, type, created_at, payload,"
                " parent) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (a.id, a.watchlist, story, it.id, a.type, at, json.dumps(a.payload()), None),
            )
            for dest in ("desk", "archive"):
                db.execute(
                    "INSERT OR IGNORE INTO deliveries (alert_id, destination, state, next_at,"
                    " created_at, digest) VALUES (?, ?, 'pending', ?, ?, ?)",
                    (a.id, dest, at, at, None),
                )
    db.execute("UPDATE deliveries SET state = 'done', ref = 'ts-1' WHERE id = 1")
    db.execute("UPDATE deliveries SET state = 'dead', last_error = 'HTTP 410' WHERE id = 2")
    db.execute(
        "INSERT INTO feeds (url, etag, last_modified, body_hash, next_poll_at, last_success_at,"
        " last_status, polls) VALUES (?, '\"e1\"', 'lm', 'h', 1300.0, 1000.0, 'new', 4)",
        (FEED,),
    )
    db.execute("COMMIT")
    db.close()


def structure(path: Path) -> dict[str, object]:
    """Tables and indexes with their columns, and which tables have no rowid."""
    db = sqlite3.connect(path)
    try:
        out: dict[str, object] = {}
        for kind, name, sql in db.execute(
            "SELECT type, name, sql FROM sqlite_master WHERE type IN ('table', 'index')"
        ):
            pragma = "table_info" if kind == "table" else "index_info"
            cols = [r[1:3] for r in db.execute(f"PRAGMA {pragma}({name})")]
            out[name] = (kind, cols, "WITHOUT ROWID" in (sql or "").upper())
        return out
    finally:
        db.close()


def test_a_version_1_store_opens_migrated_with_all_its_data(tmp_path: Path) -> None:
    path = tmp_path / "m.db"
    write_v1(path)
    store = SQLiteStore(str(path))
    try:
        rows = store.db.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchall()
        assert rows == [(str(SCHEMA_VERSION),)]
        # every item is still seen, by its id and by its other key
        keys = [k for n in range(30) for k in item(n, (f"u:alt{n}",)).keys]
        seen = store.seen_keys([*keys, "u:never"])
        assert seen == {k: f"u:{n:04d}" for n in range(30) for k in (f"u:{n:04d}", f"u:alt{n}")}
        # the story window, in time order, with its blobs
        prints = list(store.fingerprints(1010.0))
        assert [p.item_id for p in prints] == [f"u:{n:04d}" for n in range(10, 30)]
        assert prints[0].blob == bytes([10]) * 40
        assert (prints[1].story_id, prints[2].story_id) == ("u:0010", "u:0012")
        assert store.story_items("u:0001")[1].item_id == "u:0002"
        assert store.story_of("https://x.example/2") == "u:0001"
        assert store.story_alerts("u:0010") == {"moscow": "al_10"}
        # the outbox: pending deliveries are due, the done and dead ones kept their state
        assert store.counts() == {
            "feeds": 1,
            "items": 30,
            "stories": 20,
            "alerts": 6,
            "deliveries_dead": 1,
            "deliveries_done": 1,
            "deliveries_pending": 10,
        }
        due = store.due(now=5000.0)
        assert len(due) == 10
        assert due[0].alert.item.title == "عنوان 5"
        assert [d.last_error for d in store.deliveries(("dead",))] == ["HTTP 410"]
        st = store.feed_state(FEED)
        assert (st.etag, st.last_modified, st.body_hash, st.next_poll_at) == (
            '"e1"',
            "lm",
            "h",
            1300.0,
        )
        # ... and it takes new polls
        res = store.ingest(
            FeedOutcome(FEED, ok=True, etag='"e2"', next_poll_at=2000.0, at=1500.0),
            [NewItem(item(0), "u:0000"), NewItem(item(31, ("u:alt31",)), "u:0031")],
            [OutboxEntry(alert(31, "u:0031"), ("desk",))],
        )
        assert (res.items_added, res.alerts_added) == (1, ("al_31",))
        assert store.seen_keys(["u:0031", "u:alt31"]) == {"u:0031": "u:0031", "u:alt31": "u:0031"}
        assert store.feed_state(FEED).etag == '"e2"'
        assert store.db.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        assert store.db.execute("PRAGMA foreign_key_check").fetchall() == []
    finally:
        store.close()
    # The same structure as a store made new, and opening it again changes nothing.
    SQLiteStore(str(tmp_path / "new.db")).close()
    assert structure(path) == structure(tmp_path / "new.db")
    SQLiteStore(str(path)).close()
    assert structure(path) == structure(tmp_path / "new.db")


def test_a_store_of_a_newer_schema_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "m.db"
    SQLiteStore(str(path)).close()
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'", (str(SCHEMA_VERSION + 1),))
    db.close()
    with pytest.raises(StoreError, match="newer than this monitor"):
        SQLiteStore(str(path), lock=True)
    # the refused open let go of the instance lock
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'", (str(SCHEMA_VERSION),))
    db.close()
    SQLiteStore(str(path), lock=True).close()


def test_an_item_stored_already_keeps_its_story_fingerprint_and_keys(tmp_path: Path) -> None:
    """A second ingest of a stored item (a race: the pipeline hands in only unseen items)
    changes nothing of it: not its fingerprint, story or keys."""
    store = SQLiteStore(str(tmp_path / "m.db"))
    try:
        out = FeedOutcome(FEED, ok=True, at=1000.0)
        first = NewItem(item(1, ("u:a",)), "u:0001", fingerprint=b"one", at=1000.0)
        again = NewItem(item(1, ("u:b",)), "u:other", fingerprint=b"two", at=1001.0)
        assert store.ingest(out, [first], []).items_added == 1
        assert store.ingest(out, [again, again], []).items_added == 0
        assert [(p.story_id, p.blob) for p in store.fingerprints(0.0)] == [("u:0001", b"one")]
        assert store.seen_keys(["u:0001", "u:a", "u:b"]) == {"u:0001": "u:0001", "u:a": "u:0001"}
        assert store.counts()["stories"] == 1
    finally:
        store.close()


def _items(poll: int) -> list[NewItem]:
    return [
        NewItem(
            item(poll * 40 + k, (f"u:alt{poll}-{k}",)),
            f"u:{poll * 40 + k:04d}",
            fingerprint=bytes(300),
            at=1000.0 + poll,
        )
        for k in range(35)
    ]


def _size(path: Path) -> int:
    return path.stat().st_size if path.exists() else 0


def test_checkpoints_run_in_the_background(tmp_path: Path) -> None:
    """With the store's own checkpoints pushed out of reach (a 1 GB WAL bound), the database
    file still takes the committed pages: another thread copies them."""
    path = tmp_path / "m.db"
    store = SQLiteStore(str(path), wal_limit=1 << 30)
    try:
        before = _size(path)
        for poll in range(20):
            store.ingest(FeedOutcome(FEED, ok=True, at=1000.0 + poll), _items(poll), [])
        wait_for(lambda: _size(path) > before + 100_000, "a checkpoint from another thread")
    finally:
        store.close()


def test_the_wal_stays_bounded_and_close_folds_it_back(tmp_path: Path) -> None:
    path, wal = tmp_path / "m.db", tmp_path / "m.db-wal"
    limit = 256 * 1024
    store = SQLiteStore(str(path), wal_limit=limit)
    sizes = []
    try:
        for poll in range(60):  # ~35 MB of WAL frames without checkpoints
            store.ingest(FeedOutcome(FEED, ok=True, at=1000.0 + poll), _items(poll), [])
            sizes.append(_size(wal))
    finally:
        store.close()
    # a poll writes ~75 KB of frames here, ~4.5 MB for the 60 without a bound
    assert max(sizes) < 4 * limit
    assert _size(wal) == 0
    reopened = SQLiteStore(str(path))
    try:
        assert reopened.counts()["items"] == 60 * 35
    finally:
        reopened.close()
