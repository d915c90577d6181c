"""monitor.text: normalization, tokens, boilerplate. One row per rule, the reason in the id."""

from __future__ import annotations

import itertools
import json
import random
import re
import sys
import unicodedata
from pathlib import Path

import pytest

from monitor import text as text_module
from monitor.text import (
    READ_ALSO,
    Normalized,
    View,
    fold_strict,
    joined_words,
    normalize,
    normalize_exact,
    normalize_strict,
    normalizer,
    split_words,
    strip_boilerplate,
    tokenize,
    words,
    words_by_view,
)

SEED = Path(__file__).resolve().parent.parent / "seeds" / "000_0023912365e1bf7c.txt"
DATA = Path(__file__).resolve().parent / "data"

NORMALIZE = [
    ("مُوسْكُو", "موسكو", "harakat deleted"),
    ("كتابٌ مدرسيٌّ", "كتاب مدرسي", "tanween and shadda deleted"),
    ("الرحمٰن", "الرحمن", "superscript alef deleted"),
    ("ذٰلِكَ ٱلْكِتَٰبُ لَا رَيْبَ ۛ فِيهِ ۚ", "ذلك الكتب لا ريب  فيه ", "Quranic marks deleted, wasla folded"),
    ('بـ"الإرهـــاب"', 'ب"الارهاب"', "tatweel deleted"),
    ("موس\u200fكو", "موسكو", "RLM inside a word deleted"),
    ("ح\u200cماس", "حماس", "ZWNJ deleted, not turned into a space"),
    ("غ\u200dزة", "غزه", "ZWJ deleted"),
    ("\u202bبيروت\u202c", "بيروت", "bidi embedding deleted"),
    ("\u2067بيروت\u2069", "بيروت", "bidi isolate deleted"),
    ("\ufeffطهران", "طهران", "BOM deleted"),
    ("الخرطو\u061cم", "الخرطوم", "Arabic letter mark deleted"),
    ("إس\u00adرائيل", "اسراءيل", "soft hyphen deleted"),
    ("أحمد", "احمد", "alef with hamza above folded"),
    ("إيران", "ايران", "alef with hamza below folded"),
    ("آسيا", "اسيا", "alef with madda folded"),
    ("ٱلله", "الله", "alef wasla folded"),
    ("على", "علي", "alef maqsura folded to yeh"),
    ("الأمریكیة", "الامريكيه", "Persian yeh folded to yeh"),
    ("القاهرة", "القاهره", "teh marbuta folded to heh"),
    ("کابل", "كابل", "keheh folded to kaf"),
    ("ھذا", "هذا", "heh doachashmee folded to heh"),
    ("مسؤول", "مسءول", "waw with hamza folded to hamza"),
    ("رئيس", "رءيس", "yeh with hamza folded to hamza"),
    ("١٧٠١", "1701", "Arabic-Indic digits to ASCII"),
    ("۱۴۰۲", "1402", "Persian digits to ASCII"),
    ("NATO Biden", "nato biden", "Latin casefolded"),
    ("Straße", "strasse", "casefold, not lower"),
    ("ﻻ", "لا", "presentation form lam-alef to letters (NFKC)"),
    ("ﺑﻴﺮﻭﺕ", "بيروت", "presentation forms to letters (NFKC)"),
    ("a\u00a0b", "a b", "no-break space to space"),
    ("plain ascii", "plain ascii", "ASCII fast path"),
]


@pytest.mark.parametrize(
    ("raw", "expected"), [r[:2] for r in NORMALIZE], ids=[r[2] for r in NORMALIZE]
)
def test_normalize(raw: str, expected: str) -> None:
    assert normalize(raw) == expected


STRICT = [
    ("على", "على", "alef maqsura kept"),
    ("علي", "علي", "yeh kept"),
    ("أحمد", "أحمد", "hamza seat kept"),
    ("القاهرة", "القاهرة", "teh marbuta kept"),
    ("مسؤول", "مسؤول", "waw with hamza kept"),
    ("عَلِيّ", "علي", "diacritics still deleted"),
    ("علـى", "على", "tatweel still deleted"),
    ("ٱلله", "الله", "wasla is a codepoint variant: folded"),
    ("کابل", "كابل", "keheh is a codepoint variant: folded"),
    ("الأمریكیة", "الأمريكية", "Persian yeh inside a word is yeh"),
    ("علی", "على", "Persian yeh ending a word is drawn dotless: alef maqsura"),
    ("١٧", "17", "digits folded"),
    ("NATO", "nato", "casefolded"),
]


