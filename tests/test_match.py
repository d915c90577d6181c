"""monitor.match: one row per rule, the reason in the id; the seed article; explain."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from monitor.match import (
    Matcher,
    compile_watchlists,
    render_explanation,
    surface_forms,
    term_notes,
    term_problems,
)
from monitor.models import Field, TermSpec, WatchlistSpec
from tests.test_match_eval import ROWS

SEED = Path(__file__).resolve().parent.parent / "seeds" / "000_0023912365e1bf7c.txt"
T = TermSpec


def one(term: TermSpec, **wl: object) -> Matcher:
    return compile_watchlists([WatchlistSpec("w", any=(term,), **wl)])  # type: ignore[arg-type]


def hit(term: TermSpec, text: str) -> bool:
    return bool(one(term).match(text, "", ""))


# --- the seed ----------------------------------------------------------------------------------

SEED_TERMS = [
    ("موسكو", True, "in the story's own text"),
    ("الدولة الإسلامية", True, "phrase in the story's own text"),
    ("إيران", False, "only in the tag list"),
    ("سوريا", False, "only in the tag list"),
    ("حماس", False, "only in the tag list"),
    ("زيلينسكي", False, "only in the embedded read-also story and related headlines"),
]


@pytest.mark.parametrize(
    ("term", "expected"), [r[:2] for r in SEED_TERMS], ids=[r[2] for r in SEED_TERMS]
)
def test_seed_as_published(term: str, expected: bool) -> None:
    text = SEED.read_text(encoding="utf-8")
    assert bool(one(T(term)).match("", "", text)) is expected
    assert bool(one(T(term)).match("", text, "")) is expected  # same in the summary


def test_seed_explain_says_why() -> None:
    text = SEED.read_text(encoding="utf-8")
    m = compile_watchlists(
        [
            WatchlistSpec("russia", any=(T("موسكو"), T("الدولة الإسلامية"))),
            WatchlistSpec("mideast", any=(T("إيران"), T("سوريا"), T("حماس"))),
            WatchlistSpec("ukraine", any=(T("زيلينسكي"),)),
        ]
    )
    e = m.explain("", "", text)
    data = e.to_json()
    assert data["matches"] == [{"watchlist": "russia", "terms": ["موسكو", "الدولة الإسلامية"]}]
    json.dumps(data)  # serializable
    by = {w["watchlist"]: w for w in data["watchlists"]}
    assert "only in boilerplate (tag-list)" in by["mideast"]["reasons"][0]
    assert "'زيلينسكي' only in boilerplate (read-also)" in by["ukraine"]["reasons"][0]
    own = [h for h in by["russia"]["hits"] if h["boilerplate"] is None]
    assert {h["term"] for h in own} == {"موسكو", "الدولة الإسلامية"}
    for h in own:
        assert text[h["start"] : h["end"]] == h["text"]
    assert "موسكو" in data["fields"][0]["normalized"]
    assert "زيلينسكي" not in data["fields"][0]["normalized"]
    out = render_explanation(e)
    assert "russia: MATCH" in out
    assert "mideast: no match" in out
    assert "why not:" in out


# --- words and clitics -------------------------------------------------------------------------

CLITICS = [
    ("موسكو", "في موسكو اليوم", True, "bare word"),
    ("موسكو", "وبموسكو عقدت القمة", True, "waw + bah"),
    ("موسكو", "لموسكو دور", True, "lam"),
    ("موسكو", "فموسكو ترد", True, "fa"),
    ("موسكو", "كموسكو", True, "kaf"),
    ("موسكو", "فبموسكو", True, "fa + bah"),
    ("موسكو", "بوموسكو", False, "bah before waw is not a clitic order"),
    ("موسكو", "موسكوفيسي يحذر", False, "no substring match"),
    ("موسكو", "موسكوية", False, "no suffix stripping"),
    ("الدولة الإسلامية", "للدولة الإسلامية خلايا", True, "lam + article written لل"),
    ("الدولة الإسلامية", "وللدولة الإسلامية", True, "waw + lam + article"),
    ("الدولة الإسلامية", "بالدولة الإسلامية", True, "bah + article"),
    ("الدولة الإسلامية", "الدول الإسلامية", False, "plural is another word"),
    ("الدولة الإسلامية", "الدولة ذات الصبغة الإسلامية", False, "words must be contiguous"),
    ("الدولة الإسلامية", "والإسلامية الدولة", False, "order matters"),
    ("الدولة الإسلامية", "الدولة وللإسلامية", False, "only the first word takes clitics"),
    ("الأمم المتحدة", "وللأمم المتحدة", True, "waw + lam + article"),
    ("العقوبات", "بالعقوبات", True, "bah + article"),
    ("دولة", "الدولة", True, "term without article matches with it"),
    ("دولة", "للدولة", True, "term without article: لل form"),
    ("الليل", "لليل", True, "lam + article before lam: two lams"),
    ("ليبيا", "لليبيا", True, "lam before a lam-initial word"),
    ("لبنان", "للبنان", True, "lam + لبنان"),
    ("لبنان", "لبن", False, "لبن is not لبنان"),
    ("لبن", "لبنان", False, "لبنان is not لبن"),
    ("مصر", "ومصر", False, "three letters: no clitics by default"),
    ("مصر", "المصر", False, "three letters: no article by default"),
    ("Biden", "وBiden", True, "a change of script separates words"),
    ("Biden", "Bidenو", True, "a change of script separates words, after"),
    ("Biden", "Biden's plan", True, "Latin whole word"),
    ("Biden", "Bidenomics", False, "Latin: no substring"),
    ("nato", "NATO summit", True, "Latin casefolded"),
]


@pytest.mark.parametrize(
    ("term", "text", "expected"), [r[:3] for r in CLITICS], ids=[r[3] for r in CLITICS]
)
def test_words_and_clitics(term: str, text: str, expected: bool) -> None:
    assert hit(T(term), text) is expected


def test_clitics_on_request_for_short_words() -> None:
    assert hit(T("مصر", clitics=True), "ومصر تعلن")
    assert hit(T("مصر", clitics=True), "بالمصر") is True  # article comes with clitics
    assert not hit(T("مصر", clitics=True), "مصرف")


def test_clitics_off_on_request() -> None:
    assert not hit(T("موسكو", clitics=False), "وبموسكو")
    assert hit(T("موسكو", clitics=False), "موسكو")


def test_surface_forms_report_the_clitic() -> None:
    forms = surface_forms("الدوله")
    assert forms["للدوله"] == "ل"
    assert forms["وللدوله"] == "و+ل"
    assert forms["بالدوله"] == "ب"
    plain = surface_forms("موسكو")
    assert plain["وبموسكو"] == "و+ب"
    assert plain["للموسكو"] == "ل+ال"
    assert plain["موسكو"] == ""


# --- views: folded, strict, exact --------------------------------------------------------------

VIEWS = [
    (T("علي"), "قال علي إنه", True, "the name"),
    (T("علي"), "سيطر على المدينة", False, "auto strict: folded علي is the function word على"),
    (T("علي"), "قال عَلِيّ", True, "strict still deletes diacritics"),
    (T("علي", strict=False), "سيطر على المدينة", True, "strict: false folds again"),
    (T("آلان"), "الآن يمكنك", False, "auto strict: آلان folds onto الآن"),
    (T("آلان"), "آلان جوبيه", True, "the name"),
    (T("منى"), "طلب مني", False, "auto strict: منى folds onto مني"),
    (T("سلمى"), "احتجاج سلمي", False, "auto strict: frequent word سلمي"),
    (T("سلمى"), "وسلمى حايك", True, "strict terms keep clitics"),
    (T("علي خامنئي"), "على خامنئي", True, "phrases are not auto strict"),
    (T("إيران"), "ايران", True, "folded: hamza seat"),
    (T("القاهرة"), "القاهره", True, "folded: teh marbuta"),
    (T("إيران", exact=True), "ايران", False, "exact keeps the hamza seat"),
    (T("إيران", exact=True), "إِيران", True, "exact still deletes diacritics"),
    (T("UN", exact=True), "un accord", False, "exact keeps Latin case"),
    (T("UN", exact=True), "the UN says", True, "exact: same case"),
    (T("un"), "the UN says", True, "folded: casefold"),
    (T("القاهرة", strict=True), "القاهره", False, "strict on request keeps teh marbuta"),
]


@pytest.mark.parametrize(
    ("term", "text", "expected"), [r[:3] for r in VIEWS], ids=[r[3] for r in VIEWS]
)
def test_views(term: TermSpec, text: str, expected: bool) -> None:
    assert hit(term, text) is expected


# --- prefix and regex --------------------------------------------------------------------------

PREFIX = [
    (T("روس*"), "روسيا تعلن", True, "star: prefix"),
    (T("روس", prefix=True), "روسيا تعلن", True, "prefix option"),
    (T("روس*"), "الروسية", True, "prefix with article"),
    (T("روس*"), "وروسيا", True, "prefix with clitic"),
    (T("روس*"), "عروس", False, "prefix is anchored at the word start"),
    (T("روس"), "روسيا", False, "no prefix: whole word"),
    (T("الحرس الثوري*"), "الحرس الثورية", True, "phrase: last word is the prefix"),
    (T("الحرس الثوري*"), "الحرس الوطني", False, "phrase: first words exact"),
    (T("ترامب*"), "الترامبية", True, "prefix finds derived words"),
]


@pytest.mark.parametrize(
    ("term", "text", "expected"), [r[:3] for r in PREFIX], ids=[r[3] for r in PREFIX]
)
def test_prefix(term: TermSpec, text: str, expected: bool) -> None:
    assert hit(term, text) is expected


REGEX = [
    (T(" (موسكو|كييف) ", regex=True), "انفجار في كييف اليوم", True, "alternation"),
    (T(" (موسكو|كييف) ", regex=True), "موسكوفيسي", False, "spaces bound words"),
    (T("إسرائيل", regex=True), "اسرائيل", True, "pattern letters are folded like the text"),
    (T("biden", regex=True), "BIDEN", True, "folded view: case-insensitive"),
    (T("BIDEN", regex=True), "biden", True, "pattern case does not matter either"),
    (T("BIDEN", regex=True, exact=True), "biden", False, "exact regex is case-sensitive"),
    (T(r"\d{4}", regex=True), "عام ٢٠٢٤", True, "digits folded before the regex runs"),
]


@pytest.mark.parametrize(
    ("term", "text", "expected"), [r[:3] for r in REGEX], ids=[r[3] for r in REGEX]
)
def test_regex(term: TermSpec, text: str, expected: bool) -> None:
    assert hit(term, text) is expected


def test_catastrophic_pattern_is_linear() -> None:
    # (a+)+$ takes exponential time with a backtracking engine; RE2 answers at once
    m = one(T("(a+)+!$", regex=True))
    assert m.match("a" * 50_000 + "?", "", "") == ()
    assert m.match("aaa!", "", "") == ()  # "!" is not a word character: not in the joined words
    assert one(T("(a+)+ $", regex=True)).match("a" * 50_000, "", "")


# --- watchlists: any / all / none, fields, feeds, boilerplate ----------------------------------


def wl(**kw: object) -> Matcher:
    return compile_watchlists([WatchlistSpec("w", **kw)])  # type: ignore[arg-type]


def test_any_all_none() -> None:
    m = wl(any=(T("موسكو"), T("كييف")), all=(T("هجوم"),), none=(T("مباراة"),))
    assert m.match("هجوم في موسكو", "", "")[0].terms == ("موسكو", "هجوم")
    assert m.match("هجوم في موسكو وكييف", "", "")[0].terms == ("موسكو", "كييف", "هجوم")
    assert m.match("موسكو", "", "") == ()  # all missing
    assert m.match("هجوم في موسكو قبل مباراة", "", "") == ()  # none present
    assert m.match("هجوم", "", "") == ()  # no any


def test_all_only_watchlist() -> None:
    m = wl(all=(T("موسكو"), T("هجوم")))
    assert m.match("هجوم على موسكو", "", "")[0].terms == ("موسكو", "هجوم")
    assert m.match("موسكو", "", "") == ()


def test_empty_watchlist_never_matches() -> None:
    assert wl(none=(T("x"),)).match("anything", "", "") == ()


def test_terms_reported_as_written() -> None:
    m = wl(any=(T("إيران"), T("روس*")))
    assert m.match("ايران وروسيا", "", "")[0].terms == ("إيران", "روس*")


def test_fields_scope() -> None:
    fields: tuple[Field, ...] = ("title",)
    m = wl(any=(T("موسكو"),), fields=fields)
    assert m.match("موسكو ترد", "", "")
    assert m.match("عنوان", "موسكو", "موسكو") == ()
    e = m.explain("عنوان", "موسكو", "")
    assert "only in summary" in e.watchlists[0].reasons[0]


def test_feeds_scope() -> None:
    m = wl(any=(T("موسكو"),), feeds=("afp",))
    assert m.match("موسكو", "", "", feed="afp")
    assert m.match("موسكو", "", "", feed="bbc") == ()
    assert m.match("موسكو", "", "")  # no feed given: ad-hoc text, scopes ignored
    e = m.explain("موسكو", "", "", feed="bbc")
    assert e.matches == ()
    assert "not in this watchlist's feeds" in e.watchlists[0].reasons[0]


def test_feed_boilerplate_markers() -> None:
    m = wl(any=(T("موسكو"),))
    body = "خبر محلي\nالوحدة الإخبارية: موسكو"
    assert m.match("", "", body)
    assert m.match("", "", body, boilerplate=("الوحدة الإخبارية",)) == ()
    e = m.explain("", "", body, boilerplate=("الوحدة الإخبارية",))
    assert "only in boilerplate (feed-marker)" in e.watchlists[0].reasons[0]


def test_title_is_not_stripped() -> None:
    assert wl(any=(T("أيضا"),)).match("اقرأ أيضا", "", "")


def test_explain_reasons() -> None:
    m = compile_watchlists(
        [
            WatchlistSpec("absent", any=(T("بكين"),)),
            WatchlistSpec("none", any=(T("موسكو"),), none=(T("مباراة"),)),
            WatchlistSpec("all", any=(T("موسكو"),), all=(T("هجوم"),)),
        ]
    )
    e = m.explain("مباراة في وبموسكو", "", "")
    reasons = {w.watchlist: w.reasons for w in e.watchlists}
    assert reasons["absent"] == ("no `any` term found: 'بكين' absent",)
    assert reasons["none"] == ("`none` term present: 'مباراة'",)
    assert reasons["all"] == ("`all` term missing: 'هجوم' absent",)
    hits = [h for w in e.watchlists if w.watchlist == "all" for h in w.hits]
    assert [(h.term, h.text, h.clitic, h.start, h.end) for h in hits] == [
        ("موسكو", "وبموسكو", "و+ب", 10, 17)
    ]
    assert "clitic و+ب" in render_explanation(e)


def test_explain_agrees_with_match_on_the_eval_set() -> None:
    specs = [WatchlistSpec(f"r{i}", any=(r.term,)) for i, r in enumerate(ROWS)]
    m = compile_watchlists(specs)
    for r in ROWS[::3]:
        assert m.match(r.text, r.text, "") == m.explain(r.text, r.text, "").matches, r.line


def test_terms_sharing_a_label_reported_once() -> None:
    # two terms written alike (folded and strict): the watchlist reports the label once, as
    # explain does
    m = wl(any=(T("موسكو"), T("موسكو", strict=True), T("كييف")))
    assert m.match("موسكو وكييف", "", "")[0].terms == ("موسكو", "كييف")
    assert m.explain("موسكو وكييف", "", "").matches == m.match("موسكو وكييف", "", "")
    m = wl(any=(T("موسكو"),), all=(T("موسكو", strict=True),))
    assert m.match("موسكو", "", "")[0].terms == ("موسكو",)


def test_thousands_of_terms_in_one_matcher() -> None:
    terms = (*tuple(T(f"مصطلح{i} رقم") for i in range(5000)), T("موسكو"))
    m = compile_watchlists([WatchlistSpec("big", any=terms)])
    assert m.match("وبموسكو اليوم", "", "")[0].terms == ("موسكو",)
    assert m.match("ومصطلح4999 رقم", "", "")[0].terms == ("مصطلح4999 رقم",)
    assert m.match("مصطلح4999 آخر", "", "") == ()


# --- check: problems and notes -----------------------------------------------------------------

PROBLEMS = [
    (T(""), "empty", "empty term"),
    (T("  "), "empty", "blank term"),
    (T("..."), "no letters", "punctuation only"),
    (T("ر*"), "shorter than three letters", "prefix stem too short"),
    (T("a*b"), "only allowed at the end", "star in the middle"),
    (T("(?<=x)y", regex=True), "RE2", "lookbehind refused"),
    (T(r"(a)\1", regex=True), "RE2", "backreference refused"),
    (T("(", regex=True), "invalid", "syntax error"),
    (T("x" * 3000, regex=True), "longer than", "huge pattern"),
]


@pytest.mark.parametrize(
    ("term", "needle"), [r[:2] for r in PROBLEMS], ids=[r[2] for r in PROBLEMS]
)
def test_term_problems(term: TermSpec, needle: str) -> None:
    problems = term_problems(term)
    assert problems
    assert needle in problems[0]


@pytest.mark.parametrize(
    "term", [T("موسكو"), T("روس*"), T("(a+)+$", regex=True), T("علي")], ids=str
)
def test_valid_terms_have_no_problems(term: TermSpec) -> None:
    assert term_problems(term) == []


NOTES = [
    (T("علي"), "matches strictly: folded form 'علي' collides with the function word 'على'", "Ali"),
    (T("آلان"), "collides with the function word 'الآن'", "Alain"),
    (T("على"), "frequent function word", "the function word itself"),
    (T("مصر"), "no clitic expansion", "three letters"),
    (T(r"\bmoscow\b", regex=True), "ASCII", "RE2 \\b is ASCII-only"),
]


@pytest.mark.parametrize(("term", "needle"), [r[:2] for r in NOTES], ids=[r[2] for r in NOTES])
def test_term_notes(term: TermSpec, needle: str) -> None:
    assert any(needle in n for n in term_notes(term)), term_notes(term)


def test_no_notes_for_plain_terms() -> None:
    assert term_notes(T("موسكو")) == []
    assert term_notes(T("مصر", clitics=False)) == []
    assert term_notes(T("علي", strict=False))[0].startswith("strict is off: it also matches")
    assert term_notes(T("مصر", clitics=True)) == []
