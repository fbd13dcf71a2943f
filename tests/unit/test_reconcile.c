/*
 * Reconciliation's pure parts: CSV as a table (formats/csv_table.h) and the
 * ERP's and billing's exports read from it (reconcile/export.h) — columns by
 * configured name, rows summed per document or charge, exact decimals, and
 * every refusal naming its row and column. Inputs are copied into buffers of
 * exactly their length (no NUL after them) so AddressSanitizer catches any
 * read past the end. The report itself runs against a real hub in
 * tests/integration/test_reconcile.py.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "core/buf.h"
#include "core/config.h"
#include "core/err.h"
#include "formats/csv_table.h"
#include "rating/money.h"
#include "reconcile/export.h"

/* text in a heap buffer of exactly its length. */
static char *exact(const char *text, size_t *len)
{
    *len = strlen(text);
    char *b = malloc(*len ? *len : 1);
    assert_non_null(b);
    memcpy(b, text, *len);
    return b;
}

static void dec_is(struct xd_dec d, const char *want)
{
    char b[XD_DEC_BUFSZ];
    xd_dec_format(d, b, sizeof b);
    assert_string_equal(b, want);
}

static struct xd_config *cfg_default(void)
{
    struct xd_config *c = xd_config_default();
    assert_non_null(c);
    return c;
}

/* ---- csv_table ---- */

static void test_table(void **state)
{
    (void)state;
    size_t len;
    char *in = exact("\xEF\xBB\xBF Document ,qty\r\n\"SHP,1\",3\n\n\"say \"\"hi\"\"\"\n", &len);
    struct xd_csv_table t;
    struct xd_buf err;
    xd_buf_init(&err);
    assert_int_equal(xd_csv_table_read(in, len, &t, &err), 0);
    assert_int_equal(t.ncols, 2);
    assert_int_equal(t.nrows, 2);
    assert_int_equal(xd_csv_table_col(&t, "document"), 0);
    assert_int_equal(xd_csv_table_col(&t, "QTY"), 1);
    assert_int_equal(xd_csv_table_col(&t, "sku"), -1);
    assert_string_equal(xd_csv_table_cell(&t, 0, 0), "SHP,1");
    assert_string_equal(xd_csv_table_cell(&t, 0, 1), "3");
    assert_string_equal(xd_csv_table_cell(&t, 1, 0), "say \"hi\"");
    assert_string_equal(xd_csv_table_cell(&t, 1, 1), ""); /* a short row */
    assert_string_equal(xd_csv_table_cell(&t, 1, -1), "");
    xd_csv_table_dispose(&t);
    xd_buf_dispose(&err);
    free(in);
}

