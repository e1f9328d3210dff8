/*
 * redis: the RESP implementation of struct proto (proto/proto.h), exported as
 * proto_redis. The functions are declared here so tests and fuzzers can call them
 * directly; the core should only use proto_redis.
 *
 * Facts the core relies on (see also proto.h):
 * - ROUTE_LOCAL with cmd REDIS_CMD_NOOP is an empty request (`*0\r\n`, `*-1\r\n`, an
 *   empty inline line): redis_local() answers it with nothing and returns 1.
 * - QUIT is ROUTE_LOCAL with info->quit set; redis_local() answers +OK.
 * - A split command with a single key is returned as ROUTE_KEY: forwarded unchanged,
 *   and the server's own reply is already the right reply.
 * - redis_local() returns 0 for ROUTE_REJECT requests even before AUTH, so the core
 *   answers them with info->err (redis, too, reports unknown commands and a wrong
 *   arity before NOAUTH); for a refusal of the proxy's own (info->refused) it answers
 *   NOAUTH or the subscribed-mode error first, as redis would before running it.
 * - An inline request is rewritten (info->rewritten, info->wire) and classified like
 *   its RESP form; unbalanced quotes, a NUL byte or an unended line over 64 KB are a
 *   PARSE_ERROR whose err is redis' text.
 * - PUBLISH and SPUBLISH are ROUTE_KEY with the channel as their one key.
 * - merge() takes map NULL for ROUTE_ALL (SCRIPT LOAD/EXISTS/FLUSH, FLUSHDB, FLUSHALL)
 *   and for ROUTE_DATASET without a cursor sent to every server (KEYS concatenated,
 *   DBSIZE summed, RANDOMKEY: a key from the server at info->seed % n onwards);
 *   the replies are in server order (SCRIPT LOAD's disagreement names the index).
 * - redis_local() answers from lc->resp (RESP3: maps, nulls `_`, verbatim strings),
 *   HELLO 3 sets lc->resp, RESET sets lc back (resp 2, no name, not subscribed, not
 *   authenticated when there is a password) and is ROUTE_LOCAL with txn DISCARD and
 *   sub UNSUBSCRIBE for the core's own state.
 */
#ifndef NC_PROTO_REDIS_H
#define NC_PROTO_REDIS_H

#include "proto/proto.h"

/* Bounds of a request, as redis enforces them (proto-max-bulk-len, multibulk). */
#define REDIS_MAX_BULK_LEN (512u * 1024 * 1024)
#define REDIS_MAX_ARGC     (1024u * 1024)
/* redis' limits for a client that has not logged in (req_info.unauth) */
#define REDIS_UNAUTH_ARGC_MAX 10
#define REDIS_UNAUTH_BULK_MAX 16384
#define REDIS_MAX_INLINE      (64u * 1024)

int redis_req_parse(const uint8_t *p, size_t n, struct req_info *info);
int redis_rsp_parse(const uint8_t *p, size_t n, uint16_t cmd, struct rsp_info *info);
int redis_frag_build(struct buf *out, const uint8_t *req, const struct req_info *info,
                     const uint32_t *idx, uint32_t nidx);
int redis_merge(struct buf *out, const uint8_t *req, const struct req_info *info,
                const struct frag_map *map, const struct frag_rsp *rsps, uint32_t nrsps);
int redis_error_reply(struct buf *out, const char *msg);
int redis_local(struct buf *out, const uint8_t *req, const struct req_info *info,
                struct local_ctx *lc);
int redis_conn_init(struct buf *out, const char *auth, size_t auth_len, int db, int resp);
int redis_build(struct buf *out, uint32_t argc, const uint8_t *const *argv, const size_t *lens);
int redis_cursor_request(struct buf *out, const uint8_t *req, const struct req_info *info,
                         uint64_t cursor);
int redis_cursor_get(const uint8_t *rsp, const struct rsp_info *ri, uint64_t *cursor);
int redis_cursor_reply(struct buf *out, const uint8_t *rsp, const struct rsp_info *ri,
                       uint64_t cursor);
int redis_text_reply(struct buf *out, const uint8_t *text, size_t len, int resp);
int redis_sub_reply(struct buf *out, uint8_t kind, const uint8_t *chan, size_t len, int64_t count,
                    int resp);

#endif
