"""monitor.prefilter: the literals a regex term's every match holds, which spare RE2 its search
over a field that holds none of them. A table of patterns, then soundness on random patterns
against RE2 itself: a text RE2 matches must always pass the filter."""

from __future__ import annotations

import pytest
import re2
from hypothesis import given, settings
from hypothesis import strategies as st

from monitor.match import compile_watchlists
from monitor.models import TermSpec, WatchlistSpec
from monitor.prefilter import required_literals


@pytest.mark.parametrize(
    ("pattern", "case_sensitive", "expected"),
    [
        pytest.param(
            " (موسكو|كييف|بكين) ",
            False,
            {" موسكو ", " كييف ", " بكين "},
            id="alternation-inside-spaces-gives-each-whole-word",
        ),
        pytest.param(
            "وزير (الخارجية|الدفاع)",
            False,
            {"وزير الخارجية", "وزير الدفاع"},
            id="phrase-times-alternation",
        ),
        pytest.param(r"\bداعش\b", False, {"داعش"}, id="word-boundaries-match-empty"),
        pytest.param(r"\d{4} مليون", False, {" مليون"}, id="digits-unknown-then-literal"),
        pytest.param("(ab)+cd", True, {"ab"}, id="repeated-at-least-once-is-required"),
        pytest.param("foo|bar", True, {"foo", "bar"}, id="top-level-alternation"),
        pytest.param("Moscow", True, {"Moscow"}, id="cased-literal-when-case-sensitive"),
        pytest.param("Moscow", False, None, id="cased-literal-refused-when-case-insensitive"),
        pytest.param("foo|", True, None, id="an-empty-branch-requires-nothing"),
        pytest.param("a.b", True, None, id="single-letters-too-short"),
        pytest.param("ab?c", True, None, id="optional-letter-splits-the-run"),
        pytest.param("(?i)abc", True, None, id="flags-refused"),
        pytest.param("(?P<n>abc)", True, None, id="named-groups-refused"),
        pytest.param(
            "[[:alpha:]]xyz", True, None, id="posix-class-refused-python-reads-it-otherwise"
        ),
        pytest.param("xy{,3}zz", True, None, id="brace-comma-refused-re2-reads-it-as-text"),
        pytest.param(r"\pLabc", True, None, id="unicode-class-escape-refused"),
        pytest.param(r"\x41bc", True, None, id="hex-escape-refused"),
        pytest.param(r"a\.b\.c", True, {"a.b.c"}, id="escaped-punctuation-is-literal"),
        pytest.param("x*", True, None, id="nothing-required"),
        pytest.param("(", True, None, id="unparsable"),
    ],
)
def test_required_literals(pattern: str, case_sensitive: bool, expected: set[str] | None) -> None:
    got = required_literals(pattern, case_sensitive=case_sensitive)
    assert (None if got is None else set(got)) == expected


_LITERALS = ["ab", "ba", "بم", "مب", "a b", "ab ", "a", "b", "ب", "م", " "]
_ATOMS = st.sampled_from([*_LITERALS * 3, ".", r"\s", r"\d", r"\b", "[ab]", "^", "$"])


@st.composite
def _patterns(draw: st.DrawFn, depth: int = 0) -> str:
    parts = []
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.integers(0, 9 if depth < 2 else 5))
        if kind <= 5:
            part = draw(_ATOMS)
        elif kind <= 7:
            inner = [draw(_patterns(depth + 1)) for _ in range(draw(st.integers(1, 3)))]
            part = "(" + "|".join(inner) + ")"
        else:
            part = "(" + draw(_patterns(depth + 1)) + ")"
        part += draw(st.sampled_from(["", "", "", "?", "*", "+", "{2}", "{1,2}", "{0,1}"]))
        parts.append(part)
    return "".join(parts)


_TEXTS = st.text(alphabet="abمب 1.", max_size=14)


@settings(max_examples=4000, deadline=None)
@given(pattern=_patterns(), texts=st.lists(_TEXTS, min_size=1, max_size=6), case=st.booleans())
def test_a_text_re2_matches_always_passes_the_filter(
    pattern: str, texts: list[str], case: bool
) -> None:
    options = re2.Options()
    options.case_sensitive = case
    options.log_errors = False
    try:
        rx = re2.compile(pattern, options)
    except re2.error:
        return
    lits = required_literals(pattern, case_sensitive=case)
    if lits is None:
        return
    for text in (*texts, "".join(texts), " ".join(sorted(lits))):
        if rx.search(text):
            assert any(lit in text for lit in lits), (pattern, text, lits)


def test_random_patterns_do_get_literals() -> None:
    """The soundness test above means something only if the filter often has literals."""
    found = 0
    for pattern in ["ab", "(ab)+", "abb+", "(ab|ba)?ab", " (بم|مب) ", "a(bb|بب)m"]:
        found += required_literals(pattern, case_sensitive=True) is not None
    assert found == 6


def test_matching_a_regex_term_with_and_without_its_literals() -> None:
    term = TermSpec(" (موسكو|كييف|بكين) ", regex=True)
    matcher = compile_watchlists([WatchlistSpec("capitals", any=(term,))])
    assert [m.watchlist for m in matcher.match("وصل الوفد إلى موسكو أمس", "", "")] == ["capitals"]
    assert matcher.match("وصل الوفد إلى موسكوفيا أمس", "", "") == ()  # not the whole word
    assert matcher.match("لا شيء هنا", "", "") == ()
    (index,) = [i for i in matcher._views.values() if i.regexes]
    assert index.regexes[0][2] is not None  # the filter is in place for this pattern
