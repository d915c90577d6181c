"""OPML feed lists: real-world exports parsed as expected, hostile XML refused, imports that keep
the config's comments and formatting, export -> import round trips, `monitor feeds` commands."""

from __future__ import annotations

import difflib
import json
import os
import re
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest
import yaml
from hypothesis import assume, example, given, settings
from hypothesis import strategies as st

from monitor.config import FeedConfig, load, loads
from monitor.errors import ConfigError, OpmlError
from monitor.feedlist import append_feeds, export_opml, feed_mapping, import_opml
from monitor.opml import (
    ExistingFeed,
    ExportFeed,
    NewFeed,
    check_url,
    derive_name,
    parse_opml,
    plan_import,
    render_opml,
    unique_name,
)
from tests.conftest import DATA, ROOT

OPML = DATA / "opml"
NOW = datetime(2025, 3, 1, 21, 0, tzinfo=UTC)
REAL_WORLD = ["feedly", "inoreader", "miniflux", "netnewswire", "thunderbird", "edge_cases"]
HOSTILE = [
    ("hostile_billion_laughs", "declares the entity 'lol'"),
    ("hostile_external_entity", "external entity 'secret' (file:///etc/passwd)"),
    ("hostile_external_dtd", "external DTD"),
]


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def only_added(before: str, after: str) -> list[str]:
    """The lines `after` adds to `before`; fails if any line of `before` was changed or lost."""
    diff = list(difflib.ndiff(before.splitlines(), after.splitlines()))
    assert [d for d in diff if d.startswith("- ")] == []
    return [d[2:] for d in diff if d.startswith("+ ")]


def pairs(path: Path) -> set[tuple[str, str]]:
    return {(f.name, f.url) for f in load(str(path), env={}).feeds}


# --- parsing real-world exports ------------------------------------------------------------------


@pytest.mark.parametrize("name", REAL_WORLD, ids=REAL_WORLD)
def test_real_world_export_parses_to_its_expected_feeds(name: str) -> None:
    expected = json.loads((OPML / f"{name}.expected.json").read_text(encoding="utf-8"))
    doc = parse_opml((OPML / f"{name}.opml").read_bytes(), source=name)
    plan = plan_import(doc, [])
    assert doc.title == expected["title"]
    assert [
        {"name": a.name, "url": a.url, "folder": list(a.category)} for a in plan.added
    ] == expected["added"]
    assert [{"line": s.feed.line, "url": s.feed.url} for s in plan.skipped] == expected["skipped"]
    assert [{"line": r.feed.line, "url": r.feed.url} for r in plan.refused] == expected["refused"]


@pytest.mark.parametrize(("name", "reason"), HOSTILE, ids=[h[0] for h in HOSTILE])
def test_hostile_opml_is_refused_and_nothing_is_written(
    tmp_path: Path, name: str, reason: str
) -> None:
    data = (OPML / f"{name}.opml").read_bytes()
    with pytest.raises(OpmlError, match="refused") as e:
        parse_opml(data, source=name)
    assert reason in str(e.value)
    original = "# my feeds\nfeeds:\n  - url: https://a.example/rss  # keep me\n"
    config = write(tmp_path / "monitor.yaml", original)
    with pytest.raises(OpmlError, match=re.escape(reason)):
        import_opml(str(config), str(OPML / f"{name}.opml"), env={})
    assert config.read_text(encoding="utf-8") == original
    assert sorted(p.name for p in tmp_path.iterdir()) == ["monitor.yaml"]  # no temp file left


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "the file is empty"),
        (b"<rss version='2.0'><channel/></rss>", "not an OPML file (the root element is <rss>)"),
        (b"<opml><body><outline text='x'", "not well-formed XML"),
        (b"<opml><body><outline text='&nbsp;'/></body></opml>", "undefined entity"),
        (b"<?xml version='1.0' encoding='x-nonsense'?><opml/>", "cannot decode"),
        (b"<opml>" + b" " * (10 * 1024 * 1024) + b"</opml>", "larger than 10 MiB"),
    ],
    ids=["empty", "rss-not-opml", "truncated", "html-entity-undeclared", "unknown-charset", "huge"],
)
def test_unreadable_opml_is_an_error(data: bytes, message: str) -> None:
    with pytest.raises(OpmlError, match=re.escape(message)):
        parse_opml(data, source="x.opml")


