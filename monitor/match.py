"""Watchlist matching: compiled once when the config loads, run on every new item. Pure: no I/O,
no clock.

    compile_watchlists(specs) -> Matcher
    Matcher.match(title, summary, content, feed=, boilerplate=) -> tuple[Match, ...]
    Matcher.match_own({field: Normalized}, feed=)    the same on stripped texts (analyze)
    Matcher.explain(...same...) -> Explanation      (.to_json(), render_explanation())
    term_problems(term) -> list[str]                 errors `monitor check` reports
    term_notes(term) -> list[str]                    information `monitor check` reports

Rules (docs/matching.md has the reasons and the measurements):

- Words, not substrings. Text and terms are tokenized into normalized words (monitor.text); a
  term is a sequence of words that must occur contiguously in one field's own text.
- The first word of a term may carry the proclitics (و|ف)?(ب|ك|ل)? and the article ال, with
  ل + ال written لل (للدولة، وللأمم، بالعقوبات). No suffix is ever stripped. A single-word term
  of three letters or fewer gets no clitic expansion unless `clitics=True`; prefix terms and
  multi-word terms always get it unless `clitics=False`. Latin-script words take no clitics.
- Views: a term matches the folded text (default), the strict text (`strict`: ى ≠ ي, أ ≠ ا,
  ة ≠ ه; automatic for a single word whose folded form is a frequent function word, e.g. علي
  folds to على), or the exact text (`exact`: strict and case-sensitive).
- `prefix` (or a trailing `*`): the last word may continue (روس* matches روسيا، الروسية).
- `regex`: RE2 (linear time, no backtracking: no watchlist can hang the daemon) over the
  field's normalized words joined by single spaces, with a space at each end.
- Fields: title as is; summary and content without boilerplate (monitor.text.strip_boilerplate
  with the feed's extra markers). A watchlist sees only its `fields`, only its `feeds` (when a
  feed name is given), matches when some `any` term (or no `any` is set), every `all` term and
  no `none` term is found.

Cost: one Aho-Corasick pass (pyahocorasick, in C) per field and view over the normalized words,
whose keys are every surface form of every term, so thousands of terms cost about what ten do;
then work in proportion to the hits, not to the terms or the watchlists.
"""

from __future__ import annotations

import bisect
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import ahocorasick
import re2

from monitor.models import ALL_FIELDS, Field, Match, TermSpec, WatchlistSpec
from monitor.prefilter import required_literals
from monitor.text import (
    Normalized,
    Stripped,
    Token,
    View,
    joined_words,
    letters,
    normalize,
    normalize_strict,
    normalizer,
    strip_boilerplate,
    tokenize,
    words,
)

__all__ = [
    "FUNCTION_WORDS",
    "Explanation",
    "Matcher",
    "compile_watchlists",
    "render_explanation",
    "term_notes",
    "term_problems",
]

# Words so frequent that a name folding onto them would alert on almost every item. Written in
# their correct spelling: a term that folds onto one of these but is spelled differently (علي,
# آلان, منى) matches strictly. Built from the ى/ي, hamza and ة/ه folds: prepositions and
# particles, their common pronoun forms, and a few very frequent words that names collide with
# (سلمى/سلمي peaceful, بشرى/بشري human, يسرى/يسري applies, ليلى/ليلي nightly).
FUNCTION_WORDS: tuple[str, ...] = (
    # ى-final particles and very frequent ى-final words (fold to ي)
    "على", "إلى", "الى", "حتى", "متى", "لدى", "سوى", "أنى", "بلى", "مدى", "أولى", "أخرى",
    "كبرى", "أدنى", "أعلى", "أقصى", "مستوى", "فى", "ذى",
    # ي-final pronoun forms (not عليّ "on me": it is spelled like the name علي, the case this
    # list exists for)
    "في", "لي", "بي", "كي", "ذي", "مني", "عني", "إلي", "لدي", "التي", "الذي",
    # hamza-initial particles (fold to ا)
    "أن", "إن", "أنا", "أنت", "إذا", "إذ", "أو", "أي", "أين", "إلا", "ألا", "أما", "إما",
    "أم", "أنه", "إنه", "أنها", "إنها", "أنهم", "إنهم", "لأن", "أيضا", "أكثر", "أول", "أحد",
    "أمام", "أثناء", "إثر", "أجل", "أمس", "الآن", "آخر",
    # ة/ه: pronoun-suffixed particles
    "له", "به", "فيه", "منه", "عنه", "عليه", "إليه", "لديه", "هذه", "عنده", "معه", "نفسه",
    # frequent words that common names fold onto
    "سلمي", "ليلي", "يحيي", "هدي", "نهي", "بشري", "يسري",
)  # fmt: skip
_FW_FOLDED: dict[str, str] = {}
for _w in FUNCTION_WORDS:
    _FW_FOLDED.setdefault(normalize(_w), _w)
