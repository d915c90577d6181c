"""Config loading: every error names file, line and key path; secrets never leak."""

from __future__ import annotations

from pathlib import Path

import pytest

from monitor.config import load, loads, parse_duration, resolve_path
from monitor.errors import ConfigError
from tests.conftest import ROOT, WEBHOOK_SECRET

BASE = """\
storage: sqlite:///data/monitor.db
poll: {interval: 5m, timeout: 20s}
max_age: 6h
feeds:
  - url: https://www.france24.com/ar/rss
    name: france24
    interval: 2m
  - url: https://feeds.bbci.co.uk/arabic/rss.xml
destinations:
  desk:    {type: slack, token: "${SLACK_BOT_TOKEN}", channel: C0123456, base_url: null}
  archive: {type: webhook, url: "https://example.org/hooks/news", secret: "${WEBHOOK_SECRET}"}
  screen:  {type: console}
watchlists:
  - name: moscow
    any: [موسكو]
    notify: [desk, archive]
  - name: russia
    any: [روس*]
    notify: [screen]
"""
ENV = {"SLACK_BOT_TOKEN": "xoxb-123-secret-token", "WEBHOOK_SECRET": WEBHOOK_SECRET}


def errors_of(text: str, env: dict[str, str] | None = None) -> list[str]:
    with pytest.raises(ConfigError) as info:
        loads(text, path="c.yaml", env=ENV if env is None else env)
    return [str(p) for p in info.value.problems]


def test_the_issue_example_loads() -> None:
    cfg = loads(BASE, path="c.yaml", env=ENV)
    assert [f.name for f in cfg.feeds] == ["france24", "feeds.bbci.co.uk"]
    assert cfg.feeds[0].interval == 120.0
    assert cfg.feeds[1].interval == 300.0
    assert cfg.feeds[0].timeout == 20.0
    assert cfg.raw.max_age == 6 * 3600
    assert cfg.watchlists[0].notify == ("desk", "archive")
    assert cfg.watchlists[1].any[0].prefix is True
    assert cfg.watchlists[1].any[0].text == "روس*"


def test_summary_never_shows_secrets() -> None:
    cfg = loads(BASE, path="c.yaml", env=ENV)
    summary = cfg.summary()
    assert "xoxb-123-secret-token" not in summary
    assert WEBHOOK_SECRET not in summary
    assert "feeds: 2" in summary
    assert "destinations: 3" in summary
    assert "watchlists: 2" in summary


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (
            ("notify: [screen]", "notify: [slak]"),
            "c.yaml:19: watchlists[1].notify[0]: unknown destination 'slak'",
        ),
        (
            ("    name: france24\n", "    name: france24\n    colour: red\n"),
            "c.yaml:7: feeds[0].colour: unknown key",
        ),
        (("interval: 2m", "interval: soon"), "c.yaml:7: feeds[0].interval: expected a duration"),
        (
            ("https://www.france24.com/ar/rss", "file:///etc/passwd"),
            "c.yaml:5: feeds[0].url: feed URL must be http",
        ),
        (
            ("https://www.france24.com/ar/rss", "https://www.france24.com/ar rss"),
            "c.yaml:5: feeds[0].url: feed URL has a space at character 28; percent-encode it",
        ),
        (
            ("https://www.france24.com/ar/rss", '"https://www.france24.com/ar/\\trss"'),
            "c.yaml:5: feeds[0].url: feed URL has a tab at character 29",
        ),
        (
            ("https://www.france24.com/ar/rss", '"https://www.france24.com/\\u202ear/rss"'),
            "c.yaml:5: feeds[0].url: feed URL has a right-to-left override at character 26",
        ),
        (
            ("https://www.france24.com/ar/rss", "https://www.france24.com:99999/ar/rss"),
            "c.yaml:5: feeds[0].url: feed URL is not a valid URL (Port out of range",
        ),
        (
            ("https://www.france24.com/ar/rss", "http://[::1]99999/ar/rss"),
            "c.yaml:5: feeds[0].url: feed URL is not a valid URL (Port out of range 1-65535",
        ),
        (
            ("https://www.france24.com/ar/rss", "https://:443/ar/rss"),
            "c.yaml:5: feeds[0].url: feed URL must be http:// or https:// with a host",
        ),
        (
            ("{type: console}", "{type: telegram}"),
            "c.yaml:12: destinations.screen: unknown destination type 'telegram'",
        ),
        (
            ("channel: C0123456, ", ""),
            "c.yaml:10: destinations.desk.channel: required key is missing",
        ),
        (
            ("storage: sqlite:///data/monitor.db", "storage: mysql://x"),
            "c.yaml:1: storage: storage must be sqlite",
        ),
    ],
    ids=[
        "unknown-destination-named-with-line",
        "unknown-key-is-an-error",
        "bad-duration",
        "file-url-refused",
        "space-in-url-named-with-its-position",
        "tab-from-a-yaml-escape-named",
        "bidi-override-that-a-terminal-hides-named",
        "port-out-of-range-refused-at-load-not-at-every-poll",
        "ipv6-port-without-colon-refused-as-httpx-reads-it",
        "port-without-host-refused",
        "unknown-destination-type",
        "missing-required-key",
        "unsupported-storage",
    ],
)
def test_errors_name_file_line_and_path(change: tuple[str, str], expected: str) -> None:
    errors = errors_of(BASE.replace(*change))
    assert any(e.startswith(expected) for e in errors), errors


