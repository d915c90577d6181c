"""Near-duplicate story detection (monitor/dedup.py): real-shaped Arabic pairs, the index's
window and serialization. The evaluation on 300+ real labelled pairs is test_dedup_eval.py."""

from __future__ import annotations

import json
from array import array
from itertools import pairwise
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from monitor import dedup
from monitor.dedup import (
    Fingerprint,
    Lookup,
    StoryIndex,
    _conflicts,
    _Facts,
    _resync,
    _shingle_hashes,
    _word_hash,
    fingerprint,
    follow_up_reason,
)
from monitor.text import _TOKEN_RE, strip_boilerplate

if dedup.ACCELERATED:
    from monitor import _fastprint

SEED = (Path(__file__).resolve().parent.parent / "seeds/000_0023912365e1bf7c.txt").read_text(
    encoding="utf-8"
)
# The story as France24 published it: the seed up to the agency line.
FRANCE24 = SEED[: SEED.index("فرانس24/ أ ف ب")]
# The story the aggregator embedded after "إقرأ أيضاً:" (up to the related list).
EMBEDDED = SEED[SEED.index("زيلينسكي يدعو") : SEED.index("مقالات مشابهة")]
T0 = 1_711_540_000.0
HOUR = 3600.0

PARAS = [p for p in FRANCE24.split("\n") if p.strip() and "فرانس24" not in p]
# Wire copy at another outlet: a rewritten headline, the fifth paragraph dropped.
WIRE = "\n\n".join(PARAS[:4] + PARAS[5:])

STRIKE = (
    "قتل {n} مدنيين على الأقل الثلاثاء في غارات جوية استهدفت سوقا شعبية في مدينة {city} شمال "
    "غرب سوريا، بحسب ما أفاد المرصد السوري لحقوق الإنسان.\n\n"
    "وأوضح مدير المرصد رامي عبد الرحمن أن بين القتلى {k} أطفال، وأن عدد القتلى مرشح للارتفاع "
    "بسبب وجود جرحى في حالات خطرة.\n\n"
    "وتشهد المنطقة منذ أسابيع تصعيدا عسكريا من قوات النظام وحليفتها روسيا، رغم اتفاق خفض "
    "التصعيد الذي توصلت إليه تركيا وروسيا، وتسيطر هيئة تحرير الشام على الجزء الأكبر من "
    "المنطقة.\n\n"
    "وتسبب النزاع في سوريا منذ اندلاعه في 2011 بمقتل أكثر من 500 ألف شخص وبدمار هائل في "
    "البنى التحتية ونزوح وتشريد أكثر من نصف السكان داخل البلاد وخارجها."
)

CALL = (
    "أجرى وزير الجيوش الفرنسي سيباستيان لوكورنو اتصالا هاتفيا الأربعاء مع نظيره {who} "
    "لبحث التعاون في مكافحة الإرهاب، وفق ما أعلنت وزارته في بيان.\n\n" + "\n\n".join(PARAS[3:])
)


def fp(title: str, body: str, outlet: str, at: float = T0) -> Fingerprint:
    return fingerprint(title, body, outlet=outlet, at=at)