_FW_STRICT = frozenset(normalize_strict(w) for w in FUNCTION_WORDS)

MAX_REGEX_LEN = 2000  # characters of pattern
_RE2_MAX_MEM = 8 << 20  # bytes for one compiled pattern
_P1 = ("", "و", "ف")
_P2 = ("", "ب", "ك", "ل")
_ARTICLE = "ال"


def _is_arabic(word: str) -> bool:
    return any("\u0600" <= ch <= "\u06ff" for ch in word)


def _clitic_label(*parts: str) -> str:
    return "+".join(p for p in parts if p)


def surface_forms(word: str) -> dict[str, str]:
    """Every way `word` may be written as the first word of a term, with the clitic it carries:
    (و|ف)?(ب|ك|ل)? + (ال)? + word, with ل + ال written لل."""
    out: dict[str, str] = {word: ""}
    has_article = word.startswith(_ARTICLE) and len(word) > 3
    for p1 in _P1:
        for p2 in _P2:
            if p1 or p2:
                out.setdefault(p1 + p2 + word, _clitic_label(p1, p2))
            if has_article:
                continue
            if p2 == "ل":
                out.setdefault(p1 + "لل" + word, _clitic_label(p1, "ل", _ARTICLE))
            else:
                out.setdefault(p1 + p2 + _ARTICLE + word, _clitic_label(p1, p2, _ARTICLE))
    if has_article:
        base = word[len(_ARTICLE) :]
        for p1 in _P1:
            # ل + الدولة → للدولة; ل + الليل → لليل
            form = p1 + "ل" + base if base.startswith("ل") else p1 + "لل" + base
            out.setdefault(form, _clitic_label(p1, "ل"))
    return out


# --- terms -------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Term:
    label: str  # as written in the watchlist
    view: View
    words: tuple[str, ...]
    prefix: bool
    clitics: bool
    strict_reason: str | None  # why it matches strictly, when automatic
    regex: Any = None  # a compiled re2 pattern


def _prepare(spec: TermSpec) -> tuple[str, bool]:
    if spec.regex:
        return spec.text, False  # spaces may be part of the pattern
    text = spec.text.strip()
    prefix = spec.prefix
    if text.endswith("*"):
        text, prefix = text.rstrip("*").rstrip(), True
    return text, prefix


def _collision(text: str) -> str | None:
    """The function word a single-word term folds onto while being spelled differently."""
    ws = words(text)
    if len(ws) != 1 or ws[0] not in _FW_FOLDED:
        return None
    strict = words(text, "strict")
    if len(strict) == 1 and strict[0] in _FW_STRICT:
        return None  # the term is the function word itself
    return _FW_FOLDED[ws[0]]


def _fold_pattern(pattern: str, view: View) -> str:
    """A regex pattern in the letters of the view, without casefolding its escapes (\\S)."""
    out = []
    for ch in pattern:
        if ch.isascii():
            out.append(ch)
        else:
            folded = normalizer(view)(ch)
            out.append(folded.lower() if view == "exact" else folded)
    return "".join(out)


def _compile_regex(text: str, view: View) -> Any:
    options = re2.Options()
    options.max_mem = _RE2_MAX_MEM
    options.case_sensitive = view == "exact"
    options.log_errors = False
    return re2.compile(_fold_pattern(text, view), options)


