/*
 * proxy: the proxying side of one process. It owns the pools of the generation
 * in force and the ones a reload retired, the buffer chunks, the lists of
 * connections to flush before the loop sleeps, and the connection counters.
 * The process above it (process/instance.c) creates it on its event loop,
 * swaps pools on reload and calls proxy_before_sleep() from the loop's hook.
 *
 * Nothing here is global: a unit test can run a proxy of its own.
 */
#ifndef NC_PROXY_H
#define NC_PROXY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "conf/options.h"
#include "core/log.h"
#include "event/ev.h"
#include "net/bufpool.h"
#include "proxy/req.h"

struct pool;
struct client;
struct sconn;
struct server;

struct proxy {
    struct ev_loop *loop;
    time_t start_time;
    int worker_id;               /* -1: a single process; else TCP listeners use SO_REUSEPORT */
    uint32_t shutdown_timeout_s; /* of the generation in force: bounds a retired pool */
    size_t mbuf_size;            /* read chunk size (-m) */
    struct bufpool bufs;         /* free chunks of mbuf_size */
    struct req_cache reqs;       /* free requests and splits (req_cache.c) */
    size_t client_max_buffer;    /* a client's replies + requests in flight before it waits */
    size_t request_max;          /* bytes of the largest request (or queued transaction) */
    size_t buffer_limit;         /* bytes all connections together may have buffered */
    struct ev_timer mem_timer;   /* checks buffer_limit */
    /* Every byte a buffer gains was first read from a socket, so counting reads
     * bounds growth: past mem_check_bytes the limit is checked before sleeping,
     * not only by mem_timer (a loopback client outruns any timer). */
    size_t read_since_check;
    size_t mem_check_bytes;
    uint32_t mem_ticks; /* mem_timer's rounds: memlimit_give_back every 10th */
    long fd_limit;      /* RLIMIT_NOFILE when it started (0: none to keep to) */

    struct pool **pools; /* the pools of the generation in force */
    uint32_t npools;
    struct pool *retired; /* pools a reload replaced, finishing their work */

    /* connections written to in this loop turn: flushed before sleeping */
    struct client *dirty_clients;
    /* doubly linked, in the order they were first written to in the turn (so the
     * servers get the requests of different connections in the order the
     * clients sent them); a closed connection leaves it */
    struct sconn *dirty_sconns, *dirty_sconns_tail;
    /* closed in this turn, freed before sleeping once no event of the turn can
     * still point at them */
    struct client *dead_clients;
    struct server *dead_servers; /* hidden replica servers, freed once idle */

    struct log_gap shortage_log; /* connects that failed for want of descriptors */

    /* TLS handshakes: at most CLIENT_HS_PER_TURN steps a loop turn (client.c);
     * the clients past it wait here, in order, for the next turns */
    struct client *hs_wait_head;
    struct client *hs_wait_tail;
    uint32_t hs_steps; /* in this turn */
    struct ev_timer hs_timer;

    uint64_t next_client_id;
    uint64_t client_id_step; /* 1, or CONF_MAX_WORKERS in a worker (proxy_init) */
    uint64_t total_connections;
    uint64_t curr_connections;
    bool stopping;
};

int proxy_init(struct proxy *px, struct ev_loop *loop, const struct options *o, int worker_id);
/* Free every pool (current and retired) and what waits to be freed. */
void proxy_deinit(struct proxy *px);
/* From the loop's before-sleep hook: enforce the buffer limit when due, write
 * every dirty connection until nothing more is pending, free what is dead and
 * idle (retired pools, replicas no longer listed, closed clients). Returns
 * true once a drained proxy has no client left: time to stop. */
bool proxy_before_sleep(struct proxy *px);
/* Stop accepting and reading; every pending reply is still written. */
void proxy_drain(struct proxy *px);
/* Open clients, retired pools' included. */
uint64_t proxy_nclients(const struct proxy *px);
/* The descriptor from which a pool's listener takes no client: the rest of the
 * open files limit is kept for the pools' server connections (0: no cap). */
int proxy_client_fd_cap(const struct proxy *px);
/* Bytes read from sockets: counts toward the next buffer-limit check. */
static inline void proxy_note_read(struct proxy *px, size_t n)
{
    px->read_since_check += n;
}

#endif