CASES = [
    # (first: title, body, outlet; second: title, body, outlet; same story?)
    (
        ("روسيا وفرنسا: اتصال بين وزيري الدفاع", FRANCE24, "france24"),
        ("وزير الدفاع الفرنسي يتصل بنظيره الروسي", SEED, "aggregator"),
        True,
    ),
    (
        ("وزير الدفاع الفرنسي يتصل بنظيره الروسي", SEED, "aggregator"),
        ("زيلينسكي يدعو الولايات المتحدة إلى تعزيز العقوبات", EMBEDDED, "skynews"),
        False,
    ),
    (
        ("روسيا وفرنسا: اتصال بين وزيري الدفاع", FRANCE24, "france24"),
        ("لوكورنو وشويغو يتحادثان للمرة الأولى منذ 2022", WIRE, "alarabia"),
        True,
    ),
    (
        ("مقتل 7 مدنيين بغارات على حلب", STRIKE.format(n=7, city="حلب", k=3), "skynews"),
        ("مقتل 12 مدنيا بغارات على إدلب", STRIKE.format(n=12, city="إدلب", k=5), "skynews"),
        False,
    ),
    (
        ("مقتل 7 مدنيين بغارات على حلب", STRIKE.format(n=7, city="حلب", k=3), "skynews"),
        ("مقتل 12 مدنيا بغارات على إدلب", STRIKE.format(n=12, city="إدلب", k=5), "alarabia"),
        False,
    ),
    (
        ("لوكورنو يتصل بشويغو", CALL.format(who="الروسي سيرغي شويغو"), "france24"),
        ("لوكورنو يتصل بأوستن", CALL.format(who="الأمريكي لويد أوستن"), "france24"),
        False,
    ),
    (
        ("روسيا وفرنسا: اتصال بين وزيري الدفاع", FRANCE24, "france24"),
        ("اتصال بين وزيري الدفاع الفرنسي والروسي", FRANCE24, "france24"),
        True,
    ),
]
IDS = [
    "seed-as-france24-published-vs-aggregator-copy-with-tags-and-read-also-same",
    "embedded-read-also-story-vs-aggregator-copy-of-seed-different",
    "wire-copy-rewritten-headline-dropped-paragraph-same",
    "same-template-different-city-and-numbers-same-outlet-different",
    "same-template-different-city-and-numbers-cross-outlet-different",
    "same-minister-two-different-calls-different",
    "same-outlet-republished-under-new-headline-same",
]


@pytest.mark.parametrize(("first", "second", "same"), CASES, ids=IDS)
def test_story_decision(
    first: tuple[str, str, str], second: tuple[str, str, str], same: bool
) -> None:
    index = StoryIndex()
    index.add("first", "story-1", fp(*first))
    decision = index.find(fp(*second, at=T0 + 2 * HOUR), T0 + 2 * HOUR)
    explained = index.explain(fp(*second, at=T0 + 2 * HOUR), T0 + 2 * HOUR)
    assert (decision is not None) == same, explained
    if decision is not None:
        assert decision.story_id == "story-1"
        assert decision.item_id == "first"
        assert decision.same_outlet == (first[2] == second[2])
        assert "containment" in decision.reason
        assert first[2] in decision.reason


def test_reason_names_the_matched_item_outlet_and_rule() -> None:
    index = StoryIndex()
    index.add("f24-1", "s1", fp("اتصال", FRANCE24, "France24"))
    d = index.find(fp("اتصال", SEED, "aggregator", T0 + HOUR), T0 + HOUR)
    assert d is not None
    assert d.containment > 0.9
    assert d.reason.startswith(f"containment {d.containment:.2f} with item f24-1 of France24")
    assert "cross-outlet ≥ 0.25" in d.reason


def test_find_does_not_add_and_best_candidate_wins() -> None:
    index = StoryIndex()
    index.add("a", "sa", fp("x", STRIKE.format(n=7, city="حلب", k=3), "skynews"))
    index.add("b", "sb", fp("y", FRANCE24, "france24"))
    probe = fp("z", WIRE, "alarabia", T0 + HOUR)
    assert index.find(probe, T0 + HOUR) is not None
    assert len(index) == 2
    d = index.find(probe, T0 + HOUR)
    assert d is not None
    assert d.story_id == "sb"


def test_window_old_items_do_not_match_and_expire_frees_them() -> None:
    index = StoryIndex(window=48 * HOUR)
    index.add("old", "s-old", fp("x", FRANCE24, "france24", T0))
    later = T0 + 49 * HOUR
    assert index.find(fp("y", SEED, "aggregator", later), later) is None  # before expire, too
    assert index.expire(later) == 1
    assert len(index) == 0
    assert "old" not in index
    index.add("new", "s-new", fp("y", SEED, "aggregator", later))
    assert index.find(fp("z", WIRE, "bbc", later + HOUR), later + HOUR) is not None


def test_memory_bounded_postings_of_expired_items_are_purged() -> None:
    index = StoryIndex(window=10.0)
    paras = [p for p in SEED.split("\n") if len(p) > 80]
    slots = []
    for i in range(400):
        # each item its own text: a paragraph with the item number woven in
        body = " ".join(f"{w} {i}{j}" for j, w in enumerate(paras[i % len(paras)].split()))
        index.add(f"i{i}", f"s{i}", fp(f"t{i}", body, "x", float(i)))
        index.expire(float(i))
        slots.append(index.postings)
    assert len(index) <= 11
    assert max(slots) <= 2 * 1024  # grows with the window's items, not with items seen
    assert any(b < a for a, b in pairwise(slots))  # a purge happened


