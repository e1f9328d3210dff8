#include "stats/stats.h"

#include <errno.h>
#include <netdb.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/log.h"
#include "net/accept.h"
#include "net/sock.h"
#include "stats/reply.h"
#include "stats/snap.h"
#include "stats/stats_fields.h"

/* How long a reader of the stats port may take to read the document. */
#define STATS_REPLY_MS 10000

struct stats {
    struct ev_loop *loop;
    struct stats_source src;
    struct ev_io io;
    struct accept_rest rest; /* out of descriptors: accept again a little later */
    struct buf json;
    size_t times_at, times_len; /* where json's uptime and timestamp are */
    uint64_t rendered_us;       /* when json was rendered (monotonic) */
    uint64_t render_cost_us;    /* and how long that took */
    struct reply_port replies;  /* documents being written */
    char source[256];
};

#define STATS_NAME(name, kind, desc) #name,
static const char *const pool_names[] = {STATS_POOL_FIELDS(STATS_NAME)};
static const char *const server_names[] = {STATS_SERVER_FIELDS(STATS_NAME)};
static const char *const pool_extra_names[] = {STATS_POOL_EXTRA_FIELDS(STATS_NAME)};
static const char *const group_names[] = {STATS_GROUP_FIELDS(STATS_NAME)};
static const char *const cluster_names[] = {STATS_CLUSTER_FIELDS(STATS_NAME)};
#undef STATS_NAME

static void stats_render_fields(struct buf *out, const char *const *names, const int64_t *v, int n)
{
    for (int i = 0; i < n; i++) {
        buf_append_str(out, i ? ", \"" : "\"");
        buf_append_str(out, names[i]);
        buf_append(out, "\":", 2);
        buf_append_i64(out, v[i]);
    }
}

/* Our latency figures, as flat numbers after twemproxy's own keys: a nested
 * object would look like one more server to the tools that read this JSON. */
static void stats_render_latency(struct buf *out, const char *prefix, const struct histo *h)
{
    static const struct {
        const char *name;
        double q;
    } qs[] = {{"p50", 0.5}, {"p90", 0.9}, {"p99", 0.99}, {"p999", 0.999}};
    for (size_t i = 0; i < sizeof(qs) / sizeof(qs[0]); i++) {
        buf_append(out, ", \"", 3);
        buf_append_str(out, prefix);
        buf_append_str(out, "latency_");
        buf_append_str(out, qs[i].name);
        buf_append(out, "_us\":", 5);
        buf_append_u64(out, histo_quantile(h, qs[i].q));
    }
    buf_append(out, ", \"", 3);
    buf_append_str(out, prefix);
    buf_append_str(out, "latency_max_us\":");
    buf_append_u64(out, h->max);
}

static const char *stats_reload_name(uint8_t r)
{
    return r == STATS_RELOAD_OK ? "ok" : r == STATS_RELOAD_FAILED ? "failed" : "none";
}

static void stats_render_pool(struct buf *out, const struct stats_pool_snap *p)
{
    buf_json_str(out, p->name); /* twemproxy writes names raw: a quote broke its JSON */
    buf_append_str(out, ": {");
    stats_render_fields(out, pool_names, p->v, SP_COUNT);
    buf_append_str(out, ", ");
    stats_render_fields(out, pool_extra_names, p->x, SPX_COUNT);
    if (p->cluster) {
        buf_append_str(out, ", ");
        stats_render_fields(out, cluster_names, p->c, SC_COUNT);
    }
    stats_render_latency(out, "", &p->lat);
    for (uint32_t i = 0; i < p->nservers; i++) {
        const struct stats_server_snap *s = &p->servers[i];
        buf_append_str(out, i ? "," : ", ");
        buf_json_str(out, s->name);
        buf_append_str(out, ": {");
        stats_render_fields(out, server_names, s->v, SS_COUNT);
        if (p->group_fields) {
            /* those pools only: other pools keep twemproxy's exact keys */
            buf_append_str(out, ", ");
            stats_render_fields(out, group_names, s->g, SG_COUNT);
        }
        stats_render_latency(out, "server_", stats_server_lat(s));
        buf_append_str(out, "}");
    }
    buf_append_str(out, "}");
}

/* "uptime":N, "timestamp":N: what twemproxy computes for each request. */
static void stats_render_times(struct buf *out, time_t start_time)
{
    time_t now = time(NULL);
    buf_printf(out, "\"uptime\":%lld, \"timestamp\":%lld", (long long)(now - start_time),
               (long long)now);
}

/* The document; *times_at and *times_len say where its times are. */
static void stats_render(const struct stats_snap *s, time_t start_time, struct buf *out,
                         size_t *times_at, size_t *times_len)
{
    char host[256];
    if (gethostname(host, sizeof(host)) != 0) {
        strcpy(host, "unknown");
    }
    host[sizeof(host) - 1] = '\0';
    buf_printf(out, "{\"service\":\"nutcracker\", \"source\":\"%s\", \"version\":\"%s\", ", host,
               NC_VERSION);
    *times_at = out->len;
    stats_render_times(out, start_time);
    *times_len = out->len - *times_at;
    buf_printf(out,
               ", \"total_connections\":%llu, "
               "\"curr_connections\":%llu, \"config_generation\":%llu, \"reload_failures\":%llu, "
               "\"last_reload\":\"%s\"",
               (unsigned long long)s->total_connections, (unsigned long long)s->curr_connections,
               (unsigned long long)s->generation, (unsigned long long)s->reload_failures,
               stats_reload_name(s->last_reload));
    for (uint32_t i = 0; i < s->npools; i++) {
        buf_append_str(out, i ? "," : ", ");
        stats_render_pool(out, &s->pools[i]);
    }
    buf_append_str(out, "}\n");
}

