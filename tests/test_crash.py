"""Crash safety (issue 5, HAZARDS 29, 30): `monitor run` as a subprocess against real local feeds,
a local Slack Web API and a webhook receiver, killed with SIGKILL at 24 moments and restarted
each time on the same store.

The kills are random in *when* and fixed in *kind*, cycling through three:

    delivery  the next chat.postMessage or webhook POST that arrives is held open and the daemon
              is killed while its acknowledgement is in flight; twice in eight, the answer is
              sent at once and the kill follows within 10 ms (HAZARDS 29, "the receiver said
              200 but we had not recorded it");
    fetch     a few milliseconds after the first feed request of the run: in fetch, parse or
              ingest (HAZARDS 30);
    random    uniformly within the first 2.5 s of the run, start-up included.

A wave of new items (most match a watchlist, some do not) is published before every delivery
and fetch kill. After the last kill the daemon runs until the outbox is empty, is stopped with
SIGTERM and must exit 0. Then, per destination: every expected alert arrived; no unexpected
one; an alert arrived twice only when the run that sent it first was killed with it in flight,
at most one such alert per kill, with the same id and the same body; and the store keeps the
outbox invariant (one delivery row per destination of the alert's watchlist, all `done`).

The RNG seed is printed and can be replayed with CRASH_SEED=<seed>.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import signal
import sqlite3
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.feedgen import FakeItem, rss
from tests.helpers import start, wait_for
from tests.servers import FeedServer, Request, SlackServer, WebhookReceiver

pytestmark = pytest.mark.slow

KILLS = 24
KINDS = ("delivery", "fetch", "random")
HOLD = 0.4  # how long a trapped delivery's answer is held (the daemon dies meanwhile)
FEEDS = ("a", "b", "c")
ITEMS_PER_WAVE = 3

# watchlist -> (its term, its destinations)
WATCHLISTS = {"moscow": ("موسكو", ("desk", "archive")), "gaza": ("غزة", ("archive",))}

CONFIG = """\
storage: sqlite:///{db}
poll: {{interval: 1, timeout: 5s, jitter: 0}}
max_age: 6h
feeds:
{feeds}
destinations:
  desk: {{type: slack, token: "${{TEST_SLACK_TOKEN}}", channel: C0123456, base_url: "{slack}/api/"}}
  archive: {{type: webhook, url: "{hook}/hooks/news", secret: "${{TEST_WEBHOOK_SECRET}}"}}
watchlists:
  - name: moscow
    any: [موسكو]
    notify: [desk, archive]
  - name: gaza
    any: [غزة]
    notify: [archive]
