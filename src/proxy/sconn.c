#include "proxy/sconn.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "cluster/cluster_msg.h"
#include "core/log.h"
#include "net/sock.h"
#include "net/tls.h"
#include "proxy/health.h"
#include "proxy/blocking.h"
#include "proxy/client.h"
#include "proxy/cluster.h"
#include "proxy/hold.h"
#include "proxy/pool.h"
#include "proxy/proxy.h"
#include "proxy/pubsub.h"
#include "proxy/req.h"
#include "proxy/route.h"
#include "proxy/server.h"

#define SCONN_SHORTAGE_LOG_MS 10000
/* A server's connection failures are said at warning level once per this long. */
#define SCONN_CLOSE_LOG_GAP_MS 10000

static void sconn_on_io(struct ev_loop *loop, struct ev_io *io, unsigned events);
static void sconn_on_timeout(struct ev_loop *loop, struct ev_timer *t);
static void sconn_lost(struct sconn *c, const char *msg, int stat_field);
static void sconn_handshake(struct sconn *c);
static void sconn_gate(struct sconn *c);

_Static_assert(STREAM_WANT_READ == EV_READ && STREAM_WANT_WRITE == EV_WRITE,
               "a stream's wants are event masks");

static struct proxy *sconn_px(const struct sconn *c)
{
    return c->server->pool->px;
}

/* The counters c's traffic goes to (a hidden replica's: its group's). During a
 * reload a server's counters go on in its heir (server_adopt copied them there):
 * what a connection left behind (a client's own, being freed) counts there too,
 * or a gauge copied with it would never come down. */
static int64_t *sconn_stats(const struct sconn *c)
{
    struct server *s = c->server->heir != NULL ? c->server->heir : c->server;
    return server_counted(s)->stats;
}

void sconn_init(struct sconn *c, struct server *s)
{
    memset(c, 0, sizeof(*c));
    c->server = s;
    c->resp = 2;
    c->st.fd = -1;
    ev_io_init(&c->io, -1, sconn_on_io, c);
    ev_timer_init(&c->timer, sconn_on_timeout, c);
    rsp_info_init(&c->ri);
}

struct sconn *sconn_new_private(struct server *s, struct client *owner, int resp)
{
    struct sconn *c = malloc(sizeof(*c));
    if (c != NULL) {
        sconn_init(c, s);
        c->owner = owner;
        c->resp = (uint8_t)resp;
    }
    return c;
}

void sconn_pause(struct sconn *c, bool paused)
{
    if (c->paused == paused || (paused && (c->state != SCONN_CONNECTED || c->head != NULL))) {
        return; /* (a reply waited for is read: its deadline runs) */
    }
    c->paused = paused;
    ev_io_set(sconn_px(c)->loop, &c->io, stream_mask(&c->st, !paused, c->out_pos < c->out.len));
}

void sconn_free_private(struct sconn *c)
{
    sconn_deinit(c, "client closed");
    free(c);
}

void sconn_deinit(struct sconn *c, const char *msg)
{
    sconn_reset(c, msg);
    buf_free(&c->out);
    buf_free(&c->in);
    rsp_info_free(&c->ri);
    tls_session_free(c->tls_session);
    c->tls_session = NULL;
}

static void sconn_mark_dirty(struct sconn *c)
{
    struct proxy *px = sconn_px(c);
    if (c->dirty) {
        return;
    }
    c->dirty = true;
    c->dirty_next = NULL;
    c->dirty_prev = px->dirty_sconns_tail;
    if (px->dirty_sconns_tail != NULL) {
        px->dirty_sconns_tail->dirty_next = c;
    } else {
        px->dirty_sconns = c;
    }
    px->dirty_sconns_tail = c;
}

static void sconn_unmark_dirty(struct sconn *c)
{
    if (!c->dirty) {
        return;
    }
    struct proxy *px = sconn_px(c);
    if (c->dirty_prev != NULL) {
        c->dirty_prev->dirty_next = c->dirty_next;
    } else {
        px->dirty_sconns = c->dirty_next;
    }
    if (c->dirty_next != NULL) {
        c->dirty_next->dirty_prev = c->dirty_prev;
    } else {
        px->dirty_sconns_tail = c->dirty_prev;
    }
    c->dirty = false;
    c->dirty_prev = c->dirty_next = NULL;
}

static void sconn_arm_timer(struct sconn *c)
{
    struct ev_loop *loop = sconn_px(c)->loop;
    if (c->head != NULL && c->head->deadline_ms != 0) {
        ev_timer_start_at(loop, &c->timer, c->head->deadline_ms);
    } else {
        ev_timer_stop(loop, &c->timer);
    }
}

/* A new socket to the server's address: the fd, or -1 with *err. */
static int sconn_socket(struct sconn *c, bool *in_progress, int *err)
{
    struct server *s = c->server;
    if (!server_resolve(s, ev_now(sconn_px(c)->loop))) {
        *err = EHOSTDOWN; /* its name has not resolved yet: "Host is down", as twemproxy */
        return -1;
    }
    struct sockaddr_storage ss = s->addr.ss;
    socklen_t sslen = s->addr.len;
    int fd = sock_connect((const struct sockaddr *)&ss, sslen, in_progress);
    if (fd < 0) {
        *err = errno;
        return -1;
    }
    if (ss.ss_family != AF_UNIX) {
        sock_set_nodelay(fd);
    }
    if (s->pool->cp->tcpkeepalive) {
        sock_set_keepalive(fd);
    }
    return fd;
}

