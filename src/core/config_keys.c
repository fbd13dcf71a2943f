/*
 * The configuration's keys: one table per struct of config.h, with the
 * checks on single values (listen address, decimals, dates, event types)
 * and the checks that span keys (a postgres store needs a url, a step names
 * a defined target, tiers ascend). config.c walks the YAML with these
 * tables; xd_config_describe() turns them into docs/config.md rows, so a key
 * is documented where it is defined. To add a key: add a row, and a line to
 * docs/config.md (the unit test compares them).
 */
#include "core/buf.h"
#include "core/config_map.h"
#include "core/duration.h"
#include "core/redact.h"
#include "core/err.h"
#include "core/keyfile.h"
#include "ingest/event.h"

#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define NKEYS(a)  (sizeof(a) / sizeof((a)[0]))
#define POS(T, f) (offsetof(T, f) + 1)
#define K(name, ty, ...)                                                                           \
    {                                                                                              \
        .key = (name), .type = XD_CT_##ty, __VA_ARGS__                                             \
    }

/* Fields of the anonymous section structs, relative to the section. */
#define SEC(sec, f) (offsetof(struct xd_config, sec.f) - offsetof(struct xd_config, sec))

/* ---- checks on one value ---------------------------------------------- */

static int is_digit(char c)
{
    return c >= '0' && c <= '9';
}

static const char *check_listen(const char *s)
{
    static const char bad[] = "must be host:port with a port from 1 to 65535";
    const char *colon;
    if (s[0] == '[') {
        const char *end = strchr(s, ']');
        if (!end || end == s + 1 || end[1] != ':')
            return bad;
        colon = end + 1;
    } else {
        colon = strchr(s, ':');
        if (!colon || colon == s || strchr(colon + 1, ':'))
            return bad;
    }
    const char *p = colon + 1;
    unsigned long port = 0;
    size_t n = 0;
    for (; is_digit(*p) && n < 6; p++, n++)
        port = port * 10 + (unsigned long)(*p - '0');
    if (n == 0 || *p || port < 1 || port > 65535)
        return bad;
    for (const char *h = s; h < colon; h++)
        if ((unsigned char)*h <= ' ')
            return bad;
    return NULL;
}

/* A non-negative exact decimal: digits, optionally a point and more digits. */
static const char *check_decimal(const char *s)
{
    static const char bad[] = "must be a decimal number like \"2.50\"";
    const char *p = s;
    size_t digits = 0;
    while (is_digit(*p))
        p++, digits++;
    if (p == s)
        return bad;
    if (*p == '.') {
        const char *f = ++p;
        while (is_digit(*p))
            p++, digits++;
        if (p == f)
            return bad;
    }
    if (*p)
        return bad;
    if (digits > 30)
        return "has too many digits (at most 30)";
    return NULL;
}

static const char *check_date(const char *s)
{
    static const char bad[] = "must be a date YYYY-MM-DD";
    static const unsigned char mdays[12] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    static const char shape[] = "dddd-dd-dd";
    for (size_t i = 0; i < sizeof shape - 1; i++)
        if (shape[i] == 'd' ? !is_digit(s[i]) : s[i] != shape[i])
            return bad;
    if (s[sizeof shape - 1])
        return bad;
    int y = atoi(s), m = atoi(s + 5), d = atoi(s + 8);
    if (m < 1 || m > 12 || d < 1 || d > mdays[m - 1])
        return bad;
    int leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    if (m == 2 && d == 29 && !leap)
        return bad;
    return NULL;
}

static const char *check_currency(const char *s)
{
    for (int i = 0; i < 3; i++)
        if (s[i] < 'A' || s[i] > 'Z')
            return "must be a currency code of 3 capital letters, like USD";
    return s[3] ? "must be a currency code of 3 capital letters, like USD" : NULL;
}

/* Keep in step with ingest/event_types.c (the unit test checks). */
static const char *check_event_type(const char *s)
{
    if (xd_event_type_parse(s) >= 0)
        return NULL;
    return "must be an event type: shipment.confirmed, shipment.voided, goods.received, "
           "inventory.adjusted, inventory.snapshot or delivery.confirmed";
}

