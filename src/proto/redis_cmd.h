/*
 * redis_cmd: the redis command table (generated data in redis_cmds.def) and the
 * questions asked of it: which command is this name, is this arity right, where
 * are the keys, how does the proxy handle it.
 *
 * Command ids (info->cmd) are indexes into the table: REDIS_CMD_<NAME>, with the
 * subcommands of containers as REDIS_CMD_<CONTAINER>_<SUB> (REDIS_CMD_OBJECT_ENCODING).
 */
#ifndef NC_PROTO_REDIS_CMD_H
#define NC_PROTO_REDIS_CMD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "proto/proto.h"

/* Bit positions of redis' command flags, then the masks. */
enum redis_flag_bit {
#define REDIS_FLAG(id, name) REDIS_FB_##id,
#include "proto/redis_cmds.def"
#undef REDIS_FLAG
    REDIS_FB_COUNT
};
#define REDIS_F(id) (1u << REDIS_FB_##id)

/* Bit positions of redis' ACL categories, then the masks. */
enum redis_aclcat_bit {
#define REDIS_ACLCAT(id, name) REDIS_AB_##id,
#include "proto/redis_cmds.def"
#undef REDIS_ACLCAT
    REDIS_AB_COUNT
};
#define REDIS_A(id) (1u << REDIS_AB_##id)

/* Bit positions of redis' key-spec flags (RW, access, ...), then the masks. */
enum redis_keyflag_bit {
#define REDIS_KEYFLAG(id, name) REDIS_KB_##id,
#include "proto/redis_cmds.def"
#undef REDIS_KEYFLAG
    REDIS_KB_COUNT
};
#define REDIS_K(id) (1u << REDIS_KB_##id)

enum redis_cmd_id {
    REDIS_CMD_UNKNOWN = 0, /* not in the table (rejected requests carry it) */
    REDIS_CMD_NOOP,        /* `*0`, `*-1` or an empty inline line: no reply at all */
#define REDIS_CMD(id, name, arity, flags, first, last, step, kind, spec0, nspecs, handling)        \
    REDIS_CMD_##id,
#include "proto/redis_cmds.def"
#undef REDIS_CMD
    REDIS_CMD_COUNT
};

/* How the keys of a command are found. */
enum redis_keys_kind {
    REDIS_KEYS_SPECS = 0, /* redis' key specs (struct redis_keyspec), as COMMAND GETKEYS */
    REDIS_KEYS_SORT,      /* the key specs, then SORT's STORE key, found the way SORT does */
    REDIS_KEYS_GEO,       /* GEORADIUS*: routed by the first spec's key and the STORE or
                             STOREDIST key the command writes, the last one (its other
                             specs name the first: COMMAND GETKEYS says those) */
};

/* One of redis' key specs: where a group of keys begins, then which arguments from
 * there are keys. */
enum redis_keyspec_find {
    REDIS_FIND_RANGE = 0, /* keys from the beginning to lastkey, every keystep */
    REDIS_FIND_KEYNUM,    /* the argument at keynumidx says how many keys follow firstkey */
};

struct redis_keyspec {
    const char *keyword; /* NULL: the keys begin at argument `begin`; else after this word */
    int8_t begin;        /* argument index, or where the keyword search starts (< 0: from the
                            end, searching backwards) */
    uint8_t find;        /* enum redis_keyspec_find */
    int8_t lastkey;      /* range: last key, relative to the beginning (< 0: from the end) */
    int8_t keystep;      /* distance between two keys */
    int8_t limit;        /* range with lastkey -1: only 1/limit of the rest are keys (XREAD) */
    int8_t keynumidx;    /* keynum: the key count's index, relative to the beginning */
    int8_t firstkey;     /* keynum: the first key's index, relative to the beginning */
};

