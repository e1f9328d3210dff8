#include "core/buf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BUF_LINEAR_STEP ((size_t)1 << 20)

void buf_init(struct buf *b)
{
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
}

void buf_free(struct buf *b)
{
    free(b->data);
    buf_init(b);
}

int buf_reserve(struct buf *b, size_t extra)
{
    if (b->cap - b->len >= extra) {
        return 0;
    }
    size_t need = b->len + extra;
    size_t cap = b->cap ? b->cap : 64;
    if (need > BUF_LINEAR_STEP) {
        /* past 1 MB grow by 1 MB steps, so a buffer holding N bytes never
         * takes 2N of memory (a mapped buffer, over memlimit_tune_allocator's
         * 8 MB, moves its pages at realloc; a heap one copies at most 8 MB) */
        cap = (need + BUF_LINEAR_STEP - 1) / BUF_LINEAR_STEP * BUF_LINEAR_STEP;
    }
    while (cap < need) {
        cap *= 2;
    }
    uint8_t *p = realloc(b->data, cap);
    if (p == NULL) {
        return -1;
    }
    b->data = p;
    b->cap = cap;
    return 0;
}

int buf_reserve_exact(struct buf *b, size_t extra)
{
    if (b->cap - b->len >= extra) {
        return 0;
    }
    uint8_t *p = realloc(b->data, b->len + extra);
    if (p == NULL) {
        return -1;
    }
    b->data = p;
    b->cap = b->len + extra;
    return 0;
}

int buf_trim(struct buf *b, size_t slack)
{
    if (b->cap - b->len <= slack || b->len == 0) {
        return 0;
    }
    uint8_t *p = realloc(b->data, b->len);
    if (p == NULL) {
        return -1;
    }
    b->data = p;
    b->cap = b->len;
    return 0;
}

int buf_append(struct buf *b, const void *p, size_t n)
{
    if (n == 0) {
        return 0;
    }
    if (buf_reserve(b, n) != 0) {
        return -1;
    }
    memcpy(b->data + b->len, p, n);
    b->len += n;
    return 0;
}

int buf_append_str(struct buf *b, const char *s)
{
    return buf_append(b, s, strlen(s));
}

int buf_append_u64(struct buf *b, uint64_t v)
{
    char d[20];
    size_t n = 0;
    do {
        d[sizeof(d) - 1 - n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v != 0);
    return buf_append(b, d + sizeof(d) - n, n);
}

int buf_append_i64(struct buf *b, int64_t v)
{
    if (v >= 0) {
        return buf_append_u64(b, (uint64_t)v);
    }
    /* (the magnitude of INT64_MIN does not fit an int64_t: negated unsigned) */
    return buf_append(b, "-", 1) | buf_append_u64(b, 0 - (uint64_t)v);
}

int buf_vprintf(struct buf *b, const char *fmt, va_list ap)
{
    va_list ap2;
    va_copy(ap2, ap);
    int n = vsnprintf(NULL, 0, fmt, ap2);
    va_end(ap2);
    if (n < 0 || buf_reserve(b, (size_t)n + 1) != 0) {
        return -1;
    }
    vsnprintf((char *)b->data + b->len, (size_t)n + 1, fmt, ap);
    b->len += (size_t)n;
    return 0;
}

int buf_printf(struct buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int rc = buf_vprintf(b, fmt, ap);
    va_end(ap);
    return rc;
}

int buf_json_str(struct buf *b, const char *s)
{
    int rc = buf_append_str(b, "\"");
    for (const unsigned char *p = (const unsigned char *)(s ? s : ""); *p && rc == 0; p++) {
        if (*p == '"' || *p == '\\') {
            rc = buf_printf(b, "\\%c", *p);
        } else if (*p < 0x20) {
            rc = buf_printf(b, "\\u%04x", *p);
        } else {
            rc = buf_append(b, p, 1);
        }
    }
    return rc == 0 ? buf_append_str(b, "\"") : rc;
}

void buf_consume(struct buf *b, size_t n)
{
    if (n >= b->len) {
        b->len = 0;
        return;
    }
    memmove(b->data, b->data + n, b->len - n);
    b->len -= n;
}
