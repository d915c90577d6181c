"""Benchmark of the SQLite store's ingest (monitor/store/sqlite.py): what one poll's write costs
the daemon's event loop.

    .venv/bin/python benchmarks/store.py [--feeds 2000] [--measure 500] [--runs 3] [--seed 7]

Each run builds a fresh store in a temporary directory and pre-fills it the way a first poll
pass does (--feeds feeds of 30-40 new items each, about 70k items), then ingests --measure more
polls and times those. A poll's values are built before it is timed, shaped like the pipeline's
(`Pipeline._decide` and `_settle`): items with 1-2 extra identity keys, a real fingerprint blob
(`monitor.dedup.fingerprint` of Arabic sentences from tests/data/match_eval.tsv), one item in
five joining an earlier story of another feed; about 22 alerts per poll over 10 watchlists (one
or two destinations each, JSON payloads of about 1 KB), a story update when a joined story had
alerted; and the feed's new state.

Per ingest, over the measured polls: wall ms (perf_counter), the calling thread's CPU ms
(thread_time: what blocks the event loop) and the process's CPU ms (process_time: with any
background thread of the store), median and p95, and the longest wall; the process CPU and wall
of the whole measured phase per poll (amortised: background work and the `seen_keys` reads
included); the WAL and database sizes at the end, and after close(). `seen_keys` is timed
apart, on the poll's new keys before its ingest and on an earlier poll's keys after it (all
known, as for a feed polled again). --gap sleeps between measured ingests, standing for the rest
of the event loop's work (in the poll benchmark ingest is a third of it; by default ingests run
back to back, the worst case for checkpoints). With --runs N the figures are the median over N
runs, with their min-max (on a shared machine the spread is the noise).

`--quiet-pass` measures instead what writing --feeds feeds' rows after an all-304 pass costs,
one transaction per feed against one for all, in time and bytes written.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import random
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from monitor.dedup import fingerprint
from monitor.models import Alert, Item
from monitor.store import FeedOutcome, NewItem, OutboxEntry
from monitor.store.sqlite import SQLiteStore

ROOT = Path(__file__).resolve().parent.parent
SENTENCES = ROOT / "tests/data/match_eval.tsv"
WATCHLISTS = (
    "moscow",
    "islamic-state",
    "russia-defence",
    "france-russia",
    "syria",
    "gulf",
    "levant",
    "maghreb",
    "iraq",
    "un",
)
DESTINATIONS = (("desk",), ("desk", "archive"), ("archive",))
T0 = 1_780_000_000.0


def sentences() -> list[str]:
    out = []
    for line in SENTENCES.read_text(encoding="utf-8").splitlines():
        if line.startswith("#") or not line.strip():
            continue
        text = line.split("\t")[4]
        if "\\u" not in text:
            out.append(text)
    return out


def _hex(rng: random.Random) -> str:
    return hashlib.sha256(rng.randbytes(16)).hexdigest()[:24]


@dataclass
class Poll:
    keys: list[str]
    outcome: FeedOutcome
    items: list[NewItem]
    outbox: list[OutboxEntry]


class World:
    """Makes polls: remembers stories (and their alerts) so later polls can join them."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.texts = sentences()
        self.blobs = [self._blob(i) for i in range(400)]
        self.stories: list[tuple[str, str]] = []  # (story id, feed name) of recent new stories
        self.alerted: dict[str, dict[str, str]] = {}  # story -> watchlist -> first alert id

    def _blob(self, i: int) -> bytes:
        r = random.Random(i)
        title = r.choice(self.texts)
        body = "\n\n".join(r.sample(self.texts, r.randint(6, 20)))
        return fingerprint(title, body, outlet=f"f{i % 50}", at=T0).to_bytes()

    def poll(self, feed: int, now: float) -> Poll:
        rng = self.rng
        name, url = f"f{feed}", f"http://127.0.0.1:8000/feeds/{feed}.xml"
        items: list[NewItem] = []
        outbox: list[OutboxEntry] = []
        n_items = rng.randint(30, 40)
        wanted_alerts = rng.randint(18, 26)
        for k in range(n_items):
            iid = "u:" + _hex(rng)
            alt = tuple("u:" + _hex(rng) for _ in range(rng.randint(1, 2)))
            published = now - rng.uniform(0, 6 * 3600)
            item = Item(
                id=iid,
                feed=name,
                feed_url=url,
                guid=f"urn:{name}:{k}:{_hex(rng)}",
                url=f"https://www.outlet{feed % 97}.example/news/2026/{_hex(rng)}",
                title=rng.choice(self.texts),
                summary=" ".join(rng.sample(self.texts, 5)),
                content="",
                published=datetime.fromtimestamp(published, UTC),
                alt_keys=alt,
            )
            join = self.stories and rng.random() < 0.2
            if join:
                story_id, other = rng.choice(self.stories[-3000:])
                new_story, reason = False, f"near copy of an item of {other} (shingles 0.82)"
            else:
                story_id, new_story, reason = iid, True, "new story"
                self.stories.append((iid, name))
            blob = rng.choice(self.blobs)
            items.append(NewItem(item, story_id, new_story, reason, blob, published))
            known = self.alerted.setdefault(story_id, {})
            story = {"sources": [name], "source_count": 1}
            if not new_story:
                for wl, parent in list(known.items()):
                    uid = "up_" + hashlib.sha256(f"{wl}\0{story_id}\0{iid}".encode()).hexdigest()
                    update = Alert(
                        uid[:27],
                        wl,
                        story_id,
                        item,
                        (),
                        datetime.fromtimestamp(now, UTC),
                        type="monitor.story_updated",
                        extra={"story": {**story, "alert_id": parent}},
                    )
                    outbox.append(OutboxEntry(update, rng.choice(DESTINATIONS), parent=parent))
            if len(outbox) < wanted_alerts and rng.random() < 0.75:
                wl = rng.choice(WATCHLISTS)
                if wl in known:
                    continue
                aid = "al_" + hashlib.sha256(f"{wl}\0{story_id}".encode()).hexdigest()[:24]
                alert = Alert(
                    aid,
                    wl,
                    story_id,
                    item,
                    (rng.choice(item.title.split()),),
                    datetime.fromtimestamp(now, UTC),
                    extra={"story": story},
                )
                outbox.append(OutboxEntry(alert, rng.choice(DESTINATIONS)))
                known[wl] = aid
        outcome = FeedOutcome(
            url,
            ok=True,
            etag=f'"{_hex(rng)}"',
            last_modified=datetime.fromtimestamp(now, UTC).strftime("%a, %d %b %Y %H:%M:%S GMT"),
            body_hash=hashlib.sha256(rng.randbytes(32)).hexdigest(),
            next_poll_at=now + 300,
            at=now,
            status="new",
        )
        keys = [k for n in items for k in n.item.keys]
        return Poll(keys, outcome, items, outbox)


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0


