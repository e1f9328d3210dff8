/*
 * fuzz_memcache_req: feed arbitrary client bytes to the memcache request parser
 * the way the core does (parse, act on the route, drop info->len bytes, go on)
 * and check the promises of proto.h on every message: lengths within the
 * input, spans within the message, the same answer from the message alone,
 * PARSE_AGAIN for any shorter prefix, error lines that keep their framing, and
 * fragments that parse back to the keys they were built from.
 */
#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "proto/memcache.h"
#include "proto/proto.h"

static const struct proto *P = &proto_memcache;

static void fuzz_spans_check(const struct spans *s, size_t len)
{
    for (uint32_t i = 0; i < s->n; i++) {
        assert(s->v[i].len > 0);
        assert((size_t)s->v[i].off + s->v[i].len <= len);
    }
}

/* An answer the client gets must be exactly one CRLF-terminated line. */
static void fuzz_error_check(const char *msg)
{
    struct buf out;
    buf_init(&out);
    assert(P->error_reply(&out, msg) == 0);
    assert(out.len >= 2 && out.data[out.len - 2] == '\r' && out.data[out.len - 1] == '\n');
    assert(memchr(out.data, '\n', out.len) == out.data + out.len - 1);
    assert(memcmp(out.data, "ERROR", 5) == 0 || memcmp(out.data, "CLIENT_ERROR ", 13) == 0 ||
           memcmp(out.data, "SERVER_ERROR ", 13) == 0);
    buf_free(&out);
}

/* Rebuild the split request for every key, and for every other key, and
 * check the fragment parses back to those keys. */
static void fuzz_split_check(const uint8_t *p, const struct req_info *info)
{
    uint32_t n = info->keys.n;
    uint32_t *idx = malloc(n * sizeof(*idx));
    struct buf out;
    struct req_info back;

    buf_init(&out);
    req_info_init(&back);
    for (uint32_t step = 1; step <= 2; step++) {
        uint32_t m = 0;
        for (uint32_t i = 0; i < n; i += step) {
            idx[m++] = i;
        }
        buf_reset(&out);
        assert(P->frag_build(&out, p, info, idx, m) == 0);
        assert(P->req_parse(out.data, out.len, &back) == PARSE_OK);
        assert(back.len == out.len && back.cmd == info->cmd && back.keys.n == m);
        for (uint32_t j = 0; j < m; j++) {
            const struct span *a = &back.keys.v[j], *b = &info->keys.v[idx[j]];
            assert(a->len == b->len && memcmp(out.data + a->off, p + b->off, a->len) == 0);
        }
    }
    req_info_free(&back);
    buf_free(&out);
    free(idx);
}

/* A quiet ma with N goes as it came, with an mn behind it. */
static void fuzz_quiet_vivify_check(const uint8_t *p, const struct req_info *info)
{
    const struct buf *w = &info->wire;
    size_t fwd = w->len - info->key_tail;

    assert(info->rewritten && fwd == info->len + 4);
    assert(memcmp(w->data, p, info->len) == 0 && memcmp(w->data + info->len, "mn\r\n", 4) == 0);
    if (info->key_tail == 0) {
        fuzz_spans_check(&info->keys, info->len);
    }
    fuzz_spans_check(&info->args, info->len);
}

/* A quiet request goes rewritten, without its q: the rewrite is one whole
 * request of the same command, not quiet, and the spans point into it. */
static void fuzz_quiet_check(const uint8_t *p, const struct req_info *info)
{
    struct req_info back;
    const struct buf *w = &info->wire;
    size_t fwd = w->len - info->key_tail; /* a decoded key follows: fuzz_b64_check */

    if (info->cmd == MC_CMD_MA_VIVIFY) {
        fuzz_quiet_vivify_check(p, info);
        return;
    }
    assert(info->rewritten && fwd > 0 && fwd < info->len);
    if (info->key_tail == 0) {
        fuzz_spans_check(&info->keys, fwd);
    }
    fuzz_spans_check(&info->args, fwd);
    req_info_init(&back);
    assert(P->req_parse(w->data, fwd, &back) == PARSE_OK);
    assert(back.len == fwd && !back.quiet && back.cmd == info->cmd);
    assert(back.route == info->route && back.keys.n == info->keys.n);
    assert(back.args.n == info->args.n);
    for (uint32_t i = 0; i < back.args.n; i++) {
        const struct span *a = &back.args.v[i], *b = &info->args.v[i];
        assert(a->off == b->off && a->len == b->len);
    }
    req_info_free(&back);
}

