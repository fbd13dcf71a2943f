/* Connections to NATS (see nats_conn.h). */
#include "deliver/nats_conn.h"
#include "core/buf.h"
#include "core/err.h"
#include "core/log.h"

#include <pthread.h>

#define RECONNECT_WAIT_MS  250  /* between rounds over the server list */
#define CONNECT_TIMEOUT_MS 2000 /* one TCP connect and handshake */
#define PING_INTERVAL_MS   2000 /* a silent dead server is noticed in about 2 intervals */

static pthread_mutex_t lib_mu = PTHREAD_MUTEX_INITIALIZER;
static unsigned lib_users; /* connections open: the library is closed with the last */

static void on_disconnected(natsConnection *nc, void *closure)
{
    (void)nc;
    xd_warn("nats %s: disconnected; reconnecting", (const char *)closure);
}

static void on_reconnected(natsConnection *nc, void *closure)
{
    char url[256];
    if (natsConnection_GetConnectedUrl(nc, url, sizeof url) != NATS_OK)
        url[0] = '\0';
    xd_info("nats %s: connected to %s", (const char *)closure, url);
}

static void lib_release(void)
{
    pthread_mutex_lock(&lib_mu);
    if (lib_users && --lib_users == 0)
        nats_CloseAndWait(5000);
    pthread_mutex_unlock(&lib_mu);
}

int xd_nats_connect(char *const *servers, size_t n, const char *url, const char *name,
                    natsConnection **out, struct xd_buf *err)
{
    *out = NULL;
    const char *one[1] = {url ? url : XD_NATS_DEFAULT_URL};
    const char *const *list = n ? (const char *const *)servers : one;
    int count = n ? (int)n : 1;
    natsOptions *o = NULL;
    pthread_mutex_lock(&lib_mu);
    natsStatus s = lib_users ? NATS_OK : nats_Open(-1);
    if (s == NATS_OK)
        lib_users++;
    pthread_mutex_unlock(&lib_mu);
    if (s != NATS_OK) {
        xd_buf_printf(err, "nats %s: cannot start the NATS library: %s", name,
                      natsStatus_GetText(s));
        return XD_ENOMEM;
    }
    s = natsOptions_Create(&o);
    if (s == NATS_OK)
        s = natsOptions_SetServers(o, (const char **)list, count);
    if (s == NATS_OK)
        s = natsOptions_SetName(o, name);
    if (s == NATS_OK)
        s = natsOptions_SetNoRandomize(o, true);
    if (s == NATS_OK)
        s = natsOptions_SetTimeout(o, CONNECT_TIMEOUT_MS);
    if (s == NATS_OK)
        s = natsOptions_SetMaxReconnect(o, -1);
    if (s == NATS_OK)
        s = natsOptions_SetReconnectWait(o, RECONNECT_WAIT_MS);
    if (s == NATS_OK)
        s = natsOptions_SetPingInterval(o, PING_INTERVAL_MS);
    if (s == NATS_OK)
        s = natsOptions_SetRetryOnFailedConnect(o, true, on_reconnected, (void *)name);
    if (s == NATS_OK)
        s = natsOptions_SetDisconnectedCB(o, on_disconnected, (void *)name);
    if (s == NATS_OK)
        s = natsOptions_SetReconnectedCB(o, on_reconnected, (void *)name);
    if (s == NATS_OK) {
        s = natsConnection_Connect(out, o);
        if (s == NATS_NOT_YET_CONNECTED) {
            xd_warn("nats %s: no server answers yet (%s ...); connecting in the background", name,
                    list[0]);
            s = NATS_OK;
        }
    }
    natsOptions_Destroy(o);
    if (s == NATS_OK)
        return 0;
    xd_buf_printf(err, "nats %s: %s: %s", name, list[0], natsStatus_GetText(s));
    *out = NULL;
    lib_release();
    return s == NATS_NO_MEMORY ? XD_ENOMEM : XD_ECONFIG;
}

void xd_nats_disconnect(natsConnection *nc)
{
    if (!nc)
        return;
    natsConnection_Close(nc);
    natsConnection_Destroy(nc);
    lib_release();
}