@pytest.mark.parametrize(("raw", "expected"), [r[:2] for r in STRICT], ids=[r[2] for r in STRICT])
def test_normalize_strict(raw: str, expected: str) -> None:
    assert normalize_strict(raw) == expected


def test_normalize_exact_keeps_case() -> None:
    assert normalize_exact("UN عَلِيّ") == "UN علي"


def test_format_characters_table_is_complete() -> None:
    # every BMP format character (Cf) is deleted; the table in text.py is written out for speed
    for cp in range(0x10000):
        ch = chr(cp)
        if unicodedata.category(ch) == "Cf":
            assert normalize("a" + ch + "b") == "ab", hex(cp)


WORDS = [
    ("مُوسْكُو", ["موسكو"], "diacritics do not split a word"),
    ("موس\u200fكو", ["موسكو"], "an invisible mark does not split a word"),
    ('بـ"الإرهاب"', ["ب", "الارهاب"], "quote after tatweel separates"),
    ("قال، موسكو؛ وبكين؟", ["قال", "موسكو", "وبكين"], "Arabic punctuation separates"),
    ("شركةTesla", ["شركه", "tesla"], "a change of script separates"),
    ("F-16", ["f", "16"], "hyphen separates"),
    ("G20", ["g20"], "Latin letters and digits stay together"),
    ("بـ2022", ["ب", "2022"], "Arabic letters and digits separate"),
    ("Biden's", ["biden", "s"], "apostrophe separates"),
    ("ﷺ", ["صلي", "الله", "عليه", "وسلم"], "a ligature expands to its words"),
    ("Apple™", ["appletm"], "compatibility symbol joins its word, as NFKC says"),
]


@pytest.mark.parametrize(("raw", "expected"), [r[:2] for r in WORDS], ids=[r[2] for r in WORDS])
def test_words(raw: str, expected: list[str]) -> None:
    assert words(raw) == expected
    assert [t.norm for t in tokenize(raw)] == expected


def test_tokenize_spans_point_into_the_original() -> None:
    text = "وصل الوفد إلى مُوسْكُو، ثم وبموسكو"
    toks = tokenize(text)
    assert [text[t.start : t.end] for t in toks][-3:] == ["مُوسْكُو", "ثم", "وبموسكو"]
    assert toks[3].norm == "موسكو"


@pytest.mark.parametrize("view", ["folded", "strict", "exact"])
def test_fast_and_span_paths_agree_on_the_seed(view: str) -> None:
    text = SEED.read_text(encoding="utf-8")
    assert words(text, view) == [t.norm for t in tokenize(text, view)]  # type: ignore[arg-type]


ALL_BMP = "".join(chr(cp) for cp in range(0x20, 0x10000) if not 0xD800 <= cp < 0xE000)


def test_fast_and_span_paths_agree_on_every_bmp_character() -> None:
    text = "موسكو" + ALL_BMP + "كييف"
    assert words(text) == [t.norm for t in tokenize(text)]


def test_views_derive_from_one_normalization() -> None:
    text = "موسكو" + ALL_BMP + " علی الأمریكیة"
    assert fold_strict(normalize_strict(text)) == normalize(text)
    both = words_by_view(text, ("folded", "strict", "exact"))
    assert both == {v: words(text, v) for v in ("folded", "strict", "exact")}  # type: ignore[misc]