static void test_table_refusals(void **state)
{
    (void)state;
    static const struct {
        const char *in, *msg;
    } cases[] = {
        {"a,b\n1,2,3\n", "row 2: 3 cells, the header has 2 columns"},
        {"a,b\n1,\"2\n", "row 2: "},
        {"", "row 1: no header row"},
        {"\n\n", "row 1: no header row"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        size_t len;
        char *in = exact(cases[i].in, &len);
        struct xd_csv_table t;
        struct xd_buf err;
        xd_buf_init(&err);
        assert_int_equal(xd_csv_table_read(in, len, &t, &err), XD_EPARSE);
        assert_non_null(strstr(xd_buf_str(&err), cases[i].msg));
        assert_null(t.head);
        xd_buf_dispose(&err);
        free(in);
    }
}

/* ---- the ERP's export ---- */

static void test_erp_export(void **state)
{
    (void)state;
    struct xd_config *cfg = cfg_default();
    size_t len;
    char *in = exact("type,document,reference,sku,quantity\n"
                     "shipment,SHP-1,49001,SKU-1,3\n"
                     "receipt,RCV-1,50001,SKU-1,5\n"
                     "shipment,SHP-1,49001,SKU-2,+1.5\n"
                     "receipt,SHP-1,50002,,2\n",
                     &len);
    struct xd_erp_export x;
    struct xd_buf err;
    xd_buf_init(&err);
    assert_int_equal(xd_erp_export_read(&cfg->reconcile.erp_export, in, len, "erp.csv", &x, &err),
                     0);
    assert_int_equal(x.rows, 4);
    assert_int_equal(x.n, 3); /* SHP-1 the receipt, SHP-1 the shipment (two SKUs), RCV-1 */
    assert_string_equal(x.docs[0].document, "RCV-1");
    assert_string_equal(x.docs[1].document, "SHP-1");
    assert_string_equal(x.docs[1].type, "receipt");
    dec_is(x.docs[1].qty, "2");
    assert_string_equal(x.docs[2].type, "shipment");
    dec_is(x.docs[2].qty, "4.5");
    assert_string_equal(x.docs[2].reference, "49001");
    assert_int_equal(x.docs[2].row, 2);
    /* Per SKU, sorted; a document with a row without SKU is compared by its total. */
    assert_int_equal(x.docs[2].nskus, 2);
    assert_false(x.docs[2].unsku);
    assert_string_equal(x.docs[2].skus[1].sku, "SKU-2");
    dec_is(x.docs[2].skus[1].qty, "1.5");
    assert_true(x.docs[1].unsku);
    xd_erp_export_dispose(&x);
    xd_buf_dispose(&err);
    free(in);
    xd_config_destroy(cfg);
}

static void test_export_refusals(void **state)
{
    (void)state;
    struct xd_config *cfg = cfg_default();
    static const struct {
        int billing;
        const char *in, *msg;
    } cases[] = {
        {0, "document,quantity\nSHP-1,1e3\n", "x.csv: row 2: quantity: '1e3' is not a number"},
        {0, "document,quantity\nSHP-1,1,000\n", "x.csv: row 2: 3 cells"},
        {0, "document,quantity\n,4\n", "x.csv: row 2: document: empty"},
        {0, "doc,qty\nSHP-1,4\n",
         "x.csv: no column 'document' (reconcile.erp_export.document; "
         "columns: doc, qty)"},
        {0, "type,document,quantity\npallet,SHP-1,4\n", "x.csv: row 2: type: 'pallet' is not"},
        {1, "charge_id,amount\nchg-1,12.5\nchg-2,twelve\n",
         "x.csv: row 3: amount: 'twelve' is not a number"},
        {1, "id,amount\nchg-1,1\n", "x.csv: no column 'charge_id' or 'reference'"},
        {1, "charge_id,total\nchg-1,1\n", "x.csv: no column 'amount'"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        size_t len;
        char *in = exact(cases[i].in, &len);
        struct xd_buf err;
        xd_buf_init(&err);
        int rc;
        if (cases[i].billing) {
            struct xd_billing_export x;
            rc = xd_billing_export_read(&cfg->reconcile.billing_export, in, len, "x.csv", &x, &err);
            assert_null(x.v);
        } else {
            struct xd_erp_export x;
            rc = xd_erp_export_read(&cfg->reconcile.erp_export, in, len, "x.csv", &x, &err);
            assert_null(x.docs);
        }
        assert_int_equal(rc, XD_EINVAL);
        if (!strstr(xd_buf_str(&err), cases[i].msg))
            fail_msg("case %zu: got '%s', want '%s'", i, xd_buf_str(&err), cases[i].msg);
        xd_buf_dispose(&err);
        free(in);
    }
    xd_config_destroy(cfg);
}

/* ---- billing's export ---- */

static void test_billing_export(void **state)
{
    (void)state;
    struct xd_config *cfg = cfg_default();
    size_t len;
    char *in =
        exact("charge_id,amount,currency\nchg-b,2.50,USD\nchg-a,-1.58,USD\nchg-b,2.50,USD\n", &len);
    struct xd_billing_export x;
    struct xd_buf err;
    xd_buf_init(&err);
    assert_int_equal(
        xd_billing_export_read(&cfg->reconcile.billing_export, in, len, "b.csv", &x, &err), 0);
    assert_int_equal(x.by_reference, 0);
    assert_int_equal(x.n, 2);
    assert_string_equal(x.v[0].key, "chg-a");
    dec_is(x.v[0].amount, "-1.58");
    assert_int_equal(x.v[1].times, 2); /* listed twice: a duplicate */
    xd_billing_export_dispose(&x);
    free(in);

    /* Without a charge id column: by reference, summed per reference and currency. */
    in = exact("reference,amount,currency\nSHP-1,2.50,USD\nSHP-1,1.58,USD\nSHP-1,3,EUR\n", &len);
    assert_int_equal(
        xd_billing_export_read(&cfg->reconcile.billing_export, in, len, "b.csv", &x, &err), 0);
    assert_int_equal(x.by_reference, 1);
    assert_int_equal(x.n, 2);
    assert_string_equal(x.v[0].currency, "EUR");
    dec_is(x.v[1].amount, "4.08");
    xd_billing_export_dispose(&x);
    free(in);
    xd_buf_dispose(&err);
    xd_config_destroy(cfg);
}

/* Column names come from the config. */
static void test_configured_columns(void **state)
{
    (void)state;
    static const char yaml[] = "reconcile:\n  billing_export: {charge_id: Invoice Line, amount: "
                               "Net}\n";
    struct xd_buf err;
    xd_buf_init(&err);
    struct xd_config *cfg = xd_config_parse("t.yaml", yaml, sizeof yaml - 1, &err);
    assert_non_null(cfg);
    size_t len;
    char *in = exact("Invoice Line,Net\nchg-1,9.99\n", &len);
    struct xd_billing_export x;
    assert_int_equal(
        xd_billing_export_read(&cfg->reconcile.billing_export, in, len, "b.csv", &x, &err), 0);
    assert_int_equal(x.n, 1);
    dec_is(x.v[0].amount, "9.99");
    xd_billing_export_dispose(&x);
    free(in);
    xd_buf_dispose(&err);
    xd_config_destroy(cfg);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_table),          cmocka_unit_test(test_table_refusals),
        cmocka_unit_test(test_erp_export),     cmocka_unit_test(test_export_refusals),
        cmocka_unit_test(test_billing_export), cmocka_unit_test(test_configured_columns),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
