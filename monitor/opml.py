"""OPML feed lists: parse an OPML export into feed outlines, plan what an import adds, render
configured feeds as OPML 2.0. Pure: bytes in, values out; no I/O, no clock (`now` is passed in).

Parsing treats the file as untrusted XML. It uses the stdlib expat parser directly and refuses
any entity declaration, any DTD with an internal subset or an external reference, and files
over `MAX_OPML_BYTES`, so a billion-laughs bomb or an external entity (``SYSTEM "file:///..."``)
is refused before anything expands or is fetched. A plain ``<!DOCTYPE opml>`` is accepted.

Every ``<outline>`` with an ``xmlUrl`` is a feed, at any depth; the outlines around it (the
reader's folders) become its `category`. Other outlines are folders and are not feeds.

Our own export keeps each feed's explicit settings as attributes in the `NS` namespace
(``monitor:interval="120"``, ``monitor:timeout``, ``monitor:boilerplate`` as a JSON list), so an
export imported again restores them exactly. Other readers ignore namespaced attributes.
"""

from __future__ import annotations

import json
import unicodedata
import urllib.parse
import xml.parsers.expat
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import format_datetime
from xml.sax.saxutils import quoteattr

from monitor.config import parse_duration
from monitor.errors import OpmlError
from monitor.urls import url_problem

NS = "urn:x-monitor:opml:1"
"""Namespace of the per-feed settings this monitor writes into an export."""

MAX_OPML_BYTES = 10 * 1024 * 1024
"""Refuse larger files: 10 MiB holds tens of thousands of subscriptions."""

MAX_URL_CHARS = 2048
MAX_NAME_CHARS = 80

# Invisible characters that change how a name displays (bidi overrides, marks) are dropped;
# ZWNJ and ZWJ shape Persian and Urdu words and are kept.
_KEEP_FORMAT = {"\u200c", "\u200d"}


@dataclass(frozen=True, slots=True)
class OpmlFeed:
    """One feed outline as found in the file, before any validation."""

    url: str  # xmlUrl, stripped of surrounding white space
    title: str  # the outline's text, else its title; may be empty
    category: tuple[str, ...]  # the enclosing folders, outermost first
    line: int  # line of the outline in the file, for messages
    html_url: str | None = None
    interval: str | None = None  # monitor:interval, as written
    timeout: str | None = None  # monitor:timeout, as written
    boilerplate: str | None = None  # monitor:boilerplate, a JSON list as written


@dataclass(frozen=True, slots=True)
class OpmlDocument:
    title: str | None
    feeds: tuple[OpmlFeed, ...]
    includes: tuple[OpmlFeed, ...]  # type="include" outlines: other files, never fetched


@dataclass(frozen=True, slots=True)
class ExistingFeed:
    """A feed already in the config: its URL and its effective name."""

    url: str
    name: str


@dataclass(frozen=True, slots=True)
class NewFeed:
    """A feed an import adds, as it will be written to the config."""

    url: str
    name: str
    category: tuple[str, ...] = ()
    interval: float | None = None
    timeout: float | None = None
    boilerplate: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Skipped:
    feed: OpmlFeed
    reason: str  # "already in the config as 'bbc-arabic'", "listed twice in the file"


@dataclass(frozen=True, slots=True)
class Refused:
    feed: OpmlFeed
    reason: str


@dataclass(frozen=True, slots=True)
class ImportPlan:
    """What an import does: decided here, applied by monitor.feedlist."""

    added: tuple[NewFeed, ...]
    skipped: tuple[Skipped, ...]
    refused: tuple[Refused, ...]
    notes: tuple[str, ...] = ()  # rewrites worth telling (feed:// read as http://)


# --- parsing -------------------------------------------------------------------------------------


class _Refuse(Exception):
    """Raised inside expat handlers to stop the parse at once."""


