/*
 * The 810 invoice writer (formats/x12_810.h). The cases read as data:
 *
 * - a fixed set of USD charges (a plain line, pallets, a reversal, a line
 *   whose amount min_amount raised) gives exactly the expected text;
 * - a JPY invoice, and charges in two currencies (one 810 each);
 * - TDS01 for 2-, 0- and 3-decimal currencies, negative totals, and the
 *   half-even rounding that only 3-decimal currencies need;
 * - every interchange written checks out: SE01, SE02, GE01, GE02, IEA01,
 *   IEA02 counted here, and crossdock's own X12 reader finds nothing wrong
 *   with the envelope (it only says the 810 is not a set it maps);
 * - what is refused, and that a refusal leaves the output as it was.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/buf.h"
#include "core/err.h"
#include "formats/convert.h"
#include "formats/x12_810.h"

#define NKEYS(a) (sizeof(a) / sizeof((a)[0]))

/* 2026-12-01T12:00:00Z */
#define NOON_DEC_1 1796126400LL

static struct xd_810 invoice(void)
{
    struct xd_810 inv = {.sender = "CROSSDOCK",
                         .receiver = "ACME",
                         .customer = "ACME",
                         .account = "ACC-0042",
                         .invoice = "ACME-202611",
                         .invoice_date = "2026-12-01",
                         .period_from = "2026-11-01",
                         .period_to = "2026-11-30",
                         .control = 42,
                         .time = NOON_DEC_1};
    return inv;
}

/* A charge; only what the writer reads. */
#define CHARGE(id_, code_, unit_, ref_, cur_, date_, q_, p_, a_)                                   \
    {                                                                                              \
        .charge_id = (char *)(id_), .customer = "ACME", .code = (char *)(code_),                   \
        .unit = (char *)(unit_), .reference = (char *)(ref_), .currency = (char *)(cur_),          \
        .service_date = (char *)(date_), .quantity = (char *)(q_), .unit_price = (char *)(p_),     \
        .amount = (char *)(a_)                                                                     \
    }

static struct xd_charge_rec usd[] = {
    CHARGE("chg-0000000000000001", "PICK_UNIT", "unit", "SHP-1001", "USD", "2026-11-28", "12",
           "0.35", "4.20"),
    CHARGE("chg-0000000000000002", "RECEIVE_PALLET", "pallet", "RCV-7", "USD", "2026-11-03", "3",
           "6.00", "18.00"),
    /* the reversal of the first: same quantity and price, amount negated */
    CHARGE("chg-0000000000000003", "PICK_UNIT", "unit", "SHP-1001", "USD", "2026-11-29", "12",
           "0.35", "-4.20"),
    /* min_amount raised 2 × 0.20 to 5.00: a lump sum */
    CHARGE("chg-0000000000000004", "PICK_LINE", "line", "SHP-1002", "USD", "2026-11-30", "2",
           "0.20", "5.00"),
    /* a monthly minimum top-up: no reference */
    CHARGE("chg-0000000000000005", "MINIMUM_TOPUP", "month", "", "USD", "2026-11-30", "1", "150.25",
           "150.25"),
};

static const char usd_expected[] =
    "ISA*00*          *00*          *ZZ*CROSSDOCK      *ZZ*ACME           *261201*1200*U*00401*"
    "000000042*0*P*>~\n"
    "GS*IN*CROSSDOCK*ACME*20261201*1200*42*X*004010~\n"
    "ST*810*0001~\n"
    "BIG*20261201*ACME-202611~\n"
    "CUR*SE*USD~\n"
    "N1*BT*ACME*91*ACC-0042~\n"
    "DTM*186*20261101~\n"
    "DTM*187*20261130~\n"
    "IT1*1*12*EA*0.35**SV*PICK_UNIT~\n"
    "PID*F****SHP-1001~\n"
    "REF*ZZ*chg-0000000000000001~\n"
    "DTM*472*20261128~\n"
    "IT1*2*3*PL*6**SV*RECEIVE_PALLET~\n"
    "PID*F****RCV-7~\n"
    "REF*ZZ*chg-0000000000000002~\n"
    "DTM*472*20261103~\n"
    "IT1*3*-12*EA*0.35**SV*PICK_UNIT~\n"
    "PID*F****SHP-1001~\n"
    "REF*ZZ*chg-0000000000000003~\n"
    "DTM*472*20261129~\n"
    "IT1*4*1*LS*5**SV*PICK_LINE~\n"
    "PID*F****SHP-1002~\n"
    "REF*ZZ*chg-0000000000000004~\n"
    "DTM*472*20261130~\n"
    "IT1*5*1*MO*150.25**SV*MINIMUM_TOPUP~\n"
    "REF*ZZ*chg-0000000000000005~\n"
    "DTM*472*20261130~\n"
    "TDS*17325~\n"
    "CTT*5~\n"
    "SE*28*0001~\n"
    "GE*1*42~\n"
    "IEA*1*000000042~\n";