def _p95(xs: list[float]) -> float:
    return sorted(xs)[max(0, round(0.95 * len(xs)) - 1)]


def run(feeds: int, measure: int, seed: int, gap: float = 0.0) -> dict[str, float]:
    rng = random.Random(seed)
    world = World(rng)
    with tempfile.TemporaryDirectory(prefix="store-bench-") as tmp:
        db = Path(tmp) / "m.db"
        store = SQLiteStore(str(db), lock=True)
        now = T0
        t_fill = time.perf_counter()
        for f in range(feeds):
            p = world.poll(f, now)
            store.seen_keys(p.keys)
            store.ingest(p.outcome, p.items, p.outbox)
            now += 0.05
        fill_s = time.perf_counter() - t_fill
        polls = []
        for f in range(feeds, feeds + measure):
            polls.append(world.poll(f, now))
            now += 0.05
        walls, cpus, pcpus, reads, rereads = [], [], [], [], []
        p_start, w_start = time.process_time(), time.perf_counter()
        for i, p in enumerate(polls):
            r0 = time.perf_counter()
            store.seen_keys(p.keys)
            w0, c0, pc0 = time.perf_counter(), time.thread_time(), time.process_time()
            store.ingest(p.outcome, p.items, p.outbox)
            w1, c1, pc1 = time.perf_counter(), time.thread_time(), time.process_time()
            store.seen_keys(polls[i // 2].keys)  # a document seen before: every key is known
            rereads.append(time.perf_counter() - w1)
            if gap:
                time.sleep(gap)  # the event loop's other work
            reads.append(w0 - r0)
            walls.append(w1 - w0)
            cpus.append(c1 - c0)
            pcpus.append(pc1 - pc0)
        p_total, w_total = time.process_time() - p_start, time.perf_counter() - w_start
        wal = Path(str(db) + "-wal")
        wal_mb, db_mb = _size(wal) / 2**20, _size(db) / 2**20
        counts = store.counts()
        c0 = time.perf_counter()
        store.close()
        close_s = time.perf_counter() - c0
        return {
            "items": counts["items"],
            "alerts": counts["alerts"],
            "fill_s": fill_s,
            "wall_med": 1e3 * statistics.median(walls),
            "wall_p95": 1e3 * _p95(walls),
            "cpu_med": 1e3 * statistics.median(cpus),
            "cpu_p95": 1e3 * _p95(cpus),
            "pcpu_med": 1e3 * statistics.median(pcpus),
            "pcpu_p95": 1e3 * _p95(pcpus),
            "amort_pcpu": 1e3 * p_total / measure,
            "amort_wall": 1e3 * w_total / measure,
            "wall_max": 1e3 * max(walls),
            "seen_keys_med": 1e3 * statistics.median(reads),
            "seen_again_med": 1e3 * statistics.median(rereads),
            "wal_mb": wal_mb,
            "db_mb": db_mb,
            "close_ms": 1e3 * close_s,
            "wal_after_close_mb": _size(wal) / 2**20,
        }


LABELS = {
    "wall_med": "ingest wall ms, median",
    "wall_p95": "ingest wall ms, p95",
    "cpu_med": "ingest thread CPU ms, median",
    "cpu_p95": "ingest thread CPU ms, p95",
    "pcpu_med": "ingest process CPU ms, median",
    "pcpu_p95": "ingest process CPU ms, p95",
    "amort_pcpu": "process CPU ms per poll, whole phase",
    "amort_wall": "wall ms per poll, whole phase",
    "wall_max": "ingest wall ms, max",
    "seen_keys_med": "seen_keys wall ms, median (new keys)",
    "seen_again_med": "seen_keys wall ms, median (known keys)",
    "wal_mb": "WAL MiB at the end",
    "db_mb": "database MiB at the end",
    "close_ms": "close() ms",
    "wal_after_close_mb": "WAL MiB after close()",
    "fill_s": "pre-fill s",
}


def _bytes_written() -> int:
    """This process's bytes written to storage so far (Linux /proc/self/io), or -1."""
    try:
        with open("/proc/self/io", encoding="ascii") as f:
            for line in f:
                if line.startswith("write_bytes:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return -1


def quiet_pass(feeds: int) -> None:
    """An all-304 pass's feed rows: one transaction per feed (`record_feed`, as before session
    4) against one for all (`record_feeds`, how the daemon writes quiet outcomes now)."""
    with tempfile.TemporaryDirectory(prefix="bench-store-") as tmp:
        store = SQLiteStore(str(Path(tmp) / "m.db"))
        urls = [f"http://127.0.0.1/{i}.xml" for i in range(feeds)]
        store.record_feeds(
            [FeedOutcome(u, ok=True, etag='"e"', at=1.0, status="new") for u in urls]
        )
        ways = (
            ("one transaction per feed", lambda outs: [store.record_feed(o) for o in outs]),
            ("one transaction for all", store.record_feeds),
        )
        for n, (label, write) in enumerate(ways, 2):
            outs = [FeedOutcome(u, ok=True, at=float(n), status="not_modified") for u in urls]
            written, t0, c0 = _bytes_written(), time.perf_counter(), time.process_time()
            write(outs)
            wall, cpu = time.perf_counter() - t0, time.process_time() - c0
            mb = (_bytes_written() - written) / 1e6 if written >= 0 else float("nan")
            print(
                f"{feeds} quiet feeds, {label}: {wall * 1e3:.0f} ms wall, "
                f"{cpu * 1e3:.0f} ms CPU, {mb:.1f} MB written"
            )
        store.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quiet-pass", action="store_true", help="only the all-304 pass's feed rows")
    ap.add_argument("--feeds", type=int, default=2000, help="polls that pre-fill the store")
    ap.add_argument("--measure", type=int, default=500, help="polls timed after the pre-fill")
    ap.add_argument("--runs", type=int, default=3, help="fresh stores; medians are reported")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument(
        "--gap", type=float, default=0.0, help="ms between measured ingests (the loop's other work)"
    )
    args = ap.parse_args()
    if args.quiet_pass:
        quiet_pass(args.feeds)
        return
    load0 = os.getloadavg()
    results = []
    for i in range(args.runs):
        r = run(args.feeds, args.measure, args.seed + i, args.gap / 1e3)
        results.append(r)
        print(
            f"run {i + 1}: ingest wall {r['wall_med']:.2f} ms (p95 {r['wall_p95']:.2f}), "
            f"thread CPU {r['cpu_med']:.2f} ms (p95 {r['cpu_p95']:.2f}), "
            f"{int(r['items'])} items, {int(r['alerts'])} alerts",
            flush=True,
        )
    load1 = os.getloadavg()
    print(
        f"\n{args.runs} runs x {args.measure} ingests after {args.feeds} pre-fill polls, "
        f"{args.gap:g} ms apart "
        f"(load average {load0[0]:.2f} before, {load1[0]:.2f} after)"
    )
    print(f"{'':40} {'median':>9} {'min':>9} {'max':>9}")
    for key, label in LABELS.items():
        xs = [r[key] for r in results]
        print(f"{label:40} {statistics.median(xs):9.2f} {min(xs):9.2f} {max(xs):9.2f}")


if __name__ == "__main__":
    main()
