/*
 * test_sentinel: the pure side of the sentinel client (SPEC 9): the requests
 * it sends, and the replies and pub/sub messages it reads, framed by the RESP
 * parser as the client frames them: addresses, exact group names, IPv6,
 * malformed input.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <string.h>

#include "proto/redis.h"
#include "sentinel/sentinel_msg.h"
#include "unit.h"

static struct rsp_info ri;

/* Frame s as one reply, the way the client does before reading it. */
static const uint8_t *framed(const char *s)
{
    int rc = redis_rsp_parse((const uint8_t *)s, strlen(s), 0, &ri);
    CHECK_EQ_INT(rc, PARSE_OK);
    CHECK_EQ_INT(ri.len, strlen(s));
    return (const uint8_t *)s;
}

static int master(const char *s, struct sentinel_master *m)
{
    memset(m, 0, sizeof(*m));
    return sentinel_msg_parse_master(framed(s), &ri, m);
}

static int sw(const char *s, struct sentinel_switch *out)
{
    memset(out, 0, sizeof(*out));
    return sentinel_msg_parse_switch(framed(s), &ri, out);
}

/* "*3 $7 message $14 +switch-master $<payload>" */
static const char *message(char *buf, size_t cap, const char *payload)
{
    snprintf(buf, cap, "*3\r\n$7\r\nmessage\r\n$14\r\n+switch-master\r\n$%zu\r\n%s\r\n",
             strlen(payload), payload);
    return buf;
}

static void test_requests(void)
{
    struct buf b;
    buf_init(&b);
    CHECK_EQ_INT(sentinel_msg_query(&b, "cache-1"), 0);
    CHECK_MEM(b.data, b.len,
              "*3\r\n$8\r\nSENTINEL\r\n$23\r\nget-master-addr-by-name\r\n$7\r\ncache-1\r\n");
    buf_reset(&b);
    CHECK_EQ_INT(sentinel_msg_subscribe(&b, 0), 0);
    CHECK_MEM(b.data, b.len, "*2\r\n$9\r\nSUBSCRIBE\r\n$14\r\n+switch-master\r\n");
    buf_reset(&b);
    CHECK_EQ_INT(sentinel_msg_subscribe(&b, SENTINEL_SUB_REPLICAS), 0);
    CHECK_MEM(b.data, b.len, "*3\r\n$9\r\nSUBSCRIBE\r\n$14\r\n+switch-master\r\n$6\r\n+sdown\r\n");
    buf_reset(&b);
    /* holding needs the steps of a failover too (and +sdown once, whatever asks for it) */
    CHECK_EQ_INT(sentinel_msg_subscribe(&b, SENTINEL_SUB_REPLICAS | SENTINEL_SUB_FAILOVER), 0);
    CHECK_MEM(b.data, b.len,
              "*12\r\n$9\r\nSUBSCRIBE\r\n$14\r\n+switch-master\r\n$6\r\n+sdown\r\n"
              "$6\r\n-sdown\r\n$6\r\n+odown\r\n$6\r\n-odown\r\n$15\r\n+selected-slave\r\n"
              "$34\r\n+failover-state-send-slaveof-noone\r\n$15\r\n+promoted-slave\r\n"
              "$27\r\n-failover-abort-not-elected\r\n$29\r\n-failover-abort-no-good-slave\r\n"
              "$29\r\n-failover-abort-slave-timeout\r\n");
    buf_reset(&b);
    CHECK_EQ_INT(sentinel_msg_query_replicas(&b, "g1", false), 0);
    CHECK_EQ_INT(sentinel_msg_query_replicas(&b, "g1", true), 0);
    CHECK_MEM(b.data, b.len,
              "*3\r\n$8\r\nSENTINEL\r\n$8\r\nREPLICAS\r\n$2\r\ng1\r\n"
              "*3\r\n$8\r\nSENTINEL\r\n$6\r\nSLAVES\r\n$2\r\ng1\r\n");
    buf_reset(&b);
    CHECK_EQ_INT(sentinel_msg_auth(&b, "pw d"), 0);
    CHECK_MEM(b.data, b.len, "*2\r\n$4\r\nAUTH\r\n$4\r\npw d\r\n");
    buf_reset(&b);
    sentinel_msg_role(&b);
    sentinel_msg_ping(&b);
    CHECK_MEM(b.data, b.len, "*1\r\n$4\r\nROLE\r\n*1\r\n$4\r\nPING\r\n");
    buf_free(&b);
}

