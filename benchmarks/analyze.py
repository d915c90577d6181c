"""CPU per feed item of what a parse worker does (monitor.analyze.analyze), in one process, no
server: K benchmark feeds (benchmarks/feedserver.py's documents, 30-40 real Arabic news items
each) and the watchlists of benchmarks/poll.py.

    .venv/bin/python benchmarks/analyze.py                      # K=100 feeds (~3,500 items)
    .venv/bin/python benchmarks/analyze.py --feeds 300 --repeat 5
    .venv/bin/python benchmarks/analyze.py --profile prof.out   # + cProfile, top 25 by tottime

Three stages, each the CPU time (time.process_time) of a pass over every feed divided by the
items, best of --repeat passes (the machine is shared: the minimum is the least disturbed):

1. feedparser alone: `feedparser.parse(stream, sanitize_html=False, resolve_relative_uris=False)`
   on the raw bytes (what parse_feed hands it, without our decoding and neutralizing);
2. `parse_feed`: decoding, neutralize, cut_entries, feedparser, html_to_text of every field;
3. `analyze`: parse_feed, then identity, story fingerprint, matching and the alert summary of
   every entry (items inside max_age and the story window: all of them here).

(3) - (1) was our share while parse_feed handed feedparser the whole document; since session 3
it hands it less (unused elements dropped, CDATA descriptions and content:encoded put past it,
see monitor/parse.py), so (2) can be below (1) and (3) - (2) is what we add after parsing. A
benchmark reports; it has no target and always exits 0.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import pstats
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import feedparser
import poll
from feedserver import render_feeds

from monitor.analyze import analyze
from monitor.config import loads
from monitor.match import compile_watchlists
from monitor.parse import parse_feed

CONTENT_TYPE = "application/rss+xml; charset=utf-8"
MAX_ITEMS = 500
MAX_AGE = 7 * 86400.0
WINDOW = 72 * 3600.0


def best_of(repeat: int, fn: Callable[[], object]) -> float:
    """The least CPU time of `repeat` calls of fn, in seconds."""
    times = []
    for _ in range(repeat):
        t = time.process_time()
        fn()
        times.append(time.process_time() - t)
    return min(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--feeds", type=int, default=100, help="feeds to render (default 100)")
    ap.add_argument("--repeat", type=int, default=3, help="passes per stage; the best is shown")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--profile", metavar="FILE", help="cProfile one analyze pass into FILE")
    args = ap.parse_args()

    now = time.time()
    feeds = render_feeds(args.feeds, seed=args.seed, now=now)
    urls = [f"http://127.0.0.1:1/feed/{i}.xml" for i in range(args.feeds)]
    with tempfile.TemporaryDirectory() as tmp:  # config_yaml names a database; none is opened
        cfg = loads(poll.config_yaml(urls, f"{tmp}/monitor.db", 32), env={})
    matcher = compile_watchlists(cfg.watchlists)
    specs = cfg.feeds

    def run_feedparser() -> None:
        for body in feeds:
            feedparser.parse(io.BytesIO(body), sanitize_html=False, resolve_relative_uris=False)

    def run_parse() -> None:
        for spec, body in zip(specs, feeds, strict=True):
            parse_feed(body, url=spec.url, content_type=CONTENT_TYPE, max_items=MAX_ITEMS)

    def run_analyze() -> int:
        n = 0
        for spec, body in zip(specs, feeds, strict=True):
            n += len(
                analyze(
                    body,
                    spec=spec,
                    content_type=CONTENT_TYPE,
                    max_items=MAX_ITEMS,
                    now=now,
                    matcher=matcher,
                    max_age=MAX_AGE,
                    window=WINDOW,
                )
            )
        return n

    items = run_analyze()  # warm: the word caches and compiled patterns, as in a worker
    kb = sum(map(len, feeds)) / len(feeds) / 1024
    print(f"{args.feeds} feeds, {items} items ({kb:.0f} KB a feed), best of {args.repeat}")
    stages = (("feedparser alone", run_feedparser), ("parse_feed", run_parse))
    results = {name: best_of(args.repeat, fn) for name, fn in stages}
    results["analyze"] = best_of(args.repeat, run_analyze)
    for name, secs in results.items():
        print(f"  {name:<17} {secs / items * 1000:7.3f} ms/item  ({secs:.2f} s CPU)")
    after = results["analyze"] - results["parse_feed"]
    print(f"  {'after parse (3-2)':<17} {after / items * 1000:7.3f} ms/item")

    if args.profile:
        cProfile.runctx("run_analyze()", globals(), {"run_analyze": run_analyze}, args.profile)
        pstats.Stats(args.profile).sort_stats("tottime").print_stats(25)


if __name__ == "__main__":
    main()
