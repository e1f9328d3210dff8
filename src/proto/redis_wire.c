/*
 * redis_wire: RESP building blocks. Integer formatting is done by hand into a small
 * stack buffer: these run once per fragment and per reply, printf is not needed.
 */
#include "proto/redis_wire.h"

#include <string.h>

bool redis_wire_int_parse(const uint8_t *p, size_t n, int64_t *out)
{
    bool neg = false;
    if (n > 0 && p[0] == '-') {
        neg = true;
        p++;
        n--;
    }
    /* "0" alone; otherwise 1-9 then digits ("-0", "007" are not numbers to redis) */
    if (n == 0 || n > 19 || p[0] < '0' || p[0] > '9' || (p[0] == '0' && (n > 1 || neg))) {
        return false;
    }
    uint64_t v = 0;
    for (size_t i = 0; i < n; i++) {
        if (p[i] < '0' || p[i] > '9') {
            return false;
        }
        v = v * 10 + (uint64_t)(p[i] - '0'); /* 19 digits cannot overflow uint64 */
    }
    if (v > (uint64_t)INT64_MAX + (neg ? 1u : 0u)) {
        return false;
    }
    *out = neg ? (int64_t)(0 - v) : (int64_t)v;
    return true;
}

#define BYTES(b) (0x0101010101010101ull * (b))

/* Lines of up to 6 digits with the CRLF within the 8 bytes at p (bulk lengths
 * of larger values; one or two digits are taken inline before this), so one load finds the CR,
 * checks every digit and converts them without a branch per byte. 0 when the line is anything else
 * (a sign, a leading zero, longer, cut short, garbage): the byte-wise parser below decides those.
 */
static size_t num_line_word(const uint8_t *p, int64_t *val)
{
    uint64_t w;
    memcpy(&w, p, 8);
    uint64_t x = w ^ BYTES('\r');
    uint64_t cr = (x - BYTES(1)) & ~x & BYTES(0x80); /* exact up to the first CR */
    if (cr == 0) {
        return 0;
    }
    unsigned len = (unsigned)__builtin_ctzll(cr) / 8;
    if (len == 0 || len > 6 || ((w >> (8 * len + 8)) & 0xff) != '\n') {
        return 0;
    }
    uint64_t keep = ((uint64_t)1 << (8 * len)) - 1;
    uint64_t d = w & keep;
    /* every byte '0'..'9': 7-bit, + 0x50 reaches 0x80, + 0x46 does not */
    bool digits = (d & BYTES(0x80)) == 0 &&
                  ((d + BYTES(0x50)) & BYTES(0x80) & keep) == (BYTES(0x80) & keep) &&
                  ((d + BYTES(0x46)) & BYTES(0x80) & keep) == 0;
    if (!digits || (len > 1 && (d & 0xff) == '0')) {
        return 0;
    }
    /* the digits as eight, leading zeros first, then pairs, quads, all eight */
    uint64_t v = (d & BYTES(0x0f)) << (8 * (8 - len));
    v = (v * 10 + (v >> 8)) & 0x00ff00ff00ff00ffull;
    v = (v * 100 + (v >> 16)) & 0x0000ffff0000ffffull;
    v = (v * 10000 + (v >> 32)) & 0xffffffffull;
    *val = (int64_t)v;
    return len + 2;
}

/* One pass over the line: framing numbers are parsed once per request or reply,
 * so scanning and converting happen together. */
