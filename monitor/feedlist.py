"""Feed lists in the config file: apply an OPML import, export the configured feeds. I/O: reads
the OPML file and the config file, writes the config file (atomically) or an export.

An import edits the config as text: the new feeds are inserted after the last entry of the
`feeds:` list (or a `feeds:` list is added), in the file's own indentation and line endings, so
every other byte of the file, comments included, stays as it was. Before anything is written,
the edited text must (1) parse to exactly the old document plus the new feeds, and (2) pass
`monitor.config.loads` with no problem the old file did not already have. Unset ``${ENV}``
variables are tolerated (an import does not need the secrets); any other problem in the existing
config stops the import. The file is replaced atomically (temp file, fsync, rename), through a
symlink to its target, keeping its permission bits: a crash never leaves a half-written config.
"""

from __future__ import annotations

import os
import tempfile
import urllib.parse
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import yaml

from monitor.config import Config, loads
from monitor.errors import ConfigError, ConfigProblem, OpmlError
from monitor.opml import (
    ExistingFeed,
    ExportFeed,
    ImportPlan,
    NewFeed,
    parse_opml,
    plan_import,
    render_opml,
)

_ENV_PROBLEM = "environment variable $"


@dataclass(frozen=True, slots=True)
class ImportReport:
    config_path: str
    opml_path: str
    plan: ImportPlan
    written: bool  # False on --dry-run or when nothing was added
    created: bool  # the config file did not exist and was (or would be) created
    dry_run: bool


# --- import --------------------------------------------------------------------------------------


def import_opml(
    config_path: str,
    opml_path: str,
    *,
    dry_run: bool = False,
    env: Mapping[str, str] | None = None,
) -> ImportReport:
    """Add the feeds of an OPML file to the config file. Raises OpmlError for an unreadable or
    hostile OPML file and ConfigError for a config that is broken or would become so; in both
    cases nothing is written."""
    env = os.environ if env is None else env
    try:
        data = Path(opml_path).read_bytes()
    except OSError as e:
        raise OpmlError(opml_path, f"cannot read: {e.strerror or e}") from e
    doc = parse_opml(data, source=opml_path)

    text, created = _read_config(config_path)
    before = _problems(text, config_path, env)
    if any(not p.message.startswith(_ENV_PROBLEM) for p in before):
        raise ConfigError(before)  # fix the config first; `monitor check` lists the same
    old = _document(text, config_path)
    plan = plan_import(doc, _existing(old))
    if not plan.added:
        return ImportReport(config_path, opml_path, plan, False, created, dry_run)

    new_text = append_feeds(text, plan.added, source=os.path.basename(opml_path))
    expected = dict(old)
    expected["feeds"] = [*(old.get("feeds") or []), *(feed_mapping(f) for f in plan.added)]
    if _document(new_text, config_path) != expected:
        raise ConfigError(
            [
                ConfigProblem(
                    config_path,
                    None,
                    "feeds",
                    "cannot add the feeds without changing other parts of this file; "
                    "add them by hand (see `monitor feeds import --dry-run`)",
                )
            ]
        )
    known = {(p.path, p.message) for p in before}
    new = [p for p in _problems(new_text, config_path, env) if (p.path, p.message) not in known]
    if new:
        raise ConfigError(new)
    if not dry_run:
        write_atomic(config_path, new_text.encode("utf-8"))
    return ImportReport(config_path, opml_path, plan, not dry_run, created, dry_run)


def _read_config(path: str) -> tuple[str, bool]:
    try:
        return Path(path).read_text(encoding="utf-8"), False
    except FileNotFoundError:
        return "", True
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError([ConfigProblem(path, None, "", f"cannot read: {e}")]) from e


def _problems(text: str, path: str, env: Mapping[str, str]) -> list[ConfigProblem]:
    try:
        loads(text, path=path, env=env)
    except ConfigError as e:
        return list(e.problems)
    return []


def _document(text: str, path: str) -> dict[str, Any]:
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as e:  # loads() reported it already; kept for a direct caller
        raise ConfigError([ConfigProblem(path, None, "", f"invalid YAML: {e}")]) from None
    return data if isinstance(data, dict) else {}


