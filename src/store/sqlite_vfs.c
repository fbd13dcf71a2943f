/*
 * The writer's VFS: SQLite's own (unix) VFS with the writes of a durable
 * commit to the WAL gathered into one.
 *
 * SQLite writes a WAL frame as two calls, its 24-byte header and then the
 * page, so a commit of N pages costs 2N pwrite calls, and each call goes
 * through the file system's per-call path and its per-page path for every
 * page cache page it touches (the header and the page share one). When the
 * committer asks for it (xd_sqlite_vfs_gather, before a durable transaction),
 * this shim keeps the contiguous writes to the WAL in a buffer and hands them
 * to the real file as one write at the next xSync, which a durable commit
 * always makes before it publishes the frames in the WAL index. Readers on
 * other connections thus never see a frame that is not in the file yet.
 *
 * Invariants:
 * - Only a WAL file opened with gathering on ever buffers, and only while it
 *   is on: the store turns it off (which writes what is held) for commits that
 *   do not sync, since their frames are published without an xSync.
 * - Any other use of the file (read, sync, size, truncate, file control,
 *   close) writes what is held first, so the file is exactly what SQLite
 *   wrote whenever SQLite looks at it.
 * - A failed gathered write is reported by the call that made it (xSync for a
 *   commit) with the code the real write gave (SQLITE_FULL for a full disk):
 *   SQLite then fails the commit, and the frames it did not publish are
 *   overwritten by the next one, as after a failed write of its own.
 * - The buffer holds at most GATHER_MAX bytes (below the unix VFS's limit
 *   for one write); longer runs are written in pieces of about that size.
 *
 * Drop-behind (xd_sqlite_vfs_keep_cached): the store grows at the end (events
 * are appended), and each checkpoint writes the new pages into the database
 * file through the OS page cache, where they would stay until memory runs
 * short. After each sync of the database file (the end of a checkpoint) the
 * pages more than `keep` bytes behind its end are dropped from the page cache
 * (POSIX_FADV_DONTNEED: they are clean then), once each: the cache holds the
 * newest part of the store, and what readers bring back in stays. New pages
 * then reuse memory the cache just gave back instead of claiming more; on a
 * VM whose memory is backed on first touch that is 4-5x cheaper (see
 * docs/store.md).
 */
#include "store/sqlite_int.h"

#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/*
 * The unix VFS writes at most 128 KiB - 1 bytes per call (it masks the length
 * to 17 bits and calls a shorter write a full disk), so a run is held in
 * pieces of at most 124 KiB: a batch of 100 events is about one.
 */
#define GATHER_MAX   (124 * 1024)
#define GATHER_FIRST (32 * 1024)

/* One open file: ours first, the real VFS's file after it (same allocation). */
struct gfile {
    sqlite3_file base;
    sqlite3_file *real;
    int wal;            /* opened as a WAL file */
    int gather;         /* writes are held (xd_sqlite_vfs_gather) */
    unsigned char *buf; /* held bytes, for file offset off */
    size_t len, cap;
    sqlite3_int64 off;
    int fd;                /* main database: the real file's descriptor (unix_fd), or -1 */
    sqlite3_int64 keep;    /* main database: bytes at its end kept cached; 0: all */
    sqlite3_int64 dropped; /* pages before this offset were dropped from the cache */
};

/* sizeof, rounded up so that the real file after it is aligned */
#define GFILE_SIZE ((sizeof(struct gfile) + 15) & ~(size_t)15)

static sqlite3_vfs gvfs;
static const sqlite3_io_methods gmethods;

static sqlite3_vfs *real_vfs(sqlite3_vfs *v)
{
    return v->pAppData;
}

static struct gfile *gf(sqlite3_file *f)
{
    return (struct gfile *)f;
}

/* Writes what is held; the buffer is empty afterwards whatever the outcome. */
static int flush(struct gfile *g)
{
    if (g->len == 0)
        return SQLITE_OK;
    int rc = g->real->pMethods->xWrite(g->real, g->buf, (int)g->len, g->off);
    g->len = 0;
    return rc;
}

static int g_close(sqlite3_file *f)
{
    struct gfile *g = gf(f);
    int rc = flush(g);
    int rc2 = g->real->pMethods->xClose(g->real);
    free(g->buf);
    g->buf = NULL;
    g->cap = 0;
    return rc != SQLITE_OK ? rc : rc2;
}

