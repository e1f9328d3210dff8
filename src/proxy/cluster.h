/*
 * cluster: a redis_cluster pool (README, Redis Cluster; docs/architecture.md).
 *
 * The pool's servers are the seeds of the file followed by every node the
 * cluster named since (each a server of the pool named host:port, appended,
 * never moved: requests point at their connections). This module owns the
 * slot map (slot -> the server of its master, and the masters' replicas),
 * learns it from the nodes (cluster_refresh.c: CLUSTER SHARDS on a private
 * connection), and carries every request of the pool to the master of its
 * slot, following the cluster's answers:
 *
 *   reply            what happens to the request
 *   -MOVED s h:p     the map says s is at h:p now; sent there (a refresh follows)
 *   -ASK s h:p       sent to h:p once, after ASKING
 *   -TRYAGAIN        held, tried again a little later (a slot half moved)
 *   -CLUSTERDOWN     held; one request at a time tries until the cluster serves
 *   master refused   held until the map names a new master (or it comes back)
 *   anything else    the client's reply
 *
 * Held requests wait in the pool's cluster hold (proxy/hold.c) in the order
 * their clients sent them, at most failover_hold ms from the first wait, then
 * get the last reason as an error; a held request's wait does not count
 * against `timeout`, which starts each time it is sent. A request already
 * written to a master whose connection fails gets that error (its outcome is
 * unknown); one never written waits for the next master.
 *
 * Per-client order: a request keeps its bytes until answered (r->cx), and a
 * client's later request goes behind its held ones; a request for a slot whose
 * master changed in the map while the same client has requests out waits for
 * them, so a redirected request never overtakes a later one of its client.
 */
#ifndef NC_CLUSTER_H
#define NC_CLUSTER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "proto/proto.h"

struct pool;
struct client;
struct req;
struct route;
struct server;
struct hold;

/* How many servers (seeds + nodes learned) a cluster pool can have. */
#define CLUSTER_POOL_MAX_SERVERS 512u

/* The pool's side (pool.c, reload.c). */
int cluster_pool_init(struct pool *p);
/* Before the pool's servers go: stop, answer what is held. */
void cluster_pool_stop(struct pool *p);
/* After: free the rest. Both do nothing for another kind of pool. */
void cluster_pool_free(struct pool *p);
/* A reload replaced p: stop asking the cluster; held requests still go out. */
void cluster_pool_retire(struct pool *p);
/* Reload: np takes op's nodes (their connections and requests), slot map,
 * counters and held requests, when the connection settings did not change. */
void cluster_pool_inherit(struct pool *np, struct pool *op, bool keep_conns);
/* Nothing held. */
bool cluster_pool_idle(const struct pool *p);
/* The per-pool counters (stats_fields.h SC_*). */
const int64_t *cluster_stats(const struct pool *p);
/* The pool's hold of requests (hold.c), or NULL. */
struct hold *cluster_hold_of(const struct pool *p);

/* Routing (router.c): true when the cluster took the request (KEY, SPLIT,
 * ALL, DATASET); false for what the generic router does (ANY, TXN, PUBSUB). */
bool cluster_dispatch(struct client *c, const uint8_t *p, const struct req_info *ri);
/* route.c: the master (or replica for a read) of the key's slot in the map as
 * it is, for watched transactions and subscriptions, which are not redirected. */
int cluster_route_key(struct pool *p, const uint8_t *key, size_t len, bool readonly,
                      struct route *out);
/* The master of slot in the map as it is (NULL: none known). */
struct server *cluster_slot_master(struct pool *p, uint16_t slot);
/* Whether every key of keys (in req) is in one slot. */
bool cluster_keys_one_slot(const uint8_t *req, const struct spans *keys);
/* Whether the master of key's slot (NULL key: of any slot) is not known yet:
 * no map yet, or no master for the slot in it (then the map is asked for). */
bool cluster_pending(struct pool *p, const uint8_t *key, size_t len);
/* A request to node s timed out (a stopped or overloaded process: connecting
 * still succeeds): until it answers again, its requests wait and one at a
 * time is sent (as for CLUSTERDOWN), instead of each waiting out its timeout
 * there. */
void cluster_node_timed_out(struct server *s);
/* Whether s is a node marked unreachable (its requests wait for a new map). */
bool cluster_node_down(const struct server *s);
/* A master of the map, for what any one of them answers (a subscription: the
 * cluster hands every PUBLISH to every node): prefer when it is not known to
 * be failing, else the first that is not (one that died is not waited for
 * while its replica takes over), else prefer or the first; NULL without a map. */
struct server *cluster_any_master(struct pool *p, struct server *prefer);
/* Whether a master of the map is known to be failing (unreachable, failed,
 * saying CLUSTERDOWN, timing out): a request for every master waits for its
 * heir (router.c), as one for its slots does. */
bool cluster_master_fails(struct pool *p);
/* s is a master of the map (INFO's keyspace counts masters only). */
bool cluster_is_master(const struct server *s);

/* Replies (req.c): r's reply p came; true when the cluster took r back (a
 * redirection: it is sent again or held), false when it goes to the client. */
bool cluster_reply(struct req *r, const uint8_t *p, size_t len, const struct rsp_info *ri);
/* A reply before r's own (a transaction's QUEUED, sconn.c) was the error p: a
 * redirection there makes the node abort the transaction, which then goes
 * where it says as if its EXECABORT were that redirection. */
void cluster_skipped_reply(struct req *r, const uint8_t *p, size_t len);
/* A reply from a node that the proxy passes on rather than redirects (to a
 * WATCH, or a QUEUED of a watched transaction): a MOVED there moves the map as
 * any MOVED does. Returns its CLUSTER_REPLY_ kind. */
int cluster_note_redirect(struct server *from, const uint8_t *p, size_t len);
/* A transaction without WATCH (txn.c): MULTI, its commands and EXEC, len
 * bytes at p with ncmds commands, for slot (-1: keyless), as one request r of
 * the client that follows the cluster's redirections (r is queued on c). */
void cluster_submit_txn(struct client *c, struct req *r, const uint8_t *p, size_t len, int slot,
                        uint32_t ncmds);
/* A blocking command (blocking.h) of the client, all its keys in one slot
 * (else CROSSSLOT, and false): sent on the client's own connection to the
 * slot's master, following redirections as any request does (a node that
 * gives the slot away answers a client blocked there with MOVED, having
 * popped nothing for it). */
bool cluster_submit_blocking(struct client *c, const uint8_t *p, const struct req_info *ri);
/* r failed with an error (its connection closed): it leaves the count of its
 * client's requests out. */
void cluster_req_failed(struct req *r);
/* A connection to s failed at the socket: its node may be down (hold.c). */
void cluster_node_lost(struct server *s);
/* A connection to s was made: it is not down (a map query that reached it
 * ends the wait of requests for every master, which no reply of theirs does). */
void cluster_node_reached(struct server *s);
/* The hold's side (hold.c): whether a request of a cluster pool that its
 * connection never wrote goes back to the pool's hold; and putting it there. */
bool cluster_takes_back(const struct server *s);
bool cluster_take_back(struct req *r);

#endif
