"""Wiring only: fetch -> parse -> identity -> dedup -> match -> outbox, and the sender that
drains the outbox. The decisions live in the stages; this module moves values between them and
the store. I/O (through the stages it calls).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from collections import Counter, OrderedDict, defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import timedelta
from typing import Any

from monitor.analyze import Analyzed, analyze
from monitor.config import Config
from monitor.dedup import Fingerprint, Lookup, StoryDecision, StoryIndex
from monitor.errors import FetchError, NotifyError, ParseError, StoreError
from monitor.fetch import Fetcher, backoff_delay
from monitor.loudness import release
from monitor.match import Matcher, compile_watchlists
from monitor.metrics import NO_METRICS, Metrics
from monitor.models import (
    DIGEST,
    Alert,
    Delivery,
    FeedSpec,
    FeedState,
    Item,
    WatchlistSpec,
    utc,
)
from monitor.notify import Notifier
from monitor.parsepool import ParsePool
from monitor.store import FeedOutcome, IngestResult, NewItem, OutboxEntry, Store

log = logging.getLogger("monitor")

# Standard Webhooks' (Svix's) ladder: after the n-th failed try, wait RETRY_LADDER[n-1].
STORY_UPDATED = "monitor.story.updated"
NOTICE = "monitor.notice"  # to the operator: a feed became unhealthy or recovered
RETRY_LADDER: tuple[float, ...] = (5, 300, 1800, 7200, 18000, 36000, 36000)

Clock = Callable[[], float]


def alert_id(watchlist: str, story_id: str) -> str:
    """Stable per (watchlist, story): the same on every retry, restart and replica."""
    return "al_" + hashlib.sha256(f"{watchlist}\0{story_id}".encode()).hexdigest()[:24]


def _lookup(index: StoryIndex, batch: StoryIndex, fp: Fingerprint, now: float) -> Lookup:
    """The story `fp` joins, else the one it follows up, among the committed items and this
    poll's own."""
    found = index.lookup(fp, now)
    if found.joins is not None:
        return found
    here = batch.lookup(fp, now)
    if here.joins is not None:
        return here
    candidates = [d for d in (found.follows, here.follows) if d is not None]
    return Lookup(None, max(candidates, key=lambda d: d.containment, default=None))


def update_id(watchlist: str, story_id: str, item_id: str) -> str:
    """Stable per (watchlist, story, item) for a story update."""
    key = f"{watchlist}\0{story_id}\0{item_id}"
    return "up_" + hashlib.sha256(key.encode()).hexdigest()[:24]


@dataclass(frozen=True, slots=True)
class PollReport:
    feed: str
    outcome: str  # new | not_modified | unchanged | error
    items: int = 0
    new_items: int = 0
    alerts: int = 0
    error: str | None = None
    next_in: float = 0.0
    elapsed: float = 0.0


