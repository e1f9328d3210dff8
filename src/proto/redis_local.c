/*
 * redis_local: requests the proxy answers itself, and the AUTH gate.
 *
 * The client authenticates against the pool's redis_auth (or, with client_auth, as
 * one of its users), never against a server: servers get AUTH from conn_init on
 * every new connection. Until a client has authenticated, every request but those
 * redis lets through (AUTH, HELLO ... AUTH, QUIT, RESET: the no_auth flag) is
 * answered NOAUTH. A RESP2 client in subscribed mode may send only what redis
 * allows there (PING, (P)(UN)SUBSCRIBE, QUIT, RESET). Answers that differ between
 * RESP2 and RESP3 follow lc->resp.
 */
#include <stdio.h>
#include <string.h>

#include "proto/redis.h"
#include "proto/redis_cmd.h"
#include "proto/redis_local.h"
#include "proto/redis_wire.h"

#define LOCAL_NOAUTH "NOAUTH Authentication required."
#define LOCAL_HELLO_NOAUTH                                                                         \
    "NOAUTH HELLO must be called with the client already authenticated, otherwise the "            \
    "HELLO AUTH <user> <pass> option can be used to authenticate the client and "                  \
    "select the RESP protocol version at the same time"

#define LOCAL_WRONGPASS "WRONGPASS invalid username-password pair or user is disabled."

static bool local_has_password(const struct local_ctx *lc)
{
    return lc->login != NULL || (lc->auth != NULL && lc->auth_len > 0);
}

static bool local_locked(const struct local_ctx *lc)
{
    return local_has_password(lc) && !lc->authed;
}

/* Compare without an early exit so response time does not reveal a matching prefix. */
static bool local_password_ok(const struct local_ctx *lc, const uint8_t *pw, size_t n)
{
    if (n != lc->auth_len) {
        return false;
    }
    uint8_t diff = 0;
    for (size_t i = 0; i < n; i++) {
        diff |= (uint8_t)(pw[i] ^ (uint8_t)lc->auth[i]);
    }
    return diff == 0;
}

static void local_note_refused(struct local_ctx *lc, const uint8_t *req, const struct span *user)
{
    lc->refused++;
    if (user != NULL) {
        redis_wire_quote(lc->refused_user, sizeof(lc->refused_user), req + user->off, user->len);
    } else {
        snprintf(lc->refused_user, sizeof(lc->refused_user), "default");
    }
}

/* AUTH [user] pw and HELLO .. AUTH user pw: the pool password is the default user's.
 * Returns 1 when logged in, 0 when the error reply was appended, -1 out of memory. */
static int local_login(struct buf *out, const uint8_t *req, const struct span *user, struct span pw,
                       struct local_ctx *lc)
{
    const char *err = NULL;
    if (lc->login != NULL) {
        /* ACL users: redis 6+ semantics, AUTH pw is the default user's, and a
         * failed AUTH leaves an earlier login in force */
        bool ok = lc->login(lc->login_ctx, user ? req + user->off : NULL, user ? user->len : 0,
                            req + pw.off, pw.len);
        lc->authed = lc->authed || ok;
        if (ok) {
            buf_reset(&lc->user);
            buf_append(&lc->user, user ? req + user->off : (const uint8_t *)"default",
                       user ? user->len : 7);
        }
        err = ok ? NULL : LOCAL_WRONGPASS;
    } else if (!local_has_password(lc)) {
        err = "ERR Client sent AUTH, but no password is set";
    } else {
        bool user_ok =
            user == NULL || (user->len == 7 && memcmp(req + user->off, "default", 7) == 0);
        lc->authed = user_ok && local_password_ok(lc, req + pw.off, pw.len);
        err = lc->authed ? NULL : "ERR invalid password";
    }
    if (err != NULL && local_has_password(lc)) {
        local_note_refused(lc, req, user);
    }
    if (err != NULL) {
        return redis_wire_error(out, err) == 0 ? 0 : -1;
    }
    return 1;
}

static int local_auth(struct buf *out, const uint8_t *req, const struct req_info *info,
                      struct local_ctx *lc)
{
    const struct span *a = info->args.v;
    uint32_t argc = info->args.n;
    if (argc > 3) {
        return redis_wire_error(out, "ERR syntax error");
    }
    int rc = local_login(out, req, argc == 3 ? &a[1] : NULL, a[argc - 1], lc);
    if (rc == 1) {
        return redis_wire_status(out, "OK");
    }
    return rc;
}

/* HELLO's reply as redis 7 lays it out; mode "standalone": clients read it to choose
 * cluster or sentinel behaviour, and through the proxy the pool is one server. */
