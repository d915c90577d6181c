"""A cheap, fast feed server for benchmarks: N pre-rendered RSS feeds of real Arabic news items on
127.0.0.1, with ETag / If-None-Match (304). I/O: it is a server, run in its own process(es).

    render_feeds(n, seed=..., now=...) -> list[bytes]   pure given the corpus: the documents
    FeedServer(n, seed=..., now=..., procs=1)     context manager: .port, .url(i), .bytes_total
    GET /feed/<i>.xml                             200 with the feed, or 304 on a matching ETag

Items are the real news items of the ANT corpus sample (../shared/data/ant, see its README:
A. Chouigui, O. Ben Khiroun, B. Elayeb, "ANT Corpus: An Arabic News Text Collection for Textual
Classification", AICCSA 2017, http://antcorpus.github.io), reused across feeds with distinct links
and GUIDs per feed, so every item of every feed is new on a first pass. Each feed holds 30-40
items; pubDates are `now` minus a few minutes. Without the corpus, items are built from the
Arabic sentences of tests/data/match_eval.tsv. Two shapes of item (`shape=`):

- `wordpress` (the default): a full-content feed as WordPress, the CMS of most Arabic news sites
  with their own feed, writes it: the description is a thumbnail `<img>` and the excerpt in a
  `<p>`, two `<category>`s, and `<content:encoded>` carries a `<figure>` with a responsive image
  (`srcset`, `sizes`, caption), the article's lead paragraphs (up to TEXT_CHARS) in `<p dir=rtl
  style=...>` with a tag link and a `<strong>` run in each, and the "The post ... appeared first
  on ..." footer. 140-170 KB a feed. This is the shape that issue 2's reference figure describes:
  feedparser with its defaults parses these items at ~600-700 items/s on this machine (the
  issue: "about 114 s for the first pass of 70k items (feedparser parses ~600 items/s with its
  defaults)"); most of that is its HTML sanitizer and relative-URI resolver walking the markup.
- `plain`: the summary in `<description>` and the lead paragraphs as bare `<p>` in
  `<content:encoded>`, no other markup: 70-120 KB a feed. feedparser's defaults parse these at
  ~1,600 items/s, 2.7 times the issue's figure, so the sanitizer's share of the reference is much
  smaller; kept to show how the comparison depends on the markup (docs/bench-poll.md).

The server must not be what a benchmark measures: every response (headers and body, 200 and 304)
is rendered once into bytes before the first request, the ETag is precomputed, and the handler is
a minimal asyncio HTTP/1.1 loop (keep-alive, If-None-Match, nothing else). It runs in separate
processes (`procs` of them share the port through SO_REUSEPORT), so its CPU is not the measured
client's. It only listens on 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import hashlib
import html
import json
import multiprocessing
import os
import random
import socket
import sys
from collections.abc import Sequence
from email.utils import formatdate
from multiprocessing.connection import Connection
from pathlib import Path
from types import TracebackType

ROOT = Path(__file__).resolve().parent.parent
ANT = ROOT.parent / "shared/data/ant/ant-2018-03-01_21.jsonl.gz"
EVAL = ROOT / "tests/data/match_eval.tsv"

TEXT_CHARS = 1_200  # article text kept per item: feeds come out at 55-110 KB, as outlets serve
CorpusItem = tuple[str, str, str, str]  # url, title, summary, text


def corpus_source() -> str:
    return "ANT corpus sample" if ANT.exists() else "generated from tests/data/match_eval.tsv"


def load_corpus() -> list[CorpusItem]:
    """The real items (url, title, summary, text), or generated ones when /work/shared is absent."""
    if ANT.exists():
        out: list[CorpusItem] = []
        with gzip.open(ANT, "rt", encoding="utf-8") as f:
            for line in f:
                it = json.loads(line)
                out.append((it["url"], it["title"], it["summary"], it["text"]))
        return out
    rng = random.Random(7)
    sentences = [
        line.split("\t")[4]
        for line in EVAL.read_text(encoding="utf-8").splitlines()
        if line and not line.startswith("#")
    ]
    gen: list[CorpusItem] = []
    for k in range(2000):
        paras = []
        for _ in range(rng.randint(4, 12)):
            paras.append(" ".join(rng.choice(sentences) for _ in range(rng.randint(2, 4))))
        text = "\n".join(paras)
        gen.append((f"https://news.example/ar/{k}", rng.choice(sentences), text[:300], text))
    return gen


def _link(url: str, feed: int) -> str:
    """The item's own URL, made distinct per feed: /f<feed> inserted after the host."""
    scheme, _, rest = url.partition("://")
    host, _, path = rest.partition("/")
    return f"{scheme}://{host}/f{feed}/{path}"


def _lead(text: str, limit: int = TEXT_CHARS) -> list[str]:
    """The article's paragraphs up to about `limit` characters (at least the first one)."""
    out: list[str] = []
    size = 0
    for p in text.split("\n"):
        if not p.strip():
            continue
        if out and size + len(p) > limit:
            break
        out.append(p)
        size += len(p)
    return out