/* What a new connection says first (AUTH, SELECT); their replies are swallowed. */
static void sconn_preamble(struct sconn *c)
{
    const struct pool *p = c->server->pool;
    const char *auth = p->cp->redis ? p->cp->redis_auth : NULL;
    size_t before = c->out.len;
    uint32_t acl = 0;
    if (auth != NULL && p->cp->redis_auth_user != NULL) {
        /* redis_auth "user password": an ACL user, or one password with a space */
        acl = server_auth_build(c->server, &c->out);
        auth = NULL;
    }
    c->auth_left = (uint8_t)acl;
    c->auth_sent = c->server->auth_form;
    c->auth_ok = false;
    int n = p->proto->conn_init(&c->out, auth, auth ? strlen(auth) : 0,
                                p->cp->redis ? p->cp->redis_db : 0, c->resp);
    c->swallow = (n > 0 ? (uint32_t)n : 0) + acl;
    if (c->server->readonly_conns &&
        buf_append(&c->out, cluster_msg_readonly, cluster_msg_readonly_len) == 0) {
        c->swallow++; /* a cluster replica serves reads after READONLY */
    }
    static const char client_id[] = "*2\r\n$6\r\nCLIENT\r\n$2\r\nID\r\n";
    c->srv_id = 0;
    c->id_asked = c->owner != NULL && p->cp->redis &&
                  buf_append(&c->out, client_id, sizeof(client_id) - 1) == 0;
    c->swallow += c->id_asked; /* the last of the set-up: see sconn_answer */
    c->wire_queued += c->out.len - before;
    if (c->out.len > 0) {
        sconn_mark_dirty(c);
    }
}

static struct tls_ctx *sconn_tls_ctx(const struct sconn *c)
{
    return c->server->pool->cp->tls.ctx;
}

/* The name a server's certificate must carry: tls_server_name, else the host
 * as configured, else (a sentinel group's master, a replica) its address. */
static const char *sconn_tls_name(const struct sconn *c, char *buf, size_t len)
{
    const struct server *s = c->server;
    const struct conf_pool *cp = s->pool->cp;
    if (cp->tls.server_name != NULL) {
        return cp->tls.server_name;
    }
    if (s->cs->addr.host != NULL) {
        return s->cs->addr.host;
    }
    const struct sockaddr_storage *ss = &s->addr.ss;
    if (ss->ss_family == AF_INET) {
        return inet_ntop(AF_INET, &((const struct sockaddr_in *)ss)->sin_addr, buf, (socklen_t)len);
    }
    if (ss->ss_family == AF_INET6) {
        return inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)ss)->sin6_addr, buf,
                         (socklen_t)len);
    }
    return NULL; /* a unix socket: the chain is checked, no name */
}

/* The transport over a new socket: TLS when the pool's servers speak it. */
static int sconn_stream_open(struct sconn *c, int fd)
{
    struct tls_ctx *ctx = sconn_tls_ctx(c);
    if (ctx == NULL) {
        stream_open_plain(&c->st, fd);
        return 0;
    }
    char name[64];
    return stream_open_tls_client(&c->st, fd, ctx, sconn_tls_name(c, name, sizeof(name)),
                                  &c->tls_session);
}

/* A plain socket that is connected moves its bytes through the loop's ring when
 * the loop has one (io_uring): its sends then leave with the clients' in the
 * wait's one system call, instead of a write() each. Its poll for the connect
 * is stopped first (a ring fd is not polled). Without a ring it stays plain. */
static void sconn_ring(struct sconn *c)
{
    struct ev_loop *loop = sconn_px(c)->loop;
    if (!stream_is_plain(&c->st) || !ev_loop_has_cio(loop)) {
        return;
    }
    ev_io_stop(loop, &c->io);
    stream_open_ring(&c->st, c->st.fd, loop); /* or stays plain (no memory) */
    ev_io_set(loop, &c->io, EV_READ);
}

/* Out of descriptors (or memory, or local ports), a connect fails every
 * request that needs one: said at most once every SCONN_SHORTAGE_LOG_MS. */
static void sconn_log_shortage(struct sconn *c, int err)
{
    struct proxy *px = sconn_px(c);
    uint64_t quiet = 0;
    if (!log_gap_due(&px->shortage_log, ev_now(px->loop), SCONN_SHORTAGE_LOG_MS, &quiet)) {
        return;
    }
    char more[64];
    log_error("connect to server '%s' failed: %s; requests that need a new server connection "
              "fail until one can be made, and no server is blamed for it%s",
              c->server->cs->name, strerror(err), log_gap_more(more, sizeof(more), quiet));
}