static int g_read(sqlite3_file *f, void *p, int n, sqlite3_int64 off)
{
    struct gfile *g = gf(f);
    int rc = flush(g);
    if (rc != SQLITE_OK)
        return rc;
    return g->real->pMethods->xRead(g->real, p, n, off);
}

/* Room for n more held bytes; 0 when the buffer cannot grow (then write through). */
static int reserve(struct gfile *g, size_t n)
{
    size_t need = g->len + n;
    if (need <= g->cap)
        return 1;
    if (need > GATHER_MAX)
        return 0;
    size_t cap = g->cap ? g->cap : GATHER_FIRST;
    while (cap < need)
        cap *= 2;
    if (cap > GATHER_MAX)
        cap = GATHER_MAX;
    unsigned char *b = realloc(g->buf, cap);
    if (!b)
        return 0;
    g->buf = b;
    g->cap = cap;
    return 1;
}

static int g_write(sqlite3_file *f, const void *p, int n, sqlite3_int64 off)
{
    struct gfile *g = gf(f);
    int rc;
    if (!g->gather || n <= 0) {
        rc = flush(g);
        return rc != SQLITE_OK ? rc : g->real->pMethods->xWrite(g->real, p, n, off);
    }
    if (g->len > 0 && off != g->off + (sqlite3_int64)g->len) {
        rc = flush(g);
        if (rc != SQLITE_OK)
            return rc;
    }
    if (!reserve(g, (size_t)n)) {
        rc = flush(g);
        if (rc != SQLITE_OK)
            return rc;
        if (!reserve(g, (size_t)n))
            return g->real->pMethods->xWrite(g->real, p, n, off);
    }
    if (g->len == 0)
        g->off = off;
    memcpy(g->buf + g->len, p, (size_t)n);
    g->len += (size_t)n;
    return SQLITE_OK;
}

static int g_truncate(sqlite3_file *f, sqlite3_int64 size)
{
    struct gfile *g = gf(f);
    int rc = flush(g);
    return rc != SQLITE_OK ? rc : g->real->pMethods->xTruncate(g->real, size);
}

/* After a sync of the main database: drops the pages now more than keep behind its end. */
static void drop_behind(struct gfile *g)
{
    sqlite3_int64 size = 0;
    if (g->fd < 0 || g->keep <= 0 || g->real->pMethods->xFileSize(g->real, &size) != SQLITE_OK)
        return;
    sqlite3_int64 cut = size - g->keep;
    if (cut < g->dropped) /* the file shrank (vacuum): start again from there */
        g->dropped = cut > 0 ? cut : 0;
    if (cut - g->dropped < 1024 * 1024) /* at least 1 MiB at a time */
        return;
    (void)posix_fadvise(g->fd, (off_t)g->dropped, (off_t)(cut - g->dropped), POSIX_FADV_DONTNEED);
    g->dropped = cut;
}

static int g_sync(sqlite3_file *f, int flags)
{
    struct gfile *g = gf(f);
    int rc = flush(g);
    if (rc == SQLITE_OK)
        rc = g->real->pMethods->xSync(g->real, flags);
    if (rc == SQLITE_OK)
        drop_behind(g);
    return rc;
}

static int g_file_size(sqlite3_file *f, sqlite3_int64 *size)
{
    struct gfile *g = gf(f);
    int rc = flush(g);
    return rc != SQLITE_OK ? rc : g->real->pMethods->xFileSize(g->real, size);
}

static int g_lock(sqlite3_file *f, int lock)
{
    return gf(f)->real->pMethods->xLock(gf(f)->real, lock);
}

static int g_unlock(sqlite3_file *f, int lock)
{
    return gf(f)->real->pMethods->xUnlock(gf(f)->real, lock);
}

static int g_check_reserved(sqlite3_file *f, int *out)
{
    return gf(f)->real->pMethods->xCheckReservedLock(gf(f)->real, out);
}

static int g_file_control(sqlite3_file *f, int op, void *arg)
{
    struct gfile *g = gf(f);
    int rc = flush(g);
    if (rc != SQLITE_OK)
        return rc;
    rc = g->real->pMethods->xFileControl(g->real, op, arg);
    /* The VFS stack's names, outermost first, as sqlite3_file_control expects. */
    if (op == SQLITE_FCNTL_VFSNAME && rc == SQLITE_OK) {
        char *inner = *(char **)arg;
        *(char **)arg =
            inner ? sqlite3_mprintf("%s/%z", gvfs.zName, inner) : sqlite3_mprintf("%s", gvfs.zName);
    }
    return rc;
}

