#include "proxy/txn.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cluster/cluster_msg.h"
#include "proto/redis_wire.h"
#include "proxy/client.h"
#include "proxy/cluster.h"
#include "proxy/cqueue.h"
#include "proxy/hold.h"
#include "proxy/pool.h"
#include "proxy/proxy.h"
#include "proxy/req.h"
#include "proxy/route.h"
#include "proxy/router.h"
#include "proxy/sconn.h"
#include "proxy/server.h"

/* redis' own words */
#define TXN_NESTED   "ERR MULTI calls can not be nested"
#define TXN_NO_MULTI "ERR %s without MULTI"
#define TXN_ABORT    "EXECABORT Transaction discarded because of previous errors."
#define TXN_WATCH_IN "ERR WATCH inside MULTI is not allowed"
#define TXN_ELSEWHERE                                                                              \
    "CROSSSLOT Keys in request don't hash to the same server as the transaction's keys"
#define TXN_CROSSSLOT "CROSSSLOT Keys in request don't hash to the same slot"

static void txn_status(struct client *c, const char *s)
{
    struct buf b;
    buf_init(&b);
    redis_wire_status(&b, s);
    cqueue_local(c, b.data, b.len);
    buf_free(&b);
}

/* EXEC's answer when a watched key changed (or the watch could not hold). */
static void txn_nil(struct client *c)
{
    struct buf b;
    buf_init(&b);
    redis_wire_null_array(&b, c->lc.resp);
    cqueue_local(c, b.data, b.len);
    buf_free(&b);
}

static void txn_clear(struct txn *t)
{
    t->active = false;
    t->aborted = false;
    t->n = 0;
    t->home = NULL;
    t->has_slot = false;
    buf_free(&t->cmds);
}

/* Bytes of the core's own request (MULTI, EXEC, UNWATCH) appended to out. */
static int txn_word(struct client *c, struct buf *out, const char *word)
{
    const uint8_t *argv[1] = {(const uint8_t *)word};
    size_t lens[1] = {strlen(word)};
    return c->pool->proto->build(out, 1, argv, lens);
}

/* A cluster pool's transaction without WATCH: every key in one slot, as a
 * node wants them (its node is found at EXEC, in the map as it is then). */
static bool txn_place_slot(struct client *c, const uint8_t *p, const struct req_info *ri)
{
    struct txn *t = &c->txn;
    for (uint32_t i = 0; i < ri->keys.n; i++) {
        uint16_t s = cluster_key_slot(p + ri->keys.v[i].off, ri->keys.v[i].len);
        if (t->has_slot && s != t->slot) {
            router_reply_error(c, TXN_CROSSSLOT);
            return false;
        }
        t->has_slot = true;
        t->slot = s;
    }
    return true;
}

/* A cluster pool's watch is on a node that no longer has its keys' slot (the
 * map moved since WATCH): writes to them go elsewhere, so it cannot hold. */
static bool txn_watch_moved(struct client *c)
{
    const struct txn *t = &c->txn;
    if (c->pool->mode != POOL_CLUSTER || t->watched == NULL) {
        return false;
    }
    for (uint32_t i = 0; i < t->nwatch_slots; i++) {
        if (cluster_slot_master(c->pool, t->watch_slots[i]) != t->watched) {
            return true;
        }
    }
    return false;
}

/* Note the slot of a WATCH's keys (at most CLUSTER_SLOTS of them); -1 when out
 * of memory. */
static int txn_watch_slot_add(struct txn *t, uint16_t slot)
{
    for (uint32_t i = 0; i < t->nwatch_slots; i++) {
        if (t->watch_slots[i] == slot) {
            return 0;
        }
    }
    if (t->nwatch_slots == t->cwatch_slots) {
        uint32_t cap = t->cwatch_slots ? t->cwatch_slots * 2 : 4;
        uint16_t *v = realloc(t->watch_slots, cap * sizeof(*v));
        if (v == NULL) {
            return -1;
        }
        t->watch_slots = v;
        t->cwatch_slots = cap;
    }
    t->watch_slots[t->nwatch_slots++] = slot;
    return 0;
}

/* The queued command's server: the first key's sets it, the others must agree.
 * Returns false (after answering why) when the command cannot be in it. */
