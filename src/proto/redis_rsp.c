/*
 * redis_rsp: the RESP2 response parser.
 *
 * Nesting is handled without recursion or a stack: `pending` counts the values
 * whose header has not been read yet. Each header takes one and an array of n adds
 * n; the response is whole when pending reaches 0. A hostile server nesting a
 * million arrays costs a counter, not a call stack. A top-level array's element i
 * is complete exactly when pending falls back to the number of elements after it.
 */
#include <stdio.h>
#include <string.h>

#include "proto/redis.h"
#include "proto/redis_wire.h"

/* The smallest possible value, "+\r\n": a safe lower bound for the hint. */
#define RSP_MIN_VALUE 3u

/* Bounds beyond which a reply cannot be a real redis reply (spans are 32-bit). */
#define RSP_MAX_BULK  ((int64_t)UINT32_MAX)
#define RSP_MAX_COUNT ((int64_t)UINT32_MAX)

struct rsp_state {
    size_t pos;        /* next header */
    uint64_t pending;  /* values still to parse */
    uint64_t top_left; /* top-level array elements after the current one */
    size_t elem_start;
    bool top_array;
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

/* A '+' / '-' line: any bytes but CR and LF, ended by CRLF. */
static int rsp_line_skip(const uint8_t *p, size_t n, size_t *pos)
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
    *pos = e + 2;
    return PARSE_OK;
}

/* Parse the header (and bulk payload) of one value at st->pos. */
static int rsp_value(const uint8_t *p, size_t n, struct rsp_state *st, struct rsp_info *info,
                     bool top)
{
    size_t pos = st->pos;
    if (pos >= n) {
        return rsp_again(info, n, pos + st->pending * RSP_MIN_VALUE);
    }
    char type = (char)p[pos];
    int64_t v = 0;
    size_t next;
    int rc;
    if (type == '+' || type == '-') {
        next = pos + 1;
        rc = rsp_line_skip(p, n, &next);
    } else if (type == ':' || type == '$' || type == '*') {
        rc = redis_wire_num_line(p, n, pos + 1, &v, &next);
    } else {
        return rsp_error(info, "unknown reply type");
    }
    if (rc == PARSE_AGAIN) {
        return rsp_again(info, n, pos + st->pending * RSP_MIN_VALUE);
    }
    if (rc == PARSE_ERROR) {
        return rsp_error(info, "malformed line");
    }
    st->pending--;
    if (type == '$' && v >= 0) {
        if (v > RSP_MAX_BULK) {
            return rsp_error(info, "bulk too large");
        }
        size_t end = next + (size_t)v + 2;
        if (end > n) {
            return rsp_again(info, n, end + st->pending * RSP_MIN_VALUE);
        }
        if (p[end - 2] != '\r' || p[end - 1] != '\n') {
            return rsp_error(info, "missing CRLF after bulk");
        }
        next = end;
    } else if (type == '*' && v > 0) {
        if (v > RSP_MAX_COUNT) {
            return rsp_error(info, "array too large");
        }
        st->pending += (uint64_t)v;
    } else if ((type == '$' || type == '*') && v < -1) {
        return rsp_error(info, "negative length");
    }
    if (next > UINT32_MAX) {
        return rsp_error(info, "reply too large"); /* spans are 32-bit */
    }
    if (top) {
        info->type = type;
        info->is_error = type == '-';
        info->integer = (type == ':' || type == '*' || type == '$') ? v : 0;
        st->top_array = type == '*' && v > 0;
        st->top_left = st->pending;
        st->elem_start = next;
    }
    st->pos = next;
    return PARSE_OK;
}

/* After a value: close every top-level element that is now complete. */
static int rsp_elem_close(struct rsp_state *st, struct rsp_info *info)
{
    if (!st->top_array || st->pending >= st->top_left) {
        return 0;
    }
    /* pending < top_left: exactly one element ended (pending drops one per header) */
    st->top_left--;
    uint32_t off = (uint32_t)st->elem_start, len = (uint32_t)(st->pos - st->elem_start);
    st->elem_start = st->pos;
    return spans_push(&info->elems, off, len);
}

int redis_rsp_parse(const uint8_t *p, size_t n, uint16_t cmd, struct rsp_info *info)
{
    struct rsp_state st = {0, 1, 0, 0, false};
    rsp_info_reset(info);
    int rc = rsp_value(p, n, &st, info, true);
    while (rc == PARSE_OK && st.pending > 0) {
        rc = rsp_value(p, n, &st, info, false);
        if (rc == PARSE_OK && rsp_elem_close(&st, info) != 0) {
            return rsp_error(info, "out of memory");
        }
    }
    if (rc == PARSE_OK) {
        info->len = st.pos;
    }
    return rc;
}