# A realistic share of the same story at several outlets: 10 % of items are verbatim copies of
# a corpus article (as many outlets carry the same wire story). In the others every fourth word
# is swapped for another corpus word, so that 2,000 feeds are not 95 % copies of 3,280 articles
# (which would make the pass a stress test of story grouping instead of polling) while the text
# stays real Arabic news text for normalization and matching.
COPY_SHARE = 0.10
_VOCAB: list[str] = []


def _vary(rng: random.Random, corpus: Sequence[CorpusItem], paras: list[str]) -> list[str]:
    if not _VOCAB:
        for item in corpus[:500]:
            _VOCAB.extend(item[3].split()[:200])
    out = []
    for p in paras:
        words = p.split()
        for n in range(rng.randrange(4), len(words), 4):
            words[n] = rng.choice(_VOCAB)
        out.append(" ".join(words))
    return out


SHAPES = ("wordpress", "plain")


def _wordpress_body(url: str, title: str, paras: list[str], k: int, rng: random.Random) -> str:
    """The content:encoded HTML of a WordPress post: a figure, marked-up paragraphs, a footer."""
    e = html.escape
    host = url.split("/")[2] if url.count("/") >= 2 else "news.example"
    img = f"https://{host}/wp-content/uploads/2018/03/{k}"
    out = [
        '<figure class="wp-block-image size-large"><img loading="lazy" decoding="async" '
        f'width="1024" height="576" src="{img}-1024x576.jpg" alt="{e(title)}" '
        f'class="wp-image-{k}" srcset="{img}-1024x576.jpg 1024w, {img}-300x169.jpg 300w, '
        f'{img}-768x432.jpg 768w, {img}.jpg 1280w" sizes="(max-width: 1024px) 100vw, 1024px" />'
        f'<figcaption class="wp-element-caption">{e(title)}</figcaption></figure>'
    ]
    for p in paras:
        words = e(p).split(" ")
        if len(words) > 12:  # a tag link on one word run, the first words in bold
            a = rng.randrange(2, len(words) - 6)
            words[a] = f'<a href="https://{host}/tag/{k}-{a}/" title="{words[a]}">{words[a]}'
            words[a + 2] += "</a>"
            b = rng.randrange(0, 3)
            words[b] = "<strong>" + words[b]
            words[b + 1] += "</strong>"
        out.append('<p dir="rtl" style="text-align: justify;">' + " ".join(words) + "</p>")
    out.append(
        f'<p>The post <a rel="nofollow" href="{e(url)}">{e(title)}</a> appeared first on '
        f'<a rel="nofollow" href="https://{host}/">{host}</a>.</p>'
    )
    return "".join(out)


def _wordpress_description(url: str, summary: str, k: int) -> str:
    host = url.split("/")[2] if url.count("/") >= 2 else "news.example"
    return (
        f'<img width="300" height="169" src="https://{host}/wp-content/uploads/2018/03/'
        f'{k}-300x169.jpg" class="attachment-medium size-medium wp-post-image" alt="" '
        f'style="float:right; margin:0 0 10px 10px;" /><p>{html.escape(summary)} [&#8230;]</p>'
    )


def render_feed(
    i: int, corpus: Sequence[CorpusItem], *, seed: int, now: float, shape: str = "wordpress"
) -> bytes:
    if shape not in SHAPES:
        raise ValueError(f"unknown feed shape {shape!r}: one of {', '.join(SHAPES)}")
    rng = random.Random(seed * 1_000_003 + i)
    picks = rng.sample(range(len(corpus)), rng.randint(30, 40))
    e = html.escape
    parts = [
        '<?xml version="1.0" encoding="utf-8"?>\n'
        '<rss version="2.0" xmlns:content="http://purl.org/rss/1.0/modules/content/" '
        'xmlns:dc="http://purl.org/dc/elements/1.1/">\n<channel>'
        f"<title>موقع الأخبار {i}</title><link>https://outlet{i}.example/ar/</link>"
        "<description>آخر الأخبار</description><language>ar</language>"
        f"<lastBuildDate>{formatdate(now, usegmt=True)}</lastBuildDate>\n"
    ]
    for j, k in enumerate(picks):
        url, title, summary, text = corpus[k]
        link = _link(url, i)
        paras = _lead(text)
        if rng.random() >= COPY_SHARE:
            paras = _vary(rng, corpus, paras)
        head = (
            f"<item><title>{e(title)}</title><link>{e(link)}</link>"
            f'<guid isPermaLink="true">{e(link)}</guid>'
            f"<pubDate>{formatdate(now - 60 * j, usegmt=True)}</pubDate>"
            "<dc:creator>المحرر</dc:creator>"
        )
        if shape == "plain":
            body = "".join(f"<p>{e(p)}</p>" for p in paras)
            parts.append(
                f"{head}<category>أخبار</category><description>{e(summary)}</description>"
                f"<content:encoded><![CDATA[{body}]]></content:encoded></item>\n"
            )
        else:
            desc = _wordpress_description(link, summary, k)
            body = _wordpress_body(link, title, paras, k, rng)
            parts.append(
                f"{head}<category><![CDATA[أخبار]]></category><category><![CDATA[سياسة]]>"
                f"</category><description><![CDATA[{desc}]]></description>"
                f"<content:encoded><![CDATA[{body}]]></content:encoded></item>\n"
            )
    parts.append("</channel></rss>\n")
    return "".join(parts).encode("utf-8")


