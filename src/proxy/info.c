#include "proxy/info.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#include "conf/options.h"
#include "proxy/blocking.h"
#include "proxy/client.h"
#include "proxy/cluster.h"
#include "proxy/cqueue.h"
#include "proxy/pool.h"
#include "proxy/proxy.h"
#include "proxy/req.h"
#include "proxy/route.h"
#include "proxy/sconn.h"
#include "proxy/server.h"

#define INFO_POLL_MS 1000
#define INFO_WANT_MS 60000

/* ---- what the servers say, asked in the background ---- */

/* The number after "name=" in s[0..n) (a keyspace line), or -1. */
static int64_t info_field(const char *s, size_t n, const char *name)
{
    size_t k = strlen(name);
    for (size_t i = 0; i + k < n; i++) {
        if ((i == 0 || s[i - 1] == ',' || s[i - 1] == ':') && memcmp(s + i, name, k) == 0 &&
            s[i + k] == '=') {
            return strtoll(s + i + k + 1, NULL, 10);
        }
    }
    return -1;
}

/* One line "redis_version:7.0.15" or "db0:keys=3,expires=0,avg_ttl=0" of a reply. */
static void info_line(struct server *s, const char *line, size_t n, bool keyspace)
{
    struct pool_info *pi = &s->pool->info;
    char db[24];
    int dl = snprintf(db, sizeof(db), "db%d:", s->pool->cp->redis_db);
    if (n > 14 && memcmp(line, "redis_version:", 14) == 0 && pi->version[0] == '\0') {
        size_t v = n - 14 < sizeof(pi->version) - 1 ? n - 14 : sizeof(pi->version) - 1;
        memcpy(pi->version, line + 14, v);
        pi->version[v] = '\0';
    } else if (n > 17 && memcmp(line, "maxmemory_policy:", 17) == 0) {
        size_t v = n - 17 < sizeof(pi->policy) - 1 ? n - 17 : sizeof(pi->policy) - 1;
        memcpy(pi->policy, line + 17, v);
        pi->policy[v] = '\0';
    } else if (n == 9 && memcmp(line, "loading:", 8) == 0) {
        pi->loading = line[8] == '1';
    } else if (n > 20 && memcmp(line, "loading_eta_seconds:", 20) == 0) {
        size_t v = n - 20 < sizeof(pi->loading_eta) - 1 ? n - 20 : sizeof(pi->loading_eta) - 1;
        memcpy(pi->loading_eta, line + 20, v);
        pi->loading_eta[v] = '\0';
    } else if (keyspace && (size_t)dl < n && memcmp(line, db, (size_t)dl) == 0) {
        pi->srv_keys[s->idx] = info_field(line, n, "keys");
        pi->srv_expires[s->idx] = info_field(line, n, "expires");
    }
}

/* Read an INFO reply of s: its version, its eviction policy and, when it
 * answers INFO keyspace (keyspace), its line for the pool's db (no such line:
 * the db is empty). A client's INFO default has a keyspace too, but maybe a
 * replica's, which the sum must not count (info_on_timer). */
static void info_parse(struct server *s, const uint8_t *p, size_t len, bool keyspace)
{
    s = server_counted(s); /* a hidden replica's figures would count for its group */
    if (s->pool->info.srv_keys == NULL) {
        return;
    }
    if (keyspace) {
        s->pool->info.srv_keys[s->idx] = 0;
        s->pool->info.srv_expires[s->idx] = 0;
    }
    const char *t = (const char *)p, *end = t + len;
    while (t < end) {
        const char *nl = memchr(t, '\n', (size_t)(end - t));
        size_t n = (size_t)((nl != NULL ? nl : end) - t);
        info_line(s, t, n > 0 && t[n - 1] == '\r' ? n - 1 : n, keyspace);
        t = nl != NULL ? nl + 1 : end;
    }
}

static void info_sum(struct pool *p)
{
    struct pool_info *pi = &p->info;
    pi->keys = pi->expires = 0;
    for (uint32_t i = 0; i < p->nservers; i++) {
        pi->keys += pi->srv_keys[i] > 0 ? pi->srv_keys[i] : 0;
        pi->expires += pi->srv_expires[i] > 0 ? pi->srv_expires[i] : 0;
    }
}

static void info_on_reply(struct req *r, struct buf *out, const uint8_t *p, size_t len,
                          const struct rsp_info *ri, const char *err)
{
    (void)out;
    if (err == NULL && ri != NULL && !ri->is_error) {
        info_parse(r->reply_ctx, p, len, r->reply_arg == 1);
        info_sum(((struct server *)r->reply_ctx)->pool); /* each answer shows at once */
    }
}

