"""Differential stress: the C accelerator against its Python reference, on random strings.

    /tmp/fz/bin/python fuzz/accelerator.py SEED SECONDS      (or .venv/bin/python: no atheris)

The strings mix Arabic, presentation forms, digits of three scripts, bidi and format controls,
C0/C1 controls, astral characters and case-folding oddities, up to 9,000 characters; every C
path must give exactly what its reference gives. Prints "ok N" after SECONDS.
"""

from __future__ import annotations

import random
import sys
import time

import monitor.dedup as dedup
import monitor.parse as parse
import monitor.text as text


def pools(rng: random.Random) -> list[list[str]]:
    astral = [chr(rng.randrange(0x80, 0x110000)) for _ in range(2000)]
    return [
        [chr(c) for c in range(0x600, 0x700)],
        [chr(c) for c in range(0xFB50, 0xFE00)] + [chr(c) for c in range(0xFE70, 0xFF00)],
        list(" \n\t\r.,:;!?0123456789٠١٢٣٤٥٦٧٨٩۰۱abcXYZ<>&#;'\"()[]-_/"),
        list(
            "\u200b\u200c\u200d\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068"
            "\u2069\u0640\u00a0\u2028\u2029\u0085\ufeff\ufffe\ufffd\x00\x01\x1f\x7f\x80\x9f"
        ),
        [c for c in astral if not 0xD800 <= ord(c) <= 0xDFFF],
        list("ẞßİıﬃﬀΣσς\u0345\u0130Ǆǅǆ\u1e9e\U0001f600\U0001d400"),
    ]


def check(s: str, cut: int) -> None:
    if not s.isascii():
        folded = text.normalize(s)
        assert folded == text._normalize_py(s), ("normalize", s)
        assert text.normalize_exact(s) == text._normalize_exact_py(s), ("exact", s)
        joined = " " + " ".join(text._TOKEN_RE.findall(folded)) + " "
        assert text.joined_words(folded) == joined, ("joined", s)
    assert parse._has_c1(s) == parse._has_c1_py(s), ("c1", s)
    assert parse._fastprint.lines(s, parse._BIDI_CHARS) == parse._lines_py(s), ("lines", s)
    fast = parse._doc_facts(s)
    saved, parse._fastprint = parse._fastprint, None
    try:
        slow = parse._doc_facts(s)
    finally:
        parse._fastprint = saved
    assert fast == slow, ("doc_facts", s)
    c = dedup._fingerprint_c(s[:cut], s[cut:], "o", 1.0)
    py = dedup._fingerprint_py(s[:cut], s[cut:], "o", 1.0)
    assert c.to_bytes() == py.to_bytes(), ("fingerprint", s)


def main() -> int:
    if not dedup.ACCELERATED:
        print("the C accelerator is not built: nothing to compare")
        return 1
    rng = random.Random(int(sys.argv[1]) if len(sys.argv) > 1 else 1)
    seconds = float(sys.argv[2]) if len(sys.argv) > 2 else 60.0
    chars = pools(rng)
    start, n = time.monotonic(), 0
    while time.monotonic() - start < seconds:
        weights = [rng.random() ** 2 for _ in chars]
        size = rng.randrange(rng.choice([5, 50, 500, 3000, 9000]))
        s = "".join(rng.choice(rng.choices(chars, weights)[0]) for _ in range(size))
        check(s, rng.randrange(len(s) + 1))
        n += 1
    print(f"ok {n}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
