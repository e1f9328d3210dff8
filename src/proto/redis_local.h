/*
 * redis_local: helpers of redis_local() (declared in proto/redis.h) kept in their own
 * files: the COMMAND command, answered from the command table, and CLIENT, about the
 * client's own connection to the proxy.
 */
#ifndef NC_PROTO_REDIS_LOCAL_H
#define NC_PROTO_REDIS_LOCAL_H

#include <stdbool.h>

#include "core/buf.h"
#include "proto/proto.h"

#define REDIS_LOCAL_BAD_NAME                                                                       \
    "ERR Client names cannot contain spaces, newlines or special characters."

/* Append the reply to COMMAND [COUNT | DOCS | INFO ... | LIST | GETKEYS ... | HELP] for a
 * client speaking RESP resp. */
int redis_local_command(struct buf *out, const uint8_t *req, const struct req_info *info, int resp);

/* Append the reply to a CLIENT subcommand the proxy answers (info->cmd says which). */
int redis_local_client(struct buf *out, const uint8_t *req, const struct req_info *info,
                       struct local_ctx *lc);

/* A connection name as redis accepts it: printable ASCII, no space. */
bool redis_local_name_ok(const uint8_t *p, size_t n);
/* Set lc->name (empty: no name); 0, or -1 when out of memory. */
int redis_local_name_set(struct local_ctx *lc, const uint8_t *p, size_t n);

#endif
