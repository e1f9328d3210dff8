/*
 * cluster_refresh: asking a node of a cluster pool for the slot map, as the
 * sentinel client asks a sentinel: one query at a time, on a connection of
 * its own (a private sconn of the node's server: AUTH, TLS and keepalive as
 * every connection of the pool), never in the way of requests, which go on
 * with the map in use meanwhile.
 *
 *   tick (cluster_refresh ms; CLUSTER_REFRESH_FAST_MS while something waits),
 *   MOVED, a node's connection failing ──> soon (at most every
 *   CLUSTER_REFRESH_GAP_MS) ──> query: CLUSTER SHARDS (CLUSTER SLOTS on a
 *   server that knows no SHARDS) to the next node that is up, seeds first
 *   until a map is known ──> apply (cluster.c)
 *      failed, silent CLUSTER_QUERY_WAIT_MS, garbage ──> the next node, each
 *      at most once per round
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "proto/redis_cmd.h"
#include "proxy/cluster_int.h"
#include "proxy/hold.h"
#include "proxy/pool.h"
#include "proxy/proxy.h"
#include "proxy/req.h"
#include "proxy/sconn.h"
#include "proxy/server.h"

/* What a node that names none of the map's other nodes is told (cr_failed). */
#define CR_FOREIGN                                                                                 \
    "names none of the cluster's other nodes (removed from it, and reset?): its slot map is "      \
    "not used"

static void cr_on_tick(struct ev_loop *loop, struct ev_timer *t);
static void cr_on_wait(struct ev_loop *loop, struct ev_timer *t);
static void cr_query_next(struct cluster *cl);

static struct ev_loop *rf_loop(const struct cluster *cl)
{
    return cl->p->px->loop;
}

void cluster_refresh_init(struct cluster *cl)
{
    ev_timer_init(&cl->tick, cr_on_tick, cl);
    ev_timer_init(&cl->qwait, cr_on_wait, cl);
}

static void cr_close_conn(struct cluster *cl)
{
    if (cl->qconn != NULL) {
        struct sconn *c = cl->qconn;
        cl->qconn = NULL;
        sconn_free_private(c); /* a query in flight fails: cr_on_reply sees closing or no conn */
    }
}

void cluster_refresh_stop(struct cluster *cl)
{
    bool was = cl->closing;
    cl->closing = true; /* the query's reply, if any, is not applied */
    ev_timer_stop(rf_loop(cl), &cl->tick);
    ev_timer_stop(rf_loop(cl), &cl->qwait);
    cr_close_conn(cl);
    cl->querying = false;
    cl->closing = was;
    cl->stopped = true;
}

void cluster_refresh_soon(struct cluster *cl)
{
    if (cl->closing || cl->stopped) {
        return;
    }
    if (cl->querying) {
        cl->again = true;
        return;
    }
    uint64_t at = cl->last_query_ms + CLUSTER_REFRESH_GAP_MS;
    uint64_t now = ev_now(rf_loop(cl));
    uint64_t when = at > now ? at : now;
    if (!ev_timer_armed(&cl->tick) || cl->tick.when_ms > when) {
        ev_timer_start_at(rf_loop(cl), &cl->tick, when);
    }
}

/* The next query after this one: soon when asked again, fast while something
 * waits, else cluster_refresh ms on. */
static void cr_schedule(struct cluster *cl)
{
    cl->querying = false;
    if (cl->closing || cl->stopped) {
        return;
    }
    if (cl->again) {
        cl->again = false;
        cluster_refresh_soon(cl);
        return;
    }
    uint64_t ms =
        cluster_degraded(cl) ? CLUSTER_REFRESH_FAST_MS : (uint64_t)cl->p->cp->cluster_refresh_ms;
    ev_timer_start(rf_loop(cl), &cl->tick, ms);
}

/* s gave no map (why; NULL: it gave a foreign one, cluster_topo_foreign): the
 * next node, or the next round. */
static void cr_failed(struct cluster *cl, struct server *s, const char *why)
{
    cl->stats[SC_cluster_refresh_failed]++;
    uint64_t quiet;
    char more[64];
    if (cl->known && why != NULL) {
        log_info("pool '%s': cluster node '%s' gave no slot map: %s", cl->p->cp->name, s->cs->name,
                 why);
    } else if (log_gap_due(&cl->refresh_log, ev_now(rf_loop(cl)), CLUSTER_LOG_GAP_MS, &quiet)) {
        /* no node answers yet, or a stranger does: every round would say it again */
        log_warn("pool '%s': cluster node '%s' %s%s%s", cl->p->cp->name, s->cs->name,
                 why != NULL ? "gave no slot map: " : CR_FOREIGN, why != NULL ? why : "",
                 log_gap_more(more, sizeof(more), quiet));
    }
    ev_timer_stop(rf_loop(cl), &cl->qwait);
    if (++cl->qtries < cl->p->nservers) {
        cl->querying = false;
        ev_timer_start(rf_loop(cl), &cl->tick, 0); /* the next node, from the loop */
        return;
    }
    cl->qtries = 0;
    /* a round that found no node to answer: the failures of the nodes it asked
     * asked for another at once, which would ask the same nodes every 20 ms */
    cl->again = false;
    cr_schedule(cl);
}

