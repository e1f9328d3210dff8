/*
 * hash: the table of twemproxy's twelve key hashes (config name and function,
 * indexed by enum hash_type) and the hash_tag rule.
 */
#include "hash/hash_impl.h"

#include <string.h>

struct hash_entry {
    const char *name;
    uint32_t (*fn)(const uint8_t *key, size_t len);
};

/* Order must follow enum hash_type. */
static const struct hash_entry hash_table[HASH_COUNT] = {
    [HASH_ONE_AT_A_TIME] = {"one_at_a_time", hash_one_at_a_time},
    [HASH_MD5] = {"md5", hash_md5_key},
    [HASH_CRC16] = {"crc16", hash_crc16},
    [HASH_CRC32] = {"crc32", hash_crc32},
    [HASH_CRC32A] = {"crc32a", hash_crc32a},
    [HASH_FNV1_64] = {"fnv1_64", hash_fnv1_64},
    [HASH_FNV1A_64] = {"fnv1a_64", hash_fnv1a_64},
    [HASH_FNV1_32] = {"fnv1_32", hash_fnv1_32},
    [HASH_FNV1A_32] = {"fnv1a_32", hash_fnv1a_32},
    [HASH_HSIEH] = {"hsieh", hash_hsieh},
    [HASH_MURMUR] = {"murmur", hash_murmur},
    [HASH_JENKINS] = {"jenkins", hash_jenkins},
};

const char *hash_name(enum hash_type t)
{
    if ((unsigned)t >= HASH_COUNT) {
        return NULL;
    }
    return hash_table[t].name;
}

int hash_from_name(const char *name, size_t len)
{
    for (int t = 0; t < HASH_COUNT; t++) {
        const char *n = hash_table[t].name;
        if (strlen(n) == len && memcmp(n, name, len) == 0) {
            return t;
        }
    }
    return -1;
}

uint32_t hash_key(enum hash_type t, const uint8_t *key, size_t len)
{
    /* An out-of-range type is a caller bug; fall back to the config default
     * rather than jumping through a bad pointer. */
    if ((unsigned)t >= HASH_COUNT) {
        t = HASH_FNV1A_64;
    }
    return hash_table[t].fn(key, len);
}

/* A NULL tag means the pool has no hash_tag: the whole key is hashed. */
const uint8_t *hash_tag_apply(const uint8_t *key, size_t len, const char tag[2], size_t *out_len)
{
    *out_len = len;
    if (tag == NULL || len == 0) {
        return key;
    }

    const uint8_t *start = memchr(key, (unsigned char)tag[0], len);
    if (start == NULL) {
        return key;
    }
    start++;
    size_t left = len - (size_t)(start - key);
    const uint8_t *end = left > 0 ? memchr(start, (unsigned char)tag[1], left) : NULL;
    /* An empty tag ("{}") hashes the whole key, as twemproxy does. */
    if (end == NULL || end == start) {
        return key;
    }
    *out_len = (size_t)(end - start);
    return start;
}
