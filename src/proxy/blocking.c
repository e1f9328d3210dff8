#include "proxy/blocking.h"

#include <stdio.h>
#include <string.h>

#include "core/log.h"
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
#include "proxy/txn.h"

bool blocking_waits(const struct client *c)
{
    const struct req *r = c->q.head;
    return r != NULL && r->blocking && !r->done;
}

/* The answer to CLIENT UNBLOCK: 1, or 0 when the pop was served first (its
 * reply is on its way). An error (an ACL without CLIENT UNBLOCK) leaves the
 * wait to its deadline (blocking_end). */
static void blocking_unblock_reply(struct req *r, struct buf *out, const uint8_t *p, size_t len,
                                   const struct rsp_info *ri, const char *err)
{
    const struct server *s = r->reply_ctx;
    (void)out;
    if (err != NULL || ri->is_error) {
        /* (info: a stop lets every blocked client go, each would say it) */
        log_info("server '%s': CLIENT UNBLOCK failed (%.*s): a blocked client let go waits up "
                 "to %d ms for its pop, then closes",
                 s->cs->name, err != NULL ? (int)strlen(err) : (int)(len > 2 ? len - 2 : len),
                 err != NULL ? err : (const char *)p, BLOCKING_UNBLOCK_MS);
    }
}

/* CLIENT UNBLOCK <own's server id> ERROR on a shared connection to the same
 * server: redis either ends the wait (-UNBLOCKED, nothing popped) or has
 * served it already (the value is on its way): no pop is lost. */
static bool blocking_unblock(struct sconn *own)
{
    /* a reload that kept the server gave its connections to the new pool's
     * (server_adopt): the same server, asked over them */
    struct server *s = own->server->heir != NULL ? own->server->heir : own->server;
    if (own->srv_id <= 0 || s->nconns == 0) {
        return false;
    }
    struct sconn *sc = server_conn_for(s, 0, 2); /* the proxy's own: client id 0 */
    if (sconn_ensure(sc) != 0) {
        return false;
    }
    char id[24];
    int n = snprintf(id, sizeof(id), "%lld", (long long)own->srv_id);
    const uint8_t *argv[4] = {(const uint8_t *)"CLIENT", (const uint8_t *)"UNBLOCK",
                              (const uint8_t *)id, (const uint8_t *)"ERROR"};
    size_t lens[4] = {6, 7, (size_t)n, 5};
    struct buf *out = sconn_out(sc);
    size_t before = out->len;
    if (s->pool->proto->build(out, 4, argv, lens) != 0) {
        out->len = before;
        return false;
    }
    struct req *r = req_new(s->pool->px, 0);
    r->reply = blocking_unblock_reply;
    r->reply_ctx = s;
    sconn_queued(sc, r, out->len - before);
    return true;
}

/* A close right after the command would start the client's next try at once:
 * redis-rb 4 sends a blocking command again on a lost connection without a
 * pause, and the proxy, unlike a server that is down, accepts it, so a client
 * would loop thousands of times a second. Closed as if the command had waited
 * (its timeout, at most BLOCKING_DOWN_MS), it tries at most once a second. */
bool blocking_fail_later(struct req *r, const char *why)
{
    struct client *c = r->client;
    struct ev_loop *loop = c->px->loop;
    if (r->sent || r->unblocking || r->cx != NULL || c->q.head != r || c->read_eof ||
        ev_now(loop) >= c->block_fail_at_ms) {
        return false; /* it reached the server, or the client is done, or it waited */
    }
    snprintf(c->block_fail_why, sizeof(c->block_fail_why), "%s", why);
    ev_timer_start_at(loop, &c->block_fail_timer, c->block_fail_at_ms);
    return true;
}

void blocking_on_fail_timer(struct ev_loop *loop, struct ev_timer *t)
{
    struct client *c = t->data;
    struct req *r = c->q.head;
    (void)loop;
    c->block_fail_at_ms = 0; /* req_fail closes the client now */
    if (r != NULL && r->blocking && !r->done) {
        req_fail(r, c->block_fail_why);
    }
}

/* Ask r's server to end its wait: its answer comes on r's own connection,
 * what it popped, or -UNBLOCKED (req_complete: then the client closes as at a
 * failure). A connection whose set-up (CLIENT ID last) is not answered yet is
 * asked once it is (blocking_id_known): the command came in the same write,
 * and may have been served at once. False: its id is not known (an ACL
 * refused CLIENT ID) or the request cannot be sent. */
