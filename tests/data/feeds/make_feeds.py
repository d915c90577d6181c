"""Regenerate the feed fixtures in this directory (run once by hand; tests never run it).

    .venv/bin/python tests/data/feeds/make_feeds.py /work/shared/data/ant/ant-2018-03-01_21.jsonl.gz

Items come from the ANT corpus (see README.md for the citation); the seed item from
seeds/000_0023912365e1bf7c.txt. The encoded variants are made with Python's own codecs so the
bytes are exactly what a windows-1256, ISO-8859-6 or UTF-16 server would send.
"""

from __future__ import annotations

import gzip
import json
import sys
from pathlib import Path
from xml.sax.saxutils import escape

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[2]

# docnos used, per file (kept stable so the expected results in the tests stay true)
PICKS = {
    "rss2_utf8.xml": [
        "FR-internationalNews-238-20180301",
        "BB-sport-55-20180301",
        "SK-middleEast-148-20180301",
    ],
    "encoding_WINDOWS-1256.xml": ["SK-internationalNews-202-20180301", "BB-economy-49-20180301"],
    "windows1256_labelled_utf8.xml": ["SK-middleEast-149-20180301", "AL-sport-327-20180301"],
    "atom_arabic.xml": ["CN-middleEast-138-20180301", "AL-sport-325-20180301"],
    "rss1_rdf.xml": ["BB-culture-56-20180301", "CN-middleEast-137-20180301"],
    "encoding_ISO-8859-6.xml": ["SK-internationalNews-202-20180301"],
    "encoding_UTF-16.xml": ["BB-sport-55-20180301"],
    "utf8_bom.xml": ["SK-middleEast-148-20180301"],
}


def rfc822(iso: str) -> str:
    from datetime import datetime
    from email.utils import format_datetime

    return format_datetime(datetime.fromisoformat(iso))


def paragraphs(text: str, n: int = 3) -> str:
    return "".join(f"<p>{escape(p)}</p>" for p in text.split("\n")[:n] if p.strip())


def rss2(items: list[dict[str, str]], encoding: str, channel: str = "أخبار") -> str:
    out = [
        f'<?xml version="1.0" encoding="{encoding}"?>',
        '<rss version="2.0" xmlns:content="http://purl.org/rss/1.0/modules/content/">',
        "<channel>",
        f"<title>{escape(channel)}</title>",
        "<link>https://news.example/ar/</link>",
        "<description>موجز الأخبار</description>",
        "<language>ar</language>",
    ]
    for it in items:
        out += [
            "<item>",
            f"<title>{escape(it['title'])}</title>",
            f"<link>{escape(it['url'])}</link>",
            f'<guid isPermaLink="false">{it["docno"]}</guid>',
            f"<pubDate>{rfc822(it['published'])}</pubDate>",
            f"<description>{escape(it['summary'])}</description>",
            f"<content:encoded><![CDATA[{paragraphs(it['text'])}]]></content:encoded>",
            "</item>",
        ]
    out += ["</channel>", "</rss>", ""]
    return "\n".join(out)


def atom(items: list[dict[str, str]]) -> str:
    out = [
        '<?xml version="1.0" encoding="utf-8"?>',
        '<feed xmlns="http://www.w3.org/2005/Atom" xml:lang="ar">',
        "<title>أخبار الشرق الأوسط</title>",
        '<link rel="alternate" href="https://news.example/ar/"/>',
        "<id>urn:uuid:1b0d7c3e-5a55-4f0e-9c1e-5f0b8a2d9e01</id>",
        "<updated>2018-03-01T12:00:00Z</updated>",
    ]
    for it in items:
        out += [
            "<entry>",
            f"<title>{escape(it['title'])}</title>",
            f'<link rel="alternate" href="{escape(it["url"])}"/>',
            f"<id>tag:news.example,2018:{it['docno']}</id>",
            f"<updated>{it['published']}</updated>",
            f"<summary>{escape(it['summary'])}</summary>",
            f'<content type="html">{escape(paragraphs(it["text"]))}</content>',
            "</entry>",
        ]
    out += ["</feed>", ""]
    return "\n".join(out)


def rss1(items: list[dict[str, str]]) -> str:
    out = [
        '<?xml version="1.0" encoding="utf-8"?>',
        '<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#"'
        ' xmlns="http://purl.org/rss/1.0/" xmlns:dc="http://purl.org/dc/elements/1.1/">',
        '<channel rdf:about="https://news.example/ar/rss1">',
        "<title>منوعات</title>",
        "<link>https://news.example/ar/</link>",
        "<description>منوعات</description>",
        "<items><rdf:Seq>",
        *(f'<rdf:li rdf:resource="{escape(it["url"])}"/>' for it in items),
        "</rdf:Seq></items>",
        "</channel>",
    ]
    for it in items:
        out += [
            f'<item rdf:about="{escape(it["url"])}">',
            f"<title>{escape(it['title'])}</title>",
            f"<link>{escape(it['url'])}</link>",
            f"<description>{escape(it['summary'])}</description>",
            f"<dc:date>{it['published']}</dc:date>",
            "</item>",
        ]
    out += ["</rdf:RDF>", ""]
    return "\n".join(out)


