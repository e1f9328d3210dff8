/*
 * cluster_send: a cluster pool's request on its way to a node, and back when
 * the node redirects it (see cluster.h for the rules).
 *
 *   submit ──> try: map known, slot has a master, node reachable, client's
 *              order kept ──> sent (ASKING first after an ASK)
 *                    └─ not now ──> held (hold.c), offered again every
 *                       CLUSTER_POLL_MS and whenever something changes
 *   reply ──> MOVED: map moved, sent again at once (a few times, then waits)
 *             ASK: sent again at once to the node named, after ASKING
 *             TRYAGAIN, CLUSTERDOWN of its slot or of writes: held with a
 *             back-off; CLUSTERDOWN of the whole cluster: held, one canary
 *             anything else: the client's
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/buf.h"
#include "core/log.h"
#include "proxy/blocking.h"
#include "proxy/client.h"
#include "proxy/cluster_int.h"
#include "proxy/hold.h"
#include "proxy/pool.h"
#include "proxy/proxy.h"
#include "proxy/replica_check.h"
#include "proxy/req.h"
#include "proxy/sconn.h"
#include "proxy/server.h"
#include "proxy/txn.h"

enum { TRY_NEW, TRY_HELD, TRY_REDIRECT };

static struct ev_loop *cl_loop(const struct cluster *cl)
{
    return cl->p->px->loop;
}

/* The client a request or fragment answers (NULL once it went away). */
static struct client *cl_client(const struct req *r)
{
    return r->parent != NULL ? r->parent->client : r->client;
}

struct cluster_req *cluster_req_new(struct client *c, const uint8_t *p, size_t len, uint16_t slot,
                                    bool readonly, uint64_t seq)
{
    /* freed by req_free with the request (req_block_put) */
    struct cluster_req *x = req_block_get(c->px, sizeof(*x) + len);
    memset(x, 0, sizeof(*x));
    x->seq = seq;
    x->len = (uint32_t)len;
    x->slot = slot;
    x->ask_to = NODE_NONE;
    x->pre_to = NODE_NONE;
    x->canary_at = NODE_NONE;
    x->readonly = readonly;
    memcpy(x->bytes, p, len);
    return x;
}

struct hold *cluster_hold(struct cluster *cl)
{
    if (cl->hold == NULL) {
        cl->hold = hold_cluster_create(cl->p, cl->stats);
        if (cl->hold == NULL) {
            log_error("out of memory holding a cluster request");
            abort();
        }
    }
    return cl->hold;
}

static void cl_on_poll(struct ev_loop *loop, struct ev_timer *t);

void cluster_kick(struct cluster *cl)
{
    struct ev_loop *loop = cl_loop(cl);
    if (cl->closing || hold_cluster_count(cl->hold) == 0) {
        return;
    }
    if (cl->poll.fn == NULL) {
        ev_timer_init(&cl->poll, cl_on_poll, cl);
    }
    if (!ev_timer_armed(&cl->poll) || cl->poll.when_ms > ev_now(loop)) {
        ev_timer_start(loop, &cl->poll, 0);
    }
}

void cluster_poll_stop(struct cluster *cl)
{
    if (cl->poll.fn != NULL) {
        ev_timer_stop(cl_loop(cl), &cl->poll);
    }
}

/* r is answered: how long it waited for the cluster, if it did. */
static void cl_note_wait(struct cluster *cl, const struct cluster_req *x)
{
    if (x->wait_since_us != 0) {
        int64_t us = (int64_t)(ev_now_us(cl_loop(cl)) - x->wait_since_us);
        int64_t *st = &cl->stats[SC_cluster_hold_us];
        *st = us > *st ? us : *st;
    }
}

/* A slot a node said no node serves: its requests wait, and one at a time
 * (its canary) finds out whether it is served again, at most every
 * CLUSTER_BACKOFF_MAX_MS, however many wait. Without memory for the slots'
 * times, each request backs off on its own (cl_backoff). */
static void cl_slot_refused(struct cluster *cl, uint16_t slot)
{
    if (cl->slot_next_ms == NULL) {
        cl->slot_next_ms = calloc(CLUSTER_SLOTS, sizeof(*cl->slot_next_ms));
        if (cl->slot_next_ms == NULL) {
            return;
        }
    }
    cl->slot_next_ms[slot] = ev_now(cl_loop(cl)) + CLUSTER_BACKOFF_MAX_MS;
}

