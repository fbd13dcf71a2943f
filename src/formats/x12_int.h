/*
 * Internal to the X12 reader (formats/x12*.c): the shapes the three parts
 * share. x12.c cuts the input into segments and checks the envelopes,
 * x12_map.c turns one transaction set into canonical events, x12_ack.c
 * writes the 997 for one interchange.
 *
 * Nothing is copied out of the input: a segment is a run of element views
 * (pointer and length into the caller's buffer), valid while that buffer
 * lives and until the reader moves on to the next transaction set.
 */
#ifndef XD_X12_INT_H
#define XD_X12_INT_H

#include "core/buf.h"
#include "formats/convert.h"

#include <cjson/cJSON.h>
#include <stddef.h>
#include <stdint.h>

/* A byte range of the input; not NUL-terminated. */
struct x12_view {
    const char *p;
    size_t n;
};

/* One segment: its elements are els[first .. first + n) of its set, the id first. */
struct x12_seg {
    size_t no;      /* ordinal in the file, counting from 1 at the first ISA */
    size_t pos;     /* position in its transaction set, 1 = ST; 0 outside a set */
    char id[4];     /* the segment id, NUL-terminated ("W12") */
    uint32_t first; /* index of element 0 (the id) in the element array */
    uint32_t n;     /* elements, the id included */
};

/* One transaction set as read, ST to SE, with what the mapping needs of its envelope. */
struct x12_doc {
    const struct x12_seg *segs; /* ST .. SE, in order */
    size_t nsegs;
    const struct x12_view *els; /* elements of all segs */
    struct x12_view isa06;      /* sender id, trimmed */
    struct x12_view gs01;       /* functional id of the group */
    struct x12_view st01, st02; /* set id and control number */
};

/* Element i of segment s (0 is the id); an empty view when the segment has fewer. */
static inline struct x12_view xd_x12_el(const struct x12_doc *d, const struct x12_seg *s,
                                        unsigned i)
{
    struct x12_view none = {"", 0};
    return i < s->n ? d->els[s->first + i] : none;
}

/* The view without leading and trailing spaces. */
struct x12_view xd_x12_trim(struct x12_view v);
/* 1 when v equals the NUL-terminated s. */
int xd_x12_eq(struct x12_view v, const char *s);

/*
 * 997 codes (X12 elements 716, 718, 720, 723) carried with a problem, so
 * the acknowledgment can name it. 0 = none.
 */
enum {
    X12_AK3_UNRECOGNIZED = 1, /* unrecognized segment id */
    X12_AK3_MISSING = 3,      /* mandatory segment missing */
    X12_AK3_MAX_USE = 5,      /* segment exceeds maximum use */
    X12_AK3_ELEMENTS = 8,     /* segment has data element errors */
};
enum {
    X12_AK4_MISSING = 1,   /* mandatory data element missing */
    X12_AK4_TOO_LONG = 5,  /* data element too long */
    X12_AK4_BAD_CHAR = 6,  /* invalid character in data element */
    X12_AK4_BAD_VALUE = 7, /* invalid code value */
    X12_AK4_BAD_DATE = 8,  /* invalid date */
};

/* The reader's problem collector (x12.c); the mapping reports through it. */
struct x12_sink;

/*
 * Reports a problem in segment s (element el, 0 = the whole segment) of the
 * current set: adds "segment N (ID)[, element E]: message" to the caller's
 * errors and an AK3/AK4 to the set's 997 entry; bad is the offending value
 * (quoted back in AK404 when it is short and safe to copy). Returns 0 or
 * XD_ENOMEM.
 */
int xd_x12_issue(struct x12_sink *sk, const struct x12_seg *s, unsigned el, int ak3, int ak4,
                 struct x12_view bad, const char *fmt, ...) __attribute__((format(printf, 7, 8)));

/* Reports that segment id is missing from the set, noticed at segment at (AK3 code 3). */
int xd_x12_missing(struct x12_sink *sk, const struct x12_seg *at, const char *id, const char *fmt,
                   ...) __attribute__((format(printf, 4, 5)));

/* The GS01 functional id that set st01 belongs in, when it is mapped; else NULL. */
const char *xd_x12_set_gs01(struct x12_view st01);

/* Memory the mapping keeps from one set to the next (the reader frees p). */
struct x12_scratch {
    void *p;
    size_t cap; /* bytes */
};

/*
 * Maps one set whose envelope checked out. On success the set's events
 * are appended to out, *nout counted up, and 0 returned; when the set is
 * rejected nothing is appended, every problem has been reported to sk and
 * 1 is returned; XD_ENOMEM otherwise.
 */
int xd_x12_map(const struct x12_doc *d, const struct xd_convert_opts *o, struct x12_sink *sk,
               struct x12_scratch *scratch, cJSON *out, size_t *nout);