def parse_opml(data: bytes, *, source: str = "<opml>") -> OpmlDocument:
    """Parse an OPML file (any version). Raises OpmlError naming `source` and the line."""
    if not data.strip():
        raise OpmlError(source, "the file is empty")
    if len(data) > MAX_OPML_BYTES:
        raise OpmlError(source, f"larger than {MAX_OPML_BYTES // (1024 * 1024)} MiB; refused")
    parser = xml.parsers.expat.ParserCreate(namespace_separator=" ")
    parser.SetParamEntityParsing(xml.parsers.expat.XML_PARAM_ENTITY_PARSING_NEVER)
    state = _State(parser)
    parser.StartDoctypeDeclHandler = state.doctype
    parser.EntityDeclHandler = state.entity
    parser.ExternalEntityRefHandler = state.external
    parser.StartElementHandler = state.start
    parser.EndElementHandler = state.end
    parser.CharacterDataHandler = state.chars
    try:
        parser.Parse(data, True)
    except _Refuse as e:
        raise OpmlError(source, f"line {parser.CurrentLineNumber}: {e}; refused") from None
    except xml.parsers.expat.ExpatError as e:
        reason = xml.parsers.expat.errors.messages.get(e.code, str(e))
        raise OpmlError(
            source, f"line {e.lineno}, column {e.offset + 1}: not well-formed XML: {reason}"
        ) from None
    except (LookupError, ValueError) as e:  # an encoding Python does not know
        raise OpmlError(source, f"cannot decode: {e}") from None
    if state.root is None or state.root.lower() != "opml":
        raise OpmlError(source, f"not an OPML file (the root element is <{state.root}>)")
    return OpmlDocument(
        title=" ".join(state.title.split()) or None,
        feeds=tuple(state.feeds),
        includes=tuple(state.includes),
    )


class _State:
    def __init__(self, parser: xml.parsers.expat.XMLParserType) -> None:
        self.parser = parser
        self.root: str | None = None
        self.path: list[str] = []  # element local names
        self.folders: list[str | None] = []  # per open outline: its folder name, None if a feed
        self.feeds: list[OpmlFeed] = []
        self.includes: list[OpmlFeed] = []
        self.title = ""

    def doctype(
        self, name: str, system_id: str | None, public_id: str | None, internal: int
    ) -> None:
        if system_id or public_id:
            raise _Refuse(f"the OPML refers to an external DTD ({system_id or public_id})")

    def entity(
        self,
        name: str,
        is_parameter: int,
        value: str | None,
        base: str | None,
        system_id: str | None,
        *_: object,
    ) -> None:
        if system_id:
            raise _Refuse(
                f"the OPML declares the external entity {name!r} ({system_id}), "
                "which would read another file or URL"
            )
        raise _Refuse(
            f"the OPML declares the entity {name!r}; entities can expand into gigabytes "
            "(a billion-laughs bomb)"
        )

    def external(self, *_: object) -> int:
        raise _Refuse("the OPML refers to an external entity, which could read other files")

    def start(self, tag: str, attrs: dict[str, str]) -> None:
        local = tag.rsplit(" ", 1)[-1]
        if self.root is None:
            self.root = local
        self.path.append(local)
        if local.lower() != "outline":
            return
        plain = {k.lower(): v for k, v in attrs.items() if " " not in k}
        ours = {k.split(" ", 1)[1]: v for k, v in attrs.items() if k.startswith(NS + " ")}
        title = _clean_text(plain.get("text") or plain.get("title") or "")
        line = self.parser.CurrentLineNumber
        kind = plain.get("type", "").strip().lower()
        if kind == "include" and plain.get("url"):
            self.includes.append(OpmlFeed(plain["url"].strip(), title, self._category(), line))
            self.folders.append(None)
            return
        url = plain.get("xmlurl")
        if url is None:
            self.folders.append(title)
            return
        self.folders.append(None)
        self.feeds.append(
            OpmlFeed(
                url=url.strip(),
                title=title,
                category=self._category(),
                line=line,
                html_url=(plain.get("htmlurl") or "").strip() or None,
                interval=ours.get("interval"),
                timeout=ours.get("timeout"),
                boilerplate=ours.get("boilerplate"),
            )
        )

    def _category(self) -> tuple[str, ...]:
        return tuple(f for f in self.folders if f)

    def end(self, tag: str) -> None:
        local = self.path.pop()
        if local.lower() == "outline":
            self.folders.pop()

    def chars(self, text: str) -> None:
        if self.path[-2:] == ["head", "title"] and len(self.title) < 1000:
            self.title += text