def test_fingerprint_roundtrip_through_bytes_rebuilds_the_same_index() -> None:
    original = fp("عنوان", SEED, "aggregator")
    blob = original.to_bytes()
    assert len(blob) < 2000
    again = Fingerprint.from_bytes(blob, outlet="aggregator", at=T0)
    assert again == original
    index = StoryIndex()
    index.add("seed", "s1", again)
    d = index.find(fp("t", FRANCE24, "france24", T0 + HOUR), T0 + HOUR)
    assert d is not None
    assert d.story_id == "s1"


@pytest.mark.parametrize(
    "blob",
    [
        b"",
        b"\x09rest",
        Fingerprint.from_bytes(fp("t", FRANCE24, "x").to_bytes(), outlet="x", at=0).to_bytes()
        + b"\x00",
    ],
    ids=["empty", "unknown-version", "trailing-bytes"],
)
def test_fingerprint_from_bad_bytes_raises(blob: bytes) -> None:
    with pytest.raises(ValueError, match="fingerprint blob"):
        Fingerprint.from_bytes(blob, outlet="x", at=0.0)


def test_hashes_are_stable_across_processes() -> None:
    # Golden values: stored fingerprints must match after a restart or an interpreter upgrade.
    assert _word_hash("موسكو") == 0x082D45634C723554
    hs = [_word_hash(w) for w in ["وزير", "الجيوش", "الفرنسي", "سيباستيان", "لوكورنو"]]
    assert _shingle_hashes(hs) == [GOLDEN_SHINGLE]


GOLDEN_SHINGLE = 10036639702720213685  # CPython tuple hash of the five word hashes


def test_short_items_are_shingled_from_the_title_and_empty_text_never_matches() -> None:
    index = StoryIndex()
    index.add("a", "s", fp("", "", "x"))
    assert index.find(fp("", "", "y"), T0) is None
    short = fp("زلزال بقوة 6 درجات يضرب جنوب تركيا", "", "x")
    assert short.words == 7
    assert list(short.numbers) == [6]


# --- the C accelerator (monitor/_fastprint.c) gives the reference path's exact results -------

needs_c = pytest.mark.skipif(
    not dedup.ACCELERATED,
    reason="monitor._fastprint is not built (no compiler at install): only the Python path runs",
)
DATA = Path(__file__).resolve().parent / "data"
EDGE_TEXTS = [
    "",
    "كلمة",
    "شركةTesla تعلن 3 نتائج",  # scripts with no space between them: two words
    "بلغ العدد ١٢٣ و۴۵ و 12345678901234567890123 و 007 شخصا",  # digits of every kind, long
    "سعر ٣٫٥ دولار، ① ² ½ ፩ 1፩ 𝟙𝟚 a_b_1 __ x²",  # non-decimal digits (፩ used to raise)
    "مُوسْكُو\u200fموسكو ـــ ﻻ ﷲ ﷺ ™ 𝐀𝐁 😀 𐌰𐌱 \U00020000 ß İ ﬁ",  # marks, ligatures, astral
    "word " * 3 + "كلمة طويلة جدا " + "أ" * 40 + " " + "\U00010400" * 3,  # long and wide words
]


def _texts() -> list[tuple[str, str]]:
    """(title, stripped body) pairs: the seed article's variants, the 352 real pairs, the
    match evaluation's sentences, and edge cases."""
    out = [(t, strip_boilerplate(b).text) for (t, b, _), _, _ in CASES]
    out += [(t, strip_boilerplate(b).text) for _, (t, b, _), _ in CASES]
    out += [("عنوان", SEED), ("", SEED), (SEED, ""), ("t", EMBEDDED)]
    for line in (DATA / "dedup_pairs.jsonl").read_text(encoding="utf-8").splitlines():
        pair = json.loads(line)
        out += [(pair[s]["title"], strip_boilerplate(pair[s]["body"]).text) for s in "ab"]
    for line in (DATA / "match_eval.tsv").read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.startswith("#"):
            text = line.split("\t")[-1]
            out += [(text, ""), ("", text), (text[:20], text)]
    out += [(t, b) for t in EDGE_TEXTS[:3] for b in EDGE_TEXTS]
    return out


