/* monitor._fastprint: the per-word work of monitor.dedup.fingerprint, in C. Pure, no I/O.
 * Also the per-character passes of the parse workers' text handling: normalization's
 * deletions and foldings (monitor.text), the matcher's joined words, html_to_text's layout.
 *
 * Optional accelerator: monitor/dedup.py, monitor/text.py and monitor/parse.py hold the
 * reference (pure Python) paths and use this module only when it was built; tests/test_dedup.py,
 * tests/test_text.py and tests/test_analyze_paths.py assert both give identical results. What
 * stays in Python: NFKC, casefold where some character needs it, boilerplate stripping, and the
 * facts of a word seen for the first time (blake2b hash, content word or not, skeleton hash),
 * which this module asks for through the `word_info` callback and caches.
 *
 *   scan(title, body, word_info, k, sample, lead_words, head_words, max_tokens, cache_max)
 *       title, body: normalized text. Tokenizes both like monitor.text's _TOKEN_RE (a run of
 *       Arabic letters, or a run of other \w characters), then returns the fingerprint's parts
 *       as native-endian bytes for array.frombytes:
 *       (shingles 'Q', head 'H', lead 'H', seq 'H', numbers 'I', lead_numbers 'I', n_words)
 *   words(text) -> list[str]      the tokenizer alone (for the equivalence tests)
 *   joined(text) -> str           ' ' + ' '.join(words(text)) + ' ' (watchlist matching)
 *   fold(text, table) -> (str, cased)   normalization's deletions and foldings in one pass
 *       (monitor.text builds the tables and keeps the reference path; see fp_fold)
 *   lines(text, drop) -> str      monitor.parse.html_to_text's whitespace and line layout
 *   doc_facts(text) -> (bool, int)  monitor.parse.neutralize's control and category checks
 *   has_c1(text) -> bool          monitor.parse: a C1 control (U+0080-U+009F) in text?
 *   cache_size() -> int           words in the cache
 *
 * Shingle hashes are CPython's tuple hash of the word hashes (xxHash-style, 64-bit builds),
 * computed here without building tuples; the golden test in tests/test_dedup.py pins them.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#if SIZEOF_PY_HASH_T != 8
#error "_fastprint needs a 64-bit Py_hash_t (the shingle hash is CPython's 64-bit tuple hash)"
#endif

/* ---- tokenizer ------------------------------------------------------------------------- */

static inline int is_arabic(Py_UCS4 c) {
    /* _ARABIC_LETTERS in monitor/text.py */
    return (c >= 0x0620 && c <= 0x064A) || (c >= 0x066E && c <= 0x06D3) || c == 0x06D5 ||
           c == 0x06EE || c == 0x06EF || (c >= 0x06FA && c <= 0x06FC) || c == 0x06FF ||
           (c >= 0x0750 && c <= 0x077F) || (c >= 0x08A0 && c <= 0x08C9);
}

/* 0: separator, 1: Arabic letter, 2: other word character (re's \w for str patterns). */
static inline int char_class(Py_UCS4 c) {
    if (c < 128) {
        return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                       c == '_'
                   ? 2
                   : 0;
    }
    if (is_arabic(c)) return 1;
    return Py_UNICODE_ISALNUM(c) ? 2 : 0;
}

/* ---- word cache: code points -> (hash, content, slot) ------------------------------------ */

#define INLINE 16 /* words this short (and all in the BMP) are kept in their entry */

typedef struct {      /* 64 bytes: one cache line per probe for nearly every word */
    uint64_t key;     /* FNV-1a of the code points (see scan_text); 0: an empty slot */
    uint64_t h;       /* the word's 64-bit hash */
    int32_t content;  /* 16-bit content hash, or -1 for a function word */
    uint16_t slot;    /* 16-bit slot hash */
    uint8_t len;      /* code points, if inline */
    uint8_t inl;      /* 1: the word is in `chars`; 0: in the arena at `off`, `alen` long */
    uint32_t off, alen;
    uint16_t chars[INLINE];
} Entry;
_Static_assert(sizeof(Entry) == 64, "an entry is one cache line");

static Entry *table = NULL;
static size_t table_cap = 0; /* a power of two */
static size_t table_count = 0;
static Py_UCS4 *arena = NULL; /* words that do not fit inline */
static size_t arena_len = 0, arena_cap = 0;

static void cache_clear(void) {
    free(table);
    free(arena);
    table = NULL;
    arena = NULL;
    table_cap = table_count = arena_len = arena_cap = 0;
}

static int table_grow(void) {
    size_t cap = table_cap ? table_cap * 2 : 1 << 14;
    Entry *t = aligned_alloc(64, cap * sizeof(Entry));
    if (t == NULL) return -1;
    memset(t, 0, cap * sizeof(Entry));
    for (size_t i = 0; i < table_cap; i++) {
        if (table[i].key == 0) continue;
        size_t j = table[i].key & (cap - 1);
        while (t[j].key != 0) j = (j + 1) & (cap - 1);
        t[j] = table[i];
    }
    free(table);
    table = t;
    table_cap = cap;
    return 0;
}

static inline int same_word(const Entry *e, const Py_UCS4 *w, Py_ssize_t n) {
    if (e->inl) {
        if (e->len != n) return 0;
        for (Py_ssize_t i = 0; i < n; i++)
            if (e->chars[i] != w[i]) return 0;
        return 1;
    }
    return e->alen == (uint32_t)n && memcmp(arena + e->off, w, n * sizeof(Py_UCS4)) == 0;
}

