#include "proxy/client.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "conf/options.h"
#include "core/log.h"
#include "net/accept.h"
#include "net/sock.h"
#include "net/tls.h"
#include "proxy/blocking.h"
#include "proxy/pool.h"
#include "proxy/proxy.h"
#include "proxy/req.h"
#include "proxy/router.h"

/* Requests one client may have in flight before the proxy stops reading from it:
 * with the reply-bytes bound this caps what a client that never reads can pin. */
#define CLIENT_MAX_INFLIGHT 4096
/* A new client's first requests in flight: the window grows by two for each
 * reply, up to CLIENT_MAX_INFLIGHT. Until replies tell their size, the bytes
 * bound cannot foresee them: a first pipeline of 4096 GETs of 1 MB values,
 * all sent at once, would pin 4 GB before the first reply came back. */
#define CLIENT_START_INFLIGHT 16
/* Replies the kernel has not taken from a client (its socket buffers are full:
 * it does not read as fast as they come) past which a client over its limits
 * is still read from (client_unread; or half --client-buffer-limit). */
#define CLIENT_UNREAD_MAX (1u << 20)
/* Reply bytes a client's requests in flight may be expected to bring (at its
 * average reply size). It bounds what one client queues, on the server
 * connections it shares, ahead of the others: 50 clients pipelining GETs of
 * 100 KB values had up to 64 MB each on their way and kept a client of the
 * same server waiting 2.5 s (redis itself, directly, 5 s). It costs a client
 * alone nothing: 4 MB keep a server busy for milliseconds, far longer than a
 * round trip on a LAN, and its first request always goes. */
#define CLIENT_COMING_MAX (4u << 20)
/* Replies a client that has not logged in may leave unread (the kernel's socket
 * buffer full): past it, it is closed, as redis closes such a client (its reply
 * buffer and 1 KB) since CVE-2025-21605. A client that reads is never near it. */
#define CLIENT_UNAUTH_REPLY_MAX (16 * 1024 + 1024)
/* A TLS client that has not finished its handshake by then is closed: it would
 * hold a descriptor and a TLS session while sending nothing. */
#define CLIENT_HANDSHAKE_MS 10000
/* TLS handshake steps one loop turn takes: a first step (key exchange and
 * signature) costs about a millisecond of CPU, so a burst of thousands of new
 * TLS clients (all reconnecting after a network blip) stalled every other
 * client for seconds. Past it, the clients wait for the next turns, in order,
 * while everything else goes on between. */
#define CLIENT_HS_PER_TURN 16
/* Replies waiting for the rest of their read are written once this many bytes
 * wait (client_holding). */
#define CLIENT_HOLD_BYTES (64 * 1024)
/* How often a request waiting for its server to be known tries again. */
#define CLIENT_SERVER_WAIT_POLL_MS 10

static void client_on_io(struct ev_loop *loop, struct ev_io *io, unsigned events);
static void client_on_handshake_timeout(struct ev_loop *loop, struct ev_timer *t);
static void client_on_hold_timeout(struct ev_loop *loop, struct ev_timer *t);
static void client_on_server_wait(struct ev_loop *loop, struct ev_timer *t);
static void client_read(struct client *c);
static void client_process(struct client *c);

_Static_assert(STREAM_WANT_READ == EV_READ && STREAM_WANT_WRITE == EV_WRITE,
               "a stream's wants are event masks");

static void client_link(struct client *c, struct pool *p)
{
    c->pool = p;
    c->prev = NULL;
    c->next = p->clients;
    if (p->clients != NULL) {
        p->clients->prev = c;
    }
    p->clients = c;
    p->nclients++;
    p->stats[SP_client_connections]++;
}

static void client_unlink(struct client *c)
{
    struct pool *p = c->pool;
    if (c->prev != NULL) {
        c->prev->next = c->next;
    } else {
        p->clients = c->next;
    }
    if (c->next != NULL) {
        c->next->prev = c->prev;
    }
    c->prev = c->next = NULL;
    p->nclients--;
    p->stats[SP_client_connections]--;
}

static bool client_login(const void *ctx, const uint8_t *user, size_t ulen, const uint8_t *pw,
                         size_t plen)
{
    return conf_user_check(ctx, user, ulen, pw, plen);
}

/* The pool settings answered locally (AUTH, SELECT) point into the pool's conf. */
static void client_take_pool_settings(struct client *c, const struct pool *p)
{
    const struct conf_pool *cp = p->cp;
    c->lc.auth = cp->redis ? cp->redis_auth : NULL;
    c->lc.auth_len = c->lc.auth ? strlen(c->lc.auth) : 0;
    c->lc.login = NULL;
    c->lc.login_ctx = NULL;
    if (cp->redis && cp->nclient_users > 0) {
        /* users decide (client_auth); auth only says a login is required */
        c->lc.auth = "";
        c->lc.auth_len = 0;
        c->lc.login = client_login;
        c->lc.login_ctx = cp;
    }
    c->lc.db = cp->redis_db;
}

