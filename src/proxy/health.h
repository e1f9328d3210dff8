/*
 * health: whether a server takes requests. The only code that changes a
 * server's failure count, ejection and retry time (twemproxy's liveness,
 * SPEC 7), so the rules live in one place:
 *
 *   - a failure (refused connect, error, eof with work, timeout) counts; a
 *     response forgives them all;
 *   - a distribution member reaching server_failure_limit failures leaves the
 *     distribution for server_retry_timeout ms when auto_eject_hosts is set,
 *     and always when it is a replica of a master/replica pool (it holds no key
 *     of its own); a master is never ejected (writes have nowhere else to go);
 *   - a sentinel group's hidden replica reaching the limit gets no read for
 *     server_retry_timeout ms; its group is never touched.
 */
#ifndef NC_HEALTH_H
#define NC_HEALTH_H

#include <stdbool.h>
#include <stdint.h>

struct server;
struct pool;

struct health {
    uint32_t failures; /* in a row */
    bool ejected;      /* out of the distribution (a hidden replica: of the reads) */
    uint64_t retry_at_ms;
    /* the last failure, for the status page: why, and when (wall clock, ms) */
    char last_error[64];
    int64_t last_error_ms;
};

/* A failure of s; why says what went wrong (kept as its last error). */
void health_failure(struct server *s, const char *why);
void health_success(struct server *s);
/* s starts afresh: a new address, or listed usable again by the sentinels. */
void health_reset(struct server *s);
/* Whether hidden replica s takes reads now: one whose time out is over gets
 * another chance. */
bool health_replica_usable(struct server *s);
/* The pool's timer that brings ejected members back. */
void health_pool_init(struct pool *p);
void health_pool_stop(struct pool *p);

#endif
