/* Names and messages for the xd_err codes (see err.h). */
#include "core/err.h"

const char *xd_strerror(int err)
{
    switch (err) {
    case XD_OK:
        return "ok";
#define XD_ERR_MSG(name, msg)                                                  \
    case XD_E##name:                                                           \
        return msg;
        XD_ERRNO_MAP(XD_ERR_MSG)
#undef XD_ERR_MSG
    default:
        return "unknown error";
    }
}

const char *xd_errname(int err)
{
    switch (err) {
    case XD_OK:
        return "XD_OK";
#define XD_ERR_NAME(name, msg)                                                 \
    case XD_E##name:                                                           \
        return "XD_E" #name;
        XD_ERRNO_MAP(XD_ERR_NAME)
#undef XD_ERR_NAME
    default:
        return "XD_E?";
    }
}
