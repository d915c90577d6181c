"""analyze()'s shared path gives what the public functions give, and the fast paths of the parse
workers (monitor/_fastprint.c, and the regex and bytes shortcuts in parse.py) give what their
reference implementations give.

analyze() strips and normalizes each field once and shares the result between matching, the
story fingerprint and the alert summary; `fingerprint`, `Matcher.match` and `strip_boilerplate`
(what `monitor match`, `monitor story` and replay call) each do it on their own. Both must agree
on every item: here on the seed article, the real items of tests/data (the 352 dedup pairs, the
match evaluation sentences, the feed fixtures) and watchlists in every view."""

from __future__ import annotations

import json
import random
import re
from dataclasses import replace
from pathlib import Path

import pytest

from monitor import dedup, identity, parse, text
from monitor.analyze import Analyzed, analyze
from monitor.dedup import fingerprint
from monitor.errors import ParseError
from monitor.identity import make_item
from monitor.match import Matcher, compile_watchlists
from monitor.models import FeedSpec, TermSpec, WatchlistSpec
from monitor.parse import html_to_text, neutralize, parse_feed
from monitor.text import strip_boilerplate
from tests.feedgen import FakeItem, rss

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "tests" / "data"
NOW = 1_711_540_000.0
HOUR = 3600.0
MARKERS = ("حقوق النشر", "المصدر", "Copyright")
SPECS = [
    FeedSpec("https://news.example/ar/rss", "news", 300.0, 20.0),
    FeedSpec("https://other.example/feed", "other", 300.0, 20.0, boilerplate=MARKERS),
]
needs_c = pytest.mark.skipif(
    text._fastprint is None,
    reason="monitor._fastprint is not built (no compiler at install): only the Python path runs",
)


def _eval_rows() -> list[list[str]]:
    lines = (DATA / "match_eval.tsv").read_text(encoding="utf-8").splitlines()
    return [line.split("\t") for line in lines if line.strip() and not line.startswith("#")]


def _unescape(s: str) -> str:
    return re.sub(r"\\u([0-9a-fA-F]{4})", lambda m: chr(int(m.group(1), 16)), s)


def _matchers() -> list[Matcher]:
    """Every term of the match evaluation (folded, strict, exact, prefix, clitics), a regex,
    watchlists limited to some fields and some feeds; and one of a single folded view."""
    specs = []
    for i, (_, term, flags, _, _) in enumerate(_eval_rows()):
        opts = {f: True for f in flags.split(",") if f != "-"}
        specs.append(WatchlistSpec(f"w{i}", any=(TermSpec(term, **opts),), notify=("d",)))
    specs += [
        WatchlistSpec("rx", any=(TermSpec(r"موسك\S*", regex=True),), notify=("d",)),
        WatchlistSpec("t", any=(TermSpec("روسيا"),), fields=("title",), notify=("d",)),
        WatchlistSpec(
            "s",
            all=(TermSpec("وزير"), TermSpec("الخارجية")),
            none=(TermSpec("كرة القدم"),),
            fields=("summary", "content"),
            feeds=("other",),
            notify=("d",),
        ),
    ]
    folded = [
        WatchlistSpec("moscow", any=(TermSpec("موسكو"), TermSpec("بوتين")), notify=("d",)),
        WatchlistSpec("syria", any=(TermSpec("دمشق"), TermSpec("حلب")), notify=("d",)),
    ]
    return [compile_watchlists(specs), compile_watchlists(folded)]


def _documents() -> list[bytes]:
    """RSS documents of the real texts, with credit lines, read-also links and teasers around
    them, dated from now to 200 hours ago; and the feed fixtures."""
    items = []
    for n, line in enumerate((DATA / "dedup_pairs.jsonl").read_text(encoding="utf-8").splitlines()):
        pair = json.loads(line)
        for side in "ab":
            it = pair[side]
            body = f"{it['body']}\nالمصدر: وكالات\nاقرأ أيضا: خبر آخر\n• عنوان\n• عنوان آخر"
            link = it["url"] if n % 3 else None
            items.append(FakeItem(f"p{n}{side}", it["title"], body, link, NOW - (n % 200) * HOUR))
    for n, row in enumerate(_eval_rows()):
        sentence = _unescape(row[4])
        items.append(FakeItem(f"e{n}", sentence, sentence * 3, None, NOW - (n % 9) * HOUR))
    seed = (ROOT / "seeds" / "000_0023912365e1bf7c.txt").read_text(encoding="utf-8")
    items.append(FakeItem("seed", "موسكو", seed, "https://seed.example/1", NOW))
    docs = [rss(items[i : i + 50]) for i in range(0, len(items), 50)]
    docs += [p.read_bytes() for p in sorted((DATA / "feeds").glob("*.xml"))]
    docs.append((ROOT / "seeds" / "seed_item.xml").read_bytes())
    return docs


