/*
 * adopt: worker mode's hand-over of clients at a binary upgrade. The new
 * master's worker i listens for a while on an abstract unix socket named
 * after the pid of the master it replaces and i; the old master's worker i,
 * told to hand over, connects there (its parent's pid is in that name) and
 * sends its clients the way a single process sends them to its successor
 * (upgrade_chan.h). Only a peer running as our own user is heard.
 */
#ifndef NC_ADOPT_H
#define NC_ADOPT_H

#include <sys/types.h>

#include "event/ev.h"
#include "net/accept.h"
#include "process/upgrade_chan.h"

/* How long a new worker listens: the old workers connect as soon as the new
 * master serves, which is after every new worker is up. */
#define ADOPT_LISTEN_MS 30000

struct adopt_conn;

struct adopt {
    struct ev_loop *loop;
    struct ev_io io;         /* the listener; fd -1 when closed */
    struct accept_rest rest; /* out of descriptors: accept again a little later */
    struct ev_timer expire;
    struct chan_sink sink; /* its client member gets each client */
    struct adopt_conn *conns;
};

/* New side: worker `worker` of the master that replaces pid `replaced` takes
 * clients from the old worker of the same number. -1 (logged) when it cannot
 * listen: the old worker then lets its clients go instead. */
int adopt_listen(struct adopt *a, struct ev_loop *loop, pid_t replaced, int worker,
                 const struct chan_sink *sink);
/* Close the listener and every connection (sockets not yet matched too). */
void adopt_close(struct adopt *a);
/* Old side: the channel to the new worker `worker` of the master that
 * replaces `master`, blocking with a send timeout; -1 when there is none. */
int adopt_connect(pid_t master, int worker);

#endif