"""

# Filler words: none is, contains or folds to a watchlist term. Random sequences of them share
# no 5-word shingle, so no two items are near-duplicates of one story.
VOCABULARY = """
الحكومة البرلمان وزير الاقتصاد الانتخابات المدينة الشرطة المستشفى الطلاب الجامعة السوق الأسعار
النفط الزراعة المطر الطقس الرياض القاهرة بيروت تونس الرباط الخرطوم بغداد دمشق صنعاء الدوحة
المنامة الكويت مسقط الجزائر المعرض الكتاب المسرح الفيلم المهرجان الفريق المباراة الملعب المدرب
اللاعب البطولة الكأس الشركة المصنع العمال الميناء السفينة الطائرة المطار القطار الطريق الجسر
المدرسة المعلم الطبيب الدواء اللقاح المرض البحث العلماء الفضاء القمر الشمس البحر النهر الصحراء
الغابة الحديقة الشتاء الصيف الربيع الخريف يعلن يفتتح يناقش يزور يستقبل يطلق يوقع يدرس يرفض يؤكد
ينفي يحذر يطالب
""".split()  # noqa: SIM905 - a word list reads better as text


@dataclass(frozen=True)
class Expected:
    """A published item and the watchlists it must alert."""

    feed: str
    item: FakeItem
    watchlists: tuple[str, ...]


@dataclass(frozen=True)
class Receipt:
    """One delivery request as a receiver saw it, labelled with the daemon run that sent it."""

    run: int
    dest: str
    alert_id: str
    body: Any  # what must be identical on a resend (no timestamp, signature or ts)


@dataclass
class Kill:
    run: int
    kind: str
    landed: str  # where it landed, as far as the test can tell
    at: float  # seconds after the start of that run


@dataclass
class Harness:
    """The test's view of every run: which run is live, and the traps that time the kills."""

    run: int = -1
    cut_off: int = 0
    receipts: list[Receipt] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    delivery_trap: threading.Event | None = None
    delivery_hold: float = 0.0
    fetch_trap: threading.Event | None = None

    def _record(self, dest: str, alert_id: str, body: Any) -> None:
        with self.lock:
            self.receipts.append(Receipt(self.run, dest, alert_id, body))
            trap, hold = self.delivery_trap, self.delivery_hold
            self.delivery_trap = None
        if trap is not None:
            trap.set()
            if hold:
                time.sleep(hold)  # the answer waits; the daemon is killed meanwhile

    def whole(self, req: Request) -> bool:
        """A request cut off by the kill (headers sent, body not) is not a delivery: no
        receiver acts on half a body."""
        if len(req.body) == int(req.headers.get("content-length") or -1):
            return True
        with self.lock:
            self.cut_off += 1
        return False

    def on_webhook(self, req: Request) -> None:
        if req.method != "POST" or not self.whole(req):
            return
        payload = json.loads(req.body)
        self._record("archive", req.headers["webhook-id"], payload)

    def on_slack(self, req: Request) -> None:
        if not req.path.endswith("/chat.postMessage") or not self.whole(req):
            return
        args = json.loads(req.body)
        self._record("desk", args["metadata"]["event_payload"]["alert_id"], args)

    def on_feed(self, req: Request) -> None:
        with self.lock:
            trap, self.fetch_trap = self.fetch_trap, None
        if trap is not None:
            trap.set()

    def by_dest(self, dest: str) -> list[Receipt]:
        with self.lock:
            return [r for r in self.receipts if r.dest == dest]


def _text(rng: random.Random, n: int) -> str:
    return " ".join(rng.choice(VOCABULARY) for _ in range(n))


def make_wave(rng: random.Random, wave: int) -> list[Expected]:
    """ITEMS_PER_WAVE new items on random feeds; the first always alerts, the others match
    moscow, gaza, both or nothing."""
    out = []
    for n in range(ITEMS_PER_WAVE):
        kind = (
            ("moscow",) if n == 0 else rng.choice([("moscow",), ("gaza",), ("moscow", "gaza"), ()])
        )
        # Each term a word of its own: a 3-letter term like غزة takes no clitic (no وغزة).
        terms = f" {rng.choice(VOCABULARY)} ".join(WATCHLISTS[w][0] for w in kind)
        title = f"{_text(rng, 3)} {terms} {_text(rng, 3)}" if terms else _text(rng, 7)
        body = _text(rng, 40)
        feed = rng.choice(FEEDS)
        guid = f"w{wave}-{n}"
        link = f"https://{feed}.example/news/{guid}"
        out.append(Expected(feed, FakeItem(guid, title, body, link, time.time()), kind))
    return out


def write_config(
    tmp_path: Path, urls: dict[str, str], slack: SlackServer, hook: WebhookReceiver
) -> Path:
    """CONFIG for FEEDS at `urls` and these receivers, storing in tmp_path/m.db."""
    cfg = tmp_path / "monitor.yaml"
    cfg.write_text(
        CONFIG.format(
            db=tmp_path / "m.db",
            feeds="\n".join(f"  - url: {urls[f]}\n    name: outlet-{f}" for f in FEEDS),
            slack=slack.url,
            hook=hook.url,
        ),
        encoding="utf-8",
    )
    return cfg


@contextlib.contextmanager
def reaped(groups: list[int]) -> Iterator[None]:
    """Whatever happens, every process group the test started is killed on the way out."""
    try:
        yield
    finally:
        for pgid in groups:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pgid, signal.SIGKILL)


def query(db: Path, sql: str, args: tuple[object, ...] = ()) -> list[tuple[Any, ...]]:
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10)
    try:
        return list(con.execute(sql, args).fetchall())
    finally:
        con.close()


