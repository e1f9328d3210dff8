#include "stats/status.h"

#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <unistd.h>

#include "conf/options.h"
#include "stats/histo.h"
#include "stats/stats_fields.h"

static const char *const status_modes[] = {"plain", "master_replica", "sentinel", "cluster"};

#define STATUS_NAME(name, kind, desc) #name,
static const char *const status_pool_fields[] = {STATS_POOL_FIELDS(STATUS_NAME)};
static const char *const status_pool_extra[] = {STATS_POOL_EXTRA_FIELDS(STATUS_NAME)};
static const char *const status_server_fields[] = {STATS_SERVER_FIELDS(STATUS_NAME)};
static const char *const status_group_fields[] = {STATS_GROUP_FIELDS(STATUS_NAME)};
#undef STATUS_NAME

static void status_key_str(struct buf *out, const char *key, const char *v)
{
    buf_printf(out, ",\"%s\":", key);
    buf_json_str(out, v);
}

static void status_fields(struct buf *out, const char *const *names, const int64_t *v, int n)
{
    for (int i = 0; i < n; i++) {
        buf_printf(out, ",\"%s\":%lld", names[i], (long long)v[i]);
    }
}

/* Nonzero buckets as [upper bound us, count]: the page subtracts two of them to
 * get the quantiles of the last second, not of the whole uptime. */
static void status_histo(struct buf *out, const struct histo *h)
{
    buf_printf(out,
               ",\"lat\":{\"count\":%llu,\"sum\":%llu,\"max\":%llu,\"p50\":%llu,\"p99\":%llu,"
               "\"b\":[",
               (unsigned long long)h->count, (unsigned long long)h->sum, (unsigned long long)h->max,
               (unsigned long long)histo_quantile(h, 0.5),
               (unsigned long long)histo_quantile(h, 0.99));
    const char *sep = "";
    for (uint32_t i = 0; i < HISTO_BUCKETS; i++) {
        if (h->b[i] != 0) {
            buf_printf(out, "%s[%llu,%llu]", sep, (unsigned long long)histo_bucket_upper(i),
                       (unsigned long long)h->b[i]);
            sep = ",";
        }
    }
    buf_append_str(out, "]}");
}

static void status_server(struct buf *out, const struct stats_server_snap *s)
{
    buf_append_str(out, "{\"name\":");
    buf_json_str(out, s->name);
    status_key_str(out, "addr", s->addr);
    buf_printf(out, ",\"role\":\"%s\",\"state\":\"%s\",\"failures\":%u,\"ejected_until_ms\":%lld",
               stats_role_name(s->role), stats_state_name(s->state), s->failures,
               (long long)s->ejected_until_ms);
    status_key_str(out, "last_error", s->last_error);
    buf_printf(out, ",\"last_error_ms\":%lld", (long long)s->last_error_ms);
    status_fields(out, status_server_fields, s->v, SS_COUNT);
    /* a sentinel group's failovers and how long they held writes (zero elsewhere) */
    status_fields(out, status_group_fields, s->g, SG_COUNT);
    status_histo(out, stats_server_lat(s));
    buf_append_str(out, ",\"replicas\":[");
    for (uint32_t k = 0; k < s->nreplicas; k++) {
        buf_append_str(out, k ? ",{\"addr\":" : "{\"addr\":");
        buf_json_str(out, s->replicas[k].addr);
        buf_printf(out, ",\"state\":\"%s\"}", stats_state_name(s->replicas[k].state));
    }
    buf_append_str(out, "]}");
}

static void status_pool(struct buf *out, const struct stats_pool_snap *p)
{
    buf_append_str(out, "{\"name\":");
    buf_json_str(out, p->name);
    status_key_str(out, "listen", p->listen);
    buf_printf(out, ",\"redis\":%s,\"mode\":\"%s\"", p->redis ? "true" : "false",
               status_modes[p->mode % STATS_MODE_COUNT]);
    status_fields(out, status_pool_fields, p->v, SP_COUNT);
    status_fields(out, status_pool_extra, p->x, SPX_COUNT);
    status_histo(out, &p->lat);
    buf_append_str(out, ",\"servers\":[");
    for (uint32_t j = 0; j < p->nservers; j++) {
        if (j > 0) {
            buf_append_str(out, ",");
        }
        status_server(out, &p->servers[j]);
    }
    buf_append_str(out, "]}");
}

static void status_workers(struct buf *out, const struct stats_snap *s)
{
    buf_append_str(out, ",\"workers\":[");
    for (uint32_t i = 0; i < s->nworkers; i++) {
        const struct stats_worker_snap *w = &s->workers[i];
        buf_printf(out, "%s{\"id\":%d,\"pid\":%d,\"started_ms\":%lld,\"restarts\":%u}",
                   i ? "," : "", w->id, w->pid, (long long)w->started_ms, w->restarts);
    }
    buf_append_str(out, "]");
}

void status_render_json(const struct stats_snap *s, time_t start_time, struct buf *out)
{
    static const char *const reloads[] = {"none", "ok", "failed"};
    struct timeval tv;
    gettimeofday(&tv, NULL);
    char host[256];
    if (gethostname(host, sizeof(host)) != 0) {
        strcpy(host, "unknown");
    }
    host[sizeof(host) - 1] = '\0';
    buf_printf(out, "{\"service\":\"nutcracker\",\"version\":\"%s\"", NC_VERSION);
    status_key_str(out, "source", host);
    buf_printf(out,
               ",\"pid\":%d,\"time_ms\":%lld,\"uptime\":%lld,\"generation\":%llu,"
               "\"reload_failures\":%llu,\"last_reload\":\"%s\",\"last_reload_ms\":%lld,"
               "\"total_connections\":%llu,\"curr_connections\":%llu",
               (int)getpid(), (long long)tv.tv_sec * 1000 + tv.tv_usec / 1000,
               (long long)(tv.tv_sec - start_time), (unsigned long long)s->generation,
               (unsigned long long)s->reload_failures, reloads[s->last_reload % 3],
               (long long)s->last_reload_ms, (unsigned long long)s->total_connections,
               (unsigned long long)s->curr_connections);
    status_workers(out, s);
    buf_append_str(out, ",\"pools\":[");
    for (uint32_t i = 0; i < s->npools; i++) {
        if (i > 0) {
            buf_append_str(out, ",");
        }
        status_pool(out, &s->pools[i]);
    }
    buf_append_str(out, "]}\n");
}
