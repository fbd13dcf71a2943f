/*
 * One list of errors for the whole hub. Functions return 0 (or a count) on
 * success and a negative xd_err on failure; xd_strerror() names it. The
 * X-macro keeps the enum and the messages in one place (as libuv's
 * UV_ERRNO_MAP does). Errors that reach a user carry their position in a
 * separate message buffer (a JSON path, FILE:LINE:COL, a CSV row); the code
 * here only classifies.
 */
#ifndef XD_ERR_H
#define XD_ERR_H

#define XD_ERRNO_MAP(X)                                                        \
    X(NOMEM, "out of memory")                                                  \
    X(INVAL, "invalid argument")                                               \
    X(IO, "input/output error")                                                \
    X(PARSE, "malformed input")                                                \
    X(SCHEMA, "input does not match the schema")                               \
    X(CONFIG, "invalid configuration")                                         \
    X(NOTFOUND, "not found")                                                   \
    X(CONFLICT, "conflicts with what is stored")                               \
    X(FULL, "store is full")                                                   \
    X(READONLY, "store is read-only")                                          \
    X(UNAVAIL, "store unavailable")                                            \
    X(TOOBIG, "too large")                                                     \
    X(LIMIT, "over a limit")                                                   \
    X(AUTH, "not authenticated")                                               \
    X(FORBIDDEN, "not allowed")                                                \
    X(STOPPING, "shutting down")                                               \
    X(NOTSUP, "not supported by this store driver")                            \
    X(INTERNAL, "internal error")

enum xd_err {
    XD_OK = 0,
#define XD_ERR_ENUM(name, msg) XD_E##name,
    XD_E__FIRST = -1000,
    XD_ERRNO_MAP(XD_ERR_ENUM)
#undef XD_ERR_ENUM
};

/* A static string naming err (a negative xd_err); never NULL. */
const char *xd_strerror(int err);
/* The short name ("XD_ENOMEM") of err. */
const char *xd_errname(int err);

#endif