void client_mark_dirty(struct client *c)
{
    if (!c->dirty && !c->closed) {
        c->dirty = true;
        c->next_dirty = c->px->dirty_clients;
        c->px->dirty_clients = c;
    }
}

/* Refuse a connection over client_connections with an error in the pool's
 * protocol (a TLS client cannot read plain text: it is just closed). */
static void listener_refuse(struct pool *p, int fd, bool tls)
{
    struct buf b;
    buf_init(&b);
    p->proto->error_reply(&b, "max number of clients reached");
    if (!tls) {
        ssize_t unused = write(fd, b.data, b.len);
        (void)unused;
    }
    buf_free(&b);
    close(fd);
    p->stats[SP_client_err]++;
}

/* The two ends of the client's socket as text, for CLIENT INFO and the log.
 * peer: the address accept gave (NULL: ask the socket, for a handed-over one). */
static void client_addrs(struct client *c, int fd, const struct sockaddr_storage *peer,
                         socklen_t peer_len)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof(ss);
    strcpy(c->addr, "?");
    strcpy(c->laddr, "?");
    if (peer == NULL && getpeername(fd, (struct sockaddr *)&ss, &len) == 0) {
        peer = &ss;
        peer_len = len;
    }
    if (peer != NULL && peer->ss_family != AF_UNIX) {
        sock_addr_str((const struct sockaddr *)peer, peer_len, c->addr, sizeof(c->addr));
    }
    len = sizeof(ss);
    if (getsockname(fd, (struct sockaddr *)&ss, &len) == 0) {
        sock_addr_str((struct sockaddr *)&ss, len, c->laddr, sizeof(c->laddr));
    }
    c->lc.addr = c->addr;
    c->lc.laddr = c->laddr;
}

/* The transport of a new client: plain, or TLS with the handshake to come. */
static int client_stream_open(struct client *c, struct pool *p, int fd, bool tls)
{
    if (!tls || p->cp->listen_tls.ctx == NULL) {
        if (stream_open_ring(&c->st, fd, c->px->loop) != 0) {
            stream_open_plain(&c->st, fd); /* epoll */
        }
        return 0;
    }
    if (stream_open_tls_server(&c->st, fd, p->cp->listen_tls.ctx) != 0) {
        return -1;
    }
    c->handshake = true;
    ev_timer_start(p->px->loop, &c->hs_timer, CLIENT_HANDSHAKE_MS);
    return 0;
}

struct client *client_open(struct pool *p, int fd, bool tls, const struct sockaddr_storage *peer,
                           socklen_t peer_len)
{
    struct proxy *px = p->px;
    struct client *c = calloc(1, sizeof(*c));
    if (c == NULL) {
        close(fd);
        return NULL;
    }
    c->px = px;
    c->id = px->next_client_id;
    px->next_client_id += px->client_id_step;
    req_info_init(&c->ri);
    client_take_pool_settings(c, p);
    c->lc.version = NC_VERSION;
    c->lc.resp = 2;
    c->lc.id = c->id;
    buf_init(&c->lc.name);
    buf_init(&c->lc.user);
    client_addrs(c, fd, peer, peer_len);
    if (p->cp->listen.path == NULL) {
        sock_set_nodelay(fd);
    }
    if (p->cp->tcpkeepalive) {
        sock_set_keepalive(fd);
    }
    ev_timer_init(&c->hs_timer, client_on_handshake_timeout, c);
    ev_timer_init(&c->hold_timer, client_on_hold_timeout, c);
    ev_timer_init(&c->server_wait_timer, client_on_server_wait, c);
    ev_timer_init(&c->block_fail_timer, blocking_on_fail_timer, c);
    client_linger_init(c);
    if (client_stream_open(c, p, fd, tls) != 0) {
        log_warn("pool '%s': out of memory for a TLS client", p->cp->name);
        req_info_free(&c->ri);
        buf_free(&c->lc.name);
        free(c);
        return NULL;
    }
    ev_io_init(&c->io, fd, client_on_io, c);
    ev_io_set(px->loop, &c->io, EV_READ);
    client_link(c, p);
    px->curr_connections++;
    px->total_connections++;
    return c;
}

