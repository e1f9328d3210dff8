/*
 * test_cqueue: a client's request queue on real sockets. The client is one
 * end of a socketpair, the two backends are unix sockets this test listens on
 * and answers by hand, and the proxy's loop is turned with ev_loop_poll. It
 * checks that replies reach the client in request order whatever order the
 * servers answer in (a local error reply waits its turn too), that the byte
 * counts the buffer limit reads go back to zero, that a client closed with
 * requests in flight leaves them to finish and be dropped, and that the
 * replies to one read wait for each other (reply_batch_wait) but not for a
 * later read's.
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "conf/conf.h"
#include "proxy/client.h"
#include "proxy/pool.h"
#include "proxy/proxy.h"
#include "proxy/route.h"
#include "proxy/sconn.h"
#include "proxy/server.h"
#include "unit.h"
#include "unit_proxy.h"

struct rig {
    char dir[64];
    int lfd[2]; /* the backends' listening sockets */
    int sfd[2]; /* the accepted connections from the proxy */
    struct conf *conf;
    struct ev_loop *loop;
    struct proxy px;
    struct pool *pool;
    int peer; /* the client's far end */
    struct client *c;
};

static int listen_unix(const char *path)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0 || listen(fd, 4) != 0) {
        abort();
    }
    return fd;
}

/* wait_ms: the pool's reply_batch_wait, or -1 for its default. */
static void rig_init_wait(struct rig *r, int wait_ms)
{
    memset(r, 0, sizeof(*r));
    snprintf(r->dir, sizeof(r->dir), "/tmp/nc-cqueue-XXXXXX");
    if (mkdtemp(r->dir) == NULL) {
        abort();
    }
    char yml[512], a[96], b[96];
    snprintf(a, sizeof(a), "%s/a.sock", r->dir);
    snprintf(b, sizeof(b), "%s/b.sock", r->dir);
    r->lfd[0] = listen_unix(a);
    r->lfd[1] = listen_unix(b);
    r->sfd[0] = r->sfd[1] = -1;
    char wait[64] = "";
    if (wait_ms >= 0) {
        snprintf(wait, sizeof(wait), "  reply_batch_wait: %d\n", wait_ms);
    }
    snprintf(yml, sizeof(yml),
             "alpha:\n  listen: 127.0.0.1:22121\n%s  servers:\n   - %s:1 a\n   - %s:1 b\n", wait, a,
             b);
    r->conf = unit_conf(yml);
    if (r->conf == NULL) {
        abort();
    }
    r->loop = unit_proxy_init(&r->px);
    r->pool = pool_create(&r->px, r->conf, 0);
    int sv[2];
    if (r->pool == NULL || socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv) != 0) {
        abort();
    }
    r->px.pools = calloc(1, sizeof(*r->px.pools));
    r->px.pools[0] = r->pool;
    r->px.npools = 1;
    r->c = client_open(r->pool, sv[0], false, NULL, 0);
    r->peer = sv[1];
}

static void rig_init(struct rig *r)
{
    rig_init_wait(r, -1);
}

static void rig_free(struct rig *r)
{
    proxy_deinit(&r->px); /* the pool, its clients and connections */
    ev_loop_destroy(r->loop);
    conf_unref(r->conf);
    for (int i = 0; i < 2; i++) {
        close(r->lfd[i]);
        if (r->sfd[i] >= 0) {
            close(r->sfd[i]);
        }
    }
    close(r->peer);
    char path[96];
    snprintf(path, sizeof(path), "%s/a.sock", r->dir);
    unlink(path);
    snprintf(path, sizeof(path), "%s/b.sock", r->dir);
    unlink(path);
    rmdir(r->dir);
}

/* Turn the loop until it is quiet (each turn ends with the before-sleep flush). */
static void rig_turn(struct rig *r)
{
    for (int i = 0; i < 5; i++) {
        ev_loop_poll(r->loop, 20);
        proxy_before_sleep(&r->px);
    }
}

/* Backend i: accept the proxy's connection once, then read what it sent. */
static size_t backend_read(struct rig *r, int i, char *buf, size_t cap)
{
    if (r->sfd[i] < 0) {
        struct pollfd p = {r->lfd[i], POLLIN, 0};
        if (poll(&p, 1, 1000) != 1) {
            return 0;
        }
        r->sfd[i] = accept(r->lfd[i], NULL, NULL);
    }
    struct pollfd p = {r->sfd[i], POLLIN, 0};
    if (poll(&p, 1, 1000) != 1) {
        return 0;
    }
    ssize_t n = read(r->sfd[i], buf, cap - 1);
    buf[n > 0 ? n : 0] = '\0';
    return n > 0 ? (size_t)n : 0;
}

