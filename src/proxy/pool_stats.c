#include "proxy/pool_stats.h"

#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#include "net/sock.h"
#include "proxy/cluster.h"
#include "proxy/pool.h"
#include "proxy/proxy.h"
#include "proxy/replica.h"
#include "proxy/replica_check.h"
#include "proxy/server.h"
#include "stats/snap.h"

static int64_t pool_stats_wall_ms(void)
{
    struct timeval tv;
    gettimeofday(&tv, NULL);
    return (int64_t)tv.tv_sec * 1000 + tv.tv_usec / 1000;
}

static uint8_t pool_stats_state(const struct health *h)
{
    return h->ejected ? STATS_EJECTED : h->failures > 0 ? STATS_FAILING : STATS_LIVE;
}

/* The replicas the sentinels list for group g, as the status page shows them. */
static void pool_stats_replicas(struct stats_server_snap *ss, const struct server *g)
{
    const struct replica_set *rs = g->replicas;
    if (rs == NULL || rs->n == 0 || (ss->replicas = calloc(rs->n, sizeof(*ss->replicas))) == NULL) {
        return;
    }
    for (uint32_t k = 0; k < rs->n; k++) {
        const struct replica_ep *ep = rs->v[k];
        if (!ep->listed) {
            continue;
        }
        struct stats_replica_snap *r = &ss->replicas[ss->nreplicas];
        char addr[96]; /* ip:port, as the sentinels list it (ep->name is the log's) */
        sock_addr_str((const struct sockaddr *)&ep->srv.addr.ss, ep->srv.addr.len, addr,
                      sizeof(addr));
        if (stats_snap_set_str(&r->addr, addr) != 0) {
            break;
        }
        r->state = !ep->usable                    ? STATS_EJECTED
                   : !replica_check_ok(ep->check) ? STATS_NO_READS
                                                  : pool_stats_state(&ep->srv.health);
        ss->nreplicas++;
    }
}

/* What the status page says of server sv: read only. */
static void pool_stats_status(struct stats_server_snap *ss, const struct server *sv, int64_t wall,
                              uint64_t now)
{
    const struct health *h = &sv->health;
    ss->state = pool_stats_state(h);
    if (!replica_check_reads(sv->pool, sv->idx)) {
        ss->state = STATS_NO_READS;
    }
    ss->failures = h->failures;
    if (h->ejected && h->retry_at_ms > now) {
        ss->ejected_until_ms = wall + (int64_t)(h->retry_at_ms - now);
    }
    if (h->last_error_ms != 0) {
        stats_snap_set_str(&ss->last_error, h->last_error);
        ss->last_error_ms = h->last_error_ms;
    }
    if (sv->addr.known && sv->addr.len > 0) {
        char text[128];
        sock_addr_str((const struct sockaddr *)&sv->addr.ss, sv->addr.len, text, sizeof(text));
        stats_snap_set_str(&ss->addr, text);
    }
    pool_stats_replicas(ss, sv);
}

struct stats_snap *pool_stats_snap(const struct proxy *px)
{
    /* every pool of px->pools was built from the same generation, pool i from
     * its pool i: that layout, names included, is the snapshot's */
    struct stats_snap *s = px->npools > 0 ? stats_snap_of_conf(px->pools[0]->conf)
                                          : calloc(1, sizeof(struct stats_snap));
    if (s == NULL) {
        return NULL;
    }
    int64_t wall = pool_stats_wall_ms();
    uint64_t now = ev_now(px->loop);
    s->total_connections = px->total_connections;
    s->curr_connections = px->curr_connections;
    for (uint32_t i = 0; i < s->npools && i < px->npools; i++) {
        const struct pool *p = px->pools[i];
        struct stats_pool_snap *ps = &s->pools[i];
        memcpy(ps->v, p->stats, sizeof(ps->v));
        memcpy(ps->x, p->xstats, sizeof(ps->x));
        ps->lat = p->lat_request;
        const int64_t *cs = cluster_stats(p);
        if (cs != NULL) {
            memcpy(ps->c, cs, sizeof(ps->c));
        }
        for (uint32_t j = 0; j < p->nservers; j++) {
            const struct server *sv = &p->servers[j];
            /* the nodes a cluster pool learned follow the seeds of the file */
            struct stats_server_snap *ss =
                j < ps->nservers
                    ? &ps->servers[j]
                    : (ps->cluster ? stats_pool_snap_add_server(ps, sv->cs->name) : NULL);
            if (ss == NULL) {
                break;
            }
            memcpy(ss->v, sv->stats, sizeof(ss->v));
            memcpy(ss->g, sv->gstats, sizeof(ss->g));
            if (sv->lat_server.count != 0 && stats_server_lat_mut(ss) != NULL) {
                *ss->lat = sv->lat_server; /* (4 KB: none for a server not used) */
            }
            pool_stats_status(ss, sv, wall, now);
        }
    }
    return s;
}