static int g_sector_size(sqlite3_file *f)
{
    return gf(f)->real->pMethods->xSectorSize(gf(f)->real);
}

static int g_device_characteristics(sqlite3_file *f)
{
    return gf(f)->real->pMethods->xDeviceCharacteristics(gf(f)->real);
}

static int g_shm_map(sqlite3_file *f, int pg, int pgsz, int extend, void volatile **pp)
{
    return gf(f)->real->pMethods->xShmMap(gf(f)->real, pg, pgsz, extend, pp);
}

static int g_shm_lock(sqlite3_file *f, int offset, int n, int flags)
{
    return gf(f)->real->pMethods->xShmLock(gf(f)->real, offset, n, flags);
}

static void g_shm_barrier(sqlite3_file *f)
{
    gf(f)->real->pMethods->xShmBarrier(gf(f)->real);
}

static int g_shm_unmap(sqlite3_file *f, int delete_flag)
{
    return gf(f)->real->pMethods->xShmUnmap(gf(f)->real, delete_flag);
}

static int g_fetch(sqlite3_file *f, sqlite3_int64 off, int n, void **pp)
{
    struct gfile *g = gf(f);
    int rc = flush(g);
    return rc != SQLITE_OK ? rc : g->real->pMethods->xFetch(g->real, off, n, pp);
}

static int g_unfetch(sqlite3_file *f, sqlite3_int64 off, void *p)
{
    return gf(f)->real->pMethods->xUnfetch(gf(f)->real, off, p);
}

/* Version 3, as the unix VFS's files are (checked in xd_sqlite_vfs_register). */
static const sqlite3_io_methods gmethods = {
    3,
    g_close,
    g_read,
    g_write,
    g_truncate,
    g_sync,
    g_file_size,
    g_lock,
    g_unlock,
    g_check_reserved,
    g_file_control,
    g_sector_size,
    g_device_characteristics,
    g_shm_map,
    g_shm_lock,
    g_shm_barrier,
    g_shm_unmap,
    g_fetch,
    g_unfetch,
};

/*
 * The descriptor of a unix VFS file, for posix_fadvise: the VFS does not
 * give it out, so it is read where SQLite's unixFile has kept it since 3.7
 * (after the methods, VFS and inode pointers), and used only when it is
 * this very file (same device and inode as name): -1 otherwise. Never
 * ours to close, and never a descriptor of our own either: closing any
 * descriptor of the database would drop every POSIX lock SQLite holds on it
 * in this process.
 */
static int unix_fd(sqlite3_file *real, const char *name)
{
    struct unix_file_head {
        const sqlite3_io_methods *methods;
        sqlite3_vfs *vfs;
        void *inode;
        int h;
    };
    int h = ((const struct unix_file_head *)(const void *)real)->h;
    struct stat a, b;
    if (h < 0 || fstat(h, &a) != 0 || stat(name, &b) != 0 || a.st_dev != b.st_dev ||
        a.st_ino != b.st_ino)
        return -1;
    return h;
}

static int g_open(sqlite3_vfs *v, const char *name, sqlite3_file *f, int flags, int *out_flags)
{
    struct gfile *g = gf(f);
    memset(g, 0, sizeof *g);
    g->fd = -1;
    g->real = (sqlite3_file *)((char *)f + GFILE_SIZE);
    int rc = real_vfs(v)->xOpen(real_vfs(v), name, g->real, flags, out_flags);
    if (g->real->pMethods == NULL)
        return rc == SQLITE_OK ? SQLITE_CANTOPEN : rc;
    if (g->real->pMethods->iVersion < 3) {
        /* Not the VFS this was written for: no shim, and say so. */
        g->real->pMethods->xClose(g->real);
        return SQLITE_CANTOPEN;
    }
    g->wal = (flags & SQLITE_OPEN_WAL) != 0;
    g->base.pMethods = &gmethods;
    if (rc == SQLITE_OK && (flags & SQLITE_OPEN_MAIN_DB) && name)
        g->fd = unix_fd(g->real, name);
    return rc;
}

/* The rest of the VFS is the real one's, called with the real one. */
static int g_delete(sqlite3_vfs *v, const char *name, int sync_dir)
{
    return real_vfs(v)->xDelete(real_vfs(v), name, sync_dir);
}

static int g_access(sqlite3_vfs *v, const char *name, int flags, int *out)
{
    return real_vfs(v)->xAccess(real_vfs(v), name, flags, out);
}

