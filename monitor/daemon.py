"""The daemon: APScheduler 3.x runs one job per feed; a sender task drains the outbox; an optional
HTTP endpoint serves /healthz and /metrics; signals stop it or reload its config. I/O.

Lifecycle: open the store (taking the instance lock), make deliveries a crash left in flight due
again, schedule each feed at the time the store remembers (so a restart resumes where it stopped),
then run until SIGTERM/SIGINT. The first signal stops new work, lets in-flight deliveries finish
for up to `grace` seconds (what does not finish stays in the outbox and is sent after restart)
and exits 0; a second signal exits at once. A wall clock stepped back while it runs moves every
planned poll and retry back by the step (`ClockWatch`, HAZARDS 36).

Live reload (SIGHUP, or `monitor reload`): the config file is read and validated in full; an
invalid one is logged, every problem with its file:line, and the running config stays. A valid
one is swapped in between two steps of the event loop: added feeds get a job, removed feeds lose
theirs (a poll already running finishes), changed intervals and timeouts apply from the next
poll, watchlists apply to items seen after the swap, and destinations whose settings changed get
new notifiers, swapped in by the sender between two rounds so no in-flight delivery is dropped
(the old notifiers are closed after that round). The outbox lives in the store and is untouched.
A storage change needs a restart: it is logged and the running store stays.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import gc
import logging
import os
import signal
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.interval import IntervalTrigger

from monitor.config import Config, load, sqlite_path
from monitor.errors import ConfigError, MonitorError, StoreError
from monitor.fetch import Fetcher
from monitor.httpapi import Health, HttpApi
from monitor.metrics import Metrics
from monitor.models import FeedSpec
from monitor.notify import Notifier
from monitor.notify.console import ConsoleNotifier
from monitor.notify.slack import SlackNotifier
from monitor.notify.webhook import WebhookNotifier
from monitor.parsepool import ParsePool
from monitor.pipeline import Pipeline, PollReport, Sender
from monitor.store import Store, open_store

log = logging.getLogger("monitor")

GRACE = 8.0  # seconds in-flight deliveries get after SIGTERM; exit stays under 10 s
SEND_TICK = 1.0  # the sender checks the outbox at least this often
CLOCK_CHECK = 5.0  # seconds between two looks at the wall clock against the monotonic one
CLOCK_TOLERANCE = 2.0  # a disagreement smaller than this is scheduling noise, not a step


class ClockWatch:
    """Tells when the wall clock stepped back (HAZARDS 36). Pure: both clocks are passed in.

    APScheduler 3.x plans each feed's next poll as a wall-clock date, so a wall clock stepped
    back by an hour (an NTP correction, a VM restored from a snapshot) would pause every feed
    for that hour. Between two checks the monotonic clock measures the time that really
    passed; when the wall clock advanced less than that, by more than `tolerance`, it was
    stepped back by the difference. A wall clock that advanced *more* (a step forward, or a
    machine resumed from suspend, during which the monotonic clock stands still) is left to
    the scheduler: each overdue feed is polled once (coalesced), which is right after a suspend.
    """

    def __init__(
        self,
        wall: Callable[[], float] = time.time,
        mono: Callable[[], float] = time.monotonic,
        tolerance: float = CLOCK_TOLERANCE,
    ) -> None:
        self.wall, self.mono, self.tolerance = wall, mono, tolerance
        self._last = (wall(), mono())

    def stepped_back(self) -> float:
        """Seconds the wall clock was stepped back since the last call (0.0 if it was not)."""
        wall, mono = self.wall(), self.mono()
        (wall0, mono0), self._last = self._last, (wall, mono)
        behind = (mono - mono0) - (wall - wall0)
        return behind if behind > self.tolerance else 0.0


def build_notifier(name: str, config: Config) -> Notifier:
    d = config.destinations[name]
    if d.type == "slack":
        return SlackNotifier(name, d.token, d.channel, base_url=d.base_url, pace=d.pace)
    if d.type == "webhook":
        return WebhookNotifier(name, d.url, d.secret, timeout=d.timeout)
    return ConsoleNotifier(name)


def build_notifiers(config: Config) -> dict[str, Notifier]:
    return {name: build_notifier(name, config) for name in config.destinations}


def log_report(r: PollReport) -> None:
    if r.outcome == "error":
        log.warning("feed=%s outcome=error error=%r retry_in=%.0fs", r.feed, r.error, r.next_in)
    else:
        log.info(
            "feed=%s outcome=%s items=%d new=%d alerts=%d elapsed=%.2fs",
            r.feed,
            r.outcome,
            r.items,
            r.new_items,
            r.alerts,
            r.elapsed,
        )


# --- reload: what changed (pure) -------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ReloadPlan:
    """What a new config changes against the running one. Pure data; `plan_reload` makes it."""

    added: tuple[FeedSpec, ...] = ()
    removed: tuple[FeedSpec, ...] = ()
    changed: tuple[FeedSpec, ...] = ()  # same URL, other settings (the new spec)
    retrigger: tuple[FeedSpec, ...] = ()  # their interval (or the jitter) changed
    destinations: tuple[str, ...] = ()  # new or changed: new notifiers
    destinations_removed: tuple[str, ...] = ()
    watchlists: bool = False
    stories: bool = False
    storage: bool = False  # cannot be applied live
    http: bool = False
    other: bool = False  # any other setting (poll limits, max_age, operator, ...)

    @property
    def empty(self) -> bool:
        return self == ReloadPlan(storage=self.storage)


def plan_reload(old: Config, new: Config) -> ReloadPlan:
    before = {f.url: f for f in old.feeds}
    after = {f.url: f for f in new.feeds}
    jitter = old.raw.poll.jitter != new.raw.poll.jitter
    changed = tuple(f for u, f in after.items() if u in before and before[u] != f)
    retrigger = tuple(
        f for u, f in after.items() if u in before and (jitter or before[u].interval != f.interval)
    )
    dests = tuple(
        n
        for n, d in new.destinations.items()
        if n not in old.destinations or old.destinations[n] != d
    )
    keys = ("storage", "http", "feeds", "destinations", "watchlists", "stories")
    return ReloadPlan(
        added=tuple(f for u, f in after.items() if u not in before),
        removed=tuple(f for u, f in before.items() if u not in after),
        changed=changed,
        retrigger=retrigger,
        destinations=dests,
        destinations_removed=tuple(n for n in old.destinations if n not in new.destinations),
        watchlists=old.watchlists != new.watchlists,
        stories=old.raw.stories != new.raw.stories,
        storage=old.storage != new.storage,
        http=old.raw.http != new.raw.http,
        other=old.raw.model_dump(exclude=set(keys)) != new.raw.model_dump(exclude=set(keys)),
    )


# --- `monitor reload` ------------------------------------------------------------------------


def daemon_pid(config: Config) -> int | None:
    """The pid of the running daemon that holds this store's instance lock, or None when no
    daemon holds it. The lock is the flock on `<db>.lock` that holds the pid (store/sqlite.py)."""
    path = sqlite_path(config.storage) + ".lock"
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            text = os.read(fd, 64).decode(errors="replace").strip()
            return int(text) if text.isdigit() else None
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None  # nobody holds the lock: no daemon runs on this store
    finally:
        os.close(fd)


# --- the daemon ------------------------------------------------------------------------------


GC_THRESHOLDS = (50_000, 20, 100)


def tune_gc() -> None:
    """A daemon with a large, long-lived heap (the story index, compiled watchlists) and many
    short-lived objects per request: CPython's default thresholds (700, 10, 10) make it walk the
    whole heap often. Measured on benchmarks/poll.py (N=2,000): the all-304 pass went from 3.07 s
    to 2.05 s. Cycles are still collected, just in larger batches."""
    gc.set_threshold(*GC_THRESHOLDS)


class Daemon:
    def __init__(
        self,
        config: Config,
        *,
        store: Store | None = None,
        use_pool: bool = True,
        listen: str | None = None,
    ) -> None:
        self.config = config
        tune_gc()
        self.store = store or open_store(config.storage, lock=True)
        self.fetcher = Fetcher(
            allow_private=config.raw.poll.allow_private,
            max_per_host=config.raw.poll.per_host,
            max_connections=max(config.raw.poll.concurrency, 8),
        )
        self.pool = ParsePool(deadline=config.raw.poll.parse_timeout) if use_pool else None
        self.notifiers: Mapping[str, Notifier] = build_notifiers(config)
        self.wake = asyncio.Event()
        self.pipeline = Pipeline(
            config, self.store, self.fetcher, parse_pool=self.pool, on_alerts=self.wake.set
        )
        self.pipeline.defer_quiet = True  # flushed in close()
        self.sender = Sender(self.store, self.notifiers, operator=config.raw.operator)
        self.metrics = Metrics.for_daemon(self)
        self.metrics.declare(config)
        self.pipeline.metrics = self.sender.metrics = self.metrics
        self.stopping = asyncio.Event()
        self.polls = asyncio.Semaphore(config.raw.poll.concurrency)
        self.scheduler: AsyncIOScheduler | None = None
        self.listen = listen  # `run --listen` wins over the config's `http.listen`
        self.http: HttpApi | None = None
        self._sender_task: asyncio.Task[None] | None = None
        self._next_notifiers: dict[str, Notifier] | None = None  # swapped in by the sender
        self._reload: asyncio.Task[bool] | None = None
        self._reload_again = False
        self._signals = 0
        self._healthy = True
        self.clock_watch = ClockWatch()
        self.clock_check = CLOCK_CHECK  # seconds between two looks at the wall clock

    # --- polling -----------------------------------------------------------------------------

    async def poll_feed(self, spec: FeedSpec) -> PollReport | None:
        if self.stopping.is_set():
            return None
        async with self.polls:
            try:
                report = await self.pipeline.poll(spec)
            except StoreError as e:
                log.error("feed=%s outcome=store_error error=%r", spec.name, str(e))
                self.metrics.polled(spec.name, "store_error")
                return None
            except Exception:  # one feed's bug never stops the daemon or another feed
                log.exception("feed=%s outcome=crash", spec.name)
                self.metrics.polled(spec.name, "crash")
                return None
        log_report(report)
        self.metrics.polled(report.feed, report.outcome)
        if self.scheduler is not None and report.next_in != spec.interval:
            job = self.scheduler.get_job(spec.url)
            if job is not None:
                job.modify(next_run_time=datetime.fromtimestamp(time.time() + report.next_in, UTC))
        return report

    async def poll_all(self) -> list[PollReport]:
        reports = await asyncio.gather(*(self.poll_feed(f) for f in self.config.feeds))
        return [r for r in reports if r is not None]

    def _trigger(self, spec: FeedSpec) -> IntervalTrigger:
        jitter = int(self.config.raw.poll.jitter) or None
        return IntervalTrigger(seconds=spec.interval, jitter=jitter, timezone=UTC)

    def _schedule(self, spec: FeedSpec, first: float) -> None:
        assert self.scheduler is not None  # noqa: S101 - called only while running
        self.scheduler.add_job(
            self.poll_feed,
            self._trigger(spec),
            args=[spec],
            id=spec.url,
            name=spec.name,
            max_instances=1,
            coalesce=True,
            misfire_grace_time=None,
            next_run_time=datetime.fromtimestamp(first, UTC),
        )

    def _first_poll(self, spec: FeedSpec, now: float) -> float:
        """When the restarted daemon polls a feed: at the time the store remembers, but never
        later than one interval or backoff from now (a wall clock stepped back while the daemon
        was down would otherwise leave the remembered time hours ahead)."""
        st = self.store.feed_state(spec.url)  # one row: this runs once per feed at start-up
        if not st.next_poll_at:
            return now
        latest = now + max(spec.interval, self.config.raw.poll.max_backoff)
        return min(max(now, st.next_poll_at), latest)

    # --- the wall clock ----------------------------------------------------------------------

    async def clock_loop(self, watch: ClockWatch, every: float = CLOCK_CHECK) -> None:
        while not self.stopping.is_set():
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(every):
                    await self.stopping.wait()
            back = watch.stepped_back()
            if not back:
                continue
            try:
                self.clock_stepped_back(back)
            except Exception:  # the watch must outlive a bad moment; polls go on regardless
                log.exception("clock outcome=error (polls keep their planned times)")

    def clock_stepped_back(self, seconds: float) -> None:
        """Move every planned poll and every retry still to come `seconds` earlier, so each
        happens after the interval it was planned with, not after the interval plus the step."""
        shift = timedelta(seconds=seconds)
        jobs = self.scheduler.get_jobs() if self.scheduler is not None else []
        for job in jobs:
            if job.next_run_time is not None:
                job.modify(next_run_time=job.next_run_time - shift)
        try:
            retries = self.store.shift_retries(-seconds, time.time())
        except StoreError as e:
            log.error("clock outcome=store_error error=%r (retries keep their times)", str(e))
            retries = 0
        if retries:
            self.wake.set()
        self.metrics.clock_stepped_back()
        log.warning(
            "clock outcome=stepped_back seconds=%.0f polls_moved=%d retries_moved=%d "
            "(each keeps its interval)",
            seconds,
            len(jobs),
            retries,
        )

    # --- sending -----------------------------------------------------------------------------

    async def send_loop(self) -> None:
        while not self.stopping.is_set():
            await self._swap_notifiers()
            try:
                await self.sender.send_due()
            except StoreError as e:
                log.error("outcome=store_error during delivery error=%r", str(e))
            self.wake.clear()
            if self._next_notifiers is not None:
                continue  # a reload is waiting for this round to end
            wait = SEND_TICK
            with contextlib.suppress(StoreError):
                nxt = self.store.next_due_at()
                if nxt is not None:
                    wait = max(0.0, min(wait, nxt - time.time()))
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(wait):
                    await self._wait_any(self.wake, self.stopping)

    async def _swap_notifiers(self) -> None:
        """Between two sender rounds (nothing in flight): take a reload's notifiers, then close
        the ones they replace."""
        new, self._next_notifiers = self._next_notifiers, None
        if new is None:
            return
        old, self.notifiers = self.notifiers, new
        self.sender.notifiers = dict(new)
        await self._close_notifiers(n for n in old.values() if n not in new.values())

    @staticmethod
    async def _close_notifiers(notifiers: Iterable[Notifier]) -> None:
        unique = {id(n): n for n in notifiers}  # a notifier kept by a reload is listed twice
        for n in unique.values():
            try:
                await n.aclose()
            except Exception:  # closing must not fail a reload or the exit
                log.debug("closing %s failed", n, exc_info=True)

    @staticmethod
    async def _wait_any(*events: asyncio.Event) -> None:
        tasks = [asyncio.create_task(e.wait()) for e in events]
        try:
            await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for t in tasks:
                t.cancel()

    async def drain(self, deadline: float) -> None:
        """poll-once: send everything due now, retrying nothing that is scheduled later."""
        while time.monotonic() < deadline:
            sent = await self.sender.send_due()
            if not sent:
                return

    # --- health and metrics ------------------------------------------------------------------

    def health(self) -> Health:
        """/healthz: the scheduler and the sender run and the store answers. A change between
        healthy and not is logged once."""
        h = self._check_health()
        if h.ok != self._healthy:
            self._healthy = h.ok
            if h.ok:
                log.info("health outcome=ok")
            else:
                log.error("health outcome=unavailable reason=%r", h.reason)
        return h

    def _check_health(self) -> Health:
        if self.stopping.is_set():
            return Health(False, "stopping")
        if self.scheduler is None or not self.scheduler.running:
            return Health(False, "scheduler not running")
        if self._sender_task is not None and self._sender_task.done():
            return Health(False, "sender stopped")
        try:
            self.store.ping()
        except StoreError as e:
            return Health(False, str(e))
        return Health(True)

    def _listen_address(self, config: Config) -> str | None:
        return self.listen or (config.raw.http.listen if config.raw.http else None)

    async def _start_http(self, listen: str) -> HttpApi:
        api = HttpApi(listen, self.health, self.metrics.render)
        try:
            address = await api.start()
        except OSError as e:
            raise MonitorError(f"cannot listen on {listen}: {e.strerror or e}") from e
        log.info("http outcome=listening address=%s paths=/healthz,/metrics", address)
        return api

    # --- reload ------------------------------------------------------------------------------

    def request_reload(self) -> None:
        """SIGHUP: reload now, or once more after the reload that is running."""
        if self.stopping.is_set():
            return
        if self._reload is not None and not self._reload.done():
            self._reload_again = True
            return
        self._reload = asyncio.create_task(self._reload_loop())

    async def _reload_loop(self) -> bool:
        ok = await self._reload_once()
        while self._reload_again and not self.stopping.is_set():
            self._reload_again = False
            ok = await self._reload_once()
        return ok

    async def _reload_once(self) -> bool:
        try:
            return await self.reload()
        except Exception:  # e.g. the store failed while scheduling an added feed
            log.exception("reload outcome=error (what was applied before the error stays)")
            self.metrics.reloaded("error")
            return False

    async def reload(self) -> bool:
        """Re-read and validate the config file; swap it in when valid. True when applied."""
        path = self.config.path
        try:
            new = load(path)
        except ConfigError as e:
            for p in e.problems:
                log.error("reload outcome=invalid problem=%r", str(p))
            log.error(
                "reload outcome=rejected config=%s problems=%d (the running config stays active)",
                path,
                len(e.problems),
            )
            self.metrics.reloaded("rejected")
            return False
        old = self.config
        plan = plan_reload(old, new)
        if plan.storage:
            log.warning(
                "reload storage outcome=needs_restart (the running store stays until the daemon "
                "restarts; every other change applies now)"
            )
            new = replace(new, raw=new.raw.model_copy(update={"storage": old.storage}))
        if plan.empty:
            log.info("reload outcome=unchanged config=%s", path)
            self.metrics.reloaded("unchanged")
            return True
        await self._apply(old, new, plan)
        self.metrics.declare(new)
        self.metrics.reloaded("applied")
        log.info(
            "reload outcome=applied config=%s feeds_added=%d feeds_removed=%d feeds_changed=%d "
            "watchlists_changed=%s destinations_rebuilt=%d destinations_removed=%d",
            path,
            len(plan.added),
            len(plan.removed),
            len(plan.changed),
            plan.watchlists,
            len(plan.destinations),
            len(plan.destinations_removed),
        )
        return True

    async def _apply(self, old: Config, new: Config, plan: ReloadPlan) -> None:
        # Everything up to the first await runs as one step of the loop: no poll sees half of it.
        self.config = new
        self.pipeline.apply_config(new)
        if self.pool is not None:
            self.pool.deadline = new.raw.poll.parse_timeout
        self.sender.operator = tuple(new.raw.operator)
        if plan.stories:
            self.pipeline.load_index(time.time())
        if old.raw.poll.concurrency != new.raw.poll.concurrency:
            self.polls = asyncio.Semaphore(new.raw.poll.concurrency)  # running polls keep theirs
        if self.scheduler is not None:
            now = time.time()
            for spec in plan.removed:
                with contextlib.suppress(Exception):  # the job may be gone already
                    self.scheduler.remove_job(spec.url)
                log.info("feed=%s outcome=removed", spec.name)
            for spec in plan.added:
                self._schedule(spec, self._first_poll(spec, now))
                log.info("feed=%s outcome=added interval=%.0fs", spec.name, spec.interval)
            for spec in plan.changed:
                job = self.scheduler.get_job(spec.url)
                if job is not None:
                    job.modify(args=[spec], name=spec.name)
            for spec in plan.retrigger:
                job = self.scheduler.get_job(spec.url)
                if job is None:
                    continue
                soonest = datetime.fromtimestamp(now + spec.interval, UTC)
                nxt = min(job.next_run_time, soonest) if job.next_run_time else soonest
                job.modify(trigger=self._trigger(spec), next_run_time=nxt)
        if plan.destinations or plan.destinations_removed:
            current = dict(self._next_notifiers or self.notifiers)
            unused = [
                n
                for name, n in (self._next_notifiers or {}).items()
                if name in plan.destinations or name in plan.destinations_removed
            ]
            nxt_map = {
                name: build_notifier(name, new) if name in plan.destinations else current[name]
                for name in new.destinations
            }
            self._next_notifiers = nxt_map
            self.wake.set()
            await self._close_notifiers(unused)  # built by an earlier reload, never used
        if plan.http:
            await self._rebind(new)

    async def _rebind(self, new: Config) -> None:
        listen = self._listen_address(new)
        if self.http is not None and listen == self.http.listen:
            return
        try:
            api = await self._start_http(listen) if listen else None
        except MonitorError as e:
            log.error("reload http outcome=error error=%r (the running endpoint stays)", str(e))
            return
        if self.http is not None:
            await self.http.close()
        self.http = api

    # --- lifecycle ---------------------------------------------------------------------------

    def _on_signal(self, signum: int) -> None:
        self._signals += 1
        if self._signals > 1:
            log.warning("second signal: exiting now")
            if self.pool is not None:
                self.pool.shutdown()  # the workers must not outlive us, holding our stderr
            os._exit(1)
        log.info("signal=%s outcome=stopping grace=%.0fs", signal.Signals(signum).name, GRACE)
        self.stopping.set()

    async def run(self) -> int:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self._on_signal, sig)
        loop.add_signal_handler(signal.SIGHUP, self.request_reload)
        listen = self._listen_address(self.config)
        try:
            self.http = await self._start_http(listen) if listen else None
        except MonitorError:
            await self.close()
            raise
        recovered = self.store.recover()
        if recovered:
            log.info(
                "outbox: %d deliveries were in flight at the last stop; sending them again",
                recovered,
            )
        self.scheduler = AsyncIOScheduler(timezone=UTC)
        now = time.time()
        for spec in self.config.feeds:
            self._schedule(spec, self._first_poll(spec, now))
        self.scheduler.start()
        log.info(
            "started feeds=%d watchlists=%d destinations=%d store=%s",
            len(self.config.feeds),
            len(self.config.watchlists),
            len(self.notifiers),
            self.config.storage,
        )
        self._sender_task = asyncio.create_task(self.send_loop())
        clock_task = asyncio.create_task(self.clock_loop(self.clock_watch, self.clock_check))
        await self.stopping.wait()
        self.scheduler.shutdown(wait=False)
        clock_task.cancel()
        # In-flight deliveries get the grace period; what is left stays `sending` in the store
        # and is sent again after the restart.
        try:
            async with asyncio.timeout(GRACE):
                await self._sender_task
        except TimeoutError:
            log.warning(
                "outcome=grace_expired in_flight=%d (kept in the outbox)", self.sender.in_flight
            )
        if self._reload is not None and not self._reload.done():
            self._reload.cancel()
        await self.close()
        log.info("stopped")
        return 0

    async def close(self) -> None:
        if self.http is not None:
            await self.http.close()
            self.http = None
        pending = self._next_notifiers or {}
        self._next_notifiers = None
        await self._close_notifiers([*self.notifiers.values(), *pending.values()])
        await self.fetcher.aclose()
        if self.pool is not None:
            self.pool.shutdown()
        self.pipeline.flush_feeds()
        self.store.close()
