"""Near-duplicate story detection across outlets. Pure: no I/O, no clock (`now` is passed in).

    fingerprint(title, body, outlet=, at=) -> Fingerprint      (frozen, serializable)
    fingerprint_normalized(title, body, ...)                   the same from prepared texts
    StoryIndex.find(fp, now) -> StoryDecision | None           (which story it joins, and why)
    StoryIndex.lookup(fp, now) -> Lookup                       (that, and the story it follows up)
    StoryIndex.add(item_id, story_id, fp) / expire(now)        (a bounded window of recent items)

An item joins the story of an earlier item when all of these hold (measured on real pairs, see
docs/dedup.md and tests/test_dedup_eval.py):

1. containment |A∩B| / min(|A|, |B|) of their sampled 5-word shingles (boilerplate stripped,
   normalized by monitor.text) reaches the threshold: 0.25 across outlets; within one outlet
   0.15 (in practice: `MIN_SHARED` shared sampled shingles), because there the lead decides.
   Containment, not Jaccard, so that a copy wrapped in tag lists and teasers of other stories
   still scores as the story it copies;
2. the new item's lead (title + first 40 words) is found in the earlier item's head (title +
   first 100 words): at least 70% of its content words within one outlet, 35% across outlets.
   This is what tells a copy (same lead, maybe reworded) from a follow-up that reuses an old
   story as background under a new lead;
3. no guard fires: numbers in one lead that the other text does not have, while the other lead
   also has numbers the first lacks (casualties, scores, dates), or the same sentence frame
   with different content words in its slots ("... نظيره الروسي سيرغي شويغو" / "... نظيره
   الأمريكي لويد أوستن"; see _conflicts); spelling variants of one name are the same word.

An item that shares text with an earlier one (rule 1) but opens with a new lead (rule 2 fails)
is a new story that *follows up* the earlier one: `lookup` names that story too
(`Lookup.follows`), so an alert can say what it follows. A guard that fires (rule 3: other
numbers, another name in the same frame) is another event told with the same template, not a
follow-up.

The index keeps, per item, only what the decision needs: a 1-in-`SAMPLE` subset of its shingle
hashes (chosen by hash value, so the same shingle is kept in every text), 16-bit hashes of its
head words and lead sequence, and its numbers. Postings are 8-byte records in 65,536 bytearray
buckets (no Python object per posting; a lookup is one C `find` in one bucket), so 100k items
fit in tens of MB. The cost of `find` is proportional to the item's own shingles: posting scans
stop at `MAX_POSTINGS`, and a shingle carried by more live items than that is boilerplate and
is ignored. `fingerprint` does no Python-level work per word: word facts come from a cached
table through C `map`s, shingles are CPython tuple hashes filtered in C.

Accelerator: where monitor/_fastprint.c was compiled at install (`ACCELERATED`), the per-word
work (tokenizing the normalized text, the word cache, shingle hashing and sampling, head, lead,
numbers) and the posting loops of `find` and `add` run in C; boilerplate stripping and each
new word's facts (`_word_info`) stay here, normalization in monitor.text. The Python functions
(`_fingerprint_py`, `StoryIndex._counts_py`, `_post_py`) are the reference: the C path gives
byte-identical fingerprints and the same postings (tests/test_dedup.py), and is the fallback
where there is no compiler.
"""

from __future__ import annotations

import heapq
import re
from array import array
from collections.abc import Iterator
from dataclasses import dataclass, field
from hashlib import blake2b
from itertools import filterfalse
from operator import itemgetter

from monitor.text import normalize, split_words, strip_boilerplate, words

try:  # the optional C accelerator (setup.py builds it where a compiler is available)
    from monitor import _fastprint
except ImportError:  # pragma: no cover - a machine without a compiler: the Python path
    _fastprint = None  # type: ignore[assignment]  # the module or None; callers test for None

__all__ = [
    "ACCELERATED",
    "FOLLOWING",
    "SAMPLE",
    "Fingerprint",
    "K",
    "Lookup",
    "StoryDecision",
    "StoryIndex",
    "fingerprint",
    "fingerprint_normalized",
    "follow_up_reason",
]

