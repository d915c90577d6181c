"""Small helpers the tests share: a controllable clock, waiting for a condition, closing what
a test opened, starting and stopping `monitor run` as a subprocess."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path

from monitor.fetch import Fetcher
from monitor.notify import Notifier
from tests.conftest import ROOT, WEBHOOK_SECRET


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


def start(cfg: Path, log: Path, *, new_session: bool = False) -> subprocess.Popen[bytes]:
    """`monitor -c cfg run` with the tests' Slack token and webhook secret in its environment,
    its output appended to `log`; `new_session` puts it in its own process group, so cleanup
    reaches the parse workers."""
    env = {
        **os.environ,
        "TEST_SLACK_TOKEN": "xoxb-test-token",
        "TEST_WEBHOOK_SECRET": WEBHOOK_SECRET,
    }
    with log.open("ab") as out:  # the child keeps its own copy of the descriptor
        return subprocess.Popen(
            [sys.executable, "-m", "monitor", "-c", str(cfg), "run"],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=new_session,
        )


def stop(proc: subprocess.Popen[bytes]) -> int:
    proc.send_signal(signal.SIGTERM)
    return proc.wait(timeout=15)