static void backend_write(struct rig *r, int i, const char *s)
{
    if (write(r->sfd[i], s, strlen(s)) != (ssize_t)strlen(s)) {
        abort();
    }
}

static size_t peer_read(struct rig *r, char *buf, size_t cap)
{
    ssize_t n = read(r->peer, buf, cap - 1);
    buf[n > 0 ? n : 0] = '\0';
    return n > 0 ? (size_t)n : 0;
}

/* A key the pool places on server idx. */
static void key_on(struct rig *r, uint32_t idx, char *key, size_t cap)
{
    for (int i = 0; i < 1000; i++) {
        struct route rt;
        snprintf(key, cap, "k%d", i);
        if (route_key(r->pool, (const uint8_t *)key, strlen(key), true, &rt) == ROUTE_HIT &&
            rt.target->idx == idx) {
            return;
        }
    }
    abort();
}

static void test_replies_in_request_order(void)
{
    struct rig r;
    char ka[16], kb[16], req[128], got[512];
    rig_init(&r);
    key_on(&r, 0, ka, sizeof(ka));
    key_on(&r, 1, kb, sizeof(kb));
    int n = snprintf(req, sizeof(req), "get %s\r\nbogus\r\nget %s\r\n", ka, kb);
    CHECK_EQ_INT(write(r.peer, req, (size_t)n), n);
    rig_turn(&r);
    /* each server got exactly its request, bytes unchanged */
    char want[64];
    snprintf(want, sizeof(want), "get %s\r\n", ka);
    CHECK(backend_read(&r, 0, got, sizeof(got)) > 0 && strcmp(got, want) == 0);
    snprintf(want, sizeof(want), "get %s\r\n", kb);
    CHECK(backend_read(&r, 1, got, sizeof(got)) > 0 && strcmp(got, want) == 0);
    CHECK_EQ_INT(r.c->q.n, 3);
    CHECK(r.c->q.inflight_bytes > 0);

    /* b answers first: its reply and the local error wait behind a's request */
    backend_write(&r, 1, "VALUE x 0 1\r\nB\r\nEND\r\n");
    rig_turn(&r);
    CHECK_EQ_INT(peer_read(&r, got, sizeof(got)), 0);
    CHECK(r.c->q.pending_bytes == strlen("ERROR\r\n") + strlen("VALUE x 0 1\r\nB\r\nEND\r\n"));
    CHECK_EQ_INT(r.c->q.n, 3);

    backend_write(&r, 0, "VALUE y 0 1\r\nA\r\nEND\r\n");
    rig_turn(&r);
    size_t len = peer_read(&r, got, sizeof(got));
    CHECK_MEM(got, len, "VALUE y 0 1\r\nA\r\nEND\r\nERROR\r\nVALUE x 0 1\r\nB\r\nEND\r\n");
    CHECK_EQ_INT(r.c->q.n, 0);
    CHECK_EQ_INT(r.c->q.pending_bytes, 0);
    CHECK_EQ_INT(r.c->q.inflight_bytes, 0);
    CHECK(r.c->q.head == NULL && r.c->q.tail == NULL);
    rig_free(&r);
}

static void test_orphaned_requests_finish(void)
{
    struct rig r;
    char ka[16], req[64], got[256];
    rig_init(&r);
    key_on(&r, 0, ka, sizeof(ka));
    int n = snprintf(req, sizeof(req), "get %s\r\nget %s\r\n", ka, ka);
    CHECK_EQ_INT(write(r.peer, req, (size_t)n), n);
    rig_turn(&r);
    CHECK(backend_read(&r, 0, got, sizeof(got)) > 0);
    CHECK_EQ_INT(r.c->q.n, 2);
    client_close(r.c); /* the client goes with two requests at the server */
    rig_turn(&r);      /* and is freed before sleeping */
    CHECK(r.px.dead_clients == NULL);
    struct sconn *sc = r.pool->servers[0].conns;
    CHECK(sc->head != NULL);
    /* the replies come and are dropped: the connection stays in sync */
    backend_write(&r, 0, "END\r\nEND\r\n");
    rig_turn(&r);
    CHECK(sc->head == NULL);
    CHECK(server_idle(&r.pool->servers[0]));
    CHECK_EQ_INT(r.pool->servers[0].stats[SS_responses], 2);
    rig_free(&r);
}

