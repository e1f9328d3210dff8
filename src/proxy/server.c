#include "proxy/server.h"

#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/instance.h"
#include "core/log.h"
#include "net/sock.h"
#include "proxy/pool.h"
#include "proxy/replica.h"
#include "proxy/req.h"

static void sconn_on_io(struct ev_loop *loop, struct ev_io *io, unsigned events);
static void sconn_on_timeout(struct ev_loop *loop, struct ev_timer *t);

static struct instance *sconn_inst(const struct sconn *c)
{
    return c->server->pool->inst;
}

int server_init(struct server *s, struct pool *p, const struct conf_server *cs, uint32_t idx)
{
    memset(s, 0, sizeof(*s));
    s->pool = p;
    s->cs = cs;
    s->idx = idx;
    s->nconns = p->cp->server_connections;
    s->conns = calloc(s->nconns, sizeof(*s->conns));
    if (s->conns == NULL) {
        return -1;
    }
    if (p->cp->nsentinels > 0) {
        /* the sentinels will say where the group's master is */
        size_t n = strlen(cs->name) + 64;
        s->unknown_msg = malloc(n);
        if (s->unknown_msg == NULL) {
            return -1;
        }
        snprintf(s->unknown_msg, n, "master for group '%s' is not known yet", cs->name);
    } else {
        s->addr.ss = cs->addr.sa;
        s->addr.len = cs->addr.salen;
        s->addr.known = true;
    }
    for (uint32_t i = 0; i < s->nconns; i++) {
        struct sconn *c = &s->conns[i];
        c->server = s;
        ev_io_init(&c->io, -1, sconn_on_io, c);
        ev_timer_init(&c->timer, sconn_on_timeout, c);
        rsp_info_init(&c->ri);
    }
    return 0;
}

void server_deinit(struct server *s)
{
    for (uint32_t i = 0; i < s->nconns; i++) {
        struct sconn *c = &s->conns[i];
        if (c->state != SCONN_CLOSED) {
            sconn_fail(c, "proxy is shutting down", SS_server_eof);
        }
        buf_free(&c->out);
        buf_free(&c->in);
        rsp_info_free(&c->ri);
    }
    free(s->conns);
    s->conns = NULL;
    /* after the group's own connections: a replica's answers count into s */
    replica_set_free(s->replicas);
    s->replicas = NULL;
    free(s->unknown_msg);
    s->unknown_msg = NULL;
}

void server_adopt(struct server *to, struct server *from)
{
    for (uint32_t i = 0; i < to->nconns; i++) {
        rsp_info_free(&to->conns[i].ri);
    }
    free(to->conns);
    to->conns = from->conns;
    to->nconns = from->nconns;
    for (uint32_t i = 0; i < to->nconns; i++) {
        to->conns[i].server = to;
    }
    from->conns = NULL;
    from->nconns = 0;
    if (from->addr.known) {
        to->addr = from->addr;
    }
    to->failovers = from->failovers;
    memcpy(to->stats, from->stats, sizeof(to->stats));
    to->lat_server = from->lat_server;
    /* the replicas go along: their requests in flight count in the gauges just copied */
    replica_set_free(to->replicas);
    to->replicas = from->replicas;
    from->replicas = NULL;
    replica_set_adopt(to);
}

struct server *server_counted(struct server *s)
{
    return s->owner != NULL ? s->owner : s;
}

/* The counters s updates (see server_counted). */
static int64_t *server_stats(struct server *s)
{
    return server_counted(s)->stats;
}

bool server_idle(const struct server *s)
{
    for (uint32_t i = 0; i < s->nconns; i++) {
        if (s->conns[i].head != NULL) {
            return false;
        }
    }
    return replica_set_idle(s->replicas);
}

struct sconn *server_conn_for(struct server *s, uint64_t client_id)
{
    return &s->conns[client_id % s->nconns];
}

static void sconn_mark_dirty(struct sconn *c)
{
    if (!c->dirty) {
        struct instance *in = sconn_inst(c);
        c->dirty = true;
        c->next_dirty = in->dirty_sconns;
        in->dirty_sconns = c;
    }
}

static void sconn_arm_timer(struct sconn *c)
{
    struct ev_loop *loop = sconn_inst(c)->loop;
    if (c->head != NULL && c->head->deadline_ms != 0) {
        ev_timer_start_at(loop, &c->timer, c->head->deadline_ms);
    } else {
        ev_timer_stop(loop, &c->timer);
    }
}