static void test_master_addr(void)
{
    struct sentinel_master m;
    CHECK_EQ_INT(master("*2\r\n$9\r\n127.0.0.1\r\n$4\r\n6379\r\n", &m), SENTINEL_MSG_OK);
    CHECK_MEM(m.ip, m.ip_len, "127.0.0.1");
    CHECK_EQ_INT(m.port, 6379);
    CHECK_EQ_INT(master("*2\r\n$3\r\n::1\r\n$5\r\n26379\r\n", &m), SENTINEL_MSG_OK);
    CHECK_MEM(m.ip, m.ip_len, "::1");
    CHECK_EQ_INT(m.port, 26379);
    /* a group the sentinel does not monitor: null array (redis 7) or null bulk */
    CHECK_EQ_INT(master("*-1\r\n", &m), SENTINEL_MSG_NONE);
    CHECK_EQ_INT(master("$-1\r\n", &m), SENTINEL_MSG_NONE);
    /* errors and wrong shapes */
    CHECK_EQ_INT(master("-NOAUTH Authentication required.\r\n", &m), SENTINEL_MSG_BAD);
    CHECK_EQ_INT(master("*0\r\n", &m), SENTINEL_MSG_BAD);
    CHECK_EQ_INT(master("*1\r\n$9\r\n127.0.0.1\r\n", &m), SENTINEL_MSG_BAD);
    CHECK_EQ_INT(master("*3\r\n$1\r\na\r\n$1\r\n1\r\n$1\r\n2\r\n", &m), SENTINEL_MSG_BAD);
    CHECK_EQ_INT(master("*2\r\n$9\r\n127.0.0.1\r\n:6379\r\n", &m), SENTINEL_MSG_BAD);
    CHECK_EQ_INT(master("*2\r\n$9\r\n127.0.0.1\r\n$5\r\n65536\r\n", &m), SENTINEL_MSG_BAD);
    CHECK_EQ_INT(master("*2\r\n$9\r\n127.0.0.1\r\n$1\r\n0\r\n", &m), SENTINEL_MSG_BAD);
    CHECK_EQ_INT(master("*2\r\n$9\r\n127.0.0.1\r\n$2\r\n-1\r\n", &m), SENTINEL_MSG_BAD);
    CHECK_EQ_INT(master("*2\r\n$0\r\n\r\n$4\r\n6379\r\n", &m), SENTINEL_MSG_BAD);
    CHECK_EQ_INT(master("*2\r\n$4\r\na b \r\n$4\r\n6379\r\n", &m), SENTINEL_MSG_BAD);
    CHECK_EQ_INT(master("*2\r\n$-1\r\n$4\r\n6379\r\n", &m), SENTINEL_MSG_BAD);
    CHECK_EQ_INT(master("+OK\r\n", &m), SENTINEL_MSG_BAD);
    CHECK_EQ_INT(master(":1\r\n", &m), SENTINEL_MSG_BAD);
}

static void test_switch(void)
{
    char buf[512];
    struct sentinel_switch s;
    CHECK_EQ_INT(sw(message(buf, sizeof(buf), "cache 10.0.0.1 6379 10.0.0.2 6380"), &s),
                 SENTINEL_MSG_OK);
    CHECK_MEM(s.group, s.group_len, "cache");
    CHECK_MEM(s.to.ip, s.to.ip_len, "10.0.0.2");
    CHECK_EQ_INT(s.to.port, 6380);
    /* IPv6 on both sides */
    CHECK_EQ_INT(sw(message(buf, sizeof(buf), "g ::1 7000 fe80::1:2 7001"), &s), SENTINEL_MSG_OK);
    CHECK_MEM(s.to.ip, s.to.ip_len, "fe80::1:2");
    CHECK_EQ_INT(s.to.port, 7001);
    /* the pattern form of PSUBSCRIBE */
    const char *pm = "*4\r\n$8\r\npmessage\r\n$1\r\n*\r\n$14\r\n+switch-master\r\n"
                     "$26\r\ng2 1.1.1.1 1 2.2.2.2 65535\r\n";
    CHECK_EQ_INT(sw(pm, &s), SENTINEL_MSG_OK);
    CHECK_MEM(s.group, s.group_len, "g2");
    CHECK_EQ_INT(s.to.port, 65535);
    /* nothing to apply: confirmations, pong, other channels */
    CHECK_EQ_INT(sw("*3\r\n$9\r\nsubscribe\r\n$14\r\n+switch-master\r\n:1\r\n", &s),
                 SENTINEL_MSG_NONE);
    CHECK_EQ_INT(sw("*2\r\n$4\r\npong\r\n$0\r\n\r\n", &s), SENTINEL_MSG_NONE);
    CHECK_EQ_INT(sw("*3\r\n$7\r\nmessage\r\n$6\r\n+sdown\r\n$3\r\nabc\r\n", &s), SENTINEL_MSG_NONE);
    CHECK_EQ_INT(sw("*3\r\n$7\r\nmessage\r\n$15\r\n+switch-master2\r\n$3\r\nabc\r\n", &s),
                 SENTINEL_MSG_NONE);
    /* malformed payloads: too few or too many fields, empty fields, bad ports */
    static const char *bad[] = {
        "cache 10.0.0.1 6379 10.0.0.2",
        "cache 10.0.0.1 6379 10.0.0.2 6380 x",
        "cache  10.0.0.1 6379 10.0.0.2 6380",
        "cache 10.0.0.1 6379 10.0.0.2 6380 ",
        " cache 10.0.0.1 6379 10.0.0.2 6380",
        "cache 10.0.0.1 6379 10.0.0.2 0",
        "cache 10.0.0.1 6379 10.0.0.2 99999",
        "cache 10.0.0.1 x 10.0.0.2 6380",
        "cache 10.0.0.1 6379 10.0.0.2 63a0",
        "",
        "cache",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        int rc = sw(message(buf, sizeof(buf), bad[i]), &s);
        if (rc != SENTINEL_MSG_BAD) {
            fprintf(stderr, "payload accepted: \"%s\"\n", bad[i]);
        }
        CHECK_EQ_INT(rc, SENTINEL_MSG_BAD);
    }
    CHECK_EQ_INT(sw("-ERR unknown command\r\n", &s), SENTINEL_MSG_BAD);
    CHECK_EQ_INT(sw("+OK\r\n", &s), SENTINEL_MSG_BAD);
    CHECK_EQ_INT(sw("*3\r\n:1\r\n:2\r\n:3\r\n", &s), SENTINEL_MSG_BAD);
    CHECK_EQ_INT(sw("*3\r\n$7\r\nmessage\r\n$14\r\n+switch-master\r\n:5\r\n", &s),
                 SENTINEL_MSG_BAD);
}

