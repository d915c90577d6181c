"""The one exception tree of monitor. No I/O.

    MonitorError
    ├── ConfigError            fatal at start-up; carries every problem with file, line, key path
    ├── FeedError(feed)
    │   ├── FetchError         .retryable, .retry_after (seconds) decide the next poll
    │   └── ParseError
    ├── OpmlError(file)        an OPML file that cannot be read safely (bad XML, entities)
    ├── StoreError
    │   └── StoreLockedError   another daemon holds the instance lock
    └── NotifyError(dest)      .permanent decides retry; .retry_after honours rate limits

Third-party errors are wrapped only at the I/O edge, with the cause chained.
"""

from __future__ import annotations

from dataclasses import dataclass


class MonitorError(Exception):
    """Base of every error monitor raises on purpose."""


@dataclass(frozen=True, slots=True)
class ConfigProblem:
    """One problem in a config file: where it is and what is wrong."""

    file: str
    line: int | None
    path: str
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line is not None else self.file
        return f"{where}: {self.path}: {self.message}" if self.path else f"{where}: {self.message}"


class ConfigError(MonitorError):
    """The config cannot be used; `problems` lists every reason, each naming file, line and key."""

    def __init__(self, problems: list[ConfigProblem]) -> None:
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))


class FeedError(MonitorError):
    """A feed could not be polled. Touches only that feed."""

    def __init__(self, feed: str, message: str) -> None:
        self.feed = feed
        self.message = message
        super().__init__(f"{feed}: {message}")


class FetchError(FeedError):
    """The fetch failed. `retryable` is False for answers that will not change by themselves
    (404, 410, a refused scheme); the feed still backs off and is never dropped."""

    def __init__(
        self,
        feed: str,
        message: str,
        *,
        retryable: bool = True,
        retry_after: float | None = None,
        status: int | None = None,
    ) -> None:
        super().__init__(feed, message)
        self.retryable = retryable
        self.retry_after = retry_after
        self.status = status


class ParseError(FeedError):
    """The body was fetched but is not a usable feed (HTML page, empty, unparseable)."""


class OpmlError(MonitorError):
    """An OPML file is unreadable, not OPML, or hostile (entity declarations, external DTD).
    Nothing was imported."""

    def __init__(self, file: str, message: str) -> None:
        self.file = file
        self.message = message
        super().__init__(f"{file}: {message}")


class StoreError(MonitorError):
    """The store failed; the transaction was rolled back and nothing was half-written."""


class StoreLockedError(StoreError):
    """Another running daemon holds this store."""


class NotifyError(MonitorError):
    """A delivery failed. `permanent` errors go to the dead letters; others are retried later,
    not before `retry_after` seconds when the destination asked for that."""

    def __init__(
        self,
        dest: str,
        message: str,
        *,
        permanent: bool = False,
        retry_after: float | None = None,
        disable: bool = False,
    ) -> None:
        self.dest = dest
        self.message = message
        self.permanent = permanent
        self.retry_after = retry_after
        self.disable = disable
        super().__init__(f"{dest}: {message}")