int sconn_ensure(struct sconn *c)
{
    if (c->state != SCONN_CLOSED) {
        return 0;
    }
    struct server *s = c->server;
    struct proxy *px = sconn_px(c);
    bool in_progress = false;
    int err = 0;
    if (!s->addr.known) {
        return EHOSTUNREACH; /* no fault of the server: see server_strerror() */
    }
    int fd = sconn_socket(c, &in_progress, &err);
    if (fd < 0 && sock_err_is_shortage(err)) {
        sconn_log_shortage(c, err);
        return err; /* this process ran out: no failure of the server's */
    }
    if (fd < 0) {
        /* a name not in DNS at load time is looked up at each connect (sconn_socket) */
        log_warn("connect to server '%s' failed: %s", s->cs->name,
                 s->addr.len == 0 && err == EHOSTDOWN ? "its host name does not resolve"
                                                      : strerror(err));
        sconn_stats(c)[SS_server_err]++;
        health_failure(s, strerror(err));
        return err;
    }
    if (sconn_stream_open(c, fd) != 0) {
        log_warn("connect to server '%s' failed: out of memory for TLS", s->cs->name);
        sconn_stats(c)[SS_server_err]++;
        return ENOMEM;
    }
    ev_io_init(&c->io, fd, sconn_on_io, c);
    c->state = in_progress ? SCONN_CONNECTING : SCONN_CONNECTED;
    ev_io_set(px->loop, &c->io, EV_READ | (in_progress ? EV_WRITE : 0));
    if (c->state == SCONN_CONNECTED) {
        sconn_ring(c); /* connected at once (unix socket) */
    }
    buf_reset(&c->out);
    buf_reset(&c->in);
    c->out_pos = 0;
    sconn_preamble(c);
    sconn_stats(c)[SS_server_connections]++;
    px->curr_connections++;
    px->total_connections++;
    log_verb("connecting to server '%s' fd %d", s->cs->name, fd);
    if (c->state == SCONN_CONNECTED && c->st.ops != NULL && sconn_tls_ctx(c) != NULL) {
        c->state = SCONN_HANDSHAKE; /* connected at once (unix socket): greet now */
        sconn_handshake(c);
        if (c->state == SCONN_CLOSED) {
            return ECONNABORTED; /* counted as the server's failure already */
        }
    }
    return 0;
}

struct buf *sconn_out(struct sconn *c)
{
    return &c->out;
}

void sconn_speak(struct sconn *c, int resp)
{
    if (c->resp == resp) {
        return;
    }
    c->resp = (uint8_t)resp;
    if (c->state == SCONN_CLOSED) {
        return; /* sconn_preamble says it */
    }
    uint8_t v = (uint8_t)('0' + resp);
    const uint8_t *argv[2] = {(const uint8_t *)"HELLO", &v};
    size_t lens[2] = {5, 1};
    size_t before = c->out.len;
    if (c->server->pool->proto->build(&c->out, 2, argv, lens) != 0) {
        c->out.len = before;
        sconn_reset(c, "out of memory"); /* its next connect speaks resp */
        return;
    }
    sconn_queued(c, req_new(sconn_px(c), 0), c->out.len - before); /* no client: dropped */
}

void sconn_queued(struct sconn *c, struct req *r, size_t len)
{
    struct server *s = c->server;
    struct ev_loop *loop = sconn_px(c)->loop;
    c->wire_queued += len;
    sconn_stats(c)[SS_requests]++;
    sconn_stats(c)[SS_request_bytes] += (int64_t)len;
    if (r != NULL) {
        int64_t timeout = s->pool->cp->timeout_ms;
        r->sconn = c;
        r->len = (uint32_t)len;
        r->wire_end = c->wire_queued;
        r->in_server = true;
        r->queued_us = ev_now_us(loop);
        r->deadline_ms = timeout > 0 ? ev_now(loop) + (uint64_t)timeout : 0;
        if (c->tail != NULL) {
            c->tail->snext = r;
        } else {
            c->head = r;
            sconn_arm_timer(c);
        }
        c->tail = r;
        sconn_pause(c, false); /* its reply is read (the flush sets the events) */
        if (c->unsent == NULL) {
            c->unsent = r;
        }
        sconn_stats(c)[SS_in_queue]++;
        sconn_stats(c)[SS_in_queue_bytes] += (int64_t)len;
    }
    sconn_mark_dirty(c);
    if (c->owner != NULL) {
        sconn_gate(c); /* what others send next waits for it, on a new connection */
    }
}

void sconn_send(struct sconn *c, struct req *r, const uint8_t *p, size_t len)
{
    if (buf_append(&c->out, p, len) != 0) {
        /* a request lost silently is worse than a failed connection */
        sconn_fail(c, "out of memory", SS_server_err);
        if (r != NULL) {
            req_fail(r, "out of memory");
        }
        return;
    }
    sconn_queued(c, r, len);
}

void sconn_send_blocking(struct sconn *c, struct req *r, const uint8_t *p, size_t len,
                         int64_t block_ms)
{
    sconn_send(c, r, p, len);
    if (r->sconn != c || !r->in_server) {
        return; /* failed at once */
    }
    sconn_block_deadline(c, r, block_ms);
}

void sconn_req_deadline(struct sconn *c, struct req *r, uint64_t ms)
{
    r->deadline_ms = ev_now(sconn_px(c)->loop) + ms;
    sconn_arm_timer(c);
}

void sconn_block_deadline(struct sconn *c, struct req *r, int64_t block_ms)
{
    int64_t timeout = c->server->pool->cp->timeout_ms;
    r->deadline_ms = timeout <= 0 || block_ms < 0
                         ? 0
                         : ev_now(sconn_px(c)->loop) + (uint64_t)timeout + (uint64_t)block_ms;
    sconn_arm_timer(c);
}

/* Requests fully written move from the in_queue to the out_queue gauges. */
static void sconn_account_sent(struct sconn *c)
{
    int64_t *st = sconn_stats(c);
    while (c->unsent != NULL && c->unsent->wire_end <= c->wire_written) {
        struct req *r = c->unsent;
        r->sent = true;
        st[SS_in_queue]--;
        st[SS_in_queue_bytes] -= r->len;
        st[SS_out_queue]++;
        st[SS_out_queue_bytes] += r->len;
        c->unsent = r->snext;
    }
}

static void sconn_buffers_trim(struct sconn *c, size_t mbuf)
{
    /* give back what a large value needed; keep one chunk for the next burst */
    if (c->out.cap > 4 * mbuf) {
        buf_free(&c->out);
    }
    if (c->in.len == 0 && c->in.cap > 4 * mbuf) {
        buf_free(&c->in);
    }
}