void listener_on_accept(struct ev_loop *loop, struct ev_io *io, unsigned events)
{
    struct listener *l = io->data;
    struct pool *p = l->pool;
    const char *addr = l == &p->tls_listener ? p->cp->listen_tls_addr.text : p->cp->listen.text;
    char what[256];
    (void)io;
    (void)events;
    snprintf(what, sizeof(what), "'%s' (pool '%s')", addr, p->cp->name);
    l->rest.fd_cap = proxy_client_fd_cap(p->px);
    for (int i = 0; i < 64; i++) {
        struct sockaddr_storage peer;
        socklen_t peer_len;
        int fd = accept_next(loop, &l->rest, SOCK_NONBLOCK | SOCK_CLOEXEC, what, &peer, &peer_len);
        if (fd < 0) {
            return;
        }
        if (p->cp->client_connections != 0 && p->nclients >= p->cp->client_connections) {
            listener_refuse(p, fd, l->tls);
            continue;
        }
        client_open(p, fd, l->tls, &peer, peer_len);
    }
}

/* Whether the replies this client holds, plus those its requests in flight are
 * expected to bring (at its average reply size), reach its buffer limit, or its
 * requests in flight its window: then no more of its requests are read or
 * dispatched until it reads its replies (or they come). */
static bool client_over_limit(const struct client *c)
{
    /* the whole output buffer counts, written prefix included: that is the
     * memory it takes until client_flush moves the unwritten part down */
    size_t held = c->out.len + c->q.pending_bytes + c->q.inflight_bytes;
    size_t coming = (size_t)c->q.n * c->avg_reply;
    uint32_t window = CLIENT_START_INFLIGHT + 2 * c->replies_seen;
    return c->q.n >= window || held + coming >= c->px->client_max_buffer ||
           coming >= CLIENT_COMING_MAX;
}

/* Bytes read from the client, not yet parsed. */
static size_t client_unparsed(const struct client *c)
{
    return c->in.len - c->in_pos;
}

/* Whether the client leaves its replies unread. Over its limits then, it is
 * not parsed, but still read, with no bound of its own (--buffer-limit lets it
 * go when it holds the most): a client may send its whole pipeline before it
 * reads a reply (redis-py does), and one whose writes stopped would never
 * read. redis and twemproxy take such a pipeline of hundreds of megabytes; at
 * --client-buffer-limit it hung. */
static bool client_unread(const struct client *c)
{
    size_t half = c->px->client_max_buffer / 2;
    return c->out.len - c->out_pos >= (half < CLIENT_UNREAD_MAX ? half : CLIENT_UNREAD_MAX);
}

/* Whether the client's requests may be parsed and dispatched now, but for
 * a fence it waits behind. */
static bool client_unhindered(const struct client *c)
{
    return !c->closing && !c->closed && !client_over_limit(c) && !c->server_wait;
}

/* Whether the client's requests may be parsed and dispatched now. */
static bool client_parsing(const struct client *c)
{
    return client_unhindered(c) && !c->fence_wait;
}

/* Bytes read on, unparsed, behind a blocking request, at least
 * (client_reading); up to --client-buffer-limit if it is larger. */
#define CLIENT_BLOCKED_READ_MIN (64u * 1024)

/* Whether more of them may be read from its socket now. Behind a blocking
 * request more is read, unparsed, so that the client's close is seen: it
 * ends the wait (blocking_waits), which nothing else might, and redis, which
 * reads a blocked client's input on, would see it. That holds over its
 * limits too: requests answered here (PING) queue their replies behind the
 * wait and would reach the window of requests in flight. The bytes read
 * count in --buffer-limit (client_memory). */
static bool client_reading(const struct client *c)
{
    if (c->read_eof || c->closing || c->closed) {
        return false;
    }
    if (blocking_waits(c)) {
        size_t cap = c->px->client_max_buffer;
        return client_unparsed(c) < (cap > CLIENT_BLOCKED_READ_MIN ? cap : CLIENT_BLOCKED_READ_MIN);
    }
    if (client_over_limit(c) && client_unread(c)) {
        return true; /* (unparsed: client_unread) */
    }
    return client_unhindered(c) && !c->fence_wait;
}

static void client_update_events(struct client *c)
{
    if (c->closed || c->handshake || c->lingering) {
        return; /* the handshake and lingering set their own */
    }
    bool want_write = c->out_pos < c->out.len && !ev_timer_armed(&c->hold_timer);
    ev_io_set(c->px->loop, &c->io, stream_mask(&c->st, client_reading(c), want_write));
}

/* Replies to the requests of one read leave in one write. A pipeline's
 * requests go to several servers whose answers come back in different loop
 * turns; writing each answered prefix costs the kernel (ours and the client's
 * wake-up) almost what the whole batch costs. So while the first unanswered
 * request came in the same read as the last reply in out, the replies wait:
 * for that request's answer, at most the pool's reply_batch_wait (hold_timer),
 * and never with CLIENT_HOLD_BYTES waiting. A client that sends one request at
 * a time never waits: its queue is empty once its reply is in out. */
