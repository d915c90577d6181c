"""Retry-After, as feeds (429/503) and destinations (429/5xx) send it. Pure.

RFC 9110 allows delta-seconds or an HTTP date; both are read, and the answer is clamped so that a
hostile or broken server can neither make us retry at once in a loop nor park us for a year.
"""

from __future__ import annotations

import email.utils
import math


def parse_retry_after(value: str | None, now: float, cap: float) -> float | None:
    """Retry-After as seconds from `now` (epoch seconds): delta-seconds or an HTTP date; None when
    absent or unreadable; never negative, never above `cap`."""
    if not value:
        return None
    value = value.strip()
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:
            return None
        seconds = when.timestamp() - now
    if math.isnan(seconds):
        return None
    return min(max(seconds, 0.0), cap)