/* Bytes of written requests a connection keeps at most: a read older than that
 * gets the connection's error if it is lost (large values written in bulk
 * would otherwise double what the connection holds). */
#define SCONN_KEEP_MAX (256u * 1024)

/* Spare room sconn_out_fit leaves in an output buffer (its small steps). */
#define SCONN_FIT_SLACK ((size_t)64 << 10)

/* Whether c keeps the bytes of what it wrote until they are answered, so that
 * the reads among them can be sent again if c is lost: a sentinel group's
 * master with failover_hold (they wait for the new master), or a replica whose
 * reads can go to another replica or its master (route_fallback). */
static bool sconn_keeps_sent(const struct sconn *c)
{
    return c->owner == NULL && (hold_keeps_sent(c->server) || route_may_fall_back(c->server));
}

/* Where the bytes c still needs begin in c->out: at the first byte not written,
 * or, when c keeps what it sent, at the first request not answered (up to
 * SCONN_KEEP_MAX bytes back). */
static size_t sconn_keep_from(const struct sconn *c)
{
    if (c->head == NULL || !sconn_keeps_sent(c)) {
        return c->out_pos;
    }
    uint64_t base = c->wire_written - c->out_pos; /* wire position of c->out.data[0] */
    uint64_t start = c->head->wire_end - c->head->len;
    size_t keep = c->out_pos;
    if (start < base + c->out_pos) {
        keep = start > base ? (size_t)(start - base) : 0;
    }
    return c->out_pos - keep > SCONN_KEEP_MAX ? c->out_pos - SCONN_KEEP_MAX : keep;
}

void sconn_out_fit(struct sconn *c)
{
    size_t keep = sconn_keep_from(c);
    if (keep > 0) {
        buf_consume(&c->out, keep); /* (the wire positions count from out_pos) */
        c->out_pos -= keep;
    }
    if (c->out.len == 0) {
        buf_free(&c->out);
    } else {
        (void)buf_trim(&c->out, SCONN_FIT_SLACK);
    }
}

/* The connection failed reading or writing (err as the stream gave it). TLS
 * 1.3: a refused client certificate arrives as an alert after the handshake,
 * found by a read or by the write the server reset. */
static void sconn_stream_lost(struct sconn *c, int err)
{
    char why[256], msg[300];
    snprintf(msg, sizeof(msg), "%s%s", err == STREAM_ETLS ? "TLS error from server: " : "",
             stream_strerror(&c->st, err, why, sizeof(why)));
    sconn_lost(c, msg, SS_server_err);
}

void sconn_wake(struct sconn *c)
{
    if (c->state != SCONN_CLOSED && c->out_pos < c->out.len) {
        sconn_mark_dirty(c);
    }
}

/* c, a client's own connection, was just given a request (a blocking command
 * that gives no answer until it is served, a SUBSCRIBE or WATCH the client may
 * not wait for): if its set-up is not answered yet (a new connection), the
 * server's shared connections wait for that answer (server_gate_open), by
 * which time the server has read the request, sent in the same write. */
static void sconn_gate(struct sconn *c)
{
    if (!c->gating && c->swallow > 0) {
        c->gating = true;
        server_gate_open(c->server);
    }
}

static void sconn_ungate(struct sconn *c)
{
    if (c->gating) {
        c->gating = false;
        server_gate_close(c->server);
    }
}

void sconn_follow(struct sconn *c, struct server *to)
{
    sconn_ungate(c); /* the old server's count: the heir's shared connections never waited */
    c->server = to;
}

void sconn_flush(struct sconn *c)
{
    sconn_unmark_dirty(c);
    if (c->state != SCONN_CONNECTED) {
        return; /* connecting: the connect completion flushes */
    }
    struct proxy *px = sconn_px(c);
    if (c->shared && server_gated(c->server)) {
        /* a client's own new connection goes first: the gate's lift flushes again */
        ev_io_set(px->loop, &c->io, stream_mask(&c->st, !c->paused, false));
        return;
    }
    size_t before = c->out_pos;
    int err = 0;
    int rc = stream_write_buf(&c->st, &c->out, &c->out_pos, &err);
    c->wire_written += c->out_pos - before;
    if (rc == STREAM_ERROR) {
        sconn_stream_lost(c, err);
        return;
    }
    sconn_account_sent(c);
    size_t keep = sconn_keep_from(c);
    if (keep == c->out.len) {
        buf_reset(&c->out);
        c->out_pos = 0;
        sconn_buffers_trim(c, px->mbuf_size);
        ev_io_set(px->loop, &c->io, stream_mask(&c->st, !c->paused, false));
        return;
    }
    if (keep >= c->out.len / 2) {
        /* see client_flush: bound the tail growth (TLS accepts the moved bytes) */
        buf_consume(&c->out, keep);
        c->out_pos -= keep;
    }
    ev_io_set(px->loop, &c->io, stream_mask(&c->st, !c->paused, c->out_pos < c->out.len));
}

static struct req *sconn_pop(struct sconn *c)
{
    struct req *r = c->head;
    int64_t *st = sconn_stats(c);
    c->head = r->snext;
    if (c->head == NULL) {
        c->tail = NULL;
    }
    if (c->unsent == r) {
        c->unsent = r->snext;
        st[SS_in_queue]--;
        st[SS_in_queue_bytes] -= r->len;
    } else {
        st[SS_out_queue]--;
        st[SS_out_queue_bytes] -= r->len;
    }
    r->snext = NULL;
    r->in_server = false;
    return r;
}