static struct xd_charge_rec jpy[] = {
    CHARGE("chg-00000000000000a1", "RECEIVE_PALLET", "pallet", "RCV-9", "JPY", "2026-11-05", "3",
           "500", "1500"),
    CHARGE("chg-00000000000000a2", "STORAGE_PALLET_DAY", "pallet_day", "", "JPY", "2026-11-06",
           "40", "55", "2200"),
};

static const char jpy_expected[] =
    "ISA*00*          *00*          *ZZ*CROSSDOCK      *ZZ*ACME           *261201*1200*U*00401*"
    "000000042*0*P*>~\n"
    "GS*IN*CROSSDOCK*ACME*20261201*1200*42*X*004010~\n"
    "ST*810*0001~\n"
    "BIG*20261201*ACME-202611~\n"
    "CUR*SE*JPY~\n"
    "N1*BT*ACME*91*ACC-0042~\n"
    "DTM*186*20261101~\n"
    "DTM*187*20261130~\n"
    "IT1*1*3*PL*500**SV*RECEIVE_PALLET~\n"
    "PID*F****RCV-9~\n"
    "REF*ZZ*chg-00000000000000a1~\n"
    "DTM*472*20261105~\n"
    "IT1*2*40*PL*55**SV*STORAGE_PALLET_DAY~\n"
    "REF*ZZ*chg-00000000000000a2~\n"
    "DTM*472*20261106~\n"
    "TDS*370000~\n"
    "CTT*2~\n"
    "SE*16*0001~\n"
    "GE*1*42~\n"
    "IEA*1*000000042~\n";

/* ---- checking an interchange's envelope by counting ---- */

/* Element i of a segment line ("ID*a*b"), copied into out. */
static void element(const char *seg, unsigned i, char *out, size_t cap)
{
    const char *p = seg;
    for (unsigned k = 0; k < i && p; k++) {
        p = strpbrk(p, "*~");
        if (p && *p == '~')
            p = NULL;
        else if (p)
            p++;
    }
    size_t n = p ? strcspn(p, "*~") : 0;
    snprintf(out, cap, "%.*s", (int)(n < cap ? n : cap - 1), p ? p : "");
}

/*
 * Counts the segments of text (one a line, as the writer writes them) and
 * checks every count and control number of the envelope. Returns the
 * number of transaction sets.
 */
static size_t check_envelope(const char *text)
{
    char isa13[16] = "", gs06[16] = "", st02[16] = "", v[64];
    size_t sets = 0, groups = 0, inset = 0;
    for (const char *l = text; *l;) {
        size_t n = strcspn(l, "\n");
        char seg[512];
        snprintf(seg, sizeof seg, "%.*s", (int)n, l);
        assert_true(n > 0 && seg[n - 1] == '~');
        if (inset)
            inset++;
        if (strncmp(seg, "ISA*", 4) == 0) {
            element(seg, 13, isa13, sizeof isa13);
        } else if (strncmp(seg, "GS*", 3) == 0) {
            element(seg, 6, gs06, sizeof gs06);
            assert_int_equal(atol(gs06), atol(isa13));
            groups++;
            sets = 0;
        } else if (strncmp(seg, "ST*", 3) == 0) {
            element(seg, 2, st02, sizeof st02);
            inset = 1;
            sets++;
        } else if (strncmp(seg, "SE*", 3) == 0) {
            element(seg, 1, v, sizeof v);
            assert_int_equal(atol(v), (long)inset);
            element(seg, 2, v, sizeof v);
            assert_string_equal(v, st02);
            inset = 0;
        } else if (strncmp(seg, "GE*", 3) == 0) {
            element(seg, 1, v, sizeof v);
            assert_int_equal(atol(v), (long)sets);
            element(seg, 2, v, sizeof v);
            assert_string_equal(v, gs06);
        } else if (strncmp(seg, "IEA*", 4) == 0) {
            element(seg, 1, v, sizeof v);
            assert_int_equal(atol(v), (long)groups);
            element(seg, 2, v, sizeof v);
            assert_string_equal(v, isa13);
        }
        l += n + (l[n] == '\n');
    }
    assert_int_equal(groups, 1);
    return sets;
}