@needs_c
def test_c_fingerprints_are_byte_identical_to_the_python_path() -> None:
    texts = _texts()
    assert len(texts) > 1500
    for title, body in texts:
        py = dedup._fingerprint_py(title, body, "x", T0)
        c = dedup._fingerprint_c(title, body, "x", T0)
        assert c.to_bytes() == py.to_bytes(), (title[:40], body[:80])
        assert c == py


@needs_c
def test_c_tokenizer_gives_the_words_of_monitor_text_for_every_code_point() -> None:
    everything = "".join(chr(cp) for cp in range(0x110000) if not 0xD800 <= cp < 0xE000)
    for sep in ("", " ", "a", "ب", "1"):
        text = sep.join(everything[i : i + 7] for i in range(0, len(everything), 7))
        assert _fastprint.words(text) == _TOKEN_RE.findall(text), repr(sep)


def test_decimal_digits_of_any_script_are_numbers_and_other_digits_are_not() -> None:
    # ፩ (Ethiopic one) is a digit that int() refuses: it used to make fingerprint() raise.
    f = fp("", "قتل ፩ و 1፩ و ٣ و 12 شخصا في الهجوم", "x")
    assert list(f.numbers) == [3, 12]


@needs_c
def test_c_postings_and_counts_are_the_python_index_exactly() -> None:
    indexes = [StoryIndex(), StoryIndex()]
    indexes[1]._c = None  # the reference path
    fps = [dedup._fingerprint_py(t, b, f"o{i % 3}", T0 + i) for i, (t, b) in enumerate(_texts())]
    for i, f in enumerate(fps[:800]):
        for index in indexes:
            index.add(f"i{i}", f"s{i}", f)
        if i % 100 == 99:
            for index in indexes:
                index.expire(T0 + i - 300)
    c, py = indexes
    assert c._buckets == py._buckets
    for f in fps:
        assert list(c._counts(f)[0].items()) == list(py._counts(f)[0].items())
        assert c._counts(f)[1] == py._counts(f)[1]
        assert c.explain(f, T0 + 900) == py.explain(f, T0 + 900)


def _conflicts_every_slot(new: _Facts, old: _Facts, *, same_outlet: bool) -> str | None:
    """The sentence-frame check as first written: every slot of `new` is looked at (the module
    now skips the slots that cannot count). The reference for the test below."""
    a_only = set(new.lead_numbers).difference(old.numbers)
    b_only = set(old.lead_numbers).difference(new.numbers)
    if a_only and b_only:
        return "numbers"
    a, b = list(new.seq), list(old.seq)
    in_a, in_b = set(a), set(b)
    lefts: dict[tuple[int, int], list[int]] = {}
    for j in range(2, len(b)):
        lefts.setdefault((b[j - 2], b[j - 1]), []).append(j)
    singles: set[tuple[int, int]] = set()
    runs = 0
    for i in range(2, len(a) - 1):
        for j in lefts.get((a[i - 2], a[i - 1]), ()):
            if j >= len(b) or a[i] == b[j]:
                continue
            run = _resync(a, i, b, j)
            if run is None:
                continue
            da = [w for w in run[0] if w & 1 and w not in in_b]
            db = [w for w in run[1] if w & 1 and w not in in_a]
            if not (da and db):
                continue
            if len(run[0]) == len(run[1]) == 1:
                singles.add((da[0], db[0]))
            elif len(da) + len(db) >= 4:
                runs += 1
    if len(singles) >= 2 or (same_outlet and runs):
        return "frame"
    return None


_EDITS = st.lists(
    st.tuples(
        st.integers(0, 39),  # where
        st.lists(st.integers(101, 130), min_size=1, max_size=3),  # new's words there
        st.lists(st.integers(201, 230), min_size=1, max_size=3),  # old's words there
    ),
    max_size=5,
)


@settings(max_examples=3000, deadline=None)
@given(base=st.lists(st.integers(0, 30), max_size=40), edits=_EDITS, same=st.booleans())
def test_sentence_frame_check_skips_only_slots_that_cannot_count(
    base: list[int], edits: list[tuple[int, list[int], list[int]]], same: bool
) -> None:
    """Two texts told from one template (`base`) with other words in a few slots: the module's
    check, which skips slots without a word only one side has, decides as the full loop does.
    (About a fifth of such pairs are a conflict; odd ids are content words.)"""
    a, b = list(base), list(base)
    for where, wa, wb in edits:
        a[where : where + len(wa)] = wa
        b[where : where + len(wb)] = wb
    new = _Facts("x", array("H"), array("H", a), array("I"), array("I"))
    old = _Facts("y", array("H"), array("H", b), array("I"), array("I"))
    expected = _conflicts_every_slot(new, old, same_outlet=same)
    assert (_conflicts(new, old, same_outlet=same) is None) == (expected is None)  # type: ignore[arg-type]


