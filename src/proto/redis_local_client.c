/*
 * redis_local_client: CLIENT subcommands about the client's own connection to the
 * proxy, answered as redis 7 answers them (its validation and error texts), from the
 * state the core keeps per client (struct local_ctx). A server connection is shared
 * by many clients: nothing here is forwarded.
 */
#include <stdio.h>
#include <string.h>

#include "proto/redis_cmd.h"
#include "proto/redis_local.h"
#include "proto/redis_wire.h"

/* Names and CLIENT SETINFO values: redis allows '!' to '~' (no space, no newline). */
bool redis_local_name_ok(const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (p[i] < '!' || p[i] > '~') {
            return false;
        }
    }
    return true;
}

int redis_local_name_set(struct local_ctx *lc, const uint8_t *p, size_t n)
{
    buf_reset(&lc->name);
    return buf_append(&lc->name, p, n);
}

/* "-ERR <before><p><after>" with CR and LF made spaces, as redis formats errors that
 * quote what the client sent. */
static int client_error_quoting(struct buf *out, const char *before, const uint8_t *p, size_t n,
                                const char *after)
{
    size_t start = out->len;
    int rc = buf_append_str(out, "-ERR ");
    rc |= buf_append_str(out, before);
    size_t at = out->len;
    rc |= buf_append(out, p, n);
    for (size_t i = at; rc == 0 && i < out->len; i++) {
        if (out->data[i] == '\r' || out->data[i] == '\n') {
            out->data[i] = ' ';
        }
    }
    rc |= buf_append_str(out, after);
    rc |= buf_append(out, "\r\n", 2);
    if (rc != 0) {
        out->len = start;
    }
    return rc;
}

static int client_setname(struct buf *out, const uint8_t *req, struct span name,
                          struct local_ctx *lc)
{
    if (!redis_local_name_ok(req + name.off, name.len)) {
        return redis_wire_error(out, REDIS_LOCAL_BAD_NAME);
    }
    if (redis_local_name_set(lc, req + name.off, name.len) != 0) {
        return -1;
    }
    return redis_wire_status(out, "OK");
}

/* CLIENT SETINFO (redis 7.2): checked as redis checks it; nothing is kept, the proxy
 * shows no library in CLIENT INFO. */
static int client_setinfo(struct buf *out, const uint8_t *req, const struct span *a)
{
    const uint8_t *attr = req + a[2].off;
    if (!redis_wire_arg_is(req, a[2], "lib-name") && !redis_wire_arg_is(req, a[2], "lib-ver")) {
        return client_error_quoting(out, "Unrecognized option '", attr, a[2].len, "'");
    }
    if (!redis_local_name_ok(req + a[3].off, a[3].len)) {
        return client_error_quoting(out, "", attr, a[2].len,
                                    " cannot contain spaces, newlines or special characters.");
    }
    return redis_wire_status(out, "OK");
}

/* CLIENT INFO's flags, in redis' order: N for none. */
static const char *client_flags(const struct local_ctx *lc)
{
    static const char *const v[4] = {"N", "P", "e", "Pe"};
    return v[(lc->subscribed ? 1 : 0) + (lc->no_evict ? 2 : 0)];
}

/* CLIENT INFO: redis 7.0's line, with what the proxy knows of the connection and 0 or
 * the defaults for what only a server has (buffers, memory); cmd: the command asking
 * (CLIENT LIST shows the same line). shown: false for CLIENT LIST's empty answer. */
static int client_info(struct buf *out, const struct local_ctx *lc, const char *cmd, bool shown)
{
    struct buf line;
    buf_init(&line);
    if (!shown) {
        return redis_wire_verbatim(out, "txt", "", 0, lc->resp);
    }
    int rc =
        buf_printf(&line, "id=%llu addr=%s laddr=%s fd=0 name=%.*s age=0 idle=0 flags=%s db=%d",
                   (unsigned long long)lc->id, lc->addr != NULL ? lc->addr : "",
                   lc->laddr != NULL ? lc->laddr : "", (int)lc->name.len,
                   lc->name.len > 0 ? (const char *)lc->name.data : "", client_flags(lc), lc->db);
    rc |= buf_printf(&line,
                     " sub=0 psub=0 ssub=0 multi=-1 qbuf=0 qbuf-free=0 argv-mem=0 "
                     "multi-mem=0 rbs=0 rbp=0 obl=0 oll=0 omem=0 tot-mem=0 events=r "
                     "cmd=%s user=default redir=-1 resp=%d\n",
                     cmd, lc->resp);
    if (rc == 0) {
        rc = redis_wire_verbatim(out, "txt", line.data, line.len, lc->resp);
    }
    buf_free(&line);
    return rc;
}

/* CLIENT LIST [TYPE type] [ID id...]: the proxy's clients as this one knows them,
 * itself (its line as CLIENT INFO's), filtered and checked as redis 7.0 does. */
