/*
 * hsieh: Paul Hsieh's SuperFastHash in the libmemcached form twemproxy uses:
 * the state starts at 0 (not at the length) and an empty key hashes to 0.
 */
#include "hash/hash_impl.h"

static uint32_t load_le16(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8;
}

/* The 3-byte tail reads its last byte as a signed char but a lone last byte
 * as unsigned: that mix is what twemproxy does (vectors and live placement). */
static uint32_t hsieh_tail(uint32_t h, const uint8_t *p, size_t rem)
{
    switch (rem) {
    case 3:
        h += load_le16(p);
        h ^= h << 16;
        h ^= hash_sext8(p[2]) << 18;
        h += h >> 11;
        break;
    case 2:
        h += load_le16(p);
        h ^= h << 11;
        h += h >> 17;
        break;
    case 1:
        h += p[0];
        h ^= h << 10;
        h += h >> 1;
        break;
    default:
        break;
    }
    return h;
}

uint32_t hash_hsieh(const uint8_t *key, size_t len)
{
    if (len == 0) {
        return 0;
    }

    uint32_t h = 0;
    const uint8_t *p = key;
    for (size_t n = len / 4; n > 0; n--, p += 4) {
        h += load_le16(p);
        uint32_t t = (load_le16(p + 2) << 11) ^ h;
        h = (h << 16) ^ t;
        h += h >> 11;
    }
    h = hsieh_tail(h, p, len % 4);

    /* Final avalanche. */
    h ^= h << 3;
    h += h >> 5;
    h ^= h << 4;
    h += h >> 17;
    h ^= h << 25;
    h += h >> 6;
    return h;
}