def test_windows_1256_opml_is_decoded() -> None:
    body = '<?xml version="1.0" encoding="windows-1256"?><opml version="1.0"><body>'
    body += '<outline text="الجزيرة نت" xmlUrl="https://a.example/rss"/></body></opml>'
    doc = parse_opml(body.encode("cp1256"))
    assert [(f.title, f.url) for f in doc.feeds] == [("الجزيرة نت", "https://a.example/rss")]


# --- rules: URLs and names -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "used", "refused"),
    [
        ("https://a.example/rss", "https://a.example/rss", None),
        ("HTTP://A.example/rss", "HTTP://A.example/rss", None),
        ("feed://a.example/rss", "http://a.example/rss", None),
        ("feed:https://a.example/rss", "https://a.example/rss", None),
        ("file:///etc/passwd", None, "only http:// and https://"),
        ("javascript:alert(1)", None, "only http:// and https://"),
        ("/feeds/all.xml", None, "(no scheme)"),
        ("https:///rss", None, "no host"),
        ("https://a.example:99999/rss", None, "not a valid URL"),
        ("http://[::1]99999/rss", None, "Port out of range 1-65535: 99999"),
        ("https://a.example/?k=${SLACK_BOT_TOKEN}", None, "fill from the environment"),
        ("https://a.example/my feed", None, "spaces"),
        ("https://a.example/" + "x" * 2100, None, "longer than 2048"),
        ("", None, "no xmlUrl"),
    ],
    ids=[
        "https-kept",
        "upper-case-scheme-kept",
        "feed-scheme-read-as-http",
        "feed-colon-prefix-dropped",
        "file-refused",
        "javascript-refused",
        "relative-refused",
        "no-host-refused",
        "bad-port-refused",
        "ipv6-port-without-colon-refused-as-the-fetcher-reads-it",
        "env-reference-refused-secret-leak",
        "space-refused",
        "too-long-refused",
        "empty-refused",
    ],
)
def test_feed_url_rules(url: str, used: str | None, refused: str | None) -> None:
    got, why = check_url(url)
    assert got == used
    assert (why is None) if refused is None else (refused in (why or ""))


@pytest.mark.parametrize(
    ("title", "url", "name"),
    [
        ("الجزيرة نت", "https://a.example/", "الجزيرة نت"),
        ("\u200fالشرق الأوسط\u200e", "https://a.example/", "الشرق الأوسط"),
        ("\u202eevil\u202c name", "https://a.example/", "evil name"),
        ("نيم\u200cروز", "https://a.example/", "نيم\u200cروز"),
        ("  BBC\n\tNews  ", "https://a.example/", "BBC News"),
        ("", "https://Feeds.Example.org/rss", "feeds.example.org"),
        ("Leak ${SLACK_BOT_TOKEN}", "https://a.example/", "Leak {SLACK_BOT_TOKEN}"),
        ("أ" * 100, "https://a.example/", "أ" * 80),
    ],
    ids=[
        "arabic-title-kept",
        "rlm-lrm-marks-dropped",
        "bidi-override-dropped",
        "zwnj-kept-for-persian",
        "white-space-collapsed",
        "no-title-uses-host",
        "env-reference-defused",
        "long-title-cut-to-80",
    ],
)
def test_name_from_title(title: str, url: str, name: str) -> None:
    assert derive_name(title, url) == name


