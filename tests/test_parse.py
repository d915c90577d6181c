"""parse_feed over the real feed files in tests/data/feeds/, each paired with its expected result,
plus the rules (charsets, hostile documents, HTML to text, links, dates) as tables."""

from __future__ import annotations

import copy
import html
import io
import pickle
from datetime import UTC, datetime
from pathlib import Path

import feedparser
import pytest

from monitor.errors import ParseError
from monitor.parse import (
    CP1252_TABLE_INSTALLED,
    FEEDPARSER_DEEPCOPY_INSTALLED,
    MAX_CONTENT,
    MAX_SUMMARY,
    MAX_TITLE,
    clamp_published,
    cp1252_table,
    cut_entries,
    decode_body,
    drop_unused,
    html_to_text,
    lift_items,
    neutralize,
    parse_feed,
    safe_link,
    stash_content,
    truncate,
)

FEEDS = Path(__file__).resolve().parent / "data" / "feeds"
SEED_ITEM = Path(__file__).resolve().parent.parent / "seeds" / "seed_item.xml"
URL = "https://news.example/ar/rss"


def read(name: str) -> bytes:
    return (FEEDS / name).read_bytes()


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0, sec: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, sec, tzinfo=UTC)


# (file, content type the server sent, feed title, [(guid, title, published)], reason)
CASES = [
    (
        "rss2_utf8.xml",
        "application/rss+xml; charset=utf-8",
        "أخبار",
        [
            ("FR-internationalNews-238-20180301", "كيف نتعامل مع ارتفاع الضغط الشرياني؟",
             utc(2018, 3, 1, 11, 33, 23)),
            ("BB-sport-55-20180301", "آرسين فينغر: منصبي في الأرسنال هو آخر ما يقلقني",
             utc(2018, 3, 1, 1, 52, 51)),
            ("SK-middleEast-148-20180301", "هجوم بري على الغوطة الشرقية رغم الهدنة الروسية",
             utc(2018, 3, 1, 1, 8, 12)),
        ],
    ),
    (
        "encoding_WINDOWS-1256.xml",
        "application/rss+xml",
        "أخبار",
        [
            ("SK-internationalNews-202-20180301", "كوسوفو تعلن عن إحباط مخطط لاغتيالات سياسية",
             utc(2018, 3, 1, 0, 30, 44)),
            ("BB-economy-49-20180301", "أجهزة الليزر بدلا من البشر في صناعة الجينز",
             utc(2018, 3, 1, 3, 15, 6)),
        ],
    ),
    (
        "windows1256_labelled_utf8.xml",
        "text/xml; charset=utf-8",  # header and declaration both say utf-8: both wrong
        "أخبار",
        [
            ("SK-middleEast-149-20180301", "قتلى من عناصر مليشيا الحوثي في مقبنة غربي تعز",
             utc(2018, 3, 1, 1, 0, 38)),
            ("AL-sport-327-20180301", "باريس: نيمار يخضع إلى عملية جراحية في البرازيل",
             utc(2018, 2, 28, 20, 6, 36)),
        ],
    ),
    (
        "encoding_WINDOWS-1256.xml",
        "text/xml; charset=ISO-8859-1",  # a Western label over Arabic windows-1256 bytes
        "أخبار",
        [
            ("SK-internationalNews-202-20180301", "كوسوفو تعلن عن إحباط مخطط لاغتيالات سياسية",
             utc(2018, 3, 1, 0, 30, 44)),
            ("BB-economy-49-20180301", "أجهزة الليزر بدلا من البشر في صناعة الجينز",
             utc(2018, 3, 1, 3, 15, 6)),
        ],
    ),
    (
        "encoding_ISO-8859-6.xml",
        None,
        "اخبار",
        [
            ("SK-internationalNews-202-20180301", "كوسوفو تعلن عن إحباط مخطط لاغتيالات سياسية",
             utc(2018, 3, 1, 0, 30, 44)),
        ],
    ),
    (
        "encoding_UTF-16.xml",
        "application/xml",
        "أخبار",
        [
            ("BB-sport-55-20180301", "آرسين فينغر: منصبي في الأرسنال هو آخر ما يقلقني",
             utc(2018, 3, 1, 1, 52, 51)),
        ],
    ),
    (
        "utf8_bom.xml",
        "application/rss+xml; charset=windows-1256",  # the BOM wins over the header
        "أخبار",
        [
            ("SK-middleEast-148-20180301", "هجوم بري على الغوطة الشرقية رغم الهدنة الروسية",
             utc(2018, 3, 1, 1, 8, 12)),
        ],
    ),
    (
        "atom_arabic.xml",
        "application/atom+xml",
        "أخبار الشرق الأوسط",
        [
            ("tag:news.example,2018:CN-middleEast-138-20180301",
             "ترامب يدعو أمير قطر لزيارة واشنطن بعد اتصاله بالسعودية والإمارات",
             utc(2018, 3, 1, 5, 54, 6)),
            ("tag:news.example,2018:AL-sport-325-20180301",
             "آل الشيخ يوقع اتفاقية WWE لمدة 10 سنوات",
             utc(2018, 2, 28, 21, 25, 27)),
        ],
    ),
    (
        "rss1_rdf.xml",
        "application/rdf+xml",
        "منوعات",
        [
            ("http://www.bbc.co.uk/arabic/art-and-culture-43229912",
             "أوسكار 2018: ما هي الأفلام المرشحة لجائزة أفضل فيلم أجنبي؟",
             utc(2018, 3, 1, 2, 6, 47)),
            ("https://arabic.cnn.com/middle-east/2018/03/01/johnson-saudi-salman",
             "مذكرا بتشرتشل وزمزم.. جونسون: نجاح العالم الإسلامي يعتمد على بن سلمان",
             utc(2018, 3, 1, 7, 15, 44)),
        ],
    ),
]  # fmt: skip
CASE_IDS = [
    "rss2-utf8-arabic",
    "windows-1256-declared",
    "windows-1256-labelled-utf8-in-header-and-declaration",
    "windows-1256-labelled-latin1-in-header",
    "iso-8859-6-declared",
    "utf16-with-bom",
    "utf8-bom-beats-wrong-header",
    "atom-html-content",
    "rss1-rdf-dc-date",
]


