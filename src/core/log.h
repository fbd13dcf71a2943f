/*
 * Logging: one line per message on stderr, as text (for a terminal) or as
 * JSON lines (for a log shipper): {"ts", "level", "msg"} and, on a line about
 * an event, "event_id" and "trace_id". Thread-safe: each line is written with
 * one write(2). Messages never contain secrets: callers log key ids, not
 * keys, and a "Bearer <token>" that slips into a message is written as
 * "Bearer [redacted]".
 */
#ifndef XD_LOG_H
#define XD_LOG_H

enum xd_log_level { XD_LOG_DEBUG, XD_LOG_INFO, XD_LOG_WARN, XD_LOG_ERROR };

void xd_log_setup(enum xd_log_level min, int json);
/* Parses "debug"/"info"/"warn"/"error"; returns -1 when unknown. */
int xd_log_level_parse(const char *s);
/*
 * log.format: "json" -> 1, "text" -> 0, "auto" (or NULL) -> 0 when stderr is
 * a terminal, else 1.
 */
int xd_log_format_is_json(const char *format);
/* 1 when a line of level lvl would be written. */
int xd_log_enabled(enum xd_log_level lvl);
void xd_log(enum xd_log_level lvl, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* A line about one event: its id and trace id (hex, 32 digits; either may be NULL) ride along. */
void xd_log_ev(enum xd_log_level lvl, const char *event_id, const char *trace_id, const char *fmt,
               ...) __attribute__((format(printf, 4, 5)));

/*
 * A passing problem of a long-lived worker (a source retrying a broker or a
 * folder), warned about once until a different one, or its end, replaces it.
 * The line reads "KIND NAME: message" ("inbox returns: ...").
 */
struct xd_log_once {
    char last[256];
};
void xd_warn_once(struct xd_log_once *o, const char *kind, const char *name, const char *fmt,
                  ...) __attribute__((format(printf, 4, 5)));
/* Forgets the problem; 1 when there was one (the caller may say it works again). */
int xd_warn_once_clear(struct xd_log_once *o);

#define xd_debug(...) xd_log(XD_LOG_DEBUG, __VA_ARGS__)
#define xd_info(...)  xd_log(XD_LOG_INFO, __VA_ARGS__)
#define xd_warn(...)  xd_log(XD_LOG_WARN, __VA_ARGS__)
#define xd_error(...) xd_log(XD_LOG_ERROR, __VA_ARGS__)

#endif
