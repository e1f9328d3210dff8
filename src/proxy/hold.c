#include "proxy/hold.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "net/sock.h"
#include "proto/redis_cmd.h"
#include "proxy/client.h"
#include "proxy/cluster.h"
#include "proxy/cqueue.h"
#include "proxy/pool.h"
#include "proxy/proxy.h"
#include "proxy/req.h"
#include "proxy/sconn.h"
#include "proxy/server.h"

/* How long the requests in flight to the old master may take to be answered
 * once the new one is known: the sentinels demote the old master (and kill
 * its clients) tens of ms after announcing the switch. */
#define HOLD_DRAIN_MS 100
/* How often a switching group looks whether the old master has answered. */
#define HOLD_POLL_MS 1
/* How often a server (a group's master) held for because we could not reach
 * it is tried again: a restarted redis gets what waited within this. */
#define HOLD_RETRY_MS 50
/* WAIT 1 <ms> on the old master's connections when a replica is promoted:
 * every write it acknowledged on that connection is on a replica by then. */
#define HOLD_WAIT_MS "100"

struct hold_entry {
    struct hold_entry *next;
    struct req *r;      /* NULL: a request with no reply (memcached's noreply) */
    uint64_t seq;       /* a cluster pool's: the request's place among its client's */
    uint64_t client_id; /* the connection it goes to (server_conn_for) */
    uint8_t resp;       /* ... and the protocol that connection speaks */
    uint64_t since_us;
    uint32_t len;
    uint8_t bytes[];
};

/* Client id -> requests it has held here: open addressing, linear probing. */
struct hold_clients {
    uint64_t *key; /* id + 1; 0: empty */
    uint32_t *count;
    uint32_t cap; /* a power of two, or 0 */
    uint32_t n;
};

struct hold {
    struct server *g;  /* the group (a reload's adopt moves the hold); NULL: a cluster pool's */
    struct pool *pool; /* g's pool, or the cluster pool's */
    int64_t *cstats;   /* a cluster pool's counters (SC_*) */
    struct hold_entry *head, *tail;
    uint32_t n;
    size_t bytes;
    bool promoting; /* a replica is being promoted: nothing held goes to the old master */
    bool down;      /* the master cannot be reached */
    bool refused;   /* ... we saw it fail ourselves (not only the sentinels) */
    bool switching; /* the new master is known: the old one finishes what it has */
    bool finding;   /* no master known yet: every request waits for the first */
    uint64_t began_us;
    struct sockaddr_storage old; /* the master when it began (logs) */
    socklen_t old_len;
    struct ev_timer expire; /* failover_hold after it began */
    struct ev_timer drain;  /* switching: looks at the old master's connections */
    struct ev_timer retry;  /* DOWN that we saw: tries the server again */
    bool probing;           /* ... and a PING asks whether it serves */
    bool reported;          /* DOWN: the sentinels said so (not only our refusal) */
    uint64_t drain_until_ms;
    uint32_t waits, waits_short; /* WAITs in flight; answered with no replica */
    struct hold_clients clients;
};

static struct ev_loop *hold_loop(const struct hold *h)
{
    return h->pool->px->loop;
}

static bool hold_active(const struct hold *h)
{
    return h != NULL && (h->promoting || h->down || h->switching || h->finding);
}

/* ------------------------------------------------------------ client map */

static uint32_t hc_home(const struct hold_clients *m, uint64_t key)
{
    return (uint32_t)((key * 0x9e3779b97f4a7c15ull) >> 32) & (m->cap - 1);
}

static int64_t hc_find(const struct hold_clients *m, uint64_t id)
{
    for (uint32_t i = m->cap ? hc_home(m, id + 1) : 0; m->cap && m->key[i] != 0;
         i = (i + 1) & (m->cap - 1)) {
        if (m->key[i] == id + 1) {
            return i;
        }
    }
    return -1;
}

static void hc_put(struct hold_clients *m, uint64_t key, uint32_t count)
{
    uint32_t i = hc_home(m, key);
    while (m->key[i] != 0) {
        i = (i + 1) & (m->cap - 1);
    }
    m->key[i] = key;
    m->count[i] = count;
}

static int hc_grow(struct hold_clients *m)
{
    struct hold_clients old = *m;
    m->cap = old.cap ? old.cap * 2 : 16;
    m->key = calloc(m->cap, sizeof(*m->key));
    m->count = calloc(m->cap, sizeof(*m->count));
    if (m->key == NULL || m->count == NULL) {
        free(m->key);
        free(m->count);
        *m = old;
        return -1;
    }
    for (uint32_t i = 0; i < old.cap; i++) {
        if (old.key[i] != 0) {
            hc_put(m, old.key[i], old.count[i]);
        }
    }
    free(old.key);
    free(old.count);
    return 0;
}

static void hc_add(struct hold_clients *m, uint64_t id)
{
    int64_t i = hc_find(m, id);
    if (i >= 0) {
        m->count[i]++;
        return;
    }
    if ((m->n + 1) * 4 > m->cap * 3 && hc_grow(m) != 0) {
        log_error("out of memory noting a held request");
        abort(); /* a client reading around its own held write is worse than stopping */
    }
    hc_put(m, id + 1, 1);
    m->n++;
}