static int epoch(const char *s, uint64_t *e)
{
    *e = 12345;
    return sentinel_msg_parse_epoch(framed(s), &ri, e);
}

static void test_epoch(void)
{
    uint64_t e;
    CHECK_EQ_INT(epoch("*6\r\n$4\r\nname\r\n$3\r\ngrp\r\n$12\r\nconfig-epoch\r\n$2\r\n17\r\n"
                       "$5\r\nflags\r\n$6\r\nmaster\r\n",
                       &e),
                 SENTINEL_MSG_OK);
    CHECK_EQ_INT(e, 17);
    CHECK_EQ_INT(epoch("*2\r\n$12\r\nconfig-epoch\r\n$1\r\n0\r\n", &e), SENTINEL_MSG_OK);
    CHECK_EQ_INT(e, 0);
    /* an unknown group: an error reply */
    CHECK_EQ_INT(epoch("-ERR No such master with that name\r\n", &e), SENTINEL_MSG_NONE);
    /* no field, odd arrays, bad numbers, a key that only starts like it */
    CHECK_EQ_INT(epoch("*2\r\n$4\r\nname\r\n$3\r\ngrp\r\n", &e), SENTINEL_MSG_BAD);
    CHECK_EQ_INT(epoch("*1\r\n$12\r\nconfig-epoch\r\n", &e), SENTINEL_MSG_BAD);
    CHECK_EQ_INT(epoch("*2\r\n$12\r\nconfig-epoch\r\n$2\r\n-1\r\n", &e), SENTINEL_MSG_BAD);
    CHECK_EQ_INT(epoch("*2\r\n$12\r\nconfig-epoch\r\n$0\r\n\r\n", &e), SENTINEL_MSG_BAD);
    CHECK_EQ_INT(epoch("*2\r\n$12\r\nconfig-epoch\r\n$20\r\n99999999999999999999\r\n", &e),
                 SENTINEL_MSG_BAD);
    CHECK_EQ_INT(epoch("*2\r\n$13\r\nconfig-epochs\r\n$1\r\n1\r\n", &e), SENTINEL_MSG_BAD);
    CHECK_EQ_INT(epoch("*2\r\n$12\r\nconfig-epoch\r\n:5\r\n", &e), SENTINEL_MSG_BAD);
    CHECK_EQ_INT(epoch("$-1\r\n", &e), SENTINEL_MSG_BAD);

    struct buf b;
    buf_init(&b);
    sentinel_msg_query_epoch(&b, "g");
    CHECK_MEM(b.data, b.len, "*3\r\n$8\r\nSENTINEL\r\n$6\r\nMASTER\r\n$1\r\ng\r\n");
    buf_free(&b);
}

static int replicas(const char *s, struct sentinel_replica *out, uint32_t cap, uint32_t *n)
{
    memset(out, 0, cap * sizeof(*out));
    *n = 99;
    return sentinel_msg_parse_replicas(framed(s), &ri, out, cap, n);
}

/* One replica entry as redis 7's sentinel writes it (fewer fields). */
static const char *replica_entry(char *buf, size_t cap, const char *ip, const char *port,
                                 const char *flags, const char *link)
{
    snprintf(buf, cap,
             "*12\r\n$4\r\nname\r\n$%zu\r\n%s:%s\r\n$2\r\nip\r\n$%zu\r\n%s\r\n"
             "$4\r\nport\r\n$%zu\r\n%s\r\n$5\r\nflags\r\n$%zu\r\n%s\r\n"
             "$18\r\nmaster-link-status\r\n$%zu\r\n%s\r\n$11\r\nslave-state\r\n+online\r\n",
             strlen(ip) + 1 + strlen(port), ip, port, strlen(ip), ip, strlen(port), port,
             strlen(flags), flags, strlen(link), link);
    return buf;
}

static int failover(const char *s, struct sentinel_failover *f)
{
    return sentinel_msg_parse_failover(framed(s), &ri, f);
}