static bool client_holding(struct client *c)
{
    const struct req *head = c->q.head;
    int64_t wait_ms = c->pool->cp->reply_batch_wait_ms;
    if (head == NULL || head->batch != c->out_batch || c->hold_expired || wait_ms <= 0 ||
        c->out_pos == c->out.len || c->out.len - c->out_pos >= CLIENT_HOLD_BYTES) {
        return false;
    }
    if (!ev_timer_armed(&c->hold_timer)) {
        ev_timer_start(c->px->loop, &c->hold_timer, (uint64_t)wait_ms);
    }
    return true;
}

static void client_on_hold_timeout(struct ev_loop *loop, struct ev_timer *t)
{
    struct client *c = t->data;
    (void)loop;
    c->hold_expired = true; /* cleared by the write it lets through */
    client_mark_dirty(c);
}

bool client_wait_server(struct client *c, bool pending)
{
    uint64_t now = ev_now(c->px->loop);
    int64_t hold_ms = c->pool->cp->failover_hold_ms;
    if (!pending || hold_ms <= 0 ||
        (c->server_wait_since_ms != 0 && now - c->server_wait_since_ms >= (uint64_t)hold_ms)) {
        c->server_wait_since_ms = 0; /* it goes now: to its server, or to its error */
        return false;
    }
    if (c->server_wait_since_ms == 0) {
        c->server_wait_since_ms = now;
    }
    c->server_wait = true;
    ev_timer_start(c->px->loop, &c->server_wait_timer, CLIENT_SERVER_WAIT_POLL_MS);
    return true;
}

bool client_wait_fence(struct client *c)
{
    if (c->q.head != NULL) {
        c->fence_wait = true; /* the reply that empties q marks c dirty: client_flush */
        return true;
    }
    c->fence = false;
    return false;
}

static void client_on_server_wait(struct ev_loop *loop, struct ev_timer *t)
{
    struct client *c = t->data;
    (void)loop;
    c->server_wait = false;
    client_process(c); /* the waiting request is tried again, and what follows it */
    client_update_events(c);
    client_mark_dirty(c);
}

void client_note_reply(struct client *c, size_t len)
{
    if (c->replies_seen == 0) {
        c->avg_reply = len; /* (an average from 0 would take many to catch up) */
    } else {
        c->avg_reply = c->avg_reply - c->avg_reply / 8 + len / 8;
    }
    if (CLIENT_START_INFLIGHT + 2 * c->replies_seen < CLIENT_MAX_INFLIGHT) {
        c->replies_seen++;
    }
}

/* Send the request the protocol asks for in place of a dropped one (ri.wire:
 * memcached's delete after a refused set): one key, no reply. */
static void client_dispatch_wire(struct client *c)
{
    struct req_info *ri = &c->ri;
    struct buf w = ri->wire; /* parsed into ri, whose own wire must not change under it */
    buf_init(&ri->wire);
    if (c->pool->proto->req_parse(w.data, w.len, ri) == PARSE_OK && ri->len == w.len &&
        ri->noreply && ri->route == ROUTE_KEY) {
        router_dispatch(c, w.data, ri);
    }
    buf_free(&ri->wire);
    ri->wire = w;
}

/* Drop the request c->ri describes instead of holding it: its bytes already
 * here at once, the rest (c->drop) as they arrive. Memcached does the same
 * with a value over its item size, and the connection goes on: the answer
 * takes the request's place among the replies. Returns where parsing goes on. */
static size_t client_drop(struct client *c, size_t pos)
{
    const struct req_info *ri = &c->ri;
    size_t here = c->in.len - pos < ri->len ? c->in.len - pos : ri->len;
    log_info("pool '%s': client %s: a request of %zu bytes not held: answered \"%s\", its bytes "
             "dropped",
             c->pool->cp->name, c->addr, ri->len, ri->err);
    c->drop = ri->len - here;
    if (!ri->noreply) {
        router_reply_error(c, ri->err);
    }
    if (ri->wire.len > 0) {
        client_dispatch_wire(c);
    }
    return pos + here;
}

/* memcached's answer to a value it has no memory for (it drops the block) */
#define CLIENT_MC_NO_MEMORY "SERVER_ERROR out of memory storing object"

