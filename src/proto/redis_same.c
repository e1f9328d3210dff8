#include "proto/redis_same.h"

#include <stdlib.h>
#include <string.h>

#include "proto/proto.h"
#include "proto/redis.h"

/* Aggregates nested deeper than this compare as bytes (FUNCTION LIST WITHCODE
 * nests four: libraries, a library, its functions, a function's flags). */
#define SAME_DEPTH 6

static bool same_value(const uint8_t *a, size_t alen, const uint8_t *b, size_t blen, int depth);

/* Element i (a pair from 2i in a map) of a parsed aggregate, as one unit. */
static bool same_unit(const uint8_t *a, const struct rsp_info *ia, uint32_t i, const uint8_t *b,
                      const struct rsp_info *ib, uint32_t j, uint32_t w, int depth)
{
    for (uint32_t k = 0; k < w; k++) {
        struct span x = ia->elems.v[i * w + k], y = ib->elems.v[j * w + k];
        if (!same_value(a + x.off, x.len, b + y.off, y.len, depth)) {
            return false;
        }
    }
    return true;
}

/* Every unit of a has an equal one in b, each of b's used once. */
static bool same_units(const uint8_t *a, const struct rsp_info *ia, const uint8_t *b,
                       const struct rsp_info *ib, uint32_t w, int depth)
{
    uint32_t n = ia->elems.n / w;
    bool *used = calloc(n ? n : 1, sizeof(*used));
    bool all = used != NULL;
    for (uint32_t i = 0; i < n && all; i++) {
        all = false;
        for (uint32_t j = 0; j < n && !all; j++) {
            if (!used[j] && same_unit(a, ia, i, b, ib, j, w, depth)) {
                used[j] = all = true;
            }
        }
    }
    free(used);
    return all;
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
    bool same = redis_rsp_parse(a, alen, 0, &ia) == PARSE_OK && ia.len == alen &&
                redis_rsp_parse(b, blen, 0, &ib) == PARSE_OK && ib.len == blen &&
                ia.elems.n == ib.elems.n &&
                same_units(a, &ia, b, &ib, a[0] == '%' ? 2 : 1, depth - 1);
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

static bool fdump_same_libraries(const uint8_t *a, const struct spans *la, const uint8_t *b,
                                 const struct spans *lb)
{
    bool *used = calloc(la->n ? la->n : 1, sizeof(*used));
    bool all = used != NULL && la->n == lb->n;
    for (uint32_t i = 0; i < la->n && all; i++) {
        all = false;
        for (uint32_t j = 0; j < lb->n && !all; j++) {
            struct span x = la->v[i], y = lb->v[j];
            if (!used[j] && x.len == y.len && memcmp(a + x.off, b + y.off, x.len) == 0) {
                used[j] = all = true;
            }
        }
    }
    free(used);
    return all;
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
    bool same = fdump_libraries(a, alen, &la) && fdump_libraries(b, blen, &lb) &&
                memcmp(a + alen - FDUMP_TRAILER, b + blen - FDUMP_TRAILER, 2) == 0 &&
                fdump_same_libraries(a, &la, b, &lb);
    spans_free(&la);
    spans_free(&lb);
    return same;
}