/* r's bytes in c->out (base: the wire position of c->out.data[0]), or NULL
 * when they are no longer there. */
static const uint8_t *sconn_bytes_of(const struct sconn *c, const struct req *r, uint64_t base)
{
    uint64_t start = r->wire_end - r->len;
    bool have = start >= base && r->wire_end - base <= c->out.len;
    return have ? c->out.data + (start - base) : NULL;
}

/* r, detached from c's queue, is to be sent again. It stays counted among
 * c's server's requests (forwarded there it was), and counts again where it
 * goes: a counter never goes down (Prometheus reads a decrease as a reset). */
static void sconn_unsend(struct sconn *c, struct req *r)
{
    int64_t *st = sconn_stats(c);
    r->in_server = false;
    st[r->sent ? SS_out_queue : SS_in_queue]--;
    st[r->sent ? SS_out_queue_bytes : SS_in_queue_bytes] -= r->len;
    r->sent = false;
}

/* Offered request r of a lost connection c, with its bytes p (NULL: gone):
 * true when it takes r to send again (c no longer counts it). */
typedef bool (*sconn_resend_fn)(struct sconn *c, struct req *r, const uint8_t *p, void *ctx);

/* The detached queue r.. of c, less what resend takes: returned in order. */
static struct req *sconn_requeue(struct sconn *c, struct req *r, sconn_resend_fn resend, void *ctx)
{
    struct req *keep = NULL, **tail = &keep;
    uint64_t base = c->wire_written - c->out_pos; /* wire position of c->out.data[0] */
    while (r != NULL) {
        struct req *next = r->snext;
        const uint8_t *p = sconn_bytes_of(c, r, base);
        r->snext = NULL;
        if (!resend(c, r, p, ctx)) {
            *tail = r;
            tail = &r->snext;
        }
        r = next;
    }
    return keep;
}

/* Back to the group's hold (its failover is under way: it waits for the new
 * master instead of failing) when it can be sent again: not written in full,
 * or a read written, its bytes still at hand (in c->out when c keeps them,
 * sconn_keep_from; a cluster request keeps its own). */
static bool sconn_hold_again(struct sconn *c, struct req *r, const uint8_t *p, void *ctx)
{
    bool written = r->wire_end <= c->wire_written;
    if (!hold_return(c->server, r, p, r->len, written, ctx)) {
        return false;
    }
    sconn_unsend(c, r);
    return true;
}

/* Whether r's client sent a write after r (one that went to a server; a held
 * one has not run yet): the master may have run it already, and r sent there
 * now could read what its client wrote after it. */
static bool sconn_write_follows(const struct req *r)
{
    const struct req *n = r->parent != NULL ? r->parent : r;
    while ((n = n->cnext) != NULL) {
        if ((n->sconn != NULL || n->split != NULL) && !n->held && !req_reads(n)) {
            return true;
        }
    }
    return false;
}

/* Where a lost replica's reads go (route_fallback): `to` first, `last` for a
 * read already sent again once (so it cannot go round dead replicas). */
struct sconn_fallback {
    struct server *to;
    struct server *last;
};

/* To another replica or the master (struct sconn_fallback), on its client's
 * connection there, when it is a client's read with its bytes at hand (a read
 * has nothing to repeat). Not: the proxy's own or an orphan's (nobody waits),
 * a transaction's block, a reply rewritten for the server it went to (SCAN), a
 * read its client wrote after. */
static bool sconn_read_again(struct sconn *c, struct req *r, const uint8_t *p, void *ctx)
{
    const struct sconn_fallback *fb = ctx;
    const struct req *top = r->parent != NULL ? r->parent : r;
    const struct client *cl = top->client;
    struct server *to = r->resent ? fb->last : fb->to;
    if (to == NULL || p == NULL || cl == NULL || !top->in_client || r->skip > 0 ||
        r->reply != NULL || !req_reads(r) || sconn_write_follows(r)) {
        return false;
    }
    struct sconn *sc = server_conn_for(to, cl->id, cl->lc.resp);
    if (sconn_ensure(sc) != 0) {
        return false;
    }
    sconn_unsend(c, r);
    r->resent = true;
    sconn_send(sc, r, p, r->len);
    return true;
}

/* Close c, leave the flush list, answer every request waiting on it with msg
 * (lost: the socket failed, and the reads it wrote may be sent elsewhere).
 * Returns whether requests were waiting. */
