/*
 * instance: the process context. Everything a running proxy process owns hangs
 * off one struct instance (nginx's cycle, redis's server): the options, the
 * configuration generation in force, the event loop, the runtime pools and the
 * lists the loop walks before sleeping. No other mutable state is global.
 */
#ifndef NC_INSTANCE_H
#define NC_INSTANCE_H

#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include "conf/conf.h"
#include "conf/options.h"
#include "event/ev.h"
#include "net/bufpool.h"

struct pool;
struct client;
struct sconn;
struct stats;
struct metrics;
struct stats_snap;
struct stats_slots;

struct instance {
    struct options opts;
    struct conf *conf; /* generation in force (a reference) */
    struct ev_loop *loop;
    struct pool **pools; /* the pools of the generation in force */
    uint32_t npools;
    struct pool *retired; /* pools a reload replaced, finishing their work (proxy/reload.c) */
    struct stats *stats;
    struct metrics *metrics; /* NULL unless --metrics-port */
    /* where the stats port and /metrics get their numbers: NULL = this process's
     * pools; the master sums its workers' (process/master.c) */
    struct stats_snap *(*stats_collect)(struct instance *in);
    size_t mbuf_size;          /* read chunk size (-m) */
    struct bufpool bufs;       /* free chunks of mbuf_size */
    size_t client_max_buffer;  /* bytes a client may have buffered (requests + replies) */
    size_t buffer_limit;       /* bytes all clients together may have buffered */
    struct ev_timer mem_timer; /* checks buffer_limit */
    /* Every byte a buffer gains was first read from a socket, so counting reads
     * bounds growth: past mem_check_bytes the limit is checked before sleeping,
     * not only by mem_timer (a loopback client outruns any timer). */
    size_t read_since_check;
    size_t mem_check_bytes;

    /* connections written to during this iteration, flushed before sleeping */
    struct client *dirty_clients;
    struct sconn *dirty_sconns;
    /* clients closed during this iteration: freed before sleeping, after every
     * event of the batch that might still point at them has been seen */
    struct client *dead_clients;

    /* worker mode (SPEC 8): which worker this process is (-1: a single process)
     * and the shared memory it publishes its counters to for the master */
    int worker_id;
    struct stats_slots *slots;
    struct ev_timer publish_timer;

    /* configuration generation in force (1 at start, +1 per applied reload),
     * failed reloads and the last outcome (enum stats_reload) */
    uint64_t generation;
    uint64_t reload_failures;
    uint8_t last_reload;

    uint64_t next_client_id;
    uint64_t total_connections;
    uint64_t curr_connections;
    time_t start_time;
    bool stopping;
    int sigfd;
    struct ev_io sigio;
    struct ev_timer stop_timer; /* bounds a graceful shutdown */
};

static inline void instance_note_read(struct instance *in, size_t n)
{
    in->read_since_check += n;
}

int instance_init(struct instance *in, const struct options *opts, struct conf *conf);
/* A worker of the master/worker mode: no stats port of its own (the master sums
 * what it publishes in slot worker_id), TCP listeners with SO_REUSEPORT. */
int instance_init_worker(struct instance *in, const struct options *opts, struct conf *conf,
                         uint64_t generation, int worker_id, struct stats_slots *slots);
int instance_run(struct instance *in);
void instance_deinit(struct instance *in);

#endif
