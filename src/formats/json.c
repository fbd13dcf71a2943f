/*
 * JSON input and compact output (see json.h).
 *
 * Input is parsed in one pass over the bytes that builds the cJSON tree as it
 * goes. The pass is a complete RFC 8259 recogniser (a small state machine):
 * it finds every syntax error with its exact byte offset, and enforces what
 * cJSON does not: valid UTF-8 (no overlongs, no UTF-8-encoded surrogates,
 * nothing above U+10FFFF, no truncated sequences), no raw control characters
 * and no unpaired \u surrogates or \u0000 in strings, strict number grammar
 * (cJSON would take "01", "1." and "-.5"), numbers that fit a double, and our
 * depth and string-length limits. The tree is the one cJSON's own parser
 * would build from the same bytes.
 *
 * Output (xd_json_write) is compact, keeps key order, and prints numbers the
 * same way every time, so that a hash of the output is stable;
 * xd_json_write_spliced gives the same bytes, copying the input's bytes of
 * containers already in that form (spans). The allocator hooks and the
 * arenas that parsed trees live in are at the end.
 */
#include "formats/json.h"
#include "core/buf.h"
#include "core/err.h"

#include <limits.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DEFAULT_DEPTH  64
#define DEFAULT_STRING 65536
/* cJSON copies a number into a 64-byte buffer; a longer one would be cut. */
#define MAX_NUMBER 63

/* Byte classes inside a string: what the scanning loop must stop for. */
enum { SC_PLAIN, SC_QUOTE, SC_ESCAPE, SC_CONTROL, SC_HIGH };

static const unsigned char str_class[256] = {
    [0x00 ... 0x1f] = SC_CONTROL,
    ['"'] = SC_QUOTE,
    ['\\'] = SC_ESCAPE,
    [0x80 ... 0xff] = SC_HIGH,
};

static const unsigned char is_ws[256] = {[' '] = 1, ['\t'] = 1, ['\n'] = 1, ['\r'] = 1};

/* Value of a hex digit plus one; 0 for any other byte. */
static const unsigned char hex_val[256] = {
    ['0'] = 1,  ['1'] = 2,  ['2'] = 3,  ['3'] = 4,  ['4'] = 5,  ['5'] = 6,  ['6'] = 7,  ['7'] = 8,
    ['8'] = 9,  ['9'] = 10, ['a'] = 11, ['b'] = 12, ['c'] = 13, ['d'] = 14, ['e'] = 15, ['f'] = 16,
    ['A'] = 11, ['B'] = 12, ['C'] = 13, ['D'] = 14, ['E'] = 15, ['F'] = 16,
};

/* What the escape after a backslash may be; 'u' is handled on its own. */
static const unsigned char simple_escape[256] = {
    ['"'] = 1, ['\\'] = 1, ['/'] = 1, ['b'] = 1, ['f'] = 1, ['n'] = 1, ['r'] = 1, ['t'] = 1,
};

struct scan {
    const unsigned char *s; /* input */
    size_t len;
    size_t pos;
    unsigned max_depth;
    size_t max_string;
    struct xd_json_error *err;
    int escaped;     /* the last string scanned holds a backslash escape */
    size_t noncanon; /* whitespace runs, escapes and numbers not in the writer's form so far */
};

