/* The API key file (see keyfile.h): lines of id, scopes, secret or its hash. */
#include "core/keyfile.h"
#include "core/buf.h"
#include "core/config.h"
#include "core/err.h"
#include "core/hex.h"
#include "core/redact.h"

#include <errno.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define KEYFILE_MAX     (16u << 20) /* bytes: a key file is small; refuse anything huge */
#define KEYFILE_ID_MAX  128
#define KEYFILE_ERR_MAX 100 /* problems listed; the rest are counted */

struct parse {
    const char *name;
    struct xd_buf *errs;
    size_t nerrs;
};

static void problem(struct parse *p, unsigned line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void problem(struct parse *p, unsigned line, const char *fmt, ...)
{
    if (p->nerrs++ >= KEYFILE_ERR_MAX || !p->errs)
        return;
    va_list ap;
    va_start(ap, fmt);
    xd_buf_printf(p->errs, "%s:%u: ", p->name, line);
    xd_buf_vprintf(p->errs, fmt, ap);
    xd_buf_putc(p->errs, '\n');
    va_end(ap);
}

static int id_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
           c == '-' || c == '.' || c == ':';
}

/* Splits s (modified) at spaces and tabs into at most max fields; returns how many. */
static size_t split(char *s, char **f, size_t max)
{
    size_t n = 0;
    for (;;) {
        while (*s == ' ' || *s == '\t')
            s++;
        if (!*s)
            return n;
        if (n == max)
            return max + 1; /* one too many */
        f[n++] = s;
        while (*s && *s != ' ' && *s != '\t')
            s++;
        if (*s)
            *s++ = '\0';
    }
}

/* One non-comment line into e; 0, or -1 after reporting why. */
static int parse_line(struct parse *p, unsigned ln, char *text, struct xd_keyfile_entry *e)
{
    char *f[4];
    size_t n = split(text, f, 4);
    if (n < 3 || n > 4) {
        problem(p, ln, "expected 'ID SCOPES SECRET [rate_limit=N]', found %zu field%s", n,
                n == 1 ? "" : "s");
        return -1;
    }
    size_t idlen = strlen(f[0]);
    int bad = 0;
    for (size_t i = 0; i < idlen; i++)
        bad |= !id_char(f[0][i]);
    if (bad || idlen > KEYFILE_ID_MAX) {
        problem(p, ln, "id: must be 1 to %d of A-Z a-z 0-9 _ - . :", KEYFILE_ID_MAX);
        return -1;
    }
    unsigned scopes = 0;
    for (char *s = f[1], *comma; s; s = comma ? comma + 1 : NULL) {
        comma = strchr(s, ',');
        if (comma)
            *comma = '\0';
        unsigned bit = xd_scope_parse(s);
        if (!bit) {
            problem(p, ln,
                    "scopes: must be events:write, read, ops or admin (comma-separated), "
                    "not '%.40s'",
                    s);
            return -1;
        }
        scopes |= bit;
    }
    unsigned rate = 0;
    if (n == 4) {
        char *end = NULL;
        unsigned long v = 0;
        if (strncmp(f[3], "rate_limit=", 11) == 0) {
            errno = 0;
            v = strtoul(f[3] + 11, &end, 10);
        }
        if (!end || end == f[3] + 11 || *end || errno || v > 1000000 || f[3][11] == '-') {
            problem(p, ln,
                    "expected rate_limit=N (requests per second, 0 to 1000000) as the "
                    "fourth field");
            return -1;
        }
        rate = (unsigned)v;
    }
    const char *sec = f[2];
    unsigned int mdlen = 0;
    memset(e, 0, sizeof *e);
    if (strncmp(sec, "sha256:", 7) == 0) {
        if (strlen(sec + 7) != 64) {
            problem(p, ln, "secret: sha256: must be followed by 64 hex digits");
            return -1;
        }
        if (xd_unhex(sec + 7, e->sha256, 32) < 0) {
            problem(p, ln, "secret: sha256: must be followed by 64 hex digits");
            return -1;
        }
    } else {
        if (strlen(sec) < 16) {
            problem(p, ln,
                    "secret: shorter than 16 characters (write a long random key, or "
                    "sha256:<hex> of one)");
            return -1;
        }
        xd_redact_add(sec); /* a key written in full is a secret of the process from now on */
        e->secret = strdup(sec);
        if (!e->secret || !EVP_Digest(sec, strlen(sec), e->sha256, &mdlen, EVP_sha256(), NULL)) {
            free(e->secret);
            e->secret = NULL;
            return XD_ENOMEM;
        }
    }
    e->id = strdup(f[0]);
    if (!e->id) {
        if (e->secret)
            OPENSSL_cleanse(e->secret, strlen(e->secret));
        free(e->secret);
        return XD_ENOMEM;
    }
    e->scopes = scopes;
    e->rate_limit = rate;
    e->line = ln;
    return 0;
}