bool client_refuse_for_memory(struct client *c)
{
    /* a request not whole yet (c->need) is what the input buffer was sized
     * for: nothing of it went to a server, so an error can answer it and the
     * client reads the reason, not a reset in the middle of its send */
    if (c->closing || c->closed || c->need <= client_unparsed(c) ||
        c->in.cap < client_memory(c) / 2) {
        return false;
    }
    struct req_info *ri = &c->ri;
    ri->unauth = c->lc.auth != NULL && !c->lc.authed;
    ri->mid_stream = c->spoke;
    /* a memcached value is dropped as it comes, as memcached drops one it has
     * no memory for, and the connection goes on */
    bool drop =
        c->pool->proto->req_parse(c->in.data + c->in_pos, client_unparsed(c), ri) == PARSE_AGAIN &&
        ri->droppable && ri->len == c->need;
    log_warn("pool '%s': client %s: a request of %zu bytes is over what --buffer-limit leaves: "
             "%s",
             c->pool->cp->name, c->addr, c->need,
             drop ? "refused, its bytes dropped" : "refused, the client closed");
    if (drop) {
        snprintf(ri->err, sizeof(ri->err), "%s", CLIENT_MC_NO_MEMORY);
        client_drop(c, c->in_pos);
        c->need = 0;
    } else {
        client_refuse(c, "request exceeds the proxy's buffer limit");
    }
    /* the buffer goes now, so the next count does not find it again (a
     * refused client keeps c->need: the rest client_linger may drop) */
    buf_free(&c->in);
    c->in_pos = 0;
    client_update_events(c);
    client_mark_dirty(c);
    return true;
}

/* Unparsed bytes this small are always moved down to the buffer's start. */
#define CLIENT_IN_MOVE_MIN (64u * 1024)

/* The bytes before pos are parsed. The rest moves down to the start only when
 * that costs no more than what was parsed (or little): a pipeline of hundreds
 * of megabytes read while its client's replies wait (client_unread) is parsed
 * a few megabytes at a time, and moving the rest each time was quadratic. */
static void client_consume(struct client *c, size_t pos)
{
    size_t rest = c->in.len - pos;
    if (rest == 0) {
        c->in.len = 0;
        c->in_pos = 0;
    } else if (rest <= CLIENT_IN_MOVE_MIN || rest <= pos) {
        buf_consume(&c->in, pos);
        c->in_pos = 0;
    } else {
        c->in_pos = pos;
    }
}

static void client_process(struct client *c)
{
    const struct proto *pr = c->pool->proto;
    /* the rest of a dropped request first: while some is to come, client_drop
     * took every byte read, so it can only be at in_pos */
    size_t dropped = client_unparsed(c) < c->drop ? client_unparsed(c) : c->drop;
    size_t pos = c->in_pos + dropped;
    bool starved = false; /* stopped at a request not whole yet */
    c->drop -= dropped;
    while (pos < c->in.len && client_parsing(c)) {
        size_t n = c->in.len - pos;
        if (c->need > n) {
            starved = true;
            break;
        }
        c->ri.unauth = c->lc.auth != NULL && !c->lc.authed; /* (a login just before counts) */
        c->ri.mid_stream = c->spoke;
        int rc = pr->req_parse(c->in.data + pos, n, &c->ri);
        if (rc == PARSE_AGAIN && c->ri.droppable && c->ri.len > c->px->request_max) {
            rc = PARSE_DROP; /* not held, and not refused either: dropped */
        }
        if (rc == PARSE_AGAIN) {
            starved = true;
            c->need = c->ri.len;
            if (c->need > c->px->request_max) {
                log_warn("pool '%s': client %s: a request of %zu bytes is over "
                         "--request-size-limit (%zu): refused, the client closed",
                         c->pool->cp->name, c->addr, c->need, c->px->request_max);
                client_refuse(c, "request exceeds the proxy's request size limit");
            }
            break;
        }
        c->need = 0;
        c->spoke = true;
        if (rc == PARSE_DROP) {
            pos = client_drop(c, pos);
            continue;
        }
        if (rc == PARSE_ERROR) {
            log_info("pool '%s': client %s: %s: refused, the client closed", c->pool->cp->name,
                     c->addr, c->ri.err);
            if (c->ri.err_wire && c->ri.wire.len > 0) {
                cqueue_local(c, c->ri.wire.data, c->ri.wire.len); /* (its protocol's own) */
            }
            client_refuse(c, c->ri.err_wire ? NULL : c->ri.err);
            break;
        }
        if (!router_dispatch(c, c->in.data + pos, &c->ri)) {
            break; /* it waits where it is (client_wait_server) */
        }
        pos += c->ri.len;
    }
    /* c->need stays the total size of the message now at in_pos */
    client_consume(c, pos);
    if (c->read_eof && (c->in.len == 0 || starved)) {
        c->closing = true; /* all it sent is dispatched (an unfinished request is dropped) */
    }
    if (c->ri.wire.cap > c->px->mbuf_size) {
        buf_free(&c->ri.wire); /* a large rewrite (a quiet ms's value) is not kept */
    }
}

/* One read and the parse of what it completed: 1 when more can be read at once
 * (TLS holds decrypted bytes no event will announce), else 0. */
