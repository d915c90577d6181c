"""Text shaping shared by the destinations. Pure: no I/O, no clock.

Feed text is untrusted. Before it reaches a destination it is, in this order:

1. `clean`: control characters, lone surrogates and bidi overrides/embeddings/isolates
   (U+202A-202E, U+2066-2069) removed, whitespace collapsed to single spaces;
2. `truncate`: cut on a grapheme boundary (a base character is never separated from its
   combining marks, a ZWJ sequence or a flag is never split) so the *final* text fits its cap;
3. `isolate`: wrapped in FSI ... PDI (U+2068 ... U+2069) so an Arabic title next to Latin
   labels, numbers or another field keeps its own direction;
4. `slack_escape`: `&`, `<`, `>` escaped, the very last step, so nothing a feed writes can
   form a Slack control sequence (`<!channel>`, `<@U...>`, `<url|label>`).

`slack_field` runs the four steps with a budget counted in what Slack limits (UTF-16 code
units of the escaped text, which is never less than Python's `len`). Links are only ever
built by `slack_link` from `safe_url`: http(s) only, with `|`, `<`, `>`, spaces, quotes and
non-ASCII percent-encoded.
"""

from __future__ import annotations

import re
import unicodedata
import urllib.parse
from collections.abc import Callable

ELLIPSIS = "…"
FSI = "\u2068"  # FIRST STRONG ISOLATE
PDI = "\u2069"  # POP DIRECTIONAL ISOLATE
ZWJ = "\u200d"

# Overrides, embeddings and isolates: a feed must not reorder what we show around its text.
_BIDI_CONTROLS = frozenset(chr(c) for c in (*range(0x202A, 0x202F), *range(0x2066, 0x206A)))
_WS = re.compile(r"\s+")
_MAX_URL = 2000  # longer links are dropped rather than cut (a cut URL points elsewhere)


def clean(text: str, *, limit_hint: int | None = None) -> str:
    """Remove control and bidi-override characters, collapse whitespace, strip the ends.

    With `limit_hint`, only a bounded prefix of a huge input is looked at (enough to fill a
    field of that size many times over), so 10 MB of content costs no more than 10 KB.
    """
    if limit_hint is not None:
        text = text[: max(limit_hint * 8, 4096)]
    out: list[str] = []
    for ch in text:
        if ch in _BIDI_CONTROLS:
            continue
        cat = unicodedata.category(ch)
        if cat == "Cc":
            out.append(" ")  # tabs, newlines, NUL, ESC...: a word break at most
        elif cat == "Cs":
            continue  # lone surrogate from a broken decoder
        else:
            out.append(ch)
    return _WS.sub(" ", "".join(out)).strip()


def _is_extend(ch: str) -> bool:
    """True when `ch` continues the grapheme before it (marks, joiners, selectors, skin tones)."""
    cp = ord(ch)
    return (
        unicodedata.category(ch) in ("Mn", "Me", "Mc")
        or cp in (0x200C, 0x200D)
        or 0xFE00 <= cp <= 0xFE0F
        or 0x1F3FB <= cp <= 0x1F3FF
        or 0xE0020 <= cp <= 0xE007F
        or 0xE0100 <= cp <= 0xE01EF
    )


def _is_regional(ch: str) -> bool:
    return 0x1F1E6 <= ord(ch) <= 0x1F1FF


def is_boundary(text: str, i: int) -> bool:
    """Whether cutting `text` before index `i` keeps every grapheme whole (extended rules,
    close enough for display text: marks, ZWJ sequences, variation selectors, flag pairs)."""
    if i <= 0 or i >= len(text):
        return True
    if _is_extend(text[i]) or text[i - 1] == ZWJ:
        return False
    if _is_regional(text[i]) and _is_regional(text[i - 1]):
        run = 0
        j = i - 1
        while j >= 0 and _is_regional(text[j]):
            run += 1
            j -= 1
        return run % 2 == 0
    return True


