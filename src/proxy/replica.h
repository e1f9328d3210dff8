/*
 * replica: read/write splitting (SPEC 10).
 *
 * Static pools (meitu's syntax): a redis pool whose server named "master" is
 * the master and whose other servers are its replicas. The pool's
 * distribution holds the replicas only (the master takes no keys), so a read
 * is placed among the live replicas by the pool's hash and distribution;
 * everything else goes to the master, which is never ejected.
 *
 * Sentinel pools with read_from replica or prefer_replica: keys are placed on
 * groups as always; a read of a key on group G goes to one of G's usable
 * replicas, which the sentinel client lists from SENTINEL REPLICAS G at every
 * heartbeat (replica_group_update). Each replica endpoint is a hidden struct
 * server owned by G (its own address and connections, G's counters), picked by
 * rendezvous hashing of the key so that a key keeps its replica while the set
 * is stable, and never the address G's master has now.
 *
 * A pool without a master nor sentinel replica reads is untouched:
 * replica_route is pool_route then.
 */
#ifndef NC_REPLICA_H
#define NC_REPLICA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

struct pool;
struct server;
struct replica_set;

/* True when p is a static master/replica pool. */
bool replica_pool_is_split(const struct pool *p);
/* True when s is the master of a static master/replica pool. */
bool replica_server_is_master(const struct server *s);
/* True when p is a sentinel pool whose reads go to its groups' replicas. */
bool replica_pool_reads_replicas(const struct pool *p);
/* The server for a request with this key; readonly: the command only reads.
 * NULL when no server may take it (no usable replica with read_from replica). */
struct server *replica_route(struct pool *p, const uint8_t *key, size_t len, bool readonly);
/* The same, and *group is the pool server the key is placed on (NULL when none
 * is live), for replica_route_error_group. */
struct server *replica_route_group(struct pool *p, const uint8_t *key, size_t len, bool readonly,
                                   struct server **group);
/* The error for a request replica_route found no server for. */
const char *replica_route_error(const struct pool *p, bool readonly);
/* The same, naming a sentinel group that has no usable replica: a constant, or
 * the text written to buf. */
const char *replica_route_error_group(const struct pool *p, const struct server *group,
                                      bool readonly, char *buf, size_t cap);
/* A request to s could not be connected: the server to try instead (a hidden
 * replica's group with read_from prefer_replica), or NULL. */
struct server *replica_fallback(const struct server *s, bool readonly);

/* One replica as the sentinels list it. */
struct replica_addr {
    struct sockaddr_storage ss;
    socklen_t len;
    bool usable; /* the sentinels see it up and linked to its master */
};

/* The replicas the sentinels list now for group s, all of them: an endpoint
 * left out is no longer used, and freed once no request waits on it (one
 * that comes back before is reused). n == 0 with v NULL just drops what is
 * unused, as for a pool that does not read from replicas. */
void replica_group_update(struct server *s, const struct replica_addr *v, uint32_t n);
/* The sentinels announce that the replica of s at this address is down (or up
 * again): no read waits for the next heartbeat to see it. */
void replica_group_mark(struct server *s, const struct sockaddr *sa, socklen_t len, bool usable);
/* A connection to hidden replica s failed: after server_failure_limit failures
 * in a row it gets no read for server_retry_timeout ms, or until the sentinels
 * list it as usable again after a time they did not. */
void replica_endpoint_failed(struct server *s);

/* The set's owner side (server.c). */
/* The hidden replica servers of a group (memlimit walks their buffers too). */
uint32_t replica_set_count(const struct replica_set *rs);
struct server *replica_set_at(struct replica_set *rs, uint32_t i);
void replica_set_free(struct replica_set *rs);
bool replica_set_idle(const struct replica_set *rs);
/* s took over a set from a server of a reloaded pool: repoint every endpoint. */
void replica_set_adopt(struct server *s);

#endif