def _existing(data: Mapping[str, Any]) -> list[ExistingFeed]:
    """The config's feeds as written (before ${ENV} expansion), with their effective names."""
    out = []
    for f in data.get("feeds") or []:
        if isinstance(f, dict) and isinstance(f.get("url"), str):
            url = f["url"]
            name = f.get("name")
            if not isinstance(name, str):
                name = urllib.parse.urlsplit(url).hostname or url
            out.append(ExistingFeed(url, name))
    return out


# --- editing the YAML text -----------------------------------------------------------------------


def feed_mapping(feed: NewFeed) -> dict[str, Any]:
    """The config entry of a new feed, as YAML will read it back."""
    out: dict[str, Any] = {"url": feed.url, "name": feed.name}
    if feed.interval is not None:
        out["interval"] = _duration(feed.interval)
    if feed.timeout is not None:
        out["timeout"] = _duration(feed.timeout)
    if feed.boilerplate:
        out["boilerplate"] = list(feed.boilerplate)
    return out


def _duration(seconds: float) -> str | int | float:
    """2m, 1h, 90s like the example configs; a fraction of a second as a plain number."""
    if seconds.is_integer():
        n = int(seconds)
        for unit, size in (("h", 3600), ("m", 60)):
            if n % size == 0:
                return f"{n // size}{unit}"
        return f"{n}s"
    return seconds


def _scalar(value: Any, *, flow: bool = False) -> str:
    """A YAML scalar that reads back as `value`: plain when that is safe, else double-quoted."""
    if isinstance(value, float):
        # PyYAML's own representation reads back to the same float (repr digits, and a
        # ".0" in the mantissa where YAML 1.1 needs one: 1.0e-05)
        return yaml.safe_dump(value).splitlines()[0]
    if isinstance(value, int):
        return str(value)
    s = str(value)
    if not flow and s:
        try:
            if yaml.safe_load(f"k: {s}") == {"k": s} and "\n" not in s and "\r" not in s:
                return s
        except yaml.YAMLError:
            pass
    return _double_quoted(s)


# What a YAML reader takes as is inside double quotes; NEL, LS and PS are line breaks to it.
_ESCAPES = {'"': '\\"', "\\": "\\\\", "\n": "\\n", "\t": "\\t", "\r": "\\r"}


def _printable(c: str) -> bool:
    o = ord(c)
    return (
        0x20 <= o <= 0x7E
        or 0xA0 <= o <= 0xD7FF
        or (0xE000 <= o <= 0xFFFD and c not in "\u2028\u2029\ufeff")
        or 0x10000 <= o <= 0x10FFFF
    )


def _double_quoted(s: str) -> str:
    """A YAML double-quoted scalar for any text: escapes what a reader would not keep as is."""
    out = []
    for c in s:
        if c in _ESCAPES:
            out.append(_ESCAPES[c])
        elif _printable(c):
            out.append(c)
        elif ord(c) <= 0xFF:
            out.append(f"\\x{ord(c):02x}")
        elif ord(c) <= 0xFFFF:
            out.append(f"\\u{ord(c):04x}")
        else:
            out.append(f"\\U{ord(c):08x}")
    return '"' + "".join(out) + '"'


def _render_value(value: Any, *, flow: bool = False) -> str:
    if isinstance(value, list):
        return "[" + ", ".join(_scalar(v, flow=True) for v in value) + "]"
    return _scalar(value, flow=flow)


def _block(feeds: Sequence[NewFeed], dash: int, key: int, nl: str, source: str | None) -> str:
    pad, kpad = " " * dash, " " * key
    lines = [f"{pad}# imported from {source}"] if source else []
    category: tuple[str, ...] | None = None
    for f in feeds:
        if f.category and f.category != category:
            lines.append(f"{pad}# OPML folder: {' / '.join(f.category)}")
        category = f.category
        items = list(feed_mapping(f).items())
        k0, v0 = items[0]
        lines.append(f"{pad}- {' ' * (key - dash - 2)}{k0}: {_render_value(v0)}")
        lines += [f"{kpad}{k}: {_render_value(v)}" for k, v in items[1:]]
    return nl.join(lines) + nl