static bool txn_place(struct client *c, const uint8_t *p, const struct req_info *ri)
{
    struct txn *t = &c->txn;
    struct route r;
    bool keyed = ri->keys.n > 0;
    if (ri->route == ROUTE_ALL || ri->route == ROUTE_PUBSUB || ri->local_only ||
        (ri->route == ROUTE_DATASET && !route_one_dataset(c->pool))) {
        router_reply_error(c, "Command not allowed inside a transaction through the proxy");
        return false;
    }
    if (!keyed) {
        return true; /* PING, TIME...: they run where the keys are */
    }
    if (c->pool->mode == POOL_CLUSTER && t->watched == NULL) {
        return txn_place_slot(c, p, ri);
    }
    int miss = route_request(c->pool, p, &ri->keys, false, &r);
    bool elsewhere = miss == ROUTE_MISS_SERVER || (miss == ROUTE_HIT && r.target != t->watched);
    if (t->watched != NULL && elsewhere && txn_watch_moved(c)) {
        /* the watched slot moved (or has no master in the map) since WATCH:
         * EXEC answers nil, and the client's retry watches where it is now */
        t->watch_lost = true;
        return true;
    }
    if (miss != ROUTE_HIT) {
        char msg[256];
        const char *text = route_miss_text(c->pool, miss, &r, msg, sizeof(msg));
        if (miss == ROUTE_MISS_CROSS) {
            router_reply_error(c, text);
        } else {
            router_fail(c, text, false); /* no live server for it */
        }
        return false;
    }
    if (t->home == NULL && t->watched != NULL && r.target != t->watched) {
        router_reply_error(c, TXN_ELSEWHERE);
        return false;
    }
    if (t->home != NULL && r.target != t->home) {
        router_reply_error(c, TXN_ELSEWHERE);
        return false;
    }
    t->home = r.target;
    return true;
}

void txn_queue(struct client *c, const uint8_t *p, const struct req_info *ri)
{
    struct txn *t = &c->txn;
    if (ri->route == ROUTE_REJECT && !ri->late_err) {
        router_reply_error(c, ri->err); /* unknown command, wrong arity: redis aborts too */
        t->aborted = true;
        return;
    }
    if (!txn_place(c, p, ri)) {
        t->aborted = true;
        return;
    }
    if (t->cmds.len + ri->len > c->px->request_max) {
        router_reply_error(c, "transaction exceeds the proxy's request size limit");
        t->aborted = true;
        return;
    }
    if (buf_append(&t->cmds, p, ri->len) != 0) {
        router_reply_error(c, "out of memory");
        t->aborted = true;
        return;
    }
    t->n++;
    txn_status(c, "QUEUED");
}

/* The client's connection to s for the transaction: its pinned one if it
 * watches keys there, else the shared one. */
static struct sconn *txn_conn(struct client *c, struct server *s, int *err)
{
    struct sconn *sc = txn_pinned(c, s);
    if (sc == NULL) {
        sc = server_conn_for(s, c->id, c->lc.resp);
    }
    *err = sconn_ensure(sc);
    return *err == 0 ? sc : NULL;
}

/* MULTI, the queued commands and EXEC as one request of a cluster pool: to
 * the slot's master when the map names one, following its redirections. */
static void txn_send_cluster(struct client *c, const struct req_info *ri)
{
    struct txn *t = &c->txn;
    struct buf b;
    buf_init(&b);
    int rc = txn_word(c, &b, "MULTI");
    rc |= buf_append(&b, t->cmds.data, t->cmds.len);
    rc |= txn_word(c, &b, "EXEC");
    if (rc != 0) {
        buf_free(&b);
        router_reply_error(c, "out of memory");
        return;
    }
    struct req *q = req_new(c->px, ri->cmd);
    cqueue_push(c, q, t->cmds.len);
    cluster_submit_txn(c, q, b.data, b.len, t->has_slot ? t->slot : -1, t->n);
    buf_free(&b);
}

/* EXEC's reply in a cluster pool's watched transaction: a node that redirected
 * a queued command (its slot moved since WATCH; or TRYAGAIN, CLUSTERDOWN while
 * it moves or fails over) aborted the transaction, which is what a watch that
 * could not hold means: nil, so the client tries again (the map followed the
 * MOVED: its next WATCH goes to the slot's master). */
static void txn_exec_reply(struct req *r, struct buf *out, const uint8_t *p, size_t len,
                           const struct rsp_info *ri, const char *err)
{
    (void)err;
    if (p == NULL) {
        return; /* failed with its client gone */
    }
    if (r->redirected && ri->is_error && r->client != NULL && cluster_msg_execabort(p, len)) {
        redis_wire_null_array(out, r->client->lc.resp);
        return;
    }
    buf_append(out, p, len);
}

/* MULTI, the queued commands and EXEC, to home: on its connection, or held
 * like a write while home's sentinel group fails over (or has no master yet). */
