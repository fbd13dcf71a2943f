/*
 * HTTP delivery benchmark: deliveries/s from ONE thread driving the
 * deliver/ client (curl multi over epoll) against a server on loopback.
 * Every delivery is what the hub sends: a POST of a ~600-byte JSON body
 * through an xd_http_target (Content-Type, Authorization: Bearer, a custom
 * header), a derived Idempotency-Key (SHA-256) and a fresh traceparent span.
 * C deliveries are kept in flight; each callback submits the next one.
 *
 * The server: the URL given, else nginx started here (NGINX=/path, default
 * /usr/sbin/nginx; one worker, `return 200`, keep-alive), else a
 * libmicrohttpd server in this process (then the CPU figure includes it).
 *
 * Build and run from the top folder:
 *   cc -O2 -std=c17 -D_GNU_SOURCE -Isrc src/core/err.c src/core/buf.c src/deliver/[a-z]*.c
 *      bench/bench_http.c -lcurl -lmicrohttpd -lcrypto -lpthread -o /tmp/bench_http
 *   /tmp/bench_http [-s SECONDS] [-c IN_FLIGHT] [-m CONNECTIONS] [-b BODY_BYTES] [URL]
 * Defaults: 10 s (after 1 s of warm-up), 64 in flight, as many connections
 * (fewer connections than in flight: the rest wait in libcurl's queue).
 * Prints a readable summary and one JSON line (XDBENCH {...}).
 */
#include "core/config.h"
#include "core/err.h"
#include "deliver/http.h"
#include "deliver/rand.h"
#include "deliver/target.h"
#include "deliver/trace.h"

#include <arpa/inet.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static double cpu_s(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + (double)ru.ru_stime.tv_sec +
           ru.ru_stime.tv_usec / 1e6;
}

/* ---- servers ---------------------------------------------------------------- */

static unsigned short free_port(void)
{
    struct sockaddr_in sa = {.sin_family = AF_INET};
    socklen_t len = sizeof sa;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof sa) < 0 ||
        getsockname(fd, (struct sockaddr *)&sa, &len) < 0)
        return 0;
    close(fd);
    return ntohs(sa.sin_port);
}

static int port_open(unsigned short port)
{
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    int ok = fd >= 0 && connect(fd, (struct sockaddr *)&sa, sizeof sa) == 0;
    if (fd >= 0)
        close(fd);
    return ok;
}

static const char *const nginx_dirs[] = {"body", "proxy", "fastcgi", "uwsgi", "scgi"};

/* Starts nginx with a config of its own in dir; returns its pid, or -1. */
static pid_t nginx_start(const char *nginx, const char *dir, unsigned short port)
{
    char path[300], conf[300];
    snprintf(conf, sizeof conf, "%s/nginx.conf", dir);
    FILE *f = fopen(conf, "w");
    if (!f)
        return -1;
    fprintf(f,
            "%s"
            "worker_processes 1;\ndaemon off;\npid %s/nginx.pid;\nerror_log %s/error.log warn;\n"
            "events { worker_connections 4096; }\n"
            "http {\n  access_log off;\n  keepalive_requests 10000000;\n"
            "  keepalive_timeout 60s;\n  client_body_buffer_size 64k;\n",
            geteuid() == 0 ? "user root;\n" : "", dir, dir);
    for (size_t i = 0; i < sizeof nginx_dirs / sizeof nginx_dirs[0]; i++) {
        snprintf(path, sizeof path, "%s/%s", dir, nginx_dirs[i]);
        mkdir(path, 0700);
        fprintf(f, "  %s_temp_path %s;\n",
                strcmp(nginx_dirs[i], "body") == 0 ? "client_body" : nginx_dirs[i], path);
    }
    fprintf(f,
            "  server {\n    listen 127.0.0.1:%u;\n    location / { return 200 \"ok\\n\"; }\n"
            "  }\n}\n",
            port);
    fclose(f);
    snprintf(path, sizeof path, "%s/error.log", dir);
    pid_t pid = fork();
    if (pid == 0) {
        execl(nginx, "nginx", "-p", dir, "-c", conf, "-e", path, (char *)NULL);
        _exit(127);
    }
    for (int i = 0; pid > 0 && i < 500; i++) {
        if (port_open(port))
            return pid;
        if (waitpid(pid, NULL, WNOHANG) == pid)
            return -1;
        usleep(10000);
    }
    if (pid > 0) { /* never answered */
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
    }
    return -1;
}

