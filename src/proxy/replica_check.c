#include "proxy/replica_check.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "net/sock.h"
#include "proto/redis_info.h"
#include "proto/redis_wire.h"
#include "proxy/proxy.h"
#include "proxy/query_conn.h"
#include "proxy/server.h"

struct replica_check {
    struct pool *p;
    struct server *s; /* a static pool's replica, or a sentinel group's (hidden) */
    struct query_conn conn;
    struct ev_timer timer; /* the next question, or the answer's deadline */
    uint32_t skip;         /* replies to drop before INFO's (AUTH's) */
    bool asking;
    bool master; /* asks a static pool's master: its replid, never its reads */
    bool out;    /* no reads */
    bool warned; /* an answer not understood was logged */
    int why;     /* what the last answer said: enum redis_repl or an RC_ code below */
    char replid[REDIS_REPLID_LEN + 1];   /* the last answer's master_replid; "" unknown */
    char master_at[REDIS_MASTER_AT_MAX]; /* its master_host:port when last seen linked to
                                            the pool master's history; "" not yet */
};

/* Unreachable, connection lost, no answer in time: not a state of redis'. */
#define RC_NO_ANSWER (-1)
/* Linked, but its replication history is not the pool master's. */
#define RC_OTHER_MASTER (-2)
/* Its link has been down longer than replica_max_link_down. */
#define RC_STALE (-3)
/* It was pointed at another master (REPLICAOF) and has not its history yet. */
#define RC_REPOINTED (-4)

static struct ev_loop *rc_loop(const struct replica_check *rc)
{
    return rc->p->px->loop;
}

/* The replica takes reads or not from now on; the distribution follows. kind
 * is what said so (enum redis_repl or an RC_ code): a replica left out says
 * once more why when that changes (lost, then syncing, ...). */
static void rc_set(struct replica_check *rc, bool reads, int kind, const char *why)
{
    bool news = rc->why != kind;
    rc->why = kind;
    if (rc->out == !reads) {
        if (rc->out && news) {
            log_notice("pool '%s': replica '%s' still gets no read: %s", rc->p->cp->name,
                       rc->s->cs->name, why);
        }
        return;
    }
    rc->out = !reads;
    if (reads && rc->s->health.ejected) {
        /* ejected for failed requests: back in the distribution at its retry */
        uint64_t now = ev_now(rc_loop(rc));
        uint64_t at = rc->s->health.retry_at_ms;
        log_notice("pool '%s': replica '%s' takes reads again once its ejection ends (in %llu "
                   "ms): it is %s",
                   rc->p->cp->name, rc->s->cs->name, (unsigned long long)(at > now ? at - now : 0),
                   why);
    } else if (reads) {
        log_notice("pool '%s': replica '%s' takes reads again: it is %s", rc->p->cp->name,
                   rc->s->cs->name, why);
    } else {
        log_warn("pool '%s': replica '%s' gets no read: %s", rc->p->cp->name, rc->s->cs->name, why);
    }
    if (rc->s->owner == NULL && rc->p->mode == POOL_MASTER_REPLICA) {
        pool_rebuild(rc->p); /* a static replica is a member of the distribution */
    }
}

static void rc_next(struct replica_check *rc)
{
    ev_timer_start(rc_loop(rc), &rc->timer, rc->out ? REPLICA_CHECK_OUT_MS : REPLICA_CHECK_MS);
}

/* The connection failed, closed or stalled: the replica may be restarting. */
static void rc_lost(struct replica_check *rc, const char *why)
{
    char msg[400];
    query_conn_close(rc_loop(rc), &rc->conn);
    rc->asking = false;
    rc->replid[0] = '\0';
    if (rc->master) {
        rc_next(rc); /* unknown until it answers: its replicas are not compared */
        return;
    }
    snprintf(msg, sizeof(msg), "%s (asking it INFO replication)", why);
    rc_set(rc, false, RC_NO_ANSWER, msg);
    rc_next(rc);
}

/* AUTH password, or the login of redis_auth "user password" as the server's
 * own connections send it (server_auth_build). */