/* SENTINEL MASTER as redis-sentinel 7 answers it, with state as its
 * failover-state (NULL: no failover, no field). */
static const char *master_reply(char *buf, size_t cap, const char *state)
{
    int n = snprintf(buf, cap,
                     "*%d\r\n$4\r\nname\r\n$2\r\ng0\r\n$2\r\nip\r\n$9\r\n127.0.0.1\r\n"
                     "$4\r\nport\r\n$4\r\n6379\r\n$5\r\nflags\r\n$%zu\r\n%s\r\n",
                     state != NULL ? 10 : 8,
                     state != NULL ? strlen("master,failover_in_progress") : strlen("master"),
                     state != NULL ? "master,failover_in_progress" : "master");
    if (state != NULL) {
        snprintf(buf + n, cap - (size_t)n, "$14\r\nfailover-state\r\n$%zu\r\n%s\r\n", strlen(state),
                 state);
    }
    return buf;
}

static void test_failover_state(void)
{
    char buf[512];
    struct sentinel_failover f;
    CHECK_EQ_INT(failover(master_reply(buf, sizeof(buf), NULL), &f), SENTINEL_MSG_OK);
    CHECK(!f.promoting);
    CHECK_MEM(f.master.ip, f.master.ip_len, "127.0.0.1");
    CHECK_EQ_INT(f.master.port, 6379);
    /* the election and the choice come before +selected-slave: heard live */
    CHECK_EQ_INT(failover(master_reply(buf, sizeof(buf), "wait_start"), &f), SENTINEL_MSG_OK);
    CHECK(!f.promoting);
    CHECK_EQ_INT(failover(master_reply(buf, sizeof(buf), "select_slave"), &f), SENTINEL_MSG_OK);
    CHECK(!f.promoting);
    const char *past[] = {"send_slaveof_noone", "wait_promotion", "reconf_slaves", "update_config"};
    for (size_t i = 0; i < sizeof(past) / sizeof(past[0]); i++) {
        CHECK_EQ_INT(failover(master_reply(buf, sizeof(buf), past[i]), &f), SENTINEL_MSG_OK);
        CHECK(f.promoting);
        CHECK_EQ_INT(f.master.port, 6379);
    }
    CHECK_EQ_INT(failover(master_reply(buf, sizeof(buf), "wait_promotionx"), &f), SENTINEL_MSG_OK);
    CHECK(!f.promoting);
    CHECK_EQ_INT(failover("-ERR No such master with that name\r\n", &f), SENTINEL_MSG_NONE);
    /* no address, a bad port, an odd array, a number value */
    CHECK_EQ_INT(failover("*2\r\n$4\r\nport\r\n$4\r\n6379\r\n", &f), SENTINEL_MSG_BAD);
    CHECK_EQ_INT(failover("*4\r\n$2\r\nip\r\n$3\r\n::1\r\n$4\r\nport\r\n$5\r\n70000\r\n", &f),
                 SENTINEL_MSG_BAD);
    CHECK_EQ_INT(failover("*3\r\n$2\r\nip\r\n$3\r\n::1\r\n$4\r\nport\r\n", &f), SENTINEL_MSG_BAD);
    CHECK_EQ_INT(failover("*4\r\n$2\r\nip\r\n$3\r\n::1\r\n$4\r\nport\r\n:1\r\n", &f),
                 SENTINEL_MSG_BAD);
    CHECK_EQ_INT(failover("*4\r\n$2\r\nip\r\n$3\r\n::1\r\n$4\r\nport\r\n$1\r\n1\r\n", &f),
                 SENTINEL_MSG_OK);
}