DOCUMENTS = _documents()
MATCHERS = _matchers()


def _analyze_all(matcher: Matcher | None) -> list[tuple[FeedSpec, bytes, list[Analyzed]]]:
    out = []
    for doc in DOCUMENTS:
        for spec in SPECS:
            try:
                result = analyze(
                    doc,
                    spec=spec,
                    content_type=None,
                    max_items=500,
                    now=NOW,
                    matcher=matcher,
                    max_age=100 * HOUR,
                    window=150 * HOUR,
                )
            except ParseError:
                continue
            out.append((spec, doc, result))
    return out


@pytest.mark.parametrize("which", range(len(MATCHERS)))
def test_analyze_gives_what_the_public_functions_give(which: int) -> None:
    matcher = MATCHERS[which]
    checked = fingerprinted = matched = 0
    for spec, doc, result in _analyze_all(matcher):
        entries = parse_feed(doc, url=spec.url, max_items=500).entries
        assert len(entries) == len(result)
        for entry, a in zip(entries, result, strict=True):
            item = make_item(entry, spec)
            summary = strip_boilerplate(item.summary, spec.boilerplate).text if item.summary else ""
            assert a.item == replace(item, summary=summary, content="")
            if a.at >= NOW - 150 * HOUR:
                fp = fingerprint(
                    item.title,
                    item.content or item.summary,
                    outlet=item.feed,
                    at=a.at,
                    extra_markers=spec.boilerplate,
                )
                assert a.fingerprint is not None
                assert a.fingerprint == fp
                assert a.fingerprint.to_bytes() == fp.to_bytes()
                fingerprinted += 1
            else:
                assert a.fingerprint is None
            if a.at >= NOW - 100 * HOUR:
                expected = matcher.match(
                    item.title,
                    item.summary,
                    item.content,
                    feed=spec.name,
                    boilerplate=spec.boilerplate,
                )
                assert a.matches == expected, item.title
                matched += bool(expected)
            else:
                assert a.matches == ()
            checked += 1
    assert checked > 1000
    assert fingerprinted > 500
    assert matched > 100


def test_analyze_without_a_matcher_still_fingerprints() -> None:
    for _, _, result in _analyze_all(None)[:4]:
        assert all(a.matches == () for a in result)
        assert any(a.fingerprint is not None for a in result)


@needs_c
def test_analyze_is_the_same_on_the_pure_python_path(monkeypatch: pytest.MonkeyPatch) -> None:
    fast = _analyze_all(MATCHERS[0])
    for module in (text, parse, dedup):  # the reference implementations, as without a compiler
        monkeypatch.setattr(module, "_fastprint", None)
    slow = _analyze_all(MATCHERS[0])
    assert len(fast) == len(slow)
    for (_, _, a), (_, _, b) in zip(fast, slow, strict=True):
        assert a == b


# --- html_to_text ---------------------------------------------------------------------------

# The markup regex as it was written first (no possessive quantifiers, no "]]>"-free variant)
# and the layout pass in Python: the reference of what html_to_text does now.
_PLAIN_HTML_RE = re.compile(
    r"<(script|style|noscript|template)\b[^>]*>.*?</\1\s*>"
    r"|<!--.*?-->"
    r"|<!\[CDATA\[|\]\]>"
    r"|<(/?)([A-Za-z][A-Za-z0-9:-]*)(?:[^>\"']|\"[^\"]*\"|'[^']*')*>"
    r"|<![^>]*>",
    re.I | re.S,
)


def _plain_tag(m: re.Match[str]) -> str:
    name = m.group(3)
    return parse._TAG_TEXT.get(name.lower(), "") if name else ""


def _reference_html_to_text(value: str) -> str:
    if "<" in value:
        value = _PLAIN_HTML_RE.sub(_plain_tag, value)
    if "&" in value:
        value = parse.html.unescape(value)
    return parse._lines_py(value)