@pytest.mark.parametrize(("name", "ctype", "feed_title", "expected"), CASES, ids=CASE_IDS)
def test_feed_files(
    name: str, ctype: str | None, feed_title: str, expected: list[tuple[str, str, datetime]]
) -> None:
    feed = parse_feed(read(name), url=URL, content_type=ctype)
    assert feed.title == feed_title
    assert [(e.guid, e.title, e.published) for e in feed.entries] == expected
    for e in feed.entries:
        assert e.link
        assert e.link.startswith(("http://", "https://"))
        assert e.summary
        assert "<" not in e.summary
        assert "&amp;" not in e.summary
        assert "\ufffd" not in e.title + e.summary + e.content  # no mojibake, no replacement


def test_seed_item_keeps_the_whole_page_as_lines() -> None:
    feed = parse_feed(SEED_ITEM.read_bytes(), url="https://www.france24.com/ar/rss")
    (e,) = feed.entries
    assert e.title == (
        "وزير الجيوش الفرنسي يجري اتصالا مع نظيره الروسي للمرة الأولى منذ 2022 بعد هجوم موسكو"
    )
    assert e.link is not None
    assert e.link.startswith("https://www.france24.com/ar/20240403-")
    assert e.guid == e.link
    assert e.published == utc(2024, 4, 3, 19, 12, 41)
    lines = e.content.split("\n")
    # every paragraph and list item of the page is its own line, for boilerplate stripping
    assert lines[0] == "إعداد: فرانس24 تابِع إعلان اقرأ المزيد"
    for marker in ("المصدر: فرانس24", "إقرأ أيضاً:", "مقالات مشابهة", "فرانس24/ أ ف ب"):
        assert marker in lines
    assert lines[-1] == "دميترييف: موسكو وواشنطن بدأتا مناقشات بشأن المعادن والمشاريع في روسيا"
    assert any(line.startswith("كلمات دلالية: ") for line in lines)
    assert "شويغو" in e.summary
    assert "<p>" not in e.content


def test_no_guid_no_link_entries_keep_their_text() -> None:
    feed = parse_feed(read("no_guid_no_link.xml"), url=URL)
    assert [(e.guid, e.link) for e in feed.entries] == [(None, None), (None, None)]
    assert feed.entries[0].title == "هجوم بري على الغوطة الشرقية رغم الهدنة الروسية"
    assert feed.entries[0].summary == "بدأت القوات الحكومية السورية هجوما بريا على الغوطة الشرقية."


# --- not a feed ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"", "empty body"),
        (b" \n\t ", "empty body"),
        (read("html_page.html"), "HTML page"),
        (b"<html><body><p>maintenance</p></body></html>", "HTML page"),
        (b'{"items": []}', "not a feed"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "not a feed"),
        (b"/etc/passwd", "not a feed"),
        (
            b"<title</description<item<title</title<link<item<title<svg</title</item</link>",
            "feedparser failed on the document (KeyError: 'links')",
        ),
    ],
    ids=[
        "empty-body",
        "whitespace-body",
        "html-page-file",
        "html-without-doctype",
        "json",
        "binary",
        "a-path-is-not-opened",
        "feedparser-own-crash-is-a-parse-error-found-by-fuzzing",
    ],
)
def test_not_a_feed(body: bytes, reason: str) -> None:
    with pytest.raises(ParseError, match="not a feed") as info:
        parse_feed(body, url=URL)
    assert reason in str(info.value)


# --- hostile documents (HAZARDS 1-3) ---------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "title", "forbidden"),
    [
        ("billion_laughs.xml", "عنوان &lol9;", "lollol"),
        ("big_internal_entity.xml", None, "ضخم ضخم"),
        ("xxe.xml", "ملف &xxe;", "root:"),
    ],
    ids=["billion-laughs-not-expanded", "huge-internal-entity-not-expanded", "xxe-no-file-read"],
)
def test_entity_attacks_are_neutralized(name: str, title: str | None, forbidden: str) -> None:
    feed = parse_feed(read(name), url=URL)
    (e,) = feed.entries
    if title is not None:
        assert e.title == title  # the reference is shown literally, never expanded
    text = e.title + e.summary + e.content
    assert forbidden not in text
    assert len(e.title) <= MAX_TITLE
    assert len(e.summary) <= MAX_SUMMARY


