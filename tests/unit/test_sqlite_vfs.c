/*
 * The writer's VFS (src/store/sqlite_vfs.c) on real SQLite files: what a
 * gathered commit writes is exactly what SQLite wrote, for a reader on
 * another connection, for the writer reading back frames it spilled before
 * its commit, after a rollback, after a checkpoint and after a reopen; and a
 * write that fails when the held bytes go out fails the COMMIT, with nothing
 * of it visible and the next commit fine. Drop-behind: after checkpoints,
 * the pages well behind the file's end have left the OS page cache (mincore),
 * and everything still reads back.
 *
 * Rows are "n, b" with b a function of n (printf of n, padded), so every
 * check is one query: no row whose b is not its own.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "store/sqlite_int.h"

#include <fcntl.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

#define ROW_BYTES 1000

struct fx {
    char dir[64];
    char path[96];
    sqlite3 *w; /* the writer, on the gathering VFS */
    sqlite3 *r; /* a reader, on the default VFS */
};

static const char *vfs_name;

static void exec_ok(sqlite3 *db, const char *sql)
{
    char *msg = NULL;
    int rc = sqlite3_exec(db, sql, NULL, NULL, &msg);
    if (rc != SQLITE_OK)
        fail_msg("%s: %s", sql, msg ? msg : sqlite3_errstr(rc));
}

static sqlite3_int64 one_int(sqlite3 *db, const char *sql)
{
    sqlite3_stmt *st = NULL;
    assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    sqlite3_int64 v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return v;
}

