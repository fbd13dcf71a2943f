/*
 * JSON input: the one place request bodies and files are parsed into cJSON
 * trees. One pass over the bytes checks syntax, UTF-8, nesting depth and
 * string length, so that a syntax error is reported with its byte offset,
 * rejects numbers that overflow a double, and builds the tree cJSON_Parse()
 * would build from the same bytes (cJSON's own parser cost more than the
 * whole pass).
 *
 * Ownership: on success *out is a cJSON tree the caller frees with
 * cJSON_Delete(). xd_json_write() appends to the caller's buffer.
 */
#ifndef XD_JSON_H
#define XD_JSON_H

#include <cjson/cJSON.h>
#include <stddef.h>

struct xd_buf;

struct xd_json_limits {
    unsigned max_depth; /* deepest nesting of arrays/objects; 0 = 64, at most 1000 (cJSON's) */
    size_t max_string;  /* longest string or key in bytes; 0 = 65536 */
};

struct xd_json_error {
    size_t offset;     /* byte offset of the problem in the input */
    char message[160]; /* "invalid UTF-8", "nesting deeper than 64", ... */
};

/*
 * Returns 0, or XD_EPARSE with err filled (err may be NULL). len may be 0;
 * buf need not be NUL-terminated. Strict RFC 8259: besides syntax, refuses
 * invalid UTF-8, raw control characters, unpaired \u surrogates and \u0000
 * in strings, numbers beyond a double or longer than 63 characters. A
 * leading UTF-8 byte order mark is skipped; whitespace-only input is an
 * "empty body" at offset 0. XD_ENOMEM (err says "out of memory") when the
 * tree cannot be allocated (through cJSON_malloc()). Numbers are read and written in the C locale
 * (the hub never calls setlocale()).
 */
int xd_json_parse(const char *buf, size_t len, const struct xd_json_limits *lim, cJSON **out,
                  struct xd_json_error *err);

/*
 * Appends item as compact JSON: no whitespace, key order kept, strings
 * escaped as xd_buf_json_str() does, integers up to 1e15 in plain digits and
 * other numbers in the shortest of %.15g/%.17g that reads back exactly. The
 * same tree always gives the same bytes. Returns 0 or XD_ENOMEM.
 */
int xd_json_write(struct xd_buf *b, const cJSON *item);
/*
 * One string literal (s, n bytes, quoted and escaped) or one number, exactly
 * as xd_json_write() prints them, for writers of other trees (transform/ for
 * jq values) that must print the hub's one JSON form. 0 or XD_ENOMEM.
 */
int xd_json_write_string(struct xd_buf *b, const char *s, size_t n);
int xd_json_write_number(struct xd_buf *b, double d);

/*
 * Arenas for cJSON trees. Parsing a request allocates a node per value and a
 * string per key and string value; with an arena those come out of a few
 * large blocks that are freed together, instead of one malloc()/free() each.
 *
 * xd_json_hooks_install() replaces cJSON's allocator once, at startup,
 * before any cJSON allocation, for the rest of the process (cJSON_InitHooks
 * must not be called after it). From then on every cJSON allocation carries
 * a small header saying where it came from, so cJSON_Delete() and
 * cJSON_free() are right for both kinds: a heap allocation is freed, an
 * arena allocation is left to its arena. Without the hooks installed (unit
 * tests, fuzzers), arenas are never used and everything is plain malloc().
 *
 * xd_json_arena_enter(a) makes this thread's cJSON allocations come from a
 * until xd_json_arena_enter(prev) with the value it returned. A tree (or
 * part of one) allocated in an arena must be deleted (or abandoned) before
 * xd_json_arena_dispose(); deleting it afterwards would read freed memory.
 * An arena is filled by one thread at a time; disposing it is allowed on
 * any thread. Each thread keeps the largest chunk (up to 1 MiB) of the last
 * arena it disposed for its next arena, so that a busy intake thread does
 * not get fresh pages from the kernel (and fault them in) for every request.
 */
struct xd_json_chunk {
    struct xd_json_chunk *next;
    size_t size; /* bytes of data that follow (and keeps them 16-byte aligned) */
};

struct xd_json_arena {
    struct xd_json_chunk *chunks; /* newest first */
    char *cur, *end;              /* free room in the newest chunk */
    size_t hint;                  /* size of the first chunk (clamped to 16 KiB..4 MiB) */
    size_t next_size;             /* size of the next chunk; 0 before the first */
};

void xd_json_hooks_install(void);
/*
 * Whether the hooks are installed: then a tree built entirely while an arena
 * was entered (parsed and changed only there) holds nothing but that arena's
 * memory, and disposing the arena frees it without a walk.
 */
int xd_json_hooks_active(void);
/* cJSON_Delete(item), faster when the hooks are installed. */
void xd_json_delete(cJSON *item);

/*
 * Splicing. An object or array parsed into an arena remembers the input
 * bytes it came from. xd_json_write_spliced() appends exactly what
 * xd_json_write() would, but copies those bytes for every container that
 * was written in the writer's own form (compact, no escapes, numbers as it
 * prints them) and has not been changed since. Whoever changes such a
 * container (adds, replaces or removes a member, or changes a value in it)
 * must first call xd_json_touch() on it and on every container above it.
 * Only while the input buffer still lives, on a tree all allocated by cJSON
 * (as parsed trees and cJSON_Create*() nodes are). Without the hooks
 * installed there are no spans and it is xd_json_write().
 */
int xd_json_write_spliced(struct xd_buf *b, const cJSON *item);
void xd_json_touch(cJSON *node);
void xd_json_arena_init(struct xd_json_arena *a, size_t hint);
void xd_json_arena_dispose(struct xd_json_arena *a);
struct xd_json_arena *xd_json_arena_enter(struct xd_json_arena *a);

#endif
