/*
 * memcache: local answers, error replies and the `proto_memcache` table that
 * ties the memcache_*.c parts together for the core.
 */
#include <string.h>

#include "proto/memcache_int.h"

/* A message that already is a memcached error line goes out unchanged (the
 * request parser's rejects); anything else is a failure the core names. */
static bool mc_error_coded(const char *msg)
{
    return mc_error_line((const uint8_t *)msg, strlen(msg));
}

static int mc_error_reply(struct buf *out, const char *msg)
{
    size_t mark = out->len;
    int rc = 0;

    if (msg == NULL || msg[0] == '\0') {
        msg = "unknown error";
    }
    if (!mc_error_coded(msg)) {
        rc = buf_append_str(out, "SERVER_ERROR ");
    }
    /* A CR or LF inside msg would end the line early and desynchronise the client. */
    for (const char *c = msg; rc == 0 && *c != '\0'; c++) {
        char ch = *c == '\r' || *c == '\n' ? ' ' : *c;
        rc = buf_append(out, &ch, 1);
    }
    if (rc == 0) {
        rc = buf_append(out, "\r\n", 2);
    }
    if (rc < 0) {
        out->len = mark;
    }
    return rc;
}

/* quit closes without a word (memcached does the same): answered, nothing to
 * send, info->quit tells the core to close. A noreply request memcached would
 * refuse is ROUTE_LOCAL too and gets nothing at all (0: nothing to answer). */
static int mc_local(struct buf *out, const uint8_t *req, const struct req_info *info,
                    struct local_ctx *lc)
{
    /* Out of memory leaves out empty: still answered, as forwarding a local
     * command would be worse. */
    switch (info->cmd) {
    case MC_CMD_QUIT:
        return 1;
    case MC_CMD_MN:
        buf_append(out, "MN\r\n", 4);
        return 1;
    default:
        return 0; /* memcached has no AUTH through the proxy: forward as routed */
    }
}

static int mc_conn_init(struct buf *out, const char *auth, size_t auth_len, int db, int resp)
{
    return 0;
}

const struct proto proto_memcache = {
    .name = "memcache",
    .req_parse = mc_req_parse,
    .rsp_parse = mc_rsp_parse,
    .frag_build = mc_frag_build,
    .merge = mc_merge,
    .error_reply = mc_error_reply,
    .local = mc_local,
    .conn_init = mc_conn_init,
    .reply_shown = mc_reply_shown,
};
