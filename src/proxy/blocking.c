#include "proxy/blocking.h"

#include <stdio.h>

#include "proxy/client.h"
#include "proxy/cqueue.h"
#include "proxy/pool.h"
#include "proxy/req.h"
#include "proxy/route.h"
#include "proxy/router.h"
#include "proxy/sconn.h"
#include "proxy/server.h"
#include "proxy/txn.h"

/* A cluster node answers a client blocked on a slot that moves with a
 * redirection, which the proxy could not follow without losing the pop:
 * refused there, in redis' words for a command it will not run. */
static void blocking_refuse_cluster(struct client *c, const uint8_t *p, const struct req_info *ri)
{
    char name[32], msg[128];
    struct span a = ri->args.v[0];
    size_t n = a.len < sizeof(name) ? a.len : sizeof(name) - 1;
    for (size_t i = 0; i < n; i++) {
        uint8_t ch = p[a.off + i];
        name[i] = (char)(ch >= 'A' && ch <= 'Z' ? ch + 32 : ch);
    }
    name[n] = '\0';
    snprintf(msg, sizeof(msg), "unsupported command '%s' in a redis_cluster pool (blocking)", name);
    router_reply_error(c, msg);
}

bool blocking_waits(const struct client *c)
{
    const struct req *r = c->q.head;
    return r != NULL && r->blocking && !r->done;
}

void blocking_end(struct client *c, const char *why)
{
    if (blocking_waits(c)) {
        sconn_reset(c->q.head->sconn, why); /* its reply: the error why */
    }
}

bool blocking_dispatch(struct client *c, const uint8_t *p, const struct req_info *ri)
{
    struct pool *pool = c->pool;
    if (pool->mode == POOL_CLUSTER) {
        blocking_refuse_cluster(c, p, ri);
        return true;
    }
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
