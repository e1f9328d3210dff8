/*
 * pubsub: a client's subscriptions, kept by the proxy across the servers of its
 * pool. A channel lives on the server the pool's hash places it on (PUBLISH is
 * routed the same way), a pattern on every server. The client gets connections
 * of its own to those servers (sconn.owner), on which the servers push their
 * messages; the proxy relays them in order with its other replies. It answers
 * every SUBSCRIBE, UNSUBSCRIBE... with its own count of the client's
 * subscriptions (the servers' counts are per connection), once the server
 * confirmed, so a message published after the confirmation is never missed.
 * A connection that fails ends the client (its library reconnects and
 * subscribes again): subscriptions are never silently lost.
 */
#ifndef NC_PUBSUB_H
#define NC_PUBSUB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "proto/proto.h"

struct client;
struct sconn;
struct req;

/* One name a client is subscribed to. */
struct sub_name {
    uint8_t *p;
    uint32_t len;
    /* the one server it was subscribed on, where it is unsubscribed (a
     * cluster's live master, a home an ejection may move); NULL: on several,
     * found again as they were */
    struct server *at;
};

struct subs {
    struct sub_name *chans;
    uint32_t nchans, cchans;
    struct sub_name *pats;
    uint32_t npats, cpats;
    struct sconn **conns; /* the client's subscribed connections, one per server */
    uint32_t nconns;
};

/* Whether name is a keyspace or keyevent channel (or a pattern of them),
 * subscribed on every server (every master of a cluster). */
bool pubsub_is_keyspace(const uint8_t *name, uint32_t len);
/* SUBSCRIBE, PSUBSCRIBE, UNSUBSCRIBE, PUNSUBSCRIBE (ROUTE_PUBSUB). */
void pubsub_dispatch(struct client *c, const uint8_t *p, const struct req_info *ri);
/* Whether a PING (SUB_PING) of c waits for its subscribed connections: then
 * pubsub_ping answers it once every one of them answered one, behind their
 * messages. */
bool pubsub_ping_waits(const struct client *c);
void pubsub_ping(struct client *c, const uint8_t *p, const struct req_info *ri);
/* A message a server pushed on a connection of c: relayed in order, before
 * the reply to next (the oldest request waiting on that connection, NULL:
 * none), which the server sends after it. */
void pubsub_message(struct client *c, struct req *next, const uint8_t *p, size_t len);
/* Reload: whether every subscribed connection's server has an heir (server.heir). */
bool pubsub_heirs_known(const struct client *c);
/* Reload: each subscribed connection now belongs to its server's heir. */
void pubsub_follow_heirs(struct client *c);
/* A failover moved s to another address: c's subscriptions on the old master
 * would hear nothing more (PUBLISH goes to the new one), so they are lost, and
 * the client is ended with why, as when their connection fails. */
struct server;
void pubsub_master_moved(struct client *c, const struct server *s, const char *why);
/* A cluster's masters changed (a failover, a master added): c's keyspace and
 * keyevent subscriptions, made on every master as they were, would miss the
 * events of a new one (and hear a demoted one's replicated deletes instead of
 * its expiries); the client is ended with why, so that it subscribes again. */
void pubsub_masters_changed(struct client *c, const char *why);
/* Whether sc is one of c's subscribed connections and still carries some of
 * its subscriptions (one whose server's channels it left carries none: its
 * loss loses nothing). */
bool pubsub_holds(const struct client *c, const struct sconn *sc);
/* The subscriptions' connections close (the client closes): their memory goes
 * with pubsub_free. */
void pubsub_close(struct client *c);
void pubsub_free(struct client *c);
/* Stop reading the client's subscribed connections while it leaves more than
 * --client-buffer-limit of replies unwritten, and read them again once it
 * has caught up with half of it: the messages then wait at the servers,
 * whose own limit (redis' client-output-buffer-limit pubsub, 32 MB) ends a
 * subscriber that stays behind, as for a client of redis directly; the
 * connection's loss then closes the client. Before, a subscriber that read
 * nothing held messages here up to --buffer-limit. */
void pubsub_pace(struct client *c, size_t unwritten);
/* Bytes the client's subscribed connections hold (the buffer limit). */
size_t pubsub_memory(const struct client *c);
/* Drop every subscription (RESET): UNSUBSCRIBE/PUNSUBSCRIBE everywhere, no reply. */
void pubsub_reset(struct client *c);

#endif
