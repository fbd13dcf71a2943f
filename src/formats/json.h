/*
 * JSON input: the one place request bodies and files are parsed. cJSON builds
 * the tree (the fastest of the parsers measured here); before it, one pass
 * over the bytes checks syntax, UTF-8, nesting depth and string length so that cJSON
 * only ever sees input within our limits, and a syntax error is reported with
 * its byte offset. Numbers that overflow a double are rejected here too.
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
 * "empty body" at offset 0. XD_ENOMEM (err says "out of memory") when cJSON
 * cannot allocate the tree. Numbers are read and written in the C locale
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

#endif
