/*
 * The watched inbox (inbox.h, docs/inbox.md). One thread serves every
 * source; per source it lists the folder every poll_ms and keeps what it saw
 * of each candidate file (inode, size, modification time, since when).
 *
 * A file is a candidate unless its name starts with '.' or ends in .tmp or
 * .part (a sender's file in the making), and it must be a regular file. It
 * is complete when
 *   - its inode changed after its last write (ctime later than mtime): it
 *     was renamed or linked in once written, the sender contract; or
 *   - its inode, size and mtime have not changed for settle_ms.
 * Complete files are taken oldest first (mtime, then name). Reading checks
 * again that the file did not change meanwhile; one that did is watched
 * anew.
 *
 * A file's way out, in this order, so that a crash at any point either
 * repeats a step (harmless: duplicates) or has finished it:
 *   accepted: commit its events (one xd_store_append) -> write FINAL.997
 *             beside where it goes -> rename it to processed/FINAL ->
 *             fsync processed/ and the folder
 *   rejected: open the exception -> write FINAL.errors (and FINAL.997) ->
 *             rename it to rejected/FINAL -> fsync both folders
 * FINAL is the file's name, or STEM.<UTC time>Z.EXT when processed/ already
 * holds a file of that name. Side files are written under a temporary dot
 * name, fsynced and renamed (over a side file a crash orphaned), so none is
 * ever half written. The file itself is moved with
 * renameat2(RENAME_NOREPLACE), so an earlier file is never overwritten.
 *
 * When the store cannot take the events (full, read-only, unavailable) the
 * file stays where it is and is tried again at the next poll. A file whose
 * move fails after its events were committed is left alone until it changes
 * (one error in the log), not ingested again and again.
 */
#include "ingest/inbox.h"
#include "core/buf.h"
#include "core/clock.h"
#include "core/config.h"
#include "core/err.h"
#include "core/log.h"
#include "ingest/files.h"
#include "ingest/intake_metrics.h"
#include "route/dispatch.h"
#include "store/store.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define ERRORS_MAX_LISTED 1000 /* lines in FILE.errors beyond which a count is given */
#define NAME_TRIES        100  /* names tried in processed/ before giving up */

/* What was seen of a candidate file at the last poll. */
struct seen {
    char *name;
    dev_t dev;
    ino_t ino;
    off_t size;
    struct timespec mtime;
    int64_t since_ms; /* monotonic: since when this inode, size and mtime are unchanged */
    int stuck;        /* handled but could not be moved: left alone until it changes */
    int ready;        /* complete at this poll */
};

struct source {
    const struct xd_inbox *cfg;
    int dir, processed, rejected; /* directory file descriptors */
    struct seen *seen;
    size_t nseen;
    int64_t next_ms;        /* monotonic time of the next poll */
    struct xd_log_once problem; /* the last transient problem logged, to log each once */
};

struct xd_inboxes {
    const struct xd_config *cfg;
    struct xd_store *store;
    struct xd_dispatcher *disp;
    struct source *src;
    size_t nsrc;
    unsigned seq; /* for temporary file names */
    pthread_t thread;
    int started;
    pthread_mutex_t mu;
    pthread_cond_t cv; /* stopping, waited on between polls */
    int stopping;
};

/* What became of one file. */
enum outcome {
    DONE,    /* ingested or rejected, and moved */
    CHANGED, /* not complete after all: watch it anew */
    RETRY,   /* a passing problem (store, memory): try again at the next poll */
    GONE,    /* it disappeared */
    STUCK,   /* handled, but could not be moved: leave it until it changes */
};

static int stopping(struct xd_inboxes *w)
{
    pthread_mutex_lock(&w->mu);
    int s = w->stopping;
    pthread_mutex_unlock(&w->mu);
    return s;
}

static int ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && strcasecmp(s + n - k, suffix) == 0;
}

/* Names a sender is still writing, or that are not for us. */
static int ignored(const char *name)
{
    return name[0] == '.' || ends_with(name, ".tmp") || ends_with(name, ".part");
}

static int same_file(const struct seen *s, const struct stat *st)
{
    return s->dev == st->st_dev && s->ino == st->st_ino && s->size == st->st_size &&
           s->mtime.tv_sec == st->st_mtim.tv_sec && s->mtime.tv_nsec == st->st_mtim.tv_nsec;
}

