#include "proxy/req.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/instance.h"
#include "core/log.h"
#include "proxy/client.h"
#include "proxy/pool.h"

struct req *req_new(void)
{
    struct req *r = calloc(1, sizeof(*r));
    if (r == NULL) {
        log_error("out of memory allocating a request");
        abort(); /* losing a request silently is worse than stopping */
    }
    return r;
}

static void split_free(struct split *sp)
{
    for (uint32_t i = 0; i < sp->nfrags; i++) {
        buf_free(&sp->rsps[i]);
        rsp_info_free(&sp->infos[i]);
    }
    free(sp->rsps);
    free(sp->infos);
    free(sp->map);
    free(sp->req);
    req_info_free(&sp->info);
    free(sp);
}

void req_free(struct req *r)
{
    if (r->split != NULL) {
        split_free(r->split);
    }
    buf_free(&r->rsp);
    free(r);
}

void req_release(struct req *r)
{
    if (r->in_client || r->in_server || (r->split != NULL && r->split->pending > 0)) {
        return;
    }
    req_free(r);
}

/* Hand the reply bytes of r to its client: straight into the output buffer when r
 * is the oldest request (the common case, one copy), else kept until it is. */
static void req_deliver(struct req *r, const uint8_t *p, size_t len)
{
    struct client *c = r->client;
    if (c == NULL) {
        req_release(r);
        return;
    }
    struct pool *pool = c->pool;
    histo_add(&pool->lat_request, ev_now_us(pool->inst->loop) - r->start_us);
    client_note_reply(c, len);
    if (c->head == r) {
        buf_append(client_outbuf(c), p, len);
    } else {
        buf_append(&r->rsp, p, len);
        c->pending_bytes += len;
    }
    r->done = true;
    client_reply_ready(c);
}

static void split_finish(struct req *parent)
{
    struct split *sp = parent->split;
    struct client *c = parent->client;
    if (c == NULL) {
        req_release(parent);
        return;
    }
    const struct proto *pr = c->pool->proto;
    struct buf out;
    buf_init(&out);
    if (sp->failed) {
        pr->error_reply(&out, sp->err);
    } else {
        struct frag_rsp *fr = calloc(sp->nfrags, sizeof(*fr));
        if (fr == NULL) {
            pr->error_reply(&out, "out of memory");
        } else {
            for (uint32_t i = 0; i < sp->nfrags; i++) {
                fr[i].p = sp->rsps[i].data;
                fr[i].len = sp->rsps[i].len;
                fr[i].info = &sp->infos[i];
            }
            if (pr->merge(&out, sp->req, &sp->info, sp->map, fr, sp->nfrags) != 0) {
                buf_reset(&out);
                pr->error_reply(&out, "cannot merge the servers' replies");
            }
        }
        free(fr);
    }
    req_deliver(parent, out.data, out.len);
    buf_free(&out);
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
    if (r->parent == NULL) {
        req_deliver(r, p, len);
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

void req_fail(struct req *r, const char *msg)
{
    if (r->parent != NULL) {
        struct split *sp = r->parent->split;
        if (!sp->failed) {
            sp->failed = true;
            snprintf(sp->err, sizeof(sp->err), "%s", msg);
        }
        frag_done(r);
        return;
    }
    if (r->client == NULL) {
        req_release(r);
        return;
    }
    struct buf out;
    buf_init(&out);
    r->client->pool->proto->error_reply(&out, msg);
    req_deliver(r, out.data, out.len);
    buf_free(&out);
}