static int fail(struct scan *sc, size_t offset, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int fail(struct scan *sc, size_t offset, const char *fmt, ...)
{
    if (sc->err) {
        va_list ap;
        va_start(ap, fmt);
        sc->err->offset = offset;
        vsnprintf(sc->err->message, sizeof sc->err->message, fmt, ap);
        va_end(ap);
    }
    return XD_EPARSE;
}

/* "unexpected end of input" at the end, else names the byte at pos. */
static int unexpected(struct scan *sc)
{
    if (sc->pos >= sc->len)
        return fail(sc, sc->len, "unexpected end of input");
    unsigned char c = sc->s[sc->pos];
    if (c > 0x20 && c < 0x7f)
        return fail(sc, sc->pos, "unexpected character '%c'", c);
    return fail(sc, sc->pos, "unexpected byte 0x%02x", c);
}

static void skip_ws(struct scan *sc)
{
    size_t pos = sc->pos;
    while (pos < sc->len && is_ws[sc->s[pos]])
        pos++;
    sc->noncanon += pos != sc->pos;
    sc->pos = pos;
}

/* Length of the valid UTF-8 sequence starting at p (lead byte >= 0x80), or 0. */
static size_t utf8_seq(const unsigned char *p, size_t avail)
{
    unsigned char c = p[0];
    size_t n;
    unsigned char lo = 0x80, hi = 0xbf; /* range of the second byte */
    if (c < 0xc2)
        return 0; /* continuation byte, or overlong 2-byte lead */
    if (c < 0xe0) {
        n = 2;
    } else if (c < 0xf0) {
        n = 3;
        if (c == 0xe0)
            lo = 0xa0; /* overlong */
        else if (c == 0xed)
            hi = 0x9f; /* U+D800..U+DFFF */
    } else if (c < 0xf5) {
        n = 4;
        if (c == 0xf0)
            lo = 0x90; /* overlong */
        else if (c == 0xf4)
            hi = 0x8f; /* above U+10FFFF */
    } else {
        return 0;
    }
    if (avail < n || p[1] < lo || p[1] > hi)
        return 0;
    for (size_t i = 2; i < n; i++)
        if ((p[i] & 0xc0) != 0x80)
            return 0;
    return n;
}

/* Reads 4 hex digits at p into *cp; returns 0 or -1. */
static int hex4(const unsigned char *p, unsigned *cp)
{
    unsigned v = 0;
    for (int i = 0; i < 4; i++) {
        unsigned h = hex_val[p[i]];
        if (h == 0)
            return -1;
        v = v << 4 | (h - 1);
    }
    *cp = v;
    return 0;
}

/* Checks the \u escape at pos (pointing at the backslash); advances past it. */
static int scan_u_escape(struct scan *sc)
{
    size_t at = sc->pos;
    unsigned cp, lo;
    if (sc->len - at < 6 || hex4(sc->s + at + 2, &cp) < 0)
        return fail(sc, at, "invalid \\u escape");
    sc->pos = at + 6;
    if (cp == 0)
        return fail(sc, at, "\\u0000 is not allowed in strings");
    if (cp >= 0xdc00 && cp <= 0xdfff)
        return fail(sc, at, "unpaired surrogate in \\u escape");
    if (cp >= 0xd800 && cp <= 0xdbff) {
        if (sc->len - sc->pos < 6 || sc->s[sc->pos] != '\\' || sc->s[sc->pos + 1] != 'u' ||
            hex4(sc->s + sc->pos + 2, &lo) < 0 || lo < 0xdc00 || lo > 0xdfff)
            return fail(sc, at, "unpaired surrogate in \\u escape");
        sc->pos += 6;
    }
    return 0;
}

/*
 * A string (pos at the opening quote); leaves pos after the closing quote
 * and sc->escaped set when it holds a backslash escape. The loop works on a
 * local position: a byte read through an unsigned char pointer may alias
 * sc->pos, which would otherwise be reloaded every byte.
 */
static int scan_string(struct scan *sc)
{
    const unsigned char *s = sc->s;
    size_t start = sc->pos, pos = start + 1, len = sc->len;
    int rc;
    sc->escaped = 0;
    for (;;) {
        /* SC_PLAIN is 0: four bytes with nothing to stop for are one test. */
        while (len - pos >= 4 &&
               (str_class[s[pos]] | str_class[s[pos + 1]] | str_class[s[pos + 2]] |
                str_class[s[pos + 3]]) == 0)
            pos += 4;
        while (pos < len && str_class[s[pos]] == SC_PLAIN)
            pos++;
        if (pos >= len)
            return fail(sc, len, "unexpected end of input");
        unsigned char c = s[pos];
        switch (str_class[c]) {
        case SC_QUOTE:
            if (pos - start - 1 > sc->max_string)
                return fail(sc, start, "string longer than %zu bytes", sc->max_string);
            sc->pos = pos + 1;
            return 0;
        case SC_CONTROL:
            return fail(sc, pos, "control character 0x%02x in string", c);
        case SC_HIGH: {
            size_t n = utf8_seq(s + pos, len - pos);
            if (n == 0)
                return fail(sc, pos, "invalid UTF-8");
            pos += n;
            break;
        }
        default: /* SC_ESCAPE */
            sc->noncanon += !sc->escaped;
            sc->escaped = 1;
            if (pos + 1 >= len)
                return fail(sc, len, "unexpected end of input");
            if (s[pos + 1] == 'u') {
                sc->pos = pos;
                rc = scan_u_escape(sc);
                if (rc < 0)
                    return rc;
                pos = sc->pos;
            } else if (simple_escape[s[pos + 1]]) {
                pos += 2;
            } else {
                return fail(sc, pos, "invalid escape in string");
            }
            break;
        }
    }
}

/* ---- the tree ---- */

/*
 * Every allocation made through the hooks is preceded by one of these tags
 * (8 bytes, so what follows stays aligned for cJSON's doubles and pointers).
 */
#define TAG_HEAP  ((uint64_t)0x7864686561703031u) /* "xdheap01" */
#define TAG_ARENA ((uint64_t)0x786461726e613031u) /* "xdarna01" */

/* Set once by xd_json_hooks_install(): from then on every cJSON allocation is tagged. */
static int hooks_installed;
/* The arena this thread's cJSON allocations come from (see xd_json_arena_enter). */
static _Thread_local struct xd_json_arena *current;

/*
 * A container parsed into an arena carries the bytes it was parsed from,
 * right after its node (tag TAG_SPAN instead of TAG_ARENA): when those
 * bytes are already what the writer would print for it (no whitespace, no
 * escapes, numbers as the writer prints them: canonical) and nothing was
 * changed in it since (dirty, set by xd_json_touch()), the spliced writer
 * copies them instead of printing the subtree again. The bytes are the
 * caller's input buffer: valid only while that buffer is.
 */
#define TAG_SPAN ((uint64_t)0x78647370616e3031u) /* "xdspan01" */

struct span {
    const char *start; /* the opening bracket in the input */
    size_t len;        /* through the closing bracket */
    size_t mark;       /* the scan's noncanon count at the opening bracket */
    unsigned char canonical, dirty;
};

/* v's span, or NULL. Reads v's tag: only for nodes cJSON allocated (with the hooks installed). */
static struct span *span_of(const cJSON *v)
{
    if (!hooks_installed || ((const uint64_t *)(const void *)v)[-1] != TAG_SPAN)
        return NULL;
    return (struct span *)(void *)((char *)(uintptr_t)v + sizeof(cJSON));
}

void xd_json_touch(cJSON *node)
{
    struct span *sp = node ? span_of(node) : NULL;
    if (sp)
        sp->dirty = 1;
}

/*
 * What the tree's nodes and strings are allocated with: cJSON_malloc(),
 * which goes to hook_malloc() below when the hooks are installed, except
 * that the common case (an arena with room) is done here without the calls.
 */
static void *tree_alloc(size_t n)
{
    struct xd_json_arena *a = current;
    size_t need = (sizeof(uint64_t) + n + 7) & ~(size_t)7;
    if (a && n < SIZE_MAX - 16 && (size_t)(a->end - a->cur) >= need) {
        uint64_t *h = (uint64_t *)(void *)a->cur;
        a->cur += need;
        *h = TAG_ARENA;
        return h + 1;
    }
    return cJSON_malloc(n);
}

/*
 * The pass builds the cJSON tree as it goes, exactly the one
 * cJSON_ParseWithLengthOpts() builds from the same input (the unit tests
 * compare them node by node): the same types, valueint as cJSON saturates
 * it, keys in ->string, and each container's first child's prev pointing at
 * its last one. It allocates as cJSON_malloc() would (tree_alloc), so
 * cJSON_Delete() frees the tree and an arena (below) can hold it. On an
 * error the part built so far is deleted. Doing this here rather than in cJSON skips what cJSON
 * spends on input it cannot trust: three strncmp() per value, two passes
 * per string, a copy and strtod() per number.
 */
static cJSON *new_node(int type)
{
    cJSON *n = tree_alloc(sizeof *n);
    if (n)
        *n = (cJSON){.type = type};
    return n;
}

/* A new object or array opening at pos; with a span when it is parsed into an arena. */
static cJSON *new_container(const struct scan *sc, int type)
{
    struct xd_json_arena *a = current;
    size_t need = sizeof(uint64_t) + sizeof(cJSON) + sizeof(struct span);
    if (!a || (size_t)(a->end - a->cur) < need)
        return new_node(type);
    uint64_t *h = (uint64_t *)(void *)a->cur;
    a->cur += need;
    *h = TAG_SPAN;
    cJSON *n = (cJSON *)(void *)(h + 1);
    *n = (cJSON){.type = type};
    *(struct span *)(void *)(n + 1) = (struct span){
        .start = (const char *)sc->s + sc->pos,
        .mark = sc->noncanon,
    };
    return n;
}

/* Ends v's span, if it has one, at pos (just past its closing bracket). */
static void close_container(const struct scan *sc, cJSON *v)
{
    struct span *sp = current ? span_of(v) : NULL;
    if (!sp)
        return;
    sp->len = (size_t)((const char *)sc->s + sc->pos - sp->start);
    sp->canonical = sc->noncanon == sp->mark;
}

/* Appends UTF-8 for code point cp at d; returns the byte after it. */
static char *put_utf8(char *d, unsigned cp)
{
    if (cp < 0x80) {
        *d++ = (char)cp;
    } else if (cp < 0x800) {
        *d++ = (char)(0xc0 | cp >> 6);
        *d++ = (char)(0x80 | (cp & 0x3f));
    } else if (cp < 0x10000) {
        *d++ = (char)(0xe0 | cp >> 12);
        *d++ = (char)(0x80 | (cp >> 6 & 0x3f));
        *d++ = (char)(0x80 | (cp & 0x3f));
    } else {
        *d++ = (char)(0xf0 | cp >> 18);
        *d++ = (char)(0x80 | (cp >> 12 & 0x3f));
        *d++ = (char)(0x80 | (cp >> 6 & 0x3f));
        *d++ = (char)(0x80 | (cp & 0x3f));
    }
    return d;
}

/* Unescapes n raw bytes at s (a checked string body) into d, NUL-terminated. */
static void unescape(char *d, const unsigned char *s, size_t n)
{
    size_t i = 0;
    while (i < n) {
        if (s[i] != '\\') {
            *d++ = (char)s[i++];
            continue;
        }
        unsigned char e = s[i + 1];
        i += 2;
        switch (e) {
        case 'b':
            *d++ = '\b';
            break;
        case 'f':
            *d++ = '\f';
            break;
        case 'n':
            *d++ = '\n';
            break;
        case 'r':
            *d++ = '\r';
            break;
        case 't':
            *d++ = '\t';
            break;
        case 'u': {
            unsigned cp = 0, lo = 0;
            hex4(s + i, &cp);
            i += 4;
            if (cp >= 0xd800 && cp <= 0xdbff) { /* scan_u_escape saw its pair */
                hex4(s + i + 2, &lo);
                i += 6;
                cp = 0x10000 + ((cp & 0x3ff) << 10 | (lo & 0x3ff));
            }
            d = put_utf8(d, cp);
            break;
        }
        default: /* " \ / */
            *d++ = (char)e;
            break;
        }
    }
    *d = '\0';
}

static size_t format_number(char out[32], double d);

/* The string just scanned (its opening quote at start), in a new allocation; NULL: no memory. */
static char *string_value(const struct scan *sc, size_t start)
{
    size_t n = sc->pos - start - 2;
    char *out = tree_alloc(n + 1); /* unescaping never makes a string longer */
    if (!out)
        return NULL;
    if (sc->escaped) {
        unescape(out, sc->s + start + 1, n);
    } else {
        memcpy(out, sc->s + start + 1, n);
        out[n] = '\0';
    }
    return out;
}

static int is_digit(const struct scan *sc)
{
    return sc->pos < sc->len && sc->s[sc->pos] >= '0' && sc->s[sc->pos] <= '9';
}

/*
 * A number per RFC 8259 (pos at '-' or a digit) into *value; rejects one
 * beyond a double. Up to 15 significant digits and 22 decimals with no
 * exponent, m / 10^k is one correctly rounded division of exact values, so
 * it is the double strtod() returns (cJSON's way); the rest go to strtod().
 */
static int scan_number(struct scan *sc, double *value)
{
    static const double pow10[] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,
                                   1e8,  1e9,  1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
                                   1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};
    size_t start = sc->pos;
    int has_exp = 0, digits = 0, decimals = 0, neg = 0;
    uint64_t m = 0; /* wraps past 19 digits: used only up to 15 */
    if (sc->s[sc->pos] == '-') {
        neg = 1;
        sc->pos++;
    }
    if (!is_digit(sc))
        return unexpected(sc);
    unsigned char first = sc->s[sc->pos++];
    m = (uint64_t)(first - '0');
    digits = 1;
    if (first != '0')
        for (; is_digit(sc); sc->pos++, digits++)
            m = m * 10 + (uint64_t)(sc->s[sc->pos] - '0');
    if (sc->pos < sc->len && sc->s[sc->pos] == '.') {
        sc->pos++;
        if (!is_digit(sc))
            return unexpected(sc);
        for (; is_digit(sc); sc->pos++, digits++, decimals++)
            m = m * 10 + (uint64_t)(sc->s[sc->pos] - '0');
    }
    if (sc->pos < sc->len && (sc->s[sc->pos] == 'e' || sc->s[sc->pos] == 'E')) {
        has_exp = 1;
        sc->pos++;
        if (sc->pos < sc->len && (sc->s[sc->pos] == '+' || sc->s[sc->pos] == '-'))
            sc->pos++;
        if (!is_digit(sc))
            return unexpected(sc);
        while (is_digit(sc))
            sc->pos++;
    }
    size_t n = sc->pos - start;
    if (n > MAX_NUMBER)
        return fail(sc, start, "number longer than %d characters", MAX_NUMBER);
    if (!has_exp && digits <= 15 && decimals <= 22) {
        double d = (double)m / pow10[decimals];
        *value = neg ? -d : d;
    } else {
        char tmp[MAX_NUMBER + 1];
        memcpy(tmp, sc->s + start, n);
        tmp[n] = '\0';
        *value = strtod(tmp, NULL);
        /* Without an exponent, 63 digits stay far below DBL_MAX (~1.8e308). */
        if (has_exp && isinf(*value))
            return fail(sc, start, "number out of range");
    }
    /*
     * Spans need to know whether the writer prints the number as it is
     * written: an integer of up to 15 digits (not -0) it does; for any other
     * number, print it and compare.
     */
    if (current && (has_exp || decimals || digits > 15 || (neg && m == 0))) {
        char out[32];
        size_t k = format_number(out, *value);
        sc->noncanon += k != n || memcmp(out, sc->s + start, n) != 0;
    }
    return 0;
}