SEED_TITLE = "وزير الجيوش الفرنسي يجري اتصالا مع نظيره الروسي للمرة الأولى منذ 2022 بعد هجوم موسكو"
SEED_LINK = (
    "https://www.france24.com/ar/20240403-وزير-الجيوش-الفرنسي-يجري-اتصالا-مع-نظيره-الروسي"
    "-للمرة-الأولى-منذ-2022-بعد-هجوم-موسكو"
)


def seed_item() -> str:
    text = (ROOT / "seeds" / "000_0023912365e1bf7c.txt").read_text("utf-8")
    html: list[str] = []
    for line in (p.strip() for p in text.split("\n")):
        if line.startswith("•"):  # the related-headlines list, as the page marks it up
            if not html or html[-1] != "</ul>":
                html.append("<ul>")
            else:
                html.pop()
            html += [f'<li><a href="/ar/related">{escape(line[1:].strip())}</a></li>', "</ul>"]
        elif line:
            html.append(f"<p>{escape(line)}</p>")
    body = "\n".join(html)
    return "\n".join(
        [
            '<?xml version="1.0" encoding="UTF-8"?>',
            '<rss version="2.0" xmlns:content="http://purl.org/rss/1.0/modules/content/">',
            "<channel>",
            "<title>فرانس24 - آخر الأخبار</title>",
            "<link>https://www.france24.com/ar/</link>",
            "<description>فرانس24</description>",
            "<item>",
            f"<title>{escape(SEED_TITLE)}</title>",
            f"<link>{escape(SEED_LINK)}</link>",
            f'<guid isPermaLink="true">{escape(SEED_LINK)}</guid>',
            "<pubDate>Wed, 03 Apr 2024 19:12:41 GMT</pubDate>",
            "<description>أجرى وزير الجيوش الفرنسي سيباستيان لوكورنو اتصالا هاتفيا الأربعاء"
            " مع نظيره الروسي سيرغي شويغو للمرة الأولى منذ تشرين الأول/أكتوبر 2022.</description>",
            f"<content:encoded><![CDATA[{body}]]></content:encoded>",
            "</item>",
            "</channel>",
            "</rss>",
            "",
        ]
    )


def main(corpus: str) -> None:
    docs: dict[str, dict[str, str]] = {}
    with gzip.open(corpus, "rt", encoding="utf-8") as f:
        for line in f:
            d = json.loads(line)
            docs[d["docno"]] = d

    def pick(name: str) -> list[dict[str, str]]:
        return [docs[n] for n in PICKS[name]]

    (HERE / "rss2_utf8.xml").write_bytes(rss2(pick("rss2_utf8.xml"), "utf-8").encode("utf-8"))
    (HERE / "encoding_WINDOWS-1256.xml").write_bytes(
        rss2(pick("encoding_WINDOWS-1256.xml"), "windows-1256").encode("cp1256")
    )
    (HERE / "windows1256_labelled_utf8.xml").write_bytes(
        rss2(pick("windows1256_labelled_utf8.xml"), "utf-8").encode("cp1256")
    )
    iso = pick("encoding_ISO-8859-6.xml")
    iso = [{**it, "text": it["text"].split("\n")[0]} for it in iso]
    (HERE / "encoding_ISO-8859-6.xml").write_bytes(
        rss2(iso, "iso-8859-6", channel="اخبار").encode("iso-8859-6")
    )
    (HERE / "encoding_UTF-16.xml").write_bytes(
        rss2(pick("encoding_UTF-16.xml"), "utf-16").encode("utf-16")  # with its BOM
    )
    (HERE / "utf8_bom.xml").write_bytes(rss2(pick("utf8_bom.xml"), "utf-8").encode("utf-8-sig"))
    (HERE / "atom_arabic.xml").write_bytes(atom(pick("atom_arabic.xml")).encode("utf-8"))
    (HERE / "rss1_rdf.xml").write_bytes(rss1(pick("rss1_rdf.xml")).encode("utf-8"))
    (HERE.parent.parent.parent / "seeds" / "seed_item.xml").write_bytes(seed_item().encode("utf-8"))


if __name__ == "__main__":
    main(sys.argv[1])
