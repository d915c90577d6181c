"""Benchmark of watchlist matching (monitor/match.py): items/s at 10, 1,000 and 10,000 terms.

    .venv/bin/python benchmarks/match.py [--items 1000] [--seed 3]

Items are real Arabic news items of 1-2 KB of text (title + summary + body) from the ANT corpus
sample (../shared/data/ant, see its README; when it is not there, items are built from the
sentences of tests/data/match_eval.tsv). Terms are what a desk writes: the 10-term watchlist is
hand-written (names, places, a phrase, a prefix term); the larger ones add single words and
two-word phrases drawn from the corpus vocabulary (so many of them really occur in the items and
the phrase checks run), about 2% prefix terms, and one regular expression.

Each item goes through Matcher.match as the pipeline calls it: boilerplate stripping,
normalization, tokenization and lookup for every field. One core; the best of 3 runs.
The acceptance criterion of issue 3: the 10,000-term rate is at least half the 10-term rate.
"""

from __future__ import annotations

import argparse
import gzip
import json
import random
import resource
import sys
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import itertools

from monitor.match import compile_watchlists
from monitor.models import TermSpec, WatchlistSpec
from monitor.text import words

ROOT = Path(__file__).resolve().parent.parent
ANT = ROOT.parent / "shared/data/ant/ant-2018-03-01_21.jsonl.gz"
EVAL = ROOT / "tests/data/match_eval.tsv"

DESK = (
    "موسكو",
    "الدولة الإسلامية",
    "علي",
    "روس*",
    "إيران",
    "حماس",
    "الأمم المتحدة",
    "ترامب",
    "لبنان",
    "NATO",
)


def ant_items(lo: int = 1000, hi: int = 2000) -> list[tuple[str, str, str]]:
    items = []
    with gzip.open(ANT, "rt", encoding="utf-8") as f:
        for line in f:
            it = json.loads(line)
            item = (it["title"], it["summary"], it["text"])
            if lo <= sum(len(x) for x in item) <= hi:
                items.append(item)
    return items


def eval_items(rng: random.Random) -> list[tuple[str, str, str]]:
    sentences = [
        line.split("\t")[4]
        for line in EVAL.read_text(encoding="utf-8").splitlines()
        if line and not line.startswith("#")
    ]
    items = []
    for _ in range(500):
        body = ""
        while len(body) < 1400:
            body += rng.choice(sentences) + ".\n"
        items.append((rng.choice(sentences), rng.choice(sentences), body))
    return items


ARABIC = "ابتثجحخدذرزسشصضطظعغفقكلمنهوي"


def make_terms(
    n: int, items: list[tuple[str, str, str]], rng: random.Random, dense: bool = False
) -> list[TermSpec]:
    """The 10 desk terms, then terms drawn from the items' own words.

    realistic (default): words and two-word phrases that occur in at most 3 items (names,
    places: what watchlists hold) and as many made-up names that occur nowhere; an item then
    matches a few watchlists, as on a desk.
    dense: words and phrases from the whole vocabulary below the 200 most frequent; an item then
    matches dozens of watchlists, and the cost of building that answer shows."""
    terms = [TermSpec(t) for t in DESK][:n]
    if n <= len(DESK):
        return terms
    df: Counter[str] = Counter()
    bigrams: Counter[str] = Counter()
    for item in items:
        ws = words(" ".join(item))
        df.update(set(ws))
        bigrams.update({f"{a} {b}" for a, b in itertools.pairwise(ws)})
    if dense:
        singles = [w for w, _ in df.most_common()[200:] if len(w) > 3]
        pairs = [p for p, _ in bigrams.most_common()[200:]]
    else:
        singles = sorted(w for w, c in df.items() if c <= 3 and len(w) > 3)
        pairs = sorted(p for p, c in bigrams.items() if c <= 3)
    seen = set(DESK)
    while len(terms) < n - 1:
        r = rng.random()
        if r < 0.02:
            text = rng.choice(singles)[:4] + "*"
        elif r < 0.25:
            text = rng.choice(singles)
        elif r < 0.5 or dense:
            text = rng.choice(pairs)
        else:
            text = "".join(rng.choice(ARABIC) for _ in range(rng.randint(4, 8)))
        if text not in seen:
            seen.add(text)
            terms.append(TermSpec(text))
    terms.append(TermSpec(" (موسكو|كييف|بكين) ", regex=True))
    return terms


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--items", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=3)
    args = ap.parse_args()
    rng = random.Random(args.seed)
    if ANT.exists():
        source = "ANT corpus sample"
        items = ant_items()
    else:
        print(f"{ANT} not found: items built from {EVAL.name} sentences")
        source = EVAL.name
        items = eval_items(rng)
    rng.shuffle(items)
    items = items[: args.items]
    all_items = ant_items(0, 1 << 30) if ANT.exists() else items
    size = sum(len(" ".join(i).encode()) for i in items) / len(items)
    print(f"{len(items)} items from the {source}, mean {size / 1024:.1f} KB (UTF-8)")
    # terms come from the items not benchmarked, as a desk's names come from earlier news
    corpus = [it for it in all_items if it not in set(items)] or items
    rates = {}
    for n in (10, 1_000, 10_000):
        rate, compile_s, per_item = _timed(n, items, corpus, args.seed, dense=False)
        rates[n] = rate
        print(
            f"{n:>6} terms: {rate:>8,.0f} items/s  (compile {compile_s:.2f} s, "
            f"{per_item:.2f} watchlists matched per item)"
        )
    rate, compile_s, per_item = _timed(10_000, items, corpus, args.seed, dense=True)
    print(
        f"{10_000:>6} dense: {rate:>8,.0f} items/s  (compile {compile_s:.2f} s, "
        f"{per_item:.2f} watchlists matched per item)"
    )
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    ratio = rates[10_000] / rates[10]
    print(
        f"10,000-term rate / 10-term rate = {ratio:.2f} (criterion: >= 0.5); peak RSS {rss:.0f} MB"
    )
    sys.exit(0 if ratio >= 0.5 else 1)


def _timed(
    n: int,
    items: list[tuple[str, str, str]],
    corpus: list[tuple[str, str, str]],
    seed: int,
    dense: bool,
) -> tuple[float, float, float]:
    terms = make_terms(n, corpus, random.Random(seed), dense)
    t0 = time.perf_counter()
    matcher = compile_watchlists(
        [WatchlistSpec(f"w{i}", any=tuple(terms[i : i + 10])) for i in range(0, len(terms), 10)]
    )
    compile_s = time.perf_counter() - t0
    best = 0.0
    matched = 0
    for _ in range(3):
        matched = 0
        t0 = time.perf_counter()
        for title, summary, content in items:
            matched += len(matcher.match(title, summary, content))
        best = max(best, len(items) / (time.perf_counter() - t0))
    return best, compile_s, matched / len(items)


if __name__ == "__main__":
    main()