static void assert_integrity(sqlite3 *db)
{
    sqlite3_stmt *st = NULL;
    assert_int_equal(sqlite3_prepare_v2(db, "PRAGMA integrity_check", -1, &st, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    assert_string_equal((const char *)sqlite3_column_text(st, 0), "ok");
    sqlite3_finalize(st);
}

/* Rows [from, to) in one statement (inside whatever transaction is open). */
static int insert_rows(sqlite3 *db, int from, int to)
{
    char sql[256];
    snprintf(sql, sizeof sql,
             "WITH RECURSIVE k(n) AS (SELECT %d UNION ALL SELECT n + 1 FROM k WHERE n + 1 < %d)"
             " INSERT INTO t(n, b) SELECT n, printf('%%0%dd', n) FROM k",
             from, to, ROW_BYTES);
    return sqlite3_exec(db, sql, NULL, NULL, NULL);
}

/* Rows [from, to) in a transaction of their own. */
static void commit_rows(sqlite3 *db, int from, int to)
{
    exec_ok(db, "BEGIN");
    assert_int_equal(insert_rows(db, from, to), SQLITE_OK);
    exec_ok(db, "COMMIT");
}

/* Rows seen by db, after checking that each one's b is its own. */
static sqlite3_int64 good_rows(sqlite3 *db)
{
    char sql[160];
    snprintf(sql, sizeof sql, "SELECT count(*) FROM t WHERE b != printf('%%0%dd', n)", ROW_BYTES);
    assert_int_equal(one_int(db, sql), 0);
    return one_int(db, "SELECT count(*) FROM t");
}

static int setup_in(void **state, const char *base)
{
    struct fx *f = calloc(1, sizeof *f);
    assert_non_null(f);
    snprintf(f->dir, sizeof f->dir, "%s/xd-vfs-XXXXXX", base);
    assert_non_null(mkdtemp(f->dir));
    snprintf(f->path, sizeof f->path, "%s/t.db", f->dir);
    assert_int_equal(
        sqlite3_open_v2(f->path, &f->w, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, vfs_name),
        SQLITE_OK);
    exec_ok(f->w, "PRAGMA page_size=8192; PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;"
                  " CREATE TABLE t (n INTEGER PRIMARY KEY, b TEXT NOT NULL);"
                  " CREATE INDEX t_b ON t(b);");
    assert_int_equal(sqlite3_open_v2(f->path, &f->r, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    assert_int_equal(xd_sqlite_vfs_gather(f->w, 1), SQLITE_OK);
    *state = f;
    return 0;
}

static int setup(void **state)
{
    return setup_in(state, "/tmp");
}

/* The page cache of a real disk (tmpfs keeps its pages whatever is advised): ctest's folder. */
static int setup_disk(void **state)
{
    return setup_in(state, ".");
}

static int teardown(void **state)
{
    struct fx *f = *state;
    sqlite3_close(f->r);
    sqlite3_close(f->w);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", f->dir);
    if (system(cmd) != 0)
        return -1;
    free(f);
    return 0;
}

static void test_vfs_name(void **state)
{
    struct fx *f = *state;
    char *name = NULL;
    assert_int_equal(sqlite3_file_control(f->w, "main", SQLITE_FCNTL_VFSNAME, &name), SQLITE_OK);
    assert_non_null(name);
    assert_non_null(strstr(name, vfs_name));
    sqlite3_free(name);
}

/* Commits far over one held piece (124 KiB), and small ones, seen by a reader. */
static void test_commits_seen_by_reader(void **state)
{
    struct fx *f = *state;
    commit_rows(f->w, 0, 600); /* ~600 KiB, with the index */
    assert_int_equal(good_rows(f->r), 600);
    for (int i = 0; i < 50; i++) {
        commit_rows(f->w, 600 + 3 * i, 603 + 3 * i);
    }
    assert_int_equal(good_rows(f->r), 750);
    assert_integrity(f->r);
}

/* A transaction bigger than the page cache spills frames it then reads back. */
static void test_spilled_frames_read_back(void **state)
{
    struct fx *f = *state;
    exec_ok(f->w, "PRAGMA cache_size=8");
    exec_ok(f->w, "BEGIN");
    assert_int_equal(insert_rows(f->w, 0, 2000), SQLITE_OK);
    assert_int_equal(good_rows(f->w), 2000); /* reads the spilled pages */
    assert_int_equal(good_rows(f->r), 0);
    exec_ok(f->w, "COMMIT");
    assert_int_equal(good_rows(f->r), 2000);
    assert_integrity(f->w);
    assert_integrity(f->r);
}

/* Spilled then rolled back: nothing of it anywhere, and the next commit is whole. */
static void test_rollback_then_commit(void **state)
{
    struct fx *f = *state;
    exec_ok(f->w, "PRAGMA cache_size=8");
    exec_ok(f->w, "BEGIN");
    assert_int_equal(insert_rows(f->w, 0, 1500), SQLITE_OK);
    exec_ok(f->w, "ROLLBACK");
    assert_int_equal(good_rows(f->w), 0);
    commit_rows(f->w, 5000, 5100);
    assert_int_equal(good_rows(f->r), 100);
    assert_integrity(f->r);
}

/* Commits that do not sync (gathering off) are written as they come. */
static void test_unsynced_commits(void **state)
{
    struct fx *f = *state;
    exec_ok(f->w, "PRAGMA synchronous=NORMAL");
    assert_int_equal(xd_sqlite_vfs_gather(f->w, 0), SQLITE_OK);
    for (int i = 0; i < 20; i++) {
        commit_rows(f->w, 10 * i, 10 * i + 10);
        assert_int_equal(good_rows(f->r), 10 * i + 10);
    }
    exec_ok(f->w, "PRAGMA synchronous=FULL");
    assert_int_equal(xd_sqlite_vfs_gather(f->w, 1), SQLITE_OK);
    commit_rows(f->w, 200, 400);
    assert_int_equal(good_rows(f->r), 400);
}

/* Checkpointed, truncated, closed and opened again (on the default VFS). */
static void test_checkpoint_and_reopen(void **state)
{
    struct fx *f = *state;
    for (int i = 0; i < 10; i++) {
        commit_rows(f->w, 100 * i, 100 * i + 100);
        if (i == 4)
            exec_ok(f->w, "PRAGMA wal_checkpoint(TRUNCATE)");
    }
    assert_int_equal(good_rows(f->r), 1000);
    sqlite3_close(f->r);
    sqlite3_close(f->w);
    f->r = NULL;
    assert_int_equal(sqlite3_open_v2(f->path, &f->w, SQLITE_OPEN_READWRITE, NULL), SQLITE_OK);
    assert_int_equal(good_rows(f->w), 1000);
    assert_integrity(f->w);
}

/*
 * The held bytes cannot be written (the file size limit stands in for a full
 * disk): COMMIT fails, nothing of it is seen, and once the limit is lifted
 * the next commit is whole.
 */
static void test_failed_write_fails_commit(void **state)
{
    struct fx *f = *state;
    commit_rows(f->w, 0, 100);
    exec_ok(f->w, "PRAGMA wal_checkpoint(TRUNCATE)");
    struct stat sb;
    assert_int_equal(stat(f->path, &sb), 0);
    off_t db_size = sb.st_size;

    struct rlimit old;
    assert_int_equal(getrlimit(RLIMIT_FSIZE, &old), 0);
    void (*old_handler)(int) = signal(SIGXFSZ, SIG_IGN);
    /* Room for a few frames of the WAL, not for the commit below. */
    struct rlimit lim = {.rlim_cur = (rlim_t)(db_size > 65536 ? db_size : 65536),
                         .rlim_max = old.rlim_max};
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &lim), 0);
    int rc = sqlite3_exec(f->w, "BEGIN", NULL, NULL, NULL);
    if (rc == SQLITE_OK)
        rc = insert_rows(f->w, 100, 400);
    if (rc == SQLITE_OK)
        rc = sqlite3_exec(f->w, "COMMIT", NULL, NULL, NULL);
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &old), 0);
    signal(SIGXFSZ, old_handler);
    assert_int_not_equal(rc, SQLITE_OK);
    if (!sqlite3_get_autocommit(f->w))
        sqlite3_exec(f->w, "ROLLBACK", NULL, NULL, NULL);

    assert_int_equal(good_rows(f->r), 100);
    commit_rows(f->w, 100, 400);
    assert_int_equal(good_rows(f->r), 400);
    assert_integrity(f->r);
}

