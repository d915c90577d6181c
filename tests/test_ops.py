"""Operations: the HTTP endpoint (/healthz, /metrics), Prometheus metrics, live reload.

The fast tests drive the parts in-process on real sockets and a real SQLite file; the slow ones
run `monitor run` as a subprocess against real local feeds and a webhook receiver, flip the store
away and back, and reload the config with SIGHUP (and `monitor reload`)."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from monitor.config import Config, loads, parse_listen
from monitor.daemon import daemon_pid, plan_reload
from monitor.httpapi import Health, HttpApi, route
from monitor.metrics import Metrics
from monitor.models import Alert, Item, utc
from monitor.store import FeedOutcome, NewItem, OutboxEntry
from monitor.store.sqlite import SQLiteStore
from tests.conftest import ROOT, WEBHOOK_SECRET
from tests.feedgen import FakeItem, rss
from tests.helpers import start, stop, wait_for
from tests.servers import FeedServer, Request, Response, WebhookReceiver

# --- config: http ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("listen", "expected"),
    [
        ("127.0.0.1:9108", ("127.0.0.1", 9108)),
        ("9108", ("127.0.0.1", 9108)),
        ("0.0.0.0:9108", ("0.0.0.0", 9108)),  # noqa: S104 - parsing, not binding
        ("[::1]:9108", ("::1", 9108)),
        ("127.0.0.1:0", ("127.0.0.1", 0)),
    ],
    ids=["host-port", "bare-port-is-loopback", "all-interfaces", "ipv6-brackets", "ephemeral"],
)
def test_parse_listen(listen: str, expected: tuple[str, int]) -> None:
    assert parse_listen(listen) == expected


@pytest.mark.parametrize(
    "listen",
    ["nope", ":9108", "127.0.0.1:", "127.0.0.1:70000"],
    ids=["no-port", "no-host", "empty-port", "port-out-of-range"],
)
def test_parse_listen_rejects(listen: str) -> None:
    with pytest.raises(ValueError, match="HOST:PORT"):
        parse_listen(listen)


def test_http_is_off_unless_configured() -> None:
    assert loads("feeds: []").raw.http is None
    http = loads("http: {}").raw.http
    assert http is not None
    assert http.listen == "127.0.0.1:9108"
    with pytest.raises(Exception, match=r"<config>:2: http.listen: expected HOST:PORT"):
        loads("http:\n  listen: everywhere\n")


# --- the HTTP endpoint -----------------------------------------------------------------------


def _ok() -> Health:
    return Health(True)


def _metrics() -> bytes:
    return b"# metrics\n"


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        ("GET", "/healthz", 200),
        ("HEAD", "/healthz", 200),
        ("GET", "/metrics", 200),
        ("GET", "/metrics?x=1", 200),
        ("GET", "/", 200),
        ("GET", "/admin", 404),
        ("POST", "/healthz", 405),
    ],
    ids=["health", "health-head", "metrics", "query-ignored", "index", "unknown-path", "post"],
)
def test_route(method: str, path: str, status: int) -> None:
    assert route(method, path, _ok, _metrics).status == status


async def _raw(address: str, request: bytes) -> tuple[int, dict[str, str], bytes]:
    host, port = address.removeprefix("http://").rsplit(":", 1)
    reader, writer = await asyncio.open_connection(host, int(port))
    writer.write(request)
    await writer.drain()
    data = await reader.read()
    writer.close()
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = dict(line.split(": ", 1) for line in lines[1:])
    return int(lines[0].split(" ")[1]), headers, body


def test_http_api_on_a_real_socket() -> None:
    state = {"health": Health(True)}

    async def main() -> None:
        api = HttpApi("127.0.0.1:0", lambda: state["health"], _metrics)
        address = await api.start()
        try:
            get = b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
            status, headers, body = await _raw(address, get)
            assert (status, json.loads(body)) == (200, {"status": "ok"})
            assert headers["Connection"] == "close"
            state["health"] = Health(False, "store unavailable: disk gone")
            status, _, body = await _raw(address, get)
            assert status == 503
            assert json.loads(body) == {
                "status": "unavailable",
                "reason": "store unavailable: disk gone",
            }
            status, headers, body = await _raw(address, b"HEAD /metrics HTTP/1.1\r\n\r\n")
            assert (status, body) == (200, b"")
            assert headers["Content-Length"] == str(len(_metrics()))
            assert headers["Content-Type"].startswith("text/plain; version=0.0.4")
            status, _, _ = await _raw(address, b"EHLO there\r\n\r\n")
            assert status == 400
        finally:
            await api.close()
        with pytest.raises(ConnectionRefusedError):
            await _raw(address, b"GET /healthz HTTP/1.1\r\n\r\n")

    asyncio.run(main())


# --- metrics ---------------------------------------------------------------------------------

CONFIG_2FEEDS = """\
storage: sqlite:///{db}
poll: {{unhealthy_after: 2}}
feeds:
  - {{url: "http://127.0.0.1:1/a.xml", name: outlet-a}}
  - {{url: "http://127.0.0.1:1/b.xml", name: outlet-b}}
