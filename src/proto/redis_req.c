/*
 * redis_req: the request parser. Two stages:
 *
 *   framing   `*<argc>\r\n` then argc times `$<len>\r\n<bytes>\r\n`: only says where
 *             the request ends and where each argument is (info->args);
 *   classify  command lookup, arity, keys and route, done once the request is whole.
 *
 * The core calls us with everything buffered so far from the start of the request,
 * so an incomplete request returns PARSE_AGAIN with a lower bound of the bytes needed
 * (a known bulk length lets the core skip re-parsing until that bulk is in).
 * Anything the stream can recover from is a ROUTE_REJECT that consumes the request;
 * only broken framing is a PARSE_ERROR.
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "proto/redis.h"
#include "proto/redis_cmd.h"
#include "proto/redis_inline.h"
#include "proto/redis_wire.h"

/* The smallest possible argument, "$0\r\n\r\n": a lower bound for the hint. */
#define REQ_MIN_ARG 6u
/* The last arguments of a request, which the hint never counts. */
#define REQ_HINT_ARGS 64u

static int req_error(struct req_info *info, const char *msg)
{
    snprintf(info->err, sizeof(info->err), "Protocol error: %s", msg);
    return PARSE_ERROR;
}

static int req_again(struct req_info *info, size_t n, size_t need)
{
    info->len = need > n ? need : n + 1;
    return PARSE_AGAIN;
}

static int req_reject(struct req_info *info, size_t len)
{
    info->route = ROUTE_REJECT;
    info->len = len;
    spans_reset(&info->keys);
    return PARSE_OK;
}

/* A refusal of the proxy's own, where redis would run the command (proto.h: refused). */
static int req_refuse(struct req_info *info)
{
    info->refused = true;
    return req_reject(info, info->len);
}

/* Append to info->err up to max bytes of s, stopping at a NUL as redis' "%.*s" does. */
static size_t err_put(struct req_info *info, size_t at, const void *s, size_t n, size_t max)
{
    const uint8_t *b = s;
    size_t i = 0;
    for (; i < n && i < max && b[i] != '\0' && at + 1 < sizeof(info->err); i++) {
        info->err[at++] = (char)b[i];
    }
    info->err[at] = '\0';
    return at;
}

static size_t err_puts(struct req_info *info, size_t at, const char *s)
{
    return err_put(info, at, s, strlen(s), SIZE_MAX);
}

/* Redis' own words for a command it does not know, so a client sees the same error with
 * or without the proxy: the name (128 bytes at most), then the first arguments quoted,
 * 128 bytes of them at most; for a container, the subcommand and where to find help. */
static int req_reject_unknown(struct req_info *info, const uint8_t *p, bool sub)
{
    const struct span *a = info->args.v;
    size_t at;
    if (sub) {
        at = err_puts(info, 0, "unknown subcommand '");
        at = err_put(info, at, p + a[1].off, a[1].len, 128);
        at = err_puts(info, at, "'. Try ");
        for (uint32_t i = 0; i < a[0].len && at + 1 < sizeof(info->err); i++) {
            uint8_t ch = p[a[0].off + i];
            info->err[at++] = (char)(ch >= 'a' && ch <= 'z' ? ch - ('a' - 'A') : ch);
        }
        err_puts(info, at, " HELP.");
        return req_reject(info, info->len);
    }
    at = err_puts(info, 0, "unknown command '");
    at = err_put(info, at, p + a[0].off, a[0].len, 128);
    at = err_puts(info, at, "', with args beginning with: ");
    size_t args = 0;
    for (uint32_t i = 1; i < info->args.n && args < 128; i++) {
        size_t before = at;
        at = err_puts(info, at, "'");
        at = err_put(info, at, p + a[i].off, a[i].len, 128 - args);
        at = err_puts(info, at, "' ");
        args += at - before;
    }
    return req_reject(info, info->len);
}

static int req_reject_arity(struct req_info *info, const struct redis_cmd *c)
{
    snprintf(info->err, sizeof(info->err), "wrong number of arguments for '%s' command", c->name);
    return req_reject(info, info->len);
}

