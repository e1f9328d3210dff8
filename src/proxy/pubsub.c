#include "proxy/pubsub.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "proxy/client.h"
#include "proxy/cluster.h"
#include "proxy/cqueue.h"
#include "proxy/pool.h"
#include "proxy/proxy.h"
#include "proxy/req.h"
#include "proxy/route.h"
#include "proxy/router.h"
#include "proxy/sconn.h"
#include "proxy/server.h"

static const char *const sub_verbs[] = {
    [SUB_SUBSCRIBE] = "SUBSCRIBE",
    [SUB_PSUBSCRIBE] = "PSUBSCRIBE",
    [SUB_UNSUBSCRIBE] = "UNSUBSCRIBE",
    [SUB_PUNSUBSCRIBE] = "PUNSUBSCRIBE",
};

static int64_t subs_count(const struct subs *s)
{
    return (int64_t)s->nchans + s->npats;
}

static int subs_find(const struct sub_name *v, uint32_t n, const uint8_t *p, uint32_t len)
{
    for (uint32_t i = 0; i < n; i++) {
        if (v[i].len == len && memcmp(v[i].p, p, len) == 0) {
            return (int)i;
        }
    }
    return -1;
}

static int subs_add(struct sub_name **v, uint32_t *n, uint32_t *cap, const uint8_t *p, uint32_t len)
{
    if (*n == *cap) {
        uint32_t ncap = *cap ? *cap * 2 : 8;
        struct sub_name *nv = realloc(*v, ncap * sizeof(*nv));
        if (nv == NULL) {
            return -1;
        }
        *v = nv;
        *cap = ncap;
    }
    uint8_t *copy = malloc(len ? len : 1);
    if (copy == NULL) {
        return -1;
    }
    memcpy(copy, p, len);
    (*v)[(*n)++] = (struct sub_name){copy, len, NULL};
    return 0;
}

/* Remove entry i, keeping the order (UNSUBSCRIBE without names lists them in it). */
static void subs_del(struct sub_name *v, uint32_t *n, uint32_t i)
{
    free(v[i].p);
    memmove(&v[i], &v[i + 1], (*n - i - 1) * sizeof(*v));
    (*n)--;
}

/* The client's subscribed connection to s, opened when needed; NULL with *err. */
static struct sconn *pubsub_conn(struct client *c, struct server *s, uint16_t cmd, int *err)
{
    struct subs *ss = &c->subs;
    struct sconn *sc = NULL;
    for (uint32_t i = 0; i < ss->nconns && sc == NULL; i++) {
        sc = ss->conns[i]->server == s ? ss->conns[i] : NULL;
    }
    if (sc == NULL) {
        struct sconn **v = realloc(ss->conns, (ss->nconns + 1) * sizeof(*v));
        sc = v != NULL ? sconn_new_private(s, c, c->lc.resp) : NULL;
        if (v != NULL) {
            ss->conns = v;
        }
        if (sc == NULL) {
            *err = ENOMEM;
            return NULL;
        }
        ss->conns[ss->nconns++] = sc;
    }
    *err = sconn_ensure(sc);
    if (*err != 0) {
        return NULL;
    }
    sc->sub_cmd = cmd; /* from now on its replies are read as pushes */
    return sc;
}

/* Send "<verb> name" to s on the client's connection, for r (which answers it). */
static void pubsub_send(struct client *c, struct server *s, uint16_t cmd, uint8_t kind,
                        const uint8_t *name, uint32_t len, struct req *r)
{
    int err;
    struct sconn *sc = pubsub_conn(c, s, cmd, &err);
    if (sc == NULL) {
        req_fail(r, err == ENOMEM ? "out of memory" : server_strerror(s, err));
        return;
    }
    const uint8_t *argv[2] = {(const uint8_t *)sub_verbs[kind], name};
    size_t lens[2] = {strlen(sub_verbs[kind]), len};
    struct buf *out = sconn_out(sc);
    size_t before = out->len;
    if (c->pool->proto->build(out, 2, argv, lens) != 0) {
        req_fail(r, "out of memory");
        return;
    }
    sconn_queued(sc, r, out->len - before);
    if (kind == SUB_SUBSCRIBE || kind == SUB_PSUBSCRIBE) {
        sc->sub_names++;
    } else if (sc->sub_names > 0) {
        sc->sub_names--;
    }
}

/* reply_arg of an (un)subscription: the count its confirmation gives, and the
 * protocol its client spoke when it asked (a HELLO pipelined behind it must not
 * change the confirmation's form, as it does not in redis). */