def _flow(feeds: Sequence[NewFeed]) -> str:
    return ", ".join(
        "{"
        + ", ".join(f"{k}: {_render_value(v, flow=True)}" for k, v in feed_mapping(f).items())
        + "}"
        for f in feeds
    )


def _line_end(text: str, index: int) -> int:
    """The index just past the end of the line holding `index` (its newline included)."""
    nl = text.find("\n", index)
    return len(text) if nl < 0 else nl + 1


def _last_leaf(node: yaml.Node) -> yaml.Node:
    while (
        isinstance(node, yaml.SequenceNode | yaml.MappingNode)
        and node.value
        and not (node.flow_style)
    ):
        last = node.value[-1]
        node = last[1] if isinstance(node, yaml.MappingNode) else last
    return node


def append_feeds(text: str, feeds: Sequence[NewFeed], *, source: str | None = None) -> str:
    """`text` with `feeds` appended to its `feeds:` list. Pure; the caller verifies the result."""
    nl = "\r\n" if "\r\n" in text else "\n"
    root = yaml.compose(text, Loader=yaml.SafeLoader)
    if root is None or (isinstance(root, yaml.ScalarNode) and root.tag.endswith(":null")):
        return _with_newline(text, nl) + "feeds:" + nl + _block(feeds, 2, 4, nl, source)
    if not isinstance(root, yaml.MappingNode):
        raise ConfigError([ConfigProblem("<config>", 1, "", "the config must be a mapping")])
    value = next((v for k, v in root.value if getattr(k, "value", None) == "feeds"), None)
    if value is None:
        return _with_newline(text, nl) + "feeds:" + nl + _block(feeds, 2, 4, nl, source)

    if isinstance(value, yaml.ScalarNode) or (
        isinstance(value, yaml.SequenceNode) and value.flow_style and not value.value
    ):
        # `feeds:`, `feeds: ~` or `feeds: []`: drop the value, start a block list below the key.
        # An empty value's marks may point at the next key, so place the list by the key's line.
        key_node = next(k for k, v in root.value if v is value)
        start, end = value.start_mark.index, value.end_mark.index
        if end > start:
            while start > key_node.end_mark.index and text[start - 1] in " \t":
                start -= 1
            text = text[:start] + text[end:]
        at = _line_end(text, key_node.end_mark.index)
        col = key_node.start_mark.column
        head = _with_newline(text[:at], nl)
        return head + _block(feeds, col + 2, col + 4, nl, source) + text[at:]

    if not isinstance(value, yaml.SequenceNode):
        raise ConfigError([ConfigProblem("<config>", None, "feeds", "feeds must be a list")])

    if value.flow_style:  # feeds: [{url: ...}, ...]
        close = value.end_mark.index - 1
        before = text[:close].rstrip()
        sep = "" if before.endswith((",", "[")) else ", "
        return text[:close] + sep + _flow(feeds) + text[close:]

    dash = value.start_mark.column
    first = value.value[0]
    key = first.start_mark.column if isinstance(first, yaml.MappingNode) else dash + 2
    if key <= dash + 1 or first.start_mark.line != value.start_mark.line:
        key = dash + 2
    leaf = _last_leaf(value.value[-1])
    if leaf.start_mark.index < value.start_mark.index:  # an alias to an anchor above the list
        raise ConfigError(
            [ConfigProblem("<config>", None, "feeds", "the feeds list ends with an alias")]
        )
    if isinstance(leaf, yaml.ScalarNode) and leaf.style in ("|", ">"):
        at = leaf.end_mark.index  # a block scalar ends at the start of a line
    else:
        at = _line_end(text, leaf.end_mark.index)
    head = _with_newline(text[:at], nl)
    return head + _block(feeds, dash, key, nl, source) + text[at:]


def _with_newline(text: str, nl: str) -> str:
    return text if not text or text.endswith("\n") else text + nl


# --- export --------------------------------------------------------------------------------------