static uint32_t rc_queue_auth(struct replica_check *rc)
{
    const struct conf_pool *cp = rc->p->cp;
    if (cp->redis_auth_user != NULL) {
        return server_auth_build(rc->s, &rc->conn.out);
    }
    const uint8_t *argv[2] = {(const uint8_t *)"AUTH", (const uint8_t *)cp->redis_auth};
    size_t lens[2] = {4, strlen(cp->redis_auth)};
    return proto_redis.build(&rc->conn.out, 2, argv, lens) == 0 ? 1 : 0;
}

/* The login (with a password), then a name the replica's CLIENT LIST shows (an
 * error, from an ACL user that may not name itself, is dropped like the rest);
 * the number of replies they add. */
static uint32_t rc_queue_hello(struct replica_check *rc)
{
    const uint8_t *name[3] = {(const uint8_t *)"CLIENT", (const uint8_t *)"SETNAME",
                              (const uint8_t *)REPLICA_CHECK_NAME};
    size_t name_lens[3] = {6, 7, sizeof(REPLICA_CHECK_NAME) - 1};
    const struct conf_pool *cp = rc->p->cp;
    uint32_t n = 0;
    if (cp->redis_auth != NULL) {
        n += rc_queue_auth(rc);
    }
    return n + (proto_redis.build(&rc->conn.out, 3, name, name_lens) == 0 ? 1 : 0);
}

static void rc_ask(struct replica_check *rc)
{
    const struct server *s = rc->s;
    if (rc->conn.state == QUERY_CONN_CLOSED) {
        struct sockaddr_storage ss = s->addr.ss;
        socklen_t len = s->addr.len;
        /* a name that did not resolve at load time is tried again now */
        if (len == 0 && sock_resolve(s->cs->addr.host, s->cs->addr.port, 0, &ss, &len) != 0) {
            rc_lost(rc, "its address does not resolve");
            return;
        }
        if (query_conn_open(rc_loop(rc), &rc->conn, (const struct sockaddr *)&ss, len) != 0) {
            rc_lost(rc, rc->conn.err);
            return;
        }
        rc->skip = rc_queue_hello(rc);
    }
    const uint8_t *argv[2] = {(const uint8_t *)"INFO", (const uint8_t *)"replication"};
    size_t lens[2] = {4, 11};
    if (proto_redis.build(&rc->conn.out, 2, argv, lens) != 0) {
        rc_lost(rc, "out of memory");
        return;
    }
    rc->asking = true;
    ev_timer_start(rc_loop(rc), &rc->timer, REPLICA_CHECK_WAIT_MS);
    if (query_conn_flush(rc_loop(rc), &rc->conn) != 0) {
        rc_lost(rc, rc->conn.err);
    }
}

/* An answer we cannot read says nothing against the replica: it keeps its
 * reads (as before this check), and the log says why once. */
static void rc_not_understood(struct replica_check *rc, const char *what)
{
    rc->replid[0] = '\0';
    if (rc->master) {
        return; /* the replicas' checks say it, if they cannot read theirs either */
    }
    if (!rc->warned) {
        rc->warned = true;
        log_warn("pool '%s': cannot tell whether replica '%s' has its master's data (INFO "
                 "replication %s): it takes reads",
                 rc->p->cp->name, rc->s->cs->name, what);
    }
    rc_set(rc, true, REDIS_REPL_UNKNOWN, "answering again");
}

/* The check of a static pool's master, for one of its replicas; NULL for a
 * sentinel group's replica, or when the pool has no checks. */
static const struct replica_check *rc_master_check(const struct replica_check *rc)
{
    const struct pool *p = rc->p;
    return rc->s->owner == NULL && p->checks != NULL ? p->checks[p->cp->master] : NULL;
}

/* A static pool's replica that says it is linked, but to another replication
 * history than the pool's master's (both named theirs): a replica of another
 * shard's master, or of an old master left running after a promotion. Its data
 * is not this master's. Whether so, and why in msg. */
static bool rc_other_master(const struct replica_check *rc, const struct redis_repl_info *info,
                            char *msg, size_t size)
{
    const struct pool *p = rc->p;
    const struct replica_check *m = rc_master_check(rc);
    if (m == NULL || m->replid[0] == '\0' || info->replid[0] == '\0' ||
        strcmp(m->replid, info->replid) == 0) {
        return false;
    }
    snprintf(msg, size,
             "it replicates another master than '%s' (its master_replid %s, the master's %s)",
             p->servers[p->cp->master].cs->name, info->replid, m->replid);
    return true;
}