/* The fraction of [from, to) of path's bytes in the OS page cache. */
static double resident(const char *path, off_t from, off_t to)
{
    int fd = open(path, O_RDONLY);
    assert_true(fd >= 0);
    long page = sysconf(_SC_PAGESIZE);
    from = from / page * page;
    size_t len = (size_t)(to - from);
    void *m = mmap(NULL, len, PROT_READ, MAP_SHARED, fd, from);
    assert_true(m != MAP_FAILED);
    size_t n = (len + (size_t)page - 1) / (size_t)page, in = 0;
    unsigned char *vec = malloc(n);
    assert_non_null(vec);
    assert_int_equal(mincore(m, len, vec), 0);
    for (size_t i = 0; i < n; i++)
        in += vec[i] & 1;
    free(vec);
    munmap(m, len);
    close(fd);
    return (double)in / (double)n;
}

/* keep: the newest 512 KiB stay cached, the rest leaves the cache after the checkpoints. */
static void check_drop_behind(struct fx *f, sqlite3_int64 keep)
{
    struct statfs fs;
    assert_int_equal(statfs(f->dir, &fs), 0);
    if (fs.f_type == 0x01021994 /* TMPFS_MAGIC */)
        skip();
    assert_int_equal(xd_sqlite_vfs_keep_cached(f->w, keep), 1);
    for (int i = 0; i < 8; i++) {
        commit_rows(f->w, 1000 * i, 1000 * i + 1000);
        exec_ok(f->w, "PRAGMA wal_checkpoint(TRUNCATE)");
    }
    struct stat sb;
    assert_int_equal(stat(f->path, &sb), 0);
    assert_true(sb.st_size > 8 * 1024 * 1024);
    off_t behind = sb.st_size - 512 * 1024 - 1024 * 1024; /* well behind the kept part */
    double r = resident(f->path, 0, behind);
    if (keep > 0)
        assert_true(r < 0.5);
    else
        assert_true(r > 0.5);
    assert_true(resident(f->path, sb.st_size - 256 * 1024, sb.st_size) > 0.5);
    assert_int_equal(good_rows(f->r), 8000);
    assert_integrity(f->r);
}

static void test_drop_behind(void **state)
{
    check_drop_behind(*state, 512 * 1024);
}

/* The same writes with drop-behind off: the pages stay (the test above measures something). */
static void test_no_drop_behind(void **state)
{
    check_drop_behind(*state, 0);
}

int main(void)
{
    vfs_name = xd_sqlite_vfs_register();
    if (!vfs_name) {
        fprintf(stderr, "the default VFS cannot be wrapped\n");
        return 1;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_vfs_name, setup, teardown),
        cmocka_unit_test_setup_teardown(test_commits_seen_by_reader, setup, teardown),
        cmocka_unit_test_setup_teardown(test_spilled_frames_read_back, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rollback_then_commit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unsynced_commits, setup, teardown),
        cmocka_unit_test_setup_teardown(test_checkpoint_and_reopen, setup, teardown),
        cmocka_unit_test_setup_teardown(test_failed_write_fails_commit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_drop_behind, setup_disk, teardown),
        cmocka_unit_test_setup_teardown(test_no_drop_behind, setup_disk, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
