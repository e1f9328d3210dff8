/*
 * listeners: the listening sockets a master holds for its workers (SPEC 8):
 * one SO_REUSEPORT socket per worker and pool (a unix path: worker 0's only),
 * bound before the workers start, or taken over from the binary a master
 * replaces. The master keeps them, so a restarted worker, and the new binary's
 * worker after an upgrade, serves the very socket and queue its predecessor
 * did: nothing waiting there is reset. They live in the upgrade registry
 * (upgrade.h), tagged with their worker, where a forked worker takes its own.
 */
#ifndef NC_LISTENERS_H
#define NC_LISTENERS_H

#include "conf/conf.h"
#include "process/upgrade.h"

/* Bind what conf needs for nworkers that up does not hold yet, then prune.
 * -1 (logged) when an address cannot be bound. */
int listeners_bind(struct upgrade *up, const struct conf *conf, int nworkers);
/* Close the sockets of addresses conf no longer has (or of workers beyond
 * nworkers); the stats and metrics sockets (taken) stay. */
void listeners_prune(struct upgrade *up, const struct conf *conf, int nworkers);
/* A worker that keeps dying waits longer and longer for its restart (up to
 * 10 s), and the kernel went on queueing new connections on its sockets, which
 * nobody accepted meanwhile. Paused, its TCP sockets leave their SO_REUSEPORT
 * groups (what waits in their queues is reset) and the other workers get the
 * new connections; resumed (before the worker starts again, or before the
 * sockets go to a new binary), they listen again in their groups. A unix
 * path has no group: its clients wait for the worker (true when it has one). */
bool listeners_pause(struct upgrade *up, int worker);
void listeners_resume(struct upgrade *up, const struct conf *conf, int worker);
/* Close every worker socket: a stopping master refuses new connections at
 * once, a replaced one leaves them to the new master. */
void listeners_close(struct upgrade *up);

#endif
