/*
 * The money type (rating/money.h) as tables of worked examples: parsing and
 * printing decimal strings, exact arithmetic and its limits, the one
 * rounding function (half-even), shortest round-trip conversion of doubles,
 * and the ISO 4217 table.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "core/err.h"
#include "rating/money.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static struct xd_dec D(const char *s) {
    struct xd_dec d;
    int rc = xd_dec_parse(s, &d);
    if (rc != 0)
        print_error("cannot parse '%s'\n", s);
    assert_int_equal(rc, 0);
    return d;
}

static const char *
S(struct xd_dec d, char *buf)
{
    assert_true(xd_dec_format(d, buf, XD_DEC_BUFSZ) > 0);
    return buf;
}

static void test_parse_format(void **state)
{
    (void)state;
    /* Written with exactly their scale: print back the same. */
    static const char *const same[] = {
        "0",
        "12",
        "12.50",
        "-3",
        "0.125",
        "-0.125",
        "0.000",
        "4.20",
        "1000000",
        "-0.001",
        "123456789012345678901234567890.123456",
        "999999999999999999999999999999999999",
        "0.000000000000000000000000000000000001",
    };
    char buf[XD_DEC_BUFSZ];
    for (size_t i = 0; i < sizeof same / sizeof same[0]; i++)
        assert_string_equal(S(D(same[i]), buf), same[i]);

    static const struct {
        const char *in, *out;
        int scale;
    } norm[] = {
        {"007", "7", 0},
        {"-0", "0", 0},
        {"00.50", "0.50", 2},
        {"-00012.3", "-12.3", 1},
        {"0000000000000000000000000000000000000000001", "1", 0},
    };
    for (size_t i = 0; i < sizeof norm / sizeof norm[0]; i++) {
        struct xd_dec d = D(norm[i].in);
        assert_string_equal(S(d, buf), norm[i].out);
        assert_int_equal(d.scale, norm[i].scale);
    }

    static const char *const bad[] = {
        "", "-", ".5", "5.", "1e3", "+1", " 1", "1 ", "1.2.3", "--1", "0x10", "1,5", "NaN", "-.5",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        struct xd_dec d;
        if (xd_dec_parse(bad[i], &d) != XD_EINVAL) {
            print_error("'%s' was accepted\n", bad[i]);
            fail();
        }
    }
    struct xd_dec d;
    assert_int_equal(xd_dec_parse("1234567890123456789012345678901234567", &d), XD_ELIMIT);
    assert_int_equal(xd_dec_parse("0.0000000000000000000000000000000000001", &d), XD_ELIMIT);
    /* 36 significant digits fit, 37 do not, trailing zeros included (they are the scale) */
    assert_int_equal(xd_dec_parse("1.00000000000000000000000000000000000", &d), 0);
    assert_int_equal(xd_dec_parse("1.000000000000000000000000000000000000", &d), XD_ELIMIT);
    /* parsen stops at len */
    assert_int_equal(xd_dec_parsen("12.5xyz", 4, &d), 0);
    assert_string_equal(S(d, buf), "12.5");

    /* The output buffer's size is checked. */
    char small[4];
    assert_int_equal(xd_dec_format(D("-1.25"), small, sizeof small), XD_ETOOBIG);
    assert_int_equal(xd_dec_format(D("1.2"), small, sizeof small), 3);
    assert_string_equal(small, "1.2");
}