/* Whether the slot's requests wait (see cl_slot_refused). */
static bool cl_slot_waits(const struct cluster *cl, uint16_t slot, uint64_t now)
{
    return cl->slot_next_ms != NULL && now < cl->slot_next_ms[slot];
}

/* The slot is served (a node answered one of its requests, or moved it). */
static void cl_slot_served(struct cluster *cl, uint16_t slot)
{
    if (cl->slot_next_ms != NULL && cl->slot_next_ms[slot] != 0) {
        cl->slot_next_ms[slot] = 0;
        cluster_kick(cl); /* its requests go now */
    }
}

/* r, the canary of a node that said the cluster is down, is back: the next
 * request for that node may go. The same for the canary of a slot not served:
 * the slot counts as served again unless its reply refuses it (cl_refused). */
static void cl_canary_back(struct cluster *cl, struct cluster_req *x)
{
    if (x->slot_canary) {
        x->slot_canary = false;
        cl_slot_served(cl, x->slot);
    }
    if (x->canary_at != NODE_NONE) {
        if (x->canary_at < cl->p->nservers) { /* (a reload may have renumbered the nodes) */
            cl->nodes[x->canary_at].canary_out = false;
        }
        x->canary_at = NODE_NONE;
    }
}

/* A multi-key request or a transaction is refused by its keys' node as a
 * whole (TRYAGAIN while their slot is half moved, EXECABORT after an ASK)
 * after the client's later requests were sent behind it: one for one of its
 * keys would run first, and the retried request would then read what the
 * client wrote after it, or undo it (DEL). So while one is out, the client's
 * later requests for its slot (for any slot, when those out are of several)
 * wait until it is answered. */
static bool cl_barrier(const struct client *c, const struct cluster_req *x)
{
    return c->cl_barrier_out > 0 && (c->cl_barrier_slots || c->cl_barrier_slot == x->slot);
}

static void cl_barrier_add(struct client *c, const struct cluster_req *x)
{
    if (c->cl_barrier_out++ == 0) {
        c->cl_barrier_slot = x->slot;
        c->cl_barrier_slots = false;
    } else if (c->cl_barrier_slot != x->slot) {
        c->cl_barrier_slots = true;
    }
}

/* r is no longer at a node: its client's count of requests out goes down. */
static void cl_settle(struct cluster *cl, struct client *c, struct cluster_req *x)
{
    cl_canary_back(cl, x);
    if (!x->out) {
        return;
    }
    x->out = false;
    if (x->barrier && c != NULL && c->cl_barrier_out > 0 && --c->cl_barrier_out == 0) {
        cluster_kick(cl); /* the requests behind it may go */
    }
    if (c != NULL && c->cl_out > 0 && --c->cl_out == 0) {
        cluster_kick(cl); /* its requests that waited for these may go */
    }
}

/* The error a request gets when it waited failover_hold in vain. */
static const char *cl_why_text(const struct cluster *cl, const struct cluster_req *x)
{
    static char msg[200];
    long long ms = (long long)cl->p->cp->failover_hold_ms;
    switch (x->why) {
    case WHY_TRYAGAIN:
        snprintf(msg, sizeof(msg),
                 "TRYAGAIN Multiple keys request during rehashing of slot (retried for %lld ms)",
                 ms);
        break;
    case WHY_DOWN:
        snprintf(msg, sizeof(msg), "CLUSTERDOWN The cluster is down (retried for %lld ms)", ms);
        break;
    case WHY_UNSERVED:
        snprintf(msg, sizeof(msg), "CLUSTERDOWN Hash slot not served (retried for %lld ms)", ms);
        break;
    case WHY_DOWN_RO:
        snprintf(msg, sizeof(msg),
                 "CLUSTERDOWN The cluster is down and only accepts read commands (retried for "
                 "%lld ms)",
                 ms);
        break;
    case WHY_NODE:
        snprintf(msg, sizeof(msg),
                 "the master of slot %u cannot be reached and no replica took over within "
                 "failover_hold (%lld ms)",
                 (unsigned)x->slot, ms);
        break;
    case WHY_STALLED:
        snprintf(msg, sizeof(msg),
                 "the master of slot %u does not answer (timeout) and no replica took over "
                 "within failover_hold (%lld ms)",
                 (unsigned)x->slot, ms);
        break;
    case WHY_REDIRECTS:
        snprintf(msg, sizeof(msg), "slot %u redirected again and again for %lld ms",
                 (unsigned)x->slot, ms);
        break;
    default:
        if (cl->known) {
            snprintf(msg, sizeof(msg), "no cluster node serves slot %u (waited %lld ms)",
                     (unsigned)x->slot, ms);
        } else {
            snprintf(msg, sizeof(msg),
                     "the cluster's slot map is not known yet (no node answered in %lld ms)", ms);
        }
        break;
    }
    return msg;
}