PIECES = [
    *("<p>", "</P>", "<br/>", "<div class='a>b'>", '<img src="x>y">', "<td>", "<a href=x>", "</a>"),
    *("<script>x<p>y</script>", "<SCRIPT>a</script >", "<style>", "</style>", "<noscript>"),
    *("<!-- <p> -->", "<!--", "-->", "<![CDATA[", "]]>", "<!DOCTYPE x>", "<!", "<", ">", "/"),
    *('"', "'", "=", "x:y", "-", "p", "br", "&amp;", "&#x202a;", "&nbsp;", "&", "a", "ب"),
    *(" ", "\n", "\r\n", "\t", "\x0b", "\x0c", "\x1c", "\x1f", "\x85", "\u2028", "\u2029"),
    *("\xa0", "\u3000", "\u2000", "\u180e", "\u200b", "\u202a", "\u202e", "\u2066", "\u2069"),
]


def test_html_to_text_is_the_reference_on_generated_markup() -> None:
    rng = random.Random(11)  # noqa: S311 - replayable test data, not a secret
    for _ in range(50_000):
        value = "".join(rng.choice(PIECES) for _ in range(rng.randint(0, 30)))
        assert html_to_text(value) == _reference_html_to_text(value), value


def test_html_to_text_is_the_reference_on_real_feeds() -> None:
    values = 0
    for doc in DOCUMENTS:
        for m in re.finditer(r"<!\[CDATA\[(.*?)\]\]>", parse.decode_body(doc)[0], re.S):
            assert html_to_text(m.group(1)) == _reference_html_to_text(m.group(1))
            values += 1
    assert values > 500


@needs_c
def test_c_layout_is_the_python_layout_for_every_code_point() -> None:
    everything = "".join(chr(cp) for cp in range(0x110000) if not 0xD800 <= cp < 0xE000)
    for sep in ("", " ", "\n", "a", "\u202a"):
        for start in range(0, len(everything), 50_000):
            chunk = sep.join(everything[i : i + 3] for i in range(start, start + 50_000, 3))
            assert parse._fastprint.lines(chunk, parse._BIDI_CHARS) == parse._lines_py(chunk)


def test_has_c1_on_every_code_point() -> None:
    """Both paths of parse._has_c1 (C and UTF-8 bytes) against the definition: each code point
    alone, then inside ASCII, Latin-1 and Arabic and astral text."""
    paths = [parse._has_c1_py]
    if parse._fastprint is not None:
        paths.append(parse._fastprint.has_c1)
    for cp in range(0x110000):
        if 0xD800 <= cp < 0xE000:
            continue
        expected = 0x80 <= cp <= 0x9F
        one = chr(cp)
        for has_c1 in paths:
            assert has_c1(one) == expected, hex(cp)
            if cp % 61 == 0 or 0x60 <= cp <= 0x1FF:
                for ctx in (f"ab{one}", f"\xa0\xc2{one}", f"سلام{one}😀"):
                    assert has_c1(ctx) == expected, hex(cp)


@pytest.mark.parametrize("cp", range(0x70, 0xB0))
def test_has_c1_around_the_c1_block(cp: int) -> None:
    expected = 0x80 <= cp <= 0x9F
    assert parse._has_c1_py(f"نص {chr(cp)} نص") == expected
    assert parse._has_c1(f"نص {chr(cp)} نص") == expected


# --- neutralize -----------------------------------------------------------------------------


def _categories_removed(doc: str) -> bool:
    return "<category" not in neutralize(doc).lower()


