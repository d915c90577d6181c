"""Arabic text normalization, tokenization and boilerplate stripping. Pure: no I/O, no clock.

Shared by matching (match.py) and near-duplicate detection (dedup.py).

Three views of the same text, each a function str -> str:

- `normalize` (folded, the default for matching and fingerprints): NFKC; delete harakat,
  superscript alef, Quranic marks, tatweel, and every invisible format character (zero-width
  joiners and spaces, bidi marks and isolates, soft hyphen, BOM); fold أ إ آ ٱ → ا, ى ی → ي,
  ة → ه, ک → ك, ھ → ه, ؤ ئ → ء, Arabic-Indic and Persian digits → ASCII; casefold.
- `normalize_strict`: the same deletions and the same codepoint variants (ک ھ ٱ, digits), but
  the spelling distinctions that carry meaning stay: ى ≠ ي, أ إ آ ≠ ا, ة ≠ ه, ؤ ئ ≠ ء. Persian
  ی becomes ي inside a word and ى at its end (where it is drawn dotless). Casefolded.
- `normalize_exact`: `normalize_strict` without the casefold (Latin case must match).

Words: a word of the original text is a run of word characters (`\\w`) together with the
characters a view deletes (harakat, tatweel, invisible marks), so that مُوسْكُو and a bidi mark
inside موسكو do not split the word. `words(text)` is the fast path (normalized words only);
`tokenize(text)` gives the same words with their span in the original text, for explain.
Both produce the same sequence of words by construction. On text already normalized,
`split_words` gives the words and `joined_words` the string matching scans; `Normalized` holds a
text's views, each computed once, for callers that share them (analyze).

The character pass of `normalize` and `normalize_exact` (deletions and foldings) and
`joined_words` run in C (monitor/_fastprint.c) where the accelerator was built; the Python
functions are the reference, and tests/test_text.py compares both on every code point.

Boilerplate: `strip_boilerplate` finds navigation noise and other stories' text in a field (tag
lists, "اقرأ أيضا" sections, related headlines, source and credit lines, nav words) and returns
the story's own text with the removed parts and the reason for each. See docs/matching.md.
"""

from __future__ import annotations

import re
import unicodedata
from array import array
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from typing import Literal

try:  # the optional C accelerator (see monitor.dedup): normalization's character pass
    from monitor import _fastprint
except ImportError:  # pragma: no cover - a machine without a compiler: the Python path
    _fastprint = None  # type: ignore[assignment]  # the module or None; callers test for None
if not hasattr(_fastprint, "fold"):  # pragma: no cover - a build older than this module
    _fastprint = None  # type: ignore[assignment]

__all__ = [
    "BUILTIN_RULES",
    "Normalized",
    "Removed",
    "Stripped",
    "Token",
    "View",
    "fold_strict",
    "joined_words",
    "letters",
    "normalize",
    "normalize_exact",
    "normalize_strict",
    "normalizer",
    "split_words",
    "strip_boilerplate",
    "tokenize",
    "words",
    "words_by_view",
]

View = Literal["folded", "strict", "exact"]

# --- character tables --------------------------------------------------------------------------

# Arabic marks: harakat and tanween (incl. combining maddah/hamza, which NFKC composes first),
# superscript alef, Quranic annotation marks, extended-A marks.
_ARABIC_MARKS: tuple[tuple[int, int], ...] = (
    (0x0610, 0x061A),
    (0x064B, 0x065F),
    (0x0670, 0x0670),
    (0x06D6, 0x06DC),
    (0x06DF, 0x06E8),
    (0x06EA, 0x06ED),
    (0x08D3, 0x08FF),
)
_TATWEEL = (0x0640, 0x0640)
# Every format character (Unicode category Cf): zero-width space/joiners, LRM/RLM, ALM,
# embeddings, overrides, isolates, soft hyphen, BOM, Arabic number signs, tags.
# tests/test_text.py checks this list against unicodedata.
_FORMAT_CHARS: tuple[tuple[int, int], ...] = (
    (0x00AD, 0x00AD),
    (0x0600, 0x0605),
    (0x061C, 0x061C),
    (0x06DD, 0x06DD),
    (0x070F, 0x070F),
    (0x0890, 0x0891),
    (0x08E2, 0x08E2),
    (0x180E, 0x180E),
    (0x200B, 0x200F),
    (0x202A, 0x202E),
    (0x2060, 0x2064),
    (0x2066, 0x206F),
    (0xFEFF, 0xFEFF),
    (0xFFF9, 0xFFFB),
    (0x110BD, 0x110BD),
    (0x110CD, 0x110CD),
    (0x13430, 0x13438),
    (0x1BCA0, 0x1BCA3),
    (0x1D173, 0x1D17A),
    (0xE0001, 0xE0001),
    (0xE0020, 0xE007F),
)
_DELETED_RANGES = (*_ARABIC_MARKS, _TATWEEL, *_FORMAT_CHARS)

