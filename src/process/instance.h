/*
 * instance: the body of one serving process (nginx's cycle, redis's server):
 * the options, the configuration generation in force, the event loop, the
 * proxy with its pools, the watchers of sentinel pools, the stats port and
 * /metrics (or, in a worker, the shared-memory slot the master reads), the
 * signals and the reload bookkeeping. A single process runs one; in the
 * master/worker mode each worker runs one (master.c is the master's own body).
 * No other mutable state is global but the logger.
 */
#ifndef NC_INSTANCE_H
#define NC_INSTANCE_H

#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include "conf/conf.h"
#include "conf/options.h"
#include "event/ev.h"
#include "process/adopt.h"
#include "process/signals.h"
#include "proxy/proxy.h"
#include "stats/snap.h"

struct pool;
struct upgrade;
struct stats;
struct metrics;
struct stats_slots;

struct instance {
    struct options opts;
    struct conf *conf; /* generation in force (a reference) */
    struct ev_loop *loop;
    struct proxy px;
    struct stats *stats;
    struct metrics *metrics; /* NULL unless --metrics-port */
    struct stats_source src; /* what the stats port and /metrics show */
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
    int64_t last_reload_ms; /* wall clock of the last reload, 0: none */
    time_t start_time;
    bool stopping;
    struct signals sig;
    struct ev_timer stop_timer; /* bounds a graceful shutdown */
    /* binary upgrade (upgrade.h): listeners inherited or handed over; once
     * handing over, clients are let go as soon as they have their replies */
    struct upgrade *up;
    bool handing_over;
    bool hand_over_idle; /* idle clients may go too */
    struct ev_timer hand_over_tick;
    uint32_t passed; /* clients handed to the new process */
    uint32_t let_go; /* clients closed behind their last reply instead */
    /* worker mode: the new worker this one hands its clients to (-1: none,
     * they are let go), and a new worker's listener for the old one's */
    int pass_fd;
    struct adopt adopt;
};

/* worker_id -1: a single process with its own stats port; else a worker of the
 * master/worker mode, which publishes in slot worker_id of slots instead and
 * whose TCP listeners use SO_REUSEPORT. generation: the master's (1 at start).
 * up: the listening sockets to take before binding (inherited from a replaced
 * binary, or the master's for this worker), and the upgrade machinery. */
int instance_init(struct instance *in, const struct options *opts, struct conf *conf,
                  uint64_t generation, int worker_id, struct stats_slots *slots,
                  struct upgrade *up);
/* Tell the service manager (and an old binary waiting for us) that we serve. */
void instance_ready(struct instance *in);
int instance_run(struct instance *in);
void instance_deinit(struct instance *in);
/* Pool idx of conf, with its sentinel watcher when it has sentinels. */
struct pool *instance_pool_create(struct instance *in, struct conf *conf, uint32_t idx);

#endif