def test_truncated_document_keeps_what_is_recoverable() -> None:
    body = read("rss2_utf8.xml")
    cut = body[: body.index(b"<item>", body.index(b"BB-sport-55")) + 40]
    feed = parse_feed(cut, url=URL)
    assert [e.guid for e in feed.entries][:2] == [
        "FR-internationalNews-238-20180301",
        "BB-sport-55-20180301",
    ]
    assert feed.warning


@pytest.mark.parametrize(
    ("title_xml", "expected"),
    [
        ("a\x00b\x01c\x1fd", "abcd"),
        ("&nbsp;موسكو&hellip;", "موسكو…"),
        ("&undefined; موسكو", "&undefined; موسكو"),
        ("\u202eموسكو\u202c", "موسكو"),
        ("&lt;b&gt;عاجل&lt;/b&gt; موسكو", "عاجل موسكو"),
        ("<![CDATA[<em>عاجل</em>: موسكو]]>", "عاجل: موسكو"),
    ],
    ids=[
        "control-chars-dropped",
        "html-entities-in-xml",
        "unknown-entity-literal",
        "bidi-override-stripped",
        "escaped-html-title-to-text",
        "cdata-html-title-to-text",
    ],
)
def test_title_cleaning(title_xml: str, expected: str) -> None:
    doc = (
        '<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>t</title>'
        f"<item><title>{title_xml}</title><guid>x</guid></item></channel></rss>"
    ).encode()
    assert parse_feed(doc, url=URL).entries[0].title == expected


def _rss(items: str) -> bytes:
    return (
        '<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>t</title>'
        f"{items}</channel></rss>"
    ).encode()


def test_fields_are_capped() -> None:
    long = "كلمة " * 50_000
    doc = _rss(
        f"<item><title>{long}</title><description>{long}</description>"
        f"<content:encoded xmlns:content='http://purl.org/rss/1.0/modules/content/'>{long * 2}"
        "</content:encoded></item>"
    )
    (e,) = parse_feed(doc, url=URL).entries
    assert (len(e.title), len(e.summary)) == (MAX_TITLE - 1, MAX_SUMMARY - 1)  # cut, then rstrip
    assert 0 < len(e.content) <= MAX_CONTENT


def test_item_count_is_capped_with_a_warning() -> None:
    doc = _rss("".join(f"<item><title>خبر {i}</title><guid>{i}</guid></item>" for i in range(30)))
    feed = parse_feed(doc, url=URL, max_items=10)
    assert [e.guid for e in feed.entries] == [str(i) for i in range(10)]
    assert feed.warning == "20 entries beyond the cap of 10 ignored"


def test_long_author_is_cut_before_feedparser() -> None:
    text = "<rss><channel><item><author>" + "a" * 40_000 + "@</author></item></channel></rss>"
    out = neutralize(text)
    assert len(out) < 1000
    assert out.endswith("</author></item></channel></rss>")


@pytest.mark.parametrize(
    ("pub", "expected"),
    [
        ("Thu, 01 Mar 2018 11:33:23 +0300", utc(2018, 3, 1, 8, 33, 23)),
        ("Fri, 01 Jan 2100 00:00:00 GMT", utc(2100, 1, 1)),
        ("not a date", None),
        ("", None),
    ],
    ids=["offset-to-utc", "far-future-kept", "unparseable-none", "empty-none"],
)
def test_published_dates(pub: str, expected: datetime | None) -> None:
    (e,) = parse_feed(
        _rss(f"<item><title>خبر</title><pubDate>{pub}</pubDate></item>"), url=URL
    ).entries
    assert e.published == expected


@pytest.mark.parametrize(
    ("published", "expected"),
    [
        (utc(2100, 1, 1), utc(2024, 4, 3)),
        (None, utc(2024, 4, 3)),
        (utc(2024, 4, 1), utc(2024, 4, 1)),
    ],
    ids=["future-clamped-to-now", "missing-is-now", "past-kept"],
)
def test_clamp_published(published: datetime | None, expected: datetime) -> None:
    assert clamp_published(published, utc(2024, 4, 3)) == expected


