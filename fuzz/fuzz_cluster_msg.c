/*
 * fuzz_cluster_msg: arbitrary bytes from a cluster node, read as a CLUSTER
 * SHARDS reply, a CLUSTER SLOTS reply and a redirection error. Whatever a
 * hostile node sends, a reader refuses it or gives a topology whose ranges are
 * inside 0..16383 and belong to a shard with a master, whose nodes have a
 * port and a printable host, and a redirection with a slot and a port.
 */
#include <stdlib.h>
#include <string.h>

#include "cluster/cluster_msg.h"
#include "fuzz.h"

static void check_host(const struct cluster_node_addr *a)
{
    size_t n = strnlen(a->host, sizeof(a->host));
    FUZZ_ASSERT(n < sizeof(a->host));
    for (size_t i = 0; i < n; i++) {
        FUZZ_ASSERT(a->host[i] > ' ' && a->host[i] < 0x7f);
    }
}

static void check_topo(const struct cluster_topo *t)
{
    FUZZ_ASSERT(t->nnodes <= CLUSTER_MAX_NODES);
    for (uint32_t i = 0; i < t->nnodes; i++) {
        FUZZ_ASSERT(t->nodes[i].addr.port >= 1 && t->nodes[i].shard < t->nshards);
        check_host(&t->nodes[i].addr);
    }
    for (uint32_t i = 0; i < t->nranges; i++) {
        FUZZ_ASSERT(t->ranges[i].start <= t->ranges[i].end && t->ranges[i].end < CLUSTER_SLOTS);
        FUZZ_ASSERT(cluster_topo_master(t, t->ranges[i].shard) >= 0);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct cluster_topo t;
    for (int tls = 0; tls < 2; tls++) {
        t.tls_ports = tls != 0;
        if (cluster_msg_parse_shards(data, size, &t) == 0) {
            check_topo(&t);
        }
    }
    if (cluster_msg_parse_slots(data, size, &t) == 0) {
        check_topo(&t);
    }
    struct cluster_redirect rd;
    int k = cluster_msg_redirect(data, size, &rd);
    if (k == CLUSTER_REPLY_MOVED || k == CLUSTER_REPLY_ASK) {
        FUZZ_ASSERT(rd.slot < CLUSTER_SLOTS && rd.to.port >= 1);
        check_host(&rd.to);
    }
    (void)cluster_key_slot(data, size);
    return 0;
}
