"""The SQLite store on a real file: the outbox invariant, at-most-once resend, the instance lock."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

from monitor.errors import StoreError, StoreLockedError
from monitor.models import Alert, Item
from monitor.store import FeedOutcome, NewItem, OutboxEntry
from monitor.store.sqlite import SQLiteStore


def item(
    n: int,
    feed_url: str = "http://127.0.0.1/f.xml",
    *,
    alt: tuple[str, ...] = (),
    width: int = 0,
) -> Item:
    """Item `n` with id `u:{n}` (zero-padded to `width` digits) and alternative keys `alt`."""
    return Item(
        id=f"u:{n:0{width}d}",
        feed="f",
        feed_url=feed_url,
        guid=None,
        url=f"https://x.example/{n}",
        title=f"عنوان {n}",
        summary="ملخص",
        content="نص",
        published=datetime(2026, 1, 1, tzinfo=UTC),
        alt_keys=alt,
    )


def alert(n: int, watchlist: str = "moscow") -> Alert:
    it = item(n)
    return Alert(
        id=f"al_{watchlist}_{n}",
        watchlist=watchlist,
        story_id=it.id,
        item=it,
        matched=("موسكو",),
        created_at=datetime(2026, 1, 1, tzinfo=UTC),
    )


def ok(url: str = "http://127.0.0.1/f.xml", at: float = 1000.0) -> FeedOutcome:
    return FeedOutcome(
        url,
        ok=True,
        etag='"e1"',
        last_modified="lm",
        body_hash="h",
        next_poll_at=at + 300,
        at=at,
        status="new",
    )


@pytest.fixture
def store(tmp_path: Path) -> SQLiteStore:
    s = SQLiteStore(str(tmp_path / "m.db"))
    yield s  # type: ignore[misc]
    s.close()


def test_ingest_marks_items_seen_and_fills_the_outbox(store: SQLiteStore) -> None:
    res = store.ingest(
        ok(),
        [NewItem(item(1), "u:1"), NewItem(item(2), "u:2")],
        [OutboxEntry(alert(1), ("desk", "archive"))],
    )
    assert res.items_added == 2
    assert res.alerts_added == ("al_moscow_1",)
    assert store.unseen(["u:1", "u:2", "u:3"]) == {"u:3"}
    due = store.due(now=2000.0)
    assert sorted(d.destination for d in due) == ["archive", "desk"]
    assert {d.alert.id for d in due} == {"al_moscow_1"}
    assert due[0].alert.item.title == "عنوان 1"
    st = store.feed_state("http://127.0.0.1/f.xml")
    assert (st.etag, st.last_modified, st.body_hash, st.next_poll_at) == ('"e1"', "lm", "h", 1300.0)


def test_an_alert_is_unique_per_watchlist_and_story(store: SQLiteStore) -> None:
    store.ingest(ok(), [NewItem(item(1), "u:1")], [OutboxEntry(alert(1), ("desk",))])
    again = store.ingest(ok(), [NewItem(item(1), "u:1")], [OutboxEntry(alert(1), ("desk",))])
    assert again.items_added == 0
    assert again.alerts_added == ()
    assert len(store.due(now=2000.0)) == 1


def test_failed_transaction_writes_nothing(store: SQLiteStore) -> None:
    good = NewItem(item(2), "u:2", fingerprint=b"fp")
    # A fingerprint sqlite cannot store fails the poll after its items were inserted, inside
    # the transaction: nothing may remain of the poll, not even the feed's new validators.
    broken = NewItem(item(3), "u:3", fingerprint=object())  # type: ignore[arg-type]
    with pytest.raises(StoreError):
        store.ingest(ok(), [good, broken], [OutboxEntry(alert(2), ("desk",))])
    assert store.unseen(["u:2", "u:3"]) == {"u:2", "u:3"}
    assert store.due(now=2000.0) == []
    assert store.feed_state("http://127.0.0.1/f.xml").etag is None
    store.ingest(ok(), [good], [OutboxEntry(alert(2), ("desk",))])  # and the store still works
    assert store.unseen(["u:2"]) == set()


def _fields(it: Item) -> dict[str, object]:
    return {f: getattr(it, f) for f in it.__dataclass_fields__}


def test_crash_between_send_and_ack_resends_once(store: SQLiteStore) -> None:
    store.ingest(ok(), [NewItem(item(1), "u:1")], [OutboxEntry(alert(1), ("desk",))])
    (d,) = store.due(now=2000.0)
    store.begin_attempt(d.id, 2000.0)
    assert store.due(now=2000.0) == []  # in flight: not handed out twice
    assert store.recover() == 1  # the process died here; start-up makes it due again
    (again,) = store.due(now=2001.0)
    assert again.id == d.id
    assert again.attempts == 1
    store.begin_attempt(again.id, 2001.0)
    store.delivered(again.id, 2002.0, "ts-1")
    assert store.recover() == 0
    assert store.due(now=9999.0) == []


def test_retry_and_dead_letters(store: SQLiteStore) -> None:
    store.ingest(ok(), [NewItem(item(1), "u:1")], [OutboxEntry(alert(1), ("desk", "hook"))])
    d1, d2 = store.due(now=2000.0)
    store.begin_attempt(d1.id, 2000.0)
    store.retry_later(d1.id, 2100.0, "HTTP 500")
    store.begin_attempt(d2.id, 2000.0)
    store.dead(d2.id, 2000.0, "channel_not_found")
    assert store.due(now=2050.0) == []
    assert [d.id for d in store.due(now=2100.0)] == [d1.id]
    rows = {r.destination: r for r in store.deliveries()}
    assert rows["hook"].state == "dead"
    assert rows["hook"].last_error == "channel_not_found"
    assert rows["desk"].state == "pending"
    assert store.next_due_at() == 2100.0


def test_feed_errors_count_a_streak_and_success_resets_it(store: SQLiteStore) -> None:
    url = "http://127.0.0.1/f.xml"
    for i in range(3):
        store.record_feed(
            FeedOutcome(url, ok=False, error="HTTP 503", next_poll_at=5000.0 + i, at=1.0)
        )
    assert store.feed_state(url).error_streak == 3
    assert store.feed_state(url).last_error == "HTTP 503"
    store.record_feed(ok(url))
    assert store.feed_state(url).error_streak == 0


def test_state_survives_reopening(tmp_path: Path) -> None:
    path = str(tmp_path / "m.db")
    s = SQLiteStore(path)
    s.ingest(ok(), [NewItem(item(1), "u:1")], [OutboxEntry(alert(1), ("desk",))])
    s.close()
    s = SQLiteStore(path)
    assert s.unseen(["u:1"]) == set()
    assert len(s.due(now=2000.0)) == 1
    s.close()


def test_second_daemon_on_the_same_file_is_refused(tmp_path: Path) -> None:
    path = str(tmp_path / "m.db")
    first = SQLiteStore(path, lock=True)
    try:
        with pytest.raises(StoreLockedError, match="in use by another monitor daemon"):
            SQLiteStore(path, lock=True)
        # ... also from another process, which is what two daemons are.
        code = f"from monitor.store.sqlite import SQLiteStore; SQLiteStore({path!r}, lock=True)"
        proc = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, check=False
        )
        assert proc.returncode != 0
        assert "StoreLockedError" in proc.stderr
    finally:
        first.close()
    SQLiteStore(path, lock=True).close()  # released on close


def test_shift_retries_moves_only_retries_still_to_come(store: SQLiteStore) -> None:
    """After the wall clock stepped back, a retry planned for "in 5 minutes" must be due in 5
    minutes again; a release (digest, quiet hours) is a wall-clock time and keeps it, and what
    is already due stays due."""
    store.ingest(ok(), [NewItem(item(1), "u:1")], [OutboxEntry(alert(1), ("later", "past"))])
    store.ingest(
        ok(), [NewItem(item(2), "u:2")], [OutboxEntry(alert(2), ("held",), release_at=9000.0)]
    )
    by_dest = {d.destination: d for d in store.due(now=2000.0)}
    for dest, at in (("later", 2300.0), ("past", 1500.0)):
        store.begin_attempt(by_dest[dest].id, 2000.0)
        store.retry_later(by_dest[dest].id, at, "HTTP 503")
    assert store.shift_retries(-1000.0, now=2000.0) == 1
    next_at = {r.destination: r.next_at for r in store.deliveries()}
    assert next_at == {"later": 1300.0, "past": 1500.0, "held": 9000.0}


def test_record_feeds_writes_each_outcome_as_record_feed_does(tmp_path: Path) -> None:
    one, many = SQLiteStore(str(tmp_path / "one.db")), SQLiteStore(str(tmp_path / "many.db"))
    outcomes = [
        ok("http://127.0.0.1/a.xml", at=1000.0),
        ok("http://127.0.0.1/b.xml", at=1000.0),
        FeedOutcome("http://127.0.0.1/a.xml", ok=True, next_poll_at=1600.0, at=1300.0),
        FeedOutcome("http://127.0.0.1/b.xml", ok=False, error="HTTP 503", next_poll_at=1400.0),
    ]
    for o in outcomes:
        one.record_feed(o)
    many.record_feeds(outcomes)
    assert many.feed_rows() == one.feed_rows()
    assert [r["polls"] for r in many.feed_rows()] == [2, 2]
    one.close()
    many.close()


def test_items_by_reason_matches_the_exact_prefix(store: SQLiteStore) -> None:
    """`monitor story` lists a story's follow-ups by their reason's prefix: story s1's must not
    bring s10's, nor a reason that only contains the prefix."""
    reasons = {
        1: "new story, following story s1 (item x of f): lead 0.40 below 0.7",
        2: "new story, following story s10 (item y of f): lead 0.30 below 0.7",
        3: "containment 0.9, new story, following story s1 (item x of f)",
        4: "new story",
    }
    store.ingest(ok(), [NewItem(item(n), f"u:{n}", reason=r) for n, r in reasons.items()], [])
    found = store.items_by_reason("new story, following story s1 ")
    assert [i.item_id for i in found] == ["u:1"]
    assert store.items_by_reason("new story, following story s1", limit=1)[0].item_id == "u:1"
