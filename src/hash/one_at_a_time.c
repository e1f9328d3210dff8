/*
 * one_at_a_time: Bob Jenkins' one-at-a-time hash, bytes sign-extended as in
 * twemproxy (see hash_sext8).
 */
#include "hash/hash_impl.h"

uint32_t hash_one_at_a_time(const uint8_t *key, size_t len)
{
    uint32_t h = 0;
    for (size_t i = 0; i < len; i++) {
        h += hash_sext8(key[i]);
        h += h << 10;
        h ^= h >> 6;
    }
    h += h << 3;
    h ^= h >> 11;
    h += h << 15;
    return h;
}