def export_opml(config_path: str, *, now: datetime, env: Mapping[str, str] | None = None) -> bytes:
    """The configured feeds as OPML 2.0. URLs and names are written as in the config file, so a
    ``${TOKEN}`` in a feed URL stays a reference and the secret never lands in the export."""
    env = os.environ if env is None else env
    text, created = _read_config(config_path)
    if created:
        raise ConfigError([ConfigProblem(config_path, None, "", "no such config file")])
    config = _load_feeds(text, config_path, env)
    raw = _document(text, config_path).get("feeds") or []
    feeds = []
    for i, (fc, spec) in enumerate(zip(config.raw.feeds, config.feeds, strict=True)):
        written = raw[i] if i < len(raw) and isinstance(raw[i], dict) else {}
        url, name = written.get("url"), written.get("name")
        url = url if isinstance(url, str) else fc.url
        name = name if isinstance(name, str) else spec.name
        feeds.append(ExportFeed(url, name, fc.interval, fc.timeout, tuple(fc.boilerplate)))
    return render_opml(feeds, now=now)


def _load_feeds(text: str, path: str, env: Mapping[str, str]) -> Config:
    """The validated config; when only ${ENV} variables outside `feeds` are unset, the feeds
    section validated alone (exporting feeds does not need the Slack token)."""
    try:
        return loads(text, path=path, env=env)
    except ConfigError as e:
        if not all(
            p.message.startswith(_ENV_PROBLEM) and not p.path.startswith("feeds")
            for p in e.problems
        ):
            raise
    feeds = _document(text, path).get("feeds") or []
    return loads(yaml.safe_dump({"feeds": feeds}, allow_unicode=True), path=path, env=env)


# --- files ---------------------------------------------------------------------------------------


def write_atomic(path: str, data: bytes) -> None:
    """Replace `path` (its target, if a symlink) with `data`: temp file, fsync, rename."""
    real = os.path.realpath(path)
    folder = os.path.dirname(real) or "."
    try:
        mode = os.stat(real).st_mode & 0o7777
    except FileNotFoundError:
        umask = os.umask(0)
        os.umask(umask)
        mode = 0o666 & ~umask
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{os.path.basename(real)}.", suffix=".tmp", dir=folder)
    except OSError as e:
        raise ConfigError([ConfigProblem(path, None, "", f"cannot write: {e}")]) from e
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fchmod(f.fileno(), mode)
            os.fsync(f.fileno())
        os.replace(tmp, real)
    except BaseException as e:
        Path(tmp).unlink(missing_ok=True)
        if isinstance(e, OSError):
            raise ConfigError([ConfigProblem(path, None, "", f"cannot write: {e}")]) from e
        raise
    dfd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(dfd)
    finally:
        os.close(dfd)


# --- report --------------------------------------------------------------------------------------


def _show_url(url: str) -> str:
    """A URL fit to print: a password in it is masked."""
    parts = urllib.parse.urlsplit(url)
    if parts.password is None:
        return url
    netloc = f"{parts.username}:***@{parts.hostname}" + (f":{parts.port}" if parts.port else "")
    return urllib.parse.urlunsplit(parts._replace(netloc=netloc))


def render_report(report: ImportReport) -> str:
    """The import summary as printed by `monitor feeds import`."""
    plan = report.plan
    verb = "would add" if report.dry_run else "added"
    lines = []
    if plan.added:
        target = report.config_path + (" (a new file)" if report.created else "")
        lines.append(f"{verb} {len(plan.added)} feeds from {report.opml_path} to {target}:")
        for f in plan.added:
            folder = f"  [{' / '.join(f.category)}]" if f.category else ""
            lines.append(f"  + {f.name}  {_show_url(f.url)}{folder}")
    if plan.skipped:
        lines.append(f"skipped {len(plan.skipped)} (already present):")
        for s in plan.skipped:
            lines.append(f"  = {s.feed.title or '(untitled)'}  {_show_url(s.feed.url)}: {s.reason}")
    if plan.refused:
        lines.append(f"refused {len(plan.refused)}:")
        for r in plan.refused:
            title = r.feed.title or "(untitled)"
            lines.append(f"  ! line {r.feed.line} {title!r}  {_show_url(r.feed.url)}: {r.reason}")
    lines += [f"note: {n}" for n in plan.notes]
    lines.append(
        f"{verb} {len(plan.added)}, skipped {len(plan.skipped)} (already present), "
        f"refused {len(plan.refused)}"
    )
    if report.written:
        lines.append("a running daemon applies it on `monitor reload` (or SIGHUP)")
    return "\n".join(lines)
