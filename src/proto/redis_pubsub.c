/*
 * redis_pubsub: what the core needs to keep a client's subscriptions across
 * servers (the confirmation it answers with its own count) and to walk SCAN
 * over the servers of a pool (the cursor in the request and in the reply).
 */
#include "proto/redis.h"
#include "proto/redis_wire.h"

int redis_cursor_request(struct buf *out, const uint8_t *req, const struct req_info *info,
                         uint64_t cursor)
{
    (void)out;
    (void)req;
    (void)info;
    (void)cursor;
    return -1; /* not yet */
}

int redis_cursor_get(const uint8_t *rsp, const struct rsp_info *ri, uint64_t *cursor)
{
    (void)rsp;
    (void)ri;
    (void)cursor;
    return -1;
}

int redis_cursor_reply(struct buf *out, const uint8_t *rsp, const struct rsp_info *ri,
                       uint64_t cursor)
{
    (void)out;
    (void)rsp;
    (void)ri;
    (void)cursor;
    return -1;
}

int redis_sub_reply(struct buf *out, uint8_t kind, const uint8_t *chan, size_t len, int64_t count,
                    int resp)
{
    (void)out;
    (void)kind;
    (void)chan;
    (void)len;
    (void)count;
    (void)resp;
    return -1;
}

int redis_text_reply(struct buf *out, const uint8_t *text, size_t len, int resp)
{
    if (resp == 3) {
        int rc = redis_wire_num(out, '=', (int64_t)len + 4);
        rc |= buf_append(out, "txt:", 4);
        rc |= buf_append(out, text, len);
        rc |= buf_append(out, "\r\n", 2);
        return rc;
    }
    return redis_wire_bulk(out, text, len);
}
