"""Signed webhooks: `render` and `sign` are pure; `WebhookNotifier.send` POSTs (I/O).

The body is `Alert.payload()` as UTF-8 JSON (Arabic kept as is, not \\u-escaped). With a
secret it is signed per the Standard Webhooks spec (our own implementation, checked in the
tests against the reference `standardwebhooks` package):

    webhook-id         the alert id: the same on every try, so receivers can drop repeats
    webhook-timestamp  integer epoch seconds of this try (never a naive local datetime)
    webhook-signature  "v1," + base64(HMAC-SHA256(key, f"{id}.{timestamp}.{body}")),
                       key = base64-decoded secret after "whsec_"

One try is one POST under a whole-request deadline (httpx's own timeouts are per read).
Redirects are not followed, and at most `MAX_RESPONSE_READ` bytes of the answer are read,
raw (no decompression), before the connection is dropped.

    2xx                         SendResult()
    410 Gone                    NotifyError(permanent=True, disable=True)
    3xx, 408, 429, 5xx          NotifyError (retried; Retry-After honoured)
    other 4xx                   NotifyError(permanent=True)
    deadline, connection error  NotifyError (retried)

Messages name the status and a short cleaned excerpt of the answer, never the URL (it may
hold a token) or the secret.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import time
from collections.abc import Callable

import httpx

from monitor.errors import NotifyError
from monitor.models import Alert, Delivery
from monitor.notify import (
    WEBHOOK_SECRET_PREFIX,
    SendResult,
    retry_after_seconds,
    validate_webhook_secret,
)
from monitor.notify.render import clean, truncate

__all__ = [
    "MAX_RESPONSE_READ",
    "WebhookNotifier",
    "classify",
    "render",
    "sign",
    "validate_webhook_secret",  # re-exported for config.py
]

MAX_RESPONSE_READ = 4096
USER_AGENT = "monitor-webhook/0.1"
_RETRY_4XX = frozenset({408, 429})


def render(alert: Alert) -> bytes:
    """The webhook body: UTF-8 JSON of the alert's payload."""
    return json.dumps(alert.payload(), ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def sign(secret: str, msg_id: str, timestamp: int, body: bytes) -> dict[str, str]:
    """The three Standard Webhooks headers for one try. Raises ValueError for a bad secret
    (the message does not contain it)."""
    problem = validate_webhook_secret(secret)
    if problem is not None:
        raise ValueError(f"webhook secret {problem}")
    key = base64.b64decode(secret[len(WEBHOOK_SECRET_PREFIX) :])
    signed = f"{msg_id}.{timestamp}.".encode() + body
    digest = hmac.new(key, signed, hashlib.sha256).digest()
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": "v1," + base64.b64encode(digest).decode("ascii"),
    }


def _excerpt(head: bytes) -> str:
    text = clean(head.decode("utf-8", "replace"), limit_hint=200)
    return truncate(text, 200)


def classify(
    dest: str, status: int, head: bytes, retry_after: str | None, now: float
) -> NotifyError | None:
    """None for a 2xx answer, else the NotifyError it means. Pure."""
    if 200 <= status < 300:
        return None
    said = _excerpt(head)
    message = f"HTTP {status}" + (f": {said}" if said else "")
    if status == 410:
        return NotifyError(
            dest, message + " (endpoint gone; destination disabled)", permanent=True, disable=True
        )
    if 300 <= status < 400:
        return NotifyError(dest, f"HTTP {status}: redirect not followed")
    if status >= 500 or status in _RETRY_4XX or status < 200:
        return NotifyError(dest, message, retry_after=retry_after_seconds(retry_after, now))
    return NotifyError(dest, message, permanent=True)


class WebhookNotifier:
    """POSTs each alert to one URL, signed when a secret is given."""

    def __init__(
        self,
        name: str,
        url: str,
        secret: str | None,
        client: httpx.AsyncClient | None = None,
        timeout: float = 10.0,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.name = name
        if not url.lower().startswith(("http://", "https://")):
            raise NotifyError(name, "url must be http:// or https://", permanent=True, disable=True)
        if secret is not None:
            problem = validate_webhook_secret(secret)
            if problem is not None:
                raise NotifyError(name, f"secret {problem}", permanent=True, disable=True)
        self._url = url
        self._secret = secret
        self._timeout = timeout
        self._clock = clock
        self._own_client = client is None
        self._client = client or httpx.AsyncClient(
            timeout=httpx.Timeout(timeout),
            follow_redirects=False,
            trust_env=False,  # proxies only when configured (HAZARDS 22)
        )

    def headers(self, alert: Alert, body: bytes) -> dict[str, str]:
        """The headers of one try: a fresh timestamp (and signature) each time."""
        ts = int(self._clock())
        headers = {
            "content-type": "application/json",
            "user-agent": USER_AGENT,
            "webhook-id": alert.id,
            "webhook-timestamp": str(ts),
        }
        if self._secret is not None:
            headers.update(sign(self._secret, alert.id, ts, body))
        return headers

    async def send(self, delivery: Delivery) -> SendResult:
        alert = delivery.alert
        body = render(alert)
        headers = self.headers(alert, body)
        try:
            async with (
                asyncio.timeout(self._timeout),
                self._client.stream(
                    "POST", self._url, content=body, headers=headers, follow_redirects=False
                ) as resp,
            ):
                head = bytearray()
                async for chunk in resp.aiter_raw():
                    head += chunk
                    if len(head) >= MAX_RESPONSE_READ:
                        break
                status = resp.status_code
                retry_after = resp.headers.get("retry-after")
        except TimeoutError as e:
            raise NotifyError(self.name, f"no answer within {self._timeout:g} s") from e
        except (httpx.HTTPError, httpx.InvalidURL) as e:
            raise NotifyError(self.name, f"request failed ({type(e).__name__})") from e
        error = classify(
            self.name, status, bytes(head[:MAX_RESPONSE_READ]), retry_after, self._clock()
        )
        if error is not None:
            raise error
        return SendResult()

    async def aclose(self) -> None:
        if self._own_client:
            await self._client.aclose()