/* The worked examples of rounding: half to even, at every scale. */
static void test_round(void **state)
{
    (void)state;
    static const struct {
        const char *in;
        int scale;
        const char *out;
    } cases[] = {
        {"0.125", 2, "0.12"},
        {"0.135", 2, "0.14"},
        {"0.145", 2, "0.14"},
        {"0.155", 2, "0.16"},
        {"-0.125", 2, "-0.12"},
        {"-0.135", 2, "-0.14"},
        {"2.5", 0, "2"},
        {"3.5", 0, "4"},
        {"-2.5", 0, "-2"},
        {"-3.5", 0, "-4"},
        {"0.5", 0, "0"},
        {"1.5", 0, "2"},
        {"0.1251", 2, "0.13"},
        {"0.1249", 2, "0.12"},
        {"-0.1251", 2, "-0.13"},
        {"1.005", 2, "1.00"},
        {"1.015", 2, "1.02"},
        {"999.995", 2, "1000.00"},
        {"-999.995", 2, "-1000.00"},
        {"1.2345", 3, "1.234"},
        {"1.2355", 3, "1.236"},
        {"4.2", 2, "4.20"},
        {"7", 3, "7.000"},
        {"0.0049", 2, "0.00"},
        {"0.005", 2, "0.00"},
        {"0.015", 2, "0.02"},
        {"2.275", 2, "2.28"},
        {"1.925", 2, "1.92"},
        {"1129.5", 0, "1130"},
        {"1128.5", 0, "1128"},
        {"0.3705", 3, "0.370"},
        {"0.12500000000000000000000000000000001", 2, "0.13"},
        {"52.5", 0, "52"},
        {"45.5", 0, "46"},
        {"12.5", 1, "12.5"},
    };
    char buf[XD_DEC_BUFSZ];
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct xd_dec r;
        assert_int_equal(xd_dec_round(D(cases[i].in), cases[i].scale, &r), 0);
        if (strcmp(S(r, buf), cases[i].out) != 0) {
            print_error("round(%s, %d) = %s, expected %s\n", cases[i].in, cases[i].scale, buf,
                        cases[i].out);
            fail();
        }
    }
    struct xd_dec r;
    assert_int_equal(xd_dec_round(D("1"), -1, &r), XD_EINVAL);
    assert_int_equal(xd_dec_round(D("1"), 37, &r), XD_EINVAL);
    /* More decimals that no longer fit in 36 digits. */
    assert_int_equal(xd_dec_round(D("123456789012345678901234567890123456"), 1, &r), XD_ELIMIT);
    assert_int_equal(xd_dec_round(D("12345678901234567890123456789012345"), 1, &r), 0);
}

static void test_arithmetic(void **state)
{
    (void)state;
    static const struct {
        const char *a, *b, *sum, *diff, *prod;
    } cases[] = {
        {"0.35", "12", "12.35", "-11.65", "4.20"},
        {"1.1", "1.1", "2.2", "0.0", "1.21"},
        {"-3", "0.125", "-2.875", "-3.125", "-0.375"},
        {"100", "0.0001", "100.0001", "99.9999", "0.0100"},
        {"0", "-7.5", "-7.5", "7.5", "0.0"},
        {"1000000000000", "1000000000000", "2000000000000", "0", "1000000000000000000000000"},
        {"99999999999999999.99", "0.01", "100000000000000000.00", "99999999999999999.98",
         "999999999999999.9999"},
    };
    char buf[XD_DEC_BUFSZ];
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct xd_dec r;
        assert_int_equal(xd_dec_add(D(cases[i].a), D(cases[i].b), &r), 0);
        assert_string_equal(S(r, buf), cases[i].sum);
        assert_int_equal(xd_dec_sub(D(cases[i].a), D(cases[i].b), &r), 0);
        assert_string_equal(S(r, buf), cases[i].diff);
        assert_int_equal(xd_dec_mul(D(cases[i].a), D(cases[i].b), &r), 0);
        assert_string_equal(S(r, buf), cases[i].prod);
    }
    struct xd_dec r, big = D("999999999999999999999999999999999999");
    /* Overflow is reported, never wrapped; the output is left alone. */
    r = xd_dec_int(42);
    assert_int_equal(xd_dec_add(big, D("1"), &r), XD_ELIMIT);
    assert_string_equal(S(r, buf), "42");
    assert_int_equal(xd_dec_sub(xd_dec_neg(big), D("1"), &r), XD_ELIMIT);
    assert_int_equal(xd_dec_mul(D("100000000000000000000"), D("10000000000000000"), &r), XD_ELIMIT);
    assert_int_equal(xd_dec_mul(D("10000000000000000000"), D("10000000000000000"), &r), 0);
    assert_int_equal(xd_dec_mul(big, D("-2"), &r), XD_ELIMIT);
    assert_int_equal(xd_dec_mul(D("9223372036854775807"), D("9223372036854775807"), &r), XD_ELIMIT);
    assert_int_equal(xd_dec_mul(D("999999999999999999"), D("-999999999999999999"), &r), 0);
    assert_string_equal(S(r, buf), "-999999999999999998000000000000000001");
    assert_int_equal(xd_dec_add(big, xd_dec_neg(big), &r), 0);
    assert_string_equal(S(r, buf), "0");
    /* Aligning a value to more decimals than it can hold. */
    assert_int_equal(xd_dec_add(big, D("0.1"), &r), XD_ELIMIT);
    /* Trailing zeros are not what overflows: 1.000…(24) × 1.000…(20) is 1. */
    assert_int_equal(xd_dec_mul(D("1.000000000000000000000000"), D("1.00000000000000000000"), &r),
                     0);
    assert_string_equal(S(r, buf), "1");
    /* 10^-18 × 10^-18 is the finest there is; 10^-19 × 10^-19 is beyond it. */
    assert_int_equal(xd_dec_mul(D("0.000000000000000001"), D("0.000000000000000001"), &r), 0);
    assert_string_equal(S(r, buf), "0.000000000000000000000000000000000001");
    assert_int_equal(xd_dec_mul(D("0.0000000000000000001"), D("0.0000000000000000001"), &r),
                     XD_ELIMIT);
}

