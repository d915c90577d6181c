"""Benchmark of one poll pass over 100 normal feeds plus the hostile feeds of HAZARDS.md
(issue 5, "Must show" 4): wall time, how each hostile feed ended, peak RSS of the daemon and of
each parse worker. I/O: servers and a daemon on 127.0.0.1 only.

    .venv/bin/python benchmarks/hostile.py                       # fetch deadline 10 s
    .venv/bin/python benchmarks/hostile.py --timeout 5 --parse-deadline 4

Peers, all on 127.0.0.1 and in processes other than the measured daemon:

- 100 normal feeds: benchmarks/feedserver.py (30-40 real Arabic news items each, own process);
- hostile servers (HAZARDS 4, 16-18, 20, 21): every route of tests/hostile.py `hostile_routes`
  (drip, accept-then-silence, endless chunked body, lying Content-Length, gzip bomb of 200 MB,
  brotli, redirect loop and endless chain, redirects to 169.254.169.254 and 10.0.0.1, 429/503
  with Retry-After, 404, 410, an HTML page, an empty 200), on a threaded tests/servers.py
  FeedServer in this process (listen backlog raised for many connections at once);
- hostile documents served as feeds by the same server (HAZARDS 1-3, 5-14): billion laughs, one
  huge internal entity (the 55 KB fixture and a 200 KB one), XXE and an external DTD pointing at
  this server (so a fetch of them would show up in its request log), author e-mail ReDoS (32 KB
  authors), a 20 MB feed with Content-Length and the same chunked, a 9.4 MB feed of 4,300 items
  and a 10.1 MB one of 300,000 tiny items (both under the 10 MiB cap; the latter also answered
  after 80% of the fetch deadline), one item with 10 MB of content, 50k nested tags, thousands of
  categories and enclosures, truncated XML, control characters/NUL/invalid UTF-8, the Arabic
  encoding fixtures (windows-1256 labelled utf-8, ISO-8859-6, UTF-16, UTF-8 BOM), 100 KB titles,
  javascript:/data: links, bidi overrides, Slack-injection titles, dates in 2100 or unreadable,
  items without guid or link.

The daemon runs in a fresh process (benchmarks/poll.py `run_child`): `Daemon(config,
use_pool=True)` with a fresh SQLite store, poll.timeout = --timeout (the whole-fetch deadline),
then one `await daemon.poll_all()` over every feed at once. Its peak RSS is VmHWM (reset before
the pass); the parse workers' VmHWM is sampled every 50 ms (a worker replaced by the pool is
still counted). After the pass the store is read back: items per feed, the longest stored title,
javascript: links kept, expanded entities or file contents in titles.

Targets: wall of the pass <= fetch deadline + 5 s, peak RSS < 300 MB (daemon; workers reported
separately). A benchmark reports: it prints PASS or MISS and exits 0 either way. Bounded: the
daemon process is killed after --deadline seconds.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import shutil
import sqlite3
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from email.utils import formatdate
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from feedserver import FeedServer as NormalFeeds
from feedserver import corpus_source, render_feeds
from poll import WATCHLISTS_YAML, machine, proc_hwm_mb, reset_hwm, run_child, worker_pids

from tests import hostile
from tests.servers import FeedServer as HostileServer
from tests.servers import Request, Response

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests/data/feeds"
MB = 1024 * 1024
TARGET_SLACK_S = 5.0
TARGET_RSS_MB = 300.0
NORMAL_FEEDS = 100
RSS = "application/rss+xml; charset=utf-8"


@dataclass(frozen=True)
class Hostile:
    name: str  # the feed's name in the config
    path: str  # its path on the hostile server
    hazard: str  # HAZARDS.md case number(s)
    what: str
    expect: str  # "new": parsed (with its limits); otherwise a piece of the error text; "" any


# --- hostile documents ---------------------------------------------------------------------------

HEAD = (
    '<?xml version="1.0" encoding="utf-8"?>\n'
    '<rss version="2.0" xmlns:content="http://purl.org/rss/1.0/modules/content/">'
    "<channel><title>عدائي</title><link>https://hostile.example/</link>"
    "<description>hostile</description>"
)
TAIL = "</channel></rss>"


def _item(n: int, title: str, extra: str = "", link: str | None = None) -> str:
    link = link if link is not None else f"https://hostile.example/a/{n}"
    return (
        f"<item><title>{title}</title><link>{link}</link><guid>h-{n}</guid>"
        f"<pubDate>{formatdate(time.time() - 60 * n, usegmt=True)}</pubDate>{extra}</item>"
    )


def _doc(items: str, prolog: str = "") -> bytes:
    head = HEAD if not prolog else HEAD.replace("\n", "\n" + prolog + "\n", 1)
    return (head + items + TAIL).encode("utf-8")


def _big_items(n: int, text_chars: int) -> str:
    para = ("موسكو تعلن عن محادثات جديدة في جنيف حول الأزمة السورية. " * 40)[:text_chars]
    return "".join(
        _item(k, f"خبر رقم {k} عن موسكو", f"<description>{para}</description>") for k in range(n)
    )


def _chunks(data: bytes, size: int = 64 * 1024) -> Iterator[bytes]:
    return (data[i : i + size] for i in range(0, len(data), size))


def documents(base: str) -> dict[str, tuple[Hostile, bytes | None, str]]:
    """path -> (the feed, its body (None: served by a handler set elsewhere), content type)."""
    big_entity = "ضخم " * 25_000  # 100,000 characters, 175 KB of UTF-8
    ten_mb = "<p>" + ("موسكو " * 910_000)[:5_450_000] + "</p>"  # 9,991,670 bytes of UTF-8
    nested = "<div>" * 50_000 + "عمق" + "</div>" * 50_000
    cats = "".join(f"<category>وسم {i}</category>" for i in range(20_000))
    encs = "".join(
        f'<enclosure url="https://a.example/{i}.mp3" length="1" type="audio/mpeg"/>'
        for i in range(5_000)
    )
    normal = _doc(_big_items(30, 1_000))
    author = "<author>" + "a" * 32_768 + "@</author>"
    unsafe = "".join(
        [
            _item(1, "موسكو &lt;!channel&gt; عاجل", link="javascript:alert(1)"),
            _item(2, "موسكو &lt;!here&gt; &lt;@U024BE7LH&gt;", link="data:text/html,x"),
            _item(3, "موسكو &lt;https://evil.example|بنك&gt;", link="file:///etc/passwd"),
            _item(4, "\u202eموسكو\u202c \u2066عاجل\u2069", link="//evil.example/x"),
            _item(5, "موسكو &lt;#C0123&gt; &lt;!subteam^S1&gt;"),
        ]
    )
    dates = (
        "<item><title>موسكو في المستقبل</title><guid>h-1</guid>"
        "<pubDate>Fri, 01 Jan 2100 00:00:00 GMT</pubDate></item>"
        "<item><title>موسكو بلا تاريخ</title><guid>h-2</guid></item>"
        "<item><title>موسكو تاريخ مكسور</title><guid>h-3</guid><pubDate>not a date</pubDate>"
        "</item>"
    )
    controls = (
        HEAD.encode()
        + "<item><title>موسكو".encode()
        + b"\x00\x01\x1f\x7f"
        + " عاجل</title><guid>c-1</guid></item><item><title>موسكو ".encode()
        + b"\xed\xa0\x80\xff\xfe"  # a lone surrogate and bytes that are never UTF-8
        + b"</title><guid>c-2</guid></item>"
        + TAIL.encode()
    )
    xxe = (FIXTURES / "xxe.xml").read_bytes().replace(b"http://127.0.0.1:9", base.encode())
    feed20 = _doc(_big_items(9_000, 1_100))
    feed9 = _doc(_big_items(4_300, 1_100))
    tiny = _doc("".join(f"<item><title>{i}</title></item>" for i in range(300_000)))
    content10 = _doc(_item(1, "موسكو", f"<content:encoded><![CDATA[{ten_mb}]]></content:encoded>"))
    rows: list[tuple[Hostile, bytes | None, str]] = [
        (Hostile("billion-laughs", "/d/billion.xml", "1", "nested entity expansion", "new"),
         (FIXTURES / "billion_laughs.xml").read_bytes(), RSS),
        (Hostile("entity-55k", "/d/entity55.xml", "1",
                 "one 20 KB internal entity x 2,000 (fixture)", "new"),
         (FIXTURES / "big_internal_entity.xml").read_bytes(), RSS),
        (Hostile("entity-200k", "/d/entity200.xml", "1",
                 "one 100k-char internal entity x 200 (HAZARDS' 206 KB case)", "new"),
         _doc(_item(1, "&big; " * 100, "<description>" + "&big; " * 100 + "</description>"),
              f'<!DOCTYPE rss [<!ENTITY big "{big_entity}">]>'), RSS),
        (Hostile("xxe", "/d/xxe.xml", "1", "SYSTEM file:///etc/passwd, remote entity + DTD",
                 "new"), xxe, RSS),
        (Hostile("external-dtd", "/d/dtd.xml", "1", "DOCTYPE PUBLIC ... this server's DTD", "new"),
         _doc(_item(1, "موسكو &q;"),
              f'<!DOCTYPE rss PUBLIC "-//Netscape//DTD RSS 0.91//EN" "{base}/evil.dtd">'), RSS),
        (Hostile("author-redos", "/d/author.xml", "2", "20 items with a 32 KB <author>", "new"),
         _doc("".join(_item(k, f"موسكو {k}", author) for k in range(20))), RSS),
        (Hostile("feed-20mb", "/d/20mb.xml", "2", f"{len(feed20) / 1e6:.0f} MB, Content-Length",
                 "body exceeds"), feed20, RSS),
        (Hostile("feed-20mb-chunked", "/d/20mb-chunked.xml", "2",
                 f"{len(feed20) / 1e6:.0f} MB, chunked", "body exceeds"), None, RSS),
        (Hostile("feed-9mb", "/d/9mb.xml", "2",
                 f"{len(feed9) / 1e6:.1f} MB, 4,300 items (under the cap)", "new"), feed9, RSS),
        (Hostile("tiny-items-10mb", "/d/tiny.xml", "2, 14",
                 f"{len(tiny) / 1e6:.1f} MB, 300,000 tiny items (under the cap)", ""),
         tiny, RSS),
        (Hostile("tiny-items-10mb-late", "/d/tiny-late.xml", "2, 16",
                 "the same, answered after 80% of the fetch deadline", ""), None, RSS),
        (Hostile("content-10mb", "/d/10mb-content.xml", "12",
                 f"one item, {len(content10) / 1e6:.1f} MB of content", "new"), content10, RSS),
        (Hostile("nested-50k", "/d/nested.xml", "2", "50k nested <div> in a description", ""),
         _doc(_item(1, "موسكو", f"<description>{nested}</description>")), RSS),
        (Hostile("categories", "/d/categories.xml", "14", "20k categories, 5k enclosures",
                 "new"), _doc(_item(1, "موسكو", cats + encs)), RSS),
        (Hostile("truncated", "/d/truncated.xml", "3", "a 30-item feed cut mid-item", "new"),
         normal[: len(normal) // 2], RSS),
        (Hostile("controls-nul", "/d/controls.xml", "3",
                 "NUL, C0/DEL, lone surrogate, invalid UTF-8", "new"), controls, RSS),
        (Hostile("cp1256-labelled-utf8", "/d/cp1256.xml", "5",
                 "windows-1256 bytes labelled utf-8", "new"),
         (FIXTURES / "windows1256_labelled_utf8.xml").read_bytes(), RSS),
        (Hostile("iso-8859-6", "/d/iso.xml", "5", "ISO-8859-6", "new"),
         (FIXTURES / "encoding_ISO-8859-6.xml").read_bytes(), "application/rss+xml"),
        (Hostile("utf-16", "/d/utf16.xml", "5", "UTF-16 with BOM", "new"),
         (FIXTURES / "encoding_UTF-16.xml").read_bytes(), "application/rss+xml"),
        (Hostile("utf8-bom-wrong-header", "/d/bom.xml", "5", "UTF-8 BOM, charset=iso-8859-1",
                 "new"), (FIXTURES / "utf8_bom.xml").read_bytes(),
         "application/rss+xml; charset=iso-8859-1"),
        (Hostile("no-guid-no-link", "/d/noguid.xml", "6", "items without guid or link", "new"),
         (FIXTURES / "no_guid_no_link.xml").read_bytes(), RSS),
        (Hostile("dates", "/d/dates.xml", "8", "pubDate 2100, missing, unparseable", "new"),
         _doc(dates), RSS),
        (Hostile("slack-links-bidi", "/d/unsafe.xml", "9-10-11",
                 "<!channel>/<@U..>/masked-link titles, javascript:/data:/file: links, bidi",
                 "new"), _doc(unsafe), RSS),
        (Hostile("titles-100kb", "/d/titles.xml", "12", "5 items with 100 KB titles", "new"),
         _doc("".join(_item(k, "موسكو " + "ع" * 100_000) for k in range(5))), RSS),
    ]  # fmt: skip
    out: dict[str, tuple[Hostile, bytes | None, str]] = {}
    for h, body, ctype in rows:  # links and guids of one feed are its own (identity is global)
        if body is not None:
            body = body.replace(b"hostile.example/a/", f"hostile.example/{h.name}/".encode())
            body = body.replace(b"<guid>h-", f"<guid>{h.name}-".encode())
        out[h.path] = (h, body, ctype)
    return out


ROUTE_HAZARDS = {
    "/drip.xml": ("16", "1 byte every 0.5 s"),
    "/silence.xml": ("16", "accept, then 60 s of silence"),
    "/endless.xml": ("16", "chunked body that never ends"),
    "/lying-length.xml": ("16", "Content-Length 100,000, 150 bytes sent"),
    "/gzip-bomb.xml": ("17", "200 KB of gzip -> 200 MB"),
    "/brotli.xml": ("17", "Content-Encoding: br, never asked for"),
    "/loop-a.xml": ("18", "a -> b -> a"),
    "/loop-b.xml": ("18", "b -> a -> b"),
    "/hop/0": ("18", "an endless redirect chain"),
    "/metadata.xml": ("18", "redirect to 169.254.169.254"),
    "/private.xml": ("18", "redirect to 10.0.0.1"),
    "/429-seconds.xml": ("20", "429, Retry-After: 120"),
    "/503-date.xml": ("20", "503, Retry-After: an HTTP date"),
    "/404.xml": ("21", "404"),
    "/410.xml": ("21", "410"),
    "/html.xml": ("4", "200 with an HTML page"),
    "/empty.xml": ("4", "200 with an empty body"),
}


def hostile_feeds(server: HostileServer, fetch_deadline: float) -> list[Hostile]:
    """Mount every hostile route and document on `server`; the feeds to poll."""
    base = server.url
    feeds: list[Hostile] = []
    for path, (handler, expect) in hostile.hostile_routes(base).items():
        server.overrides[path] = handler
        hz, what = ROUTE_HAZARDS.get(path, ("?", ""))
        if path == "/html.xml":
            expect = "not a feed"
        name = path.strip("/").replace("/", "-").removesuffix(".xml")
        feeds.append(Hostile(name, path, hz, what, expect))
    for path, (h, body, ctype) in documents(base).items():
        if path == "/d/20mb-chunked.xml":  # the 20 MB feed again, chunked (no Content-Length)
            data = server.docs["/d/20mb.xml"][0]
            server.overrides[path] = lambda req, data=data: Response(  # type: ignore[misc]
                200, _chunks(data), {"Content-Type": RSS}
            )
        elif path == "/d/tiny-late.xml":  # fetched just before the deadline, then parsed
            data = server.docs["/d/tiny.xml"][0]
            wait = 0.8 * fetch_deadline
            server.overrides[path] = lambda req, data=data, wait=wait: Response(  # type: ignore[misc]
                200, data, {"Content-Type": RSS}, delay=wait
            )
        else:
            assert body is not None
            server.publish(path, body, ctype)
        feeds.append(h)
    return feeds


# --- the daemon (in its own process) -------------------------------------------------------------


def config_yaml(feeds: list[tuple[str, str]], db: str, timeout: float, concurrency: int) -> str:
    lines = "\n".join(f"  - {{url: '{u}', name: '{n}'}}" for n, u in feeds)
    return (
        f"storage: sqlite:///{db}\n"
        f"poll: {{interval: 5m, timeout: {timeout:g}s, jitter: 0, concurrency: {concurrency},"
        # every feed is on 127.0.0.1 here, standing for as many outlets: no per-host limit
        f" per_host: {concurrency}}}\n"
        "max_age: 7d\n"
        "destinations:\n  screen: {type: console}\n"
        f"feeds:\n{lines}\n{WATCHLISTS_YAML}"
    )


async def _sample_workers(daemon: Any, peaks: dict[int, float], stop: asyncio.Event) -> None:
    while not stop.is_set():
        for pid in worker_pids(daemon.pool):
            with contextlib.suppress(OSError):
                peaks[pid] = max(peaks.get(pid, 0.0), proc_hwm_mb(pid))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), 0.05)


def _store_facts(db: str) -> dict[str, dict[str, Any]]:
    """Per feed name: items stored, longest title, links kept that are not http(s), titles
    holding an expanded entity or a file's contents."""
    con = sqlite3.connect(db)
    try:
        rows = con.execute(
            "SELECT feed, count(*), max(length(title)),"
            " sum(url IS NOT NULL AND url NOT LIKE 'http://%' AND url NOT LIKE 'https://%'),"
            " sum(title LIKE '%lollol%' OR title LIKE '%root:%' OR title LIKE '%ضخم ضخم%')"
            " FROM items GROUP BY feed"
        ).fetchall()
    finally:
        con.close()
    return {
        r[0]: {"stored": r[1], "max_title": r[2], "bad_links": r[3], "expanded": r[4]} for r in rows
    }