int sconn_ensure(struct sconn *c)
{
    if (c->state != SCONN_CLOSED) {
        return 0;
    }
    struct server *s = c->server;
    struct pool *p = s->pool;
    struct instance *in = p->inst;
    bool in_progress;
    if (!s->addr.known) {
        /* not a failure of the server: the caller answers with server_strerror() */
        errno = EHOSTUNREACH;
        return -1;
    }
    struct sockaddr_storage ss = s->addr.ss;
    socklen_t sslen = s->addr.len;
    /* a name that did not resolve at load time is tried again at each connect */
    int fd = -1;
    if (sslen > 0 || sock_resolve(s->cs->addr.host, s->cs->addr.port, &ss, &sslen) == 0) {
        fd = sock_connect((const struct sockaddr *)&ss, sslen, &in_progress);
    }
    if (fd < 0) {
        int err = errno;
        log_warn("connect to server '%s' failed: %s", s->cs->name, strerror(err));
        server_stats(s)[SS_server_err]++;
        server_failure(s);
        errno = err;
        return -1;
    }
    if (ss.ss_family != AF_UNIX) {
        sock_set_nodelay(fd);
    }
    if (p->cp->tcpkeepalive) {
        sock_set_keepalive(fd);
    }
    ev_io_init(&c->io, fd, sconn_on_io, c);
    c->state = in_progress ? SCONN_CONNECTING : SCONN_CONNECTED;
    ev_io_set(in->loop, &c->io, EV_READ | (in_progress ? EV_WRITE : 0));
    buf_reset(&c->out);
    buf_reset(&c->in);
    c->out_pos = 0;
    size_t before = c->out.len;
    const char *auth = p->cp->redis ? p->cp->redis_auth : NULL;
    c->swallow = (uint32_t)p->proto->conn_init(&c->out, auth, auth ? strlen(auth) : 0,
                                               p->cp->redis ? p->cp->redis_db : 0);
    c->wire_queued += c->out.len - before;
    server_stats(s)[SS_server_connections]++;
    in->curr_connections++;
    in->total_connections++;
    if (c->out.len > 0) {
        sconn_mark_dirty(c);
    }
    log_verb("connecting to server '%s' fd %d", s->cs->name, fd);
    return 0;
}

void sconn_push(struct sconn *c, struct req *r, size_t len)
{
    struct server *s = c->server;
    c->wire_queued += len;
    server_stats(s)[SS_requests]++;
    server_stats(s)[SS_request_bytes] += (int64_t)len;
    if (r != NULL) {
        int64_t timeout = s->pool->cp->timeout_ms;
        r->sconn = c;
        r->len = (uint32_t)len;
        r->wire_end = c->wire_queued;
        r->in_server = true;
        r->queued_us = ev_now_us(sconn_inst(c)->loop);
        r->deadline_ms = timeout > 0 ? ev_now(sconn_inst(c)->loop) + (uint64_t)timeout : 0;
        if (c->tail != NULL) {
            c->tail->snext = r;
        } else {
            c->head = r;
            sconn_arm_timer(c);
        }
        c->tail = r;
        if (c->unsent == NULL) {
            c->unsent = r;
        }
        server_stats(s)[SS_in_queue]++;
        server_stats(s)[SS_in_queue_bytes] += (int64_t)len;
    }
    sconn_mark_dirty(c);
}