/* One held request of id left; the slot goes once it has none (backward
 * shift: later keys of the same run move up, so finding stays correct). */
static void hc_del(struct hold_clients *m, uint64_t id)
{
    int64_t at = hc_find(m, id);
    if (at < 0 || --m->count[at] > 0) {
        return;
    }
    uint32_t i = (uint32_t)at, mask = m->cap - 1;
    m->key[i] = 0;
    m->n--;
    for (uint32_t j = (i + 1) & mask; m->key[j] != 0; j = (j + 1) & mask) {
        uint32_t k = hc_home(m, m->key[j]);
        /* j's home is cyclically outside (i, j]: it may move to i */
        if ((i <= j) ? (k <= i || k > j) : (k <= i && k > j)) {
            m->key[i] = m->key[j];
            m->count[i] = m->count[j];
            m->key[j] = 0;
            i = j;
        }
    }
}

/* ------------------------------------------------------------ entries */

static void hold_on_expire(struct ev_loop *loop, struct ev_timer *t);
static void hold_on_drain(struct ev_loop *loop, struct ev_timer *t);
static void hold_on_retry(struct ev_loop *loop, struct ev_timer *t);
static void hold_switch_finish(struct hold *h, const char *why);

static struct hold *hold_get(struct server *g)
{
    if (g->hold == NULL) {
        struct hold *h = calloc(1, sizeof(*h));
        if (h == NULL) {
            return NULL;
        }
        h->g = g;
        h->pool = g->pool;
        ev_timer_init(&h->expire, hold_on_expire, h);
        ev_timer_init(&h->drain, hold_on_drain, h);
        ev_timer_init(&h->retry, hold_on_retry, h);
        g->hold = h;
    }
    return g->hold;
}

static struct hold_entry *hold_entry_new(struct hold *h, struct req *r, const struct client *c,
                                         const uint8_t *p, size_t len)
{
    struct hold_entry *e = malloc(sizeof(*e) + len);
    if (e == NULL) {
        log_error("out of memory holding a request");
        abort(); /* a request lost silently is worse than stopping */
    }
    e->next = NULL;
    e->r = r;
    e->client_id = c->id;
    e->resp = (uint8_t)c->lc.resp;
    e->since_us = ev_now_us(hold_loop(h));
    e->len = (uint32_t)len;
    memcpy(e->bytes, p, len);
    if (r != NULL) {
        r->held = true;
    }
    h->n++;
    h->bytes += len;
    hc_add(&h->clients, c->id);
    h->g->gstats[SG_failover_held]++;
    return e;
}

static void hold_push(struct hold *h, struct req *r, const struct client *c, const uint8_t *p,
                      size_t len)
{
    struct hold_entry *e = hold_entry_new(h, r, c, p, len);
    if (h->tail != NULL) {
        h->tail->next = e;
    } else {
        h->head = e;
    }
    h->tail = e;
}

/* The oldest held request, off the hold; its time held counts in the stats. */
static struct hold_entry *hold_pop(struct hold *h)
{
    struct hold_entry *e = h->head;
    if (e == NULL) {
        return NULL;
    }
    h->head = e->next;
    if (h->head == NULL) {
        h->tail = NULL;
    }
    h->n--;
    h->bytes -= e->len;
    hc_del(&h->clients, e->client_id);
    if (e->r != NULL) {
        e->r->held = false;
    }
    int64_t us = (int64_t)(ev_now_us(hold_loop(h)) - e->since_us);
    int64_t *gs = h->g->gstats;
    gs[SG_failover_hold_us] = us > gs[SG_failover_hold_us] ? us : gs[SG_failover_hold_us];
    return e;
}

/* The error a held request gets instead of its reply (one with no reply is
 * dropped: its client reads none, even then). */
static void hold_entry_fail(struct hold *h, struct hold_entry *e, const char *why)
{
    struct server *g = h->g;
    g->gstats[SG_failover_expired]++;
    if (e->r != NULL) {
        req_fail(e->r, why);
    }
    free(e);
}

/* ------------------------------------------------------------ the end of a hold */

static const char *hold_addr(const struct sockaddr_storage *ss, socklen_t len, char *buf,
                             size_t cap)
{
    return sock_addr_str((const struct sockaddr *)ss, len, buf, cap);
}

static uint64_t hold_age_ms(const struct hold *h)
{
    return (ev_now_us(hold_loop(h)) - h->began_us) / 1000;
}

/* Back to idle before what is held is handled: nothing handled then is held
 * again (sending one may close a connection, which would take back what it
 * never wrote). */
static void hold_stop(struct hold *h)
{
    h->promoting = h->down = h->refused = h->switching = h->finding = false;
    ev_timer_stop(hold_loop(h), &h->expire);
    ev_timer_stop(hold_loop(h), &h->drain);
    ev_timer_stop(hold_loop(h), &h->retry);
    h->probing = false; /* (a PING still out may yet release a later hold: it is back) */
    h->reported = false;
}

/* A pool without sentinels: g is a server held through its restart, with no
 * failover to wait for (failover_hold_on_crash). */