static bool cl_node_ready(const struct cluster *cl, const struct server *s, uint64_t now)
{
    const struct cluster_node *n = &cl->nodes[s->idx];
    return !n->down || now >= n->retry_at_ms;
}

/* Where a read may go among the replicas of master m (spread by slot). */
static struct server *cl_replica(struct cluster *cl, uint16_t m, uint16_t slot, uint64_t now)
{
    const struct cluster_node *mn = &cl->nodes[m];
    for (uint8_t k = 0; k < mn->nreps; k++) {
        uint16_t i = mn->reps[(slot + k) % mn->nreps];
        const struct cluster_node *rn = &cl->nodes[i];
        struct server *s = &cl->p->servers[i];
        /* a replica that did not answer in time takes a read again (the one
         * that finds out) once a retry interval passed; the master meanwhile */
        bool stalled = rn->stalled && (rn->canary_out || now < rn->stalled_retry_ms);
        if (rn->replica_of == m && !rn->loading && !rn->failed && !stalled &&
            replica_check_ok(rn->check) && cl_node_ready(cl, s, now)) {
            return s;
        }
    }
    return NULL;
}

static struct server *cl_target(struct cluster *cl, const struct cluster_req *x, uint64_t now)
{
    if (x->ask_to != NODE_NONE) {
        return &cl->p->servers[x->ask_to];
    }
    uint16_t o = cl->owner[x->slot];
    if (o == NODE_NONE) {
        return NULL;
    }
    if (x->readonly && !x->to_master && conf_reads_replicas(cl->p->cp->read_from)) {
        /* no usable replica: its master answers (README: read_from in a cluster) */
        struct server *r = cl_replica(cl, o, x->slot, now);
        if (r != NULL) {
            return r;
        }
    }
    return &cl->p->servers[o];
}

/* Write r to s's connection for client c (ASKING first after an ASK). */
static void cl_write(struct cluster *cl, struct client *c, struct req *r, struct sconn *sc)
{
    struct cluster_req *x = r->cx;
    struct buf *out = sconn_out(sc);
    size_t before = out->len;
    bool ask = x->ask_to != NODE_NONE;
    int rc = ask ? buf_append(out, cluster_msg_asking, cluster_msg_asking_len) : 0;
    rc |= buf_append(out, x->bytes, x->len);
    if (rc != 0) {
        out->len = before;
        sconn_fail(sc, "out of memory", SS_server_err);
        req_fail(r, "out of memory");
        return;
    }
    r->skip = (ask ? 1u : 0u) + x->pre; /* ASKING's +OK is not the client's */
    x->pre_kind = CLUSTER_REPLY_OTHER;
    r->sent = false;
    x->ask_to = NODE_NONE; /* once: a later try asks the map again */
    if (!x->out) {
        x->out = true;
        if (c->cl_out++ == 0) {
            c->cl_epoch = cl->version;
        }
        if (x->barrier) {
            cl_barrier_add(c, x);
        }
    }
    sconn_queued(sc, r, out->len - before);
    if (r->blocking) {
        sconn_block_deadline(sc, r, x->block_ms);
    }
}

/* A node that said the cluster is down, or did not answer in time: one request
 * at a time finds out whether it serves again, and after a refusal not before
 * a back-off (back to back, the requests took turns at the node as fast as it
 * answered: tens of thousands a second, each a whole request's bytes). */
static bool cl_node_waits(const struct cluster_node *n, uint64_t now)
{
    if (n->says_down && now < n->down_next_ms) {
        return true;
    }
    return (n->says_down || n->stalled) && n->canary_out;
}

/* The connection r goes on to s: a blocking command's is the client's own
 * (blocking.h), made again at the node a redirection names. */
static struct sconn *cl_conn(struct client *c, const struct req *r, struct server *s)
{
    if (!r->blocking) {
        return server_conn_for(s, c->id, c->lc.resp);
    }
    struct sconn *sc = txn_own_conn(c, s);
    if (sc != NULL) {
        sconn_speak(sc, c->lc.resp); /* made before a HELLO */
    }
    return sc;
}

