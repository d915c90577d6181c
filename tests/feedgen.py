"""Build RSS documents of Arabic news items for tests and benchmarks."""

from __future__ import annotations

import html
from collections.abc import Sequence
from dataclasses import dataclass
from email.utils import formatdate


@dataclass(frozen=True)
class FakeItem:
    guid: str
    title: str
    body: str
    link: str | None = None
    published: float | None = None  # epoch seconds


def rss(items: Sequence[FakeItem], *, title: str = "feed", encoding: str = "utf-8") -> bytes:
    parts = [
        f'<?xml version="1.0" encoding="{encoding}"?>\n'
        '<rss version="2.0" xmlns:content="http://purl.org/rss/1.0/modules/content/">'
        f"<channel><title>{html.escape(title)}</title><link>https://example.org/</link>"
        "<description>test feed</description>"
    ]
    for it in items:
        link = f"<link>{html.escape(it.link)}</link>" if it.link else ""
        pub = f"<pubDate>{formatdate(it.published, usegmt=True)}</pubDate>" if it.published else ""
        parts.append(
            f"<item><title>{html.escape(it.title)}</title>{link}"
            f'<guid isPermaLink="false">{html.escape(it.guid)}</guid>{pub}'
            f"<description>{html.escape(it.body[:200])}</description>"
            f"<content:encoded><![CDATA[<p>{html.escape(it.body)}</p>]]></content:encoded></item>"
        )
    parts.append("</channel></rss>")
    return "".join(parts).encode(encoding)