static void txn_send(struct client *c, struct server *home, const struct req_info *ri)
{
    struct txn *t = &c->txn;
    int err = 0;
    struct sconn *sc = NULL;
    bool held = hold_admits_write(c, home, 0);
    if (!held && (sc = txn_conn(c, home, &err)) == NULL && t->watched == NULL) {
        held = hold_admits_write(c, home, err); /* (a watch cannot move to another connection) */
    }
    if (sc == NULL && !held) {
        router_fail(c, server_strerror(home, err), false);
        return;
    }
    struct req *q = req_new(c->px, ri->cmd);
    struct buf b, *out = held ? &b : sconn_out(sc);
    buf_init(&b);
    size_t before = out->len;
    q->skip = t->n + 1; /* MULTI's +OK, one QUEUED per command */
    if (c->pool->mode == POOL_CLUSTER) {
        q->reply = txn_exec_reply;
    }
    txn_word(c, out, "MULTI");
    buf_append(out, t->cmds.data, t->cmds.len);
    txn_word(c, out, "EXEC");
    cqueue_push(c, q, t->cmds.len);
    if (held) {
        hold_put(c, home, q, b.data, b.len);
        buf_free(&b);
        return;
    }
    sconn_queued(sc, q, out->len - before);
}

/* Forget the watch: the pinned connection is told UNWATCH, its +OK dropped
 * (what the client sent there before is still answered in order). */
static void txn_forget_watch(struct client *c)
{
    struct txn *t = &c->txn;
    if (t->watched != NULL && t->pin != NULL && t->pin->state != SCONN_CLOSED) {
        struct req *q = req_new(c->px, 0); /* no client: its +OK is dropped */
        struct buf *out = sconn_out(t->pin);
        size_t before = out->len;
        txn_word(c, out, "UNWATCH");
        sconn_queued(t->pin, q, out->len - before);
    }
    t->watched = NULL;
    t->watch_lost = false;
}

static void txn_exec(struct client *c, const struct req_info *ri)
{
    struct txn *t = &c->txn;
    struct server *home = t->home != NULL ? t->home : t->watched;
    /* a watch made on a master that a failover is replacing no longer holds:
     * answered as when a watched key changed, so the client tries again */
    bool lost = t->watched != NULL && (t->watch_lost || txn_watch_moved(c) ||
                                       (!t->aborted && hold_admits_write(c, t->watched, 0)));
    if (t->aborted) {
        router_reply_error(c, TXN_ABORT);
    } else if (lost) {
        txn_nil(c);
    } else if (t->n == 0 && t->watched == NULL) {
        cqueue_local(c, (const uint8_t *)"*0\r\n", 4); /* (watched: nil if a key changed) */
    } else if (c->pool->mode == POOL_CLUSTER && t->watched == NULL) {
        txn_send_cluster(c, ri);
    } else {
        struct route r;
        if (home == NULL && route_key(c->pool, (const uint8_t *)"", 0, false, &r) == ROUTE_HIT) {
            home = r.target; /* keyless commands only: where a keyless request goes */
        }
        if (home != NULL) {
            txn_send(c, home, ri);
        } else {
            router_fail(c, "no server", false);
        }
    }
    bool unsent = t->aborted || lost;
    txn_clear(t);
    if (unsent) {
        txn_forget_watch(c); /* EXEC unwatches, whatever it answered */
    }
    t->watched = NULL;
    t->watch_lost = false;
}

struct sconn *txn_own_conn(struct client *c, struct server *s)
{
    struct txn *t = &c->txn;
    for (uint32_t i = 0; i < t->npins; i++) {
        if (t->pins[i]->server == s) {
            return t->pins[i];
        }
    }
    struct sconn **v = realloc(t->pins, (t->npins + 1) * sizeof(*v));
    if (v == NULL) {
        return NULL;
    }
    t->pins = v;
    struct sconn *sc = sconn_new_private(s, c, c->lc.resp);
    if (sc != NULL) {
        t->pins[t->npins++] = sc;
    }
    return sc;
}

/* A WATCH that failed before any of its watch was answered watches nothing
 * (redis: a WATCH with an error watches no key): the client is not tied to
 * that server, and its next WATCH may name any other. */
static void txn_watch_failed(struct client *c)
{
    struct txn *t = &c->txn;
    if (t->watched != NULL && !t->watch_held) {
        t->watched = NULL;
        t->watch_lost = false;
        t->nwatch_slots = 0;
        c->fence = true; /* what follows leaves the pinned connection */
    }
}

/* The reply to WATCH. A cluster node's redirection (the map moved, or its slot
 * is moving) means the keys are not there to watch, and TRYAGAIN, CLUSTERDOWN
 * that the slot is moving or its master failing over. The watch cannot hold:
 * +OK, and EXEC answers nil, as when a watched key changed, so the client tries
 * again, and its next WATCH goes where the map (moved by a MOVED) says. */
