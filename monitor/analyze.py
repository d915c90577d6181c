"""Everything a poll needs to know about a fetched document that does not need the store:
parse, identity, story fingerprint and watchlist matches of every entry. Pure (`now` passed in).

It runs in the parse workers (monitor/parsepool.py), so that the CPU-heavy stages — feedparser,
Arabic normalization, shingling, matching — use both cores and stay out of the daemon's event
loop; the daemon keeps only what needs shared state: which items are new, which story an item
joins, and the outbox. Entries already seen are analysed too (a changed document usually adds
one or two items to thirty): that costs a worker about 10 ms a changed feed, less than a second
round trip to the worker would.

Each field is stripped of boilerplate and normalized once per entry, and shared by the
fingerprint (`fingerprint_normalized`), matching (`Matcher.match_own`) and the alert summary:
the same results as `fingerprint` and `Matcher.match` (tests/test_analyze_paths.py), which each
strip and normalize on their own.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from monitor.dedup import Fingerprint, fingerprint_normalized
from monitor.identity import make_item
from monitor.match import Matcher
from monitor.models import FeedSpec, Field, Item, Match
from monitor.parse import parse_feed
from monitor.text import Normalized, strip_boilerplate


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
    markers = spec.boilerplate
    reads_content = matcher is not None and "content" in matcher.fields
    out = []
    for entry in parsed.entries:
        item = make_item(entry, spec)
        at = min(item.published.timestamp(), now) if item.published else now
        # The summary a desk reads in an alert is the story's own text, without credit lines
        # and teasers; matching and the fingerprint read the same own text. Each field is
        # stripped and normalized once here, and shared (what `fingerprint` and
        # `Matcher.match` would each do again on their own).
        summary = strip_boilerplate(item.summary, markers).text if item.summary else ""
        fingerprinted = at >= now - window
        matched = matcher is not None and at >= now - max_age
        fp = None
        matches: tuple[Match, ...] = ()
        if fingerprinted or matched:
            title = Normalized(item.title)
            own_summary = Normalized(summary)
            own_content = None
            if item.content and (fingerprinted or reads_content):
                own_content = Normalized(strip_boilerplate(item.content, markers).text)
            if fingerprinted:
                fp = fingerprint_normalized(
                    title.folded,
                    (own_content or own_summary).folded,
                    outlet=item.feed,
                    at=at,
                )
            if matcher is not None and matched:
                own: dict[Field, Normalized] = {}
                if item.title:
                    own["title"] = title
                if item.summary:
                    own["summary"] = own_summary
                if own_content is not None:
                    own["content"] = own_content
                matches = matcher.match_own(own, feed=spec.name)
        # The daemon needs no body text after this (alerts carry title, summary and URL): not
        # sending it back from the worker halves what crosses the process boundary.
        out.append(Analyzed(replace(item, summary=summary, content=""), fp, at, matches))
    return out
