/*
 * test_sentinel_client: the sentinel client's state machine (sentinel.c) with
 * a recording group sink instead of a pool, and a sentinel and two "masters"
 * scripted here on loopback sockets: what it is told and what it passes on.
 *
 *   discovery:      the queried master, checked with ROLE, is passed on
 *   first look:     ends with master_unknown (once) when the sentinel names
 *                   no master or none answers; never once one is found
 *   epoch guard:    a view at an older config-epoch is not believed
 *   failover undone: the master in use named at a newer epoch ends a
 *                   failover (the replica it promoted was demoted again)
 *   +switch-master: the new master is checked and passed on
 *   ROLE slave:     a candidate that is not a master is never passed on
 *   replicas:       SENTINEL REPLICAS lists go to the sink; +sdown too
 *   every sentinel: each has a subscription; a failover's steps from the one
 *                   leading it begin a failover, its abort (only its) ends it;
 *                   a master down for a quorum or a majority begins one too;
 *                   a switch heard from all is checked and passed on once
 *
 * (Real redis-sentinel processes are in tests/e2e/test_sentinel*.py.)
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "conf/conf.h"
#include "proto/redis.h"
#include "sentinel/sentinel.h"
#include "unit.h"

/* ---- the recording sink ---- */

struct record {
    bool known;
    struct sockaddr_storage master;
    socklen_t master_len;
    int found;           /* master_found calls that moved the group */
    int leaving;         /* ... of a master a sentinel leads a failover away from */
    int listed;          /* replicas_listed calls */
    uint32_t nreplicas;  /* in the last list */
    int down;            /* replica_state(false) calls */
    int promoting;       /* failover_begins(down false) calls */
    int master_down;     /* failover_begins(down true) calls */
    int ends;            /* failover_ends calls */
    int down_ends;       /* down_ends calls */
    const char *end_why; /* the last one's reason */
    int unknown;         /* master_unknown calls */
};

static bool rec_master_get(void *ctx, uint32_t g, struct sockaddr_storage *ss, socklen_t *len)
{
    struct record *r = ctx;
    (void)g;
    if (r->known) {
        *ss = r->master;
        *len = r->master_len;
    }
    return r->known;
}

static bool rec_master_found(void *ctx, uint32_t g, const struct sockaddr *sa, socklen_t len,
                             bool leaving)
{
    struct record *r = ctx;
    (void)g;
    r->leaving += leaving;
    if (r->known && len == r->master_len && memcmp(&r->master, sa, len) == 0) {
        return false;
    }
    memcpy(&r->master, sa, len);
    r->master_len = len;
    r->known = true;
    r->found++;
    return true;
}

static void rec_replicas_listed(void *ctx, uint32_t g, const struct replica_addr *v, uint32_t n)
{
    struct record *r = ctx;
    (void)g;
    (void)v;
    r->listed++;
    r->nreplicas = n;
}

static void rec_replica_state(void *ctx, uint32_t g, const struct sockaddr *sa, socklen_t len,
                              bool usable)
{
    struct record *r = ctx;
    (void)g;
    (void)sa;
    (void)len;
    r->down += !usable;
}

static void rec_failover_begins(void *ctx, uint32_t g, bool down)
{
    struct record *r = ctx;
    (void)g;
    if (down) {
        r->master_down++;
    } else {
        r->promoting++;
    }
}

static void rec_failover_ends(void *ctx, uint32_t g, const char *why)
{
    struct record *r = ctx;
    (void)g;
    r->ends++;
    r->end_why = why;
}

static void rec_down_ends(void *ctx, uint32_t g)
{
    struct record *r = ctx;
    (void)g;
    r->down_ends++;
}

static void rec_master_unknown(void *ctx, uint32_t g)
{
    struct record *r = ctx;
    (void)g;
    r->unknown++;
}

static const struct group_sink_ops rec_ops = {
    rec_master_get,      rec_master_found,  rec_replicas_listed, rec_replica_state,
    rec_failover_begins, rec_failover_ends, rec_down_ends,       rec_master_unknown,
};

/* ---- the scripted peers ---- */

#define MAX_CONNS     24
#define MAX_SENTINELS 3

struct conn {
    int fd;
    bool master;  /* accepted on a master's port: answers ROLE */
    int port;     /* that master's port */
    int sentinel; /* accepted on that sentinel's port */
    int masters;  /* SENTINEL MASTER questions it asked */
    char in[16384];
    size_t len;
};