def term_problems(term: TermSpec) -> list[str]:
    """What makes a term unusable (the config loader turns these into ConfigError problems)."""
    text, prefix = _prepare(term)
    if not text:
        return ["the term is empty"]
    if term.regex:
        if len(text) > MAX_REGEX_LEN:
            return [f"the regular expression is longer than {MAX_REGEX_LEN} characters"]
        try:
            _compile_regex(text, "exact" if term.exact else "folded")
        except re2.error as e:
            return [
                f"invalid regular expression for RE2 ({e}); RE2 has no lookaround and no "
                "backreferences, which is what keeps matching linear in time"
            ]
        return []
    problems = []
    if "*" in text:
        problems.append("'*' is only allowed at the end of a term (prefix)")
    view: View = "exact" if term.exact else "folded"
    ws = words(text, view)
    if not ws:
        problems.append("the term has no letters or digits")
    elif prefix and letters(ws[-1]) < 3 and not ws[-1].isdigit():
        problems.append(
            f"prefix stem '{ws[-1]}' is shorter than three letters: it would match a large "
            "share of all words"
        )
    return problems


def term_notes(term: TermSpec) -> list[str]:
    """How a valid term will match, where that may surprise (shown by `monitor check`)."""
    if term_problems(term):
        return []
    text, _ = _prepare(term)
    notes = []
    if term.regex:
        if "\\b" in text:
            notes.append(
                "\\b in RE2 knows only ASCII word characters; words are joined by single "
                "spaces with a space at both ends, so match ' موسكو ' instead"
            )
        return notes
    t = _build_term(term)
    if term.strict is None and t.strict_reason:
        notes.append(
            f"matches strictly: folded form '{words(text)[0]}' collides with the function "
            f"word '{t.strict_reason}'; spellings like '{t.strict_reason}' will not match "
            "(set strict: false to fold)"
        )
    ws = words(text)
    if len(ws) == 1 and ws[0] in _FW_FOLDED and t.view == "folded":
        fw = _FW_FOLDED[ws[0]]
        if _collision(text) is None:
            notes.append(
                f"'{text}' is a frequent function word: it will match nearly every Arabic item"
            )
        else:
            notes.append(f"strict is off: it also matches the frequent function word '{fw}'")
    if t.words and _is_arabic(t.words[0]) and not t.clitics and term.clitics is None:
        notes.append(
            "no clitic expansion: three letters or fewer (و/ب/ل/ال forms will not match; "
            "set clitics: true to allow them)"
        )
    return notes


def _build_term(spec: TermSpec) -> _Term:
    text, prefix = _prepare(spec)
    if spec.regex:
        view: View = "exact" if spec.exact else "folded"
        return _Term(spec.text, view, (), False, False, None, _compile_regex(text, view))
    reason = None
    if spec.exact:
        view = "exact"
    elif spec.strict is True or (spec.strict is None and (reason := _collision(text)) is not None):
        view = "strict"
    else:
        view = "folded"
    ws = tuple(words(text, view))
    arabic = bool(ws) and _is_arabic(ws[0])
    if spec.clitics is not None:
        clitics = spec.clitics and arabic
    else:
        clitics = arabic and (prefix or len(ws) > 1 or letters(ws[0]) > 3)
    return _Term(spec.text, view, ws, prefix, clitics, reason)


# --- the compiled index ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Occurrence:
    term: int
    first: int  # token index
    last: int  # token index, inclusive
    clitic: str


def _joined(toks: Sequence[str]) -> str:
    return " " + " ".join(toks) + " "


