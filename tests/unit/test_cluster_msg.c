/*
 * test_cluster_msg: the slot of a key (redis' own vectors), CLUSTER SHARDS and
 * CLUSTER SLOTS replies as redis 7.0.15 writes them and broken ones, and the
 * redirection errors (MOVED, ASK, TRYAGAIN, CLUSTERDOWN).
 */
#include "cluster/cluster_msg.h"
#include "unit.h"

#define S(x) (const uint8_t *)(x), sizeof(x) - 1

static void test_slots(void)
{
    /* from redis' cluster tests and CLUSTER KEYSLOT */
    CHECK_EQ_INT(cluster_key_slot(S("foo")), 12182);
    CHECK_EQ_INT(cluster_key_slot(S("123456789")), 0x31c3 & 16383);
    CHECK_EQ_INT(cluster_key_slot(S("{user1000}.following")), cluster_key_slot(S("user1000")));
    CHECK_EQ_INT(cluster_key_slot(S("foo{}{bar}")), cluster_key_slot(S("foo{}{bar}")));
    CHECK(cluster_key_slot(S("{}a")) != cluster_key_slot(S("{}b"))); /* an empty tag is no tag */
    CHECK_EQ_INT(cluster_key_slot(S("foo{{bar}}zap")), cluster_key_slot(S("{bar")));
    CHECK_EQ_INT(cluster_key_slot(S("")), 0);
}

static const char shards[] =
    "*2\r\n"
    "*4\r\n$5\r\nslots\r\n*4\r\n:0\r\n:5460\r\n:10923\r\n:10923\r\n$5\r\nnodes\r\n*2\r\n"
    "*14\r\n$2\r\nid\r\n$3\r\nabc\r\n$4\r\nport\r\n:7000\r\n$2\r\nip\r\n$9\r\n127.0.0.1\r\n"
    "$8\r\nendpoint\r\n$9\r\n127.0.0.1\r\n$4\r\nrole\r\n$6\r\nmaster\r\n"
    "$18\r\nreplication-offset\r\n:0\r\n$6\r\nhealth\r\n$6\r\nonline\r\n"
    "*14\r\n$2\r\nid\r\n$3\r\ndef\r\n$4\r\nport\r\n:7003\r\n$2\r\nip\r\n$9\r\n127.0.0.1\r\n"
    "$8\r\nendpoint\r\n$3\r\n::1\r\n$4\r\nrole\r\n$7\r\nreplica\r\n"
    "$18\r\nreplication-offset\r\n:0\r\n$6\r\nhealth\r\n$7\r\nloading\r\n"
    "*4\r\n$5\r\nslots\r\n*2\r\n:5461\r\n:10922\r\n$5\r\nnodes\r\n*1\r\n"
    "*8\r\n$4\r\nport\r\n:7001\r\n$2\r\nip\r\n$9\r\n127.0.0.2\r\n$4\r\nrole\r\n$6\r\nmaster\r\n"
    "$6\r\nhealth\r\n$6\r\nfailed\r\n";

/* A ghost (a master that failed with no address left: "master,fail,noaddr")
 * beside a healthy shard, whose master listens on both ports (tls-cluster). */
static const char shards_ghost[] =
    "*2\r\n"
    "*4\r\n$5\r\nslots\r\n*0\r\n$5\r\nnodes\r\n*1\r\n"
    "*10\r\n$2\r\nid\r\n$3\r\nghi\r\n$2\r\nip\r\n$0\r\n\r\n$8\r\nendpoint\r\n$0\r\n\r\n"
    "$4\r\nrole\r\n$6\r\nmaster\r\n$6\r\nhealth\r\n$4\r\nfail\r\n"
    "*4\r\n$5\r\nslots\r\n*2\r\n:0\r\n:16383\r\n$5\r\nnodes\r\n*2\r\n"
    "*10\r\n$2\r\nid\r\n$3\r\njkl\r\n$4\r\nport\r\n:7000\r\n$8\r\ntls-port\r\n:8000\r\n"
    "$2\r\nip\r\n$9\r\n127.0.0.1\r\n$4\r\nrole\r\n$6\r\nmaster\r\n"
    "*8\r\n$2\r\nid\r\n$3\r\nmno\r\n$8\r\ntls-port\r\n:8001\r\n"
    "$2\r\nip\r\n$9\r\n127.0.0.1\r\n$4\r\nrole\r\n$7\r\nreplica\r\n";