K = 5  # words per shingle (k=3..5 measured; see docs/dedup.md)
SAMPLE = 8  # keep 1 shingle hash in SAMPLE (by hash value: consistent across texts)
LEAD_WORDS = 40  # the lead: title + this many body words
HEAD_WORDS = 100  # the head kept for the lead check: title + this many body words
MAX_TOKENS = 3000  # longer bodies are cut (a story's identity is in its first pages)
MAX_POSTINGS = 64  # a shingle in more live items than this is boilerplate: ignored
MIN_SHARED = 2  # fewer shared sampled shingles than this is never a match
_VERSION = 1
_SEQ_MASK = (1 << 24) - 1
_BUCKET_MASK = (1 << 16) - 1  # 65,536 posting buckets
_MIN_PURGE = 1024  # dead postings before a purge is worth a pass
_MASK64 = (1 << 64) - 1
_SAMPLE_MASK = SAMPLE - 1  # SAMPLE is a power of two

# Function words and reporting verbs: never evidence of "the same facts" or of a different name.
_STOP = frozenset(
    words(
        """
        في من على علي إلى الى الي عن مع أن ان إن لا ما لم لن قد كان كانت يكون التي الذي الذين
        اللذين اللتين هذا هذه ذلك تلك هناك هنا و أو او ثم بعد قبل خلال بين حتى عند منذ كما مثل
        قال وقال قالت وقالت أضاف وأضاف اضاف أكد وأكد اكد أشار وأشار اشار أعلن وأعلن اعلن أفاد
        وأفاد ذكر وذكر ذكرت وذكرت أوضح وأوضح تابع وتابع مضيفا مشيرا مؤكدا وفق وفقا حسب بحسب
        اليوم أمس غدا الأحد الاثنين الإثنين الثلاثاء الأربعاء الخميس الجمعة السبت صباح مساء
        إنه انه أنه بأن بان فيه فيها له لها لهم به بها كل غير أي أكثر أقل أيضا ايضا حيث وفي
        ومن وعلى وإلى وهو وهي هو هي هم هن نحو يوم عام العام الماضي الحالي المقبل الذى إذا اذا
        لكن ولكن بل إلا الا عبر ضد دون لدى لدي تم يتم وقد فقد كذلك وكان وكانت عدة عدد بعض
        the a an of in on at to for and or is are was were be by with from that this it as
        """
    )
)
_NUMBER = re.compile(r"\d+")


def _word_hash(w: str) -> int:
    """A stable 64-bit hash of one normalized word (blake2b)."""
    return int.from_bytes(blake2b(w.encode(), digest_size=8).digest(), "little")


def _word_info(w: str) -> tuple[int, int, int]:
    """(64-bit hash, 16-bit content hash or -1 for a function word, slot hash) of one word."""
    h = _word_hash(w)
    return h, h & 0xFFFF if _is_name_like(w) else -1, _slot_hash(w)


class _WordTable(dict[str, tuple[int, int, int]]):
    """word -> _word_info(word), for the Python path.

    A dict with __missing__, so `map(table.__getitem__, words)` runs in C; words repeat a lot.
    Bounded: cleared before an item when it has grown past _WORD_TABLE_MAX entries. (The C
    path keeps its own cache of the same facts, bounded the same way.)
    """

    def __missing__(self, w: str) -> tuple[int, int, int]:
        v = self[w] = _word_info(w)
        return v


_WORD_TABLE_MAX = 1 << 18
ACCELERATED: bool = _fastprint is not None  # fingerprint's per-word work runs in C
_WORDS = _WordTable()
_HASH, _CONTENT, _SLOT = itemgetter(0), itemgetter(1), itemgetter(2)


def _shingle_hashes(hs: list[int]) -> list[int]:
    """Stable 64-bit hashes of the K-word windows of `hs` (word hashes)."""
    if len(hs) < K:
        return [hash(tuple(hs)) & _MASK64] if hs else []
    return [h & _MASK64 for h in _raw_shingles(hs)]


