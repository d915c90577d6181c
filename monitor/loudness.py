"""How loudly a watchlist speaks: digests, quiet hours, priority and an hourly cap. Pure: the
time is passed in.

    release(rules, created_at, sent_last_hour) -> Release(at, key)

An alert is released at `at`; alerts that share a `key` are sent together as one digest message
(key None: sent alone, at once). The rules, in order:

1. Cap: a watchlist that already released `max_per_hour` alerts in the last hour holds the rest
   until the hour is over and then sends them as one "N more" summary. This applies to urgent
   watchlists too: it is the safety valve for a term that suddenly matches everything.
2. Urgent (`priority: urgent`): at once, whatever the digest and quiet settings.
3. Quiet hours (`quiet: {from: "22:00", to: "07:00", tz: Asia/Riyadh}`): an alert created inside
   the quiet window waits for its end and goes out in one digest with the others held with it.
4. Digest (`digest: {every: 1h}`): alerts go out in one message at the end of each period
   (periods are aligned to the epoch in UTC, so 1h digests go out on the hour). A period that
   ends inside quiet hours is held to the end of the quiet window.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo


@dataclass(frozen=True, slots=True)
class Quiet:
    start: time
    end: time
    tz: str

    def window_end(self, ts: float) -> float | None:
        """If `ts` falls inside quiet hours, the epoch time they end; else None."""
        zone = ZoneInfo(self.tz)
        local = datetime.fromtimestamp(ts, zone)
        t = local.time()
        if self.start == self.end:
            return None
        if self.start < self.end:  # e.g. 13:00-15:00, within one day
            inside = self.start <= t < self.end
            end_day = local.date()
        else:  # e.g. 22:00-07:00, across midnight
            inside = t >= self.start or t < self.end
            end_day = local.date() + timedelta(days=1) if t >= self.start else local.date()
        if not inside:
            return None
        end = datetime.combine(end_day, self.end, zone)
        return end.timestamp()


@dataclass(frozen=True, slots=True)
class Loudness:
    """A watchlist's rules. The default (no digest, no quiet, normal, no cap) sends at once."""

    digest_every: float | None = None  # seconds
    quiet: Quiet | None = None
    urgent: bool = False
    max_per_hour: int | None = None

    @property
    def immediate(self) -> bool:
        return self.digest_every is None and self.quiet is None and self.max_per_hour is None


@dataclass(frozen=True, slots=True)
class Release:
    at: float
    key: str | None  # alerts with the same key go out as one digest
    kind: str = "alert"  # alert | digest | quiet | capped


def release(watchlist: str, rules: Loudness, created: float, sent_last_hour: int) -> Release:
    if rules.max_per_hour is not None and sent_last_hour >= rules.max_per_hour:
        hour_end = (math.floor(created / 3600) + 1) * 3600.0
        return Release(hour_end, f"cap:{watchlist}:{int(hour_end)}", "capped")
    if rules.urgent:
        return Release(created, None)
    if rules.quiet is not None:
        quiet_end = rules.quiet.window_end(created)
        if quiet_end is not None:
            return Release(quiet_end, f"quiet:{watchlist}:{int(quiet_end)}", "quiet")
    if rules.digest_every:
        p = rules.digest_every
        at = (math.floor(created / p) + 1) * p
        if rules.quiet is not None:
            quiet_end = rules.quiet.window_end(at)
            if quiet_end is not None:
                return Release(quiet_end, f"quiet:{watchlist}:{int(quiet_end)}", "quiet")
        return Release(at, f"digest:{watchlist}:{int(at)}", "digest")
    return Release(created, None)
