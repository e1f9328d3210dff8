/*
 * replica_check: whether a replica holds its master's data: each replica of
 * a static master/replica pool, of a sentinel group when the pool reads from
 * replicas (a sentinel looks at a replica every 10 s by default: one restarted
 * empty stays listed as usable meanwhile), and of a cluster shard when the
 * cluster pool reads from replicas (cluster.c; its map says "loading" only as
 * often as it is refreshed, and nothing of a link that is down). redis answers reads from
 * whatever it has: a replica that restarted answers from an empty (or old)
 * dataset until its first sync with the master is over, and one in a full
 * sync drops its data to load the master's. The proxy asks each replica INFO
 * replication on a connection of its own (query_conn: apart from the clients'
 * connections, stats and health) and takes out of the reads one that cannot
 * have the master's data:
 *
 *   linked to its master                              reads
 *   its link lost after it was up (the master is      reads (what redis'
 *     away, not the data)                               replica-serve-stale-data does)
 *   in a full sync; not synced since it started or    no reads until it says
 *     was made a replica; role:master; unreachable;     it is linked
 *     no answer within REPLICA_CHECK_WAIT_MS; its
 *     connection lost (a restart ends it)
 *   an answer not understood (an error: INFO not in   reads, and a warning once
 *     the ACL user's commands, renamed; other text)
 *   a static pool's replica linked, but to another     no reads until it
 *     replication history than the master's              follows the master's
 *     (master_replid differs: it replicates another
 *     shard's master, or an old one left running)
 *
 * For that last one a static pool's master is asked too (its answer decides
 * nothing of its own; while it gives no replid, unreachable or too old, the
 * replicas are not compared). A sentinel group's replicas are the ones the
 * sentinels list for its master: not compared.
 *
 * It asks every REPLICA_CHECK_MS while the replica takes reads, every
 * REPLICA_CHECK_OUT_MS while it does not. A replica takes reads until its first
 * answer (a few ms), or after a reload that kept it, what the last pool's check
 * said. Each process (worker) asks for itself.
 */
#ifndef NC_REPLICA_CHECK_H
#define NC_REPLICA_CHECK_H

#include <stdbool.h>
#include <stdint.h>

#include "proxy/pool.h"

#define REPLICA_CHECK_MS      1000
#define REPLICA_CHECK_OUT_MS  200
#define REPLICA_CHECK_WAIT_MS 1000
/* The check's connection in a replica's CLIENT LIST. */
#define REPLICA_CHECK_NAME "nutcracker-replica-check"

struct replica_check;

/* Start asking replica s of pool p (NULL: out of memory). */
struct replica_check *replica_check_new(struct pool *p, struct server *s);
/* Stop asking and free (NULL: nothing). */
void replica_check_free(struct replica_check *rc);
/* Whether the replica may take reads as far as the check knows (NULL: yes). */
bool replica_check_ok(const struct replica_check *rc);
/* A reload moved the replica (a sentinel group's) to pool p: its settings from now on. */
void replica_check_moved(struct replica_check *rc, struct pool *p);

/* Start asking p's replicas and master, if p is a static master/replica pool
 * whose reads go to replicas. 0, or -1 out of memory. */
int replica_check_start(struct pool *p);
/* Stop asking and free what the checks hold (the pool retires or goes). */
void replica_check_stop(struct pool *p);
/* A reload kept server i of pool np as server j of pool op (which retires):
 * the new check starts from the old one's verdict, not from "takes reads", so
 * a replica in a sync gets no read in between. Then pool_rebuild(np). */
void replica_check_inherit(struct pool *np, uint32_t i, const struct pool *op, uint32_t j);
/* Whether p's server i may take reads as far as the check knows. */
bool replica_check_reads(const struct pool *p, uint32_t i);

#endif