@pytest.mark.parametrize("count", [199, 200, 201])
@pytest.mark.parametrize(
    "form",
    [
        "<category>وسم</category>",
        "<CATEGORY>وسم</CATEGORY>",
        "<category>Subject</category>",
        "<category>x</category><dc:SUBJECT>y</dc:SUBJECT>",
    ],
)
def test_categories_are_counted_in_any_case_as_str_lower_counts_them(count: int, form: str) -> None:
    # the threshold is 2 * MAX_CATEGORIES occurrences of "category" and "subject" in the text
    # after control characters are gone, counted in lowercase (str.lower()): the reference
    def occurrences(s: str) -> int:
        return s.lower().count("category") + s.lower().count("subject")

    # a control character inside a word ("cate\x01gory" counts once it is gone); ſ, İ and the
    # Kelvin sign, which lowercase or casefold to ASCII letters or not
    doc = (
        "<rss><channel><title>t</title>"
        + form * (count // occurrences(form))
        + "<item><title>cate\x01gory ſubject İ \u212a</title></item></channel></rss>"
    )
    expected = occurrences(parse._CONTROL_RE.sub("", doc)) > 2 * parse.MAX_CATEGORIES
    assert _categories_removed(doc) == expected


def test_every_control_character_is_removed_and_nothing_else() -> None:
    controls = [chr(c) for c in (*range(0x00, 0x09), 0x0B, 0x0C, *range(0x0E, 0x20))]
    for ch in [*controls, "\ufffe", "\uffff"]:
        doc = f"<rss><channel><title>a{ch}بـ{ch}b</title></channel></rss>"
        assert neutralize(doc) == "<rss><channel><title>aبـb</title></channel></rss>", hex(ord(ch))
    kept = "<rss><channel><title>\t\n\r\ud7ff\ue000\ufffd\U0001f600</title></channel></rss>"
    assert neutralize(kept) == kept


# --- identity -------------------------------------------------------------------------------


def test_plain_urls_are_canonical_as_the_full_procedure_says() -> None:
    # canonical_url answers URLs already in canonical shape without urlsplit/quote; the full
    # procedure (_canonical_url) is the reference, on plain-shaped URLs with AMP marks, trailing
    # slashes and every path character the shortcut accepts, and on URLs that are not plain.
    rng = random.Random(3)  # noqa: S311 - replayable test data, not a secret
    hosts = ["www", "amp", "a", "0", "-", "bbc", "co", "uk", "ampx", "xamp", "WWW", "ب"]
    paths = ["/", "//", "amp", "AMP", ".amp", ".AmP", "a", "Z", "9", "x.amp", "amp/", "%41", "?"]
    paths += [*"!$&'()*+,;=:@._~-", "#f", "ا", " ", "\t", "?utm_source=x", ":80"]
    shortcut = 0
    for _ in range(100_000):
        host = ".".join(rng.choice(hosts) for _ in range(rng.randint(1, 4)))
        path = "".join(rng.choice(paths) for _ in range(rng.randint(0, 8)))
        url = rng.choice(["http://", "https://", "HTTP://", "ftp://"]) + host + path
        assert identity.canonical_url(url) == identity._canonical_url(url), url
        shortcut += identity._PLAIN_URL_RE.fullmatch(url) is not None
    assert shortcut > 3000


def _reference_doc_facts(doc: str) -> tuple[bool, int]:
    lowered = doc.lower()
    return parse._CONTROL_RE.search(doc) is not None, (
        lowered.count("category") + lowered.count("subject")
    )


def test_document_facts_are_the_regex_and_str_lower_counts(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # neutralize's control check and category count (C pass, or UTF-8 bytes without the
    # accelerator) against the plain regex and str.lower() count, around every code point
    everything = "".join(chr(cp) for cp in range(0x110000) if not 0xD800 <= cp < 0xE000)
    docs = [
        sep.join(everything[i : i + 3] for i in range(start, start + 30_000, 3))
        for sep in ("", "category", "SubJect", "cat", "\x01")
        for start in range(0, len(everything), 30_000)
    ]
    pieces = ["category", "CATEGORY", "cat", "egory", "subject", "SUB", "ject", "c", "S", "ſ"]
    pieces += ["İ", "\u212a", "\x00", "\x01", "\t", "\n", "\r", "\x1f", "\ufffe", "\uffff", "ب"]
    rng = random.Random(5)  # noqa: S311 - replayable test data, not a secret
    docs += ["".join(rng.choice(pieces) for _ in range(rng.randint(0, 20))) for _ in range(20_000)]
    expected = [_reference_doc_facts(d) for d in docs]
    assert [parse._doc_facts(d) for d in docs] == expected
    monkeypatch.setattr(parse, "_fastprint", None)
    assert [parse._doc_facts(d) for d in docs] == expected


def test_only_a_doctype_before_the_first_element_is_removed() -> None:
    subset = '<!DOCTYPE rss [<!ENTITY e "<b>x</b>">]>'
    assert neutralize(f"{subset}<rss>&e;</rss>") == "<rss>&amp;e;</rss>"
    assert neutralize(f"<?xml?>\n{subset}\n<rss/>") == "<?xml?>\n\n<rss/>"
    after = f"<rss>{subset}</rss>"  # in the body: text, not a declaration (the parser rejects it)
    assert neutralize(after) == '<rss><!DOCTYPE rss [<!ENTITY e "<b>x</b>">]></rss>'