/* Resolve the command (and a container's subcommand); NULL when rejected. */
static const struct redis_cmd *req_command(const uint8_t *p, struct req_info *info)
{
    const struct span *a = info->args.v;
    uint32_t argc = info->args.n;
    uint16_t id = redis_cmd_lookup(p + a[0].off, a[0].len);
    const struct redis_cmd *c = redis_cmd_get(id);
    if (id == REDIS_CMD_UNKNOWN) {
        req_reject_unknown(info, p, false);
        return NULL;
    }
    if (c->handling == REDIS_H_SUBCMD) {
        if (!redis_cmd_arity_ok(c, argc)) {
            req_reject_arity(info, c);
            return NULL;
        }
        id = redis_cmd_lookup_sub(id, p + a[1].off, a[1].len);
        if (id == REDIS_CMD_UNKNOWN) {
            req_reject_unknown(info, p, true);
            return NULL;
        }
        c = redis_cmd_get(id);
    }
    info->named = id;
    if (redis_cmd_rejected(c) && argc > 1) {
        /* a container refused whole: a known subcommand is its name where redis
         * gives one (a subscriber's refusal: 'config|get') */
        uint16_t sub = redis_cmd_lookup_sub(id, p + a[1].off, a[1].len);
        info->named = sub != REDIS_CMD_UNKNOWN ? sub : id;
    }
    bool arity_ok = redis_cmd_arity_ok(c, argc);
    if (!arity_ok && id == REDIS_CMD_EXEC) {
        /* redis: EXEC refused aborts the transaction, and says so */
        snprintf(info->err, sizeof(info->err),
                 "EXECABORT Transaction discarded because of: wrong number of arguments for "
                 "'exec' command");
        info->txn = TXN_EXEC;
        req_reject(info, info->len);
        return NULL;
    }
    /* redis checks the arity before the login: so do we, then our own refusals */
    const char *why = redis_cmd_rejected(c) ? redis_cmd_reject_reason(c) : NULL;
    if (!arity_ok) {
        req_reject_arity(info, c);
        info->late_err = why == NULL && redis_cmd_arity_table_ok(c, argc) && argc > 1 &&
                         spans_push(&info->keys, a[1].off, a[1].len) == 0;
        return NULL;
    }
    if (why != NULL) {
        snprintf(info->err, sizeof(info->err), "unsupported command '%s' (%s)", c->name, why);
        req_refuse(info);
        return NULL;
    }
    info->cmd = id;
    return c;
}

/* What only the proxy answers (proto.h: local_only). A server answers PING and
 * ECHO inside a transaction as the proxy does outside one. */
static bool req_local_only(const struct redis_cmd *c, uint16_t id)
{
    switch (c->handling) {
    case REDIS_H_LOCAL_STATE:
    case REDIS_H_FACTS:
        return true;
    case REDIS_H_LOCAL:
        return id != REDIS_CMD_PING && id != REDIS_CMD_ECHO;
    default:
        return false;
    }
}

static uint8_t req_route_of(const struct redis_cmd *c, uint32_t nkeys)
{
    switch (c->handling) {
    case REDIS_H_SPLIT_ARRAY:
    case REDIS_H_SPLIT_SUM:
    case REDIS_H_SPLIT_OK:
        /* one key: the server's reply is already the client's reply */
        return nkeys > 1 ? ROUTE_SPLIT : ROUTE_KEY;
    case REDIS_H_LOCAL:
    case REDIS_H_LOCAL_STATE:
        return ROUTE_LOCAL;
    case REDIS_H_ANY:
    case REDIS_H_FACTS:
        return ROUTE_ANY;
    case REDIS_H_DATASET_SCAN:
    case REDIS_H_DATASET_CONCAT:
    case REDIS_H_DATASET_SUM:
    case REDIS_H_DATASET_PICK:
    case REDIS_H_DATASET_UNION:
    case REDIS_H_DATASET_MAX:
    case REDIS_H_DATASET_MAX_PAIRS:
        return ROUTE_DATASET;
    case REDIS_H_ALL_SAME:
    case REDIS_H_ALL_AND:
    case REDIS_H_ALL_OK:
    case REDIS_H_FLUSH:
    case REDIS_H_ALL_KILL:
        return ROUTE_ALL;
    case REDIS_H_TXN:
        return ROUTE_TXN;
    case REDIS_H_PUBSUB:
        return ROUTE_PUBSUB;
    default:
        return ROUTE_KEY;
    }
}