static bool hold_restart(const struct hold *h)
{
    return h->pool->mode != POOL_SENTINEL;
}

/* What g is called in the logs. */
static const char *hold_kind(const struct hold *h)
{
    return hold_restart(h) ? "server" : "group";
}

/* Which of g's connections e goes to, as server_conn_for picks it: RESP2 ones
 * first, then RESP3. */
static size_t hold_conn_slot(const struct server *g, const struct hold_entry *e)
{
    return (e->resp == 3 ? g->nconns : 0) + e->client_id % g->nconns;
}

/* The bytes held for each of g's connections (by hold_conn_slot). NULL when
 * out of memory (then buffers grow as they always do). */
static size_t *hold_bytes_per_conn(const struct hold *h)
{
    size_t *v = calloc(2 * (size_t)h->g->nconns, sizeof(*v));
    for (const struct hold_entry *e = h->head; v != NULL && e != NULL; e = e->next) {
        v[hold_conn_slot(h->g, e)] += e->len;
    }
    return v;
}

/* Everything held goes to g's master in use, in the order it came. Each
 * connection's output buffer grows once, to what it is given: grown request by
 * request it would round up (by up to 1 MB), and the bytes that fitted in the
 * buffer limit while held could then pass it, and the connection with all of
 * them would be reset (memlimit.c). */
static void hold_release(struct hold *h, const char *what)
{
    struct server *g = h->g;
    char to[96];
    uint32_t n = h->n, sent = 0, failed = 0;
    size_t *expect = hold_bytes_per_conn(h);
    hold_stop(h);
    log_notice("pool '%s': %s '%s': %s after %llu ms: %u held requests go to %s", g->pool->cp->name,
               hold_kind(h), g->cs->name, what, (unsigned long long)hold_age_ms(h), n,
               hold_addr(&g->addr.ss, g->addr.len, to, sizeof(to)));
    struct hold_entry *e;
    while ((e = hold_pop(h)) != NULL) {
        struct sconn *c = server_conn_for(g, e->client_id, e->resp);
        int err = sconn_ensure(c);
        if (err != 0) {
            failed++;
            hold_entry_fail(h, e, server_strerror(g, err));
            continue;
        }
        size_t *want = expect != NULL ? &expect[hold_conn_slot(g, e)] : NULL;
        if (want != NULL && *want > 0) {
            (void)buf_reserve_exact(sconn_out(c), *want); /* failing, sconn_send says it */
            *want = 0;
        }
        g->gstats[SG_failover_released]++;
        sent++;
        sconn_send(c, e->r, e->bytes, e->len);
        free(e);
    }
    free(expect);
    if (failed > 0) {
        log_warn("pool '%s': %s '%s': %u held requests could not be sent (%u were)",
                 g->pool->cp->name, hold_kind(h), g->cs->name, failed, sent);
    }
}

static void hold_fail_all(struct hold *h, const char *why)
{
    hold_stop(h);
    struct hold_entry *e;
    while ((e = hold_pop(h)) != NULL) {
        hold_entry_fail(h, e, why);
    }
}

static void hold_on_expire(struct ev_loop *loop, struct ev_timer *t)
{
    struct hold *h = t->data;
    struct server *g = h->g;
    char msg[200], old[96];
    (void)loop;
    if (h->finding) {
        log_warn("pool '%s': group '%s': no master known within failover_hold (%lld ms): %u "
                 "held requests answered with an error",
                 g->pool->cp->name, g->cs->name, (long long)g->pool->cp->failover_hold_ms, h->n);
        g->addr.looking = false; /* later requests fail at once, as after the look */
        hold_fail_all(h, g->unknown_msg);
        return;
    }
    if (h->switching) {
        hold_switch_finish(h, "master switched (failover)"); /* the new master is known */
        return;
    }
    if (hold_restart(h)) {
        snprintf(msg, sizeof(msg), "server '%s' unreachable for failover_hold (%lld ms)",
                 g->cs->name, (long long)g->pool->cp->failover_hold_ms);
        log_warn("pool '%s': server '%s' unreachable for failover_hold (%lld ms): %u held "
                 "requests answered with an error",
                 g->pool->cp->name, g->cs->name, (long long)g->pool->cp->failover_hold_ms, h->n);
        hold_fail_all(h, msg);
        return;
    }
    if (!h->promoting && !h->refused) {
        /* only the sentinels said it was down, and no failover came: try it */
        hold_release(h, "no failover within failover_hold");
        return;
    }
    /* a master we could not reach is not tried again here: a refusal seen
     * again would start another hold, and a request would wait forever */
    snprintf(msg, sizeof(msg),
             h->promoting ? "failover of group '%s' still in progress after failover_hold (%lld ms)"
                          : "master of group '%s' unreachable and no failover within "
                            "failover_hold (%lld ms)",
             g->cs->name, (long long)g->pool->cp->failover_hold_ms);
    log_warn("pool '%s': group '%s': no new master within failover_hold (%lld ms): %u held "
             "requests answered with an error (the old master %s %s)",
             g->pool->cp->name, g->cs->name, (long long)g->pool->cp->failover_hold_ms, h->n,
             hold_addr(&h->old, h->old_len, old, sizeof(old)),
             h->promoting ? "may be demoted any moment" : "is unreachable");
    hold_fail_all(h, msg);
}

