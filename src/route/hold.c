/* Master-data holds, the router's side (see hold.h). */
#include "route/hold.h"
#include "core/buf.h"
#include "transform/transform.h"

int xd_hold_wanted(struct xd_store *s, const struct xd_buf *err)
{
    (void)s; /* both drivers keep holds (store/holds.h) */
    return err && err->len && xd_jq_xref_miss(err->data, NULL, NULL, NULL, NULL);
}