/* ctime after mtime: the inode changed after the last write (renamed or linked in). */
static int renamed_in(const struct stat *st)
{
    return st->st_ctim.tv_sec > st->st_mtim.tv_sec ||
           (st->st_ctim.tv_sec == st->st_mtim.tv_sec && st->st_ctim.tv_nsec > st->st_mtim.tv_nsec);
}

/* Logs a passing problem of a source once, until another one (or none) replaces it. */
#define problem(s, ...) xd_warn_once(&(s)->problem, "inbox", (s)->cfg->name, __VA_ARGS__)

/* ---- moving files ---- */

static int fsync_dir(int fd)
{
    return fsync(fd) == 0 || errno == EINVAL || errno == EROFS ? 0 : -errno;
}

static int exists_at(int dir, const char *name)
{
    struct stat st;
    return fstatat(dir, name, &st, AT_SYMLINK_NOFOLLOW) == 0 || errno != ENOENT;
}

/*
 * The name the file gets in dst: its own, unless dst holds a file of that
 * name already; then STEM.YYYYMMDDTHHMMSSZ[-N].EXT. Side files (.997,
 * .errors) do not count: one without its file is left by a crash between
 * writing it and moving the file, and is rewritten. Returns 0 or -EEXIST.
 */
static int final_name(int dst, const char *name, char *out, size_t cap)
{
    const char *dot = strrchr(name, '.');
    size_t stem = dot && dot != name ? (size_t)(dot - name) : strlen(name);
    const char *ext = name + stem;
    char stamp[32];
    struct tm tm;
    time_t now = time(NULL);
    gmtime_r(&now, &tm);
    strftime(stamp, sizeof stamp, "%Y%m%dT%H%M%SZ", &tm);
    if (stem > 180)
        stem = 180; /* room for the stamp within NAME_MAX */
    for (int n = 0; n < NAME_TRIES; n++) {
        int len;
        if (n == 0)
            len = snprintf(out, cap, "%s", name);
        else if (n == 1)
            len = snprintf(out, cap, "%.*s.%s%s", (int)stem, name, stamp, ext);
        else
            len = snprintf(out, cap, "%.*s.%s-%d%s", (int)stem, name, stamp, n, ext);
        if (len < 0 || (size_t)len >= cap || len > 240)
            continue;
        if (!exists_at(dst, out))
            return 0;
    }
    return -EEXIST;
}