/* crossdock's reader: no envelope problem, only "not supported" once per set. */
static void reads_back(const char *text, size_t nsets)
{
    cJSON *events = NULL;
    struct xd_verrs errs = {0};
    int rc = xd_x12_read(text, strlen(text), NULL, &events, &errs, NULL);
    assert_int_equal(rc, XD_ESCHEMA);
    assert_int_equal(errs.n, nsets);
    for (size_t i = 0; i < errs.n; i++) {
        if (!strstr(errs.v[i].message, "transaction set 810 is not supported"))
            fail_msg("the reader found more than an unsupported set: %s: %s", errs.v[i].path,
                     errs.v[i].message);
    }
    assert_true(!events || cJSON_GetArraySize(events) == 0);
    cJSON_Delete(events);
    xd_verrs_dispose(&errs);
}

static void written(const struct xd_810 *inv, const struct xd_charge_rec *ch, size_t n,
                    const char *expected, struct xd_810_result *res)
{
    struct xd_buf out, err;
    xd_buf_init(&out);
    xd_buf_init(&err);
    int rc = xd_x12_810_write(&out, inv, ch, n, res, &err);
    if (rc != 0)
        fail_msg("rc %d: %s", rc, xd_buf_str(&err));
    if (expected && strcmp(xd_buf_str(&out), expected) != 0)
        fail_msg("got:\n%s\nexpected:\n%s", xd_buf_str(&out), expected);
    size_t sets = check_envelope(xd_buf_str(&out));
    assert_int_equal(sets, res->nsets);
    reads_back(xd_buf_str(&out), sets);
    xd_buf_dispose(&out);
    xd_buf_dispose(&err);
}

/* ---- the cases ---- */

static void test_usd(void **state)
{
    (void)state;
    struct xd_810 inv = invoice();
    struct xd_810_result res;
    written(&inv, usd, NKEYS(usd), usd_expected, &res);
    assert_int_equal(res.nsets, 1);
    assert_string_equal(res.sets[0].currency, "USD");
    assert_string_equal(res.sets[0].invoice, "ACME-202611");
    assert_int_equal(res.sets[0].lines, 5);
    assert_int_equal(res.sets[0].lump, 1);
    assert_string_equal(res.sets[0].total, "173.25");
    assert_string_equal(res.sets[0].tds, "17325");
    assert_false(res.sets[0].rounded);
}

static void test_jpy(void **state)
{
    (void)state;
    struct xd_810 inv = invoice();
    struct xd_810_result res;
    written(&inv, jpy, NKEYS(jpy), jpy_expected, &res);
    assert_string_equal(res.sets[0].total, "3700");
    assert_string_equal(res.sets[0].tds, "370000"); /* ¥3700 with two implied decimals */
    assert_false(res.sets[0].rounded);
}

/* No account, no period, test data, another control number. */
static void test_header_options(void **state)
{
    (void)state;
    struct xd_810 inv = invoice();
    inv.account = NULL;
    inv.period_from = inv.period_to = NULL;
    inv.test = 1;
    inv.control = 999999999;
    struct xd_810_result res;
    struct xd_buf out, err;
    xd_buf_init(&out);
    xd_buf_init(&err);
    assert_int_equal(xd_x12_810_write(&out, &inv, usd, 1, &res, &err), 0);
    const char *t = xd_buf_str(&out);
    assert_non_null(strstr(t, "*999999999*0*T*>~\n"));
    assert_non_null(strstr(t, "GS*IN*CROSSDOCK*ACME*20261201*1200*999999999*X*004010~\n"));
    assert_non_null(strstr(t, "\nN1*BT*ACME~\n"));
    assert_null(strstr(t, "DTM*186"));
    assert_null(strstr(t, "DTM*187"));
    assert_non_null(strstr(t, "\nIEA*1*999999999~\n"));
    assert_int_equal(check_envelope(t), 1);
    reads_back(t, 1);
    xd_buf_dispose(&out);
    xd_buf_dispose(&err);
}