/* ---- writing X12 (x12_write.c): the 997 and the 810 share these ---- */

/*
 * Segments written into a buffer with chosen delimiters. Each element is
 * written as given: the caller makes sure no value holds a delimiter.
 * nseg counts the segments ended since xd_x12_put_st() (for SE01).
 */
struct x12_out {
    struct xd_buf *b;
    char es, cs, st; /* element separator, component separator, segment terminator */
    const char *eol; /* written after every terminator: "", "\n" or "\r\n" */
    size_t nseg;     /* segments since the last ST, ST included */
};

void xd_x12_put_seg(struct x12_out *w, const char *id); /* starts segment id */
void xd_x12_put_el(struct x12_out *w, const char *p, size_t n);
void xd_x12_put_el_s(struct x12_out *w, const char *s);
void xd_x12_put_el_v(struct x12_out *w, struct x12_view v);
void xd_x12_put_el_u(struct x12_out *w, unsigned long u);
/* v left-aligned in width columns (ISA elements are fixed width); longer is kept whole. */
void xd_x12_put_el_pad(struct x12_out *w, struct x12_view v, size_t width);
void xd_x12_put_seg_end(struct x12_out *w);

/* The interchange header and trailer. */
struct x12_isa {
    struct x12_view sender_q, sender;     /* ISA05, ISA06 (padded to 2 and 15) */
    struct x12_view receiver_q, receiver; /* ISA07, ISA08 */
    char date6[7], time4[5];              /* ISA09 YYMMDD, ISA10 HHMM */
    struct x12_view isa11, isa12, isa15;  /* standards id / repetition, version, usage */
    unsigned long control;                /* ISA13, written as 9 digits */
};
/* ISA01-04 are "00" and blanks, ISA14 "0" (no TA1 asked for), ISA16 w->cs. */
void xd_x12_put_isa(struct x12_out *w, const struct x12_isa *h);
void xd_x12_put_iea(struct x12_out *w, unsigned long ngroups, unsigned long control);
/* GS: functional id, sender, receiver, CCYYMMDD, HHMM, control, "X", version. */
void xd_x12_put_gs(struct x12_out *w, const char *gs01, struct x12_view gs02, struct x12_view gs03,
                   const char *date8, const char *time4, unsigned long control,
                   struct x12_view gs08);
void xd_x12_put_ge(struct x12_out *w, unsigned long nsets, unsigned long control);
/* ST st01*st02 (resets nseg); SE with the count since that ST and st02. */
void xd_x12_put_st(struct x12_out *w, const char *st01, const char *st02);
void xd_x12_put_se(struct x12_out *w, const char *st02);
/* A NUL-terminated string as a view. */
struct x12_view xd_x12_view(const char *s);

/* ---- what the 997 writer needs of one received interchange ---- */

/* One AK3 (and AK4 when el > 0) under a set's AK2. */
struct x12_ack_err {
    char id[4];          /* segment id in error */
    size_t pos;          /* its position in the set, ST = 1 */
    unsigned el;         /* element position; 0: segment-level only */
    unsigned char ak3;   /* AK304 */
    unsigned char ak4;   /* AK403 */
    struct x12_view bad; /* AK404, the bad value (may be empty) */
};

struct x12_ack_set {
    struct x12_view st01, st02;
    unsigned char ak5; /* 0 accepted, else the AK502 code (rejected) */
    size_t first_err;  /* its x12_ack_err entries */
    size_t nerr;
};

struct x12_ack_group {
    struct x12_view gs01, gs02, gs03, gs04, gs06, gs08;
    long ge01;         /* GE01 as read; -1 when there was no (numeric) GE01 */
    unsigned char ak9; /* 0 or the AK905 code that rejects the whole group */
    int rejected;      /* group (or its interchange) rejected: no set accepted */
    size_t first_set;  /* its x12_ack_set entries */
    size_t nsets;
};

struct x12_ack_ic {
    struct x12_view isa[17]; /* ISA01..ISA16 as read (isa[0] unused) */
    char es, cs, st;         /* delimiters as received, reused for the 997 */
    const char *eol;         /* what followed the received ISA's terminator: "", "\n", "\r\n" */
    const char *ta1;         /* NULL, or the TA1 note code ("001") that rejects the interchange */
    const struct x12_ack_group *groups;
    size_t ngroups;
    const struct x12_ack_set *sets;
    const struct x12_ack_err *errs;
};

/*
 * Appends the 997 interchange for ic to b (nothing when ic holds no group to
 * acknowledge and no TA1 is due). Control numbers and dates per o (see
 * convert.h). Returns 0 or XD_ENOMEM.
 */
int xd_x12_ack_write(struct xd_buf *b, const struct x12_ack_ic *ic,
                     const struct xd_convert_opts *o);

#endif