class Pipeline:
    """One poll of one feed, end to end. Holds the compiled watchlists."""

    metrics: Metrics = NO_METRICS  # the daemon sets its own registry's (monitor.metrics)

    def __init__(
        self,
        config: Config,
        store: Store,
        fetcher: Fetcher,
        *,
        parse_pool: ParsePool | None = None,
        clock: Clock = time.time,
        on_alerts: Callable[[], None] | None = None,
    ) -> None:
        self.store = store
        self.fetcher = fetcher
        self.parse_pool = parse_pool
        self.clock = clock
        self.on_alerts = on_alerts
        self.apply_config(config)
        self._pruned_at = 0.0
        # Recent stories' alerts and sources, as committed: a near-copy needs them, and the
        # store need not be asked again for each copy (this daemon is the only writer).
        self._stories: OrderedDict[str, tuple[dict[str, str], list[str]]] = OrderedDict()
        # Quiet outcomes (a healthy feed answered 304 or an unchanged body) waiting to be
        # written together; only when `defer_quiet` is on (the daemon, which flushes on close).
        self.defer_quiet = False
        self._quiet: dict[str, FeedOutcome] = {}
        self._quiet_timer: asyncio.TimerHandle | None = None
        self.load_index(clock())

    def apply_config(self, config: Config) -> None:
        self.config = config
        self.matcher: Matcher = compile_watchlists(config.watchlists)
        if self.parse_pool is not None:
            self.parse_pool.reconfigure(config.watchlists)  # the workers match too
        self.watchlists: dict[str, WatchlistSpec] = {w.name: w for w in config.watchlists}

    async def _analyze(
        self, spec: FeedSpec, body: bytes, content_type: str | None, now: float
    ) -> list[Analyzed]:
        max_items = self.config.raw.poll.max_items * 5
        max_age, window = self.config.raw.max_age, self.config.raw.stories.window
        if self.parse_pool is None:
            return analyze(
                body,
                spec=spec,
                content_type=content_type,
                max_items=max_items,
                now=now,
                matcher=self.matcher,
                max_age=max_age,
                window=window,
            )
        return await self.parse_pool.analyze(
            spec, body, content_type, max_items, now, max_age=max_age, window=window
        )

    async def poll(self, spec: FeedSpec) -> PollReport:
        started = time.monotonic()
        now = self.clock()
        if spec.url in self._quiet:
            self.flush_feeds()  # the feed's last outcome first, so its state is current
        state = self.store.feed_state(spec.url)
        poll_cfg = self.config.raw.poll

        def failed(e: Exception, retry_after: float | None) -> PollReport:
            delay = backoff_delay(
                spec.interval, state.error_streak, retry_after, poll_cfg.max_backoff
            )
            msg = e.message if isinstance(e, FetchError | ParseError) else str(e)
            outcome = FeedOutcome(spec.url, ok=False, error=msg, next_poll_at=now + delay, at=now)
            self._settle(spec, state, outcome, [], [])
            return PollReport(
                spec.name, "error", error=msg, next_in=delay, elapsed=time.monotonic() - started
            )

        try:
            result = await self.fetcher.fetch(spec, state)
        except FetchError as e:
            return failed(e, e.retry_after)
        self.metrics.fetched(result.elapsed)
        next_at = now + spec.interval

        def succeeded(status: str, body_hash: str | None = None) -> FeedOutcome:
            return FeedOutcome(
                spec.url,
                ok=True,
                etag=result.etag,
                last_modified=result.last_modified,
                body_hash=body_hash,
                next_poll_at=next_at,
                at=now,
                status=status,
            )

        def nothing_new(status: str) -> PollReport:
            if self.defer_quiet and state.error_streak == 0:
                self._record_quiet(succeeded(status))  # nothing else changes: no notice
            else:
                self._settle(spec, state, succeeded(status), [], [])
            return PollReport(
                spec.name, status, next_in=spec.interval, elapsed=time.monotonic() - started
            )

        if result.not_modified or result.body is None:
            return nothing_new("not_modified")
        body_hash = hashlib.sha256(result.body).hexdigest()
        if body_hash == state.body_hash:
            return nothing_new("unchanged")
        try:
            analyzed = await self._analyze(spec, result.body, result.content_type, now)
        except ParseError as e:
            return failed(e, None)

        items = _distinct(analyzed)
        seen = self.store.seen_keys([k for a in items for k in a.item.keys])
        fresh = [a for a in items if not any(k in seen for k in a.item.keys)]
        self._expire(now)
        outbox, new_items, indexed, touched = self._decide(spec, fresh, now)
        res = self._settle(spec, state, succeeded("new", body_hash), new_items, outbox)
        self.metrics.ingested(spec.name, new_items, outbox, res.alerts_added)
        for sid, known in touched.items():  # committed: remember them for the next copies
            self._remember(sid, known)
        for item_id, story_id, fp in indexed:  # committed: now other polls may join them
            self.index.add(item_id, story_id, fp)
        if res.alerts_added and self.on_alerts:
            self.on_alerts()
        return PollReport(
            spec.name,
            "new",
            items=len(items),
            new_items=len(fresh),
            alerts=len(res.alerts_added),
            next_in=spec.interval,
            elapsed=time.monotonic() - started,
        )

    QUIET_BATCH = 256  # quiet outcomes written in one transaction at most
    QUIET_DELAY = 0.25  # seconds a quiet outcome may wait for others

    def _record_quiet(self, outcome: FeedOutcome) -> None:
        """A healthy feed had nothing new: its row (validators, next poll, counters) is written
        with the others of the next QUIET_DELAY seconds, in one transaction instead of one
        each. Measured (`benchmarks/store.py --quiet-pass`): 2,000 feeds' rows wrote 9.2 MB one
        transaction each (a WAL frame per commit), 0.1 MB together; the time saved (33 -> 9 ms)
        is within the all-304 pass's noise. A crash loses at most QUIET_DELAY seconds of this
        bookkeeping: the feed is polled again at its older time."""
        self._quiet[outcome.url] = outcome
        if len(self._quiet) >= self.QUIET_BATCH:
            self.flush_feeds()
        elif self._quiet_timer is None:
            loop = asyncio.get_running_loop()
            self._quiet_timer = loop.call_later(self.QUIET_DELAY, self.flush_feeds)

    def flush_feeds(self) -> None:
        """Write the quiet outcomes waiting, in one transaction. Never raises: on a store
        error they are logged and dropped (each feed is polled again at its older time)."""
        if self._quiet_timer is not None:
            self._quiet_timer.cancel()
            self._quiet_timer = None
        if not self._quiet:
            return
        outcomes = list(self._quiet.values())
        self._quiet.clear()
        try:
            self.store.record_feeds(outcomes)
        except StoreError as e:
            log.error("outcome=store_error writing %d quiet feeds error=%r", len(outcomes), str(e))

    def _settle(
        self,
        spec: FeedSpec,
        state: FeedState,
        outcome: FeedOutcome,
        items: list[NewItem],
        outbox: list[OutboxEntry],
    ) -> IngestResult:
        """Write a poll's outcome, with the operator's notice when the feed's health changes:
        unhealthy after `unhealthy_after` failures in a row, and recovered after that."""
        threshold = self.config.raw.poll.unhealthy_after
        streak = 0 if outcome.ok else state.error_streak + 1
        notice: str | None = None
        if not outcome.ok and streak == threshold:
            since = _fmt_ts(state.last_success_at) if state.last_success_at else "its first poll"
            notice = (
                f"Feed {spec.name} is unhealthy: {streak} failed polls in a row since {since}; "
                f"last error: {outcome.error}. It keeps being retried."
            )
            log.error(
                "feed=%s outcome=unhealthy streak=%d error=%r", spec.name, streak, outcome.error
            )
        elif outcome.ok and state.error_streak >= threshold:
            notice = f"Feed {spec.name} recovered after {state.error_streak} failed polls."
            log.warning("feed=%s outcome=recovered after=%d", spec.name, state.error_streak)
        operators = tuple(self.config.raw.operator)
        if notice and operators:
            outbox = [*outbox, OutboxEntry(self._notice(spec, notice, outcome.at), operators)]
        return self.store.ingest(outcome, items, outbox)

    def _notice(self, spec: FeedSpec, text: str, now: float) -> Alert:
        nid = "nt_" + hashlib.sha256(f"{spec.url}\0{text}\0{now}".encode()).hexdigest()[:24]
        item = Item(nid, spec.name, spec.url, None, None, text, "", "", utc(now))
        return Alert(nid, "monitor", nid, item, (), utc(now), type=NOTICE)

    def _decide(
        self, spec: FeedSpec, fresh: list[Analyzed], now: float
    ) -> tuple[
        list[OutboxEntry],
        list[NewItem],
        list[tuple[str, str, Fingerprint]],
        dict[str, tuple[dict[str, str], list[str]]],
    ]:
        """For each new item: its story (a near-copy of a recent item joins that item's story),
        the watchlists it alerts, and the story updates it causes. Reads the store, writes
        nothing: the caller commits the result in one transaction."""
        max_age = self.config.raw.max_age
        cap = self.config.raw.poll.max_items
        horizon = utc(now) - timedelta(seconds=max_age)
        outbox: list[OutboxEntry] = []
        new_items: list[NewItem] = []
        indexed: list[tuple[str, str, Fingerprint]] = []
        batch = self._new_index()  # this poll's items, until they are committed
        alerts: dict[str, dict[str, str]] = {}  # story -> watchlist -> first alert id
        batch_sent: dict[str, int] = {}  # watchlist -> alerts made in this poll
        sources: dict[str, list[str]] = {}  # story -> feeds, in join order
        # Oldest first, so stories form in publication order (a copy or a follow-up comes after
        # the item it copies or follows, as across polls). A cap keeps the newest: the oldest
        # items beyond it are marked seen unalerted.
        ordered = sorted(fresh, key=lambda a: a.item.published or utc(now))
        capped = len(ordered) - cap
        opened: dict[str, Item] = {}  # stories this poll opened -> their first item
        for n, analysed in enumerate(ordered):
            item, fp, at = analysed.item, analysed.fingerprint, analysed.at
            found = _lookup(self.index, batch, fp, now) if fp is not None else Lookup(None)
            story_id, new_story, reason = found.story(item.id)
            if new_story:
                alerts[story_id], sources[story_id] = {}, []
                opened[story_id] = item
            elif story_id not in alerts:
                alerts[story_id], sources[story_id] = self._story(story_id)
            if fp is not None:
                batch.add(item.id, story_id, fp)
                indexed.append((item.id, story_id, fp))
            blob = fp.to_bytes() if fp is not None else None
            new_items.append(NewItem(item, story_id, new_story, reason, blob, at))
            known, feeds = alerts[story_id], sources[story_id]
            new_source = item.feed not in feeds
            if new_source:
                feeds.append(item.feed)
            if n < capped or (item.published is not None and item.published < horizon):
                continue
            story: dict[str, Any] = {"sources": list(feeds), "source_count": len(feeds)}
            if found.follows is not None and analysed.matches:
                story["follows"] = self._follow_up(found.follows, opened)  # read only for alerts
            updated = dict(known)  # watchlists told of this story before this item
            for m in analysed.matches:
                if m.watchlist not in self.watchlists:
                    continue  # matched by a worker with an older config
                self.metrics.matched(m.watchlist)
                if m.watchlist in known:
                    continue  # one alert per (watchlist, story): this item updates it instead
                aid = alert_id(m.watchlist, story_id)
                alert = Alert(
                    aid, m.watchlist, story_id, item, m.terms, utc(now), extra={"story": story}
                )
                spec_wl = self.watchlists[m.watchlist]
                entry = self._held(OutboxEntry(alert, spec_wl.notify), spec_wl, now, batch_sent)
                outbox.append(self._burst(entry, spec, now, batch_sent.get(m.watchlist, 0)))
                batch_sent[m.watchlist] = batch_sent.get(m.watchlist, 0) + 1
                known[m.watchlist] = aid
            if not new_story and new_source:
                for wl_name, parent in updated.items():
                    upd_wl = self.watchlists.get(wl_name)
                    if upd_wl is None:
                        continue  # the watchlist left the config
                    update = Alert(
                        update_id(wl_name, story_id, item.id),
                        wl_name,
                        story_id,
                        item,
                        (),
                        utc(now),
                        type=STORY_UPDATED,
                        extra={"story": {**story, "alert_id": parent}},
                    )
                    entry = OutboxEntry(update, upd_wl.notify, parent=parent)
                    outbox.append(self._held(entry, upd_wl, now, None))
        if len(ordered) > cap:
            # HAZARDS 7: a feed restored from a backup re-publishes hundreds of old items.
            suppressed = len(ordered) - cap
            log.warning(
                "feed=%s outcome=capped new_items=%d cap=%d suppressed=%d",
                spec.name,
                len(ordered),
                cap,
                suppressed,
            )
            operators = tuple(self.config.raw.operator)
            if operators:
                text = (
                    f"Feed {spec.name} published {len(ordered)} new items in one poll; the "
                    f"newest {cap} were matched and {suppressed} more were suppressed "
                    "(marked seen without alerting)."
                )
                outbox.append(OutboxEntry(self._notice(spec, text, now), operators))
        touched = {sid: (alerts[sid], sources[sid]) for sid in alerts}
        return outbox, new_items, indexed, touched

    def _follow_up(self, follows: StoryDecision, opened: dict[str, Item]) -> dict[str, Any]:
        """What an alert says of the earlier story a new story follows: its id, and its first
        item's title, URL and feed (from this poll, else the store)."""
        out: dict[str, Any] = {"story": follows.story_id, "item": follows.item_id}
        first = opened.get(follows.story_id)
        if first is not None:
            return {**out, "title": first.title, "url": first.url, "feed": first.feed}
        try:
            stored = self.store.story_first(follows.story_id)
        except StoreError as e:  # the alert goes out without the earlier story's title
            log.warning("story=%s outcome=store_error error=%r", follows.story_id, str(e))
            return out
        if stored is None:
            return out
        return {**out, "title": stored.title, "url": stored.url, "feed": stored.feed}

    STORY_CACHE = 20_000

    def _story(self, story_id: str) -> tuple[dict[str, str], list[str]]:
        """A story's alerts (watchlist -> first alert id) and sources, as copies to change."""
        cached = self._stories.get(story_id)
        if cached is None:
            return self.store.story_alerts(story_id), self.store.story_sources(story_id)
        self._stories.move_to_end(story_id)
        return dict(cached[0]), list(cached[1])

    def _remember(self, story_id: str, known: tuple[dict[str, str], list[str]]) -> None:
        self._stories[story_id] = known
        self._stories.move_to_end(story_id)
        while len(self._stories) > self.STORY_CACHE:
            self._stories.popitem(last=False)

    def _burst(self, entry: OutboxEntry, spec: FeedSpec, now: float, made: int) -> OutboxEntry:
        """HAZARDS 38: beyond `poll.max_alerts_per_watchlist` alerts of one watchlist from one
        poll, the rest go out at once as one summary (a digest), with one warning."""
        cap = self.config.raw.poll.max_alerts_per_watchlist
        if entry.digest is not None or made < cap:
            return entry
        wl = entry.alert.watchlist
        if made == cap:
            log.warning(
                "watchlist=%s feed=%s outcome=capped max_alerts_per_watchlist=%d (the rest of "
                "this poll's alerts go out as one summary; is the watchlist too broad?)",
                wl,
                spec.name,
                cap,
            )
        return replace(entry, release_at=now, digest=f"burst:{wl}:{spec.url}:{now:.0f}")

    def _held(
        self, entry: OutboxEntry, wl: WatchlistSpec, now: float, batch_sent: dict[str, int] | None
    ) -> OutboxEntry:
        """Apply the watchlist's loudness rules: when the entry may go, and in which digest.
        Story updates (batch_sent None) follow the digest and quiet rules, not the cap."""
        rules = wl.loudness
        if rules.immediate and not rules.urgent:
            return entry
        sent = 0
        if batch_sent is not None and rules.max_per_hour is not None:
            sent = self.store.alerts_since(wl.name, now - 3600) + batch_sent.get(wl.name, 0)
        if batch_sent is None:
            rules = replace(rules, max_per_hour=None)
        r = release(wl.name, rules, now, sent)
        if r.key is None:
            return entry
        if r.kind == "capped" and sent == rules.max_per_hour:
            log.warning(
                "watchlist=%s outcome=capped max_per_hour=%d (the rest go out as one "
                "summary at %s)",
                wl.name,
                sent,
                _fmt_ts(r.at),
            )
        return replace(entry, release_at=r.at, digest=r.key)

    # --- the story index ---------------------------------------------------------------------

    def _new_index(self) -> StoryIndex:
        st = self.config.raw.stories
        return StoryIndex(st.window, st.same_outlet_threshold, st.cross_outlet_threshold)

    def load_index(self, now: float) -> int:
        """Rebuild the story index from the fingerprints the store kept for the window."""
        self.index = self._new_index()
        for row in self.store.fingerprints(now - self.index.window):
            try:
                fp = Fingerprint.from_bytes(row.blob, outlet=row.outlet, at=row.at)
            except ValueError:
                continue  # a fingerprint of another version: that item leaves the index early
            self.index.add(row.item_id, row.story_id, fp)
        self._expired_at = now
        return len(self.index)

    def _expire(self, now: float) -> None:
        if now - self._expired_at >= 60:
            self.index.expire(now)
            self._expired_at = now
        if now - self._pruned_at >= 3600:
            self.store.prune_fingerprints(now - self.index.window)
            self._pruned_at = now