def _raw_shingles(hs: list[int]) -> Iterator[int]:
    # CPython's tuple hash is deterministic for tuples of ints (no per-process salt): it is
    # fast (one C call per shingle) and pinned by a golden test in tests/test_dedup.py.
    # Signed: h & (SAMPLE - 1) equals (h & _MASK64) % SAMPLE, so sampling can filter in C.
    return map(hash, zip(*(hs[i : len(hs) - K + 1 + i] for i in range(K)), strict=True))


# Consonant skeleton for the frame guard: long vowels dropped, letters that transliterate the
# same foreign sound merged (G: ج غ ق ك; T: ت ط; S: س ص), so spelling variants of one name
# (ترامب = ترمب, جونغ = جونج, الإنجليزي = الإنكليزي) are the same word.
_SKELETON = str.maketrans(
    {"ا": None, "و": None, "ي": None, "ى": None, "ج": "ك", "غ": "ك", "ق": "ك", "ط": "ت", "ص": "س"}
)
_CLITIC = re.compile(r"^(?:[وف]?(?:ال|لل|[بلك]ال?)?)(?=\w{3})")


def _slot_hash(w: str) -> int:
    """16 bits for the frame guard: the word's skeleton without clitics (و ف ب ل ك ال), and
    in the low bit whether it is a content word."""
    skeleton = _CLITIC.sub("", w).translate(_SKELETON) or w
    return (_word_hash(skeleton) & 0xFFFE) | _is_name_like(w)


def _is_name_like(w: str) -> bool:
    """A word that can carry a fact: a number, or a content word (not a function word)."""
    return w.isdigit() or (len(w) > 2 and w not in _STOP)


@dataclass(frozen=True, slots=True)
class Fingerprint:
    """What near-duplicate detection knows of one item. Compact; `to_bytes` for the store."""

    outlet: str
    at: float  # epoch seconds (published, else first seen)
    shingles: array[int]  # 'Q': sampled shingle hashes, sorted, unique
    head: array[int]  # 'H': 16-bit hashes of content words of title + first HEAD_WORDS words
    lead: array[int]  # 'H': 16-bit hashes of content words of title + first LEAD_WORDS words
    seq: array[int]  # 'H': the first LEAD_WORDS body words, in order (see _slot_hash)
    numbers: array[int]  # 'I': numbers in the text (value mod 2**32), sorted, unique
    lead_numbers: array[int]  # 'I': numbers in the title and lead
    words: int = field(default=0)  # body words (after stripping), for reasons and tests

    def to_bytes(self) -> bytes:
        """A compact, versioned blob (the store saves it with item id, story id, outlet, at)."""
        parts = [self.shingles, self.head, self.lead, self.seq, self.numbers, self.lead_numbers]
        out = bytearray([_VERSION])
        out += self.words.to_bytes(4, "little")
        for a in parts:
            out += len(a).to_bytes(4, "little")
            out += a.tobytes()
        return bytes(out)

    @classmethod
    def from_bytes(cls, blob: bytes, *, outlet: str, at: float) -> Fingerprint:
        """Inverse of `to_bytes`. A blob from another version raises ValueError (re-fingerprint)."""
        if not blob or blob[0] != _VERSION:
            raise ValueError("fingerprint blob of an unknown version")
        pos = 1
        n_words = int.from_bytes(blob[pos : pos + 4], "little")
        pos += 4
        arrays: list[array[int]] = []
        for code in ("Q", "H", "H", "H", "I", "I"):
            n = int.from_bytes(blob[pos : pos + 4], "little")
            pos += 4
            a = array(code)
            size = n * a.itemsize
            a.frombytes(blob[pos : pos + size])
            pos += size
            arrays.append(a)
        if pos != len(blob):
            raise ValueError("fingerprint blob has trailing bytes")
        shingles, head, lead, seq, numbers, lead_numbers = arrays
        return cls(outlet, at, shingles, head, lead, seq, numbers, lead_numbers, n_words)


