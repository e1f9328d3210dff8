/*
 * client_pass: a client handed from one process to another at a binary
 * upgrade (process/upgrade.h). The socket itself travels (SCM_RIGHTS); this
 * file says when a client can go and what of its state goes with it, as a few
 * bytes the new binary reads back:
 *
 *   u8 version (1) | u8 flags (1: redis, 2: logged in) | u8 resp (2 or 3)
 *   u16 pool name length | pool name | u16 client name length | client name
 *
 * (lengths big-endian). Anything else about a client is either empty when it
 * is passable (requests, replies, subscriptions, a transaction) or belongs to
 * the process (its id, its counters).
 */
#include <string.h>
#include <unistd.h>

#include "core/log.h"
#include "proxy/client.h"
#include "proxy/pool.h"
#include "proxy/proxy.h"

#define PASS_VERSION    1
#define PASS_F_REDIS    1u
#define PASS_F_AUTHED   2u
#define PASS_F_NO_EVICT 4u
#define PASS_F_SPOKE    8u /* req_info.mid_stream: memcached's binary or text */
#define PASS_NAME_MAX   4096

bool client_travels_after_txn(const struct client *c)
{
    return (stream_is_plain(&c->st) || stream_is_ring(&c->st)) && !c->handshake &&
           !c->lc.subscribed && c->subs.nchans == 0 && c->subs.npats == 0;
}

bool client_travels(const struct client *c)
{
    /* the connection of an earlier WATCH (txn.pin) is idle once the watch
     * ended: it closes with this process's side of the client */
    return client_travels_after_txn(c) && !c->txn.active && c->txn.watched == NULL;
}

bool client_passable(const struct client *c)
{
    return client_answered(c) && c->out_pos == c->out.len && stream_pending(&c->st) == 0 &&
           client_travels(c);
}

bool client_pass_ready(struct client *c)
{
    if (!client_passable(c)) {
        return false;
    }
    if (!stream_is_ring(&c->st)) {
        return true;
    }
    unsigned mask = c->io.mask;
    if (stream_unring(&c->st) != 0) {
        return false; /* its receive is being cancelled: a turn later */
    }
    /* watched like any plain socket now, should it have to stay (the new
     * process cannot take it) */
    ev_io_stop(c->px->loop, &c->io);
    ev_io_set(c->px->loop, &c->io, mask != 0 ? mask : EV_READ);
    return true;
}

static void pass_put_text(struct buf *out, const uint8_t *p, size_t n)
{
    uint8_t len[2] = {(uint8_t)(n >> 8), (uint8_t)n};
    buf_append(out, len, 2);
    buf_append(out, p, n);
}

void client_export(const struct client *c, struct buf *out)
{
    const struct conf_pool *cp = c->pool->cp;
    uint8_t head[3] = {PASS_VERSION, 0, (uint8_t)c->lc.resp};
    head[1] = (uint8_t)((cp->redis ? PASS_F_REDIS : 0) | (c->lc.authed ? PASS_F_AUTHED : 0) |
                        (c->lc.no_evict ? PASS_F_NO_EVICT : 0) | (c->spoke ? PASS_F_SPOKE : 0));
    buf_append(out, head, sizeof(head));
    size_t pool_len = strlen(cp->name);
    size_t name_len = c->lc.name.len;
    pass_put_text(out, (const uint8_t *)cp->name, pool_len > PASS_NAME_MAX ? 0 : pool_len);
    pass_put_text(out, c->lc.name.data, name_len > PASS_NAME_MAX ? 0 : name_len);
    /* last: an importer that reads no user ignores it; one whose exporter sent none
     * finds nothing here */
    size_t user_len = c->lc.user.len;
    pass_put_text(out, c->lc.user.data, user_len > PASS_NAME_MAX ? 0 : user_len);
}

/* One length-prefixed text at *p (n bytes left): its bytes, or NULL. */
static const uint8_t *pass_get_text(const uint8_t **p, size_t *n, size_t *len)
{
    if (*n < 2) {
        return NULL;
    }
    *len = (size_t)(*p)[0] << 8 | (*p)[1];
    if (*len > PASS_NAME_MAX || *n - 2 < *len) {
        return NULL;
    }
    const uint8_t *text = *p + 2;
    *p += 2 + *len;
    *n -= 2 + *len;
    return text;
}

static struct pool *pass_pool(struct proxy *px, const uint8_t *name, size_t len, bool redis)
{
    for (uint32_t i = 0; i < px->npools; i++) {
        const struct conf_pool *cp = px->pools[i]->cp;
        if (strlen(cp->name) == len && memcmp(cp->name, name, len) == 0 && cp->redis == redis) {
            return px->pools[i];
        }
    }
    return NULL;
}

struct client *client_import(struct proxy *px, int fd, const uint8_t *p, size_t n)
{
    size_t pool_len = 0, name_len = 0, user_len = 0;
    const uint8_t *pool_name = NULL, *name = NULL, *user = NULL;
    uint8_t flags = 0, resp = 0;
    if (n >= 3 && p[0] == PASS_VERSION) {
        flags = p[1];
        resp = p[2];
        p += 3;
        n -= 3;
        pool_name = pass_get_text(&p, &n, &pool_len);
        name = pool_name != NULL ? pass_get_text(&p, &n, &name_len) : NULL;
        /* nothing more: an exporter that sends no user; else a user, whole */
        user = name != NULL && n > 0 ? pass_get_text(&p, &n, &user_len) : NULL;
        name = name != NULL && n > 0 && user == NULL ? NULL : name;
    }
    struct pool *pool = name != NULL && (resp == 2 || resp == 3)
                            ? pass_pool(px, pool_name, pool_len, (flags & PASS_F_REDIS) != 0)
                            : NULL;
    if (pool == NULL) {
        log_warn("a client handed over by the replaced process has no pool here: closed");
        close(fd);
        return NULL;
    }
    struct client *c = client_open(pool, fd, false, NULL, 0);
    if (c == NULL) {
        return NULL;
    }
    c->lc.authed = (flags & PASS_F_AUTHED) != 0;
    c->lc.no_evict = (flags & PASS_F_NO_EVICT) != 0;
    c->spoke = (flags & PASS_F_SPOKE) != 0;
    c->lc.resp = resp;
    buf_append(&c->lc.name, name, name_len);
    if (user != NULL) {
        buf_append(&c->lc.user, user, user_len);
    }
    c->imported_us = ev_now_us(px->loop);
    px->total_connections--; /* the process that accepted it counted it */
    client_check_user(c);    /* this process's configuration may list other users */
    return c;
}