static void test_replicas(void)
{
    struct sentinel_replica r[4];
    uint32_t n;
    char e1[512], e2[512], e3[512], msg[2048];
    replica_entry(e1, sizeof(e1), "127.0.0.1", "6380", "slave", "ok");
    replica_entry(e2, sizeof(e2), "::1", "6381", "s_down,slave,disconnected", "err");
    replica_entry(e3, sizeof(e3), "10.0.0.3", "6382", "slave", "err");
    snprintf(msg, sizeof(msg), "*3\r\n%s%s%s", e1, e2, e3);
    CHECK_EQ_INT(replicas(msg, r, 4, &n), SENTINEL_MSG_OK);
    CHECK_EQ_INT(n, 3);
    CHECK_MEM(r[0].addr.ip, r[0].addr.ip_len, "127.0.0.1");
    CHECK_EQ_INT(r[0].addr.port, 6380);
    CHECK(r[0].usable);
    CHECK_MEM(r[1].addr.ip, r[1].addr.ip_len, "::1");
    CHECK(!r[1].usable); /* down */
    CHECK(!r[2].usable); /* still syncing: its link to the master is not ok */
    /* more replicas than room: the first cap are kept, the reply is still good */
    CHECK_EQ_INT(replicas(msg, r, 2, &n), SENTINEL_MSG_OK);
    CHECK_EQ_INT(n, 2);
    /* each down flag alone makes it unusable; flags are whole words */
    static const struct {
        const char *flags;
        bool usable;
    } fl[] = {{"slave,o_down", false}, {"disconnected,slave", false}, {"slave,s_down", false},
              {"slave,s_downs", true}, {"slave,promoted", true},      {"", true},
              {"xs_down,slave", true}, {"slave,,o_down", false}};
    for (size_t i = 0; i < sizeof(fl) / sizeof(fl[0]); i++) {
        replica_entry(e1, sizeof(e1), "127.0.0.1", "6380", fl[i].flags, "ok");
        snprintf(msg, sizeof(msg), "*1\r\n%s", e1);
        CHECK_EQ_INT(replicas(msg, r, 4, &n), SENTINEL_MSG_OK);
        CHECK_EQ_INT(n, 1);
        CHECK_EQ_INT(r[0].usable, fl[i].usable);
    }
    /* no link status or no flags: not known to serve */
    CHECK_EQ_INT(replicas("*1\r\n*6\r\n$2\r\nip\r\n$3\r\n::1\r\n$4\r\nport\r\n$1\r\n1\r\n"
                          "$5\r\nflags\r\n$5\r\nslave\r\n",
                          r, 4, &n),
                 SENTINEL_MSG_OK);
    CHECK(n == 1 && !r[0].usable);
    /* none yet; an unknown group or an old sentinel: an error reply */
    CHECK_EQ_INT(replicas("*0\r\n", r, 4, &n), SENTINEL_MSG_OK);
    CHECK_EQ_INT(n, 0);
    CHECK_EQ_INT(replicas("-ERR No such master with that name\r\n", r, 4, &n), SENTINEL_MSG_NONE);
    CHECK_EQ_INT(n, 0);
    /* wrong shapes: every one refuses the whole reply */
    static const char *bad[] = {
        "*-1\r\n",
        "$-1\r\n",
        ":3\r\n",
        "*1\r\n$2\r\nip\r\n",
        "*1\r\n*1\r\n$2\r\nip\r\n",                                     /* odd */
        "*1\r\n*2\r\n$2\r\nip\r\n$9\r\n127.0.0.1\r\n",                  /* no port */
        "*1\r\n*2\r\n$4\r\nport\r\n$4\r\n6379\r\n",                     /* no ip */
        "*1\r\n*4\r\n$2\r\nip\r\n$1\r\nx\r\n$4\r\nport\r\n$1\r\n0\r\n", /* port 0 */
        "*1\r\n*4\r\n$2\r\nip\r\n$3\r\na b\r\n$4\r\nport\r\n$1\r\n1\r\n",
        "*1\r\n*4\r\n$2\r\nip\r\n$1\r\nx\r\n$4\r\nport\r\n:1\r\n",
        "*1\r\n*4\r\n$2\r\nip\r\n$1\r\nx\r\n$4\r\nport\r\n*1\r\n$1\r\n1\r\n",
        "*2\r\n*0\r\n:1\r\n",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        CHECK_EQ_INT(replicas(bad[i], r, 4, &n), SENTINEL_MSG_BAD);
        CHECK_EQ_INT(n, 0);
    }
    /* an empty entry is well formed but has no address */
    CHECK_EQ_INT(replicas("*1\r\n*0\r\n", r, 4, &n), SENTINEL_MSG_BAD);
    /* simple strings are strings too */
    CHECK_EQ_INT(replicas("*1\r\n*8\r\n+ip\r\n+10.0.0.1\r\n+port\r\n+7\r\n+flags\r\n+slave\r\n"
                          "+master-link-status\r\n+ok\r\n",
                          r, 4, &n),
                 SENTINEL_MSG_OK);
    CHECK(n == 1 && r[0].usable && r[0].addr.port == 7);
}

static int sdown(const char *chan, const char *payload, struct sentinel_sdown *out)
{
    static char buf[512];
    snprintf(buf, sizeof(buf), "*3\r\n$7\r\nmessage\r\n$%zu\r\n%s\r\n$%zu\r\n%s\r\n", strlen(chan),
             chan, strlen(payload), payload);
    memset(out, 0, sizeof(*out));
    return sentinel_msg_parse_sdown(framed(buf), &ri, out);
}