struct script {
    int nsentinels;
    int sentinel_lfd[MAX_SENTINELS], master_lfd[2];
    int sentinel_port[MAX_SENTINELS], master_port[2];
    const char *role[2]; /* what each master answers ROLE with */
    int named;           /* the master the sentinel names (0 or 1) */
    int epoch;           /* the config-epoch it gives */
    bool with_replica;   /* SENTINEL REPLICAS lists one replica */
    struct conn conns[MAX_CONNS];
    int sub_fd[MAX_SENTINELS];    /* each sentinel's subscription link, once seen */
    int sub_nchan[MAX_SENTINELS]; /* the channels it subscribed to */
    int roles;                    /* ROLE questions answered */
    int masters;                  /* SENTINEL MASTER questions of query links answered */
    bool hold; /* the sentinels leave the query links' SENTINEL queries unanswered */
    /* what each sentinel's SENTINEL MASTER says of a failover it leads, or NULL */
    const char *fstate[MAX_SENTINELS];
    /* a sentinel with a view of its own (one that has not heard of a switch):
     * the master it names and the epoch, instead of named and epoch */
    bool own[MAX_SENTINELS];
    int own_named[MAX_SENTINELS], own_epoch[MAX_SENTINELS];
};

static int listen_any(int *port)
{
    struct sockaddr_in sa = {.sin_family = AF_INET};
    socklen_t len = sizeof(sa);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0 || listen(fd, 8) != 0 ||
        getsockname(fd, (struct sockaddr *)&sa, &len) != 0) {
        abort();
    }
    *port = ntohs(sa.sin_port);
    return fd;
}

static void say(int fd, const char *s)
{
    if (write(fd, s, strlen(s)) != (ssize_t)strlen(s)) {
        abort();
    }
}

static void say_bulk_array(int fd, int n, const char *const *items)
{
    char buf[1024];
    size_t k = (size_t)snprintf(buf, sizeof(buf), "*%d\r\n", n);
    for (int i = 0; i < n; i++) {
        k += (size_t)snprintf(buf + k, sizeof(buf) - k, "$%zu\r\n%s\r\n", strlen(items[i]),
                              items[i]);
    }
    say(fd, buf);
}

static bool arg_is(const uint8_t *p, const struct span *a, const char *s)
{
    return a->len == strlen(s) && strncasecmp((const char *)p + a->off, s, a->len) == 0;
}

/* One request of the sentinel client, answered as redis-sentinel would. */
static void sentinel_answer(struct script *sc, struct conn *c, const uint8_t *p,
                            const struct req_info *ri)
{
    const struct span *a = ri->args.v;
    char port[16], epoch[16];
    bool own = !c->master && sc->own[c->sentinel];
    snprintf(port, sizeof(port), "%d",
             sc->master_port[own ? sc->own_named[c->sentinel] : sc->named]);
    snprintf(epoch, sizeof(epoch), "%d", own ? sc->own_epoch[c->sentinel] : sc->epoch);
    if (arg_is(p, &a[0], "SUBSCRIBE")) {
        sc->masters -= c->masters; /* a subscription's own questions, before it */
        sc->sub_fd[c->sentinel] = c->fd;
        sc->sub_nchan[c->sentinel] = (int)ri->args.n - 1;
        for (uint32_t i = 1; i < ri->args.n; i++) {
            char msg[128];
            snprintf(msg, sizeof(msg), "*3\r\n$9\r\nsubscribe\r\n$%u\r\n%.*s\r\n:%u\r\n", a[i].len,
                     (int)a[i].len, (const char *)p + a[i].off, i);
            say(c->fd, msg);
        }
    } else if (arg_is(p, &a[0], "PING")) {
        say(c->fd, "*2\r\n$4\r\npong\r\n$0\r\n\r\n");
    } else if (arg_is(p, &a[1], "get-master-addr-by-name")) {
        const char *v[] = {"127.0.0.1", port};
        say_bulk_array(c->fd, 2, v);
    } else if (arg_is(p, &a[1], "MASTER")) {
        sc->masters++;
        c->masters++;
        const char *fstate = sc->fstate[c->sentinel];
        const char *v[] = {"name",           "g",   "ip",           "127.0.0.1",
                           "port",           port,  "config-epoch", epoch,
                           "failover-state", fstate};
        say_bulk_array(c->fd, fstate != NULL ? 10 : 8, v);
    } else if (arg_is(p, &a[1], "REPLICAS")) {
        say(c->fd, sc->with_replica ? "*1\r\n*8\r\n$2\r\nip\r\n$9\r\n127.0.0.1\r\n$4\r\nport\r\n"
                                      "$4\r\n7001\r\n$5\r\nflags\r\n$5\r\nslave\r\n"
                                      "$18\r\nmaster-link-status\r\n$2\r\nok\r\n"
                                    : "*0\r\n");
    } else {
        say(c->fd, "-ERR unknown\r\n");
    }
}