/* A static pool's replica that names another master than when it was last
 * seen linked to the pool master's history: REPLICAOF pointed it elsewhere.
 * Until its full sync with that master (seconds later) it still has its old
 * data and replid, then the other master's: it leaves the reads at once. The
 * address is compared with the replica's own words of then, not with the
 * pool's: it may name the master otherwise (a hostname, a NAT address). */
static bool rc_repointed(struct replica_check *rc, const struct redis_repl_info *info, char *msg,
                         size_t size)
{
    const struct replica_check *m = rc_master_check(rc);
    if (rc->p->mode != POOL_MASTER_REPLICA || m == NULL) {
        return false; /* a shard's or a group's replica follows its failovers */
    }
    bool same_history = m->replid[0] != '\0' && strcmp(m->replid, info->replid) == 0;
    if (info->state == REDIS_REPL_LINKED && same_history) {
        memcpy(rc->master_at, info->master_at, sizeof(rc->master_at));
        return false;
    }
    if (rc->master_at[0] == '\0' || info->master_at[0] == '\0' ||
        strcmp(rc->master_at, info->master_at) == 0) {
        return false;
    }
    snprintf(msg, size, "it was pointed at another master (%s, not %s)", info->master_at,
             rc->master_at);
    return true;
}

/* A replica (a static pool's, a cluster shard's) whose link to its master has
 * been down for longer than the pool lets a replica serve the data of then
 * (replica_max_link_down; redis counts whole seconds). Whether so, and why in
 * msg. */
static bool rc_too_stale(const struct replica_check *rc, const struct redis_repl_info *info,
                         char *msg, size_t size)
{
    int64_t max_ms = rc->p->cp->replica_max_link_down_ms;
    if (max_ms < 0 || info->down_s * 1000 < max_ms) { /* a sentinel pool cannot set it */
        return false;
    }
    snprintf(msg, size,
             "its link to its master has been down for %lld s (replica_max_link_down: %lld ms)",
             (long long)info->down_s, (long long)max_ms);
    return true;
}

static void rc_understood(struct replica_check *rc, const struct redis_repl_info *info)
{
    char msg[2 * REDIS_MASTER_AT_MAX + 64];
    memcpy(rc->replid, info->replid, sizeof(rc->replid));
    if (rc->master) {
        return;
    }
    enum redis_repl v = info->state;
    bool reads = v == REDIS_REPL_LINKED || v == REDIS_REPL_LINK_LOST;
    if (v == REDIS_REPL_UNKNOWN) {
        rc_not_understood(rc, "says no replication state known here");
    } else if (reads && rc_other_master(rc, info, msg, sizeof(msg))) {
        rc_set(rc, false, RC_OTHER_MASTER, msg);
    } else if (rc_repointed(rc, info, msg, sizeof(msg))) {
        rc_set(rc, false, RC_REPOINTED, msg);
    } else if (v == REDIS_REPL_LINK_LOST && rc_too_stale(rc, info, msg, sizeof(msg))) {
        rc_set(rc, false, RC_STALE, msg);
    } else {
        rc_set(rc, reads, (int)v, redis_repl_name(v));
    }
}

static void rc_answer(struct replica_check *rc, const uint8_t *p)
{
    const struct rsp_info *ri = &rc->conn.ri;
    struct span text;
    rc->asking = false;
    ev_timer_stop(rc_loop(rc), &rc->timer);
    if (ri->is_error) {
        char what[160];
        size_t n = ri->len > 2 ? ri->len - 2 : 0;
        snprintf(what, sizeof(what), "answered %.*s", (int)(n > 120 ? 120 : n), (const char *)p);
        rc_not_understood(rc, what);
    } else if (ri->type != '$' ||
               !redis_wire_elem_str(p, (struct span){0, (uint32_t)ri->len}, &text)) {
        rc_not_understood(rc, "answered something other than text");
    } else {
        struct redis_repl_info info;
        redis_info_parse(p + text.off, text.len, &info);
        rc_understood(rc, &info);
    }
    rc_next(rc);
}

