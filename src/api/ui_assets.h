/*
 * The dashboard's files, embedded at build time: cmake/embed.cmake turns
 * every file of src/ui/assets into a byte array in the generated
 * ui_assets.c (build directory). Read-only, static storage; each array also
 * ends with a NUL not counted in len.
 */
#ifndef XD_API_UI_ASSETS_H
#define XD_API_UI_ASSETS_H

#include <stddef.h>

struct xd_ui_asset {
    const char *name;         /* file name, "index.html" */
    const char *content_type; /* from its extension */
    const unsigned char *data;
    size_t len;
};

extern const struct xd_ui_asset xd_ui_assets[];
extern const unsigned xd_ui_nassets;

#endif
