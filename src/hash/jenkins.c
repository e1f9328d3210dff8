/*
 * jenkins: Bob Jenkins' lookup3 hashlittle() with twemproxy's initval of 13.
 * Bytes are gathered little-endian one at a time, which gives the same value
 * as lookup3's aligned word paths on any host.
 */
#include "hash/hash_impl.h"

#define JENKINS_INITVAL 13u

static uint32_t rot(uint32_t x, unsigned k)
{
    return (x << k) | (x >> (32 - k));
}

/* lookup3 mix(): reversible mixing of three words. */
static void jenkins_mix(uint32_t *a, uint32_t *b, uint32_t *c)
{
    *a -= *c;
    *a ^= rot(*c, 4);
    *c += *b;
    *b -= *a;
    *b ^= rot(*a, 6);
    *a += *c;
    *c -= *b;
    *c ^= rot(*b, 8);
    *b += *a;
    *a -= *c;
    *a ^= rot(*c, 16);
    *c += *b;
    *b -= *a;
    *b ^= rot(*a, 19);
    *a += *c;
    *c -= *b;
    *c ^= rot(*b, 4);
    *b += *a;
}

/* lookup3 final(): last avalanche of the three words into c. */
static void jenkins_final(uint32_t *a, uint32_t *b, uint32_t *c)
{
    *c ^= *b;
    *c -= rot(*b, 14);
    *a ^= *c;
    *a -= rot(*c, 11);
    *b ^= *a;
    *b -= rot(*a, 25);
    *c ^= *b;
    *c -= rot(*b, 16);
    *a ^= *c;
    *a -= rot(*c, 4);
    *b ^= *a;
    *b -= rot(*a, 14);
    *c ^= *b;
    *c -= rot(*b, 24);
}

/* Little-endian word from up to 4 bytes; missing bytes count as zero. */
static uint32_t load_partial(const uint8_t *p, size_t n)
{
    uint32_t v = 0;
    for (size_t i = 0; i < n && i < 4; i++) {
        v |= (uint32_t)p[i] << (8 * i);
    }
    return v;
}

uint32_t hash_jenkins(const uint8_t *key, size_t len)
{
    uint32_t a, b, c;
    a = b = c = 0xdeadbeefu + (uint32_t)len + JENKINS_INITVAL;

    const uint8_t *p = key;
    size_t n = len;
    /* Strictly greater: the last 1..12 bytes always go through final(). */
    for (; n > 12; n -= 12, p += 12) {
        a += load_partial(p, 4);
        b += load_partial(p + 4, 4);
        c += load_partial(p + 8, 4);
        jenkins_mix(&a, &b, &c);
    }

    /* lookup3 returns c untouched for a zero-length input. */
    if (n == 0) {
        return c;
    }
    a += load_partial(p, n);
    if (n > 4) {
        b += load_partial(p + 4, n - 4);
    }
    if (n > 8) {
        c += load_partial(p + 8, n - 8);
    }
    jenkins_final(&a, &b, &c);
    return c;
}
