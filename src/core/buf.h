/*
 * buf: a growable byte string used wherever a module builds bytes for someone
 * else (replies, rebuilt fragment requests, JSON). Plain struct, owned by whoever
 * embeds it; buf_free() gives the memory back.
 */
#ifndef NC_CORE_BUF_H
#define NC_CORE_BUF_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

struct buf {
    uint8_t *data;
    size_t len;
    size_t cap;
};

void buf_init(struct buf *b);
void buf_free(struct buf *b);
/* Make room for at least `extra` more bytes; returns 0, or -1 when out of memory. */
int buf_reserve(struct buf *b, size_t extra);
/* The same, growing to exactly len + extra when it must grow: for a caller
 * that knows what is coming, so the buffer holds no rounding on top of it. */
int buf_reserve_exact(struct buf *b, size_t extra);
/* Shrink the buffer to its bytes when more than `slack` of it is spare (an
 * empty one is left as it is); returns -1 when realloc failed (nothing changed). */
int buf_trim(struct buf *b, size_t slack);
int buf_append(struct buf *b, const void *p, size_t n);
int buf_append_str(struct buf *b, const char *s);
int buf_printf(struct buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* v in decimal: what %lld / %llu print, without printf's cost (a stats
 * document of thousands of servers is mostly numbers). */
int buf_append_i64(struct buf *b, int64_t v);
int buf_append_u64(struct buf *b, uint64_t v);
/* s as a JSON string, quotes included (NULL: ""): names and error texts come
 * from files and the network, and may hold quotes, backslashes, control bytes. */
int buf_json_str(struct buf *b, const char *s);
int buf_vprintf(struct buf *b, const char *fmt, va_list ap);
/* Drop the first n bytes (memmove); n > len empties the buffer. */
void buf_consume(struct buf *b, size_t n);
static inline void buf_reset(struct buf *b)
{
    b->len = 0;
}

#endif
