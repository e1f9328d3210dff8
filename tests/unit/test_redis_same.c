/*
 * test_redis_same: replies that list the same things in another order (FUNCTION
 * LIST, RESP2 and RESP3, nested), and FUNCTION DUMP payloads laid out as redis
 * 7.0.15 writes them (libraries in any order, plain, integer-encoded and
 * LZF-compressed strings), against ones that differ or cannot be read.
 */
#include <string.h>

#include "proto/redis_same.h"
#include "unit.h"

#define S(x) (const uint8_t *)(x), sizeof(x) - 1

static bool same(const char *a, const char *b)
{
    return redis_same_unordered((const uint8_t *)a, strlen(a), (const uint8_t *)b, strlen(b));
}

static void test_unordered(void)
{
    CHECK(same("+OK\r\n", "+OK\r\n"));
    CHECK(!same("+OK\r\n", "+KO\r\n"));
    CHECK(same("*2\r\n$1\r\na\r\n$1\r\nb\r\n", "*2\r\n$1\r\nb\r\n$1\r\na\r\n"));
    CHECK(!same("*2\r\n$1\r\na\r\n$1\r\na\r\n", "*2\r\n$1\r\na\r\n$1\r\nb\r\n")); /* a multiset */
    CHECK(!same("*2\r\n$1\r\na\r\n$1\r\nb\r\n", "*3\r\n$1\r\na\r\n$1\r\nb\r\n$1\r\nc\r\n"));
    CHECK(!same("*1\r\n$1\r\na\r\n", "~1\r\n$1\r\na\r\n")); /* another type */
    /* libraries, each with its functions in another order (FUNCTION LIST, RESP2) */
    CHECK(
        same("*2\r\n"
             "*4\r\n$4\r\nname\r\n$2\r\nl1\r\n$9\r\nfunctions\r\n*2\r\n$2\r\nf1\r\n$2\r\nf2\r\n"
             "*4\r\n$4\r\nname\r\n$2\r\nl2\r\n$9\r\nfunctions\r\n*1\r\n$2\r\ng1\r\n",
             "*2\r\n"
             "*4\r\n$4\r\nname\r\n$2\r\nl2\r\n$9\r\nfunctions\r\n*1\r\n$2\r\ng1\r\n"
             "*4\r\n$4\r\nname\r\n$2\r\nl1\r\n$9\r\nfunctions\r\n*2\r\n$2\r\nf2\r\n$2\r\nf1\r\n"));
    /* a function that moved to the other library is a difference */
    CHECK(!same("*2\r\n"
                "*4\r\n$4\r\nname\r\n$2\r\nl1\r\n$9\r\nfunctions\r\n*2\r\n$2\r\nf1\r\n$2\r\nf2\r\n"
                "*4\r\n$4\r\nname\r\n$2\r\nl2\r\n$9\r\nfunctions\r\n*1\r\n$2\r\ng1\r\n",
                "*2\r\n"
                "*4\r\n$4\r\nname\r\n$2\r\nl1\r\n$9\r\nfunctions\r\n*2\r\n$2\r\nf1\r\n$2\r\ng1\r\n"
                "*4\r\n$4\r\nname\r\n$2\r\nl2\r\n$9\r\nfunctions\r\n*1\r\n$2\r\nf2\r\n"));
    /* RESP3 maps: pairs in any order, a key never matched with a value */
    CHECK(same("%2\r\n+a\r\n:1\r\n+b\r\n:2\r\n", "%2\r\n+b\r\n:2\r\n+a\r\n:1\r\n"));
    CHECK(!same("%2\r\n+a\r\n+b\r\n+b\r\n+a\r\n", "%2\r\n+a\r\n+a\r\n+b\r\n+b\r\n"));
    /* broken or cut replies are only the same as the same bytes */
    CHECK(!same("*2\r\n$1\r\na\r\n", "*2\r\n$1\r\na\r\n$1\r\nb"));
    CHECK(same("*2\r\n$1\r\na\r\n", "*2\r\n$1\r\na\r\n"));
}

/* A payload of libraries lib[order[0]], lib[order[1]]... in the layout of
 * redis' FUNCTION DUMP, with an arbitrary checksum. */
static size_t dump(uint8_t *out, const char *const *libs, const int *order, size_t n, uint8_t crc)
{
    size_t len = 0;
    for (size_t i = 0; i < n; i++) {
        const char *e = libs[order[i]];
        size_t el = strlen(e);
        if (e[0] == '!') { /* an entry given whole, as bytes after the '!' */
            memcpy(out + len, e + 1, el - 1);
            len += el - 1;
            continue;
        }
        out[len++] = 245;
        out[len++] = (uint8_t)(0x40 | (el >> 8)); /* a 14-bit length, as redis wrote it */
        out[len++] = (uint8_t)(el & 0xff);
        memcpy(out + len, e, el);
        len += el;
    }
    out[len++] = 10; /* RDB version 10, little-endian */
    out[len++] = 0;
    memset(out + len, crc, 8);
    return len + 8;
}

static void test_fdump(void)
{
    static const char *const libs[] = {
        "#!lua name=l0\nredis.register_function('f0', function(k) return 0 end)",
        "#!lua name=l1\nredis.register_function('f1', function(k) return 1 end)",
        "#!lua name=l2\nredis.register_function('f2', function(k) return 2 end)",
        "!\xf5\xc3\x05\011abcde", /* LZF: compressed length 5, original 9, 5 bytes */
        "!\xf5\xc0\x07",          /* an 8-bit integer */
        "!\xf5\x02xy",            /* a 6-bit length */
    };
    uint8_t a[1024], b[1024];
    int fwd[] = {0, 1, 2, 3, 4, 5}, back[] = {5, 4, 3, 2, 1, 0};
    size_t na = dump(a, libs, fwd, 6, 0x11), nb = dump(b, libs, back, 6, 0x22);
    CHECK(redis_same_fdump(a, na, b, nb));
    CHECK(redis_same_fdump(a, na, a, na));
    /* one library fewer, or twice the same one */
    int fewer[] = {5, 4, 3, 2, 1}, twice[] = {0, 0, 2, 3, 4, 5};
    nb = dump(b, libs, fewer, 5, 0x22);
    CHECK(!redis_same_fdump(a, na, b, nb));
    nb = dump(b, libs, twice, 6, 0x22);
    CHECK(!redis_same_fdump(a, na, b, nb));
    /* another RDB version */
    nb = dump(b, libs, back, 6, 0x22);
    b[nb - 10] = 11;
    CHECK(!redis_same_fdump(a, na, b, nb));
    /* dumps of no library: the same when their versions are */
    CHECK(!redis_same_fdump(a + na - 10, 10, b + nb - 10, 10));
    b[nb - 10] = 10;
    CHECK(redis_same_fdump(a + na - 10, 10, b + nb - 10, 10));
    /* what cannot be read (a cut, an unknown opcode, a bad length) compares as bytes */
    for (size_t cut = 0; cut < na; cut++) {
        CHECK(!redis_same_fdump(a, cut, b, nb));
        CHECK(redis_same_fdump(a, cut, a, cut));
    }
    uint8_t c[1024];
    memcpy(c, a, na);
    c[0] = 244;
    CHECK(!redis_same_fdump(c, na, b, nb));
    memcpy(c, a, na);
    c[1] = 0x82; /* no such length */
    CHECK(!redis_same_fdump(c, na, b, nb));
}

int main(void)
{
    test_unordered();
    test_fdump();
    UNIT_DONE("test_redis_same");
}
