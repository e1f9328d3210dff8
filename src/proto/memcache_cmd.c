/*
 * memcache_cmd: the command table. Everything the parsers need to know about a
 * command is a row here, so adding a command is adding a row.
 */
#include <string.h>

#include "proto/memcache_int.h"

#define MC_STORE_REPLIES "STORED NOT_STORED EXISTS NOT_FOUND"

#define MC_ROW(n, route_, reply_, ro, nr, min, max, shape_, replies_, missing, arg, extra)         \
    {                                                                                              \
        .name = n, .name_len = sizeof(n) - 1, .route = route_, .reply = reply_, .readonly = ro,    \
        .noreply = nr, .tmin = min, .tmax = max, .shape = shape_, .replies = replies_,             \
        .err_missing = missing, .err_arg = arg, .err_extra = extra                                 \
    }

/* Storage commands differ only by name. */
#define MC_STORE_ROW(n)                                                                            \
    MC_ROW(n, ROUTE_KEY, MC_REPLY_WORDS, false, true, 5, 6, "kuibn", MC_STORE_REPLIES,             \
           MC_ERR_UNKNOWN, MC_ERR_FORMAT, MC_ERR_UNKNOWN)

/* Retrievals: at least one token after the name ("gat 10" is an empty gat). */
#define MC_GET_ROW(n, ro, shape_, arg)                                                             \
    MC_ROW(n, ROUTE_KEY, MC_REPLY_VALUES, ro, false, 2, 0, shape_, NULL, MC_ERR_UNKNOWN, arg,      \
           MC_ERR_UNKNOWN)

/* Meta commands check their own tokens (memcached answers CLIENT_ERROR there). */
#define MC_META_ROW(n, ro, shape_, replies_, missing)                                              \
    MC_ROW(n, ROUTE_KEY, MC_REPLY_META, ro, false, 0, 0, shape_, replies_, missing, MC_ERR_FORMAT, \
           MC_ERR_FLAGS)

