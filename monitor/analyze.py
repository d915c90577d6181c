"""Everything a poll needs to know about a fetched document that does not need the store:
parse, identity, story fingerprint and watchlist matches of every entry. Pure (`now` passed in).

It runs in the parse workers (monitor/parsepool.py), so that the CPU-heavy stages — feedparser,
Arabic normalization, shingling, matching — use both cores and stay out of the daemon's event
loop; the daemon keeps only what needs shared state: which items are new, which story an item
joins, and the outbox. Entries already seen are analysed too (a changed document usually adds
one or two items to thirty): that costs a worker about 10 ms a changed feed, less than a second
round trip to the worker would.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from monitor.dedup import Fingerprint, fingerprint
from monitor.identity import make_item
from monitor.match import Matcher
from monitor.models import FeedSpec, Item, Match
from monitor.parse import parse_feed
from monitor.text import strip_boilerplate


@dataclass(frozen=True, slots=True)
class Analyzed:
    item: Item  # without its content (see below)
    fingerprint: Fingerprint | None  # None: older than the story window, joins no story
    at: float  # the fingerprint's time: published (never in the future), else now
    matches: tuple[Match, ...]  # empty for items too old to alert


def analyze(
    body: bytes,
    *,
    spec: FeedSpec,
    content_type: str | None,
    max_items: int,
    now: float,
    matcher: Matcher | None,
    max_age: float = float("inf"),
    window: float = float("inf"),
) -> list[Analyzed]:
    """Raises ParseError when the body is not a feed. Items published more than `max_age` ago
    are not matched (they never alert), and items older than the story `window` are not
    fingerprinted (no story is open that long): on a first poll of a feed with a long history,
    that is most of the work saved."""
    parsed = parse_feed(body, url=spec.url, content_type=content_type, max_items=max_items)
    out = []
    for entry in parsed.entries:
        item = make_item(entry, spec)
        at = min(item.published.timestamp(), now) if item.published else now
        fp = None
        if at >= now - window:
            fp = fingerprint(
                item.title,
                item.content or item.summary,
                outlet=item.feed,
                at=at,
                extra_markers=spec.boilerplate,
            )
        matches: tuple[Match, ...] = ()
        if matcher is not None and at >= now - max_age:
            matches = matcher.match(
                item.title,
                item.summary,
                item.content,
                feed=spec.name,
                boilerplate=spec.boilerplate,
            )
        # The daemon needs no body text after this (alerts carry title, summary and URL): not
        # sending it back from the worker halves what crosses the process boundary. The summary
        # a desk reads in an alert is the story's own text, without credit lines and teasers.
        summary = strip_boilerplate(item.summary, spec.boilerplate).text if item.summary else ""
        out.append(Analyzed(replace(item, summary=summary, content=""), fp, at, matches))
    return out
