"""Parsing (and the rest of monitor.analyze) in worker processes. I/O (processes, signals).

Feed parsing is CPU-bound and feedparser has measured sharp edges (an internal entity expanded to
1.2 GB, a backtracking author regex: ../shared/HAZARDS.md), so it runs in a small pool of worker
processes: both cores parse, and a hostile document costs a worker, never the daemon.

Each worker has a memory limit (RLIMIT_AS): a document that would need more raises MemoryError
in the worker, which fails that feed only. Each parse has a wall-clock deadline enforced inside
the worker (SIGALRM raises in the parsing code), and a backstop in the daemon a few seconds later
for a worker stuck in C code: the pool is then replaced. A worker that dies (killed, out of
memory at the OS level) breaks the pool: it is replaced and the feeds whose parse was in flight
are tried once more, so only the feed that kills a worker twice fails.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import multiprocessing
import os
import resource
import signal
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from types import FrameType

from monitor.analyze import Analyzed, analyze
from monitor.errors import ParseError
from monitor.match import Matcher, compile_watchlists
from monitor.models import FeedSpec, WatchlistSpec

log = logging.getLogger("monitor")

DEFAULT_DEADLINE = 20.0  # seconds of wall clock per document
DEFAULT_MEMORY = 1 << 30  # bytes of address space per worker
BACKSTOP = 5.0  # seconds past the deadline before the daemon gives up on a worker
# Documents handed to the pool beyond one per worker: a worker that finishes a parse starts the
# next at once instead of waiting for the event loop to collect the result and submit another
# (measured on benchmarks/poll.py, docs/bench-poll.md). A queued document waits for at most one
# parse ahead of it, so the daemon's backstop allows for that wait.
QUEUED_PER_WORKER = 1


class _Deadline(BaseException):
    """The parse deadline's alarm. A BaseException, like KeyboardInterrupt, so that no
    `except Exception` on the way (ours or a library's) can swallow it and parse on."""


_MATCHER: Matcher | None = None  # this worker's compiled watchlists


def _init_worker(memory: int, watchlists: tuple[WatchlistSpec, ...]) -> None:
    global _MATCHER
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the daemon handles Ctrl-C
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    _MATCHER = compile_watchlists(watchlists)
    _exit_with_the_daemon()
    if memory > 0:
        with contextlib.suppress(ValueError, OSError):
            _soft, hard = resource.getrlimit(resource.RLIMIT_AS)
            limit = memory if hard == resource.RLIM_INFINITY else min(memory, hard)
            resource.setrlimit(resource.RLIMIT_AS, (limit, hard))


def _exit_with_the_daemon() -> None:
    """A worker must not outlive a daemon killed with SIGKILL. Its parent is the forkserver,
    and it inherits the write end of the forkserver's 'alive' pipe (and its own call queue's),
    so nobody would ever see EOF: the forkserver, the workers and the resource tracker would
    run for good. Close the alive pipe here (a worker starts no processes), so the forkserver
    exits with the daemon; then leave when the forkserver is gone (we are re-parented)."""
    from multiprocessing import forkserver

    server = forkserver._forkserver  # CPython's singleton
    fd = getattr(server, "_forkserver_alive_fd", None)
    if fd is not None:
        with contextlib.suppress(OSError):
            os.close(fd)
        server._forkserver_alive_fd = None  # type: ignore[attr-defined]  # set in each child
    parent = os.getppid()

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(0.5)
        os._exit(0)

    threading.Thread(target=watch, name="exit-with-the-daemon", daemon=True).start()


def _on_alarm(signum: int, frame: FrameType | None) -> None:
    raise _Deadline


def _job(
    body: bytes,
    spec: FeedSpec,
    content_type: str | None,
    max_items: int,
    now: float,
    deadline: float,
    max_age: float,
    window: float,
) -> list[Analyzed] | str:
    """Runs in a worker. Returns the analysed entries, or a short reason why not (exceptions
    from a worker are pickled with their tracebacks; a string is cheaper and always unpickles)."""
    signal.signal(signal.SIGALRM, _on_alarm)
    signal.setitimer(signal.ITIMER_REAL, deadline)
    try:
        return analyze(
            body,
            spec=spec,
            content_type=content_type,
            max_items=max_items,
            now=now,
            matcher=_MATCHER,
            max_age=max_age,
            window=window,
        )
    except ParseError as e:
        return e.message
    except _Deadline:
        return f"parse took longer than {deadline:g}s"
    except MemoryError:
        return "parse needed more memory than a worker may use"
    except RecursionError:
        return "document nested too deeply"
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)


