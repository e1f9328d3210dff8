/*
 * redis_local_cmd: COMMAND, answered from our command table so clients (redis-cli,
 * client libraries probing key positions) see what the proxy supports, not what
 * one backend server supports. Entries use redis' legacy six-field layout:
 * name, arity, flags, first key, last key, step.
 */
#include <fnmatch.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto/redis_cmd.h"
#include "proto/redis_local.h"
#include "proto/redis_wire.h"

/* Top-level commands only: subcommands live in their containers, as in redis. */
static bool cmd_listed(uint16_t id)
{
    const struct redis_cmd *c = redis_cmd_get(id);
    return id > REDIS_CMD_NOOP && redis_cmd_supported(c) &&
           memchr(c->name, '|', c->name_len) == NULL;
}

static uint32_t cmd_listed_count(void)
{
    uint32_t n = 0;
    for (uint16_t id = 0; id < REDIS_CMD_COUNT; id++) {
        n += cmd_listed(id);
    }
    return n;
}

/* The flags in the order redis lists them (a client may compare the lists). */
static const uint8_t cmd_flag_order[] = {
    REDIS_FB_WRITE,    REDIS_FB_READONLY,     REDIS_FB_DENYOOM,           REDIS_FB_ADMIN,
    REDIS_FB_PUBSUB,   REDIS_FB_NOSCRIPT,     REDIS_FB_BLOCKING,          REDIS_FB_LOADING,
    REDIS_FB_STALE,    REDIS_FB_SKIP_MONITOR, REDIS_FB_SKIP_SLOWLOG,      REDIS_FB_ASKING,
    REDIS_FB_FAST,     REDIS_FB_NO_AUTH,      REDIS_FB_NO_MANDATORY_KEYS, REDIS_FB_NO_ASYNC_LOADING,
    REDIS_FB_NO_MULTI, REDIS_FB_MOVABLEKEYS,  REDIS_FB_ALLOW_BUSY,
};
_Static_assert(sizeof(cmd_flag_order) == REDIS_FB_COUNT, "every flag has its place");

static int cmd_entry(struct buf *out, const struct redis_cmd *c, int resp)
{
    uint32_t nflags = (uint32_t)__builtin_popcount(c->flags);
    int rc = redis_wire_num(out, '*', 6);
    rc |= redis_wire_bulk(out, c->name, c->name_len);
    rc |= redis_wire_num(out, ':', c->arity);
    rc |= redis_wire_set(out, nflags, resp);
    for (uint32_t i = 0; i < REDIS_FB_COUNT; i++) {
        uint32_t b = cmd_flag_order[i];
        if (c->flags & (1u << b)) {
            rc |= redis_wire_status(out, redis_flag_names[b]);
        }
    }
    rc |= redis_wire_num(out, ':', c->first);
    rc |= redis_wire_num(out, ':', c->last);
    rc |= redis_wire_num(out, ':', c->step);
    return rc;
}

/* COMMAND and COMMAND INFO without names: every supported command. */
static int cmd_all(struct buf *out, int resp)
{
    int rc = redis_wire_num(out, '*', cmd_listed_count());
    for (uint16_t id = 0; id < REDIS_CMD_COUNT && rc == 0; id++) {
        const struct redis_cmd *c = redis_cmd_get(id);
        if (cmd_listed(id)) {
            rc = cmd_entry(out, c, resp);
        }
    }
    return rc;
}

/* COMMAND INFO name...: an entry per name, null for unknown or unsupported ones. */
static int cmd_info(struct buf *out, const uint8_t *req, const struct span *a, uint32_t argc,
                    int resp)
{
    if (argc == 2) {
        return cmd_all(out, resp);
    }
    int rc = redis_wire_num(out, '*', argc - 2);
    for (uint32_t i = 2; i < argc && rc == 0; i++) {
        uint16_t id = redis_cmd_lookup_name(req + a[i].off, a[i].len);
        const struct redis_cmd *c = redis_cmd_get(id);
        rc = redis_cmd_supported(c) ? cmd_entry(out, c, resp) : redis_wire_null(out, resp);
    }
    return rc;
}

static int cmd_error(struct buf *out, const char *msg)
{
    return redis_wire_error(out, msg);
}

/* What COMMAND LIST keeps: everything, nothing (a module: the proxy has none),
 * the commands of an ACL category, or the names a glob pattern matches. */
struct cmd_filter {
    enum { FILTER_NONE, FILTER_EMPTY, FILTER_ACLCAT, FILTER_PATTERN } kind;
    uint32_t acl;
    char *pattern; /* NUL-terminated copy, for fnmatch */
};