def test_missing_env_var_is_named_and_secret_values_never_echoed() -> None:
    errors = errors_of(BASE, env={"SLACK_BOT_TOKEN": "xoxb-1"})
    assert errors == [
        "c.yaml:11: destinations.archive.secret: environment variable ${WEBHOOK_SECRET} is not set"
    ]


def test_bad_secret_is_reported_without_echoing_it() -> None:
    errors = errors_of(BASE, env={**ENV, "WEBHOOK_SECRET": "whsec_notbase64!!!"})
    assert len(errors) == 1
    assert errors[0].startswith("c.yaml:11: destinations.archive.secret:")
    assert "notbase64" not in errors[0]


def test_every_problem_is_reported_at_once() -> None:
    text = BASE.replace("notify: [screen]", "notify: [slak]").replace("interval: 2m", "interval: x")
    assert len(errors_of(text)) == 2


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("storage: [unclosed\n", "c.yaml:2: invalid YAML"),
        ("- a list\n", "c.yaml:1: the config must be a mapping"),
    ],
    ids=["broken-yaml-names-the-line", "top-level-must-be-a-mapping"],
)
def test_unreadable_yaml(text: str, expected: str) -> None:
    assert errors_of(text)[0].startswith(expected)


def test_duplicate_feed_and_watchlist_names() -> None:
    text = BASE.replace(
        "  - url: https://feeds.bbci.co.uk/arabic/rss.xml",
        "  - url: https://feeds.bbci.co.uk/arabic/rss.xml\n    name: france24",
    )
    text = text.replace("name: russia", "name: moscow")
    errors = errors_of(text)
    assert any("feeds[1].name: feed name 'france24' is used twice" in e for e in errors)
    assert any("watchlists[1].name: watchlist 'moscow' is defined twice" in e for e in errors)


@pytest.mark.parametrize(
    ("value", "seconds"),
    [(30, 30.0), ("30s", 30.0), ("5m", 300.0), ("1h", 3600.0), ("1.5h", 5400.0), ("2d", 172800.0)],
    ids=["number-is-seconds", "seconds", "minutes", "hours", "fractional", "days"],
)
def test_durations(value: object, seconds: float) -> None:
    assert parse_duration(value) == seconds


def test_config_path_resolution() -> None:
    assert resolve_path("x.yaml", {"MONITOR_CONFIG": "y.yaml"}) == "x.yaml"
    assert resolve_path(None, {"MONITOR_CONFIG": "y.yaml"}) == "y.yaml"
    assert resolve_path(None, {}) == "config/monitor.yaml"


def test_missing_file() -> None:
    with pytest.raises(ConfigError, match="no such config file"):
        load("/nonexistent/monitor.yaml")


@pytest.mark.parametrize("name", sorted(p.name for p in (ROOT / "config").glob("*.yaml")))
def test_shipped_configs_are_valid(name: str) -> None:
    cfg = load(str(ROOT / "config" / name), env=ENV)
    assert cfg.feeds
    assert cfg.watchlists


def test_default_config_uses_console(tmp_path: Path) -> None:
    cfg = load(str(ROOT / "config" / "monitor.yaml"), env={})
    assert {d.type for d in cfg.destinations.values()} == {"console"}


def test_the_readme_config_reference_is_a_valid_config() -> None:
    import re

    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme[readme.index("## Configuration") :]
    example = re.search(r"```yaml\n(.*?)```", section, re.S)
    assert example is not None
    cfg = loads(example.group(1), path="README.md", env=ENV)
    assert cfg.watchlists[0].loudness.digest_every == 3600
    assert cfg.raw.http is not None
