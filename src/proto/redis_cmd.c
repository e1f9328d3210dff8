/*
 * redis_cmd: lookups in the generated command table and key extraction.
 *
 * A name is found through a hash table generated with the command table
 * (REDIS_SLOTS in redis_cmds.def, by tools/gen_redis_cmds.py, which has the
 * same cmd_hash): one hash of the bytes as they came, in any letter case, at
 * most REDIS_SLOT_PROBES slots, one comparison. Nothing is built at start.
 */
#include "proto/redis_cmd.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "proto/redis_wire.h"

const char *const redis_flag_names[REDIS_FB_COUNT] = {
#define REDIS_FLAG(id, name) name,
#include "proto/redis_cmds.def"
#undef REDIS_FLAG
};

/* clang-format off */
#define F(id) REDIS_F(id)
const struct redis_cmd redis_cmd_table[REDIS_CMD_COUNT] = {
    [REDIS_CMD_UNKNOWN] = {"", 0, 0, 0, 0, 0, 0, REDIS_KEYS_SPECS, 0, 0, REDIS_H_REJECT_NOKEY},
    [REDIS_CMD_NOOP] = {"", 0, 0, 0, 0, 0, 0, REDIS_KEYS_SPECS, 0, 0, REDIS_H_LOCAL},
#define REDIS_CMD(id, name, arity, flags, first, last, step, kind, spec0, nspecs, handling) \
    [REDIS_CMD_##id] = {name, sizeof(name) - 1, first, last, step, arity, flags,              \
                        REDIS_KEYS_##kind, nspecs, spec0, REDIS_H_##handling},
#include "proto/redis_cmds.def"
#undef REDIS_CMD
};
#undef F

const char *const redis_aclcat_names[REDIS_AB_COUNT] = {
#define REDIS_ACLCAT(id, name) name,
#include "proto/redis_cmds.def"
#undef REDIS_ACLCAT
};

#define A(id) REDIS_A(id)
const uint32_t redis_cmd_acl[REDIS_CMD_COUNT] = {
#define REDIS_CMD_ACL(id, categories) [REDIS_CMD_##id] = categories,
#include "proto/redis_cmds.def"
#undef REDIS_CMD_ACL
};
#undef A

const char *const redis_keyflag_names[REDIS_KB_COUNT] = {
#define REDIS_KEYFLAG(id, name) name,
#include "proto/redis_cmds.def"
#undef REDIS_KEYFLAG
};

#define K(id) REDIS_K(id)
const uint16_t redis_keyspec_flags[] = {
#define REDIS_KEYSPEC_FLAGS(flags) flags,
#include "proto/redis_cmds.def"
#undef REDIS_KEYSPEC_FLAGS
};

enum {
#define REDIS_CUSTOM_KEY_FLAGS(kind, flags) REDIS_##kind##_STORE_FLAGS = flags,
#include "proto/redis_cmds.def"
#undef REDIS_CUSTOM_KEY_FLAGS
};
#undef K

const struct redis_keyspec redis_keyspec_table[] = {
#define REDIS_KEYSPEC(keyword, begin, find, lastkey, keystep, limit, keynumidx, firstkey) \
    {keyword, begin, REDIS_FIND_##find, lastkey, keystep, limit, keynumidx, firstkey},
#include "proto/redis_cmds.def"
#undef REDIS_KEYSPEC
};
/* clang-format on */

#define REDIS_SLOTS(bits, seed, probes)                                                            \
    enum { REDIS_SLOT_BITS = bits, REDIS_SLOT_PROBES = probes };                                   \
    static const uint64_t redis_slot_seed = seed;
#include "proto/redis_cmds.def"
#undef REDIS_SLOTS

/* clang-format off */
static const uint16_t redis_slots[1u << REDIS_SLOT_BITS] = {
#define REDIS_SLOT(slot, id) [slot] = REDIS_CMD_##id,
#include "proto/redis_cmds.def"
#undef REDIS_SLOT
};
/* clang-format on */

#define BYTES(b) (0x0101010101010101ull * (b))

/* p[0..n), n <= 8, as a little-endian word: two loads that may overlap, so no
 * byte past p + n is read and there is no loop. */
static inline uint64_t word_le(const uint8_t *p, size_t n)
{
    if (n >= 4) {
        uint32_t lo, hi;
        memcpy(&lo, p, 4);
        memcpy(&hi, p + n - 4, 4);
        return lo | (uint64_t)hi << (8 * (n - 4));
    }
    if (n >= 2) {
        uint16_t lo, hi;
        memcpy(&lo, p, 2);
        memcpy(&hi, p + n - 2, 2);
        return lo | (uint64_t)hi << (8 * (n - 2));
    }
    return n ? p[0] : 0;
}

/* Bytes A-Z of w made a-z, the others kept (each byte tested on its low 7
 * bits, so no sum carries into the next byte). */
static inline uint64_t word_lower(uint64_t w)
{
    uint64_t low7 = w & BYTES(0x7f);
    uint64_t upper =
        (low7 + BYTES(0x80 - 'A')) & ~(low7 + BYTES(0x80 - 'Z' - 1)) & ~w & BYTES(0x80);
    return w | upper >> 2;
}

/* tools/gen_redis_cmds.py's cmd_hash: bit 0x20 set in every byte makes A-Z
 * hash as a-z (other bytes may collide with each other: the comparison
 * after it is exact). Little-endian words, as the generator reads them. */
static uint64_t cmd_hash(const uint8_t *p, size_t n)
{
    uint64_t h = redis_slot_seed ^ (n * 0x9E3779B97F4A7C15ull);
    for (; n >= 8; p += 8, n -= 8) {
        h = (h ^ (word_le(p, 8) | BYTES(0x20))) * 0xFF51AFD7ED558CCDull;
    }
    h = (h ^ (word_le(p, n) | (BYTES(0x20) & ((1ull << (8 * n)) - 1)))) * 0xFF51AFD7ED558CCDull;
    return h ^ (h >> 32);
}

/* p[0..n) is c's name in any letter case (the table's names are lower case). */
static bool cmd_name_is(const struct redis_cmd *c, const uint8_t *p, size_t n)
{
    if (c->name_len != n) {
        return false;
    }
    const uint8_t *name = (const uint8_t *)c->name;
    for (; n > 8; p += 8, name += 8, n -= 8) {
        if (word_lower(word_le(p, 8)) != word_le(name, 8)) {
            return false;
        }
    }
    return word_lower(word_le(p, n)) == word_le(name, n);
}

static uint16_t cmd_find(const uint8_t *p, size_t n)
{
    uint64_t h = cmd_hash(p, n);
    for (uint32_t k = 0; k < REDIS_SLOT_PROBES; k++) {
        uint16_t id = redis_slots[(h + k) & ((1u << REDIS_SLOT_BITS) - 1)];
        if (id == REDIS_CMD_UNKNOWN || cmd_name_is(&redis_cmd_table[id], p, n)) {
            return id;
        }
    }
    return REDIS_CMD_UNKNOWN;
}

uint16_t redis_cmd_lookup_name(const uint8_t *p, size_t n)
{
    if (n == 0 || n > REDIS_CMD_NAME_MAX) {
        return REDIS_CMD_UNKNOWN;
    }
    return cmd_find(p, n);
}

uint16_t redis_cmd_lookup(const uint8_t *p, size_t n)
{
    /* a subcommand's row is found through its container (redis_cmd_lookup_sub):
     * a request named "client|id" names no command. Only a name that could be a
     * subcommand's is looked at (GET and SET pay one comparison), with a loop: a
     * call here would cost every request its register saves. */
    bool could_be_sub = n >= REDIS_SUBCMD_NAME_MIN && n <= REDIS_CMD_NAME_MAX;
    for (size_t i = 0; could_be_sub && i < n; i++) {
        if (p[i] == '|') {
            return REDIS_CMD_UNKNOWN;
        }
    }
    return redis_cmd_lookup_name(p, n);
}

uint16_t redis_cmd_lookup_sub(uint16_t parent, const uint8_t *sub, size_t n)
{
    const struct redis_cmd *c = redis_cmd_get(parent);
    uint8_t name[REDIS_CMD_NAME_MAX];
    if (n == 0 || (size_t)c->name_len + 1 + n > sizeof(name)) {
        return REDIS_CMD_UNKNOWN;
    }
    memcpy(name, c->name, c->name_len);
    name[c->name_len] = '|';
    memcpy(name + c->name_len + 1, sub, n);
    return cmd_find(name, c->name_len + 1 + n);
}

bool redis_cmd_supported(const struct redis_cmd *c)
{
    return c->name_len > 0 && redis_cmd_reject_reason(c) == NULL;
}

const char *redis_cmd_reject_reason(const struct redis_cmd *c)
{
    switch (c->handling) {
    case REDIS_H_REJECT_NOKEY:
        return "no key to route by";
    case REDIS_H_REJECT_BLOCKING:
        return "blocking";
    case REDIS_H_REJECT_PUBSUB:
        return "pub/sub";
    case REDIS_H_REJECT_ADMIN:
        return "admin";
    default:
        return NULL;
    }
}

bool redis_cmd_has_keys(const struct redis_cmd *c)
{
    return c->nspecs > 0 || c->keys_kind != REDIS_KEYS_SPECS;
}

/* Where a keyword spec's keys begin: after the first match of its keyword searched
 * from `begin` towards the end (or from argc + begin towards the start), or 0 if none.
 * Like redis, the search never looks at its last position (a keyword there has no key
 * after it anyway). */
static int64_t spec_keyword_begin(const struct redis_keyspec *ks, const uint8_t *req,
                                  const struct span *args, uint32_t argc)
{
    int64_t start = ks->begin > 0 ? ks->begin : (int64_t)argc + ks->begin;
    int64_t end = ks->begin > 0 ? (int64_t)argc - 1 : 1;
    int64_t dir = start <= end ? 1 : -1;
    for (int64_t i = start; i != end && i >= 1 && i < (int64_t)argc; i += dir) {
        if (redis_wire_arg_is(req, args[i], ks->keyword)) {
            return i + 1;
        }
    }
    return 0;
}

/* The key argument range [*first, *last] of one spec; false when it has none.
 * Inlined: it runs for every request's keys. */
static inline __attribute__((always_inline)) bool
spec_bounds(const struct redis_keyspec *ks, const uint8_t *req, const struct span *args,
            uint32_t argc, int64_t *first, int64_t *last)
{
    int64_t f = ks->keyword == NULL ? ks->begin : spec_keyword_begin(ks, req, args, argc);
    int64_t l;
    if (f <= 0) {
        return false;
    }
    if (ks->find == REDIS_FIND_KEYNUM) {
        int64_t nk;
        int64_t at = f + ks->keynumidx;
        /* more keys than arguments cannot be valid (and would overflow below) */
        if (at >= (int64_t)argc || !redis_wire_int_parse(req + args[at].off, args[at].len, &nk) ||
            nk < 0 || nk > (int64_t)argc) {
            return false;
        }
        f += ks->firstkey;
        l = f + nk - 1;
    } else if (ks->lastkey >= 0) {
        l = f + ks->lastkey;
    } else if (ks->limit == 0) {
        l = (int64_t)argc + ks->lastkey;
    } else {
        l = f + (((int64_t)argc - f) / ks->limit + ks->lastkey);
    }
    *first = f;
    *last = l;
    return l < (int64_t)argc && l >= f && f < (int64_t)argc;
}

/* SORT's STORE key, found the way SORT reads its options (redis' key specs cannot say
 * where it is); 0 if there is none. The last STORE wins, as in SORT. */
static uint32_t sort_store_arg(const uint8_t *req, const struct span *args, uint32_t argc)
{
    uint32_t store = 0;
    for (uint32_t j = 2; j < argc; j++) {
        uint32_t left = argc - j - 1;
        const struct span a = args[j];
        if (redis_wire_arg_is(req, a, "asc") || redis_wire_arg_is(req, a, "desc") ||
            redis_wire_arg_is(req, a, "alpha")) {
            continue;
        }
        if (redis_wire_arg_is(req, a, "limit") && left >= 2) {
            j += 2;
        } else if (redis_wire_arg_is(req, a, "store") && left >= 1) {
            store = ++j;
        } else if ((redis_wire_arg_is(req, a, "by") || redis_wire_arg_is(req, a, "get")) &&
                   left >= 1) {
            j++;
        } else {
            break; /* a syntax error: SORT refuses the request */
        }
    }
    return store;
}

/* GEORADIUS's destination: the argument after its last STORE or STOREDIST, from
 * its options on (`from`), as redis reads them; 0 if there is none. */
static uint32_t geo_store_arg(const uint8_t *req, const struct span *args, uint32_t argc,
                              int64_t from)
{
    uint32_t store = 0;
    for (uint32_t j = from > 0 ? (uint32_t)from : 1; j + 1 < argc; j++) {
        if (redis_wire_arg_is(req, args[j], "store") ||
            redis_wire_arg_is(req, args[j], "storedist")) {
            store = ++j;
        }
    }
    return store;
}

/* Every key of the request, in order, to fn with its spec's flags: the keys the
 * command works on (writes), or those its key specs name (COMMAND GETKEYS, which
 * differs for REDIS_KEYS_GEO). Inlined in both callers, so redis_cmd_keys (every
 * request) calls no function per key. */
static inline __attribute__((always_inline)) int keys_walk(const struct redis_cmd *c,
                                                           const uint8_t *req,
                                                           const struct span *args, uint32_t argc,
                                                           bool writes, redis_key_fn fn, void *ctx)
{
    bool geo = writes && c->keys_kind == REDIS_KEYS_GEO;
    for (uint32_t s = 0; s < (geo ? 1u : c->nspecs); s++) {
        const struct redis_keyspec *ks = &redis_keyspec_table[c->spec0 + s];
        int64_t first, last;
        /* A spec without keys here (an option not given, a key count out of range) adds
         * none, but the others still count: GETKEYS refuses `PFMERGE d` (no source
         * key), yet PFMERGE writes d. */
        if (!spec_bounds(ks, req, args, argc, &first, &last)) {
            continue;
        }
        int64_t step = ks->keystep > 0 ? ks->keystep : 1;
        for (int64_t i = first; i <= last; i += step) {
            int rc = fn(ctx, args[i], redis_keyspec_flags[c->spec0 + s]);
            if (rc != 0) {
                return rc;
            }
        }
    }
    if (c->keys_kind == REDIS_KEYS_SORT) {
        uint32_t store = sort_store_arg(req, args, argc);
        if (store != 0) {
            return fn(ctx, args[store], REDIS_SORT_STORE_FLAGS);
        }
    }
    if (geo && c->nspecs > 1) {
        uint32_t store = geo_store_arg(req, args, argc, redis_keyspec_table[c->spec0 + 1].begin);
        if (store != 0) {
            return fn(ctx, args[store], REDIS_GEO_STORE_FLAGS);
        }
    }
    return 0;
}

static int key_push(void *ctx, struct span key, uint32_t flags)
{
    (void)flags;
    return spans_push(ctx, key.off, key.len);
}

int redis_cmd_keys(const struct redis_cmd *c, const uint8_t *req, const struct span *args,
                   uint32_t argc, struct spans *keys)
{
    return keys_walk(c, req, args, argc, true, key_push, keys);
}

int redis_cmd_keys_each(const struct redis_cmd *c, const uint8_t *req, const struct span *args,
                        uint32_t argc, redis_key_fn fn, void *ctx)
{
    return keys_walk(c, req, args, argc, false, fn, ctx);
}

/* BITFIELD only reads with GET and OVERFLOW alone (anything else, a syntax error
 * included, may write), as redis decides it. */
static bool bitfield_reads_only(const uint8_t *req, const struct span *args, uint32_t argc)
{
    for (uint32_t i = 2; i < argc; i++) {
        uint32_t left = argc - i - 1;
        if (redis_wire_arg_is(req, args[i], "get") && left >= 2) {
            i += 2;
        } else if (redis_wire_arg_is(req, args[i], "overflow") && left >= 1) {
            i += 1;
        } else {
            return false;
        }
    }
    return true;
}

uint32_t redis_cmd_key_flags(const struct redis_cmd *c, uint32_t flags, const uint8_t *req,
                             const struct span *args, uint32_t argc)
{
    if ((flags & REDIS_K(VARIABLE_FLAGS)) == 0) {
        return flags;
    }
    if (c == redis_cmd_get(REDIS_CMD_SET)) {
        /* SET k v ... GET reads the old value; without GET it only overwrites */
        for (uint32_t i = 3; i < argc; i++) {
            if (redis_wire_arg_is(req, args[i], "get")) {
                return REDIS_K(RW) | REDIS_K(ACCESS) | REDIS_K(UPDATE);
            }
        }
        return REDIS_K(OW) | REDIS_K(UPDATE);
    }
    if (c == redis_cmd_get(REDIS_CMD_BITFIELD)) {
        return bitfield_reads_only(req, args, argc)
                   ? REDIS_K(RO) | REDIS_K(ACCESS)
                   : REDIS_K(RW) | REDIS_K(ACCESS) | REDIS_K(UPDATE);
    }
    return flags;
}

/* For REDIS_H_KEY_BLOCK_OPT: the index of BLOCK's value among the options
 * before the keys (argc when BLOCK is last), 0 when there is no BLOCK. */
static uint32_t cmd_block_option(const struct redis_cmd *c, const uint8_t *req,
                                 const struct span *args, uint32_t argc)
{
    for (uint32_t s = 0; s < c->nspecs; s++) {
        const struct redis_keyspec *ks = &redis_keyspec_table[c->spec0 + s];
        if (ks->keyword == NULL || ks->begin <= 0) {
            continue;
        }
        /* the options sit between `begin` and the keyword (XREADGROUP GROUP g c: after) */
        for (uint32_t i = (uint32_t)ks->begin; i < argc; i++) {
            if (redis_wire_arg_is(req, args[i], ks->keyword)) {
                break;
            }
            if (redis_wire_arg_is(req, args[i], "block")) {
                return i + 1;
            }
        }
    }
    return 0;
}

/* A timeout argument as redis reads it (getTimeoutFromObjectOrReply): seconds
 * as a decimal, or whole milliseconds. REDIS_BLOCK_FOREVER for 0; 0 for one
 * redis refuses (negative, not a number): it answers at once. */
static int64_t cmd_timeout_ms(const uint8_t *req, struct span s, bool seconds)
{
    char text[64];
    if (s.len == 0 || s.len >= sizeof(text)) {
        return 0;
    }
    memcpy(text, req + s.off, s.len);
    text[s.len] = '\0';
    char *end;
    errno = 0;
    double v = seconds ? strtod(text, &end) : (double)strtoll(text, &end, 10);
    if (*end != '\0' || errno != 0 || !isfinite(v) || v < 0) {
        return 0;
    }
    v = seconds ? ceil(v * 1000.0) : v;
    if (v == 0) {
        return REDIS_BLOCK_FOREVER;
    }
    return v < 1e15 ? (int64_t)v : REDIS_BLOCK_FOREVER; /* (years: without end) */
}

int64_t redis_cmd_block_ms(const struct redis_cmd *c, uint16_t id, const uint8_t *req,
                           const struct span *args, uint32_t argc)
{
    if (c->handling == REDIS_H_KEY_BLOCK_OPT) {
        uint32_t at = cmd_block_option(c, req, args, argc);
        return at == 0 ? REDIS_BLOCK_NOT : at < argc ? cmd_timeout_ms(req, args[at], false) : 0;
    }
    if (c->handling != REDIS_H_KEY_BLOCKING || argc < 2) {
        return REDIS_BLOCK_NOT;
    }
    /* BLMPOP and BZMPOP: timeout numkeys key...; the others end with it */
    bool first = id == REDIS_CMD_BLMPOP || id == REDIS_CMD_BZMPOP;
    return cmd_timeout_ms(req, args[first ? 1 : argc - 1], true);
}
