/*
 * redis_same: whether the replies of two servers to a request sent to every server
 * say the same, where a server is free to order what it lists (FUNCTION LIST lists
 * libraries and functions in its dictionaries' order, which a random hash seed
 * makes differ from one process to the next; FUNCTION DUMP writes the libraries in
 * that order too). Pure functions over complete replies.
 */
#ifndef NC_PROTO_REDIS_SAME_H
#define NC_PROTO_REDIS_SAME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Two complete RESP replies, the same up to the order of the elements of each
 * aggregate (array, set, map, at any depth up to a bound; deeper ones as bytes). */
bool redis_same_unordered(const uint8_t *a, size_t alen, const uint8_t *b, size_t blen);

/* Two FUNCTION DUMP payloads (the bulk strings' contents) holding the same
 * libraries in any order, of the same RDB version (their checksums differ with
 * the order and are not compared). A payload that cannot be read compares as
 * bytes. */
bool redis_same_fdump(const uint8_t *a, size_t alen, const uint8_t *b, size_t blen);

#endif