static int scan_literal(struct scan *sc, const char *word, size_t n)
{
    for (size_t i = 0; i < n; i++, sc->pos++)
        if (sc->pos >= sc->len || sc->s[sc->pos] != (unsigned char)word[i])
            return unexpected(sc);
    return 0;
}

/* One scalar value at pos into *out; containers are handled by the caller's loop. */
static int scan_scalar(struct scan *sc, cJSON **out)
{
    size_t start = sc->pos;
    double d = 0;
    int rc;
    cJSON *n;
    switch (sc->s[sc->pos]) {
    case '"':
        rc = scan_string(sc);
        if (rc < 0)
            return rc;
        n = new_node(cJSON_String);
        if (n) {
            n->valuestring = string_value(sc, start);
            if (!n->valuestring) {
                cJSON_free(n);
                n = NULL;
            }
        }
        break;
    case 't':
        rc = scan_literal(sc, "true", 4);
        if (rc < 0)
            return rc;
        n = new_node(cJSON_True);
        if (n)
            n->valueint = 1; /* as cJSON sets it */
        break;
    case 'f':
        rc = scan_literal(sc, "false", 5);
        if (rc < 0)
            return rc;
        n = new_node(cJSON_False);
        break;
    case 'n':
        rc = scan_literal(sc, "null", 4);
        if (rc < 0)
            return rc;
        n = new_node(cJSON_NULL);
        break;
    default:
        if (sc->s[sc->pos] != '-' && (sc->s[sc->pos] < '0' || sc->s[sc->pos] > '9'))
            return unexpected(sc);
        rc = scan_number(sc, &d);
        if (rc < 0)
            return rc;
        n = new_node(cJSON_Number);
        if (n) {
            n->valuedouble = d;
            n->valueint = d >= INT_MAX ? INT_MAX : d <= (double)INT_MIN ? INT_MIN : (int)d;
        }
        break;
    }
    *out = n;
    return n ? 0 : XD_ENOMEM;
}