/* Answer what c has read, up to a SENTINEL query while they are held. */
static void conn_process(struct script *sc, struct conn *c)
{
    struct req_info ri;
    req_info_init(&ri);
    size_t pos = 0;
    while (redis_req_parse((const uint8_t *)c->in + pos, c->len - pos, &ri) == PARSE_OK) {
        const uint8_t *p = (const uint8_t *)c->in + pos;
        if (sc->hold && !c->master && arg_is(p, &ri.args.v[0], "SENTINEL") &&
            memmem(c->in, c->len, "SUBSCRIBE", 9) == NULL) {
            break;
        }
        if (c->master) {
            int i = c->port == sc->master_port[0] ? 0 : 1;
            if (arg_is(p, &ri.args.v[0], "ROLE")) {
                char msg[64];
                sc->roles++;
                snprintf(msg, sizeof(msg), "*3\r\n$%zu\r\n%s\r\n:0\r\n*0\r\n", strlen(sc->role[i]),
                         sc->role[i]);
                say(c->fd, msg);
            }
        } else {
            sentinel_answer(sc, c, p, &ri);
        }
        pos += ri.len;
    }
    memmove(c->in, c->in + pos, c->len - pos);
    c->len -= pos;
    req_info_free(&ri);
}

static void conn_serve(struct script *sc, struct conn *c)
{
    ssize_t n = read(c->fd, c->in + c->len, sizeof(c->in) - c->len);
    if (n <= 0) {
        close(c->fd);
        c->fd = -1;
        return;
    }
    c->len += (size_t)n;
    conn_process(sc, c);
}

static void script_accept(struct script *sc, int lfd, bool master, int port, int sentinel)
{
    int fd = accept(lfd, NULL, NULL);
    for (int i = 0; fd >= 0 && i < MAX_CONNS; i++) {
        if (sc->conns[i].fd < 0) {
            sc->conns[i] =
                (struct conn){.fd = fd, .master = master, .port = port, .sentinel = sentinel};
            return;
        }
    }
    abort();
}

/* Serve whatever is ready without blocking. */
static void script_serve(struct script *sc)
{
    enum { NL = MAX_SENTINELS + 2 };
    struct pollfd p[NL + MAX_CONNS];
    int n = 0;
    for (int i = 0; i < MAX_SENTINELS; i++) {
        p[n++] = (struct pollfd){i < sc->nsentinels ? sc->sentinel_lfd[i] : -1, POLLIN, 0};
    }
    p[n++] = (struct pollfd){sc->master_lfd[0], POLLIN, 0};
    p[n++] = (struct pollfd){sc->master_lfd[1], POLLIN, 0};
    for (int i = 0; i < MAX_CONNS; i++) {
        if (!sc->hold && sc->conns[i].fd >= 0 && sc->conns[i].len > 0) {
            conn_process(sc, &sc->conns[i]); /* queries held until now */
        }
    }
    for (int i = 0; i < MAX_CONNS; i++) {
        p[n++] = (struct pollfd){sc->conns[i].fd, POLLIN, 0};
    }
    if (poll(p, (nfds_t)n, 0) <= 0) {
        return;
    }
    for (int i = 0; i < sc->nsentinels; i++) {
        if (p[i].revents) {
            script_accept(sc, sc->sentinel_lfd[i], false, 0, i);
        }
    }
    for (int m = 0; m < 2; m++) {
        if (p[MAX_SENTINELS + m].revents) {
            script_accept(sc, sc->master_lfd[m], true, sc->master_port[m], 0);
        }
    }
    for (int i = 0; i < MAX_CONNS; i++) {
        if (p[NL + i].revents && sc->conns[i].fd >= 0) {
            conn_serve(sc, &sc->conns[i]);
        }
    }
}

/* ---- the rig ---- */

struct rig {
    struct script sc;
    struct record rec;
    struct conf *conf;
    struct ev_loop *loop;
    struct sentinel *sn;
};

/* nsentinels scripted sentinels, asked every heartbeat_ms; extra: more pool
 * keys ("" for none). */
static void rig_init_hb(struct rig *r, const char *read_from, int nsentinels, const char *extra,
                        int heartbeat_ms)
{
    memset(r, 0, sizeof(*r));
    r->sc.nsentinels = nsentinels;
    char list[256] = "";
    for (int i = 0; i < nsentinels; i++) {
        r->sc.sentinel_lfd[i] = listen_any(&r->sc.sentinel_port[i]);
        r->sc.sub_fd[i] = -1;
        size_t k = strlen(list);
        snprintf(list + k, sizeof(list) - k, "   - 127.0.0.1:%d\n", r->sc.sentinel_port[i]);
    }
    r->sc.master_lfd[0] = listen_any(&r->sc.master_port[0]);
    r->sc.master_lfd[1] = listen_any(&r->sc.master_port[1]);
    r->sc.role[0] = r->sc.role[1] = "master";
    r->sc.epoch = 1;
    for (int i = 0; i < MAX_CONNS; i++) {
        r->sc.conns[i].fd = -1;
    }
    char yml[1024];
    snprintf(yml, sizeof(yml),
             "alpha:\n  listen: 127.0.0.1:22121\n  redis: true\n  sentinel_heartbeat: %d\n"
             "  read_from: %s\n%s  groups:\n   - g\n  sentinels:\n%s",
             heartbeat_ms, read_from, extra, list);
    struct conf_errors errs;
    conf_errors_init(&errs);
    r->conf = conf_load_buf_flags("t.yml", yml, strlen(yml), CONF_F_NUMERIC_ONLY, &errs);
    for (uint32_t i = 0; i < errs.n; i++) {
        fprintf(stderr, "%s\n", errs.msgs[i]);
    }
    conf_errors_free(&errs);
    r->loop = ev_loop_create();
    if (r->conf == NULL || r->loop == NULL) {
        abort();
    }
    r->sn = sentinel_create(r->loop, &r->conf->pools[0], (struct group_sink){&rec_ops, &r->rec});
}

