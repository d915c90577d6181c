"""The command line as users run it: exit codes, `check` output, `match --json`, the demo."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT


def monitor(
    *args: str, stdin: str | None = None, env: dict[str, str] | None = None, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "monitor", *args],
        cwd=ROOT,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
        check=False,
    )


def test_check_default_config() -> None:
    p = monitor("check")
    assert p.returncode == 0, p.stderr
    assert "config/monitor.yaml: ok" in p.stdout
    assert "watchlists: 4" in p.stdout


def test_check_reports_errors_with_file_line_and_path(tmp_path: Path) -> None:
    cfg = tmp_path / "bad.yaml"
    cfg.write_text(
        "feeds:\n  - url: https://x.example/rss\n"
        "destinations:\n  desk: {type: console}\n"
        "watchlists:\n  - name: w\n    any: [موسكو]\n    notify: [slak]\n",
        encoding="utf-8",
    )
    p = monitor("-c", str(cfg), "check")
    assert p.returncode == 2
    assert f"{cfg}:8: watchlists[0].notify[0]: unknown destination 'slak'" in p.stderr


def test_config_from_environment_variable(tmp_path: Path) -> None:
    p = monitor("check", env={"MONITOR_CONFIG": str(tmp_path / "nope.yaml")})
    assert p.returncode == 2
    assert "nope.yaml: no such config file" in p.stderr


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("وصل الوفد إلى موسكو صباح اليوم", ["moscow"]),
        ("أعلن تنظيم الدولة الإسلامية مسؤوليته", ["islamic-state"]),
        ("نتائج مباريات الدوري الإسباني", []),
    ],
    ids=["place-in-text", "organisation-phrase", "nothing"],
)
def test_match_json_contract(text: str, expected: list[str]) -> None:
    p = monitor("match", "--json", text)
    assert p.returncode == (0 if expected else 1), p.stderr
    out = json.loads(p.stdout)
    assert sorted(m["watchlist"] for m in out["matches"]) == expected
    for m in out["matches"]:
        assert isinstance(m["terms"], list)
        assert m["terms"]


def test_match_reads_stdin() -> None:
    p = monitor("match", "--json", stdin="هجوم موسكو")
    matches = json.loads(p.stdout)["matches"]
    assert [(m["watchlist"], m["terms"]) for m in matches] == [("moscow", ["موسكو"])]


@pytest.mark.slow
def test_demo_alerts_the_story_not_the_boilerplate() -> None:
    p = monitor("demo", timeout=120)
    assert p.returncode == 0, p.stderr
    blocks = p.stdout.split("── ")[1:]
    watchlists = sorted(b.split(" ", 1)[0] for b in blocks)
    assert watchlists == ["islamic-state", "moscow"]
    assert "outcome=unchanged" in p.stderr or "alerts=0" in p.stderr


def test_log_format_json_is_one_object_per_line(tmp_path: Path) -> None:
    """Issue 6: `--log-format json` for machines; every line parses, with level and message."""
    import time

    from tests.feedgen import FakeItem, rss
    from tests.servers import FeedServer

    with FeedServer() as server:
        url = server.publish("/a.xml", rss([FakeItem("1", "موسكو", "نص", None, time.time())]))
        cfg = tmp_path / "c.yaml"
        cfg.write_text(
            f"storage: sqlite:///{tmp_path}/m.db\nfeeds:\n  - {{url: '{url}', name: a}}\n"
            f"  - {{url: '{server.url}/missing.xml', name: b}}\n"
            "destinations: {screen: {type: console}}\n"
            "watchlists: [{name: w, any: [موسكو], notify: [screen]}]\n",
            encoding="utf-8",
        )
        p = monitor("-c", str(cfg), "--log-format", "json", "poll-once")
    assert p.returncode == 0, p.stderr
    events = [json.loads(line) for line in p.stderr.splitlines() if line.strip()]
    assert events, "something was logged"
    assert all({"ts", "level", "msg"} <= set(e) for e in events)
    msgs = " ".join(e["msg"] for e in events)
    assert "feed=a outcome=new" in msgs
    assert "feed=b outcome=error" in msgs
    assert any(e["level"] == "warning" for e in events)