def render_feeds(n: int, *, seed: int, now: float, shape: str = "wordpress") -> list[bytes]:
    corpus = load_corpus()
    return [render_feed(i, corpus, seed=seed, now=now, shape=shape) for i in range(n)]


def _responses(feeds: Sequence[bytes], now: float) -> dict[bytes, tuple[bytes, bytes, bytes]]:
    """path -> (etag, full 200 response, full 304 response), all rendered once."""
    date = formatdate(now, usegmt=True)
    out: dict[bytes, tuple[bytes, bytes, bytes]] = {}
    for i, body in enumerate(feeds):
        etag = f'"{hashlib.sha1(body).hexdigest()[:20]}"'  # noqa: S324 - an ETag, not security
        head = (
            f"Content-Type: application/rss+xml; charset=utf-8\r\nETag: {etag}\r\n"
            f"Last-Modified: {date}\r\nCache-Control: max-age=60\r\n"
        )
        ok = f"HTTP/1.1 200 OK\r\n{head}Content-Length: {len(body)}\r\n\r\n".encode() + body
        nm = f"HTTP/1.1 304 Not Modified\r\n{head}\r\n".encode()
        out[f"/feed/{i}.xml".encode()] = (etag.encode(), ok, nm)
    return out


_NOT_FOUND = b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n"


async def _serve(sock: socket.socket, table: dict[bytes, tuple[bytes, bytes, bytes]]) -> None:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                try:
                    head = await reader.readuntil(b"\r\n\r\n")
                except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, OSError):
                    return
                lines = head.split(b"\r\n")
                parts = lines[0].split(b" ")
                path = parts[1] if len(parts) > 2 else b""
                inm = None
                close = False
                for line in lines[1:]:
                    name, _, value = line.partition(b":")
                    low = name.strip().lower()
                    if low == b"if-none-match":
                        inm = value.strip()
                    elif low == b"connection" and value.strip().lower() == b"close":
                        close = True
                entry = table.get(path)
                if entry is None:
                    writer.write(_NOT_FOUND)
                elif inm is not None and entry[0] in inm:
                    writer.write(entry[2])
                else:
                    writer.write(entry[1])
                await writer.drain()
                if close:
                    return
        except OSError:
            return
        finally:
            writer.close()

    server = await asyncio.start_server(handle, sock=sock, backlog=1024)
    async with server:
        await server.serve_forever()


def _bind(port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind(("127.0.0.1", port))
    sock.listen(1024)
    return sock


def _server_main(conn: Connection, n: int, seed: int, now: float, port: int, shape: str) -> None:
    feeds = render_feeds(n, seed=seed, now=now, shape=shape)
    table = _responses(feeds, now)
    sock = _bind(port)
    conn.send((sock.getsockname()[1], sum(len(f) for f in feeds), os.getpid()))
    conn.close()
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve(sock, table))


class FeedServer:
    """`procs` server processes on one 127.0.0.1 port, each holding all N feeds pre-rendered."""

    def __init__(
        self, n: int, *, seed: int, now: float, procs: int = 1, shape: str = "wordpress"
    ) -> None:
        self.n = n
        self.shape = shape
        self.seed = seed
        self.now = now
        self.procs = procs
        self.port = 0
        self.bytes_total = 0
        self.pids: list[int] = []
        self._procs: list[multiprocessing.process.BaseProcess] = []

    def url(self, i: int) -> str:
        return f"http://127.0.0.1:{self.port}/feed/{i}.xml"

    def __enter__(self) -> FeedServer:
        ctx = multiprocessing.get_context("spawn")
        for _ in range(self.procs):
            parent, child = ctx.Pipe(duplex=False)
            p = ctx.Process(
                target=_server_main,
                args=(child, self.n, self.seed, self.now, self.port, self.shape),
                daemon=True,
            )
            p.start()
            child.close()
            if not parent.poll(300):
                p.kill()
                raise RuntimeError("feed server did not start within 300 s")
            self.port, self.bytes_total, pid = parent.recv()
            self.pids.append(pid)
            self._procs.append(p)
        return self

    def __exit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        for p in self._procs:
            p.terminate()
        for p in self._procs:
            p.join(5)
            if p.is_alive():
                p.kill()


if __name__ == "__main__":  # a manual check: serve 10 feeds until Ctrl-C
    import time

    with FeedServer(int(sys.argv[1]) if len(sys.argv) > 1 else 10, seed=1, now=time.time()) as s:
        print(f"serving {s.n} feeds ({s.bytes_total / 1e6:.1f} MB) at {s.url(0)} ...")
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            pass