static void rig_init_n(struct rig *r, const char *read_from, int nsentinels, const char *extra)
{
    rig_init_hb(r, read_from, nsentinels, extra, 50);
}

static void rig_init(struct rig *r, const char *read_from)
{
    rig_init_n(r, read_from, 1, "");
}

static void rig_free(struct rig *r)
{
    sentinel_destroy(r->sn);
    ev_loop_destroy(r->loop);
    conf_unref(r->conf);
    for (int i = 0; i < r->sc.nsentinels; i++) {
        close(r->sc.sentinel_lfd[i]);
    }
    close(r->sc.master_lfd[0]);
    close(r->sc.master_lfd[1]);
    for (int i = 0; i < MAX_CONNS; i++) {
        if (r->sc.conns[i].fd >= 0) {
            close(r->sc.conns[i].fd);
        }
    }
}

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* Turn the loop and the script until cond holds, or 3 s pass. */
#define RUN_UNTIL(r, cond)                                                                         \
    do {                                                                                           \
        uint64_t until_ = now_ms() + 3000;                                                         \
        while (!(cond) && now_ms() < until_) {                                                     \
            ev_loop_poll((r)->loop, 5);                                                            \
            script_serve(&(r)->sc);                                                                \
        }                                                                                          \
    } while (0)

/* Turn both for ms, whatever happens (to see that something does not). */
static void run_for(struct rig *r, uint64_t ms)
{
    uint64_t until = now_ms() + ms;
    while (now_ms() < until) {
        ev_loop_poll(r->loop, 5);
        script_serve(&r->sc);
    }
}

static int master_port_of(const struct record *rec)
{
    return ntohs(((const struct sockaddr_in *)&rec->master)->sin_port);
}

static void test_discovery_and_epochs(void)
{
    struct rig r;
    rig_init(&r, "master");
    RUN_UNTIL(&r, r.rec.found == 1);
    CHECK_EQ_INT(r.rec.found, 1);
    CHECK_EQ_INT(master_port_of(&r.rec), r.sc.master_port[0]);
    /* asked again every heartbeat: the same answer changes nothing */
    run_for(&r, 200);
    CHECK_EQ_INT(r.rec.found, 1);
    CHECK_EQ_INT(r.rec.unknown, 0); /* the first look found one */
    CHECK_EQ_INT(r.rec.listed, 0);  /* read_from master: replicas are not asked for */
    /* a failover to the other master at a newer epoch */
    r.sc.named = 1;
    r.sc.epoch = 2;
    RUN_UNTIL(&r, r.rec.found == 2);
    CHECK_EQ_INT(master_port_of(&r.rec), r.sc.master_port[1]);
    /* a lagging sentinel names the old master at the old epoch: not believed */
    r.sc.named = 0;
    r.sc.epoch = 1;
    run_for(&r, 300);
    CHECK_EQ_INT(r.rec.found, 2);
    CHECK_EQ_INT(master_port_of(&r.rec), r.sc.master_port[1]);
    rig_free(&r);
}

static void test_switch_message_and_role(void)
{
    struct rig r;
    rig_init(&r, "replica");
    RUN_UNTIL(&r, r.rec.found == 1 && r.sc.sub_fd[0] >= 0 && r.rec.listed > 0);
    CHECK_EQ_INT(r.rec.found, 1);
    CHECK(r.rec.listed > 0 && r.rec.nreplicas == 0);
    /* a +switch-master to a server that says it is a slave: never taken */
    r.sc.role[1] = "slave";
    char payload[96], msg[256];
    snprintf(payload, sizeof(payload), "g 127.0.0.1 %d 127.0.0.1 %d", r.sc.master_port[0],
             r.sc.master_port[1]);
    snprintf(msg, sizeof(msg), "*3\r\n$7\r\nmessage\r\n$14\r\n+switch-master\r\n$%zu\r\n%s\r\n",
             strlen(payload), payload);
    say(r.sc.sub_fd[0], msg);
    run_for(&r, 300);
    CHECK_EQ_INT(r.rec.found, 1);
    CHECK_EQ_INT(master_port_of(&r.rec), r.sc.master_port[0]);
    /* once it says master, the same message moves the group */
    r.sc.role[1] = "master";
    say(r.sc.sub_fd[0], msg);
    RUN_UNTIL(&r, r.rec.found == 2);
    CHECK_EQ_INT(master_port_of(&r.rec), r.sc.master_port[1]);
    /* replicas listed, then one reported down */
    r.sc.with_replica = true;
    RUN_UNTIL(&r, r.rec.nreplicas == 1);
    CHECK_EQ_INT(r.rec.nreplicas, 1);
    const char *sdown = "slave 127.0.0.1:7001 127.0.0.1 7001 @ g 127.0.0.1 6379";
    snprintf(msg, sizeof(msg), "*3\r\n$7\r\nmessage\r\n$6\r\n+sdown\r\n$%zu\r\n%s\r\n",
             strlen(sdown), sdown);
    say(r.sc.sub_fd[0], msg);
    RUN_UNTIL(&r, r.rec.down == 1);
    CHECK_EQ_INT(r.rec.down, 1);
    rig_free(&r);
}

