"""Prometheus metrics: counters the pipeline and sender move, and gauges read from the store at
scrape time. No I/O of its own (the scrape-time collector reads the store it is given).

Each daemon owns one `CollectorRegistry` (never the process-global one), so tests and reloads
never collide. Code that runs without a daemon (tests, `poll-once`, replay) records into
`NO_METRICS`, whose metrics belong to no registry and are never exported.

Names follow Prometheus conventions (`_total` counters, `_seconds` units):

    monitor_polls_total{feed,outcome}            new | not_modified | unchanged | error | crash
    monitor_fetch_duration_seconds               histogram of successful fetches (200 and 304)
    monitor_items_seen_total{feed}               items seen for the first time
    monitor_story_merges_total{feed}             new items that joined an existing story
    monitor_matches_total{watchlist}             watchlist matches (before one-alert-per-story)
    monitor_alerts_total{watchlist}              alerts that entered the outbox
    monitor_deliveries_total{destination,outcome}  delivered | retry | dead | error
    monitor_reloads_total{outcome}               applied | unchanged | rejected | error
    monitor_config_last_reload_successful        1 when the last reload was applied
    monitor_config_last_reload_success_timestamp_seconds
    monitor_build_info{version}
  read from the store at each scrape:
    monitor_store_up                             1 when the store answered the scrape
    monitor_outbox_depth{state}                  pending | sending
    monitor_outbox_oldest_age_seconds            age of the oldest delivery still waiting
    monitor_dead_letters                         deliveries that failed for good
    monitor_feeds                                configured feeds
    monitor_feeds_unhealthy                      feeds with `unhealthy_after` failures in a row
    monitor_feed_error_streak{feed}              failed polls in a row, per feed
    monitor_feed_last_success_timestamp_seconds{feed}
"""

from __future__ import annotations

import time
from collections import Counter as Tally
from collections.abc import Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, Protocol

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from monitor import __version__
from monitor.dedup import FOLLOWING
from monitor.errors import StoreError

if TYPE_CHECKING:
    from monitor.config import Config
    from monitor.store import NewItem, OutboxEntry, Store

ALERT = "monitor.alert"  # the type of a first alert (pipeline's story updates are counted apart)
POLL_OUTCOMES = ("new", "not_modified", "unchanged", "error")
DELIVERY_OUTCOMES = ("delivered", "retry", "dead")
FETCH_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 30.0, 60.0)


class Metrics:
    """The daemon's instruments. Every method is a cheap, synchronous increment."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry
        r = registry
        self.polls = Counter(
            "monitor_polls", "Feed polls by outcome.", ["feed", "outcome"], registry=r
        )
        self.fetch_seconds = Histogram(
            "monitor_fetch_duration_seconds",
            "Time to fetch a feed (successful fetches: 200 and 304).",
            buckets=FETCH_BUCKETS,
            registry=r,
        )
        self.items_seen = Counter(
            "monitor_items_seen", "Items seen for the first time.", ["feed"], registry=r
        )
        self.story_merges = Counter(
            "monitor_story_merges",
            "New items that joined an existing story (near-duplicates).",
            ["feed"],
            registry=r,
        )
        self.story_follow_ups = Counter(
            "monitor_story_follow_ups",
            "New items that opened a story following an earlier one (shared text, a new lead).",
            ["feed"],
            registry=r,
        )
        self.clock_steps = Counter(
            "monitor_clock_steps_back",
            "Wall clock steps back the daemon corrected (planned polls and retries moved back).",
            registry=r,
        )
        self.matches = Counter(
            "monitor_matches",
            "Watchlist matches, before one alert per (watchlist, story).",
            ["watchlist"],
            registry=r,
        )
        self.alerts = Counter(
            "monitor_alerts", "Alerts that entered the outbox.", ["watchlist"], registry=r
        )
        self.deliveries = Counter(
            "monitor_deliveries",
            "Delivery attempts by destination and outcome.",
            ["destination", "outcome"],
            registry=r,
        )
        self.reloads = Counter(
            "monitor_reloads", "Config reloads by outcome.", ["outcome"], registry=r
        )
        self.reload_ok = Gauge(
            "monitor_config_last_reload_successful",
            "1 when the last config reload was applied (or none was tried), 0 when rejected.",
            registry=r,
        )
        self.reload_at = Gauge(
            "monitor_config_last_reload_success_timestamp_seconds",
            "When the running config was last loaded successfully.",
            registry=r,
        )
        self.build = Gauge("monitor_build_info", "Version of monitor.", ["version"], registry=r)
        self.build.labels(__version__).set(1)
        self.reload_ok.set(1)
        self.reload_at.set(time.time())

    @classmethod
    def for_daemon(cls, source: StoreSource) -> Metrics:
        """A fresh registry with the counters and the scrape-time store collector."""
        registry = CollectorRegistry(auto_describe=True)
        metrics = cls(registry)
        registry.register(StoreCollector(source))
        return metrics

    def declare(self, config: Config) -> None:
        """Export every configured feed, watchlist and destination at zero from the start, so
        rate() and increase() see the first event."""
        for f in config.feeds:
            for outcome in POLL_OUTCOMES:
                self.polls.labels(f.name, outcome)
            self.items_seen.labels(f.name)
            self.story_follow_ups.labels(f.name)
        for w in config.watchlists:
            self.matches.labels(w.name)
            self.alerts.labels(w.name)
        for d in config.destinations:
            for outcome in DELIVERY_OUTCOMES:
                self.deliveries.labels(d, outcome)

    def render(self) -> bytes:
        """The Prometheus text exposition of this registry."""
        if self.registry is None:
            return b""
        return generate_latest(self.registry)

    # --- what the daemon, pipeline and sender call ------------------------------------------

    def polled(self, feed: str, outcome: str) -> None:
        self.polls.labels(feed, outcome).inc()

    def fetched(self, seconds: float) -> None:
        self.fetch_seconds.observe(seconds)

    def matched(self, watchlist: str) -> None:
        self.matches.labels(watchlist).inc()

    def ingested(
        self,
        feed: str,
        items: Sequence[NewItem],
        outbox: Iterable[OutboxEntry],
        alerts_added: Sequence[str],
    ) -> None:
        """After a poll's transaction committed: items seen, story merges, alerts added."""
        if items:
            self.items_seen.labels(feed).inc(len(items))
            merged = sum(not n.new_story for n in items)
            if merged:
                self.story_merges.labels(feed).inc(merged)
            follow_ups = sum(n.new_story and n.reason.startswith(FOLLOWING) for n in items)
            if follow_ups:
                self.story_follow_ups.labels(feed).inc(follow_ups)
        added = set(alerts_added)
        per_watchlist = Tally(
            e.alert.watchlist for e in outbox if e.alert.id in added and e.alert.type == ALERT
        )
        for watchlist, n in per_watchlist.items():
            self.alerts.labels(watchlist).inc(n)

    def clock_stepped_back(self) -> None:
        self.clock_steps.inc()

    def delivery(self, destination: str, outcome: str) -> None:
        self.deliveries.labels(destination, outcome).inc()

    def reloaded(self, outcome: str) -> None:
        self.reloads.labels(outcome).inc()
        if outcome in ("rejected", "error"):
            self.reload_ok.set(0)
        else:
            self.reload_ok.set(1)
            self.reload_at.set(time.time())