BOILERPLATE = [
    ("نص الخبر\nكلمات دلالية: موسكو روسيا", "نص الخبر", "tag-list", "tag list with colon"),
    ("نص الخبر\nالكلمات الدلالية\nموسكو\nروسيا", "نص الخبر", "tag-list", "tag heading alone"),
    ("نص الخبر\nالوسوم: موسكو", "نص الخبر", "tag-list", "tags as الوسوم"),
    ("نص الخبر\nTags: Moscow, Russia", "نص الخبر", "tag-list", "Latin tags"),
    (
        "نص الخبر\nإقرأ أيضاً:\nقصة أخرى\nتفاصيلها",
        "نص الخبر",
        "read-also",
        "read-also section alone",
    ),
    ("نص الخبر\nاقرأ ايضا\nقصة أخرى", "نص الخبر", "read-also", "read-also without hamza"),
    (
        "نص\nاقرأ أيضا: عنوان قصة أخرى\nبقية الخبر",
        "نص\nبقية الخبر",
        "read-also",
        "read-also link line only",
    ),
    ("نص الخبر\nمقالات مشابهة\n• عنوان\n• عنوان", "نص الخبر", "related", "related headlines"),
    ("نص الخبر\nأخبار ذات صلة\nعنوان", "نص الخبر", "related", "أخبار ذات صلة"),
    ("نص الخبر\nالمصدر: فرانس24\nبقية", "نص الخبر\nبقية", "source-line", "source line"),
    ("إعداد: فرانس24 تابِع إعلان\nنص الخبر", "نص الخبر", "source-line", "credit line"),
    ("تابع إعلان اقرأ المزيد\nنص الخبر", "نص الخبر", "nav", "nav-only line"),
    ("نص الخبر\nفرانس24/ أ ف ب", "نص الخبر", "nav", "agency credit line"),
    ("ملخص الخبر ... اقرأ المزيد", "ملخص الخبر ...", "read-also", "trailing read more"),
    ("نص الخبر\n• عنوان أول\n• عنوان ثان", "نص الخبر", "teaser", "trailing bullet list"),
    (
        "The story.\nThe post Title appeared first on Site.",
        "The story.",
        "source-line",
        "WP footer",
    ),
    (
        "نص الخبر\nكلمات دلالية هي موضوع البحث",
        "نص الخبر\nكلمات دلالية هي موضوع البحث",
        None,
        "marker inside a sentence is text",
    ),
    (
        "الخبر عن المصدر الرئيسي للمياه",
        "الخبر عن المصدر الرئيسي للمياه",
        None,
        "source word without colon is text",
    ),
    ("نص\n• بند واحد فقط", "نص\n• بند واحد فقط", None, "a single bullet is text"),
]


@pytest.mark.parametrize(
    ("raw", "kept", "reason"), [r[:3] for r in BOILERPLATE], ids=[r[3] for r in BOILERPLATE]
)
def test_strip_boilerplate(raw: str, kept: str, reason: str | None) -> None:
    s = strip_boilerplate(raw)
    assert s.text.strip() == kept
    assert ({r.reason for r in s.removed} or {None}) >= {reason}
    if reason is None:
        assert s.removed == ()


USER_MARKERS = [
    (
        "نص\nالوحدة الإخبارية: ملخص\nبقية",
        ["الوحدة الاخبارية"],
        "نص",
        "folded marker cuts to the end",
    ),
    ("نص\n» لمتابعة آخر الأخبار\nbla", ["لمتابعة آخر الأخبار"], "نص", "after a bullet"),
    (
        "نص عن الوحدة الإخبارية\nبقية",
        ["الوحدة الإخبارية"],
        "نص عن الوحدة الإخبارية\nبقية",
        "not at line start: kept",
    ),
    ("نص\nDisclaimer: x", ["disclaimer"], "نص", "Latin marker, any case"),
]


@pytest.mark.parametrize(
    ("raw", "markers", "kept"), [r[:3] for r in USER_MARKERS], ids=[r[3] for r in USER_MARKERS]
)
def test_user_markers(raw: str, markers: list[str], kept: str) -> None:
    s = strip_boilerplate(raw, markers)
    assert s.text.strip() == kept


def test_seed_boilerplate() -> None:
    text = SEED.read_text(encoding="utf-8")
    s = strip_boilerplate(text)
    own = s.text
    assert "موسكو" in own
    assert "الدولة الإسلامية" in own
    for gone in ("كلمات دلالية", "زيلينسكي", "مقالات مشابهة", "المصدر", "حماس", "إيران"):
        assert gone not in own, gone
    reasons = [r.reason for r in s.removed]
    assert reasons.count("source-line") == 2
    assert {"tag-list", "read-also", "related", "nav"} <= set(reasons)
    by_reason = {r.reason: text[r.start : r.end] for r in s.removed}
    assert by_reason["read-also"].startswith("إقرأ أيضاً")
    assert "زيلينسكي" in by_reason["read-also"]
    assert s.removed_at(text.index("سوريا")) is not None


def test_no_text() -> None:
    assert strip_boilerplate("").text == ""
    assert words("") == []
    assert sys.maxunicode > 0xFFFF


# --- the fast paths give the reference results -------------------------------------------------
# normalize and normalize_exact run their character pass in C (monitor/_fastprint.c: fold) where
# the accelerator is built; _normalize_py and _normalize_exact_py are the reference.

