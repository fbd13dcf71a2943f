/*
 * X12 EDI reader (contract section 7): cuts a buffer into interchanges,
 * functional groups, transaction sets and segments, checks the envelopes,
 * hands each set to the mapping (x12_map.c) and, when asked, writes a 997
 * per interchange (x12_ack.c).
 *
 * Delimiters come from each ISA: the element separator is the byte after
 * "ISA", the component separator is ISA16 (the first byte after the 16th
 * element separator), the segment terminator the byte after that. The ISA
 * is split on its separator rather than read at fixed offsets, so an
 * unpadded ISA reads as well as a padded one. CR and LF after a terminator
 * are skipped, and so are empty segments; every other segment counts, and
 * is numbered from 1 at the first ISA of the file for error messages.
 *
 * Structure is one state machine driven by a table of envelope segments
 * (ISA, GS, ST, SE, GE, IEA, TA1); everything else is a body segment. A
 * problem rejects the smallest unit it spoils: a bad SE (count, control
 * number, missing) or a mapping problem rejects its set; a bad GE its group;
 * a bad IEA or content outside any group its interchange. Events of an
 * accepted set are appended to the output at once and taken off again when
 * their group or interchange is rejected later, so nothing is copied twice.
 */
#include "core/err.h"
#include "formats/convert.h"
#include "formats/x12_int.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ISA_MAX_BYTES  512 /* an ISA is 106 bytes when padded; unpadded ones are shorter */
#define SET_MAX_ISSUES 100 /* problems listed per set; the rest are counted */
#define MAX_ELEMENTS   0xfffffff0u

/* Where the reader is: outside any interchange, or inside ISA, GS, ST. */
enum state { S_OUT, S_ISA, S_GS, S_ST };

/* TA1 note codes (X12 element I18) that reject an interchange. */
#define TA1_CTRL_MISMATCH "001" /* IEA02 differs from ISA13 */
#define TA1_BAD_CTRL      "018" /* ISA13 is not a control number */
#define TA1_GROUP_COUNT   "021" /* IEA01 differs from the groups counted */
#define TA1_EOF           "023" /* the interchange ends without an IEA */
#define TA1_CONTENT       "024" /* content outside a functional group */

/* AK5 (718) and AK9 (716) codes the envelope checks give. */
enum {
    AK5_NOT_SUPPORTED = 1,
    AK5_NO_TRAILER = 2,
    AK5_CTRL_MISMATCH = 3,
    AK5_COUNT = 4,
    AK5_SEGMENTS = 5,
    AK5_BAD_ID = 6,
};
enum { AK9_NO_TRAILER = 3, AK9_CTRL_MISMATCH = 4, AK9_COUNT = 5 };

/* The reader; the mapping sees it only as a problem collector. */
struct x12_sink {
    const char *buf;
    size_t len, off;
    const struct xd_convert_opts *o;
    struct xd_verrs *errs;
    struct xd_buf *ack;
    cJSON *out;    /* events of accepted sets */
    size_t nout;   /* items in out */
    size_t issues; /* problems reported */
    int oom;
    enum state state;
    char es, cs, st;     /* delimiters of the current interchange */
    size_t segno;        /* segments read so far */
    struct x12_seg last; /* the last segment read, for "input ends" messages */

    /* segments of the current set (or just the current segment outside one) */
    struct x12_seg *segs;
    size_t nsegs, segcap;
    struct x12_view *els;
    size_t nels, elcap;

    /* the current interchange, kept for its 997 */
    size_t nics; /* interchanges begun */
    struct x12_ack_ic ic;
    int isa13_ok;
    size_t ic_mark;  /* nout when it began */
    size_t grp_mark; /* nout when the current group began */
    int stray;       /* a stray segment was reported and none since is in place */
    struct x12_ack_group *groups;
    size_t ngroups, gcap;
    struct x12_ack_set *sets;
    size_t nsets, scap;
    struct x12_ack_err *aerrs;
    size_t naerrs, aecap;
    size_t set_issues;    /* problems in the current set */
    struct pending *pend; /* ... waiting for the set to close */
    size_t npend, pendcap;
    struct xd_buf ptext;        /* their texts */
    struct x12_scratch scratch; /* the mapping's, kept between sets */
    unsigned char set_bad;      /* AK5 code already earned by the current set's segments */
};

/* ---- small helpers ---- */

struct x12_view xd_x12_trim(struct x12_view v)
{
    while (v.n && v.p[0] == ' ')
        v.p++, v.n--;
    while (v.n && v.p[v.n - 1] == ' ')
        v.n--;
    return v;
}

int xd_x12_eq(struct x12_view v, const char *s)
{
    size_t n = strlen(s);
    return v.n == n && memcmp(v.p, s, n) == 0;
}