def _fmt_ts(ts: float) -> str:
    return utc(ts).strftime("%Y-%m-%d %H:%M UTC")


def _distinct(entries: Iterable[Analyzed]) -> list[Analyzed]:
    """One entry per identity within a document. A link that several entries share (a feed
    that links every item to its home page) identifies none of them, so it is dropped as a key."""
    entries = list(entries)
    counts = Counter(k for a in entries for k in a.item.alt_keys)
    out: dict[str, Analyzed] = {}
    for a in entries:
        it = a.item
        shared = tuple(k for k in it.alt_keys if counts[k] > 1)
        if shared:
            it = replace(it, alt_keys=tuple(k for k in it.alt_keys if k not in shared))
            a = replace(a, item=it)
        out.setdefault(it.id, a)
    return list(out.values())


class Sender:
    """Drains the outbox: one ordered lane per destination, lanes in parallel, so one slow or
    rate-limited destination never holds up another.

    A delivery that goes dead is kept with its reason, and the `operator` destinations get a
    notice (never about a notice, and never through the destination that failed). A failure
    with `disable=True` (410 Gone, a revoked token, a channel the bot is not in) also disables
    its destination: its other deliveries stay pending, untouched, until the destination's
    notifier is rebuilt (a config reload that changes it, or a restart)."""

    metrics: Metrics = NO_METRICS  # the daemon sets its own registry's (monitor.metrics)

    def __init__(
        self,
        store: Store,
        notifiers: Mapping[str, Notifier],
        *,
        clock: Clock = time.time,
        ladder: tuple[float, ...] = RETRY_LADDER,
        operator: Iterable[str] = (),
    ) -> None:
        self.store = store
        self.notifiers = dict(notifiers)
        self.clock = clock
        self.ladder = ladder
        self.operator = tuple(operator)
        self.in_flight = 0
        self._unknown_warned: set[str] = set()
        self.disabled: dict[str, tuple[Notifier, str]] = {}  # name -> (its notifier, why)

    async def send_due(self, limit: int = 200) -> int:
        """Send what is due now; returns how many were delivered."""
        now = self.clock()
        unknown = self._unknown() + self._disabled()
        due = self.store.due(now, limit, exclude=unknown)
        lanes: dict[str, list[Delivery]] = defaultdict(list)
        for d in due:
            lanes[d.destination].append(d)
        results = await asyncio.gather(*(self._lane(dest, ds) for dest, ds in lanes.items()))
        return sum(results)

    def _disabled(self) -> list[str]:
        """Destinations disabled by a failure and not rebuilt since (a rebuilt notifier, after a
        reload that changed the destination, is tried again)."""
        for name, (notifier, _) in list(self.disabled.items()):
            if self.notifiers.get(name) is not notifier:
                del self.disabled[name]
                log.info("destination=%s outcome=enabled reason='notifier rebuilt'", name)
        return sorted(self.disabled)

    def _tell_operator(self, dest: str, about: Alert, text: str, now: float) -> None:
        """A notice to the operator destinations (except `dest`): never about a notice."""
        targets = tuple(o for o in self.operator if o != dest)
        if about.type == NOTICE or not targets:
            return
        day = int(now // 86400)
        nid = "nt_" + hashlib.sha256(f"{dest}\0{text}\0{day}".encode()).hexdigest()[:24]
        item = Item(nid, "monitor", "", None, None, text, "", "", utc(now))
        notice = Alert(nid, "monitor", nid, item, (), utc(now), type=NOTICE)
        try:
            self.store.enqueue([OutboxEntry(notice, targets)], now)
        except StoreError as e:
            log.error("destination=%s outcome=notice_failed error=%r", dest, str(e))

    def _unknown(self) -> list[str]:
        names = self.store.pending_destinations()
        unknown = sorted(n for n in names if n not in self.notifiers)
        for n in unknown:
            if n not in self._unknown_warned:
                log.warning(
                    "destination=%s outcome=held reason='no longer in the config; "
                    "its deliveries wait until it is configured again'",
                    n,
                )
                self._unknown_warned.add(n)
        return unknown

    async def _lane(self, dest: str, deliveries: list[Delivery]) -> int:
        sent = 0
        done: set[int] = set()
        for d in sorted(deliveries, key=lambda d: d.id):  # oldest first: order is kept
            if d.id in done:
                continue  # went out in a digest already
            members = [d]
            if d.digest is not None:
                members = self.store.digest_group(dest, d.digest) or [d]
                done.update(m.id for m in members)
            ok = await self.deliver(
                d if len(members) == 1 and d.digest is None else self._digest(members), members
            )
            if not ok:
                break  # keep order: the rest of this lane waits for the next round
            sent += len(members)
        return sent

    def _digest(self, members: list[Delivery]) -> Delivery:
        """One delivery standing for several: the digest message. Its id is stable for the
        group (its key), so a retried digest carries the same id."""
        first = members[0]
        key = first.digest or first.alert.id
        kind = key.split(":", 1)[0]
        digest_id = "dg_" + hashlib.sha256(key.encode()).hexdigest()[:24]
        alert = Alert(
            digest_id,
            first.alert.watchlist,
            key,
            first.alert.item,
            (),
            utc(self.clock()),
            type=DIGEST,
            extra={
                "digest": {
                    "key": key,
                    "kind": {"cap": "capped"}.get(kind, kind),
                    "alerts": [m.alert.payload() for m in members],
                }
            },
        )
        return Delivery(first.id, alert, first.destination, max(m.attempts for m in members))

    async def deliver(self, d: Delivery, members: list[Delivery] | None = None) -> bool:
        """Send one delivery (or one digest standing for `members`) and record the outcome on
        every member."""
        ids = [m.id for m in members] if members else [d.id]
        notifier = self.notifiers[d.destination]
        for i in ids:
            self.store.begin_attempt(i, self.clock())
        self.in_flight += 1
        try:
            result = await notifier.send(d)
        except NotifyError as e:
            now = self.clock()
            attempt = d.attempts + 1
            # A destination that says when to come back (429/503 Retry-After, HAZARDS 24) is
            # obeyed, without climbing the ladder and without giving up: a rate limit is not
            # an outage, and a long storm must not turn alerts into dead letters.
            told = e.retry_after is not None
            if e.permanent or (attempt > len(self.ladder) and not told):
                reason = e.message if e.permanent else f"gave up after {attempt} tries: {e.message}"
                for i in ids:
                    self.store.dead(i, now, reason)
                self.metrics.delivery(d.destination, "dead")
                log.error(
                    "destination=%s alert=%s outcome=dead reason=%r",
                    d.destination,
                    d.alert.id,
                    reason,
                )
                text = (
                    f"Delivery to {d.destination} failed for good: {reason}. The alert "
                    f"({d.alert.id}) is kept in the dead letters: `monitor deliveries` lists "
                    "them and can send them again."
                )
                if e.disable:
                    self.disabled[d.destination] = (notifier, e.message)
                    log.error(
                        "destination=%s outcome=disabled reason=%r (its deliveries wait until "
                        "it is fixed in the config and reloaded, or the daemon restarts)",
                        d.destination,
                        e.message,
                    )
                    text += (
                        f" Destination {d.destination} is disabled until its config is fixed "
                        "and reloaded (or the daemon restarts); its other alerts wait."
                    )
                self._tell_operator(d.destination, d.alert, text, now)
            else:
                wait = (
                    max(e.retry_after or 0.0, self.ladder[0])
                    if told
                    else self.ladder[min(attempt, len(self.ladder)) - 1]
                )
                for i in ids:
                    self.store.retry_later(i, now + wait, e.message)
                self.metrics.delivery(d.destination, "retry")
                log.warning(
                    "destination=%s alert=%s outcome=retry attempt=%d in=%.0fs reason=%r",
                    d.destination,
                    d.alert.id,
                    attempt,
                    wait,
                    e.message,
                )
            return False
        except StoreError:
            raise
        except Exception as e:  # a bug in a notifier must not stop the sender
            now = self.clock()
            for i in ids:
                self.store.retry_later(i, now + self.ladder[0], f"unexpected error: {e!r}")
            self.metrics.delivery(d.destination, "error")
            log.exception(
                "destination=%s alert=%s outcome=retry reason='unexpected error'",
                d.destination,
                d.alert.id,
            )
            return False
        finally:
            self.in_flight -= 1
        for i in ids:
            self.store.delivered(i, self.clock(), result.ref)
        self.metrics.delivery(d.destination, "delivered")
        log.info(
            "destination=%s alert=%s watchlist=%s outcome=delivered%s",
            d.destination,
            d.alert.id,
            d.alert.watchlist,
            f" digest={len(ids)}" if len(ids) > 1 or d.alert.type == DIGEST else "",
        )
        return True