static void nginx_stop(pid_t pid, const char *dir)
{
    char path[300];
    if (pid > 0) {
        kill(pid, SIGQUIT);
        waitpid(pid, NULL, 0);
    }
    for (size_t i = 0; i < sizeof nginx_dirs / sizeof nginx_dirs[0]; i++) {
        snprintf(path, sizeof path, "%s/%s", dir, nginx_dirs[i]);
        rmdir(path);
    }
    static const char *const files[] = {"nginx.conf", "error.log", "nginx.pid"};
    for (size_t i = 0; i < 3; i++) {
        snprintf(path, sizeof path, "%s/%s", dir, files[i]);
        unlink(path);
    }
    rmdir(dir);
}

static enum MHD_Result mhd_ok(void *cls, struct MHD_Connection *c, const char *url,
                              const char *method, const char *version, const char *upload,
                              size_t *upload_size, void **req_cls)
{
    static int first;
    (void)cls, (void)url, (void)method, (void)version, (void)upload;
    if (!*req_cls) {
        *req_cls = &first;
        return MHD_YES;
    }
    if (*upload_size) {
        *upload_size = 0;
        return MHD_YES;
    }
    struct MHD_Response *r = MHD_create_response_from_buffer(3, "ok\n", MHD_RESPMEM_PERSISTENT);
    enum MHD_Result rc = MHD_queue_response(c, 200, r);
    MHD_destroy_response(r);
    return rc;
}

/* ---- the delivery loop ------------------------------------------------------ */

struct bench {
    struct xd_http_client *cl;
    struct xd_http_target target;
    struct xd_trace parent;
    char body[65536];
    size_t body_len;
    uint64_t seq;     /* deliveries submitted */
    uint64_t warm_ns; /* counting starts here */
    uint64_t end_ns;  /* no new submissions after this */
    uint64_t ok, bad, new_conns;
    uint32_t *lat; /* latencies (us) of counted deliveries */
    size_t nlat, caplat;
    char first_error[256];
};

static void on_done(void *user, const struct xd_http_result *r);

static int submit_one(struct bench *b)
{
    char evid[32], key[XD_IDEM_KEY_LEN + 1];
    struct xd_trace tr;
    snprintf(evid, sizeof evid, "evt-%llu", (unsigned long long)b->seq++);
    xd_idempotency_key(key, evid, "shipments", 0, "erp");
    xd_trace_child(&b->parent, &tr, xd_rand64, NULL);
    return xd_http_target_submit(b->cl, &b->target, b->body, b->body_len, key, &tr, on_done, b);
}

