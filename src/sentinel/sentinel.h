/*
 * sentinel: where the masters of a sentinel pool's groups are (SPEC 9).
 *
 * Each group of the pool is a server named after the group; its address is
 * runtime data that this client keeps current. It runs entirely on the event
 * loop, with two connections to one sentinel at a time:
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
 * and only a server that says "master" becomes the group's address
 * (server_set_addr: the old connections are closed, their requests answered
 * with an error, failovers counted). While no sentinel answers, the pool keeps
 * serving with the masters it knows. Replica lists (and +sdown about a replica)
 * go to replica_group_update / replica_group_mark (proxy/replica.h) as they
 * come: a replica takes only reads, so no ROLE check is needed for it.
 */
#ifndef NC_SENTINEL_H
#define NC_SENTINEL_H

struct pool;
struct sentinel;

/* Start watching the groups of p (a pool with sentinels); NULL when out of memory. */
struct sentinel *sentinel_create(struct pool *p);
void sentinel_destroy(struct sentinel *sn);

#endif
