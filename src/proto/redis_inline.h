/*
 * redis_inline: inline requests (telnet's `SET k "a b"`) rewritten as RESP requests.
 * Used by the request parser only.
 */
#ifndef NC_PROTO_REDIS_INLINE_H
#define NC_PROTO_REDIS_INLINE_H

#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"
#include "proto/proto.h"

/*
 * Split the inline request line p[0..n) (its line end removed, no NUL byte in it) into
 * arguments as redis does, and write the RESP request they make to wire (emptied
 * first), with args set to the arguments' spans inside wire.
 * Returns the argument count (0 for a blank line), -1 for unbalanced quotes, -2 when
 * out of memory.
 */
int redis_inline_rewrite(const uint8_t *p, size_t n, struct buf *wire, struct spans *args);

#endif