static void test_sdown(void)
{
    struct sentinel_sdown d;
    CHECK_EQ_INT(sdown("+sdown", "slave 127.0.0.1:6380 127.0.0.1 6380 @ g1 127.0.0.1 6379", &d),
                 SENTINEL_MSG_OK);
    CHECK(d.down);
    CHECK_MEM(d.group, d.group_len, "g1");
    CHECK_MEM(d.addr.ip, d.addr.ip_len, "127.0.0.1");
    CHECK_EQ_INT(d.addr.port, 6380);
    CHECK_EQ_INT(sdown("-sdown", "slave [::1]:7 ::1 7 @ g2 ::1 6379", &d), SENTINEL_MSG_OK);
    CHECK(!d.down && d.addr.port == 7);
    CHECK_MEM(d.group, d.group_len, "g2");
    /* masters, sentinels, other channels, broken payloads: nothing to do */
    CHECK_EQ_INT(sdown("+sdown", "master g1 127.0.0.1 6379", &d), SENTINEL_MSG_NONE);
    CHECK_EQ_INT(sdown("+sdown", "sentinel abc 127.0.0.1 26379 @ g1 127.0.0.1 6379", &d),
                 SENTINEL_MSG_NONE);
    CHECK_EQ_INT(sdown("+odown", "slave a:1 127.0.0.1 6380 @ g1 127.0.0.1 6379", &d),
                 SENTINEL_MSG_NONE);
    CHECK_EQ_INT(sdown("+sdown", "slave a:1 127.0.0.1 0 @ g1 127.0.0.1 6379", &d),
                 SENTINEL_MSG_NONE);
    CHECK_EQ_INT(sdown("+sdown", "slave a:1 127.0.0.1 6380 @ g1 127.0.0.1 6379 x", &d),
                 SENTINEL_MSG_NONE);
    CHECK_EQ_INT(sdown("+sdown", "slave a:1 127.0.0.1 6380 # g1 127.0.0.1 6379", &d),
                 SENTINEL_MSG_NONE);
    CHECK_EQ_INT(sdown("+sdown", "slave a:1 127.0.0.1  6380 @ g1 127.0.0.1 6379", &d),
                 SENTINEL_MSG_NONE);
    /* a +switch-master is no sdown, and the reverse */
    struct sentinel_switch s;
    CHECK_EQ_INT(sdown("+switch-master", "g 127.0.0.1 1 127.0.0.1 2", &d), SENTINEL_MSG_NONE);
    CHECK_EQ_INT(sentinel_msg_parse_switch(framed("*3\r\n$7\r\nmessage\r\n$6\r\n+sdown\r\n"
                                                  "$5\r\nslave\r\n"),
                                           &ri, &s),
                 SENTINEL_MSG_NONE);
    CHECK_EQ_INT(sentinel_msg_parse_sdown(framed("-ERR x\r\n"), &ri, &d), SENTINEL_MSG_BAD);
}

/* One message of channel chan (pmessage: through a pattern) read as an event. */
static int event(const char *chan, const char *payload, bool pmessage, struct sentinel_event *ev)
{
    static char buf[512];
    if (pmessage) {
        snprintf(buf, sizeof(buf),
                 "*4\r\n$8\r\npmessage\r\n$1\r\n*\r\n$%zu\r\n%s\r\n$%zu\r\n%s\r\n", strlen(chan),
                 chan, strlen(payload), payload);
    } else {
        snprintf(buf, sizeof(buf), "*3\r\n$7\r\nmessage\r\n$%zu\r\n%s\r\n$%zu\r\n%s\r\n",
                 strlen(chan), chan, strlen(payload), payload);
    }
    return sentinel_msg_parse_event(framed(buf), &ri, ev);
}

