/* The per-target circuit breaker (see circuit.h). */
#include "deliver/circuit.h"

#include <string.h>

void xd_circuit_init(struct xd_circuit *c, const struct xd_circuit_opts *o)
{
    memset(c, 0, sizeof *c);
    if (o)
        c->o = *o;
    if (c->o.failure_threshold == 0)
        c->o.failure_threshold = 5;
    if (c->o.open_ms == 0)
        c->o.open_ms = 5000;
    if (c->o.max_open_ms == 0)
        c->o.max_open_ms = 60000;
    if (c->o.max_open_ms < c->o.open_ms)
        c->o.max_open_ms = c->o.open_ms;
    c->state = XD_CIRCUIT_CLOSED;
    c->cooldown_ms = c->o.open_ms;
}

static void trip(struct xd_circuit *c, uint64_t now_ms)
{
    c->state = XD_CIRCUIT_OPEN;
    c->probing = 0;
    c->open_until_ms = now_ms > UINT64_MAX - c->cooldown_ms ? UINT64_MAX : now_ms + c->cooldown_ms;
}

static void reset(struct xd_circuit *c)
{
    c->state = XD_CIRCUIT_CLOSED;
    c->failures = 0;
    c->probing = 0;
    c->cooldown_ms = c->o.open_ms;
}

enum xd_permit xd_circuit_allow(struct xd_circuit *c, uint64_t now_ms)
{
    if (c->state == XD_CIRCUIT_CLOSED)
        return XD_PERMIT_NORMAL;
    if (c->state == XD_CIRCUIT_OPEN) {
        if (now_ms < c->open_until_ms)
            return XD_PERMIT_DENY;
        c->state = XD_CIRCUIT_HALF_OPEN;
        c->probing = 0;
    }
    if (c->probing)
        return XD_PERMIT_DENY;
    c->probing = 1;
    return XD_PERMIT_PROBE;
}

void xd_circuit_record(struct xd_circuit *c, enum xd_permit permit, enum xd_outcome out,
                       uint64_t now_ms)
{
    if (permit == XD_PERMIT_PROBE) {
        if (c->state != XD_CIRCUIT_HALF_OPEN || !c->probing)
            return; /* not the probe this breaker is waiting for */
        if (out == XD_OUT_RETRY) {
            uint64_t max = c->o.max_open_ms;
            c->cooldown_ms = c->cooldown_ms > max / 2 ? max : c->cooldown_ms * 2;
            trip(c, now_ms);
        } else {
            reset(c);
        }
        return;
    }
    if (permit != XD_PERMIT_NORMAL || c->state != XD_CIRCUIT_CLOSED)
        return; /* sent before the breaker opened: the probe decides */
    if (out != XD_OUT_RETRY) {
        c->failures = 0;
        return;
    }
    c->failures++;
    if (c->failures >= c->o.failure_threshold) {
        c->failures = 0;
        c->cooldown_ms = c->o.open_ms;
        c->opened++;
        trip(c, now_ms);
    }
}

void xd_circuit_release(struct xd_circuit *c, enum xd_permit permit)
{
    if (permit == XD_PERMIT_PROBE && c->state == XD_CIRCUIT_HALF_OPEN)
        c->probing = 0;
}

enum xd_circuit_state xd_circuit_state(const struct xd_circuit *c)
{
    return c->state;
}

uint64_t xd_circuit_next_probe_ms(const struct xd_circuit *c)
{
    switch (c->state) {
    case XD_CIRCUIT_OPEN:
        return c->open_until_ms;
    case XD_CIRCUIT_HALF_OPEN:
        return c->probing ? UINT64_MAX : 0;
    default:
        return 0;
    }
}

const char *xd_circuit_state_name(enum xd_circuit_state s)
{
    static const char *const names[] = {[XD_CIRCUIT_CLOSED] = "closed",
                                        [XD_CIRCUIT_OPEN] = "open",
                                        [XD_CIRCUIT_HALF_OPEN] = "half_open"};
    if ((unsigned)s >= sizeof names / sizeof names[0])
        return "?";
    return names[s];
}