NO_METRICS = Metrics()  # unregistered: what code records when no daemon exports it


class StoreSource(Protocol):
    """What the scrape-time collector reads: the daemon's current store and config."""

    @property
    def store(self) -> Store: ...

    @property
    def config(self) -> Config: ...


class StoreCollector(Collector):
    """Gauges computed at scrape time from the store: a few indexed queries per scrape."""

    def __init__(self, source: StoreSource) -> None:
        self.source = source

    def describe(self) -> Iterable[Metric]:
        return []  # families vary with the store's answer; nothing to check at registration

    def collect(self) -> Iterator[Metric]:
        store, config = self.source.store, self.source.config
        up = GaugeMetricFamily("monitor_store_up", "1 when the store answered this scrape.")
        try:
            outbox = store.outbox_summary()
            states = store.feed_states()
        except StoreError:
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        now = time.time()
        depth = GaugeMetricFamily(
            "monitor_outbox_depth", "Deliveries waiting in the outbox.", labels=["state"]
        )
        for state in ("pending", "sending"):
            depth.add_metric([state], outbox.get(state, (0, None))[0])
        yield depth
        oldest = [at for state, (_, at) in outbox.items() if state != "dead" and at is not None]
        yield GaugeMetricFamily(
            "monitor_outbox_oldest_age_seconds",
            "Age of the oldest delivery still waiting in the outbox (0 when it is empty).",
            value=max(0.0, now - min(oldest)) if oldest else 0.0,
        )
        yield GaugeMetricFamily(
            "monitor_dead_letters",
            "Deliveries that failed for good (see `monitor deliveries --dead`).",
            value=outbox.get("dead", (0, None))[0],
        )
        threshold = config.raw.poll.unhealthy_after
        streak = GaugeMetricFamily(
            "monitor_feed_error_streak", "Failed polls in a row.", labels=["feed"]
        )
        success = GaugeMetricFamily(
            "monitor_feed_last_success_timestamp_seconds",
            "When the feed was last polled successfully.",
            labels=["feed"],
        )
        unhealthy = 0
        for f in config.feeds:
            st = states.get(f.url)
            n = st.error_streak if st else 0
            unhealthy += n >= threshold
            streak.add_metric([f.name], n)
            if st and st.last_success_at:
                success.add_metric([f.name], st.last_success_at)
        yield GaugeMetricFamily("monitor_feeds", "Configured feeds.", value=len(config.feeds))
        yield GaugeMetricFamily(
            "monitor_feeds_unhealthy",
            "Feeds that failed `poll.unhealthy_after` polls in a row.",
            value=unhealthy,
        )
        yield streak
        yield success
