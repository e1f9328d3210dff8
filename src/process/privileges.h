/*
 * privileges: meitu's global user/group keys. A proxy started as root binds
 * its listeners, then gives up root. In master/worker mode the workers do this
 * after binding; the master keeps its identity so that a worker it restarts can
 * bind privileged ports again.
 */
#ifndef NC_PRIVILEGES_H
#define NC_PRIVILEGES_H

#include "conf/conf.h"

/* Become g->user / g->group when running as root (nothing to do otherwise).
 * Returns 0, or -1 with the reason logged: not being able to is fatal. */
int privileges_drop(const struct conf_global *g);

#endif
