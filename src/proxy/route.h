/*
 * route: where a request goes. The only code that turns keys into servers: the
 * hash tag, the hash, the distribution, the pool's mode (plain, master/replica,
 * sentinel groups), the replica chosen for a read, and the fall-back when a
 * target cannot be reached. The router (router.c) only acts on the answer.
 *
 * Two servers answer for a key: its shard, the distribution member that owns
 * it (a sentinel group; in a master/replica pool, where every server holds
 * everything, the master), and its target, where the request is sent (the
 * shard, the master, or a replica). Keys of one request must share a shard.
 */
#ifndef NC_ROUTE_H
#define NC_ROUTE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "proto/proto.h"

struct pool;
struct server;

struct route {
    struct server *shard;
    struct server *target;
};

/* Why a request has no target. */
enum route_miss {
    ROUTE_HIT = 0,
    ROUTE_MISS_SERVER,  /* no live server for the key */
    ROUTE_MISS_REPLICA, /* a read with read_from replica, and no usable replica */
    ROUTE_MISS_CROSS,   /* keys of one request on several shards */
};

/* Place one key (len 0: the keyless place, server 0 or the master). */
int route_key(struct pool *p, const uint8_t *key, size_t len, bool readonly, struct route *out);
/* Place a request that goes whole to one server: by its first key, every other
 * key on the same shard (ROUTE_MISS_CROSS otherwise; with a random
 * distribution a request has no place but the one drawn for it). */
int route_request(struct pool *p, const uint8_t *req, const struct spans *keys, bool readonly,
                  struct route *out);
/* Any live server, for a keyless request every server answers alike: one the
 * client's connection is up to, else one that has not failed lately, else any;
 * skip leaves out that many of those, in that order (a caller trying again).
 * NULL if none is left. */
struct server *route_any(struct pool *p, uint64_t client_id, uint32_t skip);
/* Whether the server of key (NULL: any of the pool's shards) is not known yet
 * but soon may be: a cluster pool with no slot map yet (or no master for the
 * slot in it), a sentinel group whose first look for its master is not over. */
bool route_pending(struct pool *p, const uint8_t *key, size_t len);
/* Every server of the pool holds every key: a master and its replicas, or one
 * server (or one sentinel group). */
bool route_one_dataset(const struct pool *p);
/* The client's error for a miss: a constant, or the text written to buf. */
const char *route_miss_text(const struct pool *p, int miss, const struct route *r, char *buf,
                            size_t cap);
/* Whether reads s could not serve may go elsewhere: s is a replica (of a
 * sentinel group, or of a static master/replica pool) and reads go to
 * replicas (read_from: replica or prefer_replica). */
bool route_may_fall_back(const struct server *s);
/* A read for target could not be connected, or its connection was lost with
 * the read written: where to send it instead. Another usable replica of the
 * same data (replicas_too), else with read_from: prefer_replica the master
 * (a sentinel group's replica: the group), else NULL. */
struct server *route_fallback(struct server *target, bool readonly, bool replicas_too);

#endif
