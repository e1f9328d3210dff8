/*
 * redis_wire: RESP building blocks shared by the redis parsers and reply writers:
 * strict integers, number lines, and appending RESP values to a struct buf.
 */
#ifndef NC_PROTO_REDIS_WIRE_H
#define NC_PROTO_REDIS_WIRE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"
#include "proto/proto.h"

/* Longest number line payload: "-9223372036854775808" is 20 bytes. */
#define REDIS_WIRE_NUM_MAX 20

/* Parse p[0..n) as redis does (string2ll): optional '-', digits, no leading zeros,
 * no '+' or spaces, within int64. */
bool redis_wire_int_parse(const uint8_t *p, size_t n, int64_t *out);

/*
 * Parse the number line that starts at p[pos] (just after its type byte) and ends
 * with CRLF. PARSE_OK sets *val and *next (the offset after the CRLF); PARSE_AGAIN if
 * the line is incomplete; PARSE_ERROR if it is not a number or not CRLF-terminated.
 */
int redis_wire_num_line_any(const uint8_t *p, size_t n, size_t pos, int64_t *val, size_t *next);

/* Inline for the lines nearly all requests and replies are framed with, one or
 * two digits ("*3", "$5", "$16"), and the CRLF already in the buffer. */
static inline int redis_wire_num_line(const uint8_t *p, size_t n, size_t pos, int64_t *val,
                                      size_t *next)
{
    if (n - pos >= 4) {
        unsigned a = (unsigned)p[pos] - '0', b = (unsigned)p[pos + 1] - '0';
        if (a <= 9 && p[pos + 1] == '\r' && p[pos + 2] == '\n') {
            *val = a;
            *next = pos + 3;
            return PARSE_OK;
        }
        if (a - 1 <= 8 && b <= 9 && p[pos + 2] == '\r' && p[pos + 3] == '\n') {
            *val = a * 10 + b;
            *next = pos + 4;
            return PARSE_OK;
        }
    }
    return redis_wire_num_line_any(p, n, pos, val, next);
}

/* Case-insensitive comparison of the argument at req+s with a lower-case word. */
bool redis_wire_arg_is(const uint8_t *req, struct span s, const char *lower);

/* Copy p[0..n) into dst (cap bytes) for an error message: printable, no quotes,
 * cut with "..." when too long, NUL-terminated. */
void redis_wire_quote(char *dst, size_t cap, const uint8_t *p, size_t n);

/* Append "<type><n>\r\n" (array / bulk headers, integers). */
int redis_wire_num(struct buf *out, char type, int64_t n);
int redis_wire_bulk(struct buf *out, const void *p, size_t n);
int redis_wire_bulk_str(struct buf *out, const char *s);
/* Append "+s\r\n" / "-s\r\n"; s must not contain CR or LF. */
int redis_wire_status(struct buf *out, const char *s);
/* An array of n status lines (the HELP replies). */
int redis_wire_status_lines(struct buf *out, const char *const *lines, size_t n);
int redis_wire_error(struct buf *out, const char *s);

/* Replies whose form depends on the client's protocol (resp 2 or 3), as redis 7 writes
 * them: a null ($-1 / _), a map header (*2n / %n), a set header (*n / ~n), a verbatim
 * string (a bulk / =len "fmt:" text, fmt three letters such as "txt"). */
int redis_wire_null(struct buf *out, int resp);
/* A null array (*-1 / _): EXEC's answer when a watched key changed. */
int redis_wire_null_array(struct buf *out, int resp);
int redis_wire_map(struct buf *out, int64_t pairs, int resp);
int redis_wire_set(struct buf *out, int64_t n, int resp);
int redis_wire_verbatim(struct buf *out, const char *fmt, const void *p, size_t n, int resp);

/* Decimal digits of v into dst (at least 20 bytes); returns how many. */
size_t redis_wire_u64(char *dst, uint64_t v);

/* Parse p[0..n) as an unsigned decimal (digits only, within uint64). */
bool redis_wire_u64_parse(const uint8_t *p, size_t n, uint64_t *out);

/* What an element of a parsed reply (span e of p) holds: a string (bulk or simple
 * string: *s is its payload), a null ($-1, *-1, _), an integer. */
bool redis_wire_elem_str(const uint8_t *p, struct span e, struct span *s);
bool redis_wire_elem_null(const uint8_t *p, struct span e);
bool redis_wire_elem_int(const uint8_t *p, struct span e, int64_t *v);

#endif
