"""Item identity: which entries are the same item, across polls and across feeds. Pure: no I/O.

    canonical_url(url) -> str | None      the URL as we store and show it
    item_id(entry, feed_url) -> str       the identity key: "g:...", "u:..." or "c:..."
    alt_keys(entry) -> tuple[str, ...]   other keys of the same item (its link, beside a GUID)
    make_item(entry, spec) -> Item

Identity falls back in three steps (as Miniflux does):

- ``u:`` a canonical http(s) URL: the entry's GUID when the GUID is itself an http(s) URL, else
  its link. URL keys are global: the same article reached from two feeds, or with tracking
  parameters, an AMP variant, http instead of https, or a ``www.`` host, is one item.
- ``g:`` a GUID that is not a URL, scoped by the feed's URL: two feeds may both number their
  items "123", and those are different items.
- ``c:`` no GUID and no link: a hash of the title and summary (whitespace-normalized; the content
  when both are empty), scoped by the feed's URL, so the same text in the next poll is the same
  item while equal boilerplate titles in two unrelated feeds are not merged here (near-duplicate
  stories across outlets are the dedup stage's business).

Collision policy: keys are the first 24 hex digits (96 bits) of a SHA-256 over a prefixed,
newline-separated input, so inputs from different steps cannot collide by construction and two
distinct inputs collide with probability about n²/2⁹⁷ (nil for any realistic n). If a collision
ever happened the later item would be treated as already seen: it is suppressed, never
misattributed. An edited item (same GUID or URL, new title) keeps its key and does not alert
again; a feed that changes its GUIDs on every poll produces new keys, which the dedup stage's
content fingerprints and the per-poll caps must absorb.
"""

from __future__ import annotations

import functools
import hashlib
import re
import unicodedata
from urllib.parse import parse_qsl, quote, unquote, urlencode, urlsplit, urlunsplit

from monitor.models import Entry, FeedSpec, Item

# Query parameters that only track the reader; dropped from canonical URLs.
_TRACKING_EXACT = frozenset(
    {
        "fbclid", "gclid", "dclid", "gbraid", "wbraid", "msclkid", "yclid", "twclid", "igshid",
        "mc_cid", "mc_eid", "_ga", "_gl", "xtor", "ocid", "cmpid", "spm", "smid", "sh",
        "at_medium", "at_campaign", "at_link", "at_custom1", "at_custom2", "at_custom3",
        "at_custom4", "ns_mchannel", "ns_source", "ns_campaign", "ns_linkname", "ns_fee",
        "amp", "__twitter_impression", "mkt_tok", "s_cid", "ito",
    }
)  # fmt: skip
_TRACKING_PREFIXES = ("utm_", "at_", "ns_", "pk_", "mtm_", "hsa_", "oly_")
_PATH_SAFE = "/!$&'()*+,;=:@-._~"
_QUERY_SAFE = "!$'()*+,;:@-._~/?"
_SPACE_RE = re.compile(r"\s+")


def _is_tracking(key: str) -> bool:
    k = key.lower()
    return k in _TRACKING_EXACT or k.startswith(_TRACKING_PREFIXES)


# A URL that is its own canonical form, as most feed links are: http(s), a lowercase host
# without a port, userinfo or trailing dot, and a path of characters that quote() and unquote()
# leave as they are (no '%', nothing outside ASCII), no query, no fragment. canonical_url
# returns it as it is (with "/" for an empty path) unless it has an AMP mark or a trailing
# slash, without urlsplit, quote and urlunsplit (1 us instead of 3.5 on a first poll).
_PLAIN_URL_RE = re.compile(
    r"https?://([a-z0-9-]+(?:\.[a-z0-9-]+)*)(/[A-Za-z0-9!$&'()*+,;=:@._~/-]*)?", re.ASCII
)


# One entry's GUID and link are usually the same URL, and identity asks for it three times
# (item_id, alt_keys, make_item); the cache makes that one computation. Pure, so safe to cache.
@functools.lru_cache(maxsize=8192)
def canonical_url(url: str | None) -> str | None:
    """The canonical form of an http(s) URL, or None for anything else (javascript:, file:,
    relative, no host). Lowercase scheme and host, no userinfo, no default port, no fragment,
    no tracking parameters, no AMP variant (``amp.`` host, ``/amp`` segment, ``.amp`` suffix,
    ``?amp``, ``outputType=amp``), percent-encoding made uniform (Arabic paths raw or encoded
    give one form), remaining query parameters sorted, no trailing slash except the root."""
    if not url:
        return None
    plain = _PLAIN_URL_RE.fullmatch(url)
    if plain is not None:
        host, path = plain.group(1), (plain.group(2) or "").lower()
        if not (
            host.startswith("amp.")
            or "/amp" in path
            or path.endswith(".amp")
            or (len(path) > 1 and path.endswith("/"))
        ):
            return url if path else url + "/"
    return _canonical_url(url)