static uint64_t sub_arg(int64_t count, int resp)
{
    return (uint64_t)(uint32_t)count | (uint64_t)(uint32_t)resp << 32;
}

/* The server confirmed: the client gets the confirmation with its own count
 * (reply_arg), or what the server said instead (an error). */
static void pubsub_confirm(struct req *r, struct buf *out, const uint8_t *p, size_t len,
                           const struct rsp_info *ri, const char *err)
{
    struct client *c = r->client;
    if (c == NULL) {
        return;
    }
    if (err != NULL || ri == NULL) {
        c->pool->proto->error_reply(out, err != NULL ? err : "bad reply from server");
        return;
    }
    if (ri->push != PUSH_CONFIRM) {
        buf_append(out, p, len);
        return;
    }
    const uint8_t *chan = ri->chan_null ? NULL : p + ri->chan.off;
    if (c->pool->proto->sub_reply(out, ri->sub, chan, ri->chan.len, (int64_t)(uint32_t)r->reply_arg,
                                  (int)(r->reply_arg >> 32)) != 0) {
        c->pool->proto->error_reply(out, "out of memory");
    }
}

/* A confirmation the proxy gives alone (a name already subscribed, none left). */
static void pubsub_local(struct client *c, uint8_t kind, const uint8_t *name, uint32_t len)
{
    struct buf b;
    buf_init(&b);
    if (c->pool->proto->sub_reply(&b, kind, name, len, subs_count(&c->subs), c->lc.resp) != 0) {
        buf_reset(&b);
        c->pool->proto->error_reply(&b, "out of memory");
    }
    cqueue_local(c, b.data, b.len);
    buf_free(&b);
}

/* A request the client waits on, answered by pubsub_confirm with count. */
static struct req *pubsub_req(struct client *c, uint16_t cmd, int64_t count)
{
    struct req *r = req_new(c->px, cmd);
    r->reply = pubsub_confirm;
    r->hangs_up = true; /* a subscriber reconnects and subscribes again on a close */
    r->reply_arg = sub_arg(count, c->lc.resp);
    cqueue_push(c, r, 0);
    return r;
}

/* Where a channel lives: the master of the shard its name is placed on. */
static struct server *pubsub_home(struct client *c, const uint8_t *name, uint32_t len)
{
    struct route rt;
    struct server *s = route_key(c->pool, name, len, false, &rt) == ROUTE_HIT ? rt.target : NULL;
    return c->pool->mode == POOL_CLUSTER ? cluster_any_master(c->pool, s) : s;
}

/* A keyspace or keyevent notification's channel (or a pattern of them): each
 * server publishes its own keys' events to its own subscribers, where a PUBLISH
 * goes to the channel's home (to every node of a cluster). */
bool pubsub_is_keyspace(const uint8_t *name, uint32_t len)
{
    return len >= 11 &&
           (memcmp(name, "__keyspace@", 11) == 0 || memcmp(name, "__keyevent@", 11) == 0);
}

/* The servers a name is heard on when it is not one channel's home (a
 * pattern, keyspace notifications): every shard's master; in a cluster, one
 * master for a pattern, as the cluster hands every PUBLISH to every node. */
static uint32_t pubsub_shards(struct client *c, const uint8_t *name, uint32_t len,
                              struct server **out)
{
    struct pool *p = c->pool;
    if (p->mode == POOL_MASTER_REPLICA) {
        out[0] = &p->servers[p->cp->master]; /* replicas replay its publishes */
        return 1;
    }
    if (p->mode == POOL_CLUSTER && !pubsub_is_keyspace(name, len)) {
        out[0] = cluster_any_master(p, NULL);
        return out[0] != NULL ? 1 : 0;
    }
    uint32_t n = 0;
    for (uint32_t i = 0; i < p->nservers; i++) {
        if (p->mode != POOL_CLUSTER || cluster_is_master(&p->servers[i])) {
            out[n++] = &p->servers[i];
        }
    }
    return n;
}

/* The servers name is (un)subscribed on (pubsub_shards), or NULL after an
 * error reply; free() it. */
static struct server **pubsub_targets(struct client *c, const uint8_t *name, uint32_t len,
                                      uint32_t *n)
{
    struct server **shards = calloc(c->pool->nservers ? c->pool->nservers : 1, sizeof(*shards));
    *n = shards != NULL ? pubsub_shards(c, name, len, shards) : 0;
    if (*n == 0) {
        router_reply_error(c, shards == NULL ? "out of memory"
                                             : "no server is available for this name");
        free(shards); /* a cluster pool whose map is not known yet */
        return NULL;
    }
    return shards;
}