/* The entry of word w[0:n] (`key`: its FNV-1a hash, never 0), asking word_info on a miss.
 * NULL with an exception set on error. */
static Entry *lookup(const Py_UCS4 *w, Py_ssize_t n, uint64_t key, PyObject *word_info) {
    if (table == NULL && table_grow() < 0) {
        PyErr_NoMemory();
        return NULL;
    }
    size_t j = key & (table_cap - 1);
    while (table[j].key != 0) {
        Entry *e = &table[j];
        if (e->key == key && same_word(e, w, n)) return e;
        j = (j + 1) & (table_cap - 1);
    }
    PyObject *s = PyUnicode_FromKindAndData(PyUnicode_4BYTE_KIND, w, n);
    if (s == NULL) return NULL;
    PyObject *r = PyObject_CallOneArg(word_info, s);
    Py_DECREF(s);
    if (r == NULL) return NULL;
    if (!PyTuple_Check(r) || PyTuple_GET_SIZE(r) != 3) {
        Py_DECREF(r);
        PyErr_SetString(PyExc_TypeError, "word_info must return (hash, content, slot)");
        return NULL;
    }
    uint64_t h = PyLong_AsUnsignedLongLong(PyTuple_GET_ITEM(r, 0));
    long content = PyLong_AsLong(PyTuple_GET_ITEM(r, 1));
    long slot = PyLong_AsLong(PyTuple_GET_ITEM(r, 2));
    Py_DECREF(r);
    if (PyErr_Occurred()) return NULL;
    if (content < -1 || content > 0xFFFF || slot < 0 || slot > 0xFFFF) {
        PyErr_SetString(PyExc_ValueError, "word_info: content and slot must be 16-bit");
        return NULL;
    }
    /* word_info ran Python code: another thread may have used the cache meanwhile (added
     * this word, grown or cleared the table), so probe again before inserting. */
    if (table == NULL && table_grow() < 0) {
        PyErr_NoMemory();
        return NULL;
    }
    j = key & (table_cap - 1);
    while (table[j].key != 0) {
        if (table[j].key == key && same_word(&table[j], w, n)) return &table[j];
        j = (j + 1) & (table_cap - 1);
    }
    int inl = n <= INLINE;
    for (Py_ssize_t i = 0; inl && i < n; i++) inl = w[i] <= 0xFFFF;
    if (!inl && arena_len + n > arena_cap) {
        size_t cap = arena_cap ? arena_cap * 2 : 1 << 12;
        while (cap < arena_len + n) cap *= 2;
        if (cap > UINT32_MAX) {
            PyErr_NoMemory();
            return NULL;
        }
        Py_UCS4 *a = realloc(arena, cap * sizeof(Py_UCS4));
        if (a == NULL) {
            PyErr_NoMemory();
            return NULL;
        }
        arena = a;
        arena_cap = cap;
    }
    if ((table_count + 1) * 2 > table_cap) {
        if (table_grow() < 0) {
            PyErr_NoMemory();
            return NULL;
        }
        j = key & (table_cap - 1);
        while (table[j].key != 0) j = (j + 1) & (table_cap - 1);
    }
    Entry *e = &table[j];
    e->key = key;
    e->h = h;
    e->content = (int32_t)content;
    e->slot = (uint16_t)slot;
    e->inl = (uint8_t)inl;
    if (inl) {
        e->len = (uint8_t)n;
        for (Py_ssize_t i = 0; i < n; i++) e->chars[i] = (uint16_t)w[i];
    } else {
        memcpy(arena + arena_len, w, n * sizeof(Py_UCS4));
        e->off = (uint32_t)arena_len;
        e->alen = (uint32_t)n;
        arena_len += n;
    }
    table_count++;
    return e;
}

/* ---- tokens of one text ------------------------------------------------------------------ */

typedef struct {
    uint64_t h;
    int32_t content;
    uint32_t slot;
    int64_t number; /* value mod 2**32, or -1: not all decimal digits */
} Tok;

typedef struct {
    Tok *v;
    Py_ssize_t n, cap;
} Toks;

static int toks_push(Toks *t, const Tok *x) {
    if (t->n == t->cap) {
        Py_ssize_t cap = t->cap ? t->cap * 2 : 256;
        Tok *v = PyMem_Realloc(t->v, cap * sizeof(Tok));
        if (v == NULL) {
            PyErr_NoMemory();
            return -1;
        }
        t->v = v;
        t->cap = cap;
    }
    t->v[t->n++] = *x;
    return 0;
}

/* int(w) & 0xFFFFFFFF for a word of decimal digits (str.isdecimal(): any script's). */
static int64_t number_of(const Py_UCS4 *w, Py_ssize_t n) {
    int ascii = n <= 18;
    for (Py_ssize_t i = 0; ascii && i < n; i++) ascii = w[i] >= '0' && w[i] <= '9';
    if (ascii) {
        uint64_t v = 0;
        for (Py_ssize_t i = 0; i < n; i++) v = v * 10 + (w[i] - '0');
        return (int64_t)(v & 0xFFFFFFFFULL);
    }
    PyObject *s = PyUnicode_FromKindAndData(PyUnicode_4BYTE_KIND, w, n);
    if (s == NULL) return -2;
    PyObject *v = PyLong_FromUnicodeObject(s, 10);
    Py_DECREF(s);
    if (v == NULL) return -2;
    unsigned long long m = PyLong_AsUnsignedLongLongMask(v);
    Py_DECREF(v);
    if (m == (unsigned long long)-1 && PyErr_Occurred()) return -2;
    return (int64_t)(m & 0xFFFFFFFFULL);
}