/* Requests fully written move from the in_queue to the out_queue gauges. */
static void sconn_account_sent(struct sconn *c)
{
    struct server *s = c->server;
    while (c->unsent != NULL && c->unsent->wire_end <= c->wire_written) {
        struct req *r = c->unsent;
        r->sent = true;
        server_stats(s)[SS_in_queue]--;
        server_stats(s)[SS_in_queue_bytes] -= r->len;
        server_stats(s)[SS_out_queue]++;
        server_stats(s)[SS_out_queue_bytes] += r->len;
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

void sconn_flush(struct sconn *c)
{
    if (c->state != SCONN_CONNECTED) {
        return;
    }
    while (c->out_pos < c->out.len) {
        ssize_t n = write(c->io.fd, c->out.data + c->out_pos, c->out.len - c->out_pos);
        if (n > 0) {
            c->out_pos += (size_t)n;
            c->wire_written += (uint64_t)n;
            continue;
        }
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            break;
        }
        sconn_fail(c, strerror(errno), SS_server_err);
        return;
    }
    sconn_account_sent(c);
    struct ev_loop *loop = sconn_inst(c)->loop;
    if (c->out_pos == c->out.len) {
        buf_reset(&c->out);
        c->out_pos = 0;
        sconn_buffers_trim(c, sconn_inst(c)->mbuf_size);
        ev_io_set(loop, &c->io, EV_READ);
    } else {
        if (c->out_pos >= c->out.len / 2) {
            buf_consume(&c->out, c->out_pos); /* see client_flush: bound the tail growth */
            c->out_pos = 0;
        }
        ev_io_set(loop, &c->io, EV_READ | EV_WRITE);
    }
}

static struct req *sconn_pop(struct sconn *c)
{
    struct req *r = c->head;
    struct server *s = c->server;
    c->head = r->snext;
    if (c->head == NULL) {
        c->tail = NULL;
    }
    if (c->unsent == r) {
        c->unsent = r->snext;
        server_stats(s)[SS_in_queue]--;
        server_stats(s)[SS_in_queue_bytes] -= r->len;
    } else {
        server_stats(s)[SS_out_queue]--;
        server_stats(s)[SS_out_queue_bytes] -= r->len;
    }
    r->snext = NULL;
    r->in_server = false;
    return r;
}

/* Close c and answer every request waiting on it with msg. stat_field < 0
 * counts nothing (a failover is no fault of the connection). */
static void sconn_close(struct sconn *c, const char *msg, int stat_field, bool may_fail)
{
    struct server *s = c->server;
    struct instance *in = sconn_inst(c);
    bool had_work = c->head != NULL;
    if (c->state == SCONN_CLOSED) {
        return;
    }
    log_at(had_work ? LOG_WARN : LOG_INFO, "server '%s' connection closed: %s", s->cs->name, msg);
    ev_io_stop(in->loop, &c->io);
    close(c->io.fd);
    c->io.fd = -1;
    c->state = SCONN_CLOSED;
    if (stat_field >= 0) {
        server_stats(s)[stat_field]++;
    }
    server_stats(s)[SS_server_connections]--;
    in->curr_connections--;
    ev_timer_stop(in->loop, &c->timer);
    buf_reset(&c->out);
    buf_reset(&c->in);
    c->need = 0;
    c->out_pos = 0;
    c->swallow = 0;
    /* detach the queue first: answering a request may queue new work on c */
    struct req *r = c->head;
    while (r != NULL) {
        struct req *next = r->snext;
        sconn_pop(c);
        req_fail(r, msg);
        r = next;
    }
    c->unsent = NULL;
    /* an idle connection the server closed (its timeout) is no failure */
    if (may_fail && (had_work || stat_field != SS_server_eof)) {
        server_failure(s);
    }
}

void sconn_fail(struct sconn *c, const char *msg, int stat_field)
{
    sconn_close(c, msg, stat_field, true);
}

const char *server_strerror(const struct server *s, int err)
{
    return s->addr.known ? strerror(err) : s->unknown_msg;
}

static bool sockaddr_same(const struct server_addr *a, const struct sockaddr *sa, socklen_t len)
{
    if (a->len != len || a->ss.ss_family != sa->sa_family) {
        return false;
    }
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *x = (const void *)&a->ss, *y = (const void *)sa;
        return x->sin_port == y->sin_port && x->sin_addr.s_addr == y->sin_addr.s_addr;
    }
    if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *x = (const void *)&a->ss, *y = (const void *)sa;
        return x->sin6_port == y->sin6_port &&
               memcmp(&x->sin6_addr, &y->sin6_addr, sizeof(x->sin6_addr)) == 0 &&
               x->sin6_scope_id == y->sin6_scope_id;
    }
    return memcmp(&a->ss, sa, len) == 0;
}

bool server_addr_is(const struct server *s, const struct sockaddr *sa, socklen_t len)
{
    return s->addr.known && sockaddr_same(&s->addr, sa, len);
}

bool server_set_addr(struct server *s, const struct sockaddr *sa, socklen_t len, const char *why)
{
    if (len == 0 || len > sizeof(s->addr.ss) || server_addr_is(s, sa, len)) {
        return false;
    }
    bool was_known = s->addr.known;
    memcpy(&s->addr.ss, sa, len);
    s->addr.len = len;
    s->addr.known = true;
    if (was_known) {
        /* requests sent to the old master must not wait for it: it may be gone or
         * a replica now, and writes there would be lost or refused */
        for (uint32_t i = 0; i < s->nconns; i++) {
            if (s->conns[i].state != SCONN_CLOSED) {
                sconn_close(&s->conns[i], why, -1, false);
            }
        }
        s->failovers++;
    }
    /* the failures of the old address say nothing about the new one */
    s->failures = 0;
    if (s->ejected) {
        s->ejected = false;
        pool_rebuild(s->pool);
    }
    if (s->pool->cp->preconnect) {
        server_connect_all(s);
    }
    return true;
}