static const struct mc_cmd mc_cmds[MC_CMD_COUNT] = {
    [MC_CMD_GET] = MC_GET_ROW("get", true, "K", MC_ERR_FORMAT),
    [MC_CMD_GETS] = MC_GET_ROW("gets", true, "K", MC_ERR_FORMAT),
    /* gat changes the TTL, so it is not a read a replica could serve. */
    [MC_CMD_GAT] = MC_GET_ROW("gat", false, "iK", MC_ERR_EXPTIME),
    [MC_CMD_GATS] = MC_GET_ROW("gats", false, "iK", MC_ERR_EXPTIME),
    [MC_CMD_SET] = MC_STORE_ROW("set"),
    [MC_CMD_ADD] = MC_STORE_ROW("add"),
    [MC_CMD_REPLACE] = MC_STORE_ROW("replace"),
    [MC_CMD_APPEND] = MC_STORE_ROW("append"),
    [MC_CMD_PREPEND] = MC_STORE_ROW("prepend"),
    [MC_CMD_CAS] = MC_ROW("cas", ROUTE_KEY, MC_REPLY_WORDS, false, true, 6, 7, "kuibun",
                          MC_STORE_REPLIES, MC_ERR_UNKNOWN, MC_ERR_FORMAT, MC_ERR_UNKNOWN),
    [MC_CMD_INCR] = MC_ROW("incr", ROUTE_KEY, MC_REPLY_NUMBER, false, true, 3, 4, "kun",
                           "NOT_FOUND", MC_ERR_UNKNOWN, MC_ERR_DELTA, MC_ERR_UNKNOWN),
    [MC_CMD_DECR] = MC_ROW("decr", ROUTE_KEY, MC_REPLY_NUMBER, false, true, 3, 4, "kun",
                           "NOT_FOUND", MC_ERR_UNKNOWN, MC_ERR_DELTA, MC_ERR_UNKNOWN),
    [MC_CMD_DELETE] = MC_ROW("delete", ROUTE_KEY, MC_REPLY_WORDS, false, true, 2, 4, "kzN",
                             "DELETED NOT_FOUND", MC_ERR_UNKNOWN, MC_ERR_DELETE, MC_ERR_DELETE),
    [MC_CMD_TOUCH] = MC_ROW("touch", ROUTE_KEY, MC_REPLY_WORDS, false, true, 3, 4, "kin",
                            "TOUCHED NOT_FOUND", MC_ERR_UNKNOWN, MC_ERR_EXPTIME, MC_ERR_UNKNOWN),
    [MC_CMD_MG] = MC_META_ROW("mg", true, "km", "VA HD EN", MC_ERR_UNKNOWN),
    [MC_CMD_MS] = MC_META_ROW("ms", false, "klm", "HD NS EX NF", MC_ERR_UNKNOWN),
    [MC_CMD_MD] = MC_META_ROW("md", false, "km", "HD NF EX", MC_ERR_UNKNOWN),
    [MC_CMD_MA] = MC_META_ROW("ma", false, "km", "HD VA NF NS EX", MC_ERR_UNKNOWN),
    [MC_CMD_MN] = MC_ROW("mn", ROUTE_LOCAL, MC_REPLY_META, true, false, 0, 0, "*", "MN",
                         MC_ERR_UNKNOWN, MC_ERR_FORMAT, MC_ERR_UNKNOWN),
    [MC_CMD_ME] = MC_META_ROW("me", true, "km", "ME EN", MC_ERR_FORMAT),
    [MC_CMD_QUIT] = MC_ROW("quit", ROUTE_LOCAL, MC_REPLY_NONE, true, false, 0, 0, "*", NULL,
                           MC_ERR_UNKNOWN, MC_ERR_FORMAT, MC_ERR_UNKNOWN),
    /* the servers' version: any live one answers (libmemcached tools check it) */
    [MC_CMD_VERSION] = MC_ROW("version", ROUTE_ANY, MC_REPLY_VERSION, true, false, 0, 0, "*", NULL,
                              MC_ERR_UNKNOWN, MC_ERR_FORMAT, MC_ERR_UNKNOWN),
    [MC_CMD_FLUSH_ALL] = MC_ROW("flush_all", ROUTE_ALL, MC_REPLY_WORDS, false, true, 1, 3, "on",
                                "OK", MC_ERR_UNKNOWN, MC_ERR_EXPTIME, MC_ERR_UNKNOWN),
    /* the level is the servers' to judge: each answers as it would alone */
    [MC_CMD_VERBOSITY] = MC_ROW("verbosity", ROUTE_ALL, MC_REPLY_WORDS, false, true, 2, 3, "*",
                                "OK", MC_ERR_UNKNOWN, MC_ERR_FORMAT, MC_ERR_UNKNOWN),
    /* route by subcommand: mc_req_stats_route */
    [MC_CMD_STATS] = MC_ROW("stats", ROUTE_ANY, MC_REPLY_STATS, true, false, 0, 0, "*", "RESET OK",
                            MC_ERR_UNKNOWN, MC_ERR_FORMAT, MC_ERR_UNKNOWN),
    /* ma's row for a quiet ma with N, sent with an mn behind it; mc_cmd_find
     * finds ma's own row first */
    [MC_CMD_MA_VIVIFY] = MC_ROW("ma", ROUTE_KEY, MC_REPLY_META_MN, false, false, 0, 0, "km",
                                "HD VA NF NS EX", MC_ERR_UNKNOWN, MC_ERR_FORMAT, MC_ERR_FLAGS),
};

const struct mc_cmd *mc_cmd_find(const uint8_t *name, size_t len)
{
    /* 25 rows: a scan with a length check first is as fast as a hash here. */
    for (size_t i = 1; i < MC_CMD_COUNT; i++) {
        const struct mc_cmd *c = &mc_cmds[i];
        if (c->name_len == len && memcmp(c->name, name, len) == 0) {
            return c;
        }
    }
    return NULL;
}

const struct mc_cmd *mc_cmd_get(uint16_t id)
{
    if (id == MC_CMD_NONE || id >= MC_CMD_COUNT) {
        return NULL;
    }
    return &mc_cmds[id];
}

uint16_t mc_cmd_id(const struct mc_cmd *cmd)
{
    return (uint16_t)(cmd - mc_cmds);
}

const char *mc_cmd_name(uint16_t id)
{
    const struct mc_cmd *c = mc_cmd_get(id);
    return c ? c->name : NULL;
}