/* Makes v the last child of parent, keeping cJSON's child->prev == last. */
static void append(cJSON *parent, cJSON *v)
{
    cJSON *first = parent->child;
    if (!first) {
        parent->child = v;
        v->prev = v;
        return;
    }
    cJSON *last = first->prev;
    last->next = v;
    v->prev = last;
    first->prev = v;
}

/*
 * The whole document into *out. The open containers are the stack of their
 * nodes; whether the innermost is an object decides what may follow.
 */
static int scan_document(struct scan *sc, cJSON **out)
{
    cJSON *stack[CJSON_NESTING_LIMIT]; /* max_depth is at most CJSON_NESTING_LIMIT */
    unsigned depth = 0;
    cJSON *root = NULL, *v = NULL;
    char *key = NULL; /* the name of the member whose value comes next */
    int rc;

    skip_ws(sc);
    if (sc->pos >= sc->len)
        return fail(sc, 0, "empty body");
    for (;;) {
        /* Here a value is expected. */
        skip_ws(sc);
        if (sc->pos >= sc->len)
            goto unexpected;
        unsigned char c = sc->s[sc->pos];
        if (c == '{' || c == '[') {
            if (depth >= sc->max_depth) {
                rc = fail(sc, sc->pos, "nesting deeper than %u", sc->max_depth);
                goto fail;
            }
            v = new_container(sc, c == '{' ? cJSON_Object : cJSON_Array);
            if (!v)
                goto oom;
        } else {
            rc = scan_scalar(sc, &v);
            if (rc == XD_ENOMEM)
                goto oom;
            if (rc < 0)
                goto fail;
        }
        v->string = key;
        key = NULL;
        if (depth == 0)
            root = v;
        else
            append(stack[depth - 1], v);
        if (c == '{' || c == '[') {
            stack[depth++] = v;
            sc->pos++;
            skip_ws(sc);
            if (sc->pos < sc->len && sc->s[sc->pos] == (c == '{' ? '}' : ']')) {
                sc->pos++;
                close_container(sc, stack[--depth]);
                goto after_value;
            }
            if (c == '[')
                continue;
            goto member;
        }
    after_value:
        skip_ws(sc);
        if (depth == 0) {
            if (sc->pos < sc->len)
                goto unexpected;
            *out = root;
            return 0;
        }
        int in_object = (stack[depth - 1]->type & 0xff) == cJSON_Object;
        if (sc->pos >= sc->len)
            goto unexpected;
        c = sc->s[sc->pos];
        if (c == (in_object ? '}' : ']')) {
            sc->pos++;
            close_container(sc, stack[--depth]);
            goto after_value;
        }
        if (c != ',')
            goto unexpected;
        sc->pos++;
        if (!in_object)
            continue;
        skip_ws(sc);
    member:
        /* pos at what must be a key. */
        if (sc->pos >= sc->len || sc->s[sc->pos] != '"')
            goto unexpected;
        size_t start = sc->pos;
        rc = scan_string(sc);
        if (rc < 0)
            goto fail;
        key = string_value(sc, start);
        if (!key)
            goto oom;
        skip_ws(sc);
        if (sc->pos >= sc->len || sc->s[sc->pos] != ':')
            goto unexpected;
        sc->pos++;
    }

unexpected:
    rc = unexpected(sc);
    goto fail;
oom:
    fail(sc, 0, "out of memory");
    rc = XD_ENOMEM;
fail:
    cJSON_free(key);
    cJSON_Delete(root);
    return rc;
}