static void sconn_on_timeout(struct ev_loop *loop, struct ev_timer *t)
{
    struct sconn *c = t->data;
    (void)loop;
    sconn_fail(c, "Connection timed out", SS_server_timedout);
}

void server_failure(struct server *s)
{
    struct pool *p = s->pool;
    if (s->owner != NULL) {
        /* a sentinel group's replica: only it is left out, never its group */
        replica_endpoint_failed(s);
        return;
    }
    s->failures++;
    /* a replica of a master/replica pool holds no key of its own: taking it out
     * moves no data, so it goes whether or not auto_eject_hosts is set */
    bool ejectable = p->cp->auto_eject_hosts || replica_pool_is_split(p);
    if (ejectable && !s->ejected && s->failures >= p->cp->server_failure_limit) {
        pool_eject(p, s);
    }
}

/* Parse and hand out every complete response in c->in. Returns -1 if c failed. */
static int sconn_parse(struct sconn *c)
{
    struct server *s = c->server;
    const struct proto *pr = s->pool->proto;
    size_t pos = 0;
    while (pos < c->in.len) {
        const uint8_t *p = c->in.data + pos;
        size_t n = c->in.len - pos;
        if (c->swallow == 0 && c->head == NULL) {
            sconn_fail(c, "unexpected data from server", SS_server_err);
            return -1;
        }
        uint16_t cmd = c->swallow > 0 ? 0 : c->head->cmd;
        if (c->need > n) {
            break;
        }
        int rc = pr->rsp_parse(p, n, cmd, &c->ri);
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
        size_t len = c->ri.len;
        pos += len;
        if (c->swallow > 0) {
            c->swallow--;
            if (c->ri.is_error) {
                log_error("server '%s' refused connection set-up: %.*s", s->cs->name,
                          (int)(len > 2 ? len - 2 : len), (const char *)p);
            }
            continue;
        }
        struct req *r = sconn_pop(c);
        histo_add(&server_counted(s)->lat_server, ev_now_us(sconn_inst(c)->loop) - r->queued_us);
        s->failures = 0;
        server_stats(s)[SS_responses]++;
        server_stats(s)[SS_response_bytes] += (int64_t)len;
        req_complete(r, p, len, &c->ri);
    }
    buf_consume(&c->in, pos);
    sconn_arm_timer(c);
    return 0;
}

static void sconn_read(struct sconn *c)
{
    size_t chunk = sconn_inst(c)->mbuf_size;
    if (c->need > c->in.len + chunk) {
        chunk = c->need - c->in.len; /* read a large reply in as few calls as possible */
    }
    if (buf_reserve(&c->in, chunk) != 0) {
        sconn_fail(c, "out of memory", SS_server_err);
        return;
    }
    ssize_t n = read(c->io.fd, c->in.data + c->in.len, c->in.cap - c->in.len);
    if (n == 0) {
        sconn_fail(c, "Connection closed by server", SS_server_eof);
        return;
    }
    if (n < 0) {
        if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
            sconn_fail(c, strerror(errno), SS_server_err);
        }
        return;
    }
    c->in.len += (size_t)n;
    instance_note_read(sconn_inst(c), (size_t)n);
    sconn_parse(c);
}

/* A non-blocking connect finished: SO_ERROR says how, getpeername confirms it
 * really is connected (a stale event of a previous socket must not count). */
static int sconn_connected(struct sconn *c)
{
    int err = sock_error(c->io.fd);
    if (err != 0) {
        sconn_fail(c, strerror(err), SS_server_err);
        return -1;
    }
    struct sockaddr_storage ss;
    socklen_t len = sizeof(ss);
    if (getpeername(c->io.fd, (struct sockaddr *)&ss, &len) < 0) {
        return 0; /* still in progress */
    }
    c->state = SCONN_CONNECTED;
    log_verb("connected to server '%s'", c->server->cs->name);
    sconn_flush(c);
    return 0;
}

static void sconn_on_io(struct ev_loop *loop, struct ev_io *io, unsigned events)
{
    struct sconn *c = io->data;
    (void)loop;
    if (c->state == SCONN_CONNECTING) {
        if (sconn_connected(c) < 0 || c->state != SCONN_CONNECTED) {
            return;
        }
    }
    if (events & EV_READ) {
        sconn_read(c);
    }
    if ((events & EV_WRITE) && c->state == SCONN_CONNECTED) {
        sconn_flush(c);
    }
}

void server_connect_all(struct server *s)
{
    for (uint32_t i = 0; i < s->nconns; i++) {
        sconn_ensure(&s->conns[i]);
    }
}
