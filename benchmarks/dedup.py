"""Benchmark of near-duplicate story detection (monitor/dedup.py): speed and memory.

    .venv/bin/python benchmarks/dedup.py [--items 100000] [--dup-share 0.3] [--seed 4]

A stream of Arabic items built from the real ANT corpus sample (../shared/data/ant, see its
README; skipped with a message when it is not there), all inside one 72 h window:

- a fresh story is a real item whose every third word is swapped for a random corpus word, so
  that its shingles are its own (3,280 real texts cannot make 100k different stories);
- a duplicate (share --dup-share) is an earlier emitted story as an aggregator or another
  outlet would carry it: a rewritten title, one paragraph dropped, and boilerplate added (a tag
  list, an "إقرأ أيضاً" section carrying another story's first paragraph, a related list).

Reports which path runs (the C accelerator monitor/_fastprint.c, or pure Python where it was
not built), items/s of fingerprint + find + add on one core, per second of the process's CPU time
and of wall time, with the load average before and after (on a shared machine wall time
measures the neighbours too), the index's memory (tracemalloc of the index alone, filled with
the same stream) and the process's peak RSS, and how many duplicates were joined to their story
and how many fresh stories were wrongly joined.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import random
import resource
import sys
import time
import tracemalloc
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from monitor.dedup import ACCELERATED, Fingerprint, StoryIndex, fingerprint

ANT = Path(__file__).resolve().parent.parent.parent / "shared/data/ant/ant-2018-03-01_21.jsonl.gz"
OUTLETS = ("alarabia", "skynews", "france24", "CNN", "BBC", "aggregator")


def load(path: Path) -> list[dict[str, str]]:
    with gzip.open(path, "rt", encoding="utf-8") as f:
        return [json.loads(line) for line in f]


def stream(
    rows: list[dict[str, str]], n: int, dup_share: float, rng: random.Random
) -> list[tuple[str, str, str, str, float, str | None]]:
    """(item_id, outlet, title, body, at, story_of_original or None) in publication order."""
    vocab = sorted({w for r in rows[:500] for w in r["text"].split() if len(w) > 3})
    span = 72 * 3600 * 0.98
    out: list[tuple[str, str, str, str, float, str | None]] = []
    fresh: list[int] = []
    for i in range(n):
        at = 1_520_000_000 + span * i / n
        if fresh and rng.random() < dup_share:
            j = rng.choice(fresh[-5000:])
            _, _, title, body, _, _ = out[j]
            paras = [p for p in body.split("\n") if p.strip()]
            if len(paras) > 2:
                del paras[rng.randrange(1, len(paras))]
            other = rng.choice(rows)
            tags = " ".join(rng.sample(vocab, 12))
            related = "\n".join(f"  • {rng.choice(rows)['title']}" for _ in range(5))
            body = "\n\n".join(
                [*paras, f"كلمات دلالية: {tags}", "إقرأ أيضاً:", other["text"].split("\n")[0]]
            )
            body += f"\n\nمقالات مشابهة\n\n{related}"
            words = title.split()
            title = " ".join(words[len(words) // 2 :] + words[: len(words) // 2])
            out.append((f"i{i}", rng.choice(OUTLETS), title, body, at, f"i{j}"))
        else:
            base = rng.choice(rows)
            swapped = [
                rng.choice(vocab) if k % 3 == 2 else w
                for k, w in enumerate(base["text"].replace("\n", " \n ").split(" "))
            ]
            body = " ".join(swapped).replace(" \n ", "\n")
            out.append((f"i{i}", rng.choice(OUTLETS), base["title"], body, at, None))
            fresh.append(i)
    return out


def run(items: int, dup_share: float, seed: int) -> int:
    if not ANT.exists():
        print(f"skipped: {ANT} is not there (the ANT corpus sample is needed for real text)")
        return 0
    rng = random.Random(seed)
    rows = load(ANT)
    data = stream(rows, items, dup_share, rng)
    n_dup = sum(1 for d in data if d[5] is not None)
    print(f"stream: {len(data)} items, {n_dup} duplicates ({n_dup / len(data):.0%}), 72 h")
    path = "C accelerator (monitor._fastprint)" if ACCELERATED else "pure Python (not built)"
    print(f"path: {path}")

    index = StoryIndex()
    story: dict[str, str] = {}
    joined_right = joined_wrong = fresh_joined = 0
    fps: list[Fingerprint] = []
    load_before = os.getloadavg()[0]
    t0, c0 = time.perf_counter(), time.process_time()
    for item_id, outlet, title, body, at, original in data:
        fp = fingerprint(title, body, outlet=outlet, at=at)
        fps.append(fp)
        d = index.find(fp, at)
        sid = d.story_id if d else item_id
        story[item_id] = sid
        index.add(item_id, sid, fp)
        if original is None:
            fresh_joined += d is not None
        elif d is not None and sid == story[original]:
            joined_right += 1
        elif d is not None:
            joined_wrong += 1
    elapsed, cpu = time.perf_counter() - t0, time.process_time() - c0
    print(
        f"speed: {len(data) / cpu:,.0f} items/s of CPU time, {len(data) / elapsed:,.0f} items/s "
        f"wall (fingerprint + find + add, one core: {cpu:.1f} s CPU, {elapsed:.1f} s wall; "
        f"load average {load_before:.2f} before, {os.getloadavg()[0]:.2f} after)"
    )
    print(
        f"decisions: {joined_right}/{n_dup} duplicates joined their story, "
        f"{joined_wrong} joined another story, "
        f"{fresh_joined}/{len(data) - n_dup} fresh stories wrongly joined"
    )
    sample = data[:20000]
    c1 = time.process_time()
    for _, outlet, title, body, at, _ in sample:
        fingerprint(title, body, outlet=outlet, at=at)
    fp_rate = len(sample) / (time.process_time() - c1)
    print(f"  of which fingerprint alone: {fp_rate:,.0f} items/s of CPU time")

    del index
    tracemalloc.start()
    base = tracemalloc.get_traced_memory()[0]
    mem_index = StoryIndex()
    for (item_id, *_), fp in zip(data, fps, strict=True):
        mem_index.add(item_id, story[item_id], fp)
    now = tracemalloc.get_traced_memory()[0] - base
    tracemalloc.stop()
    print(
        f"memory: index with {len(mem_index)} items in the window: {now / 2**20:.1f} MB "
        f"(tracemalloc; postings {mem_index.postings * 8 / 2**20:.1f} MB), "
        f"process peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB"
    )
    blob = sum(len(fp.to_bytes()) for fp in fps[:10000]) / 10000
    print(f"store: {blob:.0f} bytes per fingerprint blob (mean)")
    return 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--items", type=int, default=100_000)
    ap.add_argument("--dup-share", type=float, default=0.3)
    ap.add_argument("--seed", type=int, default=4)
    a = ap.parse_args()
    return run(a.items, a.dup_share, a.seed)


if __name__ == "__main__":
    raise SystemExit(main())