_DIGITS = {0x0660 + i: str(i) for i in range(10)} | {0x06F0 + i: str(i) for i in range(10)}

# Codepoint variants of one letter (Persian/Urdu keyboards, Quranic wasla): folded in every view.
_VARIANTS = {
    "ک": "ك",  # keheh
    "ڪ": "ك",  # swash kaf
    "ھ": "ه",  # heh doachashmee
    "ہ": "ه",  # heh goal
    "ۀ": "ه",  # heh with yeh above
    "ٱ": "ا",  # alef wasla
    "ٲ": "ا",
    "ٳ": "ا",
    "ٵ": "ا",
}
# Spelling distinctions that the folded view drops and the strict view keeps.
_SPELLING = {
    "أ": "ا",
    "إ": "ا",
    "آ": "ا",
    "ى": "ي",
    "ی": "ي",  # Persian yeh
    "ة": "ه",
    "ۃ": "ه",  # teh marbuta goal
    "ؤ": "ء",
    "ئ": "ء",
}

_BMP_DELETED = tuple(r for r in _DELETED_RANGES if r[1] <= 0xFFFF)
_FOLD_PAIRS: tuple[tuple[str, str], ...] = (
    *_SPELLING.items(),
    *_VARIANTS.items(),
    *((chr(cp), d) for cp, d in _DIGITS.items()),
)
_SPELLING_PAIRS: tuple[tuple[str, str], ...] = tuple(_SPELLING.items())
_STRICT_PAIRS: tuple[tuple[str, str], ...] = (
    *_VARIANTS.items(),
    *((chr(cp), d) for cp, d in _DIGITS.items()),
    ("ۃ", "ة"),
)


def _char_class(ranges: Sequence[tuple[int, int]]) -> str:
    return "".join(
        re.escape(chr(lo)) if lo == hi else f"{re.escape(chr(lo))}-{re.escape(chr(hi))}"
        for lo, hi in ranges
    )


# Deleted characters and combining marks count as part of a word in the original text. Format
# characters outside the BMP (in practice only emoji tag sequences) are not deleted: they
# separate words, in both paths, and keep the common path fast (a BMP class is a bitmap).
def _compat_word_chars() -> tuple[tuple[int, int], ...]:
    """BMP characters that are not word characters but whose NFKC form has one (™ → TM,
    ﷼ → ریال, ① → 1): the original-text tokenizer must treat them as word characters to give
    the same words as normalizing the whole text first. ~20 ms at import."""
    cps = [
        cp
        for cp in range(0x80, 0x10000)
        if not _TOKEN_RE.match(chr(cp)) and _TOKEN_RE.search(unicodedata.normalize("NFKC", chr(cp)))
    ]
    ranges: list[tuple[int, int]] = []
    for cp in cps:
        if ranges and ranges[-1][1] == cp - 1:
            ranges[-1] = (ranges[-1][0], cp)
        else:
            ranges.append((cp, cp))
    return tuple(ranges)


# Arabic letters (after NFKC: no presentation forms). A token is a run of Arabic letters or a run
# of other word characters, so "شركةTesla" (no space between scripts) is two words.
_ARABIC_LETTERS = (
    "\u0620-\u064a\u066e-\u06d3\u06d5\u06ee\u06ef\u06fa-\u06fc\u06ff\u0750-\u077f\u08a0-\u08c9"
)
_TOKEN_RE = re.compile(f"[{_ARABIC_LETTERS}]+|[^\\W{_ARABIC_LETTERS}]+")
_IN_WORD = _char_class((*_BMP_DELETED, (0x0300, 0x036F), *_compat_word_chars()))
_WORD_RUN_RE = re.compile(rf"[\w{_IN_WORD}]+")
_DELETE_RE = re.compile(f"[{_char_class(_BMP_DELETED)}]+")
_FINAL_FARSI_YEH_RE = re.compile(r"\u06cc(?!\w)")


