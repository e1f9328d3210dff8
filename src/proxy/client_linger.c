/*
 * client_linger: how a client refused for what it sent is let go.
 *
 * A request the proxy will not take (a protocol error, one over
 * --request-size-limit) is answered with an error, and the client is closed
 * because the rest of its bytes cannot be parsed. Closing a socket with bytes
 * the client sent still unread makes the kernel answer with a reset, and a
 * reset can destroy the error before the client reads it: a client still
 * sending its refused 300 MB value saw "connection reset by peer" and never our
 * reason. So, like nginx's lingering close: once the error is written, the
 * write side is shut (the client reads the error, then the end of the stream),
 * and what the client still sends is read and dropped until it closes, stays
 * quiet for CLIENT_LINGER_IDLE_MS, or CLIENT_LINGER_MAX_MS have passed.
 */
#include <stdint.h>

#include "core/log.h"
#include "proxy/client.h"
#include "proxy/pool.h"
#include "proxy/proxy.h"
#include "proxy/router.h"

/* A client that sends nothing more for this long is closed... */
#define CLIENT_LINGER_IDLE_MS 5000
/* ... and one that keeps sending, after this long in all. */
#define CLIENT_LINGER_MAX_MS 30000
/* Reads per event, so that one client pouring bytes in cannot hold the loop. */
#define CLIENT_LINGER_READS 16

void client_refuse(struct client *c, const char *msg)
{
    router_reply_error(c, msg);
    c->pool->stats[SP_client_err]++;
    c->closing = true;
    c->refused = true;
}

/* The idle wait again, cut short by what is left of the whole. */
static void client_linger_rearm(struct client *c)
{
    struct ev_loop *loop = c->px->loop;
    uint64_t now = ev_now(loop);
    if (now >= c->linger_end_ms) {
        client_close(c);
        return;
    }
    uint64_t left = c->linger_end_ms - now;
    ev_timer_start(loop, &c->linger_timer,
                   left < CLIENT_LINGER_IDLE_MS ? left : CLIENT_LINGER_IDLE_MS);
}

static void client_on_linger_timeout(struct ev_loop *loop, struct ev_timer *t)
{
    struct client *c = t->data;
    (void)loop;
    log_verb("pool '%s': client %s: closed after lingering (%llu bytes dropped)", c->pool->cp->name,
             c->addr, (unsigned long long)c->linger_dropped);
    client_close(c);
}

void client_linger_init(struct client *c)
{
    ev_timer_init(&c->linger_timer, client_on_linger_timeout, c);
}

void client_linger(struct client *c)
{
    int err = 0;
    if (stream_shutdown(&c->st, &err) != 0) {
        client_close(c); /* the client is gone already: nothing to wait for */
        return;
    }
    struct proxy *px = c->px;
    c->lingering = true;
    c->need = 0;
    bufpool_put(&px->bufs, &c->in); /* the refused bytes: never parsed now */
    pubsub_close(c);                /* nothing more is written to it */
    txn_close(c);
    c->linger_end_ms = ev_now(px->loop) + CLIENT_LINGER_MAX_MS;
    ev_timer_start(px->loop, &c->linger_timer, CLIENT_LINGER_IDLE_MS);
    ev_io_set(px->loop, &c->io, stream_mask(&c->st, true, false));
}

void client_linger_read(struct client *c)
{
    uint8_t sink[16384];
    for (int i = 0; i < CLIENT_LINGER_READS; i++) {
        size_t got = 0;
        int err = 0;
        int rc = stream_read(&c->st, sink, sizeof(sink), &got, &err);
        if (rc == STREAM_AGAIN) {
            break;
        }
        if (rc != STREAM_OK) {
            client_close(c); /* the client closed (or reset) its side: done */
            return;
        }
        c->linger_dropped += got;
    }
    /* TLS may keep decrypted bytes no event announces: the idle timer ends it */
    ev_io_set(c->px->loop, &c->io, stream_mask(&c->st, true, false));
    client_linger_rearm(c);
}