int xd_json_parse(const char *buf, size_t len, const struct xd_json_limits *lim, cJSON **out,
                  struct xd_json_error *err)
{
    struct scan sc = {
        .s = (const unsigned char *)buf,
        .len = buf ? len : 0,
        .max_depth = lim && lim->max_depth ? lim->max_depth : DEFAULT_DEPTH,
        .max_string = lim && lim->max_string ? lim->max_string : DEFAULT_STRING,
        .err = err,
    };

    *out = NULL;
    if (sc.max_depth > CJSON_NESTING_LIMIT)
        sc.max_depth = CJSON_NESTING_LIMIT;
    /* A UTF-8 byte order mark is allowed (RFC 8259 section 8.1); cJSON skips it too. */
    if (sc.len >= 3 && memcmp(buf, "\xef\xbb\xbf", 3) == 0)
        sc.pos = 3;
    return scan_document(&sc, out);
}

/* ---- output ---- */

/*
 * The writer appends straight into the xd_buf's bytes: it makes room first,
 * writes, and puts the terminating NUL back once at the end (xd_json_write).
 * Going through xd_buf_append for every key and comma was most of its cost.
 */

/* Bytes that a JSON string must escape. */
static const unsigned char needs_escape[256] = {
    [0x00 ... 0x1f] = 1,
    ['"'] = 1,
    ['\\'] = 1,
};