static void on_done(void *user, const struct xd_http_result *r)
{
    struct bench *b = user;
    uint64_t t = now_ns();
    if (t >= b->warm_ns && t < b->end_ns) {
        if (r->outcome == XD_OUT_OK)
            b->ok++;
        else
            b->bad++;
        b->new_conns += r->new_connections;
        if (b->nlat == b->caplat) {
            size_t cap = b->caplat ? b->caplat * 2 : 1 << 16;
            uint32_t *p = realloc(b->lat, cap * sizeof *p);
            if (p) {
                b->lat = p;
                b->caplat = cap;
            }
        }
        if (b->nlat < b->caplat)
            b->lat[b->nlat++] = r->latency_us > UINT32_MAX ? UINT32_MAX : (uint32_t)r->latency_us;
    }
    if (r->outcome != XD_OUT_OK && !b->first_error[0])
        snprintf(b->first_error, sizeof b->first_error, "status %ld %s %s", r->status,
                 r->error_class, r->error);
    if (t < b->end_ns)
        submit_one(b);
}

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
    unsigned seconds = 10, inflight = 64, body_bytes = 600, conns = 0;
    const char *url = NULL;
    int opt;
    while ((opt = getopt(argc, argv, "s:c:b:m:")) != -1) {
        if (opt == 's')
            seconds = (unsigned)atoi(optarg);
        else if (opt == 'c')
            inflight = (unsigned)atoi(optarg);
        else if (opt == 'b')
            body_bytes = (unsigned)atoi(optarg);
        else if (opt == 'm')
            conns = (unsigned)atoi(optarg);
        else {
            fprintf(
                stderr,
                "usage: %s [-s SECONDS] [-c IN_FLIGHT] [-m CONNECTIONS] [-b BODY_BYTES] [URL]\n",
                argv[0]);
            return 2;
        }
    }
    if (optind < argc)
        url = argv[optind];
    if (!inflight || !seconds || body_bytes >= 65536) {
        fprintf(stderr, "bench_http: bad arguments\n");
        return 2;
    }

    /* The server. */
    char urlbuf[128], dir[64] = "";
    const char *server = "given URL";
    pid_t nginx_pid = -1;
    struct MHD_Daemon *mhd = NULL;
    const char *nginx = getenv("NGINX") ? getenv("NGINX") : "/usr/sbin/nginx";
    if (!url) {
        unsigned short port = free_port();
        snprintf(urlbuf, sizeof urlbuf, "http://127.0.0.1:%u/erp/shipments", port);
        url = urlbuf;
        snprintf(dir, sizeof dir, "/tmp/xd-bench-nginx-XXXXXX");
        if (access(nginx, X_OK) == 0 && mkdtemp(dir)) {
            nginx_pid = nginx_start(nginx, dir, port);
            server = "nginx (1 worker)";
            if (nginx_pid < 0) {
                fprintf(stderr, "bench_http: nginx did not start (see %s/error.log)\n", dir);
                dir[0] = '\0'; /* kept for its log */
            }
        }
        if (nginx_pid < 0) {
            mhd = MHD_start_daemon(MHD_USE_EPOLL_INTERNAL_THREAD, port, NULL, NULL, mhd_ok, NULL,
                                   MHD_OPTION_CONNECTION_LIMIT, 4096u, MHD_OPTION_END);
            server = "libmicrohttpd in this process (its CPU is counted)";
            if (!mhd) {
                fprintf(stderr, "bench_http: no server (pass a URL)\n");
                return 1;
            }
        }
    }

    static struct bench b;
    for (unsigned i = 0; i < body_bytes; i++) /* JSON-ish text, like a mapped shipment */
        b.body[i] = "{\"delivery\":\"SHP-000123\",\"plant\":\"1000\",\"items\":[]}"[i % 51];
    b.body_len = body_bytes;
    xd_trace_new(&b.parent, xd_rand64, NULL);
    setenv("XD_BENCH_TOKEN", "bench-token-0123456789abcdef", 1);
    struct xd_header hdrs[] = {{"X-Source", "crossdock-bench"}};
    struct xd_target cfg = {.name = "erp",
                            .type = "http",
                            .url = (char *)url,
                            .timeout_ms = 5000,
                            .bearer_env = "XD_BENCH_TOKEN",
                            .headers = hdrs,
                            .nheaders = 1};
    struct xd_http_client_opts o = {.max_connections = conns ? conns : inflight, .proxy = ""};
    int rc = xd_http_target_init(&b.target, &cfg, NULL);
    if (rc == 0)
        rc = xd_http_client_create(&o, &b.cl);
    if (rc < 0) {
        fprintf(stderr, "bench_http: %s\n", xd_strerror(rc));
        return 1;
    }

    uint64_t start = now_ns();
    b.warm_ns = start + 1000000000u;
    b.end_ns = b.warm_ns + (uint64_t)seconds * 1000000000u;
    for (unsigned i = 0; i < inflight; i++)
        submit_one(&b);
    while (now_ns() < b.warm_ns)
        xd_http_run(b.cl, 100);
    double cpu0 = cpu_s();
    while (xd_http_inflight(b.cl) > 0 && now_ns() < b.end_ns)
        xd_http_run(b.cl, 100);
    double cpu = cpu_s() - cpu0;
    while (xd_http_inflight(b.cl) > 0) /* drain what is still in flight, uncounted */
        xd_http_run(b.cl, 100);

    uint64_t done = b.ok + b.bad;
    double rate = (double)done / seconds;
    qsort(b.lat, b.nlat, sizeof *b.lat, cmp_u32);
    double p50 = b.nlat ? b.lat[b.nlat / 2] / 1000.0 : 0;
    double p99 = b.nlat ? b.lat[b.nlat * 99 / 100] / 1000.0 : 0;
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    printf("server: %s at %s\n", server, url);
    printf("%u in flight over %u connections, %u-byte bodies, %u s: %.0f deliveries/s (%llu ok, "
           "%llu not ok), "
           "p50 %.2f ms, p99 %.2f ms\n",
           inflight, o.max_connections, body_bytes, seconds, rate, (unsigned long long)b.ok,
           (unsigned long long)b.bad, p50, p99);
    printf("client thread CPU: %.2f cores, %.1f us per delivery; %llu new connections; "
           "%ld cores on this machine\n",
           cpu / seconds, done ? cpu * 1e6 / (double)done : 0, (unsigned long long)b.new_conns,
           cores);
    if (b.first_error[0])
        printf("first failure: %s\n", b.first_error);
    printf(
        "XDBENCH {\"deliveries_per_s\":%.0f,\"ok\":%llu,\"not_ok\":%llu,\"in_flight\":%u,"
        "\"p50_ms\":%.3f,\"p99_ms\":%.3f,\"cpu_us_per_delivery\":%.2f,\"new_connections\":%llu}\n",
        rate, (unsigned long long)b.ok, (unsigned long long)b.bad, inflight, p50, p99,
        done ? cpu * 1e6 / (double)done : 0, (unsigned long long)b.new_conns);

    xd_http_client_destroy(b.cl);
    xd_http_target_dispose(&b.target);
    free(b.lat);
    if (nginx_pid > 0)
        nginx_stop(nginx_pid, dir);
    if (mhd)
        MHD_stop_daemon(mhd);
    return b.bad ? 1 : 0;
}