static int all_digits(struct x12_view v)
{
    if (v.n == 0)
        return 0;
    for (size_t i = 0; i < v.n; i++)
        if (v.p[i] < '0' || v.p[i] > '9')
            return 0;
    return 1;
}

/*
 * Control numbers and counts match when equal as trimmed strings, or as
 * numbers when both are digits ("000000123" and "123"): leading zeros are
 * padding, not identity.
 */
static int ctrl_eq(struct x12_view a, struct x12_view b)
{
    a = xd_x12_trim(a);
    b = xd_x12_trim(b);
    if (all_digits(a) && all_digits(b)) {
        while (a.n > 1 && a.p[0] == '0')
            a.p++, a.n--;
        while (b.n > 1 && b.p[0] == '0')
            b.p++, b.n--;
    }
    return a.n == b.n && memcmp(a.p, b.p, a.n) == 0;
}

/* A count element: digits, at most 9; -1 otherwise. */
static long count_of(struct x12_view v)
{
    v = xd_x12_trim(v);
    if (!all_digits(v) || v.n > 9)
        return -1;
    long n = 0;
    for (size_t i = 0; i < v.n; i++)
        n = n * 10 + (v.p[i] - '0');
    return n;
}

/* Up to 24 bytes of v for a message, anything unprintable as '?'. */
static const char *shown(char out[32], struct x12_view v)
{
    size_t n = v.n > 24 ? 24 : v.n, i;
    for (i = 0; i < n; i++) {
        unsigned char c = (unsigned char)v.p[i];
        out[i] = c >= 0x20 && c < 0x7f && c != '\'' ? (char)c : '?';
    }
    if (v.n > n)
        memcpy(out + i, "...", 3), i += 3;
    out[i] = '\0';
    return out;
}

static int grow(void **p, size_t *cap, size_t need, size_t size)
{
    if (need <= *cap)
        return 0;
    size_t cap2 = *cap ? *cap * 2 : 16;
    while (cap2 < need)
        cap2 *= 2;
    if (cap2 > SIZE_MAX / size)
        return XD_ENOMEM;
    void *q = realloc(*p, cap2 * size);
    if (!q)
        return XD_ENOMEM;
    *p = q;
    *cap = cap2;
    return 0;
}

/* Makes room for need elements in r->arr (capacity r->cap). */
#define GROW(r, arr, cap, need) grow((void **)&(r)->arr, &(r)->cap, (need), sizeof *(r)->arr)

/* ---- problems ---- */

/*
 * A problem found inside a set waits until the set is closed, so that the
 * set's problems are listed (and acknowledged) in segment order, whatever
 * order the checks ran in.
 */
struct pending {
    size_t no, seq;   /* segment ordinal, then order of reporting */
    unsigned el;      /* element, 0 = the whole segment */
    size_t path, msg; /* offsets of the texts in r->ptext */
    int has_ae;       /* carries an AK3/AK4 */
    struct x12_ack_err ae;
};

static int by_place(const void *a, const void *b)
{
    const struct pending *x = a, *y = b;
    if (x->no != y->no)
        return x->no < y->no ? -1 : 1;
    if (x->el != y->el)
        return x->el < y->el ? -1 : 1;
    return x->seq < y->seq ? -1 : x->seq > y->seq;
}

/* Hands the current set's problems over, in segment order. */
static int flush_set(struct x12_sink *r)
{
    int rc = 0;
    if (r->npend > 1)
        qsort(r->pend, r->npend, sizeof *r->pend, by_place);
    for (size_t i = 0; i < r->npend && rc == 0; i++) {
        const struct pending *p = &r->pend[i];
        rc = xd_verrs_add(r->errs, r->ptext.data + p->path, "%s", r->ptext.data + p->msg);
        if (rc == 0 && p->has_ae) {
            rc = GROW(r, aerrs, aecap, r->naerrs + 1);
            if (rc == 0) {
                r->aerrs[r->naerrs++] = p->ae;
                r->sets[r->nsets - 1].nerr++;
            }
        }
    }
    r->npend = 0;
    xd_buf_reset(&r->ptext);
    if (rc < 0)
        r->oom = 1;
    return rc;
}