# --- pieces ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("html", "text"),
    [
        ("<p>فقرة أولى</p><p>فقرة ثانية</p>", "فقرة أولى\nفقرة ثانية"),
        ("سطر<br/>سطر<br>سطر", "سطر\nسطر\nسطر"),
        ("<script>var a = '<p>';</script><p>نص</p><style>p{}</style>", "نص"),
        ("<!-- تعليق --><span>موس</span><b>كو</b>", "موسكو"),
        ("<a href='x' title='a > b'>رابط</a>", "رابط"),
        ("&quot;الدولة الإسلامية&quot; &amp; &#1605;", '"الدولة الإسلامية" & م'),
        ("  كثير \t\u00a0 من   الفراغ  ", "كثير من الفراغ"),
        ("<ul><li>أ</li>\n\n<li>ب</li></ul>", "أ\nب"),
        ("<td>خلية</td><td>أخرى</td>", "خلية أخرى"),
        ("نص بلا وسوم", "نص بلا وسوم"),
        ("x < y and y > z", "x < y and y > z"),
    ],
    ids=[
        "paragraphs-become-lines",
        "br-becomes-line",
        "script-and-style-dropped",
        "inline-tags-join-words",
        "quoted-gt-in-attribute",
        "entities-unescaped",
        "whitespace-collapsed",
        "blank-lines-dropped",
        "cells-spaced",
        "plain-text-unchanged",
        "lone-angle-brackets-kept",
    ],
)
def test_html_to_text(html: str, text: str) -> None:
    assert html_to_text(html) == text


@pytest.mark.parametrize(
    ("link", "expected"),
    [
        ("https://a.example/x", "https://a.example/x"),
        ("/ar/news/1", "https://news.example/ar/news/1"),
        ("//cdn.example/x", "https://cdn.example/x"),
        ("javascript:alert(1)", None),
        ("JavaScript:alert(1)", None),
        ("data:text/html,<b>x</b>", None),
        ("file:///etc/passwd", None),
        ("mailto:a@b.example", None),
        ("   ", None),
        ("  https://a.example/مسار بمسافة  ", "https://a.example/مسار%20بمسافة"),
        ("h\nttp://press.example/ar/", "http://press.example/ar/"),
        ("https://a.example/x\ty\r\n", "https://a.example/xy"),
        ("java\nscript:alert(1)", None),
        ("\x00\x1f https://a.example/x\x01y\x7f", "https://a.example/x%01y%7F"),
        ("/ar/\x02news", "https://news.example/ar/%02news"),
        ("HTTPS://News.example/AR", "https://News.example/AR"),
        ("hTTp://a.example/?q=1", "http://a.example/?q=1"),
    ],
    ids=[
        "absolute-https",
        "relative-resolved-against-feed",
        "protocol-relative-resolved",
        "javascript-dropped",
        "javascript-any-case-dropped",
        "data-dropped",
        "file-dropped",
        "mailto-dropped",
        "blank-dropped",
        "spaces-encoded-arabic-kept",
        "newline-inside-scheme-removed-as-browsers-do",
        "tab-and-newlines-inside-path-removed",
        "newline-cannot-smuggle-javascript",
        "c0-stripped-at-ends-percent-encoded-inside",
        "control-in-relative-link-percent-encoded",
        "scheme-lowercased-host-and-path-kept",
        "mixed-case-scheme-lowercased-when-resolved",
    ],
)
def test_safe_link(link: str, expected: str | None) -> None:
    assert safe_link(link, URL) == expected


@pytest.mark.parametrize(
    ("body", "ctype", "codec"),
    [
        ("موسكو".encode(), None, "utf-8"),
        ("موسكو".encode("cp1256"), "text/xml; charset=utf-8", "cp1256"),
        ("موسكو".encode("cp1256"), None, "cp1256"),
        ("موسكو".encode("iso-8859-6"), "text/xml; charset=iso-8859-6", "iso8859-6"),
        ("موسكو".encode("utf-16"), None, "utf-16-le"),
        ("موسكو".encode("utf-8-sig"), "text/xml; charset=latin-1", "utf-8"),
        ("<?xml ?>موسكو".encode("utf-16-be"), None, "utf-16-be"),
    ],
    ids=[
        "utf8",
        "cp1256-labelled-utf8",
        "cp1256-unlabelled",
        "iso-8859-6-labelled",
        "utf16-bom",
        "utf8-bom-beats-latin1-label",
        "utf16-be-without-bom",
    ],
)
def test_decode_body(body: bytes, ctype: str | None, codec: str) -> None:
    text, used = decode_body(body, ctype)
    assert "موسكو" in text
    assert used == codec


def test_truncate_keeps_marks_with_their_letter() -> None:
    text = "مُحَمَّد"  # letters with harakat
    assert truncate(text, 3) == "مُ"  # not "مُح" without its fatha
    assert truncate(text, 2) == "مُ"
    assert truncate(text, 100) == text


def test_parse_feed_is_picklable_for_a_process_pool() -> None:
    # our own values, round-tripped as a ProcessPoolExecutor would
    assert pickle.loads(pickle.dumps(parse_feed)) is parse_feed  # noqa: S301
    feed = parse_feed(read("rss2_utf8.xml"), url=URL)
    assert pickle.loads(pickle.dumps(feed)) == feed  # noqa: S301