/* ------------------------------------------------------------ switching */

/* A connection of g still waits for answers from the old master. */
static bool hold_old_busy(const struct server *g)
{
    for (uint32_t i = 0; i < g->nconns; i++) {
        if (g->conns[i].head != NULL || (g->conns3 != NULL && g->conns3[i].head != NULL)) {
            return true;
        }
    }
    return false;
}

static void hold_switch_finish(struct hold *h, const char *why)
{
    struct server *g = h->g;
    char from[96], what[160];
    /* what the old master still had is answered with why: its outcome is unknown */
    server_reset_conns(g, why);
    snprintf(what, sizeof(what), "master switched from %s",
             hold_addr(&h->old, h->old_len, from, sizeof(from)));
    hold_release(h, what);
    if (g->pool->cp->preconnect) {
        server_connect_all(g);
    }
}

static void hold_on_drain(struct ev_loop *loop, struct ev_timer *t)
{
    struct hold *h = t->data;
    if (hold_old_busy(h->g) && ev_now(loop) < h->drain_until_ms) {
        ev_timer_start(loop, &h->drain, HOLD_POLL_MS);
        return;
    }
    hold_switch_finish(h, "master switched (failover)");
}

bool hold_switch(struct server *g, const struct sockaddr *sa, socklen_t len, const char *why,
                 bool leaving)
{
    struct hold *h = g->hold;
    if (!hold_active(h)) {
        if (!server_set_addr(g, sa, len, why)) {
            return false;
        }
        if (leaving) {
            hold_begin(g, false);
        }
        return true;
    }
    if (!server_move_addr(g, sa, len)) {
        return false; /* the master in use confirmed: the failover goes on */
    }
    if (h->finding && leaving) {
        hold_begin(g, false); /* what waited for a master waits on, for the next one */
        return true;
    }
    if (h->finding) {
        hold_release(h, "master found");
        if (g->pool->cp->preconnect) {
            server_connect_all(g);
        }
        return true;
    }
    if (h->switching) {
        return true; /* a newer master while draining: the drain goes on */
    }
    h->switching = true;
    if (h->promoting && hold_old_busy(g)) {
        /* the old master still serves: let it answer the reads it has */
        h->drain_until_ms = ev_now(hold_loop(h)) + HOLD_DRAIN_MS;
        ev_timer_start(hold_loop(h), &h->drain, HOLD_POLL_MS);
        return true;
    }
    hold_switch_finish(h, why);
    return true;
}

/* ------------------------------------------------------------ WAIT */

static void hold_on_wait(struct req *r, struct buf *out, const uint8_t *p, size_t len,
                         const struct rsp_info *ri, const char *err)
{
    struct server *g = r->sconn->server;
    struct hold *h = g->hold;
    bool ok = err == NULL && ri != NULL && ri->type == ':' && ri->integer >= 1;
    (void)out;
    (void)p;
    (void)len;
    if (h == NULL || h->waits == 0) {
        return;
    }
    h->waits--;
    h->waits_short += !ok;
    if (h->waits > 0) {
        return;
    }
    if (h->waits_short > 0) {
        log_warn("pool '%s': group '%s': on %u connection(s) no replica confirmed in " HOLD_WAIT_MS
                 " ms the writes the old master acknowledged",
                 g->pool->cp->name, g->cs->name, h->waits_short);
    } else {
        log_notice("pool '%s': group '%s': every write the old master acknowledged is on a "
                   "replica (WAIT 1: not necessarily the one promoted)",
                   g->pool->cp->name, g->cs->name);
    }
}

/* WAIT on every open connection to the old master, behind what it was sent. */
static void hold_wait_acks(struct hold *h)
{
    static const char wait[] = "*3\r\n$4\r\nWAIT\r\n$1\r\n1\r\n$"
                               "3\r\n" HOLD_WAIT_MS "\r\n";
    struct server *g = h->g;
    h->waits_short = 0;
    for (uint32_t i = 0; i < 2 * g->nconns; i++) {
        struct sconn *v = i < g->nconns ? g->conns : g->conns3;
        struct sconn *c = v != NULL ? &v[i % g->nconns] : NULL;
        if (c == NULL || c->state == SCONN_CLOSED) {
            continue;
        }
        struct req *r = req_new(g->pool->px, REDIS_CMD_WAIT);
        r->reply = hold_on_wait; /* no client: the proxy's own */
        h->waits++;
        sconn_send(c, r, (const uint8_t *)wait, sizeof(wait) - 1);
    }
}

/* ------------------------------------------------------------ beginning */

/* The group whose requests s's may wait for: s's group in a sentinel pool
 * that holds; in a pool without sentinels that holds through a restart
 * (failover_hold_on_crash), s, or in a pool with a master, the master (a
 * replica is a hidden replica of it: only a client's reads behind its own
 * held write wait, and go to the master with it). */