int redis_wire_num_line_any(const uint8_t *p, size_t n, size_t pos, int64_t *val, size_t *next)
{
    if (n - pos >= 8) {
        size_t used = num_line_word(p + pos, val);
        if (used != 0) {
            *next = pos + used;
            return PARSE_OK;
        }
    }
    size_t i = pos, lim = n - pos > REDIS_WIRE_NUM_MAX ? pos + REDIS_WIRE_NUM_MAX : n;
    bool neg = i < lim && p[i] == '-';
    i += neg;
    size_t d0 = i;
    uint64_t v = 0;
    while (i < lim && p[i] >= '0' && p[i] <= '9') {
        v = v * 10 + (uint64_t)(p[i++] - '0'); /* a wrap implies > 19 digits: refused below */
    }
    if (i == n) {
        return PARSE_AGAIN;
    }
    size_t digits = i - d0;
    /* garbage fails at the first bad byte, not when CRLF finally comes */
    if (p[i] != '\r' || digits == 0 || digits > 19 || (p[d0] == '0' && (digits > 1 || neg)) ||
        v > (uint64_t)INT64_MAX + neg) {
        return PARSE_ERROR;
    }
    if (i + 1 == n) {
        return PARSE_AGAIN;
    }
    if (p[i + 1] != '\n') {
        return PARSE_ERROR;
    }
    *val = neg ? (int64_t)(0 - v) : (int64_t)v;
    *next = i + 2;
    return PARSE_OK;
}

bool redis_wire_arg_is(const uint8_t *req, struct span s, const char *lower)
{
    size_t n = strlen(lower);
    if (s.len != n) {
        return false;
    }
    const uint8_t *p = req + s.off;
    for (size_t i = 0; i < n; i++) {
        uint8_t ch = p[i];
        if (ch >= 'A' && ch <= 'Z') {
            ch = (uint8_t)(ch + ('a' - 'A'));
        }
        if (ch != (uint8_t)lower[i]) {
            return false;
        }
    }
    return true;
}

void redis_wire_quote(char *dst, size_t cap, const uint8_t *p, size_t n)
{
    size_t max = cap - 4, i;
    for (i = 0; i < n && i < max; i++) {
        dst[i] = (char)(p[i] >= 0x20 && p[i] < 0x7f && p[i] != '\'' ? p[i] : '?');
    }
    if (i < n) {
        memcpy(dst + i, "...", 3);
        i += 3;
    }
    dst[i] = '\0';
}

int redis_wire_num(struct buf *out, char type, int64_t n)
{
    char tmp[REDIS_WIRE_NUM_MAX + 4];
    char *e = tmp + sizeof(tmp), *q = e;
    uint64_t v = n < 0 ? 0 - (uint64_t)n : (uint64_t)n;
    *--q = '\n';
    *--q = '\r';
    do {
        *--q = (char)('0' + v % 10);
        v /= 10;
    } while (v != 0);
    if (n < 0) {
        *--q = '-';
    }
    *--q = type;
    return buf_append(out, q, (size_t)(e - q));
}

int redis_wire_bulk(struct buf *out, const void *p, size_t n)
{
    if (buf_reserve(out, n + REDIS_WIRE_NUM_MAX + 6) != 0 ||
        redis_wire_num(out, '$', (int64_t)n) != 0) {
        return -1;
    }
    buf_append(out, p, n); /* cannot fail: reserved above */
    return buf_append(out, "\r\n", 2);
}

int redis_wire_bulk_str(struct buf *out, const char *s)
{
    return redis_wire_bulk(out, s, strlen(s));
}

static int wire_line(struct buf *out, char type, const char *s)
{
    size_t n = strlen(s);
    if (buf_reserve(out, n + 3) != 0) {
        return -1;
    }
    out->data[out->len++] = (uint8_t)type;
    buf_append(out, s, n);
    return buf_append(out, "\r\n", 2);
}

int redis_wire_status(struct buf *out, const char *s)
{
    return wire_line(out, '+', s);
}

int redis_wire_status_lines(struct buf *out, const char *const *lines, size_t n)
{
    int rc = redis_wire_num(out, '*', (int64_t)n);
    for (size_t i = 0; i < n; i++) {
        rc |= redis_wire_status(out, lines[i]);
    }
    return rc;
}

int redis_wire_error(struct buf *out, const char *s)
{
    return wire_line(out, '-', s);
}

