/*
 * File intake: a document in one of the input formats (JSON, JSON lines,
 * CSV, X12) turned into prepared canonical events, for `crossdock convert`,
 * `crossdock ingest` and `POST /v1/files`. A file is accepted whole or
 * rejected whole: any problem in it leaves no events (for X12 the 997 still
 * says, per transaction set, what was wrong).
 */
#ifndef XD_FILES_H
#define XD_FILES_H

#include "formats/convert.h"
#include "ingest/intake.h"

enum xd_format { XD_FMT_JSON, XD_FMT_JSONL, XD_FMT_CSV, XD_FMT_X12, XD_FMT__UNKNOWN = -1 };

/* "json", "jsonl", "csv", "x12" -> the format, or XD_FMT__UNKNOWN. */
int xd_format_parse(const char *name);
const char *xd_format_name(int f);
/* By extension (.json .jsonl .ndjson .csv .x12 .edi .txt), then by content. */
int xd_format_guess(const char *path, const char *data, size_t len);
/* By Content-Type (application/json, text/csv, application/edi-x12). */
int xd_format_from_content_type(const char *ct);

/*
 * Adds a document of format f to in. Errors name their place (JSON path,
 * "row 4, column qty", "segment 14 (W12), element 3") in in->errs. With ack
 * (X12 only, may be NULL) the 997s are appended. Returns 0, XD_EPARSE /
 * XD_ESCHEMA / XD_ETOOBIG (nothing added), XD_ENOMEM.
 */
int xd_intake_add_file(struct xd_intake *in, int f, const char *data, size_t len,
                       const struct xd_convert_opts *o, struct xd_buf *ack);

#endif