/* Writes data as dst/name whole: a temporary dot file, fsynced, renamed over any old one. */
static int write_side(struct xd_inboxes *w, int dst, const char *name, const char *data, size_t len)
{
    char tmp[64];
    snprintf(tmp, sizeof tmp, ".crossdock-%ld-%u.tmp", (long)getpid(), ++w->seq);
    int fd = openat(dst, tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
        return -errno;
    int rc = 0;
    for (size_t off = 0; off < len && rc == 0;) {
        ssize_t k = write(fd, data + off, len - off);
        if (k < 0 && errno != EINTR)
            rc = -errno;
        else if (k > 0)
            off += (size_t)k;
    }
    if (rc == 0 && fsync(fd) != 0)
        rc = -errno;
    if (close(fd) != 0 && rc == 0)
        rc = -errno;
    if (rc == 0 && renameat(dst, tmp, dst, name) != 0)
        rc = -errno;
    if (rc < 0)
        unlinkat(dst, tmp, 0);
    return rc;
}

/* Moves name from the source folder to dst/final, never over an existing file. */
static int move_file(struct source *s, const char *name, int dst, const char *final)
{
    if (renameat2(s->dir, name, dst, final, RENAME_NOREPLACE) == 0)
        return 0;
    if (errno != EINVAL && errno != ENOSYS)
        return -errno;
    /* a file system without RENAME_NOREPLACE: we are the only writer of dst */
    if (exists_at(dst, final))
        return -EEXIST;
    return renameat(s->dir, name, dst, final) == 0 ? 0 : -errno;
}

/* One side file to write next to a moved file. */
struct side {
    const char *ext; /* ".997", ".errors" */
    const char *data;
    size_t len;
};

/*
 * Writes the side files into dst and moves the file there, then fsyncs both
 * folders (a failing fsync is logged: the move itself is done). *final gets
 * the name it was given. Returns 0 or a negative errno (the file not moved).
 */
static int file_away(struct xd_inboxes *w, struct source *s, const char *name, int dst,
                     const struct side *sides, size_t nsides, char *final, size_t cap)
{
    int rc = -EEXIST;
    for (int attempt = 0; attempt < 3 && rc == -EEXIST; attempt++) {
        rc = final_name(dst, name, final, cap);
        if (rc < 0)
            return rc;
        for (size_t i = 0; i < nsides && rc == 0; i++) {
            char side[512];
            snprintf(side, sizeof side, "%s%s", final, sides[i].ext);
            rc = write_side(w, dst, side, sides[i].data, sides[i].len);
        }
        if (rc == 0)
            rc = move_file(s, name, dst, final);
    }
    if (rc < 0)
        return rc;
    rc = fsync_dir(dst);
    if (rc == 0)
        rc = fsync_dir(s->dir);
    if (rc < 0)
        xd_warn("inbox %s: %s moved, but the folders cannot be synced: %s", s->cfg->name, name,
                strerror(-rc));
    return 0;
}

/* ---- one file ---- */

/*
 * The whole file, if it is still the one seen: *data (caller frees) and *len.
 * DONE with why set: the file is refused (*reason says why, for /metrics).
 */
static enum outcome read_whole(struct source *s, const char *name, const struct seen *was,
                               char **data, size_t *len, struct xd_buf *why,
                               enum xd_reject_reason *reason)
{
    *reason = XD_REJ_OTHER;
    *data = NULL;
    *len = 0;
    int fd = openat(s->dir, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) {
        if (errno == ENOENT)
            return GONE;
        if (errno == EMFILE || errno == ENFILE || errno == ENOMEM || errno == EINTR)
            return RETRY; /* the hub's trouble, not the file's */
        xd_buf_printf(why, "cannot open: %s", strerror(errno));
        return DONE; /* rejected: why says so */
    }
    struct stat st;
    enum outcome o = DONE;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || !same_file(was, &st)) {
        o = CHANGED;
        goto out;
    }
    if ((uint64_t)st.st_size > s->cfg->max_file) {
        xd_buf_printf(why,
                      "the file is %lld bytes, over this inbox's max_file (%zu bytes): "
                      "not read",
                      (long long)st.st_size, s->cfg->max_file);
        *reason = XD_REJ_TOO_LARGE;
        goto out;
    }
    size_t size = (size_t)st.st_size;
    char *buf = malloc(size + 1);
    if (!buf) {
        o = RETRY;
        goto out;
    }
    size_t got = 0;
    for (;;) {
        ssize_t k = read(fd, buf + got, size + 1 - got);
        if (k < 0 && errno == EINTR)
            continue;
        if (k < 0) {
            xd_buf_printf(why, "cannot read: %s", strerror(errno));
            free(buf);
            goto out;
        }
        if (k == 0)
            break;
        got += (size_t)k;
        if (got > size)
            break; /* it grew */
    }
    if (got != size || fstat(fd, &st) != 0 || !same_file(was, &st)) {
        free(buf);
        o = CHANGED;
        goto out;
    }
    buf[size] = '\0';
    *data = buf;
    *len = size;
out:
    close(fd);
    return o;
}

/* FILE.errors: one line per problem, place and message. */
static void errors_text(struct xd_buf *out, const struct xd_intake *in, int rc)
{
    for (size_t k = 0; k < in->errs.n && k < ERRORS_MAX_LISTED; k++)
        xd_buf_printf(out, "%s%s%s\n", in->errs.v[k].path, *in->errs.v[k].path ? ": " : "",
                      in->errs.v[k].message);
    size_t more = in->errs.dropped;
    if (in->errs.n > ERRORS_MAX_LISTED)
        more += in->errs.n - ERRORS_MAX_LISTED;
    if (more)
        xd_buf_printf(out, "%zu more problems not listed\n", more);
    if (!out->len)
        xd_buf_printf(out, "%s\n", xd_strerror(rc));
}

/*
 * Rejects a file: exception, FINAL.errors (and FINAL.997), moved to
 * rejected/. It counts as refused (reason) once its exception is open.
 */