static int client_read_once(struct client *c)
{
    struct proxy *px = c->px;
    if ((client_over_limit(c) && !blocking_waits(c) && !client_unread(c)) || c->read_eof) {
        /* over its limits, requests already buffered wait too: reading would
         * only grow them (but for a close behind a wait, or a client that
         * leaves its replies unread: client_reading); after its EOF there is
         * nothing more to read */
        return 0;
    }
    size_t want = px->mbuf_size;
    size_t have = client_unparsed(c);
    if (c->need > have && c->need - have > want) {
        want = c->need - have; /* a large value: read it in as few calls as possible */
    }
    if (c->in_pos > 0 && c->in.cap - c->in.len < want / 2 && c->in_pos >= have) {
        client_consume(c, c->in_pos); /* room at the start, as cheap to make as the buffer grew */
    }
    if (bufpool_get(&px->bufs, &c->in) != 0 ||
        (c->in.cap - c->in.len < want / 2 && buf_reserve(&c->in, want) != 0)) {
        router_reply_error(c, "out of memory");
        c->closing = true;
        c->refused = true; /* its request was not read: linger, not reset */
        return 0;
    }
    size_t got = 0;
    int err = 0;
    int rc = stream_read(&c->st, c->in.data + c->in.len, c->in.cap - c->in.len, &got, &err);
    if (rc == STREAM_EOF) {
        c->said_bye = true;
        c->read_eof = true; /* half-closed: still answer what was sent */
        client_process(c);  /* (what is left of it: the limits may have stopped it) */
        if (blocking_waits(c) && !blocking_eof(c)) {
            client_close(c); /* (not at the server: nothing there to end) */
        }
        return 0;
    }
    if (rc == STREAM_ERROR) {
        c->pool->stats[SP_client_err]++;
        client_close(c);
        return 0;
    }
    if (rc == STREAM_AGAIN) {
        if (c->in.len == 0) {
            bufpool_put(&px->bufs, &c->in);
        }
        client_update_events(c); /* TLS: a read may wait for writability */
        return 0;
    }
    c->in.len += got;
    c->batch++;
    proxy_note_read(px, got);
    client_process(c);
    if (c->in.len == 0) {
        bufpool_put(&px->bufs, &c->in);
    }
    return stream_pending(&c->st) > 0 && client_reading(c) ? 1 : 0;
}

static void client_read(struct client *c)
{
    while (client_read_once(c) == 1) {
    }
}

/* One step of a TLS client's handshake; a failure (garbage instead of a
 * ClientHello, no client certificate where one is required) closes this client
 * only. */
static void client_handshake(struct client *c)
{
    c->px->hs_steps++;
    int err = 0;
    int rc = stream_handshake(&c->st, &err);
    if (rc == STREAM_AGAIN) {
        ev_io_set(c->px->loop, &c->io, stream_mask(&c->st, true, false));
        return;
    }
    ev_timer_stop(c->px->loop, &c->hs_timer);
    if (rc != STREAM_OK) {
        char why[256];
        log_info("pool '%s': client %s: TLS handshake failed: %s", c->pool->cp->name, c->addr,
                 stream_strerror(&c->st, err, why, sizeof(why)));
        c->pool->stats[SP_client_err]++;
        client_close(c);
        return;
    }
    c->handshake = false;
    log_verb("pool '%s': client %s: %s handshake done%s", c->pool->cp->name, c->addr,
             stream_tls_version(&c->st), stream_tls_resumed(&c->st) ? ", session resumed" : "");
    client_update_events(c);
    client_read(c); /* a request may have come with the last handshake message */
}

static void client_hs_unwait(struct client *c)
{
    struct proxy *px = c->px;
    *(c->hs_prev != NULL ? &c->hs_prev->hs_next : &px->hs_wait_head) = c->hs_next;
    *(c->hs_next != NULL ? &c->hs_next->hs_prev : &px->hs_wait_tail) = c->hs_prev;
    c->hs_prev = c->hs_next = NULL;
    c->hs_waiting = false;
}

/* c's handshake may take a step (its socket is readable): now, or, past this
 * turn's CLIENT_HS_PER_TURN or behind others that wait, in a later turn (its
 * socket not watched meanwhile: what it sent stays there). */
static void client_handshake_when_due(struct client *c)
{
    struct proxy *px = c->px;
    if (px->hs_wait_head == NULL && px->hs_steps < CLIENT_HS_PER_TURN) {
        client_handshake(c);
        return;
    }
    ev_io_set(px->loop, &c->io, 0);
    c->hs_prev = px->hs_wait_tail;
    *(px->hs_wait_tail != NULL ? &px->hs_wait_tail->hs_next : &px->hs_wait_head) = c;
    px->hs_wait_tail = c;
    c->hs_waiting = true;
    if (!ev_timer_armed(&px->hs_timer)) {
        ev_timer_start(px->loop, &px->hs_timer, 0);
    }
}

/* (the rest wait for the next turn: proxy_before_sleep starts the timer again,
 * once the turn is over; started from here, it would be due at once, again) */
