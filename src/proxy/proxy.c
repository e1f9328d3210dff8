#include "proxy/proxy.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "core/log.h"
#include "proxy/client.h"
#include "proxy/memlimit.h"
#include "proxy/pool.h"
#include "proxy/replica.h"
#include "proxy/sconn.h"
#include "proxy/server.h"

/* How often the total of buffers is held against --buffer-limit anyway. */
#define MEM_CHECK_MS 100
/* Every this many checks (a second), freed memory may go back to the system. */
#define MEM_GIVE_BACK_TICKS 10

static void proxy_check_memory(struct proxy *px)
{
    px->read_since_check = 0;
    memlimit_enforce(px);
}

static void proxy_on_mem_check(struct ev_loop *loop, struct ev_timer *t)
{
    struct proxy *px = t->data;
    proxy_check_memory(px);
    if (++px->mem_ticks % MEM_GIVE_BACK_TICKS == 0) {
        memlimit_give_back();
    }
    ev_timer_start(loop, t, MEM_CHECK_MS);
}

int proxy_init(struct proxy *px, struct ev_loop *loop, const struct options *o, int worker_id)
{
    memset(px, 0, sizeof(*px));
    px->loop = loop;
    px->start_time = time(NULL);
    /* redis numbers its clients from 1; a worker takes every CONF_MAX_WORKERS-th
     * number from its own on, so that CLIENT ID (HELLO's id, CLIENT INFO, the
     * log) names one client of the proxy, whichever worker accepted it */
    px->next_client_id = worker_id >= 0 ? (uint64_t)worker_id + 1 : 1;
    px->client_id_step = worker_id >= 0 ? CONF_MAX_WORKERS : 1;
    px->worker_id = worker_id;
    px->mbuf_size = o->mbuf_size;
    px->client_max_buffer = o->client_buffer_limit;
    px->request_max = o->request_size_limit;
    px->buffer_limit = o->buffer_limit;
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY &&
        rl.rlim_cur <= INT_MAX) {
        px->fd_limit = (long)rl.rlim_cur;
    }
    /* 1/32 of the limit: the overshoot stays small, the scan stays rare */
    px->mem_check_bytes = o->buffer_limit / 32 > 65536 ? o->buffer_limit / 32 : 65536;
    if (bufpool_init(&px->bufs, o->mbuf_size, 4096) != 0) {
        return -1;
    }
    ev_timer_init(&px->mem_timer, proxy_on_mem_check, px);
    ev_timer_start(loop, &px->mem_timer, MEM_CHECK_MS);
    ev_timer_init(&px->hs_timer, client_on_handshake_turn, px);
    return 0;
}

static void proxy_free_dead_clients(struct proxy *px)
{
    while (px->dead_clients != NULL) {
        struct client *c = px->dead_clients;
        px->dead_clients = c->next_dead;
        client_free(c);
    }
}

void proxy_deinit(struct proxy *px)
{
    if (px->loop == NULL) {
        return;
    }
    ev_timer_stop(px->loop, &px->mem_timer);
    ev_timer_stop(px->loop, &px->hs_timer);
    for (uint32_t i = 0; i < px->npools; i++) {
        pool_destroy(px->pools[i]);
    }
    free(px->pools);
    px->pools = NULL;
    px->npools = 0;
    while (px->retired != NULL) {
        struct pool *p = px->retired;
        px->retired = p->next_retired;
        pool_destroy(p);
    }
    while (px->dead_servers != NULL) { /* of no pool: cannot happen, but nothing leaks */
        struct server *s = px->dead_servers;
        px->dead_servers = s->next_dead;
        replica_ep_free(s);
    }
    proxy_free_dead_clients(px); /* clients closed while pools went away */
    req_cache_free(&px->reqs);
    bufpool_deinit(&px->bufs);
}

/* Servers first: requests leave before we answer what is already answered.
 * Flushing a client can dispatch requests it had buffered while paused, so go
 * round until both lists are empty: nothing may wait for a wake-up. */