needs_c = pytest.mark.skipif(
    text_module._fastprint is None,
    reason="monitor._fastprint is not built (no compiler at install): only the Python path runs",
)
EVERYTHING = "".join(chr(cp) for cp in range(0x110000) if not 0xD800 <= cp < 0xE000)
# Contexts a character's folding could depend on: Latin (ASCII fast path not taken), Arabic,
# a diacritic, an invisible mark, a Persian yeh (strict view), a case-folding letter, an astral
# case pair (Deseret), a lone surrogate.
SEPARATORS = ("", " ", "A", "ب", "ً", "\u200f", "ی", "ß", "\U00010400", "\ud800")


@needs_c
@pytest.mark.parametrize("sep", SEPARATORS)
def test_c_normalization_is_the_reference_for_every_code_point(sep: str) -> None:
    for start in range(0, len(EVERYTHING), 4096):
        chunk = sep.join(EVERYTHING[i : i + 5] for i in range(start, start + 4096, 5))
        assert normalize(chunk) == text_module._normalize_py(chunk), (sep, start)
        assert normalize_exact(chunk) == text_module._normalize_exact_py(chunk), (sep, start)


@needs_c
def test_c_normalization_of_every_bmp_character_alone() -> None:
    # alone and between ASCII letters: the fold table's entry for each character, casefold flag
    # included (ß, İ, Σ change length or context under casefold; ﬁ under NFKC)
    for cp in range(0x80, 0x10000):
        ch = chr(cp)
        for s in (ch, "A" + ch + "b", ch + "ى"):
            assert normalize(s) == text_module._normalize_py(s), hex(cp)
            assert normalize_exact(s) == text_module._normalize_exact_py(s), hex(cp)


@needs_c
def test_c_normalization_of_real_text_is_the_reference() -> None:
    texts = [SEED.read_text(encoding="utf-8")]
    for line in (DATA / "dedup_pairs.jsonl").read_text(encoding="utf-8").splitlines():
        pair = json.loads(line)
        texts += [pair[s][f] for s in "ab" for f in ("title", "body")]
    for line in (DATA / "match_eval.tsv").read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.startswith("#"):
            texts.append(line.split("\t")[-1])
    assert len(texts) > 1500
    for t in texts:
        assert normalize(t) == text_module._normalize_py(t)
        assert normalize_exact(t) == text_module._normalize_exact_py(t)
        assert normalize_strict(t) == text_module._normalize_exact_py(t).casefold()


@pytest.mark.parametrize("sep", ["", " ", "a", "ب", "1", "_", "\u0640"])
def test_joined_words_are_the_words_joined_for_every_code_point(sep: str) -> None:
    text = sep.join(EVERYTHING[i : i + 7] for i in range(0, len(EVERYTHING), 7))
    assert joined_words(text) == " " + " ".join(split_words(text)) + " "
    assert joined_words("") == "  "
    assert joined_words("،؛ ") == "  "
    assert joined_words("شركةTesla في 2024") == " شركة Tesla في 2024 "


def test_normalized_views_are_the_normalizers_in_any_order() -> None:
    text = "موسكو " + ALL_BMP[::7] + " علی الأمریكیة Straße عَلِيّ"
    views: tuple[View, ...] = ("folded", "strict", "exact")
    expected = {v: normalizer(v)(text) for v in views}
    for order in itertools.permutations(views):
        n = Normalized(text)
        for v in order:
            assert n.view(v) == expected[v], order
        assert n.folded == expected["folded"]
    assert Normalized("").view("strict") == ""


def test_trailer_lookahead_finds_what_the_plain_pattern_finds() -> None:
    # _TRAILER_RE starts with a lookahead of every character a trailer can start with; the
    # pattern without it is the reference. Texts around each marker, in every spelling the loose
    # match allows, cut at several ends.
    plain = re.compile(rf"(?:(?:{text_module._alternation(READ_ALSO)})|\[?(?:…|\.\.\.)\]?)[^\w]*\Z")
    pieces = [*READ_ALSO, "إقرأ أيضاً", "اقـرأ", "READ MORE", "…", "...", "[…]", ".", "[", "]"]
    pieces += [" ", "\n", ":", "»", "ـ", "ً", "\u200f", "نص", "x", "1", "_"]
    rng = random.Random(7)  # noqa: S311 - replayable test data, not a secret
    found = 0
    for _ in range(20_000):
        s = "".join(rng.choice(pieces) for _ in range(rng.randint(0, 12)))
        for end in (len(s), len(s) - 3):
            a, b = max(0, end - 60), max(0, end)
            m, ref = text_module._TRAILER_RE.search(s, a, b), plain.search(s, a, b)
            assert (m and m.span()) == (ref and ref.span()), s
            found += ref is not None
    assert found > 1000