class _Finished(logging.Handler):
    """Notes when each feed's poll ended: the daemon logs every report as it finishes
    (`feed=%s outcome=...`); with the report's `elapsed`, that gives when its poll started."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.at: dict[str, float] = {}
        self.restarts: list[str] = []  # why the parse pool was replaced

    def emit(self, record: logging.LogRecord) -> None:
        if str(record.msg).startswith("parse_pool outcome=restart"):
            self.restarts.append(record.getMessage())
        if str(record.msg).startswith("feed=%s outcome=") and record.args:
            self.at[str(record.args[0])] = time.perf_counter()  # type: ignore[index]


async def daemon_pass(
    feeds: list[tuple[str, str]],
    fetch_deadline: float,
    concurrency: int,
    parse_deadline: float | None,
) -> dict[str, Any]:
    from monitor.config import loads
    from monitor.daemon import Daemon

    tmp = tempfile.mkdtemp(prefix="bench-hostile-")
    db = f"{tmp}/bench.db"
    config = loads(config_yaml(feeds, db, fetch_deadline, concurrency), env={})
    daemon = Daemon(config, use_pool=True)
    assert daemon.pool is not None  # use_pool=True
    if parse_deadline is not None:
        daemon.pool.deadline = parse_deadline
    out: dict[str, Any] = {"parse_deadline": daemon.pool.deadline}
    peaks: dict[int, float] = {}
    stop = asyncio.Event()
    finished = _Finished()
    logger = logging.getLogger("monitor")
    logger.addHandler(finished)  # also keeps the per-feed lines off stderr
    logger.setLevel(logging.INFO)
    try:
        sampler = asyncio.create_task(_sample_workers(daemon, peaks, stop))
        reset_hwm()
        rss0 = proc_hwm_mb()
        t0 = time.perf_counter()
        reports = await daemon.poll_all()
        out["wall"] = time.perf_counter() - t0
        out["rss_mb"] = proc_hwm_mb()
        out["rss_before_mb"] = rss0
        stop.set()
        await sampler
        out["worker_rss_mb"] = {pid: round(mb, 1) for pid, mb in sorted(peaks.items())}
        out["restarts"] = daemon.pool.restarts
        out["restart_reasons"] = finished.restarts
        out["reports"] = [
            {
                "feed": r.feed,
                "outcome": r.outcome,
                "items": r.items,
                "new": r.new_items,
                "alerts": r.alerts,
                "error": r.error,
                "elapsed": r.elapsed,
                "end": finished.at.get(r.feed, t0) - t0,
            }
            for r in reports
        ]
    finally:
        await daemon.close()
        out["store"] = _store_facts(db)
        shutil.rmtree(tmp, ignore_errors=True)
    return out


def _daemon_child(conn: Connection, *args: Any) -> None:
    conn.send(asyncio.run(daemon_pass(*args)))


# --- report --------------------------------------------------------------------------------------


def _mark(ok: bool) -> str:
    return "PASS" if ok else "MISS"


def _ended_as_expected(h: Hostile, r: dict[str, Any] | None) -> bool:
    if r is None:
        return False
    if h.expect == "new":
        return bool(r["outcome"] == "new")
    return h.expect in (r["error"] or "")


def report(
    args: argparse.Namespace,
    info: dict[str, Any],
    hostiles: list[Hostile],
    expected_items: dict[str, int],
    res: dict[str, Any],
    side_requests: list[str],
) -> str:
    lines: list[str] = []
    add = lines.append
    by_name = {r["feed"]: r for r in res["reports"]}
    store = res["store"]
    add("")
    add(
        f"hostile benchmark: {NORMAL_FEEDS} normal feeds ({info['source']}) + {len(hostiles)} "
        f"hostile feeds on 127.0.0.1; fetch deadline (poll.timeout) {args.timeout:g} s, parse "
        f"deadline {res['parse_deadline']:g} s, concurrency {args.concurrency}"
    )
    add(f"machine: {info['cpus']} CPUs, {info['model']}; load average {info['load']}")
    add("")
    add("started/ended: seconds from the start of the pass (a poll waits for one of the")
    add("poll.concurrency slots before its own deadline starts)")
    add("")
    add("| feed | HAZARDS | what | outcome | error / items | started | ended | as expected |")
    add("|---|---|---|---|---|---:|---:|---|")
    for h in hostiles:
        r = by_name.get(h.name)
        if r is None:
            add(f"| {h.name} | {h.hazard} | {h.what} | (no report: crash) | | | | no |")
            continue
        if r["outcome"] == "error":
            detail = str(r["error"]).replace("|", "\\|")
        else:
            s = store.get(h.name, {})
            detail = f"{r['items']} items, {r['new']} new, {r['alerts']} alerts"
            if s.get("max_title", 0) and s["max_title"] > 200:
                detail += f", longest title {s['max_title']} chars"
            if s.get("bad_links") or "10" in h.hazard.split("-"):
                detail += f", {s.get('bad_links') or 0} non-http links kept"
            if s.get("expanded") or h.hazard == "1":
                detail += f", {s.get('expanded') or 0} titles with expanded entities or files"
        expect = "yes" if _ended_as_expected(h, r) else f"no (expected {h.expect or 'any'})"
        if h.expect == "":
            expect = "(any bounded end)"
        add(
            f"| {h.name} | {h.hazard} | {h.what.replace('|', '/')} | {r['outcome']} | {detail} "
            f"| {r['end'] - r['elapsed']:.1f} | {r['end']:.1f} | {expect} |"
        )
    normal = [by_name.get(f"n{i}") for i in range(NORMAL_FEEDS)]
    ok = [
        r
        for i, r in enumerate(normal)
        if r is not None and r["outcome"] == "new" and r["items"] == expected_items[f"n{i}"]
    ]
    slowest = max((r["end"] for r in normal if r is not None), default=0.0)
    items = sum(r["items"] for r in normal if r is not None)
    add("")
    add(
        f"normal feeds: {len(ok)}/{NORMAL_FEEDS} new with all their items ({items} of "
        f"{sum(expected_items.values())} items); the last normal feed ended at {slowest:.1f} s"
    )
    bad = [f"n{i}" for i, r in enumerate(normal) if r is None or r not in ok]
    if bad:
        add(f"normal feeds not as expected: {', '.join(bad[:10])}")
        for name in bad[:5]:
            add(f"  {name}: {by_name.get(name)}")
    add(
        "requests for the DTD / remote entities on the hostile server: "
        f"{len(side_requests)} {side_requests[:3] if side_requests else ''}"
    )
    add("")
    wall, rss = res["wall"], res["rss_mb"]
    wk = res["worker_rss_mb"]
    limit = args.timeout + TARGET_SLACK_S
    add(f"pass wall time: {wall:.2f} s; parse pool restarts: {res['restarts']}")
    for why in res["restart_reasons"]:
        add(f"  {why}")
    add(
        f"peak RSS: daemon {rss:.0f} MB (before the pass {res['rss_before_mb']:.0f} MB); "
        f"parse workers " + ", ".join(f"pid {p}: {mb:.0f} MB" for p, mb in wk.items())
    )
    longest = max(res["reports"], key=lambda r: r["elapsed"])
    waited = max(r["end"] - r["elapsed"] for r in res["reports"])
    add(
        f"longest single poll (from its concurrency slot to its report): {longest['elapsed']:.2f} s"
        f" ({longest['feed']}); longest wait for a slot: {waited:.2f} s"
    )
    add("")
    add("targets (measured in this run):")
    add(f"  wall <= fetch deadline + {TARGET_SLACK_S:g} s = {limit:g} s: {wall:.2f} s  "
        f"{_mark(wall <= limit)}")  # fmt: skip
    add(f"  daemon peak RSS < {TARGET_RSS_MB:g} MB: {rss:.0f} MB  {_mark(rss < TARGET_RSS_MB)}")
    add(
        f"  (each poll <= fetch deadline + {TARGET_SLACK_S:g} s: {longest['elapsed']:.2f} s  "
        f"{_mark(longest['elapsed'] <= limit)})"
    )
    wk_max = max(wk.values(), default=0.0)
    add(
        f"  each parse worker's peak RSS < {TARGET_RSS_MB:g} MB: {wk_max:.0f} MB  "
        f"{_mark(wk_max < TARGET_RSS_MB)}"
    )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    ap.add_argument("--timeout", type=float, default=10.0, help="poll.timeout, s (default 10)")
    ap.add_argument("--parse-deadline", type=float, help="ParsePool.deadline, s (default: its own)")
    ap.add_argument("--concurrency", type=int, default=32, help="poll.concurrency (default 32)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--deadline", type=float, default=300.0, help="seconds for the daemon run")
    args = ap.parse_args(argv)

    info = machine()
    info["source"] = corpus_source()
    now = time.time()
    expected_items = {
        f"n{i}": doc.count(b"<item>")
        for i, doc in enumerate(render_feeds(NORMAL_FEEDS, seed=args.seed, now=now))
    }
    side: list[str] = []
    server = HostileServer()
    server.httpd.socket.listen(256)  # many connections at once (the default backlog is 5)

    def record(req: Request) -> None:
        if req.path in ("/evil.dtd", "/rss.dtd") or req.path.endswith(".dtd"):
            side.append(req.path)

    server.on_request = record
    server.httpd.handle_error = lambda request, address: None  # type: ignore[method-assign]
    with server, NormalFeeds(NORMAL_FEEDS, seed=args.seed, now=now) as normal:
        hostiles = hostile_feeds(server, args.timeout)
        feeds = [(f"n{i}", normal.url(i)) for i in range(NORMAL_FEEDS)]
        feeds += [(h.name, server.url + h.path) for h in hostiles]
        info["load"] = " / ".join(f"{x:.2f}" for x in os.getloadavg()) + " (before the pass)"
        print("hostile.py: running the daemon's pass ...", file=sys.stderr, flush=True)
        res = run_child(
            _daemon_child,
            feeds,
            args.timeout,
            args.concurrency,
            args.parse_deadline,
            deadline=args.deadline,
        )
    print(report(args, info, hostiles, expected_items, res, side))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