static int local_hello_reply(struct buf *out, const struct local_ctx *lc)
{
    int rc = redis_wire_map(out, 7, lc->resp);
    rc |= redis_wire_bulk_str(out, "server");
    rc |= redis_wire_bulk_str(out, "nutcracker");
    rc |= redis_wire_bulk_str(out, "version");
    rc |= redis_wire_bulk_str(out, lc->version != NULL ? lc->version : "");
    rc |= redis_wire_bulk_str(out, "proto");
    rc |= redis_wire_num(out, ':', lc->resp);
    rc |= redis_wire_bulk_str(out, "id");
    rc |= redis_wire_num(out, ':', (int64_t)lc->id);
    rc |= redis_wire_bulk_str(out, "mode");
    rc |= redis_wire_bulk_str(out, "standalone");
    rc |= redis_wire_bulk_str(out, "role");
    rc |= redis_wire_bulk_str(out, "master");
    rc |= redis_wire_bulk_str(out, "modules");
    rc |= redis_wire_num(out, '*', 0);
    return rc;
}

struct hello_opts {
    int64_t ver; /* 0: keep the protocol */
    const struct span *user, *pw, *name;
};

/* HELLO's arguments; 1 when valid, else the error reply was appended (0) or -1. */
static int local_hello_args(struct buf *out, const uint8_t *req, const struct req_info *info,
                            struct hello_opts *o)
{
    const struct span *a = info->args.v;
    uint32_t argc = info->args.n;
    if (argc >= 2 && !redis_wire_int_parse(req + a[1].off, a[1].len, &o->ver)) {
        return redis_wire_error(out, "ERR Protocol version is not an integer or out of range");
    }
    if (argc >= 2 && (o->ver < 2 || o->ver > 3)) {
        return redis_wire_error(out, "NOPROTO unsupported protocol version");
    }
    for (uint32_t i = 2; i < argc;) {
        if (redis_wire_arg_is(req, a[i], "auth") && i + 2 < argc) {
            o->user = &a[i + 1];
            o->pw = &a[i + 2];
            i += 3;
        } else if (redis_wire_arg_is(req, a[i], "setname") && i + 1 < argc) {
            o->name = &a[i + 1];
            i += 2;
        } else {
            char opt[64], msg[128];
            redis_wire_quote(opt, sizeof(opt), req + a[i].off, a[i].len);
            snprintf(msg, sizeof(msg), "ERR Syntax error in HELLO option '%s'", opt);
            return redis_wire_error(out, msg);
        }
    }
    return 1;
}

/* HELLO [protover [AUTH user pass] [SETNAME name]], in redis 7's order of checks. */
static int local_hello(struct buf *out, const uint8_t *req, const struct req_info *info,
                       struct local_ctx *lc)
{
    struct hello_opts o = {0, NULL, NULL, NULL};
    int rc = local_hello_args(out, req, info, &o);
    if (rc == 1 && o.user != NULL && local_has_password(lc)) {
        rc = local_login(out, req, o.user, *o.pw, lc);
    } else if (rc == 1 && o.user != NULL &&
               !(o.user->len == 7 && memcmp(req + o.user->off, "default", 7) == 0)) {
        /* without a password, as redis without one: the default user takes any
         * password, and there is no other user */
        local_note_refused(lc, req, o.user);
        rc = redis_wire_error(out, LOCAL_WRONGPASS) == 0 ? 0 : -1;
    }
    if (rc != 1) {
        return rc; /* the error is the reply */
    }
    if (o.name != NULL && !redis_local_name_ok(req + o.name->off, o.name->len)) {
        return redis_wire_error(out, REDIS_LOCAL_BAD_NAME);
    }
    if (local_locked(lc)) {
        return redis_wire_error(out, LOCAL_HELLO_NOAUTH);
    }
    if (o.name != NULL && redis_local_name_set(lc, req + o.name->off, o.name->len) != 0) {
        return -1;
    }
    if (o.ver != 0) {
        lc->resp = (int)o.ver;
    }
    return local_hello_reply(out, lc);
}

/* In RESP2 subscribed mode redis answers PING with a `pong` message, so that a
 * client reading only messages sees it. */
static int local_ping(struct buf *out, const uint8_t *req, const struct req_info *info,
                      const struct local_ctx *lc)
{
    const struct span *a = info->args.v;
    if (info->args.n > 2) {
        return redis_wire_error(out, "ERR wrong number of arguments for 'ping' command");
    }
    if (lc->subscribed && lc->resp != 3) {
        int rc = redis_wire_num(out, '*', 2);
        rc |= redis_wire_bulk_str(out, "pong");
        return rc | (info->args.n == 2 ? redis_wire_bulk(out, req + a[1].off, a[1].len)
                                       : redis_wire_bulk(out, "", 0));
    }
    if (info->args.n == 1) {
        return redis_wire_status(out, "PONG");
    }
    return redis_wire_bulk(out, req + a[1].off, a[1].len);
}

/* RESET: the connection as it was when it opened (the core leaves the client's
 * transaction and subscriptions when it sees the command). */
