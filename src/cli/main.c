/*
 * crossdock's entry point: finds the command in the table and runs it.
 */
#include "cli/cli.h"
#include "audit/audit.h"
#include "formats/json.h"

#include <stdio.h>
#include <string.h>

static int cmd_help(int argc, char **argv);
static int cmd_version(int argc, char **argv);

static const struct xd_command commands[] = {
    {"serve", xd_cmd_serve, "run the hub",
     "crossdock serve [-c FILE]\n"
     "  Runs the hub with the config FILE (default crossdock.yaml). SIGTERM or SIGINT\n"
     "  stop accepting, finish the requests in flight and exit 0.\n"},
    {"check", xd_cmd_check, "validate a config file",
     "crossdock check [-c FILE]\n"
     "  Validates the config; errors are printed as FILE:LINE:COL: message.\n"
     "  Exit 0 when valid, 2 when not.\n"},
    {"convert", xd_cmd_convert, "print the canonical events of input files",
     "crossdock convert --from json|jsonl|csv|x12 [--customer C] [--warehouse W] [--ack]\n"
     "                  [-c FILE] FILE...\n"
     "  Parses and validates the files and prints their canonical events, one JSON\n"
     "  object a line; with --ack (X12) the 997 for each interchange instead. No store,\n"
     "  no network (-c only supplies X12 partner entries). Exit 0 when all are good, 2\n"
     "  when any input was rejected (each rejection on stderr with file and place).\n"},
    {"ingest", xd_cmd_ingest, "commit the events of files to the store",
     "crossdock ingest [-c FILE] FILE...\n"
     "  Validates each file (JSON, a {\"events\":[...]} batch, a JSON array, or JSON\n"
     "  lines) and commits its events to the configured store, as POST /v1/events\n"
     "  would. A file is stored whole or not at all. Exit 0, or 2 when any file was\n"
     "  rejected.\n"},
    {"rate", xd_cmd_rate, "print the charges rate cards give for events (a dry run)",
     "crossdock rate [-c FILE] EVENT.json...\n"
     "  Rates the events of the files (one event, a {\"events\":[...]} batch, a JSON array or\n"
     "  JSON lines) in the order given as one sequence, with the config's rate cards, and\n"
     "  prints the charges, one JSON object a line. Nothing is stored; a void reverses\n"
     "  charges printed earlier in the run. Exit 0, or 2 on an invalid event or an event\n"
     "  with no rate card for its customer and date (named on stderr with the reason).\n"},
    {"dlq", xd_cmd_dlq, "list, show and replay dead letters",
     "crossdock dlq list [-c FILE] [--target T] [--route R] [--limit N]\n"
     "crossdock dlq show [-c FILE] ID\n"
     "crossdock dlq replay [-c FILE] ID...\n"
     "crossdock dlq replay [-c FILE] --all [--target T] [--route R]\n"
     "  Works the dead-letter queue through the store; a running hub picks replayed\n"
     "  deliveries up within a moment. Exit 0, 2 on bad usage or ids that were not\n"
     "  dead letters.\n"},
    {"billing", xd_cmd_billing, "close a billing period (monthly minimums)",
     "crossdock billing close --period YYYY-MM [-c FILE]\n"
     "  Settles each customer's minimum_monthly for the period: one MINIMUM_TOPUP charge\n"
     "  for the shortfall, printed as JSON lines. Idempotent: closing again records\n"
     "  nothing new. Exit 0, 2 on a bad period or config.\n"},
    {"invoice", xd_cmd_invoice, "write the X12 810 invoice of a customer's month",
     "crossdock invoice --customer C --period YYYY-MM [-c FILE] [--out FILE]\n"
     "                  [--date YYYY-MM-DD] [--number N] [--sender ID] [--receiver ID] [--test]\n"
     "  Writes the X12 810 for the customer's charges with a service date in the period\n"
     "  (as GET /v1/charges lists them) to stdout, or to FILE (whole or not at all): one\n"
     "  810 per currency, each charge an IT1 line, TDS the total. The interchange control\n"
     "  number comes from a counter in the store, so it increases from run to run. The\n"
     "  invoice number is CUSTOMER-YYYYMM unless --number; the date is today (UTC) unless\n"
     "  --date; the receiver is the partner whose customer is C, else C (docs/x12.md).\n"
     "  Exit 0, 2 on bad usage or when there is nothing to invoice.\n"},
    {"audit", xd_cmd_audit, "verify the audit log's hash chain",
     "crossdock audit verify [-c FILE | --db PATH] [--anchor SEQ:HASH]\n"
     "  Walks the audit log of the configured store (or of the SQLite file PATH) and\n"
     "  checks every entry's hash and its link to the entry before. Prints the head\n"
     "  (SEQ:HASH) to record elsewhere; --anchor checks such a record, which also\n"
     "  catches entries removed from the end. Exit 0 intact, 4 tampered (the first\n"
     "  bad entry is named), 2 bad usage, config or store file, 1 store unreadable.\n"},
    {"reconcile", xd_cmd_reconcile, "the reconciliation report: what each system has",
     "crossdock reconcile [-c FILE] [--from DATE] [--to DATE] [--erp-export FILE.csv]\n"
     "                    [--billing-export FILE.csv] [--format text|json] [--json]\n"
     "                    [--no-exceptions] [--ledger]\n"
     "  Checks the ledger (what the WMS sent, the ERP accepted and billing accepted, per\n"
     "  shipment, receipt, adjustment and storage day) for breaks: not posted, posted not\n"
     "  billed, billed not shipped, quantity mismatches, storage days not charged,\n"
     "  duplicate charges; with exports from the ERP and billing, also what they lack or\n"
     "  have extra. Dates (YYYY-MM-DD, inclusive) limit the service dates looked at\n"
     "  (--since/--until are the same). Each break opens one `reconciliation` exception\n"
     "  (--no-exceptions: none). --ledger prints the ledger, one object a line.\n"
     "  Exit 0 when clean, 3 when breaks exist, 2 on bad input (docs/reconciliation.md).\n"},
    {"demo", xd_cmd_demo, "run the demo: the hub, a simulated WMS, reference ERP and billing",
     "crossdock demo [--once] [--events N] [--port P] [--keep DIR] [--seed S]\n"
     "  Runs the hub with its store in a temporary folder (--keep DIR: in DIR, kept), a\n"
     "  simulated WMS posting a day of N events (default 2000; S picks the day), and\n"
     "  reference ERP and billing endpoints that record what they get; the ERP is down\n"
     "  for 3 s mid-run and refuses one SKU. Shows progress, then a summary and a\n"
     "  reconciliation (docs/demo.md). The hub listens on 127.0.0.1:P (default 8080, a\n"
     "  free port when that is busy) and keeps serving until Ctrl-C; --once exits after\n"
     "  the summary. Exit 0 when every event reached its targets and the reconciliation\n"
     "  is clean, 3 when it is not, 1 when the demo could not start.\n"},
    {"help", cmd_help, "show help for a command", "crossdock help [COMMAND]\n"},
    {"version", cmd_version, "print the version", "crossdock version\n"},
};
#define NCOMMANDS (sizeof commands / sizeof commands[0])

