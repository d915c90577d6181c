"""Small helpers the tests share: a controllable clock, waiting for a condition, closing what
a test opened."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping

from monitor.fetch import Fetcher
from monitor.notify import Notifier


class Clock:
    """A clock the test moves by hand (`clock.t += 60`): pure code takes `now` from it."""

    def __init__(self, t: float) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


def wait_for(cond: Callable[[], bool], what: str, timeout: float = 30.0) -> None:
    """Poll `cond` until it holds; fail naming `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout:g}s waiting for {what}")


async def close(*things: Fetcher | Mapping[str, Notifier]) -> None:
    for t in things:
        if isinstance(t, Fetcher):
            await t.aclose()
        else:
            for n in t.values():
                await n.aclose()