static int vissue(struct x12_sink *r, const struct x12_seg *s, unsigned el, const char *ak3id,
                  int ak3, int ak4, struct x12_view bad, const char *fmt, va_list ap)
{
    char path[96], msg[512];
    int in_set = r->state == S_ST && r->nsets;
    r->issues++;
    if (in_set && ++r->set_issues > SET_MAX_ISSUES)
        return 0;
    if (s && s->id[0] && el)
        snprintf(path, sizeof path, "segment %zu (%s), element %u", s->no, s->id, el);
    else if (s && s->id[0])
        snprintf(path, sizeof path, "segment %zu (%s)", s->no, s->id);
    else
        snprintf(path, sizeof path, "segment %zu", s ? s->no : r->segno + 1);
    vsnprintf(msg, sizeof msg, fmt, ap);
    if (!in_set) {
        if (xd_verrs_add(r->errs, path, "%s", msg) < 0)
            goto fail;
        return 0;
    }
    if (GROW(r, pend, pendcap, r->npend + 1) < 0)
        goto fail;
    struct pending *p = &r->pend[r->npend];
    memset(p, 0, sizeof *p);
    p->no = s ? s->no : r->segno + 1;
    p->seq = r->npend;
    p->el = el;
    p->path = r->ptext.len;
    xd_buf_append(&r->ptext, path, strlen(path) + 1);
    p->msg = r->ptext.len;
    xd_buf_append(&r->ptext, msg, strlen(msg) + 1);
    if (r->ptext.oom)
        goto fail;
    if (ak3 && s) {
        p->has_ae = 1;
        memcpy(p->ae.id, ak3id, strnlen(ak3id, 3));
        p->ae.pos = s->pos;
        p->ae.el = el;
        p->ae.ak3 = (unsigned char)ak3;
        p->ae.ak4 = (unsigned char)ak4;
        p->ae.bad = bad;
    }
    r->npend++;
    return 0;
fail:
    r->oom = 1;
    return XD_ENOMEM;
}

int xd_x12_issue(struct x12_sink *r, const struct x12_seg *s, unsigned el, int ak3, int ak4,
                 struct x12_view bad, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int rc = vissue(r, s, el, s ? s->id : "", ak3, ak4, bad, fmt, ap);
    va_end(ap);
    return rc;
}

int xd_x12_missing(struct x12_sink *r, const struct x12_seg *at, const char *id, const char *fmt,
                   ...)
{
    static const struct x12_view none = {"", 0};
    va_list ap;
    va_start(ap, fmt);
    int rc = vissue(r, at, 0, id, X12_AK3_MISSING, 0, none, fmt, ap);
    va_end(ap);
    return rc;
}

