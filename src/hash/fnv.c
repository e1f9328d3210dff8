/*
 * fnv: Fowler-Noll-Vo FNV-1 and FNV-1a, 32- and 64-bit, as twemproxy computes
 * them: bytes sign-extended (see hash_sext8) and the 64-bit variants returned
 * as their low 32 bits. The low 32 bits of a product mod 2^64 depend only on
 * the low 32 bits of its factors, so twemproxy's 32-bit-state fnv1a_64 and a
 * truncated 64-bit computation agree; we compute in 32 bits.
 */
#include "hash/hash_impl.h"

#define FNV32_BASIS 0x811c9dc5u
#define FNV32_PRIME 0x01000193u
#define FNV64_BASIS UINT64_C(0xcbf29ce484222325)
#define FNV64_PRIME UINT64_C(0x00000100000001b3)

/* The 64-bit variants in 32-bit arithmetic: only the low 32 bits are returned,
 * and those of each xor and product depend only on the low 32 bits of their
 * operands, so the high word (and the sign extension into it) never matters. */
#define FNV64_BASIS_LO ((uint32_t)FNV64_BASIS)
#define FNV64_PRIME_LO ((uint32_t)FNV64_PRIME)

uint32_t hash_fnv1_64(const uint8_t *key, size_t len)
{
    uint32_t h = FNV64_BASIS_LO;
    for (size_t i = 0; i < len; i++) {
        h *= FNV64_PRIME_LO;
        h ^= hash_sext8(key[i]);
    }
    return h;
}

uint32_t hash_fnv1a_64(const uint8_t *key, size_t len)
{
    uint32_t h = FNV64_BASIS_LO;
    for (size_t i = 0; i < len; i++) {
        h ^= hash_sext8(key[i]);
        h *= FNV64_PRIME_LO;
    }
    return h;
}

uint32_t hash_fnv1_32(const uint8_t *key, size_t len)
{
    uint32_t h = FNV32_BASIS;
    for (size_t i = 0; i < len; i++) {
        h *= FNV32_PRIME;
        h ^= hash_sext8(key[i]);
    }
    return h;
}

uint32_t hash_fnv1a_32(const uint8_t *key, size_t len)
{
    uint32_t h = FNV32_BASIS;
    for (size_t i = 0; i < len; i++) {
        h ^= hash_sext8(key[i]);
        h *= FNV32_PRIME;
    }
    return h;
}
