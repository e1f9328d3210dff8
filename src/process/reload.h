/*
 * reload: apply a new configuration generation to a running process without
 * losing a client or a request (SPEC 11).
 *
 * The new generation gets new pools, built next to the running ones; nothing
 * running changes until every new pool exists and every new listen address is
 * bound. Each new pool then takes from the old pool with the same listen
 * address (else the same name) its listening socket, its clients (when the
 * protocol is the same), the connections of every server whose address, name
 * and connection settings did not change, and its counters. What is left of
 * an old pool is retired: it accepts nothing, its other clients get their
 * pending replies and a close, its other servers answer what they were sent,
 * and the proxy frees it once idle (or after worker_shutdown_timeout).
 */
#ifndef NC_RELOAD_H
#define NC_RELOAD_H

#include "conf/conf.h"

struct instance;

/* SIGHUP: load the -c file again and apply it; an invalid file or a listen
 * address that cannot be bound changes nothing. Counts the outcome. */
void reload_run(struct instance *in);
/* Swap in generation next (the caller keeps its reference). Returns 0, or -1
 * with nothing changed when a new pool cannot be set up. */
int reload_apply(struct instance *in, struct conf *next);

#endif