/* INFO <section> on the server's first shared connection, for the proxy itself. */
static void info_ask(struct server *s, const char *section, uint64_t arg)
{
    struct sconn *sc = server_conn_for(s, 0, 2); /* the proxy's own: client id 0 */
    const uint8_t *argv[2] = {(const uint8_t *)"INFO", (const uint8_t *)section};
    size_t lens[2] = {4, strlen(section)};
    if (sconn_ensure(sc) != 0) {
        return;
    }
    struct buf *out = sconn_out(sc);
    size_t before = out->len;
    if (s->pool->proto->build(out, 2, argv, lens) != 0) {
        return;
    }
    struct req *r = req_new(s->pool->px, 0);
    r->reply = info_on_reply;
    r->reply_ctx = s;
    r->reply_arg = arg;
    sconn_queued(sc, r, out->len - before);
}

static void info_on_timer(struct ev_loop *loop, struct ev_timer *t)
{
    struct pool *p = t->data;
    if (ev_now(loop) >= p->info.wanted_until_ms) {
        return; /* nobody asked for a minute: stop bothering the servers */
    }
    for (uint32_t i = 0; i < p->nservers; i++) {
        struct server *s = &p->servers[i];
        /* a replica repeats its master: counted once, and not asked (a replica
         * restarting would be ejected for failing questions no client asked) */
        if ((p->mode == POOL_CLUSTER && !cluster_is_master(s)) ||
            (p->mode == POOL_MASTER_REPLICA && i != p->cp->master)) {
            p->info.srv_keys[i] = p->info.srv_expires[i] = -1;
            continue;
        }
        if (s->health.ejected || !s->addr.known) {
            continue;
        }
        if (p->info.version[0] == '\0') {
            info_ask(s, "server", 0);
        }
        info_ask(s, "keyspace", 1);
    }
    ev_timer_start(loop, t, INFO_POLL_MS);
}

/* A client asked: keep the figures fresh for a while. */
static void info_wanted(struct pool *p)
{
    struct ev_loop *loop = p->px->loop;
    bool idle = ev_now(loop) >= p->info.wanted_until_ms;
    p->info.wanted_until_ms = ev_now(loop) + INFO_WANT_MS;
    if (idle && !ev_timer_armed(&p->info.timer) && p->proto->build != NULL) {
        ev_timer_start(loop, &p->info.timer, 0);
    }
}

int info_pool_init(struct pool *p)
{
    struct pool_info *pi = &p->info;
    ev_timer_init(&pi->timer, info_on_timer, p);
    /* a cluster pool's servers grow: room for all of them */
    pi->srv_keys = malloc(p->cap_servers * sizeof(*pi->srv_keys));
    pi->srv_expires = malloc(p->cap_servers * sizeof(*pi->srv_expires));
    if (pi->srv_keys == NULL || pi->srv_expires == NULL) {
        return -1;
    }
    for (uint32_t i = 0; i < p->cap_servers; i++) {
        pi->srv_keys[i] = pi->srv_expires[i] = -1;
    }
    return 0;
}

void info_pool_free(struct pool *p)
{
    ev_timer_stop(p->px->loop, &p->info.timer);
    free(p->info.srv_keys);
    free(p->info.srv_expires);
    p->info.srv_keys = p->info.srv_expires = NULL;
}

/* ---- the text ---- */

static void info_section_server(struct client *c, struct buf *t)
{
    struct pool *p = c->pool;
    struct utsname u;
    if (uname(&u) != 0) {
        strcpy(u.sysname, "Linux");
        u.release[0] = u.machine[0] = '\0';
    }
    time_t up = time(NULL) - p->px->start_time;
    buf_printf(t,
               "# Server\r\nredis_version:%s\r\nredis_mode:proxy\r\nnutcracker_version:%s\r\n"
               "os:%s %s %s\r\narch_bits:%d\r\nprocess_id:%d\r\ntcp_port:%d\r\n"
               "uptime_in_seconds:%lld\r\nuptime_in_days:%lld\r\n\r\n",
               p->info.version[0] ? p->info.version : "7.0.0", NC_VERSION, u.sysname, u.release,
               u.machine, (int)(sizeof(void *) * 8), (int)getpid(), p->cp->listen.port,
               (long long)up, (long long)(up / 86400));
}

