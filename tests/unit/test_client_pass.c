/*
 * test_client_pass: what of a client goes to the new binary at an upgrade
 * (proxy/client_pass.c). A client on one end of a socketpair is exported and
 * imported into the same proxy on a copy of its descriptor: pool, login,
 * protocol version and name come back; when it may travel; and a state that
 * is cut short, of another version, naming an unknown pool or protocol is
 * refused with the descriptor closed. The loop never runs.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "conf/conf.h"
#include "proxy/client.h"
#include "proxy/pool.h"
#include "proxy/proxy.h"
#include "unit.h"
#include "unit_proxy.h"

struct fixture {
    struct conf *conf;
    struct ev_loop *loop;
    struct proxy px;
};

static const char yml[] = "alpha:\n  listen: 127.0.0.1:22121\n  redis: true\n"
                          "  servers:\n   - 127.0.0.1:6379:1\n"
                          "beta:\n  listen: 127.0.0.1:22122\n"
                          "  servers:\n   - 127.0.0.1:11211:1\n";

static void fixture_init(struct fixture *f)
{
    memset(f, 0, sizeof(*f));
    f->conf = unit_conf(yml);
    if (f->conf == NULL) {
        abort();
    }
    f->loop = unit_proxy_init(&f->px);
    f->px.pools = calloc(f->conf->npools, sizeof(*f->px.pools));
    for (uint32_t i = 0; i < f->conf->npools; i++) {
        f->px.pools[i] = pool_create(&f->px, f->conf, i);
        if (f->px.pools[i] == NULL) {
            abort();
        }
        f->px.npools++;
    }
}

static void fixture_free(struct fixture *f)
{
    proxy_before_sleep(&f->px); /* frees the closed clients */
    for (uint32_t i = 0; i < f->px.npools; i++) {
        pool_destroy(f->px.pools[i]);
    }
    free(f->px.pools);
    f->px.pools = NULL;
    f->px.npools = 0;
    proxy_deinit(&f->px);
    ev_loop_destroy(f->loop);
    conf_unref(f->conf);
}

static struct pool *pool_named(struct fixture *f, const char *name)
{
    for (uint32_t i = 0; i < f->px.npools; i++) {
        if (strcmp(f->px.pools[i]->cp->name, name) == 0) {
            return f->px.pools[i];
        }
    }
    abort();
}

static bool fd_closed(int fd)
{
    return fcntl(fd, F_GETFD) < 0 && errno == EBADF;
}

/* A client of pool p on one end of a new socketpair; *peer is the other. */
static struct client *client_pair(struct fixture *f, const char *pool, int *peer)
{
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv) != 0) {
        abort();
    }
    *peer = sv[1];
    return client_open(pool_named(f, pool), sv[0], false, NULL, 0);
}

static void test_round_trip(void)
{
    struct fixture f;
    fixture_init(&f);
    int peer;
    struct client *c = client_pair(&f, "alpha", &peer);
    c->lc.authed = true;
    c->lc.resp = 3;
    buf_append(&c->lc.name, "keeper", 6);
    buf_append(&c->lc.user, "alice", 5); /* (alpha has no client_auth: it stays) */
    CHECK(client_travels(c) && client_passable(c));
    uint64_t total = f.px.total_connections;
    struct buf state;
    buf_init(&state);
    client_export(c, &state);
    int fd = dup(c->io.fd);
    struct client *d = client_import(&f.px, fd, state.data, state.len);
    CHECK(d != NULL);
    if (d != NULL) {
        CHECK(d->pool == pool_named(&f, "alpha"));
        CHECK(d->lc.authed && d->lc.resp == 3);
        CHECK_MEM(d->lc.name.data, d->lc.name.len, "keeper");
        CHECK_MEM(d->lc.user.data, d->lc.user.len, "alice");
        CHECK(!d->closing);
        CHECK(d->id != c->id);
        CHECK(f.px.total_connections == total); /* counted where it was accepted */
        client_close(d);
    }
    /* a memcached client: no login, RESP 2, no name */
    int peer2;
    struct client *m = client_pair(&f, "beta", &peer2);
    buf_reset(&state);
    client_export(m, &state);
    d = client_import(&f.px, dup(m->io.fd), state.data, state.len);
    CHECK(d != NULL && d->pool == pool_named(&f, "beta") && !d->lc.authed && d->lc.name.len == 0);
    if (d != NULL) {
        client_close(d);
    }
    client_close(m);
    client_close(c);
    close(peer);
    close(peer2);
    buf_free(&state);
    fixture_free(&f);
}

