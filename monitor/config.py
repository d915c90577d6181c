"""Configuration: YAML loading, ${ENV} expansion, pydantic validation, `check`. No network I/O;
reads the config file and the environment.

Every problem is reported at once, each naming the file, the line and the key path, e.g.
``config/monitor.yaml:14: watchlists[2].notify[0]: unknown destination 'slak'``. Secrets (tokens,
webhook secrets) never appear in an error message or in the summary.
"""

from __future__ import annotations

import os
import re
import unicodedata
import urllib.parse
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import time as dt_time
from pathlib import Path
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
)

from monitor.errors import ConfigError, ConfigProblem
from monitor.loudness import Loudness, Quiet
from monitor.models import ALL_FIELDS, FeedSpec, TermSpec, WatchlistSpec
from monitor.models import Field as TextField
from monitor.urls import url_problem

DEFAULT_PATH = "config/monitor.yaml"

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$")
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, None: 1.0}
_ENV = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


def parse_duration(value: object) -> float:
    """A number is seconds; "500ms", "30s", "5m", "1h", "2d" also work."""
    if isinstance(value, bool):
        raise ValueError("expected a duration like 30s, 5m or 1h")
    if isinstance(value, int | float):
        seconds = float(value)
    elif isinstance(value, str) and (m := _DURATION.match(value)):
        seconds = float(m.group(1)) * _UNITS[m.group(2)]
    else:
        raise ValueError(f"expected a duration like 30s, 5m or 1h, got {value!r}")
    if seconds <= 0:
        raise ValueError("a duration must be positive")
    return seconds


def _parse_delay(value: object) -> float:
    if value == 0 or value == "0":
        return 0.0
    return parse_duration(value)


Duration = Annotated[float, BeforeValidator(parse_duration)]
Delay = Annotated[float, BeforeValidator(_parse_delay)]  # like Duration, but 0 is allowed


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class PollConfig(_Strict):
    interval: Duration = 300.0
    timeout: Duration = 20.0
    parse_timeout: Duration = 5.0  # deadline for parsing one document in a worker
    jitter: Delay = 10.0  # each poll starts up to this much later, spreading load
    max_backoff: Duration = 3600.0  # a failing feed is retried at least this often
    concurrency: int = Field(default=32, ge=1, le=1024)
    per_host: int = Field(default=8, ge=1, le=1024)  # fetches to one host at once
    max_items: int = Field(default=200, ge=1, le=10000)  # new items taken from one feed per poll
    unhealthy_after: int = Field(default=10, ge=1)  # failures in a row before a feed is unhealthy
    # Redirects onto loopback, link-local or private addresses are refused unless the feed's own
    # URL is in that class (an internal feed server is fine); true allows them all (HAZARDS 18).
    allow_private: bool = False
    # Alerts one watchlist may make from one poll; the rest go out as one summary (HAZARDS 38).
    max_alerts_per_watchlist: int = Field(default=50, ge=1)


class StoriesConfig(_Strict):
    """Near-duplicate story detection (see docs/design.md, Stories)."""

    window: Duration = 72 * 3600.0  # how long a story stays open to new items
    same_outlet_threshold: float = Field(default=0.15, gt=0, le=1)
    cross_outlet_threshold: float = Field(default=0.25, gt=0, le=1)


_CHAR_NAMES = {" ": "space", "\t": "tab", "\n": "line break", "\r": "carriage return"}


def _check_feed_url(url: str) -> str:
    """The URL as written, if it can be polled: http(s), a host, a valid port, and no space,
    control or format character (which HTTP clients refuse or a terminal hides: a URL from
    ${ENV} or a double-quoted YAML escape can carry one). Raises ValueError naming the problem."""
    for i, ch in enumerate(url):
        if ch.isspace() or unicodedata.category(ch) in ("Cc", "Cf"):
            what = (
                _CHAR_NAMES.get(ch)
                or unicodedata.name(ch, "").lower()
                or f"control character U+{ord(ch):04X}"
            )
            raise ValueError(
                f"feed URL has a {what} at character {i + 1}; percent-encode it (a space is "
                f"%20) or remove it, got {url!r}"
            )
    problem = url_problem(url)
    if problem is not None:
        raise ValueError(f"feed URL is not a valid URL ({problem}), got {url!r}")
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"feed URL must be http:// or https:// with a host, got {url!r}")
    return url