/* Whether r may go now; sends it if so. */
static int cl_try(struct cluster *cl, struct client *c, struct req *r, int mode)
{
    struct cluster_req *x = r->cx;
    uint64_t now = ev_now(cl_loop(cl));
    if (now < x->retry_at_ms) {
        return HOLD_TRY_STAY;
    }
    if (mode != TRY_REDIRECT && cl_barrier(c, x)) {
        x->why = WHY_ORDER; /* behind its client's multi-key request or transaction */
        return HOLD_TRY_STAY;
    }
    if (cl_slot_waits(cl, x->slot, now)) {
        x->why = WHY_UNSERVED; /* its canary is out, or went less than a back-off ago */
        return HOLD_TRY_STAY;
    }
    struct server *s = cl->known ? cl_target(cl, x, now) : NULL;
    if (s == NULL) {
        x->why = WHY_MAP;
        cluster_refresh_soon(cl);
        return HOLD_TRY_STAY;
    }
    /* (changed[] is 64 KB read at random: looked at only when the map moved at
     * all since c's epoch, which version says; changed[slot] <= version) */
    if (mode != TRY_REDIRECT && c->cl_out > 0 && cl->version > c->cl_epoch &&
        cl->changed[x->slot] > c->cl_epoch) {
        /* its slot's master changed while c has requests out: one of them may
         * be for this slot at the old master, and come back redirected */
        x->why = WHY_ORDER;
        return HOLD_TRY_STAY;
    }
    struct cluster_node *n = &cl->nodes[s->idx];
    if (cl_node_waits(n, now)) {
        x->why = n->stalled ? WHY_STALLED : WHY_DOWN;
        return HOLD_TRY_STAY;
    }
    if (!cl_node_ready(cl, s, now)) {
        x->why = WHY_NODE;
        return HOLD_TRY_STAY;
    }
    struct sconn *sc = cl_conn(c, r, s);
    if (sc == NULL) {
        x->why = WHY_NODE; /* out of memory for the client's own connection */
        return HOLD_TRY_STAY;
    }
    if (sconn_ensure(sc) != 0) {
        cluster_node_mark_down(cl, s);
        x->why = WHY_NODE;
        return HOLD_TRY_STAY;
    }
    if (n->says_down || n->stalled) {
        x->canary_at = (uint16_t)s->idx;
        n->canary_out = true;
    }
    if (cl->slot_next_ms != NULL && cl->slot_next_ms[x->slot] != 0) {
        cl->slot_next_ms[x->slot] = SLOT_CANARY_OUT;
        x->slot_canary = true;
    }
    cl_write(cl, c, r, sc);
    return HOLD_TRY_SENT;
}

/* r waits in the pool's hold (or fails now when the pool holds nothing). */
static void cl_hold_put(struct cluster *cl, struct client *c, struct req *r)
{
    struct cluster_req *x = r->cx;
    if (x->wait_since_us == 0) {
        x->wait_since_us = ev_now_us(cl_loop(cl));
    }
    if (cl->p->cp->failover_hold_ms <= 0 && x->why != WHY_ORDER) {
        req_fail(r, cl_why_text(cl, x));
        return;
    }
    hold_cluster_put(cluster_hold(cl), c, r, x->len, x->seq);
    cluster_kick(cl);
}

void cluster_submit(struct cluster *cl, struct client *c, struct req *r)
{
    struct cluster_req *x = r->cx;
    if (hold_cluster_has(cl->hold, c->id, UINT64_MAX)) {
        x->why = WHY_ORDER; /* behind its client's held requests */
        cl_hold_put(cl, c, r);
        return;
    }
    if (cl_try(cl, c, r, TRY_NEW) != HOLD_TRY_SENT) {
        cl_hold_put(cl, c, r);
    }
}

