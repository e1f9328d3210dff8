/*
 * master: the master process of the master/worker mode (SPEC 8, nginx's
 * master). It binds nothing but the stats (and metrics) port, whose numbers are
 * the sum of what its workers publish in shared memory; it starts the workers,
 * restarts one that dies (with a back-off) and passes signals on:
 *
 *   SIGHUP           check the file; if valid, every worker reloads it in place
 *   SIGUSR1          reopen log files (master and workers)
 *   SIGTTIN/SIGTTOU  log level up/down in every process
 *   SIGTERM/SIGINT   workers finish in-flight work (worker_shutdown_timeout), then exit
 *   SIGUSR2          binary upgrade (upgrade.h): once the new master serves,
 *                    the workers hand over (SIGUSR2) and the master exits after them
 *
 * A worker's death is noticed through SIGCHLD; the master's death reaches the
 * workers through PR_SET_PDEATHSIG.
 */
#ifndef NC_MASTER_H
#define NC_MASTER_H

#include "conf/conf.h"
#include "conf/options.h"

/* How many workers global: worker_processes asks for (auto: one per online
 * CPU); 0 means a single process. */
int master_workers(const struct conf_global *g);
struct upgrade;

/* Run the master until it is told to stop; returns the exit code. Fails at
 * once (1) when a listen address cannot be bound or a first worker cannot
 * start. The master binds one SO_REUSEPORT listener per worker and pool (or
 * takes it from up, handed over by the binary it replaces) and keeps it, so a
 * restarted worker, and the new binary's worker after an upgrade, serves the
 * very socket its predecessor served: no queued connection is lost. */
int master_run(const struct options *o, struct conf *conf, int nworkers, struct upgrade *up);

#endif
