/*
 * redis_rsp: the response parser, RESP2 and RESP3.
 *
 * Nesting is handled without recursion or a stack: `pending` counts the values
 * whose header has not been read yet. Each header takes one and an aggregate of n
 * adds n (a map 2n); the response is whole when pending reaches 0. A hostile server
 * nesting a million arrays costs a counter, not a call stack. A top-level
 * aggregate's element i is complete exactly when pending falls below the number of
 * elements not yet closed.
 *
 * A RESP3 attribute (`|n` and n key/value pairs) annotates the value after it and is
 * not a value itself: its header adds 2n and takes nothing, so the attribute travels
 * with the value it precedes (inside that value's element span, or before a
 * top-level reply, whose type is then the value's, not '|').
 */
#include <stdio.h>
#include <string.h>

#include "proto/redis.h"
#include "proto/redis_pubsub.h"
#include "proto/redis_wire.h"

/* The smallest possible value, "+\r\n": a safe lower bound for the hint. */
#define RSP_MIN_VALUE 3u

/* Bounds beyond which a reply cannot be a real redis reply (spans are 32-bit). */
#define RSP_MAX_BULK  ((int64_t)UINT32_MAX)
#define RSP_MAX_COUNT ((int64_t)UINT32_MAX)

struct rsp_state {
    size_t pos;        /* next header */
    uint64_t pending;  /* values still to parse */
    uint64_t top_left; /* top-level elements not closed yet */
    size_t elem_start;
    bool top_seen; /* the top-level value's header was read */
    bool top_agg;  /* ... and it is an aggregate with elements */
};

static int rsp_error(struct rsp_info *info, const char *msg)
{
    snprintf(info->err, sizeof(info->err), "%s", msg);
    return PARSE_ERROR;
}

static int rsp_again(struct rsp_info *info, size_t n, size_t need)
{
    info->len = need > n ? need : n + 1;
    return PARSE_AGAIN;
}

/* A line value (`+`, `-`, `,`, `#`, `(`, `_`): any bytes but CR and LF, ended by CRLF.
 * *end is where its payload ends (at the CR). */
static int rsp_line_skip(const uint8_t *p, size_t n, size_t *pos, size_t *end)
{
    const uint8_t *cr = memchr(p + *pos, '\r', n - *pos);
    if (cr == NULL) { /* a bare LF is garbage now, not after the buffer fills */
        return memchr(p + *pos, '\n', n - *pos) != NULL ? PARSE_ERROR : PARSE_AGAIN;
    }
    size_t e = (size_t)(cr - p);
    if (e + 1 >= n) {
        return PARSE_AGAIN;
    }
    if (p[e + 1] != '\n' || memchr(p + *pos, '\n', e - *pos) != NULL) {
        return PARSE_ERROR;
    }
    *end = e;
    *pos = e + 2;
    return PARSE_OK;
}

/* The payload of a RESP3 scalar line must have its type's shape. */
static bool rsp_line_ok(char type, const uint8_t *s, size_t len)
{
    switch (type) {
    case '_':
        return len == 0;
    case '#':
        return len == 1 && (s[0] == 't' || s[0] == 'f');
    case ',':
        return len > 0;
    default:
        /* '+', '-': any text; '(' too: redis 7 writes the big number a script
         * returns as it is ({big_number='12 34'}), and its connection is shared */
        return true;
    }
}

static bool rsp_is_line(char t)
{
    return t == '+' || t == '-' || t == ',' || t == '#' || t == '(' || t == '_';
}

static bool rsp_is_blob(char t)
{
    return t == '$' || t == '=' || t == '!';
}

static bool rsp_is_agg(char t)
{
    return t == '*' || t == '~' || t == '%' || t == '>' || t == '|';
}

static bool rsp_type_known(char t)
{
    return t == ':' || rsp_is_line(t) || rsp_is_blob(t) || rsp_is_agg(t);
}

/* Read the header at p[pos] (a known type): its number v (line values: 0, '#': 1 for
 * true) and *next, where what follows the header begins. */
static int rsp_header(const uint8_t *p, size_t n, size_t pos, int64_t *v, size_t *next)
{
    char t = (char)p[pos];
    *v = 0;
    if (rsp_is_line(t)) {
        size_t end;
        *next = pos + 1;
        int rc = rsp_line_skip(p, n, next, &end);
        if (rc != PARSE_OK) {
            return rc;
        }
        if (!rsp_line_ok(t, p + pos + 1, end - pos - 1)) {
            return PARSE_ERROR;
        }
        *v = t == '#' && p[pos + 1] == 't'; /* checked: "t" or "f" is there */
        return PARSE_OK;
    }
    return redis_wire_num_line(p, n, pos + 1, v, next);
}

/* Only RESP2's null bulk and null array may be negative. */
static const char *rsp_count_bad(char type, int64_t v)
{
    if (!rsp_is_blob(type) && !rsp_is_agg(type)) {
        return NULL; /* an integer */
    }
    if (v < -1 || (v == -1 && type != '$' && type != '*')) {
        return "negative length";
    }
    if (rsp_is_blob(type) && v > RSP_MAX_BULK) {
        return "bulk too large";
    }
    if (rsp_is_agg(type) && v > RSP_MAX_COUNT) {
        return "array too large";
    }
    return NULL;
}