/* Sentinel i publishes payload on channel chan. */
static void publish(struct rig *r, int i, const char *chan, const char *payload)
{
    char msg[512];
    snprintf(msg, sizeof(msg), "*3\r\n$7\r\nmessage\r\n$%zu\r\n%s\r\n$%zu\r\n%s\r\n", strlen(chan),
             chan, strlen(payload), payload);
    say(r->sc.sub_fd[i], msg);
}

static bool all_subscribed(const struct rig *r)
{
    for (int i = 0; i < r->sc.nsentinels; i++) {
        if (r->sc.sub_fd[i] < 0) {
            return false;
        }
    }
    return true;
}

/* The failover of the master in use, master 0, as its leader (sentinel 2)
 * and the others publish it. */
static void test_every_sentinel(void)
{
    struct rig r;
    char replica[128], master[96], other[96], sw[128];
    rig_init_n(&r, "master", 3, "");
    RUN_UNTIL(&r, r.rec.found == 1 && all_subscribed(&r));
    CHECK_EQ_INT(r.rec.found, 1);
    CHECK(all_subscribed(&r));
    for (int i = 0; i < 3; i++) {
        CHECK_EQ_INT(r.sc.sub_nchan[i], 11); /* +switch-master, +sdown and a failover's */
    }
    int m0 = r.sc.master_port[0], m1 = r.sc.master_port[1];
    snprintf(replica, sizeof(replica), "slave 127.0.0.1:%d 127.0.0.1 %d @ g 127.0.0.1 %d", m1, m1,
             m0);
    snprintf(master, sizeof(master), "master g 127.0.0.1 %d", m0);
    snprintf(other, sizeof(other), "master g 127.0.0.1 %d", m1);
    /* a failover of a master not in use (a view we do not share): nothing */
    publish(&r, 1, "+odown", other);
    run_for(&r, 100);
    CHECK_EQ_INT(r.rec.master_down, 0);
    /* the leader's steps, each a begin: the pool holds once */
    publish(&r, 2, "+selected-slave", replica);
    publish(&r, 2, "+failover-state-send-slaveof-noone", replica);
    RUN_UNTIL(&r, r.rec.promoting == 2);
    CHECK_EQ_INT(r.rec.promoting, 2);
    /* another sentinel's attempt that lost the election says nothing */
    publish(&r, 0, "-failover-abort-not-elected", master);
    run_for(&r, 100);
    CHECK_EQ_INT(r.rec.ends, 0);
    /* the leader's abort ends it */
    publish(&r, 2, "-failover-abort-slave-timeout", master);
    RUN_UNTIL(&r, r.rec.ends == 1);
    CHECK_EQ_INT(r.rec.ends, 1);
    /* a leader we did not hear (a reload came between): only an abort that
     * comes after a promotion counts */
    publish(&r, 1, "-failover-abort-no-good-slave", master);
    run_for(&r, 100);
    CHECK_EQ_INT(r.rec.ends, 1);
    publish(&r, 1, "-failover-abort-slave-timeout", master);
    RUN_UNTIL(&r, r.rec.ends == 2);
    CHECK_EQ_INT(r.rec.ends, 2);
    /* one sentinel sees the master down: not enough; a second (a majority of
     * three): down; one that sees it again takes its word back */
    publish(&r, 0, "+sdown", master);
    run_for(&r, 100);
    CHECK_EQ_INT(r.rec.master_down, 0);
    publish(&r, 0, "-sdown", master);
    publish(&r, 1, "+sdown", master);
    run_for(&r, 100);
    CHECK_EQ_INT(r.rec.master_down, 0);
    publish(&r, 2, "+sdown", master);
    RUN_UNTIL(&r, r.rec.master_down == 1);
    CHECK_EQ_INT(r.rec.master_down, 1);
    publish(&r, 0, "+odown", master);
    RUN_UNTIL(&r, r.rec.master_down == 2);
    CHECK_EQ_INT(r.rec.master_down, 2);
    CHECK_EQ_INT(r.rec.down_ends, 0);
    /* they take it back: -odown leaves a majority of +sdown (still down), then
     * a -sdown leaves none: the hold they began ends, once */
    publish(&r, 0, "-odown", master);
    run_for(&r, 100);
    CHECK_EQ_INT(r.rec.down_ends, 0);
    publish(&r, 2, "-sdown", master);
    RUN_UNTIL(&r, r.rec.down_ends == 1);
    publish(&r, 2, "-sdown", master);
    publish(&r, 1, "-odown", master); /* it never said +odown */
    run_for(&r, 100);
    CHECK_EQ_INT(r.rec.down_ends, 1);
    CHECK_EQ_INT(r.rec.master_down, 2);
    /* every sentinel announces the switch (and names the new master when
     * asked): the new master is asked once */
    int roles = r.sc.roles;
    r.sc.named = 1;
    r.sc.epoch = 2;
    snprintf(sw, sizeof(sw), "g 127.0.0.1 %d 127.0.0.1 %d", m0, m1);
    for (int i = 0; i < 3; i++) {
        publish(&r, i, "+switch-master", sw);
    }
    RUN_UNTIL(&r, r.rec.found == 2);
    run_for(&r, 100);
    CHECK_EQ_INT(r.rec.found, 2);
    CHECK_EQ_INT(master_port_of(&r.rec), m1);
    CHECK_EQ_INT(r.sc.roles - roles, 1);
    /* news of the old master is old news now */
    publish(&r, 2, "+selected-slave", replica);
    publish(&r, 1, "+odown", master);
    run_for(&r, 100);
    CHECK_EQ_INT(r.rec.promoting, 2);
    CHECK_EQ_INT(r.rec.master_down, 2);
    rig_free(&r);

    /* without holding, a subscription asks for nothing a failover says */
    rig_init_n(&r, "master", 2, "  failover_hold: 0\n");
    RUN_UNTIL(&r, r.rec.found == 1 && all_subscribed(&r));
    CHECK_EQ_INT(r.sc.sub_nchan[0], 1);
    CHECK_EQ_INT(r.sc.sub_nchan[1], 1);
    rig_free(&r);
}