def fingerprint(
    title: str,
    body: str,
    *,
    outlet: str,
    at: float,
    extra_markers: tuple[str, ...] = (),
) -> Fingerprint:
    """The fingerprint of one item: boilerplate stripped, normalized, shingled and sampled.

    `body` is the fullest text the feed gives (content, else summary); when it has fewer than K
    words the title is shingled instead. `extra_markers` are the feed's own boilerplate markers.
    """
    text = strip_boilerplate(body, extra_markers).text if body else ""
    return fingerprint_normalized(normalize(title), normalize(text), outlet=outlet, at=at)


def fingerprint_normalized(title: str, body: str, *, outlet: str, at: float) -> Fingerprint:
    """`fingerprint` from texts already prepared: `title` is normalize(title) and `body` is
    normalize(strip_boilerplate(body, extra_markers).text) ("" for no body). For a caller that
    shares one normalization of each field between matching and fingerprints (analyze)."""
    if _fastprint is not None:
        return _scan_c(title, body, outlet, at)
    return _scan_py(title, body, outlet, at)


def _fingerprint_py(title: str, text: str, outlet: str, at: float) -> Fingerprint:
    """The reference path (pure Python): `text` is the body with its boilerplate stripped."""
    return _scan_py(normalize(title), normalize(text), outlet, at)


def _scan_py(title: str, text: str, outlet: str, at: float) -> Fingerprint:
    """`_fingerprint_py` on normalized title and text."""
    toks = split_words(text)[:MAX_TOKENS]
    title_toks = split_words(title)
    if len(toks) < K:
        toks = title_toks + toks
    if len(_WORDS) > _WORD_TABLE_MAX:
        _WORDS.clear()
    # Everything below runs in C loops (map, filter, set): no Python code per word.
    get = _WORDS.__getitem__
    info = list(map(get, toks))
    hs = list(map(_HASH, info))
    if len(hs) >= K:
        kept = filterfalse(_SAMPLE_MASK.__and__, _raw_shingles(hs))
        sampled = sorted({h & _MASK64 for h in kept})
    else:
        sampled = sorted({h for h in _shingle_hashes(hs) if not h % SAMPLE})
    title_content = set(map(_CONTENT, map(get, title_toks)))
    head_content = list(map(_CONTENT, info[:HEAD_WORDS]))
    head = set(head_content)
    head.update(title_content)
    lead = set(head_content[:LEAD_WORDS])
    lead.update(title_content)
    head.discard(-1)
    lead.discard(-1)
    # isdecimal, not isdigit: int() takes decimal digits of any script and raises on the other
    # digits NFKC keeps (Ethiopic ፩), so the two differ only on words that used to raise.
    nums = {int(w) & 0xFFFFFFFF for w in filter(str.isdecimal, toks)}
    title_nums = {int(w) & 0xFFFFFFFF for w in filter(str.isdecimal, title_toks)}
    lead_nums = {int(w) & 0xFFFFFFFF for w in filter(str.isdecimal, toks[:LEAD_WORDS])}
    lead_nums.update(title_nums)
    nums.update(title_nums)
    return Fingerprint(
        outlet=outlet,
        at=at,
        shingles=array("Q", sampled),
        head=array("H", sorted(head)),
        lead=array("H", sorted(lead)),
        seq=array("H", map(_SLOT, info[:LEAD_WORDS])),
        numbers=array("I", sorted(nums)),
        lead_numbers=array("I", sorted(lead_nums)),
        words=len(toks),
    )


def _fingerprint_c(title: str, text: str, outlet: str, at: float) -> Fingerprint:
    """`_fingerprint_py` with the per-word work in monitor/_fastprint.c (byte-identical:
    tests/test_dedup.py). Normalization is monitor.text's; C tokenizes the normalized text like
    monitor.text.words, caches each word's `_word_info`, and returns the arrays' bytes."""
    return _scan_c(normalize(title), normalize(text), outlet, at)