class FeedConfig(_Strict):
    url: str
    name: str | None = None
    interval: Duration | None = None
    timeout: Duration | None = None
    boilerplate: list[str] = Field(default_factory=list)

    _url = field_validator("url")(classmethod(lambda cls, v: _check_feed_url(v)))


class SlackDestination(_Strict):
    type: Literal["slack"]
    token: str
    channel: str
    base_url: str | None = None
    pace: Delay = 1.0  # at least this long between two posts to the channel (0: no pacing)

    @field_validator("token")
    @classmethod
    def _token(cls, v: str) -> str:
        if not v.startswith(("xoxb-", "xoxp-", "xoxe-")):
            raise ValueError("a Slack token starts with xoxb- (bot) or xoxp- (user)")
        return v

    def describe(self) -> str:
        return f"slack channel {self.channel}" + (f" via {self.base_url}" if self.base_url else "")


class WebhookDestination(_Strict):
    type: Literal["webhook"]
    url: str
    secret: str | None = None
    timeout: Duration = 10.0

    @field_validator("url")
    @classmethod
    def _url(cls, v: str) -> str:
        parts = urllib.parse.urlsplit(v)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError(f"webhook URL must be http:// or https://, got {v!r}")
        return v

    @field_validator("secret")
    @classmethod
    def _secret(cls, v: str | None) -> str | None:
        if v is None:
            return v
        from monitor.notify.webhook import validate_webhook_secret

        problem = validate_webhook_secret(v)
        if problem:
            raise ValueError(problem)  # the message never echoes the secret
        return v

    def describe(self) -> str:
        parts = urllib.parse.urlsplit(self.url)
        signed = "signed" if self.secret else "unsigned"
        return f"webhook {parts.scheme}://{parts.netloc}{parts.path} ({signed})"


class ConsoleDestination(_Strict):
    type: Literal["console"]

    def describe(self) -> str:
        return "console (stdout)"


Destination = Annotated[
    SlackDestination | WebhookDestination | ConsoleDestination, Field(discriminator="type")
]


class TermConfig(_Strict):
    term: str
    exact: bool = False
    prefix: bool = False
    regex: bool = False
    clitics: bool | None = None
    strict: bool | None = None


Term = str | TermConfig


def _clock_time(value: str) -> str:
    try:
        dt_time.fromisoformat(value)
    except ValueError:
        raise ValueError(f"expected a time of day like 22:00, got {value!r}") from None
    return value


class DigestConfig(_Strict):
    every: Duration


class QuietConfig(_Strict):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)
    start: Annotated[str, AfterValidator(_clock_time)] = Field(alias="from")
    end: Annotated[str, AfterValidator(_clock_time)] = Field(alias="to")
    tz: str = "UTC"

    @field_validator("tz")
    @classmethod
    def _tz(cls, v: str) -> str:
        try:
            ZoneInfo(v)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {v!r} (an IANA name like Asia/Riyadh)") from None
        return v


class WatchlistConfig(_Strict):
    name: str = Field(min_length=1)
    any: list[Term] = Field(default_factory=list)
    all: list[Term] = Field(default_factory=list)
    none: list[Term] = Field(default_factory=list)
    notify: list[str] = Field(default_factory=list)
    feeds: list[str] = Field(default_factory=list)
    fields: list[TextField] = Field(default_factory=lambda: list(ALL_FIELDS))
    digest: DigestConfig | None = None  # one message per period instead of one per alert
    quiet: QuietConfig | None = None  # hold alerts, then send one digest when quiet ends
    priority: Literal["normal", "urgent"] = "normal"  # urgent bypasses digest and quiet
    max_per_hour: int | None = Field(default=None, ge=1)  # beyond it: one "N more" summary

    def loudness(self) -> Loudness:
        quiet = None
        if self.quiet is not None:
            quiet = Quiet(
                dt_time.fromisoformat(self.quiet.start),
                dt_time.fromisoformat(self.quiet.end),
                self.quiet.tz,
            )
        return Loudness(
            digest_every=self.digest.every if self.digest else None,
            quiet=quiet,
            urgent=self.priority == "urgent",
            max_per_hour=self.max_per_hour,
        )


