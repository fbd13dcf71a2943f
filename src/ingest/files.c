/* File intake (see files.h): one entry for every input format. */
#include "ingest/files.h"
#include "core/err.h"

#include <string.h>
#include <strings.h>

static const char *const names[] = {"json", "jsonl", "csv", "x12"};

int xd_format_parse(const char *name)
{
    for (int i = 0; i < 4; i++)
        if (strcasecmp(name, names[i]) == 0)
            return i;
    return XD_FMT__UNKNOWN;
}

const char *xd_format_name(int f)
{
    return f >= 0 && f < 4 ? names[f] : "unknown";
}

static int ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && strcasecmp(s + n - k, suffix) == 0;
}

int xd_format_guess(const char *path, const char *data, size_t len)
{
    static const struct {
        const char *ext;
        int fmt;
    } exts[] = {{".jsonl", XD_FMT_JSONL}, {".ndjson", XD_FMT_JSONL}, {".json", XD_FMT_JSON},
                {".csv", XD_FMT_CSV},     {".x12", XD_FMT_X12},     {".edi", XD_FMT_X12},
                {".945", XD_FMT_X12},     {".944", XD_FMT_X12},     {".947", XD_FMT_X12},
                {".846", XD_FMT_X12}};
    for (size_t i = 0; path && i < sizeof exts / sizeof exts[0]; i++)
        if (ends_with(path, exts[i].ext))
            return exts[i].fmt;
    size_t i = 0;
    if (len >= 3 && (unsigned char)data[0] == 0xEF && (unsigned char)data[1] == 0xBB &&
        (unsigned char)data[2] == 0xBF)
        i = 3; /* a UTF-8 BOM */
    while (i < len && (data[i] == ' ' || data[i] == '\t' || data[i] == '\r' || data[i] == '\n'))
        i++;
    if (len - i >= 3 && memcmp(data + i, "ISA", 3) == 0)
        return XD_FMT_X12;
    if (i < len && (data[i] == '{' || data[i] == '['))
        return XD_FMT_JSON;
    return XD_FMT_CSV;
}

int xd_format_from_content_type(const char *ct)
{
    static const struct {
        const char *type;
        int fmt;
    } types[] = {{"application/json", XD_FMT_JSON},   {"application/x-ndjson", XD_FMT_JSONL},
                 {"application/jsonl", XD_FMT_JSONL}, {"text/csv", XD_FMT_CSV},
                 {"application/edi-x12", XD_FMT_X12}, {"application/edi", XD_FMT_X12}};
    if (!ct)
        return XD_FMT__UNKNOWN;
    while (*ct == ' ')
        ct++;
    size_t n = strcspn(ct, "; ");
    for (size_t i = 0; i < sizeof types / sizeof types[0]; i++)
        if (strlen(types[i].type) == n && strncasecmp(ct, types[i].type, n) == 0)
            return types[i].fmt;
    return XD_FMT__UNKNOWN;
}

/* Moves a reader's errors into the intake's, which then stores nothing. */
static int take_errors(struct xd_intake *in, struct xd_verrs *errs, int rc)
{
    for (size_t i = 0; i < errs->n; i++)
        xd_verrs_add(&in->errs, errs->v[i].path, "%s", errs->v[i].message);
    if (errs->dropped)
        xd_verrs_add(&in->errs, "", "%zu more problems not listed", errs->dropped);
    xd_verrs_dispose(errs);
    if (in->status == 0)
        in->status = 400;
    return rc < 0 ? rc : XD_ESCHEMA;
}

int xd_intake_add_file(struct xd_intake *in, int f, const char *data, size_t len,
                       const struct xd_convert_opts *o, struct xd_buf *ack)
{
    struct xd_verrs errs = {0};
    cJSON *events = NULL;
    int rc;
    switch (f) {
    case XD_FMT_JSON:
        return xd_intake_add_body(in, data, len);
    case XD_FMT_JSONL:
        return xd_intake_add_lines(in, data, len);
    case XD_FMT_CSV:
        rc = xd_csv_read(data, len, o, &events, &errs);
        break;
    case XD_FMT_X12:
        rc = xd_x12_read(data, len, o, &events, &errs, ack);
        break;
    default:
        return XD_EINVAL;
    }
    if (rc == XD_ENOMEM) {
        cJSON_Delete(events);
        xd_verrs_dispose(&errs);
        return rc;
    }
    if (rc < 0 || errs.n) {
        cJSON_Delete(events); /* a file is accepted whole or not at all */
        return take_errors(in, &errs, rc);
    }
    xd_verrs_dispose(&errs);
    if (!events || cJSON_GetArraySize(events) == 0) {
        cJSON_Delete(events);
        xd_verrs_add(&in->errs, "", "no events in the file");
        in->status = 400;
        return XD_ESCHEMA;
    }
    return xd_intake_add_tree(in, events);
}
