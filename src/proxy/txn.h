/*
 * txn: MULTI ... EXEC through the proxy, when every key of the transaction is
 * on one server (hash tags make that possible). The proxy answers MULTI and
 * each QUEUED itself, checks every queued command's keys against the first
 * one's server, and at EXEC writes MULTI, the commands and EXEC as one block on
 * one connection, so nothing of another client comes between them; only EXEC's
 * reply reaches the client. Keys on two servers: the command gets -CROSSSLOT
 * and EXEC -EXECABORT, as redis does with errors at queue time.
 *
 * WATCH pins the client to a connection of its own to the watched keys'
 * server, until EXEC, DISCARD or UNWATCH; its commands for that server go
 * there meanwhile. If that connection fails, the next EXEC answers nil: the
 * watch cannot be trusted, as if a watched key had changed.
 */
#ifndef NC_TXN_H
#define NC_TXN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"
#include "proto/proto.h"

struct client;
struct server;
struct sconn;

struct txn {
    bool active;         /* between MULTI and EXEC/DISCARD */
    bool aborted;        /* a command was refused: EXEC answers EXECABORT */
    uint32_t n;          /* commands queued */
    struct buf cmds;     /* their bytes, in order */
    struct server *home; /* the server of the keys (NULL: no key yet) */
    bool has_slot;       /* a cluster pool's, not watched: its keys' slot is known */
    uint16_t slot;       /* (routed at EXEC, redirections followed: cluster.h) */
    struct sconn *pin;   /* WATCH: the client's own connection (one of pins) */
    struct sconn **pins; /* every one it made, freed with the client */
    uint32_t npins;
    struct server *watched; /* the server whose keys are watched; NULL: none */
    bool watch_lost;        /* the pinned connection failed (or its slot moved) since WATCH */
    bool watch_held;        /* a WATCH of this watch was answered: the server watches keys */
    uint32_t watch_gen;     /* counts watches begun: a late reply to an earlier one's WATCH */
    /* a cluster pool: the slots of the watched keys (each WATCH's keys share
     * one), checked against the map before EXEC: one that moved ends the watch */
    uint16_t *watch_slots;
    uint32_t nwatch_slots, cwatch_slots;
};

/* MULTI, EXEC, DISCARD, WATCH, UNWATCH (ROUTE_TXN). */
void txn_dispatch(struct client *c, const uint8_t *p, const struct req_info *ri);
/* EXEC the parser refused (wrong arity): redis discards the transaction and
 * the watch, in MULTI or not, and answers err (EXECABORT ...). */
void txn_exec_refused(struct client *c, const char *err);
/* Inside MULTI: queue any other request. */
void txn_queue(struct client *c, const uint8_t *p, const struct req_info *ri);
/* The client's own connection to s (for a WATCH, a blocking command), kept
 * for its life once made (one per server), unless a reload drops its server
 * (txn_follow_heirs). NULL when out of memory. */
struct sconn *txn_own_conn(struct client *c, struct server *s);
/* The connection a request for target uses while c watches keys of target. */
struct sconn *txn_pinned(struct client *c, const struct server *target);
/* Reload: whether every server the transaction and the watch name has an heir
 * (server.heir); an idle connection of an earlier WATCH need not. */
bool txn_heirs_known(const struct client *c);
/* Reload: they name the heirs now, and the pinned connections belong to them;
 * an earlier WATCH's connection to a server without one is freed. */
void txn_follow_heirs(struct client *c);
/* The pinned connection failed. */
void txn_pin_lost(struct client *c, const struct sconn *sc);
/* s (a sentinel group) has a new master: c's own connections to s, which an
 * earlier WATCH opened to the old one, are closed (why answers what was in
 * flight there). The old master may take writes until it is demoted, and then
 * drop them: a watch made there is lost (EXEC answers nil), and the next WATCH
 * connects to the new master. */
void txn_master_moved(struct client *c, const struct server *s, const char *why);
/* The client's protocol changed (HELLO): the connection its watch pinned
 * speaks it too, from the next request on. */
void txn_resp_changed(struct client *c);
/* RESET: forget the transaction and the watch. */
void txn_reset(struct client *c);
void txn_close(struct client *c);
void txn_free(struct client *c);
size_t txn_memory(const struct client *c);

#endif
