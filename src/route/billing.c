/* Billing period close (see billing.h). */
#include "route/billing.h"
#include "core/buf.h"
#include "core/err.h"
#include "rating/card.h"
#include "rating/money.h"
#include "rating/rate.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct sum_ctx {
    const char *currency;
    struct xd_dec sum;
    int err;
};

static void add_charge(void *ctx, struct xd_charge_rec *c)
{
    struct sum_ctx *s = ctx;
    struct xd_dec a;
    if (strcmp(c->currency, s->currency) == 0 && strcmp(c->code, "MINIMUM_TOPUP") != 0) {
        if (xd_dec_parse(c->amount, &a) < 0 || xd_dec_add(s->sum, a, &s->sum) < 0)
            s->err = XD_ELIMIT;
    }
    xd_charge_rec_dispose(c);
}

/* "2026-11" -> first and last day ("2026-11-01", "2026-11-30"). */
static int period_days(const char *period, char first[11], char last[11], long *last_day)
{
    int y, m, n = 0;
    if (strlen(period) != 7 || sscanf(period, "%4d-%2d%n", &y, &m, &n) != 2 || n != 7 || m < 1 ||
        m > 12 || y < 1970)
        return XD_EINVAL;
    long d0;
    char tmp[32], next[32];
    snprintf(tmp, sizeof tmp, "%04d-%02d-01", y, m);
    memcpy(first, tmp, 11);
    snprintf(next, sizeof next, "%04d-%02d-01", m == 12 ? y + 1 : y, m == 12 ? 1 : m + 1);
    if (xd_day_parse(next, &d0) < 0)
        return XD_EINVAL;
    *last_day = d0 - 1;
    xd_day_format(*last_day, last);
    return 0;
}

/* The top-up's id: derived from the customer and the period only. */
static void topup_id(const char *customer, const char *period, char out[XD_CHARGE_ID_LEN + 1])
{
    struct xd_buf key;
    xd_buf_init(&key);
    xd_buf_printf(&key, "billing-close:%s:%s", period, customer);
    xd_charge_id(xd_buf_str(&key), "MINIMUM_TOPUP", 0, out);
    xd_buf_dispose(&key);
}

static int close_period(const struct xd_config *cfg, struct xd_store *store, const char *period,
                        struct xd_buf *out, struct xd_buf *err);

#define CLOSE_LOCK_WAIT_MS 10000 /* how long a close waits for another node's to finish */

/*
 * One close at a time across every node on the store (a job lock): a close
 * sums the period's charges, and two running at once could each see a
 * different sum. Waits for one running elsewhere, up to CLOSE_LOCK_WAIT_MS.
 */
int xd_billing_close(const struct xd_config *cfg, struct xd_store *store, const char *period,
                     struct xd_buf *out, struct xd_buf *err)
{
    int rc;
    for (int waited = 0;; waited += 50) {
        rc = xd_store_try_job_lock(store, "billing-close");
        if (rc != 0)
            break;
        if (waited >= CLOSE_LOCK_WAIT_MS) {
            xd_buf_puts(err, "another billing close is running; try again");
            return XD_EUNAVAIL;
        }
        nanosleep(&(struct timespec){0, 50 * 1000000L}, NULL);
    }
    if (rc < 0)
        return rc;
    rc = close_period(cfg, store, period, out, err);
    xd_store_job_unlock(store, "billing-close");
    return rc;
}

static int close_period(const struct xd_config *cfg, struct xd_store *store, const char *period,
                        struct xd_buf *out, struct xd_buf *err)
{
    char first[11], last[11];
    long last_day;
    if (period_days(period, first, last, &last_day) < 0) {
        xd_buf_printf(err, "period '%s': expected YYYY-MM", period);
        return XD_EINVAL;
    }
    struct xd_rating *rating = NULL;
    int rc = xd_rating_compile(cfg, &rating, err);
    if (rc < 0)
        return rc;
    for (size_t i = 0; i < rating->ncards; i++) {
        const struct xd_card *card = &rating->cards[i];
        /* One pass per customer: the card in force on the period's last day. */
        if (i > 0 && strcmp(rating->cards[i - 1].customer, card->customer) == 0)
            continue;
        const struct xd_card *in_force = xd_rating_card(rating, card->customer, last_day, NULL);
        if (!in_force || !in_force->has_minimum_monthly)
            continue;
        struct sum_ctx sc = {.currency = in_force->currency};
        xd_dec_parse("0", &sc.sum);
        struct xd_charge_filter f = {.customer = card->customer, .from = first, .to = last};
        rc = xd_store_list_charges(store, &f, add_charge, &sc);
        if (rc < 0 || sc.err < 0) {
            rc = rc < 0 ? rc : sc.err;
            break;
        }
        struct xd_dec shortfall;
        rc = xd_dec_sub(in_force->minimum_monthly, sc.sum, &shortfall);
        if (rc < 0)
            break;
        rc = 0;
        if (xd_dec_sign(shortfall) <= 0)
            continue;
        xd_dec_round(shortfall, in_force->minor, &shortfall);

        char id[XD_CHARGE_ID_LEN + 1], amount[XD_DEC_BUFSZ], event_id[64];
        topup_id(card->customer, period, id);
        xd_dec_format(shortfall, amount, sizeof amount);
        snprintf(event_id, sizeof event_id, "billing-close:%s", period);
        struct xd_buf json;
        xd_buf_init(&json);
        xd_buf_printf(&json, "{\"charge_id\":\"%s\",\"event_id\":\"%s\",\"customer\":", id,
                      event_id);
        xd_buf_json_str(&json, card->customer);
        xd_buf_printf(&json,
                      ",\"code\":\"MINIMUM_TOPUP\",\"quantity\":\"1\",\"unit\":\"month\","
                      "\"unit_price\":\"%s\",\"amount\":\"%s\",\"currency\":\"%s\","
                      "\"service_date\":\"%s\",\"warehouse\":\"\",\"reference\":\"%s\"}",
                      amount, amount, in_force->currency, last, period);
        if (json.oom) {
            xd_buf_dispose(&json);
            rc = XD_ENOMEM;
            break;
        }
        struct xd_charge_rec c = {
            .charge_id = id, .event_id = event_id, .reverses = "",
            .customer = card->customer, .code = "MINIMUM_TOPUP", .unit = "month",
            .warehouse = "", .reference = (char *)period, .currency = (char *)in_force->currency,
            .service_date = last, .quantity = "1", .unit_price = amount, .amount = amount,
            .source = -1, .json = json.data,
        };
        struct xd_append a = {.charges = &c, .ncharges = 1};
        rc = xd_store_append(store, &a);
        if (rc == 0) {
            xd_buf_append(out, json.data, json.len);
            xd_buf_putc(out, '\n');
        }
        xd_buf_dispose(&json);
        if (rc < 0)
            break;
    }
    xd_rating_destroy(rating);
    return rc;
}
