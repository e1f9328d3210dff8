/*
 * router: what happens to one parsed request: a local answer, an error, or
 * forwarding to the server route.c names, to the servers owning its keys
 * (split), or to all of them.
 */
#ifndef NC_ROUTER_H
#define NC_ROUTER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "proto/proto.h"
#include "proxy/req.h"

struct client;
struct sconn;

/* Route the parsed request at p (answered locally, queued in a transaction,
 * or sent). False: it waits for its server to be known (client_wait_server);
 * its bytes must stay, and nothing after them is dispatched. */
bool router_dispatch(struct client *c, const uint8_t *p, const struct req_info *ri);
/* Queue an error reply (in the client's protocol) in request order. */
void router_reply_error(struct client *c, const char *msg);
/* c's request failed at its server (none to be reached, or none live):
 * twemproxy's error in its place (none when noreply), or with the pool's
 * server_failure_closes_client c is closed after the replies before it.
 * Counts forward_error once. */
void router_fail(struct client *c, const char *msg, bool noreply);
/* A client's SCAN cursor as redis reads it (strtoull): digits that fit 64 bits,
 * a sign before them ("-1" wraps), "" is 0. */
bool router_cursor_parse(const uint8_t *s, size_t n, uint64_t *v);
/* Send the client's SCAN to sc with the server's own cursor; the reply goes
 * through fn (which makes the pool-wide cursor) with arg and ctx. */
void router_send_cursor(struct client *c, struct sconn *sc, const uint8_t *p,
                        const struct req_info *ri, uint64_t cursor, req_reply_fn fn, uint64_t arg,
                        void *ctx);

#endif