class _ViewIndex:
    """Every term of one view in one Aho-Corasick automaton (pyahocorasick) over the field's
    words joined by single spaces (' w1 w2 ... '). A key is ' ' + a surface form of the first
    word + ' ' + the other words + ' ' (no closing space for a prefix term): keys match whole
    words, phrases match contiguous words, and one pass in C finds every term, however many.
    A key's value is an int (the automaton stores no Python objects: ~50 MB for 10,000 terms):
    the term id, or -1 - i for the i-th tuple of ids when several terms share the key.
    Regular expressions (RE2) run over the same string."""

    def __init__(self, view: View, terms: Sequence[_Term]) -> None:
        self.view = view
        self.terms = terms
        self.auto: Any = ahocorasick.Automaton(ahocorasick.STORE_INTS)
        self.keys = 0
        self.shared: list[tuple[int, ...]] = []
        # (term id, RE2 pattern, strings one of which a match holds, or None: monitor.prefilter)
        self.regexes: list[tuple[int, Any, tuple[str, ...] | None]] = []

    def add(self, tid: int, t: _Term) -> None:
        if t.regex is not None:
            pattern = _fold_pattern(t.label, self.view)
            lits = required_literals(pattern, case_sensitive=self.view == "exact")
            self.regexes.append((tid, t.regex, tuple(lits) if lits else None))
            return
        first, rest = t.words[0], t.words[1:]
        forms = surface_forms(first) if t.clitics else {first: ""}
        tail = "" if t.prefix else " "
        for form in forms:
            key = " " + " ".join((form, *rest)) + tail
            old = self.auto.get(key, None)
            if old is None:
                self.auto.add_word(key, tid)
                self.keys += 1
            elif old >= 0:
                self.shared.append((old, tid))
                self.auto.add_word(key, -len(self.shared))
            else:
                self.shared[-1 - old] += (tid,)

    def finish(self) -> None:
        if self.keys:
            self.auto.make_automaton()

    def hits(self, joined: str) -> set[int]:
        """The terms found in a field's words joined as `_joined` joins them (the fast path:
        monitor.text's `joined_words` of the field's view, in C where it is built)."""
        found: set[int] = set()
        if self.keys:
            for _end, v in self.auto.iter(joined):
                if v >= 0:
                    found.add(v)
                else:
                    found.update(self.shared[-1 - v])
        for tid, rx, lits in self.regexes:
            if lits is not None and not any(lit in joined for lit in lits):
                continue  # none of the strings every match holds: RE2 would find nothing
            if rx.search(joined):
                found.add(tid)
        return found

    def occurrences(self, toks: list[str]) -> list[_Occurrence]:
        """Every occurrence in `toks`, with token positions and clitics (the explain path)."""
        out: list[_Occurrence] = []
        joined = _joined(toks)
        starts = []  # offset in `joined` of each token
        pos = 1
        for t in toks:
            starts.append(pos)
            pos += len(t) + 1

        def token_at(offset: int) -> int:
            return max(0, bisect.bisect_right(starts, offset) - 1)

        if self.keys:
            for end, v in self.auto.iter(joined):
                for tid in (v,) if v >= 0 else self.shared[-1 - v]:
                    t = self.terms[tid]
                    last = token_at(end) if t.prefix else token_at(end - 1)
                    first = last - (len(t.words) - 1)
                    form = toks[first]
                    if t.prefix and len(t.words) == 1:
                        form = joined[starts[first] : end + 1]
                    clitic = surface_forms(t.words[0]).get(form, "") if t.clitics else ""
                    out.append(_Occurrence(tid, first, last, clitic))
        for tid, rx, _lits in self.regexes:
            for m in rx.finditer(joined):
                a, b = m.span()
                if b > a:
                    out.append(_Occurrence(tid, token_at(a + 1), token_at(b - 1), ""))
        out.sort(key=lambda o: (o.first, o.term))
        return out


# --- the matcher -------------------------------------------------------------------------------

# A watchlist as match_own reads it: name, feeds, fields, (term id, label) of its `any` terms
# when it has no other (else None), whether two of those share a label.
_Plan = tuple[
    str,
    frozenset[str] | None,
    tuple[Field, ...] | None,
    tuple[tuple[int, str], ...] | None,
    bool,
    dict[int, str],
]


@dataclass(frozen=True, slots=True)
class _Watchlist:
    spec: WatchlistSpec
    any: tuple[int, ...]
    all: tuple[int, ...]
    none: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class Hit:
    """One occurrence of a term in the original text of a field."""

    term: str
    field: Field
    start: int
    end: int
    text: str  # the original text of the span
    clitic: str  # e.g. "و+ب", "ل+ال", "" for none
    boilerplate: str | None = None  # the reason when the occurrence is in removed text

    def to_json(self) -> dict[str, Any]:
        return {
            "term": self.term,
            "field": self.field,
            "start": self.start,
            "end": self.end,
            "text": self.text,
            "clitic": self.clitic,
            "boilerplate": self.boilerplate,
        }


@dataclass(frozen=True, slots=True)
class WatchlistExplanation:
    watchlist: str
    matched: bool
    terms: tuple[str, ...]  # the matched terms, as in Match.terms
    reasons: tuple[str, ...]  # why not (empty when matched)
    hits: tuple[Hit, ...]

    def to_json(self) -> dict[str, Any]:
        return {
            "watchlist": self.watchlist,
            "matched": self.matched,
            "terms": list(self.terms),
            "reasons": list(self.reasons),
            "hits": [h.to_json() for h in self.hits],
        }