typedef struct {
    Py_ssize_t start, n; /* the word's code points: chars[start:start + n] */
    uint64_t key;        /* fnv(word) */
    int digits;          /* str.isdecimal() */
} Span;

/* Appends the words of `text` (at most `limit`) to `out`, or, when `list` is given, appends
 * them to it as str (the tokenizer alone). -1 with an exception on error.
 * Two passes: the first splits the text into words, hashes them and prefetches their cache
 * slots; the second looks them up. The cache (8 MB at 60k words) does not fit in L2, and
 * overlapping the probes' memory reads halves this function's time. */
static int scan_text(PyObject *text, Py_ssize_t limit, PyObject *word_info, Toks *out,
                     PyObject *list) {
    int kind = PyUnicode_KIND(text);
    const void *data = PyUnicode_DATA(text);
    Py_ssize_t len = PyUnicode_GET_LENGTH(text);
    /* at most len code points in words, and at most len words ("aب" is two) */
    Py_UCS4 *chars = PyMem_Malloc((len + 1) * sizeof(Py_UCS4));
    Py_ssize_t max_spans = len < limit ? len : limit;
    Span *spans = PyMem_Malloc((max_spans + 1) * sizeof(Span));
    int rc = -1;
    if (chars == NULL || spans == NULL) {
        PyErr_NoMemory();
        goto done;
    }
    Py_ssize_t count = 0, i = 0, used = 0;
    while (i < len && count < limit) {
        Py_UCS4 c = PyUnicode_READ(kind, data, i);
        int cls = char_class(c);
        if (cls == 0) {
            i++;
            continue;
        }
        Span *sp = &spans[count++];
        sp->start = used;
        uint64_t x = 14695981039346656037ULL; /* fnv(), inline */
        int digits = 1;
        while (1) {
            chars[used++] = c;
            x ^= c;
            x *= 1099511628211ULL;
            /* str.isdecimal(); no Arabic letter is a digit */
            digits = digits && cls == 2 &&
                     (c < 128 ? c >= '0' && c <= '9' : Py_UNICODE_ISDECIMAL(c));
            if (++i == len) break;
            c = PyUnicode_READ(kind, data, i);
            if (char_class(c) != cls) break;
        }
        sp->n = used - sp->start;
        sp->key = x ? x : 1;
        sp->digits = digits;
        if (list == NULL && table != NULL) __builtin_prefetch(&table[sp->key & (table_cap - 1)]);
    }
    if (list != NULL) {
        for (Py_ssize_t k = 0; k < count; k++) {
            PyObject *w = PyUnicode_FromKindAndData(PyUnicode_4BYTE_KIND,
                                                    chars + spans[k].start, spans[k].n);
            if (w == NULL || PyList_Append(list, w) < 0) {
                Py_XDECREF(w);
                goto done;
            }
            Py_DECREF(w);
        }
        rc = 0;
        goto done;
    }
    for (Py_ssize_t k = 0; k < count; k++) {
        const Py_UCS4 *w = chars + spans[k].start;
        Entry *e = lookup(w, spans[k].n, spans[k].key, word_info);
        if (e == NULL) goto done;
        Tok t = {e->h, e->content, e->slot, -1};
        if (spans[k].digits) {
            t.number = number_of(w, spans[k].n);
            if (t.number == -2) goto done;
        }
        if (toks_push(out, &t) < 0) goto done;
    }
    rc = 0;
done:
    PyMem_Free(chars);
    PyMem_Free(spans);
    return rc;
}

/* ---- the fingerprint's parts ------------------------------------------------------------- */

#define XXPRIME_1 11400714785074694791ULL
#define XXPRIME_2 14029467366897019727ULL
#define XXPRIME_5 2870177450012600261ULL
#define XXROTATE(x) (((x) << 31) | ((x) >> 33))
#define HASH_MODULUS ((1ULL << 61) - 1) /* hash(int) of a non-negative int: value mod this */

/* hash(tuple(lanes' ints)) & (2**64 - 1), as CPython 3.8+ computes it for 64-bit builds. */
static inline uint64_t tuple_hash(const uint64_t *lanes, Py_ssize_t n) {
    uint64_t acc = XXPRIME_5;
    for (Py_ssize_t i = 0; i < n; i++) {
        acc += lanes[i] * XXPRIME_2;
        acc = XXROTATE(acc);
        acc *= XXPRIME_1;
    }
    acc += (uint64_t)n ^ (XXPRIME_5 ^ 3527539ULL);
    if (acc == (uint64_t)-1) return 1546275796ULL;
    return acc;
}