#define REPLY_A "VALUE y 0 1\r\nA\r\nEND\r\n"
#define REPLY_B "VALUE x 0 1\r\nB\r\nEND\r\n"

/* A rig whose pool has reply_batch_wait wait_ms; the client asks for a key on
 * server a and one on server b, in one read or in two, and each server reads
 * its request. */
static void batch_rig(struct rig *r, int wait_ms, bool two_reads)
{
    char ka[16], kb[16], req[64], got[256];
    rig_init_wait(r, wait_ms);
    key_on(r, 0, ka, sizeof(ka));
    key_on(r, 1, kb, sizeof(kb));
    int n = snprintf(req, sizeof(req), "get %s\r\n", ka);
    if (two_reads) {
        CHECK_EQ_INT(write(r->peer, req, (size_t)n), n);
        rig_turn(r);
        n = 0;
    }
    n += snprintf(req + n, sizeof(req) - (size_t)n, "get %s\r\n", kb);
    CHECK_EQ_INT(write(r->peer, req, (size_t)n), n);
    rig_turn(r);
    CHECK(backend_read(r, 0, got, sizeof(got)) > 0);
    CHECK(backend_read(r, 1, got, sizeof(got)) > 0);
}

/* One turn of the loop after the last server answered. */
static void turn_once(struct rig *r, int ms)
{
    ev_loop_poll(r->loop, ms);
    proxy_before_sleep(&r->px);
}

/* Server b answers last: its reply reaches the client, after `before`. */
static void expect_b_last(struct rig *r, const char *before)
{
    char got[256], want[128];
    snprintf(want, sizeof(want), "%s%s", before, REPLY_B);
    backend_write(r, 1, REPLY_B);
    rig_turn(r);
    size_t len = peer_read(r, got, sizeof(got));
    CHECK_MEM(got, len, want);
}

static void test_replies_of_a_read_wait_for_each_other(void)
{
    struct rig r;
    char got[256];
    batch_rig(&r, 1000, false);
    backend_write(&r, 0, REPLY_A);
    rig_turn(&r);
    /* a's reply is ready, and waits for b's: same read */
    CHECK_EQ_INT(peer_read(&r, got, sizeof(got)), 0);
    CHECK(ev_timer_armed(&r.c->hold_timer));
    expect_b_last(&r, REPLY_A); /* both in one read */
    CHECK(!ev_timer_armed(&r.c->hold_timer));
    rig_free(&r);
}

static void test_a_reply_waits_at_most_reply_batch_wait(void)
{
    struct rig r;
    char got[256];
    batch_rig(&r, 30, false);
    backend_write(&r, 0, REPLY_A);
    turn_once(&r, 5);
    CHECK_EQ_INT(peer_read(&r, got, sizeof(got)), 0); /* held */
    size_t len = 0;
    for (int i = 0; i < 20 && len == 0; i++) {
        turn_once(&r, 20); /* the hold timer fires after 30 ms */
        len = peer_read(&r, got, sizeof(got));
    }
    CHECK_MEM(got, len, REPLY_A); /* alone: b is still at its server */
    expect_b_last(&r, "");
    rig_free(&r);
}

static void test_replies_do_not_wait_for_a_later_read(void)
{
    struct rig r;
    char got[256];
    batch_rig(&r, 1000, true);
    backend_write(&r, 0, REPLY_A);
    rig_turn(&r);
    size_t len = peer_read(&r, got, sizeof(got));
    CHECK_MEM(got, len, REPLY_A);
    expect_b_last(&r, "");
    rig_free(&r);
}

static void test_reply_batch_wait_0_writes_at_once(void)
{
    struct rig r;
    char got[256];
    batch_rig(&r, 0, false);
    backend_write(&r, 0, REPLY_A);
    turn_once(&r, 5);
    size_t len = peer_read(&r, got, sizeof(got));
    CHECK_MEM(got, len, REPLY_A);
    expect_b_last(&r, "");
    rig_free(&r);
}

int main(void)
{
    test_replies_in_request_order();
    test_orphaned_requests_finish();
    test_replies_of_a_read_wait_for_each_other();
    test_a_reply_waits_at_most_reply_batch_wait();
    test_replies_do_not_wait_for_a_later_read();
    test_reply_batch_wait_0_writes_at_once();
    UNIT_DONE("test_cqueue");
}
