#include "proto/redis_same.h"

#include <stdlib.h>
#include <string.h>

#include "proto/proto.h"
#include "proto/redis.h"

/* Aggregates nested deeper than this compare as bytes (FUNCTION LIST WITHCODE
 * nests four: libraries, a library, its functions, a function's flags). */
#define SAME_DEPTH 6

static bool same_value(const uint8_t *a, size_t alen, const uint8_t *b, size_t blen, int depth);

/* Whether a's n items match b's n one for one, eq(ctx, i, j) saying whether
 * item i of a is item j of b (an equivalence: taking the first match is exact). */
static bool same_matched(uint32_t n, bool (*eq)(const void *ctx, uint32_t i, uint32_t j),
                         const void *ctx)
{
    bool *used = calloc(n ? n : 1, sizeof(*used));
    bool all = used != NULL;
    for (uint32_t i = 0; i < n && all; i++) {
        all = false;
        for (uint32_t j = 0; j < n && !all; j++) {
            if (!used[j] && eq(ctx, i, j)) {
                used[j] = all = true;
            }
        }
    }
    free(used);
    return all;
}

/* Two parsed aggregates whose units (an element, a pair in a map: w of them)
 * are compared. */
struct same_agg {
    const uint8_t *a, *b;
    const struct rsp_info *ia, *ib;
    uint32_t w;
    int depth;
};

static bool same_unit(const void *ctx, uint32_t i, uint32_t j)
{
    const struct same_agg *g = ctx;
    for (uint32_t k = 0; k < g->w; k++) {
        struct span x = g->ia->elems.v[i * g->w + k], y = g->ib->elems.v[j * g->w + k];
        if (!same_value(g->a + x.off, x.len, g->b + y.off, y.len, g->depth)) {
            return false;
        }
    }
    return true;
}

static bool same_value(const uint8_t *a, size_t alen, const uint8_t *b, size_t blen, int depth)
{
    if (alen == blen && memcmp(a, b, alen) == 0) {
        return true;
    }
    if (depth == 0 || alen == 0 || blen == 0 || a[0] != b[0] || a[0] == '\0' ||
        strchr("*~%", a[0]) == NULL) {
        return false;
    }
    struct rsp_info ia, ib;
    rsp_info_init(&ia);
    rsp_info_init(&ib);
    struct same_agg g = {a, b, &ia, &ib, a[0] == '%' ? 2 : 1, depth - 1};
    bool same = redis_rsp_parse(a, alen, 0, &ia) == PARSE_OK && ia.len == alen &&
                redis_rsp_parse(b, blen, 0, &ib) == PARSE_OK && ib.len == blen &&
                ia.elems.n == ib.elems.n && same_matched(ia.elems.n / g.w, same_unit, &g);
    rsp_info_free(&ia);
    rsp_info_free(&ib);
    return same;
}

bool redis_same_unordered(const uint8_t *a, size_t alen, const uint8_t *b, size_t blen)
{
    return same_value(a, alen, b, blen, SAME_DEPTH);
}

/* ---------------------------------------------------------- FUNCTION DUMP */

/* A payload (redis' createDumpPayload): the libraries, each the opcode
 * RDB_OPCODE_FUNCTION2 (245) and its code as an RDB string, then the RDB
 * version (2 bytes) and a CRC64 (8 bytes). */
#define FDUMP_TRAILER 10
#define FDUMP_OPCODE  245

/* An RDB length at p[*pos]: *special for an encoded string's type byte (11xxxxxx:
 * *len is then the encoding). */
static bool fdump_len(const uint8_t *p, size_t n, size_t *pos, uint64_t *len, bool *special)
{
    if (*pos >= n) {
        return false;
    }
    uint8_t b = p[*pos];
    size_t bytes = (b >> 6) == 1 ? 1 : b == 0x80 ? 4 : b == 0x81 ? 8 : 0;
    *special = (b >> 6) == 3;
    if ((b >> 6) == 2 && bytes == 0) {
        return false;
    }
    if (n - *pos - 1 < bytes) {
        return false;
    }
    *len = (b >> 6) == 2 ? 0 : (uint64_t)(b & 0x3f);
    for (size_t i = 1; i <= bytes; i++) {
        *len = *len << 8 | p[*pos + i];
    }
    *pos += 1 + bytes;
    return true;
}

/* Skip an RDB string: plain, an integer (1, 2 or 4 bytes) or LZF-compressed
 * (compressed length, original length, the compressed bytes). */
static bool fdump_string(const uint8_t *p, size_t n, size_t *pos)
{
    uint64_t len, olen;
    bool special, s2;
    if (!fdump_len(p, n, pos, &len, &special)) {
        return false;
    }
    if (special) {
        static const uint8_t ints[3] = {1, 2, 4};
        if (len < 3) {
            len = ints[len];
        } else if (len != 3 || !fdump_len(p, n, pos, &len, &s2) || s2 ||
                   !fdump_len(p, n, pos, &olen, &s2) || s2) {
            return false;
        }
    }
    if (len > n - *pos) {
        return false;
    }
    *pos += len;
    return true;
}

/* The libraries of payload p[0..n) as spans (opcode and code each). */
static bool fdump_libraries(const uint8_t *p, size_t n, struct spans *libs)
{
    if (n < FDUMP_TRAILER) {
        return false;
    }
    size_t end = n - FDUMP_TRAILER, pos = 0;
    while (pos < end) {
        size_t start = pos;
        if (p[pos++] != FDUMP_OPCODE || !fdump_string(p, end, &pos) ||
            spans_push(libs, (uint32_t)start, (uint32_t)(pos - start)) != 0) {
            return false;
        }
    }
    return true;
}

/* Two payloads' libraries (spans of a and b). */
struct same_libs {
    const uint8_t *a, *b;
    const struct spans *la, *lb;
};

static bool fdump_same_library(const void *ctx, uint32_t i, uint32_t j)
{
    const struct same_libs *g = ctx;
    struct span x = g->la->v[i], y = g->lb->v[j];
    return x.len == y.len && memcmp(g->a + x.off, g->b + y.off, x.len) == 0;
}

bool redis_same_fdump(const uint8_t *a, size_t alen, const uint8_t *b, size_t blen)
{
    if (alen == blen && memcmp(a, b, alen) == 0) {
        return true;
    }
    if (alen > UINT32_MAX || blen > UINT32_MAX) {
        return false;
    }
    struct spans la, lb;
    spans_init(&la);
    spans_init(&lb);
    struct same_libs g = {a, b, &la, &lb};
    bool same = fdump_libraries(a, alen, &la) && fdump_libraries(b, blen, &lb) &&
                memcmp(a + alen - FDUMP_TRAILER, b + blen - FDUMP_TRAILER, 2) == 0 &&
                la.n == lb.n && same_matched(la.n, fdump_same_library, &g);
    spans_free(&la);
    spans_free(&lb);
    return same;
}