def test_kill_9_at_random_moments_loses_nothing_and_repeats_only_in_flight(
    tmp_path: Path,
    feed_server: FeedServer,
    slack_server: SlackServer,
    webhook_receiver: WebhookReceiver,
) -> None:
    seed = int(os.environ.get("CRASH_SEED") or random.SystemRandom().randrange(2**32))
    print(f"CRASH_SEED={seed}")
    rng = random.Random(seed)  # noqa: S311 - a replayable schedule, not a secret
    h = Harness()
    webhook_receiver.on_request = h.on_webhook
    slack_server.on_request = h.on_slack
    feed_server.on_request = h.on_feed

    docs: dict[str, list[FakeItem]] = {f: [] for f in FEEDS}
    urls = {f: feed_server.publish(f"/{f}.xml", rss([])) for f in FEEDS}
    expected: list[Expected] = []

    def publish_wave() -> None:
        wave = make_wave(rng, len(expected) // ITEMS_PER_WAVE)
        expected.extend(wave)
        for e in wave:
            docs[e.feed].insert(0, e.item)
        for f in {e.feed for e in wave}:
            feed_server.publish(f"/{f}.xml", rss(docs[f], title=f"outlet {f}"))

    db = tmp_path / "m.db"
    cfg = write_config(tmp_path, urls, slack_server, webhook_receiver)
    log = tmp_path / "daemon.log"
    kills: list[Kill] = []
    groups: list[int] = []

    def context() -> str:
        tail = log.read_text(encoding="utf-8", errors="replace")[-3000:]
        store = ""
        if db.exists():
            store = str(
                query(db, "SELECT destination, state, count(*) FROM deliveries GROUP BY 1, 2")
                + query(
                    db,
                    "SELECT 'items', count(*) FROM items UNION ALL "
                    "SELECT 'alerts', count(*) FROM alerts",
                )
            )
        return (
            f"CRASH_SEED={seed}; published {len(expected)} items; store {store}\n"
            f"kills={kills}\n--- daemon log (tail) ---\n{tail}"
        )

    with reaped(groups):
        for n in range(KILLS):
            kind = KINDS[n % len(KINDS)]
            if kind != "random":
                publish_wave()
            trap = threading.Event()
            with h.lock:
                h.run = n
                if kind == "delivery":
                    h.delivery_trap, h.delivery_hold = trap, (0.0 if n % 9 == 6 else HOLD)
                elif kind == "fetch":
                    h.fetch_trap = trap
            started = time.monotonic()
            proc = start(cfg, log, new_session=True)
            groups.append(proc.pid)
            if kind == "random":
                time.sleep(rng.uniform(0.05, 2.5))
                landed = "random"
            else:
                assert trap.wait(15), f"run {n}: no {kind} request arrived\n{context()}"
                landed = kind
                if kind == "fetch":
                    time.sleep(rng.uniform(0.0, 0.15))
                elif h.delivery_hold == 0.0:
                    time.sleep(rng.uniform(0.0, 0.01))
            assert proc.poll() is None, f"run {n} exited by itself ({proc.returncode})\n{context()}"
            os.kill(proc.pid, signal.SIGKILL)
            assert proc.wait(timeout=10) == -signal.SIGKILL
            kills.append(Kill(n, kind, landed, round(time.monotonic() - started, 3)))
            with h.lock:  # a trap the run did not reach does not carry over
                h.delivery_trap = h.fetch_trap = None

        # The last run: everything published must be ingested and the outbox drained.
        with h.lock:
            h.run = KILLS
        proc = start(cfg, log, new_session=True)
        groups.append(proc.pid)
        alerting = [e for e in expected if e.watchlists]
        n_alerts = sum(len(e.watchlists) for e in alerting)

        def settled() -> bool:
            items = query(db, "SELECT count(*) FROM items")[0][0]
            alerts = query(db, "SELECT count(*) FROM alerts")[0][0]
            open_ = query(db, "SELECT count(*) FROM deliveries WHERE state != 'done'")[0][0]
            return bool(items == len(expected) and alerts == n_alerts and open_ == 0)

        try:
            wait_for(settled, "every item ingested and every delivery done", timeout=60)
        except AssertionError as e:
            raise AssertionError(f"{e}\n{context()}") from None
        time.sleep(1.5)  # two more poll rounds: nothing else may be sent
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=15) == 0, context()

    print(
        f"kills: {Counter(k.landed for k in kills)}; receipts: {len(h.receipts)};"
        f" requests cut off by a kill: {h.cut_off}"
    )

    # --- the store: it opens, and keeps the outbox invariant ------------------------------------
    assert query(db, "PRAGMA integrity_check") == [("ok",)]
    titles = {
        aid: (wl, title)
        for aid, wl, title in query(
            db, "SELECT a.id, a.watchlist, i.title FROM alerts a JOIN items i ON i.id = a.item_id"
        )
    }
    want = {(wl, e.item.title) for e in alerting for wl in e.watchlists}
    assert sorted(titles.values()) == sorted(want), "one alert per matching (watchlist, item)"
    rows = query(db, "SELECT alert_id, destination, state FROM deliveries")
    per_alert: dict[str, list[str]] = defaultdict(list)
    for aid, dest, state in rows:
        assert state == "done", (aid, dest, state)
        per_alert[aid].append(dest)
    for aid, (wl, _) in titles.items():
        assert sorted(per_alert[aid]) == sorted(WATCHLISTS[wl][1]), (aid, wl, per_alert[aid])
    assert set(per_alert) == set(titles)

    # --- the receivers --------------------------------------------------------------------------
    unverified = [p for _, p, verified in webhook_receiver.received if not verified]
    assert all("_raw" in p for p in unverified), "every whole webhook verifies"
    killed_in_flight: dict[str, int] = {}
    for dest in ("desk", "archive"):
        got = h.by_dest(dest)
        ids = Counter(r.alert_id for r in got)
        should = {aid for aid, (wl, _) in titles.items() if dest in WATCHLISTS[wl][1]}
        assert set(ids) == should, (
            f"{dest}: missing {should - set(ids)}, unexpected {set(ids) - should}"
        )
        first: dict[str, Receipt] = {}
        resent_from: Counter[int] = Counter()  # run -> alerts it had in flight when killed
        for r in got:
            if r.alert_id not in first:
                first[r.alert_id] = r
            else:
                assert r.body == first[r.alert_id].body, f"{dest}: a resend of {r.alert_id} differs"
        for aid in ids:
            runs = [r.run for r in got if r.alert_id == aid]
            assert len(set(runs)) == len(runs), f"{dest}: {aid} sent twice by one run {runs}"
            for run in runs[:-1]:  # every send but the last was cut off by a kill of its run
                assert run < KILLS, f"{dest}: {aid} was resent after the clean stop"
                resent_from[run] += 1
        over = {run: c for run, c in resent_from.items() if c > 1}
        assert not over, f"{dest}: more than one resend per kill: {over}"
        killed_in_flight[dest] = sum(resent_from.values())
        assert sum(resent_from.values()) <= len(kills)
    for aid, (_, title) in titles.items():
        hooks = [r.body for r in h.by_dest("archive") if r.alert_id == aid]
        assert hooks[0]["item"]["title"] == title
    print(f"resends (one per kill with that destination in flight): {killed_in_flight}")