/* A problem with no AK3 (envelope problems have their own codes). */
static int problem(struct x12_sink *r, const struct x12_seg *s, unsigned el, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int problem(struct x12_sink *r, const struct x12_seg *s, unsigned el, const char *fmt, ...)
{
    static const struct x12_view none = {"", 0};
    va_list ap;
    va_start(ap, fmt);
    int rc = vissue(r, s, el, "", 0, 0, none, fmt, ap);
    va_end(ap);
    return rc;
}

static struct x12_view el_of(const struct x12_sink *r, const struct x12_seg *s, unsigned i)
{
    struct x12_view none = {"", 0};
    return i < s->n ? r->els[s->first + i] : none;
}

/* ---- output ---- */

/* Takes the events appended since mark off the output again. */
static void drop_events(struct x12_sink *r, size_t mark)
{
    while (r->nout > mark) {
        cJSON *last = r->out->child->prev;
        cJSON_Delete(cJSON_DetachItemViaPointer(r->out, last));
        r->nout--;
    }
}

/* ---- the envelope ---- */

static struct x12_ack_group *cur_group(struct x12_sink *r)
{
    return &r->groups[r->ngroups - 1];
}

static struct x12_ack_set *cur_set(struct x12_sink *r)
{
    return &r->sets[r->nsets - 1];
}

static void reject_ic(struct x12_sink *r, const char *ta1)
{
    if (!r->ic.ta1)
        r->ic.ta1 = ta1;
}

/* The current set ended without its SE (s is what came instead, or the last segment read). */
static int set_unterminated(struct x12_sink *r, const struct x12_seg *s, int eof)
{
    struct x12_ack_set *set = cur_set(r);
    char a[32];
    set->ak5 = AK5_NO_TRAILER;
    if (flush_set(r) < 0)
        return XD_ENOMEM;
    r->state = S_GS; /* the problem belongs to the group now */
    if (eof)
        return problem(r, s, 0, "input ends inside set %s (no SE)", shown(a, set->st02));
    return problem(r, s, 0, "set %s has no SE before this segment", shown(a, set->st02));
}

static int group_close(struct x12_sink *r)
{
    struct x12_ack_group *g = cur_group(r);
    if (g->rejected || g->ak9)
        g->rejected = 1;
    if (g->rejected || r->ic.ta1)
        drop_events(r, r->grp_mark);
    r->state = S_ISA;
    return 0;
}

static int group_unterminated(struct x12_sink *r, const struct x12_seg *s, int eof)
{
    struct x12_ack_group *g = cur_group(r);
    char a[32];
    int rc;
    g->ak9 = AK9_NO_TRAILER;
    if (eof)
        rc = problem(r, s, 0, "input ends inside group %s (no GE), group rejected",
                     shown(a, g->gs06));
    else
        rc = problem(r, s, 0, "group %s has no GE before this segment, group rejected",
                     shown(a, g->gs06));
    group_close(r);
    return rc;
}

static int ack_out(struct x12_sink *r)
{
    if (!r->ack)
        return 0;
    if (!r->isa13_ok && !(r->o && r->o->ack_control))
        return 0; /* a 997 needs a control number; none can be derived */
    r->ic.groups = r->groups;
    r->ic.ngroups = r->ngroups;
    r->ic.sets = r->sets;
    r->ic.errs = r->aerrs;
    return xd_x12_ack_write(r->ack, &r->ic, r->o);
}

static int ic_close(struct x12_sink *r)
{
    if (r->ic.ta1) {
        for (size_t i = 0; i < r->ngroups; i++)
            r->groups[i].rejected = 1;
        drop_events(r, r->ic_mark);
    }
    int rc = ack_out(r);
    r->ngroups = r->nsets = r->naerrs = 0;
    r->state = S_OUT;
    return rc;
}

static int ic_unterminated(struct x12_sink *r, const struct x12_seg *s, int eof)
{
    char a[32];
    int rc;
    struct x12_view ctrl = xd_x12_trim(r->ic.isa[13]);
    reject_ic(r, TA1_EOF);
    if (eof)
        rc = problem(r, s, 0, "input ends inside interchange %s (no IEA), interchange rejected",
                     shown(a, ctrl));
    else
        rc = problem(r, s, 0, "interchange %s has no IEA before this segment, interchange rejected",
                     shown(a, ctrl));
    if (rc < 0)
        return rc;
    return ic_close(r);
}

/* Closes whatever is open down to level `to` (S_GS: the set, S_ISA: set and group, ...). */
static int unwind(struct x12_sink *r, enum state to, const struct x12_seg *s, int eof)
{
    int rc = 0;
    if (r->state == S_ST && to < S_ST)
        rc = set_unterminated(r, s, eof);
    if (rc == 0 && r->state == S_GS && to < S_GS)
        rc = group_unterminated(r, s, eof);
    if (rc == 0 && r->state == S_ISA && to < S_ISA)
        rc = ic_unterminated(r, s, eof);
    return rc;
}

/* A segment where it does not belong: reported once per run of them. */
static int stray(struct x12_sink *r, const struct x12_seg *s, const char *where)
{
    if (r->stray)
        return 0;
    r->stray = 1;
    if (r->state == S_GS)
        cur_group(r)->rejected = 1;
    else
        reject_ic(r, TA1_CONTENT);
    return problem(r, s, 0, "segment outside %s, %s rejected", where,
                   r->state == S_GS ? "group" : "interchange");
}

static int on_gs(struct x12_sink *r, struct x12_seg *s)
{
    int rc = unwind(r, S_ISA, s, 0);
    if (rc < 0)
        return rc;
    if (GROW(r, groups, gcap, r->ngroups + 1) < 0)
        return XD_ENOMEM;
    struct x12_ack_group *g = &r->groups[r->ngroups++];
    memset(g, 0, sizeof *g);
    g->gs01 = xd_x12_trim(el_of(r, s, 1));
    g->gs02 = xd_x12_trim(el_of(r, s, 2));
    g->gs03 = xd_x12_trim(el_of(r, s, 3));
    g->gs04 = xd_x12_trim(el_of(r, s, 4));
    g->gs06 = xd_x12_trim(el_of(r, s, 6));
    g->gs08 = xd_x12_trim(el_of(r, s, 8));
    g->ge01 = -1;
    g->first_set = r->nsets;
    r->grp_mark = r->nout;
    r->state = S_GS;
    return 0;
}

static int on_st(struct x12_sink *r, struct x12_seg *s)
{
    int rc = 0;
    if (r->state == S_ISA || r->state == S_OUT)
        return stray(r, s, "a functional group (no GS before it)");
    if (r->state == S_ST) {
        rc = set_unterminated(r, s, 0);
        if (rc < 0)
            return rc;
        /* the ST just read becomes the first segment of the new set */
        memmove(r->els, r->els + s->first, s->n * sizeof *r->els);
        r->segs[0] = *s;
        r->segs[0].first = 0;
        r->nsegs = 1;
        r->nels = s->n;
        s = &r->segs[0];
    }
    s->pos = 1;
    if (GROW(r, sets, scap, r->nsets + 1) < 0)
        return XD_ENOMEM;
    struct x12_ack_set *set = &r->sets[r->nsets++];
    memset(set, 0, sizeof *set);
    set->st01 = xd_x12_trim(el_of(r, s, 1));
    set->st02 = xd_x12_trim(el_of(r, s, 2));
    set->first_err = r->naerrs;
    cur_group(r)->nsets++;
    r->set_issues = 0;
    r->set_bad = 0;
    r->state = S_ST;
    return 0;
}

/* The set's envelope checked out: does it belong here, and what does it say? */
static int set_map(struct x12_sink *r, struct x12_ack_set *set, const struct x12_seg *se)
{
    struct x12_ack_group *g = cur_group(r);
    const struct x12_seg *st = &r->segs[0];
    char a[32], b[32];
    int rc;
    if (xd_x12_eq(g->gs01, "FA"))
        return 0; /* acknowledgments are read, never mapped or acknowledged */
    const char *gs01 = xd_x12_set_gs01(set->st01);
    if (!gs01) {
        set->ak5 = AK5_NOT_SUPPORTED;
        return problem(r, st, 1, "transaction set %s is not supported (945, 944, 947, 846)",
                       shown(a, set->st01));
    }
    if (!xd_x12_eq(g->gs01, gs01)) {
        set->ak5 = AK5_BAD_ID;
        return problem(r, st, 1, "a %s belongs in a functional group %s, not %s",
                       shown(a, set->st01), gs01, shown(b, g->gs01));
    }
    struct x12_doc d = {
        .segs = r->segs,
        .nsegs = r->nsegs,
        .els = r->els,
        .isa06 = xd_x12_trim(r->ic.isa[6]),
        .gs01 = g->gs01,
        .st01 = set->st01,
        .st02 = set->st02,
    };
    (void)se;
    rc = xd_x12_map(&d, r->o, r, &r->scratch, r->out, &r->nout);
    if (rc < 0)
        return rc;
    if (rc > 0)
        set->ak5 = AK5_SEGMENTS;
    return 0;
}

static int on_se(struct x12_sink *r, struct x12_seg *s)
{
    char a[32], b[32];
    int rc;
    if (r->state != S_ST)
        return stray(r, s, "a transaction set (no ST before it)");
    struct x12_ack_set *set = cur_set(r);
    long n = count_of(el_of(r, s, 1));
    if (n < 0) {
        set->ak5 = AK5_COUNT;
        rc = problem(r, s, 1, "segment count '%s' is not a number", shown(a, el_of(r, s, 1)));
    } else if ((size_t)n != r->nsegs) {
        set->ak5 = AK5_COUNT;
        rc = problem(r, s, 1, "segment count %ld, but set %s has %zu segment%s", n,
                     shown(a, set->st02), r->nsegs, r->nsegs == 1 ? "" : "s");
    } else {
        rc = 0;
    }
    if (rc < 0)
        return rc;
    if (!ctrl_eq(el_of(r, s, 2), set->st02)) {
        if (!set->ak5)
            set->ak5 = AK5_CTRL_MISMATCH;
        rc = problem(r, s, 2, "control number '%s' does not match ST02 '%s'",
                     shown(a, xd_x12_trim(el_of(r, s, 2))), shown(b, set->st02));
        if (rc < 0)
            return rc;
    }
    if (!set->ak5 && r->set_bad)
        set->ak5 = r->set_bad;
    if (!set->ak5) {
        rc = set_map(r, set, s);
        if (rc < 0)
            return rc;
    }
    if (flush_set(r) < 0)
        return XD_ENOMEM;
    r->state = S_GS;
    if (r->set_issues > SET_MAX_ISSUES) {
        return problem(r, s, 0, "%zu more problems in set %s not listed",
                       r->set_issues - SET_MAX_ISSUES, shown(a, set->st02));
    }
    return 0;
}

static int on_ge(struct x12_sink *r, struct x12_seg *s)
{
    char a[32], b[32];
    int rc = 0;
    if (r->state == S_ST) {
        rc = set_unterminated(r, s, 0);
        if (rc < 0)
            return rc;
    }
    if (r->state != S_GS)
        return stray(r, s, "a functional group (no GS before it)");
    struct x12_ack_group *g = cur_group(r);
    g->ge01 = count_of(el_of(r, s, 1));
    if (g->ge01 < 0 || (size_t)g->ge01 != g->nsets) {
        g->ak9 = AK9_COUNT;
        rc = problem(r, s, 1, "set count '%s', but group %s has %zu set%s, group rejected",
                     shown(a, xd_x12_trim(el_of(r, s, 1))), shown(b, g->gs06), g->nsets,
                     g->nsets == 1 ? "" : "s");
    }
    if (rc == 0 && !ctrl_eq(el_of(r, s, 2), g->gs06)) {
        if (!g->ak9)
            g->ak9 = AK9_CTRL_MISMATCH;
        rc = problem(r, s, 2, "control number '%s' does not match GS06 '%s', group rejected",
                     shown(a, xd_x12_trim(el_of(r, s, 2))), shown(b, g->gs06));
    }
    if (rc < 0)
        return rc;
    return group_close(r);
}

static int on_iea(struct x12_sink *r, struct x12_seg *s)
{
    char a[32], b[32];
    int rc = unwind(r, S_ISA, s, 0);
    if (rc < 0)
        return rc;
    long n = count_of(el_of(r, s, 1));
    if (n < 0 || (size_t)n != r->ngroups) {
        reject_ic(r, TA1_GROUP_COUNT);
        rc = problem(r, s, 1,
                     "group count '%s', but interchange %s has %zu group%s, "
                     "interchange rejected",
                     shown(a, xd_x12_trim(el_of(r, s, 1))), shown(b, xd_x12_trim(r->ic.isa[13])),
                     r->ngroups, r->ngroups == 1 ? "" : "s");
    }
    if (rc == 0 && !ctrl_eq(el_of(r, s, 2), r->ic.isa[13])) {
        reject_ic(r, TA1_CTRL_MISMATCH);
        rc = problem(r, s, 2, "control number '%s' does not match ISA13 '%s', interchange rejected",
                     shown(a, xd_x12_trim(el_of(r, s, 2))), shown(b, xd_x12_trim(r->ic.isa[13])));
    }
    if (rc < 0)
        return rc;
    return ic_close(r);
}

/* TA1 (an interchange acknowledgment we receive) sits between ISA and GS: nothing to do. */
static int on_body(struct x12_sink *r, struct x12_seg *s);

static int on_ta1(struct x12_sink *r, struct x12_seg *s)
{
    return r->state == S_ISA ? 0 : on_body(r, s);
}

/* Any other segment: part of the current set, or out of place. */
static int on_body(struct x12_sink *r, struct x12_seg *s)
{
    char a[32];
    if (r->state == S_ST) {
        if (!s->id[0]) {
            r->set_bad = AK5_SEGMENTS;
            return xd_x12_issue(r, s, 0, X12_AK3_UNRECOGNIZED, 0, el_of(r, s, 0),
                                "'%s' is not a segment id", shown(a, el_of(r, s, 0)));
        }
        return 0;
    }
    return stray(r, s,
                 r->state == S_GS ? "a transaction set (no ST before it)"
                                  : "a functional group (no GS before it)");
}

typedef int seg_fn(struct x12_sink *r, struct x12_seg *s);

static const struct {
    char id[4];
    seg_fn *fn;
} envelope[] = {
    /* ISA is read by begin_interchange(): its delimiters are not known before */
    {"GS", on_gs}, {"ST", on_st}, {"SE", on_se}, {"GE", on_ge}, {"IEA", on_iea}, {"TA1", on_ta1},
};

/* ---- cutting segments ---- */

/* A segment id: 2 or 3 of A-Z0-9, the first a letter. */
static void set_id(struct x12_seg *s, struct x12_view v)
{
    memset(s->id, 0, sizeof s->id);
    if (v.n < 2 || v.n > 3 || v.p[0] < 'A' || v.p[0] > 'Z')
        return;
    for (size_t i = 1; i < v.n; i++)
        if (!((v.p[i] >= 'A' && v.p[i] <= 'Z') || (v.p[i] >= '0' && v.p[i] <= '9')))
            return;
    memcpy(s->id, v.p, v.n);
}

/* Appends a new segment record (outside a set the vectors hold one segment at a time). */
static struct x12_seg *new_seg(struct x12_sink *r)
{
    if (r->state != S_ST)
        r->nsegs = r->nels = 0;
    if (GROW(r, segs, segcap, r->nsegs + 1) < 0)
        return NULL;
    struct x12_seg *s = &r->segs[r->nsegs++];
    memset(s, 0, sizeof *s);
    s->no = ++r->segno;
    s->first = (uint32_t)r->nels;
    s->pos = r->state == S_ST ? r->nsegs : 0;
    return s;
}

static int add_el(struct x12_sink *r, struct x12_seg *s, const char *p, size_t n)
{
    if (r->nels >= MAX_ELEMENTS)
        return XD_ENOMEM;
    if (GROW(r, els, elcap, r->nels + 1) < 0)
        return XD_ENOMEM;
    r->els[r->nels].p = p;
    r->els[r->nels].n = n;
    r->nels++;
    s->n++;
    return 0;
}

/* Interchange delimiters and ISA elements, read from the raw bytes at off. */
struct isa {
    char es, cs, st;
    struct x12_view el[17];
    size_t len; /* bytes of the ISA, terminator included */
};

/*
 * Any byte can delimit, except what every interchange needs in its data:
 * letters, digits and the space that pads ISA elements (the 997 is written
 * with the same delimiters and carries all three).
 */
static int delimiter_ok(char c)
{
    return c != ' ' && !(c >= '0' && c <= '9') && !(c >= 'A' && c <= 'Z') &&
           !(c >= 'a' && c <= 'z');
}

/*
 * Splits the ISA at buf[off] on its own separator. Returns 0, or -1 with
 * why set when it is not a usable ISA.
 */
static int read_isa(const char *buf, size_t len, struct isa *isa, const char **why)
{
    size_t k = 1, i;
    if (len < 4) {
        *why = "truncated ISA";
        return -1;
    }
    isa->es = buf[3];
    isa->el[1].p = buf + 4;
    for (i = 4; i < len && i < ISA_MAX_BYTES && k < 16; i++) {
        if (buf[i] == isa->es) {
            isa->el[k].n = (size_t)(buf + i - isa->el[k].p);
            k++;
            isa->el[k].p = buf + i + 1;
        }
    }
    if (k < 16) {
        *why = i >= ISA_MAX_BYTES ? "not an ISA: fewer than 16 elements in 512 bytes"
                                  : "truncated ISA: fewer than 16 elements";
        return -1;
    }
    if (i + 1 >= len) {
        *why = "truncated ISA: no component separator and segment terminator";
        return -1;
    }
    isa->cs = buf[i];
    isa->st = buf[i + 1];
    isa->el[16].n = 1;
    isa->len = i + 2;
    if (!delimiter_ok(isa->es) || !delimiter_ok(isa->cs) || !delimiter_ok(isa->st)) {
        *why = "a delimiter cannot be a letter, a digit or a space";
        return -1;
    }
    if (isa->es == isa->cs || isa->es == isa->st || isa->cs == isa->st) {
        *why = "element separator, component separator and segment terminator must differ";
        return -1;
    }
    /* the ISA's own elements cannot hold its delimiters or line breaks: it would be a
       run of segments that merely starts with "ISA" */
    for (k = 1; k < 16; k++)
        for (i = 0; i < isa->el[k].n; i++) {
            unsigned char c = (unsigned char)isa->el[k].p[i];
            if (c < 0x20 || c == (unsigned char)isa->st || c == (unsigned char)isa->cs) {
                *why = "not an ISA: an element holds the terminator, the component separator "
                       "or a control character";
                return -1;
            }
        }
    return 0;
}

/* Skips what may sit between interchanges: whitespace, NULs, a DOS end-of-file mark. */
static void skip_filler(struct x12_sink *r)
{
    while (r->off < r->len) {
        char c = r->buf[r->off];
        if (c != ' ' && c != '\t' && c != '\r' && c != '\n' && c != '\0' && c != '\x1a')
            break;
        r->off++;
    }
}

/* Starts an interchange at r->off ("ISA" is there). Returns 0, 1 when reading must stop, <0. */
static int begin_interchange(struct x12_sink *r)
{
    struct isa isa;
    const char *why;
    char a[32];
    if (read_isa(r->buf + r->off, r->len - r->off, &isa, &why) < 0) {
        struct x12_seg at = {.no = r->segno + 1, .id = "ISA"};
        int rc = unwind(r, S_OUT, &at, 0);
        if (rc == 0)
            rc = problem(r, &at, 0, "%s; nothing after it can be read", why);
        return rc < 0 ? rc : 1;
    }
    struct x12_seg at = {.no = r->segno + 1, .id = "ISA"};
    int rc = unwind(r, S_OUT, &at, 0);
    if (rc < 0)
        return rc;
    struct x12_seg *s = new_seg(r);
    if (!s)
        return XD_ENOMEM;
    memcpy(s->id, "ISA", 4);
    for (unsigned i = 0; i <= 16; i++) {
        rc = i ? add_el(r, s, isa.el[i].p, isa.el[i].n) : add_el(r, s, r->buf + r->off, 3);
        if (rc < 0)
            return rc;
    }
    r->off += isa.len;
    r->es = isa.es;
    r->cs = isa.cs;
    r->st = isa.st;
    memset(&r->ic, 0, sizeof r->ic);
    memcpy(r->ic.isa, isa.el, sizeof isa.el);
    r->ic.es = isa.es;
    r->ic.cs = isa.cs;
    r->ic.st = isa.st;
    /* the 997 ends its segments the way this file does */
    if (r->off + 1 < r->len && r->buf[r->off] == '\r' && r->buf[r->off + 1] == '\n')
        r->ic.eol = "\r\n";
    else if (r->off < r->len && r->buf[r->off] == '\n' && isa.st != '\n')
        r->ic.eol = "\n";
    else
        r->ic.eol = "";
    r->ic_mark = r->nout;
    r->nics++;
    r->stray = 0;
    r->state = S_ISA;
    struct x12_view ctrl = xd_x12_trim(isa.el[13]);
    r->isa13_ok = all_digits(ctrl) && ctrl.n <= 9;
    if (!r->isa13_ok) {
        reject_ic(r, TA1_BAD_CTRL);
        rc = problem(r, s, 13, "'%s' is not an interchange control number, interchange rejected",
                     shown(a, ctrl));
    }
    r->last = *s;
    return rc;
}

/*
 * Reads and dispatches the next segment. Returns 0, 1 at the end of the
 * input (or when the rest cannot be read), XD_ENOMEM.
 */
static int step(struct x12_sink *r)
{
    char a[32];
    if (r->state == S_OUT) {
        skip_filler(r);
        if (r->off >= r->len)
            return 1;
        if (r->len - r->off >= 3 && memcmp(r->buf + r->off, "ISA", 3) == 0)
            return begin_interchange(r);
        struct x12_view v = {r->buf + r->off, r->len - r->off};
        const char *nl = memchr(v.p, '\n', v.n);
        if (nl)
            v.n = (size_t)(nl - v.p); /* the first line is enough to recognise it */
        struct x12_seg at = {.no = r->segno + 1};
        int rc = problem(r, &at, 0,
                         "expected an interchange (ISA), found '%s'; nothing after "
                         "it can be read",
                         shown(a, v));
        return rc < 0 ? rc : 1;
    }
    /* CR and LF after a terminator, and empty segments, are not segments */
    const char *p, *end, *t;
    for (;;) {
        while (r->off < r->len && (r->buf[r->off] == '\r' || r->buf[r->off] == '\n'))
            r->off++;
        if (r->off >= r->len)
            return 1;
        p = r->buf + r->off;
        t = memchr(p, r->st, r->len - r->off);
        end = t ? t : r->buf + r->len;
        r->off = (size_t)(end - r->buf) + (t != NULL);
        const char *q = p;
        while (q < end && (*q == ' ' || *q == '\t' || *q == '\r' || *q == '\n'))
            q++;
        if (q < end)
            break;
    }
    if (end - p >= 3 && memcmp(p, "ISA", 3) == 0) {
        r->off = (size_t)(p - r->buf); /* a new interchange: its own delimiters */
        return begin_interchange(r);
    }
    struct x12_seg *s = new_seg(r);
    if (!s)
        return XD_ENOMEM;
    for (;;) {
        const char *q = memchr(p, r->es, (size_t)(end - p));
        if (add_el(r, s, p, (size_t)((q ? q : end) - p)) < 0)
            return XD_ENOMEM;
        if (!q)
            break;
        p = q + 1;
    }
    set_id(s, r->els[s->first]);
    r->last = *s;
    for (size_t i = 0; i < sizeof envelope / sizeof envelope[0]; i++)
        if (memcmp(s->id, envelope[i].id, sizeof s->id) == 0) {
            r->stray = 0;
            return envelope[i].fn(r, s);
        }
    return on_body(r, s);
}

int xd_x12_read(const char *buf, size_t len, const struct xd_convert_opts *o, cJSON **events,
                struct xd_verrs *errs, struct xd_buf *ack)
{
    static const struct xd_convert_opts no_opts;
    struct x12_sink r = {.buf = buf, .len = len, .o = o ? o : &no_opts, .errs = errs, .ack = ack};
    size_t ack_len = ack ? ack->len : 0;
    int rc = 0;
    *events = NULL;
    r.out = cJSON_CreateArray();
    if (!r.out)
        return XD_ENOMEM;
    if (len >= 3 && memcmp(buf, "\xef\xbb\xbf", 3) == 0)
        r.off = 3; /* a UTF-8 byte order mark */
    skip_filler(&r);
    if (r.off >= len) {
        rc = problem(&r, NULL, 0, "empty input: no interchange");
        goto done;
    }
    while (rc == 0 && !r.oom)
        rc = step(&r);
    if (rc >= 0 && !r.oom && r.state != S_OUT)
        rc = unwind(&r, S_OUT, &r.last, 1);
done:
    if (rc < 0 || r.oom) {
        rc = XD_ENOMEM;
        if (ack) {
            ack->len = ack_len;
            if (ack->data)
                ack->data[ack_len] = '\0';
        }
        goto out;
    }
    if (r.nics == 0) {
        rc = XD_EPARSE;
        goto out;
    }
    *events = r.out;
    r.out = NULL;
    rc = r.issues ? XD_ESCHEMA : 0;
out:
    cJSON_Delete(r.out);
    free(r.segs);
    free(r.els);
    free(r.groups);
    free(r.sets);
    free(r.aerrs);
    free(r.pend);
    free(r.scratch.p);
    xd_buf_dispose(&r.ptext);
    return rc;
}