destinations:
  archive: {{type: console}}
watchlists:
  - {{name: moscow, any: [موسكو], notify: [archive]}}
"""


class _Source:
    def __init__(self, store: SQLiteStore, config: Config) -> None:
        self.store = store
        self.config = config


def samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Every sample of a Prometheus text exposition, keyed by (name, labels)."""
    out = {}
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            out[(s.name, frozenset(s.labels.items()))] = s.value
    return out


def value(text: str, name: str, **labels: str) -> float | None:
    return samples(text).get((name, frozenset(labels.items())))


def _alert(n: int, now: float) -> OutboxEntry:
    item = Item(f"i{n}", "outlet-a", "http://127.0.0.1:1/a.xml", None, None, "موسكو", "", "", None)
    return OutboxEntry(Alert(f"al{n}", "moscow", f"s{n}", item, ("موسكو",), utc(now)), ("archive",))


def test_metrics_count_and_read_the_store_at_scrape_time(tmp_path: Path) -> None:
    config = loads(CONFIG_2FEEDS.format(db=tmp_path / "m.db"))
    store = SQLiteStore(str(tmp_path / "m.db"))
    metrics = Metrics.for_daemon(_Source(store, config))
    metrics.declare(config)
    text = metrics.render().decode()
    assert value(text, "monitor_polls_total", feed="outlet-a", outcome="error") == 0
    assert value(text, "monitor_alerts_total", watchlist="moscow") == 0
    assert value(text, "monitor_outbox_depth", state="pending") == 0
    assert value(text, "monitor_store_up") == 1

    now = time.time()
    url = "http://127.0.0.1:1/a.xml"
    entries = [_alert(1, now), _alert(2, now)]
    news = [NewItem(e.alert.item, e.alert.story_id) for e in entries]
    res = store.ingest(FeedOutcome(url, ok=True, at=now), news, entries)
    metrics.ingested("outlet-a", news, entries, res.alerts_added)
    for _ in range(2):
        store.record_feed(FeedOutcome("http://127.0.0.1:1/b.xml", ok=False, error="x", at=now))
        metrics.polled("outlet-b", "error")
    due = store.due(now + 1)
    store.dead(due[0].id, now, "gone")
    metrics.delivery("archive", "dead")
    metrics.fetched(0.3)

    text = metrics.render().decode()
    assert value(text, "monitor_items_seen_total", feed="outlet-a") == 2
    assert value(text, "monitor_alerts_total", watchlist="moscow") == 2
    assert value(text, "monitor_polls_total", feed="outlet-b", outcome="error") == 2
    assert value(text, "monitor_deliveries_total", destination="archive", outcome="dead") == 1
    assert value(text, "monitor_fetch_duration_seconds_count") == 1
    assert value(text, "monitor_outbox_depth", state="pending") == 1
    assert value(text, "monitor_dead_letters") == 1
    assert value(text, "monitor_feeds_unhealthy") == 1
    assert value(text, "monitor_feed_error_streak", feed="outlet-b") == 2
    assert value(text, "monitor_feed_last_success_timestamp_seconds", feed="outlet-a") == now

    # A new story that follows an earlier one, and a corrected clock step.
    assert value(text, "monitor_story_follow_ups_total", feed="outlet-a") == 0
    assert value(text, "monitor_clock_steps_back_total") == 0
    follow = _alert(3, now)
    reason = "new story, following story s1 (item i1 of outlet-a): lead 0.40 below 0.7"
    news = [
        NewItem(follow.alert.item, "s3", True, reason),
        NewItem(_alert(4, now).alert.item, "s4"),
    ]
    metrics.ingested("outlet-a", news, [], ())
    metrics.clock_stepped_back()
    text = metrics.render().decode()
    assert value(text, "monitor_story_follow_ups_total", feed="outlet-a") == 1
    assert value(text, "monitor_clock_steps_back_total") == 1

    # A second daemon's metrics in the same process do not collide with the first's.
    other = Metrics.for_daemon(_Source(store, config))
    assert value(other.render().decode(), "monitor_alerts_total", watchlist="moscow") is None

    store.close()
    text = metrics.render().decode()
    assert value(text, "monitor_store_up") == 0
    assert value(text, "monitor_outbox_depth", state="pending") is None