static struct server *hold_group(struct server *s)
{
    struct server *g = server_counted(s);
    struct pool *p = g->pool;
    if (p->cp->failover_hold_ms <= 0 || p->mode == POOL_CLUSTER) {
        return NULL;
    }
    if (p->mode == POOL_SENTINEL) {
        return g;
    }
    if (p->mode == POOL_MASTER_REPLICA) {
        g = &p->servers[p->cp->master];
    }
    return p->cp->failover_hold_on_crash ? g : NULL;
}

/* ------------------------------------------------------------ a server's restart */

/* A hold that began when we could not reach the server: no one will say when
 * it is back (a restart too short for the sentinels to see, or a pool without
 * sentinels), so one of its connections tries it every HOLD_RETRY_MS.
 * Connected, a redis is asked PING: a restarted one answers -LOADING while it
 * reads its data, and what waited would get that instead of its reply (a
 * client connected to redis itself waits for the load in its reconnect); any
 * other answer releases the hold. A memcached serves once connected
 * (hold_server_reached). The tries' failures count as the server's, as any
 * connect's. A sentinel group's master is not tried while the sentinels say
 * it is down or a failover is under way: a write sent to it then could be
 * lost when it is demoted. */
static bool hold_may_probe(const struct hold *h)
{
    return h->down && h->refused && !h->reported && !h->promoting && !h->switching && !h->finding;
}

static void hold_on_ping(struct req *r, struct buf *out, const uint8_t *p, size_t len,
                         const struct rsp_info *ri, const char *err)
{
    struct hold *h = r->sconn != NULL ? r->sconn->server->hold : NULL;
    (void)out;
    if (h == NULL || !h->probing) {
        return;
    }
    h->probing = false;
    /* any other answer (an ACL user may not PING: -NOPERM) says it serves */
    bool loading = len >= 8 && memcmp(p, "-LOADING", 8) == 0;
    if (err == NULL && ri != NULL && !loading && hold_may_probe(h)) {
        hold_release(h, hold_restart(h) ? "server reachable again"
                                        : "the master answers again, no failover began");
    }
}

static void hold_on_retry(struct ev_loop *loop, struct ev_timer *t)
{
    struct hold *h = t->data;
    struct server *g = h->g;
    static const char ping[] = "*1\r\n$4\r\nPING\r\n";
    if (!h->down) {
        return;
    }
    ev_timer_start(loop, &h->retry, HOLD_RETRY_MS);
    struct sconn *c = server_conn_for(g, 0, 2);
    if (h->probing || !hold_may_probe(h) || sconn_ensure(c) != 0) {
        return; /* a refusal at once (a unix socket) is tried again too */
    }
    if (!g->pool->cp->redis) {
        if (c->state == SCONN_CONNECTED) {
            hold_server_reached(g); /* connected at once */
        }
        return;
    }
    struct req *r = req_new(g->pool->px, REDIS_CMD_PING);
    r->reply = hold_on_ping; /* no client: the proxy's own */
    h->probing = true;
    sconn_send(c, r, (const uint8_t *)ping, sizeof(ping) - 1);
}

bool hold_restarting(struct server *s)
{
    struct server *g = hold_group(s);
    const struct hold *h = g != NULL && g == s ? g->hold : NULL;
    return hold_active(h) && hold_restart(h) && h->down;
}

void hold_server_reached(struct server *s)
{
    if (s->pool->mode == POOL_CLUSTER) {
        cluster_node_reached(s);
        return;
    }
    if (hold_restarting(s) && !s->pool->cp->redis) {
        hold_release(s->hold, "server reachable again");
    }
}

static void hold_start(struct server *g, bool down)
{
    const struct conf_pool *cp = g->pool->cp;
    char old[96];
    if (cp->failover_hold_ms <= 0 || (down && !cp->failover_hold_on_crash) || !g->addr.known) {
        return;
    }
    struct hold *h = hold_get(g);
    if (h == NULL || h->switching || (down ? h->down : h->promoting)) {
        return; /* out of memory: requests go on as without holding */
    }
    if (h->finding) {
        /* the master just found is being failed over: the requests that waited
         * for it wait on, within the same failover_hold */
        h->finding = false;
        h->old = g->addr.ss;
        h->old_len = g->addr.len;
    } else if (!hold_active(h)) {
        h->began_us = ev_now_us(hold_loop(h));
        h->old = g->addr.ss;
        h->old_len = g->addr.len;
        ev_timer_start(hold_loop(h), &h->expire, (uint64_t)cp->failover_hold_ms);
    }
    if (down) {
        h->down = true;
    } else {
        h->promoting = true;
        hold_wait_acks(h);
    }
    if (hold_restart(h)) {
        log_warn("pool '%s': server '%s' unreachable: its requests wait up to %lld ms for it",
                 cp->name, g->cs->name, (long long)cp->failover_hold_ms);
        return;
    }
    log_warn("pool '%s': group '%s': failover begins (%s): %s for master %s wait up to %lld ms",
             cp->name, g->cs->name, down ? "master unreachable" : "a replica is being promoted",
             down ? "requests" : "writes", hold_addr(&h->old, h->old_len, old, sizeof(old)),
             (long long)cp->failover_hold_ms);
}

