/*
 * memcache_b64: the base64 decoding of a meta command's key (flag b), with
 * memcached's own rules, so that the proxy routes a key by exactly the bytes
 * memcached will store it under, and knows the keys memcached refuses (those go
 * to a server as they are, for memcached's own answer). Found by sending keys
 * to memcached 1.6 (tests/unit/test_memcache.c keeps the cases):
 *   - bytes outside the alphabet (A-Z a-z 0-9 + /, and '=') are skipped:
 *     "Zm!9v" is "foo";
 *   - the symbols left must be a non-zero multiple of four;
 *   - each group of four gives three bytes; a group with one '=' gives two,
 *     with two gives one, with more is an error; decoding stops after the
 *     first group with any '=' ("Zg==Zm9v" is "f"), wherever the '=' stands
 *     in it ("Z=9v" is two bytes).
 */
#include "proto/memcache_int.h"

/* A symbol's 6-bit value, 64 for '=', or -1 for a byte that is skipped. */
static int b64_value(uint8_t c)
{
    if (c >= 'A' && c <= 'Z') {
        return c - 'A';
    }
    if (c >= 'a' && c <= 'z') {
        return c - 'a' + 26;
    }
    if (c >= '0' && c <= '9') {
        return c - '0' + 52;
    }
    switch (c) {
    case '+':
        return 62;
    case '/':
        return 63;
    case '=':
        return 64;
    default:
        return -1;
    }
}

int mc_b64_decode(const uint8_t *in, size_t len, uint8_t *out, size_t cap)
{
    size_t count = 0;
    for (size_t i = 0; i < len; i++) {
        count += b64_value(in[i]) >= 0;
    }
    if (count == 0 || count % 4 != 0 || count / 4 * 3 > cap) {
        return -1;
    }
    size_t o = 0;
    uint32_t group = 0;
    unsigned n = 0, pad = 0;
    for (size_t i = 0; i < len; i++) {
        int v = b64_value(in[i]);
        if (v < 0) {
            continue;
        }
        pad += v == 64;
        group = group << 6 | (uint32_t)(v == 64 ? 0 : v);
        if (++n < 4) {
            continue;
        }
        out[o++] = (uint8_t)(group >> 16);
        out[o++] = (uint8_t)(group >> 8);
        out[o++] = (uint8_t)group;
        if (pad > 2) {
            return -1;
        }
        if (pad > 0) {
            return (int)(o - pad);
        }
        group = 0;
        n = 0;
    }
    return (int)o;
}
