/*
 * Outcomes in one place: every delivery attempt ends OK, RETRY or FAIL, and
 * xd_outcome_classify() is the only function that decides which, from the
 * HTTP status and the transport error (as Fluent Bit's outputs answer
 * FLB_OK / FLB_RETRY / FLB_ERROR). Contract section 6: a 2xx is success;
 * 408, 425, 429, 5xx and network errors are retried; every other answer
 * (3xx, since redirects are not followed, and the other 4xx) fails for good
 * and goes to the dead-letter queue.
 *
 * Transport errors are named by enum xd_xport, independent of libcurl (only
 * http.c maps CURLcode onto it). One X-macro table gives, for each, its
 * short class name (for metrics labels and filters) and its outcome.
 * Everything here is pure and has no state.
 */
#ifndef XD_DELIVER_OUTCOME_H
#define XD_DELIVER_OUTCOME_H

enum xd_outcome {
    XD_OUT_OK,    /* delivered: done */
    XD_OUT_RETRY, /* not delivered this time: back off and try again */
    XD_OUT_FAIL,  /* refused for good: dead letter, open an exception */
};

/*
 * X(ENUM, class, outcome): what went wrong below HTTP. REQUEST is a request
 * that cannot work however often it is tried (malformed URL, scheme not
 * allowed): FAIL, and so is TLS_CERT: a certificate the hub does not trust
 * (unknown CA, expired, wrong host name, bad CA file) will not become
 * trusted by trying again; it needs a person (tls.ca_file, a new
 * certificate) and a replay. CANCELLED (the client was destroyed with the attempt in
 * flight) and NOMEM are local, and RETRY: the attempt may be made again.
 */
#define XD_XPORT_MAP(X)                                                                            \
    X(NONE, "ok", XD_OUT_OK)                /* no transport error: see the status */               \
    X(TIMEOUT, "timeout", XD_OUT_RETRY)     /* timeout_ms elapsed */                               \
    X(DNS, "dns", XD_OUT_RETRY)             /* host name not resolved */                           \
    X(CONNECT, "connect", XD_OUT_RETRY)     /* TCP connect failed (refused, unreachable) */        \
    X(TLS, "tls", XD_OUT_RETRY)             /* handshake failed (not the certificate) */           \
    X(TLS_CERT, "tls_cert", XD_OUT_FAIL)    /* the peer's certificate is not trusted: no retry */  \
    X(SEND, "send", XD_OUT_RETRY)           /* connection broke while sending */                   \
    X(RECV, "recv", XD_OUT_RETRY)           /* broke while receiving, or closed with no answer */  \
    X(PROTOCOL, "protocol", XD_OUT_RETRY)   /* not a valid HTTP answer */                          \
    X(REQUEST, "request", XD_OUT_FAIL)      /* the request itself is unusable */                   \
    X(CANCELLED, "cancelled", XD_OUT_RETRY) /* client destroyed before an answer */                \
    X(NOMEM, "nomem", XD_OUT_RETRY)         /* out of memory here, not at the target */            \
    X(OTHER, "transport", XD_OUT_RETRY)     /* any other network-level failure */

/* clang-format off */
enum xd_xport {
#define XD_XPORT_ENUM(name, cls, out) XD_XPORT_##name,
    XD_XPORT_MAP(XD_XPORT_ENUM)
#undef XD_XPORT_ENUM
    XD_XPORT__COUNT
};
/* clang-format on */

/*
 * The verdict on one attempt. transport_error is an enum xd_xport; when it is
 * not XD_XPORT_NONE it decides (a response cut short counts as no response,
 * whatever its status line said). Otherwise http_status decides: 2xx OK;
 * 408, 425, 429, 5xx RETRY; 1xx, 3xx, other 4xx and codes >= 600 FAIL; a
 * status outside 100..999 means no valid answer was read: RETRY. Unknown
 * transport_error values count as XD_XPORT_OTHER.
 */
enum xd_outcome xd_outcome_classify(long http_status, int transport_error);

/*
 * A short, stable class name for metrics labels and filters: "ok",
 * "http_1xx", "http_3xx", "http_4xx", "http_429", "http_5xx", "http_other"
 * (a status >= 600 or below 100), or the transport class of the table above
 * ("timeout", "dns", "connect", "tls", "tls_cert", "send", "recv", "protocol", "request",
 * "cancelled", "nomem", "transport"). Never NULL.
 */
const char *xd_outcome_class(long http_status, int transport_error);

/* "ok", "retry", "fail". */
const char *xd_outcome_name(enum xd_outcome o);

#endif