def live_members(pgid: int) -> list[int]:
    """The processes of a process group that are alive (zombies left to an init that does not
    reap them do not count)."""
    out = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        if fields[0] != "Z" and int(fields[2]) == pgid:
            out.append(int(entry.name))
    return out


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads /proc")
def test_kill_9_leaves_no_helper_processes_behind(
    tmp_path: Path,
    feed_server: FeedServer,
    slack_server: SlackServer,
    webhook_receiver: WebhookReceiver,
) -> None:
    item = FakeItem("x-1", "وزير يزور موسكو اليوم", " ".join(VOCABULARY[:40]), None, time.time())
    urls = {f: feed_server.publish(f"/{f}.xml", rss([item] if f == "a" else [])) for f in FEEDS}
    cfg = write_config(tmp_path, urls, slack_server, webhook_receiver)
    groups: list[int] = []
    with reaped(groups):
        proc = start(cfg, tmp_path / "daemon.log", new_session=True)
        groups.append(proc.pid)
        # The item was parsed (so the parse workers exist) once its alert arrives.
        wait_for(lambda: len(webhook_receiver.received) >= 1, "the alert", timeout=30)
        helpers = set(live_members(proc.pid)) - {proc.pid}
        assert helpers, "the daemon runs helper processes (the parse pool)"
        os.kill(proc.pid, signal.SIGKILL)
        assert proc.wait(timeout=10) == -signal.SIGKILL
        wait_for(lambda: not live_members(proc.pid), "the helpers to exit", timeout=5)