@pytest.mark.parametrize(
    ("prolog", "title"),
    [
        ('<!DOCTYPE rss [<!ENTITY b "<b>x</b>">]>', "&b;"),
        ('<!DOCTYPE rss [<!ENTITY q "]>">]>', "&q;"),
        (
            '<!DOCTYPE rss PUBLIC "-//Netscape//DTD RSS 0.91//EN" "http://127.0.0.1:9/rss.dtd">',
            "&q;",
        ),
        ('<!DOCTYPE rss [<!ENTITY x "unterminated >]>', "&x;"),
        ('<!ENTITY stray "s">', "&stray;"),
    ],
    ids=[
        "entity-value-with-markup",
        "entity-value-with-subset-end",
        "external-dtd-dropped",
        "malformed-subset-dropped",
        "entity-outside-doctype-dropped",
    ],
)
def test_prolog_declarations_are_removed(prolog: str, title: str) -> None:
    doc = (
        f'<?xml version="1.0" encoding="utf-8"?>{prolog}<rss version="2.0"><channel><title>t'
        f"</title><item><title>{title} خبر</title><guid>1</guid></item></channel></rss>"
    ).encode()
    (e,) = parse_feed(doc, url=URL).entries
    assert e.title == f"{title} خبر"


RSS1 = (
    '<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#" '
    'xmlns="http://purl.org/rss/1.0/"><channel rdf:about="c"><title>t</title></channel>'
)
RSS1_ITEM = (
    '<item rdf:about="http://x.example/{i}"><title>x</title>'
    "<link>http://x.example/{i}</link></item>"
)


@pytest.mark.parametrize(
    ("root", "item", "close"),
    [
        (
            '<rss version="2.0"><channel><title>t</title>',
            "<item><guid>{i}</guid><title>x</title></item>",
            "</channel></rss>",
        ),
        (
            '<feed xmlns="http://www.w3.org/2005/Atom"><title>t</title>',
            "<entry><id>{i}</id><title>x</title></entry>",
            "</feed>",
        ),
        (RSS1, RSS1_ITEM, "</rdf:RDF>"),
    ],
    ids=[
        "rss2-cut-after-the-cap-and-closed",
        "atom-cut-after-the-cap-and-closed",
        "rss1-cut-after-the-cap-and-closed",
    ],
)
def test_hazard_02_entries_past_the_cap_never_reach_feedparser(
    root: str, item: str, close: str
) -> None:
    doc = root + "".join(item.format(i=i) for i in range(50_000)) + close
    cut, found = cut_entries(doc, 7)
    assert found == 50_000
    assert cut.count("<title>x</title>") == 7
    assert cut.endswith(close)
    feed = parse_feed(doc.encode(), url="https://x.example/feed", max_items=7)
    assert len(feed.entries) == 7
    assert feed.warning == "49993 entries beyond the cap of 7 ignored"


def test_cp1252_table_translates_every_code_point_as_feedparsers_dict() -> None:
    """The list installed in feedparser.mixin maps exactly as feedparser's own dict (still held
    by feedparser.html): every code point, the C1 range it remaps, Arabic and astral ones."""
    original = feedparser.html._cp1252
    table = cp1252_table(original)
    assert table is not None
    every = "".join(chr(c) for c in range(0x110000) if not 0xD800 <= c < 0xE000)
    assert every.translate(table) == every.translate(original)
    assert "\x96\x80".translate(table) == "\u2013\u20ac"  # the table does remap


def test_feedparser_translates_with_the_table() -> None:
    """Importing monitor.parse put the list in place, and parsing still maps C1 punctuation."""
    assert CP1252_TABLE_INSTALLED
    assert isinstance(feedparser.mixin._cp1252, list)
    body = (
        "<rss version='2.0'><channel><title>t</title><item><title>أ &#150; ب \x96 ج 😀</title>"
        "<link>http://example.org/a</link></item></channel></rss>"
    ).encode()
    assert parse_feed(body, url="http://example.org/").entries[0].title == "أ – ب – ج 😀"


@pytest.mark.parametrize(
    "mapping",
    [
        pytest.param(None, id="no-table-at-all"),
        pytest.param([("\x80", "€")], id="not-a-dict"),
        pytest.param({0x110000: "x"}, id="key-beyond-the-table"),
        pytest.param({128: "€€"}, id="value-longer-than-one-character"),
        pytest.param({"\x80": "€"}, id="string-key"),
    ],
)
def test_cp1252_table_refuses_an_unexpected_shape(mapping: object) -> None:
    assert cp1252_table(mapping) is None


# --- elements feedparser never needs to see ------------------------------------------------------

_CAT = "<category><![CDATA[أخبار]]></category>"