/* The hold offers r again. */
static int cl_hold_try(void *ctx, struct req *r, uint64_t since_us, const char **why)
{
    struct cluster *cl = ctx;
    struct cluster_req *x = r->cx;
    struct client *c = cl_client(r);
    (void)since_us;
    if (c == NULL) {
        *why = "client closed";
        return HOLD_TRY_FAIL;
    }
    if (r->blocking && c->read_eof) {
        *why = BLOCKING_END_MSG; /* let go (blocking_end): it would wait for nobody */
        return HOLD_TRY_FAIL;
    }
    uint64_t waited_ms = (ev_now_us(cl_loop(cl)) - x->wait_since_us) / 1000;
    if (x->why != WHY_ORDER && waited_ms >= (uint64_t)cl->p->cp->failover_hold_ms) {
        *why = cl_why_text(cl, x);
        log_warn("pool '%s': a request for slot %u waited %llu ms for the cluster: %s",
                 cl->p->cp->name, (unsigned)x->slot, (unsigned long long)waited_ms, *why);
        return HOLD_TRY_FAIL;
    }
    /* its wait goes on counting until it is answered: a request sent to a
     * master that refuses it again is not given a new failover_hold */
    return cl_try(cl, c, r, TRY_HELD);
}

static void cl_on_poll(struct ev_loop *loop, struct ev_timer *t)
{
    struct cluster *cl = t->data;
    /* (sent on one by one, they grow a connection's buffer in 1 MB steps:
     * memlimit.c gives the rounding back before it counts them over the limit) */
    (void)hold_cluster_walk(cl->hold, cl_hold_try, cl);
    if (hold_cluster_count(cl->hold) > 0 && !cl->closing) {
        ev_timer_start(loop, t, CLUSTER_POLL_MS);
    }
}

/* ------------------------------------------------------------ replies */

/* r was redirected or must wait: sent again now when it can be, else held
 * (behind its client's older held requests either way). */
static void cl_again(struct cluster *cl, struct client *c, struct req *r, int mode)
{
    struct cluster_req *x = r->cx;
    if (mode == TRY_REDIRECT && !hold_cluster_has(cl->hold, c->id, x->seq) &&
        cl_try(cl, c, r, TRY_REDIRECT) == HOLD_TRY_SENT) {
        return;
    }
    cl_settle(cl, c, x);
    cl_hold_put(cl, c, r);
}

static void cl_backoff(struct cluster *cl, struct cluster_req *x)
{
    uint64_t ms = (uint64_t)CLUSTER_POLL_MS << (x->backoff < 4 ? x->backoff : 4);
    x->backoff++;
    x->retry_at_ms =
        ev_now(cl_loop(cl)) + (ms < CLUSTER_BACKOFF_MAX_MS ? ms : CLUSTER_BACKOFF_MAX_MS);
}

/* A MOVED names the master of slot at to (NULL: a node the pool cannot have):
 * the map follows it at once. */
static void cl_moved(struct cluster *cl, uint16_t slot, struct server *to)
{
    cl->stats[SC_moved]++;
    if (to != NULL) {
        cluster_map_move(cl, slot, to); /* nothing changes when it is the master in use */
        cl_slot_served(cl, slot);       /* by `to`, says the node that had it */
    }
    cluster_refresh_soon(cl);
}

/* r was redirected (kind MOVED or ASK) to `to`; the map knows of a MOVED. */
static void cl_redirect(struct cluster *cl, struct client *c, struct req *r, int kind,
                        struct server *to)
{
    struct cluster_req *x = r->cx;
    if (kind == CLUSTER_REPLY_MOVED) {
        x->to_master = x->readonly; /* a replica's MOVED names the master: it answers */
    } else {
        cl->stats[SC_ask]++;
        x->ask_to = to != NULL ? (uint16_t)to->idx : NODE_NONE;
    }
    if (to == NULL || ++x->redirects > CLUSTER_MAX_REDIRECTS) {
        x->why = WHY_REDIRECTS;
        x->ask_to = NODE_NONE;
        cl_backoff(cl, x);
        cl_again(cl, c, r, TRY_HELD);
        return;
    }
    cl_again(cl, c, r, TRY_REDIRECT);
}

/* The map is asked for again soon after a refusal, at most every
 * CLUSTER_REFRESH_FAST_MS: a node that goes on refusing must not have it asked
 * for 50 times a second. */
static void cl_refresh_after_refusal(struct cluster *cl)
{
    if (ev_now(cl_loop(cl)) >= cl->last_query_ms + CLUSTER_REFRESH_FAST_MS) {
        cluster_refresh_soon(cl);
    }
}

/* A node refused r's slot alone (no node serves it) or r as a write (the
 * cluster is down but serves reads): r waits with a back-off, and the pool's
 * other requests go on; the canary of a cluster down would hold them all each
 * time such a reply came. The log says so once every CLUSTER_LOG_GAP_MS. */