void hold_begin(struct server *g, bool down)
{
    hold_start(g, down);
    if (down && g->hold != NULL && g->hold->down) {
        g->hold->reported = true;
    }
}

void hold_end(struct server *g, const char *why)
{
    struct hold *h = g->hold;
    if (hold_active(h) && !h->switching && !h->finding) {
        hold_release(h, why);
    }
}

/* A request for g, whose master is not known: it waits while the sentinels
 * are still looking for one (a proxy or worker just started). */
static bool hold_finding(struct server *g)
{
    if (!g->addr.looking) {
        return false;
    }
    struct hold *h = hold_get(g);
    if (h == NULL) {
        return false; /* out of memory: answered at once, as without holding */
    }
    if (!hold_active(h)) {
        h->began_us = ev_now_us(hold_loop(h));
        h->old_len = 0;
        h->finding = true;
        ev_timer_start(hold_loop(h), &h->expire, (uint64_t)g->pool->cp->failover_hold_ms);
        log_notice("pool '%s': group '%s': requests wait up to %lld ms for the sentinels to name "
                   "a master",
                   g->pool->cp->name, g->cs->name, (long long)g->pool->cp->failover_hold_ms);
    }
    return h->finding;
}

void hold_unknown(struct server *g)
{
    struct hold *h = g->hold;
    g->addr.looking = false;
    if (hold_active(h) && h->finding) {
        log_warn("pool '%s': group '%s': no sentinel named a master: %u held requests answered "
                 "with an error",
                 g->pool->cp->name, g->cs->name, h->n);
        hold_fail_all(h, g->unknown_msg);
    }
}

void hold_down_ends(struct server *g)
{
    struct hold *h = g->hold;
    if (hold_active(h) && h->down && !h->refused && !h->promoting && !h->switching && !h->finding) {
        hold_release(h, "the sentinels see the master up again");
    } else if (hold_active(h) && h->down) {
        h->reported = false; /* we saw it refuse: it is tried again (hold_on_retry) */
    }
}

/* Our own connection to g's master failed: a crash hold begins (or goes on). */
static void hold_refused(struct server *g)
{
    hold_start(g, true);
    struct hold *h = g->hold;
    if (h != NULL && h->down) {
        h->refused = true;
        if (!ev_timer_armed(&h->retry)) {
            ev_timer_start(hold_loop(h), &h->retry, HOLD_RETRY_MS);
        }
    }
}

void hold_master_lost(struct server *s)
{
    if (s->pool->mode == POOL_CLUSTER) {
        cluster_node_lost(s);
        return;
    }
    struct server *g = hold_group(s);
    if (g == s) {
        hold_refused(g);
    }
}

/* Whether a request of client c for s (a master or a hidden replica of g)
 * waits: see hold.h. err: the master could not be reached. */
static bool hold_admits(struct server *g, struct server *s, const struct client *c, bool readonly,
                        int err)
{
    if (err != 0) {
        if (s != g) {
            return false;
        }
        if (!g->addr.known) {
            return hold_finding(g);
        }
        hold_refused(g);
        return g->hold != NULL && g->hold->down;
    }
    struct hold *h = g->hold;
    if (!hold_active(h)) {
        return false;
    }
    if (hc_find(&h->clients, c->id) >= 0) {
        return true; /* behind its own held request, even a read of a replica */
    }
    if (c->imported_us != 0 && c->imported_us >= h->began_us) {
        /* handed over during the failover by a process that may have taken the
         * new master already and sent it this client's last write: its reads
         * wait too, or the old master would answer them from before it */
        return true;
    }
    return s == g && (h->down || h->switching || h->finding || !readonly);
}

bool hold_take(struct client *c, struct server *s, const uint8_t *p, const struct req_info *ri,
               int err)
{
    struct server *g = hold_group(s);
    if (g == NULL || !hold_admits(g, s, c, ri->readonly, err)) {
        return false;
    }
    struct req *r = NULL; /* noreply: held in its place, answered by nobody */
    if (!ri->noreply) {
        r = req_new(c->px, ri->cmd);
        r->quiet = ri->quiet;
        cqueue_push(c, r, ri->len);
    }
    hold_push(g->hold, r, c, p, ri->len);
    return true;
}

bool hold_take_frag(struct client *c, struct req *fr, struct server *s, const uint8_t *p,
                    const struct req_info *ri, const uint32_t *idx, uint32_t nidx, int err)
{
    struct server *g = hold_group(s);
    if (g == NULL || !hold_admits(g, s, c, ri->readonly, err)) {
        return false;
    }
    struct buf b;
    buf_init(&b);
    if (idx != NULL) {
        c->pool->proto->frag_build(&b, p, ri, idx, nidx);
    } else {
        buf_append(&b, p, ri->len);
    }
    c->pool->stats[SP_fragments]++;
    hold_push(g->hold, fr, c, b.data, b.len);
    buf_free(&b);
    return true;
}

bool hold_admits_write(struct client *c, struct server *s, int err)
{
    struct server *g = hold_group(s);
    return g != NULL && hold_admits(g, s, c, false, err);
}

void hold_put(struct client *c, struct server *s, struct req *r, const uint8_t *p, size_t len)
{
    hold_push(hold_group(s)->hold, r, c, p, len);
}