/* RESET (ROUTE_LOCAL) also says DISCARD and UNSUBSCRIBE: the core drops the client's
 * transaction and subscriptions, as redis does, before the local answer. */
static uint8_t req_txn_of(uint16_t cmd)
{
    switch (cmd) {
    case REDIS_CMD_RESET:
        return TXN_DISCARD;
    case REDIS_CMD_MULTI:
        return TXN_MULTI;
    case REDIS_CMD_EXEC:
        return TXN_EXEC;
    case REDIS_CMD_DISCARD:
        return TXN_DISCARD;
    case REDIS_CMD_WATCH:
        return TXN_WATCH;
    case REDIS_CMD_UNWATCH:
        return TXN_UNWATCH;
    default:
        return TXN_NONE;
    }
}

static uint8_t req_sub_of(uint16_t cmd)
{
    switch (cmd) {
    case REDIS_CMD_SUBSCRIBE:
        return SUB_SUBSCRIBE;
    case REDIS_CMD_PSUBSCRIBE:
        return SUB_PSUBSCRIBE;
    case REDIS_CMD_UNSUBSCRIBE:
    case REDIS_CMD_RESET:
        return SUB_UNSUBSCRIBE;
    case REDIS_CMD_PUNSUBSCRIBE:
        return SUB_PUNSUBSCRIBE;
    case REDIS_CMD_PING:
        return SUB_PING;
    default:
        return SUB_NONE;
    }
}

/* A SCAN cursor is one node's own (redis seeds its hash function per process):
 * the next call must reach the same node, which only the master is for sure
 * (a replica that died had its cursor carried on by another: keys skipped,
 * others repeated). So these reads are not a replica's to take. */
static bool req_node_cursor(uint16_t cmd)
{
    return cmd == REDIS_CMD_SCAN || cmd == REDIS_CMD_SSCAN || cmd == REDIS_CMD_HSCAN ||
           cmd == REDIS_CMD_ZSCAN;
}

static int req_refuse_msg(struct req_info *info, const char *msg, const struct redis_cmd *c)
{
    snprintf(info->err, sizeof(info->err), msg, c->name);
    info->cmd = REDIS_CMD_UNKNOWN;
    return req_refuse(info);
}

/* Keys of a request: the key specs' (COMMAND GETKEYS), the channel of PUBLISH, every
 * channel or pattern of a subscription. 0, or -1 when out of memory. */
static int req_keys(const struct redis_cmd *c, const uint8_t *p, struct req_info *info)
{
    const struct span *a = info->args.v;
    if (c->handling == REDIS_H_CHANNEL) {
        return spans_push(&info->keys, a[1].off, a[1].len);
    }
    if (c->handling == REDIS_H_PUBSUB) {
        for (uint32_t i = 1; i < info->args.n; i++) {
            if (spans_push(&info->keys, a[i].off, a[i].len) != 0) {
                return -1;
            }
        }
        return 0;
    }
    uint32_t k = redis_cmd_fixed_key(c, info->args.n);
    if (k != 0) {
        return spans_push(&info->keys, a[k].off, a[k].len);
    }
    return redis_cmd_keys(c, p, a, info->args.n, &info->keys);
}

/* What the core answers where the pool cannot take the route: a sharded pool for a
 * dataset command it does not walk or merge, a pool without allow_flush. */
static void req_route_err(const struct redis_cmd *c, struct req_info *info)
{
    if (info->flush) {
        snprintf(info->err, sizeof(info->err),
                 "unsupported command '%s' (allow_flush is off for this pool)", c->name);
    } else if (info->route == ROUTE_DATASET) {
        snprintf(info->err, sizeof(info->err), "unsupported command '%s' (no key to route by)",
                 c->name);
    }
}

/* POST and Host: (any case) are no command but a web request: a page in a
 * browser that posts to this port, its body commands (cross-protocol
 * scripting). Redis closes the connection without a word and runs nothing
 * after them; so do we (a PARSE_ERROR with no answer). */