static bool cmd_filter_keeps(const struct cmd_filter *f, uint16_t id)
{
    const struct redis_cmd *c = redis_cmd_get(id);
    if (id <= REDIS_CMD_NOOP || !redis_cmd_supported(c)) {
        return false;
    }
    switch (f->kind) {
    case FILTER_NONE:
        return true;
    case FILTER_ACLCAT:
        return (redis_cmd_acl[id] & f->acl) != 0;
    case FILTER_PATTERN:
        /* redis matches the full name ("config|get") without regard to case */
        return fnmatch(f->pattern, c->name, FNM_CASEFOLD) == 0;
    default:
        return false;
    }
}

/* FILTERBY MODULE|ACLCAT|PATTERN arg, as redis 7 reads it: -1 for a syntax error,
 * -2 out of memory. An unknown category lists nothing, as in redis. */
static int cmd_filter_parse(struct cmd_filter *f, const uint8_t *req, const struct span *a)
{
    const uint8_t *arg = req + a[4].off;
    if (!redis_wire_arg_is(req, a[2], "filterby")) {
        return -1;
    }
    if (redis_wire_arg_is(req, a[3], "module")) {
        f->kind = FILTER_EMPTY;
    } else if (redis_wire_arg_is(req, a[3], "aclcat")) {
        f->kind = FILTER_ACLCAT;
        for (uint32_t i = 0; i < REDIS_AB_COUNT; i++) {
            if (strlen(redis_aclcat_names[i]) == a[4].len &&
                strncasecmp(redis_aclcat_names[i], (const char *)arg, a[4].len) == 0) {
                f->acl = 1u << i;
            }
        }
    } else if (redis_wire_arg_is(req, a[3], "pattern")) {
        f->kind = memchr(arg, '\0', a[4].len) ? FILTER_EMPTY : FILTER_PATTERN; /* names have none */
        f->pattern = f->kind == FILTER_PATTERN ? strndup((const char *)arg, a[4].len) : NULL;
        return f->kind == FILTER_PATTERN && f->pattern == NULL ? -2 : 0;
    } else {
        return -1;
    }
    return 0;
}

/* COMMAND LIST [FILTERBY ...]: the names of the commands the proxy serves, their
 * served subcommands included ("object|encoding"), as redis lists them. */
static int cmd_list(struct buf *out, const uint8_t *req, const struct span *a, uint32_t argc)
{
    struct cmd_filter f = {FILTER_NONE, 0, NULL};
    int parsed = argc == 2 ? 0 : argc == 5 ? cmd_filter_parse(&f, req, a) : -1;
    if (parsed != 0) {
        free(f.pattern);
        return cmd_error(out, parsed == -1 ? "ERR syntax error" : "ERR out of memory");
    }
    uint32_t n = 0;
    for (uint16_t id = 0; id < REDIS_CMD_COUNT; id++) {
        n += cmd_filter_keeps(&f, id);
    }
    int rc = redis_wire_num(out, '*', n);
    for (uint16_t id = 0; id < REDIS_CMD_COUNT && rc == 0; id++) {
        const struct redis_cmd *c = redis_cmd_get(id);
        if (cmd_filter_keeps(&f, id)) {
            rc = redis_wire_bulk(out, c->name, c->name_len);
        }
    }
    free(f.pattern);
    return rc;
}

/* The reply of COMMAND GETKEYS(ANDFLAGS), one key at a time. */
struct getkeys {
    struct buf *out;
    const uint8_t *req;
    const struct redis_cmd *cmd; /* and its arguments, for variable flags */
    const struct span *args;
    uint32_t argc;
    bool flags; /* GETKEYSANDFLAGS: each key as [key, flags] */
    int resp;
    uint32_t n;
};

static int getkeys_count(void *ctx, struct span key, uint32_t flags)
{
    (void)key;
    (void)flags;
    ((struct getkeys *)ctx)->n++;
    return 0;
}

static int getkeys_put(void *ctx, struct span key, uint32_t flags)
{
    struct getkeys *g = ctx;
    if (!g->flags) {
        return redis_wire_bulk(g->out, g->req + key.off, key.len);
    }
    flags = redis_cmd_key_flags(g->cmd, flags, g->req, g->args, g->argc);
    int rc = redis_wire_num(g->out, '*', 2);
    rc |= redis_wire_bulk(g->out, g->req + key.off, key.len);
    rc |= redis_wire_set(g->out, (uint32_t)__builtin_popcount(flags), g->resp);
    for (uint32_t b = 0; b < REDIS_KB_COUNT; b++) {
        if (flags & (1u << b)) {
            rc |= redis_wire_status(g->out, redis_keyflag_names[b]);
        }
    }
    return rc;
}

/* COMMAND GETKEYS cmd arg...: the keys the proxy routes by, with redis' answers for
 * commands without keys and requests without any; GETKEYSANDFLAGS adds each key's
 * flags (RW, access...), those of the key spec that found it. */