/* One sentinel; master 0 found and the subscription up. sw: a +switch-master
 * from master 0 to master 1. */
static void rig_ready(struct rig *r, char *sw, size_t cap)
{
    rig_init(r, "master");
    RUN_UNTIL(r, r->rec.found == 1 && r->sc.sub_fd[0] >= 0);
    CHECK_EQ_INT(r->rec.found, 1);
    snprintf(sw, cap, "g 127.0.0.1 %d 127.0.0.1 %d", r->sc.master_port[0], r->sc.master_port[1]);
}

/* A +switch-master carries no epoch; a sentinel that has not heard of it yet
 * still names the old master at the old epoch, and the old master still says
 * master for a while (before the sentinels demote it): that view must not take
 * the group back, or writes would go to a master about to be demoted. A true
 * failover back comes with a newer epoch. */
static void test_lagging_sentinel_after_switch(void)
{
    struct rig r;
    char sw[128];
    rig_ready(&r, sw, sizeof(sw));
    int m0 = r.sc.master_port[0], m1 = r.sc.master_port[1];
    publish(&r, 0, "+switch-master", sw); /* the query still says m0 at epoch 1 */
    RUN_UNTIL(&r, r.rec.found == 2);
    CHECK_EQ_INT(master_port_of(&r.rec), m1);
    run_for(&r, 300); /* several heartbeats of the lagging view */
    CHECK_EQ_INT(r.rec.found, 2);
    CHECK_EQ_INT(master_port_of(&r.rec), m1);
    /* the sentinels catch up, then fail back at a newer epoch; catching up
     * is the switch's own epoch, not a failover that ended on m1 */
    r.sc.named = 1;
    r.sc.epoch = 2;
    run_for(&r, 200);
    CHECK_EQ_INT(r.rec.found, 2);
    CHECK_EQ_INT(r.rec.ends, 0);
    r.sc.named = 0;
    r.sc.epoch = 3;
    RUN_UNTIL(&r, r.rec.found == 3);
    CHECK_EQ_INT(master_port_of(&r.rec), m0);
    rig_free(&r);
}

/* A switch heard as a message carries no epoch: the sentinel is asked for it
 * at once, not a heartbeat later (until then a failover that comes back to
 * the new master could not be told from the switch itself). The heartbeat is
 * 10 s here: only the switch can make the client ask within the 3 s waited. */
