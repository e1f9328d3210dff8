#include "proxy/server.h"

#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "net/sock.h"
#include "proto/proto.h"
#include "proxy/client.h"
#include "proxy/health.h"
#include "proxy/hold.h"
#include "proxy/pool.h"
#include "proxy/proxy.h"
#include "proxy/pubsub.h"
#include "proxy/replica.h"
#include "proxy/sconn.h"
#include "proxy/txn.h"

uint32_t server_auth_build(const struct server *s, struct buf *out)
{
    const struct conf_pool *cp = s->pool->cp;
    const uint8_t *argv[3] = {(const uint8_t *)"AUTH"};
    size_t lens[3] = {4};
    uint32_t n = 0;
    if (s->auth_form != SERVER_AUTH_WHOLE) {
        argv[1] = (const uint8_t *)cp->redis_auth_user;
        lens[1] = strlen(cp->redis_auth_user);
        argv[2] = (const uint8_t *)cp->redis_auth;
        lens[2] = strlen(cp->redis_auth);
        n += proto_redis.build(out, 3, argv, lens) == 0;
    }
    if (s->auth_form != SERVER_AUTH_USER) {
        argv[1] = (const uint8_t *)cp->redis_auth_whole;
        lens[1] = strlen(cp->redis_auth_whole);
        n += proto_redis.build(out, 2, argv, lens) == 0;
    }
    return n;
}

static void server_on_gate_timer(struct ev_loop *loop, struct ev_timer *t);
static void server_gate_lift(struct server *s);

int server_init(struct server *s, struct pool *p, const struct conf_server *cs, uint32_t idx)
{
    memset(s, 0, sizeof(*s));
    s->pool = p;
    s->cs = cs;
    s->idx = idx;
    ev_timer_init(&s->gate_timer, server_on_gate_timer, s);
    uint32_t want = p->cp->server_connections;
    uint32_t nconns = want < SERVER_CONNS_MAX ? want : SERVER_CONNS_MAX;
    s->conns = calloc(nconns, sizeof(*s->conns));
    if (s->conns == NULL) {
        return -1;
    }
    s->nconns = nconns;
    for (uint32_t i = 0; i < s->nconns; i++) {
        sconn_init(&s->conns[i], s);
        s->conns[i].shared = true;
    }
    if (p->mode == POOL_SENTINEL) {
        /* the sentinels will say where the group's master is */
        size_t n = strlen(cs->name) + 64;
        s->unknown_msg = malloc(n);
        if (s->unknown_msg == NULL) {
            return -1;
        }
        snprintf(s->unknown_msg, n, "master for group '%s' is not known yet", cs->name);
        s->addr.looking = true; /* until the sentinel client says otherwise */
    } else {
        s->addr.ss = cs->addr.sa;
        s->addr.len = cs->addr.salen;
        s->addr.known = true;
        sock_lookup_init(&s->lookup, cs->addr.host, s->addr.len, ev_now(p->px->loop));
    }
    return 0;
}

bool server_resolve(struct server *s, uint64_t now_ms)
{
    const struct conf_addr *a = &s->cs->addr;
    char was[128], now[128]; /* "[v6 address]:port" */
    int gai = 0;
    int rc = sock_lookup_again(&s->lookup, a->host, a->port, now_ms, &s->addr.ss, &s->addr.len, was,
                               sizeof(was), &gai);
    if (rc == SOCK_LOOKUP_FAILED) {
        log_warn("server '%s': '%s' does not resolve: %s%s", s->cs->name, a->host,
                 gai_strerror(gai), s->addr.len != 0 ? "; its last address is used" : "");
    } else if (rc == SOCK_LOOKUP_MOVED) {
        sock_addr_str((const struct sockaddr *)&s->addr.ss, s->addr.len, now, sizeof(now));
        log_notice("server '%s': '%s' resolves to %s (was %s): new connections go there",
                   s->cs->name, a->host, now, was);
    }
    return s->addr.len != 0;
}

static void server_conns_free(struct sconn *v, uint32_t n, const char *why)
{
    for (uint32_t i = 0; v != NULL && i < n; i++) {
        sconn_deinit(&v[i], why);
    }
    free(v);
}

void server_deinit(struct server *s)
{
    /* first: closing the connections must not hand requests back to it */
    hold_free(s, "proxy is shutting down");
    ev_timer_stop(s->pool->px->loop, &s->gate_timer);
    server_conns_free(s->conns, s->nconns, "proxy is shutting down");
    server_conns_free(s->conns3, s->nconns, "proxy is shutting down");
    s->conns = s->conns3 = NULL;
    s->nconns = 0;
    /* after the group's own connections: a replica's answers count into s */
    replica_set_free(s->replicas);
    s->replicas = NULL;
    free(s->unknown_msg);
    s->unknown_msg = NULL;
}

void server_adopt(struct server *to, struct server *from)
{
    server_conns_free(to->conns, to->nconns, "replaced");
    server_conns_free(to->conns3, to->nconns, "replaced");
    to->conns = from->conns;
    to->conns3 = from->conns3;
    to->nconns = from->nconns;
    for (uint32_t i = 0; i < to->nconns; i++) {
        to->conns[i].server = to;
        if (to->conns3 != NULL) {
            to->conns3[i].server = to;
        }
    }
    from->conns = from->conns3 = NULL;
    from->nconns = 0;
    from->heir = to;
    if (from->gates > 0) {
        server_gate_lift(to); /* what they held goes now: the heir has no gate */
    }
    if (from->addr.known) {
        to->addr = from->addr;
    }
    memcpy(to->gstats, from->gstats, sizeof(to->gstats));
    memcpy(to->stats, from->stats, sizeof(to->stats));
    to->lat_server = from->lat_server;
    to->auth_form = from->auth_form; /* the same redis_auth: reload_conn_settings_same */
    hold_adopt(to, from);            /* a failover in progress goes on in the new pool */
    /* the replicas go along: their requests in flight count in the gauges just copied */
    replica_set_free(to->replicas);
    to->replicas = from->replicas;
    from->replicas = NULL;
    replica_set_adopt(to);
    if (!to->pool->replica_reads) {
        replica_group_drop(to); /* the new pool reads from its masters */
    }
}

