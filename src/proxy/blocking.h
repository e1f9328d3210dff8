/*
 * blocking: the redis commands that hold their connection until they are
 * answered (BLPOP, BRPOP, BLMOVE, BLMPOP, BZPOPMIN, XREAD BLOCK...). On a
 * shared server connection one would stall every client behind it, so each
 * goes on the client's own connection to its keys' server (kept for the
 * client's life, as WATCH's: a consumer that loops on BRPOP reuses one), and,
 * as redis holds a connection that blocks, it goes only once the client's
 * earlier requests are answered and what the client sends next waits until
 * it is answered. It may wait its own timeout beyond the pool's. One whose
 * server cannot be reached closes its client, as redis' connection would be
 * gone, but not sooner than it could have waited (BLOCKING_DOWN_MS).
 */
#ifndef NC_BLOCKING_H
#define NC_BLOCKING_H

#include <stdbool.h>
#include <stdint.h>

#include "proto/proto.h"

struct client;
struct ev_loop;
struct ev_timer;
struct req;
struct sconn;

/* Route the blocking request p (ri->blocking). False: it waits, unparsed,
 * for the client's earlier requests (or for its server to be known). */
bool blocking_dispatch(struct client *c, const uint8_t *p, const struct req_info *ri);

/* Whether c's oldest request is a blocking one not answered yet: its EOF
 * ends the wait, as redis frees a blocked client (blocking_eof). */
bool blocking_waits(const struct client *c);

/* The longest a blocking command that fails before it reaches its server (the
 * server down, refusing, or not in the distribution) keeps its client open. */
#define BLOCKING_DOWN_MS 1000

/* r, a blocking command, failed with why before it was written to its server:
 * true when its client is closed later, once the command would have waited
 * min(its timeout, BLOCKING_DOWN_MS) (blocking_on_fail_timer); false when the
 * failure is to close it now (req_fail). */
bool blocking_fail_later(struct req *r, const char *why);
void blocking_on_fail_timer(struct ev_loop *loop, struct ev_timer *t);

/* Why a blocked client let go is closed (its log line, client_hang_up). */
#define BLOCKING_END_MSG                                                                           \
    "the proxy closes this connection: the wait ended (stop, reload or upgrade)"

/* How long a blocked client let go waits for the server's answer to CLIENT
 * UNBLOCK (the value it popped, or -UNBLOCKED) before its connection closes. */
#define BLOCKING_UNBLOCK_MS 1000

/* A client let go (a stop, a retired pool, an upgrade): a blocked request of
 * its ends at once without losing a pop: CLIENT UNBLOCK names its server
 * connection, and the client gets what was popped or (client_hang_up) is
 * closed. Where the server's id for that connection is not known, the
 * connection is closed (why, in the log). */
void blocking_end(struct client *c, const char *why);

/* c's EOF came while its blocking request waits. Redis frees a blocked
 * client at its EOF, but answers one whose command it served at once (a
 * value was there), and a half-closed client reads that answer: so the
 * server is asked to end the wait as blocking_end does, and its answer
 * decides. True: asked (c stays until the answer); false: close c now (the
 * request failed already, or is held by the proxy, not at the server). */
bool blocking_eof(struct client *c);

/* own, a client's own connection, got its server id (the set-up's last
 * answer) after blocking_end or blocking_eof wanted it: CLIENT UNBLOCK now. */
void blocking_id_known(struct sconn *own);

#endif
