"""Required literals of a regular-expression term: strings one of which every match contains.

    required_literals(pattern, case_sensitive=...) -> frozenset[str] | None

Matching runs each regex term (RE2) over every field's words: about 5 µs a field for one short
alternation on Arabic news (`benchmarks/match.py`), as much as the automaton's pass for 10,000
plain terms. Most regexes a desk writes carry literal text (` (موسكو|كييف|بكين) `,
`وزير (الخارجية|الدفاع)`), so `_ViewIndex.hits` first asks whether the field holds one of the
pattern's required literals (`str.__contains__`, a C search) and runs RE2 only when it does.

Sound, not complete: None whenever it cannot be said safely, and then RE2 always runs. The
pattern is read with Python's own regex parser, which reads RE2's syntax the same way only for
a plain subset, so anything else is None: flags and named or special groups (`(?`), escapes
other than \\s \\d \\w \\b (either case) and escaped ASCII punctuation, POSIX classes (`[:`), and
`{,n}` (a repetition to Python, literal text to RE2). Then, over the parsed tree: a literal is
exact; a concatenation's exact strings are the product of its parts' (at most MAX_STRINGS); an
alternation's are the union of its branches'; a repetition at least once requires what its body
requires; anchors match the empty string; everything else (classes, '.', optional parts) is
unknown and ends a run of exact parts. Of the candidate sets found, the one whose shortest
string is longest wins. A case-insensitive pattern gets None when a literal has a cased letter.
`tests/test_prefilter.py` checks on random patterns that a text RE2 matches always passes.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from re import _constants as sre_c  # type: ignore[attr-defined]
from re import _parser as sre_parse  # type: ignore[attr-defined]
from typing import Any

MAX_STRINGS = 64  # exact strings kept for one part of a pattern
MIN_LENGTH = 2  # a required literal shorter than this filters nothing worth a search
_SAFE_ESCAPES = frozenset("sdwbSDWB")

Strings = frozenset[str]


def required_literals(pattern: str, *, case_sensitive: bool) -> Strings | None:
    """Strings one of which occurs in every text `pattern` matches (RE2 semantics), or None."""
    if not _plain(pattern):
        return None
    try:
        parsed = sre_parse.parse(pattern)
    except (re.error, RecursionError, OverflowError, ValueError):
        return None
    if parsed.state.flags & ~re.UNICODE.value:
        return None
    _, required = _sequence(list(parsed))
    if required is None or min(map(len, required)) < MIN_LENGTH:
        return None
    if not case_sensitive and any(ch.lower() != ch.upper() for s in required for ch in s):
        return None
    return required


def _plain(pattern: str) -> bool:
    """Whether `pattern` stays within the syntax Python's parser and RE2 read alike."""
    if "(?" in pattern or "[:" in pattern or "{," in pattern:
        return False
    i = 0
    while i < len(pattern):
        if pattern[i] == "\\":
            nxt = pattern[i + 1 : i + 2]
            if not nxt or not (nxt in _SAFE_ESCAPES or (nxt.isascii() and not nxt.isalnum())):
                return False
            i += 2
        else:
            i += 1
    return True


def _better(a: Strings | None, b: Strings | None) -> Strings | None:
    """The more selective of two candidate sets (None and sets holding "" are no candidates)."""
    if a is not None and "" in a:
        a = None
    if b is not None and "" in b:
        b = None
    if a is None or b is None:
        return a or b
    ka, kb = (min(map(len, a)), -len(a)), (min(map(len, b)), -len(b))
    return a if ka >= kb else b


def _product(a: Strings, b: Strings) -> Strings | None:
    if len(a) * len(b) > MAX_STRINGS:
        return None
    return frozenset(x + y for x in a for y in b)


def _sequence(items: Iterable[tuple[Any, Any]]) -> tuple[Strings | None, Strings | None]:
    """(exact, required) of parsed items in sequence: every string the sequence can match (a
    small finite set) or None; a set one of whose strings every match contains, or None."""
    run: Strings = frozenset({""})  # the exact strings of the current run of exact parts
    exact_all = True
    best: Strings | None = None
    for op, av in items:
        exact, required = _node(op, av)
        best = _better(best, required)
        if exact is not None:
            joined = _product(run, exact)
            if joined is not None:
                run = joined
                continue
            best = _better(best, run)  # too many strings: the run so far is a candidate
            run, exact_all = exact, False
            continue
        best = _better(best, run)  # an unknown part ends the run
        run, exact_all = frozenset({""}), False
    best = _better(best, run)
    return (run if exact_all else None), best


def _node(op: Any, av: Any) -> tuple[Strings | None, Strings | None]:
    if op is sre_c.LITERAL:
        s = frozenset({chr(av)})
        return s, s
    if op is sre_c.AT:
        return frozenset({""}), None
    if op is sre_c.SUBPATTERN:
        _group, add_flags, del_flags, sub = av
        if add_flags or del_flags:
            return None, None
        return _sequence(list(sub))
    if op is sre_c.BRANCH:
        results = [_sequence(list(branch)) for branch in av[1]]
        exacts = [e for e, _ in results]
        exact: Strings | None = None
        if all(e is not None for e in exacts):
            union = frozenset().union(*[e for e in exacts if e is not None])
            exact = union if len(union) <= MAX_STRINGS else None
        requireds = [_better(r, e) for e, r in results]
        required: Strings | None = None
        if all(r is not None for r in requireds):
            union = frozenset().union(*[r for r in requireds if r is not None])
            required = union if len(union) <= MAX_STRINGS else None
        return exact, required
    if op in (sre_c.MAX_REPEAT, sre_c.MIN_REPEAT) or op is getattr(
        sre_c, "POSSESSIVE_REPEAT", None
    ):
        low, high, sub = av
        exact, required = _sequence(list(sub))
        if low == 0:
            return (frozenset({""}) if high == 0 else None), None
        return (exact if low == high == 1 else None), _better(required, exact)
    return None, None
