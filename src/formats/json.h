/*
 * JSON input: the one place request bodies and files are parsed. cJSON builds
 * the tree (the fastest of the parsers measured here); before it, one pass
 * over the bytes checks UTF-8, nesting depth and string length so that cJSON
 * only ever sees input within our limits, and a syntax error is reported with
 * its byte offset. Numbers that overflow a double are rejected here too.
 *
 * Ownership: on success *out is a cJSON tree the caller frees with
 * cJSON_Delete().
 */
#ifndef XD_JSON_H
#define XD_JSON_H

#include <cjson/cJSON.h>
#include <stddef.h>

struct xd_json_limits {
    unsigned max_depth; /* deepest nesting of arrays/objects; 0 = 64 */
    size_t max_string;  /* longest string or key in bytes; 0 = 65536 */
};

struct xd_json_error {
    size_t offset;     /* byte offset of the problem in the input */
    char message[160]; /* "invalid UTF-8", "nesting deeper than 64", ... */
};

/* Returns 0, or XD_EPARSE with err filled (err may be NULL). len may be 0. */
int xd_json_parse(const char *buf, size_t len, const struct xd_json_limits *lim, cJSON **out,
                  struct xd_json_error *err);

#endif