def _scan_c(title: str, text: str, outlet: str, at: float) -> Fingerprint:
    """`_fingerprint_c` on normalized title and text."""
    if _fastprint is None:
        raise RuntimeError("monitor._fastprint is not built (ACCELERATED is False)")
    sh, head, lead, seq, nums, lead_nums, n = _fastprint.scan(
        title,
        text,
        _word_info,
        K,
        SAMPLE,
        LEAD_WORDS,
        HEAD_WORDS,
        MAX_TOKENS,
        _WORD_TABLE_MAX,
    )
    shingles, head_a, lead_a, seq_a = array("Q"), array("H"), array("H"), array("H")
    nums_a, lead_nums_a = array("I"), array("I")
    shingles.frombytes(sh)
    head_a.frombytes(head)
    lead_a.frombytes(lead)
    seq_a.frombytes(seq)
    nums_a.frombytes(nums)
    lead_nums_a.frombytes(lead_nums)
    return Fingerprint(outlet, at, shingles, head_a, lead_a, seq_a, nums_a, lead_nums_a, n)


@dataclass(frozen=True, slots=True)
class StoryDecision:
    """The new item joins `story_id`: it is a near-copy of `item_id` (an earlier item). As
    `Lookup.follows`: the new item opens a new story that follows up `story_id`."""

    story_id: str
    item_id: str
    outlet: str  # the matched item's outlet
    containment: float
    lead: float  # share of the new item's lead words found in the matched item's head
    same_outlet: bool
    reason: str


@dataclass(frozen=True, slots=True)
class Lookup:
    """What `StoryIndex.lookup` found: the story the item joins, else None; and, when it joins
    none, the story it follows up (shared text under a new lead), else None."""

    joins: StoryDecision | None
    follows: StoryDecision | None = None

    def story(self, item_id: str) -> tuple[str, bool, str]:
        """(story id, whether item `item_id` opens it, why) for the item looked up."""
        if self.joins is not None:
            return self.joins.story_id, False, self.joins.reason
        if self.follows is not None:
            return item_id, True, follow_up_reason(self.follows)
        return item_id, True, "new story"


FOLLOWING = "new story, following story "  # how a follow-up's reason starts (+ the story id)


def follow_up_reason(follows: StoryDecision) -> str:
    """Why an item opened a new story that follows up an earlier one (for `monitor story`)."""
    return (
        f"{FOLLOWING}{follows.story_id} (item {follows.item_id} of "
        f"{follows.outlet}): {follows.reason}"
    )


# What `_judge` decided of one candidate: it joins; too little shared text; shared text under a
# new lead (a follow-up); or a guard fired (the same template, other facts).
JOINS, TOO_LITTLE, NEW_LEAD, GUARD = "joins", "too_little", "new_lead", "guard"


@dataclass(frozen=True, slots=True)
class _Entry:
    """What the index keeps of an item: ids, and the facts the guards compare, packed."""

    item_id: str
    story_id: str
    outlet: str
    at: float
    n: int  # sampled shingles
    facts: bytes  # head ('H'), seq ('H'), numbers ('I'), lead numbers ('I'), see _pack

    def unpack(self) -> tuple[array[int], array[int], array[int], array[int]]:
        f = self.facts
        n_head, n_seq, n_num, n_lead = f[0] | f[1] << 8, f[2], f[3], f[4]
        pos = 5
        out: list[array[int]] = []
        for code, n in (("H", n_head), ("H", n_seq), ("I", n_num), ("I", n_lead)):
            a = array(code)
            size = n * a.itemsize
            a.frombytes(f[pos : pos + size])
            pos += size
            out.append(a)
        return out[0], out[1], out[2], out[3]


_MAX_NUMBERS = 64


def _pack(fp: Fingerprint) -> bytes:
    head = fp.head[:65535]
    seq = fp.seq[:255]
    nums = fp.numbers[:_MAX_NUMBERS]
    lead = fp.lead_numbers[:_MAX_NUMBERS]
    out = bytearray([len(head) & 0xFF, len(head) >> 8, len(seq), len(nums), len(lead)])
    for a in (head, seq, nums, lead):
        out += a.tobytes()
    return bytes(out)


@dataclass(frozen=True, slots=True)
class _Facts:
    outlet: str
    head: array[int]
    seq: array[int]
    numbers: array[int]
    lead_numbers: array[int]


