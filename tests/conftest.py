"""Shared fixtures: real local servers and a real SQLite file per test."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import settings

from tests.servers import FeedServer, SlackServer, WebhookReceiver

# In CI the property tests run a fixed sequence of examples (derandomized), so a submission's
# verdict does not depend on the luck of the draw; locally they explore new examples each run.
settings.register_profile("ci", derandomize=True, database=None)
if os.environ.get("CI"):
    settings.load_profile("ci")

ROOT = Path(__file__).resolve().parent.parent
DATA = Path(__file__).resolve().parent / "data"
SHARED = ROOT.parent / "shared"

WEBHOOK_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"  # noqa: S105 - a test-only secret


@pytest.fixture
def feed_server() -> Iterator[FeedServer]:
    with FeedServer() as s:
        yield s  # type: ignore[misc]


@pytest.fixture
def slack_server() -> Iterator[SlackServer]:
    with SlackServer() as s:
        yield s  # type: ignore[misc]


@pytest.fixture
def webhook_receiver() -> Iterator[WebhookReceiver]:
    with WebhookReceiver(WEBHOOK_SECRET) as s:
        yield s  # type: ignore[misc]