int xd_keyfile_parse(const char *name, const char *text, size_t len, struct xd_keyfile_entry **out,
                     size_t *n, struct xd_buf *errs)
{
    struct parse p = {.name = name, .errs = errs};
    struct xd_keyfile_entry *arr = NULL;
    size_t count = 0, cap = 0;
    int rc = 0;
    *out = NULL;
    *n = 0;
    char *copy = malloc(len + 1);
    if (!copy)
        return XD_ENOMEM;
    memcpy(copy, text, len);
    copy[len] = '\0';
    unsigned ln = 0;
    for (char *s = copy, *nl; s && s < copy + len; s = nl ? nl + 1 : NULL) {
        ln++;
        nl = memchr(s, '\n', (size_t)(copy + len - s));
        if (nl)
            *nl = '\0';
        size_t l = strlen(s);
        if (s + l != (nl ? nl : copy + len)) {
            problem(&p, ln, "contains a NUL byte");
            continue;
        }
        if (l && s[l - 1] == '\r')
            s[--l] = '\0';
        int ctl = 0;
        for (size_t i = 0; i < l; i++)
            ctl |= ((unsigned char)s[i] < ' ' && s[i] != '\t') || s[i] == 0x7f;
        if (ctl) {
            problem(&p, ln, "contains control characters");
            continue;
        }
        const char *t = s + strspn(s, " \t");
        if (!*t || *t == '#')
            continue;
        if (count == cap) {
            size_t nc = cap ? cap * 2 : 8;
            struct xd_keyfile_entry *na = realloc(arr, nc * sizeof *na);
            if (!na) {
                rc = XD_ENOMEM;
                break;
            }
            arr = na;
            cap = nc;
        }
        int r = parse_line(&p, ln, s, &arr[count]);
        if (r == 0)
            count++;
        else if (r != -1) {
            rc = r;
            break;
        }
    }
    OPENSSL_cleanse(copy, len);
    free(copy);
    if (p.nerrs > KEYFILE_ERR_MAX && errs)
        xd_buf_printf(errs, "%s: %zu more problems not listed\n", name, p.nerrs - KEYFILE_ERR_MAX);
    if (rc == 0 && p.nerrs)
        rc = XD_ECONFIG;
    if (rc < 0) {
        xd_keyfile_free(arr, count);
        return rc;
    }
    *out = arr;
    *n = count;
    return 0;
}

int xd_keyfile_load(const char *path, struct xd_keyfile_entry **out, size_t *n, struct xd_buf *errs,
                    int *warn)
{
    struct stat st;
    *out = NULL;
    *n = 0;
    if (warn)
        *warn = 0;
    FILE *f = fopen(path, "rb");
    if (!f || fstat(fileno(f), &st) < 0) {
        if (errs)
            xd_buf_printf(errs, "%s: cannot open: %s\n", path, strerror(errno));
        if (f)
            fclose(f);
        return XD_EIO;
    }
    if (!S_ISREG(st.st_mode) || st.st_size > (off_t)KEYFILE_MAX) {
        if (errs)
            xd_buf_printf(errs, "%s: not a regular file of at most %u bytes\n", path, KEYFILE_MAX);
        fclose(f);
        return XD_EIO;
    }
    size_t len = (size_t)st.st_size;
    char *text = malloc(len + 1);
    if (!text) {
        fclose(f);
        return XD_ENOMEM;
    }
    size_t got = fread(text, 1, len, f);
    int bad = ferror(f);
    fclose(f);
    if (bad || got != len) {
        if (errs)
            xd_buf_printf(errs, "%s: cannot read: %s\n", path,
                          bad ? strerror(errno) : "short read");
        free(text);
        return XD_EIO;
    }
    int rc = xd_keyfile_parse(path, text, len, out, n, errs);
    OPENSSL_cleanse(text, len);
    free(text);
    if (rc == 0 && warn && (st.st_mode & (S_IRWXG | S_IRWXO)))
        for (size_t i = 0; i < *n && !*warn; i++)
            *warn = (*out)[i].secret != NULL;
    return rc;
}

void xd_keyfile_free(struct xd_keyfile_entry *e, size_t n)
{
    for (size_t i = 0; e && i < n; i++) {
        free(e[i].id);
        if (e[i].secret) {
            OPENSSL_cleanse(e[i].secret, strlen(e[i].secret));
            free(e[i].secret);
        }
    }
    free(e);
}