def _nfkc(s: str) -> str:
    """NFKC, skipped when the text already is (the quick check costs ~1/40 of a full pass)."""
    if "\xa0" in s:  # the one compatibility character common in web text
        s = s.replace("\xa0", " ")
    if not unicodedata.is_normalized("NFKC", s):
        s = unicodedata.normalize("NFKC", s)
    return s


def _compose(s: str) -> str:
    """NFKC and the deletions common to every view."""
    return _DELETE_RE.sub("", _nfkc(s))


# The character pass of `normalize` and `normalize_exact` (deletions, then the codepoint
# foldings, then casefold) in one C loop over a table (monitor/_fastprint.c: fold), where the
# accelerator is built: ~5x faster than a regex pass and 40 str.replace passes. Every fold maps
# one BMP character to one character that no other fold or deletion touches, so one pass over
# a table gives what the passes in turn give; str.casefold() still runs when some character
# needs it (Latin-1 and other cased letters), since full case folding may change the length.
# _normalize_py and _normalize_exact_py are the reference (tests/test_text.py compares them on
# every code point), and the path without the accelerator.
_FOLD_DELETE = 0x80000000
_FOLD_CASED = 0x40000000


def _fold_table(pairs: Sequence[tuple[str, str]], *, casefold: bool) -> bytes:
    """The table of _fastprint.fold: BMP code point -> output code point | flags."""
    table = array("I", range(0x10000))
    for lo, hi in _BMP_DELETED:
        for cp in range(lo, hi + 1):
            table[cp] = _FOLD_DELETE
    for a, b in pairs:
        table[ord(a)] = ord(b)
    if casefold:
        for cp in range(0x10000):
            out = table[cp]
            if out & _FOLD_DELETE:
                continue
            ch = chr(out)
            folded = ch.casefold()
            if folded != ch:
                table[cp] = ord(folded) if ch.isascii() else out | _FOLD_CASED
    return table.tobytes()


if _fastprint is not None:
    _FOLDED_TABLE = _fold_table(_FOLD_PAIRS, casefold=True)  # ~8 ms at import
    _EXACT_TABLE = _fold_table(_STRICT_PAIRS, casefold=False)


def _normalize_py(s: str) -> str:
    s = _compose(s)
    for a, b in _FOLD_PAIRS:  # str.replace is a C pass; far faster than str.translate(dict)
        s = s.replace(a, b)
    return s.casefold()


def normalize(s: str) -> str:
    """The folded view: what matching and fingerprints compare."""
    if s.isascii():
        return s.casefold()
    if _fastprint is None:
        return _normalize_py(s)
    s, cased = _fastprint.fold(_nfkc(s), _FOLDED_TABLE)
    return s.casefold() if cased else s


def _farsi_yeh(s: str) -> str:
    """Persian yeh: ى ending a word (where it is drawn dotless), ي inside one."""
    if "\u06cc" in s:
        s = _FINAL_FARSI_YEH_RE.sub("ى", s).replace("\u06cc", "ي")
    return s


def _normalize_exact_py(s: str) -> str:
    s = _compose(s)
    for a, b in _STRICT_PAIRS:
        s = s.replace(a, b)
    return _farsi_yeh(s)


def normalize_exact(s: str) -> str:
    """Invisible characters, diacritics and codepoint variants removed; spelling and case kept."""
    if s.isascii():
        return s
    if _fastprint is None:
        return _normalize_exact_py(s)
    return _farsi_yeh(_fastprint.fold(_nfkc(s), _EXACT_TABLE)[0])


def normalize_strict(s: str) -> str:
    """`normalize_exact`, casefolded: ى ≠ ي, أ ≠ ا, ة ≠ ه, but Latin case does not matter."""
    return normalize_exact(s).casefold()


_VIEWS: dict[View, Callable[[str], str]] = {
    "folded": normalize,
    "strict": normalize_strict,
    "exact": normalize_exact,
}


def normalizer(view: View) -> Callable[[str], str]:
    return _VIEWS[view]


@dataclass(frozen=True, slots=True)
class Token:
    """One normalized word and the span [start, end) of the original text it came from."""

    norm: str
    start: int
    end: int


def words(text: str, view: View = "folded") -> list[str]:
    """The normalized words of `text`, in order (the fast path: no spans)."""
    return _TOKEN_RE.findall(_VIEWS[view](text))


def fold_strict(strict: str) -> str:
    """The folded view from the strict view: normalize(s) == fold_strict(normalize_strict(s)).
    Lets a caller that needs both views normalize once."""
    for a, b in _SPELLING_PAIRS:
        strict = strict.replace(a, b)
    return strict