static void cr_on_reply(struct req *r, struct buf *out, const uint8_t *p, size_t len,
                        const struct rsp_info *ri, const char *err)
{
    struct cluster *cl = r->reply_ctx;
    (void)out;
    if (cl->closing || cl->stopped || !cl->querying) {
        return; /* the pool goes: nothing to apply */
    }
    struct server *s = cl->qconn->server;
    if (err != NULL || ri == NULL) {
        cr_failed(cl, s, err != NULL ? err : "no reply");
        return;
    }
    if (ri->is_error && !cl->use_slots && cluster_msg_unknown_subcommand(p, len)) {
        cl->use_slots = true; /* before 7.0: CLUSTER SLOTS says enough */
        ev_timer_stop(rf_loop(cl), &cl->qwait);
        cl->querying = false;
        ev_timer_start(rf_loop(cl), &cl->tick, 0);
        return;
    }
    cl->topo.tls_ports = cl->p->cp->tls.enabled; /* the pool's now (a reload may change it) */
    int rc = cl->use_slots ? cluster_msg_parse_slots(p, len, &cl->topo)
                           : cluster_msg_parse_shards(p, len, &cl->topo);
    if (rc != 0 || cl->topo.nranges == 0) {
        char why[200];
        snprintf(why, sizeof(why), "%s", rc != 0 ? cl->topo.err : "it serves no slot");
        cr_failed(cl, s, why);
        return;
    }
    if (cluster_topo_foreign(cl, &cl->topo, s)) {
        cr_failed(cl, s, NULL);
        return;
    }
    ev_timer_stop(rf_loop(cl), &cl->qwait);
    cl->stats[SC_cluster_refresh]++;
    cl->qtries = 0;
    cluster_apply(cl, &cl->topo, s);
    cr_schedule(cl);
}

/* Whether s is worth asking in this pass: up, and (once a map is known) in it.
 * Never a node learned at run time that the map no longer names: removed from
 * the cluster (del-node), it may serve a cluster of its own now, and its map
 * would take every slot away from the real one while that is down. */
static bool cr_candidate(const struct cluster *cl, uint32_t i, int pass, uint64_t now)
{
    const struct cluster_node *n = &cl->nodes[i];
    bool seed = i < cl->p->cp->nservers;
    if (cl->known && !n->in_map && !seed) {
        return false;
    }
    bool up = !n->down || now >= n->retry_at_ms;
    if (pass == 0) {
        return up && !n->failed && (cl->known ? n->in_map : seed);
    }
    return pass == 1 ? up : true;
}

static struct server *cr_pick(struct cluster *cl)
{
    struct pool *p = cl->p;
    uint64_t now = ev_now(rf_loop(cl));
    for (int pass = 0; pass < 3; pass++) {
        for (uint32_t k = 0; k < p->nservers; k++) {
            uint32_t i = (cl->qnext + k) % p->nservers;
            if (cr_candidate(cl, i, pass, now)) {
                cl->qnext = i + 1;
                return &p->servers[i];
            }
        }
    }
    return NULL;
}

static void cr_query_next(struct cluster *cl)
{
    struct server *s = cr_pick(cl);
    if (s == NULL) {
        cr_schedule(cl);
        return;
    }
    if (cl->qconn != NULL && (cl->qconn->server != s || cl->qconn->state == SCONN_CLOSED)) {
        cr_close_conn(cl);
    }
    if (cl->qconn == NULL) {
        cl->qconn = sconn_new_private(s, NULL, 2);
        if (cl->qconn != NULL) {
            cl->qconn->quiet = true; /* cr_failed says why it failed */
        }
    }
    cl->last_query_ms = ev_now(rf_loop(cl));
    cl->querying = true;
    int err = cl->qconn != NULL ? sconn_ensure(cl->qconn) : ENOMEM;
    if (err != 0) {
        cluster_node_mark_down(cl, s);
        cr_failed(cl, s, server_strerror(s, err));
        return;
    }
    struct buf *out = sconn_out(cl->qconn);
    size_t before = out->len;
    if ((cl->use_slots ? cluster_msg_slots_request(out) : cluster_msg_shards_request(out)) != 0) {
        out->len = before;
        cr_failed(cl, s, "out of memory");
        return;
    }
    struct req *r =
        req_new(s->pool->px, cl->use_slots ? REDIS_CMD_CLUSTER_SLOTS : REDIS_CMD_CLUSTER_SHARDS);
    r->reply = cr_on_reply; /* no client: the proxy's own */
    r->reply_ctx = cl;
    sconn_queued(cl->qconn, r, out->len - before);
    ev_timer_start(rf_loop(cl), &cl->qwait, CLUSTER_QUERY_WAIT_MS);
}

static void cr_on_tick(struct ev_loop *loop, struct ev_timer *t)
{
    struct cluster *cl = t->data;
    (void)loop;
    if (cl->querying || cl->closing || cl->stopped) {
        return;
    }
    cr_query_next(cl);
}

static void cr_on_wait(struct ev_loop *loop, struct ev_timer *t)
{
    struct cluster *cl = t->data;
    (void)loop;
    if (cl->qconn != NULL && cl->querying) {
        /* its reply (an error) comes through cr_on_reply */
        sconn_reset(cl->qconn, "no slot map within "
                               "1000 ms");
    }
}