@pytest.mark.parametrize(
    ("xml", "expected"),
    [
        pytest.param(
            f"<item><title>t</title>{_CAT}</item>",
            "<item><title>t</title></item>",
            id="wordpress-category-in-cdata-dropped",
        ),
        pytest.param(
            "<item><category domain='x'>سياسة</category></item>",
            "<item></item>",
            id="category-with-attributes-dropped",
        ),
        pytest.param(
            "<entry><category term='x' label='y'/></entry>",
            "<entry></entry>",
            id="atom-self-closing-category-dropped",
        ),
        pytest.param(
            "<item><dc:creator><![CDATA[المحرر]]></dc:creator></item>",
            "<item></item>",
            id="dc-creator-unused-dropped",
        ),
        pytest.param(
            "<item><author>a@b.example (أحمد)</author></item>",
            "<item></item>",
            id="rss-author-text-dropped",
        ),
        pytest.param(
            "<item><comments>https://e.example/p#c</comments><wfw:commentRss>"
            "https://e.example/p/feed</wfw:commentRss><slash:comments>3</slash:comments>"
            "</item>",
            "<item></item>",
            id="comment-links-and-counts-dropped",
        ),
        pytest.param(
            "<entry><author><name>أحمد</name></author></entry>",
            "<entry><author><name>أحمد</name></author></entry>",
            id="atom-author-with-children-left-to-feedparser",
        ),
        pytest.param(
            "<item><content:encoded><![CDATA[<category>x</category> <author>y</author>]]>"
            "</content:encoded></item>",
            "<item><content:encoded><![CDATA[<category>x</category> <author>y</author>]]>"
            "</content:encoded></item>",
            id="markup-quoted-inside-cdata-untouched",
        ),
        pytest.param(
            "<item><description>&lt;category&gt;x&lt;/category&gt;</description></item>",
            "<item><description>&lt;category&gt;x&lt;/category&gt;</description></item>",
            id="escaped-markup-untouched",
        ),
        pytest.param(
            "<item><category-list>x</category-list><categoryx>y</categoryx></item>",
            "<item><category-list>x</category-list><categoryx>y</categoryx></item>",
            id="longer-element-names-kept",
        ),
        pytest.param(
            "<item><category><![CDATA[a]b]]></category></item>",
            "<item><category><![CDATA[a]b]]></category></item>",
            id="cdata-with-a-bracket-left-to-feedparser",
        ),
        pytest.param(
            "<item><title>category</title><link>http://e.example/author</link></item>",
            "<item><title>category</title><link>http://e.example/author</link></item>",
            id="the-words-in-text-kept",
        ),
    ],
)
def test_drop_unused(xml: str, expected: str) -> None:
    assert drop_unused(xml) == expected


def test_dropping_unused_elements_changes_no_entry() -> None:
    """An item with every dropped element parses to the same entry as the item without them."""
    unused = (
        f"{_CAT}<category domain='d'>سياسة</category><dc:creator>المحرر</dc:creator>"
        "<author>a@b.example</author><comments>http://e.example/c</comments>"
        "<wfw:commentRss>http://e.example/f</wfw:commentRss><slash:comments>2</slash:comments>"
    )
    ns = (
        "xmlns:dc='http://purl.org/dc/elements/1.1/' xmlns:wfw='http://wellformedweb.org/"
        "CommentAPI/' xmlns:slash='http://purl.org/rss/1.0/modules/slash/'"
    )
    item = (
        "<item><title>عنوان</title><link>http://e.example/1</link>{}"
        "<pubDate>Thu, 01 Mar 2018 10:00:00 GMT</pubDate><description>ملخص</description></item>"
    )
    with_them = f"<rss version='2.0' {ns}><channel><title>t</title>{item.format(unused)}"
    without = f"<rss version='2.0' {ns}><channel><title>t</title>{item.format('')}"
    assert drop_unused(with_them) == without
    a = parse_feed((with_them + "</channel></rss>").encode(), url=URL)
    assert a == parse_feed((without + "</channel></rss>").encode(), url=URL)
    assert a.entries[0].title == "عنوان"
    assert a.entries[0].summary == "ملخص"


# --- content:encoded taken past feedparser ---------------------------------------------------

_NS = "xmlns:content='http://purl.org/rss/1.0/modules/content/'"


def _rss(items: str, ns: str = _NS) -> bytes:
    return f"<rss version='2.0' {ns}><channel><title>t</title>{items}</channel></rss>".encode()


def _item(n: int, content: str, extra: str = "") -> str:
    return f"<item><title>{n}</title><link>http://e.example/{n}</link>{extra}{content}</item>"


def _cdata(text: str) -> str:
    return f"<content:encoded><![CDATA[{text}]]></content:encoded>"


def _escaped(text: str) -> str:
    return f"<content:encoded>{html.escape(text, quote=False)}</content:encoded>"


@pytest.mark.parametrize(
    ("text", "extra"),
    [
        pytest.param(
            "<p>نص الخبر <b>كاملا</b></p>",
            "<description>ملخص</description>",
            id="arabic-article-as-feedparser-gives-it",
        ),
        pytest.param(
            "<p>قال \x96 \x80 100\x85</p>", "", id="c1-punctuation-mapped-like-feedparser"
        ),
        pytest.param(
            "<p>caf\u00c3\u00a9</p>", "", id="utf8-read-as-latin1-repaired-like-feedparser"
        ),
        pytest.param("  \n <p>نص</p> \n ", "", id="whitespace-around-the-text-stripped"),
        pytest.param("<p>نص بلا ملخص</p>", "", id="no-description-content-becomes-the-summary"),
        pytest.param(
            "<p>ملخص بعد المحتوى</p>",
            "</content:encoded><description>د</description><content:encoded>",
            id="description-after-content",
        ),
        pytest.param("<p>monitorstash0 monitorstash</p>", "", id="token-word-already-in-the-text"),
        pytest.param("", "<description>ملخص</description>", id="empty-content"),
    ],
)
def test_content_cdata_past_feedparser_gives_what_feedparser_gives(text: str, extra: str) -> None:
    """The CDATA form is stashed past feedparser; the same text escaped goes through feedparser:
    both must give the same entry."""
    if extra.startswith("</content:encoded>"):  # content first, then a description
        fast = _rss(_item(1, _cdata(text) + "<description>د</description>"))
        slow = _rss(_item(1, _escaped(text) + "<description>د</description>"))
    else:
        fast, slow = _rss(_item(1, _cdata(text), extra)), _rss(_item(1, _escaped(text), extra))
    assert stash_content(fast.decode())[1], "the fast path was taken"
    assert not stash_content(slow.decode())[1]
    assert parse_feed(fast, url=URL) == parse_feed(slow, url=URL)


