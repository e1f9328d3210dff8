/*
 * redis_local: requests the proxy answers itself, and the AUTH gate.
 *
 * The client authenticates against the pool's redis_auth, never against a server:
 * servers get AUTH from conn_init on every new connection. Until a client has
 * authenticated, every request but AUTH, HELLO ... AUTH and QUIT is answered NOAUTH.
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
    "HELLO <proto> AUTH <user> <pass> option can be used to authenticate the client and "          \
    "select the RESP protocol version at the same time"

static bool local_has_password(const struct local_ctx *lc)
{
    return lc->auth != NULL && lc->auth_len > 0;
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

/* AUTH [user] pw and HELLO .. AUTH user pw: the pool password is the default user's.
 * Returns 1 when logged in, 0 when the error reply was appended, -1 out of memory. */
static int local_login(struct buf *out, const uint8_t *req, const struct span *user, struct span pw,
                       struct local_ctx *lc)
{
    const char *err = NULL;
    if (!local_has_password(lc)) {
        err = "ERR Client sent AUTH, but no password is set";
    } else {
        bool user_ok =
            user == NULL || (user->len == 7 && memcmp(req + user->off, "default", 7) == 0);
        lc->authed = user_ok && local_password_ok(lc, req + pw.off, pw.len);
        err = lc->authed ? NULL : "ERR invalid password";
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

static int local_hello_reply(struct buf *out, const struct local_ctx *lc)
{
    int rc = redis_wire_num(out, '*', 14);
    rc |= redis_wire_bulk_str(out, "server");
    rc |= redis_wire_bulk_str(out, "nutcracker");
    rc |= redis_wire_bulk_str(out, "version");
    rc |= redis_wire_bulk_str(out, lc->version != NULL ? lc->version : "");
    rc |= redis_wire_bulk_str(out, "proto");
    rc |= redis_wire_num(out, ':', 2);
    rc |= redis_wire_bulk_str(out, "id");
    rc |= redis_wire_num(out, ':', 0);
    rc |= redis_wire_bulk_str(out, "mode");
    rc |= redis_wire_bulk_str(out, "proxy");
    rc |= redis_wire_bulk_str(out, "role");
    rc |= redis_wire_bulk_str(out, "master");
    rc |= redis_wire_bulk_str(out, "modules");
    rc |= redis_wire_num(out, '*', 0);
    return rc;
}

/* HELLO [protover [AUTH user pass] [SETNAME name]]: only RESP2 is spoken here. */
static int local_hello(struct buf *out, const uint8_t *req, const struct req_info *info,
                       struct local_ctx *lc)
{
    const struct span *a = info->args.v;
    uint32_t argc = info->args.n, i;
    const struct span *user = NULL, *pw = NULL;
    int64_t ver = 2;
    if (argc >= 2 && !redis_wire_int_parse(req + a[1].off, a[1].len, &ver)) {
        return redis_wire_error(out, "ERR Protocol version is not an integer or out of range");
    }
    if (argc >= 2 && ver != 2) {
        return redis_wire_error(out, "NOPROTO unsupported protocol version");
    }
    for (i = 2; i < argc;) {
        if (redis_wire_arg_is(req, a[i], "auth") && i + 2 < argc) {
            user = &a[i + 1];
            pw = &a[i + 2];
            i += 3;
        } else if (redis_wire_arg_is(req, a[i], "setname") && i + 1 < argc) {
            i += 2; /* names are per server connection: nothing to keep */
        } else {
            char opt[64];
            redis_wire_quote(opt, sizeof(opt), req + a[i].off, a[i].len);
            char msg[128];
            snprintf(msg, sizeof(msg), "ERR Syntax error in HELLO option '%s'", opt);
            return redis_wire_error(out, msg);
        }
    }
    if (user != NULL) {
        int rc = local_login(out, req, user, *pw, lc);
        if (rc != 1) {
            return rc; /* the login error is the reply */
        }
    }
    if (local_locked(lc)) {
        return redis_wire_error(out, LOCAL_HELLO_NOAUTH);
    }
    return local_hello_reply(out, lc);
}

static int local_ping(struct buf *out, const uint8_t *req, const struct req_info *info)
{
    if (info->args.n == 1) {
        return redis_wire_status(out, "PONG");
    }
    if (info->args.n == 2) {
        return redis_wire_bulk(out, req + info->args.v[1].off, info->args.v[1].len);
    }
    return redis_wire_error(out, "ERR wrong number of arguments for 'ping' command");
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
        return local_ping(out, req, info);
    case REDIS_CMD_ECHO:
        return redis_wire_bulk(out, req + info->args.v[1].off, info->args.v[1].len);
    case REDIS_CMD_SELECT:
        return local_select(out, req, info, lc);
    case REDIS_CMD_COMMAND:
        return redis_local_command(out, req, info);
    default:
        return redis_wire_error(out, "ERR internal error: no local answer for this command");
    }
}

static bool local_before_auth(uint16_t cmd)
{
    return cmd == REDIS_CMD_AUTH || cmd == REDIS_CMD_HELLO || cmd == REDIS_CMD_QUIT;
}

int redis_local(struct buf *out, const uint8_t *req, const struct req_info *info,
                struct local_ctx *lc)
{
    if (info->cmd == REDIS_CMD_NOOP) {
        return 1; /* an empty request: redis answers nothing */
    }
    if (info->route == ROUTE_REJECT) {
        return 0; /* the core answers info->err, as redis would before NOAUTH */
    }
    size_t start = out->len;
    int rc;
    if (local_locked(lc) && !local_before_auth(info->cmd)) {
        rc = redis_wire_error(out, LOCAL_NOAUTH);
    } else if (info->route != ROUTE_LOCAL) {
        return 0;
    } else {
        rc = local_answer(out, req, info, lc);
    }
    if (rc != 0) {
        out->len = start;
        return -1;
    }
    return 1;
}