static bool sconn_close(struct sconn *c, const char *msg, int stat_field, bool lost)
{
    sconn_unmark_dirty(c);
    sconn_ungate(c);
    if (c->state == SCONN_CLOSED) {
        /* nothing of its server is touched: a client's own connection closed
         * with it may be freed after the retired pool its server was in */
        return false;
    }
    struct server *s = c->server;
    struct proxy *px = sconn_px(c);
    bool had_work = c->head != NULL;
    uint64_t skipped = 0;
    char more[80] = "";
    /* (the gap is spent only on a line written: not at a level that hides it) */
    bool warn = had_work && !c->quiet && log_loggable(LOG_WARN) &&
                log_gap_due(&s->close_log, ev_now(px->loop), SCONN_CLOSE_LOG_GAP_MS, &skipped);
    if (warn && skipped > 0) {
        /* (those were closes with requests waiting, for whatever reason) */
        snprintf(more, sizeof(more), " (%llu more such closes since the last line)",
                 (unsigned long long)skipped);
    }
    log_at(warn ? LOG_WARN : LOG_INFO, "server '%s' connection closed: %s%s", s->cs->name, msg,
           more);
    ev_io_stop(px->loop, &c->io);
    stream_close(&c->st);
    c->io.fd = -1;
    c->state = SCONN_CLOSED;
    c->paused = false;
    if (stat_field >= 0) {
        sconn_stats(c)[stat_field]++;
    }
    sconn_stats(c)[SS_server_connections]--;
    px->curr_connections--;
    ev_timer_stop(px->loop, &c->timer);
    /* detach the whole queue first: answering a request may queue new work on c */
    struct req *r = c->head;
    c->head = c->tail = c->unsent = NULL;
    struct sconn_fallback fb = {NULL, NULL};
    if (lost && r != NULL) {
        fb.to = route_fallback(s, true, true);
        fb.last = route_fallback(s, true, false);
    }
    /* (a client's own connection carries a cluster request only for a
     * blocking command, blocking.h, which waits for the node's heir as any) */
    if (r != NULL && (c->owner == NULL || r->cx != NULL) && hold_takes_back(s)) {
        struct hold_entry *at = NULL; /* where the previous one went */
        r = sconn_requeue(c, r, sconn_hold_again, &at);
    } else if (r != NULL && c->owner == NULL && fb.to != NULL) {
        /* a replica's connection lost: its reads go to another replica, or the master */
        r = sconn_requeue(c, r, sconn_read_again, &fb);
    }
    buf_reset(&c->out);
    buf_reset(&c->in);
    c->need = 0;
    c->out_pos = 0;
    c->swallow = 0;
    c->auth_left = 0;
    c->end_at_id = false;
    c->sub_cmd = 0;
    /* bytes never written are gone with the socket: the next request's end is
     * counted from what will really be written */
    c->wire_written = c->wire_queued;
    int64_t *st = sconn_stats(c);
    while (r != NULL) {
        struct req *next = r->snext;
        st[r->sent ? SS_out_queue : SS_in_queue]--;
        st[r->sent ? SS_out_queue_bytes : SS_in_queue_bytes] -= r->len;
        r->snext = NULL;
        r->in_server = false;
        req_fail(r, msg);
        r = next;
    }
    return had_work;
}

static void sconn_fail_as(struct sconn *c, const char *msg, int stat_field, bool lost);

/* The socket failed (refused, reset, closed by the server with requests
 * waiting): the group's master may be gone, and with failover_hold_on_crash
 * its group starts holding before the requests c never wrote are answered. */
static void sconn_lost(struct sconn *c, const char *msg, int stat_field)
{
    if (c->head != NULL || stat_field != SS_server_eof) {
        hold_master_lost(c->server);
    }
    sconn_fail_as(c, msg, stat_field, true);
}

void sconn_fail(struct sconn *c, const char *msg, int stat_field)
{
    sconn_fail_as(c, msg, stat_field, false);
}

static void sconn_fail_as(struct sconn *c, const char *msg, int stat_field, bool lost)
{
    if (c->state == SCONN_CLOSED) {
        sconn_unmark_dirty(c);
        return;
    }
    bool had_work = sconn_close(c, msg, stat_field, lost);
    if (c->owner != NULL) {
        /* the client's subscriptions or watch lived on it: they are over */
        client_private_lost(c->owner, c, msg);
        had_work = true;
    }
    /* an idle connection the server closed (its timeout) is no failure */
    if (had_work || stat_field != SS_server_eof) {
        health_failure(c->server, msg);
    }
}

void sconn_reset(struct sconn *c, const char *msg)
{
    sconn_close(c, msg, -1, false);
}

bool sconn_idle(const struct sconn *c)
{
    return c->head == NULL && !c->dirty && c->out_pos == c->out.len;
}

size_t sconn_memory(const struct sconn *c)
{
    return c->out.cap + c->in.cap;
}

static void sconn_on_timeout(struct ev_loop *loop, struct ev_timer *t)
{
    struct sconn *c = t->data;
    (void)loop;
    if (c->head != NULL && c->head->unblocking) {
        /* CLIENT UNBLOCK found no answer (an ACL refused it): the wait the
         * proxy ends, no fault of the server's (blocking_end) */
        sconn_reset(c, BLOCKING_END_MSG);
        return;
    }
    if (c->server->pool->mode == POOL_CLUSTER) {
        cluster_node_timed_out(c->server);
    }
    sconn_fail(c,
               c->state == SCONN_HANDSHAKE ? "Connection timed out in the TLS handshake"
                                           : "Connection timed out",
               SS_server_timedout);
}

/* Whether an AUTH refused with the error p says the server has no password at
 * all (then, as with twemproxy, its connection serves without one). */
static bool sconn_auth_unneeded(const uint8_t *p, size_t len)
{
    static const char *const words[] = {"without any password configured", "no password is set"};
    for (size_t i = 0; i < sizeof(words) / sizeof(words[0]); i++) {
        if (memmem(p, len, words[i], strlen(words[i])) != NULL) {
            return true;
        }
    }
    return false;
}

/* The reply to one AUTH of server_auth_build: the first way that succeeds is
 * the one later connections send alone; a learned way that fails is forgotten
 * (the server's users may have changed), so the next connection tries both. A
 * login the server refuses fails the connection (unless the server has no
 * password at all). */