def test_two_contents_longest_wins_through_the_stash() -> None:
    two = _cdata("<p>قصير</p>") + _cdata("<p>النص الأطول من الاثنين</p>")
    assert parse_feed(_rss(_item(1, two)), url=URL).entries[0].content == "النص الأطول من الاثنين"


@pytest.mark.parametrize(
    "doc",
    [
        pytest.param(_rss(_item(1, _cdata("<p>x</p>")), ns=""), id="no-content-namespace"),
        pytest.param(
            _rss(
                _item(1, "<c:encoded><![CDATA[<p>x</p>]]></c:encoded>"),
                ns="xmlns:c='http://purl.org/rss/1.0/modules/content/'",
            ),
            id="another-prefix-left-to-feedparser",
        ),
        pytest.param(
            _rss(_item(1, "<content:encoded><![CDATA[a]]]]><![CDATA[>b]]></content:encoded>")),
            id="split-cdata-left-to-feedparser",
        ),
        pytest.param(
            _rss(_item(1, "<content:encoded xml:lang='ar'><![CDATA[x]]></content:encoded>")),
            id="attributes-left-to-feedparser",
        ),
        pytest.param(_rss(_item(1, _escaped("<p>x</p>"))), id="escaped-markup-left-to-feedparser"),
    ],
)
def test_content_not_in_the_plain_form_stays_with_feedparser(doc: bytes) -> None:
    text = doc.decode()
    assert stash_content(text) == (text, {})


def test_split_cdata_content_parses_as_its_escaped_form() -> None:
    split = "<content:encoded><![CDATA[<p>a]]]]><![CDATA[>b</p>]]></content:encoded>"
    same = _escaped("<p>a]]>b</p>")
    assert parse_feed(_rss(_item(1, split)), url=URL) == parse_feed(_rss(_item(1, same)), url=URL)


@pytest.mark.parametrize(
    ("fast", "slow"),
    [
        pytest.param(
            "<description><![CDATA[<img src='x.jpg'/><p>ملخص \x96 [&#8230;]</p>]]></description>",
            "<description>&lt;img src='x.jpg'/&gt;&lt;p&gt;ملخص \x96 [&amp;#8230;]&lt;/p&gt;"
            "</description>",
            id="wordpress-description-as-feedparser-gives-it",
        ),
        pytest.param(
            "<description><![CDATA[<p>ملخص</p>]]></description>" + _cdata("<p>نص</p>"),
            "<description>&lt;p&gt;ملخص&lt;/p&gt;</description>" + _escaped("<p>نص</p>"),
            id="description-and-content-both-stashed",
        ),
        pytest.param(
            _cdata("<p>نص</p>") + "<description><![CDATA[<p>ملخص</p>]]></description>",
            _escaped("<p>نص</p>") + "<description>&lt;p&gt;ملخص&lt;/p&gt;</description>",
            id="content-before-description",
        ),
    ],
)
def test_description_cdata_past_feedparser_gives_what_feedparser_gives(
    fast: str, slow: str
) -> None:
    channel = "<description><![CDATA[قناة]]></description>"  # the channel's own, stashed too
    a = _rss(channel + _item(1, fast))
    assert stash_content(a.decode())[1]
    assert parse_feed(a, url=URL) == parse_feed(_rss(channel + _item(1, slow)), url=URL)