static enum outcome reject(struct xd_inboxes *w, struct source *s, const char *name,
                           const struct xd_buf *errors, const struct xd_buf *ack,
                           enum xd_reject_reason why)
{
    char final[256], reason[1024];
    int nlines = 0;
    for (size_t i = 0; i < errors->len; i++)
        nlines += errors->data[i] == '\n';
    int rc = final_name(s->rejected, name, final, sizeof final);
    if (rc < 0) {
        problem(s, "%s: no free name in rejected/: %s", name, strerror(-rc));
        return STUCK;
    }
    size_t first = strcspn(xd_buf_str(errors), "\n");
    snprintf(reason, sizeof reason,
             "inbox %s: %s rejected: %.*s%s (moved to rejected/%s; %d "
             "problem%s in rejected/%s.errors)",
             s->cfg->name, name, (int)(first < 600 ? first : 600), xd_buf_str(errors),
             first > 600 ? "..." : "", final, nlines, nlines == 1 ? "" : "s", final);
    rc = xd_store_open_exception(w->store, "rejected_file", NULL, reason);
    if (rc < 0) {
        problem(s, "%s: rejected, but the exception cannot be opened (%s): trying again", name,
                xd_strerror(rc));
        return RETRY;
    }
    xd_intake_count_rejected(why);
    struct side sides[2] = {{".errors", errors->data ? errors->data : "", errors->len},
                            {".997", ack ? ack->data : NULL, ack ? ack->len : 0}};
    rc = file_away(w, s, name, s->rejected, sides, ack && ack->len ? 2 : 1, final, sizeof final);
    if (rc < 0) {
        xd_error("inbox %s: %s: rejected, but cannot be moved to rejected/: %s; left in place "
                 "until it changes",
                 s->cfg->name, name, strerror(-rc));
        return STUCK;
    }
    xd_warn("inbox %s: %s rejected (%d problem%s), moved to rejected/%s", s->cfg->name, name,
            nlines, nlines == 1 ? "" : "s", final);
    return DONE;
}

/* Reads, checks, commits and files one complete file. */
static enum outcome take_file(struct xd_inboxes *w, struct source *s, const struct seen *f)
{
    const struct xd_config *cfg = w->cfg;
    struct xd_buf why, errors, ack;
    xd_buf_init(&why);
    xd_buf_init(&errors);
    xd_buf_init(&ack);
    char *data = NULL;
    size_t len = 0;
    unsigned char *results = NULL;
    struct xd_intake in;
    int have_intake = 0;
    enum xd_reject_reason reason;
    enum outcome o = read_whole(s, f->name, f, &data, &len, &why, &reason);
    if (o != DONE)
        goto out;
    if (why.len) {
        xd_buf_printf(&errors, "%s\n", xd_buf_str(&why));
        o = reject(w, s, f->name, &errors, NULL, reason);
        goto out;
    }

    int fmt = strcmp(s->cfg->format, "auto") == 0 ? xd_format_guess(f->name, data, len)
                                                  : xd_format_parse(s->cfg->format);
    struct xd_intake_limits lim = {.max_batch = (size_t)-1,
                                   .max_depth = cfg->server.max_depth,
                                   .max_string = cfg->server.max_string};
    struct xd_convert_opts opts = {.customer = s->cfg->customer,
                                   .warehouse = s->cfg->warehouse,
                                   .partners = cfg->partners,
                                   .npartners = cfg->npartners};
    /* the same source as `crossdock ingest` gives, so both see each other's duplicates */
    xd_intake_init(&in, &lim, xd_format_name(fmt == XD_FMT_JSONL ? XD_FMT_JSON : fmt));
    have_intake = 1;
    int rc = xd_intake_add_file(&in, fmt, data, len, &opts, fmt == XD_FMT_X12 ? &ack : NULL);
    free(data);
    data = NULL;
    if (rc == XD_ENOMEM || ack.oom) {
        problem(s, "%s: out of memory reading it: trying again", f->name);
        o = RETRY;
        goto out;
    }
    if (rc < 0) {
        errors_text(&errors, &in, rc);
        o = reject(w, s, f->name, &errors, &ack, xd_intake_reject_reason(&in));
        goto out;
    }

    results = calloc(in.n ? in.n : 1, 1);
    if (!results) {
        o = RETRY;
        goto out;
    }
    struct xd_append a = {.events = in.events, .n = in.n, .results = results};
    rc = xd_store_append(w->store, &a);
    if (rc == XD_ECONFLICT || rc == XD_EINVAL || rc == XD_ETOOBIG) {
        for (size_t k = 0; rc == XD_ECONFLICT && k < in.n; k++)
            if (results[k] == XD_APPEND_CONFLICT)
                xd_buf_printf(&errors, "event '%s': accepted before with a different body\n",
                              in.events[k].event_id);
        if (!errors.len)
            xd_buf_printf(&errors, "the store refused the events: %s\n", xd_strerror(rc));
        o = reject(w, s, f->name, &errors, &ack,
                   rc == XD_ECONFLICT ? XD_REJ_CONFLICT : XD_REJ_OTHER);
        goto out;
    }
    if (rc < 0) {
        problem(s, "%s: not stored (%s): trying again", f->name, xd_strerror(rc));
        o = RETRY;
        goto out;
    }
    if (w->disp)
        xd_dispatch_nudge(w->disp);
    size_t fresh = 0;
    xd_intake_count_stored(in.events, results, in.n, &fresh, NULL);