/* Room for n more bytes and the NUL. */
static int room(struct xd_buf *b, size_t n)
{
    if (b->cap - b->len >= n + 1)
        return 0;
    return xd_buf_reserve(b, n);
}

static int put(struct xd_buf *b, const char *s, size_t n)
{
    if (room(b, n) < 0)
        return XD_ENOMEM;
    memcpy(b->data + b->len, s, n);
    b->len += n;
    return 0;
}

/* A string literal; the common case (nothing to escape) is one copy. */
static int put_string(struct xd_buf *b, const char *s, size_t n)
{
    if (room(b, n + 2) < 0)
        return XD_ENOMEM;
    const unsigned char *u = (const unsigned char *)s;
    char *d = b->data + b->len + 1;
    size_t i = 0;
    /* Four bytes a test (and one 4-byte copy) while none needs escaping. */
    while (n - i >= 4 &&
           (needs_escape[u[i]] | needs_escape[u[i + 1]] | needs_escape[u[i + 2]] |
            needs_escape[u[i + 3]]) == 0) {
        memcpy(d + i, u + i, 4);
        i += 4;
    }
    for (; i < n; i++) {
        if (needs_escape[u[i]])
            return xd_buf_json_strn(b, s, n); /* rare: the escaping writer */
        d[i] = (char)u[i];
    }
    d[-1] = '"';
    d[n] = '"';
    b->len += n + 2;
    return 0;
}

/*
 * A number with a few decimals (18.4, 0.05) the fast way: the integer m with
 * m / 10^k == d exactly, for the smallest k, gives a decimal of at most 15
 * digits that reads back as d. Only one such decimal exists (15-digit
 * decimals lie further apart than doubles), so it is exactly what %.15g
 * would print, without the cost of printf and strtod. Below 1e-4 %g would
 * use an exponent, so those are left to the slow way. Returns the length
 * written to out (at least 24 bytes), or 0.
 */
static int put_fixed(char *out, double d)
{
    static const double pow10[] = {1, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6};
    if (!(fabs(d) >= 1e-4 && fabs(d) < 1e9))
        return 0;
    for (int k = 1; k <= 6; k++) {
        double m = round(d * pow10[k]);
        if (m / pow10[k] != d)
            continue;
        char rev[24]; /* digits of |m|, least significant first */
        int nd = 0;
        char *p = out;
        unsigned long long u = (unsigned long long)fabs(m);
        do {
            rev[nd++] = (char)('0' + u % 10);
            u /= 10;
        } while (u);
        while (nd <= k) /* 5 at k = 2 is 0.05 */
            rev[nd++] = '0';
        if (d < 0)
            *p++ = '-';
        for (int i = nd - 1; i >= k; i--)
            *p++ = rev[i];
        *p++ = '.';
        for (int i = k - 1; i >= 0; i--)
            *p++ = rev[i];
        return (int)(p - out);
    }
    return 0;
}

/*
 * Integers up to 1e15 in plain digits; other numbers in the shortest of
 * %.15g and %.17g that reads back as the same double (as cJSON prints them).
 * Not finite (only possible in a tree built by hand): null.
 */
