/*
 * redis_cmd: lookups in the generated command table and key extraction.
 *
 * The table is sorted by name (the generator guarantees it), so a lookup is a
 * bisection over ~380 short names after lower-casing into a stack buffer: no
 * global state to build at start, nothing to free.
 */
#include "proto/redis_cmd.h"

#include <stdio.h>
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
    [REDIS_CMD_UNKNOWN] = {"", 0, 0, 0, 0, 0, 0, REDIS_KEYS_RANGE, 0, REDIS_H_REJECT_NOKEY},
    [REDIS_CMD_NOOP] = {"", 0, 0, 0, 0, 0, 0, REDIS_KEYS_RANGE, 0, REDIS_H_LOCAL},
#define REDIS_CMD(id, name, arity, flags, first, last, step, kind, karg, handling) \
    [REDIS_CMD_##id] = {name, sizeof(name) - 1, first, last, step, arity, flags,     \
                        REDIS_KEYS_##kind, karg, REDIS_H_##handling},
#include "proto/redis_cmds.def"
#undef REDIS_CMD
};
#undef F
/* clang-format on */

/* Bytewise order, shorter first on a common prefix: the generator's sort order. */
static int cmd_name_cmp(const struct redis_cmd *c, const char *name, size_t n)
{
    /* most bisection steps differ at the first letter: skip the call for those */
    int d = (uint8_t)c->name[0] - (uint8_t)name[0];
    if (d != 0) {
        return d;
    }
    size_t m = c->name_len < n ? c->name_len : n;
    d = memcmp(c->name, name, m);
    if (d != 0) {
        return d;
    }
    return (c->name_len > n) - (c->name_len < n);
}

static uint16_t cmd_bisect(const char *name, size_t n)
{
    uint32_t lo = REDIS_CMD_NOOP + 1, hi = REDIS_CMD_COUNT;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        int d = cmd_name_cmp(&redis_cmd_table[mid], name, n);
        if (d == 0) {
            return (uint16_t)mid;
        }
        if (d < 0) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    return REDIS_CMD_UNKNOWN;
}

static void name_lower(char *dst, const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        uint8_t ch = p[i];
        dst[i] = (char)(ch >= 'A' && ch <= 'Z' ? ch + ('a' - 'A') : ch);
    }
}

uint16_t redis_cmd_lookup(const uint8_t *p, size_t n)
{
    char name[REDIS_CMD_NAME_MAX];
    if (n == 0 || n > sizeof(name)) {
        return REDIS_CMD_UNKNOWN;
    }
    name_lower(name, p, n);
    return cmd_bisect(name, n);
}

uint16_t redis_cmd_lookup_sub(uint16_t parent, const uint8_t *sub, size_t n)
{
    const struct redis_cmd *c = redis_cmd_get(parent);
    char name[REDIS_CMD_NAME_MAX];
    if (n == 0 || (size_t)c->name_len + 1 + n > sizeof(name)) {
        return REDIS_CMD_UNKNOWN;
    }
    memcpy(name, c->name, c->name_len);
    name[c->name_len] = '|';
    name_lower(name + c->name_len + 1, sub, n);
    return cmd_bisect(name, c->name_len + 1 + n);
}

bool redis_cmd_arity_ok(const struct redis_cmd *c, uint32_t argc)
{
    if (c->arity >= 0 ? argc != (uint32_t)c->arity : argc < (uint32_t)-c->arity) {
        return false;
    }
    /* MSET-like: keys every `step` args up to the end need whole groups. */
    if (c->first > 0 && c->last < 0 && c->step > 1) {
        return argc >= (uint32_t)c->first && (argc - (uint32_t)c->first) % (uint32_t)c->step == 0;
    }
    return true;
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
    case REDIS_H_REJECT_TXN:
        return "transactions";
    case REDIS_H_REJECT_ADMIN:
        return "admin";
    default:
        return NULL;
    }
}

static int keys_push_range(const struct redis_cmd *c, const struct span *args, uint32_t argc,
                           struct spans *keys)
{
    if (c->first <= 0) {
        return 0;
    }
    int64_t last = c->last < 0 ? (int64_t)argc + c->last : c->last;
    int64_t step = c->step > 0 ? c->step : 1;
    for (int64_t i = c->first; i <= last && i < (int64_t)argc; i += step) {
        if (spans_push(keys, args[i].off, args[i].len) != 0) {
            return -1;
        }
    }
    return 0;
}

static int keys_push_numkeys(const struct redis_cmd *c, const uint8_t *req, const struct span *args,
                             uint32_t argc, struct spans *keys, char *err, size_t errlen)
{
    uint32_t at = c->keys_arg;
    int64_t nk;
    if (at >= argc) {
        snprintf(err, errlen, "wrong number of arguments for '%s' command", c->name);
        return -1;
    }
    if (!redis_wire_int_parse(req + args[at].off, args[at].len, &nk)) {
        snprintf(err, errlen, "value is not an integer or out of range");
        return -1;
    }
    if (nk < 0) {
        snprintf(err, errlen, "Number of keys can't be negative");
        return -1;
    }
    if (nk > (int64_t)(argc - at - 1)) {
        snprintf(err, errlen, "Number of keys can't be greater than number of args");
        return -1;
    }
    for (uint32_t i = at + 1; i <= at + (uint32_t)nk; i++) {
        if (spans_push(keys, args[i].off, args[i].len) != 0) {
            return -1;
        }
    }
    return 0;
}

/* XREAD/XREADGROUP: options, then STREAMS k1 k2 .. id1 id2 ... BLOCK would park a
 * shared server connection, so it is refused here rather than by command name. */
static int keys_push_streams(const struct redis_cmd *c, const uint8_t *req, const struct span *args,
                             uint32_t argc, struct spans *keys, char *err, size_t errlen)
{
    uint32_t s = c->keys_arg;
    for (; s < argc; s++) {
        if (redis_wire_arg_is(req, args[s], "streams")) {
            break;
        }
        if (redis_wire_arg_is(req, args[s], "block")) {
            snprintf(err, errlen, "unsupported command '%s' with BLOCK (blocking)", c->name);
            return -1;
        }
    }
    if (s >= argc) {
        snprintf(err, errlen, "syntax error");
        return -1;
    }
    uint32_t rest = argc - s - 1;
    if (rest == 0 || rest % 2 != 0) {
        snprintf(err, errlen,
                 "Unbalanced '%s' list of streams: for each stream key an ID or '$' must be "
                 "specified.",
                 c->name);
        return -1;
    }
    for (uint32_t i = s + 1; i <= s + rest / 2; i++) {
        if (spans_push(keys, args[i].off, args[i].len) != 0) {
            return -1;
        }
    }
    return 0;
}

int redis_cmd_keys(const struct redis_cmd *c, const uint8_t *req, const struct span *args,
                   uint32_t argc, struct spans *keys, char *err, size_t errlen)
{
    err[0] = '\0';
    int rc = keys_push_range(c, args, argc, keys);
    if (rc == 0 && c->keys_kind == REDIS_KEYS_NUMKEYS) {
        rc = keys_push_numkeys(c, req, args, argc, keys, err, errlen);
    } else if (rc == 0 && c->keys_kind == REDIS_KEYS_STREAMS) {
        rc = keys_push_streams(c, req, args, argc, keys, err, errlen);
    }
    if (rc != 0 && err[0] == '\0') {
        snprintf(err, errlen, "out of memory"); /* the pushes only fail that way */
    }
    return rc;
}