# --- reload: what changes --------------------------------------------------------------------

BASE = {
    "storage": "sqlite:///data/m.db",
    "feeds": [
        {"url": "http://127.0.0.1:1/a.xml", "name": "a"},
        {"url": "http://127.0.0.1:1/b.xml", "name": "b"},
    ],
    "destinations": {"archive": {"type": "webhook", "url": "http://127.0.0.1:1/hook"}},
    "watchlists": [{"name": "moscow", "any": ["موسكو"], "notify": ["archive"]}],
}


def _with(**changes: object) -> Config:
    data = {**json.loads(json.dumps(BASE)), **changes}
    return loads(yaml.safe_dump(data, allow_unicode=True))


def _summary(old: Config, new: Config) -> dict[str, object]:
    p = plan_reload(old, new)
    return {
        "added": [f.name for f in p.added],
        "removed": [f.name for f in p.removed],
        "changed": [f.name for f in p.changed],
        "retrigger": [f.name for f in p.retrigger],
        "destinations": list(p.destinations),
        "watchlists": p.watchlists,
        "storage": p.storage,
        "empty": p.empty,
    }


_NOTHING = {
    "added": [],
    "removed": [],
    "changed": [],
    "retrigger": [],
    "destinations": [],
    "watchlists": False,
    "storage": False,
    "empty": False,
}


@pytest.mark.parametrize(
    ("new", "expected"),
    [
        (_with(), {"empty": True}),
        (
            _with(feeds=[*BASE["feeds"], {"url": "http://127.0.0.1:1/c.xml", "name": "c"}]),  # type: ignore[list-item]
            {"added": ["c"]},
        ),
        (_with(feeds=BASE["feeds"][:1]), {"removed": ["b"]}),  # type: ignore[index]
        (
            _with(feeds=[{"url": "http://127.0.0.1:1/a.xml", "name": "a", "interval": 60}]),
            {"removed": ["b"], "changed": ["a"], "retrigger": ["a"]},
        ),
        (
            _with(feeds=[BASE["feeds"][0], {**BASE["feeds"][1], "timeout": 3}]),  # type: ignore[index, dict-item]
            {"changed": ["b"]},
        ),
        (_with(poll={"jitter": 0}), {"retrigger": ["a", "b"]}),
        (
            _with(
                watchlists=[{"name": "moscow", "any": ["موسكو", "الكرملين"], "notify": ["archive"]}]
            ),
            {"watchlists": True},
        ),
        (
            _with(destinations={"archive": {"type": "webhook", "url": "http://127.0.0.1:2/h"}}),
            {"destinations": ["archive"]},
        ),
        (_with(storage="sqlite:///elsewhere.db"), {"storage": True, "empty": True}),
        (_with(max_age="1h"), {}),
    ],
    ids=[
        "same-file-changes-nothing",
        "feed-added",
        "feed-removed",
        "interval-changed-reschedules",
        "timeout-changed-keeps-schedule",
        "jitter-changed-reschedules-all",
        "watchlist-term-added",
        "destination-url-changed-rebuilds-notifier",
        "storage-changed-needs-restart",
        "other-setting-applies",
    ],
)
def test_plan_reload(new: Config, expected: dict[str, object]) -> None:
    assert _summary(_with(), new) == {**_NOTHING, **expected}


def test_daemon_pid_reads_the_instance_lock(tmp_path: Path) -> None:
    config = loads(f"storage: sqlite:///{tmp_path}/m.db")
    assert daemon_pid(config) is None  # no lock file yet
    store = SQLiteStore(str(tmp_path / "m.db"), lock=True)
    try:
        assert daemon_pid(config) == os.getpid()
    finally:
        store.close()
    assert daemon_pid(config) is None  # the file stays, but nobody holds the lock


# --- the running daemon ----------------------------------------------------------------------

LISTENING = re.compile(r"http outcome=listening address=(\S+)")