    /* committed: from here on a crash only means ingesting it again, as duplicates */
    char final[256];
    struct side side = {".997", ack.data, ack.len};
    rc = file_away(w, s, f->name, s->processed, &side, ack.len ? 1 : 0, final, sizeof final);
    if (rc < 0) {
        xd_error("inbox %s: %s: stored, but cannot be moved to processed/: %s; left in place "
                 "until it changes",
                 s->cfg->name, f->name, strerror(-rc));
        o = STUCK;
        goto out;
    }
    xd_warn_once_clear(&s->problem);
    xd_info("inbox %s: %s: %zu accepted, %zu duplicates (%s), moved to processed/%s%s",
            s->cfg->name, f->name, fresh, in.n - fresh, xd_format_name(fmt), final,
            ack.len ? " with its 997" : "");
    o = DONE;
out:
    free(results);
    free(data);
    if (have_intake)
        xd_intake_dispose(&in);
    xd_buf_dispose(&why);
    xd_buf_dispose(&errors);
    xd_buf_dispose(&ack);
    return o;
}

/* ---- polling ---- */

static void seen_free(struct seen *v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(v[i].name);
    free(v);
}

static int by_age(const void *a, const void *b)
{
    const struct seen *x = *(const struct seen *const *)a, *y = *(const struct seen *const *)b;
    if (x->mtime.tv_sec != y->mtime.tv_sec)
        return x->mtime.tv_sec < y->mtime.tv_sec ? -1 : 1;
    if (x->mtime.tv_nsec != y->mtime.tv_nsec)
        return x->mtime.tv_nsec < y->mtime.tv_nsec ? -1 : 1;
    return strcmp(x->name, y->name);
}

/* The previous sighting of name, or NULL. */
static const struct seen *previous(const struct source *s, const char *name)
{
    for (size_t i = 0; i < s->nseen; i++)
        if (strcmp(s->seen[i].name, name) == 0)
            return &s->seen[i];
    return NULL;
}

/*
 * Lists the folder: the candidates now, with what was known of them, and
 * which are complete. Returns 0 or a negative errno (the listing failed:
 * what was seen is kept).
 */
