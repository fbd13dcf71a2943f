/*
 * Logging: one line per message on stderr, as text (for a terminal) or as
 * JSON lines (for a log shipper). Thread-safe: each line is written with one
 * write(2). Messages never contain secrets: callers log key ids, not keys.
 */
#ifndef XD_LOG_H
#define XD_LOG_H

enum xd_log_level { XD_LOG_DEBUG, XD_LOG_INFO, XD_LOG_WARN, XD_LOG_ERROR };

void xd_log_setup(enum xd_log_level min, int json);
/* Parses "debug"/"info"/"warn"/"error"; returns -1 when unknown. */
int xd_log_level_parse(const char *s);
void xd_log(enum xd_log_level lvl, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define xd_debug(...) xd_log(XD_LOG_DEBUG, __VA_ARGS__)
#define xd_info(...)  xd_log(XD_LOG_INFO, __VA_ARGS__)
#define xd_warn(...)  xd_log(XD_LOG_WARN, __VA_ARGS__)
#define xd_error(...) xd_log(XD_LOG_ERROR, __VA_ARGS__)

#endif