def words_by_view(text: str, views: Collection[View]) -> dict[View, list[str]]:
    """`words(text, view)` for several views, normalizing once."""
    if len(views) == 1:
        (view,) = views
        return {view: words(text, view)}
    exact = normalize_exact(text)
    strict = exact.casefold()
    texts: dict[View, str] = {"exact": exact, "strict": strict, "folded": fold_strict(strict)}
    return {v: _TOKEN_RE.findall(texts[v]) for v in views}


def split_words(normalized: str) -> list[str]:
    """The words of an already normalized text: words(text, view) is
    split_words(normalizer(view)(text))."""
    return _TOKEN_RE.findall(normalized)


def joined_words(normalized: str) -> str:
    """The words of an already normalized text joined by single spaces, with a space at each
    end (' w1 w2 ', '  ' for none): what watchlist matching scans. Equals
    ' ' + ' '.join(split_words(normalized)) + ' ' (in C where the accelerator is built)."""
    if _fastprint is not None:
        return _fastprint.joined(normalized)
    return " " + " ".join(_TOKEN_RE.findall(normalized)) + " "


class Normalized:
    """A text and its normalized views, each computed once, when first asked for: lets
    matching, story fingerprints and alerts share the normalization of a field (analyze).
    `view(v)` equals `normalizer(v)(text)`; several views come from one normalization, as in
    `words_by_view`."""

    __slots__ = ("_views", "text")

    def __init__(self, text: str) -> None:
        self.text = text
        self._views: dict[View, str] = {}

    def view(self, view: View) -> str:
        views = self._views
        s = views.get(view)
        if s is None:
            if view == "folded":
                strict = views.get("strict")
                s = normalize(self.text) if strict is None else fold_strict(strict)
            elif view == "strict":
                s = self.view("exact").casefold()
            else:
                s = normalize_exact(self.text)
            views[view] = s
        return s

    @property
    def folded(self) -> str:
        return self.view("folded")


def tokenize(text: str, view: View = "folded") -> list[Token]:
    """The same words as `words(text, view)`, each with its span in `text`."""
    fn = _VIEWS[view]
    out: list[Token] = []
    for m in _WORD_RUN_RE.finditer(text):
        for w in _TOKEN_RE.findall(fn(m.group())):
            out.append(Token(w, m.start(), m.end()))
    return out


def letters(word: str) -> int:
    """How many letters a normalized word has (digits and marks excluded)."""
    return sum(1 for ch in word if ch.isalpha())


# --- boilerplate -------------------------------------------------------------------------------

_LOOSE_SKIP = f"[{_IN_WORD}]*"
# Spelling variants a marker's letter may take in real text (markers are folded first).
_LOOSE_LETTER = {
    "ا": "[اأإآٱ]",
    "ي": "[يىی]",
    "ه": "[هةھۃ]",
    "ك": "[كک]",
    "ء": "[ءؤئ]",
}


def _loose_char(ch: str) -> str:
    if ch in _LOOSE_LETTER:
        return _LOOSE_LETTER[ch]
    if ch.isascii() and ch.isalpha():
        return f"[{ch.lower()}{ch.upper()}]"  # no re.IGNORECASE: it doubles the cost
    return re.escape(ch)


def _loose(marker: str) -> str:
    """A regex for `marker` that tolerates diacritics, tatweel, invisible marks, hamza, yeh and
    teh marbuta spelling, Latin case, and any run of spaces between words."""
    return r"\s+".join(
        _LOOSE_SKIP.join(_loose_char(ch) for ch in word) + _LOOSE_SKIP
        for word in normalize(marker).split()
    )


def _alternation(markers: Sequence[str]) -> str:
    return "|".join(_loose(m) for m in sorted(markers, key=len, reverse=True))


@dataclass(frozen=True, slots=True)
class Removed:
    """A part of a field that is not the story's own text, and why."""

    start: int
    end: int
    reason: str  # tag-list, read-also, related, source-line, nav, teaser, feed-marker
    marker: str  # the rule, or the user's marker, that found it


@dataclass(frozen=True, slots=True)
class Stripped:
    """A field split into the story's own text (`kept` spans) and the `removed` parts."""

    source: str
    kept: tuple[tuple[int, int], ...]
    removed: tuple[Removed, ...]

    @property
    def text(self) -> str:
        """The story's own text: the kept spans joined by line breaks."""
        return "\n".join(self.source[a:b].strip() for a, b in self.kept)

    def removed_at(self, pos: int) -> Removed | None:
        """The removed part covering position `pos` of the source, if any."""
        for r in self.removed:
            if r.start <= pos < r.end:
                return r
        return None