def _conflicts(new: Fingerprint, old: _Facts | Fingerprint, *, same_outlet: bool) -> str | None:
    """Why two near-copies are different stories, or None. See the module docstring, 3."""
    a_only = set(new.lead_numbers).difference(old.numbers)
    b_only = set(old.lead_numbers).difference(new.numbers)
    if a_only and b_only:
        return f"numbers differ ({_fmt(b_only)} vs {_fmt(a_only)})"
    # Same frame, different slot: two words of context agree on the left and two on the right
    # (within 3 words), and the words between are content words that the other lead lacks.
    # Across outlets, rewording makes such slots common (أميركا / الولايات المتحدة, بشأن / حول),
    # so only two separate slots count there; within one outlet, which keeps its own wording and
    # its templates, one slot of two or more words is enough ("نظيره الروسي سيرغي شويغو" /
    # "نظيره الأمريكي لويد أوستن").
    a, b = list(new.seq), list(old.seq)
    in_a, in_b = set(a), set(b)
    # A slot needs a content word of `a` that `b` lacks within its first three words, and one
    # the other way round: with no such words on either side (a copy) there is nothing to look
    # at, and only the slots starting up to two words before such a word of `a` can count.
    only_a = {w for w in in_a.difference(in_b) if w & 1}
    if not only_a or not any(w & 1 for w in in_b.difference(in_a)):
        return None
    starts = sorted(
        {
            i
            for p, w in enumerate(a)
            if w in only_a
            for i in (p - 2, p - 1, p)
            if 2 <= i < len(a) - 1
        }
    )
    lefts: dict[tuple[int, int], list[int]] = {}
    for j in range(2, len(b)):
        lefts.setdefault((b[j - 2], b[j - 1]), []).append(j)
    singles: set[tuple[int, int]] = set()
    runs = 0
    for i in starts:
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
        return "the same sentence frame with a different name, place or number"
    return None


def _resync(a: list[int], i: int, b: list[int], j: int) -> tuple[list[int], list[int]] | None:
    """The differing runs a[i:i+r], b[j:j+s] (1 <= r, s <= 3) before two words agree again."""
    for r in range(1, 4):
        for s in range(1, 4):
            if a[i + r : i + r + 2] == b[j + s : j + s + 2] and len(a[i + r : i + r + 2]) == 2:
                return a[i : i + r], b[j : j + s]
    return None


def _fmt(nums: set[int]) -> str:
    return ", ".join(str(n) for n in sorted(nums)[:3])


