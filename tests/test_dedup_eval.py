"""Evaluation of the story decision on real labelled pairs (tests/data/dedup_pairs.jsonl).

Each pair is two real items of the ANT corpus sample (see tests/data/README.md), labelled by
reading them: `same` (one report of one event: a copy, a wire rewrite, an update of the same
lead), `different` (another event, a follow-up with a new lead, a same-template story with
other facts), or `same_event` (the same event written independently by another newsroom).
The earlier item is indexed, the later one is looked up, with their real publication times.

Precision, recall and F1 are printed for same-outlet and cross-outlet pairs (run with -s to see
them). `same_event` pairs are outside what text near-duplicate detection can do (they share no
text); their recall is printed, not gated.
"""

from __future__ import annotations

import json
import zlib
from collections import Counter
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from monitor.dedup import StoryIndex, fingerprint

DATA = Path(__file__).resolve().parent / "data" / "dedup_pairs.jsonl"
GATE = 0.93


def _at(item: dict[str, Any]) -> float:
    return datetime.fromisoformat(item["published"]).timestamp()


@dataclass(frozen=True)
class Score:
    tp: int
    fp: int
    fn: int
    events_found: int
    events: int

    @property
    def precision(self) -> float:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else 1.0

    @property
    def recall(self) -> float:
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else 1.0

    @property
    def f1(self) -> float:
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p + r else 0.0


def _decisions() -> list[tuple[str, str, str, bool]]:
    """(id, pair kind, label, joined) for every pair: the earlier item indexed, the later found."""
    out = []
    for line in DATA.read_text(encoding="utf-8").splitlines():
        pair = json.loads(line)
        a, b = pair["a"], pair["b"]
        index = StoryIndex()
        index.add("a", "story-a", fingerprint(a["title"], a["body"], outlet=a["outlet"], at=_at(a)))
        probe = fingerprint(b["title"], b["body"], outlet=b["outlet"], at=_at(b))
        joined = index.find(probe, _at(b)) is not None
        out.append((pair["id"], pair["pair"], pair["label"], joined))
    return out


def _score(decisions: list[tuple[str, str, str, bool]]) -> dict[str, Score]:
    counts = Counter((kind, label, joined) for _, kind, label, joined in decisions)
    return {
        kind: Score(
            tp=counts[(kind, "same", True)],
            fp=counts[(kind, "different", True)],
            fn=counts[(kind, "same", False)],
            events_found=counts[(kind, "same_event", True)],
            events=counts[(kind, "same_event", True)] + counts[(kind, "same_event", False)],
        )
        for kind in ("same_outlet", "cross_outlet")
    }


def _half(pair_id: str) -> int:
    """A fixed split of the pairs in two halves (a hash of the id), to check that thresholds
    chosen on one half hold on the other (docs/dedup.md)."""
    return zlib.crc32(pair_id.encode()) % 2


@pytest.fixture(scope="module")
def scores() -> dict[str, Score]:
    decisions = _decisions()
    result = _score(decisions)
    for kind, s in result.items():
        print(
            f"\n{kind}: precision {s.precision:.3f} recall {s.recall:.3f} F1 {s.f1:.3f} "
            f"(tp {s.tp}, fp {s.fp}, fn {s.fn}); "
            f"same event, independent text: {s.events_found}/{s.events} joined"
        )
        for half in (0, 1):
            h = _score([d for d in decisions if _half(d[0]) == half])[kind]
            print(f"  half {half}: F1 {h.f1:.3f} (tp {h.tp}, fp {h.fp}, fn {h.fn})")
    return result


def test_pair_file_has_enough_labelled_pairs_of_both_kinds() -> None:
    labels = Counter(
        (p["pair"], p["label"])
        for p in map(json.loads, DATA.read_text(encoding="utf-8").splitlines())
    )
    assert sum(n for (_, lab), n in labels.items() if lab != "same_event") >= 200
    for kind in ("same_outlet", "cross_outlet"):
        assert labels[(kind, "same")] >= 10
        assert labels[(kind, "different")] >= 30  # hard negatives: same topic, other event


def test_cross_outlet_f1(scores: dict[str, Score]) -> None:
    assert scores["cross_outlet"].f1 >= GATE


@pytest.mark.xfail(
    strict=True,
    reason="measured F1 0.857 (15 of 19 same-outlet copies found, 1 false join): the 4 missed "
    "are the same newsroom rewriting its own story (a new first sentence, or a flash expanded "
    "later), which shares too little text; time, rare names, title similarity, inflected "
    "openings and a learned score of all of them do not tell them from follow-ups (best rule "
    "tuned on all pairs: 0.889; learned, leave one out: 0.833): benchmarks/dedup_features.py "
    "and docs/dedup.md, 'Same-outlet rewrites'",
)
def test_same_outlet_f1(scores: dict[str, Score]) -> None:
    assert scores["same_outlet"].f1 >= GATE


def test_same_outlet_precision(scores: dict[str, Score]) -> None:
    # Within one outlet a false join hides a new development: precision is what must hold.
    assert scores["same_outlet"].precision >= GATE