/* put_number()'s bytes into out (at most 25 of the 32): the one place numbers are formatted. */
static size_t format_number(char out[32], double d)
{
    int n;
    if (!isfinite(d)) {
        memcpy(out, "null", 4);
        return 4;
    }
    if (fabs(d) < 1e15 && d == (double)(long long)d) {
        char tmp[24];
        char *p = tmp + sizeof tmp;
        long long v = (long long)d;
        unsigned long long u = v < 0 ? 0ull - (unsigned long long)v : (unsigned long long)v;
        do {
            *--p = (char)('0' + u % 10);
            u /= 10;
        } while (u);
        if (v < 0)
            *--p = '-';
        memcpy(out, p, (size_t)(tmp + sizeof tmp - p));
        return (size_t)(tmp + sizeof tmp - p);
    }
    n = put_fixed(out, d);
    if (n > 0)
        return (size_t)n;
    n = snprintf(out, 32, "%.15g", d);
    if (strtod(out, NULL) != d)
        n = snprintf(out, 32, "%.17g", d);
    return (size_t)n;
}

static int put_number(struct xd_buf *b, double d)
{
    char tmp[32];
    size_t n = format_number(tmp, d);
    return put(b, tmp, n);
}

static int write_value(struct xd_buf *b, const cJSON *v)
{
    const cJSON *c;
    int rc = 0;
    switch (v->type & 0xff) {
    case cJSON_NULL:
        return put(b, "null", 4);
    case cJSON_False:
        return put(b, "false", 5);
    case cJSON_True:
        return put(b, "true", 4);
    case cJSON_Number:
        return put_number(b, v->valuedouble);
    case cJSON_String:
        return put_string(b, v->valuestring ? v->valuestring : "",
                          v->valuestring ? strlen(v->valuestring) : 0);
    case cJSON_Raw:
        return v->valuestring ? put(b, v->valuestring, strlen(v->valuestring)) : put(b, "null", 4);
    case cJSON_Array:
        rc = put(b, "[", 1);
        for (c = v->child; c && rc == 0; c = c->next) {
            if (c != v->child)
                rc = put(b, ",", 1);
            if (rc == 0)
                rc = write_value(b, c);
        }
        return rc < 0 ? rc : put(b, "]", 1);
    case cJSON_Object:
        rc = put(b, "{", 1);
        for (c = v->child; c && rc == 0; c = c->next) {
            if (c != v->child)
                rc = put(b, ",", 1);
            if (rc == 0)
                rc = put_string(b, c->string ? c->string : "", c->string ? strlen(c->string) : 0);
            if (rc == 0)
                rc = put(b, ":", 1);
            if (rc == 0)
                rc = write_value(b, c);
        }
        return rc < 0 ? rc : put(b, "}", 1);
    default:
        return XD_EINVAL;
    }
}

/* write_value(), copying the input bytes of containers whose span allows it. */
static int write_spliced(struct xd_buf *b, const cJSON *v)
{
    const cJSON *c;
    int rc = 0;
    int type = v->type & 0xff;
    if (type != cJSON_Array && type != cJSON_Object)
        return write_value(b, v);
    const struct span *sp = span_of(v);
    if (sp && sp->canonical && !sp->dirty)
        return put(b, sp->start, sp->len);
    rc = put(b, type == cJSON_Array ? "[" : "{", 1);
    for (c = v->child; c && rc == 0; c = c->next) {
        if (c != v->child)
            rc = put(b, ",", 1);
        if (rc == 0 && type == cJSON_Object)
            rc = put_string(b, c->string ? c->string : "", c->string ? strlen(c->string) : 0);
        if (rc == 0 && type == cJSON_Object)
            rc = put(b, ":", 1);
        if (rc == 0)
            rc = write_spliced(b, c);
    }
    return rc < 0 ? rc : put(b, type == cJSON_Array ? "]" : "}", 1);
}

int xd_json_write_spliced(struct xd_buf *b, const cJSON *item)
{
    int rc = write_spliced(b, item);
    if (b->data)
        b->data[b->len] = '\0'; /* room() always kept a byte for it */
    return rc;
}

int xd_json_write_string(struct xd_buf *b, const char *s, size_t n)
{
    int rc = put_string(b, s, n);
    if (b->data)
        b->data[b->len] = '\0';
    return rc;
}

int xd_json_write_number(struct xd_buf *b, double d)
{
    int rc = put_number(b, d);
    if (b->data)
        b->data[b->len] = '\0';
    return rc;
}

int xd_json_write(struct xd_buf *b, const cJSON *item)
{
    int rc = write_value(b, item);
    if (b->data)
        b->data[b->len] = '\0'; /* room() always kept a byte for it */
    return rc;
}

/* ---- arenas (see json.h) ---- */


#define CHUNK_MIN     16384
#define CHUNK_MAX     (4u << 20)


/*
 * This thread's spare chunk (json.h): a batch of 100 events needs ~400 KiB of
 * arena, which glibc serves from fresh pages (mmap, or a heap it trims again
 * after the free), so every request paid ~20 page faults (~5% of intake).
 * It is a pthread key's value, whose destructor frees it when the thread
 * exits; taken and given back once per chunk, not per node.
 */
#define SPARE_MAX (1u << 20) /* a batch of 100 needs 0.4-1 MiB; kept small: one per thread */
static pthread_key_t spare_key;
static int spare_key_ok;
static pthread_once_t spare_once = PTHREAD_ONCE_INIT;