static void rc_on_io(struct ev_loop *loop, struct ev_io *io, unsigned events)
{
    struct replica_check *rc = io->data;
    if (query_conn_io(loop, &rc->conn, events) != 0) {
        rc_lost(rc, rc->conn.err);
        return;
    }
    const uint8_t *p;
    int got;
    while ((got = query_conn_next(&rc->conn, &p)) == 1) {
        if (rc->skip > 0) {
            rc->skip--; /* AUTH's, SETNAME's: a refused login shows again in INFO's answer */
        } else if (!rc->asking) {
            rc_lost(rc, "an answer to no question");
            return;
        } else {
            rc_answer(rc, p);
        }
    }
    if (got < 0) {
        rc_lost(rc, rc->conn.err);
    }
}

static void rc_on_timer(struct ev_loop *loop, struct ev_timer *t)
{
    struct replica_check *rc = t->data;
    (void)loop;
    if (rc->asking) {
        char why[64];
        snprintf(why, sizeof(why), "no answer within %d ms", REPLICA_CHECK_WAIT_MS);
        rc_lost(rc, why);
        return;
    }
    rc_ask(rc);
}

static struct replica_check *rc_new(struct pool *p, struct server *s, bool master)
{
    struct replica_check *rc = calloc(1, sizeof(*rc));
    if (rc == NULL) {
        return NULL;
    }
    rc->p = p;
    rc->s = s;
    rc->master = master;
    query_conn_init(&rc->conn, rc_on_io, rc);
    query_conn_tls(&rc->conn, p->cp->tls.ctx, p->cp->tls.server_name);
    ev_timer_init(&rc->timer, rc_on_timer, rc);
    ev_timer_start(p->px->loop, &rc->timer, 0);
    return rc;
}

struct replica_check *replica_check_new(struct pool *p, struct server *s)
{
    return rc_new(p, s, false);
}

void replica_check_free(struct replica_check *rc)
{
    if (rc == NULL) {
        return;
    }
    ev_timer_stop(rc_loop(rc), &rc->timer);
    query_conn_free(rc_loop(rc), &rc->conn);
    free(rc);
}

bool replica_check_ok(const struct replica_check *rc)
{
    return rc == NULL || !rc->out;
}

void replica_check_moved(struct replica_check *rc, struct pool *p)
{
    if (rc == NULL) {
        return;
    }
    /* the connection's TLS context (and session) were the old generation's */
    query_conn_free(rc_loop(rc), &rc->conn);
    query_conn_init(&rc->conn, rc_on_io, rc);
    rc->asking = false;
    rc->p = p;
    query_conn_tls(&rc->conn, p->cp->tls.ctx, p->cp->tls.server_name);
    ev_timer_start(p->px->loop, &rc->timer, 0);
}

int replica_check_start(struct pool *p)
{
    const struct conf_pool *cp = p->cp;
    if (p->mode != POOL_MASTER_REPLICA || cp->read_from == READ_FROM_MASTER || !cp->redis) {
        return 0;
    }
    p->checks = calloc(p->nservers, sizeof(*p->checks));
    if (p->checks == NULL) {
        return -1;
    }
    /* the master too, for its replid: a replica linked elsewhere is told by it */
    for (uint32_t i = 0; i < p->nservers; i++) {
        if ((p->checks[i] = rc_new(p, &p->servers[i], i == cp->master)) == NULL) {
            return -1; /* pool_destroy frees the others */
        }
    }
    return 0;
}

void replica_check_stop(struct pool *p)
{
    if (p->checks == NULL) {
        return;
    }
    for (uint32_t i = 0; i < p->nservers; i++) {
        replica_check_free(p->checks[i]);
    }
    free(p->checks);
    p->checks = NULL;
}

void replica_check_inherit(struct pool *np, uint32_t i, const struct pool *op, uint32_t j)
{
    if (np->checks == NULL || op->checks == NULL || np->checks[i] == NULL ||
        op->checks[j] == NULL) {
        return;
    }
    if (np->checks[i]->master != op->checks[j]->master) {
        return; /* made master, or replica: what its check said was of the other role */
    }
    np->checks[i]->out = op->checks[j]->out;
    np->checks[i]->why = op->checks[j]->why;
    np->checks[i]->warned = op->checks[j]->warned;
    memcpy(np->checks[i]->replid, op->checks[j]->replid, sizeof(np->checks[i]->replid));
}

bool replica_check_reads(const struct pool *p, uint32_t i)
{
    return p->checks == NULL || replica_check_ok(p->checks[i]);
}
