#include "proxy/replica.h"

#include "conf/conf.h"
#include "proxy/pool.h"
#include "proxy/server.h"

#define NO_SERVER_MSG  "no server is available for this key"
#define NO_REPLICA_MSG "no replica is available for this read (read_from: replica)"

bool replica_pool_is_split(const struct pool *p)
{
    return p->cp->read_from != READ_FROM_NONE;
}

bool replica_server_is_master(const struct server *s)
{
    const struct pool *p = s->pool;
    return replica_pool_is_split(p) && s->idx == p->cp->master;
}

static struct server *replica_master(struct pool *p)
{
    return &p->servers[p->cp->master];
}

struct server *replica_route(struct pool *p, const uint8_t *key, size_t len, bool readonly)
{
    enum conf_read_from rf = p->cp->read_from;
    if (rf == READ_FROM_NONE) {
        return pool_route(p, key, len);
    }
    if (!readonly || rf == READ_FROM_MASTER) {
        return replica_master(p);
    }
    /* the distribution holds only the replicas: this is a live one or NULL */
    struct server *s = pool_route(p, key, len);
    if (s == NULL && rf == READ_FROM_PREFER_REPLICA) {
        return replica_master(p);
    }
    return s;
}

const char *replica_route_error(const struct pool *p, bool readonly)
{
    if (readonly && p->cp->read_from == READ_FROM_REPLICA) {
        return NO_REPLICA_MSG;
    }
    return NO_SERVER_MSG;
}