static void spare_init(void)
{
    spare_key_ok = pthread_key_create(&spare_key, free) == 0;
}

static struct xd_json_chunk *spare(void)
{
    pthread_once(&spare_once, spare_init);
    return spare_key_ok ? pthread_getspecific(spare_key) : NULL;
}

/* Keeps c as this thread's spare when it is the bigger one; frees what is not kept. */
static void keep_or_free(struct xd_json_chunk *c)
{
    struct xd_json_chunk *old = spare();
    if (!spare_key_ok || c->size > SPARE_MAX || (old && old->size >= c->size) ||
        pthread_setspecific(spare_key, c) != 0) {
        free(c);
        return;
    }
    free(old);
}

/* A chunk of at least size bytes: the spare when it is big enough. */
static struct xd_json_chunk *new_chunk(size_t size)
{
    struct xd_json_chunk *c = spare();
    if (c && c->size >= size) {
        pthread_setspecific(spare_key, NULL);
        return c;
    }
    c = malloc(sizeof *c + size);
    if (c)
        c->size = size;
    return c;
}

void xd_json_arena_init(struct xd_json_arena *a, size_t hint)
{
    memset(a, 0, sizeof *a);
    a->hint = hint;
}

void xd_json_arena_dispose(struct xd_json_arena *a)
{
    struct xd_json_chunk *c = a->chunks;
    while (c) {
        struct xd_json_chunk *next = c->next;
        keep_or_free(c);
        c = next;
    }
    memset(a, 0, sizeof *a);
}

struct xd_json_arena *xd_json_arena_enter(struct xd_json_arena *a)
{
    struct xd_json_arena *prev = current;
    if (hooks_installed)
        current = a;
    return prev;
}

/*
 * n bytes (a multiple of 8) from a. When the newest chunk has no room, a new
 * one twice its size (the first: the hint) takes its place; an allocation
 * bigger than half of that gets a chunk of its own, kept behind the newest so
 * the room left there is still used.
 */
static void *arena_alloc(struct xd_json_arena *a, size_t n)
{
    if ((size_t)(a->end - a->cur) >= n) {
        void *p = a->cur;
        a->cur += n;
        return p;
    }
    size_t size = a->next_size ? a->next_size : a->hint;
    if (size < CHUNK_MIN)
        size = CHUNK_MIN;
    if (size > CHUNK_MAX)
        size = CHUNK_MAX;
    if (n > size / 2) {
        struct xd_json_chunk *c = new_chunk(n);
        if (!c)
            return NULL;
        if (a->chunks) {
            c->next = a->chunks->next;
            a->chunks->next = c;
        } else {
            c->next = NULL;
            a->chunks = c;
        }
        return c + 1;
    }
    struct xd_json_chunk *c = new_chunk(size);
    if (!c)
        return NULL;
    size = c->size; /* the spare may be bigger */
    c->next = a->chunks;
    a->chunks = c;
    a->cur = (char *)(c + 1) + n;
    a->end = (char *)(c + 1) + size;
    a->next_size = 2 * size;
    return c + 1;
}

static void *hook_malloc(size_t n)
{
    if (n > SIZE_MAX - 16)
        return NULL;
    uint64_t *h;
    if (current) {
        h = arena_alloc(current, (sizeof *h + n + 7) & ~(size_t)7);
        if (!h)
            return NULL;
        *h = TAG_ARENA;
    } else {
        h = malloc(sizeof *h + n);
        if (!h)
            return NULL;
        *h = TAG_HEAP;
    }
    return h + 1;
}

static void hook_free(void *p)
{
    if (!p)
        return;
    uint64_t *h = (uint64_t *)p - 1;
    if (*h == TAG_HEAP)
        free(h);
    else if (*h != TAG_ARENA && *h != TAG_SPAN)
        abort(); /* not from these hooks: freeing it would corrupt the heap */
    /* An arena allocation goes when its arena is disposed. */
}

/*
 * cJSON_Delete() with the hooks' free inline: per node three indirect calls
 * became three tag checks. The walk and its order are cJSON_Delete()'s.
 */
void xd_json_delete(cJSON *item)
{
    if (!hooks_installed) {
        cJSON_Delete(item);
        return;
    }
    while (item) {
        cJSON *next = item->next;
        if (!(item->type & cJSON_IsReference) && item->child)
            xd_json_delete(item->child);
        if (!(item->type & cJSON_IsReference) && item->valuestring)
            hook_free(item->valuestring);
        if (!(item->type & cJSON_StringIsConst) && item->string)
            hook_free(item->string);
        hook_free(item);
        item = next;
    }
}

int xd_json_hooks_active(void)
{
    return hooks_installed;
}

void xd_json_hooks_install(void)
{
    cJSON_Hooks hooks = {.malloc_fn = hook_malloc, .free_fn = hook_free};
    cJSON_InitHooks(&hooks);
    hooks_installed = 1;
}
