"""Benchmark of a poll pass (issue 2, "Must show" 3; issue 5, item 5): N local feeds of real Arabic
news items on 127.0.0.1, polled by the daemon and by a naive httpx + feedparser loop.

    .venv/bin/python benchmarks/poll.py                      # N=2,000 feeds (about 4 minutes)
    .venv/bin/python benchmarks/poll.py --feeds 200          # a quick run
    .venv/bin/python benchmarks/poll.py --profile prof.out   # + cProfile of our first pass

The feeds (benchmarks/feedserver.py) are pre-rendered RSS documents of 30-40 items each (title,
summary, the article's lead paragraphs in content:encoded; pubDates now) served with ETags by
asyncio server processes of their own. `--shape wordpress` (the default) marks items up as
WordPress full-content feeds do, the shape on which feedparser's defaults run at the issue's
reference rate (~600 items/s); `--shape plain` keeps bare paragraphs (see feedserver.py).
Every client runs in a fresh process of its own, so each one's CPU time and peak RSS are its
own, in this order:

1. server alone: a plain httpx GET loop over every feed (32 at once, no parsing), twice: the
   rate the server can deliver, so a reader knows the server is not the limit;
2. reference: the same loop with `feedparser.parse(response.content)` (feedparser's defaults,
   in the event loop's process, as a naive implementation would), then the conditional pass with
   If-None-Match (every answer a 304);
3. monitor: `Daemon(config, use_pool=True)` with a fresh SQLite store, 50 watchlist terms and
   `poll: {concurrency: 32}`; `await daemon.poll_all()` twice (fetch -> parse in the worker pool
   -> identity -> seen keys -> match -> ingest; then all 304). CPU seconds and peak RSS are given
   for the daemon process and, separately, for its parse workers (from /proc).

Targets: first pass at least 2x the reference's rate (issue 5: 3.5x), conditional pass at most
2.5 s, peak RSS at most 250 MB. A benchmark reports; it exits 0 either way and prints PASS or
MISS per target. The run is bounded: every pass has a timeout per request and the whole run stops
after --deadline seconds.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import multiprocessing
import os
import pstats
import shutil
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from feedserver import SHAPES, FeedServer, corpus_source

MB = 1024 * 1024
TARGET_RATIO = 2.0
TARGET_RATIO_ISSUE5 = 3.5
TARGET_CONDITIONAL_S = 2.5
TARGET_RSS_MB = 250.0

# What a desk watches: 50 terms in 10 watchlists (any/all/none, a prefix term, phrases).
WATCHLISTS_YAML = """
watchlists:
  - {name: moscow, any: [موسكو, الكرملين, بوتين, لافروف], notify: [screen]}
  - {name: islamic-state, any: [الدولة الإسلامية, داعش, تنظيم الدولة], notify: [screen]}
  - {name: russia-defence, any: [شويغو, وزير الدفاع الروسي, وزارة الدفاع الروسية],
     notify: [screen]}
  - {name: france-russia, all: [فرنسا, روس*], notify: [screen]}
  - {name: syria, any: [الغوطة, دمشق, حلب, إدلب, عفرين, الأسد, دير الزور, الرقة],
     none: [كرة القدم], notify: [screen]}
  - {name: gulf, any: [قطر, الكويت, البحرين, سلطنة عمان, الحوثي, صنعاء, عدن, مأرب],
     notify: [screen]}
  - {name: levant, any: [حزب الله, الحريري, بيروت, نتنياهو, غزة, القدس, الضفة الغربية, عمان],
     notify: [screen]}
  - {name: maghreb, any: [طرابلس, بنغازي, حفتر, تونس, الجزائر, الرباط, الخرطوم, نواكشوط],
     notify: [screen]}
  - {name: iraq, any: [بغداد, الموصل, كركوك, العبادي, الحشد الشعبي], notify: [screen]}
  - {name: un, any: [الأمم المتحدة, مجلس الأمن, غوتيريش], notify: [screen]}
