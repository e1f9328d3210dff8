#include "proxy/pool_stats.h"

#include <stdlib.h>
#include <string.h>

#include "proxy/cluster.h"
#include "proxy/pool.h"
#include "proxy/proxy.h"
#include "proxy/server.h"
#include "stats/snap.h"

struct stats_snap *pool_stats_snap(const struct proxy *px)
{
    /* every pool of px->pools was built from the same generation, pool i from
     * its pool i: that layout, names included, is the snapshot's */
    struct stats_snap *s = px->npools > 0 ? stats_snap_of_conf(px->pools[0]->conf)
                                          : calloc(1, sizeof(struct stats_snap));
    if (s == NULL) {
        return NULL;
    }
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
            ss->lat = sv->lat_server;
        }
    }
    return s;
}
