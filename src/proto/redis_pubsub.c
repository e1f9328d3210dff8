/*
 * redis_pubsub: what the core needs to keep a client's subscriptions across
 * servers (what a reply on a subscribed connection is, the confirmation it answers
 * with its own count) and to walk SCAN over the servers of a pool (the cursor in the
 * request and in the reply).
 *
 * A subscribed connection carries, in RESP2, arrays: `message` / `pmessage` /
 * `smessage`, the confirmations (`subscribe` ... with the channel, or a null when
 * unsubscribing from nothing, and the count) and `pong`; in RESP3 the same as push
 * (`>`) replies, while PING answers +PONG as it does anywhere.
 */
#include "proto/redis_pubsub.h"

#include <string.h>

#include "proto/redis.h"
#include "proto/redis_cmd.h"
#include "proto/redis_wire.h"

static const char *const sub_names[] = {
    [SUB_SUBSCRIBE] = "subscribe",
    [SUB_PSUBSCRIBE] = "psubscribe",
    [SUB_UNSUBSCRIBE] = "unsubscribe",
    [SUB_PUNSUBSCRIBE] = "punsubscribe",
};

static bool sub_cmd(uint16_t cmd)
{
    return cmd == REDIS_CMD_SUBSCRIBE || cmd == REDIS_CMD_PSUBSCRIBE ||
           cmd == REDIS_CMD_UNSUBSCRIBE || cmd == REDIS_CMD_PUNSUBSCRIBE;
}

static bool span_is(const uint8_t *p, struct span s, const char *word)
{
    size_t n = strlen(word);
    return s.len == n && memcmp(p + s.off, word, n) == 0;
}

/* The kind of confirmation named by s, or SUB_NONE. */
static uint8_t sub_kind(const uint8_t *p, struct span s)
{
    for (uint8_t k = SUB_SUBSCRIBE; k <= SUB_PUNSUBSCRIBE; k++) {
        if (span_is(p, s, sub_names[k])) {
            return k;
        }
    }
    return SUB_NONE;
}

/* A confirmation: [kind, channel or null, count]. */
static bool push_confirm(const uint8_t *p, uint8_t kind, struct rsp_info *info)
{
    const struct span *e = info->elems.v;
    int64_t count;
    if (info->elems.n != 3 || !redis_wire_elem_int(p, e[2], &count)) {
        return false;
    }
    if (redis_wire_elem_null(p, e[1])) {
        info->chan_null = true;
    } else if (!redis_wire_elem_str(p, e[1], &info->chan)) {
        return false;
    }
    info->push = PUSH_CONFIRM;
    info->sub = kind;
    info->count = count;
    return true;
}

void redis_push_classify(const uint8_t *p, uint16_t cmd, struct rsp_info *info)
{
    struct span kind;
    if (!sub_cmd(cmd)) {
        return;
    }
    if (info->type == '+' && info->len == 7 && memcmp(p, "+PONG\r\n", 7) == 0) {
        info->push = PUSH_PONG; /* RESP3: PING answers as outside subscribed mode */
        return;
    }
    bool push = info->type == '>';
    if ((info->type != '*' && !push) || info->elems.n == 0 ||
        !redis_wire_elem_str(p, info->elems.v[0], &kind)) {
        info->push = push ? PUSH_MESSAGE : PUSH_NONE; /* a push of its own kind: relayed */
        return;
    }
    uint32_t n = info->elems.n;
    uint8_t sub = sub_kind(p, kind);
    if (sub != SUB_NONE && push_confirm(p, sub, info)) {
        return;
    }
    if (((span_is(p, kind, "message") || span_is(p, kind, "smessage")) && n == 3) ||
        (span_is(p, kind, "pmessage") && n == 4)) {
        info->push = PUSH_MESSAGE;
    } else if (!push && span_is(p, kind, "pong") && n == 2) {
        info->push = PUSH_PONG;
    } else {
        info->push = push ? PUSH_MESSAGE : PUSH_NONE;
    }
}

int redis_sub_reply(struct buf *out, uint8_t kind, const uint8_t *chan, size_t len, int64_t count,
                    int resp)
{
    if (kind < SUB_SUBSCRIBE || kind > SUB_PUNSUBSCRIBE) {
        return -1;
    }
    size_t start = out->len;
    int rc = redis_wire_num(out, resp == 3 ? '>' : '*', 3);
    rc |= redis_wire_bulk_str(out, sub_names[kind]);
    rc |= chan != NULL ? redis_wire_bulk(out, chan, len) : redis_wire_null(out, resp);
    rc |= redis_wire_num(out, ':', count);
    if (rc != 0) {
        out->len = start;
    }
    return rc;
}

/* ---- SCAN over the servers: the cursor of the request and of the reply ------------ */

static int cursor_bulk(struct buf *out, uint64_t cursor)
{
    char digits[24];
    return redis_wire_bulk(out, digits, redis_wire_u64(digits, cursor));
}

int redis_cursor_request(struct buf *out, const uint8_t *req, const struct req_info *info,
                         uint64_t cursor)
{
    const struct span *a = info->args.v;
    if (!info->cursor || info->args.n < 2) {
        return -1;
    }
    size_t start = out->len;
    int rc = redis_wire_num(out, '*', info->args.n);
    rc |= redis_wire_bulk(out, req + a[0].off, a[0].len);
    rc |= cursor_bulk(out, cursor);
    for (uint32_t i = 2; i < info->args.n && rc == 0; i++) {
        rc = redis_wire_bulk(out, req + a[i].off, a[i].len); /* MATCH, COUNT, TYPE... */
    }
    if (rc != 0) {
        out->len = start;
    }
    return rc;
}

/* A cursor reply: [cursor as a string, an array], in RESP2 and RESP3 alike. */
static bool cursor_shape(const uint8_t *rsp, const struct rsp_info *ri, struct span *cur)
{
    if (ri->type != '*' || ri->elems.n != 2 || !redis_wire_elem_str(rsp, ri->elems.v[0], cur)) {
        return false;
    }
    struct span e = ri->elems.v[1];
    return e.len > 0 && (rsp[e.off] == '*' || rsp[e.off] == '~');
}

int redis_cursor_get(const uint8_t *rsp, const struct rsp_info *ri, uint64_t *cursor)
{
    struct span cur;
    if (!cursor_shape(rsp, ri, &cur) || !redis_wire_u64_parse(rsp + cur.off, cur.len, cursor)) {
        return -1;
    }
    return 0;
}

int redis_cursor_reply(struct buf *out, const uint8_t *rsp, const struct rsp_info *ri,
                       uint64_t cursor)
{
    uint64_t old;
    if (redis_cursor_get(rsp, ri, &old) != 0) {
        return -1;
    }
    struct span e = ri->elems.v[1];
    size_t start = out->len;
    int rc = redis_wire_num(out, '*', 2);
    rc |= cursor_bulk(out, cursor);
    rc |= buf_append(out, rsp + e.off, e.len);
    if (rc != 0) {
        out->len = start;
    }
    return rc;
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