# Built-in markers, shared by every outlet; written in any spelling, matched loosely.
TAG_LIST = (
    "كلمات دلالية",
    "الكلمات الدلالية",
    "كلمات مفتاحية",
    "الكلمات المفتاحية",
    "الوسوم",
    "وسوم",
    "Tags",
)
RELATED = (
    "مقالات مشابهة",
    "مقالات ذات صلة",
    "أخبار ذات صلة",
    "مواضيع ذات صلة",
    "موضوعات ذات صلة",
    "أخبار متعلقة",
    "مقالات متعلقة",
    "قد يهمك أيضا",
    "قد يهمك",
    "قد يعجبك أيضا",
    "الأكثر قراءة",
    "المزيد من الأخبار",
    "Related",
    "Related articles",
    "More stories",
)
READ_ALSO = (
    "اقرأ أيضا",
    "اقرأ كذلك",
    "طالع أيضا",
    "شاهد أيضا",
    "اقرأ المزيد",
    "Read also",
    "See also",
    "Read more",
)
SOURCE_LINE = ("المصدر", "مصدر الخبر", "إعداد", "تحرير", "ترجمة", "Source", "Credit")
NAV_WORDS = (
    "تابع",
    "تابعونا",
    "إعلان",
    "إعلانات",
    "اقرأ المزيد",
    "شارك",
    "مشاركة",
    "طباعة",
    "أ ف ب",
    "رويترز",
    "وكالات",
    "د ب أ",
    "أ ش أ",
    "الأناضول",
    "فرانس24",
    "فرانس 24",
    "Advertisement",
    "Share",
    "AFP",
    "Reuters",
)
BUILTIN_RULES: dict[str, tuple[str, ...]] = {
    "tag-list": TAG_LIST,
    "related": RELATED,
    "read-also": READ_ALSO,
    "source-line": SOURCE_LINE,
    "nav": NAV_WORDS,
}

_HEAD_END = r"(?=[^\w\n]*$)"  # nothing but punctuation after the marker on its line
# One pass that consumes every line and classifies its start: a regex anchored at line starts
# costs one attempt per line, not one per character.
_LINE_RE = re.compile(
    r"(?m)^[^\w\n]*(?:"
    rf"(?P<tag>(?:{_alternation(TAG_LIST)})(?:{_HEAD_END}|\s*[:：]))"
    rf"|(?P<related>(?:{_alternation(RELATED)})(?:{_HEAD_END}|\s*[:：]))"
    rf"|(?P<readsec>(?:{_alternation(READ_ALSO)}){_HEAD_END})"
    rf"|(?P<readline>(?:{_alternation(READ_ALSO)})[^\w\n]*\w)"
    rf"|(?P<source>(?:{_alternation(SOURCE_LINE)})\s*[:：])"
    rf"|(?P<nav>(?:(?:{_alternation(NAV_WORDS)})(?!\w)[^\w\n]*)+$)"
    r"|(?P<footer>The post .{1,300} appeared first on "
    rf"|{_loose('ظهرت المقالة')}[^\n]{{1,300}}{_loose('أولا على')})"
    r")?[^\n]*"
)
_GROUP_RULE = {
    "tag": ("tag-list", "tag list", True),
    "related": ("related", "related headlines", True),
    "readsec": ("read-also", "read-also section", True),
    "readline": ("read-also", "read-also link", False),
    "source": ("source-line", "source line", False),
    "nav": ("nav", "navigation words", False),
    "footer": ("source-line", "feed footer", False),
}


def _first_chars(markers: Sequence[str]) -> str:
    """Every character a loose match (`_loose`) of one of `markers` can start with."""
    chars: set[str] = set()
    for marker in markers:
        first = _loose_char(normalize(marker).split()[0][0])
        chars.update(first[1:-1] if first.startswith("[") else first.replace("\\", ""))
    return "".join(sorted(chars))


# "... اقرأ المزيد" or "[…]" ending a summary. The lookahead (every character a match can
# start with) lets the search skip other positions in C instead of trying the alternation at
# each: the same matches, twice as fast.
_TRAILER_START = re.escape(_first_chars(READ_ALSO) + "[….")
_TRAILER_RE = re.compile(
    rf"(?=[{_TRAILER_START}])(?:(?:{_alternation(READ_ALSO)})|\[?(?:…|\.\.\.)\]?)[^\w]*\Z"
)
_BULLETS = "•▪●◦·►▸»-–*"