/* (Un)subscribe name on each of the n shards, one confirmation; frees shards. */
static void pubsub_fanout(struct client *c, const uint8_t *p, const struct req_info *ri,
                          uint8_t kind, const uint8_t *name, uint32_t len, struct server **shards,
                          uint32_t n)
{
    struct req *parent = req_new_split(c->px, p, ri, n);
    parent->reply = pubsub_confirm;
    parent->hangs_up = true;
    parent->reply_arg = sub_arg(subs_count(&c->subs), c->lc.resp);
    cqueue_push(c, parent, 0);
    for (uint32_t i = 0; i < n; i++) {
        pubsub_send(c, shards[i], ri->cmd, kind, name, len, req_new_frag(parent, i));
    }
    free(shards);
}

/* Where a subscription is made: the channel's home, or shards (a pattern, a
 * keyspace channel); false after an error reply. */
static bool pubsub_where(struct client *c, bool channel, const uint8_t *name, uint32_t len,
                         struct server **home, struct server ***shards, uint32_t *n)
{
    *home = NULL;
    *shards = NULL;
    if (!channel || pubsub_is_keyspace(name, len)) {
        *shards = pubsub_targets(c, name, len, n);
        return *shards != NULL;
    }
    *home = pubsub_home(c, name, len);
    if (*home == NULL) {
        router_reply_error(c, "no server is available for this channel");
    }
    return *home != NULL;
}

/* SUBSCRIBE / UNSUBSCRIBE (a channel) or PSUBSCRIBE / PUNSUBSCRIBE of one name. */
static void pubsub_name(struct client *c, const uint8_t *p, const struct req_info *ri, uint8_t kind,
                        const uint8_t *name, uint32_t len)
{
    struct subs *ss = &c->subs;
    bool channel = kind == SUB_SUBSCRIBE || kind == SUB_UNSUBSCRIBE;
    struct sub_name **v = channel ? &ss->chans : &ss->pats;
    uint32_t *nv = channel ? &ss->nchans : &ss->npats;
    int at = subs_find(*v, *nv, name, len);
    bool subscribe = kind == SUB_SUBSCRIBE || kind == SUB_PSUBSCRIBE;
    if ((at >= 0) == subscribe) {
        pubsub_local(c, kind, name, len); /* nothing changes: redis answers all the same */
        return;
    }
    struct server *home = NULL, **shards = NULL;
    uint32_t n = 0;
    if (!subscribe) {
        /* where it was subscribed; then first: an UNSUBSCRIBE of every name
         * (pubsub_drop_all) goes on to the next one even when this one's
         * server cannot be named */
        home = (*v)[at].at;
        subs_del(*v, nv, (uint32_t)at);
    }
    if (home == NULL && !pubsub_where(c, channel, name, len, &home, &shards, &n)) {
        return;
    }
    if (subscribe && subs_add(v, nv, channel ? &ss->cchans : &ss->cpats, name, len) != 0) {
        free(shards);
        router_reply_error(c, "out of memory");
        return;
    }
    if (shards != NULL && n == 1) {
        home = shards[0]; /* one server: unsubscribed there, wherever the name goes later */
        free(shards);
        shards = NULL;
    }
    if (subscribe) {
        (*v)[*nv - 1].at = home;
    }
    if (shards != NULL) {
        pubsub_fanout(c, p, ri, kind, name, len, shards, n);
    } else {
        pubsub_send(c, home, ri->cmd, kind, name, len, pubsub_req(c, ri->cmd, subs_count(ss)));
    }
}

/* UNSUBSCRIBE / PUNSUBSCRIBE without names: every one, in the order taken. */
static void pubsub_drop_all(struct client *c, const uint8_t *p, const struct req_info *ri,
                            uint8_t kind)
{
    struct subs *ss = &c->subs;
    bool chans = kind == SUB_UNSUBSCRIBE;
    if ((chans ? ss->nchans : ss->npats) == 0) {
        pubsub_local(c, kind, NULL, 0);
        return;
    }
    while ((chans ? ss->nchans : ss->npats) > 0) {
        struct sub_name first = chans ? ss->chans[0] : ss->pats[0];
        uint8_t *copy = malloc(first.len ? first.len : 1);
        if (copy == NULL) {
            router_reply_error(c, "out of memory");
            return;
        }
        memcpy(copy, first.p, first.len);
        pubsub_name(c, p, ri, kind, copy, first.len);
        free(copy);
    }
}