def parse_listen(value: str) -> tuple[str, int]:
    """HOST:PORT, [v6]:PORT or a bare PORT (on 127.0.0.1) -> (host, port)."""
    text = value.strip()
    host, sep, port = text.rpartition(":")
    if not sep:
        host, port = "127.0.0.1", text
    host = host.removeprefix("[").removesuffix("]")
    if not host or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ValueError(f"expected HOST:PORT like 127.0.0.1:9108, got {value!r}")
    return host, int(port)


class HttpConfig(_Strict):
    """The HTTP endpoint (/healthz, /metrics); off unless the config has an `http` section."""

    listen: str = "127.0.0.1:9108"

    @field_validator("listen")
    @classmethod
    def _listen(cls, v: str) -> str:
        parse_listen(v)
        return v


class MonitorConfig(_Strict):
    storage: str = "sqlite:///data/monitor.db"
    http: HttpConfig | None = None  # /healthz and /metrics; off by default
    poll: PollConfig = Field(default_factory=PollConfig)
    max_age: Duration = 6 * 3600.0
    stories: StoriesConfig = Field(default_factory=StoriesConfig)
    operator: list[str] = Field(default_factory=list)  # destinations told of unhealthy feeds etc.
    feeds: list[FeedConfig] = Field(default_factory=list)
    destinations: dict[str, Destination] = Field(default_factory=dict)
    watchlists: list[WatchlistConfig] = Field(default_factory=list)

    @field_validator("storage")
    @classmethod
    def _storage(cls, v: str) -> str:
        if v.startswith(("postgresql://", "postgres://")):
            raise ValueError(
                "PostgreSQL storage is not available in this version; use sqlite:///PATH"
            )
        if not v.startswith("sqlite:///") or len(v) <= len("sqlite:///"):
            raise ValueError("storage must be sqlite:///PATH")
        return v


@dataclass(frozen=True, slots=True)
class Config:
    """A validated config, ready to run: what the daemon and commands use."""

    path: str
    raw: MonitorConfig
    feeds: tuple[FeedSpec, ...]
    watchlists: tuple[WatchlistSpec, ...]
    notes: tuple[str, ...]  # informational findings for `check` (e.g. strict terms)

    @property
    def storage(self) -> str:
        return self.raw.storage

    @property
    def destinations(
        self,
    ) -> Mapping[str, SlackDestination | WebhookDestination | ConsoleDestination]:
        return self.raw.destinations

    def summary(self) -> str:
        lines = [
            f"{self.path}: ok",
            f"  storage: {_redact_dsn(self.storage)}",
            f"  feeds: {len(self.feeds)}",
        ]
        lines += [f"    {f.name}: {f.url} every {_fmt(f.interval)}" for f in self.feeds]
        lines.append(f"  destinations: {len(self.destinations)}")
        lines += [f"    {n}: {d.describe()}" for n, d in self.destinations.items()]
        lines.append(f"  watchlists: {len(self.watchlists)}")
        for w in self.watchlists:
            terms = len(w.any) + len(w.all) + len(w.none)
            lines.append(f"    {w.name}: {terms} terms -> {', '.join(w.notify) or '(nobody)'}")
        if self.notes:
            lines.append("  notes:")
            lines += [f"    {n}" for n in self.notes]
        return "\n".join(lines)


