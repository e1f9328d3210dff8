/*
 * hold: a sentinel group's requests waiting in the proxy while its master
 * changes (failover_hold), so that a failover loses no acknowledged write and
 * clients see (almost) no error. The sentinel client says when a failover
 * begins and ends (groups.h); the router asks here before sending.
 *
 * In a pool without sentinels, failover_hold_on_crash holds a server's
 * requests the same way (DOWN) while it cannot be reached: a restart. Nobody
 * announces its return, so a connection tries it every HOLD_RETRY_MS (a redis
 * is asked PING, to wait out its load too); the first success releases what
 * waits, failover_hold ms answers it with an error.
 *
 *   idle ──begins(planned)──> PROMOTING  writes wait, and every later request
 *     │   (the leader is                 of a client that has one waiting (so
 *     │    promoting a replica)          it never reads around its own write);
 *     │                                  reads of other clients go on to the old
 *     │                                  master; WAIT on its connections checks
 *     │                                  that what it acknowledged reached a replica
 *     └──begins(down), or the master ──> DOWN  every request for the master waits
 *        cannot be reached                      (failover_hold_on_crash only)
 *
 *   new master (ROLE: master) ──> SWITCHING: everything waits until the old
 *        master answered what it has (at most HOLD_DRAIN_MS), then the group
 *        moves and the held requests go to the new master, in order
 *   abort (the leader's -failover-abort-*) ──> they go to the master in use
 *   DOWN that we saw (a refusal), while the sentinels do not say it and no
 *        replica is promoted: the master answers a PING (tried every
 *        HOLD_RETRY_MS: a restart too short for a failover) ──> they go to it
 *   failover_hold ms after it began ──> PROMOTING: each gets an error (the old
 *        master may be demoted any moment: nothing held goes there); DOWN: an
 *        error too when we saw the master fail ourselves, else (only the
 *        sentinels said it was down) they go to it
 *
 * Before a group's master is first known, while the sentinels' first look for
 * it is not over (a proxy just started, a worker just forked), its requests
 * wait too: FINDING, released when the master is found, answered "not known
 * yet" when the look ends with none or failover_hold passes.
 *
 * A held request keeps its bytes (an ordinary one leaves them in its
 * connection's output buffer): they count against --buffer-limit (past it the
 * oldest held get an error) and, as requests in flight, against the client's
 * limit. A request's `timeout` starts when it is sent, not while it waits.
 * Requests not written in full to a connection that closes, and the reads
 * written to it (a master's connections keep the bytes of what they sent until
 * it is answered: sconn.c), are taken back here while the group holds, rather
 * than answered with the connection's error; a write the server may have run
 * gets the error.
 */
#ifndef NC_HOLD_H
#define NC_HOLD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "proto/proto.h"

struct client;
struct proxy;
struct req;
struct server;
struct hold;
struct hold_entry;
struct pool;

/* A request for server s (its target: a group's master, or a hidden replica
 * of a group) from client c, not sent yet. With err 0: whether it must wait
 * because its group holds; with err (an errno code: the connection to the
 * master could not be made), whether a crash hold takes it. True: it was
 * queued on the client and held. */
bool hold_take(struct client *c, struct server *s, const uint8_t *p, const struct req_info *ri,
               int err);
/* The same for fragment fr of a split request (keys idx, or the whole request
 * when idx is NULL): its bytes are built here instead of in a connection. */
bool hold_take_frag(struct client *c, struct req *fr, struct server *s, const uint8_t *p,
                    const struct req_info *ri, const uint32_t *idx, uint32_t nidx, int err);

/* A request the caller builds itself (a transaction's MULTI ... EXEC): whether
 * a write for s waits now (err as for hold_take); if so the caller queues its
 * req on the client and gives it with its bytes to hold_put. */
bool hold_admits_write(struct client *c, struct server *s, int err);
void hold_put(struct client *c, struct server *s, struct req *r, const uint8_t *p, size_t len);

/* The sentinels' news (groups.c). begins: a replica of g's master is being
 * promoted (down false), or that master is down (down true); ends: the
 * failover is over and g keeps its master (why: how, for the log). */
void hold_begin(struct server *g, bool down);
void hold_end(struct server *g, const char *why);
/* The sentinels see g's master up again: a hold that only their reports of it
 * down began ends (not one that saw it refused, nor a promotion). */