def _get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=5) as r:
            return int(r.status), bytes(r.read())
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def _address(log: Path) -> str:
    found: list[str] = []

    def listening() -> bool:
        found[:] = LISTENING.findall(log.read_text(encoding="utf-8"))
        return bool(found)

    wait_for(listening, "the HTTP endpoint")
    return found[-1]


@pytest.fixture
def daemon_log(tmp_path: Path) -> Iterator[Path]:
    log = tmp_path / "daemon.log"
    log.touch()
    yield log
    if os.environ.get("MONITOR_TEST_SHOW_LOG"):
        print(log.read_text(encoding="utf-8"))


def _items(now: float) -> dict[str, FakeItem]:
    return {
        "a1": FakeItem("a-1", "هجوم موسكو", "قال الكرملين إن هجوم موسكو دبر في الخارج.", None, now),
        "a2": FakeItem("a-2", "الطقس في الرياض", "درجات حرارة مرتفعة في الرياض.", None, now),
        "a3": FakeItem("a-3", "موسكو تستدعي السفير", "استدعت موسكو السفير الفرنسي.", None, now),
        "a4": FakeItem("a-4", "موسكو ترد على العقوبات", "ردت موسكو على العقوبات.", None, now),
        "b1": FakeItem("b-1", "قمة في الرياض", "تستضيف الرياض قمة عربية غدا.", None, now),
        "b2": FakeItem("b-2", "معرض الرياض للكتاب", "افتتح معرض الرياض الدولي للكتاب.", None, now),
    }


HEALTH_CONFIG = """\
storage: sqlite:///{db}
http: {{listen: "127.0.0.1:0"}}
poll: {{interval: 1, timeout: 5s, jitter: 0, unhealthy_after: 2, max_backoff: 1s}}
feeds:
  - {{url: "{feed_a}", name: outlet-a}}
  - {{url: "{broken}", name: broken}}
destinations:
  archive: {{type: webhook, url: "{hook}/hooks/news", secret: "${{TEST_WEBHOOK_SECRET}}"}}
watchlists:
  - {{name: moscow, any: [موسكو], notify: [archive]}}
"""


@pytest.mark.slow
def test_healthz_and_metrics_of_the_running_daemon(
    tmp_path: Path,
    feed_server: FeedServer,
    webhook_receiver: WebhookReceiver,
    daemon_log: Path,
) -> None:
    it = _items(time.time())
    feed_a = feed_server.publish("/a.xml", rss([it["a1"], it["a2"]]))
    db = tmp_path / "m.db"
    cfg = tmp_path / "monitor.yaml"
    cfg.write_text(
        HEALTH_CONFIG.format(
            db=db, feed_a=feed_a, broken=feed_server.url + "/gone.xml", hook=webhook_receiver.url
        ),
        encoding="utf-8",
    )
    proc = start(cfg, daemon_log)
    try:
        base = _address(daemon_log)
        assert base.startswith("http://127.0.0.1:")
        wait_for(lambda: _get(base + "/healthz")[0] == 200, "a healthy daemon")
        wait_for(lambda: len(webhook_receiver.received) == 1, "the first alert")

        def scrape() -> str:
            status, body = _get(base + "/metrics")
            assert status == 200
            return body.decode()

        def delivered() -> float | None:
            return value(
                scrape(), "monitor_deliveries_total", destination="archive", outcome="delivered"
            )

        wait_for(lambda: delivered() == 1, "the delivery counted")
        wait_for(
            lambda: value(scrape(), "monitor_feeds_unhealthy") == 1, "the broken feed unhealthy"
        )
        text = scrape()
        assert value(text, "monitor_alerts_total", watchlist="moscow") == 1
        assert value(text, "monitor_matches_total", watchlist="moscow") == 1
        assert value(text, "monitor_items_seen_total", feed="outlet-a") == 2
        assert (value(text, "monitor_polls_total", feed="outlet-a", outcome="new") or 0) >= 1
        assert (value(text, "monitor_polls_total", feed="broken", outcome="error") or 0) >= 2
        assert (value(text, "monitor_fetch_duration_seconds_count") or 0) >= 1
        assert value(text, "monitor_outbox_depth", state="pending") == 0
        assert value(text, "monitor_dead_letters") == 0
        assert value(text, "monitor_store_up") == 1
        polls = value(text, "monitor_polls_total", feed="outlet-a", outcome="not_modified") or 0

        # The counters move with the next polls and the next alert.
        feed_server.publish("/a.xml", rss([it["a3"], it["a1"], it["a2"]]))
        wait_for(lambda: delivered() == 2, "the second delivery counted")
        text = scrape()
        assert value(text, "monitor_alerts_total", watchlist="moscow") == 2
        assert value(text, "monitor_items_seen_total", feed="outlet-a") == 3
        wait_for(
            lambda: (
                (
                    value(scrape(), "monitor_polls_total", feed="outlet-a", outcome="not_modified")
                    or 0
                )
                > polls
            ),
            "a not-modified poll counted",
        )

        # The store goes away (its file is no longer where the config says) and comes back.
        os.rename(db, tmp_path / "m.db.away")
        try:
            status, body = _get(base + "/healthz")
            assert status == 503
            answer = json.loads(body)
            assert answer["status"] == "unavailable"
            assert "store unavailable" in answer["reason"]
            assert "unable to open database file" in answer["reason"]
        finally:
            os.rename(tmp_path / "m.db.away", db)
        status, body = _get(base + "/healthz")
        assert (status, json.loads(body)) == (200, {"status": "ok"})
        assert stop(proc) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
    assert [p["item"]["title"] for _, p, _ in webhook_receiver.received] == [
        it["a1"].title,
        it["a3"].title,
    ]


