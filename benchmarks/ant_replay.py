"""Story grouping on a real stream: the ANT corpus sample replayed in publication order.

    .venv/bin/python benchmarks/ant_replay.py [--sample 25] [--seed 7]

Writes the 3,280 items of ../shared/data/ant (see its README for the citation; the script exits
with a message when it is absent) as a JSONL archive, runs `monitor replay --json` on it with a
fresh store, then prints:
- how each item was decided: a new story, the same item as an earlier one (identity), a copy
  joining a story (same outlet or across outlets), or a new story following an earlier one;
- `--sample` follow-up links drawn at random, each as the earlier story's first title and the
  new item's title, then as many copies joining a story within one outlet and across outlets,
  each as the story's first title and the copy's, to be read.

Prints; asserts nothing; needs no network (the replay delivers nothing).
"""

from __future__ import annotations

import argparse
import gzip
import json
import random
import re
import subprocess
import sys
import tempfile
from collections import Counter
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ANT = ROOT.parent / "shared/data/ant/ant-2018-03-01_21.jsonl.gz"
CONFIG = """\
storage: sqlite:///{db}
feeds: []
destinations:
  screen: {{type: console}}
watchlists:
  - name: all
    any: [في]
    notify: [screen]
"""


def archive(path: Path) -> int:
    with gzip.open(ANT, "rt", encoding="utf-8") as f:
        rows = [json.loads(line) for line in f]
    rows.sort(key=lambda r: datetime.fromisoformat(r["published"]).timestamp())
    with path.open("w", encoding="utf-8") as out:
        for r in rows:
            item = {
                "id": r["docno"],
                "url": r["url"],
                "title": r["title"],
                "summary": r.get("summary") or "",
                "content": r.get("text") or "",
                "published": r["published"],
                "feed": r["outlet"],
            }
            out.write(json.dumps(item, ensure_ascii=False) + "\n")
    return len(rows)


def kind(row: dict[str, str]) -> str:
    reason = row["reason"]
    if not row["new_story"]:
        if "identity" in reason:
            return "the same item (identity)"
        return "joins a story, " + ("same outlet" if "(same outlet" in reason else "cross-outlet")
    if reason.startswith("new story, following"):
        same = f" of {row['feed']})" in reason
        return "new story following another, " + ("same outlet" if same else "cross-outlet")
    return "new story"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    ap.add_argument("--sample", type=int, default=25, help="follow-up links to print")
    ap.add_argument("--seed", type=int, default=7)
    args = ap.parse_args(argv)
    if not ANT.exists():
        print(f"ant_replay.py: {ANT} is absent (a clone without ../shared): nothing to replay")
        return 0
    with tempfile.TemporaryDirectory(prefix="ant-replay-") as tmp:
        jsonl, cfg = Path(tmp) / "ant.jsonl", Path(tmp) / "c.yaml"
        n = archive(jsonl)
        cfg.write_text(CONFIG.format(db=Path(tmp) / "m.db"), encoding="utf-8")
        cmd = [sys.executable, "-m", "monitor", "-c", str(cfg), "replay", "--json", str(jsonl)]
        done = subprocess.run(cmd, capture_output=True, text=True, check=False, cwd=ROOT)
    if done.returncode != 0:
        print(done.stderr)
        return 1
    rows = [json.loads(line) for line in done.stdout.splitlines()]
    print(f"{n} ANT items replayed in publication order, {len(rows)} decided:")
    for k, count in Counter(map(kind, rows)).most_common():
        print(f"  {count:5d}  {k}")
    first = {}
    for r in rows:
        if r["new_story"]:
            first.setdefault(r["story"], f"[{r['feed']}] {r['title']}")
    rng = random.Random(args.seed)
    follows = [r for r in rows if r["reason"].startswith("new story, following")]
    picked = rng.sample(follows, min(args.sample, len(follows)))
    print(f"\n{len(picked)} follow-up links drawn at random (earlier story => this item):")
    for r in picked:
        m = re.search(r"following story (\S+)", r["reason"])
        earlier = first.get(m.group(1), "?") if m else "?"
        print(f"  {earlier}\n    => [{r['feed']}] {r['title']}")
    for where in ("same outlet", "cross-outlet"):
        joins = [r for r in rows if kind(r) == f"joins a story, {where}"]
        picked = rng.sample(joins, min(args.sample, len(joins)))
        print(f"\n{len(picked)} copies joining a story, {where}, drawn at random (story => copy):")
        for r in picked:
            print(f"  {first.get(r['story'], '?')}\n    => [{r['feed']}] {r['title']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
