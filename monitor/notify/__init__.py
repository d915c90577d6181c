"""Destinations: where alerts go. The contract the sender loop calls; no I/O here.

Every channel module (slack, webhook, console) has two halves:

- `render(alert)` builds the payload. Pure, tested as data.
- a `Notifier` whose `send(delivery)` posts one rendered payload and either returns a
  `SendResult` or raises `NotifyError`:

      NotifyError(dest, message)
      ├── permanent=False   retry later, not before `retry_after` seconds if given
      ├── permanent=True    dead letter with the message as the reason
      └── disable=True      the destination itself is gone or refuses us (410, revoked token)

A notifier never retries on its own and never sleeps (except Slack's short per-channel pacing,
slack.py): the sender owns the schedule, so each try is recorded and a crash cannot hide a
send. Secrets never appear in messages.
"""

from __future__ import annotations

import binascii
from dataclasses import dataclass
from typing import Protocol

from monitor.models import Delivery
from monitor.retryafter import parse_retry_after

__all__ = [
    "Notifier",
    "SendResult",
    "retry_after_seconds",
    "validate_webhook_secret",
]

WEBHOOK_SECRET_PREFIX = "whsec_"  # noqa: S105 - the spec's prefix, not a secret
MIN_SECRET_BYTES = 24  # Standard Webhooks: secrets are 24 to 64 random bytes
MAX_RETRY_AFTER = 24 * 3600.0


@dataclass(frozen=True, slots=True)
class SendResult:
    """A delivery that the destination accepted. `ref` is what it calls the message (the
    Slack `ts`), kept by the store so a later story update can reply in its thread."""

    ref: str | None = None


class Notifier(Protocol):
    name: str

    async def send(self, delivery: Delivery) -> SendResult:
        """Deliver once. Raises NotifyError; never retries by itself."""
        ...

    async def aclose(self) -> None: ...


def validate_webhook_secret(secret: str) -> str | None:
    """What is wrong with a Standard Webhooks secret, or None when it is usable.

    A secret is `whsec_` followed by standard base64 of at least 24 bytes. The text returned
    never repeats the secret.
    """
    if not secret.startswith(WEBHOOK_SECRET_PREFIX):
        return f"must start with {WEBHOOK_SECRET_PREFIX!r} (a Standard Webhooks secret)"
    encoded = secret[len(WEBHOOK_SECRET_PREFIX) :]
    if not encoded:
        return f"nothing after {WEBHOOK_SECRET_PREFIX!r}"
    try:
        key = binascii.a2b_base64(encoded, strict_mode=True)
    except (binascii.Error, ValueError):
        return f"the part after {WEBHOOK_SECRET_PREFIX!r} is not valid base64"
    if len(key) < MIN_SECRET_BYTES:
        return f"too short: {len(key)} bytes after decoding, at least {MIN_SECRET_BYTES} needed"
    return None


def retry_after_seconds(value: str | None, now: float) -> float | None:
    """A Retry-After header as seconds from `now` (epoch seconds): delta-seconds or an HTTP
    date, clamped to [0, 24 h]. None when absent or unreadable."""
    return parse_retry_after(value, now, MAX_RETRY_AFTER)