# A follow-up: a new development as the lead, the earlier story below it as background.
FOLLOW_UP = (
    "أعلن الكرملين الخميس أن الرئيس فلاديمير بوتين سيستقبل نظيره الكازاخستاني قاسم جومارت "
    "توكاييف الشهر المقبل في منتجع سوتشي على البحر الأسود، لبحث إمدادات الغاز والحبوب وتبادل "
    "الأسرى وممرات النقل البري، فيما قال المتحدث ديمتري بيسكوف إن جدول اللقاء لم يكتمل بعد "
    "وإن موسكو تنتظر ردا من باريس على مقترحاتها.\n\n" + "\n\n".join(PARAS[1:])
)
CALLED = ("روسيا وفرنسا: اتصال بين وزيري الدفاع", FRANCE24, "france24")
SHOIGU = ("لوكورنو يتصل بشويغو", CALL.format(who="الروسي سيرغي شويغو"), "france24")
LOOKUPS = [
    # (first, second: title, body, outlet; joins story-1?; follows story-1?)
    (CALLED, ("بوتين يستقبل توكاييف في سوتشي", FOLLOW_UP, "france24"), False, True),
    (CALLED, ("بوتين يستقبل توكاييف في سوتشي", FOLLOW_UP, "alarabia"), False, True),
    (CALLED, ("وزير الدفاع الفرنسي يتصل بنظيره الروسي", SEED, "aggregator"), True, False),
    (
        SHOIGU,
        ("لوكورنو يتصل بأوستن", CALL.format(who="الأمريكي لويد أوستن"), "france24"),
        False,
        False,
    ),
    (
        CALLED,
        ("زيلينسكي يدعو الولايات المتحدة إلى تعزيز العقوبات", EMBEDDED, "skynews"),
        False,
        False,
    ),
]
LOOKUP_IDS = [
    "same-outlet-new-lead-on-the-old-story-is-a-new-story-that-follows-it",
    "cross-outlet-new-lead-on-the-old-story-is-a-new-story-that-follows-it",
    "a-copy-joins-and-follows-nothing",
    "same-frame-other-name-is-another-event-not-a-follow-up",
    "no-shared-text-neither-joins-nor-follows",
]


@pytest.mark.parametrize(("first", "second", "joins", "follows"), LOOKUPS, ids=LOOKUP_IDS)
def test_lookup_tells_a_follow_up_from_a_copy(
    first: tuple[str, str, str], second: tuple[str, str, str], joins: bool, follows: bool
) -> None:
    index = StoryIndex()
    index.add("first", "story-1", fp(*first))
    probe = fp(*second, at=T0 + 2 * HOUR)
    found = index.lookup(probe, T0 + 2 * HOUR)
    explained = index.explain(probe, T0 + 2 * HOUR)
    assert (found.joins is not None) == joins, explained
    assert (found.follows is not None) == follows, explained
    assert index.find(probe, T0 + 2 * HOUR) == found.joins
    if found.follows is not None:
        assert found.follows.story_id == "story-1"
        assert "a new lead on shared text" in found.follows.reason
        assert follow_up_reason(found.follows).startswith("new story, following story story-1")


def test_an_item_follows_only_an_earlier_story() -> None:
    """An archive item published before the story it shares text with does not follow it."""
    index = StoryIndex()
    index.add("first", "story-1", fp(*CALLED, at=T0 + 2 * HOUR))
    probe = fp("بوتين يستقبل توكاييف في سوتشي", FOLLOW_UP, "france24", at=T0 + HOUR)
    assert index.lookup(probe, T0 + 3 * HOUR) == Lookup(None, None)
    later = fp("بوتين يستقبل توكاييف في سوتشي", FOLLOW_UP, "france24", at=T0 + 3 * HOUR)
    assert index.lookup(later, T0 + 3 * HOUR).follows is not None