@dataclass(frozen=True, slots=True)
class FieldExplanation:
    field: Field
    text: str
    normalized: str  # the folded words of the story's own text, space-separated
    removed: tuple[dict[str, Any], ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {
            "field": self.field,
            "normalized": self.normalized,
            "boilerplate": list(self.removed),
        }


@dataclass(frozen=True, slots=True)
class Explanation:
    matches: tuple[Match, ...]
    fields: tuple[FieldExplanation, ...]
    watchlists: tuple[WatchlistExplanation, ...]
    feed: str | None = None
    notes: tuple[str, ...] = field(default=())

    def to_json(self) -> dict[str, Any]:
        """`matches` is the public contract of `monitor match --json`; the rest is detail."""
        return {
            "matches": [{"watchlist": m.watchlist, "terms": list(m.terms)} for m in self.matches],
            "feed": self.feed,
            "fields": [f.to_json() for f in self.fields],
            "watchlists": [w.to_json() for w in self.watchlists],
        }


class Matcher:
    """Compiled watchlists. Build with `compile_watchlists`; immutable after that."""

    def __init__(self, specs: Sequence[WatchlistSpec]) -> None:
        self._terms: list[_Term] = []
        ids: dict[TermSpec, int] = {}
        self._views: dict[View, _ViewIndex] = {}
        wls = []
        for spec in specs:

            def tid(term: TermSpec) -> int:
                if term not in ids:
                    t = _build_term(term)
                    ids[term] = len(self._terms)
                    self._terms.append(t)
                    if t.words or t.regex is not None:
                        if t.view not in self._views:
                            self._views[t.view] = _ViewIndex(t.view, self._terms)
                        self._views[t.view].add(ids[term], t)
                return ids[term]

            wls.append(
                _Watchlist(
                    spec,
                    tuple(tid(t) for t in spec.any),
                    tuple(tid(t) for t in spec.all),
                    tuple(tid(t) for t in spec.none),
                )
            )
        for v in self._views.values():
            v.finish()
        self._watchlists = tuple(wls)
        # A watchlist can only match when one of its any/all terms is found: index them by term,
        # so that an item costs the watchlists it touches, not all of them.
        self._by_term: dict[int, list[int]] = {}
        for i, w in enumerate(wls):
            for t in dict.fromkeys((*w.any, *w.all)):
                self._by_term.setdefault(t, []).append(i)
        self._scoped = any(w.spec.feeds for w in wls)
        # What match_own needs of each watchlist, looked up once: the feeds (None: any feed),
        # the fields (None: all of them), and for a watchlist of `any` terms only (most of
        # them), its terms with their labels and whether two share a label.
        self._plans: list[_Plan] = []
        for w in wls:
            labels = tuple(self._terms[t].label for t in w.any)
            simple = bool(w.any) and not w.all and not w.none
            self._plans.append(
                (
                    w.spec.name,
                    frozenset(w.spec.feeds) if w.spec.feeds else None,
                    None if len(w.spec.fields) == len(ALL_FIELDS) else w.spec.fields,
                    tuple(zip(w.any, labels, strict=True)) if simple else None,
                    len(set(labels)) < len(labels),
                    dict(zip(w.any, labels, strict=True)) if simple else {},
                )
            )
        self._fields = tuple(f for f in ALL_FIELDS if any(f in w.spec.fields for w in wls))

    @property
    def term_count(self) -> int:
        return len(self._terms)

    def _in_scope(self, feed: str | None) -> list[_Watchlist]:
        return [
            w for w in self._watchlists if feed is None or not w.spec.feeds or feed in w.spec.feeds
        ]

    def _decide(self, w: _Watchlist, found: set[int]) -> tuple[bool, tuple[str, ...]]:
        any_hits = [t for t in w.any if t in found]
        ok = (
            (bool(w.any) or bool(w.all))
            and (not w.any or bool(any_hits))
            and all(t in found for t in w.all)
            and not any(t in found for t in w.none)
        )
        if not ok:
            return False, ()
        terms = dict.fromkeys(self._terms[t].label for t in (*any_hits, *w.all))
        return True, tuple(terms)

    def match(
        self,
        title: str,
        summary: str,
        content: str,
        *,
        feed: str | None = None,
        boilerplate: Sequence[str] = (),
    ) -> tuple[Match, ...]:
        """The watchlists this item matches, in config order, each with its matched terms.
        `feed` None means: ignore the watchlists' feed scopes (ad-hoc text)."""
        raw = {"title": title, "summary": summary, "content": content}
        own: dict[Field, Normalized] = {}
        for fld in self._fields:
            if raw[fld]:
                text = raw[fld] if fld == "title" else strip_boilerplate(raw[fld], boilerplate).text
                own[fld] = Normalized(text)
        return self.match_own(own, feed=feed)

    @property
    def fields(self) -> tuple[Field, ...]:
        """The fields some watchlist reads: `match_own` looks at no other."""
        return self._fields

    def match_own(
        self, own: Mapping[Field, Normalized], *, feed: str | None = None
    ) -> tuple[Match, ...]:
        """`match` on fields already prepared: `own[f]` holds the story's own text of field f
        (the title as is; summary and content with `strip_boilerplate(...).text`), absent when
        the field is empty. Lets a caller that also fingerprints the item (analyze) strip and
        normalize each field once; the result is `match`'s."""
        per_field: dict[str, set[int]] = {}
        for fld in self._fields:
            text = own.get(fld)
            if text is None:
                continue
            found: set[int] = set()
            for view, idx in self._views.items():
                found |= idx.hits(joined_words(text.view(view)))
            if found:
                per_field[fld] = found
        if not per_field:
            return ()
        everywhere = (
            next(iter(per_field.values()))
            if len(per_field) == 1
            else set().union(*per_field.values())
        )
        by_term = self._by_term
        candidates = sorted({i for t in everywhere if t in by_term for i in by_term[t]})
        out = []
        for i in candidates:
            name, feeds, fields, any_labels, shared_labels, label_of = self._plans[i]
            if feed is not None and feeds is not None and feed not in feeds:
                continue
            if fields is None:
                found = everywhere
            else:
                found = set().union(*(per_field[f] for f in fields if f in per_field))
            if any_labels is not None:  # `any` terms only: _decide's answer, sooner
                common = found.intersection(label_of)
                if len(common) == 1:  # the usual case: one of its terms (C set operations)
                    out.append(Match(name, (label_of[common.pop()],)))
                    continue
                labels = [label for t, label in any_labels if t in common]
                if labels:
                    terms = tuple(dict.fromkeys(labels)) if shared_labels else tuple(labels)
                    out.append(Match(name, terms))
                continue
            ok, terms = self._decide(self._watchlists[i], found)
            if ok:
                out.append(Match(name, terms))
        return tuple(out)

    def explain(
        self,
        title: str,
        summary: str,
        content: str,
        *,
        feed: str | None = None,
        boilerplate: Sequence[str] = (),
    ) -> Explanation:
        """What `match` decides, and why: spans, clitics, boilerplate, reasons for non-matches."""
        raw: dict[Field, str] = {"title": title, "summary": summary, "content": content}
        fields: list[FieldExplanation] = []
        own: dict[Field, list[tuple[int, Hit]]] = {f: [] for f in ALL_FIELDS}
        noise: dict[Field, list[tuple[int, Hit]]] = {f: [] for f in ALL_FIELDS}
        for fld in ALL_FIELDS:
            text = raw[fld]
            if not text:
                continue
            stripped = (
                Stripped(text, ((0, len(text)),), ())
                if fld == "title"
                else strip_boilerplate(text, boilerplate)
            )
            fields.append(
                FieldExplanation(
                    fld,
                    text,
                    " ".join(words(stripped.text)),
                    tuple(
                        {
                            "start": r.start,
                            "end": r.end,
                            "reason": r.reason,
                            "marker": r.marker,
                            "text": text[r.start : r.end],
                        }
                        for r in stripped.removed
                    ),
                )
            )
            for view, idx in self._views.items():
                toks = tokenize(text, view)
                kept = [t for t in toks if stripped.removed_at(t.start) is None]
                for o in idx.occurrences([t.norm for t in kept]):
                    own[fld].append((o.term, self._hit(o, fld, text, kept, None)))
                for r in stripped.removed:
                    part = [t for t in toks if r.start <= t.start < r.end]
                    for o in idx.occurrences([t.norm for t in part]):
                        noise[fld].append((o.term, self._hit(o, fld, text, part, r.reason)))
        wl_out = []
        matches = []
        scoped = {id(w) for w in self._in_scope(feed)}
        for w in self._watchlists:
            spec = w.spec
            mine = {*w.any, *w.all, *w.none}
            hits = [h for f in spec.fields for t, h in own[f] if t in mine]
            found = {t for f in spec.fields for t, _ in own[f] if t in mine}
            ok, terms = self._decide(w, found)
            reasons: list[str] = []
            if id(w) not in scoped:
                ok, terms = False, ()
                reasons.append(f"feed '{feed}' is not in this watchlist's feeds")
            elif not ok:
                reasons.extend(self._why_not(w, found, spec.fields, own, noise))
            if ok:
                matches.append(Match(spec.name, terms))
            shown = hits + [h for f in spec.fields for t, h in noise[f] if t in mine]
            shown.sort(key=lambda h: (ALL_FIELDS.index(h.field), h.start))
            wl_out.append(WatchlistExplanation(spec.name, ok, terms, tuple(reasons), tuple(shown)))
        return Explanation(tuple(matches), tuple(fields), tuple(wl_out), feed)

    def _hit(
        self, o: _Occurrence, fld: Field, text: str, toks: list[Token], reason: str | None
    ) -> Hit:
        a, b = toks[o.first].start, toks[o.last].end
        return Hit(self._terms[o.term].label, fld, a, b, text[a:b], o.clitic, reason)

    def _why_not(
        self,
        w: _Watchlist,
        found: set[int],
        flds: tuple[Field, ...],
        own: dict[Field, list[tuple[int, Hit]]],
        noise: dict[Field, list[tuple[int, Hit]]],
    ) -> list[str]:
        in_noise: dict[int, str] = {}
        for f in flds:
            for t, h in noise[f]:
                in_noise.setdefault(t, h.boilerplate or "boilerplate")
        elsewhere: dict[int, list[str]] = {}
        for f in ALL_FIELDS:
            if f not in flds:
                for t in dict.fromkeys(t for t, _ in own[f]):
                    elsewhere.setdefault(t, []).append(f)

        def absent(tid: int) -> str:
            label = self._terms[tid].label
            if tid in elsewhere:
                return f"'{label}' only in {', '.join(elsewhere[tid])}, outside {list(flds)}"
            if tid in in_noise:
                return f"'{label}' only in boilerplate ({in_noise[tid]})"
            return f"'{label}' absent"

        reasons = []
        if not w.any and not w.all:
            reasons.append("the watchlist has no any or all terms")
        if w.any and not any(t in found for t in w.any):
            reasons.append("no `any` term found: " + "; ".join(absent(t) for t in w.any))
        reasons.extend("`all` term missing: " + absent(t) for t in w.all if t not in found)
        reasons.extend(
            f"`none` term present: '{self._terms[t].label}'" for t in w.none if t in found
        )
        return reasons


def compile_watchlists(specs: Sequence[WatchlistSpec]) -> Matcher:
    """Compile once (at config load); match many. Terms must have passed `term_problems`."""
    return Matcher(specs)


def render_explanation(expl: Explanation, *, width: int = 300) -> str:
    """The explanation for humans (`monitor match` without --json). The normalized text is cut
    at `width` characters and occurrences in boilerplate are counted, not listed; --json has
    everything."""
    lines: list[str] = []
    if expl.feed:
        lines.append(f"feed: {expl.feed}")
    for f in expl.fields:
        norm = f.normalized if len(f.normalized) <= width else f.normalized[:width] + " …"
        lines.append(f"[{f.field}] normalized: {norm}")
        for r in f.removed:
            snippet = " ".join(str(r["text"]).split())
            if len(snippet) > 70:
                snippet = snippet[:67] + "..."
            lines.append(f"  boilerplate ({r['reason']}): {snippet}")
    for w in expl.watchlists:
        verdict = f"MATCH: {', '.join(w.terms)}" if w.matched else "no match"
        lines.append(f"{w.watchlist}: {verdict}")
        noise: dict[str, int] = {}
        for h in w.hits:
            if h.boilerplate:
                key = f"{h.term!r} in {h.boilerplate}"
                noise[key] = noise.get(key, 0) + 1
                continue
            clitic = f" (clitic {h.clitic})" if h.clitic else ""
            lines.append(f"  {h.term!r} at {h.field}[{h.start}:{h.end}] {h.text!r}{clitic}")
        if noise:
            lines.append(
                "  ignored, in boilerplate: " + ", ".join(f"{k} ×{n}" for k, n in noise.items())
            )
        lines.extend(f"  why not: {r}" for r in w.reasons)
    return "\n".join(lines)