static void info_section_clients(struct client *c, struct buf *t)
{
    unsigned blocked = 0; /* in a BLPOP...: what redis' own tests wait for */
    for (const struct client *x = c->pool->clients; x != NULL; x = x->next) {
        blocked += blocking_waits(x) ? 1u : 0u;
    }
    buf_printf(t,
               "# Clients\r\nconnected_clients:%u\r\nmaxclients:%u\r\nblocked_clients:%u\r\n"
               "pubsub_clients:0\r\n\r\n",
               c->pool->nclients, c->pool->cp->client_connections, blocked);
}

static void info_human(char *out, size_t cap, uint64_t bytes)
{
    if (bytes < 1024) {
        snprintf(out, cap, "%lluB", (unsigned long long)bytes);
    } else if (bytes < 1024 * 1024) {
        snprintf(out, cap, "%.2fK", (double)bytes / 1024);
    } else if (bytes < 1024ull * 1024 * 1024) {
        snprintf(out, cap, "%.2fM", (double)bytes / (1024 * 1024));
    } else {
        snprintf(out, cap, "%.2fG", (double)bytes / (1024.0 * 1024 * 1024));
    }
}

static void info_section_memory(struct client *c, struct buf *t)
{
    long pages = 0;
    FILE *f = fopen("/proc/self/statm", "r");
    if (f != NULL) {
        long size;
        if (fscanf(f, "%ld %ld", &size, &pages) != 2) {
            pages = 0;
        }
        fclose(f);
    }
    uint64_t rss = (uint64_t)pages * (uint64_t)sysconf(_SC_PAGESIZE);
    char human[32];
    info_human(human, sizeof(human), rss);
    buf_printf(t,
               "# Memory\r\nused_memory:%llu\r\nused_memory_human:%s\r\nused_memory_rss:%llu\r\n",
               (unsigned long long)rss, human, (unsigned long long)rss);
    /* the servers' eviction policy, which the data lives under (Sidekiq warns
     * at start unless it reads noeviction) */
    const char *policy = c->pool->info.policy;
    if (policy[0] != '\0') {
        buf_printf(t, "maxmemory_policy:%s\r\n", policy);
    }
    buf_printf(t, "\r\n");
}

static void info_section_stats(struct client *c, struct buf *t)
{
    struct pool *p = c->pool;
    buf_printf(t,
               "# Stats\r\ntotal_connections_received:%llu\r\ntotal_commands_processed:%llu\r\n"
               "instantaneous_ops_per_sec:0\r\nrejected_connections:0\r\nkeyspace_hits:0\r\n"
               "keyspace_misses:0\r\n\r\n",
               (unsigned long long)p->px->total_connections,
               (unsigned long long)p->lat_request.count);
}

static void info_section_cpu(struct buf *t)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    buf_printf(t, "# CPU\r\nused_cpu_sys:%ld.%06ld\r\nused_cpu_user:%ld.%06ld\r\n\r\n",
               (long)ru.ru_stime.tv_sec, (long)ru.ru_stime.tv_usec, (long)ru.ru_utime.tv_sec,
               (long)ru.ru_utime.tv_usec);
}

static void info_section_keyspace(struct client *c, struct buf *t)
{
    struct pool_info *pi = &c->pool->info;
    buf_append_str(t, "# Keyspace\r\n");
    if (pi->keys > 0) {
        /* twemproxy presents itself to clients as db 0, whatever redis_db says */
        buf_printf(t, "db0:keys=%lld,expires=%lld,avg_ttl=0\r\n", (long long)pi->keys,
                   (long long)pi->expires);
    }
}

enum {
    INFO_SERVER = 1,
    INFO_CLIENTS = 2,
    INFO_MEMORY = 4,
    INFO_PERSISTENCE = 8,
    INFO_STATS = 16,
    INFO_REPLICATION = 32,
    INFO_CPU = 64,
    INFO_CLUSTER = 128,
    INFO_KEYSPACE = 256,
    INFO_ALL = 511,
};

static unsigned info_section_of(const uint8_t *s, size_t n)
{
    static const struct {
        const char *name;
        unsigned bit;
    } names[] = {
        {"server", INFO_SERVER},   {"clients", INFO_CLIENTS},         {"memory", INFO_MEMORY},
        {"stats", INFO_STATS},     {"persistence", INFO_PERSISTENCE}, {"cpu", INFO_CPU},
        {"cluster", INFO_CLUSTER}, {"replication", INFO_REPLICATION}, {"keyspace", INFO_KEYSPACE},
        {"all", INFO_ALL},         {"everything", INFO_ALL},          {"default", INFO_ALL},
    };
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        if (strlen(names[i].name) == n && strncasecmp(names[i].name, (const char *)s, n) == 0) {
            return names[i].bit;
        }
    }
    return 0; /* redis answers an unknown section with nothing */
}