static void test_cmp_normal(void **state)
{
    (void)state;
    static const struct {
        const char *a, *b;
        int cmp;
    } cases[] = {
        {"1.50", "1.5", 0},
        {"-1", "0.5", -1},
        {"0.5", "-1", 1},
        {"0", "-0.000", 0},
        {"2", "10", -1},
        {"-2", "-10", 1},
        {"0.1", "0.10000000000000000000000000000000001", -1},
        {"99999999999999999999999999999999999", "99999999999999999999999999999999999.1", -1},
        {"-99999999999999999999999999999999999", "-99999999999999999999999999999999998.9", -1},
        {"99999999999999999999999999999999999", "0.000000000000000000000000000000000001", 1},
        {"-5", "-5.000", 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int c = xd_dec_cmp(D(cases[i].a), D(cases[i].b));
        if (c != cases[i].cmp) {
            print_error("cmp(%s, %s) = %d, expected %d\n", cases[i].a, cases[i].b, c, cases[i].cmp);
            fail();
        }
        assert_int_equal(xd_dec_cmp(D(cases[i].b), D(cases[i].a)), -cases[i].cmp);
    }
    char buf[XD_DEC_BUFSZ];
    assert_string_equal(S(xd_dec_normal(D("12.500")), buf), "12.5");
    assert_string_equal(S(xd_dec_normal(D("3.00")), buf), "3");
    assert_string_equal(S(xd_dec_normal(D("-0.000")), buf), "0");
    assert_string_equal(S(xd_dec_normal(D("100")), buf), "100");
    assert_int_equal(xd_dec_sign(D("-0.01")), -1);
    assert_int_equal(xd_dec_sign(D("0.00")), 0);
    assert_int_equal(xd_dec_sign(D("7")), 1);
}

/* What the brief asks for: the fewest significant digits that strtod reads back exactly. */
static void shortest_by_printf(double d, char *out, size_t cap)
{
    for (int prec = 1; prec <= 17; prec++) {
        snprintf(out, cap, "%.*g", prec, d);
        if (strtod(out, NULL) == d)
            return;
    }
}

static void test_from_double(void **state)
{
    (void)state;
    static const struct {
        double d;
        const char *out;
    } cases[] = {
        {0.1, "0.1"},
        {12.345, "12.345"},
        {1e12, "1000000000000"},
        {0.30000000000000004, "0.30000000000000004"},
        {0.1 + 0.2, "0.30000000000000004"},
        {18.4, "18.4"},
        {4.5, "4.5"},
        {-2.5, "-2.5"},
        {1e-7, "0.0000001"},
        {123456789.123, "123456789.123"},
        {1e20, "100000000000000000000"},
        {0.0, "0"},
        {-0.0, "0"},
        {13.5, "13.5"},
        {999999999999.999, "999999999999.999"},
        {9007199254740993.0, "9007199254740992"},
        {5e-324, NULL},
        {1e36, NULL},
        {1e35, "100000000000000000000000000000000000"},
    };
    char buf[XD_DEC_BUFSZ];
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct xd_dec d;
        int rc = xd_dec_from_double(cases[i].d, &d);
        if (!cases[i].out) {
            assert_int_equal(rc, XD_ELIMIT);
            continue;
        }
        assert_int_equal(rc, 0);
        if (strcmp(S(d, buf), cases[i].out) != 0) {
            print_error("from_double(%.17g) = %s, expected %s\n", cases[i].d, buf, cases[i].out);
            fail();
        }
    }
    struct xd_dec d;
    assert_int_equal(xd_dec_from_double(NAN, &d), XD_EINVAL);
    assert_int_equal(xd_dec_from_double(INFINITY, &d), XD_EINVAL);

    /* Random doubles of every magnitude a quantity has: the result reads back as the same
     * double, and has as many significant digits as the printf search finds. */
    srand(20261128);
    for (int i = 0; i < 200000; i++) {
        double x;
        switch (i % 4) {
        case 0: /* a few decimals, as people write quantities */
            x = (double)(rand() % 100000000) / (double)(int[]){1, 10, 100, 1000, 10000}[rand() % 5];
            break;
        case 1: /* anything between 1e-9 and 1e12 */
            x = pow(10, (rand() / (double)RAND_MAX) * 21 - 9);
            break;
        case 2: /* sums of decimals, with their binary noise */
            x = (rand() % 1000) * 0.1 + (rand() % 1000) * 0.01;
            break;
        default: /* whole numbers */
            x = (double)(rand() % 1000000000) * (rand() % 1000 + 1);
            break;
        }
        if (rand() % 8 == 0)
            x = -x;
        assert_int_equal(xd_dec_from_double(x, &d), 0);
        S(d, buf);
        assert_true(strtod(buf, NULL) == x);
        char ref[40];
        shortest_by_printf(x, ref, sizeof ref);
        /* Same number of significant digits: compare the digit strings without sign, point,
         * exponent and leading/trailing zeros. */
        char a[48] = "", b[48] = "";
        size_t na = 0, nb = 0;
        for (const char *p = buf; *p; p++)
            if (*p >= '0' && *p <= '9' && !(na == 0 && *p == '0'))
                a[na++] = *p;
        for (const char *p = ref; *p && *p != 'e'; p++)
            if (*p >= '0' && *p <= '9' && !(nb == 0 && *p == '0'))
                b[nb++] = *p;
        while (na && a[na - 1] == '0')
            a[--na] = 0;
        while (nb && b[nb - 1] == '0')
            b[--nb] = 0;
        if (strcmp(a, b) != 0) {
            print_error("from_double(%.17g) = %s, printf's shortest is %s\n", x, buf, ref);
            fail();
        }
    }
}