static void txn_watch_reply(struct req *r, struct buf *out, const uint8_t *p, size_t len,
                            const struct rsp_info *ri, const char *err)
{
    (void)err;
    if (p == NULL) {
        return; /* failed with its client gone */
    }
    struct client *c = r->client;
    int kind = ri->is_error && r->sconn != NULL ? cluster_note_redirect(r->sconn->server, p, len)
                                                : CLUSTER_REPLY_OTHER;
    if (kind != CLUSTER_REPLY_OTHER) {
        if (c != NULL && c->txn.watched != NULL) {
            c->txn.watch_lost = true;
        }
        redis_wire_status(out, "OK");
        return;
    }
    if (c != NULL && r->reply_arg == c->txn.watch_gen) { /* (not an earlier watch's) */
        if (ri->is_error) {
            txn_watch_failed(c);
        } else {
            c->txn.watch_held = true;
        }
    }
    buf_append(out, p, len);
}

/* WATCH: the keys' server, and the client's own connection to it. */
static void txn_watch(struct client *c, const uint8_t *p, const struct req_info *ri)
{
    struct txn *t = &c->txn;
    struct route r;
    int miss = route_request(c->pool, p, &ri->keys, false, &r);
    if (miss == ROUTE_HIT && txn_watch_moved(c)) {
        t->watch_lost = true; /* the earlier keys' slot moved: EXEC answers nil */
        txn_status(c, "OK");
        return;
    }
    if (miss != ROUTE_HIT || (t->watched != NULL && r.target != t->watched)) {
        char msg[256];
        router_reply_error(c, miss != ROUTE_HIT
                                  ? route_miss_text(c->pool, miss, &r, msg, sizeof(msg))
                                  : TXN_ELSEWHERE);
        return;
    }
    if (t->pin == NULL || t->pin->server != r.target) {
        t->pin = txn_own_conn(c, r.target);
        if (t->pin == NULL) {
            router_reply_error(c, "out of memory");
            return;
        }
    }
    sconn_speak(t->pin, c->lc.resp); /* made for an earlier WATCH, before a HELLO */
    int err = sconn_ensure(t->pin);
    if (err != 0) {
        router_fail(c, server_strerror(r.target, err), false);
        return;
    }
    if (t->watched == NULL) {
        t->watch_lost = false;
        t->watch_held = false;
        t->watch_gen++;
        t->nwatch_slots = 0;
    }
    if (c->pool->mode == POOL_CLUSTER &&
        txn_watch_slot_add(t, cluster_key_slot(p + ri->keys.v[0].off, ri->keys.v[0].len)) != 0) {
        router_reply_error(c, "out of memory");
        return;
    }
    t->watched = r.target;
    struct req *q = req_new(c->px, ri->cmd);
    q->reply = txn_watch_reply;
    q->reply_arg = t->watch_gen;
    cqueue_push(c, q, ri->len);
    sconn_send(t->pin, q, p, ri->len);
}

static void txn_unwatch(struct client *c, const uint8_t *p, const struct req_info *ri)
{
    struct txn *t = &c->txn;
    if (t->watched == NULL || t->pin == NULL || t->pin->state == SCONN_CLOSED) {
        t->watched = NULL;
        txn_status(c, "OK");
        return;
    }
    t->watched = NULL;
    struct req *q = req_new(c->px, ri->cmd);
    cqueue_push(c, q, ri->len);
    sconn_send(t->pin, q, p, ri->len);
}

/* DISCARD never reached a server, but it unwatches in redis: so here. */
static void txn_discard(struct client *c)
{
    txn_clear(&c->txn);
    txn_forget_watch(c);
    txn_status(c, "OK");
}

void txn_exec_refused(struct client *c, const char *err)
{
    bool watched = c->txn.watched != NULL;
    txn_clear(&c->txn);
    txn_forget_watch(c);
    router_reply_error(c, err);
    if (watched) {
        c->fence = true; /* the watch ended: the connection it pinned is left */
    }
}