def test_names_are_made_unique_against_the_config_and_the_file() -> None:
    assert unique_name("news", []) == "news"
    assert unique_name("news", ["news"]) == "news-2"
    assert unique_name("news", ["news", "news-2"]) == "news-3"
    body = "".join(f'<outline text="bbc-arabic" xmlUrl="https://{h}.example/rss"/>' for h in "abc")
    doc = parse_opml(f"<opml><body>{body}</body></opml>".encode())
    plan = plan_import(doc, [ExistingFeed("https://bbc.example/rss", "bbc-arabic")])
    assert [a.name for a in plan.added] == ["bbc-arabic-2", "bbc-arabic-3", "bbc-arabic-4"]


@pytest.mark.parametrize(
    "variant",
    [
        "https://a.example/rss",
        "http://a.example/rss",
        "https://A.EXAMPLE/rss",
        "https://a.example:443/rss",
        "https://a.example/rss#latest",
    ],
    ids=["same", "http-for-https", "host-case", "default-port", "fragment"],
)
def test_a_feed_already_configured_is_skipped(variant: str) -> None:
    doc = parse_opml(f'<opml><body><outline text="A" xmlUrl="{variant}"/></body></opml>'.encode())
    plan = plan_import(doc, [ExistingFeed("https://a.example/rss", "a")])
    assert plan.added == ()
    assert [s.reason for s in plan.skipped] == ["already in the config as 'a'"]


def test_a_different_path_or_query_is_another_feed() -> None:
    body = '<outline text="A" xmlUrl="https://a.example/rss?lang=ar"/>'
    body += '<outline text="B" xmlUrl="https://a.example/RSS"/>'
    doc = parse_opml(f"<opml><body>{body}</body></opml>".encode())
    plan = plan_import(doc, [ExistingFeed("https://a.example/rss", "a")])
    assert [a.url for a in plan.added] == ["https://a.example/rss?lang=ar", "https://a.example/RSS"]


# --- editing the config text ---------------------------------------------------------------------

NEW = (
    NewFeed("https://a.example/rss", "الجزيرة نت", ("أخبار",), 120.0, None, ("اقرأ أيضا:", "x: y")),
    NewFeed("https://b.example/rss?x=1&y=2#f", "yes", (), None, 0.5),
    NewFeed("https://c.example/rss", "# not a comment", (), 90.0, 3600.0),
)

SHAPES = {
    "block-list": "# top\nfeeds:\n  - url: https://z.example/\n    name: z   # why\n\n# c\nx: 1\n",
    "indentless-list": "feeds:\n- url: https://z.example/\n  boilerplate:\n  - foo\n# c\nx: []\n",
    "wide-indent": "feeds:\n    -   url: https://z.example/\n        name: z\nx: 1\n",
    "no-feeds-key": "storage: sqlite:///x.db  # where",
    "empty-value": "feeds:\nx: {}\n",
    "null-value": "feeds: ~   # none yet\nx: {}\n",
    "empty-flow": "feeds: []  # none yet\nx: 1\n",
    "flow-list": "feeds: [{url: 'https://z.example/'}, ]  # one\nx: 1\n",
    "crlf-line-ends": "# windows\r\nfeeds:\r\n  - url: https://z.example/\r\nx: 1\r\n",
    "comments-only": "# nothing yet\n",
    "empty-file": "",
    "block-scalar-last": "feeds:\n  - url: https://z.example/\n    name: |\n      z\n\n# c\nx: 1\n",
}


@pytest.mark.parametrize("text", list(SHAPES.values()), ids=list(SHAPES))
def test_append_keeps_every_other_line_and_reads_back_exactly(text: str) -> None:
    out = append_feeds(text, NEW, source="feedly.opml")
    old = yaml.safe_load(text) or {}
    expected = {**old, "feeds": [*(old.get("feeds") or []), *(feed_mapping(f) for f in NEW)]}
    assert yaml.safe_load(out) == expected
    if text.startswith("feeds: [{"):  # a flow list grows in place, on its line
        assert out.endswith("]  # one\nx: 1\n")
    else:  # an empty value (~, []) is dropped; every other line is kept as it was
        added = only_added(text.replace("feeds: ~", "feeds:").replace("feeds: []", "feeds:"), out)
        assert "# OPML folder: أخبار" in [line.strip() for line in added]
    if "\r\n" in text:
        assert out.count("\n") == out.count("\r\n")


