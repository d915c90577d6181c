"""Scores the matcher on the labelled evaluation set tests/data/match_eval.tsv (written for this
project: every trap of issue 3, Latin-script terms, mixed text). Prints precision and recall per
category (`pytest -s tests/test_match_eval.py`) and fails below 0.99 on either."""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import pytest

from monitor.match import compile_watchlists, term_problems
from monitor.models import TermSpec, WatchlistSpec

EVAL = Path(__file__).parent / "data" / "match_eval.tsv"
FLOOR = 0.99


@dataclass(frozen=True)
class Row:
    line: int
    category: str
    term: TermSpec
    label: bool
    text: str


def _unescape(text: str) -> str:
    return re.sub(r"\\u([0-9a-fA-F]{4})", lambda m: chr(int(m.group(1), 16)), text)


def load() -> list[Row]:
    rows = []
    for n, line in enumerate(EVAL.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip() or line.startswith("#"):
            continue
        category, term, flags, label, text = line.split("\t")
        opts = {f: True for f in flags.split(",") if f != "-"}
        rows.append(Row(n, category, TermSpec(term, **opts), label == "1", _unescape(text)))
    return rows


ROWS = load()


def test_eval_set_is_big_and_covers_every_trap() -> None:
    assert len(ROWS) >= 300
    cats = {r.category for r in ROWS}
    assert {
        "ali-ala", "moscow", "islamic-state", "lebanon-laban", "clitics", "diacritics",
        "tatweel", "persian-yeh", "bidi-zw", "latin", "mixed",
    } <= cats  # fmt: skip
    for cat in cats:  # every category has both labels, so precision and recall both mean something
        assert {r.label for r in ROWS if r.category == cat} == {True, False}, cat
    assert all(not term_problems(r.term) for r in ROWS)


def score(rows: list[Row]) -> tuple[dict[str, tuple[float, float, int]], list[Row]]:
    wrong: list[Row] = []
    counts: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0])  # tp, fp, fn
    for r in rows:
        matcher = compile_watchlists([WatchlistSpec("w", any=(r.term,))])
        got = bool(matcher.match(r.text, "", ""))
        c = counts[r.category]
        if got and r.label:
            c[0] += 1
        elif got:
            c[1] += 1
        elif r.label:
            c[2] += 1
        if got != r.label:
            wrong.append(r)
    out = {}
    for cat, (tp, fp, fn) in sorted(counts.items()):
        precision = tp / (tp + fp) if tp + fp else 1.0
        recall = tp / (tp + fn) if tp + fn else 1.0
        out[cat] = (precision, recall, sum(1 for r in rows if r.category == cat))
    return out, wrong


def test_precision_and_recall_per_category(capsys: pytest.CaptureFixture[str]) -> None:
    scores, wrong = score(ROWS)
    with capsys.disabled():
        print(f"\n{'category':<15} {'rows':>5} {'precision':>10} {'recall':>8}")
        for cat, (p, r, n) in scores.items():
            print(f"{cat:<15} {n:>5} {p:>10.3f} {r:>8.3f}")
        for row in wrong:
            print(f"  wrong: line {row.line} {row.category} {row.term.text!r} "
                  f"label={int(row.label)} {row.text}")  # fmt: skip
    low = {c: s for c, s in scores.items() if s[0] < FLOOR or s[1] < FLOOR}
    assert not low, f"below {FLOOR}: {low}; wrong rows: {[r.line for r in wrong]}"