static int cmd_getkeys(struct buf *out, const uint8_t *req, const struct span *a, uint32_t argc,
                       bool with_flags, int resp)
{
    const struct span *sub = a + 2;
    uint32_t n = argc - 2;
    uint16_t id = redis_cmd_lookup(req + sub[0].off, sub[0].len);
    const struct redis_cmd *c = redis_cmd_get(id);
    if (c->handling == REDIS_H_SUBCMD && n >= 2) {
        c = redis_cmd_get(redis_cmd_lookup_sub(id, req + sub[1].off, sub[1].len));
    }
    if (!redis_cmd_supported(c)) {
        return cmd_error(out, "ERR Invalid command specified");
    }
    if (!redis_cmd_has_keys(c)) {
        return cmd_error(out, "ERR The command has no key arguments");
    }
    /* the table's arity only, as redis: MSET a b c has the keys a and c */
    if (!redis_cmd_arity_table_ok(c, n)) {
        return cmd_error(out, "ERR Invalid number of arguments specified for command");
    }
    struct getkeys g = {out, req, c, sub, n, with_flags, resp, 0};
    redis_cmd_keys_each(c, req, sub, n, getkeys_count, &g);
    if (g.n == 0 && (c->flags & REDIS_F(NO_MANDATORY_KEYS)) == 0) {
        return cmd_error(out, "ERR Invalid arguments specified for command");
    }
    int rc = redis_wire_num(out, '*', g.n);
    return rc != 0 ? rc : redis_cmd_keys_each(c, req, sub, n, getkeys_put, &g);
}

static int cmd_help(struct buf *out)
{
    static const char *const lines[] = {
        "COMMAND <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
        "(no subcommand)",
        "    Return details about the commands the proxy supports.",
        "COUNT",
        "    Return the number of supported commands.",
        "DOCS",
        "    Return an empty documentation map.",
        "GETKEYS <full-command>",
        "    Return the keys the proxy routes the command by.",
        "GETKEYSANDFLAGS <full-command>",
        "    Return the keys the proxy routes the command by, with their flags.",
        "INFO [<command-name> ...]",
        "    Return details about the given commands.",
        "LIST [FILTERBY (MODULE <module-name>|ACLCAT <category>|PATTERN <pattern>)]",
        "    Return the names of the supported commands and subcommands.",
    };
    return redis_wire_status_lines(out, lines, sizeof(lines) / sizeof(lines[0]));
}

int redis_local_command(struct buf *out, const uint8_t *req, const struct req_info *info, int resp)
{
    const struct span *a = info->args.v;
    uint32_t argc = info->args.n;
    if (argc == 1) {
        return cmd_all(out, resp);
    }
    if (redis_wire_arg_is(req, a[1], "count") && argc == 2) {
        return redis_wire_num(out, ':', cmd_listed_count());
    }
    if (redis_wire_arg_is(req, a[1], "docs")) {
        return redis_wire_map(out, 0, resp); /* redis-cli 7 asks at start; hints are optional */
    }
    if (redis_wire_arg_is(req, a[1], "info")) {
        return cmd_info(out, req, a, argc, resp);
    }
    if (redis_wire_arg_is(req, a[1], "list")) {
        return cmd_list(out, req, a, argc);
    }
    bool flags = redis_wire_arg_is(req, a[1], "getkeysandflags");
    if (flags || redis_wire_arg_is(req, a[1], "getkeys")) {
        /* like redis 7 (arity -4): a command and at least one argument */
        return argc >= 4 ? cmd_getkeys(out, req, a, argc, flags, resp)
               : flags   ? cmd_error(out, "ERR wrong number of arguments for "
                                            "'command|getkeysandflags' command")
                         : cmd_error(out, "ERR wrong number of arguments for 'command|getkeys' "
                                            "command");
    }
    if (redis_wire_arg_is(req, a[1], "help") && argc == 2) {
        return cmd_help(out);
    }
    char msg[160];
    const char *known = redis_wire_arg_is(req, a[1], "count")  ? "count"
                        : redis_wire_arg_is(req, a[1], "help") ? "help"
                                                               : NULL;
    if (known != NULL) { /* COUNT, HELP with an argument too many: redis 7's words */
        snprintf(msg, sizeof(msg), "ERR wrong number of arguments for 'command|%s' command", known);
        return cmd_error(out, msg);
    }
    char sub[64];
    redis_wire_quote(sub, sizeof(sub), req + a[1].off, a[1].len);
    snprintf(msg, sizeof(msg), "ERR unknown subcommand '%s'. Try COMMAND HELP.", sub);
    return cmd_error(out, msg);
}