def _clean_text(text: str) -> str:
    """Control and invisible format characters out, white space collapsed."""
    kept = "".join(
        " " if unicodedata.category(c) in ("Cc", "Zl", "Zp") else c
        for c in text
        if unicodedata.category(c) != "Cf" or c in _KEEP_FORMAT
    )
    return " ".join(kept.split())


# --- planning an import --------------------------------------------------------------------------


def url_key(url: str) -> str:
    """Two URLs with the same key are the same feed: scheme (http or https), host case, a default
    port and a fragment do not matter; path and query do."""
    parts = urllib.parse.urlsplit(url.strip())
    host = (parts.hostname or "").lower()
    port = parts.port if parts.port not in (None, 80, 443) else None
    netloc = host + (f":{port}" if port else "")
    return f"{netloc}{parts.path or '/'}" + (f"?{parts.query}" if parts.query else "")


def check_url(url: str) -> tuple[str | None, str | None]:
    """(the URL to use, None) or (None, why it is refused). feed:// is read as http://."""
    if not url:
        return None, "no xmlUrl"
    if len(url) > MAX_URL_CHARS:
        return None, f"URL longer than {MAX_URL_CHARS} characters"
    if any(c.isspace() or unicodedata.category(c) in ("Cc", "Cf") for c in url):
        return None, "URL contains spaces or control characters"
    if "${" in url:
        return None, "URL contains ${...}, which the config would fill from the environment"
    lowered = url.lower()
    if lowered.startswith("feed:http://") or lowered.startswith("feed:https://"):
        url = url[len("feed:") :]
    elif lowered.startswith("feed://"):
        url = "http://" + url[len("feed://") :]
    try:
        parts = urllib.parse.urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError as e:
        return None, f"not a valid URL: {e}"
    if parts.scheme.lower() not in ("http", "https"):
        scheme = f"{parts.scheme}:" if parts.scheme else "no scheme"
        return None, f"only http:// and https:// feeds can be polled ({scheme})"
    if not parts.hostname:
        return None, "URL has no host"
    problem = url_problem(url)  # as the fetcher reads it: "http://[::1]99999" has a port
    if problem is not None:
        return None, f"not a valid URL: {problem}"
    return url, None


def _settings(feed: OpmlFeed) -> tuple[float | None, float | None, tuple[str, ...]]:
    """monitor:* attributes, validated like the config validates them. Raises ValueError."""
    interval = timeout = None
    if feed.interval is not None:
        interval = parse_duration(_number_or_text(feed.interval))
    if feed.timeout is not None:
        timeout = parse_duration(_number_or_text(feed.timeout))
    markers: tuple[str, ...] = ()
    if feed.boilerplate is not None:
        try:
            value = json.loads(feed.boilerplate)
        except json.JSONDecodeError:
            raise ValueError("monitor:boilerplate is not a JSON list") from None
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise ValueError("monitor:boilerplate must be a JSON list of strings")
        if any("${" in v for v in value):
            raise ValueError("monitor:boilerplate contains ${...}")
        markers = tuple(value)
    return interval, timeout, markers


def _number_or_text(value: str) -> float | str:
    try:
        return float(value)
    except ValueError:
        return value


def plan_import(doc: OpmlDocument, existing: Sequence[ExistingFeed]) -> ImportPlan:
    """Decide, per outline: add (with a unique name), skip (already there) or refuse (why)."""
    by_key = {url_key(f.url): f.name for f in existing}
    names = {f.name for f in existing}
    in_file: dict[str, OpmlFeed] = {}
    added: list[NewFeed] = []
    skipped: list[Skipped] = []
    refused = [Refused(f, "includes another OPML file, which is not fetched") for f in doc.includes]
    notes: list[str] = []
    for feed in doc.feeds:
        url, why = check_url(feed.url)
        if url is None:
            refused.append(Refused(feed, why or "refused"))
            continue
        if url != feed.url:
            notes.append(f"{feed.url} read as {url}")
        try:
            interval, timeout, markers = _settings(feed)
        except ValueError as e:
            refused.append(Refused(feed, str(e)))
            continue
        key = url_key(url)
        if key in by_key:
            skipped.append(Skipped(feed, f"already in the config as {by_key[key]!r}"))
            continue
        if key in in_file:
            first = in_file[key]
            where = "/".join(first.category) or "the top level"
            skipped.append(
                Skipped(feed, f"listed twice in the file (also line {first.line}, {where})")
            )
            continue
        in_file[key] = feed
        name = unique_name(derive_name(feed.title, url), names)
        names.add(name)
        added.append(NewFeed(url, name, feed.category, interval, timeout, markers))
    refused.sort(key=lambda r: r.feed.line)
    return ImportPlan(tuple(added), tuple(skipped), tuple(refused), tuple(notes))