class ParsePool:
    def __init__(
        self,
        workers: int | None = None,
        *,
        deadline: float = DEFAULT_DEADLINE,
        memory: int = DEFAULT_MEMORY,
        watchlists: tuple[WatchlistSpec, ...] = (),
    ) -> None:
        self.workers = workers or max(1, min(2, os.cpu_count() or 1))
        self.deadline = deadline
        self.memory = memory
        self.watchlists = watchlists
        self._pool = self._new_pool()
        self.restarts = 0
        self._slots: tuple[asyncio.AbstractEventLoop, asyncio.Semaphore] | None = None

    def _slots_for(self, loop: asyncio.AbstractEventLoop) -> asyncio.Semaphore:
        """Documents wait here for a slot: one running and QUEUED_PER_WORKER waiting per worker.
        The queue before the pool stays short, so the backstop bounds a document's wait and
        parse together: a healthy worker must not be killed for the length of the queue."""
        if self._slots is None or self._slots[0] is not loop:
            self._slots = (loop, asyncio.Semaphore(self.workers * (1 + QUEUED_PER_WORKER)))
        return self._slots[1]

    def _new_pool(self) -> ProcessPoolExecutor:
        ctx = multiprocessing.get_context("forkserver")
        return ProcessPoolExecutor(
            max_workers=self.workers,
            mp_context=ctx,
            initializer=_init_worker,
            initargs=(self.memory, self.watchlists),
        )

    def reconfigure(self, watchlists: tuple[WatchlistSpec, ...]) -> None:
        """New watchlists: new workers (each compiles them once). Parses in flight finish on
        the old workers, with the old watchlists."""
        if watchlists == self.watchlists:
            return
        self.watchlists = watchlists
        old, self._pool = self._pool, self._new_pool()
        old.shutdown(wait=False)

    def _replace(self, broken: ProcessPoolExecutor, why: str) -> None:
        if self._pool is not broken:
            return  # another feed already replaced it
        self.restarts += 1
        log.warning("parse_pool outcome=restart reason=%r", why)
        self._pool = self._new_pool()
        _kill(broken)

    async def analyze(
        self,
        spec: FeedSpec,
        body: bytes,
        content_type: str | None,
        max_items: int,
        now: float,
        *,
        max_age: float = float("inf"),
        window: float = float("inf"),
    ) -> list[Analyzed]:
        feed = spec.name
        for attempt in (1, 2):
            slots = self._slots_for(asyncio.get_running_loop())
            await slots.acquire()
            pool = self._pool
            loop = asyncio.get_running_loop()
            try:
                fut = loop.run_in_executor(
                    pool,
                    _job,
                    body,
                    spec,
                    content_type,
                    max_items,
                    now,
                    self.deadline,
                    max_age,
                    window,
                )
                async with asyncio.timeout(self.deadline * (1 + QUEUED_PER_WORKER) + BACKSTOP):
                    result = await fut
            except TimeoutError:
                self._replace(pool, f"{feed}: a worker did not return from a parse")
                raise ParseError(feed, f"parse took longer than {self.deadline:g}s") from None
            except BrokenProcessPool:
                self._replace(pool, f"a worker died while parsing {feed}")
                if attempt == 2:
                    raise ParseError(feed, "the parse worker died (out of memory?)") from None
                continue
            finally:
                slots.release()
            if isinstance(result, str):
                raise ParseError(feed, result)
            return result
        raise AssertionError("unreachable")

    def shutdown(self) -> None:
        _kill(self._pool)


def _kill(pool: ProcessPoolExecutor) -> None:
    """Stop a pool now: its workers may be stuck in a hostile parse."""
    procs = list((getattr(pool, "_processes", None) or {}).values())
    pool.shutdown(wait=False, cancel_futures=True)
    for p in procs:
        with contextlib.suppress(Exception):
            p.kill()
