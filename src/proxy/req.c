#include "proxy/req.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "proto/redis_cmd.h"
#include "proxy/blocking.h"
#include "proxy/client.h"
#include "proxy/cluster.h"
#include "proxy/cqueue.h"
#include "proxy/pool.h"

void req_release(struct req *r)
{
    if (r->in_client || r->in_server || r->held || (r->split != NULL && r->split->pending > 0)) {
        return;
    }
    req_free(r);
}

/* The reply of r (a whole request, not a fragment) is known; served: the
 * servers' answer, not the proxy's error. */
static void req_deliver(struct req *r, const uint8_t *p, size_t len, bool served)
{
    if (r->client == NULL) {
        req_release(r); /* its client went away: nobody reads this */
        return;
    }
    cqueue_reply(r->client, r, p, len, served);
}

/* How much of this reply to its quiet request (q) r's client sees: 0 when it
 * asked not to see it. */
static size_t req_shown(const struct req *r, const uint8_t *p, size_t len)
{
    const struct proto *pr = r->client != NULL ? r->client->pool->proto : NULL;
    return pr != NULL && pr->reply_shown != NULL ? pr->reply_shown(r->cmd, p, len) : len;
}

/* A request with a reply function: the proxy's own (no client, the function
 * consumes the reply), or one whose reply the function rewrites. */
static void req_reply_through(struct req *r, const uint8_t *p, size_t len,
                              const struct rsp_info *ri, const char *err)
{
    struct buf out;
    buf_init(&out);
    r->reply(r, &out, p, len, ri, err);
    if (r->client == NULL && !r->in_client) {
        buf_free(&out);
        req_release(r);
        return;
    }
    req_deliver(r, out.data, out.len, err == NULL);
    buf_free(&out);
}

/* Whether r's failure closes its client instead of an error reply: a blocking
 * or subscribing request's always, any request's in a pool that asks for it. */
static bool req_hangs_up(const struct req *r)
{
    return r->hangs_up || r->client->pool->cp->server_failure_closes_client;
}

/* r failed: its client is closed once the replies before it are written, and
 * no reply after it is (the client would take it for r's). */
static void req_hang_up(struct req *r, const char *msg)
{
    client_hang_up(r->client, msg); /* (it counts forward_error) */
    r->ends_client = true;
    req_deliver(r, (const uint8_t *)"", 0, false);
}

static void split_finish(struct req *parent)
{
    struct split *sp = parent->split;
    struct client *c = parent->client;
    if (c == NULL) {
        req_release(parent);
        return;
    }
    if (sp->failed && req_hangs_up(parent)) {
        req_hang_up(parent, sp->err); /* (also a pattern subscription to every server) */
        return;
    }
    if (sp->failed) {
        c->pool->stats[SP_forward_error]++; /* once for the client's request, as req_fail */
    }
    if (parent->reply != NULL) {
        /* its function makes the reply (a subscription confirmed everywhere) */
        req_reply_through(parent, sp->rsps[0].data, sp->rsps[0].len, &sp->infos[0],
                          sp->failed ? sp->err : NULL);
        return;
    }
    const struct proto *pr = c->pool->proto;
    struct buf *out = req_outbuf(parent->px);
    struct frag_rsp few[32];
    struct frag_rsp *fr = sp->nfrags <= 32 ? few : calloc(sp->nfrags, sizeof(*fr));
    if (sp->failed) {
        pr->error_reply(out, sp->err);
    } else if (fr == NULL) {
        pr->error_reply(out, "out of memory");
    } else {
        for (uint32_t i = 0; i < sp->nfrags; i++) {
            fr[i].p = sp->rsps[i].data;
            fr[i].len = sp->rsps[i].len;
            fr[i].info = &sp->infos[i];
        }
        if (pr->merge(out, sp->req, &sp->info, sp->map, fr, sp->nfrags) != 0) {
            buf_reset(out);
            pr->error_reply(out, "cannot merge the servers' replies");
        }
    }
    if (fr != few) {
        free(fr);
    }
    req_deliver(parent, out->data, out->len, !sp->failed);
}

static void frag_done(struct req *f)
{
    struct req *parent = f->parent;
    struct split *sp = parent->split;
    req_free(f);
    sp->pending--;
    if (sp->pending == 0) {
        split_finish(parent);
    }
}

void req_complete(struct req *r, const uint8_t *p, size_t len, struct rsp_info *ri)
{
    if (r->unblocking && ri->is_error) {
        req_fail(r, BLOCKING_END_MSG); /* -UNBLOCKED: nothing popped */
        return;
    }
    if (r->cx != NULL && cluster_reply(r, p, len, ri)) {
        return; /* redirected: sent again or held (cluster.h) */
    }
    if (r->parent == NULL) {
        if (r->reply != NULL) {
            req_reply_through(r, p, len, ri, NULL);
        } else if (r->quiet) {
            req_deliver(r, p, req_shown(r, p, len), true); /* 0: answered, nothing to say */
        } else {
            req_deliver(r, p, len, true);
        }
        return;
    }
    struct split *sp = r->parent->split;
    uint32_t i = r->frag_idx;
    buf_append(&sp->rsps[i], p, len);
    /* swap the parsed element spans in, giving the caller our empty arrays back */
    struct rsp_info tmp = sp->infos[i];
    sp->infos[i] = *ri;
    *ri = tmp;
    frag_done(r);
}

bool req_reads(const struct req *r)
{
    return (redis_cmd_get(r->cmd)->flags & REDIS_F(READONLY)) != 0;
}

void req_fail(struct req *r, const char *msg)
{
    if (r->cx != NULL) {
        cluster_req_failed(r);
    }
    if (r->parent != NULL) {
        struct split *sp = r->parent->split;
        if (sp->info.own_conn && r->parent->client != NULL) {
            /* SCRIPT KILL: a server that cannot be asked runs no script to kill;
             * its error takes its place, and the merge answers +OK if another
             * killed one (merge_kill) */
            const struct proto *pr = r->parent->client->pool->proto;
            struct buf *b = &sp->rsps[r->frag_idx];
            buf_reset(b);
            if (pr->error_reply(b, msg) == 0 &&
                pr->rsp_parse(b->data, b->len, r->cmd, &sp->infos[r->frag_idx]) == PARSE_OK) {
                frag_done(r);
                return;
            }
        }
        if (!sp->failed) {
            sp->failed = true;
            snprintf(sp->err, sizeof(sp->err), "%s", msg);
        }
        frag_done(r);
        return;
    }
    if (r->reply != NULL && r->client == NULL && !r->in_client) {
        req_reply_through(r, NULL, 0, NULL, msg); /* the proxy's own */
        return;
    }
    if (r->client == NULL) {
        req_release(r);
        return;
    }
    if (req_hangs_up(r)) {
        if (!r->blocking || !blocking_fail_later(r, msg)) {
            req_hang_up(r, msg);
        }
        return;
    }
    /* twemproxy's count: client requests answered with the proxy's error
     * instead of a server's reply (a fragment's counts once, in split_finish) */
    r->client->pool->stats[SP_forward_error]++;
    struct buf out;
    buf_init(&out);
    r->client->pool->proto->error_reply(&out, msg);
    req_deliver(r, out.data, out.len, false);
    buf_free(&out);
}