void client_on_handshake_turn(struct ev_loop *loop, struct ev_timer *t)
{
    struct proxy *px = t->data;
    (void)loop;
    while (px->hs_wait_head != NULL && px->hs_steps < CLIENT_HS_PER_TURN) {
        struct client *c = px->hs_wait_head;
        client_hs_unwait(c);
        client_handshake(c);
    }
}

static void client_on_handshake_timeout(struct ev_loop *loop, struct ev_timer *t)
{
    struct client *c = t->data;
    (void)loop;
    log_info("pool '%s': client %s: TLS handshake not done after %d ms", c->pool->cp->name, c->addr,
             CLIENT_HANDSHAKE_MS);
    c->pool->stats[SP_client_err]++;
    client_close(c);
}

/* Write what out holds (unless it waits for the rest of its read). Returns
 * false when the client is done with by it: closed, or lingering. */
static bool client_write_out(struct client *c)
{
    if (client_holding(c)) {
        return true;
    }
    ev_timer_stop(c->px->loop, &c->hold_timer);
    c->hold_expired = false;
    int err = 0;
    if (stream_write_buf(&c->st, &c->out, &c->out_pos, &err) == STREAM_ERROR) {
        c->pool->stats[SP_client_err]++;
        client_close(c);
        return false;
    }
    if (c->out.len - c->out_pos > CLIENT_UNAUTH_REPLY_MAX && c->lc.auth != NULL && !c->lc.authed) {
        log_info("pool '%s': client %s: %zu bytes of replies unread before it logged in: "
                 "closed",
                 c->pool->cp->name, c->addr, c->out.len - c->out_pos);
        c->pool->stats[SP_client_err]++;
        client_close(c);
        return false;
    }
    if (c->subs.nconns > 0) {
        pubsub_pace(c, c->out.len - c->out_pos);
    }
    if (c->out_pos == c->out.len) {
        bufpool_put(&c->px->bufs, &c->out);
        c->out_pos = 0;
        if (c->closing && c->q.head == NULL) {
            if (c->refused || c->drained) {
                client_linger(c);
            } else {
                client_close(c);
            }
            return false;
        }
    } else if (c->out_pos >= c->out.len / 2) {
        /* a reader that never quite catches up must not make the buffer grow
         * at its tail forever: move the unwritten half to the front */
        buf_consume(&c->out, c->out_pos);
        c->out_pos = 0;
    }
    return true;
}

void client_flush(struct client *c)
{
    if (c->closed || c->lingering) {
        return;
    }
    if (c->handshake) {
        if (c->closing) {
            client_close(c); /* drained (shutdown, retired pool) before it sent anything */
        }
        return; /* nothing was read, so nothing is to be written */
    }
    if (!client_write_out(c)) {
        return;
    }
    if (c->fence_wait && c->q.head == NULL) {
        c->fence_wait = false; /* every earlier request is answered: it goes now */
        client_process(c);
    }
    client_update_events(c);
    if (client_unparsed(c) > 0 && client_unparsed(c) >= c->need && client_parsing(c)) {
        /* requests read before we paused, or left when the limit stopped us:
         * no socket event will come for bytes that are already here */
        client_process(c);
        if (c->closing && !client_write_out(c)) {
            return; /* (read_eof) the last of them were local replies, now written */
        }
    }
    if (stream_pending(&c->st) > 0 && client_reading(c)) {
        client_read(c); /* the same for bytes TLS decrypted before we paused */
    }
}

static void client_on_io(struct ev_loop *loop, struct ev_io *io, unsigned events)
{
    struct client *c = io->data;
    (void)loop;
    if (c->handshake) {
        client_handshake_when_due(c);
        return;
    }
    if (c->lingering) {
        client_linger_read(c);
        return;
    }
    if (stream_can_read(&c->st, events) && !c->closing) {
        client_read(c);
    }
    if (c->closed) {
        return;
    }
    if (stream_can_write(&c->st, events)) {
        client_flush(c);
    } else {
        client_mark_dirty(c);
    }
}

void client_close(struct client *c)
{
    if (c->closed) {
        return;
    }
    struct proxy *px = c->px;
    ev_io_stop(px->loop, &c->io);
    ev_timer_stop(px->loop, &c->hs_timer);
    ev_timer_stop(px->loop, &c->hold_timer);
    ev_timer_stop(px->loop, &c->server_wait_timer);
    ev_timer_stop(px->loop, &c->block_fail_timer);
    ev_timer_stop(px->loop, &c->linger_timer);
    if (c->hs_waiting) {
        client_hs_unwait(c);
    }
    stream_close(&c->st);
    c->io.fd = -1;
    c->closed = true;
    if (c->said_bye) {
        c->pool->stats[SP_client_eof]++; /* in the same turn as client_connections */
    }
    client_unlink(c);
    px->curr_connections--;
    cqueue_orphan(c); /* requests still at a server finish there; replies dropped */
    pubsub_close(c);  /* its own connections close now, their memory goes with it */
    txn_close(c);
    c->next_dead = px->dead_clients;
    px->dead_clients = c;
}