/* ------------------------------------------------------------ connections closing */

bool hold_takes_back(const struct server *s)
{
    if (s->pool->mode == POOL_CLUSTER) {
        return cluster_takes_back(s);
    }
    const struct server *g = s->owner != NULL ? s->owner : s;
    return hold_active(g->hold);
}

bool hold_keeps_sent(const struct server *s)
{
    const struct pool *p = s->pool;
    return p->mode == POOL_SENTINEL && p->cp->failover_hold_ms > 0 && s->owner == NULL;
}

bool hold_return(struct server *s, struct req *r, const uint8_t *p, size_t len, bool written,
                 struct hold_entry **at)
{
    if (written && !req_reads(r)) {
        return false; /* a write the server may have applied: it gets the error */
    }
    if (s->pool->mode == POOL_CLUSTER) {
        return cluster_take_back(r); /* it keeps its own bytes */
    }
    if (p == NULL) {
        return false; /* its bytes left with the connection's buffer */
    }
    struct server *g = server_counted(s);
    struct hold *h = g->hold;
    struct client *c = r->parent != NULL ? r->parent->client : r->client;
    if (!hold_active(h) || c == NULL || r->skip > 0) {
        /* an orphan's or the proxy's own: nobody waits for it; a transaction's
         * block is one request on one connection, not pieces to move */
        return false;
    }
    struct hold_entry *e = hold_entry_new(h, r, c, p, len);
    struct hold_entry **link = *at != NULL ? &(*at)->next : &h->head;
    e->next = *link;
    *link = e;
    if (e->next == NULL) {
        h->tail = e;
    }
    *at = e;
    return true;
}

/* ------------------------------------------------------------ the group's side */

void hold_adopt(struct server *to, struct server *from)
{
    if (from->hold == NULL) {
        return;
    }
    hold_free(to, "replaced");
    to->hold = from->hold;
    from->hold = NULL;
    to->hold->g = to;
    to->hold->pool = to->pool;
}

void hold_free(struct server *g, const char *why)
{
    struct hold *h = g->hold;
    if (h == NULL) {
        return;
    }
    hold_fail_all(h, why);
    free(h->clients.key);
    free(h->clients.count);
    free(h);
    g->hold = NULL;
}

bool hold_idle(const struct server *g)
{
    return g->hold == NULL || g->hold->head == NULL;
}

size_t hold_memory(const struct server *g)
{
    const struct hold *h = g->hold;
    return h != NULL ? h->bytes + h->n * sizeof(struct hold_entry) : 0;
}

static size_t hold_cluster_shed(struct hold *h, size_t excess);

static size_t hold_shed_pool(struct pool *p, size_t excess)
{
    size_t freed = hold_cluster_shed(cluster_hold_of(p), excess);
    for (uint32_t i = 0; i < p->nservers && freed < excess; i++) {
        struct hold *h = p->servers[i].hold;
        struct hold_entry *e;
        while (freed < excess && h != NULL && (e = hold_pop(h)) != NULL) {
            freed += e->len + sizeof(*e);
            hold_entry_fail(h, e, "held request over the proxy's buffer limit");
        }
    }
    return freed;
}

size_t hold_shed(struct proxy *px, size_t excess)
{
    size_t freed = 0;
    for (uint32_t i = 0; i < px->npools && freed < excess; i++) {
        freed += hold_shed_pool(px->pools[i], excess - freed);
    }
    for (struct pool *p = px->retired; p != NULL && freed < excess; p = p->next_retired) {
        freed += hold_shed_pool(p, excess - freed);
    }
    if (freed > 0) {
        log_warn("buffers over the buffer limit %zu: %zu bytes of held requests answered with an "
                 "error",
                 px->buffer_limit, freed);
    }
    return freed;
}

/* ------------------------------------------------------------ a cluster pool's hold */

/* One hold per cluster pool: the requests waiting for the cluster (a
 * redirection retried later, a master being replaced, a map not known yet),
 * in their clients' order. cluster.c decides when each goes; this keeps the
 * queue, the held flag and the counts. The bytes are kept by the request
 * itself (r->cx): len only counts them. */

struct hold *hold_cluster_create(struct pool *p, int64_t *stats)
{
    struct hold *h = calloc(1, sizeof(*h));
    if (h != NULL) {
        h->pool = p;
        h->cstats = stats;
        ev_timer_init(&h->expire, NULL, h);
        ev_timer_init(&h->drain, NULL, h);
    }
    return h;
}

static void hold_cluster_link(struct hold *h, struct hold_entry *e)
{
    struct hold_entry **link = &h->head, *last = NULL;
    if (hc_find(&h->clients, e->client_id) >= 0) {
        /* before the first held request of the same client that came later */
        while (*link != NULL && ((*link)->client_id != e->client_id || (*link)->seq <= e->seq)) {
            last = *link;
            link = &(*link)->next;
        }
    } else if (h->tail != NULL) {
        last = h->tail;
        link = &h->tail->next;
    }
    e->next = *link;
    *link = e;
    if (e->next == NULL) {
        h->tail = e;
    }
    (void)last;
    h->n++;
    h->bytes += e->len;
    hc_add(&h->clients, e->client_id);
    e->r->held = true;
}

