/*
 * crossdock demo [--once] [--events N] [--port P] [--keep DIR]: the main job
 * on one machine (demo/demo.h). This file only reads the options.
 */
#include "cli/cli.h"
#include "demo/demo.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>

#define EVENTS_MIN 20 /* enough for every kind of event and the planned failures */
#define EVENTS_MAX 1000000

/* A whole number in [lo, hi], or -1. */
static long number(const char *s, long lo, long hi)
{
    char *end;
    long v = strtol(s, &end, 10);
    return *s && !*end && v >= lo && v <= hi ? v : -1;
}

int xd_cmd_demo(int argc, char **argv)
{
    struct xd_demo_opts o = {.events = 2000, .port = 8080, .seed = 20261128};
    static const struct option opts[] = {
        {"once", no_argument, NULL, 'o'},       {"events", required_argument, NULL, 'n'},
        {"port", required_argument, NULL, 'p'}, {"keep", required_argument, NULL, 'k'},
        {"seed", required_argument, NULL, 's'}, {0}};
    int c;
    long v;
    optind = 1;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 'o':
            o.once = 1;
            break;
        case 'n':
            if ((v = number(optarg, EVENTS_MIN, EVENTS_MAX)) < 0) {
                fprintf(stderr, "crossdock demo: --events: a number from %d to %d, not '%s'\n",
                        EVENTS_MIN, EVENTS_MAX, optarg);
                return 2;
            }
            o.events = (unsigned)v;
            break;
        case 'p':
            if ((v = number(optarg, 0, 65535)) < 0) {
                fprintf(stderr, "crossdock demo: --port: a port number (0-65535), not '%s'\n",
                        optarg);
                return 2;
            }
            o.port = (unsigned)v;
            break;
        case 'k':
            o.keep = optarg;
            break;
        case 's':
            if ((v = number(optarg, 0, 2147483647)) < 0) {
                fprintf(stderr, "crossdock demo: --seed: a whole number, not '%s'\n", optarg);
                return 2;
            }
            o.seed = (unsigned)v;
            break;
        default:
            return xd_cli_usage("demo");
        }
    }
    if (optind != argc)
        return xd_cli_usage("demo");
    return xd_demo_run(&o);
}