/* A key sent base64 (meta flag b) is routed by its decoded bytes, which follow
 * the request in wire: the request to forward is the client's (without q when
 * quiet), and parsing it again decodes the same key. */
static void fuzz_b64_check(const uint8_t *p, const struct req_info *info)
{
    const struct buf *w = &info->wire;
    size_t fwd = w->len - info->key_tail;
    /* the request itself: a quiet ma with N has an mn after it */
    size_t req = info->cmd == MC_CMD_MA_VIVIFY ? fwd - 4 : fwd;
    struct req_info back;

    assert(info->rewritten && info->route == ROUTE_KEY && info->keys.n == 1);
    assert(info->key_tail > 0 && info->key_tail <= w->len);
    assert(info->keys.v[0].off == fwd && info->keys.v[0].len == info->key_tail);
    assert(info->quiet || (fwd == info->len && memcmp(w->data, p, fwd) == 0));
    req_info_init(&back);
    assert(P->req_parse(w->data, req, &back) == PARSE_OK);
    assert(back.len == req && back.key_tail == info->key_tail && back.keys.n == 1);
    assert(memcmp(back.wire.data + back.keys.v[0].off, w->data + fwd, info->key_tail) == 0);
    req_info_free(&back);
}

static void fuzz_message_check(const uint8_t *p, size_t n, const struct req_info *info)
{
    struct req_info again;
    struct buf out;

    assert(info->len > 0 && info->len <= n);
    if (info->key_tail != 0) {
        fuzz_b64_check(p, info);
    } else {
        fuzz_spans_check(&info->keys, info->len);
    }
    fuzz_spans_check(&info->args, info->len);
    /* The message alone parses the same; a byte less is incomplete. */
    req_info_init(&again);
    again.mid_stream = info->mid_stream;
    assert(P->req_parse(p, info->len, &again) == PARSE_OK);
    assert(again.len == info->len && again.route == info->route && again.cmd == info->cmd);
    assert(again.keys.n == info->keys.n && again.noreply == info->noreply);
    assert(P->req_parse(p, info->len - 1, &again) == PARSE_AGAIN);
    req_info_free(&again);
    if (info->quiet) {
        fuzz_quiet_check(p, info);
    }

    switch (info->route) {
    case ROUTE_REJECT:
        assert(info->err[0] != '\0' && info->keys.n == 0);
        fuzz_error_check(info->err);
        break;
    case ROUTE_SPLIT:
        assert(info->keys.n > 1);
        fuzz_split_check(p, info);
        break;
    case ROUTE_KEY:
        assert(info->keys.n <= 1); /* none: "gat 10" */
        break;
    case ROUTE_LOCAL:
        /* answered by the proxy; a refused noreply request by nothing at all */
        buf_init(&out);
        assert(P->local(&out, p, info, &(struct local_ctx){.version = "1"}) == !info->noreply);
        assert(!info->noreply || out.len == 0);
        buf_free(&out);
        break;
    default:
        assert((info->route == ROUTE_ALL || info->route == ROUTE_ANY) && info->keys.n == 0);
        break;
    }
}

/* A message the core may drop: its answer is an error line, and the request
 * sent instead (a set's delete) is one whole request for one key. */
static void fuzz_drop_check(const struct req_info *info, size_t have)
{
    struct req_info instead;

    assert(info->droppable && info->len > have);
    fuzz_error_check(info->err);
    if (info->wire.len == 0) {
        return;
    }
    req_info_init(&instead);
    assert(P->req_parse(info->wire.data, info->wire.len, &instead) == PARSE_OK);
    assert(instead.len == info->wire.len && instead.route == ROUTE_KEY && instead.noreply);
    assert(instead.keys.n == 1);
    req_info_free(&instead);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct req_info info;
    static int ready;
    size_t off = 0;

    if (!ready) {
        req_info_init(&info);
        ready = 1;
    }
    info.scanned = 0;        /* other bytes than the last input's (proto.h) */
    info.mid_stream = false; /* a new connection, as the core sets it */
    while (off < size) {
        int rc = P->req_parse(data + off, size - off, &info);
        if (rc == PARSE_AGAIN) {
            assert(info.len == 0 || info.len > size - off);
            if (info.droppable) {
                fuzz_drop_check(&info, size - off);
            }
            break;
        }
        if (rc == PARSE_DROP) {
            fuzz_drop_check(&info, size - off);
            break;
        }
        if (rc == PARSE_ERROR) {
            fuzz_error_check(info.err);
            break;
        }
        assert(rc == PARSE_OK);
        fuzz_message_check(data + off, size - off, &info);
        off += info.len;
        info.mid_stream = true;
    }
    return 0;
}
