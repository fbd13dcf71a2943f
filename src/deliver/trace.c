/* W3C traceparent: building, formatting and parsing (see trace.h). */
#include "deliver/trace.h"
#include "core/err.h"

#include <string.h>

static int all_zero(const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (p[i])
            return 0;
    return 1;
}

static void random_bytes(uint8_t *p, size_t n, uint64_t (*rnd)(void *), void *ctx)
{
    do {
        for (size_t i = 0; i < n; i += 8) {
            uint64_t r = rnd(ctx);
            for (size_t j = 0; j < 8 && i + j < n; j++)
                p[i + j] = (uint8_t)(r >> (8 * j));
        }
    } while (all_zero(p, n));
}

int xd_trace_make(struct xd_trace *t, const uint8_t trace_id[16], const uint8_t span_id[8],
                  uint64_t (*rnd)(void *), void *rnd_ctx)
{
    if ((trace_id && all_zero(trace_id, 16)) || (span_id && all_zero(span_id, 8)))
        return XD_EINVAL;
    if (trace_id)
        memcpy(t->trace_id, trace_id, 16);
    else
        random_bytes(t->trace_id, 16, rnd, rnd_ctx);
    if (span_id)
        memcpy(t->span_id, span_id, 8);
    else
        random_bytes(t->span_id, 8, rnd, rnd_ctx);
    t->flags = 0x01;
    return 0;
}

void xd_trace_new(struct xd_trace *t, uint64_t (*rnd)(void *), void *rnd_ctx)
{
    random_bytes(t->trace_id, 16, rnd, rnd_ctx);
    random_bytes(t->span_id, 8, rnd, rnd_ctx);
    t->flags = 0x01;
}

void xd_trace_child(const struct xd_trace *parent, struct xd_trace *child, uint64_t (*rnd)(void *),
                    void *rnd_ctx)
{
    memcpy(child->trace_id, parent->trace_id, 16);
    child->flags = parent->flags;
    random_bytes(child->span_id, 8, rnd, rnd_ctx);
}

static char *hex(char *o, const uint8_t *p, size_t n)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        *o++ = digits[p[i] >> 4];
        *o++ = digits[p[i] & 15];
    }
    return o;
}

int xd_trace_format(const struct xd_trace *t, char out[XD_TRACEPARENT_LEN + 1])
{
    char *o = out;
    *o++ = '0';
    *o++ = '0';
    *o++ = '-';
    o = hex(o, t->trace_id, 16);
    *o++ = '-';
    o = hex(o, t->span_id, 8);
    *o++ = '-';
    o = hex(o, &t->flags, 1);
    *o = '\0';
    return XD_TRACEPARENT_LEN;
}

/* Lower-case hex only (the spec forbids upper case). */
static int unhex(const char *s, uint8_t *p, size_t n)
{
    for (size_t i = 0; i < 2 * n; i++) {
        char c = s[i];
        int v = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
        if (v < 0)
            return -1;
        if (i % 2 == 0)
            p[i / 2] = (uint8_t)(v << 4);
        else
            p[i / 2] |= (uint8_t)v;
    }
    return 0;
}

int xd_trace_parse(const char *s, size_t len, struct xd_trace *t)
{
    uint8_t version;
    struct xd_trace v;
    while (len > 0 && (*s == ' ' || *s == '\t')) {
        s++;
        len--;
    }
    while (len > 0 && (s[len - 1] == ' ' || s[len - 1] == '\t'))
        len--;
    if (len < XD_TRACEPARENT_LEN || unhex(s, &version, 1) < 0 || version == 0xff)
        return XD_EPARSE;
    if (version == 0 && len != XD_TRACEPARENT_LEN)
        return XD_EPARSE;
    if (len > XD_TRACEPARENT_LEN && s[XD_TRACEPARENT_LEN] != '-')
        return XD_EPARSE;
    if (s[2] != '-' || s[35] != '-' || s[52] != '-' || unhex(s + 3, v.trace_id, 16) < 0 ||
        unhex(s + 36, v.span_id, 8) < 0 || unhex(s + 53, &v.flags, 1) < 0)
        return XD_EPARSE;
    if (all_zero(v.trace_id, 16) || all_zero(v.span_id, 8))
        return XD_EPARSE;
    *t = v;
    return 0;
}
