"""Why the same-outlet gate of issue 4 is not met: can one more text feature tell the missed copies
from follow-ups? (docs/dedup.md, "Same-outlet rewrites")

    .venv/bin/python benchmarks/dedup_features.py

Reads tests/data/dedup_pairs.jsonl (real ANT pairs labelled by reading), indexes each pair's
earlier item and looks up the later one as tests/test_dedup_eval.py does, then, for every
same-outlet pair the index offers as a candidate (at least `MIN_SHARED` sampled shingles in
common), computes features of the later item B against the earlier item A on the module's own
words (content words by consonant skeleton without clitics, as the frame guard compares them):

- containment and lead: the module's own figures (`StoryIndex._judge`): shared sampled
  shingles over the smaller item's, and the share of B's lead (title + 40 words) in A's head;
- lead_in_text: B's lead found anywhere in A (title + whole body): does the new lead bring words
  A never had, i.e. a new fact?
- opening: A's first sentence found in B's first sentence: does B still open with A's news?
- opening_chars: cosine of the character 4-grams of the two first sentences' content words
  (sees أحبطت / إحباط and other inflections of one root as close, which word hashes do not);
- title: title overlap, shared / the shorter title;
- recency: minus the hours between the two items (closer scores higher).

For each feature it prints the values of the copies the module misses, how many `different`
candidates score at least as high as each (a rule that joins the miss joins those too), and the
best F1 of "the module joins, or the pair is a candidate and feature >= t" over every t. A
feature that separates rewrites from follow-ups would put the misses above the different pairs.
Then it learns one score from all the features at once (an L2-regularised logistic regression
on the candidates, fitted by Newton's method): the best F1 of "the module joins, or the score
reaches t" fitted and scored on every pair (an upper bound), and the same chosen without the
pair being decided (leave one out: what it would do on a new pair).
`--follows` prints instead what `StoryIndex.lookup` links as a follow-up (a new story that
shares text with an earlier one under a new lead): counts per pair kind and label, then every
linked pair's two titles, to be read (docs/dedup.md, "Follow-ups").

Prints; asserts nothing; needs no network.
"""

from __future__ import annotations

import json
import math
import re
import sys
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from monitor.dedup import (
    _STOP,
    LEAD_WORDS,
    MIN_SHARED,
    Fingerprint,
    StoryIndex,
    _is_name_like,
    _slot_hash,
    fingerprint,
)
from monitor.text import strip_boilerplate, words

DATA = Path(__file__).resolve().parent.parent / "tests" / "data" / "dedup_pairs.jsonl"
_SENTENCE_END = re.compile(r"[.!?؟\n]")


@dataclass(frozen=True)
class Pair:
    id: str
    same: bool
    joined: bool
    candidate: bool
    features: dict[str, float]


def _at(item: dict[str, Any]) -> float:
    return datetime.fromisoformat(item["published"]).timestamp()


def _content(ws: list[str]) -> set[int]:
    return {_slot_hash(w) for w in ws if _is_name_like(w)}


def _share(part: set[int], whole: set[int]) -> float:
    return len(part & whole) / len(part) if part else 0.0


def _body_words(item: dict[str, Any]) -> list[str]:
    return words(strip_boilerplate(item["body"]).text)


def _opening(item: dict[str, Any]) -> list[str]:
    text = strip_boilerplate(item["body"]).text.strip()
    return words(_SENTENCE_END.split(text, maxsplit=1)[0])


def _char_grams(ws: list[str], n: int = 4) -> Counter[str]:
    grams: Counter[str] = Counter()
    for w in ws:
        if w in _STOP or len(w) < 3:
            continue
        padded = f" {w} "
        grams.update(padded[i : i + n] for i in range(len(padded) - n + 1))
    return grams


def _cosine(x: Counter[str], y: Counter[str]) -> float:
    dot = sum(v * y[k] for k, v in x.items())
    norm = math.sqrt(sum(v * v for v in x.values()) * sum(v * v for v in y.values()))
    return dot / norm if norm else 0.0


def features(a: dict[str, Any], b: dict[str, Any]) -> dict[str, float]:
    title_a, title_b = words(a["title"]), words(b["title"])
    body_a, body_b = _body_words(a), _body_words(b)
    lead_b = _content(title_b + body_b[:LEAD_WORDS])
    ta, tb = _content(title_a), _content(title_b)
    return {
        "lead_in_text": _share(lead_b, _content(title_a + body_a)),
        "opening": _share(_content(_opening(a)), _content(_opening(b))),
        "opening_chars": _cosine(_char_grams(_opening(a)), _char_grams(_opening(b))),
        "title": len(ta & tb) / max(1, min(len(ta), len(tb))),
        "recency": -(_at(b) - _at(a)) / 3600,
    }


def _labelled() -> Iterator[dict[str, Any]]:
    for line in DATA.read_text(encoding="utf-8").splitlines():
        yield json.loads(line)


