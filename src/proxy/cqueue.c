#include "proxy/cqueue.h"

#include "proxy/client.h"
#include "proxy/pool.h"
#include "proxy/proxy.h"
#include "proxy/req.h"

void cqueue_push(struct client *c, struct req *r, size_t req_bytes)
{
    struct cqueue *q = &c->q;
    r->client = c;
    r->client_bytes = req_bytes;
    r->batch = c->batch;
    r->in_client = true;
    r->start_us = ev_now_us(c->px->loop);
    q->inflight_bytes += req_bytes;
    if (q->tail != NULL) {
        q->tail->cnext = r;
    } else {
        q->head = r;
    }
    q->tail = r;
    q->n++;
}

void cqueue_reply(struct client *c, struct req *r, const uint8_t *p, size_t len, bool served)
{
    struct cqueue *q = &c->q;
    histo_add(&c->pool->lat_request, ev_now_us(c->px->loop) - r->start_us);
    if (served) {
        client_note_reply(c, len);
    }
    if (q->head == r) {
        buf_append(client_outbuf(c), p, len); /* the common case: one copy */
    } else {
        buf_append(&r->rsp, p, len);
        q->pending_bytes += len;
    }
    r->done = true;
    cqueue_release(c);
}

void cqueue_local(struct client *c, const uint8_t *p, size_t len)
{
    struct cqueue *q = &c->q;
    if (q->head == NULL) {
        buf_append(client_outbuf(c), p, len);
        client_mark_dirty(c);
        return;
    }
    struct req *r = req_new(c->px, 0);
    cqueue_push(c, r, 0);
    buf_append(&r->rsp, p, len);
    q->pending_bytes += len;
    r->done = true;
}

void cqueue_local_before(struct client *c, struct req *r, const uint8_t *p, size_t len)
{
    struct cqueue *q = &c->q;
    if (r != NULL && r == q->head) {
        buf_append(client_outbuf(c), p, len); /* every reply before r is out */
        client_mark_dirty(c);
        return;
    }
    if (r == NULL || !r->in_client || r->client != c) {
        cqueue_local(c, p, len);
        return;
    }
    struct req *prev = q->head;
    while (prev->cnext != r) {
        prev = prev->cnext;
    }
    struct req *m = req_new(c->px, 0);
    m->client = c;
    m->batch = r->batch;
    m->in_client = true;
    m->start_us = r->start_us;
    buf_append(&m->rsp, p, len);
    q->pending_bytes += len;
    m->done = true;
    m->cnext = r;
    prev->cnext = m;
    q->n++;
}

void cqueue_release(struct client *c)
{
    struct cqueue *q = &c->q;
    while (q->head != NULL && q->head->done) {
        struct req *r = q->head;
        q->head = r->cnext;
        if (q->head == NULL) {
            q->tail = NULL;
        }
        q->n--;
        q->inflight_bytes -= r->client_bytes;
        c->out_batch = r->batch;
        if (r->rsp.len > 0) {
            buf_append(client_outbuf(c), r->rsp.data, r->rsp.len);
            q->pending_bytes -= r->rsp.len;
        }
        bool ends = r->ends_client;
        r->cnext = NULL;
        r->in_client = false;
        req_release(r);
        if (ends) {
            cqueue_orphan(c); /* it closes here (client_hang_up): what follows is dropped */
            break;
        }
    }
    client_mark_dirty(c);
}

void cqueue_orphan(struct client *c)
{
    struct cqueue *q = &c->q;
    struct req *r = q->head;
    q->head = q->tail = NULL;
    q->n = 0;
    q->pending_bytes = q->inflight_bytes = 0;
    while (r != NULL) {
        struct req *next = r->cnext;
        r->client = NULL;
        r->in_client = false;
        r->cnext = NULL;
        req_release(r);
        r = next;
    }
}