static void test_shards_nodes_without_an_address(void)
{
    struct cluster_topo t;
    cluster_topo_init(&t);
    /* plain: the ghost and the TLS-only replica are left out, the map stands */
    CHECK_EQ_INT(cluster_msg_parse_shards(S(shards_ghost), &t), 0);
    CHECK_EQ_INT(t.nnodes, 1);
    CHECK(strcmp(t.nodes[0].id, "jkl") == 0 && t.nodes[0].addr.port == 7000);
    CHECK_EQ_INT(t.nranges, 1);
    CHECK_EQ_INT(cluster_topo_master(&t, t.ranges[0].shard), 0);
    /* TLS: the tls-ports, the replica that has only one included */
    t.tls_ports = true;
    CHECK_EQ_INT(cluster_msg_parse_shards(S(shards_ghost), &t), 0);
    CHECK(t.tls_ports); /* kept by the reset */
    CHECK_EQ_INT(t.nnodes, 2);
    CHECK(t.nodes[0].addr.port == 8000 && t.nodes[0].master);
    CHECK(strcmp(t.nodes[1].id, "mno") == 0 && t.nodes[1].addr.port == 8001);
    CHECK_EQ_INT(t.nranges, 1);
    for (size_t n = 0; n + 1 < sizeof(shards_ghost) - 1; n++) {
        CHECK(cluster_msg_parse_shards((const uint8_t *)shards_ghost, n, &t) != 0);
    }
    /* an empty address with a port is kept: the host of the node asked (a
     * node alone, that never met another, does not know its own) */
    t.tls_ports = false;
    CHECK_EQ_INT(cluster_msg_parse_shards(S("*1\r\n*4\r\n$5\r\nslots\r\n*2\r\n:0\r\n:16383\r\n"
                                            "$5\r\nnodes\r\n*1\r\n*6\r\n$4\r\nport\r\n:7000\r\n"
                                            "$2\r\nip\r\n$0\r\n\r\n$4\r\nrole\r\n$6\r\nmaster\r\n"),
                                          &t),
                 0);
    CHECK(t.nnodes == 1 && t.nodes[0].addr.host[0] == '\0' && t.nodes[0].addr.port == 7000);
    CHECK_EQ_INT(t.nranges, 1);
    cluster_topo_free(&t);
}