def utf16_len(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def slack_cost(ch: str) -> int:
    """What one character of raw text costs once escaped, in UTF-16 code units."""
    if ch == "&":
        return 5  # &amp;
    if ch in "<>":
        return 4  # &lt; &gt;
    return 2 if ord(ch) > 0xFFFF else 1


def truncate(
    text: str, limit: int, *, cost: Callable[[str], int] = len, ellipsis: str = ELLIPSIS
) -> str:
    """The longest grapheme-whole prefix of `text` whose cost, with `ellipsis` appended when
    something was cut, is at most `limit`. `cost` prices one character (default: 1)."""
    total = 0
    for ch in text:
        total += cost(ch)
        if total > limit:
            break
    else:
        return text
    budget = limit - sum(cost(c) for c in ellipsis)
    if budget <= 0:
        return ""
    used = 0
    end = 0
    for i, ch in enumerate(text):
        c = cost(ch)
        if used + c > budget:
            break
        used += c
        end = i + 1
    while end > 0 and not is_boundary(text, end):
        end -= 1
    return text[:end].rstrip() + ellipsis


def isolate(text: str) -> str:
    """Wrap one untrusted field so its direction cannot leak into what surrounds it."""
    return f"{FSI}{text}{PDI}" if text else ""


def slack_escape(text: str) -> str:
    """Slack's three escapes. Call it last: nothing may be cut or added after it."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def slack_field(text: str, limit: int, *, placeholder: str = "") -> str:
    """One untrusted field ready for Slack mrkdwn: cleaned, cut, isolated, escaped, and at
    most `limit` UTF-16 code units in the end. Empty after cleaning: `placeholder` (ours,
    trusted, still escaped)."""
    cleaned = clean(text, limit_hint=limit)
    if not cleaned:
        return slack_escape(placeholder)
    cut = truncate(cleaned, limit - 2, cost=slack_cost)  # 2: the FSI and PDI around it
    return slack_escape(isolate(cut))


_SCHEMES = ("http", "https")
# Everything RFC 3986 allows unencoded, except what breaks a Slack link or reads as markup.
_URL_SAFE = ":/?#[]@!$&'()*+,;=~%-._"
_BAD_PERCENT = re.compile(r"%(?![0-9A-Fa-f]{2})")


def safe_url(url: str | None) -> str | None:
    """An absolute http(s) URL fit to put inside `<...|...>`, or None to show no link.

    Drops `javascript:`, `data:`, `file:`, protocol-relative and host-less URLs; encodes the
    host with IDNA, percent-encodes spaces, `|`, `<`, `>`, `"`, backticks and non-ASCII, and
    removes control and format characters.
    """
    if not url:
        return None
    url = url.strip()
    if any(unicodedata.category(ch) in ("Cc", "Cf", "Cs") for ch in url):
        url = "".join(ch for ch in url if unicodedata.category(ch) not in ("Cc", "Cf", "Cs"))
    try:
        parts = urllib.parse.urlsplit(url)
        host = parts.hostname
        port = parts.port
    except ValueError:
        return None
    if parts.scheme.lower() not in _SCHEMES or not host:
        return None
    try:
        ascii_host = host.encode("idna").decode("ascii") if not host.isascii() else host
    except UnicodeError:
        return None
    if any(c in ascii_host for c in "|<> \"'`\\"):
        return None
    netloc = ascii_host if ":" not in ascii_host else f"[{ascii_host}]"
    if port is not None:
        netloc = f"{netloc}:{port}"
    if parts.username is not None:
        return None  # credentials in a feed link: never shown, never linked
    rest = urllib.parse.urlunsplit(("", "", parts.path, parts.query, parts.fragment))
    encoded = _BAD_PERCENT.sub("%25", urllib.parse.quote(rest, safe=_URL_SAFE))
    out = f"{parts.scheme.lower()}://{netloc}{encoded}"
    return out if len(out) <= _MAX_URL else None


def slack_link(url: str | None, label: str) -> str:
    """`<url|label>` when `url` is safe, else `label` alone. `label` must already be a
    finished Slack field (see `slack_field`); the URL gets its `&` escaped here."""
    safe = safe_url(url)
    if safe is None:
        return label
    return f"<{slack_escape(safe)}|{label}>"
