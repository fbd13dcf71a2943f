/*
 * The command line: a table of commands (main.c), one file per command.
 * A command returns the process exit code: 0 success, 2 bad input or usage
 * (always with a reason on stderr), others as the contract documents.
 */
#ifndef XD_CLI_H
#define XD_CLI_H

#include <stddef.h>

struct xd_command {
    const char *name;
    int (*fn)(int argc, char **argv); /* argv[0] is the command name */
    const char *summary;              /* one line for `crossdock help` */
    const char *usage;                /* full help for `crossdock help NAME` */
};

int xd_cmd_serve(int argc, char **argv);
int xd_cmd_check(int argc, char **argv);
int xd_cmd_convert(int argc, char **argv);
int xd_cmd_ingest(int argc, char **argv);
int xd_cmd_rate(int argc, char **argv);
int xd_cmd_dlq(int argc, char **argv);
int xd_cmd_billing(int argc, char **argv);
int xd_cmd_demo(int argc, char **argv);
int xd_cmd_invoice(int argc, char **argv);
int xd_cmd_audit(int argc, char **argv);
int xd_cmd_reconcile(int argc, char **argv);

/* Reads a whole file (or "-" for stdin); caller frees *out. 0 or -errno. */
int xd_read_file(const char *path, char **out, size_t *len);
/*
 * Parses the options of a command that takes only -c FILE / --config FILE
 * (path keeps its default otherwise); optind is left at the first operand.
 * Returns 0, or -1 on an unknown option.
 */
int xd_cli_config_opt(int argc, char **argv, const char **path);
/* Loads the config named by -c (default crossdock.yaml); prints errors; NULL on failure. */
struct xd_config *xd_cli_load_config(const char *path);
/* Prints an intake's errors as FILE: PLACE: message on stderr. */
struct xd_intake;
void xd_cli_print_errors(const char *file, const struct xd_intake *in, int rc);
/* Prints "crossdock NAME: usage: ..." to stderr and returns 2. */
int xd_cli_usage(const char *name);

#endif
