/*
 * worker: one process of the master/worker mode (SPEC 8). It is a whole proxy
 * (struct instance) that serves every pool on its own SO_REUSEPORT listeners,
 * reloads on SIGHUP in place (so its clients keep their connections), and
 * publishes its counters to the master instead of serving a stats port.
 */
#ifndef NC_WORKER_H
#define NC_WORKER_H

#include <stdint.h>

#include "conf/conf.h"
#include "conf/options.h"

struct stats_slots;
struct upgrade;

/* The body of worker `id` after fork(); up holds the listeners the master
 * bound for it (taken by address). Once it serves, it writes one byte to
 * ready_fd (when >= 0) and closes it: the master's start-up check. Returns the
 * process's exit code. */
int worker_main(const struct options *o, struct conf *conf, uint64_t generation, int id,
                struct stats_slots *slots, int ready_fd, struct upgrade *up);

#endif