static bool blocking_ask_end(struct req *r)
{
    struct sconn *own = r->sconn;
    if (own->id_asked) {
        own->end_at_id = true;
    } else if (!blocking_unblock(own)) {
        return false;
    }
    r->unblocking = true;
    sconn_req_deadline(own, r, BLOCKING_UNBLOCK_MS);
    return true;
}

void blocking_id_known(struct sconn *own)
{
    own->end_at_id = false;
    if (own->head != NULL && own->head->unblocking && !blocking_unblock(own)) {
        sconn_reset(own, BLOCKING_END_MSG); /* without its id: as blocking_end */
    }
}

bool blocking_eof(struct client *c)
{
    struct req *r = c->q.head;
    if (ev_timer_armed(&c->block_fail_timer) || !r->in_server) {
        return false; /* it failed already, or it is held for a server: nothing to pop */
    }
    return r->unblocking || blocking_ask_end(r);
}

void blocking_end(struct client *c, const char *why)
{
    struct req *r = c->q.head;
    if (ev_timer_armed(&c->block_fail_timer)) {
        /* it failed already and waits to close: now */
        ev_timer_stop(c->px->loop, &c->block_fail_timer);
        blocking_on_fail_timer(c->px->loop, &c->block_fail_timer);
        return;
    }
    /* (one a cluster pool holds is on no connection: the hold ends it, as
     * the client reads no more: cluster_send.c) */
    if (!blocking_waits(c) || !r->in_server || r->unblocking || blocking_ask_end(r)) {
        return;
    }
    /* without its id: closed now (the server pops nothing for it after; one
     * popped in the same instant, before redis reads the close, is lost) */
    sconn_reset(r->sconn, why);
}

/* The client's request for the blocking command ri: what it sends next waits
 * for this answer, as redis makes it; a failure closes it (client_hang_up). */
static struct req *blocking_req(struct client *c, const struct req_info *ri)
{
    struct req *q = req_new(c->px, ri->cmd);
    q->blocking = q->hangs_up = true;
    cqueue_push(c, q, ri->len);
    c->fence = true;
    return q;
}

/* A blocking command the client sent before its EOF (read with it): redis
 * runs it, and answers it if it is served at once, else frees the client
 * (blocking_eof). */
static void blocking_after_eof(struct client *c)
{
    if (c->read_eof && blocking_waits(c) && !blocking_eof(c)) {
        c->closing = true;
    }
}

bool blocking_dispatch(struct client *c, const uint8_t *p, const struct req_info *ri)
{
    struct pool *pool = c->pool;
    /* redis runs what the client sent before it first: so here, its earlier
     * requests (on other connections) are answered before it goes */
    if (client_wait_fence(c)) {
        return false;
    }
    const struct span *k = &ri->keys.v[0];
    if (client_wait_server(c, route_pending(pool, p + k->off, k->len))) {
        return false; /* a sentinel group's master is not known yet */
    }
    int64_t wait_ms =
        ri->block_ms < 0 || ri->block_ms > BLOCKING_DOWN_MS ? BLOCKING_DOWN_MS : ri->block_ms;
    c->block_fail_at_ms = ev_now(c->px->loop) + (uint64_t)wait_ms;
    if (pool->mode == POOL_CLUSTER) {
        /* the slot's master, found (and followed) as any request's */
        c->fence = cluster_submit_blocking(c, p, ri);
        blocking_after_eof(c);
        return true;
    }
    struct route r;
    int miss = route_request(pool, p, &ri->keys, false, &r);
    if (miss != ROUTE_HIT) {
        char msg[256];
        const char *text = route_miss_text(pool, miss, &r, msg, sizeof(msg));
        if (miss == ROUTE_MISS_CROSS) {
            router_reply_error(c, text); /* the request's own fault */
        } else {
            req_fail(blocking_req(c, ri), text); /* no server: as if it were gone */
        }
        return true;
    }
    struct sconn *sc = txn_own_conn(c, r.target);
    if (sc == NULL) {
        router_reply_error(c, "out of memory");
        return true;
    }
    sconn_speak(sc, c->lc.resp); /* made before a HELLO */
    int err = sconn_ensure(sc);
    if (err != 0) {
        req_fail(blocking_req(c, ri), server_strerror(r.target, err));
        return true;
    }
    sconn_send_blocking(sc, blocking_req(c, ri), p, ri->len, ri->block_ms);
    blocking_after_eof(c);
    return true;
}
