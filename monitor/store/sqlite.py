"""SQLite store, the embedded default. I/O.

WAL mode, one connection used from one thread, every write a short transaction; a second
connection, in a thread of its own, copies the WAL back into the database (checkpoints) so that
the caller (the daemon's event loop) does not. An instance lock (an exclusive flock on
``<db>.lock``) keeps a second daemon off the same file. A busy database (another process holding
a write lock) is waited for up to `busy_timeout` before StoreError.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import sqlite3
import threading
import time
import urllib.parse
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any, TypeVar

from monitor.errors import StoreError, StoreLockedError
from monitor.identity import canonical_url
from monitor.models import Delivery, FeedState, alert_from_payload
from monitor.store import (
    DeliveryRow,
    FeedOutcome,
    IngestResult,
    NewItem,
    OutboxEntry,
    StoredFingerprint,
    StoryItem,
)

_T = TypeVar("_T")

# Version 2 writes fewer pages per poll (each new item dirties a page of every index it enters):
# `item_keys` holds only an item's other keys (its id is found in `items`) in a WITHOUT ROWID
# table, and `fingerprints` no longer has a unique index of its own (a fingerprint is written
# only with its item's row, `_insert_items`). `_create` migrates a version 1 store.
SCHEMA_VERSION = 2

SCHEMA = (
    "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
    """CREATE TABLE IF NOT EXISTS feeds (
    url TEXT PRIMARY KEY,
    etag TEXT, last_modified TEXT, body_hash TEXT,
    error_streak INTEGER NOT NULL DEFAULT 0,
    next_poll_at REAL, last_success_at REAL, last_error_at REAL, last_error TEXT,
    last_status TEXT, polls INTEGER NOT NULL DEFAULT 0
)""",
    """CREATE TABLE IF NOT EXISTS items (
    id TEXT PRIMARY KEY,
    feed TEXT NOT NULL, feed_url TEXT NOT NULL, url TEXT, title TEXT NOT NULL,
    story_id TEXT NOT NULL, published_at REAL, seen_at REAL NOT NULL, reason TEXT
)""",
    "CREATE INDEX IF NOT EXISTS items_url ON items(url)",
    # one row per item, written with it (`_insert_items`); read and pruned by time only
    """CREATE TABLE IF NOT EXISTS fingerprints (
    item_id TEXT NOT NULL, story_id TEXT NOT NULL, outlet TEXT NOT NULL, at REAL NOT NULL,
    blob BLOB NOT NULL
)""",
    "CREATE INDEX IF NOT EXISTS fingerprints_at ON fingerprints(at)",
    "CREATE INDEX IF NOT EXISTS items_story ON items(story_id)",
    "CREATE INDEX IF NOT EXISTS items_seen ON items(seen_at)",
    # an item's keys besides its id (the id itself is looked up in items)
    """CREATE TABLE IF NOT EXISTS item_keys (
    key TEXT PRIMARY KEY, item_id TEXT NOT NULL
) WITHOUT ROWID""",
    """CREATE TABLE IF NOT EXISTS stories (
    id TEXT PRIMARY KEY, first_item TEXT NOT NULL, created_at REAL NOT NULL,
    updated_at REAL NOT NULL, items INTEGER NOT NULL DEFAULT 1
)""",
    """CREATE TABLE IF NOT EXISTS alerts (
    id TEXT PRIMARY KEY, watchlist TEXT NOT NULL, story_id TEXT NOT NULL, item_id TEXT NOT NULL,
    type TEXT NOT NULL, created_at REAL NOT NULL, payload TEXT NOT NULL,
    parent TEXT  -- for a story update: the alert it updates (its thread)
)""",
    "CREATE INDEX IF NOT EXISTS alerts_story ON alerts(story_id, watchlist)",
    "CREATE INDEX IF NOT EXISTS alerts_recent ON alerts(watchlist, created_at)",
    """CREATE TABLE IF NOT EXISTS deliveries (
    id INTEGER PRIMARY KEY,
    alert_id TEXT NOT NULL REFERENCES alerts(id), destination TEXT NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('pending', 'sending', 'done', 'dead')),
    attempts INTEGER NOT NULL DEFAULT 0, next_at REAL NOT NULL, created_at REAL NOT NULL,
    last_error TEXT, ref TEXT, done_at REAL,
    digest TEXT,  -- deliveries with the same key go out as one digest message
    UNIQUE (alert_id, destination)
)""",
    "CREATE INDEX IF NOT EXISTS deliveries_digest ON deliveries(destination, digest)",
    "CREATE INDEX IF NOT EXISTS deliveries_due ON deliveries(state, next_at)",
)

# Version 1 -> 2, table by table, inside the opening transaction (the others are unchanged).
MIGRATE_1_TO_2 = {
    "item_keys": (
        "CREATE TABLE item_keys_v2 (key TEXT PRIMARY KEY, item_id TEXT NOT NULL) WITHOUT ROWID",
        "INSERT INTO item_keys_v2 SELECT key, item_id FROM item_keys WHERE key <> item_id",
        "DROP TABLE item_keys",
        "ALTER TABLE item_keys_v2 RENAME TO item_keys",
    ),
    "fingerprints": (
        """CREATE TABLE fingerprints_v2 (
    item_id TEXT NOT NULL, story_id TEXT NOT NULL, outlet TEXT NOT NULL, at REAL NOT NULL,
    blob BLOB NOT NULL
)""",
        "INSERT INTO fingerprints_v2 SELECT item_id, story_id, outlet, at, blob FROM fingerprints"
        " ORDER BY at",
        "DROP TABLE fingerprints",  # and its index fingerprints_at (SCHEMA makes it again)
        "ALTER TABLE fingerprints_v2 RENAME TO fingerprints",
    ),
}


# Checkpoints (copying the WAL's committed pages back into the database file, with two fsyncs)
# run in a thread of their own (`_Checkpointer`), off the event loop, once about CHECKPOINT_ROWS
# rows were written since the last one (~2 pages a row: SQLite's default of 1,000 pages). Should
# that thread fall behind, the store's own connection checkpoints once the WAL holds
# `wal_limit` bytes (wal_autocheckpoint), and a WAL file grown past that is truncated back to it
# when it restarts: the WAL is bounded either way.
WAL_LIMIT_BYTES = 64 * 1024 * 1024
CHECKPOINT_ROWS = 500


class _Checkpointer:
    """PASSIVE checkpoints from a thread with a connection of its own, one per kick and at most
    one per `pause` seconds. A passive checkpoint takes no write lock and waits for nobody: the
    store's transactions go on meanwhile (sqlite3 lets go of the GIL while SQLite works), and
    once a checkpoint has copied every frame the next transaction starts the WAL over."""

    def __init__(self, path: str, pause: float = 0.05) -> None:
        self.path = path
        self.pause = pause
        self._wake = threading.Event()
        self._closing = threading.Event()
        self._thread = threading.Thread(target=self._run, name="sqlite-checkpoint", daemon=True)
        self._thread.start()

    def kick(self) -> None:
        self._wake.set()

    def close(self) -> None:
        self._closing.set()
        self._wake.set()
        self._thread.join()

    def _run(self) -> None:
        try:
            db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        except sqlite3.Error:
            return  # the store's own connection still checkpoints (wal_autocheckpoint)
        try:
            with contextlib.suppress(sqlite3.Error):
                db.execute("PRAGMA synchronous=NORMAL")
            while not self._closing.is_set():
                self._wake.wait()
                self._wake.clear()
                if self._closing.is_set():
                    break
                with contextlib.suppress(sqlite3.Error):
                    db.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
                self._closing.wait(self.pause)
        finally:
            db.close()


class SQLiteStore:
    def __init__(
        self,
        path: str,
        *,
        lock: bool = False,
        busy_timeout: float = 15.0,
        wal_limit: int = WAL_LIMIT_BYTES,
    ) -> None:
        self.path = path
        self._lock_fd: int | None = None
        self._checkpointer: _Checkpointer | None = None
        self._changes_checkpointed = 0  # the connection's total_changes at the last kick
        self._abspath = os.path.abspath(path)
        if sqlite3.sqlite_version_info < (3, 35):
            raise StoreError(f"SQLite 3.35 or newer is needed (found {sqlite3.sqlite_version})")
        if path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        if lock and path != ":memory:":
            self._take_lock()
        try:
            self.db = sqlite3.connect(path, timeout=busy_timeout, isolation_level=None)
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute("PRAGMA synchronous=NORMAL")
            self.db.execute("PRAGMA foreign_keys=ON")
            page = int(self.db.execute("PRAGMA page_size").fetchone()[0])
            self.db.execute(f"PRAGMA wal_autocheckpoint={max(1, wal_limit // page)}")
            self.db.execute(f"PRAGMA journal_size_limit={wal_limit}")
            self._create()
        except sqlite3.Error as e:
            self._release_lock()
            raise StoreError(f"cannot open SQLite store {path}: {e}") from e
        except StoreError:
            self._release_lock()
            raise

    def _create(self) -> None:
        """Create the schema, or bring an older store's up to date, in one transaction (a store
        opened by two processes at once is migrated once)."""
        db = self.db
        db.execute("BEGIN IMMEDIATE")
        try:
            tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
            row = None
            if "meta" in tables:
                row = db.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
            if row is not None:
                version = int(row[0])
            elif "items" in tables:
                version = 1  # made before the version was written
            else:
                version = SCHEMA_VERSION  # a new store
            if version > SCHEMA_VERSION:
                raise StoreError(
                    f"{self.path} has store schema version {version}, newer than this monitor's "
                    f"({SCHEMA_VERSION}); run the newer monitor"
                )
            if version == 1:
                for table, steps in MIGRATE_1_TO_2.items():
                    for sql in steps if table in tables else ():
                        db.execute(sql)
            for sql in SCHEMA:
                db.execute(sql)
            if row is None or version != SCHEMA_VERSION:
                db.execute(
                    "INSERT OR REPLACE INTO meta VALUES ('schema_version', ?)",
                    (str(SCHEMA_VERSION),),
                )
            db.execute("COMMIT")
        except BaseException:
            with contextlib.suppress(sqlite3.Error):
                db.execute("ROLLBACK")
            raise

    # --- lifecycle ---------------------------------------------------------------------------

    def _take_lock(self) -> None:
        lock_path = self.path + ".lock"
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 64).decode(errors="replace").strip() or "another process"
            os.close(fd)
            raise StoreLockedError(
                f"{self.path} is in use by another monitor daemon (pid {holder}); "
                "two daemons cannot share one SQLite store"
            ) from None
        os.ftruncate(fd, 0)
        os.write(fd, str(os.getpid()).encode())
        self._lock_fd = fd

    def _release_lock(self) -> None:
        if self._lock_fd is not None:
            with contextlib.suppress(OSError):
                fcntl.flock(self._lock_fd, fcntl.LOCK_UN)
                os.close(self._lock_fd)
            self._lock_fd = None

    def close(self) -> None:
        if self._checkpointer is not None:
            self._checkpointer.close()
            self._checkpointer = None
        with contextlib.suppress(sqlite3.Error):
            # Copy what the WAL holds (waiting for no reader); closing the last connection
            # then removes the WAL.
            self.db.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
        with contextlib.suppress(sqlite3.Error):
            self.db.close()
        self._release_lock()

    def ping(self) -> None:
        """The store answers: a read on the daemon's connection, and a read through a fresh
        read-only connection to the file at `path` (the daemon's own connection keeps working on
        a file that was deleted or replaced under it, which a restart would not find)."""
        try:
            self.db.execute("SELECT 1 FROM meta LIMIT 1").fetchone()
            if self.path != ":memory:":
                uri = "file:" + urllib.parse.quote(self.path) + "?mode=ro"
                probe = sqlite3.connect(uri, uri=True, timeout=1.0)
                try:
                    probe.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
                finally:
                    probe.close()
        except sqlite3.Error as e:
            raise StoreError(f"store unavailable: {self.path}: {e}") from e

    @contextlib.contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        try:
            self.db.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as e:
            raise StoreError(f"cannot start a transaction: {e}") from e
        try:
            yield self.db
        except sqlite3.Error as e:
            with contextlib.suppress(sqlite3.Error):
                self.db.execute("ROLLBACK")
            raise StoreError(f"store write failed, nothing was written: {e}") from e
        except BaseException:
            with contextlib.suppress(sqlite3.Error):
                self.db.execute("ROLLBACK")
            raise
        try:
            self.db.execute("COMMIT")
        except sqlite3.Error as e:
            with contextlib.suppress(sqlite3.Error):
                self.db.execute("ROLLBACK")
            raise StoreError(f"commit failed, nothing was written: {e}") from e
        changes = self.db.total_changes
        if changes - self._changes_checkpointed >= CHECKPOINT_ROWS and self.path != ":memory:":
            self._changes_checkpointed = changes
            if self._checkpointer is None:
                self._checkpointer = _Checkpointer(self._abspath)
            self._checkpointer.kick()

    def _read(self, sql: str, args: Sequence[object] = ()) -> list[sqlite3.Row]:
        try:
            cur = self.db.execute(sql, args)
            return list(cur.fetchall())
        except sqlite3.Error as e:
            raise StoreError(f"store read failed: {e}") from e

    # --- feeds -------------------------------------------------------------------------------

    _FEED_COLS = (
        "url, etag, last_modified, body_hash, error_streak, next_poll_at, "
        "last_success_at, last_error_at, last_error"
    )

    def feed_state(self, url: str) -> FeedState:
        rows = self._read(f"SELECT {self._FEED_COLS} FROM feeds WHERE url = ?", (url,))  # noqa: S608
        return FeedState(*rows[0]) if rows else FeedState(url=url)

    def feed_states(self) -> dict[str, FeedState]:
        rows = self._read(f"SELECT {self._FEED_COLS} FROM feeds")  # noqa: S608
        return {r[0]: FeedState(*r) for r in rows}

    def feed_rows(self) -> list[dict[str, Any]]:
        cur = self.db.execute(
            "SELECT url, error_streak, next_poll_at, last_success_at, last_error_at, last_error,"
            " last_status, polls, (SELECT count(*) FROM items i WHERE i.feed_url = feeds.url"
            " AND i.seen_at >= ?) AS items_24h FROM feeds ORDER BY url",
            (time.time() - 86400,),
        )
        names = [d[0] for d in cur.description]
        return [dict(zip(names, r, strict=True)) for r in cur.fetchall()]

    def _write_feed(self, db: sqlite3.Connection, o: FeedOutcome) -> None:
        if o.ok:
            db.execute(
                "INSERT INTO feeds (url, etag, last_modified, body_hash, error_streak,"
                " next_poll_at, last_success_at, last_status, polls)"
                " VALUES (?, ?, ?, ?, 0, ?, ?, ?, 1) ON CONFLICT (url) DO UPDATE SET"
                " etag = coalesce(excluded.etag, etag),"
                " last_modified = coalesce(excluded.last_modified, last_modified),"
                " body_hash = coalesce(excluded.body_hash, body_hash), error_streak = 0,"
                " next_poll_at = excluded.next_poll_at, last_success_at = excluded.last_success_at,"
                " last_status = excluded.last_status, polls = polls + 1",
                (o.url, o.etag, o.last_modified, o.body_hash, o.next_poll_at, o.at, o.status),
            )
        else:
            db.execute(
                "INSERT INTO feeds (url, error_streak, next_poll_at, last_error_at, last_error,"
                " last_status, polls) VALUES (?, 1, ?, ?, ?, 'error', 1) ON CONFLICT (url)"
                " DO UPDATE SET error_streak = error_streak + 1,"
                " next_poll_at = excluded.next_poll_at, last_error_at = excluded.last_error_at,"
                " last_error = excluded.last_error, last_status = 'error', polls = polls + 1",
                (o.url, o.next_poll_at, o.at, (o.error or "")[:500]),
            )

    def record_feed(self, outcome: FeedOutcome) -> None:
        with self._tx() as db:
            self._write_feed(db, outcome)

    def record_feeds(self, outcomes: Sequence[FeedOutcome]) -> None:
        """`record_feed` for each, in one transaction (in order: a feed listed twice counts
        twice)."""
        with self._tx() as db:
            for o in outcomes:
                self._write_feed(db, o)

    # --- items and the outbox ----------------------------------------------------------------

    def seen_keys(self, keys: Sequence[str]) -> dict[str, str]:
        """Which of these identity keys were seen, mapped to the item id they belong to (an
        item's own id first: it is in items; its other keys are in item_keys)."""
        wanted = list(dict.fromkeys(keys))
        seen: dict[str, str] = {}
        for chunk in _chunks(wanted, 500):
            marks = ",".join("?" * len(chunk))
            rows = self._read(
                f"SELECT key, item_id, 0 FROM item_keys WHERE key IN ({marks})"  # noqa: S608
                f" UNION ALL SELECT id, id, 1 FROM items WHERE id IN ({marks})",
                [*chunk, *chunk],
            )
            for key, item_id, own in rows:
                if own or key not in seen:
                    seen[key] = item_id
        return seen

    def unseen(self, item_ids: Sequence[str]) -> set[str]:
        seen = self.seen_keys(item_ids)
        return {i for i in item_ids if i not in seen}

    def ingest(
        self, outcome: FeedOutcome, items: Sequence[NewItem], outbox: Sequence[OutboxEntry]
    ) -> IngestResult:
        now = outcome.at or time.time()
        with self._tx() as db:
            added = self._insert_items(db, items, now)
            new_alerts = self._insert_outbox(db, outbox, now)
            self._write_feed(db, outcome)
        return IngestResult(items_added=len(added), alerts_added=tuple(new_alerts))

    @staticmethod
    def _insert_items(
        db: sqlite3.Connection, items: Sequence[NewItem], now: float
    ) -> list[NewItem]:
        """Insert the items not stored yet, then their fingerprints, other keys and stories:
        one statement per table for the whole poll. The pipeline only hands in items it found
        unseen, so an item already stored is a race; its companions are left out with it."""
        if not items:
            return []
        stored: set[str] = set()
        for chunk in _chunks(items, 500):
            # RETURNING names the rows inserted (an ignored row returns nothing).
            values = ",".join(["(?, ?, ?, ?, ?, ?, ?, ?, ?)"] * len(chunk))
            stored.update(
                r[0]
                for r in db.execute(
                    "INSERT OR IGNORE INTO items (id, feed, feed_url, url, title, story_id,"  # noqa: S608
                    f" published_at, seen_at, reason) VALUES {values} RETURNING id",
                    [
                        v
                        for n in chunk
                        for v in (
                            n.item.id,
                            n.item.feed,
                            n.item.feed_url,
                            n.item.url,
                            n.item.title[:1000],
                            n.story_id,
                            n.item.published.timestamp() if n.item.published else None,
                            now,
                            n.reason[:500],
                        )
                    ],
                ).fetchall()
            )
        added = []
        for n in items:  # the first of two with one id is the one inserted
            if n.item.id in stored:
                stored.discard(n.item.id)
                added.append(n)
        db.executemany(
            "INSERT INTO fingerprints (item_id, story_id, outlet, at, blob) VALUES (?, ?, ?, ?, ?)",
            [
                (
                    n.item.id,
                    n.story_id,
                    n.item.feed,
                    n.at if n.at is not None else now,
                    n.fingerprint,
                )
                for n in added
                if n.fingerprint is not None
            ],
        )
        db.executemany(
            "INSERT OR IGNORE INTO item_keys (key, item_id) VALUES (?, ?)",
            [(k, n.item.id) for n in added for k in n.item.keys if k != n.item.id],
        )
        db.executemany(
            "INSERT OR IGNORE INTO stories (id, first_item, created_at, updated_at)"
            " VALUES (?, ?, ?, ?)",
            [(n.story_id, n.item.id, now, now) for n in added if n.new_story],
        )
        db.executemany(
            "UPDATE stories SET items = items + 1, updated_at = ? WHERE id = ?",
            [(now, n.story_id) for n in added if not n.new_story],
        )
        return added

    @staticmethod
    def _insert_outbox(
        db: sqlite3.Connection, outbox: Sequence[OutboxEntry], now: float
    ) -> list[str]:
        """Insert the alerts that do not exist yet, and their deliveries: three statements
        however many alerts (an alert id is unique per (watchlist, story), so one that exists
        was sent, or is being sent, already)."""
        if not outbox:
            return []
        ids = list(dict.fromkeys(e.alert.id for e in outbox))
        existing: set[str] = set()
        for chunk in _chunks(ids, 500):
            marks = ",".join("?" * len(chunk))
            rows = db.execute(f"SELECT id FROM alerts WHERE id IN ({marks})", chunk)  # noqa: S608
            existing.update(r[0] for r in rows)
        fresh: dict[str, OutboxEntry] = {}
        for entry in outbox:
            if entry.alert.id not in existing:
                fresh.setdefault(entry.alert.id, entry)
        db.executemany(
            "INSERT INTO alerts (id, watchlist, story_id, item_id, type, created_at, payload,"
            " parent) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            [
                (
                    a.id,
                    a.watchlist,
                    a.story_id,
                    a.item.id,
                    a.type,
                    now,
                    json.dumps(a.payload(), ensure_ascii=False),
                    e.parent,
                )
                for e in fresh.values()
                for a in (e.alert,)
            ],
        )
        db.executemany(
            "INSERT OR IGNORE INTO deliveries (alert_id, destination, state, next_at,"
            " created_at, digest) VALUES (?, ?, 'pending', ?, ?, ?)",
            [
                (e.alert.id, dest, e.release_at or now, now, e.digest)
                for e in fresh.values()
                for dest in e.destinations
            ],
        )
        return list(fresh)

    def enqueue(self, outbox: Sequence[OutboxEntry], now: float) -> tuple[str, ...]:
        with self._tx() as db:
            return tuple(self._insert_outbox(db, outbox, now))

    def alerted(self, watchlist: str, story_id: str) -> bool:
        return bool(
            self._read(
                "SELECT 1 FROM alerts WHERE watchlist = ? AND story_id = ? LIMIT 1",
                (watchlist, story_id),
            )
        )

    # --- stories -----------------------------------------------------------------------------

    def fingerprints(self, since: float) -> Iterator[StoredFingerprint]:
        rows = self._read(
            "SELECT item_id, story_id, outlet, at, blob FROM fingerprints WHERE at >= ?"
            " ORDER BY at",
            (since,),
        )
        for r in rows:
            yield StoredFingerprint(r[0], r[1], r[2], r[3], bytes(r[4]))

    def prune_fingerprints(self, before: float) -> int:
        with self._tx() as db:
            return db.execute("DELETE FROM fingerprints WHERE at < ?", (before,)).rowcount

    def story_alerts(self, story_id: str) -> dict[str, str]:
        """watchlist -> the id of the alert that first told it of this story."""
        rows = self._read(
            "SELECT watchlist, id FROM alerts WHERE story_id = ? AND parent IS NULL",
            (story_id,),
        )
        return {r[0]: r[1] for r in rows}

    def story_sources(self, story_id: str) -> list[str]:
        """The story's feeds, in the order they joined it."""
        rows = self._read(
            "SELECT feed, min(seen_at) AS first FROM items WHERE story_id = ?"
            " GROUP BY feed ORDER BY first, feed",
            (story_id,),
        )
        return [r[0] for r in rows]

    def story_of(self, ref: str) -> str | None:
        """The story of an item, found by item id, URL or canonical URL."""
        canon = canonical_url(ref) or ref
        rows = self._read(
            "SELECT story_id FROM items WHERE id = ? OR url = ? OR url = ? LIMIT 1",
            (ref, ref, canon),
        )
        return str(rows[0][0]) if rows else None

    def story_first(self, story_id: str) -> StoryItem | None:
        """The story's first item (the one that opened it), or None for an unknown story."""
        rows = self._read(
            "SELECT id, feed, title, url, seen_at, coalesce(reason, '') FROM items"
            " WHERE story_id = ? ORDER BY seen_at, id LIMIT 1",
            (story_id,),
        )
        return StoryItem(*rows[0]) if rows else None

    def items_by_reason(self, prefix: str, limit: int = 100) -> list[StoryItem]:
        """Items whose reason starts with `prefix` (e.g. the follow-ups of one story), oldest
        first. A scan of the items table: for `monitor story`, not for the poll path."""
        rows = self._read(
            "SELECT id, feed, title, url, seen_at, coalesce(reason, '') FROM items"
            " WHERE substr(reason, 1, ?) = ? ORDER BY seen_at, id LIMIT ?",
            (len(prefix), prefix, limit),
        )
        return [StoryItem(*r) for r in rows]

    def story_items(self, story_id: str) -> list[StoryItem]:
        rows = self._read(
            "SELECT id, feed, title, url, seen_at, coalesce(reason, '') FROM items"
            " WHERE story_id = ? ORDER BY seen_at, id",
            (story_id,),
        )
        return [StoryItem(*r) for r in rows]

    # --- deliveries --------------------------------------------------------------------------

    def recover(self) -> int:
        """Deliveries left `sending` by a crash become due again (at most one resend)."""
        with self._tx() as db:
            return db.execute(
                "UPDATE deliveries SET state = 'pending' WHERE state = 'sending'"
            ).rowcount

    # The f-strings below interpolate only runs of "?" placeholders; values are bound.
    def due(self, now: float, limit: int = 100, exclude: Iterable[str] = ()) -> list[Delivery]:
        excluded = list(exclude)
        marks = ",".join("?" * len(excluded))
        extra = f" AND d.destination NOT IN ({marks})" if excluded else ""
        # A story update waits until the alert it updates has been delivered (or has failed
        # for good) at that destination, and then carries its reference (a Slack thread ts).
        # (In a digest, an update travels with its parent, so it need not wait.)
        rows = self._read(
            "SELECT d.id, d.destination, d.attempts, a.payload, p.ref, d.digest"  # noqa: S608
            " FROM deliveries d JOIN alerts a ON a.id = d.alert_id"
            " LEFT JOIN deliveries p ON p.alert_id = a.parent AND p.destination = d.destination"
            f" WHERE d.state = 'pending' AND d.next_at <= ?{extra}"
            " AND (a.parent IS NULL OR d.digest IS NOT NULL OR p.state IS NULL"
            " OR p.state IN ('done', 'dead'))"
            # Order per destination (HAZARDS 24): while an older undigested delivery waits for
            # its retry, the younger ones wait behind it.
            " AND NOT EXISTS (SELECT 1 FROM deliveries o WHERE o.destination = d.destination"
            " AND o.state = 'pending' AND o.id < d.id AND o.next_at > ? AND o.digest IS NULL)"
            " ORDER BY d.next_at, d.id LIMIT ?",
            (now, *excluded, now, limit),
        )
        return [_delivery(r) for r in rows]

    def digest_group(self, destination: str, key: str) -> list[Delivery]:
        """Every pending delivery of one digest to one destination, oldest first."""
        rows = self._read(
            "SELECT d.id, d.destination, d.attempts, a.payload, NULL, d.digest"
            " FROM deliveries d JOIN alerts a ON a.id = d.alert_id"
            " WHERE d.state = 'pending' AND d.destination = ? AND d.digest = ?"
            " ORDER BY d.created_at, d.id",
            (destination, key),
        )
        return [_delivery(r) for r in rows]

    def alerts_since(self, watchlist: str, since: float) -> int:
        rows = self._read(
            "SELECT count(*) FROM alerts WHERE watchlist = ? AND created_at >= ?"
            " AND parent IS NULL",
            (watchlist, since),
        )
        return int(rows[0][0])

    def pending_destinations(self) -> set[str]:
        rows = self._read("SELECT DISTINCT destination FROM deliveries WHERE state = 'pending'")
        return {str(r[0]) for r in rows}

    def next_due_at(self) -> float | None:
        rows = self._read("SELECT min(next_at) FROM deliveries WHERE state = 'pending'")
        return float(rows[0][0]) if rows and rows[0][0] is not None else None

    def begin_attempt(self, delivery_id: int, now: float) -> None:
        with self._tx() as db:
            db.execute(
                "UPDATE deliveries SET state = 'sending', attempts = attempts + 1 WHERE id = ?",
                (delivery_id,),
            )

    def delivered(self, delivery_id: int, now: float, ref: str | None) -> None:
        with self._tx() as db:
            db.execute(
                "UPDATE deliveries SET state = 'done', done_at = ?, ref = ?, last_error = NULL"
                " WHERE id = ?",
                (now, ref, delivery_id),
            )

    def retry_later(self, delivery_id: int, at: float, error: str) -> None:
        with self._tx() as db:
            db.execute(
                "UPDATE deliveries SET state = 'pending', next_at = ?, last_error = ? WHERE id = ?",
                (at, error[:500], delivery_id),
            )

    def shift_retries(self, by: float, now: float) -> int:
        """Move every retry still to come (a pending delivery tried before, due after `now`) by
        `by` seconds: after the wall clock stepped back, a retry planned as "in 5 minutes" is
        due in 5 minutes again, not 5 minutes plus the step. Releases (digests, quiet hours)
        are wall-clock times and keep theirs."""
        with self._tx() as db:
            return db.execute(
                "UPDATE deliveries SET next_at = next_at + ?"
                " WHERE state = 'pending' AND attempts > 0 AND next_at > ?",
                (by, now),
            ).rowcount

    def dead(self, delivery_id: int, now: float, error: str) -> None:
        with self._tx() as db:
            db.execute(
                "UPDATE deliveries SET state = 'dead', done_at = ?, last_error = ? WHERE id = ?",
                (now, error[:500], delivery_id),
            )

    def deliveries(
        self, states: Sequence[str] = ("pending", "sending", "dead")
    ) -> list[DeliveryRow]:
        marks = ",".join("?" * len(states))
        rows = self._read(
            "SELECT d.id, d.alert_id, d.destination, d.state, d.attempts, d.next_at, d.last_error,"  # noqa: S608
            " a.watchlist, a.payload FROM deliveries d JOIN alerts a ON a.id = d.alert_id"
            f" WHERE d.state IN ({marks}) ORDER BY d.id",
            tuple(states),
        )
        return [
            DeliveryRow(
                id=r[0],
                alert_id=r[1],
                destination=r[2],
                state=r[3],
                attempts=r[4],
                next_at=r[5],
                last_error=r[6],
                watchlist=r[7],
                title=json.loads(r[8])["item"].get("title") or "",
            )
            for r in rows
        ]

    def requeue(self, ids: Sequence[int] | None = None) -> int:
        """Dead letters (all, or these ids) become due now, their retry ladder restarted."""
        with self._tx() as db:
            if ids is None:
                return db.execute(
                    "UPDATE deliveries SET state = 'pending', next_at = ?, attempts = 0"
                    " WHERE state = 'dead'",
                    (time.time(),),
                ).rowcount
            n = 0
            for i in ids:
                n += db.execute(
                    "UPDATE deliveries SET state = 'pending', next_at = ?, attempts = 0"
                    " WHERE state = 'dead' AND id = ?",
                    (time.time(), i),
                ).rowcount
            return n

    def outbox_summary(self) -> dict[str, tuple[int, float | None]]:
        """state -> (deliveries, oldest created_at) for deliveries not done; indexed, cheap
        enough for every metrics scrape."""
        rows = self._read(
            "SELECT state, count(*), min(created_at) FROM deliveries"
            " WHERE state IN ('pending', 'sending', 'dead') GROUP BY state"
        )
        return {str(r[0]): (int(r[1]), r[2]) for r in rows}

    def counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for table in ("feeds", "items", "stories", "alerts"):
            out[table] = int(self._read(f"SELECT count(*) FROM {table}")[0][0])  # noqa: S608
        for state, n in self._read("SELECT state, count(*) FROM deliveries GROUP BY state"):
            out[f"deliveries_{state}"] = int(n)
        return out


def _chunks(xs: Sequence[_T], size: int) -> Iterator[Sequence[_T]]:
    for i in range(0, len(xs), size):
        yield xs[i : i + size]


def _delivery(r: sqlite3.Row | tuple[Any, ...]) -> Delivery:
    return Delivery(
        id=r[0],
        destination=r[1],
        attempts=r[2],
        alert=alert_from_payload(json.loads(r[3])),
        thread_ref=r[4],
        digest=r[5],
    )