static void test_events(void)
{
    struct sentinel_event ev;
    static const char *const promoting[] = {"+selected-slave", "+failover-state-send-slaveof-noone",
                                            "+promoted-slave"};
    for (size_t i = 0; i < 3; i++) {
        CHECK_EQ_INT(event(promoting[i], "slave 127.0.0.1:6380 127.0.0.1 6380 @ g0 10.0.0.1 6379",
                           i == 2, &ev),
                     SENTINEL_MSG_OK);
        CHECK_EQ_INT(ev.kind, SENTINEL_EV_PROMOTING);
        CHECK(ev.replica);
        CHECK_MEM(ev.group, ev.group_len, "g0");
        CHECK_MEM(ev.addr.ip, ev.addr.ip_len, "127.0.0.1");
        CHECK_EQ_INT(ev.addr.port, 6380);
        CHECK_MEM(ev.master.ip, ev.master.ip_len, "10.0.0.1");
        CHECK_EQ_INT(ev.master.port, 6379);
        /* a master is not what gets promoted */
        CHECK_EQ_INT(event(promoting[i], "master g0 10.0.0.1 6379", false, &ev), SENTINEL_MSG_NONE);
    }
    /* a master's details may go on after its port */
    CHECK_EQ_INT(event("+odown", "master g0 10.0.0.1 6379 #quorum 2/2", false, &ev),
                 SENTINEL_MSG_OK);
    CHECK(ev.kind == SENTINEL_EV_ODOWN && !ev.replica && ev.master.port == 6379);
    CHECK_MEM(ev.group, ev.group_len, "g0");
    CHECK_MEM(ev.master.ip, ev.master.ip_len, "10.0.0.1");
    CHECK_EQ_INT(event("+odown", "slave a:1 127.0.0.1 6380 @ g0 10.0.0.1 6379", false, &ev),
                 SENTINEL_MSG_NONE);
    CHECK_EQ_INT(event("+sdown", "master g0 ::1 6379", false, &ev), SENTINEL_MSG_OK);
    CHECK(ev.kind == SENTINEL_EV_SDOWN && !ev.replica && ev.addr.port == 6379);
    CHECK_EQ_INT(event("-sdown", "master g0 ::1 6379", false, &ev), SENTINEL_MSG_OK);
    CHECK(ev.kind == SENTINEL_EV_SDOWN_END && !ev.replica);
    CHECK_EQ_INT(event("+sdown", "slave ::1:7 ::1 7 @ g2 ::1 6379", false, &ev), SENTINEL_MSG_OK);
    CHECK(ev.kind == SENTINEL_EV_SDOWN && ev.replica && ev.addr.port == 7 &&
          ev.master.port == 6379);
    /* every abort reason, known or not */
    CHECK_EQ_INT(event("-failover-abort-slave-timeout", "master g0 10.0.0.1 6379", false, &ev),
                 SENTINEL_MSG_OK);
    CHECK(ev.kind == SENTINEL_EV_ABORT && ev.master.port == 6379 && ev.after_promotion);
    CHECK_EQ_INT(event("-failover-abort-some-new-reason", "master g0 10.0.0.1 6379", true, &ev),
                 SENTINEL_MSG_OK);
    CHECK(ev.kind == SENTINEL_EV_ABORT && !ev.after_promotion);
    CHECK_EQ_INT(event("-failover-abort-", "master g0 10.0.0.1 6379", false, &ev),
                 SENTINEL_MSG_NONE);
    /* a switch carries both masters */
    CHECK_EQ_INT(event("+switch-master", "g0 10.0.0.1 6379 10.0.0.2 6380", false, &ev),
                 SENTINEL_MSG_OK);
    CHECK(ev.kind == SENTINEL_EV_SWITCH && ev.master.port == 6379 && ev.addr.port == 6380);
    CHECK_MEM(ev.master.ip, ev.master.ip_len, "10.0.0.1");
    CHECK_MEM(ev.addr.ip, ev.addr.ip_len, "10.0.0.2");
    CHECK_EQ_INT(event("+switch-master", "g0 10.0.0.1 6379 10.0.0.2", false, &ev),
                 SENTINEL_MSG_BAD);
    /* other channels, sentinels' own instances, details that do not read: nothing */
    CHECK_EQ_INT(event("+try-failover", "master g0 10.0.0.1 6379", false, &ev), SENTINEL_MSG_NONE);
    CHECK_EQ_INT(event("+sdown", "sentinel abc 127.0.0.1 26379 @ g0 10.0.0.1 6379", false, &ev),
                 SENTINEL_MSG_NONE);
    static const char *const broken[] = {
        "master g0 10.0.0.1",
        "master g0 10.0.0.1 0",
        "master g0  10.0.0.1 6379",
        " master g0 10.0.0.1 6379",
        "master g0 10.0.0.1 65536",
        "slave a:1 127.0.0.1 6380 @ g0",
        "slave a:1 127.0.0.1 6380 @ g0 10.0.0.1 6379 more",
        "",
        "slave a:1 127.0.0.1 6380 # g0 10.0.0.1 6379",
        "slave a:1 127.0.0.1 6380 @ g0 10.0.0.1 x",
    };
    for (size_t i = 0; i < sizeof(broken) / sizeof(broken[0]); i++) {
        CHECK_EQ_INT(event("+selected-slave", broken[i], false, &ev), SENTINEL_MSG_NONE);
        CHECK_EQ_INT(event("+odown", broken[i], false, &ev), SENTINEL_MSG_NONE);
    }
    /* not pub/sub at all */
    CHECK_EQ_INT(sentinel_msg_parse_event(framed("-ERR x\r\n"), &ri, &ev), SENTINEL_MSG_BAD);
    CHECK_EQ_INT(sentinel_msg_parse_event(framed("*3\r\n$9\r\nsubscribe\r\n$6\r\n+odown\r\n:3\r\n"),
                                          &ri, &ev),
                 SENTINEL_MSG_NONE);
}

static void test_names(void)
{
    const uint8_t *n = (const uint8_t *)"cache2 rest";
    CHECK(sentinel_msg_name_is(n, 6, "cache2"));
    CHECK(!sentinel_msg_name_is(n, 6, "cache")); /* twemproxy-163 took a prefix */
    CHECK(!sentinel_msg_name_is(n, 5, "cache2"));
    CHECK(sentinel_msg_name_is(n, 5, "cache"));
    CHECK(!sentinel_msg_name_is(n, 6, "Cache2"));
    CHECK(!sentinel_msg_name_is(n, 0, "cache"));
    CHECK(sentinel_msg_name_is(n, 0, ""));
}

