/*
 * redis_merge: the replies of a request sent to every server (ROUTE_ALL) or to every
 * server of a sharded pool (ROUTE_DATASET) made into the one reply the client expects.
 */
#ifndef NC_PROTO_REDIS_MERGE_H
#define NC_PROTO_REDIS_MERGE_H

#include <stdint.h>

#include "core/buf.h"
#include "proto/proto.h"

/* The error reply a merge answers when a server's reply has the wrong shape. */
#define REDIS_BAD_REPLY "ERR bad reply from server"

/* Append the merged reply for command handling h (enum redis_handling) of a request
 * that went to every server; no reply in rsps is an error (the caller relays the
 * first error). Returns 0, or -1 when h is not such a handling or out of memory. */
int redis_merge_all(struct buf *out, uint8_t h, const struct req_info *info,
                    const struct frag_rsp *rsps, uint32_t nrsps);

#endif
