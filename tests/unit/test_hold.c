/*
 * test_hold: a sentinel group's hold (proxy/hold.c) driven through the pool's
 * group sink, as the sentinel client drives it, with two clients on
 * socketpairs and two "masters" on unix sockets this test answers by hand:
 *
 *   planned:  writes wait, and so does everything after a client's held
 *             write; another client's read goes on to the old master; WAIT is
 *             sent there; the new master gets the held requests in order
 *   abort:    held requests go to the master in use
 *   expiry:   with a promotion under way, they get an error
 *   crash:    a master that refuses connections holds everything (with
 *             failover_hold_on_crash) until the new one is known; one that
 *             dies with requests written to it: the reads among them are held
 *             again, the writes get the error
 *
 * (Real redis-server and redis-sentinel processes: tests/e2e/test_failover_hold.py.)
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "conf/conf.h"
#include "proxy/client.h"
#include "proxy/groups.h"
#include "proxy/pool.h"
#include "proxy/proxy.h"
#include "proxy/sconn.h"
#include "proxy/server.h"
#include "unit.h"
#include "unit_proxy.h"

#define GET_K    "*2\r\n$3\r\nGET\r\n$1\r\nk\r\n"
#define SET_K(v) "*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1\r\n" v "\r\n"
#define WAIT_REQ "*3\r\n$4\r\nWAIT\r\n$1\r\n1\r\n$3\r\n100\r\n"

struct rig {
    char dir[64];
    struct sockaddr_un addr[2]; /* the two masters */
    int lfd[2], sfd[2];
    struct conf *conf;
    struct ev_loop *loop;
    struct proxy px;
    struct pool *pool;
    struct group_sink sink;
    int peer[2]; /* the clients' far ends */
    struct client *c[2];
};

static int listen_unix(const struct sockaddr_un *sa)
{
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    if (fd < 0 || bind(fd, (const struct sockaddr *)sa, sizeof(*sa)) != 0 || listen(fd, 4) != 0) {
        abort();
    }
    return fd;
}

static void rig_init(struct rig *r, const char *keys)
{
    memset(r, 0, sizeof(*r));
    snprintf(r->dir, sizeof(r->dir), "/tmp/nc-hold-XXXXXX");
    if (mkdtemp(r->dir) == NULL) {
        abort();
    }
    for (int i = 0; i < 2; i++) {
        r->addr[i].sun_family = AF_UNIX;
        snprintf(r->addr[i].sun_path, sizeof(r->addr[i].sun_path), "%s/m%d.sock", r->dir, i);
        r->lfd[i] = listen_unix(&r->addr[i]);
        r->sfd[i] = -1;
    }
    char yml[512];
    snprintf(yml, sizeof(yml),
             "alpha:\n  listen: 127.0.0.1:22121\n%s  groups:\n   - g\n  sentinels:\n"
             "   - 127.0.0.1:1\n",
             keys);
    r->conf = unit_conf(yml);
    if (r->conf == NULL) {
        abort();
    }
    r->loop = unit_proxy_init(&r->px);
    r->pool = pool_create(&r->px, r->conf, 0);
    if (r->pool == NULL) {
        abort();
    }
    r->px.pools = calloc(1, sizeof(*r->px.pools));
    r->px.pools[0] = r->pool;
    r->px.npools = 1;
    r->sink = pool_group_sink(r->pool);
    for (int i = 0; i < 2; i++) {
        int sv[2];
        if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv) != 0) {
            abort();
        }
        r->c[i] = client_open(r->pool, sv[0], false, NULL, 0);
        r->peer[i] = sv[1];
    }
}

static void rig_free(struct rig *r)
{
    proxy_deinit(&r->px);
    ev_loop_destroy(r->loop);
    conf_unref(r->conf);
    for (int i = 0; i < 2; i++) {
        if (r->lfd[i] >= 0) {
            close(r->lfd[i]);
        }
        if (r->sfd[i] >= 0) {
            close(r->sfd[i]);
        }
        close(r->peer[i]);
        unlink(r->addr[i].sun_path);
    }
    rmdir(r->dir);
}

static void rig_turn(struct rig *r)
{
    for (int i = 0; i < 5; i++) {
        ev_loop_poll(r->loop, 10);
        proxy_before_sleep(&r->px);
    }
}

static bool master_found(struct rig *r, int m)
{
    return r->sink.ops->master_found(r->sink.ctx, 0, (const struct sockaddr *)&r->addr[m],
                                     sizeof(r->addr[m]), false);
}

/* What master m received (accepting the proxy's connection first); "" if nothing. */
static const char *master_read(struct rig *r, int m)
{
    static char buf[4096];
    buf[0] = '\0';
    if (r->sfd[m] < 0) {
        struct pollfd p = {r->lfd[m], POLLIN, 0};
        if (poll(&p, 1, 200) != 1) {
            return buf;
        }
        r->sfd[m] = accept(r->lfd[m], NULL, NULL);
    }
    struct pollfd p = {r->sfd[m], POLLIN, 0};
    if (poll(&p, 1, 200) == 1) {
        ssize_t n = read(r->sfd[m], buf, sizeof(buf) - 1);
        buf[n > 0 ? n : 0] = '\0';
    }
    return buf;
}