static void test_currencies(void **state)
{
    (void)state;
    static const struct {
        const char *code;
        int minor;
    } cases[] = {
        {"USD", 2}, {"EUR", 2}, {"GBP", 2}, {"CAD", 2}, {"AUD", 2}, {"JPY", 0}, {"KWD", 3},
        {"BHD", 3}, {"CHF", 2}, {"SEK", 2}, {"KRW", 0}, {"OMR", 3}, {"CLF", 4}, {"ISK", 0},
        {"TND", 3}, {"VND", 0}, {"XOF", 0}, {"ZWG", 2}, {"AED", 2},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        assert_int_equal(xd_currency_minor(cases[i].code), cases[i].minor);
    static const char *const unknown[] = {"XYZ", "usd", "US", "USDD", "", "XAU", "XXX"};
    for (size_t i = 0; i < sizeof unknown / sizeof unknown[0]; i++)
        assert_int_equal(xd_currency_minor(unknown[i]), XD_ENOTFOUND);
    /* Sorted and unique (bsearch relies on it); every entry is found. */
    size_t n = xd_currency_count();
    assert_true(n > 140);
    for (size_t i = 0; i < n; i++) {
        const char *c = xd_currency_code(i);
        assert_int_equal(strlen(c), 3);
        if (i)
            assert_true(strcmp(xd_currency_code(i - 1), c) < 0);
        int m = xd_currency_minor(c);
        assert_true(m >= 0 && m <= 4);
    }
    assert_null(xd_currency_code(n));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_format), cmocka_unit_test(test_round),
        cmocka_unit_test(test_arithmetic),   cmocka_unit_test(test_cmp_normal),
        cmocka_unit_test(test_from_double),  cmocka_unit_test(test_currencies),
    };
    return cmocka_run_group_tests_name("money", tests, NULL, NULL);
}