static bool req_web_request(const uint8_t *p, struct req_info *info)
{
    const struct span *a = &info->args.v[0];
    const char *name = (const char *)p + a->off;
    if (!((a->len == 4 && strncasecmp(name, "post", 4) == 0) ||
          (a->len == 5 && strncasecmp(name, "host:", 5) == 0))) {
        return false;
    }
    snprintf(info->err, sizeof(info->err),
             "'%.*s' is a web request, not a command (cross-protocol scripting?)", (int)a->len,
             name);
    info->err_wire = true;
    buf_reset(&info->wire);
    return true;
}

static int req_classify(const uint8_t *p, struct req_info *info)
{
    const struct redis_cmd *c = req_command(p, info);
    if (c == NULL) {
        return req_web_request(p, info) ? PARSE_ERROR : PARSE_OK; /* else rejected */
    }
    /* it would park a shared server connection for as long as it waits: the
     * core sends it on the client's own (info->blocking) */
    info->block_ms = redis_cmd_may_block(c)
                         ? redis_cmd_block_ms(c, info->cmd, p, info->args.v, info->args.n)
                         : REDIS_BLOCK_NOT;
    info->blocking = info->block_ms != REDIS_BLOCK_NOT;
    if (req_keys(c, p, info) != 0) {
        return req_refuse_msg(info, "out of memory (keys of '%s')", c);
    }
    for (uint32_t i = 0; i < info->keys.n; i++) {
        if (info->keys.v[i].len > PROTO_MAX_KEY_LEN_REDIS) {
            snprintf(info->err, sizeof(info->err), "key too long (%u bytes, at most %u)",
                     info->keys.v[i].len, PROTO_MAX_KEY_LEN_REDIS);
            info->cmd = REDIS_CMD_UNKNOWN;
            return req_refuse(info);
        }
    }
    info->route = req_route_of(c, info->keys.n);
    info->local_only = req_local_only(c, info->cmd);
    info->txn = req_txn_of(info->cmd);
    info->sub = req_sub_of(info->cmd);
    info->cursor = c->handling == REDIS_H_DATASET_SCAN;
    info->flush = c->handling == REDIS_H_FLUSH;
    info->own_conn = c->handling == REDIS_H_ALL_KILL;
    info->facts = c->handling == REDIS_H_FACTS;
    req_route_err(c, info);
    info->readonly = (c->flags & REDIS_F(READONLY)) != 0 && !req_node_cursor(info->cmd);
    info->write = (c->flags & REDIS_F(WRITE)) != 0;
    info->quit = info->cmd == REDIS_CMD_QUIT;
    return PARSE_OK;
}

/* `*0`, `*-1` and blank lines: redis skips them silently (telnet users press Enter). */
static int req_noop(struct req_info *info, size_t len)
{
    info->route = ROUTE_LOCAL;
    info->cmd = REDIS_CMD_NOOP;
    info->empty = true;
    info->len = len;
    return PARSE_OK;
}

/* An inline request: one line, LF or CRLF ended, at most REDIS_MAX_INLINE bytes. It is
 * rewritten into info->wire and classified from there. */
static int req_inline(const uint8_t *p, size_t n, struct req_info *info)
{
    size_t scan = n <= REDIS_MAX_INLINE ? n : REDIS_MAX_INLINE + 1;
    const uint8_t *nl = memchr(p, '\n', scan);
    size_t line = nl != NULL ? (size_t)(nl - p) : scan;
    /* redis looks for the line end with strchr(), which stops at a NUL: it would wait
     * for a line end it never sees; an error says what is wrong at once */
    if (memchr(p, '\0', line) != NULL) {
        return req_error(info, "NUL byte in inline request");
    }
    if (nl == NULL) {
        if (n > REDIS_MAX_INLINE) {
            return req_error(info, "too big inline request");
        }
        info->len = 0;
        return PARSE_AGAIN;
    }
    size_t len = line + 1;
    if (line > 0 && p[line - 1] == '\r') {
        line--;
    }
    int argc = redis_inline_rewrite(p, line, &info->wire, &info->args);
    if (argc == -1) {
        return req_error(info, "unbalanced quotes in request");
    }
    if (argc < 0) {
        return req_error(info, "out of memory");
    }
    if (argc == 0) {
        return req_noop(info, len);
    }
    info->len = len;
    info->rewritten = true;
    return req_classify(info->wire.data, info);
}