static int client_list(struct buf *out, const uint8_t *req, const struct span *a, uint32_t argc,
                       const struct local_ctx *lc)
{
    bool shown = true;
    if (argc == 4 && redis_wire_arg_is(req, a[2], "type")) {
        struct span t = a[3];
        bool known = redis_wire_arg_is(req, t, "normal") || redis_wire_arg_is(req, t, "pubsub") ||
                     redis_wire_arg_is(req, t, "replica") || redis_wire_arg_is(req, t, "slave") ||
                     redis_wire_arg_is(req, t, "master");
        if (!known) {
            return client_error_quoting(out, "Unknown client type '", req + t.off, t.len, "'");
        }
        shown = redis_wire_arg_is(req, t, lc->subscribed ? "pubsub" : "normal");
    } else if (argc > 3 && redis_wire_arg_is(req, a[2], "id")) {
        shown = false;
        for (uint32_t i = 3; i < argc; i++) {
            int64_t id;
            if (!redis_wire_int_parse(req + a[i].off, a[i].len, &id)) {
                return redis_wire_error(out, "ERR Invalid client ID");
            }
            shown |= id > 0 && (uint64_t)id == lc->id; /* (0, -1: no client, no error) */
        }
    } else if (argc != 2) {
        return redis_wire_error(out, "ERR syntax error");
    }
    return client_info(out, lc, "client|list", shown);
}

/* CLIENT NO-EVICT, NO-TOUCH: nothing for the proxy to do but the answer, and
 * NO-EVICT's flag in CLIENT INFO (flag: NULL for NO-TOUCH, which redis 7.0
 * does not show). */
static int client_on_off(struct buf *out, const uint8_t *req, struct span arg, bool *flag)
{
    bool on = redis_wire_arg_is(req, arg, "on");
    if (!on && !redis_wire_arg_is(req, arg, "off")) {
        return redis_wire_error(out, "ERR syntax error");
    }
    if (flag != NULL) {
        *flag = on;
    }
    return redis_wire_status(out, "OK");
}

/* CLIENT REPLY: OFF and SKIP would leave the proxy unable to tell which server reply
 * is whose; only ON (the default) is accepted. */
static int client_reply(struct buf *out, const uint8_t *req, struct span arg)
{
    if (redis_wire_arg_is(req, arg, "on")) {
        return redis_wire_status(out, "OK");
    }
    if (redis_wire_arg_is(req, arg, "off") || redis_wire_arg_is(req, arg, "skip")) {
        return redis_wire_error(out, "ERR CLIENT REPLY OFF and SKIP are not supported through "
                                     "the proxy");
    }
    return redis_wire_error(out, "ERR syntax error");
}

static int client_help(struct buf *out)
{
    static const char *const lines[] = {
        "CLIENT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
        "GETNAME",
        "    Return the name of this connection to the proxy.",
        "ID",
        "    Return the id of this connection to the proxy.",
        "INFO",
        "    Return what the proxy knows about this connection.",
        "LIST [TYPE (NORMAL|MASTER|REPLICA|PUBSUB)] [ID <client-id> [<client-id> ...]]",
        "    Return this connection's line (the proxy's other clients are not shown).",
        "NO-EVICT (ON|OFF)",
        "    Accepted; the proxy never evicts a client for its memory alone.",
        "NO-TOUCH (ON|OFF)",
        "    Accepted; it changes nothing through the proxy.",
        "REPLY ON",
        "    Accepted; OFF and SKIP are not supported through the proxy.",
        "SETINFO (LIB-NAME|LIB-VER) <value>",
        "    Checked, then accepted.",
        "SETNAME <name>",
        "    Name this connection to the proxy.",
        "HELP",
        "    Print this help.",
    };
    return redis_wire_status_lines(out, lines, sizeof(lines) / sizeof(lines[0]));
}

int redis_local_client(struct buf *out, const uint8_t *req, const struct req_info *info,
                       struct local_ctx *lc)
{
    const struct span *a = info->args.v;
    switch (info->cmd) {
    case REDIS_CMD_CLIENT_SETNAME:
        return client_setname(out, req, a[2], lc);
    case REDIS_CMD_CLIENT_GETNAME:
        return lc->name.len > 0 ? redis_wire_bulk(out, lc->name.data, lc->name.len)
                                : redis_wire_null(out, lc->resp);
    case REDIS_CMD_CLIENT_SETINFO:
        return client_setinfo(out, req, a);
    case REDIS_CMD_CLIENT_ID:
        return redis_wire_num(out, ':', (int64_t)lc->id);
    case REDIS_CMD_CLIENT_INFO:
        return client_info(out, lc, "client|info", true);
    case REDIS_CMD_CLIENT_LIST:
        return client_list(out, req, a, info->args.n, lc);
    case REDIS_CMD_CLIENT_NO_EVICT:
        return client_on_off(out, req, a[2], &lc->no_evict);
    case REDIS_CMD_CLIENT_NO_TOUCH:
        return client_on_off(out, req, a[2], NULL);
    case REDIS_CMD_CLIENT_REPLY:
        return client_reply(out, req, a[2]);
    case REDIS_CMD_CLIENT_HELP:
        return client_help(out);
    default:
        return redis_wire_error(out, "ERR internal error: no local answer for this command");
    }
}