static void proxy_flush(struct proxy *px)
{
    while (px->dirty_sconns != NULL || px->dirty_clients != NULL) {
        while (px->dirty_sconns != NULL) {
            sconn_flush(px->dirty_sconns); /* takes it off the list */
        }
        while (px->dirty_clients != NULL) {
            struct client *c = px->dirty_clients;
            px->dirty_clients = c->next_dirty;
            c->dirty = false;
            client_flush(c);
        }
    }
}

static void proxy_reap_dead_servers(struct proxy *px)
{
    struct server **pp = &px->dead_servers;
    while (*pp != NULL) {
        struct server *s = *pp;
        *pp = s->next_dead;
        if (!replica_ep_reap(s)) {
            s->next_dead = *pp; /* still busy: back in its place */
            *pp = s;
            pp = &s->next_dead;
        }
    }
}

/* A retired pool goes once idle (after the flush, so no connection of it is
 * still to be written), or at its deadline whatever it still has. */
static void proxy_reap_retired(struct proxy *px)
{
    struct pool **pp = &px->retired;
    while (*pp != NULL) {
        struct pool *p = *pp;
        bool idle = pool_idle(p);
        if (!idle && ev_now(px->loop) < p->retire_deadline_ms) {
            pp = &p->next_retired;
            continue;
        }
        *pp = p->next_retired;
        if (idle) {
            log_notice("retired pool '%s' finished its work", p->cp->name);
        } else {
            log_warn("retired pool '%s' still busy after the shutdown timeout: closing it",
                     p->cp->name);
        }
        pool_destroy(p);
    }
}

bool proxy_before_sleep(struct proxy *px)
{
    if (px->read_since_check >= px->mem_check_bytes) {
        proxy_check_memory(px);
    }
    proxy_flush(px);
    /* clients closed this turn go before the retired pools their own server
     * connections may point into */
    proxy_free_dead_clients(px);
    if (px->dead_servers != NULL || px->retired != NULL) {
        proxy_reap_dead_servers(px);
        proxy_reap_retired(px);
        proxy_flush(px); /* what freeing answered */
    }
    req_cache_trim(&px->reqs);
    px->hs_steps = 0; /* a new turn: the TLS handshakes that wait go on in it */
    if (px->hs_wait_head != NULL && !ev_timer_armed(&px->hs_timer)) {
        ev_timer_start(px->loop, &px->hs_timer, 0);
    }
    return px->stopping && proxy_nclients(px) == 0;
}

void proxy_drain(struct proxy *px)
{
    px->stopping = true;
    for (uint32_t i = 0; i < px->npools; i++) {
        pool_drain(px->pools[i]);
    }
}

/* Descriptors kept beside the servers' and sentinels' connections: the log,
 * the stats and metrics ports' clients, a reload's file, the connections a
 * subscriber or a blocking command has of its own. */
#define PROXY_FD_SPARE 32

int proxy_client_fd_cap(const struct proxy *px)
{
    if (px->fd_limit <= 0) {
        return 0;
    }
    long keep = PROXY_FD_SPARE;
    for (uint32_t i = 0; i < px->npools; i++) {
        const struct pool *p = px->pools[i];
        /* (every server of a pool has the same number, server_init's) */
        uint32_t per = p->nservers > 0 ? p->servers[0].nconns : 0;
        keep += (long)p->nservers * per + (long)p->cp->nsentinels;
    }
    /* many servers and a small limit: clients still get half of it */
    long cap = px->fd_limit - keep > px->fd_limit / 2 ? px->fd_limit - keep : px->fd_limit / 2;
    return (int)cap;
}

uint64_t proxy_nclients(const struct proxy *px)
{
    uint64_t n = 0;
    for (uint32_t i = 0; i < px->npools; i++) {
        n += px->pools[i]->nclients;
    }
    for (const struct pool *p = px->retired; p != NULL; p = p->next_retired) {
        n += p->nclients;
    }
    return n;
}