int redis_wire_null(struct buf *out, int resp)
{
    return resp == 3 ? buf_append(out, "_\r\n", 3) : buf_append(out, "$-1\r\n", 5);
}

int redis_wire_null_array(struct buf *out, int resp)
{
    return resp == 3 ? buf_append(out, "_\r\n", 3) : buf_append(out, "*-1\r\n", 5);
}

int redis_wire_map(struct buf *out, int64_t pairs, int resp)
{
    return resp == 3 ? redis_wire_num(out, '%', pairs) : redis_wire_num(out, '*', pairs * 2);
}

int redis_wire_set(struct buf *out, int64_t n, int resp)
{
    return redis_wire_num(out, resp == 3 ? '~' : '*', n);
}

int redis_wire_verbatim(struct buf *out, const char *fmt, const void *p, size_t n, int resp)
{
    if (resp != 3) {
        return redis_wire_bulk(out, p, n);
    }
    if (buf_reserve(out, n + REDIS_WIRE_NUM_MAX + 10) != 0 ||
        redis_wire_num(out, '=', (int64_t)n + 4) != 0) {
        return -1;
    }
    buf_append(out, fmt, 3); /* cannot fail: reserved above */
    buf_append(out, ":", 1);
    buf_append(out, p, n);
    return buf_append(out, "\r\n", 2);
}

size_t redis_wire_u64(char *dst, uint64_t v)
{
    char tmp[20];
    size_t n = 0;
    do {
        tmp[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v != 0);
    for (size_t i = 0; i < n; i++) {
        dst[i] = tmp[n - 1 - i];
    }
    return n;
}

bool redis_wire_u64_parse(const uint8_t *p, size_t n, uint64_t *out)
{
    uint64_t v = 0;
    if (n == 0 || n > 20) {
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        if (p[i] < '0' || p[i] > '9' || v > (UINT64_MAX - (uint64_t)(p[i] - '0')) / 10) {
            return false;
        }
        v = v * 10 + (uint64_t)(p[i] - '0');
    }
    *out = v;
    return true;
}

/* The line after an element's type byte, without its CRLF. */
static struct span wire_elem_line(const uint8_t *p, struct span e)
{
    const uint8_t *cr = memchr(p + e.off, '\r', e.len);
    struct span s = {e.off + 1, 0};
    if (cr != NULL && (size_t)(cr - p) > e.off) {
        s.len = (uint32_t)((size_t)(cr - p) - e.off - 1);
    }
    return s;
}

bool redis_wire_elem_str(const uint8_t *p, struct span e, struct span *s)
{
    if (e.len < 3) {
        return false;
    }
    struct span line = wire_elem_line(p, e);
    if (p[e.off] == '+') {
        *s = line;
        return true;
    }
    int64_t n;
    if (p[e.off] != '$' || !redis_wire_int_parse(p + line.off, line.len, &n) || n < 0 ||
        (uint64_t)line.off + line.len + 2 + (uint64_t)n + 2 != (uint64_t)e.off + e.len) {
        return false;
    }
    s->off = line.off + line.len + 2;
    s->len = (uint32_t)n;
    return true;
}

bool redis_wire_elem_null(const uint8_t *p, struct span e)
{
    const uint8_t *q = p + e.off;
    return (e.len == 3 && memcmp(q, "_\r\n", 3) == 0) ||
           (e.len == 5 && (memcmp(q, "$-1\r\n", 5) == 0 || memcmp(q, "*-1\r\n", 5) == 0));
}

bool redis_wire_elem_int(const uint8_t *p, struct span e, int64_t *v)
{
    if (e.len < 4 || p[e.off] != ':') {
        return false;
    }
    struct span line = wire_elem_line(p, e);
    return line.off + line.len + 2 == e.off + e.len &&
           redis_wire_int_parse(p + line.off, line.len, v);
}
