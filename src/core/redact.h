/*
 * Secret redaction: a process-wide list of the secret values the hub holds
 * (API key secrets, target bearer tokens), and a scrubber that replaces any
 * of them found in a text with "***". Applied where text from elsewhere can
 * carry a secret out: every log line (core/log.c), a target's answer kept as
 * a delivery's error (deliver/http.c), audit entries (audit/audit.c).
 *
 * Values are registered as they are read (config load, target setup) and
 * never removed: a rotated-out key is still a secret. Short-lived values
 * that are replaced often (OAuth2 access tokens) go to a ring of the last
 * XD_REDACT_RING instead, so that refreshing never fills the list. Values
 * shorter than XD_REDACT_MIN bytes are not registered (they would match
 * ordinary text). Registering is serialised; scrubbing takes no lock and
 * may run on any thread at any time.
 */
#ifndef XD_REDACT_H
#define XD_REDACT_H

#include <stddef.h>

#define XD_REDACT_MIN  4   /* shortest value registered */
#define XD_REDACT_MAX  256 /* most long-lived values; more are dropped with a warning */
#define XD_REDACT_RING 32  /* short-lived values kept (the most recent) */
#define XD_REDACT_MARK "***"

/* Registers a copy of secret for good (NULL, short or already known: nothing). */
void xd_redact_add(const char *secret);
/* Registers a short-lived secret (a token refreshed hourly): the last XD_REDACT_RING are kept. */
void xd_redact_add_rotating(const char *secret);
/*
 * Replaces every registered value in s[0, *len) with XD_REDACT_MARK, in
 * place (the text only shrinks: every value is longer than the mark), and
 * updates *len (nothing is written at s[*len]). Returns how many were
 * replaced.
 */
size_t xd_redact(char *s, size_t *len);
/*
 * Registers value when the header name says it carries a credential
 * (Authorization, Cookie, or a name containing key, token, secret, auth,
 * signature or password, case-insensitively).
 */
void xd_redact_add_header(const char *name, const char *value);
/* The same for a NUL-terminated string. */
size_t xd_redact_str(char *s);

#endif