def test_import_keeps_the_comments_and_formatting_of_a_real_config(tmp_path: Path) -> None:
    original = (ROOT / "config" / "example-slack-webhook.yaml").read_text(encoding="utf-8")
    config = write(tmp_path / "monitor.yaml", original)
    report = import_opml(str(config), str(OPML / "inoreader.opml"), env={})
    after = config.read_text(encoding="utf-8")
    added = only_added(original, after)
    assert added[:2] == ["  # imported from inoreader.opml", "  # OPML folder: الشرق الأوسط"]
    assert len(report.plan.added) == 6
    assert '  desk:    {type: slack, token: "${SLACK_BOT_TOKEN}", channel: C0123456}' in after
    assert "    none: [مسلسل]                 # not the TV series" in after
    # The secrets are still references, and the file is valid once they are set.
    env = {"SLACK_BOT_TOKEN": "xoxb-1", "WEBHOOK_SECRET": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"}
    assert len(load(str(config), env=env).feeds) == 3 + 6


def test_dry_run_writes_nothing(tmp_path: Path) -> None:
    config = write(tmp_path / "monitor.yaml", "feeds: []\n")
    report = import_opml(str(config), str(OPML / "feedly.opml"), dry_run=True, env={})
    assert len(report.plan.added) == 6
    assert not report.written
    assert config.read_text(encoding="utf-8") == "feeds: []\n"


def test_a_broken_config_is_not_touched(tmp_path: Path) -> None:
    text = "feeds:\n  - url: https://a.example/\n    intervall: 5m\n"
    config = write(tmp_path / "monitor.yaml", text)
    with pytest.raises(ConfigError, match=r"monitor.yaml:3: feeds\[0\].intervall: unknown key"):
        import_opml(str(config), str(OPML / "feedly.opml"), env={})
    assert config.read_text(encoding="utf-8") == text


def test_bad_settings_in_an_opml_refuse_that_feed_only(tmp_path: Path) -> None:
    config = write(tmp_path / "monitor.yaml", "feeds: []\n")
    opml = write(
        tmp_path / "x.opml",
        '<opml xmlns:m="urn:x-monitor:opml:1"><body>'
        '<outline text="A" xmlUrl="https://a.example/" m:interval="-5"/>'
        '<outline text="B" xmlUrl="https://b.example/" m:boilerplate="[1]"/>'
        '<outline text="C" xmlUrl="https://c.example/" m:timeout="soon"/>'
        '<outline text="D" xmlUrl="https://d.example/" m:interval="2m"/>'
        "</body></opml>",
    )
    report = import_opml(str(config), str(opml), env={})
    assert [r.reason for r in report.plan.refused] == [
        "a duration must be positive",
        "monitor:boilerplate must be a JSON list of strings",
        "expected a duration like 30s, 5m or 1h, got 'soon'",
    ]
    assert [(f.name, f.interval) for f in load(str(config), env={}).feeds] == [("D", 120.0)]


def test_an_edit_that_would_move_other_lines_writes_nothing(tmp_path: Path) -> None:
    # The last value is an alias to an anchor higher up: the text edit lands in the wrong
    # place, the read-back check sees the feeds out of order, and the file is left alone.
    text = "feeds:\n  - url: &u https://z.example/\n  - url: https://y.example/\n    name: *u\n"
    config = write(tmp_path / "monitor.yaml", text)
    with pytest.raises(ConfigError, match="without changing other parts of this file"):
        import_opml(str(config), str(OPML / "miniflux.opml"), env={})
    assert config.read_text(encoding="utf-8") == text
    assert sorted(p.name for p in tmp_path.iterdir()) == ["monitor.yaml"]


def test_import_follows_a_symlink_and_keeps_the_mode(tmp_path: Path) -> None:
    target = write(tmp_path / "real.yaml", "feeds: []\n")
    target.chmod(0o600)
    link = tmp_path / "monitor.yaml"
    link.symlink_to(target)
    import_opml(str(link), str(OPML / "miniflux.opml"), env={})
    assert link.is_symlink()
    assert len(load(str(target), env={}).feeds) == 4
    assert target.stat().st_mode & 0o777 == 0o600


def test_import_creates_a_missing_config(tmp_path: Path) -> None:
    config = tmp_path / "new.yaml"
    report = import_opml(str(config), str(OPML / "netnewswire.opml"), env={})
    assert report.created
    assert report.written
    assert len(load(str(config), env={}).feeds) == 5


# --- round trips ---------------------------------------------------------------------------------


@pytest.mark.parametrize("name", REAL_WORLD[:5], ids=REAL_WORLD[:5])
def test_real_world_export_round_trips(tmp_path: Path, name: str) -> None:
    """import a reader's export -> export ours -> import that elsewhere: same (name, url)."""
    first = write(tmp_path / "first.yaml", "# desk A\nfeeds: []\n")
    import_opml(str(first), str(OPML / f"{name}.opml"), env={})
    exported = tmp_path / "ours.opml"
    exported.write_bytes(export_opml(str(first), now=NOW, env={}))
    second = write(tmp_path / "second.yaml", "# desk B\n")
    report = import_opml(str(second), str(exported), env={})
    assert report.plan.skipped == ()
    assert report.plan.refused == ()
    assert pairs(second) == pairs(first)
    assert len(pairs(first)) == len(parse_opml((OPML / f"{name}.opml").read_bytes()).feeds) - (
        1 if name == "feedly" else 0  # Feedly lists BBC Arabic in two folders
    )


def test_our_export_restores_every_setting(tmp_path: Path) -> None:
    text = """\
poll: {interval: 7m}
feeds:
  - url: https://www.france24.com/ar/rss
    name: france24
    interval: 2m
  - url: https://feeds.bbci.co.uk/arabic/rss.xml
    timeout: 7.25
    boilerplate: ["إقرأ أيضاً:", "مقالات مشابهة", 'say "hi" & <b>', "a\\nb\\tc"]
  - url: https://arabic.rt.com/rss/?a=1&b=2
    name: "روسيا اليوم: الأخبار"
    interval: 3600
"""
    first = write(tmp_path / "first.yaml", text)
    opml = tmp_path / "ours.opml"
    opml.write_bytes(export_opml(str(first), now=NOW, env={}))
    second = write(tmp_path / "second.yaml", "poll: {interval: 7m}\n")
    import_opml(str(second), str(opml), env={})
    a, b = load(str(first), env={}), load(str(second), env={})
    assert b.feeds == a.feeds  # names, URLs, effective intervals, timeouts, markers
    # Only the settings written in the config travel; defaults stay defaults.
    assert [f.model_dump(exclude={"name"}) for f in b.raw.feeds] == [
        f.model_dump(exclude={"name"}) for f in a.raw.feeds
    ]
    assert b.raw.feeds[1].name == "feeds.bbci.co.uk"  # the effective name, now written


def test_export_never_expands_a_secret(tmp_path: Path) -> None:
    config = write(
        tmp_path / "monitor.yaml",
        "feeds:\n  - url: https://a.example/rss?token=${FEED_TOKEN}\n    name: private\n",
    )
    out = export_opml(str(config), now=NOW, env={"FEED_TOKEN": "s3cret"}).decode()
    assert "${FEED_TOKEN}" in out
    assert "s3cret" not in out


def test_export_is_opml_2(tmp_path: Path) -> None:
    config = write(tmp_path / "monitor.yaml", "feeds:\n  - url: https://a.example/rss\n")
    out = export_opml(str(config), now=NOW, env={})
    assert out.startswith(b'<?xml version="1.0" encoding="UTF-8"?>\n<opml version="2.0"')
    assert b"<dateCreated>Sat, 01 Mar 2025 21:00:00 GMT</dateCreated>" in out
    assert b'<outline type="rss" text="a.example" title="a.example" xmlUrl=' in out


@settings(max_examples=60, deadline=None)
@example(name="0", markers=[], interval=0.0010000000000000002)  # lost in a .17f rendering
@example(name="x", markers=[], interval=1e-05)  # YAML 1.1 needs 1.0e-05
@given(
    name=st.text(st.characters(codec="utf-8", categories=["L", "N", "P", "S"]), min_size=1),
    markers=st.lists(st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]))),
    interval=st.floats(min_value=0.001, max_value=1e7) | st.integers(1, 10**7).map(float),
)
def test_any_name_and_settings_survive_export_and_config_write(
    name: str, markers: list[str], interval: float
) -> None:
    assume("${" not in "".join(markers))
    feed = ExportFeed("https://a.example/rss", name, interval, None, tuple(markers))
    plan = plan_import(parse_opml(render_opml([feed], now=NOW)), [])
    [new] = plan.added
    if len(name) <= 80 and "${" not in name:
        assert new.name == name
    assert (new.interval, new.boilerplate) == (interval, tuple(markers))
    text = append_feeds("feeds: []\n", [new])
    assert [FeedConfig.model_validate(f) for f in yaml.safe_load(text)["feeds"]] == [
        FeedConfig.model_validate(feed_mapping(new))
    ]
    got = loads(text, env={}).raw.feeds[0]
    assert (got.name, got.interval, got.boilerplate) == (new.name, interval, markers)