static void test_role(void)
{
    CHECK_EQ_INT(sentinel_msg_parse_role(framed("*3\r\n$6\r\nmaster\r\n:3129659\r\n*0\r\n"), &ri),
                 SENTINEL_MSG_OK);
    CHECK_EQ_INT(
        sentinel_msg_parse_role(framed("*3\r\n$6\r\nmaster\r\n:10\r\n*1\r\n*3\r\n$9\r\n127.0.0.1"
                                       "\r\n$4\r\n9001\r\n$2\r\n10\r\n"),
                                &ri),
        SENTINEL_MSG_OK);
    CHECK_EQ_INT(sentinel_msg_parse_role(framed("*5\r\n$5\r\nslave\r\n$9\r\n127.0.0.1\r\n:9000\r\n"
                                                "$9\r\nconnected\r\n:3167038\r\n"),
                                         &ri),
                 SENTINEL_MSG_NONE);
    CHECK_EQ_INT(sentinel_msg_parse_role(framed("*2\r\n$8\r\nsentinel\r\n*0\r\n"), &ri),
                 SENTINEL_MSG_NONE);
    CHECK_EQ_INT(sentinel_msg_parse_role(framed("*1\r\n$7\r\nmasters\r\n"), &ri),
                 SENTINEL_MSG_NONE);
    CHECK_EQ_INT(sentinel_msg_parse_role(framed("-NOAUTH Authentication required.\r\n"), &ri),
                 SENTINEL_MSG_BAD);
    CHECK_EQ_INT(sentinel_msg_parse_role(framed("*0\r\n"), &ri), SENTINEL_MSG_BAD);
    CHECK_EQ_INT(sentinel_msg_parse_role(framed("$6\r\nmaster\r\n"), &ri), SENTINEL_MSG_BAD);
}

static void test_sockaddr(void)
{
    struct sockaddr_storage ss;
    socklen_t len;
    struct sentinel_master m = {(const uint8_t *)"10.1.2.3", 8, 6380};
    CHECK_EQ_INT(sentinel_msg_sockaddr(&m, &ss, &len), 0);
    const struct sockaddr_in *a = (const void *)&ss;
    CHECK_EQ_INT(ss.ss_family, AF_INET);
    CHECK_EQ_INT(len, sizeof(*a));
    CHECK_EQ_INT(ntohs(a->sin_port), 6380);
    CHECK_EQ_INT(ntohl(a->sin_addr.s_addr), 0x0a010203);

    m = (struct sentinel_master){(const uint8_t *)"::1", 3, 7000};
    CHECK_EQ_INT(sentinel_msg_sockaddr(&m, &ss, &len), 0);
    const struct sockaddr_in6 *b = (const void *)&ss;
    CHECK_EQ_INT(ss.ss_family, AF_INET6);
    CHECK_EQ_INT(len, sizeof(*b));
    CHECK_EQ_INT(ntohs(b->sin6_port), 7000);
    CHECK(IN6_IS_ADDR_LOOPBACK(&b->sin6_addr));

    static const char *bad[] = {"localhost", "10.1.2", "10.1.2.3.4", "::g", "[::1]", "1.2.3.4 "};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        m = (struct sentinel_master){(const uint8_t *)bad[i], strlen(bad[i]), 6379};
        CHECK_EQ_INT(sentinel_msg_sockaddr(&m, &ss, &len), -1);
    }
    m = (struct sentinel_master){(const uint8_t *)"10.1.2.3", 8, 0};
    CHECK_EQ_INT(sentinel_msg_sockaddr(&m, &ss, &len), -1);
    /* the text is not NUL-terminated: only ip_len bytes count */
    m = (struct sentinel_master){(const uint8_t *)"10.1.2.34", 8, 1};
    CHECK_EQ_INT(sentinel_msg_sockaddr(&m, &ss, &len), 0);
    CHECK_EQ_INT(ntohl(((const struct sockaddr_in *)&ss)->sin_addr.s_addr), 0x0a010203);
}

/* Replies arrive in pieces and back to back: framing by rsp_parse finds each. */
static void test_stream(void)
{
    const char *stream = "+OK\r\n"
                         "*3\r\n$9\r\nsubscribe\r\n$14\r\n+switch-master\r\n:1\r\n"
                         "*3\r\n$7\r\nmessage\r\n$14\r\n+switch-master\r\n"
                         "$33\r\ngrp 127.0.0.1 7001 127.0.0.1 7002\r\n";
    size_t n = strlen(stream), pos = 0;
    int oks = 0, replies = 0;
    while (pos < n) {
        const uint8_t *p = (const uint8_t *)stream + pos;
        /* every strict prefix of a reply is incomplete, never an error */
        for (size_t cut = 1; cut < 4 && pos + cut < n; cut++) {
            CHECK_EQ_INT(redis_rsp_parse(p, cut, 0, &ri), PARSE_AGAIN);
        }
        CHECK_EQ_INT(redis_rsp_parse(p, n - pos, 0, &ri), PARSE_OK);
        struct sentinel_switch s;
        if (replies > 0 && sentinel_msg_parse_switch(p, &ri, &s) == SENTINEL_MSG_OK) {
            oks++;
            CHECK_MEM(s.group, s.group_len, "grp");
            CHECK_EQ_INT(s.to.port, 7002);
        }
        replies++;
        pos += ri.len;
    }
    CHECK_EQ_INT(replies, 3);
    CHECK_EQ_INT(oks, 1);
}

int main(void)
{
    rsp_info_init(&ri);
    test_requests();
    test_master_addr();
    test_switch();
    test_epoch();
    test_failover_state();
    test_replicas();
    test_sdown();
    test_events();
    test_names();
    test_role();
    test_sockaddr();
    test_stream();
    rsp_info_free(&ri);
    UNIT_DONE("test_sentinel");
}