static void test_switch_epoch_asked_at_once(void)
{
    struct rig r;
    char sw[128];
    rig_init_hb(&r, "master", 1, "", 10000);
    RUN_UNTIL(&r, r.rec.found == 1 && r.sc.sub_fd[0] >= 0 && r.sc.masters == 1);
    CHECK_EQ_INT(r.rec.found, 1);
    snprintf(sw, sizeof(sw), "g 127.0.0.1 %d 127.0.0.1 %d", r.sc.master_port[0],
             r.sc.master_port[1]);
    r.sc.named = 1;
    r.sc.epoch = 2;
    publish(&r, 0, "+switch-master", sw);
    RUN_UNTIL(&r, r.rec.found == 2 && r.sc.masters == 2);
    CHECK_EQ_INT(r.rec.found, 2);
    CHECK_EQ_INT(r.sc.masters, 2);
    run_for(&r, 100); /* asked once: the answer names m1 at epoch 2 */
    CHECK_EQ_INT(r.sc.masters, 2);
    CHECK_EQ_INT(r.rec.ends, 0);
    rig_free(&r);
}

/* A switch while a round of queries is out, whose answers may be older than
 * the switch: one more round follows that one (the heartbeat is 10 s). */
static void test_switch_while_a_round_is_out(void)
{
    struct rig r;
    char sw[128];
    rig_init_hb(&r, "master", 1, "", 10000);
    r.sc.hold = true; /* the first round stays out */
    RUN_UNTIL(&r, r.sc.sub_fd[0] >= 0);
    CHECK(r.sc.sub_fd[0] >= 0);
    snprintf(sw, sizeof(sw), "g 127.0.0.1 %d 127.0.0.1 %d", r.sc.master_port[0],
             r.sc.master_port[1]);
    r.sc.named = 1;
    r.sc.epoch = 2;
    publish(&r, 0, "+switch-master", sw);
    RUN_UNTIL(&r, r.rec.found == 1);
    CHECK_EQ_INT(r.rec.found, 1);
    CHECK_EQ_INT(master_port_of(&r.rec), r.sc.master_port[1]);
    CHECK_EQ_INT(r.sc.masters, 0);
    r.sc.hold = false;
    RUN_UNTIL(&r, r.sc.masters == 2);
    run_for(&r, 100);
    CHECK_EQ_INT(r.sc.masters, 2);
    CHECK_EQ_INT(r.rec.found, 1);
    CHECK_EQ_INT(r.rec.ends, 0);
    rig_free(&r);
}

/* A failover of master 0 whose promoted replica (master 1) is turned back
 * into a replica before the switch takes (seen with real sentinels: one that
 * had not heard of the failover yet converts the new master back); the
 * sentinels then promote master 0 again, at a newer epoch. That ends the
 * failover: what waited for it goes to master 0, not into an error when
 * failover_hold runs out. */
static void test_failover_undone(void)
{
    struct rig r;
    char replica[128], sw[128];
    rig_ready(&r, sw, sizeof(sw));
    int m0 = r.sc.master_port[0], m1 = r.sc.master_port[1];
    snprintf(replica, sizeof(replica), "slave 127.0.0.1:%d 127.0.0.1 %d @ g 127.0.0.1 %d", m1, m1,
             m0);
    publish(&r, 0, "+selected-slave", replica);
    RUN_UNTIL(&r, r.rec.promoting == 1);
    CHECK_EQ_INT(r.rec.promoting, 1);
    run_for(&r, 200); /* the query names m0 at epoch 1 all along: no end */
    CHECK_EQ_INT(r.rec.ends, 0);
    /* the switch to m1, which is a replica again by the time it is asked */
    r.sc.role[1] = "slave";
    r.sc.named = 1;
    r.sc.epoch = 2;
    publish(&r, 0, "+switch-master", sw);
    int roles = r.sc.roles;
    RUN_UNTIL(&r, r.sc.roles >= roles + 2);
    CHECK_EQ_INT(r.rec.found, 1);
    CHECK_EQ_INT(r.rec.ends, 0);
    /* m0 promoted again at epoch 3: the failover is over, on m0 */
    r.sc.named = 0;
    r.sc.epoch = 3;
    RUN_UNTIL(&r, r.rec.ends == 1);
    CHECK_EQ_INT(r.rec.ends, 1);
    CHECK(r.rec.end_why != NULL && strstr(r.rec.end_why, "same master") != NULL);
    CHECK_EQ_INT(r.rec.found, 1);
    CHECK_EQ_INT(master_port_of(&r.rec), m0);
    run_for(&r, 200); /* said once: epoch 3 is the one in use now */
    CHECK_EQ_INT(r.rec.ends, 1);
    rig_free(&r);
}

/* The first look for a master ends without one: the server the sentinel
 * names says it is a replica (the probe's verdict ends it), or the only
 * sentinel cannot be reached. Said once; a master found later is still found. */
