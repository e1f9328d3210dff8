#include "proxy/blocking.h"

#include "proxy/client.h"
#include "proxy/cluster.h"
#include "proxy/cqueue.h"
#include "proxy/pool.h"
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

void blocking_end(struct client *c, const char *why)
{
    const struct req *r = c->q.head;
    /* (one a cluster pool holds is on no connection: the hold ends it, as
     * the client reads no more: cluster_send.c) */
    if (blocking_waits(c) && r->in_server) {
        sconn_reset(r->sconn, why); /* its reply: the error why */
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
    if (c->read_eof) {
        /* redis frees a client at its EOF, and a blocked one with it: nothing
         * would end this wait, and a pop nobody reads would be lost */
        c->closing = true;
        return true;
    }
    const struct span *k = &ri->keys.v[0];
    if (client_wait_server(c, route_pending(pool, p + k->off, k->len))) {
        return false; /* a sentinel group's master is not known yet */
    }
    if (pool->mode == POOL_CLUSTER) {
        /* the slot's master, found (and followed) as any request's */
        c->fence = cluster_submit_blocking(c, p, ri);
        return true;
    }
    struct route r;
    int miss = route_request(pool, p, &ri->keys, false, &r);
    if (miss != ROUTE_HIT) {
        char msg[256];
        router_reply_error(c, route_miss_text(pool, miss, &r, msg, sizeof(msg)));
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
        pool->stats[SP_forward_error]++;
        router_reply_error(c, server_strerror(r.target, err));
        return true;
    }
    struct req *q = req_new(c->px, ri->cmd);
    q->blocking = true;
    cqueue_push(c, q, ri->len);
    sconn_send_blocking(sc, q, p, ri->len, ri->block_ms);
    c->fence = true; /* what it sends next waits for this answer, as redis makes it */
    return true;
}
