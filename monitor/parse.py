"""Parse: the bytes of a fetched feed -> a ParsedFeed of plain-text Entry values. Pure: no I/O,
no clock, no network (feedparser only ever sees bytes we hand it, never a URL or a path).

    parse_feed(body, url=..., content_type=...) -> ParsedFeed   raises ParseError

What happens to the bytes, in order, before feedparser sees them:

1. Decode to text ourselves (`decode_body`): a BOM wins (UTF-8, UTF-16, UTF-32); then bytes that
   are valid UTF-8 are UTF-8 whatever the label says; then the charset from the HTTP header or the
   XML declaration if it decodes cleanly; then windows-1256, the usual charset of Arabic sites that
   mislabel their feeds. A single-byte Western label (latin-1, windows-1252) over bytes that read
   as Arabic in windows-1256 is treated as the mislabel it almost always is.
2. Neutralize: the DOCTYPE with its internal subset and every ENTITY declaration is removed (no
   billion laughs, no huge internal entity, no XXE, no external DTD); references to entities that
   are not XML's five become numeric references for HTML names (`&nbsp;`) or literal text; control
   characters XML forbids are dropped. The strict (expat) parser then accepts what the slow loose
   parser would otherwise have to forgive.
3. Bound: over-long author fields are cut before feedparser's backtracking author regex meets them.
4. Lighten: elements monitor never reads (categories, authors, comment links) are removed
   (`drop_unused`), and descriptions and content:encoded written as one CDATA section are put
   aside for a token and given back to the entry after feedparser (`stash_content`), processed
   as feedparser's strict parser processes them. feedparser's cost goes by element and, for its
   cp1252 mapping, by character; these two halve parse_feed's time on WordPress-shaped feeds.
5. Re-encode as UTF-8 with a matching XML declaration, and parse with `sanitize_html=False,
   resolve_relative_uris=False`: we make our own plain text (`html_to_text`), which halves
   feedparser's time again.

Entries come out with plain-text, length-capped fields, links only when they resolve to http(s)
against the feed URL, and `published` as an aware UTC datetime or None. Dates are kept as the feed
gave them, far future included; `clamp_published` orders them against a `now` the caller passes.

`parse_feed` is a top-level function over picklable values so that a ProcessPoolExecutor can run
it in a worker.
"""

from __future__ import annotations

import calendar
import codecs
import contextlib
import copy
import html
import io
import re
import secrets
import unicodedata
from collections.abc import Mapping
from datetime import UTC, datetime
from html.entities import name2codepoint
from typing import Any
from urllib.parse import urljoin, urlsplit

import feedparser

from monitor.errors import ParseError
from monitor.models import Entry, ParsedFeed

try:  # the optional C accelerator (see monitor.dedup): neutralize's checks, html_to_text's layout
    from monitor import _fastprint
except ImportError:  # pragma: no cover - a machine without a compiler: the Python path
    _fastprint = None  # type: ignore[assignment]  # the module or None; callers test for None
if not hasattr(_fastprint, "has_c1"):  # pragma: no cover - a build older than this module
    _fastprint = None  # type: ignore[assignment]


def cp1252_table(mapping: object) -> list[int] | None:
    """feedparser's `pop` maps the C1 controls that windows-1252 used for punctuation (0x80-0x9F)
    to the characters they stand for, with `text.translate(_cp1252)` on every element's text.
    `_cp1252` is a dict, and inside str.translate every character the dict lacks (all of Arabic)
    raises and clears a KeyError: a sixth of feedparser's time on an Arabic feed. This list gives
    str.translate the same mapping without the exceptions: the identity over the Basic
    Multilingual Plane, with feedparser's own entries in place; a character beyond it raises
    IndexError, a LookupError like KeyError, and is kept as before. None when `mapping` is not
    the dict of code points to single characters this expects (a future feedparser)."""
    if not isinstance(mapping, dict) or not all(
        isinstance(k, int) and 0 <= k < 0x10000 and isinstance(v, str) and len(v) == 1
        for k, v in mapping.items()
    ):
        return None
    table = list(range(0x10000))
    for k, v in mapping.items():
        table[k] = ord(v)
    return table


def _install_cp1252_table() -> bool:
    """Swap feedparser's cp1252 dict for the equivalent list (`cp1252_table`) in the one module
    that translates with it. Same output (tests/test_parse.py checks it on every code point of
    the table and beyond), 0.07 ms less per Arabic item. False if feedparser changed shape."""
    mixin = getattr(feedparser, "mixin", None)
    table = cp1252_table(getattr(mixin, "_cp1252", None))
    if mixin is None or table is None:
        return False
    mixin._cp1252 = table
    return True