static void rsp_top(struct rsp_state *st, struct rsp_info *info, char type, int64_t v, size_t next)
{
    info->type = type;
    info->is_error = type == '-' || type == '!';
    info->integer = type == ':' || type == '#' || rsp_is_blob(type) || rsp_is_agg(type) ? v : 0;
    st->top_seen = true;
    st->top_agg = rsp_is_agg(type) && v > 0;
    st->top_left = st->pending;
    st->elem_start = next;
}

/* Parse the header (and blob payload) of one value at st->pos. */
static int rsp_value(const uint8_t *p, size_t n, struct rsp_state *st, struct rsp_info *info)
{
    size_t pos = st->pos, next;
    if (pos >= n) {
        return rsp_again(info, n, pos + st->pending * RSP_MIN_VALUE);
    }
    char type = (char)p[pos];
    int64_t v;
    if (!rsp_type_known(type)) {
        return rsp_error(info, "unknown reply type");
    }
    int rc = rsp_header(p, n, pos, &v, &next);
    if (rc == PARSE_AGAIN) {
        return rsp_again(info, n, pos + st->pending * RSP_MIN_VALUE);
    }
    if (rc == PARSE_ERROR) {
        return rsp_error(info, "malformed line");
    }
    const char *bad = rsp_count_bad(type, v);
    if (bad != NULL) {
        return rsp_error(info, bad);
    }
    bool top = !st->top_seen && st->pending == 1 && type != '|';
    if (type != '|') {
        st->pending--; /* an attribute is not a value: it annotates the next one */
    }
    if (rsp_is_blob(type) && v >= 0) {
        size_t end = next + (size_t)v + 2;
        if (end > n) {
            return rsp_again(info, n, end + st->pending * RSP_MIN_VALUE);
        }
        if (p[end - 2] != '\r' || p[end - 1] != '\n') {
            return rsp_error(info, "missing CRLF after bulk");
        }
        next = end;
    } else if (rsp_is_agg(type) && v > 0) {
        st->pending += (uint64_t)v * (type == '%' || type == '|' ? 2 : 1);
    }
    if (next > UINT32_MAX) {
        return rsp_error(info, "reply too large"); /* spans are 32-bit */
    }
    if (top) {
        rsp_top(st, info, type, v, next);
    }
    st->pos = next;
    return PARSE_OK;
}

/* After a value: close the top-level element that is now complete, if any. */
static int rsp_elem_close(struct rsp_state *st, struct rsp_info *info)
{
    if (!st->top_agg || st->pending >= st->top_left) {
        return 0;
    }
    /* pending < top_left: exactly one element ended (pending drops one per header) */
    st->top_left--;
    uint32_t off = (uint32_t)st->elem_start, len = (uint32_t)(st->pos - st->elem_start);
    st->elem_start = st->pos;
    return spans_push(&info->elems, off, len);
}

/* The most common reply, one whole bulk string or RESP2 null (GET's), read
 * without the walk below; false leaves everything else (a cut reply, errors,
 * other types) to it. */
static bool rsp_plain_bulk(const uint8_t *p, size_t n, struct rsp_info *info)
{
    int64_t v;
    size_t next;
    if (n < 5 || p[0] != '$' || redis_wire_num_line(p, n, 1, &v, &next) != PARSE_OK || v < -1 ||
        v > RSP_MAX_BULK) {
        return false;
    }
    size_t end = v < 0 ? next : next + (size_t)v + 2;
    if (v >= 0 && (end > n || end > UINT32_MAX || p[end - 2] != '\r' || p[end - 1] != '\n')) {
        return false;
    }
    info->type = '$';
    info->integer = v;
    info->len = end;
    return true;
}

int redis_rsp_parse(const uint8_t *p, size_t n, uint16_t cmd, struct rsp_info *info)
{
    struct rsp_state st = {0, 1, 0, 0, false, false};
    rsp_info_reset(info);
    if (n >= 5 && memcmp(p, "+OK\r\n", 5) == 0) {
        info->type = '+'; /* SET's reply, the other most common one */
        info->len = 5;
        redis_push_classify(p, cmd, info);
        return PARSE_OK;
    }
    if (rsp_plain_bulk(p, n, info)) {
        redis_push_classify(p, cmd, info);
        return PARSE_OK;
    }
    int rc = PARSE_OK;
    while (rc == PARSE_OK && st.pending > 0) {
        bool inside = st.top_seen;
        rc = rsp_value(p, n, &st, info);
        if (rc == PARSE_OK && inside && rsp_elem_close(&st, info) != 0) {
            return rsp_error(info, "out of memory");
        }
    }
    if (rc != PARSE_OK) {
        return rc;
    }
    info->len = st.pos;
    redis_push_classify(p, cmd, info);
    return PARSE_OK;
}