_USER_CACHE: dict[tuple[str, ...], re.Pattern[str] | None] = {}


def _user_re(markers: tuple[str, ...]) -> re.Pattern[str] | None:
    if markers not in _USER_CACHE:
        if len(_USER_CACHE) > 256:
            _USER_CACHE.clear()
        alts = "|".join(f"(?P<m{i}>{_loose(m)})" for i, m in enumerate(markers) if m.strip())
        _USER_CACHE[markers] = re.compile(rf"(?m)^[^\w\n]*(?:{alts})?[^\n]*") if alts else None
    return _USER_CACHE[markers]


def strip_boilerplate(text: str, extra_markers: Sequence[str] = ()) -> Stripped:
    """Split a field into the story's own text and the parts that are not, with reasons.

    Rules, on the original text, markers matched loosely (any diacritics, hamza or yeh spelling):
    1. A section heading (tag list, related headlines) at the start of a line, alone on it or
       followed by a colon, cuts from there to the end of the field: what follows is tags or
       other stories. A read-also marker alone on its line does the same (the embedded story).
    2. A user marker (`extra_markers`, per feed in the config) at the start of a line cuts from
       there to the end of the field, like rule 1.
    3. A line starting with a read-also marker followed by a headline is removed (that line).
    4. A line starting with a source or credit label and a colon ("المصدر: ...") is removed.
    5. A line made only of navigation words and agency credits ("تابع إعلان") is removed.
    6. WordPress footers ("The post ... appeared first on ...") are removed.
    7. Two or more bullet lines ending what is left are a list of other headlines (teasers).
    8. A trailing "اقرأ المزيد" / "Read more" / "[…]" ending what is left is removed.
    """
    if not text:
        return Stripped(text, (), ())
    removed: list[Removed] = []
    cuts: list[tuple[int, str, str]] = []
    for m in _LINE_RE.finditer(text):
        group = m.lastgroup
        if group is None:
            continue
        reason, name, to_end = _GROUP_RULE[group]
        if to_end:
            cuts.append((m.start(), reason, name))
        else:
            removed.append(Removed(m.start(), m.end(), reason, name))
    user = _user_re(tuple(extra_markers))
    if user is not None:
        for m in user.finditer(text):
            if m.lastgroup is not None:
                marker = extra_markers[int(m.lastgroup[1:])]
                cuts.append((m.start(), "feed-marker", marker))
    end = len(text)
    if cuts:
        cuts.sort()
        cuts = [c for i, c in enumerate(cuts) if i == 0 or c[0] > cuts[i - 1][0]]
        removed = [r for r in removed if r.start < cuts[0][0]]
        for (pos, reason, name), nxt in zip(cuts, [*cuts[1:], (end, "", "")], strict=True):
            removed.append(Removed(pos, nxt[0], reason, name))
        end = cuts[0][0]
    # 7. trailing bullet lines, walking back from the end of what is left.
    lines_end = end
    start_of_list = None
    count = 0
    while True:
        body = text[:lines_end].rstrip()
        nl = body.rfind("\n")
        line = body[nl + 1 :].lstrip()
        if not line or line[0] not in _BULLETS:
            break
        count += 1
        start_of_list = nl + 1 + (len(body[nl + 1 :]) - len(line))
        if nl < 0:
            break
        lines_end = nl
    if start_of_list is not None and count >= 2:
        removed.append(Removed(start_of_list, end, "teaser", "trailing headline list"))
        end = start_of_list
    # 8. a trailer ending the field.
    tail_from = max(0, end - 60)
    trailer = _TRAILER_RE.search(text, tail_from, end)
    if trailer and text[trailer.start() : trailer.end()].strip():
        removed.append(Removed(trailer.start(), trailer.end(), "read-also", "trailing read-more"))
    removed.sort(key=lambda r: (r.start, -r.end))
    kept: list[tuple[int, int]] = []
    pos = 0
    for r in removed:
        if r.start > pos:
            kept.append((pos, r.start))
        pos = max(pos, r.end)
    if pos < len(text):
        kept.append((pos, len(text)))
    kept = [(a, b) for a, b in kept if text[a:b].strip()]
    return Stripped(text, tuple(kept), tuple(removed))