CP1252_TABLE_INSTALLED = _install_cp1252_table()

_ATOMS = (str, int, float, bool, type(None))


def feedparser_dict_deepcopy(d: dict[Any, Any], memo: dict[int, Any]) -> dict[Any, Any]:
    """`copy.deepcopy` of a FeedParserDict, as the default would make it, but without its
    recursion when every value is immutable: feedparser deep-copies the element's content
    parameters (type, language, base, value: all strings) for each title, description and
    content, 7% of parse_feed. Nested values are still copied deeply. A FeedParserDict keeps no
    instance attributes (checked where this is installed)."""
    cls = type(d)
    if all(type(v) in _ATOMS for v in d.values()):
        return cls(d)
    out = cls()
    memo[id(d)] = out
    for k, v in d.items():
        dict.__setitem__(out, copy.deepcopy(k, memo), copy.deepcopy(v, memo))
    return out


def _install_feedparser_dict_deepcopy() -> bool:
    """Give FeedParserDict `feedparser_dict_deepcopy` as its __deepcopy__, unless it has one of
    its own or its instances carry attributes (a future feedparser): then nothing changes."""
    cls = getattr(getattr(feedparser, "util", None), "FeedParserDict", None)
    if cls is None or "__deepcopy__" in vars(cls) or not issubclass(cls, dict):
        return False
    if getattr(cls(), "__dict__", {}):
        return False
    cls.__deepcopy__ = feedparser_dict_deepcopy
    return True


FEEDPARSER_DEEPCOPY_INSTALLED = _install_feedparser_dict_deepcopy()
# What feedparser's pop translates with: the list above, or its own map if that was not swapped.
_CP1252_TABLE: Any = getattr(feedparser.mixin, "_cp1252", None) or feedparser.html._cp1252

MAX_TITLE = 1_000
MAX_SUMMARY = 10_000
MAX_CONTENT = 100_000
MAX_GUID = 2_000
MAX_LINK = 4_000
MAX_AUTHOR = 512  # chars of an author field kept before feedparser's author regex sees it

# --- decoding ---------------------------------------------------------------------------------