/* What the proxy does with the command (POLICY in tools/gen_redis_cmds.py). */
enum redis_handling {
    REDIS_H_KEY = 0,        /* forward unchanged to the server of its keys */
    REDIS_H_KEY_BLOCKING,   /* the same, and it blocks (BLPOP): info->blocking */
    REDIS_H_KEY_BLOCK_OPT,  /* the same, blocking with a BLOCK option (XREAD) */
    REDIS_H_KEYLESS,        /* forward unchanged to the first server (LOLWUT) */
    REDIS_H_ANY,            /* keyless, any live server answers it: ROUTE_ANY (TIME) */
    REDIS_H_FACTS,          /* ROUTE_ANY with info->facts: the core answers (INFO) */
    REDIS_H_CHANNEL,        /* routed by its channel, argv[1], as if it were a key (PUBLISH) */
    REDIS_H_DATASET_SCAN,   /* ROUTE_DATASET walked with a cursor (SCAN) */
    REDIS_H_DATASET_CONCAT, /* ROUTE_DATASET, every server's array concatenated (KEYS) */
    REDIS_H_DATASET_SUM,    /* ROUTE_DATASET, every server's integer summed (DBSIZE) */
    REDIS_H_DATASET_PICK,   /* ROUTE_DATASET, one server's non-nil reply (RANDOMKEY) */
    REDIS_H_DATASET_UNION,  /* ROUTE_DATASET, the arrays' elements, each once (PUBSUB CHANNELS) */
    REDIS_H_DATASET_MAX,    /* ROUTE_DATASET, the largest integer (PUBSUB NUMPAT) */
    REDIS_H_DATASET_MAX_PAIRS, /* ROUTE_DATASET, [name count]...: each count's largest
                                  (PUBSUB NUMSUB) */
    REDIS_H_ALL_SAME,          /* ROUTE_ALL, every server must answer the same (SCRIPT LOAD) */
    REDIS_H_ALL_AND,           /* ROUTE_ALL, arrays of 0/1 ANDed element-wise (SCRIPT EXISTS) */
    REDIS_H_ALL_OK,            /* ROUTE_ALL, one +OK (SCRIPT FLUSH) */
    REDIS_H_FLUSH,             /* ROUTE_ALL with info->flush, one +OK (FLUSHDB, FLUSHALL) */
    REDIS_H_ALL_KILL,          /* ROUTE_ALL with info->own_conn: +OK where a server killed
                                  its script, else its error (SCRIPT KILL, FUNCTION KILL) */
    REDIS_H_SPLIT_ARRAY,       /* split by key, one array of the values (MGET) */
    REDIS_H_SPLIT_SUM,         /* split by key, integers summed (DEL, EXISTS...) */
    REDIS_H_SPLIT_OK,          /* split by key/value pair, one +OK (MSET) */
    REDIS_H_LOCAL,             /* answered by the proxy */
    REDIS_H_LOCAL_STATE,       /* answered by the proxy, changes the client's connection (SELECT,
                                  HELLO, AUTH, CLIENT SETNAME): refused in a transaction */
    REDIS_H_TXN,               /* ROUTE_TXN: MULTI, EXEC, DISCARD, WATCH, UNWATCH */
    REDIS_H_PUBSUB,            /* ROUTE_PUBSUB: (P)SUBSCRIBE, (P)UNSUBSCRIBE */
    REDIS_H_SUBCMD,            /* a container: the subcommand in argv[1] decides */
    REDIS_H_REJECT_NOKEY,      /* unsupported: nothing to route by */
    REDIS_H_REJECT_BLOCKING,
    REDIS_H_REJECT_PUBSUB,
    REDIS_H_REJECT_ADMIN,
};

struct redis_cmd {
    const char *name; /* lower case; subcommands as "container|sub" */
    uint8_t name_len;
    int8_t first, last, step; /* redis' legacy key range; last < 0 counts from the end */
    int32_t arity;            /* redis convention: -n means at least n */
    uint32_t flags;           /* REDIS_F(READONLY) | REDIS_F(WRITE) | ... */
    uint8_t keys_kind;        /* enum redis_keys_kind */
    uint8_t nspecs;           /* key specs: redis_keyspec_table[spec0 .. spec0 + nspecs) */
    uint16_t spec0;
    uint8_t handling; /* enum redis_handling */
};

/* Longest command name in the table (lookups reject longer names without a search). */
#define REDIS_CMD_NAME_MAX 40
/* Shortest subcommand full name in the table ("acl|cat"; test_redis_lookup checks it). */
#define REDIS_SUBCMD_NAME_MIN 7

extern const struct redis_cmd redis_cmd_table[REDIS_CMD_COUNT];
extern const struct redis_keyspec redis_keyspec_table[];
extern const char *const redis_flag_names[REDIS_FB_COUNT];
extern const char *const redis_aclcat_names[REDIS_AB_COUNT];
extern const char *const redis_keyflag_names[REDIS_KB_COUNT];
/* Each key spec's flags (REDIS_K masks), by its index in redis_keyspec_table. */
extern const uint16_t redis_keyspec_flags[];
/* Each command's ACL categories (REDIS_A masks), by id: COMMAND LIST's filter. */
extern const uint32_t redis_cmd_acl[REDIS_CMD_COUNT];

static inline const struct redis_cmd *redis_cmd_get(uint16_t id)
{
    return &redis_cmd_table[id < REDIS_CMD_COUNT ? id : REDIS_CMD_UNKNOWN];
}

/* Id of the command a request names p[0..n) in any letter case; REDIS_CMD_UNKNOWN if
 * none. A subcommand is not a request's name: "client|id" is unknown. */
uint16_t redis_cmd_lookup(const uint8_t *p, size_t n);
/* The same, but a subcommand's full name ("client|id") names it too: COMMAND INFO's
 * names. */
uint16_t redis_cmd_lookup_name(const uint8_t *p, size_t n);
/* Id of subcommand sub of container `parent`; REDIS_CMD_UNKNOWN if none. */
uint16_t redis_cmd_lookup_sub(uint16_t parent, const uint8_t *sub, size_t n);
/* True if argc satisfies the arity of redis' command table alone: what redis
 * checks before it queues a command in a transaction (MSET a 1 b passes). */
