/*
 * redis_local: helpers of redis_local() (declared in proto/redis.h) kept in their own
 * files: the COMMAND command, answered from the command table.
 */
#ifndef NC_PROTO_REDIS_LOCAL_H
#define NC_PROTO_REDIS_LOCAL_H

#include "core/buf.h"
#include "proto/proto.h"

/* Append the reply to COMMAND [COUNT | DOCS | INFO ... | LIST | GETKEYS ... | HELP]. */
int redis_local_command(struct buf *out, const uint8_t *req, const struct req_info *info);

#endif