static void test_shards(void)
{
    struct cluster_topo t;
    cluster_topo_init(&t);
    CHECK_EQ_INT(cluster_msg_parse_shards(S(shards), &t), 0);
    CHECK_EQ_INT(t.nshards, 2);
    CHECK_EQ_INT(t.nnodes, 3);
    CHECK_EQ_INT(t.nranges, 3);
    CHECK(strcmp(t.nodes[0].addr.host, "127.0.0.1") == 0 && t.nodes[0].addr.port == 7000);
    CHECK(t.nodes[0].master && !t.nodes[0].failed);
    CHECK(strcmp(t.nodes[0].id, "abc") == 0 && strcmp(t.nodes[1].id, "def") == 0);
    CHECK(t.nodes[2].id[0] == '\0'); /* none said */
    CHECK(strcmp(t.nodes[1].addr.host, "::1") == 0 && !t.nodes[1].master && t.nodes[1].loading);
    CHECK(t.nodes[2].master && t.nodes[2].failed && t.nodes[2].shard == 1);
    CHECK(t.ranges[1].start == 10923 && t.ranges[1].end == 10923 && t.ranges[1].shard == 0);
    CHECK_EQ_INT(cluster_topo_master(&t, 1), 2);
    /* every cut of it is refused, never read past */
    for (size_t n = 0; n + 1 < sizeof(shards) - 1; n++) {
        CHECK(cluster_msg_parse_shards((const uint8_t *)shards, n, &t) != 0);
    }
    CHECK(cluster_msg_parse_shards(S("-ERR unknown subcommand 'shards'\r\n"), &t) != 0);
    CHECK(cluster_msg_unknown_subcommand(
        S("-ERR unknown subcommand 'shards'. Try CLUSTER HELP.\r\n")));
    CHECK(
        !cluster_msg_unknown_subcommand(S("-ERR This instance has cluster support disabled\r\n")));
    CHECK(cluster_msg_parse_shards(S("*1\r\n*2\r\n$5\r\nslots\r\n*2\r\n:0\r\n:16384\r\n"), &t) !=
          0);
    CHECK(cluster_msg_parse_shards(S("*1\r\n*2\r\n$5\r\nslots\r\n*1\r\n:0\r\n"), &t) != 0);
    /* a master of no slot (how the other nodes list a node made a replica a
     * moment ago, as redis 7.0.15 did for about a second after "cluster
     * create"): a node, not a master */
    CHECK_EQ_INT(
        cluster_msg_parse_shards(
            S("*2\r\n*4\r\n$5\r\nslots\r\n*2\r\n:0\r\n:16383\r\n$5\r\nnodes\r\n*1\r\n"
              "*6\r\n$2\r\nip\r\n$0\r\n\r\n$4\r\nport\r\n:7000\r\n$4\r\nrole\r\n$6\r\nmaster\r\n"
              "*4\r\n$5\r\nslots\r\n*0\r\n$5\r\nnodes\r\n*1\r\n"
              "*6\r\n$2\r\nip\r\n$0\r\n\r\n$4\r\nport\r\n:7001\r\n$4\r\nrole\r\n$6\r\nmaster\r\n"),
            &t),
        0);
    CHECK(t.nnodes == 2 && t.nodes[0].master && t.nodes[1].addr.port == 7001);
    CHECK(!t.nodes[1].master && t.nodes[1].shard == 1);
    CHECK_EQ_INT(cluster_topo_master(&t, 1), -1);
    /* a shard without a master: its slots are dropped, not an error */
    CHECK_EQ_INT(cluster_msg_parse_shards(S("*1\r\n*2\r\n$5\r\nslots\r\n*2\r\n:0\r\n:9\r\n"), &t),
                 0);
    CHECK_EQ_INT(t.nranges, 0);
    cluster_topo_free(&t);
}

static void test_slots_reply(void)
{
    static const char r[] =
        "*2\r\n*4\r\n:0\r\n:5460\r\n*4\r\n$9\r\n127.0.0.1\r\n:7000\r\n$3\r\nabc\r\n*0\r\n"
        "*3\r\n$9\r\n127.0.0.1\r\n:7003\r\n$3\r\ndef\r\n"
        "*3\r\n:5461\r\n:16383\r\n*3\r\n$0\r\n\r\n:7001\r\n$3\r\nxyz\r\n";
    struct cluster_topo t;
    cluster_topo_init(&t);
    CHECK_EQ_INT(cluster_msg_parse_slots(S(r), &t), 0);
    CHECK_EQ_INT(t.nranges, 2);
    CHECK_EQ_INT(t.nnodes, 3);
    CHECK(t.nodes[0].master && !t.nodes[1].master && t.nodes[1].addr.port == 7003);
    CHECK(t.nodes[2].master && t.nodes[2].addr.host[0] == '\0'); /* "": the node asked */
    CHECK(strcmp(t.nodes[0].id, "abc") == 0 && strcmp(t.nodes[2].id, "xyz") == 0);
    CHECK(t.ranges[1].start == 5461 && t.ranges[1].end == 16383);
    for (size_t n = 0; n + 1 < sizeof(r) - 1; n++) {
        CHECK(cluster_msg_parse_slots((const uint8_t *)r, n, &t) != 0);
    }
    CHECK(cluster_msg_parse_slots(S("*1\r\n*3\r\n:5\r\n:1\r\n*2\r\n$1\r\na\r\n:1\r\n"), &t) != 0);
    CHECK(cluster_msg_parse_slots(S("*1\r\n*3\r\n:0\r\n:1\r\n*2\r\n$1\r\na\r\n:0\r\n"), &t) != 0);
    cluster_topo_free(&t);
}