static inline bool redis_cmd_arity_table_ok(const struct redis_cmd *c, uint32_t argc)
{
    return c->arity >= 0 ? argc == (uint32_t)c->arity : argc >= (uint32_t)-c->arity;
}

/* True if argc (name included) satisfies the command's arity, and an MSET-like
 * command has whole groups of key and values. (Inline, as the two below: every
 * request asks.) */
static inline bool redis_cmd_arity_ok(const struct redis_cmd *c, uint32_t argc)
{
    if (!redis_cmd_arity_table_ok(c, argc)) {
        return false;
    }
    /* MSET-like: keys every `step` args up to the end need whole groups. */
    if (c->first > 0 && c->last < 0 && c->step > 1) {
        return argc >= (uint32_t)c->first && (argc - (uint32_t)c->first) % (uint32_t)c->step == 0;
    }
    return true;
}
/* True for commands the proxy serves (listed by COMMAND, counted by COMMAND COUNT). */
bool redis_cmd_supported(const struct redis_cmd *c);
/* Why a rejected command is rejected ("blocking", ...), or NULL if it is not. */
const char *redis_cmd_reject_reason(const struct redis_cmd *c);
/* Whether it is rejected (the REJECT kinds end enum redis_handling): inline,
 * so that a command served costs no call to find out. */
static inline bool redis_cmd_rejected(const struct redis_cmd *c)
{
    return c->handling >= REDIS_H_REJECT_NOKEY;
}

/* True if the command has arguments that are keys (COMMAND GETKEYS can answer). */
bool redis_cmd_has_keys(const struct redis_cmd *c);

/*
 * Append to keys the spans of every key argument of a request whose arguments (name
 * first) are args[0..argc), in the order of the command's key specs: what redis'
 * COMMAND GETKEYS answers for a valid request. A key spec that finds nothing valid
 * (an option not given, a key count out of range) adds no key; the other specs still
 * add theirs (GETKEYS would refuse the whole request, e.g. `PFMERGE d`, which redis
 * runs and which writes d). req is the request the spans point into.
 * Returns 0, or -1 when out of memory.
 */
int redis_cmd_keys(const struct redis_cmd *c, const uint8_t *req, const struct span *args,
                   uint32_t argc, struct spans *keys);

/* Where most commands have their one key (GET, SET, INCR...): a single key
 * spec of one key at a fixed argument. Its index (< argc), or 0 when the key
 * specs must be walked (redis_cmd_keys, which finds the same key there).
 * Inline: every request asks. */
static inline uint32_t redis_cmd_fixed_key(const struct redis_cmd *c, uint32_t argc)
{
    if (c->nspecs != 1 || c->keys_kind != REDIS_KEYS_SPECS) {
        return 0;
    }
    const struct redis_keyspec *ks = &redis_keyspec_table[c->spec0];
    bool fixed = ks->keyword == NULL && ks->find == REDIS_FIND_RANGE && ks->lastkey == 0;
    return fixed && ks->begin > 0 && (uint32_t)ks->begin < argc ? (uint32_t)ks->begin : 0;
}

/* A key of a request and the flags (REDIS_K masks) of what found it: nonzero stops. */
typedef int (*redis_key_fn)(void *ctx, struct span key, uint32_t flags);
/* The keys redis' key specs name, as COMMAND GETKEYSANDFLAGS says them, each given
 * to fn with its flags: those redis_cmd_keys finds, in the same order, but for
 * GEORADIUS* with STORE or STOREDIST more than once (REDIS_KEYS_GEO). Returns 0,
 * or fn's first nonzero return. */
int redis_cmd_keys_each(const struct redis_cmd *c, const uint8_t *req, const struct span *args,
                        uint32_t argc, redis_key_fn fn, void *ctx);

/* A key's flags as redis reports them: a spec's flags, or where the spec says
 * variable_flags (SET, BITFIELD), what this request does to the key. */
uint32_t redis_cmd_key_flags(const struct redis_cmd *c, uint32_t flags, const uint8_t *req,
                             const struct span *args, uint32_t argc);

/* How long command c (id) may block the connection, in milliseconds, from its
 * timeout argument: REDIS_BLOCK_NOT when it does not block (not a blocking
 * command, or XREAD without BLOCK), REDIS_BLOCK_FOREVER for a timeout of 0, 0
 * for a timeout redis refuses (it answers at once). */
#define REDIS_BLOCK_NOT     (-2)
#define REDIS_BLOCK_FOREVER (-1)
int64_t redis_cmd_block_ms(const struct redis_cmd *c, uint16_t id, const uint8_t *req,
                           const struct span *args, uint32_t argc);
/* Whether c is a command redis_cmd_block_ms may find blocking (inline: every
 * request asks, and almost none is). */
static inline bool redis_cmd_may_block(const struct redis_cmd *c)
{
    return c->handling == REDIS_H_KEY_BLOCKING || c->handling == REDIS_H_KEY_BLOCK_OPT;
}

#endif