"""


def config_yaml(urls: list[str], db: str, concurrency: int) -> str:
    feeds = "\n".join(f"  - {{url: '{u}', name: f{i}}}" for i, u in enumerate(urls))
    return (
        f"storage: sqlite:///{db}\n"
        f"poll: {{interval: 5m, timeout: 20s, jitter: 0, concurrency: {concurrency},"
        # every feed is on 127.0.0.1 here, standing for as many outlets: no per-host limit
        f" per_host: {concurrency}}}\n"
        "max_age: 7d\n"
        "destinations:\n  screen: {type: console}\n"
        f"feeds:\n{feeds}\n{WATCHLISTS_YAML}"
    )


# --- measuring a process -----------------------------------------------------------------------

_TICK = os.sysconf("SC_CLK_TCK")


def proc_cpu(pid: int) -> float:
    """User + system CPU seconds of a process, from /proc."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _TICK


def proc_hwm_mb(pid: int | str = "self") -> float:
    """Peak resident set size (VmHWM) of a process, in MiB."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return 0.0


def worker_pids(pool: object) -> list[int]:
    """The parse workers' pids: the daemon's pool is a ProcessPoolExecutor or wraps one."""
    executor = pool if isinstance(pool, ProcessPoolExecutor) else getattr(pool, "_pool", None)
    processes = getattr(executor, "_processes", None) or {}
    return [int(p) for p in processes]


def reset_hwm() -> None:
    with contextlib.suppress(OSError), open("/proc/self/clear_refs", "w") as f:
        f.write("5")


class PassResult(dict[str, Any]):
    pass


def _pass(wall: float, cpu: float, feeds: int, items: int, statuses: Counter[str]) -> PassResult:
    return PassResult(wall=wall, cpu=cpu, feeds=feeds, items=items, statuses=dict(statuses))


# --- the plain loops (server alone, and the reference) ------------------------------------------


async def plain_loop(urls: list[str], concurrency: int, parse: bool) -> list[PassResult]:
    import feedparser
    import httpx

    etags: dict[str, str] = {}
    sem = asyncio.Semaphore(concurrency)
    out: list[PassResult] = []
    async with httpx.AsyncClient(timeout=20.0) as client:
        for _ in range(2):
            statuses: Counter[str] = Counter()
            items = 0

            async def one(url: str, statuses: Counter[str] = statuses) -> None:
                nonlocal items
                headers = {"If-None-Match": etags[url]} if url in etags else {}
                async with sem:
                    try:
                        r = await client.get(url, headers=headers)
                    except httpx.HTTPError as e:
                        statuses[type(e).__name__] += 1
                        return
                    statuses[str(r.status_code)] += 1
                    if r.status_code == 200:
                        if "etag" in r.headers:
                            etags[url] = r.headers["etag"]
                        if parse:
                            items += len(feedparser.parse(r.content).entries)
                        else:
                            items += r.content.count(b"<item>")

            t0, c0 = time.perf_counter(), time.process_time()
            await asyncio.gather(*(one(u) for u in urls))
            wall, cpu = time.perf_counter() - t0, time.process_time() - c0
            out.append(_pass(wall, cpu, len(urls), items, statuses))
    return out


def _plain_child(conn: Connection, urls: list[str], concurrency: int, parse: bool) -> None:
    passes = asyncio.run(plain_loop(urls, concurrency, parse))
    conn.send({"passes": passes, "rss_mb": proc_hwm_mb()})


# --- the monitor ---------------------------------------------------------------------------------


async def monitor_passes(urls: list[str], concurrency: int, profile: str | None) -> dict[str, Any]:
    from monitor.config import loads
    from monitor.daemon import Daemon

    tmp = tempfile.mkdtemp(prefix="bench-poll-")
    t0 = time.perf_counter()
    config = loads(config_yaml(urls, f"{tmp}/bench.db", concurrency), env={})
    daemon = Daemon(config, use_pool=True)
    startup = time.perf_counter() - t0
    out: dict[str, Any] = {"startup": startup, "passes": [], "worker_cpu": [], "rss_mb": []}
    worker_cpu0: dict[int, float] = {}
    try:
        for n in range(2):
            reset_hwm()
            prof = cProfile.Profile() if profile else None
            t0, c0 = time.perf_counter(), time.process_time()
            if prof:
                prof.enable()
            reports = await daemon.poll_all()
            if prof:
                prof.disable()
            wall, cpu = time.perf_counter() - t0, time.process_time() - c0
            statuses = Counter(r.outcome for r in reports)
            errors = Counter(r.error for r in reports if r.error)
            items = sum(r.items for r in reports)
            res = _pass(wall, cpu, len(reports), items, statuses)
            res["new_items"] = sum(r.new_items for r in reports)
            res["alerts"] = sum(r.alerts for r in reports)
            res["errors"] = dict(errors.most_common(3))
            pids = worker_pids(daemon.pool)
            cpus = {p: proc_cpu(p) for p in pids}
            res["worker_cpu"] = sum(c - worker_cpu0.get(p, 0.0) for p, c in cpus.items())
            res["worker_rss_mb"] = [round(proc_hwm_mb(p), 1) for p in pids]
            worker_cpu0 = cpus
            res["rss_mb"] = proc_hwm_mb()
            out["passes"].append(res)
            if prof and profile:
                prof.dump_stats(profile if n == 0 else profile + ".304")
    finally:
        await daemon.close()
        out["db_mb"] = _dir_mb(tmp)
        shutil.rmtree(tmp, ignore_errors=True)
    return out


def _dir_mb(path: str) -> float:
    return sum(p.stat().st_size for p in Path(path).iterdir()) / MB


def _monitor_child(
    conn: Connection, urls: list[str], concurrency: int, profile: str | None
) -> None:
    conn.send(asyncio.run(monitor_passes(urls, concurrency, profile)))


# --- running -------------------------------------------------------------------------------------


def run_child(target: Callable[..., None], *args: Any, deadline: float) -> dict[str, Any]:
    ctx = multiprocessing.get_context("spawn")
    parent, child = ctx.Pipe(duplex=False)
    p = ctx.Process(target=target, args=(child, *args))
    p.start()
    child.close()
    if not parent.poll(deadline):
        p.kill()
        p.join()
        raise SystemExit(f"poll.py: a client run took longer than {deadline:.0f} s; stopped")
    result: dict[str, Any] = parent.recv()
    p.join(30)
    return result


def _fmt_statuses(s: dict[str, int]) -> str:
    return " ".join(f"{k}:{v}" for k, v in sorted(s.items()))


def report(args: argparse.Namespace, info: dict[str, Any], runs: dict[str, dict[str, Any]]) -> str:
    lines: list[str] = []
    add = lines.append
    add("")
    add(
        f"poll benchmark: {args.feeds} feeds on 127.0.0.1 ({info['mb']:.0f} MB, "
        f"{info['mb'] * 1024 / args.feeds:.0f} KB a feed, {info['source']}), concurrency "
        f"{args.concurrency}, {args.server_procs} server process(es), shape {args.shape}"
    )
    add(f"machine: {info['cpus']} CPUs, {info['model']}; load average {info['load']}")
    add("")
    head = (
        f"{'':<22}{'pass':<6}{'wall s':>8}{'feeds/s':>9}{'items/s':>9}"
        f"{'CPU s':>8}{'wk CPU s':>9}{'RSS MB':>8}{'wk RSS MB':>11}  answers"
    )
    add(head)
    add("-" * len(head))
    names = {"server": "server alone (GET)", "reference": "httpx+feedparser", "monitor": "monitor"}
    for key, run in runs.items():
        for n, ps in enumerate(run["passes"]):
            label = names[key] if n == 0 else ""
            wk = f"{ps['worker_cpu']:.1f}" if "worker_cpu" in ps else "-"
            rss = ps.get("rss_mb", run.get("rss_mb", 0.0))
            wrss = "/".join(f"{x:.0f}" for x in ps.get("worker_rss_mb", [])) or "-"
            items_s = ps["items"] / ps["wall"] if ps["items"] else 0.0
            add(
                f"{label:<22}{'1st' if n == 0 else '304':<6}{ps['wall']:>8.2f}"
                f"{ps['feeds'] / ps['wall']:>9.0f}{items_s:>9.0f}{ps['cpu']:>8.1f}{wk:>9}"
                f"{rss:>8.0f}{wrss:>11}  {_fmt_statuses(ps['statuses'])}"
            )
    mon = runs.get("monitor")
    ref = runs.get("reference")
    if mon:
        p1 = mon["passes"][0]
        add("")
        add(
            f"monitor: start-up {mon['startup']:.2f} s (config + watchlists + store + pool); "
            f"first pass {p1['items']} items, {p1['new_items']} new, {p1['alerts']} alerts; "
            f"store {mon['db_mb']:.0f} MB"
        )
        for ps in mon["passes"]:
            if ps["errors"]:
                add(f"monitor errors: {ps['errors']}")
    if mon and ref:
        r1, m1 = ref["passes"][0], mon["passes"][0]
        ratio = (m1["items"] / m1["wall"]) / (r1["items"] / r1["wall"]) if r1["items"] else 0.0
        cond = mon["passes"][1]["wall"]
        rss = max(ps["rss_mb"] for ps in mon["passes"])
        wk_rss = max((x for ps in mon["passes"] for x in ps["worker_rss_mb"]), default=0.0)

        def mark(ok: bool) -> str:
            return "PASS" if ok else "MISS"

        add("")
        add("targets (measured in this run):")
        add(
            f"  first pass vs reference (items/s): {ratio:.2f}x   "
            f"{mark(ratio >= TARGET_RATIO)} >= {TARGET_RATIO:g}x (issue 2), "
            f"{mark(ratio >= TARGET_RATIO_ISSUE5)} >= {TARGET_RATIO_ISSUE5:g}x (issue 5)"
        )
        add(
            f"  conditional pass: {cond:.2f} s (reference {ref['passes'][1]['wall']:.2f} s)   "
            f"{mark(cond <= TARGET_CONDITIONAL_S)} <= {TARGET_CONDITIONAL_S:g} s"
        )
        add(
            f"  peak RSS, daemon process: {rss:.0f} MB   {mark(rss <= TARGET_RSS_MB)} "
            f"<= {TARGET_RSS_MB:g} MB   (each parse worker: {wk_rss:.0f} MB peak, "
            f"{mark(wk_rss <= TARGET_RSS_MB)})"
        )
    return "\n".join(lines)


def machine() -> dict[str, Any]:
    model = "unknown CPU"
    with contextlib.suppress(OSError), open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return {"cpus": os.cpu_count(), "model": model}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    ap.add_argument("--feeds", type=int, default=2000, help="number of feeds (default 2000)")
    ap.add_argument("--concurrency", type=int, default=32, help="fetches at once (default 32)")
    ap.add_argument("--server-procs", type=int, default=1, help="feed server processes")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument(
        "--shape", default="wordpress", choices=SHAPES, help="item markup (feedserver.py)"
    )
    ap.add_argument("--skip", action="append", default=[], choices=["server", "reference"])
    ap.add_argument("--profile", metavar="FILE", help="cProfile our passes into FILE and FILE.304")
    ap.add_argument("--deadline", type=float, default=900.0, help="seconds per client run")
    args = ap.parse_args(argv)

    info = machine()
    info["source"] = corpus_source()
    if info["source"] != "ANT corpus sample":
        print("poll.py: ../shared/data/ant is absent; using generated Arabic text instead")
    now = time.time()
    runs: dict[str, dict[str, Any]] = {}
    loads: list[str] = []
    with FeedServer(
        args.feeds, seed=args.seed, now=now, procs=args.server_procs, shape=args.shape
    ) as srv:
        info["mb"] = srv.bytes_total / MB
        urls = [srv.url(i) for i in range(args.feeds)]
        plan: list[tuple[str, Callable[..., None], tuple[Any, ...]]] = [
            ("server", _plain_child, (urls, args.concurrency, False)),
            ("reference", _plain_child, (urls, args.concurrency, True)),
            ("monitor", _monitor_child, (urls, args.concurrency, args.profile)),
        ]
        for key, target, targs in plan:
            if key in args.skip:
                continue
            loads.append(f"{os.getloadavg()[0]:.2f}")
            print(f"poll.py: running {key} ...", file=sys.stderr, flush=True)
            runs[key] = run_child(target, *targs, deadline=args.deadline)
    info["load"] = " / ".join(loads) + " (1-min, at the start of each client run)"
    print(report(args, info, runs))
    if args.profile and "monitor" in runs:
        print(f"\ncProfile of the first pass (daemon process only) in {args.profile}; top 25:")
        stats = pstats.Stats(args.profile)
        stats.sort_stats("cumulative").print_stats(25)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