static void test_first_look_ends(void)
{
    struct rig r;
    rig_init(&r, "master");
    r.sc.role[0] = "slave";
    RUN_UNTIL(&r, r.rec.unknown == 1);
    CHECK_EQ_INT(r.rec.unknown, 1);
    CHECK_EQ_INT(r.rec.found, 0);
    CHECK(r.sc.roles >= 1); /* ended by the probe, not before it */
    run_for(&r, 200);       /* asked again, a slave again: not said twice */
    CHECK_EQ_INT(r.rec.unknown, 1);
    r.sc.role[0] = "master";
    RUN_UNTIL(&r, r.rec.found == 1);
    CHECK_EQ_INT(r.rec.found, 1);
    CHECK_EQ_INT(r.rec.unknown, 1);
    rig_free(&r);

    rig_init(&r, "master");
    close(r.sc.sentinel_lfd[0]); /* its queued connections are reset */
    r.sc.sentinel_lfd[0] = -1;
    RUN_UNTIL(&r, r.rec.unknown == 1);
    CHECK_EQ_INT(r.rec.unknown, 1);
    CHECK_EQ_INT(r.rec.found, 0);
    rig_free(&r);
}

/* A proxy that starts while sentinel 1 of 2 leads a failover of master 0
 * (past the choice of a replica, so its first step was published before):
 * the other sentinel names master 0, which says master. It is taken only once
 * every subscription said what its sentinel leads, and taken as being failed
 * over: the writes wait for the switch. A stage before the choice (the
 * election) is heard as it comes, and a leader's abort forgets it. */
static void test_first_look_during_a_failover(void)
{
    struct rig r;
    rig_init_n(&r, "master", 2, "");
    r.sc.fstate[0] = "wait_start";
    r.sc.fstate[1] = "wait_promotion";
    RUN_UNTIL(&r, r.rec.found == 1);
    CHECK_EQ_INT(r.rec.found, 1);
    CHECK_EQ_INT(r.rec.leaving, 1);
    CHECK_EQ_INT(master_port_of(&r.rec), r.sc.master_port[0]);
    CHECK(all_subscribed(&r)); /* found after both were asked */
    /* its leader is known: its abort ends the hold */
    char master[96];
    snprintf(master, sizeof(master), "master g 127.0.0.1 %d", r.sc.master_port[0]);
    publish(&r, 0, "-failover-abort-no-good-slave", master);
    run_for(&r, 100);
    CHECK_EQ_INT(r.rec.ends, 0);
    publish(&r, 1, "-failover-abort-no-good-slave", master);
    RUN_UNTIL(&r, r.rec.ends == 1);
    CHECK_EQ_INT(r.rec.ends, 1);
    rig_free(&r);

    /* only the election: nothing is missed yet */
    rig_init_n(&r, "master", 2, "");
    r.sc.fstate[1] = "wait_start";
    RUN_UNTIL(&r, r.rec.found == 1);
    CHECK_EQ_INT(r.rec.leaving, 0);
    rig_free(&r);

    /* a sentinel that never answers holds the first look up for a heartbeat's
     * wait (1 s at least), then the master is taken */
    rig_init_n(&r, "master", 2, "");
    int silent = r.sc.sentinel_lfd[1]; /* connections wait in its backlog */
    r.sc.sentinel_lfd[1] = -1;
    uint64_t t0 = now_ms();
    RUN_UNTIL(&r, r.rec.found == 1);
    CHECK_EQ_INT(r.rec.found, 1);
    CHECK(now_ms() - t0 >= 900);
    CHECK_EQ_INT(r.rec.leaving, 0);
    rig_free(&r);
    close(silent);

    /* the query link's sentinel (0) has not heard of the switch to master 1
     * at epoch 2, and master 0 still says master: the first look takes the
     * newest view, which another sentinel's subscription gave */
    rig_init_n(&r, "master", 2, "");
    r.sc.own[0] = true;
    r.sc.own_named[0] = 0;
    r.sc.own_epoch[0] = 1;
    r.sc.named = 1;
    r.sc.epoch = 2;
    RUN_UNTIL(&r, r.rec.found == 1);
    run_for(&r, 200); /* the lagging view, asked every heartbeat, is older */
    CHECK_EQ_INT(r.rec.found, 1);
    CHECK_EQ_INT(master_port_of(&r.rec), r.sc.master_port[1]);
    rig_free(&r);

    /* without holding, no question: the master is taken as before */
    rig_init_n(&r, "master", 2, "  failover_hold: 0\n");
    r.sc.fstate[1] = "wait_promotion";
    RUN_UNTIL(&r, r.rec.found == 1);
    CHECK_EQ_INT(r.rec.leaving, 0);
    CHECK_EQ_INT(r.sc.masters, 1);
    rig_free(&r);
}

int main(void)
{
    test_discovery_and_epochs();
    test_first_look_ends();
    test_failover_undone();
    test_switch_message_and_role();
    test_every_sentinel();
    test_lagging_sentinel_after_switch();
    test_switch_epoch_asked_at_once();
    test_switch_while_a_round_is_out();
    test_first_look_during_a_failover();
    UNIT_DONE("test_sentinel_client");
}