static const char *check_env_name(const char *s)
{
    static const char bad[] = "must be an environment variable name (letters, digits, '_')";
    if (is_digit(s[0]))
        return bad;
    for (const char *p = s; *p; p++)
        if (!(is_digit(*p) || (*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') || *p == '_'))
            return bad;
    return NULL;
}

/* Target names appear in URLs, metrics labels and file names. */
static const char *check_name(const char *s)
{
    for (const char *p = s; *p; p++)
        if (!(is_digit(*p) || (*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') || *p == '_' ||
              *p == '-' || *p == '.'))
            return "must use only letters, digits, '_', '-' and '.'";
    return NULL;
}

static const char *check_header_name(const char *s)
{
    static const char tchar[] = "!#$%&'*+-.^_`|~";
    for (const char *p = s; *p; p++)
        if (!(is_digit(*p) || (*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') ||
              strchr(tchar, *p)))
            return "must be an HTTP header name (letters, digits, '-')";
    return NULL;
}

static const char *check_header_value(const char *s)
{
    for (const unsigned char *p = (const unsigned char *)s; *p; p++)
        if ((*p < ' ' && *p != '\t') || *p == 0x7f)
            return "must not contain control characters (line breaks)";
    return NULL;
}

/* Compares two strings that passed check_decimal(): <0, 0, >0. */
static int dec_cmp(const char *a, const char *b)
{
    while (*a == '0' && is_digit(a[1]))
        a++;
    while (*b == '0' && is_digit(b[1]))
        b++;
    size_t ia = strcspn(a, "."), ib = strcspn(b, ".");
    if (ia != ib)
        return ia < ib ? -1 : 1;
    int c = strncmp(a, b, ia);
    if (c)
        return c;
    a += ia + (a[ia] == '.');
    b += ib + (b[ib] == '.');
    while (*a || *b) {
        char x = *a ? *a++ : '0', y = *b ? *b++ : '0';
        if (x != y)
            return x < y ? -1 : 1;
    }
    return 0;
}

/* ---- choices ------------------------------------------------------------ */

static const char *const drivers[] = {"sqlite", "postgres", NULL};
static const char *const synchronous[] = {"full", "normal", NULL};
static const char *const levels[] = {"debug", "info", "warn", "error", NULL};
static const char *const log_formats[] = {"auto", "text", "json", NULL};
static const char *const target_types[] = {"http", "file", "nats", NULL};
static const char *const file_formats[] = {"csv", "x12", "jsonl", NULL};
static const char *const inbox_formats[] = {"auto", "json", "jsonl", "csv", "x12", NULL};
static const char *const auth_types[] = {"oauth2", NULL};
static const char *const client_auths[] = {"basic", "body", NULL};
static const char *const source_types[] = {"nats", NULL};

/* What `per` counts and which events have it (contract 6.1). */
static const struct per_rule {
    const char *per;
    const char *on[3];
} per_rules[] = {
    {"shipment", {"shipment.confirmed"}},
    {"line", {"shipment.confirmed", "goods.received"}},
    {"unit", {"shipment.confirmed", "goods.received"}},
    {"pallet", {"shipment.confirmed", "goods.received"}},
    {"carton", {"goods.received"}},
    {"kg", {"shipment.confirmed"}},
    {"receipt", {"goods.received"}},
    {"adjustment", {"inventory.adjusted"}},
    {"pallet_day", {"inventory.snapshot"}},
    {"unit_day", {"inventory.snapshot"}},
    {"freight", {"shipment.confirmed"}},
};
static const char *const pers[] = {"shipment",   "line",     "unit",    "pallet",
                                   "carton",     "kg",       "receipt", "adjustment",
                                   "pallet_day", "unit_day", "freight", NULL};

/* ---- checks across keys ------------------------------------------------- */

static int present(struct xd_cfg_walk *w, const yaml_node_t *node, const char *key)
{
    return xd_cfg_find(w, node, key) != NULL;
}

/* The node to blame for key: its value when present, else the struct. */
static const yaml_node_t *at(struct xd_cfg_walk *w, const yaml_node_t *node, const char *key)
{
    const yaml_node_t *v = xd_cfg_find(w, node, key);
    return v ? v : node;
}

static void store_validate(struct xd_cfg_walk *w, void *base, const yaml_node_t *node,
                           const char *path)
{
    struct xd_config *cfg = (struct xd_config *)((char *)base - offsetof(struct xd_config, store));
    if (cfg->store.driver && strcmp(cfg->store.driver, "postgres") == 0 && !cfg->store.url &&
        !present(w, node, "url"))
        xd_cfg_error(w, at(w, node, "driver"), "%s: driver postgres requires url", path);
}

static void retry_validate(struct xd_cfg_walk *w, void *base, const yaml_node_t *node,
                           const char *path)
{
    const struct xd_retry *r = base;
    if (r->max_backoff_ms < r->initial_backoff_ms)
        xd_cfg_error(w, at(w, node, "max_backoff_ms"),
                     "%s.max_backoff_ms: must be at least initial_backoff_ms (%u)", path,
                     r->initial_backoff_ms);
}

/* Which of the type-specific keys each target type needs and allows. */
enum {
    TF_URL = 1,
    TF_PATH = 2,
    TF_FORMAT = 4,
    TF_SUBJECT = 8,
    TF_BEARER = 16,
    TF_HEADERS = 32,
    TF_TLS = 64,
    TF_AUTH = 128,
    TF_SERVERS = 256,
};
static const struct {
    const char *key;
    unsigned bit;
} target_fields[] = {
    {"url", TF_URL},         {"path", TF_PATH},         {"format", TF_FORMAT},
    {"subject", TF_SUBJECT}, {"bearer_env", TF_BEARER}, {"headers", TF_HEADERS},
    {"tls", TF_TLS},         {"auth", TF_AUTH},
    {"servers", TF_SERVERS},
};
static const struct target_kind {
    const char *type;
    unsigned needs;
    unsigned allows;
    const char *url_schemes[3]; /* when a url is given, it starts with one of these */
} target_kinds[] = {
    {"http", TF_URL, TF_URL | TF_BEARER | TF_HEADERS | TF_TLS | TF_AUTH, {"http://", "https://"}},
    {"file", TF_PATH | TF_FORMAT, TF_PATH | TF_FORMAT, {NULL}},
    {"nats", TF_SUBJECT, TF_SUBJECT | TF_URL | TF_SERVERS, {"nats://", "tls://"}},
};

static void target_validate(struct xd_cfg_walk *w, void *base, const yaml_node_t *node,
                            const char *path)
{
    const struct xd_target *t = base;
    const struct target_kind *kind = NULL;
    for (size_t i = 0; t->type && i < NKEYS(target_kinds); i++)
        if (strcmp(t->type, target_kinds[i].type) == 0)
            kind = &target_kinds[i];
    if (!kind)
        return; /* the type itself was reported */
    for (size_t i = 0; i < NKEYS(target_fields); i++) {
        const char *key = target_fields[i].key;
        const yaml_node_t *v = xd_cfg_find(w, node, key);
        if (v && !(kind->allows & target_fields[i].bit))
            xd_cfg_error(w, v, "%s.%s: does not apply to %s targets", path, key, kind->type);
        else if (!v && (kind->needs & target_fields[i].bit))
            xd_cfg_error(w, node, "%s: type %s needs %s", path, kind->type, key);
    }
    if (t->url && (kind->allows & TF_URL)) {
        int ok = 0;
        for (int i = 0; i < 3 && kind->url_schemes[i]; i++) {
            size_t n = strlen(kind->url_schemes[i]);
            ok |= strncmp(t->url, kind->url_schemes[i], n) == 0 && t->url[n];
        }
        if (!ok)
            xd_cfg_error(w, at(w, node, "url"), "%s.url: must start with %s or %s", path,
                         kind->url_schemes[0], kind->url_schemes[1]);
    }
    if (t->bearer_env && t->auth.type)
        xd_cfg_error(w, at(w, node, "auth"), "%s.auth: give bearer_env or auth, not both", path);
    if (t->url && t->nservers && (kind->allows & TF_SERVERS))
        xd_cfg_error(w, at(w, node, "servers"), "%s.servers: give url or servers, not both", path);
}

/* A file named in the configuration must be readable now, not at the first delivery. */
static void check_readable(struct xd_cfg_walk *w, const yaml_node_t *node, const char *key,
                           const char *path, const char *file)
{
    if (file && access(file, R_OK) != 0)
        xd_cfg_error(w, at(w, node, key), "%s.%s: cannot read '%.200s'", path, key, file);
}

static void target_tls_validate(struct xd_cfg_walk *w, void *base, const yaml_node_t *node,
                                const char *path)
{
    const struct xd_target_tls *t = base;
    if (t->ca_file && !t->verify)
        xd_cfg_error(w, at(w, node, "ca_file"),
                     "%s.ca_file: does nothing with verify: false (remove one of them)", path);
    check_readable(w, node, "ca_file", path, t->ca_file);
}

static void target_auth_validate(struct xd_cfg_walk *w, void *base, const yaml_node_t *node,
                                 const char *path)
{
    const struct xd_target_auth *a = base;
    if (a->token_url && strncmp(a->token_url, "https://", 8) != 0 &&
        strncmp(a->token_url, "http://", 7) != 0)
        xd_cfg_error(w, at(w, node, "token_url"), "%s.token_url: must start with https:// or "
                     "http://", path);
}

static void server_tls_validate(struct xd_cfg_walk *w, void *base, const yaml_node_t *node,
                                const char *path)
{
    const struct xd_config *cfg =
        (const struct xd_config *)((const char *)base - offsetof(struct xd_config, server.tls));
    if (!cfg->server.tls.cert != !cfg->server.tls.key)
        xd_cfg_error(w, node, "%s: needs both cert and key", path);
    check_readable(w, node, "cert", path, cfg->server.tls.cert);
    check_readable(w, node, "key", path, cfg->server.tls.key);
}

/* The key file is read now too, so that `crossdock check` finds its mistakes. */
static void auth_validate(struct xd_cfg_walk *w, void *base, const yaml_node_t *node,
                          const char *path)
{
    const struct xd_config *cfg =
        (const struct xd_config *)((const char *)base - offsetof(struct xd_config, auth));
    if (!cfg->auth.key_file)
        return;
    struct xd_buf errs;
    struct xd_keyfile_entry *e = NULL;
    size_t n = 0;
    xd_buf_init(&errs);
    int rc = xd_keyfile_load(cfg->auth.key_file, &e, &n, &errs, NULL);
    if (rc == XD_ENOMEM)
        xd_cfg_oom(w);
    else if (rc < 0) /* the file's own positions, on one line each */
        for (char *line = errs.data, *nl; line && *line; line = nl ? nl + 1 : NULL) {
            nl = strchr(line, '\n');
            if (nl)
                *nl = '\0';
            xd_cfg_error(w, at(w, node, "key_file"), "%s.key_file: %s", path, line);
        }
    xd_keyfile_free(e, n);
    xd_buf_dispose(&errs);
}

/* A NATS server URL (sources[].servers, targets.NAME.servers). */
static const char *check_nats_url(const char *s)
{
    if ((strncmp(s, "nats://", 7) == 0 && s[7]) || (strncmp(s, "tls://", 6) == 0 && s[6]))
        return NULL;
    return "must be a NATS server URL, nats://host:4222 or tls://host:4222";
}

/* Stream and durable names: JetStream refuses '.', '*', '>' and blanks in them. */
static const char *check_js_name(const char *s)
{
    for (const unsigned char *p = (const unsigned char *)s; *p; p++)
        if (*p <= ' ' || *p == '.' || *p == '*' || *p == '>' || *p == 0x7f)
            return "must not contain '.', '*', '>' or blanks (a JetStream name)";
    return strlen(s) > 64 ? "must be at most 64 characters" : NULL;
}

/* A subject: tokens separated by '.', no blanks, no empty token. */
static const char *check_subject(const char *s)
{
    static const char bad[] = "must be a NATS subject like wms.events.> (no blanks, no empty "
                              "token)";
    if (!*s || *s == '.' || s[strlen(s) - 1] == '.' || strstr(s, ".."))
        return bad;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++)
        if (*p <= ' ' || *p == 0x7f)
            return bad;
    return NULL;
}

static void step_validate(struct xd_cfg_walk *w, void *base, const yaml_node_t *node,
                          const char *path)
{
    const struct xd_step *s = base;
    int deliver = s->deliver || present(w, node, "deliver");
    const yaml_node_t *rn = xd_cfg_find(w, node, "rate");
    /* rate: false is a step with nothing to do; a rate that was not a boolean was reported */
    int rate_false = !rn || (rn->type == YAML_SCALAR_NODE &&
                             (strcmp((const char *)rn->data.scalar.value, "false") == 0 ||
                              strcmp((const char *)rn->data.scalar.value, "False") == 0 ||
                              strcmp((const char *)rn->data.scalar.value, "FALSE") == 0));
    if (!deliver && !s->rate && rate_false)
        xd_cfg_error(w, node, "%s: a step needs deliver or rate: true", path);
    else if (deliver && s->rate)
        xd_cfg_error(w, at(w, node, "rate"),
                     "%s: a step either delivers or rates, not both (use two steps)", path);
    if (!deliver && present(w, node, "map"))
        xd_cfg_error(w, at(w, node, "map"), "%s.map: needs deliver (map shapes what is delivered)",
                     path);
}

static void charge_validate(struct xd_cfg_walk *w, void *base, const yaml_node_t *node,
                            const char *path)
{
    const struct xd_charge_rule *r = base;
    int freight = r->per && strcmp(r->per, "freight") == 0;
    for (size_t i = 0; r->per && r->on && i < NKEYS(per_rules); i++) {
        const struct per_rule *pr = &per_rules[i];
        if (strcmp(pr->per, r->per) != 0)
            continue;
        int ok = 0;
        for (int j = 0; j < 3 && pr->on[j]; j++)
            ok |= strcmp(pr->on[j], r->on) == 0;
        if (!ok)
            xd_cfg_error(w, at(w, node, "per"),
                         "%s.per: '%s' does not apply to %s (it applies to %s%s%s)", path, r->per,
                         r->on, pr->on[0], pr->on[1] ? " and " : "", pr->on[1] ? pr->on[1] : "");
    }
    int price = present(w, node, "price"), tiers = present(w, node, "tiers");
    if (freight) {
        if (price)
            xd_cfg_error(w, at(w, node, "price"),
                         "%s.price: does not apply to per: freight (the price is the freight "
                         "amount plus markup_percent)",
                         path);
        if (tiers)
            xd_cfg_error(w, at(w, node, "tiers"), "%s.tiers: does not apply to per: freight", path);
    } else if (r->per) {
        if (present(w, node, "markup_percent"))
            xd_cfg_error(w, at(w, node, "markup_percent"),
                         "%s.markup_percent: applies only to per: freight", path);
        if (!price && !tiers)
            xd_cfg_error(w, node, "%s: needs price or tiers", path);
        else if (price && tiers)
            xd_cfg_error(w, at(w, node, "tiers"), "%s.tiers: give price or tiers, not both", path);
    }

    const yaml_node_t *tseq = xd_cfg_find(w, node, "tiers");
    const char *prev = NULL;
    for (size_t i = 0; i < r->ntiers; i++) {
        const struct xd_tier *t = &r->tiers[i];
        const yaml_node_t *tn = xd_cfg_item(w, tseq, i);
        if (!tn)
            break;
        const yaml_node_t *un = xd_cfg_find(w, tn, "up_to");
        int last = i + 1 == r->ntiers;
        if (last && un)
            xd_cfg_error(w, un,
                         "%s.tiers[%zu].up_to: the last tier has no up_to (it prices all "
                         "remaining units)",
                         path, i);
        else if (!last && !un)
            xd_cfg_error(w, tn, "%s.tiers[%zu]: needs up_to (only the last tier has none)", path,
                         i);
        if (!t->up_to)
            continue;
        if (dec_cmp(t->up_to, "0") == 0)
            xd_cfg_error(w, un, "%s.tiers[%zu].up_to: must be greater than 0", path, i);
        else if (prev && dec_cmp(t->up_to, prev) <= 0)
            xd_cfg_error(w, un, "%s.tiers[%zu].up_to: must be greater than the tier before (%s)",
                         path, i, prev);
        prev = t->up_to;
    }
}

/* Reads the key's secret from its environment variable; an unset or empty one leaves it NULL. */
static void key_validate(struct xd_cfg_walk *w, void *base, const yaml_node_t *node,
                         const char *path)
{
    struct xd_key *k = base;
    (void)node, (void)path;
    const char *v = k->secret_env ? getenv(k->secret_env) : NULL;
    if (!v || !*v)
        return;
    k->secret = strdup(v);
    if (!k->secret) {
        xd_cfg_oom(w);
        return;
    }
    xd_redact_add(k->secret); /* never in a log line, an error or an audit entry */
    unsigned int mdlen = 0;
    if (!EVP_Digest(k->secret, strlen(k->secret), k->secret_sha256, &mdlen, EVP_sha256(), NULL))
        xd_cfg_oom(w);
}

static void partner_validate(struct xd_cfg_walk *w, void *base, const yaml_node_t *node,
                             const char *path)
{
    const struct xd_partner *p = base;
    if (!p->customer && !p->warehouse && !present(w, node, "customer") &&
        !present(w, node, "warehouse"))
        xd_cfg_error(w, node, "%s: needs customer or warehouse", path);
}

/* Unique names and references between sections: what no single struct can see. */
static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static void root_validate(struct xd_cfg_walk *w, void *base, const yaml_node_t *root,
                          const char *path)
{
    struct xd_config *cfg = base;
    size_t most = cfg->nroutes;
    (void)path;
    const char *alert = cfg->exceptions.alert.target;
    if (alert) {
        const struct xd_target *t = xd_config_target(cfg, alert);
        if (!t || !t->type || strcmp(t->type, "http") != 0)
            xd_cfg_error(w,
                         xd_cfg_find(w, xd_cfg_find(w, xd_cfg_find(w, root, "exceptions"), "alert"),
                                     "target"),
                         "exceptions.alert.target: '%s' is not an http target", alert);
    }
    if (cfg->auth.nkeys > most)
        most = cfg->auth.nkeys;
    if (cfg->nrate_cards > most)
        most = cfg->nrate_cards;
    if (cfg->ntargets > most)
        most = cfg->ntargets;
    if (cfg->ninbox > most)
        most = cfg->ninbox;
    if (cfg->nsources > most)
        most = cfg->nsources;
    const char **names = calloc(most + 1, sizeof *names);
    const yaml_node_t **nodes = calloc(most + 1, sizeof *nodes);
    char **owned = calloc(cfg->nrate_cards + 1, sizeof *owned);
    if (!names || !nodes || !owned) {
        xd_cfg_oom(w);
        goto done;
    }

    const yaml_node_t *keys = xd_cfg_find(w, xd_cfg_find(w, root, "auth"), "keys");
    for (size_t i = 0; i < cfg->auth.nkeys; i++) {
        names[i] = cfg->auth.keys[i].id;
        nodes[i] = xd_cfg_find(w, xd_cfg_item(w, keys, i), "id");
    }
    xd_cfg_dups(w, names, nodes, cfg->auth.nkeys, "auth.keys", "id", "key id");

    const yaml_node_t *routes = xd_cfg_find(w, root, "routes");
    for (size_t i = 0; i < cfg->nroutes; i++) {
        names[i] = cfg->routes[i].name;
        nodes[i] = xd_cfg_find(w, xd_cfg_item(w, routes, i), "name");
    }
    xd_cfg_dups(w, names, nodes, cfg->nroutes, "routes", "name", "route name");

    /* Two sources on one folder would take each other's files. */
    const yaml_node_t *inbox = xd_cfg_find(w, root, "inbox");
    for (size_t i = 0; i < cfg->ninbox; i++) {
        names[i] = cfg->inbox[i].name;
        nodes[i] = xd_cfg_find(w, xd_cfg_item(w, inbox, i), "name");
    }
    xd_cfg_dups(w, names, nodes, cfg->ninbox, "inbox", "name", "inbox name");
    for (size_t i = 0; i < cfg->ninbox; i++) {
        names[i] = cfg->inbox[i].path;
        nodes[i] = xd_cfg_find(w, xd_cfg_item(w, inbox, i), "path");
    }
    xd_cfg_dups(w, names, nodes, cfg->ninbox, "inbox", "path", "inbox path");

    const yaml_node_t *sources = xd_cfg_find(w, root, "sources");
    for (size_t i = 0; i < cfg->nsources; i++) {
        names[i] = cfg->sources[i].name;
        nodes[i] = xd_cfg_find(w, xd_cfg_item(w, sources, i), "name");
    }
    xd_cfg_dups(w, names, nodes, cfg->nsources, "sources", "name", "source name");

    const yaml_node_t *cards = xd_cfg_find(w, root, "rate_cards");
    for (size_t i = 0; i < cfg->nrate_cards; i++) {
        const struct xd_rate_card *c = &cfg->rate_cards[i];
        names[i] = NULL;
        nodes[i] = xd_cfg_item(w, cards, i);
        if (!c->customer || !c->effective_from)
            continue;
        size_t n = strlen(c->customer) + strlen(c->effective_from) + 16;
        owned[i] = malloc(n);
        if (!owned[i]) {
            xd_cfg_oom(w);
            goto done;
        }
        snprintf(owned[i], n, "%s from %s", c->customer, c->effective_from);
        names[i] = owned[i];
    }
    xd_cfg_dups(w, names, nodes, cfg->nrate_cards, "rate_cards", NULL, "rate card");

    /* Every deliver names a target: binary search in the sorted names. */
    size_t nt = 0;
    for (size_t i = 0; i < cfg->ntargets; i++)
        if (cfg->targets[i].name)
            names[nt++] = cfg->targets[i].name;
    qsort(names, nt, sizeof *names, cmp_str);
    for (size_t i = 0; i < cfg->nroutes; i++) {
        const struct xd_route *r = &cfg->routes[i];
        const yaml_node_t *steps = xd_cfg_find(w, xd_cfg_item(w, routes, i), "steps");
        for (size_t j = 0; j < r->nsteps; j++) {
            const char *d = r->steps[j].deliver;
            if (!d || bsearch(&d, names, nt, sizeof *names, cmp_str))
                continue;
            const yaml_node_t *dn = xd_cfg_find(w, xd_cfg_item(w, steps, j), "deliver");
            xd_cfg_error(w, dn, "routes[%zu].steps[%zu].deliver: no target named '%.60s'%s", i, j,
                         d, nt ? "" : " (no targets are defined)");
        }
    }

done:
    for (size_t i = 0; owned && i < cfg->nrate_cards; i++)
        free(owned[i]);
    free(owned);
    free(names);
    free(nodes);
}

/* ---- the tables --------------------------------------------------------- */

#define TLSK(f) (offsetof(struct xd_config, server.tls.f) - offsetof(struct xd_config, server.tls))
static const struct xd_cfg_key server_tls_keys[] = {
    K("cert", STR, .off = TLSK(cert), .doc_type = "file",
      .help = "PEM file: the server certificate, then any intermediates."),
    K("key", STR, .off = TLSK(key), .doc_type = "file",
      .help = "PEM file: the certificate's private key (unencrypted; keep it mode 0600)."),
};
static const struct xd_cfg_struct server_tls_s = {
    .what = "tls",
    .keys = server_tls_keys,
    .nkeys = NKEYS(server_tls_keys),
    .validate = server_tls_validate,
};

static const struct xd_cfg_key server_keys[] = {
    K("listen", STR, .off = SEC(server, listen), .def = "127.0.0.1:8080", .check = check_listen,
      .doc_type = "host:port",
      .help = "Address of the HTTP listener; IPv6 as `[::1]:8080`, every interface as "
              "`0.0.0.0:8080`."),
    K("max_body", SIZE, .off = SEC(server, max_body), .def = "1048576", .flags = XD_CF_NONZERO,
      .help = "Largest request body in bytes (also `512KiB`, `4MiB`); larger requests get 413."),
    K("max_batch", SIZE, .off = SEC(server, max_batch), .def = "1000", .flags = XD_CF_NONZERO,
      .help = "Most events in one `POST /v1/events` batch."),
    K("max_depth", UINT, .off = SEC(server, max_depth), .def = "64", .flags = XD_CF_NONZERO,
      .help = "Deepest JSON nesting accepted in a request."),
    K("max_string", SIZE, .off = SEC(server, max_string), .def = "65536", .flags = XD_CF_NONZERO,
      .help = "Longest JSON string in an event, in bytes."),
    K("threads", UINT, .off = SEC(server, threads), .def = "0",
      .help = "HTTP worker threads; 0 means one per CPU core but one (left to the store's "
              "committer), at least one."),
    K("max_connections", UINT, .off = SEC(server, max_connections), .def = "1024",
      .flags = XD_CF_NONZERO, .help = "Most simultaneous client connections."),
    K("timeout_s", UINT, .off = SEC(server, timeout_s), .def = "30", .flags = XD_CF_NONZERO,
      .help = "Seconds an idle client connection is kept open."),
    K("max_connections_per_ip", UINT, .off = SEC(server, max_connections_per_ip), .def = "0",
      .help = "Most simultaneous connections from one client address; 0 means no limit. "
              "Connections over it are closed at once."),
    K("max_header", SIZE, .off = SEC(server, max_header), .def = "32KiB", .flags = XD_CF_NONZERO,
      .help = "Memory for one connection's request line and headers (at least 4KiB); a "
              "request whose headers do not fit gets 431."),
    K("tls", TABLE, .off = SEC(server, tls), .sub = &server_tls_s,
      .help = "With `cert` and `key` the listener speaks HTTPS only; both files are read "
              "again on SIGHUP."),
};

static const struct xd_cfg_key store_keys[] = {
    K("driver", STR, .off = SEC(store, driver), .def = "sqlite", .choices = drivers,
      .help = "`sqlite`: one file on this machine. `postgres`: a database shared by several "
              "nodes."),
    K("path", STR, .off = SEC(store, path), .def = "./crossdock.db",
      .help = "sqlite: the database file (WAL mode; `-wal` and `-shm` files beside it)."),
    K("url", STR, .off = SEC(store, url),
      .help = "postgres: connection URI, `postgresql://user@host:5432/db`; required for "
              "postgres. Keep the password in `PGPASSWORD` or `~/.pgpass`, not here."),
    K("synchronous", STR, .off = SEC(store, synchronous), .def = "full", .choices = synchronous,
      .help = "sqlite: `full` survives power loss; `normal` may lose the last commits on power "
              "loss (never on a crash of the process)."),
    K("busy_timeout_ms", UINT, .off = SEC(store, busy_timeout_ms), .def = "5000",
      .help = "sqlite: how long a write waits for a lock before the store reports unavailable."),
    K("page_cache_keep", SIZE, .off = SEC(store, page_cache_keep), .def = "256MiB",
      .help = "sqlite: how much of the newest part of the database file stays in the OS page "
              "cache; after each checkpoint, older pages are dropped from it once (readers "
              "bring back what they need), so a fast-growing store reuses cache memory. `0` "
              "leaves it all to the kernel."),
    K("lease_ms", UINT, .off = SEC(store, lease_ms), .def = "30000", .flags = XD_CF_NONZERO,
      .help = "postgres: how long a node's claim on a delivery lasts; a crashed node's work "
              "goes to the others after this. Keep it above every target's timeout_ms."),
};

static const struct xd_cfg_key log_keys[] = {
    K("level", STR, .off = SEC(log, level), .def = "info", .choices = levels,
      .help = "Least severe level written to stderr."),
    K("format", STR, .off = SEC(log, format), .def = "auto", .choices = log_formats,
      .help = "`text` for a terminal, `json` for one JSON object a line (with `event_id` and "
              "`trace_id` on lines about an event), `auto`: text when stderr is a terminal, "
              "else json."),
};

static const struct xd_cfg_key key_keys[] = {
    K("id", STR, .off = offsetof(struct xd_key, id), .flags = XD_CF_REQUIRED,
      .help = "Name of the calling system; recorded as the `source` of its events. Unique."),
    K("secret_env", STR, .off = offsetof(struct xd_key, secret_env), .flags = XD_CF_REQUIRED,
      .check = check_env_name,
      .help = "Environment variable holding the key's secret, read at load. The secret is the "
              "bearer token and the HMAC key of signed webhooks. Unset or empty: the key "
              "matches nothing."),
    K("scopes", SCOPES, .off = offsetof(struct xd_key, scopes),
      .flags = XD_CF_REQUIRED | XD_CF_NONZERO,
      .help = "What the key may do: `events:write` (send events and files), `read` (query), "
              "`ops` (replay, exceptions), `admin` (everything)."),
    K("rate_limit", UINT, .off = offsetof(struct xd_key, rate_limit), .def = "0",
      .help = "Requests per second allowed with this key (over it: 429 with `Retry-After`); "
              "0 means no limit."),
    K("secret", STR, .off = offsetof(struct xd_key, secret),
      .flags = XD_CF_INTERNAL | XD_CF_SECRET),
};
static const struct xd_cfg_struct key_s = {
    .what = "key",
    .size = sizeof(struct xd_key),
    .keys = key_keys,
    .nkeys = NKEYS(key_keys),
    .pos_off = POS(struct xd_key, pos),
    .validate = key_validate,
};

static const struct xd_cfg_key auth_keys[] = {
    K("keys", LIST, .off = SEC(auth, keys), .off_n = SEC(auth, nkeys), .sub = &key_s,
      .help = "API keys. With none (and no `key_file`), the API asks for no key (keep the "
              "listener on loopback)."),
    K("key_file", STR, .off = SEC(auth, key_file), .doc_type = "file",
      .help = "More API keys, one a line: `ID SCOPES SECRET [rate_limit=N]`, the secret "
              "written as `sha256:<hex>` of the key or as the key itself (docs/api.md). Read "
              "again on SIGHUP: keys are added, rotated and revoked without a restart."),
};

static const struct xd_cfg_key xref_table_keys[] = {
    K("name", STR, .off = offsetof(struct xd_xref_table, name), .flags = XD_CF_INTERNAL),
    K("", PAIRS, .off = offsetof(struct xd_xref_table, entries),
      .off_n = offsetof(struct xd_xref_table, n),
      .help = "One lookup table, `KEY: value`; numbers keep their text (`DC1: 1000` is "
              "`\"1000\"`). In jq: `$xref.NAME[KEY]`."),
};
static const struct xd_cfg_struct xref_table_s = {
    .what = "table",
    .size = sizeof(struct xd_xref_table),
    .keys = xref_table_keys,
    .nkeys = NKEYS(xref_table_keys),
    .name_off = POS(struct xd_xref_table, name),
    .pos_off = POS(struct xd_xref_table, pos),
    .value = &xref_table_keys[1],
};

static const struct xd_cfg_key retry_keys[] = {
    K("max_attempts", UINT, .off = offsetof(struct xd_retry, max_attempts), .def = "8",
      .flags = XD_CF_NONZERO,
      .help = "Attempts before a delivery goes to the dead-letter queue (the first counts)."),
    K("initial_backoff_ms", UINT, .off = offsetof(struct xd_retry, initial_backoff_ms),
      .def = "200", .flags = XD_CF_NONZERO,
      .help = "Wait before the second attempt; doubles each time, with full jitter."),
    K("max_backoff_ms", UINT, .off = offsetof(struct xd_retry, max_backoff_ms), .def = "60000",
      .flags = XD_CF_NONZERO, .help = "Longest wait between attempts."),
};
static const struct xd_cfg_struct retry_s = {
    .what = "retry",
    .size = sizeof(struct xd_retry),
    .keys = retry_keys,
    .nkeys = NKEYS(retry_keys),
    .validate = retry_validate,
};

static const struct xd_cfg_key target_tls_keys[] = {
    K("ca_file", STR, .off = offsetof(struct xd_target_tls, ca_file), .doc_type = "file",
      .help = "PEM bundle the target's certificate must chain to, instead of the system's "
              "CAs (a private CA, a self-signed target)."),
    K("verify", BOOL, .off = offsetof(struct xd_target_tls, verify), .def = "true",
      .pos_off = POS(struct xd_target_tls, verify_pos),
      .help = "`false` turns off certificate and host name checks: anyone on the path can "
              "read and change what is sent. Warned about at every start, in `crossdock "
              "check`, `/readyz` and `/metrics`."),
};
static const struct xd_cfg_struct target_tls_s = {
    .what = "tls",
    .size = sizeof(struct xd_target_tls),
    .keys = target_tls_keys,
    .nkeys = NKEYS(target_tls_keys),
    .validate = target_tls_validate,
};

static const struct xd_cfg_key target_auth_keys[] = {
    K("type", STR, .off = offsetof(struct xd_target_auth, type), .flags = XD_CF_REQUIRED,
      .choices = auth_types,
      .help = "`oauth2`: OAuth 2.0 client credentials (RFC 6749 section 4.4); the token is "
              "sent as `Authorization: Bearer`."),
    K("token_url", STR, .off = offsetof(struct xd_target_auth, token_url),
      .flags = XD_CF_REQUIRED, .help = "The authorization server's token endpoint."),
    K("client_id", STR, .off = offsetof(struct xd_target_auth, client_id),
      .flags = XD_CF_REQUIRED, .help = "The hub's client id at that server."),
    K("client_secret_env", STR, .off = offsetof(struct xd_target_auth, client_secret_env),
      .flags = XD_CF_REQUIRED, .check = check_env_name,
      .help = "Environment variable holding the client secret, read at start."),
    K("scope", STR, .off = offsetof(struct xd_target_auth, scope),
      .help = "Scopes asked for, space-separated; absent: the server's default."),
    K("audience", STR, .off = offsetof(struct xd_target_auth, audience),
      .help = "Sent as `audience` when given (some servers need it)."),
    K("client_auth", STR, .off = offsetof(struct xd_target_auth, client_auth), .def = "basic",
      .choices = client_auths,
      .help = "`basic`: client id and secret in an `Authorization: Basic` header; `body`: "
              "as `client_id` and `client_secret` form fields."),
    K("refresh_margin_s", UINT, .off = offsetof(struct xd_target_auth, refresh_margin_s),
      .def = "60",
      .help = "A token is renewed this many seconds before it expires (at most half its "
              "lifetime)."),
};
static const struct xd_cfg_struct target_auth_s = {
    .what = "auth",
    .size = sizeof(struct xd_target_auth),
    .keys = target_auth_keys,
    .nkeys = NKEYS(target_auth_keys),
    .validate = target_auth_validate,
};

static const struct xd_cfg_key target_keys[] = {
    K("name", STR, .off = offsetof(struct xd_target, name), .flags = XD_CF_INTERNAL),
    K("type", STR, .off = offsetof(struct xd_target, type), .flags = XD_CF_REQUIRED,
      .choices = target_types,
      .help = "`http`: POST JSON to a URL. `file`: write CSV, X12 or JSON lines files. `nats`: "
              "publish to a subject."),
    K("url", STR, .off = offsetof(struct xd_target, url),
      .help = "http (required): `http://` or `https://` URL. nats: server, `nats://host:4222`."),
    K("path", STR, .off = offsetof(struct xd_target, path),
      .help = "file (required): where the files are written, a directory or a file."),
    K("format", STR, .off = offsetof(struct xd_target, format), .choices = file_formats,
      .help = "file (required): what is written."),
    K("subject", STR, .off = offsetof(struct xd_target, subject), .check = check_subject,
      .help = "nats (required): subject published to; a JetStream stream must capture it "
              "(docs/nats.md)."),
    K("servers", STRLIST, .off = offsetof(struct xd_target, servers),
      .off_n = offsetof(struct xd_target, nservers), .flags = XD_CF_NONZERO,
      .check = check_nats_url, .doc_type = "list of string",
      .help = "nats: the cluster's server URLs, `[nats://10.0.0.1:4222, ...]`; default "
              "`nats://127.0.0.1:4222`."),
    K("timeout_ms", UINT, .off = offsetof(struct xd_target, timeout_ms), .def = "5000",
      .flags = XD_CF_NONZERO, .help = "Time allowed for one attempt, connecting included."),
    K("bearer_env", STR, .off = offsetof(struct xd_target, bearer_env), .check = check_env_name,
      .help = "http: environment variable holding a token sent as `Authorization: Bearer`."),
    K("headers", PAIRS, .off = offsetof(struct xd_target, headers),
      .off_n = offsetof(struct xd_target, nheaders), .check = check_header_value,
      .check_key = check_header_name, .doc_type = "map of string",
      .help = "http: extra request headers, `Name: value`."),
    K("retry", TABLE, .off = offsetof(struct xd_target, retry), .sub = &retry_s,
      .help = "When to try again after a timeout, a network error, 408, 425, 429 or 5xx."),
    K("tls", TABLE, .off = offsetof(struct xd_target, tls), .sub = &target_tls_s,
      .help = "http: how an `https://` target's certificate is checked (always, by default)."),
    K("auth", TABLE, .off = offsetof(struct xd_target, auth), .sub = &target_auth_s,
      .help = "http: credentials the hub obtains itself, `{type: oauth2, token_url, "
              "client_id, client_secret_env, scope}` (docs/targets.md)."),
    K("ack", STR, .off = offsetof(struct xd_target, ack), .pos_off = POS(struct xd_target, ack_pos),
      .doc_type = "jq program",
      .help = "http: run on each 2xx answer (JSON) to keep what the target booked for the "
              "ledger, e.g. `{reference: .doc_no, quantity: .qty}` (docs/reconciliation.md)."),
};
static const struct xd_cfg_struct target_s = {
    .what = "target",
    .size = sizeof(struct xd_target),
    .keys = target_keys,
    .nkeys = NKEYS(target_keys),
    .name_off = POS(struct xd_target, name),
    .pos_off = POS(struct xd_target, pos),
    .validate = target_validate,
};

static const struct xd_cfg_key step_keys[] = {
    K("deliver", STR, .off = offsetof(struct xd_step, deliver),
      .pos_off = POS(struct xd_step, deliver_pos),
      .help = "Name of the target this step delivers to (a key of `targets`)."),
    K("map", STR, .off = offsetof(struct xd_step, map), .pos_off = POS(struct xd_step, map_pos),
      .doc_type = "jq program",
      .help = "Shapes what is delivered: a jq program run on the event (or on each charge after "
              "a rate step), with `$xref`. Without it the canonical JSON is sent."),
    K("rate", BOOL, .off = offsetof(struct xd_step, rate), .def = "false",
      .help = "`true`: produce the event's charges from `rate_cards`; the steps after it "
              "deliver the charges."),
};
static const struct xd_cfg_struct step_s = {
    .what = "step",
    .size = sizeof(struct xd_step),
    .keys = step_keys,
    .nkeys = NKEYS(step_keys),
    .pos_off = POS(struct xd_step, pos),
    .validate = step_validate,
};

static const char *check_duration(const char *s)
{
    int64_t ms;
    return xd_duration_parse(s, &ms) < 0 || ms <= 0
               ? "must be a duration: a positive number with ms, s, m, h or d (\"15m\")"
               : NULL;
}

static const struct xd_cfg_key sla_keys[] = {
    K("target", STR, .off = offsetof(struct xd_sla, target), .flags = XD_CF_REQUIRED,
      .help = "The target the route's events must reach (a target one of its steps delivers to)."),
    K("within", STR, .off = offsetof(struct xd_sla, within), .flags = XD_CF_REQUIRED,
      .check = check_duration, .doc_type = "duration",
      .help = "How long after the hub received the event (`15m`, `1h`, `90s`); later, or not at "
              "all, opens one `sla` exception."),
};
static const struct xd_cfg_struct sla_s = {
    .what = "sla",
    .size = sizeof(struct xd_sla),
    .keys = sla_keys,
    .nkeys = NKEYS(sla_keys),
    .pos_off = POS(struct xd_sla, pos),
};

/* An SLA's target must be one the route delivers to: otherwise its clock could never stop. */
static void route_validate(struct xd_cfg_walk *w, void *base, const yaml_node_t *node,
                           const char *path)
{
    const struct xd_route *r = base;
    const yaml_node_t *slas = xd_cfg_find(w, node, "sla");
    for (size_t i = 0; i < r->nsla; i++) {
        const char *t = r->sla[i].target;
        int found = 0;
        for (size_t k = 0; t && k < r->nsteps; k++)
            found |= r->steps[k].deliver && strcmp(r->steps[k].deliver, t) == 0;
        if (t && !found)
            xd_cfg_error(w, xd_cfg_find(w, xd_cfg_item(w, slas, i), "target"),
                         "%s.sla[%zu].target: the route delivers to no target named '%s'", path,
                         i, t);
    }
}

static const struct xd_cfg_key route_keys[] = {
    K("name", STR, .off = offsetof(struct xd_route, name), .flags = XD_CF_REQUIRED,
      .help = "Unique name, shown in deliveries and the timeline."),
    K("on", STRLIST, .off = offsetof(struct xd_route, on), .off_n = offsetof(struct xd_route, non),
      .flags = XD_CF_REQUIRED | XD_CF_NONZERO, .check = check_event_type,
      .doc_type = "list of event types",
      .help = "Event types the route takes, e.g. "
              "`[shipment.confirmed]`."),
    K("filter", STR, .off = offsetof(struct xd_route, filter),
      .pos_off = POS(struct xd_route, filter_pos), .doc_type = "jq program",
      .help = "Takes only the events for which this jq program yields `true`."),
    K("steps", LIST, .off = offsetof(struct xd_route, steps),
      .off_n = offsetof(struct xd_route, nsteps), .flags = XD_CF_REQUIRED | XD_CF_NONZERO,
      .sub = &step_s,
      .help = "Run in order for each event; a step runs only after the one before succeeded."),
    K("sla", LIST, .off = offsetof(struct xd_route, sla), .off_n = offsetof(struct xd_route, nsla),
      .sub = &sla_s,
      .help = "Business SLA clocks, `[{target: erp, within: 15m}]`: an event of this route not "
              "delivered to the target in time opens an exception (docs/exceptions.md)."),
};
static const struct xd_cfg_struct route_s = {
    .what = "route",
    .size = sizeof(struct xd_route),
    .keys = route_keys,
    .nkeys = NKEYS(route_keys),
    .pos_off = POS(struct xd_route, pos),
    .validate = route_validate,
};

static const struct xd_cfg_key tier_keys[] = {
    K("up_to", STR, .off = offsetof(struct xd_tier, up_to), .check = check_decimal,
      .doc_type = "decimal",
      .help = "Last unit of the band; every tier but the last has one, ascending."),
    K("price", STR, .off = offsetof(struct xd_tier, price), .flags = XD_CF_REQUIRED,
      .check = check_decimal, .doc_type = "decimal", .help = "Price per unit in the band."),
};
static const struct xd_cfg_struct tier_s = {
    .what = "tier",
    .size = sizeof(struct xd_tier),
    .keys = tier_keys,
    .nkeys = NKEYS(tier_keys),
    .pos_off = POS(struct xd_tier, pos),
};

static const struct xd_cfg_key charge_keys[] = {
    K("code", STR, .off = offsetof(struct xd_charge_rule, code), .flags = XD_CF_REQUIRED,
      .help = "Charge code sent to billing, e.g. `PICK_UNIT`."),
    K("on", STR, .off = offsetof(struct xd_charge_rule, on), .flags = XD_CF_REQUIRED,
      .check = check_event_type, .doc_type = "event type", .help = "Event type rated."),
    K("per", STR, .off = offsetof(struct xd_charge_rule, per), .flags = XD_CF_REQUIRED,
      .choices = pers,
      .help = "What is counted (contract 6.1); it must apply to the event type in `on`."),
    K("price", STR, .off = offsetof(struct xd_charge_rule, price), .check = check_decimal,
      .doc_type = "decimal",
      .help = "Unit price, quoted or not (`\"2.50\"`); a rule has `price` or `tiers`, except "
              "`per: freight`."),
    K("min_amount", STR, .off = offsetof(struct xd_charge_rule, min_amount), .check = check_decimal,
      .doc_type = "decimal", .help = "The charge's amount is raised to at least this."),
    K("markup_percent", STR, .off = offsetof(struct xd_charge_rule, markup_percent),
      .check = check_decimal, .doc_type = "decimal",
      .help = "`per: freight` only: unit price is `freight.amount × (1 + markup_percent/100)`; "
              "absent means 0."),
    K("when", STR, .off = offsetof(struct xd_charge_rule, when),
      .pos_off = POS(struct xd_charge_rule, when_pos), .doc_type = "jq program",
      .help = "Applies the rule only to events for which this jq program yields `true`."),
    K("tiers", LIST, .off = offsetof(struct xd_charge_rule, tiers),
      .off_n = offsetof(struct xd_charge_rule, ntiers), .flags = XD_CF_NONZERO, .sub = &tier_s,
      .help = "Graduated prices within one event, e.g. `[{up_to: 100, price: \"0.35\"}, "
              "{price: \"0.30\"}]`; each band is its own charge."),
};
static const struct xd_cfg_struct charge_s = {
    .what = "charge",
    .size = sizeof(struct xd_charge_rule),
    .keys = charge_keys,
    .nkeys = NKEYS(charge_keys),
    .pos_off = POS(struct xd_charge_rule, pos),
    .validate = charge_validate,
};

static const struct xd_cfg_key card_keys[] = {
    K("customer", STR, .off = offsetof(struct xd_rate_card, customer), .flags = XD_CF_REQUIRED,
      .help = "Customer the card prices (the events' `customer`)."),
    K("currency", STR, .off = offsetof(struct xd_rate_card, currency), .flags = XD_CF_REQUIRED,
      .check = check_currency, .doc_type = "currency code",
      .help = "ISO 4217 code (`USD`); amounts round to its minor unit."),
    K("effective_from", STR, .off = offsetof(struct xd_rate_card, effective_from),
      .flags = XD_CF_REQUIRED, .check = check_date, .doc_type = "date",
      .help = "`YYYY-MM-DD`; an event is priced by its customer's card with the latest "
              "effective_from on or before its service date. One card per customer and date."),
    K("minimum_monthly", STR, .off = offsetof(struct xd_rate_card, minimum_monthly),
      .check = check_decimal, .doc_type = "decimal",
      .help = "Closing a billing period adds a `MINIMUM_TOPUP` charge for any shortfall."),
    K("charges", LIST, .off = offsetof(struct xd_rate_card, charges),
      .off_n = offsetof(struct xd_rate_card, ncharges), .flags = XD_CF_REQUIRED | XD_CF_NONZERO,
      .sub = &charge_s, .help = "The card's rules; every rule that matches an event charges."),
};
static const struct xd_cfg_struct card_s = {
    .what = "rate card",
    .size = sizeof(struct xd_rate_card),
    .keys = card_keys,
    .nkeys = NKEYS(card_keys),
    .pos_off = POS(struct xd_rate_card, pos),
};

static const struct xd_cfg_key partner_keys[] = {
    K("id", STR, .off = offsetof(struct xd_partner, id), .flags = XD_CF_INTERNAL),
    K("customer", STR, .off = offsetof(struct xd_partner, customer),
      .help = "Customer of the partner's X12 documents that name no depositor (`N1*DE`)."),
    K("warehouse", STR, .off = offsetof(struct xd_partner, warehouse),
      .help = "Warehouse of the partner's X12 documents that name none (`N1*SF`, `N1*WH`)."),
};
static const struct xd_cfg_struct partner_s = {
    .what = "partner",
    .size = sizeof(struct xd_partner),
    .keys = partner_keys,
    .nkeys = NKEYS(partner_keys),
    .name_off = POS(struct xd_partner, id),
    .pos_off = POS(struct xd_partner, pos),
    .validate = partner_validate,
};

static const struct xd_cfg_key inbox_keys[] = {
    K("name", STR, .off = offsetof(struct xd_inbox, name), .flags = XD_CF_REQUIRED,
      .check = check_name,
      .help = "Names the source in logs and in the exceptions of its rejected files. Unique."),
    K("path", STR, .off = offsetof(struct xd_inbox, path), .flags = XD_CF_REQUIRED,
      .help = "The folder watched (created when missing); `processed/` and `rejected/` are "
              "made inside it. Unique."),
    K("format", STR, .off = offsetof(struct xd_inbox, format), .def = "auto",
      .choices = inbox_formats,
      .help = "`auto`: by the file's extension, then by its content, as `crossdock ingest`."),
    K("customer", STR, .off = offsetof(struct xd_inbox, customer),
      .help = "CSV and X12: the customer of documents that name none (as `convert --customer`)."),
    K("warehouse", STR, .off = offsetof(struct xd_inbox, warehouse),
      .help = "CSV and X12: the warehouse of documents that name none."),
    K("poll_ms", UINT, .off = offsetof(struct xd_inbox, poll_ms), .def = "1000",
      .flags = XD_CF_NONZERO, .help = "How often the folder is listed."),
    K("settle_ms", UINT, .off = offsetof(struct xd_inbox, settle_ms), .def = "2000",
      .help = "A file is complete once its size and modification time have not changed for "
              "this long, or at once when it was renamed in after its last write."),
    K("max_file", SIZE, .off = offsetof(struct xd_inbox, max_file), .def = "64MiB",
      .flags = XD_CF_NONZERO,
      .help = "Larger files are rejected without being read (also `512KiB`, `1GiB`)."),
};
static const struct xd_cfg_struct inbox_s = {
    .what = "inbox",
    .size = sizeof(struct xd_inbox),
    .keys = inbox_keys,
    .nkeys = NKEYS(inbox_keys),
    .pos_off = POS(struct xd_inbox, pos),
};

static const struct xd_cfg_key source_keys[] = {
    K("name", STR, .off = offsetof(struct xd_source, name), .flags = XD_CF_REQUIRED,
      .check = check_name,
      .help = "Names the source in logs and exceptions; the `source` of its events that name "
              "none. Unique."),
    K("type", STR, .off = offsetof(struct xd_source, type), .flags = XD_CF_REQUIRED,
      .choices = source_types, .help = "`nats`: a durable pull consumer on a JetStream stream."),
    K("servers", STRLIST, .off = offsetof(struct xd_source, servers),
      .off_n = offsetof(struct xd_source, nservers), .flags = XD_CF_NONZERO,
      .check = check_nats_url, .doc_type = "list of string",
      .help = "The cluster's server URLs, any one reachable is enough; default "
              "`nats://127.0.0.1:4222`."),
    K("stream", STR, .off = offsetof(struct xd_source, stream), .flags = XD_CF_REQUIRED,
      .check = check_js_name, .help = "The JetStream stream read (it must exist)."),
    K("subject", STR, .off = offsetof(struct xd_source, subject), .check = check_subject,
      .help = "Filter subject of the consumer, e.g. `wms.events.>`; absent: the whole stream."),
    K("durable", STR, .off = offsetof(struct xd_source, durable), .def = "crossdock",
      .check = check_js_name,
      .help = "Durable consumer name, created when missing; every hub node of one "
              "deployment uses the same one."),
    K("batch", UINT, .off = offsetof(struct xd_source, batch), .def = "256", .flags = XD_CF_NONZERO,
      .help = "Most messages fetched at once (and committed together)."),
    K("fetch_wait_ms", UINT, .off = offsetof(struct xd_source, fetch_wait_ms), .def = "1000",
      .flags = XD_CF_NONZERO, .help = "Longest wait of one fetch when the stream is idle."),
    K("ack_wait_ms", UINT, .off = offsetof(struct xd_source, ack_wait_ms), .def = "30000",
      .flags = XD_CF_NONZERO,
      .help = "A message not acknowledged this long after delivery is delivered again "
              "(consumer's AckWait, set when the hub creates it)."),
};
static const struct xd_cfg_struct source_s = {
    .what = "source",
    .size = sizeof(struct xd_source),
    .keys = source_keys,
    .nkeys = NKEYS(source_keys),
    .pos_off = POS(struct xd_source, pos),
};
#define EXPCOL(f, def_, text)                                                                   \
    K(#f, STR, .off = offsetof(struct xd_export_columns, f), .def = (def_), .help = (text))
static const struct xd_cfg_key erp_export_keys[] = {
    EXPCOL(type, "type", "Optional column: `shipment`, `receipt` or `adjustment`."),
    EXPCOL(document, "document", "Column of the shipment, receipt or adjustment id."),
    EXPCOL(reference, "reference", "Optional column of the ERP's own document number."),
    EXPCOL(sku, "sku", "Optional column: quantities are then compared SKU by SKU."),
    EXPCOL(quantity, "quantity", "Column of the quantity the ERP booked."),
};
static const struct xd_cfg_struct erp_export_s = {
    .what = "erp export",
    .size = sizeof(struct xd_export_columns),
    .keys = erp_export_keys,
    .nkeys = NKEYS(erp_export_keys),
};
static const struct xd_cfg_key billing_export_keys[] = {
    EXPCOL(charge_id, "charge_id", "Column of the charge id (when absent: by `reference`)."),
    EXPCOL(reference, "reference", "Column of the charge's reference (shipment, receipt, ...)."),
    EXPCOL(amount, "amount", "Column of the amount billed, a decimal."),
    EXPCOL(currency, "currency", "Optional column of the currency."),
};
#undef EXPCOL
static const struct xd_cfg_struct billing_export_s = {
    .what = "billing export",
    .size = sizeof(struct xd_export_columns),
    .keys = billing_export_keys,
    .nkeys = NKEYS(billing_export_keys),
};
static const struct xd_cfg_key reconcile_keys[] = {
    K("grace_s", UINT, .off = SEC(reconcile, grace_s), .def = "900",
      .help = "Seconds a posting, a charge or a reversal may take before its absence is a "
              "break."),
    K("quantity_tolerance", STR, .off = SEC(reconcile, quantity_tolerance), .def = "0",
      .check = check_decimal, .doc_type = "decimal",
      .help = "Quantities that differ by at most this agree."),
    K("amount_tolerance", STR, .off = SEC(reconcile, amount_tolerance), .def = "0",
      .check = check_decimal, .doc_type = "decimal",
      .help = "Amounts that differ by at most this agree."),
    K("exceptions", BOOL, .off = SEC(reconcile, exceptions), .def = "true",
      .help = "Open a `reconciliation` exception for each break (one per break, not per run)."),
    K("interval_s", UINT, .off = SEC(reconcile, interval_s), .def = "0",
      .help = "A running hub runs the report (all dates, no exports) this often and logs a line; "
              "0 never: run `crossdock reconcile` or `GET /v1/reconciliation` instead."),
    K("erp_export", TABLE, .off = SEC(reconcile, erp_export), .sub = &erp_export_s,
      .help = "Column names of the ERP export (`reconcile --erp-export`)."),
    K("billing_export", TABLE, .off = SEC(reconcile, billing_export), .sub = &billing_export_s,
      .help = "Column names of the billing export (`reconcile --billing-export`)."),
};
static const struct xd_cfg_struct reconcile_s = {
    .what = "reconcile",
    .keys = reconcile_keys,
    .nkeys = NKEYS(reconcile_keys),
};

static const struct xd_cfg_struct server_s = {
    .what = "server",
    .keys = server_keys,
    .nkeys = NKEYS(server_keys),
};
static const struct xd_cfg_struct store_s = {
    .what = "store",
    .keys = store_keys,
    .nkeys = NKEYS(store_keys),
    .validate = store_validate,
};
static const struct xd_cfg_struct log_s = {
    .what = "log",
    .keys = log_keys,
    .nkeys = NKEYS(log_keys),
};
static const struct xd_cfg_struct auth_s = {
    .what = "auth",
    .keys = auth_keys,
    .nkeys = NKEYS(auth_keys),
    .validate = auth_validate,
};

static const struct xd_cfg_key exc_owner_keys[] = {
    K("category", STR, .off = offsetof(struct xd_exc_owner, category),
      .help = "Exceptions of this category (`dead_letter`, `master_data`, `sla`, ...); absent: "
              "any."),
    K("warehouse", STR, .off = offsetof(struct xd_exc_owner, warehouse),
      .help = "Whose event's `data.warehouse` is this; absent: any."),
    K("customer", STR, .off = offsetof(struct xd_exc_owner, customer),
      .help = "Whose event's `data.customer` is this; absent: any."),
    K("owner", STR, .off = offsetof(struct xd_exc_owner, owner), .flags = XD_CF_REQUIRED,
      .help = "The owner a matching exception gets when it opens."),
};
static const struct xd_cfg_struct exc_owner_s = {
    .what = "owner rule",
    .size = sizeof(struct xd_exc_owner),
    .keys = exc_owner_keys,
    .nkeys = NKEYS(exc_owner_keys),
    .pos_off = POS(struct xd_exc_owner, pos),
};
static const struct xd_cfg_key exc_alert_keys[] = {
    K("target", STR, .off = offsetof(struct xd_exc_alert, target),
      .help = "An `http` target (a chat webhook) sent one JSON message per new exception."),
    K("throttle", STR, .off = offsetof(struct xd_exc_alert, throttle), .def = "5m",
      .check = check_duration, .doc_type = "duration",
      .help = "At most one message per category this often; the exceptions that came "
              "meanwhile go out together as a summary."),
};
static const struct xd_cfg_struct exc_alert_s = {
    .what = "alert",
    .keys = exc_alert_keys,
    .nkeys = NKEYS(exc_alert_keys),
};
static const struct xd_cfg_key exceptions_keys[] = {
    K("owners", LIST, .off = offsetof(struct xd_exceptions, owners),
      .off_n = offsetof(struct xd_exceptions, nowners), .sub = &exc_owner_s,
      .help = "Owner rules, first match wins: `[{category: dead_letter, warehouse: DC1, owner: "
              "ops-dc1}]`."),
    K("alert", TABLE, .off = offsetof(struct xd_exceptions, alert), .sub = &exc_alert_s,
      .help = "Where new exceptions are announced."),
};
static const struct xd_cfg_struct exceptions_s = {
    .what = "exceptions",
    .keys = exceptions_keys,
    .nkeys = NKEYS(exceptions_keys),
};

static const struct xd_cfg_key root_keys[] = {
    K("path", STR, .off = offsetof(struct xd_config, path), .flags = XD_CF_INTERNAL),
    K("server", TABLE, .off = offsetof(struct xd_config, server), .sub = &server_s,
      .help = "The HTTP API listener and its request limits."),
    K("store", TABLE, .off = offsetof(struct xd_config, store), .sub = &store_s,
      .help = "Where events, deliveries, charges and the audit log are kept."),
    K("log", TABLE, .off = offsetof(struct xd_config, log), .sub = &log_s,
      .help = "Log lines on stderr."),
    K("auth", TABLE, .off = offsetof(struct xd_config, auth), .sub = &auth_s,
      .help = "Who may call the API."),
    K("xref", MAP, .off = offsetof(struct xd_config, xref),
      .off_n = offsetof(struct xd_config, nxref), .sub = &xref_table_s,
      .help = "Lookup tables, `TABLE: {KEY: value}`, visible to jq as `$xref`."),
    K("targets", MAP, .off = offsetof(struct xd_config, targets),
      .off_n = offsetof(struct xd_config, ntargets), .sub = &target_s, .check_key = check_name,
      .help = "Systems events and charges are delivered to, by name (letters, digits, `_-.`)."),
    K("routes", LIST, .off = offsetof(struct xd_config, routes),
      .off_n = offsetof(struct xd_config, nroutes), .sub = &route_s,
      .help = "Which events go where: each route takes event types and runs its steps."),
    K("rate_cards", LIST, .off = offsetof(struct xd_config, rate_cards),
      .off_n = offsetof(struct xd_config, nrate_cards), .sub = &card_s,
      .help = "Prices per customer, from which `rate: true` steps produce charges."),
    K("partners", MAP, .off = offsetof(struct xd_config, partners),
      .off_n = offsetof(struct xd_config, npartners), .sub = &partner_s,
      .help = "X12 trading partners by sender id (ISA06, without its padding)."),
    K("inbox", LIST, .off = offsetof(struct xd_config, inbox),
      .off_n = offsetof(struct xd_config, ninbox), .sub = &inbox_s,
      .help = "Watched folders: files dropped in are ingested whole or rejected with a report "
              "(docs/inbox.md)."),
    K("exceptions", TABLE, .off = offsetof(struct xd_config, exceptions), .sub = &exceptions_s,
      .help = "Who owns an exception and where new ones are announced (docs/exceptions.md)."),
    K("sources", LIST, .off = offsetof(struct xd_config, sources),
      .off_n = offsetof(struct xd_config, nsources), .sub = &source_s,
      .help = "Event streams read by the hub: NATS JetStream consumers (docs/nats.md)."),
    K("reconcile", TABLE, .off = offsetof(struct xd_config, reconcile), .sub = &reconcile_s,
      .help = "The reconciliation report: tolerances, grace period, export columns "
              "(docs/reconciliation.md)."),
};

const struct xd_cfg_struct xd_cfg_root = {
    .what = "configuration",
    .size = sizeof(struct xd_config),
    .keys = root_keys,
    .nkeys = NKEYS(root_keys),
    .validate = root_validate,
};