struct buf *client_outbuf(struct client *c)
{
    bufpool_get(&c->px->bufs, &c->out); /* on failure buf_append grows it */
    return &c->out;
}

void client_free(struct client *c)
{
    bufpool_put(&c->px->bufs, &c->in);
    bufpool_put(&c->px->bufs, &c->out);
    req_info_free(&c->ri);
    buf_free(&c->lc.name);
    buf_free(&c->lc.user);
    pubsub_free(c);
    txn_free(c);
    free(c);
}

void client_hang_up(struct client *c, const char *why)
{
    if (c->hung_up) {
        return; /* (a later request of a pipeline that failed with it) */
    }
    c->hung_up = true;
    if (c->said_bye && strcmp(why, BLOCKING_END_MSG) == 0) {
        /* its own EOF ended its wait (blocking_eof), as redis frees it: no failure */
        log_verb("pool '%s': client %s: its blocking command's wait ended with it",
                 c->pool->cp->name, c->addr);
    } else {
        c->pool->stats[SP_forward_error]++;
        log_info("pool '%s': client %s: a request of its ended without the server's answer "
                 "(%s): closed",
                 c->pool->cp->name, c->addr, why);
    }
    c->closing = true;
    client_mark_dirty(c);
}

void client_quit(struct client *c)
{
    /* a close the client asked for: twemproxy counts it as the client's eof */
    c->said_bye = true;
    c->closing = true;
}

void client_drain(struct client *c)
{
    if (c->lingering) {
        client_close(c); /* its replies are all written: nothing to wait for */
        return;
    }
    c->drained = c->drained || !c->read_eof; /* it may send more: so no reset destroys a reply */
    c->read_eof = true;                      /* no more reading: what it sent is still answered */
    client_process(c);
    blocking_end(c, BLOCKING_END_MSG);
    client_update_events(c);
    client_mark_dirty(c);
}

bool client_move(struct client *c, struct pool *to)
{
    /* its own connections (subscriptions, a watch) and its transaction's server
     * name servers of the old pool, freed with it: they follow the servers the
     * new pool kept, or the client stays behind, closed once answered */
    if (!pubsub_heirs_known(c) || !txn_heirs_known(c)) {
        return false;
    }
    pubsub_follow_heirs(c);
    txn_follow_heirs(c);
    /* authenticated stays authenticated (as with redis' CONFIG SET requirepass);
     * one who is not yet must give the new password */
    client_unlink(c);
    client_link(c, to);
    client_take_pool_settings(c, to);
    c->fence = true; /* the new pool's connections may be others */
    client_check_user(c);
    return true;
}

void client_check_user(struct client *c)
{
    const struct local_ctx *lc = &c->lc;
    if (!lc->authed || lc->user.len == 0 || lc->login == NULL ||
        conf_user_listed(c->pool->cp, lc->user.data, lc->user.len)) {
        return; /* (a pool password now: a login stays, as with CONFIG SET requirepass) */
    }
    /* as redis' ACL DELUSER: the user's connections are closed, what they sent
     * after is not run */
    log_notice("pool '%s': client %s logged in as '%.*s', whom client_auth no longer lists: "
               "closed",
               c->pool->cp->name, c->addr, (int)(lc->user.len > 64 ? 64 : lc->user.len),
               (const char *)lc->user.data);
    c->drained = c->drained || !c->read_eof;
    c->read_eof = true;
    c->closing = true;
    buf_reset(&c->in);
    c->in_pos = 0;
    client_mark_dirty(c);
}

size_t client_memory(const struct client *c)
{
    return c->in.cap + c->out.cap + c->q.pending_bytes + pubsub_memory(c) + txn_memory(c);
}

void client_private_lost(struct client *c, struct sconn *sc, const char *msg)
{
    if (c->lingering) {
        return; /* client_linger closed them: it hears nothing more */
    }
    if (pubsub_holds(c, sc)) {
        /* the subscriptions on it are gone: the client's library reconnects and
         * subscribes again, which it does only for a closed connection. No
         * error says so: it would answer no request (a RESP3 client takes it
         * for a broken protocol), and libraries resubscribe on a close alone */
        log_info("pool '%s': client %s: connection to a pub/sub server lost (%s): closed",
                 c->pool->cp->name, c->addr, msg);
        c->closing = true;
        client_update_events(c);
        client_mark_dirty(c);
        return;
    }
    txn_pin_lost(c, sc);
}