static int list(struct source *s, int64_t now, struct seen **out, size_t *nout,
                struct seen ***ready, size_t *nready)
{
    *out = NULL;
    *nout = 0;
    *ready = NULL;
    *nready = 0;
    int fd = openat(s->dir, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    DIR *d = fd < 0 ? NULL : fdopendir(fd);
    if (!d) {
        int e = errno;
        if (fd >= 0)
            close(fd);
        return -e;
    }
    struct seen *v = NULL;
    size_t n = 0, cap = 0;
    int rc = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        struct stat st;
        if (ignored(e->d_name) || fstatat(s->dir, e->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0 ||
            !S_ISREG(st.st_mode))
            continue;
        if (n == cap) {
            size_t c = cap ? cap * 2 : 16;
            struct seen *nv = realloc(v, c * sizeof *nv);
            if (!nv) {
                rc = -ENOMEM;
                break;
            }
            v = nv;
            cap = c;
        }
        struct seen *f = &v[n];
        f->name = strdup(e->d_name);
        if (!f->name) {
            rc = -ENOMEM;
            break;
        }
        n++;
        f->dev = st.st_dev;
        f->ino = st.st_ino;
        f->size = st.st_size;
        f->mtime = st.st_mtim;
        f->since_ms = now;
        f->stuck = 0;
        f->ready = 0;
        const struct seen *p = previous(s, f->name);
        if (p && same_file(p, &st)) {
            f->since_ms = p->since_ms;
            f->stuck = p->stuck;
        }
        /* complete: renamed in after its last write, or unchanged for settle_ms */
        f->ready =
            !f->stuck && (renamed_in(&st) || now - f->since_ms >= (int64_t)s->cfg->settle_ms);
    }
    closedir(d);
    if (rc < 0) {
        seen_free(v, n);
        return rc;
    }
    struct seen **r = calloc(n ? n : 1, sizeof *r);
    if (!r) {
        seen_free(v, n);
        return -ENOMEM;
    }
    size_t nr = 0;
    for (size_t i = 0; i < n; i++)
        if (v[i].ready)
            r[nr++] = &v[i];
    qsort(r, nr, sizeof *r, by_age);
    *out = v;
    *nout = n;
    *ready = r;
    *nready = nr;
    return 0;
}

static void poll_source(struct xd_inboxes *w, struct source *s)
{
    struct seen *now_seen, **ready;
    size_t n, nready;
    int rc = list(s, xd_mono_ms(), &now_seen, &n, &ready, &nready);
    if (rc < 0) {
        problem(s, "cannot list %s: %s", s->cfg->path, strerror(-rc));
        return;
    }
    for (size_t i = 0; i < nready && !stopping(w); i++) {
        struct seen *f = ready[i];
        switch (take_file(w, s, f)) {
        case DONE:
        case GONE:
            free(f->name);
            f->name = NULL; /* dropped below */
            break;
        case CHANGED:
            f->since_ms = xd_mono_ms();
            f->ino = 0; /* seen afresh at the next poll */
            break;
        case STUCK:
            f->stuck = 1;
            break;
        case RETRY:
            break;
        }
    }
    free(ready);
    /* keep what is still there */
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        if (now_seen[i].name)
            now_seen[k++] = now_seen[i];
    seen_free(s->seen, s->nseen);
    s->seen = now_seen;
    s->nseen = k;
}

static void *inbox_main(void *arg)
{
    struct xd_inboxes *w = arg;
    pthread_setname_np(pthread_self(), "xd-inbox");
    pthread_mutex_lock(&w->mu);
    while (!w->stopping) {
        int64_t next = INT64_MAX;
        for (size_t i = 0; i < w->nsrc && !w->stopping; i++) {
            struct source *s = &w->src[i];
            if (xd_mono_ms() >= s->next_ms) {
                pthread_mutex_unlock(&w->mu);
                poll_source(w, s);
                pthread_mutex_lock(&w->mu);
                s->next_ms = xd_mono_ms() + s->cfg->poll_ms;
            }
            if (s->next_ms < next)
                next = s->next_ms;
        }
        if (w->stopping)
            break;
        int64_t wait = next - xd_mono_ms();
        if (wait <= 0)
            continue;
        struct timespec t;
        clock_gettime(CLOCK_MONOTONIC, &t);
        t.tv_sec += wait / 1000;
        t.tv_nsec += (wait % 1000) * 1000000L;
        if (t.tv_nsec >= 1000000000L) {
            t.tv_sec++;
            t.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&w->cv, &w->mu, &t);
    }
    pthread_mutex_unlock(&w->mu);
    return NULL;
}

/* ---- start and stop ---- */

/* mkdir -p */
static int make_dirs(const char *path)
{
    char *p = strdup(path);
    if (!p)
        return -ENOMEM;
    int rc = 0;
    for (char *c = p + 1; rc == 0; c++) {
        if (*c != '/' && *c != '\0')
            continue;
        char was = *c;
        *c = '\0';
        if (mkdir(p, 0777) != 0 && errno != EEXIST)
            rc = -errno;
        *c = was;
        if (!was)
            break;
    }
    free(p);
    return rc;
}

/* Opens (creating it when missing) the folder sub of dir, on dir's file system. */
static int open_sub(int dir, const char *sub, const struct stat *top, int *out)
{
    if (mkdirat(dir, sub, 0777) != 0 && errno != EEXIST)
        return -errno;
    int fd = openat(dir, sub, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    struct stat st;
    if (fstat(fd, &st) != 0 || st.st_dev != top->st_dev) {
        close(fd);
        return -EXDEV;
    }
    *out = fd;
    return 0;
}

/* Removes temporary side files a crash left behind in dir. */
static void sweep(int dir)
{
    int fd = openat(dir, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    DIR *d = fd < 0 ? NULL : fdopendir(fd);
    if (!d) {
        if (fd >= 0)
            close(fd);
        return;
    }
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        if (strncmp(e->d_name, ".crossdock-", 11) == 0 && ends_with(e->d_name, ".tmp"))
            unlinkat(dir, e->d_name, 0);
    closedir(d);
}

static int open_source(struct source *s, const struct xd_inbox *cfg, struct xd_buf *err)
{
    s->cfg = cfg;
    s->dir = s->processed = s->rejected = -1;
    const char *what = "cannot create";
    int rc = make_dirs(cfg->path);
    struct stat top;
    if (rc == 0) {
        what = "cannot open";
        s->dir = open(cfg->path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        rc = s->dir < 0 || fstat(s->dir, &top) != 0 ? -errno : 0;
    }
    if (rc == 0) {
        what = "processed/";
        rc = open_sub(s->dir, "processed", &top, &s->processed);
    }
    if (rc == 0) {
        what = "rejected/";
        rc = open_sub(s->dir, "rejected", &top, &s->rejected);
    }
    if (rc == -EXDEV) {
        xd_buf_printf(err, "inbox '%s': %s: %s is on another file system (moves must be renames)",
                      cfg->name, cfg->path, what);
        return XD_ECONFIG;
    }
    if (rc < 0) {
        xd_buf_printf(err, "inbox '%s': %s: %s: %s", cfg->name, cfg->path, what, strerror(-rc));
        return rc == -ENOMEM ? XD_ENOMEM : XD_ECONFIG;
    }
    sweep(s->processed);
    sweep(s->rejected);
    return 0;
}

static void close_source(struct source *s)
{
    int fds[3] = {s->dir, s->processed, s->rejected};
    for (int i = 0; i < 3; i++)
        if (fds[i] >= 0)
            close(fds[i]);
    seen_free(s->seen, s->nseen);
}

static void destroy(struct xd_inboxes *w)
{
    for (size_t i = 0; i < w->nsrc; i++)
        close_source(&w->src[i]);
    free(w->src);
    pthread_cond_destroy(&w->cv);
    pthread_mutex_destroy(&w->mu);
    free(w);
}

int xd_inbox_start(const struct xd_config *cfg, struct xd_store *store, struct xd_dispatcher *disp,
                   struct xd_inboxes **out, struct xd_buf *err)
{
    *out = NULL;
    if (cfg->ninbox == 0)
        return 0;
    struct xd_inboxes *w = calloc(1, sizeof *w);
    if (!w)
        return XD_ENOMEM;
    w->cfg = cfg;
    w->store = store;
    w->disp = disp;
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_mutex_init(&w->mu, NULL);
    pthread_cond_init(&w->cv, &ca);
    pthread_condattr_destroy(&ca);
    int rc = 0;
    w->src = calloc(cfg->ninbox, sizeof *w->src);
    if (!w->src) {
        rc = XD_ENOMEM;
        goto fail;
    }
    for (size_t i = 0; i < cfg->ninbox; i++) {
        rc = open_source(&w->src[i], &cfg->inbox[i], err);
        w->nsrc = i + 1;
        if (rc < 0)
            goto fail;
    }
    /* two names for one folder (./in and in) would take each other's files */
    for (size_t i = 0; i < w->nsrc; i++) {
        struct stat a, b;
        fstat(w->src[i].dir, &a);
        for (size_t j = 0; j < i; j++) {
            fstat(w->src[j].dir, &b);
            if (a.st_dev == b.st_dev && a.st_ino == b.st_ino) {
                xd_buf_printf(err, "inbox '%s': %s is the folder of inbox '%s' too",
                              cfg->inbox[i].name, cfg->inbox[i].path, cfg->inbox[j].name);
                rc = XD_ECONFIG;
                goto fail;
            }
        }
    }
    rc = pthread_create(&w->thread, NULL, inbox_main, w);
    if (rc != 0) {
        xd_buf_printf(err, "inbox: cannot start its thread: %s", strerror(rc));
        rc = XD_ENOMEM;
        goto fail;
    }
    w->started = 1;
    for (size_t i = 0; i < w->nsrc; i++)
        xd_info("inbox %s: watching %s (%s)", cfg->inbox[i].name, cfg->inbox[i].path,
                cfg->inbox[i].format);
    *out = w;
    return 0;
fail:
    destroy(w);
    return rc;
}

void xd_inbox_stop(struct xd_inboxes *w)
{
    if (!w)
        return;
    pthread_mutex_lock(&w->mu);
    w->stopping = 1;
    pthread_cond_signal(&w->cv);
    pthread_mutex_unlock(&w->mu);
    if (w->started)
        pthread_join(w->thread, NULL);
    destroy(w);
}