RELOAD_CONFIG = """\
storage: sqlite:///{db}
poll: {{interval: 1, timeout: 5s, jitter: 0}}
feeds:
  - {{url: "{feed_a}", name: outlet-a}}
destinations:
  archive: {{type: webhook, url: "{hook}/hooks/news", secret: "${{TEST_WEBHOOK_SECRET}}"}}
watchlists:
  - name: moscow
    any: [موسكو]
    notify: [archive]
"""

RELOADED = """\
storage: sqlite:///{db}
poll: {{interval: 1, timeout: 5s, jitter: 0}}
feeds:
  - {{url: "{feed_a}", name: outlet-a}}
  - {{url: "{feed_b}", name: outlet-b}}
destinations:
  archive:
    {{type: webhook, url: "{hook}/hooks/news", secret: "${{TEST_WEBHOOK_SECRET}}", timeout: 9s}}
watchlists:
  - name: moscow
    any: [موسكو]
    notify: [archive]
  - name: riyadh
    any: [الرياض]
    notify: [archive]
"""

# RELOAD_CONFIG with two mistakes: an interval that is no duration, a misspelt destination.
INVALID = RELOAD_CONFIG.replace("interval: 1,", "interval: fast,").replace(
    "notify: [archive]", "notify: [archiv]"
)