def _indexed(p: dict[str, Any], **thresholds: float) -> tuple[StoryIndex, Fingerprint]:
    """An index holding the pair's earlier item, and the later item's fingerprint."""
    a, b = p["a"], p["b"]
    index = StoryIndex(**thresholds)
    index.add("a", "story-a", fingerprint(a["title"], a["body"], outlet=a["outlet"], at=_at(a)))
    return index, fingerprint(b["title"], b["body"], outlet=b["outlet"], at=_at(b))


def pairs() -> list[Pair]:
    out = []
    for p in _labelled():
        if p["pair"] != "same_outlet" or p["label"] == "same_event":
            continue
        index, probe = _indexed(p)
        joined = index.find(probe, _at(p["b"])) is not None
        # The module's containment and lead, judged with no containment threshold: the module
        # stops before the lead check below its threshold, and the lead is wanted here anyway.
        loose, _ = _indexed(p, same_outlet_threshold=1e-9)
        counts, ignored = loose._counts(probe)
        shared = max(counts.values(), default=0)
        feats = features(p["a"], p["b"])
        feats["containment"] = feats["lead"] = 0.0
        if shared:
            entry = loose._entries[next(iter(counts))]
            _, feats["containment"], feats["lead"], _ = loose._judge(
                probe, entry, shared, len(probe.shingles) - ignored
            )
        out.append(Pair(p["id"], p["label"] == "same", joined, shared >= MIN_SHARED, feats))
    return out


def f1(ps: list[Pair], join: Callable[..., bool]) -> float:
    tp = sum(1 for p in ps if p.same and join(p))
    fp = sum(1 for p in ps if not p.same and join(p))
    fn = sum(1 for p in ps if p.same and not join(p))
    return 2 * tp / (2 * tp + fp + fn) if tp else 0.0


def relaxed_f1(ps: list[Pair], rule: dict[str, float]) -> float:
    """F1 when a pair joins if the module joins it, or it is a candidate and every
    feature of `rule` reaches its threshold."""

    def join(p: Pair) -> bool:
        return p.joined or (p.candidate and all(p.features[k] >= t for k, t in rule.items()))

    return f1(ps, join)


def _solve(m: list[list[float]], v: list[float]) -> list[float]:
    """m x = v by Gaussian elimination with partial pivoting (m is small and regularised)."""
    n = len(v)
    rows = [[*row, v[i]] for i, row in enumerate(m)]
    for c in range(n):
        pivot = max(range(c, n), key=lambda r: abs(rows[r][c]))
        rows[c], rows[pivot] = rows[pivot], rows[c]
        for r in range(c + 1, n):
            k = rows[r][c] / rows[c][c]
            rows[r] = [x - k * y for x, y in zip(rows[r], rows[c], strict=True)]
    out = [0.0] * n
    for c in reversed(range(n)):
        out[c] = (rows[c][n] - sum(rows[c][j] * out[j] for j in range(c + 1, n))) / rows[c][c]
    return out


def _logistic(xs: list[list[float]], ys: list[bool], l2: float = 1.0) -> list[float]:
    """Weights (bias first) of an L2-regularised logistic regression, by Newton's method."""
    d = len(xs[0]) + 1
    w = [0.0] * d
    rows = [[1.0, *x] for x in xs]
    for _ in range(25):
        grad = [l2 * wi if i else 0.0 for i, wi in enumerate(w)]
        hess = [[(l2 if i == j and i else 0.0) for j in range(d)] for i in range(d)]
        for r, y in zip(rows, ys, strict=True):
            z = max(-30.0, min(30.0, sum(wi * ri for wi, ri in zip(w, r, strict=True))))
            p = 1 / (1 + math.exp(-z))
            g, h = p - float(y), p * (1 - p)
            for i in range(d):
                grad[i] += g * r[i]
                for j in range(d):
                    hess[i][j] += h * r[i] * r[j]
        step = _solve(hess, grad)
        w = [wi - si for wi, si in zip(w, step, strict=True)]
        if max(map(abs, step)) < 1e-8:
            break
    return w