void hold_cluster_put(struct hold *h, const struct client *c, struct req *r, size_t len,
                      uint64_t seq)
{
    struct hold_entry *e = malloc(sizeof(*e));
    if (e == NULL) {
        log_error("out of memory holding a request");
        abort(); /* a request lost silently is worse than stopping */
    }
    e->r = r;
    e->seq = seq;
    e->client_id = c->id;
    e->resp = (uint8_t)c->lc.resp;
    e->since_us = ev_now_us(hold_loop(h));
    e->len = (uint32_t)len;
    h->cstats[SC_cluster_held]++;
    hold_cluster_link(h, e);
}

bool hold_cluster_has(const struct hold *h, uint64_t client_id, uint64_t seq)
{
    if (h == NULL || hc_find(&h->clients, client_id) < 0) {
        return false;
    }
    for (const struct hold_entry *e = h->head; e != NULL; e = e->next) {
        if (e->client_id == client_id && e->seq < seq) {
            return true;
        }
    }
    return false;
}

uint32_t hold_cluster_count(const struct hold *h)
{
    return h != NULL ? h->n : 0;
}

size_t hold_cluster_memory(const struct hold *h)
{
    return h != NULL ? h->bytes + h->n * sizeof(struct hold_entry) : 0;
}

/* The entry off the queue (e is the head of a detached list here). */
static void hold_cluster_unlink(struct hold *h, struct hold_entry *e)
{
    h->n--;
    h->bytes -= e->len;
    hc_del(&h->clients, e->client_id);
    e->r->held = false;
}

/* A small set of client ids (linear: a walk blocks few clients). */
struct hold_blocked {
    uint64_t *v;
    uint32_t n, cap;
};

static bool blocked_has(const struct hold_blocked *b, uint64_t id)
{
    for (uint32_t i = 0; i < b->n; i++) {
        if (b->v[i] == id) {
            return true;
        }
    }
    return false;
}

static void blocked_add(struct hold_blocked *b, uint64_t id)
{
    if (blocked_has(b, id)) {
        return;
    }
    if (b->n == b->cap) {
        uint32_t cap = b->cap ? b->cap * 2 : 16;
        uint64_t *v = realloc(b->v, cap * sizeof(*v));
        if (v == NULL) {
            abort(); /* a client reading around its own held write is worse */
        }
        b->v = v;
        b->cap = cap;
    }
    b->v[b->n++] = id;
}

uint32_t hold_cluster_walk(struct hold *h, hold_try_fn try_fn, void *ctx)
{
    uint32_t sent = 0;
    if (h == NULL || h->head == NULL) {
        return 0;
    }
    struct hold_blocked blocked = {NULL, 0, 0};
    /* detached: sending may close a connection, whose unwritten requests
     * come back here (hold_cluster_put) while the walk goes on */
    struct hold_entry *list = h->head, *stay = NULL, **stay_tail = &stay;
    h->head = h->tail = NULL;
    while (list != NULL) {
        struct hold_entry *e = list;
        list = e->next;
        e->next = NULL;
        hold_cluster_unlink(h, e);
        const char *why = NULL;
        int rc = blocked_has(&blocked, e->client_id) ? HOLD_TRY_STAY
                                                     : try_fn(ctx, e->r, e->since_us, &why);
        if (rc == HOLD_TRY_STAY) {
            blocked_add(&blocked, e->client_id);
            *stay_tail = e;
            stay_tail = &e->next;
            continue;
        }
        if (rc == HOLD_TRY_SENT) {
            h->cstats[SC_cluster_released]++;
            sent++;
        } else {
            h->cstats[SC_cluster_expired]++;
            req_fail(e->r, why != NULL ? why : "cluster unavailable");
        }
        free(e);
    }
    free(blocked.v);
    while (stay != NULL) {
        struct hold_entry *e = stay;
        stay = e->next;
        hold_cluster_link(h, e); /* in client order with what came back meanwhile */
    }
    return sent;
}

void hold_cluster_adopt(struct hold *h, struct pool *to, int64_t *stats)
{
    if (h != NULL) {
        h->pool = to;
        h->cstats = stats;
    }
}

void hold_cluster_free(struct hold *h, const char *why)
{
    if (h == NULL) {
        return;
    }
    struct hold_entry *e;
    while ((e = h->head) != NULL) {
        h->head = e->next;
        hold_cluster_unlink(h, e);
        req_fail(e->r, why);
        free(e);
    }
    free(h->clients.key);
    free(h->clients.count);
    free(h);
}

static size_t hold_cluster_shed(struct hold *h, size_t excess)
{
    size_t freed = 0;
    struct hold_entry *e;
    while (h != NULL && freed < excess && (e = h->head) != NULL) {
        h->head = e->next;
        if (h->head == NULL) {
            h->tail = NULL;
        }
        hold_cluster_unlink(h, e);
        freed += e->len + sizeof(*e);
        h->cstats[SC_cluster_expired]++;
        req_fail(e->r, "held request over the proxy's buffer limit");
        free(e);
    }
    return freed;
}
