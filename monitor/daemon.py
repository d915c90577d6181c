"""The daemon: APScheduler 3.x runs one job per feed; a sender task drains the outbox; signals
stop it cleanly. I/O.

Lifecycle: open the store (taking the instance lock), make deliveries a crash left in flight due
again, schedule each feed at the time the store remembers (so a restart resumes where it stopped),
then run until SIGTERM/SIGINT. The first signal stops new work, lets in-flight deliveries finish
for up to `grace` seconds (what does not finish stays in the outbox and is sent after restart)
and exits 0; a second signal exits at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import time
from collections.abc import Mapping
from datetime import UTC, datetime

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.interval import IntervalTrigger

from monitor.config import Config
from monitor.errors import StoreError
from monitor.fetch import Fetcher
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


def build_notifiers(config: Config) -> dict[str, Notifier]:
    out: dict[str, Notifier] = {}
    for name, d in config.destinations.items():
        if d.type == "slack":
            out[name] = SlackNotifier(name, d.token, d.channel, base_url=d.base_url)
        elif d.type == "webhook":
            out[name] = WebhookNotifier(name, d.url, d.secret, timeout=d.timeout)
        else:
            out[name] = ConsoleNotifier(name)
    return out


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


class Daemon:
    def __init__(
        self, config: Config, *, store: Store | None = None, use_pool: bool = True
    ) -> None:
        self.config = config
        self.store = store or open_store(config.storage, lock=True)
        self.fetcher = Fetcher()
        self.pool = ParsePool() if use_pool else None
        self.notifiers: Mapping[str, Notifier] = build_notifiers(config)
        self.wake = asyncio.Event()
        self.pipeline = Pipeline(
            config, self.store, self.fetcher, parse_pool=self.pool, on_alerts=self.wake.set
        )
        self.sender = Sender(self.store, self.notifiers)
        self.stopping = asyncio.Event()
        self.polls = asyncio.Semaphore(config.raw.poll.concurrency)
        self.scheduler: AsyncIOScheduler | None = None
        self._signals = 0

    # --- polling -----------------------------------------------------------------------------

    async def poll_feed(self, spec: FeedSpec) -> PollReport | None:
        if self.stopping.is_set():
            return None
        async with self.polls:
            try:
                report = await self.pipeline.poll(spec)
            except StoreError as e:
                log.error("feed=%s outcome=store_error error=%r", spec.name, str(e))
                return None
            except Exception:  # one feed's bug never stops the daemon or another feed
                log.exception("feed=%s outcome=crash", spec.name)
                return None
        log_report(report)
        if self.scheduler is not None and report.next_in != spec.interval:
            job = self.scheduler.get_job(spec.url)
            if job is not None:
                job.modify(next_run_time=datetime.fromtimestamp(time.time() + report.next_in, UTC))
        return report

    async def poll_all(self) -> list[PollReport]:
        reports = await asyncio.gather(*(self.poll_feed(f) for f in self.config.feeds))
        return [r for r in reports if r is not None]

    # --- sending -----------------------------------------------------------------------------

    async def send_loop(self) -> None:
        while not self.stopping.is_set():
            try:
                await self.sender.send_due()
            except StoreError as e:
                log.error("outcome=store_error during delivery error=%r", str(e))
            self.wake.clear()
            wait = SEND_TICK
            nxt = self.store.next_due_at()
            if nxt is not None:
                wait = max(0.0, min(wait, nxt - time.time()))
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(wait):
                    await self._wait_any(self.wake, self.stopping)

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

    # --- lifecycle ---------------------------------------------------------------------------

    def _on_signal(self, signum: int) -> None:
        self._signals += 1
        if self._signals > 1:
            log.warning("second signal: exiting now")
            os._exit(1)
        log.info("signal=%s outcome=stopping grace=%.0fs", signal.Signals(signum).name, GRACE)
        self.stopping.set()

    async def run(self) -> int:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self._on_signal, sig)
        recovered = self.store.recover()
        if recovered:
            log.info(
                "outbox: %d deliveries were in flight at the last stop; sending them again",
                recovered,
            )
        self.scheduler = AsyncIOScheduler(timezone=UTC)
        states = self.store.feed_states()
        now = time.time()
        jitter = self.config.raw.poll.jitter
        for spec in self.config.feeds:
            st = states.get(spec.url)
            first = max(now, st.next_poll_at) if st and st.next_poll_at else now
            self.scheduler.add_job(
                self.poll_feed,
                IntervalTrigger(seconds=spec.interval, jitter=int(jitter) or None),
                args=[spec],
                id=spec.url,
                name=spec.name,
                max_instances=1,
                coalesce=True,
                misfire_grace_time=None,
                next_run_time=datetime.fromtimestamp(first, UTC),
            )
        self.scheduler.start()
        log.info(
            "started feeds=%d watchlists=%d destinations=%d store=%s",
            len(self.config.feeds),
            len(self.config.watchlists),
            len(self.notifiers),
            self.config.storage,
        )
        sender = asyncio.create_task(self.send_loop())
        await self.stopping.wait()
        self.scheduler.shutdown(wait=False)
        # In-flight deliveries get the grace period; what is left stays `sending` in the store
        # and is sent again after the restart.
        try:
            async with asyncio.timeout(GRACE):
                await sender
        except TimeoutError:
            log.warning(
                "outcome=grace_expired in_flight=%d (kept in the outbox)", self.sender.in_flight
            )
        await self.close()
        log.info("stopped")
        return 0

    async def close(self) -> None:
        for n in self.notifiers.values():
            try:
                await n.aclose()
            except Exception:  # closing must not fail the exit
                log.debug("closing %s failed", n, exc_info=True)
        await self.fetcher.aclose()
        if self.pool is not None:
            self.pool.shutdown()
        self.store.close()