def _fmt(seconds: float) -> str:
    for unit, size in (("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    return f"{seconds:g}s"


def _redact_dsn(dsn: str) -> str:
    return re.sub(r"//([^:/@]+):[^@]*@", r"//\1:***@", dsn)


# --- YAML with line numbers -------------------------------------------------------------------

Path_ = tuple[str | int, ...]


def _lines(node: yaml.Node, path: Path_, out: dict[Path_, int]) -> None:
    out[path] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        for k, v in node.value:
            key = k.value if isinstance(k, yaml.ScalarNode) else str(k.value)
            out[(*path, key)] = k.start_mark.line + 1
            _lines(v, (*path, key), out)
            out[(*path, key)] = k.start_mark.line + 1
    elif isinstance(node, yaml.SequenceNode):
        for i, v in enumerate(node.value):
            _lines(v, (*path, i), out)


def format_path(path: Sequence[str | int]) -> str:
    s = ""
    for p in path:
        if isinstance(p, int):
            s += f"[{p}]"
        else:
            s += ("." if s else "") + str(p)
    return s


def _line_of(lines: Mapping[Path_, int], path: Path_) -> int | None:
    for n in range(len(path), -1, -1):
        if path[:n] in lines:
            return lines[path[:n]]
    return None


def _expand(
    value: Any, path: Path_, env: Mapping[str, str], missing: list[tuple[Path_, str]]
) -> Any:
    if isinstance(value, str):

        def sub(m: re.Match[str]) -> str:
            name = m.group(1)
            if name not in env:
                missing.append((path, name))
                return ""
            return env[name]

        return _ENV.sub(sub, value)
    if isinstance(value, dict):
        return {k: _expand(v, (*path, k), env, missing) for k, v in value.items()}
    if isinstance(value, list):
        return [_expand(v, (*path, i), env, missing) for i, v in enumerate(value)]
    return value


def resolve_path(cli_path: str | None, env: Mapping[str, str] | None = None) -> str:
    """`-c FILE`, else $MONITOR_CONFIG, else config/monitor.yaml."""
    env = os.environ if env is None else env
    return cli_path or env.get("MONITOR_CONFIG") or DEFAULT_PATH


def load(path: str, env: Mapping[str, str] | None = None) -> Config:
    """Read, expand and validate a config file. Raises ConfigError listing every problem."""
    env = os.environ if env is None else env
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError([ConfigProblem(path, None, "", "no such config file")]) from None
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError([ConfigProblem(path, None, "", f"cannot read: {e}")]) from e
    return loads(text, path=path, env=env)


def loads(text: str, *, path: str = "<config>", env: Mapping[str, str] | None = None) -> Config:
    env = os.environ if env is None else env
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        reason = getattr(e, "problem", None) or str(e)
        raise ConfigError([ConfigProblem(path, line, "", f"invalid YAML: {reason}")]) from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError([ConfigProblem(path, 1, "", "the config must be a mapping of keys")])
    lines: dict[Path_, int] = {}
    if node is not None:
        _lines(node, (), lines)

    problems: list[ConfigProblem] = []

    def problem(p: Path_, message: str) -> None:
        problems.append(ConfigProblem(path, _line_of(lines, p), format_path(p), message))

    missing: list[tuple[Path_, str]] = []
    data = _expand(data, (), env, missing)
    for p, name in missing:
        problem(p, f"environment variable ${{{name}}} is not set")

    _cross_check(data, problem)
    try:
        raw = MonitorConfig.model_validate(data)
    except ValidationError as e:
        unset = {p for p, _ in missing}
        for err in e.errors():
            loc = _clean_loc(err["loc"])
            if any(loc[: len(p)] == p for p in unset):
                continue  # the unset variable is the reason; say it once
            problem(loc, _message(err))
        problems.sort(key=lambda p: (p.line or 0, p.path))
        raise ConfigError(problems) from None
    if missing:
        raise ConfigError(problems)

    feeds, watchlists, notes = _build(raw, problem)
    if problems:
        problems.sort(key=lambda p: (p.line or 0, p.path))
        raise ConfigError(problems)
    return Config(path=path, raw=raw, feeds=feeds, watchlists=watchlists, notes=tuple(notes))


def _cross_check(data: dict[str, Any], problem: Any) -> None:
    """References between sections, checked on the raw data so that they are reported together
    with every other problem, even when a section fails validation."""
    dests = data.get("destinations")
    known = set(dests) if isinstance(dests, dict) else set()
    ops = data.get("operator")
    for j, d in enumerate(ops if isinstance(ops, list) else []):
        if isinstance(d, str) and d not in known:
            names = ", ".join(sorted(known)) or "none defined"
            problem(("operator", j), f"unknown destination {d!r} (known: {names})")
    wls = data.get("watchlists")
    for i, w in enumerate(wls if isinstance(wls, list) else []):
        notify = w.get("notify") if isinstance(w, dict) else None
        for j, d in enumerate(notify if isinstance(notify, list) else []):
            if isinstance(d, str) and d not in known:
                names = ", ".join(sorted(known)) or "none defined"
                problem(
                    ("watchlists", i, "notify", j), f"unknown destination {d!r} (known: {names})"
                )


def _clean_loc(loc: tuple[str | int, ...]) -> Path_:
    # pydantic puts union branch names ("str", "TermConfig", "slack", ...) in locations.
    out: list[str | int] = []
    for part in loc:
        if isinstance(part, str) and (
            part in ("str", "TermConfig", "function-after[_check_feed_url()]")
            or (part in ("slack", "webhook", "console") and out and out[-2:-1] == ["destinations"])
        ):
            continue
        out.append(part)
    return tuple(out)


def _message(err: Any) -> str:
    kind = err["type"]
    if kind == "extra_forbidden":
        return "unknown key"
    if kind == "missing":
        return "required key is missing"
    if kind == "union_tag_invalid":
        return f"unknown destination type {err['input'].get('type')!r} (slack, webhook or console)"
    if kind == "union_tag_not_found":
        return "a destination needs a type: slack, webhook or console"
    msg = str(err["msg"])
    return msg.removeprefix("Value error, ")


def _term(t: Term) -> TermSpec:
    # A trailing * makes a prefix term; the text keeps it, so matches report the term as written.
    if isinstance(t, str):
        text = t.strip()
        return TermSpec(text=text, prefix=text.endswith("*") and len(text) > 1)
    text = t.term.strip()
    prefix = t.prefix or (text.endswith("*") and not t.regex and len(text) > 1)
    return TermSpec(
        text=text, exact=t.exact, prefix=prefix, regex=t.regex, clitics=t.clitics, strict=t.strict
    )


def _build(
    raw: MonitorConfig, problem: Any
) -> tuple[tuple[FeedSpec, ...], tuple[WatchlistSpec, ...], list[str]]:
    from monitor.match import term_notes, term_problems

    notes: list[str] = []
    feeds: list[FeedSpec] = []
    names: dict[str, int] = {}
    urls: dict[str, int] = {}
    for i, f in enumerate(raw.feeds):
        name = f.name or (urllib.parse.urlsplit(f.url).hostname or f.url)
        if name in names:
            problem(
                ("feeds", i, "name"),
                f"feed name {name!r} is used twice (also feeds[{names[name]}])",
            )
        if f.url in urls:
            problem(("feeds", i, "url"), f"feed URL is listed twice (also feeds[{urls[f.url]}])")
        names.setdefault(name, i)
        urls.setdefault(f.url, i)
        feeds.append(
            FeedSpec(
                url=f.url,
                name=name,
                interval=f.interval or raw.poll.interval,
                timeout=f.timeout or raw.poll.timeout,
                boilerplate=tuple(f.boilerplate),
            )
        )

    watchlists: list[WatchlistSpec] = []
    seen: dict[str, int] = {}
    for i, w in enumerate(raw.watchlists):
        if w.name in seen:
            problem(("watchlists", i, "name"), f"watchlist {w.name!r} is defined twice")
        seen.setdefault(w.name, i)
        if not w.any and not w.all:
            problem(("watchlists", i), "a watchlist needs at least one term in `any` or `all`")
        for j, fname in enumerate(w.feeds):
            if fname not in names:
                problem(("watchlists", i, "feeds", j), f"unknown feed {fname!r}")
        groups: dict[str, tuple[TermSpec, ...]] = {}
        for key in ("any", "all", "none"):
            specs = []
            for j, t in enumerate(getattr(w, key)):
                spec = _term(t)
                for msg in term_problems(spec):
                    problem(("watchlists", i, key, j), msg)
                notes += [f"watchlist {w.name!r} {key}[{j}]: {n}" for n in term_notes(spec)]
                specs.append(spec)
            groups[key] = tuple(specs)
        watchlists.append(
            WatchlistSpec(
                name=w.name,
                any=groups["any"],
                all=groups["all"],
                none=groups["none"],
                notify=tuple(w.notify),
                feeds=tuple(w.feeds),
                fields=tuple(dict.fromkeys(w.fields)),
                loudness=w.loudness(),
            )
        )
    return tuple(feeds), tuple(watchlists), notes


def sqlite_path(dsn: str) -> str:
    """The file path of a sqlite:///PATH DSN (relative paths are relative to the working dir)."""
    if not dsn.startswith("sqlite:///"):
        raise ValueError(f"not a sqlite DSN: {dsn}")
    return dsn[len("sqlite:///") :]