_BOMS: tuple[tuple[bytes, str], ...] = (
    (codecs.BOM_UTF32_LE, "utf-32-le"),  # before UTF-16 LE: it starts with the same two bytes
    (codecs.BOM_UTF32_BE, "utf-32-be"),
    (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
)
_XML_DECL_RE = re.compile(rb"^\s*<\?xml[^>]*?\?>", re.S)
_XML_DECL_TEXT_RE = re.compile(r"^\s*<\?xml[^>]*?\?>", re.S)
_DECL_ENCODING_RE = re.compile(rb"""encoding\s*=\s*["']\s*([A-Za-z0-9._:-]+)\s*["']""")
_HEADER_CHARSET_RE = re.compile(r"""charset\s*=\s*["']?\s*([A-Za-z0-9._:-]+)""", re.I)
_WESTERN = frozenset({"latin-1", "iso8859-1", "cp1252", "ascii", "iso8859-15"})
_ARABIC_RE = re.compile(r"[\u0600-\u06ff]")


def _codec(label: str | None) -> str | None:
    if not label:
        return None
    try:
        return codecs.lookup(label.strip().lower()).name
    except LookupError:
        return None


def _header_charset(content_type: str | None) -> str | None:
    if not content_type:
        return None
    m = _HEADER_CHARSET_RE.search(content_type)
    return m.group(1) if m else None


def _declared_charset(head: bytes) -> str | None:
    m = _XML_DECL_RE.match(head)
    if not m:
        return None
    e = _DECL_ENCODING_RE.search(m.group(0))
    return e.group(1).decode("ascii") if e else None


def _looks_arabic(text: str) -> bool:
    """Most non-ASCII characters are Arabic letters."""
    non_ascii = sum(1 for ch in text if ord(ch) > 127)
    return non_ascii > 0 and len(_ARABIC_RE.findall(text)) >= 0.6 * non_ascii


def decode_body(body: bytes, content_type: str | None = None) -> tuple[str, str]:
    """Decode a feed's bytes to text. Returns (text, codec name). Never raises: the last resort
    is windows-1256 with replacement characters."""
    for bom, name in _BOMS:
        if body.startswith(bom):
            return body[len(bom) :].decode(name, "replace"), name
    # UTF-16/32 without a BOM: '<' next to NUL bytes.
    if body[:4] in (b"<\x00?\x00", b"<\x00\x00\x00"):
        name = "utf-16-le" if body[:4] == b"<\x00?\x00" else "utf-32-le"
        return body.decode(name, "replace"), name
    if body[:4] in (b"\x00<\x00?", b"\x00\x00\x00<"):
        name = "utf-16-be" if body[:4] == b"\x00<\x00?" else "utf-32-be"
        return body.decode(name, "replace"), name
    try:
        return body.decode("utf-8"), "utf-8"  # valid UTF-8 is UTF-8, whatever the label says
    except UnicodeDecodeError:
        pass
    for label in (_header_charset(content_type), _declared_charset(body[:512])):
        codec = _codec(label)
        if codec is None or codec in ("utf-8", "utf-16", "utf-32"):
            continue
        name = codec
        try:
            text = body.decode(name)
        except UnicodeDecodeError:
            continue
        if name in _WESTERN:
            arabic = body.decode("cp1256", "replace")
            if _looks_arabic(arabic):
                return arabic, "cp1256"
        return text, name
    return body.decode("cp1256", "replace"), "cp1256"


# --- neutralizing ------------------------------------------------------------------------------

# A DOCTYPE with an optional internal subset; the subset may hold quoted '>' and ']'.
_DOCTYPE_RE = re.compile(
    r"""<!DOCTYPE(?:[^\[>"']|"[^"]*"|'[^']*')*(?:\[(?:[^\]"']|"[^"]*"|'[^']*')*\]\s*)?>""",
    re.I,
)
_DOCTYPE_START_RE = re.compile(r"<!DOCTYPE", re.I)
_ELEMENT_RE = re.compile(r"<[A-Za-z_]")
_ENTITY_DECL_RE = re.compile(r"""<!ENTITY(?:[^>"']++|"[^"]*+"|'[^']*+')*+>""", re.I)
_ENTITY_START_RE = re.compile(r"<!ENTITY", re.I)
# XML's five are left as they are: not matching them spares a Python call for each &quot;.
_ENTITY_REF_RE = re.compile(r"&(?!(?:amp|lt|gt|quot|apos);)([A-Za-z_][A-Za-z0-9._:-]*);")
_XML_ENTITIES = frozenset({"amp", "lt", "gt", "quot", "apos"})
_CONTROL_RE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")
_CONTROL_BYTES = bytes([*range(0x00, 0x09), 0x0B, 0x0C, *range(0x0E, 0x20)])
_AUTHOR_RE = re.compile(
    r"(<(?:author|managingEditor|webMaster|dc:creator|itunes:author|name|email)\b[^<>]*+>)"
    r"([^<]{" + str(MAX_AUTHOR) + r"})[^<]+"
)


def _entity_ref(m: re.Match[str]) -> str:
    name = m.group(1)
    if name in _XML_ENTITIES:
        return m.group(0)
    cp = name2codepoint.get(name)
    if cp is not None:
        return f"&#{cp};"
    return "&amp;" + name + ";"  # an unknown or declared entity: shown literally, never expanded


# Category and subject elements (HAZARDS 14): feedparser keeps tags with a uniqueness check that
# is quadratic (10,000 categories: 1.5 s; 20,000: 6 s, measured). monitor never reads them, so
# past a handful they are dropped before feedparser sees the document.
MAX_CATEGORIES = 100
_CATEGORY_RE = re.compile(
    r"<(?:[A-Za-z][\w.-]*:)?(?:category|subject)\b(?:[^<>/]|/(?!>))*+"
    r"(?:/>|>(?:<!\[CDATA\[(?:[^\]]|\](?!\]>)){0,1000}+\]\]>|[^<]++)*+"
    r"</(?:[A-Za-z][\w.-]*:)?(?:category|subject)\s*>)",
    re.I,
)


# Elements monitor never reads, common in real feeds (WordPress puts categories, dc:creator,
# comments, wfw:commentRss and slash:comments on every item): removed before feedparser sees the
# document (`drop_unused`), since feedparser's cost goes by element, not by byte. On WordPress-
# shaped items that is 3 of 10 elements and 15% of parse_feed (benchmarks/poll.py). CDATA
# sections are matched first and put back as they are (an unclosed one runs to the end of the
# text), so nothing quoted inside content is touched; an element with child elements (an Atom
# author), or with '<' or ']' in its CDATA, is left to feedparser. Every scan stops at the next
# '<' or runs once to the end: linear time on any input (tests/test_parse.py times hostile ones).
_UNUSED_ELEMENT_RE = re.compile(
    r"(<!\[CDATA\[[^\]]*+(?:\](?!\]>)[^\]]*+)*+(?:\]\]>|\Z))"
    r"|<((?:[A-Za-z_][\w.-]*:)?(?:category|subject|creator|author|comments|commentRss))\b"
    r"(?:[^<>/]|/(?!>))*+(?:/>|>(?:<!\[CDATA\[[^\]<]*+\]\]>|[^<]++)*+</\2\s*>)"
)


def drop_unused(text: str) -> str:
    """`text` without the elements monitor never reads (see _UNUSED_ELEMENT_RE); CDATA kept."""
    return _UNUSED_ELEMENT_RE.sub(r"\1", text)


_ENTRY_END_RE = re.compile(r"</(?:[A-Za-z_][\w.-]*:)?(item|entry)\s*>", re.I)
_ROOT_RE = re.compile(r"<([A-Za-z_][\w.:-]*)")


def cut_entries(text: str, max_items: int) -> tuple[str, int]:
    """A document with more entries than we keep is cut after the last one kept, and its root
    closed, before feedparser sees it: 300,000 tiny items under the byte cap took feedparser
    20 s and 370 MB (benchmarks/hostile.py); the entries past `max_items` are dropped anyway.
    Returns the text and how many entries the document had."""
    ends = [m.end() for m in _ENTRY_END_RE.finditer(text)]
    if len(ends) <= max_items:
        return text, len(ends)
    root = _ROOT_RE.search(text)
    if root is None:
        return text, len(ends)
    name = root.group(1)
    tail = "</channel>" if name.lower() == "rss" else ""
    return text[: ends[max_items - 1]] + f"{tail}</{name}>", len(ends)


# An item's description and content:encoded in their usual form, one CDATA section (WordPress
# writes them so), are taken out of the document before feedparser and put back into the entry
# after it (`stash_content`). feedparser adds nothing to such a text in strict mode: it joins
# it, strips it, tries the UTF-8-read-as-Latin-1 repair and maps cp1252's C1 punctuation
# (`_as_feedparser_gives` does the same); but it maps character by character in Python's
# str.translate, and the article's body is most of an item's characters: a third of
# parse_feed's time on WordPress-shaped feeds (benchmarks/analyze.py). Only the plain form is
# taken: another prefix for the content namespace, a split CDATA, escaped markup or attributes
# stay with feedparser. A token lands wherever feedparser puts the element's text (a
# description can become the content, content the summary), so both fields are looked up.
_CONTENT_NS_RE = re.compile(
    r"""xmlns:content\s*=\s*["']http://purl\.org/rss/1\.0/modules/content/["']"""
)
_MARK = "monitorstash"  # every stash and lift token starts with it, then 16 random hex digits
_STASH_OPEN_RE = {
    True: re.compile(r"<(content:encoded|description)>\s*+<!\[CDATA\["),
    False: re.compile(r"<(description)>\s*+<!\[CDATA\["),
}
_STASH_CLOSE_RE = re.compile(r"\]\]>\s*+</([\w:]+)>")


def stash_content(text: str) -> tuple[str, dict[str, str]]:
    """`text` with each plain description or content:encoded CDATA replaced by a token (a word
    the document does not contain, and a number), and the tokens' texts as feedparser would
    give them. One pass with str.find: linear however the CDATA sections are (left) open."""
    if "<![CDATA[" not in text:
        return text, {}
    opener = _STASH_OPEN_RE["<content:encoded>" in text and bool(_CONTENT_NS_RE.search(text))]
    mark = _MARK + secrets.token_hex(8)  # a word the document cannot foresee
    while mark in text:
        mark = _MARK + secrets.token_hex(8)
    stash: dict[str, str] = {}
    out: list[str] = []
    done = pos = 0  # text[:done] is in out; search from pos
    while (m := opener.search(text, pos)) is not None:
        end = text.find("]]>", m.end())
        if end < 0:
            break  # an unclosed CDATA: the rest is feedparser's
        close = _STASH_CLOSE_RE.match(text, end)
        pos = end + 3
        if close is None or close.group(1) != m.group(1):
            continue  # not the plain form (a split CDATA, another element): feedparser's
        token = f"{mark}{len(stash)}"
        stash[token] = _as_feedparser_gives(text[m.end() : end])
        out.append(text[done : m.start()])
        out.append(f"<{m.group(1)}>{token}</{m.group(1)}>")
        done = pos = close.end()
    if not stash:
        return text, {}
    out.append(text[done:])
    return "".join(out), stash


# An RSS item whose description and content:encoded were both stashed (or the one it has) does
# not need those elements at all: feedparser's cost goes by element, and these two, even holding
# a token, are a third of it (its content bookkeeping: parameters, details, the copy into the
# summary). `lift_items` removes them and appends one token for the item to its title, the one
# field every entry gets and we read anyway; `_entry` takes the token off and fills summary and
# content as feedparser would have (the description, else the content, as the summary). Only a
# plain item is lifted: `<item>` without attributes, one title, at most one description before at
# most one content:encoded, both stashed, and none of "description", "summary", "content" written
# anywhere else in it (other elements that feed those fields). parse_feed checks that every
# lifted token came back in a title, and parses the document unlifted otherwise.
_OTHER_SUMMARY_OR_CONTENT = ("summary", "abstract", "body", "fullitem")  # feedparser's other names
_MARK_LENGTH = len(_MARK) + 16  # the prefix and token_hex(8)
_STASHED_RE = re.compile(rf"<(description|content:encoded)>({_MARK}[0-9a-f]{{16}}\d+)</\1>")


def lift_items(text: str, stash: Mapping[str, str]) -> tuple[str, dict[str, tuple[str, str]]]:
    """`text` (after stash_content) with plain items' stashed elements removed and a token added
    to their titles; the tokens -> (description token or "", content token or "")."""
    if not stash:
        return text, {}
    mark = next(iter(stash))[:_MARK_LENGTH]
    lifted: dict[str, tuple[str, str]] = {}
    out: list[str] = []
    done = pos = 0
    while (start := text.find("<item>", pos)) >= 0:
        end = text.find("</item>", start)
        if end < 0:
            break
        pos = end + 7
        if text.find("<item", start + 6, end) >= 0:
            continue  # an item inside an item: not plain
        seg = text[start:end]
        found = _STASHED_RE.findall(seg)
        names = [name for name, _ in found]
        if not found or len(names) > 2 or len(set(names)) < len(names):
            continue
        if names == ["content:encoded", "description"]:
            continue  # content first: feedparser may take the description as content
        if (
            seg.count("escription") != 2 * names.count("description")
            or seg.count("content") != 2 * names.count("content:encoded")
            or any(word in seg for word in _OTHER_SUMMARY_OR_CONTENT)
            or seg.count("<title") != 1
            or seg.count("</title>") != 1
        ):
            continue
        tokens = dict((name, token) for name, token in found)
        key = f"{mark}i{len(lifted)}"
        lifted[key] = (tokens.get("description", ""), tokens.get("content:encoded", ""))
        seg = _STASHED_RE.sub("", seg).replace("</title>", key + "</title>")
        out.append(text[done:start])
        out.append(seg)
        done = end
    if not lifted:
        return text, {}
    out.append(text[done:])
    return "".join(out), lifted


def _as_feedparser_gives(text: str) -> str:
    """What feedparser's strict parser makes of a CDATA text (mixin.pop with encoding utf-8)."""
    if "\r" in text:  # XML's end-of-line handling, which expat applies before anything else
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    text = text.strip()
    with contextlib.suppress(UnicodeEncodeError, UnicodeDecodeError):
        text = text.encode("iso-8859-1").decode("utf-8")
    if _has_c1(text):
        text = text.translate(_CP1252_TABLE)
    return text


_C1_UTF8_RE = re.compile(b"\xc2[\x80-\x9f]")


def _has_c1(text: str) -> bool:
    """Whether `text` holds a C1 control (U+0080-U+009F): in C where the accelerator is built,
    else over the UTF-8 bytes, where each is 0xC2 then 0x80-0x9F (a str regex costs 3 times
    more over Arabic text)."""
    if _fastprint is not None:
        return _fastprint.has_c1(text)
    return _has_c1_py(text)


def _has_c1_py(text: str) -> bool:
    """The reference path of _fastprint.has_c1."""
    if text.isascii():
        return False
    data = text.encode("utf-8", "surrogatepass")
    return b"\xc2" in data and _C1_UTF8_RE.search(data) is not None


def neutralize(text: str) -> str:
    """Remove DOCTYPE and ENTITY declarations, make entity references safe, drop the control
    characters XML forbids, cut over-long author fields, drop categories when there are
    hundreds. Text in, text out."""
    # Declarations only live in the prolog, before the root element. The DOCTYPE goes first, as
    # a whole: its internal subset may itself hold '<' (an entity value such as "<b>").
    # (Only the prolog is searched: a DOCTYPE after the first element is left alone.)
    first = _ELEMENT_RE.search(text)
    doctype = _DOCTYPE_START_RE.search(text, 0, first.start() if first else len(text))
    if doctype:
        start = doctype.start()
        whole = _DOCTYPE_RE.match(text, start)
        if whole:
            end = whole.end()
        else:  # malformed: drop to the end of the subset, or of the declaration
            close = text.find("]>", start)
            end = close + 2 if close != -1 else text.find(">", start) + 1 or len(text)
        text = text[:start] + text[end:]
    root = _ELEMENT_RE.search(text)
    prolog_end = root.start() if root else len(text)
    if "<!" in text[:prolog_end]:
        prolog = _drop_entity_decls(text[:prolog_end])
        text = prolog + text[prolog_end:]
    if "&" in text:
        text = _ENTITY_REF_RE.sub(_entity_ref, text)
    controls, names = _doc_facts(text)
    changed = False
    if controls:
        text = _CONTROL_RE.sub("", text)
        changed = True
    if len(text) > MAX_AUTHOR:
        shorter = _AUTHOR_RE.sub(r"\1\2", text)
        if len(shorter) != len(text):  # a match always drops characters
            text, changed = shorter, True
    if changed:
        names = _doc_facts(text)[1]
    if names > 2 * MAX_CATEGORIES:
        text = _CATEGORY_RE.sub("", text)
    return text


def _drop_entity_decls(prolog: str) -> str:
    """The prolog without its ENTITY declarations; from the first malformed one on, nothing.
    One pass: each declaration is matched where it starts, and a failure ends the prolog (a
    search for every later start would rescan the rest from each: quadratic on hostile ones)."""
    out: list[str] = []
    pos = 0
    while (start := _ENTITY_START_RE.search(prolog, pos)) is not None:
        decl = _ENTITY_DECL_RE.match(prolog, start.start())
        out.append(prolog[pos : start.start()])
        if decl is None:  # malformed: drop the rest of the prolog
            return "".join(out)
        pos = decl.end()
    out.append(prolog[pos:])
    return "".join(out)


def _doc_facts(text: str) -> tuple[bool, int]:
    """Whether `text` holds a character _CONTROL_RE removes, and how many times "category" and
    "subject" occur in it in any case (text.lower().count() of each, summed): one C pass where
    the accelerator is built, else C passes over the UTF-8 bytes (a regex or str.lower() over
    Arabic text costs several times more). In UTF-8 every control character is one byte that
    no other character's bytes contain; bytes.lower() folds only ASCII, and no other character
    lowercases to the letters of these words."""
    if _fastprint is not None:
        return _fastprint.doc_facts(text)
    data = text.encode("utf-8", "surrogatepass")
    controls = (
        len(data.translate(None, _CONTROL_BYTES)) != len(data)
        or "\ufffe" in text
        or "\uffff" in text
    )
    lowered = data.lower()
    return controls, lowered.count(b"category") + lowered.count(b"subject")


# --- HTML to plain text ------------------------------------------------------------------------

_BLOCK_TAGS = frozenset(
    {
        "address", "article", "aside", "blockquote", "br", "dd", "div", "dl", "dt", "figcaption",
        "figure", "footer", "form", "h1", "h2", "h3", "h4", "h5", "h6", "header", "hr", "li",
        "main", "nav", "ol", "p", "pre", "section", "table", "tbody", "thead", "tfoot", "tr", "ul",
    }
)  # fmt: skip
_CELL_TAGS = frozenset({"td", "th", "img"})
# Possessive quantifiers (*+, ++) where the match cannot depend on backtracking: an attribute
# run, a quoted value, their repetition (each alternative starts with a different character);
# the same matches as plain ones, faster on attribute-heavy markup.
_HTML_PARTS = (
    r"<(script|style|noscript|template)\b[^>]*>.*?</\1\s*>",  # dropped with their content
    r"<!--.*?-->",
    r"<!\[CDATA\[",
    r"\]\]>",
    r"</?([A-Za-z][A-Za-z0-9:-]*)(?:[^>\"']++|\"[^\"]*+\"|'[^']*+')*+>",
    r"<![^>]*>",
)
_HTML_RE = re.compile("|".join(_HTML_PARTS), re.I | re.S)
# The same without "]]>", for text that has none (nearly all): every alternative then starts
# with '<', which the regex engine finds with a fast literal search instead of trying each
# position (3x faster on Arabic text). Where "]]>" cannot occur, both find the same matches.
_HTML_LT_RE = re.compile("|".join(p for p in _HTML_PARTS if p != r"\]\]>"), re.I | re.S)
_TAG_TEXT = {name: "\n" for name in _BLOCK_TAGS} | {name: " " for name in _CELL_TAGS}


class _TagText(dict[str | None, str]):
    """Tag name as written (None: a comment, CDATA marker, script or declaration) -> what the
    tag becomes; names are looked up in lowercase, and cached (a few hundred at most)."""

    def __missing__(self, name: str | None) -> str:
        text = _TAG_TEXT.get(name.lower(), "") if name else ""
        if len(self) < 512:
            self[name] = text
        return text


_TAG_TEXTS = _TagText()


def _tag(m: re.Match[str]) -> str:
    return _TAG_TEXTS[m[2]]


# Bidi embeddings, overrides and isolates: never useful for matching, a spoofing risk on display.
_BIDI_CHARS = "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"
_BIDI_RE = re.compile(f"[{_BIDI_CHARS}]")


def _lines_py(value: str) -> str:
    """The reference path of _fastprint.lines(value, _BIDI_CHARS)."""
    if any(ch in value for ch in _BIDI_CHARS):
        value = _BIDI_RE.sub("", value)
    lines = (" ".join(line.split()) for line in value.splitlines())
    return "\n".join(line for line in lines if line)


def html_to_text(value: str) -> str:
    """HTML (or plain text) -> plain text: script and style dropped, block tags become line
    breaks, entities unescaped, runs of spaces collapsed, one line per paragraph, no blank lines."""
    if "<" in value:
        value = (_HTML_RE if "]]>" in value else _HTML_LT_RE).sub(_tag, value)
    if "&" in value:
        value = html.unescape(value)
    if _fastprint is not None:  # bidi controls dropped and the layout, in one C pass
        return _fastprint.lines(value, _BIDI_CHARS)
    return _lines_py(value)


def truncate(text: str, limit: int) -> str:
    """Cut to at most `limit` characters without splitting a base letter from its marks."""
    if len(text) <= limit:
        return text
    end = limit
    while end > 0 and unicodedata.combining(text[end]):
        end -= 1
    return text[:end].rstrip()


# --- entries -----------------------------------------------------------------------------------


_ABSOLUTE_RE = re.compile(r"https?://[A-Za-z0-9.-]+(?::[0-9]{1,5})?(?:[/?#]|$)", re.I)
_TAB_NEWLINE = str.maketrans("", "", "\t\n\r")
_C0_SPACE = "".join(map(chr, range(0x21)))
_URL_CONTROL_RE = re.compile(r"[\x00-\x20\x7f]")


def _percent(m: re.Match[str]) -> str:
    return f"%{ord(m.group()):02X}"


def safe_link(link: object, base: str) -> str | None:
    """The link resolved against `base`, only if it is http(s) with a host. As a browser reads
    a URL (WHATWG): tabs and newlines anywhere are removed ("h\nttps://..." is https),
    C0 controls and spaces at either end are stripped, those left inside are percent-encoded
    (a link never carries a raw control character or space), and the scheme is lowercased."""
    if not isinstance(link, str):
        return None
    link = link.translate(_TAB_NEWLINE).strip(_C0_SPACE).strip()
    if not link or len(link) > MAX_LINK:
        return None
    if not _ABSOLUTE_RE.match(link):  # the common case skips urljoin's cost
        try:
            link = urljoin(base, link)
            parts = urlsplit(link)
        except ValueError:
            return None
        if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
            return None
    scheme, colon, rest = link.partition(":")
    return scheme.lower() + colon + _URL_CONTROL_RE.sub(_percent, rest)


def _date(entry: Mapping[str, Any]) -> datetime | None:
    for key in ("published_parsed", "updated_parsed", "created_parsed"):
        st = entry.get(key)
        if st is not None:
            try:
                return datetime.fromtimestamp(calendar.timegm(st), tz=UTC)
            except (OverflowError, ValueError, OSError):
                continue
    return None


def clamp_published(published: datetime | None, now: datetime) -> datetime:
    """The date to order an item by: its published date, but never later than `now` (a pubDate
    in 2100 sorts as now), and `now` when the feed gave none."""
    if published is None or published > now:
        return now
    return published


def _text(value: object, limit: int) -> str:
    if not isinstance(value, str) or not value:
        return ""
    # Bound the work before converting: the markup of a capped text is at most a few times longer.
    return truncate(html_to_text(value[: limit * 4]), limit)


def _content(entry: Mapping[str, Any], stash: Mapping[str, str]) -> str:
    parts = entry.get("content")
    if not isinstance(parts, list) or not parts:
        return ""
    values = (p.get("value") or "" for p in parts[:10])
    best = max((stash.get(v, v) if isinstance(v, str) else v for v in values), key=len)
    return str(best)


def _entry(
    raw: Mapping[str, Any],
    base: str,
    stash: Mapping[str, str],
    lifted: Mapping[str, tuple[str, str]],
) -> Entry:
    guid = raw.get("id")
    guid = guid.strip()[:MAX_GUID] if isinstance(guid, str) else None
    title = raw.get("title")
    summary: object = _unstash(raw.get("summary"), stash)
    content = _content(raw, stash)
    key = _lifted_key(title, lifted)
    if key is not None and isinstance(title, str):
        title = title[: -len(key)].strip()
        description, body = (stash.get(t, "") if t else None for t in lifted[key])
        summary = description if description is not None else body
        content = body or ""
    return Entry(
        guid=guid or None,
        link=safe_link(raw.get("link"), base),
        title=_text(title, MAX_TITLE).replace("\n", " "),
        summary=_text(summary, MAX_SUMMARY),
        content=_text(content, MAX_CONTENT),
        published=_date(raw),
    )


def _lifted_key(title: object, lifted: Mapping[str, tuple[str, str]]) -> str | None:
    """The lift token at the end of a title (`lift_items`), or None."""
    if not lifted or not isinstance(title, str):
        return None
    cut = title.rfind(_MARK)
    return title[cut:] if cut >= 0 and title[cut:] in lifted else None


def _unstash(value: object, stash: Mapping[str, str]) -> object:
    """feedparser copies an entry's content into its summary when it has no summary of its own."""
    return stash.get(value, value) if isinstance(value, str) and stash else value


_HTML_PAGE_RE = re.compile(r"^\s*(?:<!--.*?-->\s*)*<(?:!DOCTYPE\s+html|html)\b", re.I | re.S)


def _feedparser(text: str, url: str) -> Any:
    """feedparser's reading of `text`. Raises ParseError when feedparser itself fails: its loose
    parser raises on some malformed documents (KeyError 'links' on a <link> closed after
    its item, found by fuzzing), which is the document's fault, not a bug of ours to crash on."""
    data = b'<?xml version="1.0" encoding="utf-8"?>\n' + text.encode("utf-8", "replace")
    try:
        return feedparser.parse(
            io.BytesIO(data),  # a stream: feedparser opens str/bytes that look like paths or URLs
            response_headers={"content-type": "application/xml; charset=utf-8"},
            sanitize_html=False,
            resolve_relative_uris=False,
        )
    except (MemoryError, RecursionError):
        raise  # the worker's own limits: reported as such
    except Exception as e:  # any failure of feedparser on this document
        why = f"not a feed: feedparser failed on the document ({type(e).__name__}: {e})"
        raise ParseError(url, why[:300]) from None


def parse_feed(
    body: bytes, *, url: str, content_type: str | None = None, max_items: int = 500
) -> ParsedFeed:
    """Parse a feed document. `url` is the URL the body came from (the final one after
    redirects): relative links resolve against it. At most `max_items` entries, in document
    order. Raises ParseError("not a feed: ...") for an empty body, an HTML page, or a document
    with neither a feed element nor entries."""
    if not body or not body.strip():
        raise ParseError(url, "not a feed: empty body")
    text, _codec_name = decode_body(body, content_type)
    if _HTML_PAGE_RE.match(text[:4096]):
        raise ParseError(url, "not a feed: an HTML page")
    text = drop_unused(_XML_DECL_TEXT_RE.sub("", neutralize(text), count=1))
    text, found = cut_entries(text, max_items)
    text, stash = stash_content(text)
    lifted_text, lifted = lift_items(text, stash)
    d = _feedparser(lifted_text, url)
    raw_entries = d.get("entries") or []
    if lifted and sorted(
        k for e in raw_entries if (k := _lifted_key(e.get("title"), lifted)) is not None
    ) != sorted(lifted):
        lifted = {}  # a lifted item did not come back as expected: parse it unlifted
        d = _feedparser(text, url)
        raw_entries = d.get("entries") or []
    version = d.get("version") or ""
    if not version and not raw_entries:
        exc = d.get("bozo_exception")
        reason = f"{type(exc).__name__}: {exc}" if exc else "no feed element"
        raise ParseError(url, f"not a feed: {reason}"[:300])
    feed = d.get("feed") or {}
    entries = tuple(_entry(e, url, stash, lifted) for e in raw_entries[:max_items])
    warning = None
    if d.get("bozo"):
        exc = d.get("bozo_exception")
        warning = f"{type(exc).__name__}: {exc}"[:300] if exc else "malformed feed"
    found = max(found, len(raw_entries))
    if found > max_items:
        extra = f"{found - max_items} entries beyond the cap of {max_items} ignored"
        warning = f"{warning}; {extra}" if warning else extra
    return ParsedFeed(
        title=_text(feed.get("title"), MAX_TITLE).replace("\n", " "),
        link=safe_link(feed.get("link"), url),
        entries=entries,
        warning=warning,
    )