/* Only a client with nothing in flight, nothing unwritten and no state of
 * this process's servers goes. */
static void test_when_it_travels(void)
{
    struct fixture f;
    fixture_init(&f);
    int peer;
    struct client *c = client_pair(&f, "alpha", &peer);
    CHECK(client_passable(c));
    buf_append(client_outbuf(c), "+OK\r\n", 5);
    CHECK(client_travels(c) && !client_passable(c)); /* a reply not yet written */
    c->out_pos = c->out.len;
    CHECK(client_passable(c));
    buf_append(&c->in, "*1\r\n", 4);
    CHECK(!client_passable(c)); /* half a request read */
    buf_reset(&c->in);
    c->lc.subscribed = true;
    CHECK(!client_travels(c) && !client_passable(c));
    c->lc.subscribed = false;
    c->txn.active = true;
    CHECK(!client_travels(c));
    c->txn.active = false;
    client_drain(c);
    CHECK(client_travels(c) && !client_passable(c)); /* closing */
    client_close(c);
    close(peer);
    fixture_free(&f);
}

/* Every cut of a good state, and bad ones, are refused and close the fd. */
static void test_bad_states(void)
{
    struct fixture f;
    fixture_init(&f);
    int peer;
    struct client *c = client_pair(&f, "alpha", &peer);
    buf_append(&c->lc.name, "n", 1);
    struct buf state;
    buf_init(&state);
    client_export(c, &state);
    uint32_t before = pool_named(&f, "alpha")->nclients;
    for (size_t n = 0; n < state.len; n++) {
        if (n == state.len - 2) {
            continue; /* without its (empty) user: an older exporter's state, below */
        }
        int fd = dup(c->io.fd);
        CHECK(client_import(&f.px, fd, state.data, n) == NULL && fd_closed(fd));
    }
    int old_fd = dup(c->io.fd);
    struct client *o = client_import(&f.px, old_fd, state.data, state.len - 2);
    CHECK(o != NULL && o->lc.user.len == 0 && o->lc.name.len == 1);
    client_close(o);
    uint8_t bad[64];
    memcpy(bad, state.data, state.len);
    bad[0] = 2; /* another version */
    int fd = dup(c->io.fd);
    CHECK(client_import(&f.px, fd, bad, state.len) == NULL && fd_closed(fd));
    memcpy(bad, state.data, state.len);
    bad[2] = 4; /* RESP 4 */
    fd = dup(c->io.fd);
    CHECK(client_import(&f.px, fd, bad, state.len) == NULL && fd_closed(fd));
    memcpy(bad, state.data, state.len);
    bad[1] = 0; /* alpha as a memcached pool */
    fd = dup(c->io.fd);
    CHECK(client_import(&f.px, fd, bad, state.len) == NULL && fd_closed(fd));
    memcpy(bad, state.data, state.len);
    bad[5] = 'x'; /* "xlpha" */
    fd = dup(c->io.fd);
    CHECK(client_import(&f.px, fd, bad, state.len) == NULL && fd_closed(fd));
    CHECK_EQ_INT(pool_named(&f, "alpha")->nclients, before);
    client_close(c);
    close(peer);
    buf_free(&state);
    fixture_free(&f);
}

int main(void)
{
    test_round_trip();
    test_when_it_travels();
    test_bad_states();
    UNIT_DONE("test_client_pass");
}