# --- the commands --------------------------------------------------------------------------------


def monitor(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "MONITOR_CONFIG"}
    env["PYTHONPATH"] = str(ROOT)
    return subprocess.run(
        [sys.executable, "-m", "monitor", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        check=False,
    )


@pytest.mark.slow
def test_feeds_commands(tmp_path: Path) -> None:
    config = write(tmp_path / "monitor.yaml", "# ours\nfeeds: []\n")
    dry = monitor("-c", str(config), "feeds", "import", str(OPML / "edge_cases.opml"), "--dry-run",
                  cwd=tmp_path)  # fmt: skip
    assert dry.returncode == 0, dry.stderr
    assert "would add 7, skipped 1 (already present), refused 8" in dry.stdout
    assert "line 9 'Local file'  file:///etc/passwd: only http:// and https://" in dry.stdout
    assert config.read_text(encoding="utf-8") == "# ours\nfeeds: []\n"

    done = monitor("feeds", "import", str(OPML / "feedly.opml"), "-c", str(config), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "added 6, skipped 1 (already present), refused 0" in done.stdout
    assert len(load(str(config), env={}).feeds) == 6

    out = tmp_path / "export.opml"
    exp = monitor("-c", str(config), "feeds", "export", "-o", str(out), cwd=tmp_path)
    assert exp.returncode == 0, exp.stderr
    assert {f.url for f in parse_opml(out.read_bytes()).feeds} == {
        f.url for f in load(str(config), env={}).feeds
    }
    stdout = monitor("-c", str(config), "feeds", "export", cwd=tmp_path)
    assert stdout.returncode == 0
    assert stdout.stdout.count("<outline ") == 6

    bomb = monitor("-c", str(config), "feeds", "import", str(OPML / "hostile_billion_laughs.opml"),
                   cwd=tmp_path)  # fmt: skip
    assert bomb.returncode == 2
    assert "billion-laughs" in bomb.stderr
    assert "refused" in bomb.stderr

    refused = write(
        tmp_path / "bad.opml", '<opml><body><outline xmlUrl="file:///x"/></body></opml>'
    )
    allbad = monitor("-c", str(config), "feeds", "import", str(refused), cwd=tmp_path)
    assert allbad.returncode == 1
    assert "refused 1" in allbad.stdout
