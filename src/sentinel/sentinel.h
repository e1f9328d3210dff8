/*
 * sentinel: where the masters of a sentinel pool's groups are (SPEC 9).
 *
 * The client runs entirely on the event loop, with two connections to one
 * sentinel at a time:
 *
 *   query link: [AUTH sentinel_auth] then, every sentinel_heartbeat ms,
 *               SENTINEL get-master-addr-by-name <group>, SENTINEL MASTER <group>
 *               and, when the pool reads from replicas, SENTINEL REPLICAS <group>
 *               for every group
 *   sub link:   [AUTH sentinel_auth] SUBSCRIBE +switch-master [+sdown], then a
 *               PING every heartbeat so a silent sentinel is noticed
 *
 * A failed or silent link moves on to the next sentinel of the list (both links
 * follow the same current sentinel). Whatever a link learns is only a
 * candidate: a short-lived connection checks it with [AUTH redis_auth] ROLE,
 * and only a server that says "master" is passed on (master_found). While no
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