static void master_say(struct rig *r, int m, const char *s)
{
    if (write(r->sfd[m], s, strlen(s)) != (ssize_t)strlen(s)) {
        abort();
    }
}

static void client_say(struct rig *r, int i, const char *s)
{
    if (write(r->peer[i], s, strlen(s)) != (ssize_t)strlen(s)) {
        abort();
    }
    rig_turn(r);
}

static const char *client_got(struct rig *r, int i)
{
    static char buf[4096];
    rig_turn(r);
    ssize_t n = read(r->peer[i], buf, sizeof(buf) - 1);
    buf[n > 0 ? n : 0] = '\0';
    return buf;
}

static int64_t gstat(struct rig *r, int f)
{
    return r->pool->servers[0].gstats[f];
}

static void test_planned(void)
{
    struct rig r;
    rig_init(&r, "");
    CHECK(master_found(&r, 0));
    client_say(&r, 0, GET_K);
    CHECK(strcmp(master_read(&r, 0), GET_K) == 0);
    master_say(&r, 0, "$-1\r\n");
    CHECK(strcmp(client_got(&r, 0), "$-1\r\n") == 0);

    /* the leader promotes a replica: the old master is asked to confirm */
    r.sink.ops->failover_begins(r.sink.ctx, 0, false);
    rig_turn(&r);
    CHECK(strcmp(master_read(&r, 0), WAIT_REQ) == 0);
    master_say(&r, 0, ":1\r\n");
    /* client 0's write waits, and its read after it */
    client_say(&r, 0, SET_K("1") GET_K);
    CHECK(strcmp(master_read(&r, 0), "") == 0);
    /* client 1's read goes on to the old master; its write waits */
    client_say(&r, 1, GET_K);
    CHECK(strcmp(master_read(&r, 0), GET_K) == 0);
    master_say(&r, 0, "$1\r\n0\r\n");
    CHECK(strcmp(client_got(&r, 1), "$1\r\n0\r\n") == 0);
    client_say(&r, 1, SET_K("2"));
    CHECK(strcmp(master_read(&r, 0), "") == 0);
    CHECK_EQ_INT(gstat(&r, SG_failover_held), 3);
    CHECK(strcmp(client_got(&r, 0), "") == 0);

    /* the new master: everything held goes there, in order */
    CHECK(master_found(&r, 1));
    rig_turn(&r);
    CHECK(strcmp(master_read(&r, 1), SET_K("1") GET_K SET_K("2")) == 0);
    master_say(&r, 1, "+OK\r\n$1\r\n1\r\n+OK\r\n");
    CHECK(strcmp(client_got(&r, 0), "+OK\r\n$1\r\n1\r\n") == 0);
    CHECK(strcmp(client_got(&r, 1), "+OK\r\n") == 0);
    CHECK_EQ_INT(gstat(&r, SG_failover_released), 3);
    CHECK_EQ_INT(gstat(&r, SG_failover_expired), 0);
    CHECK_EQ_INT(gstat(&r, SG_server_failover), 1);
    CHECK(gstat(&r, SG_failover_hold_us) > 0);
    /* and nothing waits any more */
    client_say(&r, 0, SET_K("3"));
    CHECK(strcmp(master_read(&r, 1), SET_K("3")) == 0);
    master_say(&r, 1, "+OK\r\n");
    CHECK(strcmp(client_got(&r, 0), "+OK\r\n") == 0);

    /* an abort sends what waits to the master in use */
    r.sink.ops->failover_begins(r.sink.ctx, 0, false);
    rig_turn(&r);
    CHECK(strcmp(master_read(&r, 1), WAIT_REQ) == 0);
    master_say(&r, 1, ":0\r\n");
    client_say(&r, 1, SET_K("4"));
    CHECK(strcmp(master_read(&r, 1), "") == 0);
    r.sink.ops->failover_ends(r.sink.ctx, 0, "failover aborted");
    rig_turn(&r);
    CHECK(strcmp(master_read(&r, 1), SET_K("4")) == 0);
    master_say(&r, 1, "+OK\r\n");
    CHECK(strcmp(client_got(&r, 1), "+OK\r\n") == 0);
    CHECK_EQ_INT(gstat(&r, SG_failover_released), 4);
    rig_free(&r);
}

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void test_expiry(void)
{
    struct rig r;
    rig_init(&r, "  failover_hold: 100\n");
    CHECK(master_found(&r, 0));
    r.sink.ops->failover_begins(r.sink.ctx, 0, false);
    client_say(&r, 0, SET_K("1"));
    CHECK(strcmp(master_read(&r, 0), "") == 0); /* no connection yet: no WAIT either */
    uint64_t until = now_ms() + 1000;
    while (gstat(&r, SG_failover_expired) == 0 && now_ms() < until) {
        rig_turn(&r);
    }
    CHECK(strcmp(client_got(&r, 0),
                 "-ERR failover of group 'g' still in progress after failover_hold (100 ms)\r\n") ==
          0);
    CHECK_EQ_INT(gstat(&r, SG_failover_expired), 1);
    CHECK_EQ_INT(gstat(&r, SG_failover_released), 0);
    /* and writes go on to the master the sentinels still name */
    client_say(&r, 0, SET_K("2"));
    CHECK(strcmp(master_read(&r, 0), SET_K("2")) == 0);
    rig_free(&r);
}

