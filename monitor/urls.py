"""Whether a URL can be connected to as the fetcher would: one check for feed URLs in the
config and for redirect targets, so that a URL neither reader can use never reaches a socket."""

from __future__ import annotations

from urllib.parse import urlsplit

import httpx


def url_problem(url: str) -> str | None:
    """Why the fetcher could not connect to `url`, or None. urllib and httpx read a URL's port
    differently, and both are used: urllib raises ValueError on a port out of range, and httpx
    reads "http://[::1]99999" (no colon) as port 99999, which urllib sees as no port at all and
    the socket refuses with an OverflowError that escaped a poll as a crash."""
    try:
        urlsplit(url).port  # noqa: B018 - raises ValueError on a bad port
    except ValueError as e:
        return str(e)
    try:
        port = httpx.URL(url).port
    except httpx.InvalidURL as e:
        return str(e)
    if port is not None and not 0 < port <= 65535:
        return f"Port out of range 1-65535: {port}"
    return None