static const struct xd_command *find(const char *name)
{
    for (size_t i = 0; i < NCOMMANDS; i++)
        if (strcmp(commands[i].name, name) == 0)
            return &commands[i];
    return NULL;
}

int xd_cli_usage(const char *name)
{
    const struct xd_command *c = find(name);
    fprintf(stderr, "usage: %s", c ? c->usage : "crossdock COMMAND [ARGS]\n");
    return 2;
}

static int cmd_version(int argc, char **argv)
{
    (void)argc, (void)argv;
    printf("crossdock %s\n", XD_VERSION);
    return 0;
}

static int cmd_help(int argc, char **argv)
{
    if (argc > 1) {
        const struct xd_command *c = find(argv[1]);
        if (!c) {
            fprintf(stderr, "crossdock: no command '%s'; try 'crossdock help'\n", argv[1]);
            return 2;
        }
        fputs(c->usage, stdout);
        return 0;
    }
    printf("crossdock %s: a logistics integration hub\n\nusage: crossdock COMMAND [ARGS]\n\n",
           XD_VERSION);
    for (size_t i = 0; i < NCOMMANDS; i++)
        printf("  %-10s %s\n", commands[i].name, commands[i].summary);
    printf("\n'crossdock help COMMAND' tells more.\n");
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        cmd_help(1, argv);
        return 2;
    }
    if (strcmp(argv[1], "--version") == 0 || strcmp(argv[1], "-V") == 0)
        return cmd_version(1, argv);
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)
        return cmd_help(argc - 1, argv + 1);
    const struct xd_command *c = find(argv[1]);
    if (!c) {
        fprintf(stderr, "crossdock: no command '%s'; try 'crossdock help'\n", argv[1]);
        return 2;
    }
    xd_json_hooks_install(); /* before any cJSON allocation: intake's arenas */
    xd_audit_argv(argc - 1, argv + 1); /* as typed, before getopt reorders it */
    return c->fn(argc - 1, argv + 1);
}
