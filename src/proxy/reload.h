/*
 * reload: apply a new configuration generation to a running instance without
 * losing a client or a request (SPEC 11).
 *
 * The new generation gets new pools. Each takes from the old pool with the same
 * listen address (else the same name) its listening socket, its clients (when
 * the protocol is the same), the connections of every server whose address,
 * name and connection settings did not change, and its counters. What is left
 * of an old pool is retired: it accepts nothing, its other clients get their
 * pending replies and a close, its other servers answer what they were sent,
 * and it is freed once idle (or after worker_shutdown_timeout).
 */
#ifndef NC_RELOAD_H
#define NC_RELOAD_H

#include "conf/conf.h"

struct instance;

/* Swap in generation next (the caller keeps its reference). Returns 0, or -1
 * with nothing changed when a new listener cannot be opened. */
int reload_apply(struct instance *in, struct conf *next);
/* Free the retired pools that are done (called before sleeping). */
void reload_reap(struct instance *in);
/* Free every retired pool now (exit). */
void reload_reap_all(struct instance *in);
/* Clients still held by retired pools. */
uint64_t reload_retired_clients(const struct instance *in);

#endif