static void test_crash(void)
{
    struct rig r;
    rig_init(&r, "  failover_hold_on_crash: true\n");
    /* master 0 is gone: its socket refuses */
    close(r.lfd[0]);
    r.lfd[0] = -1;
    unlink(r.addr[0].sun_path);
    CHECK(master_found(&r, 0));
    client_say(&r, 0, SET_K("1"));
    client_say(&r, 1, GET_K);
    CHECK(strcmp(client_got(&r, 0), "") == 0);
    CHECK(strcmp(client_got(&r, 1), "") == 0);
    CHECK_EQ_INT(gstat(&r, SG_failover_held), 2);
    CHECK(master_found(&r, 1));
    rig_turn(&r);
    CHECK(strcmp(master_read(&r, 1), SET_K("1") GET_K) == 0);
    master_say(&r, 1, "+OK\r\n$1\r\n1\r\n");
    CHECK(strcmp(client_got(&r, 0), "+OK\r\n") == 0);
    CHECK(strcmp(client_got(&r, 1), "$1\r\n1\r\n") == 0);
    rig_free(&r);

    /* no failover in time: an error, not another try (and another hold) */
    rig_init(&r, "  failover_hold_on_crash: true\n  failover_hold: 100\n");
    close(r.lfd[0]);
    r.lfd[0] = -1;
    unlink(r.addr[0].sun_path);
    CHECK(master_found(&r, 0));
    client_say(&r, 0, SET_K("1"));
    uint64_t until = now_ms() + 1000;
    while (gstat(&r, SG_failover_expired) == 0 && now_ms() < until) {
        rig_turn(&r);
    }
    CHECK(strcmp(client_got(&r, 0), "-ERR master of group 'g' unreachable and no failover within "
                                    "failover_hold (100 ms)\r\n") == 0);
    CHECK_EQ_INT(gstat(&r, SG_failover_held), 1);
    rig_free(&r);

    /* without failover_hold_on_crash a refusal is an error at once */
    rig_init(&r, "");
    close(r.lfd[0]);
    r.lfd[0] = -1;
    unlink(r.addr[0].sun_path);
    CHECK(master_found(&r, 0));
    client_say(&r, 0, SET_K("1"));
    CHECK(strncmp(client_got(&r, 0), "-ERR ", 5) == 0);
    CHECK_EQ_INT(gstat(&r, SG_failover_held), 0);
    rig_free(&r);
}

/* Requests already written when the master's connection is lost: the read is
 * held again and answered by the new master, the write gets the error (the old
 * master may have applied it). */
static void test_crash_in_flight(void)
{
    struct rig r;
    rig_init(&r, "  failover_hold_on_crash: true\n");
    CHECK(master_found(&r, 0));
    client_say(&r, 0, GET_K);
    client_say(&r, 1, SET_K("1"));
    CHECK(strcmp(master_read(&r, 0), GET_K SET_K("1")) == 0);
    CHECK_EQ_INT(r.pool->servers[0].conns[0].out.len, strlen(GET_K SET_K("1"))); /* kept */
    /* the master dies with both unanswered */
    close(r.sfd[0]);
    r.sfd[0] = -1;
    close(r.lfd[0]);
    r.lfd[0] = -1;
    unlink(r.addr[0].sun_path);
    CHECK(strncmp(client_got(&r, 1), "-ERR ", 5) == 0);
    CHECK(strcmp(client_got(&r, 0), "") == 0);
    CHECK_EQ_INT(gstat(&r, SG_failover_held), 1);
    CHECK(master_found(&r, 1));
    rig_turn(&r);
    CHECK(strcmp(master_read(&r, 1), GET_K) == 0);
    master_say(&r, 1, "$1\r\n1\r\n");
    CHECK(strcmp(client_got(&r, 0), "$1\r\n1\r\n") == 0);
    CHECK_EQ_INT(r.pool->servers[0].conns[0].out.len, 0); /* answered: nothing kept */
    rig_free(&r);
}

int main(void)
{
    test_planned();
    test_expiry();
    test_crash();
    test_crash_in_flight();
    UNIT_DONE("test_hold");
}
