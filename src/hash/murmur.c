/*
 * murmur: Austin Appleby's MurmurHash2 (32-bit), with twemproxy's seed of
 * 0xdeadbeef * length. Words are read little-endian byte by byte, so the
 * result does not depend on alignment or host byte order.
 */
#include "hash/hash_impl.h"

#define MURMUR_M 0x5bd1e995u
#define MURMUR_R 24

uint32_t hash_murmur(const uint8_t *key, size_t len)
{
    uint32_t seed = 0xdeadbeefu * (uint32_t)len;
    uint32_t h = seed ^ (uint32_t)len;
    const uint8_t *p = key;
    size_t n = len;

    for (; n >= 4; n -= 4, p += 4) {
        uint32_t k =
            (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
        k *= MURMUR_M;
        k ^= k >> MURMUR_R;
        k *= MURMUR_M;
        h *= MURMUR_M;
        h ^= k;
    }

    /* Up to three tail bytes, deliberately falling through. */
    switch (n) {
    case 3:
        h ^= (uint32_t)p[2] << 16;
        /* fall through */
    case 2:
        h ^= (uint32_t)p[1] << 8;
        /* fall through */
    case 1:
        h ^= p[0];
        h *= MURMUR_M;
        break;
    default:
        break;
    }

    h ^= h >> 13;
    h *= MURMUR_M;
    h ^= h >> 15;
    return h;
}