bool server_idle(const struct server *s)
{
    for (uint32_t i = 0; i < s->nconns; i++) {
        if (!sconn_idle(&s->conns[i]) || (s->conns3 != NULL && !sconn_idle(&s->conns3[i]))) {
            return false;
        }
    }
    return hold_idle(s) && replica_set_idle(s->replicas);
}

/* The RESP3 connections, made the first time a RESP3 client needs one: a
 * server speaking RESP2 to everyone else keeps its connections as they are. */
static struct sconn *server_conns3(struct server *s)
{
    if (s->conns3 == NULL) {
        s->conns3 = calloc(s->nconns, sizeof(*s->conns3));
        for (uint32_t i = 0; s->conns3 != NULL && i < s->nconns; i++) {
            sconn_init(&s->conns3[i], s);
            s->conns3[i].shared = true;
            s->conns3[i].resp = 3;
        }
    }
    return s->conns3;
}

struct sconn *server_conn_for(struct server *s, uint64_t client_id, int resp)
{
    struct sconn *v = resp == 3 ? server_conns3(s) : s->conns;
    if (v == NULL) {
        v = s->conns; /* out of memory: RESP2 it is, better than nothing */
    }
    /* one connection is the default: no 64-bit division on every request then */
    return s->nconns == 1 ? v : &v[client_id % s->nconns];
}

const char *server_strerror(const struct server *s, int err)
{
    return s->addr.known ? strerror(err) : s->unknown_msg;
}

bool server_addr_is(const struct server *s, const struct sockaddr *sa, socklen_t len)
{
    return s->addr.known && s->addr.len == len &&
           sock_addr_same((const struct sockaddr *)&s->addr.ss, sa, len);
}

bool server_move_addr(struct server *s, const struct sockaddr *sa, socklen_t len)
{
    if (len == 0 || len > sizeof(s->addr.ss) || server_addr_is(s, sa, len)) {
        return false;
    }
    if (s->addr.known) {
        s->gstats[SG_server_failover]++;
    }
    memcpy(&s->addr.ss, sa, len);
    s->addr.len = len;
    s->addr.known = true;
    /* the failures of the old address say nothing about the new one */
    health_reset(s);
    return true;
}

void server_reset_conns(struct server *s, const char *why)
{
    for (uint32_t i = 0; i < s->nconns; i++) {
        sconn_reset(&s->conns[i], why);
        if (s->conns3 != NULL) {
            sconn_reset(&s->conns3[i], why);
        }
    }
    for (struct client *c = s->pool->clients; c != NULL; c = c->next) {
        txn_master_moved(c, s, why);    /* the clients' own, of a WATCH */
        pubsub_master_moved(c, s, why); /* and of their subscriptions */
    }
}

bool server_set_addr(struct server *s, const struct sockaddr *sa, socklen_t len, const char *why)
{
    bool was_known = s->addr.known;
    if (!server_move_addr(s, sa, len)) {
        return false;
    }
    if (was_known) {
        /* requests sent to the old master must not wait for it: it may be gone or
         * a replica now, and writes there would be lost or refused */
        server_reset_conns(s, why);
    }
    if (s->pool->cp->preconnect) {
        server_connect_all(s);
    }
    return true;
}

void server_connect_all(struct server *s)
{
    for (uint32_t i = 0; i < s->nconns; i++) {
        sconn_ensure(&s->conns[i]);
    }
}

/* The shared connections write what they held, in the order they were
 * queued (the flush list). */
static void server_gate_lift(struct server *s)
{
    for (uint32_t i = 0; i < s->nconns; i++) {
        sconn_wake(&s->conns[i]);
        if (s->conns3 != NULL) {
            sconn_wake(&s->conns3[i]);
        }
    }
}

void server_gate_open(struct server *s)
{
    if (s->gates++ == 0) {
        /* a fourth of the pool's timeout at most: the requests held count
         * toward it (from their queueing, as twemproxy's do) */
        int64_t timeout = s->pool->cp->timeout_ms;
        uint64_t ms =
            timeout > 0 && timeout / 4 < SERVER_GATE_MS ? (uint64_t)timeout / 4 : SERVER_GATE_MS;
        s->gate_lapsed = false;
        ev_timer_start(s->pool->px->loop, &s->gate_timer, ms > 0 ? ms : 1);
    }
}

void server_gate_close(struct server *s)
{
    if (s->gates == 0 || --s->gates > 0) {
        return;
    }
    ev_timer_stop(s->pool->px->loop, &s->gate_timer);
    if (!s->gate_lapsed) {
        server_gate_lift(s);
    }
    s->gate_lapsed = false;
}

static void server_on_gate_timer(struct ev_loop *loop, struct ev_timer *t)
{
    struct server *s = t->data;
    (void)loop;
    log_info("server '%s': a client's own connection being set up was not answered in "
             "time: the other clients' requests go on without waiting for it",
             s->cs->name);
    s->gate_lapsed = true;
    server_gate_lift(s);
}
