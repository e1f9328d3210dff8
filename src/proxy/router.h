/*
 * router: what happens to one parsed request: a local answer, an error, or
 * forwarding to the server route.c names, to the servers owning its keys
 * (split), or to all of them.
 */
#ifndef NC_ROUTER_H
#define NC_ROUTER_H

#include <stdint.h>

#include "proto/proto.h"

struct client;

void router_dispatch(struct client *c, const uint8_t *p, const struct req_info *ri);
/* Queue an error reply (in the client's protocol) in request order. */
void router_reply_error(struct client *c, const char *msg);

#endif
