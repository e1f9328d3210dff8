/*
 * hash: the twelve key hash functions of twemproxy 0.5, bit for bit
 * (vectors in ../shared/vectors/hashes.tsv).
 */
#ifndef NC_HASH_H
#define NC_HASH_H

#include <stddef.h>
#include <stdint.h>

enum hash_type {
    HASH_ONE_AT_A_TIME = 0,
    HASH_MD5,
    HASH_CRC16,
    HASH_CRC32,
    HASH_CRC32A,
    HASH_FNV1_64,
    HASH_FNV1A_64,
    HASH_FNV1_32,
    HASH_FNV1A_32,
    HASH_HSIEH,
    HASH_MURMUR,
    HASH_JENKINS,
    HASH_COUNT
};

/* Config name of a hash ("fnv1a_64"), and back; hash_from_name returns -1 if unknown. */
const char *hash_name(enum hash_type t);
int hash_from_name(const char *name, size_t len);

uint32_t hash_key(enum hash_type t, const uint8_t *key, size_t len);

/* The CRC16 (XMODEM: poly 0x1021, init 0) Redis Cluster takes a key's slot
 * from: the low 16 bits of HASH_CRC16, two bytes a step. */
uint16_t hash_crc16_xmodem(const uint8_t *key, size_t len);

/* Raw MD5 digest (ketama uses it for its points). */
void hash_md5(const uint8_t *data, size_t len, uint8_t digest[16]);

/* The part of key between tag[0] and the next tag[1] after it, if non-empty;
 * else the whole key (twemproxy's hash_tag rule). */
const uint8_t *hash_tag_apply(const uint8_t *key, size_t len, const char tag[2], size_t *out_len);

#endif