def test_feedparser_dict_deepcopy_is_a_deep_copy() -> None:
    """FeedParserDict's __deepcopy__ (installed by monitor.parse) copies as the default does:
    equal, of the same class, nested values copied and shared ones still shared."""
    assert FEEDPARSER_DEEPCOPY_INSTALLED
    fpd = feedparser.util.FeedParserDict
    flat = fpd(type="text/html", language=None, base="", value="نص", n=3)
    flat_copy = copy.deepcopy(flat)
    assert type(flat_copy) is fpd
    assert flat_copy == flat
    assert flat_copy is not flat
    shared = ["a"]
    nested = fpd(links=[fpd(href="http://e.example/")], one=shared, two=shared, title="t")
    nested_copy = copy.deepcopy(nested)
    assert nested_copy == nested
    assert type(nested_copy["links"][0]) is fpd
    nested_copy["links"][0]["href"] = "changed"
    nested_copy["one"].append("b")
    assert nested["links"][0]["href"] == "http://e.example/"
    assert shared == ["a"]
    assert nested_copy["two"] == ["a", "b"]  # one copy of the list both keys held


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("<p>نص \x96 مع \x80</p>", id="c1-punctuation"),
        pytest.param("<p>caf\u00c3\u00a9</p>", id="utf8-read-as-latin1"),
        pytest.param("<pre>a\r\nb\rc</pre>", id="line-ends-as-xml-normalizes-them"),
        pytest.param("  \n<p>x</p>\t ", id="surrounding-whitespace"),
        pytest.param("<p>\u00e9t\u00e9</p>", id="latin1-that-is-not-utf8"),
    ],
)
def test_stashed_text_is_feedparsers_own_value(text: str) -> None:
    """_as_feedparser_gives against feedparser itself: the value it gives the same text escaped."""
    doc = _rss(_item(1, _escaped(text)))
    d = feedparser.parse(
        io.BytesIO(b'<?xml version="1.0" encoding="utf-8"?>\n' + doc),
        response_headers={"content-type": "application/xml; charset=utf-8"},
        sanitize_html=False,
        resolve_relative_uris=False,
    )
    (stashed,) = stash_content(_rss(_item(1, _cdata(text))).decode())[1].values()
    assert stashed == d.entries[0].content[0]["value"]


# --- items lifted out of feedparser's content bookkeeping -----------------------------------------

_D = "<p>ملخص الخبر</p>"
_C = "<p>نص الخبر كاملا</p>"


def _desc(text: str, cdata: bool) -> str:
    if cdata:
        return f"<description><![CDATA[{text}]]></description>"
    return f"<description>{html.escape(text, quote=False)}</description>"


def _item_parts(parts: str, cdata: bool) -> bytes:
    """An item from a template: {D} a description, {C} a content:encoded, CDATA or escaped."""
    desc = _desc(_D, cdata)
    content = _cdata(_C) if cdata else _escaped(_C)
    return _rss(parts.format(D=desc, C=content))


@pytest.mark.parametrize(
    ("parts", "lifted"),
    [
        pytest.param(
            "<item><title>ع</title><link>http://e.example/1</link>{D}{C}</item>",
            1,
            id="wordpress-item-lifted",
        ),
        pytest.param("<item><title>ع</title>{C}</item>", 1, id="content-only-lifted"),
        pytest.param("<item><title>ع</title>{D}</item>", 1, id="description-only-lifted"),
        pytest.param("<item><title>  ع  </title>{D}{C}</item>", 1, id="title-spaces-lifted"),
        pytest.param(
            "<item><title><![CDATA[ع &]]></title>{D}{C}</item>", 1, id="cdata-title-lifted"
        ),
        pytest.param(
            "<item><title>ع</title>{C}{D}</item>",
            0,
            id="content-before-description-left-to-feedparser",
        ),
        pytest.param(
            "<item rdf:about='x'><title>ع</title>{D}{C}</item>", 0, id="item-with-attributes-left"
        ),
        pytest.param(
            "<item><title>ع</title>{D}{C}<itunes:summary xmlns:itunes='http://www.itunes.com/dtds/podcast-1.0.dtd'>s"
            "</itunes:summary></item>",
            0,
            id="another-summary-element-left",
        ),
        pytest.param(
            "<item><title>ع</title>{D}{C}<dc:description xmlns:dc='http://purl.org/dc/elements/1.1/'>d"
            "</dc:description></item>",
            0,
            id="another-description-element-left",
        ),
        pytest.param("<item>{D}{C}</item>", 0, id="no-title-left"),
        pytest.param(
            "<item><title>ع</title><title>غ</title>{D}{C}</item>", 0, id="two-titles-left"
        ),
        pytest.param(
            "<item><title>ع</title><link>http://e.example/content/1</link>{D}{C}</item>",
            0,
            id="the-word-content-elsewhere-left",
        ),
    ],
)
def test_lifted_items_parse_as_feedparser_parses_them(parts: str, lifted: int) -> None:
    fast, slow = _item_parts(parts, cdata=True), _item_parts(parts, cdata=False)
    text, stash = stash_content(fast.decode())
    assert len(lift_items(text, stash)[1]) == lifted
    assert parse_feed(fast, url=URL) == parse_feed(slow, url=URL)


def test_a_lifted_item_that_does_not_come_back_is_parsed_unlifted() -> None:
    """The item's one title is its source's: feedparser files it under `source`, the lift token
    with it, so parse_feed parses the document again without lifting; nothing is lost."""
    parts = "<item><source url='http://s.example/'><title>مصدر</title></source>{D}{C}</item>"
    fast, slow = _item_parts(parts, cdata=True), _item_parts(parts, cdata=False)
    text, stash = stash_content(fast.decode())
    assert len(lift_items(text, stash)[1]) == 1  # lifting was tried
    entry = parse_feed(fast, url=URL).entries[0]
    assert (entry.summary, entry.content) == ("ملخص الخبر", "نص الخبر كاملا")
    assert parse_feed(fast, url=URL) == parse_feed(slow, url=URL)