static void sconn_auth_reply(struct sconn *c, const uint8_t *p, size_t len)
{
    struct server *s = c->server;
    bool first = c->auth_left-- == 2;
    int form = c->auth_sent != SERVER_AUTH_UNKNOWN ? c->auth_sent
               : first                             ? SERVER_AUTH_USER
                                                   : SERVER_AUTH_WHOLE;
    if (!c->ri.is_error) {
        c->auth_ok = true;
        if (s->auth_form == SERVER_AUTH_UNKNOWN && form == SERVER_AUTH_WHOLE) {
            log_notice("server '%s' takes redis_auth as one password with a space in it, as "
                       "twemproxy sends it, not as user and password",
                       s->cs->name);
        }
        if (s->auth_form == SERVER_AUTH_UNKNOWN) {
            s->auth_form = (uint8_t)form;
        }
        return;
    }
    if (c->auth_left > 0 || c->auth_ok) {
        return; /* the other way may succeed, or did */
    }
    s->auth_form = SERVER_AUTH_UNKNOWN;
    int n = (int)(len > 2 ? len - 2 : len);
    log_error("server '%s' refused connection set-up: %.*s (redis_auth sent as %s)", s->cs->name, n,
              (const char *)p,
              c->auth_sent == SERVER_AUTH_UNKNOWN ? "user and password, then as one password"
              : form == SERVER_AUTH_USER          ? "user and password"
                                                  : "one password");
    if (!sconn_auth_unneeded(p, len)) {
        /* it wants a login we do not have: every request would get -NOAUTH, which
         * the client, logged in to the proxy, cannot make sense of */
        char msg[256];
        snprintf(msg, sizeof(msg), "server '%s' refused the pool's redis_auth: %.*s", s->cs->name,
                 n > 1 ? n - 1 : 0, (const char *)p + 1);
        sconn_fail(c, msg, SS_server_err);
    }
}

/* One complete reply of len bytes at p, for the oldest request (or a set-up
 * command, whose reply is dropped). */
static void sconn_answer(struct sconn *c, const uint8_t *p, size_t len)
{
    struct server *s = c->server;
    if (c->swallow > 0) {
        c->swallow--;
        if (c->swallow == 0) {
            sconn_ungate(c); /* the server has read what came with the set-up */
        }
        if (c->auth_left > 0) {
            sconn_auth_reply(c, p, len);
        } else if (c->swallow == 0 && c->id_asked) {
            c->id_asked = false; /* CLIENT ID's (an ACL may refuse it: then 0) */
            c->srv_id = c->ri.type == ':' ? c->ri.integer : 0;
            if (c->end_at_id) {
                blocking_id_known(c);
            }
        } else if (c->ri.is_error) {
            log_error("server '%s' refused connection set-up: %.*s", s->cs->name,
                      (int)(len > 2 ? len - 2 : len), (const char *)p);
        }
        return;
    }
    if (c->head->skip > 0) {
        c->head->skip--; /* MULTI's +OK, a QUEUED: only EXEC's reply is the client's */
        if (c->ri.is_error && c->head->cx != NULL) {
            cluster_skipped_reply(c->head, p, len); /* a redirection aborts it */
        } else if (c->ri.is_error && s->pool->cluster != NULL) {
            int kind = cluster_note_redirect(s, p, len); /* a watched one: see txn.c */
            c->head->redirected |= kind != CLUSTER_REPLY_OTHER;
        }
        return;
    }
    struct req *r = sconn_pop(c);
    histo_add(&server_counted(s)->lat_server, ev_now_us(sconn_px(c)->loop) - r->queued_us);
    health_success(s);
    sconn_stats(c)[SS_responses]++;
    sconn_stats(c)[SS_response_bytes] += (int64_t)len;
    req_complete(r, p, len, &c->ri);
}

/* The command a reply is parsed for: nothing while setting up, a subscription's
 * (its pushes classified) on a subscribed connection, else the oldest request's. */
static uint16_t sconn_parse_cmd(const struct sconn *c)
{
    if (c->swallow > 0) {
        return 0;
    }
    if (c->sub_cmd != 0) {
        return c->sub_cmd;
    }
    return c->head->skip > 0 ? 0 : c->head->cmd;
}

/* A push (RESP3 '>') on a connection no subscription uses answers no request:
 * redis sends one there when another client's CLIENT TRACKING names the
 * connection in REDIRECT. Taken for a reply, it would hand every later reply
 * on the connection to the client before. */
static bool sconn_stray_push(const struct sconn *c, const uint8_t *p)
{
    return c->sub_cmd == 0 && p[0] == '>' && c->server->pool->cp->redis;
}

/* Parse and hand out every complete response in c->in. Returns -1 if c failed. */
static int sconn_parse(struct sconn *c)
{
    const struct proto *pr = c->server->pool->proto;
    size_t pos = 0;
    while (pos < c->in.len) {
        const uint8_t *p = c->in.data + pos;
        size_t n = c->in.len - pos;
        bool stray = sconn_stray_push(c, p);
        if (c->swallow == 0 && c->head == NULL && c->sub_cmd == 0 && !stray) {
            sconn_fail(c, "unexpected data from server", SS_server_err);
            return -1;
        }
        if (c->need > n) {
            break;
        }
        int rc = pr->rsp_parse(p, n, stray ? 0 : sconn_parse_cmd(c), &c->ri);
        if (rc == PARSE_AGAIN) {
            c->need = c->ri.len; /* a big reply is not re-parsed on every read */
            break;
        }
        c->need = 0;
        if (rc == PARSE_ERROR) {
            char msg[200];
            snprintf(msg, sizeof(msg), "bad response from server: %s", c->ri.err);
            sconn_fail(c, msg, SS_server_err);
            return -1;
        }
        pos += c->ri.len;
        if (stray) {
            log_debug("server '%s': a push no request waits for, dropped", c->server->cs->name);
            continue;
        }
        if (c->ri.push == PUSH_MESSAGE && c->swallow == 0) {
            pubsub_message(c->owner, c->head, p, c->ri.len); /* a publish: nobody asked */
            continue;
        }
        if (c->swallow == 0 && c->head == NULL) {
            continue; /* a confirmation of nothing we wait for: an UNSUBSCRIBE's */
        }
        sconn_answer(c, p, c->ri.len);
        if (c->state == SCONN_CLOSED) {
            return -1; /* answering reached a limit that reset this connection */
        }
    }
    buf_consume(&c->in, pos);
    sconn_arm_timer(c);
    if (c->head == NULL && c->out_pos == c->out.len) {
        buf_reset(&c->out); /* all answered: what c kept of them is no longer needed */
        c->out_pos = 0;
        /* and a large reply's buffer goes now, not at the next request */
        sconn_buffers_trim(c, sconn_px(c)->mbuf_size);
    }
    return 0;
}