# Characters no host holds (WHATWG's forbidden host code points, and '%': a percent-encoded
# host is not a name a resolver knows); ':' is left to IPv6 literals, whose brackets urlsplit
# has removed. Spaces, controls and format characters are refused by their category.
_FORBIDDEN_HOST = frozenset("#%/<>?@[\\]^|\"'`{}")


def _canonical_url(url: str) -> str | None:
    """canonical_url for any URL (the reference of the plain-URL shortcut)."""
    try:
        parts = urlsplit(url.strip())
        scheme = parts.scheme.lower()
        if scheme not in ("http", "https"):
            return None
        host = (parts.hostname or "").rstrip(".")
        port = parts.port
    except ValueError:
        return None
    if not host or any(ch in _FORBIDDEN_HOST or unicodedata.category(ch)[0] in "CZ" for ch in host):
        return None  # no host, or not one: a space, control, format character or delimiter
    if host.startswith("amp."):
        host = host[4:]
    if ":" in host:
        host = f"[{host}]"  # IPv6 literal
    if port is not None and port != (80 if scheme == "http" else 443):
        host = f"{host}:{port}"

    path = quote(unquote(parts.path), safe=_PATH_SAFE)
    segments = [s for s in path.split("/") if s.lower() != "amp"]
    path = "/".join(segments)
    if path.lower().endswith(".amp"):
        path = path[:-4]
    path = path.rstrip("/") or "/"
    if not path.startswith("/"):
        path = "/" + path

    query = ""
    if parts.query:
        pairs = [
            (k, v)
            for k, v in parse_qsl(parts.query, keep_blank_values=True)
            if not _is_tracking(k) and not (k.lower() == "outputtype" and v.lower() == "amp")
        ]
        pairs.sort()
        query = urlencode(pairs, quote_via=quote, safe=_QUERY_SAFE)
    return urlunsplit((scheme, host, path, query, ""))


def _url_key(canon: str) -> str:
    """The part of a canonical URL that decides identity: http/https and a ``www.`` host prefix
    are the same item."""
    rest = canon.split("://", 1)[1]
    return rest[4:] if rest.startswith("www.") else rest


def _hash(*parts: str) -> str:
    return hashlib.sha256("\n".join(parts).encode("utf-8", "surrogatepass")).hexdigest()[:24]


def _feed_key(feed_url: str) -> str:
    canon = canonical_url(feed_url)
    return _url_key(canon) if canon else feed_url.strip()


def _norm(text: str) -> str:
    return _SPACE_RE.sub(" ", text).strip()


def item_id(entry: Entry, feed_url: str) -> str:
    """The identity key of an entry: ``u:<hex>`` (a URL, global), ``g:<hex>`` (a non-URL GUID
    within its feed) or ``c:<hex>`` (the text, within its feed). See the module docstring."""
    guid = entry.guid.strip() if entry.guid else ""
    if guid:
        canon = canonical_url(guid)
        if canon:
            return "u:" + _hash("url", _url_key(canon))
        return "g:" + _hash("guid", _feed_key(feed_url), guid)
    canon = canonical_url(entry.link)
    if canon:
        return "u:" + _hash("url", _url_key(canon))
    title, summary = _norm(entry.title), _norm(entry.summary)
    if not title and not summary:
        summary = _norm(entry.content)
    return "c:" + _hash("content", _feed_key(feed_url), title, summary)


def alt_keys(entry: Entry) -> tuple[str, ...]:
    """Keys besides `item_id` that identify the same item: the link's URL key when the primary
    key came from a non-URL GUID. A link to a site's root page identifies nothing and is left
    out; so is a link that several entries of one document share (the pipeline checks that)."""
    guid = entry.guid.strip() if entry.guid else ""
    if not guid or canonical_url(guid):
        return ()
    canon = canonical_url(entry.link)
    if canon is None or urlsplit(canon).path in ("", "/"):
        return ()
    return ("u:" + _hash("url", _url_key(canon)),)


def make_item(entry: Entry, spec: FeedSpec) -> Item:
    """The Item for an entry of a configured feed: identity key, canonical URL, texts as parsed."""
    url = canonical_url(entry.link)
    if url is None and entry.guid:
        url = canonical_url(entry.guid)  # a permalink GUID stands in for a missing link
    return Item(
        id=item_id(entry, spec.url),
        feed=spec.name,
        feed_url=spec.url,
        guid=entry.guid,
        url=url,
        title=entry.title,
        summary=entry.summary,
        content=entry.content,
        published=entry.published,
        alt_keys=alt_keys(entry),
    )
