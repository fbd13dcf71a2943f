/*
 * crossdock demo: the main job on one machine. The real hub (cli/hub.h) with
 * the embedded store in a temporary folder, a simulated WMS posting a day of
 * activity, and reference ERP and billing endpoints that record what they
 * get and fail on cue; progress while it runs, then a summary and a
 * reconciliation (docs/demo.md explains how to read them).
 */
#ifndef XD_DEMO_H
#define XD_DEMO_H

struct xd_demo_opts {
    int once;         /* exit after the summary instead of serving until SIGINT/SIGTERM */
    unsigned events;  /* distinct events the WMS generates (default 2000) */
    unsigned port;    /* the hub's port (default 8080; a free one when that is busy) */
    const char *keep; /* keep the store in this folder; NULL: a temporary one, removed */
    unsigned seed;    /* the day generated: the same seed and events give the same day */
};

/*
 * Runs the demo and returns the process exit code: 0 when every event
 * reached its targets and the reconciliation is clean (docs/demo.md says
 * exactly what that means), 3 when it found discrepancies, 1 when the demo
 * could not run (its hub or endpoints could not start), 128 + the signal
 * when stopped by SIGINT/SIGTERM before the summary.
 */
int xd_demo_run(const struct xd_demo_opts *o);

#endif