static int g_full_pathname(sqlite3_vfs *v, const char *name, int n, char *out)
{
    return real_vfs(v)->xFullPathname(real_vfs(v), name, n, out);
}

static void *g_dlopen(sqlite3_vfs *v, const char *name)
{
    return real_vfs(v)->xDlOpen(real_vfs(v), name);
}

static void g_dlerror(sqlite3_vfs *v, int n, char *out)
{
    real_vfs(v)->xDlError(real_vfs(v), n, out);
}

static void (*g_dlsym(sqlite3_vfs *v, void *h, const char *sym))(void)
{
    return real_vfs(v)->xDlSym(real_vfs(v), h, sym);
}

static void g_dlclose(sqlite3_vfs *v, void *h)
{
    real_vfs(v)->xDlClose(real_vfs(v), h);
}

static int g_randomness(sqlite3_vfs *v, int n, char *out)
{
    return real_vfs(v)->xRandomness(real_vfs(v), n, out);
}

static int g_sleep(sqlite3_vfs *v, int us)
{
    return real_vfs(v)->xSleep(real_vfs(v), us);
}

static int g_current_time(sqlite3_vfs *v, double *out)
{
    return real_vfs(v)->xCurrentTime(real_vfs(v), out);
}

static int g_last_error(sqlite3_vfs *v, int n, char *out)
{
    return real_vfs(v)->xGetLastError(real_vfs(v), n, out);
}

static int g_current_time_int64(sqlite3_vfs *v, sqlite3_int64 *out)
{
    return real_vfs(v)->xCurrentTimeInt64(real_vfs(v), out);
}

static int g_set_system_call(sqlite3_vfs *v, const char *name, sqlite3_syscall_ptr p)
{
    return real_vfs(v)->xSetSystemCall(real_vfs(v), name, p);
}

static sqlite3_syscall_ptr g_get_system_call(sqlite3_vfs *v, const char *name)
{
    return real_vfs(v)->xGetSystemCall(real_vfs(v), name);
}

static const char *g_next_system_call(sqlite3_vfs *v, const char *name)
{
    return real_vfs(v)->xNextSystemCall(real_vfs(v), name);
}

const char *xd_sqlite_vfs_register(void)
{
    sqlite3_vfs *real = sqlite3_vfs_find(NULL);
    if (!real || real->iVersion < 3)
        return NULL;
    gvfs = (sqlite3_vfs){
        .iVersion = 3,
        .szOsFile = (int)GFILE_SIZE + real->szOsFile,
        .mxPathname = real->mxPathname,
        .zName = "crossdock-gather",
        .pAppData = real,
        .xOpen = g_open,
        .xDelete = g_delete,
        .xAccess = g_access,
        .xFullPathname = g_full_pathname,
        .xDlOpen = g_dlopen,
        .xDlError = g_dlerror,
        .xDlSym = g_dlsym,
        .xDlClose = g_dlclose,
        .xRandomness = g_randomness,
        .xSleep = g_sleep,
        .xCurrentTime = g_current_time,
        .xGetLastError = g_last_error,
        .xCurrentTimeInt64 = g_current_time_int64,
        .xSetSystemCall = g_set_system_call,
        .xGetSystemCall = g_get_system_call,
        .xNextSystemCall = g_next_system_call,
    };
    if (sqlite3_vfs_register(&gvfs, 0) != SQLITE_OK)
        return NULL;
    return gvfs.zName;
}

int xd_sqlite_vfs_gather(sqlite3 *db, int on)
{
    sqlite3_file *f = NULL;
    if (sqlite3_file_control(db, "main", SQLITE_FCNTL_JOURNAL_POINTER, &f) != SQLITE_OK || !f ||
        f->pMethods != &gmethods)
        return SQLITE_OK;
    struct gfile *g = gf(f);
    if (!g->wal || g->gather == on)
        return SQLITE_OK;
    g->gather = on;
    return on ? SQLITE_OK : flush(g);
}

int xd_sqlite_vfs_keep_cached(sqlite3 *db, sqlite3_int64 keep)
{
    sqlite3_file *f = NULL;
    if (sqlite3_file_control(db, "main", SQLITE_FCNTL_FILE_POINTER, &f) != SQLITE_OK || !f ||
        f->pMethods != &gmethods || gf(f)->fd < 0)
        return 0;
    gf(f)->keep = keep > 0 ? keep : 0;
    return 1;
}