/* Charges in two currencies: one 810 each, in order of first appearance. */
static void test_two_currencies(void **state)
{
    (void)state;
    struct xd_charge_rec mixed[] = {
        CHARGE("chg-00000000000000b1", "PICK_UNIT", "unit", "S1", "EUR", "2026-11-02", "10", "0.30",
               "3.00"),
        CHARGE("chg-00000000000000b2", "PICK_UNIT", "unit", "S2", "USD", "2026-11-03", "10", "0.35",
               "3.50"),
        CHARGE("chg-00000000000000b3", "HANDLING_SHIPMENT", "shipment", "S3", "EUR", "2026-11-04",
               "1", "2.50", "2.50"),
    };
    struct xd_810 inv = invoice();
    struct xd_810_result res;
    written(&inv, mixed, NKEYS(mixed), NULL, &res);
    assert_int_equal(res.nsets, 2);
    assert_string_equal(res.sets[0].currency, "EUR");
    assert_string_equal(res.sets[0].invoice, "ACME-202611-EUR");
    assert_int_equal(res.sets[0].lines, 2);
    assert_string_equal(res.sets[0].tds, "550");
    assert_string_equal(res.sets[1].currency, "USD");
    assert_string_equal(res.sets[1].invoice, "ACME-202611-USD");
    assert_int_equal(res.sets[1].lines, 1);
    assert_string_equal(res.sets[1].tds, "350");
}

/* TDS01: the total in hundredths, whatever the currency's minor unit. */
static void test_tds(void **state)
{
    (void)state;
    static const struct {
        const char *currency;
        const char *amounts[3];
        const char *total, *tds;
        int rounded;
    } cases[] = {
        {"USD", {"160.00"}, "160.00", "16000", 0},       /* the TDS*16000 of the Adobe sample */
        {"USD", {"4.20", "-10.00"}, "-5.80", "-580", 0}, /* a credit */
        {"EUR", {"0.01"}, "0.01", "1", 0},
        {"USD", {"4.20", "-4.20"}, "0.00", "0", 0},
        {"JPY", {"1"}, "1", "100", 0}, /* 0 decimals: exact, × 100 */
        {"JPY", {"1500", "-1"}, "1499", "149900", 0},
        {"KWD", {"1.250"}, "1.250", "125", 0},          /* 3 decimals, exact */
        {"KWD", {"1.245", "1.000"}, "2.245", "224", 1}, /* half-even: 2.245 -> 2.24 */
        {"KWD", {"1.255"}, "1.255", "126", 1},          /* half-even: 1.255 -> 1.26 */
        {"BHD", {"0.005"}, "0.005", "0", 1},            /* 0.005 -> 0.00 */
        {"BHD", {"-0.015"}, "-0.015", "-2", 1},         /* -0.015 -> -0.02 */
        {"USD", {"9999999999999.99"}, "9999999999999.99", "999999999999999", 0}, /* 15 digits */
    };
    for (size_t i = 0; i < NKEYS(cases); i++) {
        struct xd_charge_rec ch[3];
        size_t n = 0;
        for (; n < 3 && cases[i].amounts[n]; n++) {
            struct xd_charge_rec c =
                CHARGE("chg-00000000000000c1", "ADJ", "adjustment", "A", cases[i].currency,
                       "2026-11-10", "1", cases[i].amounts[n], cases[i].amounts[n]);
            ch[n] = c;
        }
        struct xd_810 inv = invoice();
        struct xd_810_result res;
        written(&inv, ch, n, NULL, &res);
        if (strcmp(res.sets[0].total, cases[i].total) != 0 ||
            strcmp(res.sets[0].tds, cases[i].tds) != 0 || res.sets[0].rounded != cases[i].rounded)
            fail_msg("case %zu (%s): total %s, TDS %s, rounded %d; expected %s, %s, %d", i,
                     cases[i].currency, res.sets[0].total, res.sets[0].tds, res.sets[0].rounded,
                     cases[i].total, cases[i].tds, cases[i].rounded);
    }
}