void hold_down_ends(struct server *g);
/* The sentinels' first look for g's master ended with none: what waits for
 * it is answered that it is not known, and later requests are at once. */
void hold_unknown(struct server *g);
/* g's master is at sa (ROLE said so): move g there, then release what waits.
 * True when g moves (maybe once the old master is drained). leaving: a
 * sentinel leads a failover away from sa (g had no master: the proxy started
 * during it), so the writes wait for the switch as if its start was heard. */
bool hold_switch(struct server *g, const struct sockaddr *sa, socklen_t len, const char *why,
                 bool leaving);

/* A connection of s failed at the socket (refused, reset, closed with work):
 * with failover_hold_on_crash, its group's master is unreachable. */
void hold_master_lost(struct server *s);
/* s is held for while it cannot be reached, in a pool without sentinels (its
 * restart): a request that needs a connection of its client's own to s (a
 * blocking command, SUBSCRIBE, WATCH) waits before it is routed (route_pending). */
bool hold_restarting(struct server *s);
/* A connection to s was made: a cluster node marked unreachable is up again
 * (cluster.h); a memcached of a pool held while it could not be reached
 * (failover_hold_on_crash) gets what waited for it (a redis: once it answers
 * PING, not -LOADING). */
void hold_server_reached(struct server *s);
/* A connection of s closes: whether requests it did not finish go back to the
 * hold (hold_return) instead of getting its error. */
bool hold_takes_back(const struct server *s);
/* Whether connections to s keep the bytes of requests written but not yet
 * answered (a sentinel group's master with failover_hold): if the connection
 * is lost, the reads among them can wait for the new master too. */
bool hold_keeps_sent(const struct server *s);
/* Request r (len bytes at p; NULL: they are gone, only a cluster request keeps
 * its own) back in s's hold: before every request held after it; *at is where
 * the previous one went (NULL first). written: all its bytes reached the
 * server, which may have run it: only a read may then be sent again. False
 * when it cannot be held (it gets the connection's error). */
bool hold_return(struct server *s, struct req *r, const uint8_t *p, size_t len, bool written,
                 struct hold_entry **at);

/* A reload kept the group: `to` takes over what `from` holds. */
void hold_adopt(struct server *to, struct server *from);
/* Answer everything held with an error and free the hold (the group goes). */
void hold_free(struct server *g, const char *why);
/* Nothing is held. */
bool hold_idle(const struct server *g);
/* Bytes the held requests of g keep. */
size_t hold_memory(const struct server *g);
/* A cluster pool's hold (proxy/cluster.h says when its requests go). */
enum hold_try { HOLD_TRY_SENT = 0, HOLD_TRY_STAY, HOLD_TRY_FAIL };
/* Offered a held request r (waiting since since_us): sent it (SENT), keep it
 * (STAY), or it gets the error *why (FAIL). */
typedef int (*hold_try_fn)(void *ctx, struct req *r, uint64_t since_us, const char **why);
struct hold *hold_cluster_create(struct pool *p, int64_t *stats);
/* Answer everything held with why, and free the hold. */
void hold_cluster_free(struct hold *h, const char *why);
/* Hold r of client c (len bytes, kept by r) with its place seq among the
 * client's requests: before any held request of c with a larger seq. */
void hold_cluster_put(struct hold *h, const struct client *c, struct req *r, size_t len,
                      uint64_t seq);
/* Client client_id has a request held whose seq is below seq. */
bool hold_cluster_has(const struct hold *h, uint64_t client_id, uint64_t seq);
/* Offer every held request to try_fn, oldest first; once one of a client stays,
 * that client's later ones stay too (its order). Returns how many were sent. */
uint32_t hold_cluster_walk(struct hold *h, hold_try_fn try_fn, void *ctx);
uint32_t hold_cluster_count(const struct hold *h);
size_t hold_cluster_memory(const struct hold *h);
/* A reload: the hold now belongs to pool to (its counters at stats). */
void hold_cluster_adopt(struct hold *h, struct pool *to, int64_t *stats);

/* Over --buffer-limit by excess bytes: the oldest held requests of px get an
 * error until that much is freed; returns the bytes freed. */
size_t hold_shed(struct proxy *px, size_t excess);

#endif