def derive_name(title: str, url: str) -> str:
    """The outline's title, cleaned and cut to MAX_NAME_CHARS; else the URL's host."""
    name = _clean_text(title).replace("${", "{")
    if len(name) > MAX_NAME_CHARS:
        name = name[:MAX_NAME_CHARS].rstrip()
    return name or (urllib.parse.urlsplit(url).hostname or url)


def unique_name(name: str, taken: Iterable[str]) -> str:
    """`name`, else `name-2`, `name-3`, ... whichever is free."""
    used = set(taken)
    if name not in used:
        return name
    n = 2
    while f"{name}-{n}" in used:
        n += 1
    return f"{name}-{n}"


# --- export --------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ExportFeed:
    """A configured feed as exported: the name, and only the settings written in the config."""

    url: str
    name: str
    interval: float | None = None
    timeout: float | None = None
    boilerplate: tuple[str, ...] = ()


def render_opml(
    feeds: Sequence[ExportFeed], *, now: datetime, title: str = "monitor feeds"
) -> bytes:
    """OPML 2.0, UTF-8, one outline per feed in config order; `now` is aware."""
    lines = [
        '<?xml version="1.0" encoding="UTF-8"?>',
        f'<opml version="2.0" xmlns:monitor="{NS}">',
        "  <head>",
        f"    <title>{_esc(title)}</title>",
        f"    <dateCreated>{format_datetime(now.astimezone(UTC), usegmt=True)}</dateCreated>",
        "    <docs>http://opml.org/spec2.opml</docs>",
        "  </head>",
        "  <body>",
    ]
    for f in feeds:
        name = _xml_safe(f.name)
        attrs = [("type", "rss"), ("text", name), ("title", name), ("xmlUrl", _xml_safe(f.url))]
        if f.interval is not None:
            attrs.append(("monitor:interval", _seconds(f.interval)))
        if f.timeout is not None:
            attrs.append(("monitor:timeout", _seconds(f.timeout)))
        if f.boilerplate:
            markers = json.dumps(list(f.boilerplate), ensure_ascii=False)
            attrs.append(("monitor:boilerplate", _xml_safe(markers, json_escape=True)))
        rendered = " ".join(f"{k}={_attr(v)}" for k, v in attrs)
        lines.append(f"    <outline {rendered}/>")
    lines += ["  </body>", "</opml>", ""]
    return "\n".join(lines).encode("utf-8")


def _xml_safe(text: str, *, json_escape: bool = False) -> str:
    """`text` without the characters XML 1.0 cannot carry (most C0 controls, U+FFFE, U+FFFF):
    as a JSON escape inside a JSON value, else as U+FFFD."""
    out = []
    for c in text:
        o = ord(c)
        if o in (0x9, 0xA, 0xD) or 0x20 <= o <= 0xD7FF or 0xE000 <= o <= 0xFFFD or o >= 0x10000:
            out.append(c)
        else:
            out.append(f"\\u{o:04x}" if json_escape else "\ufffd")
    return "".join(out)


def _seconds(value: float) -> str:
    """Seconds, exactly: 120, or 7.25 (float repr reads back to the same float)."""
    return str(int(value)) if value.is_integer() else repr(value)


def _esc(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _attr(value: str) -> str:
    # quoteattr escapes & < > and quotes; newlines and tabs must be character references or an
    # XML parser folds them into spaces.
    return quoteattr(value, {"\n": "&#10;", "\r": "&#13;", "\t": "&#9;"})
