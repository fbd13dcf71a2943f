/*
 * A circuit breaker per target: a pure state machine, with the clock passed
 * in (now_ms, any monotonic milliseconds), no I/O and no locking (one
 * thread owns it, the delivery loop).
 *
 *   CLOSED     every attempt may go. After `failure_threshold` consecutive
 *              RETRY outcomes (timeouts, network errors, 408/425/429/5xx)
 *              it opens. OK and FAIL reset the count: a 4xx is the target
 *              answering, so the target is up.
 *   OPEN       nothing may go until the cool-down ends (open_ms, doubling
 *              after every failed probe, up to max_open_ms).
 *   HALF_OPEN  exactly one attempt, the probe, may be in flight. Its OK or
 *              FAIL closes the breaker (and resets the cool-down); its RETRY
 *              opens it again for twice as long.
 *
 * The breaker decides only *when* attempts may go. A delivery that is denied
 * has not been attempted: the caller keeps it queued, does not count an
 * attempt against retry.max_attempts and asks again at
 * xd_circuit_next_probe_ms(). So while a target is down no attempts are
 * burned and nothing is lost.
 *
 * Each permitted attempt carries its permit back to xd_circuit_record(), so
 * that answers to attempts sent before the breaker opened (a 5 s timeout
 * can land during a 5 s cool-down) are not taken for the probe's verdict:
 * only a PROBE permit moves the breaker out of OPEN / HALF_OPEN, and
 * NORMAL permits are counted only while CLOSED.
 *
 * Ownership: caller storage, xd_circuit_init(); nothing to free.
 */
#ifndef XD_DELIVER_CIRCUIT_H
#define XD_DELIVER_CIRCUIT_H

#include <stdint.h>

#include "deliver/outcome.h"

enum xd_circuit_state {
    XD_CIRCUIT_CLOSED,
    XD_CIRCUIT_OPEN,
    XD_CIRCUIT_HALF_OPEN,
};

/* What xd_circuit_allow() grants; keep it with the attempt. */
enum xd_permit {
    XD_PERMIT_DENY = 0,   /* not now: see xd_circuit_next_probe_ms() */
    XD_PERMIT_NORMAL = 1, /* go (breaker closed) */
    XD_PERMIT_PROBE = 2,  /* go, as the one half-open probe */
};

struct xd_circuit_opts {
    unsigned failure_threshold; /* consecutive RETRY outcomes that open it; 0 = 5 */
    uint64_t open_ms;           /* first cool-down; 0 = 5000 */
    uint64_t max_open_ms;       /* longest cool-down; 0 = 60000 (never below open_ms) */
};

struct xd_circuit {
    struct xd_circuit_opts o; /* with defaults filled in */
    enum xd_circuit_state state;
    unsigned failures;      /* consecutive RETRY outcomes while CLOSED */
    uint64_t cooldown_ms;   /* length of the current (or next) OPEN period */
    uint64_t open_until_ms; /* OPEN: when a probe becomes allowed */
    int probing;            /* HALF_OPEN: the probe is in flight */
    uint64_t opened;        /* times it went CLOSED -> OPEN (metrics) */
};

/* Starts CLOSED. o may be NULL for the defaults. */
void xd_circuit_init(struct xd_circuit *c, const struct xd_circuit_opts *o);

/*
 * May an attempt go now? OPEN turns HALF_OPEN once now_ms reaches the end
 * of the cool-down; in HALF_OPEN the first caller gets the PROBE permit and
 * everyone else DENY until the probe is recorded or released.
 */
enum xd_permit xd_circuit_allow(struct xd_circuit *c, uint64_t now_ms);

/* The verdict on an attempt that was given permit (see the top comment). */
void xd_circuit_record(struct xd_circuit *c, enum xd_permit permit, enum xd_outcome out,
                       uint64_t now_ms);

/*
 * An attempt that ended without saying anything about the target (it was
 * cancelled, or failed here before reaching the network): a PROBE permit
 * goes back, so the next xd_circuit_allow() may probe again.
 */
void xd_circuit_release(struct xd_circuit *c, enum xd_permit permit);

enum xd_circuit_state xd_circuit_state(const struct xd_circuit *c);

/*
 * When xd_circuit_allow() may next say yes: 0 when it would now (CLOSED,
 * or HALF_OPEN with no probe out), the end of the cool-down when OPEN, and
 * UINT64_MAX while a probe is in flight (wait for its verdict, not a time).
 */
uint64_t xd_circuit_next_probe_ms(const struct xd_circuit *c);

/* "closed", "open", "half_open". */
const char *xd_circuit_state_name(enum xd_circuit_state s);

#endif
