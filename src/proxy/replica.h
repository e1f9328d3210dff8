/*
 * replica: read/write splitting in a redis pool whose server named "master" is
 * the master and whose other servers are its replicas (SPEC 10, meitu's syntax).
 *
 * The pool's distribution holds the replicas only (the master takes no keys),
 * so a read is placed among the live replicas by the pool's hash and
 * distribution; everything else goes to the master, which is never ejected.
 * A pool without a master is untouched: replica_route is pool_route then.
 */
#ifndef NC_REPLICA_H
#define NC_REPLICA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct pool;
struct server;

/* True when p is a master/replica pool. */
bool replica_pool_is_split(const struct pool *p);
/* True when s is the master of a master/replica pool. */
bool replica_server_is_master(const struct server *s);
/* The server for a request with this key; readonly: the command only reads.
 * NULL when no server may take it (no live replica with read_from replica). */
struct server *replica_route(struct pool *p, const uint8_t *key, size_t len, bool readonly);
/* The error for a request replica_route found no server for. */
const char *replica_route_error(const struct pool *p, bool readonly);

#endif