def _cli(cfg: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "TEST_WEBHOOK_SECRET": WEBHOOK_SECRET}
    return subprocess.run(
        [sys.executable, "-m", "monitor", "-c", str(cfg), *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


@pytest.mark.slow
def test_reload_applies_a_valid_config_and_keeps_the_old_on_an_invalid_one(
    tmp_path: Path,
    feed_server: FeedServer,
    webhook_receiver: WebhookReceiver,
    daemon_log: Path,
) -> None:
    it = _items(time.time())
    feed_a = feed_server.publish("/a.xml", rss([it["a1"], it["a2"]]))
    feed_b = feed_server.publish("/b.xml", rss([it["b1"]]))
    cfg = tmp_path / "monitor.yaml"
    fmt = {
        "db": tmp_path / "m.db",
        "feed_a": feed_a,
        "feed_b": feed_b,
        "hook": webhook_receiver.url,
    }
    cfg.write_text(RELOAD_CONFIG.format(**fmt), encoding="utf-8")
    titles = lambda: [p["item"]["title"] for _, p, _ in webhook_receiver.received]  # noqa: E731
    log_text = lambda: daemon_log.read_text(encoding="utf-8")  # noqa: E731

    proc = start(cfg, daemon_log)
    try:
        wait_for(lambda: titles() == [it["a1"].title], "the first alert")

        # An alert is in flight (the receiver holds its answer) when the reload arrives.
        arrived = threading.Event()

        def on_request(req: Request) -> None:
            if json.loads(req.body)["item"]["title"] == it["a3"].title:
                arrived.set()

        webhook_receiver.on_request = on_request
        webhook_receiver.script.append(Response(200, b"ok", delay=2.0))
        feed_server.publish("/a.xml", rss([it["a3"], it["a1"], it["a2"]]))
        assert arrived.wait(30), "the delivery of a3 started"
        cfg.write_text(RELOADED.format(**fmt), encoding="utf-8")
        reload = _cli(cfg, "reload")
        assert reload.returncode == 0, reload.stderr
        assert f"(pid {proc.pid})" in reload.stdout
        wait_for(lambda: "reload outcome=applied" in log_text(), "the reload applied")
        assert "feeds_added=1 feeds_removed=0 feeds_changed=0 watchlists_changed=True" in log_text()
        assert "destinations_rebuilt=1" in log_text()
        # b1 (new feed, new watchlist) alerts; a2 (seen before the swap) never does.
        wait_for(lambda: len(titles()) == 3, "the alert from the added feed")
        assert titles() == [it["a1"].title, it["a3"].title, it["b1"].title]

        # An invalid file: `monitor reload` refuses to send it; a bare SIGHUP is rejected.
        cfg.write_text(INVALID.format(**fmt), encoding="utf-8")
        refused = _cli(cfg, "reload")
        assert refused.returncode == 2
        assert f"{cfg}:2: poll.interval" in refused.stderr
        assert "reload outcome=rejected" not in log_text()
        os.kill(proc.pid, signal.SIGHUP)
        wait_for(lambda: "reload outcome=rejected" in log_text(), "the reload rejected")
        text = log_text()
        assert f"{cfg}:2: poll.interval: expected a duration" in text
        assert f"{cfg}:10: watchlists[0].notify[0]: unknown destination 'archiv'" in text
        assert "problems=2 (the running config stays active)" in text

        # The running config is still the reloaded one: both feeds, both watchlists.
        feed_server.publish("/a.xml", rss([it["a4"], it["a3"], it["a1"], it["a2"]]))
        feed_server.publish("/b.xml", rss([it["b2"], it["b1"]]))
        wait_for(lambda: len(titles()) == 5, "alerts after the rejected reload")
        time.sleep(1.5)  # two more poll rounds: nothing else may arrive
        assert stop(proc) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
    hooks = [p for _, p, _ in webhook_receiver.received]
    assert sorted((p["watchlist"], p["item"]["title"]) for p in hooks) == sorted(
        [
            ("moscow", it["a1"].title),
            ("moscow", it["a3"].title),
            ("riyadh", it["b1"].title),
            ("moscow", it["a4"].title),
            ("riyadh", it["b2"].title),
        ]
    )
    ids = [p["id"] for p in hooks]
    assert len(ids) == len(set(ids)), "no alert repeated, none lost"
    assert all(v for _, _, v in webhook_receiver.received)


# --- contrib: the dashboard and the alert rules use the names the daemon exports -------------


def test_contrib_uses_only_exported_metric_names(tmp_path: Path) -> None:
    config = loads(CONFIG_2FEEDS.format(db=tmp_path / "m.db"))
    store = SQLiteStore(str(tmp_path / "m.db"))
    try:
        metrics = Metrics.for_daemon(_Source(store, config))
        metrics.declare(config)
        metrics.ingested(
            "outlet-a", [NewItem(_alert(1, 0).alert.item, "s", new_story=False)], [], []
        )
        metrics.fetched(0.1)
        metrics.reloaded("applied")
        store.record_feed(FeedOutcome("http://127.0.0.1:1/a.xml", ok=True, at=time.time()))
        exported = set(samples(metrics.render().decode()))
    finally:
        store.close()
    names = {name for name, _ in exported}
    contrib = ROOT / "contrib"
    rules = yaml.safe_load((contrib / "alerts.yml").read_text(encoding="utf-8"))
    exprs = [r["expr"] for g in rules["groups"] for r in g["rules"]]
    dashboard = json.loads((contrib / "grafana-dashboard.json").read_text(encoding="utf-8"))
    exprs += [t["expr"] for p in dashboard["panels"] for t in p["targets"]]
    exprs += [a["expr"] for a in dashboard["annotations"]["list"]]
    used = {m for e in exprs for m in re.findall(r"\bmonitor_[a-z_]+", e)}
    assert used, "the files reference monitor's metrics"
    assert sorted(used - names) == []
    scrape = yaml.safe_load((contrib / "prometheus.yml").read_text(encoding="utf-8"))
    assert scrape["scrape_configs"][0]["static_configs"][0]["targets"] == ["monitor:9108"]
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text(encoding="utf-8"))
    health = " ".join(compose["services"]["monitor"]["healthcheck"]["test"])
    assert "http://127.0.0.1:9108/healthz" in health
    assert "0.0.0.0:9108" in compose["services"]["monitor"]["command"]
