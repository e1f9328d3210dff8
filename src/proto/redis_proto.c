/*
 * redis_proto: the proto_redis vtable, error replies and the requests every new
 * server connection starts with.
 */
#include <string.h>

#include "proto/redis.h"
#include "proto/redis_wire.h"

/* Error codes a message may already start with; anything else gets "ERR ". A fixed
 * list, because a message such as "SELECT is not allowed" must not become code SELECT. */
static const char *const proto_error_codes[] = {
    "ERR",     "NOAUTH",    "NOPROTO",    "WRONGPASS",   "WRONGTYPE", "NOPERM",   "OOM",
    "BUSY",    "LOADING",   "READONLY",   "MOVED",       "ASK",       "TRYAGAIN", "NOSCRIPT",
    "MISCONF", "EXECABORT", "MASTERDOWN", "CLUSTERDOWN", "CROSSSLOT", "BUSYKEY",  "NOREPLICAS",
};

static bool proto_has_code(const char *msg)
{
    for (size_t i = 0; i < sizeof(proto_error_codes) / sizeof(proto_error_codes[0]); i++) {
        size_t n = strlen(proto_error_codes[i]);
        if (strncmp(msg, proto_error_codes[i], n) == 0 && msg[n] == ' ') {
            return true;
        }
    }
    return false;
}

int redis_error_reply(struct buf *out, const char *msg)
{
    size_t n = strlen(msg);
    if (buf_reserve(out, n + 8) != 0) {
        return -1;
    }
    uint8_t *w = out->data + out->len;
    size_t k = 0;
    w[k++] = '-';
    if (!proto_has_code(msg)) {
        memcpy(w + k, "ERR ", 4);
        k += 4;
    }
    for (size_t i = 0; i < n; i++) { /* a CR or LF would end the reply early */
        w[k++] = (uint8_t)(msg[i] == '\r' || msg[i] == '\n' ? ' ' : msg[i]);
    }
    w[k++] = '\r';
    w[k++] = '\n';
    out->len += k;
    return 0;
}

static int proto_request2(struct buf *out, const char *name, const void *arg, size_t n)
{
    int rc = redis_wire_num(out, '*', 2);
    rc |= redis_wire_bulk_str(out, name);
    rc |= redis_wire_bulk(out, arg, n);
    return rc;
}

int redis_conn_init(struct buf *out, const char *auth, size_t auth_len, int db, int resp)
{
    size_t start = out->len;
    int n = 0, rc = 0;
    if (auth != NULL && auth_len > 0) {
        rc |= proto_request2(out, "AUTH", auth, auth_len);
        n++;
    }
    if (resp == 3) {
        rc |= proto_request2(out, "HELLO", "3", 1);
        n++;
    }
    if (db != 0) {
        char num[24];
        struct buf tmp = {(uint8_t *)num, 0, sizeof(num)};
        redis_wire_num(&tmp, ':', db); /* fits: 12 bytes at most */
        rc |= proto_request2(out, "SELECT", num + 1, tmp.len - 3);
        n++;
    }
    if (rc != 0) {
        out->len = start;
        return -1;
    }
    return n;
}

int redis_build(struct buf *out, uint32_t argc, const uint8_t *const *argv, const size_t *lens)
{
    size_t start = out->len;
    int rc = redis_wire_num(out, '*', argc);
    for (uint32_t i = 0; i < argc && rc == 0; i++) {
        rc = redis_wire_bulk(out, argv[i], lens[i]);
    }
    if (rc != 0) {
        out->len = start;
    }
    return rc;
}

const struct proto proto_redis = {
    .name = "redis",
    .req_parse = redis_req_parse,
    .rsp_parse = redis_rsp_parse,
    .frag_build = redis_frag_build,
    .merge = redis_merge,
    .error_reply = redis_error_reply,
    .local = redis_local,
    .conn_init = redis_conn_init,
    .build = redis_build,
    .cursor_request = redis_cursor_request,
    .cursor_get = redis_cursor_get,
    .cursor_reply = redis_cursor_reply,
    .text_reply = redis_text_reply,
    .sub_reply = redis_sub_reply,
};