static void cl_refused(struct cluster *cl, const struct server *from, struct cluster_req *x,
                       int kind)
{
    cl->stats[SC_cluster_down]++;
    x->why = kind == CLUSTER_REPLY_UNSERVED ? WHY_UNSERVED : WHY_DOWN_RO;
    cl_backoff(cl, x);
    if (kind == CLUSTER_REPLY_UNSERVED) {
        cl_slot_refused(cl, x->slot);
    }
    cl_refresh_after_refusal(cl); /* another node may serve it now (or soon: a failover) */
    uint64_t quiet = 0;
    if (!log_gap_due(&cl->refused_log, ev_now(cl_loop(cl)), CLUSTER_LOG_GAP_MS, &quiet)) {
        return;
    }
    log_warn("pool '%s': cluster node '%s' says %s (slot %u): such requests wait "
             "(%llu more refusals since the last line)",
             cl->p->cp->name, from->cs->name,
             kind == CLUSTER_REPLY_UNSERVED ? "the slot is not served"
                                            : "the cluster is down and takes reads only",
             (unsigned)x->slot, (unsigned long long)quiet);
}

/* A reply that is not a redirection: the node serves. */
static void cl_served(struct cluster *cl, struct server *from, bool was_down_reply)
{
    struct cluster_node *n = &cl->nodes[from->idx];
    n->down = false;
    if (n->stalled) {
        n->stalled = false;
        log_notice("pool '%s': cluster node '%s' answers again", cl->p->cp->name, from->cs->name);
        cluster_kick(cl);
    }
    if (n->says_down && !was_down_reply) {
        n->says_down = false;
        log_notice("pool '%s': cluster node '%s' serves again", cl->p->cp->name, from->cs->name);
        cluster_kick(cl);
    }
}

bool cluster_reply(struct req *r, const uint8_t *p, size_t len, const struct rsp_info *ri)
{
    struct cluster_req *x = r->cx;
    struct server *from = r->sconn != NULL ? r->sconn->server : NULL;
    struct cluster *cl = from != NULL ? from->pool->cluster : NULL;
    struct client *c = cl_client(r);
    struct cluster_redirect rd; /* filled by cluster_msg_redirect, read only after it */
    if (cl == NULL) {
        return false;
    }
    int kind = ri->is_error ? cluster_msg_redirect(p, len, &rd) : CLUSTER_REPLY_OTHER;
    bool pre = false;
    if (kind == CLUSTER_REPLY_OTHER && x->pre_kind != CLUSTER_REPLY_OTHER &&
        cluster_msg_execabort(p, len)) {
        kind = x->pre_kind; /* a transaction a node refused to queue: nothing of it ran */
        pre = true;
    }
    bool down = kind == CLUSTER_REPLY_DOWN || kind == CLUSTER_REPLY_UNSERVED ||
                kind == CLUSTER_REPLY_DOWN_RO;
    cl_served(cl, from, down);
    bool budget = cl->p->cp->failover_hold_ms > 0;
    if (kind == CLUSTER_REPLY_OTHER || c == NULL || cl->closing ||
        ((kind == CLUSTER_REPLY_TRYAGAIN || down) && !budget)) {
        cl_note_wait(cl, x);
        cl_settle(cl, c, x);
        return false;
    }
    cl_canary_back(cl, x); /* before any resend: a request in cl_try holds no canary */
    if (kind == CLUSTER_REPLY_MOVED || kind == CLUSTER_REPLY_ASK) {
        struct server *to = pre ? (x->pre_to != NODE_NONE ? &cl->p->servers[x->pre_to] : NULL)
                                : cluster_node_at(cl, &rd.to, from);
        if (kind == CLUSTER_REPLY_MOVED && !pre) {
            cl_moved(cl, rd.slot, to);
        }
        cl_redirect(cl, c, r, kind, to);
        return true;
    }
    x->redirects = 0;
    if (kind == CLUSTER_REPLY_TRYAGAIN) {
        cl->stats[SC_tryagain]++;
        x->why = WHY_TRYAGAIN;
        cl_backoff(cl, x);
    } else if (kind != CLUSTER_REPLY_DOWN) {
        cl_refused(cl, from, x, kind);
    } else {
        /* its view of the cluster is FAIL: its slots wait, one request at a
         * time finds out when it serves again; the other nodes serve on */
        struct cluster_node *n = &cl->nodes[from->idx];
        cl->stats[SC_cluster_down]++;
        x->why = WHY_DOWN;
        if (!n->says_down) {
            log_warn("pool '%s': cluster node '%s' says CLUSTERDOWN: its requests wait",
                     cl->p->cp->name, from->cs->name);
        }
        n->says_down = true;
        n->down_next_ms = ev_now(cl_loop(cl)) + CLUSTER_BACKOFF_MAX_MS;
        cl_refresh_after_refusal(cl);
    }
    cl_again(cl, c, r, TRY_HELD);
    return true;
}