class StoryIndex:
    """Recent items' fingerprints, searchable by shingle. Not thread-safe; one per pipeline.

    Memory is bounded by the window: `expire(now)` forgets items published before
    `now - window`; their postings are purged once they outnumber the live ones.
    Restart: `add` the stored (item_id, story_id, Fingerprint.from_bytes(...)) rows again.
    """

    def __init__(
        self,
        window: float = 72 * 3600,
        same_outlet_threshold: float = 0.15,
        cross_outlet_threshold: float = 0.25,
        *,
        same_outlet_lead: float = 0.7,
        cross_outlet_lead: float = 0.35,
    ) -> None:
        self.window = window
        self.same_outlet_threshold = same_outlet_threshold
        self.cross_outlet_threshold = cross_outlet_threshold
        self.same_outlet_lead = same_outlet_lead
        self.cross_outlet_lead = cross_outlet_lead
        # bucket -> its postings, 8 bytes each (None: no posting yet)
        self._buckets: list[bytearray | None] = [None] * (_BUCKET_MASK + 1)
        self._postings = 0  # stored postings, live or not
        self._live = 0  # postings of live items
        self._entries: dict[int, _Entry] = {}  # seq -> entry (live items)
        self._by_item: dict[str, int] = {}
        self._ages: list[tuple[float, int]] = []  # heap of (at, seq)
        self._next = 1
        self._outlets: dict[str, str] = {}  # one str object per outlet name
        # The C postings loops (monitor/_fastprint.c), or None: the Python reference path.
        self._c = _fastprint

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, item_id: object) -> bool:
        return item_id in self._by_item

    @property
    def postings(self) -> int:
        """Stored postings (8 bytes each), live or not yet purged: for benchmarks and tests."""
        return self._postings

    # Postings: one 8-byte little-endian record each, the item's 24-bit seq then the
    # shingle's high 40 bits, appended to a bytearray per bucket (bits 3-18 of the shingle
    # hash; bits 0-2 are 0 in every sampled hash). A lookup is a C `bytearray.find` of the 40
    # bits in one bucket; no Python object per posting.

    def _purge(self) -> None:
        """Drop the postings of expired items (a pass over all records; amortized by _add)."""
        entries, buckets = self._entries, self._buckets
        total = 0
        for b, records in enumerate(buckets):
            if records is None:
                continue
            kept = bytearray()
            for i in range(0, len(records), 8):
                if int.from_bytes(records[i : i + 3], "little") in entries:
                    kept += records[i : i + 8]
            buckets[b] = kept or None
            total += len(kept) // 8
        self._postings = total

    def add(self, item_id: str, story_id: str, fp: Fingerprint) -> None:
        """Index an item as a member of `story_id` (a new story, or the one `find` returned)."""
        if item_id in self._by_item:
            return
        seq = self._next
        while seq in self._entries:  # the 24-bit counter wrapped onto a live item
            seq = seq + 1 if seq < _SEQ_MASK else 1
        self._next = seq + 1 if seq < _SEQ_MASK else 1
        n = len(fp.shingles)
        dead = self._postings - self._live
        if dead > self._live and dead >= _MIN_PURGE:
            self._purge()
        outlet = self._outlets.setdefault(fp.outlet, fp.outlet)
        self._entries[seq] = _Entry(item_id, story_id, outlet, fp.at, n, _pack(fp))
        if self._c is not None:
            self._c.post(self._buckets, fp.shingles.tobytes(), seq)
        else:
            self._post_py(fp, seq)
        self._postings += n
        self._live += n
        self._by_item[item_id] = seq
        heapq.heappush(self._ages, (fp.at, seq))

    def _post_py(self, fp: Fingerprint, seq: int) -> None:
        """Append fp's postings for item `seq` (the reference path of _fastprint.post)."""
        buckets = self._buckets
        raw = fp.shingles.tobytes()  # little-endian: bytes 3-7 of each are the key
        tag = seq.to_bytes(3, "little")
        for i, h in enumerate(fp.shingles):  # the hot path of add
            b = (h >> 3) & _BUCKET_MASK
            bucket = buckets[b]
            if bucket is None:
                buckets[b] = bytearray(tag + raw[8 * i + 3 : 8 * i + 8])
            else:
                bucket += tag
                bucket += raw[8 * i + 3 : 8 * i + 8]

    def expire(self, now: float) -> int:
        """Forget items published before `now - window`; returns how many were forgotten."""
        cutoff = now - self.window
        gone = 0
        while self._ages and self._ages[0][0] < cutoff:
            _, seq = heapq.heappop(self._ages)
            e = self._entries.pop(seq, None)
            if e is not None:
                self._by_item.pop(e.item_id, None)
                self._live -= e.n
                gone += 1
        return gone

    def _counts(self, fp: Fingerprint) -> tuple[dict[int, int], int]:
        """Shared sampled shingles per live item, and how many of fp's shingles were ignored."""
        if self._c is not None:
            return self._c.probe(self._buckets, fp.shingles.tobytes(), self._entries, MAX_POSTINGS)
        return self._counts_py(fp)

    def _counts_py(self, fp: Fingerprint) -> tuple[dict[int, int], int]:
        """The reference path of _fastprint.probe (the same counts, in the same order)."""
        buckets, entries = self._buckets, self._entries
        counts: dict[int, int] = {}
        ignored = 0
        raw = fp.shingles.tobytes()
        for i, h in enumerate(fp.shingles):
            records = buckets[(h >> 3) & _BUCKET_MASK]
            if records is None:
                continue
            key = raw[8 * i + 3 : 8 * i + 8]  # the shingle's high 40 bits, as stored
            pos = records.find(key)
            hits: list[int] = []
            while pos >= 0:
                if pos & 7 == 3:  # a record's key, not bytes straddling two records
                    seq = int.from_bytes(records[pos - 3 : pos], "little")
                    if seq in entries:
                        hits.append(seq)
                        if len(hits) > MAX_POSTINGS:
                            break
                    pos = records.find(key, pos + 5)
                else:
                    pos = records.find(key, pos + 1)
            if len(hits) > MAX_POSTINGS:
                ignored += 1
                continue
            for seq in hits:
                counts[seq] = counts.get(seq, 0) + 1
        return counts, ignored

    def _judge(
        self, fp: Fingerprint, e: _Entry, shared: int, n_new: int
    ) -> tuple[str, float, float, str]:
        """(verdict, containment, lead, why) for one candidate; verdict is JOINS, TOO_LITTLE,
        NEW_LEAD or GUARD."""
        containment = min(1.0, shared / max(1, min(n_new, e.n)))
        same = e.outlet == fp.outlet
        threshold = self.same_outlet_threshold if same else self.cross_outlet_threshold
        kind = f"{'same outlet' if same else 'cross-outlet'} ≥ {threshold:g}"
        if shared < MIN_SHARED or containment < threshold:
            return TOO_LITTLE, containment, 0.0, f"containment {containment:.2f} below {kind}"
        head, seq, numbers, lead_numbers = e.unpack()
        head_set = set(head)
        lead = sum(map(head_set.__contains__, fp.lead)) / max(1, len(fp.lead))
        need = self.same_outlet_lead if same else self.cross_outlet_lead
        if lead < need:
            why = f"lead {lead:.2f} below {need:g}: a new lead on shared text (a follow-up)"
            return NEW_LEAD, containment, lead, why
        facts = _Facts(e.outlet, head, seq, numbers, lead_numbers)
        conflict = _conflicts(fp, facts, same_outlet=same)
        if conflict is not None:
            return GUARD, containment, lead, f"containment {containment:.2f} but {conflict}"
        why = (
            f"containment {containment:.2f} with item {e.item_id} of {e.outlet} ({kind}), "
            f"lead {lead:.2f} found in it, numbers and names agree"
        )
        return JOINS, containment, lead, why

    def find(self, fp: Fingerprint, now: float) -> StoryDecision | None:
        """The story `fp` joins, or None for a new story. Does not add `fp`."""
        return self.lookup(fp, now).joins

    def lookup(self, fp: Fingerprint, now: float) -> Lookup:
        """The story `fp` joins (the candidate with the highest containment among those that
        pass), or, when it joins none, the story it follows up (likewise). Does not add `fp`."""
        counts, ignored = self._counts(fp)
        n_new = len(fp.shingles) - ignored
        cutoff = now - self.window
        best: StoryDecision | None = None
        follows: StoryDecision | None = None
        for seq, shared in sorted(counts.items(), key=lambda kv: -kv[1]):
            if shared < MIN_SHARED:
                break
            e = self._entries[seq]
            if e.at < cutoff:
                continue
            verdict, containment, lead, why = self._judge(fp, e, shared, n_new)
            if verdict == JOINS:
                if best is None or containment > best.containment:
                    best = self._decision(fp, e, containment, lead, why)
            elif (
                verdict == NEW_LEAD
                and e.at <= fp.at  # an item follows only an earlier story
                and (follows is None or containment > follows.containment)
            ):
                follows = self._decision(fp, e, containment, lead, why)
        return Lookup(best, None if best is not None else follows)

    @staticmethod
    def _decision(
        fp: Fingerprint, e: _Entry, containment: float, lead: float, why: str
    ) -> StoryDecision:
        same = e.outlet == fp.outlet
        return StoryDecision(e.story_id, e.item_id, e.outlet, containment, lead, same, why)

    def explain(self, fp: Fingerprint, now: float, limit: int = 10) -> list[str]:
        """Why each of the closest items was or was not joined (for `monitor story`)."""
        counts, ignored = self._counts(fp)
        n_new = len(fp.shingles) - ignored
        out: list[str] = []
        for seq, shared in sorted(counts.items(), key=lambda kv: -kv[1])[:limit]:
            e = self._entries[seq]
            _, _, _, why = self._judge(fp, e, shared, n_new)
            stale = " (outside the window)" if e.at < now - self.window else ""
            out.append(f"{e.item_id} [{e.outlet}]: {why}{stale}")
        return out