void pubsub_dispatch(struct client *c, const uint8_t *p, const struct req_info *ri)
{
    uint8_t kind = ri->sub;
    if (c->pool->proto->sub_reply == NULL || kind == SUB_NONE || kind > SUB_PUNSUBSCRIBE) {
        router_reply_error(c, "unsupported command (pub/sub)");
        return;
    }
    if (ri->keys.n == 0 && (kind == SUB_UNSUBSCRIBE || kind == SUB_PUNSUBSCRIBE)) {
        pubsub_drop_all(c, p, ri, kind);
    }
    for (uint32_t i = 0; i < ri->keys.n; i++) {
        const uint8_t *name = p + ri->keys.v[i].off;
        pubsub_name(c, p, ri, kind, name, ri->keys.v[i].len);
    }
    c->lc.subscribed = subs_count(&c->subs) > 0;
}

/* The answer to a subscriber's PING, as the client's protocol (reply_arg)
 * gave it when it asked: the one it would have had at once. */
static void pubsub_pong(struct req *r, struct buf *out, const uint8_t *p, size_t len,
                        const struct rsp_info *ri, const char *err)
{
    (void)p, (void)len, (void)ri;
    struct client *c = r->client;
    if (c == NULL) {
        return;
    }
    struct local_ctx lc = c->lc; /* (read only: PING changes nothing) */
    lc.subscribed = true;
    lc.resp = (int)r->reply_arg;
    if (err != NULL || c->pool->proto->local(out, r->split->req, &r->split->info, &lc) <= 0) {
        c->pool->proto->error_reply(out, err != NULL ? err : "out of memory");
    }
}

static uint32_t pubsub_conns_used(const struct client *c)
{
    uint32_t n = 0;
    for (uint32_t i = 0; i < c->subs.nconns; i++) {
        n += c->subs.conns[i]->sub_names > 0; /* a server with none left is not asked */
    }
    return n;
}

/* PING while subscribed. Redis answers it on the connection its messages come
 * by, so a message sent before the PING reaches the client before the answer;
 * a client uses that to know it heard everything published up to then. The
 * proxy's answer waits for a PING of its own on each of the client's
 * subscribed connections: what each carried before comes first. */
bool pubsub_ping_waits(const struct client *c)
{
    return c->lc.subscribed && pubsub_conns_used(c) > 0;
}

void pubsub_ping(struct client *c, const uint8_t *p, const struct req_info *ri)
{
    struct subs *ss = &c->subs;
    struct req *parent = req_new_split(c->px, p, ri, pubsub_conns_used(c));
    parent->split->info.named = ri->named;
    parent->reply = pubsub_pong;
    parent->hangs_up = true; /* as its subscriptions': a lost connection closes the client */
    parent->reply_arg = (uint64_t)(uint32_t)c->lc.resp;
    cqueue_push(c, parent, 0);
    for (uint32_t i = 0, f_idx = 0; i < ss->nconns; i++) {
        struct sconn *sc = ss->conns[i];
        if (sc->sub_names == 0) {
            continue;
        }
        struct req *f = req_new_frag(parent, f_idx++);
        int err = sconn_ensure(sc);
        if (err != 0) {
            req_fail(f, server_strerror(sc->server, err));
            continue;
        }
        struct buf *out = sconn_out(sc);
        if (buf_append(out, p, ri->len) != 0) {
            req_fail(f, "out of memory");
            continue;
        }
        sconn_queued(sc, f, ri->len);
    }
}

void pubsub_message(struct client *c, struct req *next, const uint8_t *p, size_t len)
{
    if (c == NULL || c->closed) {
        return;
    }
    if (next != NULL && next->parent != NULL) {
        next = next->parent; /* a PUNSUBSCRIBE's fragment: the client waits on the whole */
    }
    /* a message is an array in RESP2 and a push in RESP3 (its elements are the
     * same): the connection it came on speaks the protocol the client spoke when
     * it was opened, and a HELLO may have changed it since */
    uint8_t want = c->lc.resp >= 3 ? '>' : '*';
    if (len == 0 || (p[0] != '>' && p[0] != '*') || p[0] == want) {
        cqueue_local_before(c, next, p, len);
        return;
    }
    struct buf b;
    buf_init(&b);
    if (buf_append(&b, &want, 1) == 0 && buf_append(&b, p + 1, len - 1) == 0) {
        cqueue_local_before(c, next, b.data, b.len);
    }
    buf_free(&b);
}

