#include "stats/reply.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "core/log.h"

struct reply {
    struct ev_io io;
    struct ev_timer timer;
    struct reply_port *port;
    struct reply *prev, *next; /* the port's list */
    struct buf doc;
    struct reply_doc *body; /* written after doc; NULL: none */
    size_t pos;             /* of doc, then of body */
    bool draining;          /* all written: reading what the peer still sends */
};

/* Once a reply is written, its socket's write side is shut and what the peer
 * still sends (the rest of a request over HTTP_MAX_REQUEST, a "stats" line a
 * client typed) is read and dropped until the peer closes, for at most this
 * long: closed with bytes unread, the socket is reset, and a reset makes the
 * peer's kernel drop the part of the reply it had not read yet. */
#define REPLY_DRAIN_MS 2000
/* Bytes dropped per turn of the loop while draining. */
#define REPLY_DRAIN_TURN (64u * 1024)

uint64_t reply_clock_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

bool reply_render_young(uint64_t now_us, uint64_t at_us, uint64_t took_us)
{
    return took_us >= REPLY_RENDER_CHEAP_US && now_us - at_us < took_us * REPLY_RENDER_YOUTH;
}

struct reply_doc *reply_doc_new(void)
{
    struct reply_doc *d = calloc(1, sizeof(*d));
    if (d != NULL) {
        d->refs = 1;
    }
    return d;
}

void reply_doc_put(struct reply_doc *d)
{
    if (d != NULL && --d->refs == 0) {
        buf_free(&d->buf);
        free(d);
    }
}

static size_t reply_len(const struct reply *r)
{
    return r->doc.len + (r->body != NULL ? r->body->buf.len : 0);
}

static void reply_end(struct ev_loop *loop, struct reply *r)
{
    ev_io_stop(loop, &r->io);
    ev_timer_stop(loop, &r->timer);
    close(r->io.fd);
    buf_free(&r->doc);
    reply_doc_put(r->body);
    if (r->prev != NULL) {
        r->prev->next = r->next;
    } else if (r->port->first == r) {
        r->port->first = r->next;
    }
    if (r->next != NULL) {
        r->next->prev = r->prev;
    }
    r->port->pending--;
    free(r);
}

/* Bytes one reply writes per turn of the loop: a large document (megabytes of
 * /metrics) to many scrapers at once went in one write each, and the proxy's
 * clients waited for every copy; the rest goes on the next turns. */
#define REPLY_TURN_MAX (256u * 1024)

/* Write what the socket takes, up to REPLY_TURN_MAX: true once all of it went
 * (or the peer is gone). */
static bool reply_write(struct reply *r)
{
    size_t budget = REPLY_TURN_MAX;
    size_t total = reply_len(r);
    while (r->pos < total && budget > 0) {
        bool head = r->pos < r->doc.len;
        const uint8_t *from = head ? r->doc.data + r->pos : r->body->buf.data + r->pos - r->doc.len;
        size_t left = head ? r->doc.len - r->pos : total - r->pos;
        size_t want = left < budget ? left : budget;
        ssize_t n = write(r->io.fd, from, want);
        if (n > 0) {
            r->pos += (size_t)n;
            budget -= (size_t)n;
        } else if (n < 0 && errno == EINTR) {
            continue;
        } else {
            return n < 0 && errno != EAGAIN && errno != EWOULDBLOCK;
        }
    }
    return r->pos == total;
}

/* True once the peer closed (or failed): the reply can end. */
static bool reply_drain(struct reply *r)
{
    char tmp[4096];
    for (size_t got = 0; got < REPLY_DRAIN_TURN;) {
        ssize_t n = read(r->io.fd, tmp, sizeof(tmp));
        if (n > 0) {
            got += (size_t)n;
        } else if (n < 0 && errno == EINTR) {
            continue;
        } else {
            return n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK);
        }
    }
    return false;
}

/* Written: drain (REPLY_DRAIN_MS), or end when the peer has closed already.
 * The document goes now: a drain keeps only the socket. */
static void reply_written(struct ev_loop *loop, struct reply *r)
{
    buf_free(&r->doc);
    reply_doc_put(r->body);
    r->body = NULL;
    if (shutdown(r->io.fd, SHUT_WR) != 0 || reply_drain(r)) {
        reply_end(loop, r);
        return;
    }
    r->draining = true;
    ev_io_set(loop, &r->io, EV_READ);
    ev_timer_stop(loop, &r->timer);
    ev_timer_start(loop, &r->timer, REPLY_DRAIN_MS);
}

static void reply_on_io(struct ev_loop *loop, struct ev_io *io, unsigned events)
{
    struct reply *r = io->data;
    (void)events;
    if (r->draining) {
        if (reply_drain(r)) {
            reply_end(loop, r);
        }
    } else if (reply_write(r)) {
        reply_written(loop, r);
    }
}

static void reply_on_timeout(struct ev_loop *loop, struct ev_timer *t)
{
    struct reply *r = t->data;
    if (!r->draining) {
        log_verb("a stats reply not read within its time: %zu of %zu bytes written", r->pos,
                 reply_len(r));
    }
    reply_end(loop, r);
}

void reply_send(struct ev_loop *loop, struct reply_port *port, int fd, struct buf *doc,
                uint64_t timeout_ms)
{
    reply_send_doc(loop, port, fd, doc, NULL, timeout_ms);
}

void reply_send_doc(struct ev_loop *loop, struct reply_port *port, int fd, struct buf *doc,
                    struct reply_doc *body, uint64_t timeout_ms)
{
    struct reply *r = reply_port_open(port) ? calloc(1, sizeof(*r)) : NULL;
    if (r == NULL) {
        close(fd); /* too many scrapers waiting (or no memory): this one gets nothing */
        buf_free(doc);
        reply_doc_put(body);
        return;
    }
    r->body = body;
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL, 0) | O_NONBLOCK);
    port->pending++;
    r->port = port;
    r->doc = *doc;
    buf_init(doc);
    ev_io_init(&r->io, fd, reply_on_io, r);
    ev_timer_init(&r->timer, reply_on_timeout, r);
    r->next = port->first;
    if (port->first != NULL) {
        port->first->prev = r;
    }
    port->first = r;
    ev_timer_start(loop, &r->timer, timeout_ms);
    if (reply_write(r)) {
        reply_written(loop, r); /* the usual case: it fit in the socket at once */
        return;
    }
    ev_io_set(loop, &r->io, EV_WRITE);
}

void reply_port_close(struct ev_loop *loop, struct reply_port *port)
{
    while (port->first != NULL) {
        reply_end(loop, port->first);
    }
}