/* How a charge becomes an IT1: quantity, unit and price that give its amount. */
static void test_lines(void **state)
{
    (void)state;
    static const struct {
        const char *unit, *q, *p, *a;
        const char *it1; /* IT102-IT104 as written */
    } cases[] = {
        {"unit", "12", "0.35", "4.20", "*12*EA*0.35*"},
        {"unit", "12", "0.35", "-4.20", "*-12*EA*0.35*"},  /* reversal */
        {"kg", "18.37", "0.10", "1.84", "*18.37*KG*0.1*"}, /* rounded half-even by rating */
        {"carton", "3", "1.005", "3.02", "*3*CT*1.005*"},  /* 3.015 -> 3.02 */
        {"pallet_day", "40", "0.55", "22.00", "*40*PL*0.55*"},
        {"line", "2", "0.20", "5.00", "*1*LS*5*"},          /* min_amount */
        {"line", "2", "0.20", "-5.00", "*-1*LS*5*"},        /* its reversal */
        {"shipment", "1", "-2.50", "-2.50", "*-1*EA*2.5*"}, /* a negative price */
        {"receipt", "1", "0", "0.00", "*1*EA*0*"},
        {"furlong", "1", "2", "2.00", "*1*EA*2*"}, /* unknown unit: EA */
    };
    for (size_t i = 0; i < NKEYS(cases); i++) {
        struct xd_charge_rec c = CHARGE("chg-00000000000000d1", "X", cases[i].unit, "R", "USD",
                                        "2026-11-10", cases[i].q, cases[i].p, cases[i].a);
        struct xd_810 inv = invoice();
        struct xd_810_result res;
        struct xd_buf out, err;
        xd_buf_init(&out);
        xd_buf_init(&err);
        assert_int_equal(xd_x12_810_write(&out, &inv, &c, 1, &res, &err), 0);
        char want[128];
        snprintf(want, sizeof want, "\nIT1*1%s*SV*X~\n", cases[i].it1);
        if (!strstr(xd_buf_str(&out), want))
            fail_msg("case %zu: no %s in\n%s", i, want, xd_buf_str(&out));
        reads_back(xd_buf_str(&out), 1);
        xd_buf_dispose(&out);
        xd_buf_dispose(&err);
    }
}

static void test_uom(void **state)
{
    (void)state;
    static const char *const pairs[][2] = {
        {"unit", "EA"},       {"line", "EA"},     {"shipment", "EA"}, {"receipt", "EA"},
        {"adjustment", "EA"}, {"unit_day", "EA"}, {"pallet", "PL"},   {"pallet_day", "PL"},
        {"carton", "CT"},     {"kg", "KG"},       {"month", "MO"},    {"other", "EA"},
    };
    for (size_t i = 0; i < NKEYS(pairs); i++)
        assert_string_equal(xd_x12_uom(pairs[i][0]), pairs[i][1]);
    assert_string_equal(xd_x12_uom(NULL), "EA");
}