static int cmp_u64(const void *a, const void *b) {
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

static int cmp_u32(const void *a, const void *b) {
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return (x > y) - (x < y);
}

/* Sorted, unique; returns the new length. */
static Py_ssize_t uniq_u64(uint64_t *v, Py_ssize_t n) {
    if (n < 2) return n;
    qsort(v, n, sizeof *v, cmp_u64);
    Py_ssize_t m = 1;
    for (Py_ssize_t i = 1; i < n; i++)
        if (v[i] != v[m - 1]) v[m++] = v[i];
    return m;
}

static Py_ssize_t uniq_u32(uint32_t *v, Py_ssize_t n) {
    if (n < 2) return n;
    qsort(v, n, sizeof *v, cmp_u32);
    Py_ssize_t m = 1;
    for (Py_ssize_t i = 1; i < n; i++)
        if (v[i] != v[m - 1]) v[m++] = v[i];
    return m;
}

/* The set of 16-bit content hashes of toks[:upto] and title (function words left out),
 * sorted, as 'H' bytes. A 65,536-bit map (`seen`, 1024 words) keeps it linear. */
static PyObject *content_set(const Toks *toks, Py_ssize_t upto, const Toks *title,
                             uint64_t *seen) {
    uint16_t out[512];
    Py_ssize_t m = 0;
    const Toks *parts[2] = {toks, title};
    Py_ssize_t ends[2] = {upto < toks->n ? upto : toks->n, title->n};
    memset(seen, 0, 1024 * sizeof(uint64_t));
    for (int p = 0; p < 2; p++) {
        for (Py_ssize_t i = 0; i < ends[p]; i++) {
            int32_t c = parts[p]->v[i].content;
            if (c < 0) continue;
            seen[c >> 6] |= 1ULL << (c & 63);
            m++;
        }
    }
    uint16_t *vals = m <= 512 ? out : PyMem_Malloc(m * sizeof(uint16_t));
    if (vals == NULL) return PyErr_NoMemory();
    Py_ssize_t k = 0;
    if (m) {
                for (int w = 0; w < 1024; w++) {
            uint64_t b = seen[w];
            while (b) {
                int bit = __builtin_ctzll(b);
                vals[k++] = (uint16_t)(w * 64 + bit);
                b &= b - 1;
            }
        }
    }
    PyObject *r = PyBytes_FromStringAndSize(k ? (const char *)vals : "", k * sizeof(uint16_t));
    if (vals != out) PyMem_Free(vals);
    return r;
}

static PyObject *numbers(const Toks *toks, Py_ssize_t upto, const Toks *title) {
    Py_ssize_t end = upto < toks->n ? upto : toks->n;
    uint32_t *v = PyMem_Malloc((end + title->n + 1) * sizeof(uint32_t));
    if (v == NULL) return PyErr_NoMemory();
    Py_ssize_t m = 0;
    for (Py_ssize_t i = 0; i < end; i++)
        if (toks->v[i].number >= 0) v[m++] = (uint32_t)toks->v[i].number;
    for (Py_ssize_t i = 0; i < title->n; i++)
        if (title->v[i].number >= 0) v[m++] = (uint32_t)title->v[i].number;
    m = uniq_u32(v, m);
    PyObject *r = PyBytes_FromStringAndSize((const char *)v, m * sizeof(uint32_t));
    PyMem_Free(v);
    return r;
}

static PyObject *shingles(const Toks *toks, Py_ssize_t k, uint64_t sample) {
    Py_ssize_t n = toks->n;
    uint64_t *lanes = PyMem_Malloc((n + 1) * sizeof(uint64_t));
    uint64_t *kept = PyMem_Malloc((n + 1) * sizeof(uint64_t));
    if (lanes == NULL || kept == NULL) {
        PyMem_Free(lanes);
        PyMem_Free(kept);
        return PyErr_NoMemory();
    }
    for (Py_ssize_t i = 0; i < n; i++) lanes[i] = toks->v[i].h % HASH_MODULUS;
    Py_ssize_t m = 0;
    if (n >= k) {
        for (Py_ssize_t i = 0; i + k <= n; i++) {
            uint64_t h = tuple_hash(lanes + i, k);
            if (h % sample == 0) kept[m++] = h;
        }
    } else if (n > 0) {
        uint64_t h = tuple_hash(lanes, n);
        if (h % sample == 0) kept[m++] = h;
    }
    m = uniq_u64(kept, m);
    PyObject *r = PyBytes_FromStringAndSize((const char *)kept, m * sizeof(uint64_t));
    PyMem_Free(lanes);
    PyMem_Free(kept);
    return r;
}

static PyObject *fp_scan(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    (void)self;
    Py_ssize_t k, sample, lead_words, head_words, max_tokens, cache_max;
    if (nargs != 9) {
        PyErr_SetString(PyExc_TypeError, "scan() takes 9 arguments");
        return NULL;
    }
    PyObject *title = args[0], *body = args[1], *word_info = args[2];
    if (!PyUnicode_Check(title) || !PyUnicode_Check(body)) {
        PyErr_SetString(PyExc_TypeError, "scan(): title and body must be str");
        return NULL;
    }
    if (!PyCallable_Check(word_info)) {
        PyErr_SetString(PyExc_TypeError, "scan(): word_info must be callable");
        return NULL;
    }
    Py_ssize_t *ints[6] = {&k, &sample, &lead_words, &head_words, &max_tokens, &cache_max};
    for (int i = 0; i < 6; i++) {
        *ints[i] = PyLong_AsSsize_t(args[3 + i]);
        if (*ints[i] == -1 && PyErr_Occurred()) return NULL;
        if (*ints[i] < 1) {
            PyErr_SetString(PyExc_ValueError, "scan(): sizes must be positive");
            return NULL;
        }
    }
    if (table_count > (size_t)cache_max) cache_clear();
    if (table == NULL && table_grow() < 0) return PyErr_NoMemory();

    Toks body_toks = {NULL, 0, 0}, title_toks = {NULL, 0, 0};
    PyObject *res = NULL, *sh = NULL, *head = NULL, *lead = NULL, *seq = NULL, *nums = NULL,
             *lnums = NULL;
    uint64_t *seen = NULL;
    if (scan_text(body, max_tokens, word_info, &body_toks, NULL) < 0) goto done;
    if (scan_text(title, PY_SSIZE_T_MAX, word_info, &title_toks, NULL) < 0) goto done;
    if (body_toks.n < k) { /* too short: the title is shingled with it */
        Toks all = {NULL, 0, 0};
        for (Py_ssize_t i = 0; i < title_toks.n; i++)
            if (toks_push(&all, &title_toks.v[i]) < 0) goto fail_all;
        for (Py_ssize_t i = 0; i < body_toks.n; i++)
            if (toks_push(&all, &body_toks.v[i]) < 0) goto fail_all;
        PyMem_Free(body_toks.v);
        body_toks = all;
        goto ok_all;
    fail_all:
        PyMem_Free(all.v);
        goto done;
    ok_all:;
    }
    seen = PyMem_Malloc(1024 * sizeof(uint64_t));
    if (seen == NULL) {
        PyErr_NoMemory();
        goto done;
    }
    sh = shingles(&body_toks, k, (uint64_t)sample);
    head = content_set(&body_toks, head_words, &title_toks, seen);
    lead = content_set(&body_toks, lead_words, &title_toks, seen);
    nums = numbers(&body_toks, PY_SSIZE_T_MAX, &title_toks);
    lnums = numbers(&body_toks, lead_words, &title_toks);
    {
        Py_ssize_t m = lead_words < body_toks.n ? lead_words : body_toks.n;
        seq = PyBytes_FromStringAndSize(NULL, m * sizeof(uint16_t));
        if (seq != NULL) {
            uint16_t *s = (uint16_t *)PyBytes_AS_STRING(seq);
            for (Py_ssize_t i = 0; i < m; i++) s[i] = (uint16_t)body_toks.v[i].slot;
        }
    }
    if (sh && head && lead && seq && nums && lnums)
        res = Py_BuildValue("(OOOOOOn)", sh, head, lead, seq, nums, lnums, body_toks.n);
done:
    Py_XDECREF(sh);
    Py_XDECREF(head);
    Py_XDECREF(lead);
    Py_XDECREF(seq);
    Py_XDECREF(nums);
    Py_XDECREF(lnums);
    PyMem_Free(seen);
    PyMem_Free(body_toks.v);
    PyMem_Free(title_toks.v);
    return res;
}

static PyObject *fp_words(PyObject *self, PyObject *text) {
    (void)self;
    if (!PyUnicode_Check(text)) {
        PyErr_SetString(PyExc_TypeError, "words(): text must be str");
        return NULL;
    }
    PyObject *list = PyList_New(0);
    if (list == NULL) return NULL;
    if (scan_text(text, PY_SSIZE_T_MAX, NULL, NULL, list) < 0) {
        Py_DECREF(list);
        return NULL;
    }
    return list;
}

/* ---- normalization's character pass (see monitor/text.py: normalize, joined_words) -------- */

#define FOLD_DELETE 0x80000000u /* table flag: the character is deleted */
#define FOLD_CASED 0x40000000u  /* table flag: str.casefold() changes the output character */
#define FOLD_VALUE 0x001FFFFFu  /* the output code point */

/* fold(text, table) -> (str, cased): every BMP character c of `text` replaced by table[c]
 * (`table`: 65,536 native uint32, as array('I').tobytes()), or deleted when table[c] has
 * FOLD_DELETE; characters outside the BMP are kept. `cased` is True when some output character
 * has FOLD_CASED or is outside the BMP: only then can str.casefold() change the result. The
 * text itself is returned when nothing changes. */
static PyObject *fp_fold(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    (void)self;
    if (nargs != 2 || !PyUnicode_Check(args[0]) || !PyBytes_Check(args[1]) ||
        PyBytes_GET_SIZE(args[1]) != 0x10000 * (Py_ssize_t)sizeof(uint32_t)) {
        PyErr_SetString(PyExc_TypeError, "fold(text: str, table: bytes of 65536 uint32)");
        return NULL;
    }
    PyObject *text = args[0];
    const uint32_t *table = (const uint32_t *)PyBytes_AS_STRING(args[1]);
    int kind = PyUnicode_KIND(text);
    const void *data = PyUnicode_DATA(text);
    Py_ssize_t len = PyUnicode_GET_LENGTH(text), i = 0, o = 0;
    int cased = 0;
    for (; i < len; i++) { /* the unchanged start, not copied */
        Py_UCS4 c = PyUnicode_READ(kind, data, i);
        if (c > 0xFFFF) {
            cased = 1;
            continue;
        }
        uint32_t t = table[c];
        if ((t & (FOLD_DELETE | FOLD_VALUE)) != c) break;
        if (t & FOLD_CASED) cased = 1;
    }
    PyObject *out;
    if (i == len) {
        out = Py_NewRef(text);
    } else {
        Py_UCS4 *buf = PyMem_Malloc((len + 1) * sizeof(Py_UCS4));
        if (buf == NULL) return PyErr_NoMemory();
        for (; o < i; o++) buf[o] = PyUnicode_READ(kind, data, o);
        for (; i < len; i++) {
            Py_UCS4 c = PyUnicode_READ(kind, data, i);
            if (c > 0xFFFF) {
                cased = 1;
                buf[o++] = c;
                continue;
            }
            uint32_t t = table[c];
            if (t & FOLD_DELETE) continue;
            if (t & FOLD_CASED) cased = 1;
            buf[o++] = t & FOLD_VALUE;
        }
        out = PyUnicode_FromKindAndData(PyUnicode_4BYTE_KIND, buf, o);
        PyMem_Free(buf);
        if (out == NULL) return NULL;
    }
    PyObject *r = PyTuple_Pack(2, out, cased ? Py_True : Py_False);
    Py_DECREF(out);
    return r;
}

/* joined(text) -> ' ' + ' '.join(words(text)) + ' ', without the list (for matching). */
static PyObject *fp_joined(PyObject *self, PyObject *text) {
    (void)self;
    if (!PyUnicode_Check(text)) {
        PyErr_SetString(PyExc_TypeError, "joined(): text must be str");
        return NULL;
    }
    int kind = PyUnicode_KIND(text);
    const void *data = PyUnicode_DATA(text);
    Py_ssize_t len = PyUnicode_GET_LENGTH(text);
    /* a space, then each character and a space before it at most, then a space */
    Py_UCS4 *buf = PyMem_Malloc((2 * len + 2) * sizeof(Py_UCS4));
    if (buf == NULL) return PyErr_NoMemory();
    Py_ssize_t o = 0;
    int prev = 0;
    buf[o++] = ' ';
    for (Py_ssize_t i = 0; i < len; i++) {
        Py_UCS4 c = PyUnicode_READ(kind, data, i);
        int cls = char_class(c);
        if (cls == 0) {
            prev = 0;
            continue;
        }
        if (cls != prev && o > 1) buf[o++] = ' '; /* a new word, not the first */
        buf[o++] = c;
        prev = cls;
    }
    buf[o++] = ' ';
    PyObject *r = PyUnicode_FromKindAndData(PyUnicode_4BYTE_KIND, buf, o);
    PyMem_Free(buf);
    return r;
}

/* lines(text, drop) -> str: monitor.parse's plain-text layout of `text` without the characters
 * of `drop`: "\n".join(l for l in (" ".join(line.split()) for line in text.splitlines()) if l).
 * Every line break (str.splitlines) is whitespace (str.split), so that is: the non-space runs,
 * separated by "\n" where the whitespace between them holds a line break, else by " ". */
static PyObject *fp_lines(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    (void)self;
    if (nargs != 2 || !PyUnicode_Check(args[0]) || !PyUnicode_Check(args[1])) {
        PyErr_SetString(PyExc_TypeError, "lines(text: str, drop: str)");
        return NULL;
    }
    PyObject *text = args[0], *drop = args[1];
    int kind = PyUnicode_KIND(text), dkind = PyUnicode_KIND(drop);
    const void *data = PyUnicode_DATA(text), *ddata = PyUnicode_DATA(drop);
    Py_ssize_t len = PyUnicode_GET_LENGTH(text), dlen = PyUnicode_GET_LENGTH(drop);
    Py_UCS4 dmin = 0x10FFFF, dmax = 0;
    for (Py_ssize_t j = 0; j < dlen; j++) {
        Py_UCS4 d = PyUnicode_READ(dkind, ddata, j);
        if (d < dmin) dmin = d;
        if (d > dmax) dmax = d;
    }
    Py_UCS4 *buf = PyMem_Malloc((len + 1) * sizeof(Py_UCS4));
    if (buf == NULL) return PyErr_NoMemory();
    Py_ssize_t o = 0;
    int gap = 0; /* whitespace since the last kept character: 0 none, 1 spaces, 2 a line break */
    for (Py_ssize_t i = 0; i < len; i++) {
        Py_UCS4 c = PyUnicode_READ(kind, data, i);
        if (c >= dmin && c <= dmax) {
            int dropped = 0;
            for (Py_ssize_t j = 0; j < dlen && !dropped; j++)
                dropped = PyUnicode_READ(dkind, ddata, j) == c;
            if (dropped) continue;
        }
        if (Py_UNICODE_ISSPACE(c)) {
            if (Py_UNICODE_ISLINEBREAK(c))
                gap = 2;
            else if (gap == 0)
                gap = 1;
            continue;
        }
        if (gap && o > 0) buf[o++] = gap == 2 ? '\n' : ' ';
        gap = 0;
        buf[o++] = c;
    }
    PyObject *r = PyUnicode_FromKindAndData(PyUnicode_4BYTE_KIND, buf, o);
    PyMem_Free(buf);
    return r;
}

/* Whether text[i:i + n] is the ASCII letters of `word` (lowercase) in any case. */
static inline int ascii_ci_at(int kind, const void *data, Py_ssize_t i, Py_ssize_t len,
                              const char *word, Py_ssize_t n) {
    if (i + n > len) return 0;
    for (Py_ssize_t k = 0; k < n; k++) {
        Py_UCS4 c = PyUnicode_READ(kind, data, i + k);
        if (c >= 128 || (c | 0x20) != (Py_UCS4)word[k]) return 0;
    }
    return 1;
}

/* doc_facts(text) -> (controls, names): for monitor.parse.neutralize, in one pass over a feed
 * document: whether it holds a character _CONTROL_RE removes (C0 controls but tab, newline and
 * carriage return; U+FFFE, U+FFFF), and how many times "category" and "subject" occur in it,
 * ASCII case ignored (what text.lower().count() counts: no other character lowercases to
 * these letters, and neither word overlaps itself or the other). */
static PyObject *fp_doc_facts(PyObject *self, PyObject *text) {
    (void)self;
    if (!PyUnicode_Check(text)) {
        PyErr_SetString(PyExc_TypeError, "doc_facts(): text must be str");
        return NULL;
    }
    int kind = PyUnicode_KIND(text);
    const void *data = PyUnicode_DATA(text);
    Py_ssize_t len = PyUnicode_GET_LENGTH(text), names = 0;
    int controls = 0;
    for (Py_ssize_t i = 0; i < len; i++) {
        Py_UCS4 c = PyUnicode_READ(kind, data, i);
        if (c < 0x20) {
            if (c != '\t' && c != '\n' && c != '\r') controls = 1;
        } else if (c == 0xFFFE || c == 0xFFFF) {
            controls = 1;
        } else if ((c | 0x20) == 'c') {
            names += ascii_ci_at(kind, data, i, len, "category", 8);
        } else if ((c | 0x20) == 's') {
            names += ascii_ci_at(kind, data, i, len, "subject", 7);
        }
    }
    return Py_BuildValue("(On)", controls ? Py_True : Py_False, names);
}

static PyObject *fp_cache_size(PyObject *self, PyObject *unused) {
    (void)self;
    (void)unused;
    return PyLong_FromSize_t(table_count);
}

/* ---- StoryIndex postings (see monitor/dedup.py: _counts_py, _post_py) -------------------- */

/* probe(buckets, raw, live, max_postings) -> (counts, ignored): for each 8-byte shingle hash in
 * `raw` (native order, as array('Q').tobytes()), the records of its bucket whose key (bytes 3-7)
 * is the shingle's, whose item (bytes 0-2, little-endian) is in `live`; a shingle with more
 * than max_postings live items is ignored. counts: item seq -> shared shingles, in the order
 * the Python path inserts them. */
static PyObject *fp_probe(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    (void)self;
    if (nargs != 4 || !PyList_Check(args[0]) || !PyBytes_Check(args[1]) ||
        !PyDict_Check(args[2])) {
        PyErr_SetString(PyExc_TypeError, "probe(buckets: list, raw: bytes, live: dict, int)");
        return NULL;
    }
    PyObject *buckets = args[0], *live = args[2];
    Py_ssize_t max_postings = PyLong_AsSsize_t(args[3]);
    if (max_postings == -1 && PyErr_Occurred()) return NULL;
    Py_ssize_t nb = PyList_GET_SIZE(buckets);
    if (nb == 0 || (nb & (nb - 1)) != 0) {
        PyErr_SetString(PyExc_ValueError, "probe(): the bucket count must be a power of two");
        return NULL;
    }
    const unsigned char *raw = (const unsigned char *)PyBytes_AS_STRING(args[1]);
    Py_ssize_t n = PyBytes_GET_SIZE(args[1]) / 8;
    PyObject *counts = PyDict_New();
    if (counts == NULL) return NULL;
    Py_ssize_t ignored = 0;
    PyObject **hits = PyMem_Malloc((max_postings + 1) * sizeof(PyObject *));
    if (hits == NULL) {
        Py_DECREF(counts);
        return PyErr_NoMemory();
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        uint64_t h;
        memcpy(&h, raw + 8 * i, 8);
        PyObject *bucket = PyList_GET_ITEM(buckets, (Py_ssize_t)((h >> 3) & (uint64_t)(nb - 1)));
        if (bucket == Py_None) continue;
        if (!PyByteArray_Check(bucket)) {
            PyErr_SetString(PyExc_TypeError, "probe(): a bucket is a bytearray or None");
            goto fail;
        }
        const unsigned char *rec = (const unsigned char *)PyByteArray_AS_STRING(bucket);
        Py_ssize_t len = PyByteArray_GET_SIZE(bucket);
        const unsigned char *key = raw + 8 * i + 3;
        Py_ssize_t nh = 0;
        for (Py_ssize_t pos = 0; pos + 8 <= len && nh <= max_postings; pos += 8) {
            if (memcmp(rec + pos + 3, key, 5) != 0) continue;
            long seq = (long)rec[pos] | (long)rec[pos + 1] << 8 | (long)rec[pos + 2] << 16;
            PyObject *k = PyLong_FromLong(seq);
            if (k == NULL) goto fail_hits;
            int in = PyDict_Contains(live, k);
            if (in < 0) {
                Py_DECREF(k);
                goto fail_hits;
            }
            if (in)
                hits[nh++] = k;
            else
                Py_DECREF(k);
        }
        if (nh > max_postings) {
            ignored++;
        } else {
            for (Py_ssize_t j = 0; j < nh; j++) {
                PyObject *c = PyDict_GetItemWithError(counts, hits[j]);
                if (c == NULL && PyErr_Occurred()) goto fail_hits;
                PyObject *v = PyLong_FromLong(c == NULL ? 1 : PyLong_AsLong(c) + 1);
                if (v == NULL || PyDict_SetItem(counts, hits[j], v) < 0) {
                    Py_XDECREF(v);
                    goto fail_hits;
                }
                Py_DECREF(v);
            }
        }
        for (Py_ssize_t j = 0; j < nh; j++) Py_DECREF(hits[j]);
        continue;
    fail_hits:
        for (Py_ssize_t j = 0; j < nh; j++) Py_DECREF(hits[j]);
        goto fail;
    }
    PyMem_Free(hits);
    PyObject *r = Py_BuildValue("(Nn)", counts, ignored);
    return r;
fail:
    PyMem_Free(hits);
    Py_DECREF(counts);
    return NULL;
}

/* post(buckets, raw, seq): append one 8-byte record (seq's 3 bytes, little-endian, then the
 * hash's bytes 3-7) per shingle of `raw` to its bucket, creating the bytearray if None. */
static PyObject *fp_post(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    (void)self;
    if (nargs != 3 || !PyList_Check(args[0]) || !PyBytes_Check(args[1])) {
        PyErr_SetString(PyExc_TypeError, "post(buckets: list, raw: bytes, seq: int)");
        return NULL;
    }
    PyObject *buckets = args[0];
    long seq = PyLong_AsLong(args[2]);
    if (seq == -1 && PyErr_Occurred()) return NULL;
    if (seq < 0 || seq > 0xFFFFFF) {
        PyErr_SetString(PyExc_ValueError, "post(): seq must be 24-bit");
        return NULL;
    }
    Py_ssize_t nb = PyList_GET_SIZE(buckets);
    if (nb == 0 || (nb & (nb - 1)) != 0) {
        PyErr_SetString(PyExc_ValueError, "post(): the bucket count must be a power of two");
        return NULL;
    }
    const unsigned char *raw = (const unsigned char *)PyBytes_AS_STRING(args[1]);
    Py_ssize_t n = PyBytes_GET_SIZE(args[1]) / 8;
    unsigned char record[8] = {(unsigned char)(seq & 0xFF), (unsigned char)(seq >> 8 & 0xFF),
                               (unsigned char)(seq >> 16 & 0xFF)};
    for (Py_ssize_t i = 0; i < n; i++) {
        uint64_t h;
        memcpy(&h, raw + 8 * i, 8);
        memcpy(record + 3, raw + 8 * i + 3, 5);
        Py_ssize_t b = (Py_ssize_t)((h >> 3) & (uint64_t)(nb - 1));
        PyObject *bucket = PyList_GET_ITEM(buckets, b);
        if (bucket == Py_None) {
            PyObject *fresh = PyByteArray_FromStringAndSize((const char *)record, 8);
            if (fresh == NULL) return NULL;
            PyList_SetItem(buckets, b, fresh); /* steals fresh, releases None */
            continue;
        }
        if (!PyByteArray_Check(bucket)) {
            PyErr_SetString(PyExc_TypeError, "post(): a bucket is a bytearray or None");
            return NULL;
        }
        Py_ssize_t len = PyByteArray_GET_SIZE(bucket);
        if (PyByteArray_Resize(bucket, len + 8) < 0) return NULL;
        memcpy(PyByteArray_AS_STRING(bucket) + len, record, 8);
    }
    Py_RETURN_NONE;
}

/* has_c1(text) -> bool: whether text holds a C1 control (U+0080-U+009F), which feedparser maps
 * to cp1252's punctuation: monitor.parse._as_feedparser_gives skips its str.translate without
 * one (re's search for the class costs ~3 ns a character of Arabic text; this, under 1 ns). */
static PyObject *fp_has_c1(PyObject *self, PyObject *text) {
    (void)self;
    if (!PyUnicode_Check(text)) {
        PyErr_SetString(PyExc_TypeError, "has_c1(): text must be str");
        return NULL;
    }
    if (PyUnicode_IS_ASCII(text)) Py_RETURN_FALSE;
    int kind = PyUnicode_KIND(text);
    const void *data = PyUnicode_DATA(text);
    Py_ssize_t len = PyUnicode_GET_LENGTH(text);
    for (Py_ssize_t i = 0; i < len; i++) {
        Py_UCS4 c = PyUnicode_READ(kind, data, i);
        if (c >= 0x80 && c <= 0x9F) Py_RETURN_TRUE;
    }
    Py_RETURN_FALSE;
}

static PyMethodDef methods[] = {
    {"scan", (PyCFunction)(void (*)(void))fp_scan, METH_FASTCALL,
     "scan(title, body, word_info, k, sample, lead_words, head_words, max_tokens, cache_max)"},
    {"words", fp_words, METH_O, "words(text) -> the words of normalized text, in order"},
    {"fold", (PyCFunction)(void (*)(void))fp_fold, METH_FASTCALL,
     "fold(text, table) -> (str, cased): the table's deletions and replacements, one pass"},
    {"joined", fp_joined, METH_O, "joined(text) -> ' ' + ' '.join(words(text)) + ' '"},
    {"lines", (PyCFunction)(void (*)(void))fp_lines, METH_FASTCALL,
     "lines(text, drop) -> lines of words, single-spaced, no blank lines, `drop` deleted"},
    {"doc_facts", fp_doc_facts, METH_O,
     "doc_facts(text) -> (controls, names): control characters? category/subject count"},
    {"has_c1", fp_has_c1, METH_O, "has_c1(text) -> whether text holds U+0080-U+009F"},
    {"cache_size", fp_cache_size, METH_NOARGS, "cache_size() -> words in the word cache"},
    {"probe", (PyCFunction)(void (*)(void))fp_probe, METH_FASTCALL,
     "probe(buckets, raw, live, max_postings) -> (counts, ignored)"},
    {"post", (PyCFunction)(void (*)(void))fp_post, METH_FASTCALL,
     "post(buckets, raw, seq): append the postings of one item"},
    {NULL, NULL, 0, NULL},
};

static void fp_free(void *m) {
    (void)m;
    cache_clear();
}

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_fastprint", "The per-word work of monitor.dedup.fingerprint.", -1,
    methods, NULL, NULL, NULL, fp_free,
};

PyMODINIT_FUNC PyInit__fastprint(void) { return PyModule_Create(&module); }