def learned(ps: list[Pair], names: tuple[str, ...]) -> None:
    """One score from every feature for the candidates the module leaves apart: the best F1 of
    "joined, or score >= cut" fitted on every pair, and leave one out."""
    # The question left: among the candidates the module does not join, which are copies?
    cands = [p for p in ps if p.candidate and not p.joined]
    cols = [[p.features[n] for p in cands] for n in names]
    mean = [sum(c) / len(c) for c in cols]
    sd = [
        math.sqrt(sum((v - m) ** 2 for v in c) / len(c)) or 1.0
        for c, m in zip(cols, mean, strict=True)
    ]
    xs = [[(p.features[n] - m) / s for n, m, s in zip(names, mean, sd, strict=True)] for p in cands]

    def scores(train: list[int]) -> list[float]:
        w = _logistic([xs[i] for i in train], [cands[i].same for i in train])
        return [w[0] + sum(wi * xi for wi, xi in zip(w[1:], x, strict=True)) for x in xs]

    def f1_with(pool: list[Pair], chosen: set[str]) -> float:
        """F1 on `pool` when the pairs in `chosen` join as well as those the module joins."""
        return f1(pool, lambda p: p.joined or p.id in chosen)

    def at_or_above(sc: list[float], keep: list[int], t: float) -> set[str]:
        return {cands[i].id for i in keep if sc[i] >= t}

    def best_cut(sc: list[float], keep: list[int]) -> float:
        """The cut with the best F1 on every pair but the residual candidates outside `keep`;
        the highest such cut, and infinity when no cut beats the module alone."""
        left_out = {cands[i].id for i in set(range(len(cands))) - set(keep)}
        pool = [p for p in ps if p.id not in left_out]
        best, cut = f1_with(pool, set()), math.inf
        for t in sorted({sc[i] for i in keep}, reverse=True):
            score = f1_with(pool, at_or_above(sc, keep, t))
            if score > best:
                best, cut = score, t
        return cut

    everyone = list(range(len(cands)))
    sc = scores(everyone)
    fit = f1_with(ps, at_or_above(sc, everyone, best_cut(sc, everyone)))
    misses = [i for i in everyone if cands[i].same]
    ranks = []
    for i in misses:
        above = sum(1 for j in everyone if not cands[j].same and sc[j] >= sc[i])
        ranks.append(f"{cands[i].id}: {above} different at or above")
    print(f"\nlearned score of all {len(names)} features, fitted on every pair: F1 {fit:.3f}")
    print("              " + "\n              ".join(ranks))
    joined = set()
    for i in everyone:
        rest = [j for j in everyone if j != i]
        sc = scores(rest)
        if sc[i] >= best_cut(sc, rest):
            joined.add(cands[i].id)
    loo = f1_with(ps, joined)
    gained = sorted(p.id for p in ps if p.same and not p.joined and p.id in joined)
    added = sorted(p.id for p in ps if not p.same and not p.joined and p.id in joined)
    print(
        f"the same, leave one out (each pair decided by a score and cut fitted without it): "
        f"F1 {loo:.3f}; gains {', '.join(gained) or 'none'}; "
        f"adds false joins {', '.join(added) or 'none'}"
    )


def follows() -> int:
    counts: Counter[tuple[str, str, str]] = Counter()
    linked = []
    for p in _labelled():
        index, probe = _indexed(p)
        found = index.lookup(probe, _at(p["b"]))
        verdict = "joins" if found.joins else "follows" if found.follows else "neither"
        counts[(p["pair"], p["label"], verdict)] += 1
        if found.follows:
            titles = f"{p['a']['title']} -> {p['b']['title']}"
            linked.append(f"{p['id']} {p['pair']} {p['label']}: {titles}")
    for (kind, label, verdict), n in sorted(counts.items()):
        print(f"{kind:>12} {label:>10} {verdict:>8}: {n}")
    print("\nlinked as follow-ups (earlier title -> later title):")
    print("\n".join(linked))
    return 0


def main() -> int:
    if "--follows" in sys.argv[1:]:
        return follows()
    ps = pairs()
    base = f1(ps, lambda p: p.joined)
    misses = [p for p in ps if p.same and not p.joined]
    others = [p for p in ps if not p.same and p.candidate and not p.joined]
    n_same = sum(p.same for p in ps)
    print(
        f"{len(ps)} same-outlet pairs ({n_same} same), {sum(p.candidate for p in ps)} candidates; "
        f"the module finds {sum(p.same and p.joined for p in ps)} copies, "
        f"{sum(not p.same and p.joined for p in ps)} false join, F1 {base:.3f}"
    )
    missed = [f"{p.id}{'' if p.candidate else ' (no candidate)'}" for p in misses]
    print("missed: " + ", ".join(missed))
    print(f"different candidates the module does not join: {len(others)}\n")
    names = ("containment", "lead", "lead_in_text", "opening", "opening_chars", "title", "recency")
    for name in names:
        cells = []
        for m in misses:
            v = m.features[name]
            if not m.candidate:
                cells.append(f"{m.id} {v:.2f} (not a candidate: no rule on candidates joins it)")
                continue
            above = sum(1 for o in others if o.features[name] >= v)
            cells.append(f"{m.id} {v:.2f} ({above} different at or above)")
        best, best_t = base, None
        for t in sorted({p.features[name] for p in ps if p.candidate}):
            score = relaxed_f1(ps, {name: t})
            if score > best:
                best, best_t = score, t
        gain = f"best F1 {best:.3f} at >= {best_t:.2f}" if best_t is not None else "no gain"
        print(f"{name:>12}: {gain}\n              " + "\n              ".join(cells))
    # Two features at once, each threshold at a value some same pair has (tuned on every pair:
    # an upper bound of what such a rule could do on new data).
    best2, rule = base, "none"
    same_cands = [p for p in ps if p.same and p.candidate]
    for i, x in enumerate(names):
        for y in names[i + 1 :]:
            for tx in {p.features[x] for p in same_cands}:
                for ty in {p.features[y] for p in same_cands}:
                    score = relaxed_f1(ps, {x: tx, y: ty})
                    if score > best2:
                        best2, rule = score, f"{x} >= {tx:.2f} and {y} >= {ty:.2f}"
    print(f"\nbest two-feature rule, tuned on all {len(ps)} pairs: F1 {best2:.3f} ({rule})")
    learned(ps, names)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
