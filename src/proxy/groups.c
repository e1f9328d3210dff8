#include "proxy/groups.h"

#include <string.h>

#include "proxy/hold.h"
#include "proxy/pool.h"
#include "proxy/replica.h"
#include "proxy/server.h"

/* What the requests in flight to the old master are answered with. */
#define GROUP_SWITCH_MSG "master switched (failover)"

static struct server *group_server(void *ctx, uint32_t g)
{
    struct pool *p = ctx;
    return g < p->nservers ? &p->servers[g] : NULL;
}

static bool group_master_get(void *ctx, uint32_t g, struct sockaddr_storage *ss, socklen_t *len)
{
    struct server *s = group_server(ctx, g);
    if (s == NULL || !s->addr.known) {
        return false;
    }
    *ss = s->addr.ss;
    *len = s->addr.len;
    return true;
}

static bool group_master_found(void *ctx, uint32_t g, const struct sockaddr *sa, socklen_t len,
                               bool leaving)
{
    struct server *s = group_server(ctx, g);
    return s != NULL && hold_switch(s, sa, len, GROUP_SWITCH_MSG, leaving);
}

static void group_replicas_listed(void *ctx, uint32_t g, const struct replica_addr *v, uint32_t n)
{
    struct server *s = group_server(ctx, g);
    struct pool *p = ctx;
    if (s != NULL && p->replica_reads) {
        replica_group_update(s, v, n);
    }
}

static void group_replica_state(void *ctx, uint32_t g, const struct sockaddr *sa, socklen_t len,
                                bool usable)
{
    struct server *s = group_server(ctx, g);
    if (s != NULL) {
        replica_group_mark(s, sa, len, usable);
    }
}

static void group_failover_begins(void *ctx, uint32_t g, bool down)
{
    struct server *s = group_server(ctx, g);
    if (s != NULL) {
        hold_begin(s, down);
    }
}

static void group_failover_ends(void *ctx, uint32_t g, const char *why)
{
    struct server *s = group_server(ctx, g);
    if (s != NULL) {
        hold_end(s, why);
    }
}

static void group_down_ends(void *ctx, uint32_t g)
{
    struct server *s = group_server(ctx, g);
    if (s != NULL) {
        hold_down_ends(s);
    }
}

static void group_master_unknown(void *ctx, uint32_t g)
{
    struct server *s = group_server(ctx, g);
    if (s != NULL) {
        hold_unknown(s);
    }
}

static const struct group_sink_ops pool_group_ops = {
    group_master_get,      group_master_found,  group_replicas_listed, group_replica_state,
    group_failover_begins, group_failover_ends, group_down_ends,       group_master_unknown,
};

struct group_sink pool_group_sink(struct pool *p)
{
    return (struct group_sink){&pool_group_ops, p};
}