/* What is refused, with a reason naming it; the output keeps what it had. */
static void test_refusals(void **state)
{
    (void)state;
    static const struct {
        const char *what; /* field changed */
        const char *value;
        int rc;
        const char *message; /* part of the error */
    } cases[] = {
        {"code", "PICK*UNIT", XD_EINVAL, "charge 1 (chg-0000000000000001): code: holds an X12"},
        {"code", "", XD_EINVAL, "code: must be 1 to 48 characters"},
        {"currency", "XXX", XD_EINVAL, "currency: not an ISO 4217 code"},
        {"amount", "4,20", XD_EINVAL, "amount: not a decimal number"},
        {"amount", "4.205", XD_EINVAL, "amount: has more decimals than its currency"},
        {"quantity", "", XD_EINVAL, "quantity: not a decimal number"},
        {"service_date", "2026-02-30", XD_EINVAL, "service_date: not a date"},
        {"receiver", "A-RECEIVER-OVER-15", XD_EINVAL,
         "receiver 'A-RECEIVER-OVER-15': must be 1 to 15"},
        {"sender", "", XD_EINVAL, "sender '': must be 1 to 15"},
        {"customer", "AC~ME", XD_EINVAL, "customer 'AC~ME': holds an X12 delimiter"},
        {"invoice", "AN-INVOICE-NUMBER-OVER-22", XD_EINVAL, "invoice number"},
        {"invoice_date", "2026-13-01", XD_EINVAL, "invoice date '2026-13-01'"},
        {"account", "A", XD_EINVAL, "account 'A': must be 2 to 80"},
        {"amount", "99999999999999.99", XD_ELIMIT, "does not fit TDS01"},
        {"none", NULL, XD_EINVAL, "no charges to invoice"},
    };
    for (size_t i = 0; i < NKEYS(cases); i++) {
        struct xd_charge_rec c = usd[0];
        struct xd_810 inv = invoice();
        const char *v = cases[i].value;
        if (strcmp(cases[i].what, "code") == 0)
            c.code = (char *)v;
        else if (strcmp(cases[i].what, "currency") == 0)
            c.currency = (char *)v;
        else if (strcmp(cases[i].what, "amount") == 0)
            c.amount = (char *)v;
        else if (strcmp(cases[i].what, "quantity") == 0)
            c.quantity = (char *)v;
        else if (strcmp(cases[i].what, "service_date") == 0)
            c.service_date = (char *)v;
        else if (strcmp(cases[i].what, "receiver") == 0)
            inv.receiver = v;
        else if (strcmp(cases[i].what, "sender") == 0)
            inv.sender = v;
        else if (strcmp(cases[i].what, "customer") == 0)
            inv.customer = v;
        else if (strcmp(cases[i].what, "invoice") == 0)
            inv.invoice = v;
        else if (strcmp(cases[i].what, "invoice_date") == 0)
            inv.invoice_date = v;
        else if (strcmp(cases[i].what, "account") == 0)
            inv.account = v;
        struct xd_buf out, err;
        xd_buf_init(&out);
        xd_buf_init(&err);
        xd_buf_puts(&out, "before");
        struct xd_charge_rec two[2] = {c, c}; /* twice: the TDS case needs 17 digits */
        size_t n = strcmp(cases[i].what, "none") == 0 ? 0 : 2;
        int rc = xd_x12_810_write(&out, &inv, two, n, NULL, &err);
        if (rc != cases[i].rc || !strstr(xd_buf_str(&err), cases[i].message))
            fail_msg("case %zu (%s): rc %d, error '%s'; expected %d, '%s'", i, cases[i].what, rc,
                     xd_buf_str(&err), cases[i].rc, cases[i].message);
        assert_string_equal(xd_buf_str(&out), "before");
        xd_buf_dispose(&out);
        xd_buf_dispose(&err);
    }
}

/* Appends: a second invoice follows the first in the same buffer. */
static void test_appends(void **state)
{
    (void)state;
    struct xd_810 inv = invoice();
    struct xd_buf out, err;
    xd_buf_init(&out);
    xd_buf_init(&err);
    assert_int_equal(xd_x12_810_write(&out, &inv, usd, NKEYS(usd), NULL, &err), 0);
    size_t first = out.len;
    assert_int_equal(xd_x12_810_write(&out, &inv, jpy, NKEYS(jpy), NULL, &err), 0);
    assert_memory_equal(out.data, usd_expected, first);
    assert_string_equal(out.data + first, jpy_expected);
    xd_buf_dispose(&out);
    xd_buf_dispose(&err);
}

int main(void)
{
    static const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_usd),
        cmocka_unit_test(test_jpy),
        cmocka_unit_test(test_header_options),
        cmocka_unit_test(test_two_currencies),
        cmocka_unit_test(test_tds),
        cmocka_unit_test(test_lines),
        cmocka_unit_test(test_uom),
        cmocka_unit_test(test_refusals),
        cmocka_unit_test(test_appends),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