static void info_section_persistence(struct client *c, struct buf *t)
{
    const struct pool_info *pi = &c->pool->info;
    char line[96];
    buf_append_str(t, "# Persistence\r\n");
    snprintf(line, sizeof(line), "loading:%d\r\nasync_loading:0\r\n", pi->loading ? 1 : 0);
    buf_append_str(t, line);
    if (pi->loading && pi->loading_eta[0] != '\0') {
        snprintf(line, sizeof(line), "loading_eta_seconds:%s\r\n", pi->loading_eta);
        buf_append_str(t, line);
    }
    buf_append_str(t, "\r\n");
}

/* The text of the sections in want, for a client of the pool. */
static void info_build(struct client *c, unsigned want, struct buf *text)
{
    if (want & INFO_SERVER) {
        info_section_server(c, text);
    }
    if (want & INFO_CLIENTS) {
        info_section_clients(c, text);
    }
    if (want & INFO_MEMORY) {
        info_section_memory(c, text);
    }
    if (want & INFO_PERSISTENCE) {
        info_section_persistence(c, text);
    }
    if (want & INFO_STATS) {
        info_section_stats(c, text);
    }
    if (want & INFO_REPLICATION) {
        buf_append_str(text, "# Replication\r\nrole:master\r\nconnected_slaves:0\r\n\r\n");
    }
    if (want & INFO_CPU) {
        info_section_cpu(text);
    }
    if (want & INFO_CLUSTER) {
        buf_append_str(text, "# Cluster\r\ncluster_enabled:0\r\n\r\n");
    }
    if (want & INFO_KEYSPACE) {
        info_section_keyspace(c, text);
    }
    /* redis ends the text without the blank line after the last section */
    if (text->len >= 4 && memcmp(text->data + text->len - 4, "\r\n\r\n", 4) == 0) {
        text->len -= 2;
    }
}

static void info_answer(struct client *c, unsigned want, struct buf *out)
{
    struct buf text;
    buf_init(&text);
    info_build(c, want, &text);
    if (c->pool->proto->text_reply(out, text.data, text.len, c->lc.resp) != 0) {
        c->pool->proto->error_reply(out, "out of memory");
    }
    buf_free(&text);
}

/* The server's "INFO default" came back: its version and eviction policy (and
 * keyspace), then the client's INFO. */
static void info_on_server(struct req *r, struct buf *out, const uint8_t *p, size_t len,
                           const struct rsp_info *ri, const char *err)
{
    struct server *s = r->reply_ctx;
    s->pool->info.loading = false; /* (a server that does not answer loads nothing we know of) */
    s->pool->info.loading_eta[0] = '\0';
    if (err == NULL && ri != NULL && !ri->is_error) {
        s->pool->info.version[0] = '\0'; /* a restarted server may have been upgraded */
        info_parse(s, p, len, false);
    }
    if (r->client != NULL) {
        info_answer(r->client, (unsigned)r->reply_arg, out);
    }
}

void info_dispatch(struct client *c, const uint8_t *p, const struct req_info *ri)
{
    unsigned want = ri->args.n > 1 ? 0 : INFO_ALL;
    for (uint32_t i = 1; i < ri->args.n; i++) {
        want |= info_section_of(p + ri->args.v[i].off, ri->args.v[i].len);
    }
    info_wanted(c->pool);
    struct server *s = route_any(c->pool, c->id, 0);
    struct sconn *sc = s != NULL ? server_conn_for(s, c->id, 2) : NULL;
    const uint8_t *argv[2] = {(const uint8_t *)"INFO", (const uint8_t *)"default"};
    size_t lens[2] = {4, 7};
    if (sc == NULL || sconn_ensure(sc) != 0) {
        struct buf out; /* no server answers: the proxy's own figures still do */
        buf_init(&out);
        info_answer(c, want, &out);
        cqueue_local(c, out.data, out.len);
        buf_free(&out);
        return;
    }
    struct buf *out = sconn_out(sc);
    size_t before = out->len;
    c->pool->proto->build(out, 2, argv, lens);
    struct req *r = req_new(c->px, 0);
    r->reply = info_on_server;
    r->reply_ctx = s;
    r->reply_arg = want;
    cqueue_push(c, r, ri->len);
    sconn_queued(sc, r, out->len - before);
}