/* One read into c->in and the parse of what it completed: 1 when more may be
 * read at once (TLS holds decrypted bytes), 0 when done, -1 when c failed. */
static int sconn_read_once(struct sconn *c)
{
    struct proxy *px = sconn_px(c);
    size_t chunk = px->mbuf_size;
    if (c->need > c->in.len + chunk) {
        chunk = c->need - c->in.len; /* read a large reply in as few calls as possible */
    }
    if (buf_reserve(&c->in, chunk) != 0) {
        sconn_fail(c, "out of memory", SS_server_err);
        return -1;
    }
    size_t got = 0;
    int err = 0;
    int rc = stream_read(&c->st, c->in.data + c->in.len, c->in.cap - c->in.len, &got, &err);
    if (rc == STREAM_EOF) {
        sconn_lost(c, "Connection closed by server", SS_server_eof);
        return -1;
    }
    if (rc == STREAM_ERROR) {
        sconn_stream_lost(c, err);
        return -1;
    }
    if (rc == STREAM_AGAIN) {
        /* TLS: a read may wait for writability */
        ev_io_set(px->loop, &c->io, stream_mask(&c->st, !c->paused, c->out_pos < c->out.len));
        return 0;
    }
    c->in.len += got;
    proxy_note_read(px, got);
    if (sconn_parse(c) != 0) {
        return -1;
    }
    return stream_pending(&c->st) > 0 ? 1 : 0;
}

static void sconn_read(struct sconn *c)
{
    while (sconn_read_once(c) == 1) {
        /* bytes OpenSSL decrypted raise no event: read them now */
    }
}

/* A non-blocking connect finished: SO_ERROR says how, getpeername confirms it
 * really is connected (a stale event of a previous socket must not count). */
static int sconn_connected(struct sconn *c)
{
    int err = sock_error(c->st.fd);
    if (err != 0) {
        sconn_lost(c, strerror(err), SS_server_err);
        return -1;
    }
    struct sockaddr_storage ss;
    socklen_t len = sizeof(ss);
    if (getpeername(c->st.fd, (struct sockaddr *)&ss, &len) < 0) {
        return 0; /* still in progress */
    }
    if (sock_is_self(c->st.fd, (const struct sockaddr *)&ss, len)) {
        /* nothing listens there: refused, as the next try may well be */
        sock_set_reset_on_close(c->st.fd);
        sconn_lost(c, strerror(ECONNREFUSED), SS_server_err);
        return -1;
    }
    log_verb("connected to server '%s'", c->server->cs->name);
    hold_server_reached(c->server);
    if (sconn_tls_ctx(c) != NULL) {
        c->state = SCONN_HANDSHAKE;
        sconn_handshake(c);
        return 0;
    }
    c->state = SCONN_CONNECTED;
    sconn_ring(c);
    sconn_flush(c);
    return 0;
}

/* One step of the TLS handshake; done, the queued requests leave. A failure is
 * the server's: its requests are answered with the reason (a certificate that
 * does not verify, a server that does not speak TLS). */
static void sconn_handshake(struct sconn *c)
{
    int err = 0;
    int rc = stream_handshake(&c->st, &err);
    if (rc == STREAM_AGAIN) {
        ev_io_set(sconn_px(c)->loop, &c->io, stream_mask(&c->st, true, false));
        return;
    }
    if (rc != STREAM_OK) {
        char why[256], msg[320];
        snprintf(msg, sizeof(msg), "TLS handshake with server failed: %s",
                 stream_strerror(&c->st, err, why, sizeof(why)));
        sconn_fail(c, msg, SS_server_err);
        return;
    }
    c->state = SCONN_CONNECTED;
    log_info("server '%s': %s handshake done%s", c->server->cs->name, stream_tls_version(&c->st),
             stream_tls_resumed(&c->st) ? ", session resumed" : "");
    sconn_flush(c);
}

static void sconn_on_io(struct ev_loop *loop, struct ev_io *io, unsigned events)
{
    struct sconn *c = io->data;
    (void)loop;
    if (c->state == SCONN_CONNECTING) {
        if (sconn_connected(c) < 0 || c->state != SCONN_CONNECTED) {
            return;
        }
    } else if (c->state == SCONN_HANDSHAKE) {
        sconn_handshake(c);
        if (c->state != SCONN_CONNECTED) {
            return;
        }
        events |= EV_READ; /* data may have come with the last handshake message */
    }
    if (stream_can_read(&c->st, events)) {
        sconn_read(c);
    }
    if (c->state == SCONN_CONNECTED && stream_can_write(&c->st, events)) {
        sconn_flush(c);
    }
}
