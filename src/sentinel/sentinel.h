/*
 * sentinel: where the masters of a sentinel pool's groups are (SPEC 9).
 *
 * The client runs entirely on the event loop, with a query link to one
 * sentinel at a time and a subscription link to every sentinel of the list:
 *
 *   query link: [AUTH sentinel_auth] then, every sentinel_heartbeat ms,
 *               SENTINEL get-master-addr-by-name <group>, SENTINEL MASTER <group>
 *               and, when the pool reads from replicas, SENTINEL REPLICAS <group>
 *               for every group
 *   sub links:  [AUTH sentinel_auth] [SENTINEL MASTER <group> for every group,
 *               when the pool holds requests for a failover: whether this
 *               sentinel leads one whose first steps were published before]
 *               SUBSCRIBE +switch-master [+sdown] [the steps of a failover, when
 *               the pool holds], then a PING every heartbeat so a silent
 *               sentinel is noticed
 *
 * A failed or silent query link moves on to the next sentinel of the list; a
 * subscription stays with its sentinel and reconnects at the next heartbeat
 * (the steps of a failover are published by the sentinel leading it only, so
 * each one is listened to). Whatever a link learns of a master is only a
 * candidate: a short-lived connection checks it with [AUTH redis_auth] ROLE,
 * and only a server that says "master" is passed on (master_found). The first
 * master of a group is passed on once every subscription has said whether its
 * sentinel leads a failover of it (or failed): a proxy that starts during one
 * must not send writes to a master about to be made a replica. While no
 * sentinel answers, the pool keeps serving with the masters it knows.
 *
 * What it learns goes to a group sink (proxy/groups.h): the pool's in the
 * proxy, a recording one in a unit test. It knows no pool.
 */
#ifndef NC_SENTINEL_H
#define NC_SENTINEL_H

#include "conf/conf.h"
#include "event/ev.h"
#include "proxy/groups.h"
#include "proxy/pool.h"

struct sentinel;

/* Start watching the groups of cp (a pool with sentinels), telling sink what
 * it learns; NULL when out of memory. */
struct sentinel *sentinel_create(struct ev_loop *loop, const struct conf_pool *cp,
                                 struct group_sink sink);
/* The watcher a pool stops it with (pool->watcher). */
struct pool_watcher *sentinel_watcher(struct sentinel *sn);
void sentinel_destroy(struct sentinel *sn);

#endif
