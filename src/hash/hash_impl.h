/*
 * hash_impl: the individual key hashes behind hash_key(); private to src/hash.
 */
#ifndef NC_HASH_IMPL_H
#define NC_HASH_IMPL_H

#include <string.h>

#include "hash/hash.h"

/* twemproxy reads keys through a plain (signed) char pointer in fnv and
 * one_at_a_time, so bytes >= 0x80 enter those hashes sign-extended. Done
 * without the implementation-defined uint8_t -> int8_t conversion. */
static inline uint32_t hash_sext8(uint8_t b)
{
    /* int8_t is two's complement by definition: the same bits read as signed,
     * then widened, give b | 0xffffff00 for b >= 0x80 (one movsx) */
    int8_t s;
    memcpy(&s, &b, 1);
    return (uint32_t)(int32_t)s;
}

uint32_t hash_one_at_a_time(const uint8_t *key, size_t len);
uint32_t hash_md5_key(const uint8_t *key, size_t len);
uint32_t hash_crc16(const uint8_t *key, size_t len);
uint32_t hash_crc32(const uint8_t *key, size_t len);
uint32_t hash_crc32a(const uint8_t *key, size_t len);
uint32_t hash_fnv1_64(const uint8_t *key, size_t len);
uint32_t hash_fnv1a_64(const uint8_t *key, size_t len);
uint32_t hash_fnv1_32(const uint8_t *key, size_t len);
uint32_t hash_fnv1a_32(const uint8_t *key, size_t len);
uint32_t hash_hsieh(const uint8_t *key, size_t len);
uint32_t hash_murmur(const uint8_t *key, size_t len);
uint32_t hash_jenkins(const uint8_t *key, size_t len);

#endif