static void test_redirects(void)
{
    struct cluster_redirect rd;
    CHECK_EQ_INT(cluster_msg_redirect(S("-MOVED 3999 127.0.0.1:6381\r\n"), &rd),
                 CLUSTER_REPLY_MOVED);
    CHECK(rd.slot == 3999 && rd.to.port == 6381 && strcmp(rd.to.host, "127.0.0.1") == 0);
    CHECK_EQ_INT(cluster_msg_redirect(S("-ASK 16383 ::1:7000\r\n"), &rd), CLUSTER_REPLY_ASK);
    CHECK(rd.slot == 16383 && rd.to.port == 7000 && strcmp(rd.to.host, "::1") == 0);
    CHECK_EQ_INT(cluster_msg_redirect(
                     S("-TRYAGAIN Multiple keys request during rehashing of slot\r\n"), &rd),
                 CLUSTER_REPLY_TRYAGAIN);
    CHECK_EQ_INT(cluster_msg_redirect(S("-CLUSTERDOWN The cluster is down\r\n"), &rd),
                 CLUSTER_REPLY_DOWN);
    CHECK_EQ_INT(cluster_msg_redirect(S("-CLUSTERDOWN Hash slot not served\r\n"), &rd),
                 CLUSTER_REPLY_UNSERVED);
    CHECK_EQ_INT(cluster_msg_redirect(
                     S("-CLUSTERDOWN The cluster is down and only accepts read commands\r\n"), &rd),
                 CLUSTER_REPLY_DOWN_RO);
    CHECK_EQ_INT(cluster_msg_redirect(S("-CLUSTERDOWN\r\n"), &rd), CLUSTER_REPLY_DOWN);
    CHECK_EQ_INT(cluster_msg_redirect(S("-CLUSTERDOWN Hash slot\r\n"), &rd), CLUSTER_REPLY_DOWN);
    CHECK(cluster_msg_execabort(
        S("-EXECABORT Transaction discarded because of previous errors.\r\n")));
    CHECK(!cluster_msg_execabort(S("-ERR EXECABORT\r\n")) && !cluster_msg_execabort(S("-EXEC")));
    /* malformed: the client's reply as it came */
    static const char *const bad[] = {
        "-MOVED 16384 127.0.0.1:1\r\n",
        "-MOVED 1 127.0.0.1\r\n",
        "-MOVED 1 127.0.0.1:0\r\n",
        "-MOVED 1 127.0.0.1:65536\r\n",
        "-MOVED\r\n",
        "-MOVED \r\n",
        "-ASK x h:1\r\n",
        "-MOVEDX 1 h:1\r\n",
        "-ERR MOVED 1 h:1\r\n",
        "+MOVED 1 h:1\r\n",
        "-MOVED 1 h:1",
        "-MOVED 1 a b:1\r\n",
        "-TRYAGAINX\r\n",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        CHECK_EQ_INT(cluster_msg_redirect((const uint8_t *)bad[i], strlen(bad[i]), &rd),
                     CLUSTER_REPLY_OTHER);
    }
    struct sockaddr_storage ss;
    socklen_t len;
    struct cluster_node_addr a = {"127.0.0.1", 7000};
    CHECK(cluster_msg_sockaddr(&a, &ss, &len) == 0 && ss.ss_family == AF_INET);
    struct cluster_node_addr b = {"::1", 7000};
    CHECK(cluster_msg_sockaddr(&b, &ss, &len) == 0 && ss.ss_family == AF_INET6);
    struct cluster_node_addr c = {"redis-1.example", 7000};
    CHECK(cluster_msg_sockaddr(&c, &ss, &len) == -1);
}

int main(void)
{
    test_slots();
    test_shards();
    test_shards_nodes_without_an_address();
    test_slots_reply();
    test_redirects();
    UNIT_DONE("test_cluster_msg");
}
