/* Line-oriented logging to stderr (see log.h). */
#include "core/log.h"
#include "core/buf.h"
#include "core/redact.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

static enum xd_log_level min_level = XD_LOG_INFO;
static int json_lines;

static const char *const level_names[] = {"debug", "info", "warn", "error"};

void xd_log_setup(enum xd_log_level min, int json)
{
    min_level = min;
    json_lines = json;
}

int xd_log_level_parse(const char *s)
{
    for (int i = 0; i < 4; i++)
        if (strcasecmp(s, level_names[i]) == 0)
            return i;
    return -1;
}

int xd_log_format_is_json(const char *format)
{
    if (format && strcmp(format, "json") == 0)
        return 1;
    if (format && strcmp(format, "text") == 0)
        return 0;
    return !isatty(STDERR_FILENO);
}

int xd_log_enabled(enum xd_log_level lvl)
{
    return lvl >= min_level;
}

/* A bearer token that found its way into a message is not written out. */
static void redact(char *msg)
{
    for (char *p = msg; (p = strcasestr(p, "bearer ")) != NULL;) {
        p += 7;
        size_t n = strcspn(p, " \t\r\n\",;'");
        if (n == 0)
            continue;
        static const char mark[] = "[redacted]";
        size_t m = sizeof mark - 1;
        if (n >= m) {
            memcpy(p, mark, m);
            memmove(p + m, p + n, strlen(p + n) + 1);
        } else {
            memset(p, '*', n);
        }
        p += n < m ? n : m;
    }
}

static void vlog(enum xd_log_level lvl, const char *event_id, const char *trace_id, const char *fmt,
                 va_list ap)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    char when[96];
    snprintf(when, sizeof when, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ", tm.tm_year + 1900,
             tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000000);

    char msg[1024];
    vsnprintf(msg, sizeof msg, fmt, ap);
    redact(msg);
    xd_redact_str(msg); /* whatever a message quotes, no secret leaves in a log line */

    struct xd_buf line;
    xd_buf_init(&line);
    if (json_lines) {
        xd_buf_printf(&line, "{\"ts\":\"%s\",\"level\":\"%s\",\"msg\":", when, level_names[lvl]);
        xd_buf_json_str(&line, msg);
        if (event_id) {
            xd_buf_puts(&line, ",\"event_id\":");
            xd_buf_json_str(&line, event_id);
        }
        if (trace_id) {
            xd_buf_puts(&line, ",\"trace_id\":");
            xd_buf_json_str(&line, trace_id);
        }
        xd_buf_puts(&line, "}\n");
    } else {
        xd_buf_printf(&line, "%s %-5s %s", when, level_names[lvl], msg);
        if (event_id)
            xd_buf_printf(&line, " event_id=%s", event_id);
        if (trace_id)
            xd_buf_printf(&line, " trace_id=%s", trace_id);
        xd_buf_putc(&line, '\n');
    }
    if (!line.oom) {
        ssize_t w = write(STDERR_FILENO, line.data, line.len);
        (void)w;
    }
    xd_buf_dispose(&line);
}

void xd_log(enum xd_log_level lvl, const char *fmt, ...)
{
    if (lvl < min_level)
        return;
    va_list ap;
    va_start(ap, fmt);
    vlog(lvl, NULL, NULL, fmt, ap);
    va_end(ap);
}

void xd_log_ev(enum xd_log_level lvl, const char *event_id, const char *trace_id, const char *fmt,
               ...)
{
    if (lvl < min_level)
        return;
    va_list ap;
    va_start(ap, fmt);
    vlog(lvl, event_id, trace_id, fmt, ap);
    va_end(ap);
}

void xd_warn_once(struct xd_log_once *o, const char *kind, const char *name, const char *fmt,
                  ...)
{
    char msg[sizeof o->last];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (strcmp(msg, o->last) == 0)
        return;
    snprintf(o->last, sizeof o->last, "%s", msg);
    xd_warn("%s %s: %s", kind, name, msg);
}

int xd_warn_once_clear(struct xd_log_once *o)
{
    int had = o->last[0] != '\0';
    o->last[0] = '\0';
    return had;
}
