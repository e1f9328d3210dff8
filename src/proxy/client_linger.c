/*
 * client_linger: how a client refused for what it sent, or drained while it
 * still sends, is let go.
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
 * quiet for CLIENT_LINGER_IDLE_MS, or CLIENT_LINGER_MAX_MS have passed, or it
 * has sent more than the rest of anything it could have been sending (its
 * refused request, or CLIENT_LINGER_DROP_MAX; after a protocol error, the rest
 * of a pipeline: CLIENT_LINGER_GARBAGE_MAX) once the kernel has delivered our
 * error: a client that sends without end (redis' own "protocol desync" test)
 * is then reset, as redis resets it at once, and reads the error already in
 * its socket when its next write fails.
 *
 * A client drained (a graceful stop, its pool retired by a reload) that still
 * sends is let go the same way, for the same reason: a client pipelining
 * without pause, or one that reads late, lost the replies still in the socket
 * to the reset its next bytes drew. It lingers until the kernel has nothing
 * of ours left to deliver (stream_unsent), then it may send what it likes.
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
/* How often a drained client is looked at for its replies' delivery. */
#define CLIENT_LINGER_POLL_MS 20
/* A client refused for a request's size may send this much more (or the rest
 * of that request)... */
#define CLIENT_LINGER_DROP_MAX (64ull << 20)
/* ... one refused for a protocol error, this much: what it had pipelined
 * behind the error. redis' desync test writes 7 bytes at a time, about 2 MB a
 * second here: 64 MB took it to its 30 s limit. */
#define CLIENT_LINGER_GARBAGE_MAX (1ull << 20)
/* Reads per event, so that one client pouring bytes in cannot hold the loop. */
#define CLIENT_LINGER_READS 16

void client_refuse(struct client *c, const char *msg)
{
    if (msg != NULL) {
        router_reply_error(c, msg);
    }
    c->pool->stats[SP_client_err]++;
    c->closing = true;
    c->refused = true;
}

/* A drained client waits for its replies' delivery, a refused one for quiet. */
static bool client_linger_polls(const struct client *c)
{
    return c->drained && !c->refused;
}

static void client_linger_end(struct client *c, const char *how)
{
    log_verb("pool '%s': client %s: closed after lingering, %s (%llu bytes dropped)",
             c->pool->cp->name, c->addr, how, (unsigned long long)c->linger_dropped);
    client_close(c);
}

/* The wait again, cut short by what is left of the whole. */
static void client_linger_rearm(struct client *c)
{
    struct ev_loop *loop = c->px->loop;
    uint64_t now = ev_now(loop);
    if (now >= c->linger_end_ms) {
        client_linger_end(c, "for the longest it may");
        return;
    }
    if (client_linger_polls(c) && stream_unsent(&c->st) == 0) {
        client_linger_end(c, "its replies delivered");
        return;
    }
    uint64_t wait = client_linger_polls(c) ? CLIENT_LINGER_POLL_MS : CLIENT_LINGER_IDLE_MS;
    uint64_t left = c->linger_end_ms - now;
    ev_timer_start(loop, &c->linger_timer, left < wait ? left : wait);
}

static void client_on_linger_timeout(struct ev_loop *loop, struct ev_timer *t)
{
    struct client *c = t->data;
    (void)loop;
    if (client_linger_polls(c)) {
        client_linger_rearm(c);
        return;
    }
    client_linger_end(c, "quiet");
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
    /* a size refusal keeps the size in c->need; a protocol error has none */
    c->linger_budget = c->need == 0                       ? CLIENT_LINGER_GARBAGE_MAX
                       : c->need > CLIENT_LINGER_DROP_MAX ? c->need
                                                          : CLIENT_LINGER_DROP_MAX;
    c->need = 0;
    bufpool_put(&px->bufs, &c->in); /* the refused bytes: never parsed now */
    c->in_pos = 0;
    pubsub_close(c); /* nothing more is written to it */
    txn_close(c);
    c->linger_end_ms = ev_now(px->loop) + CLIENT_LINGER_MAX_MS;
    ev_io_set(px->loop, &c->io, stream_mask(&c->st, true, false));
    client_linger_rearm(c);
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
    if (!client_linger_polls(c) && c->linger_dropped > c->linger_budget &&
        stream_unsent(&c->st) == 0) {
        client_linger_end(c, "it kept sending");
        return;
    }
    /* TLS may keep decrypted bytes no event announces: the idle timer ends it */
    ev_io_set(c->px->loop, &c->io, stream_mask(&c->st, true, false));
    client_linger_rearm(c);
}