void stats_render_json(const struct stats_snap *s, time_t start_time, struct buf *out)
{
    size_t at, len;
    stats_render(s, start_time, out, &at, &len);
}

static void stats_refresh(struct stats *st)
{
    uint64_t start = reply_clock_us();
    struct stats_snap *s = st->src.collect(st->src.ctx);
    if (s == NULL) {
        return; /* out of memory: the previous document is better than none */
    }
    buf_reset(&st->json);
    stats_render(s, st->src.start_time, &st->json, &st->times_at, &st->times_len);
    stats_snap_free(s);
    st->rendered_us = start;
    st->render_cost_us = reply_clock_us() - start;
}

/* A reader gets the counters of now, as from twemproxy, whose aggregator sums
 * them for each reader: a monitor polling every 10 s must not see flat lines
 * and a jump every -i ms. Unless the last render is young (reply.h): a flood
 * of readers of a proxy with thousands of servers must not take the loop. */
static void stats_refresh_for_reader(struct stats *st)
{
    if (!reply_render_young(reply_clock_us(), st->rendered_us, st->render_cost_us)) {
        stats_refresh(st);
    }
}

void stats_refresh_now(struct stats *st)
{
    stats_refresh(st);
}

/* The document to send now: the counters of the last render, the times of
 * now (as twemproxy). 0, or -1 (none rendered yet, out of memory). */
static int stats_document(const struct stats *st, struct buf *doc)
{
    size_t rest = st->times_at + st->times_len;
    if (st->json.len == 0 || buf_append(doc, st->json.data, st->times_at) != 0) {
        return -1;
    }
    stats_render_times(doc, st->src.start_time);
    return buf_append(doc, st->json.data + rest, st->json.len - rest);
}

static void stats_on_accept(struct ev_loop *loop, struct ev_io *io, unsigned events)
{
    struct stats *st = io->data;
    bool fresh = false;
    (void)events;
    for (;;) {
        int fd = accept_next(loop, &st->rest, SOCK_CLOEXEC, "the stats port", NULL, NULL);
        if (fd < 0) {
            return;
        }
        if (!fresh) {
            stats_refresh_for_reader(st);
            fresh = true;
        }
        struct buf doc;
        buf_init(&doc);
        if (!reply_port_open(&st->replies) || stats_document(st, &doc) != 0) {
            buf_free(&doc);
            close(fd); /* too many waiting, or nothing to send */
            continue;
        }
        reply_send(loop, &st->replies, fd, &doc, STATS_REPLY_MS);
    }
}

static int stats_listen(struct stats *st, const struct options *o, int fd)
{
    if (fd >= 0) {
        ev_io_init(&st->io, fd, stats_on_accept, st);
        return ev_io_set(st->loop, &st->io, EV_READ);
    }
    struct sockaddr_storage ss;
    socklen_t len;
    int rc = sock_resolve(o->stats_addr, o->stats_port, SOCK_RESOLVE_PASSIVE, &ss, &len);
    if (rc != 0) {
        log_error("stats address '%s' is invalid: %s", o->stats_addr, gai_strerror(rc));
        return -1;
    }
    fd = sock_listen((const struct sockaddr *)&ss, len, 512, false, 0);
    if (fd < 0) {
        log_error("failed to listen on stats '%s:%d': %s", o->stats_addr, o->stats_port,
                  strerror(errno));
        return -1;
    }
    ev_io_init(&st->io, fd, stats_on_accept, st);
    ev_io_set(st->loop, &st->io, EV_READ);
    return 0;
}

struct stats *stats_create(struct ev_loop *loop, const struct options *o,
                           const struct stats_source *src)
{
    return stats_create_on(loop, o, src, -1);
}

int stats_fd(const struct stats *st)
{
    return st->io.fd;
}

struct stats *stats_create_on(struct ev_loop *loop, const struct options *o,
                              const struct stats_source *src, int fd)
{
    struct stats *st = calloc(1, sizeof(*st));
    if (st == NULL) {
        return NULL;
    }
    st->loop = loop;
    st->src = *src;
    buf_init(&st->json);
    ev_io_init(&st->io, -1, stats_on_accept, st);
    accept_rest_init(&st->rest, &st->io);
    if (stats_listen(st, o, fd) != 0) {
        free(st);
        return NULL;
    }
    stats_refresh(st);
    return st;
}

void stats_destroy(struct stats *st)
{
    if (st == NULL) {
        return;
    }
    if (st->io.fd >= 0) {
        ev_io_stop(st->loop, &st->io);
        close(st->io.fd);
    }
    accept_rest_stop(st->loop, &st->rest);
    reply_port_close(st->loop, &st->replies);
    buf_free(&st->json);
    free(st);
}

void stats_describe(FILE *out)
{
#define STATS_DESC(name, kind, desc) fprintf(out, "  %-20s\"%s\"\n", #name, desc);
    fprintf(out, "pool stats:\n");
    STATS_POOL_FIELDS(STATS_DESC)
    fprintf(out, "\nserver stats:\n");
    STATS_SERVER_FIELDS(STATS_DESC)
#undef STATS_DESC
}