void txn_dispatch(struct client *c, const uint8_t *p, const struct req_info *ri)
{
    struct txn *t = &c->txn;
    char msg[64];
    if (c->pool->proto->build == NULL) {
        router_reply_error(c, "unsupported command (transactions)");
        return;
    }
    switch (ri->txn) {
    case TXN_MULTI:
        if (t->active) {
            router_reply_error(c, TXN_NESTED); /* redis does not abort for it */
            return;
        }
        t->active = true;
        txn_status(c, "OK");
        return;
    case TXN_EXEC:
    case TXN_DISCARD:
        if (!t->active) {
            snprintf(msg, sizeof(msg), TXN_NO_MULTI, ri->txn == TXN_EXEC ? "EXEC" : "DISCARD");
            router_reply_error(c, msg);
        } else if (ri->txn == TXN_EXEC) {
            txn_exec(c, ri);
        } else {
            txn_discard(c);
        }
        return;
    case TXN_WATCH:
        if (t->active) {
            router_reply_error(c, TXN_WATCH_IN); /* nor for this */
            return;
        }
        txn_watch(c, p, ri);
        return;
    case TXN_UNWATCH:
        if (t->active) {
            txn_queue(c, p, ri); /* redis queues it */
            return;
        }
        txn_unwatch(c, p, ri);
        return;
    default:
        router_reply_error(c, "unsupported command (transactions)");
        return;
    }
}

struct sconn *txn_pinned(struct client *c, const struct server *target)
{
    struct txn *t = &c->txn;
    if (t->watched == target && t->pin != NULL && t->pin->server == target &&
        t->pin->state != SCONN_CLOSED) {
        return t->pin;
    }
    return NULL;
}

void txn_pin_lost(struct client *c, const struct sconn *sc)
{
    if (c->txn.pin == sc && c->txn.watched != NULL) {
        c->txn.watch_lost = true;
        txn_watch_failed(c); /* its WATCH failed too, unless one was answered */
    }
}

void txn_master_moved(struct client *c, const struct server *s, const char *why)
{
    struct txn *t = &c->txn;
    for (uint32_t i = 0; i < t->npins; i++) {
        struct sconn *sc = t->pins[i];
        if (sc->server == s && sc->state != SCONN_CLOSED) {
            txn_pin_lost(c, sc);
            sconn_reset(sc, why);
        }
    }
}

void txn_resp_changed(struct client *c)
{
    if (c->txn.watched != NULL && c->txn.pin != NULL) {
        sconn_speak(c->txn.pin, c->lc.resp);
    }
}

void txn_reset(struct client *c)
{
    txn_clear(&c->txn);
    txn_forget_watch(c);
}

/* A connection of an earlier WATCH, idle: it can go with its server. */
static bool txn_pin_spare(const struct txn *t, const struct sconn *sc)
{
    return (t->watched == NULL || t->pin != sc) && sconn_idle(sc);
}

bool txn_heirs_known(const struct client *c)
{
    const struct txn *t = &c->txn;
    bool known = (t->home == NULL || t->home->heir != NULL) &&
                 (t->watched == NULL || t->watched->heir != NULL);
    for (uint32_t i = 0; i < t->npins && known; i++) {
        known = t->pins[i]->server->heir != NULL || txn_pin_spare(t, t->pins[i]);
    }
    return known;
}

void txn_follow_heirs(struct client *c)
{
    struct txn *t = &c->txn;
    t->home = t->home != NULL ? t->home->heir : NULL;
    t->watched = t->watched != NULL ? t->watched->heir : NULL;
    uint32_t n = 0;
    for (uint32_t i = 0; i < t->npins; i++) {
        struct sconn *sc = t->pins[i];
        if (sc->server->heir == NULL) {
            /* spare (txn_heirs_known): freed while its server is still there; the
             * loop drops any event of this turn that names it (ev_io_stop) */
            t->pin = t->pin == sc ? NULL : t->pin;
            sconn_free_private(sc);
            continue;
        }
        sconn_follow(sc, sc->server->heir);
        t->pins[n++] = sc;
    }
    t->npins = n;
}

void txn_close(struct client *c)
{
    for (uint32_t i = 0; i < c->txn.npins; i++) {
        sconn_reset(c->txn.pins[i], "client closed");
    }
}

void txn_free(struct client *c)
{
    txn_clear(&c->txn);
    for (uint32_t i = 0; i < c->txn.npins; i++) {
        sconn_free_private(c->txn.pins[i]);
    }
    free(c->txn.pins);
    free(c->txn.watch_slots);
    c->txn.watch_slots = NULL;
    c->txn.nwatch_slots = c->txn.cwatch_slots = 0;
    c->txn.pins = NULL;
    c->txn.npins = 0;
    c->txn.pin = NULL;
}

size_t txn_memory(const struct client *c)
{
    size_t n = c->txn.cmds.cap + c->txn.cwatch_slots * sizeof(*c->txn.watch_slots);
    for (uint32_t i = 0; i < c->txn.npins; i++) {
        n += sconn_memory(c->txn.pins[i]);
    }
    return n;
}