void cluster_skipped_reply(struct req *r, const uint8_t *p, size_t len)
{
    struct cluster_req *x = r->cx;
    struct server *from = r->sconn != NULL ? r->sconn->server : NULL;
    struct cluster *cl = from != NULL ? from->pool->cluster : NULL;
    struct cluster_redirect rd;
    if (cl == NULL || cl->closing || x->pre == 0 || x->pre_kind != CLUSTER_REPLY_OTHER) {
        return; /* the first redirection of a transaction is the one followed */
    }
    int kind = cluster_msg_redirect(p, len, &rd);
    if (kind == CLUSTER_REPLY_MOVED || kind == CLUSTER_REPLY_ASK) {
        struct server *to = cluster_node_at(cl, &rd.to, from);
        x->pre_to = to != NULL ? (uint16_t)to->idx : NODE_NONE;
        if (kind == CLUSTER_REPLY_MOVED) {
            cl_moved(cl, rd.slot, to);
        }
    }
    x->pre_kind = (uint8_t)kind;
}

int cluster_note_redirect(struct server *from, const uint8_t *p, size_t len)
{
    struct cluster *cl = from->pool->cluster;
    struct cluster_redirect rd;
    if (cl == NULL || cl->closing) {
        return CLUSTER_REPLY_OTHER;
    }
    int kind = cluster_msg_redirect(p, len, &rd);
    if (kind == CLUSTER_REPLY_MOVED) {
        cl_moved(cl, rd.slot, cluster_node_at(cl, &rd.to, from));
    }
    return kind;
}

void cluster_req_failed(struct req *r)
{
    struct cluster_req *x = r->cx;
    struct server *from = r->sconn != NULL ? r->sconn->server : NULL;
    struct cluster *cl = from != NULL ? from->pool->cluster : NULL;
    if (cl != NULL) {
        cl_settle(cl, cl_client(r), x);
    } else {
        x->out = false;
    }
}

/* ------------------------------------------------------------ connections failing */

void cluster_node_lost(struct server *s)
{
    struct cluster *cl = s->pool->cluster;
    if (cl != NULL && !cl->closing && s->owner == NULL) {
        cluster_node_mark_down(cl, s);
    }
}

void cluster_node_reached(struct server *s)
{
    struct cluster *cl = s->pool->cluster;
    if (cl != NULL && !cl->closing && s->owner == NULL) {
        cl->nodes[s->idx].down = false;
    }
}

void cluster_node_timed_out(struct server *s)
{
    struct cluster *cl = s->pool->cluster;
    if (cl == NULL || cl->closing) {
        return;
    }
    struct cluster_node *n = &cl->nodes[s->idx];
    if (!n->stalled) {
        log_warn("pool '%s': cluster node '%s' did not answer within timeout: its requests "
                 "wait, one at a time trying, until it answers or the map names another",
                 cl->p->cp->name, s->cs->name);
    }
    n->stalled = true;
    n->stalled_retry_ms = ev_now(cl_loop(cl)) + CLUSTER_STALLED_RETRY_MS;
    cluster_refresh_soon(cl); /* the cluster may have failed it over already */
}

bool cluster_takes_back(const struct server *s)
{
    const struct cluster *cl = s->pool->cluster;
    return cl != NULL && !cl->closing && cl->p->cp->failover_hold_ms > 0;
}

bool cluster_take_back(struct req *r)
{
    struct server *from = r->sconn != NULL ? r->sconn->server : NULL;
    struct cluster *cl = from != NULL ? from->pool->cluster : NULL;
    struct client *c = cl_client(r);
    if (cl == NULL || r->cx == NULL || c == NULL || cl->closing) {
        return false; /* the proxy's own (a map query), an orphan: the error it is */
    }
    struct cluster_req *x = r->cx;
    x->why = WHY_NODE;
    r->skip = 0;
    cl_settle(cl, c, x);
    cl_hold_put(cl, c, r);
    return true;
}