/* The bytes the arguments still to come take at least, for the hint, all but
 * the last REQ_HINT_ARGS of them: a request of a million keys arriving read by
 * read is then not parsed again from its start at every read. The last ones are
 * not counted: a wrong one shows in fewer bytes than a right one (`$-5\r\n`, 5),
 * and must be answered as soon as it came, as redis does; a client that sent
 * the whole request and waits for the answer would wait forever for one byte
 * more. (The hint stays below the bytes of any request whose wrong arguments
 * are among its last REQ_HINT_ARGS.) */
static size_t req_hint_rest(uint32_t args)
{
    return args > REQ_HINT_ARGS ? (size_t)(args - REQ_HINT_ARGS) * REQ_MIN_ARG : 0;
}

/* Frame argc bulk arguments starting at *pos, recording each in info->args. */
static int req_frame_args(const uint8_t *p, size_t n, size_t pos, uint32_t argc,
                          struct req_info *info)
{
    for (uint32_t i = 0; i < argc; i++) {
        if (pos >= n) {
            /* the next byte must be '$': parse again when it comes, so a wrong one
             * is answered at once, as redis does (req_hint_rest) */
            return req_again(info, n, pos + 1);
        }
        if (p[pos] != '$') {
            snprintf(info->err, sizeof(info->err), "Protocol error: expected '$', got '%c'",
                     p[pos] >= 0x20 && p[pos] < 0x7f ? p[pos] : '?');
            return PARSE_ERROR;
        }
        int64_t blen;
        size_t data;
        int rc = redis_wire_num_line(p, n, pos + 1, &blen, &data);
        if (rc == PARSE_AGAIN) {
            return req_again(info, n, pos + req_hint_rest(argc - i));
        }
        if (rc == PARSE_ERROR || blen < 0 || blen > (int64_t)REDIS_MAX_BULK_LEN) {
            return req_error(info, "invalid bulk length");
        }
        if (info->unauth && blen > REDIS_UNAUTH_BULK_MAX) {
            return req_error(info, "unauthenticated bulk length");
        }
        size_t end = data + (size_t)blen + 2;
        if (end > UINT32_MAX) {
            return req_error(info, "request too large"); /* spans are 32-bit */
        }
        if (end > n) {
            return req_again(info, n, end + req_hint_rest(argc - i - 1));
        }
        if (p[end - 2] != '\r' || p[end - 1] != '\n') {
            return req_error(info, "missing CRLF after bulk argument");
        }
        if (spans_push(&info->args, (uint32_t)data, (uint32_t)blen) != 0) {
            return req_error(info, "out of memory");
        }
        pos = end;
    }
    info->len = pos;
    return PARSE_OK;
}

int redis_req_parse(const uint8_t *p, size_t n, struct req_info *info)
{
    spans_reset(&info->keys);
    spans_reset(&info->args);
    info->len = 0;
    info->route = ROUTE_KEY;
    info->noreply = info->quit = info->readonly = info->empty = info->local_only = false;
    info->late_err = info->refused = info->blocking = false;
    info->cursor = info->flush = info->rewritten = info->droppable = info->quiet = false;
    info->own_conn = info->write = false;
    info->key_tail = 0;
    info->txn = TXN_NONE;
    info->sub = SUB_NONE;
    info->cmd = info->named = REDIS_CMD_UNKNOWN;
    info->err[0] = '\0';
    info->err_wire = false;
    if (n == 0) {
        return PARSE_AGAIN;
    }
    if (p[0] != '*') {
        return req_inline(p, n, info);
    }
    int64_t argc;
    size_t pos;
    int rc = redis_wire_num_line(p, n, 1, &argc, &pos);
    if (rc == PARSE_AGAIN) {
        return req_again(info, n, 0);
    }
    if (rc == PARSE_ERROR || argc > INT32_MAX) {
        return req_error(info, "invalid multibulk length");
    }
    if (info->unauth && argc > REDIS_UNAUTH_ARGC_MAX) {
        return req_error(info, "unauthenticated multibulk length");
    }
    if (argc > (int64_t)REDIS_MAX_ARGC) {
        return req_error(info, "invalid multibulk length");
    }
    if (argc <= 0) {
        return req_noop(info, pos);
    }
    rc = req_frame_args(p, n, pos, (uint32_t)argc, info);
    if (rc != PARSE_OK) {
        return rc;
    }
    return req_classify(p, info);
}