void pubsub_pace(struct client *c, size_t unwritten)
{
    size_t limit = c->px->client_max_buffer;
    bool pause = unwritten >= limit;
    if (!pause && unwritten > limit / 2) {
        return; /* (between the two: as it is) */
    }
    for (uint32_t i = 0; i < c->subs.nconns; i++) {
        sconn_pause(c->subs.conns[i], pause);
    }
}

bool pubsub_heirs_known(const struct client *c)
{
    for (uint32_t i = 0; i < c->subs.nconns; i++) {
        if (c->subs.conns[i]->server->heir == NULL) {
            return false;
        }
    }
    return true;
}

static void subs_follow_heirs(struct sub_name *v, uint32_t n)
{
    for (uint32_t i = 0; i < n; i++) {
        v[i].at = v[i].at != NULL ? v[i].at->heir : NULL; /* (none: found again) */
    }
}

void pubsub_follow_heirs(struct client *c)
{
    for (uint32_t i = 0; i < c->subs.nconns; i++) {
        sconn_follow(c->subs.conns[i], c->subs.conns[i]->server->heir);
    }
    subs_follow_heirs(c->subs.chans, c->subs.nchans);
    subs_follow_heirs(c->subs.pats, c->subs.npats);
}

bool pubsub_holds(const struct client *c, const struct sconn *sc)
{
    for (uint32_t i = 0; i < c->subs.nconns; i++) {
        if (c->subs.conns[i] == sc) {
            return sc->sub_names > 0;
        }
    }
    return false;
}

static bool pubsub_any_keyspace(const struct sub_name *v, uint32_t n)
{
    for (uint32_t i = 0; i < n; i++) {
        if (pubsub_is_keyspace(v[i].p, v[i].len)) {
            return true;
        }
    }
    return false;
}

void pubsub_masters_changed(struct client *c, const char *why)
{
    const struct subs *ss = &c->subs;
    if (!pubsub_any_keyspace(ss->chans, ss->nchans) && !pubsub_any_keyspace(ss->pats, ss->npats)) {
        return;
    }
    for (uint32_t i = 0; i < ss->nconns; i++) {
        struct sconn *sc = ss->conns[i];
        if (sc->state != SCONN_CLOSED) {
            client_private_lost(c, sc, why);
            sconn_reset(sc, why);
        }
    }
}

void pubsub_master_moved(struct client *c, const struct server *s, const char *why)
{
    for (uint32_t i = 0; i < c->subs.nconns; i++) {
        struct sconn *sc = c->subs.conns[i];
        if (sc->server == s && sc->state != SCONN_CLOSED) {
            client_private_lost(c, sc, why); /* the client ends, told why */
            sconn_reset(sc, why);
        }
    }
}

void pubsub_reset(struct client *c)
{
    struct subs *ss = &c->subs;
    for (uint32_t i = 0; i < ss->nconns; i++) {
        sconn_reset(ss->conns[i], "client reset"); /* the simplest unsubscribe of all */
        ss->conns[i]->sub_names = 0;
    }
    while (ss->nchans > 0) {
        subs_del(ss->chans, &ss->nchans, ss->nchans - 1);
    }
    while (ss->npats > 0) {
        subs_del(ss->pats, &ss->npats, ss->npats - 1);
    }
    c->lc.subscribed = false;
}

void pubsub_close(struct client *c)
{
    for (uint32_t i = 0; i < c->subs.nconns; i++) {
        sconn_reset(c->subs.conns[i], "client closed");
    }
}

void pubsub_free(struct client *c)
{
    struct subs *ss = &c->subs;
    for (uint32_t i = 0; i < ss->nconns; i++) {
        sconn_free_private(ss->conns[i]);
    }
    free(ss->conns);
    for (uint32_t i = 0; i < ss->nchans; i++) {
        free(ss->chans[i].p);
    }
    for (uint32_t i = 0; i < ss->npats; i++) {
        free(ss->pats[i].p);
    }
    free(ss->chans);
    free(ss->pats);
    memset(ss, 0, sizeof(*ss));
}

size_t pubsub_memory(const struct client *c)
{
    size_t n = 0;
    for (uint32_t i = 0; i < c->subs.nconns; i++) {
        n += sconn_memory(c->subs.conns[i]);
    }
    return n;
}
