/*
 * Transforms: the jq programs of the config (route `filter`s, step `map`s,
 * charge rules' `when`) compiled once and run on events. This area is the
 * only code that includes jq.h / jv.h; nothing jq-specific crosses this
 * header, so the rest of the hub sees cJSON in and JSON text (or cJSON) out.
 *
 * Every program is compiled with a prelude (docs/mapping.md) that binds
 * `$xref` to the config's cross-reference tables, {TABLE: {KEY: "value"}},
 * defines `xref(TABLE; KEY)`, and hides what a mapping must not reach (the
 * environment, which holds the hub's secrets; modules; stdin). A lookup
 * with `xref()` that finds nothing fails with exactly
 *
 *     xref TABLE: no entry for KEY
 *
 * which xd_jq_xref_miss() recognises, so the router can hold the event for
 * master data instead of dead-lettering it as a bad mapping. Plain indexing,
 * `$xref.plant[.data.warehouse]`, gives null for a missing key (test it with
 * `//`).
 *
 * Threads: jq 1.6 values are reference counted without atomics and a
 * jq_state is not thread-safe, so a struct xd_jq is used by one thread at a
 * time and shares nothing with any other; each worker compiles its own
 * (compiling takes milliseconds, running microseconds).
 *
 * Ownership: xd_jq_compile() returns a heap object freed by xd_jq_destroy().
 * Inputs are borrowed and never modified. Output and error text is appended
 * to the caller's buffers; err gets one line with no trailing newline.
 */
#ifndef XD_TRANSFORM_H
#define XD_TRANSFORM_H

#include <cjson/cJSON.h>
#include <stddef.h>

struct xd_buf;
struct xd_config;
struct xd_jq;

/*
 * Compiles program (with the prelude) against cfg's xref tables (cfg may be
 * NULL: `$xref` is then {}). Returns 0 and *out, or XD_EPARSE with jq's
 * messages in err, made readable: "syntax error, unexpected ...",
 * "foo/1 is not defined", with "(program line N)" when the program has more
 * than one line. An empty program is an error. XD_ENOMEM, XD_EINVAL (NULL
 * program).
 */
int xd_jq_compile(const char *program, const struct xd_config *cfg, struct xd_jq **out,
                  struct xd_buf *err);
void xd_jq_destroy(struct xd_jq *p); /* NULL is fine */

/*
 * Runs p on input and appends its first output to out as compact JSON
 * (as xd_json_write() prints: same number and string forms); later outputs
 * are not computed. Returns 0, or XD_EINVAL with err holding jq's runtime
 * message ("Cannot index number with \"x\"", "xref plant: no entry for DC9",
 * or "error (not a string): {...}" for error(OBJECT)); XD_ENOTFOUND with
 * "mapping produced no output" when the program yields nothing (`empty`,
 * `select(false)`; jq 1.6 treats error(null) the same way); XD_ELIMIT when
 * the output nests deeper than 1000; XD_ENOMEM. On error out keeps what it
 * had. Non-finite numbers print as null.
 */
int xd_jq_map(struct xd_jq *p, const cJSON *input, struct xd_buf *out, struct xd_buf *err);

/* The same from JSON text (parsed by xd_json_parse, default limits): for tests and tools. */
int xd_jq_map_text(struct xd_jq *p, const char *json, size_t len, struct xd_buf *out,
                   struct xd_buf *err);

/*
 * The same, the first output as a new cJSON tree (*out, caller deletes), for
 * targets that format it further (csv, x12). A string holding U+0000 is cut
 * there (cJSON strings are C strings).
 */
int xd_jq_map_json(struct xd_jq *p, const cJSON *input, cJSON **out, struct xd_buf *err);

/*
 * For filters and `when`: *truthy is 1 when the first output is neither
 * false nor null, 0 when it is, or when there is no output. Returns 0, or
 * XD_EINVAL on a runtime error (message in err), XD_ENOMEM.
 */
int xd_jq_test(struct xd_jq *p, const cJSON *input, int *truthy, struct xd_buf *err);

/*
 * An event converted once for several programs: converting the cJSON tree
 * costs about as much as running a simple program, so a router that runs a
 * filter and then maps on the same event converts it once. p (may be NULL)
 * lends its cache of recurring strings to the conversion; the input can
 * then be run by any program of the same thread. It belongs to that
 * thread, is immutable, and may be destroyed before or after the programs.
 * Returns 0, XD_EINVAL or XD_ENOMEM.
 */
struct xd_jq_input;
int xd_jq_input_create(struct xd_jq *p, const cJSON *event, struct xd_jq_input **out);
void xd_jq_input_destroy(struct xd_jq_input *in); /* NULL is fine */
int xd_jq_map_input(struct xd_jq *p, const struct xd_jq_input *in, struct xd_buf *out,
                    struct xd_buf *err);
int xd_jq_test_input(struct xd_jq *p, const struct xd_jq_input *in, int *truthy,
                     struct xd_buf *err);

/*
 * Recognises the message of a failed xref(): "xref TABLE: no entry for KEY".
 * Returns 1 and points *table and *key into msg (lengths in *tlen, *klen; any
 * out-pointer may be NULL), or 0.
 */
int xd_jq_xref_miss(const char *msg, const char **table, size_t *tlen, const char **key,
                    size_t *klen);

/*
 * `crossdock check`: compiles every jq program in cfg (routes' filter and
 * steps' map, rate cards' charge `when`) and appends one line per program
 * that does not compile:
 *
 *     FILE:LINE:COL: routes[NAME].steps[I].map: MESSAGE
 *     FILE:LINE:COL: routes[NAME].filter: MESSAGE
 *     FILE:LINE:COL: rate_cards[I].charges[J].when: MESSAGE
 *
 * (FILE is cfg->path, LINE:COL where the program starts in it). Returns the
 * number of programs that failed (0: all good) or XD_ENOMEM.
 */
int xd_transform_check(const struct xd_config *cfg, struct xd_buf *errs);

/*
 * A per-thread cache of compiled programs keyed by their text's address (the
 * text must outlive the cache: rate cards' `when` strings, owned by the
 * compiled rating). Compiles on first use. xd_jq_cache_test() is
 * xd_jq_test() on the cached program; compile errors come back as XD_EPARSE.
 */
struct xd_jq_cache;
struct xd_jq_cache *xd_jq_cache_create(const struct xd_config *cfg);
void xd_jq_cache_destroy(struct xd_jq_cache *c);
int xd_jq_cache_test(struct xd_jq_cache *c, const char *program, const cJSON *input, int *truthy,
                     struct xd_buf *err);
/* The same in the shape of rating's conditions (rating/rate.h struct xd_rate_conds):
 * ctx is the cache; errors are appended to why as "when: MESSAGE". */
int xd_jq_cache_cond(void *ctx, const char *program, const cJSON *input, int *truthy,
                     struct xd_buf *why);

#endif
