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

void xd_log(enum xd_log_level lvl, const char *fmt, ...)
{
    if (lvl < min_level)
        return;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    char when[96];
    snprintf(when, sizeof when, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ", tm.tm_year + 1900,
             tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000000);

    char stackbuf[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(stackbuf, sizeof stackbuf, fmt, ap);
    va_end(ap);
    xd_redact_str(stackbuf); /* whatever a message quotes, no secret leaves in a log line */

    struct xd_buf line;
    xd_buf_init(&line);
    if (json_lines) {
        xd_buf_printf(&line, "{\"ts\":\"%s\",\"level\":\"%s\",\"msg\":", when, level_names[lvl]);
        xd_buf_json_str(&line, stackbuf);
        xd_buf_puts(&line, "}\n");
    } else {
        xd_buf_printf(&line, "%s %-5s %s\n", when, level_names[lvl], stackbuf);
    }
    if (!line.oom) {
        ssize_t w = write(STDERR_FILENO, line.data, line.len);
        (void)w;
    }
    xd_buf_dispose(&line);
}