static int local_reset(struct buf *out, struct local_ctx *lc)
{
    lc->subscribed = false;
    lc->resp = 2;
    buf_reset(&lc->name);
    if (local_has_password(lc)) {
        lc->authed = false;
    }
    return redis_wire_status(out, "RESET");
}

/* The pool's db is selected on every server connection: no other can be honoured. */
static int local_select(struct buf *out, const uint8_t *req, const struct req_info *info,
                        const struct local_ctx *lc)
{
    int64_t db;
    struct span s = info->args.v[1];
    if (!redis_wire_int_parse(req + s.off, s.len, &db)) {
        return redis_wire_error(out, "ERR value is not an integer or out of range");
    }
    if (db == lc->db) {
        return redis_wire_status(out, "OK");
    }
    char msg[96];
    snprintf(msg, sizeof(msg), "ERR SELECT is not allowed through the proxy (pool db is %d)",
             lc->db);
    return redis_wire_error(out, msg);
}

static int local_answer(struct buf *out, const uint8_t *req, const struct req_info *info,
                        struct local_ctx *lc)
{
    switch (info->cmd) {
    case REDIS_CMD_AUTH:
        return local_auth(out, req, info, lc);
    case REDIS_CMD_HELLO:
        return local_hello(out, req, info, lc);
    case REDIS_CMD_QUIT:
        return redis_wire_status(out, "OK");
    case REDIS_CMD_PING:
        return local_ping(out, req, info, lc);
    case REDIS_CMD_ECHO:
        return redis_wire_bulk(out, req + info->args.v[1].off, info->args.v[1].len);
    case REDIS_CMD_SELECT:
        return local_select(out, req, info, lc);
    case REDIS_CMD_COMMAND:
        return redis_local_command(out, req, info, lc->resp);
    case REDIS_CMD_RESET:
        return local_reset(out, lc);
    default:
        return redis_local_client(out, req, info, lc);
    }
}

/* What a RESP2 client may send while subscribed, as redis 7 allows it (the
 * sharded forms too: the proxy then refuses them as it does elsewhere). */
static bool local_subscribed_ok(uint16_t cmd)
{
    return cmd == REDIS_CMD_PING || cmd == REDIS_CMD_SUBSCRIBE || cmd == REDIS_CMD_PSUBSCRIBE ||
           cmd == REDIS_CMD_UNSUBSCRIBE || cmd == REDIS_CMD_PUNSUBSCRIBE || cmd == REDIS_CMD_QUIT ||
           cmd == REDIS_CMD_RESET || cmd == REDIS_CMD_SSUBSCRIBE || cmd == REDIS_CMD_SUNSUBSCRIBE;
}

/* A refusal appended as redis words it: one of EXEC aborts the transaction, and
 * redis says so with the reason behind (without its ERR). 1, or -1. */
static int local_refuse(struct buf *out, const struct req_info *info, const char *why)
{
    char msg[256];
    if (info->cmd == REDIS_CMD_EXEC) {
        if (strncmp(why, "ERR ", 4) == 0) {
            why += 4;
        }
        snprintf(msg, sizeof(msg), "EXECABORT Transaction discarded because of: %s", why);
        why = msg;
    }
    return redis_wire_error(out, why) == 0 ? 1 : -1;
}

/* The refusals redis makes before running a known command: NOAUTH, then the
 * subscribed-mode restriction. 1 when one was appended, 0 if none, -1. */
static int local_gate(struct buf *out, const struct req_info *info, const struct local_ctx *lc)
{
    const struct redis_cmd *c = redis_cmd_get(info->named);
    if (local_locked(lc) && (c->flags & REDIS_F(NO_AUTH)) == 0) {
        return local_refuse(out, info, LOCAL_NOAUTH);
    }
    if (lc->subscribed && lc->resp != 3 && !local_subscribed_ok(info->named)) {
        char msg[160];
        snprintf(msg, sizeof(msg),
                 "ERR Can't execute '%s': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT "
                 "/ RESET are allowed in this context",
                 c->name);
        return local_refuse(out, info, msg);
    }
    return 0;
}

int redis_local(struct buf *out, const uint8_t *req, const struct req_info *info,
                struct local_ctx *lc)
{
    if (info->cmd == REDIS_CMD_NOOP) {
        return 1; /* an empty request: redis answers nothing */
    }
    if (info->route == ROUTE_REJECT && !info->refused && !info->late_err) {
        return 0; /* the core answers info->err, as redis would before NOAUTH */
    }
    size_t start = out->len;
    int rc = local_gate(out, info, lc); /* a refusal of ours comes after it */
    if (rc == 0 && info->route != ROUTE_LOCAL) {
        return 0;
    }
    if (rc == 0) {
        rc = local_answer(out, req, info, lc) == 0 ? 1 : -1;
    }
    if (rc < 0) {
        out->len = start;
    }
    return rc;
}
