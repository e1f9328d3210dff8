/*
 * fuzz_sentinel: arbitrary bytes from a sentinel (or a master asked ROLE),
 * framed reply by reply as the client frames them, each read as every kind of
 * reply the client expects (addresses, epochs, replica lists, +switch-master,
 * +sdown and the other events of a failover, ROLE). Whatever a hostile peer sends, a reader either
 * refuses it or gives fields that lie inside the reply and are well formed:
 * a port in 1..65535, a group without spaces, an address that is printable.
 */
#include <stdlib.h>
#include <string.h>

#include "proto/redis.h"
#include "sentinel/sentinel_msg.h"
#include "fuzz.h"

static struct rsp_info info;

static void check_inside(const uint8_t *reply, size_t len, const uint8_t *p, size_t n)
{
    FUZZ_ASSERT(p >= reply && p + n <= reply + len);
}

static void check_master(const uint8_t *reply, const struct sentinel_master *m)
{
    check_inside(reply, info.len, m->ip, m->ip_len);
    FUZZ_ASSERT(m->ip_len > 0 && m->port >= 1 && m->port <= 65535);
    for (size_t i = 0; i < m->ip_len; i++) {
        FUZZ_ASSERT(m->ip[i] > ' ' && m->ip[i] < 0x7f);
    }
    struct sockaddr_storage ss;
    socklen_t len = 0;
    if (sentinel_msg_sockaddr(m, &ss, &len) == 0) {
        FUZZ_ASSERT(len > 0 && len <= sizeof(ss));
        FUZZ_ASSERT(ss.ss_family == AF_INET || ss.ss_family == AF_INET6);
    }
}

static void read_as_everything(const uint8_t *p)
{
    struct sentinel_master m;
    if (sentinel_msg_parse_master(p, &info, &m) == SENTINEL_MSG_OK) {
        check_master(p, &m);
    }
    struct sentinel_switch sw;
    if (sentinel_msg_parse_switch(p, &info, &sw) == SENTINEL_MSG_OK) {
        check_inside(p, info.len, sw.group, sw.group_len);
        FUZZ_ASSERT(sw.group_len > 0 && memchr(sw.group, ' ', sw.group_len) == NULL);
        check_master(p, &sw.to);
        /* exact matching: the group's own text matches, one byte less does not */
        char name[64];
        if (sw.group_len < sizeof(name) && memchr(sw.group, '\0', sw.group_len) == NULL) {
            memcpy(name, sw.group, sw.group_len);
            name[sw.group_len] = '\0';
            FUZZ_ASSERT(sentinel_msg_name_is(sw.group, sw.group_len, name));
            FUZZ_ASSERT(!sentinel_msg_name_is(sw.group, sw.group_len - 1, name));
        }
    }
    struct sentinel_replica reps[4];
    uint32_t n = 99;
    int rrc = sentinel_msg_parse_replicas(p, &info, reps, 4, &n);
    FUZZ_ASSERT(rrc == SENTINEL_MSG_OK || rrc == SENTINEL_MSG_NONE || rrc == SENTINEL_MSG_BAD);
    FUZZ_ASSERT(n <= 4 && (rrc == SENTINEL_MSG_OK || n == 0));
    for (uint32_t i = 0; i < n; i++) {
        check_master(p, &reps[i].addr);
    }
    struct sentinel_sdown sd;
    if (sentinel_msg_parse_sdown(p, &info, &sd) == SENTINEL_MSG_OK) {
        check_inside(p, info.len, sd.group, sd.group_len);
        FUZZ_ASSERT(sd.group_len > 0 && memchr(sd.group, ' ', sd.group_len) == NULL);
        check_master(p, &sd.addr);
    }
    struct sentinel_event ev;
    int erc = sentinel_msg_parse_event(p, &info, &ev);
    FUZZ_ASSERT(erc == SENTINEL_MSG_OK || erc == SENTINEL_MSG_NONE || erc == SENTINEL_MSG_BAD);
    if (erc == SENTINEL_MSG_OK) {
        FUZZ_ASSERT(ev.kind >= SENTINEL_EV_SWITCH && ev.kind <= SENTINEL_EV_ABORT);
        check_inside(p, info.len, ev.group, ev.group_len);
        FUZZ_ASSERT(ev.group_len > 0 && memchr(ev.group, ' ', ev.group_len) == NULL);
        check_master(p, &ev.addr);
        check_master(p, &ev.master);
        /* only replicas are promoted; a quorum judges masters only */
        FUZZ_ASSERT(ev.kind != SENTINEL_EV_PROMOTING || ev.replica);
        FUZZ_ASSERT((ev.kind != SENTINEL_EV_ODOWN && ev.kind != SENTINEL_EV_ABORT) || !ev.replica);
    }
    uint64_t epoch;
    int rc = sentinel_msg_parse_epoch(p, &info, &epoch);
    FUZZ_ASSERT(rc == SENTINEL_MSG_OK || rc == SENTINEL_MSG_NONE || rc == SENTINEL_MSG_BAD);
    struct sentinel_failover f;
    if (sentinel_msg_parse_failover(p, &info, &f) == SENTINEL_MSG_OK) {
        check_master(p, &f.master);
    }
    int role = sentinel_msg_parse_role(p, &info);
    FUZZ_ASSERT(role == SENTINEL_MSG_OK || role == SENTINEL_MSG_NONE || role == SENTINEL_MSG_BAD);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t pos = 0;
    while (pos < size) {
        /* each reply in its own allocation: ASan sees any read past its end */
        size_t n = size - pos;
        int rc = redis_rsp_parse(data + pos, n, 0, &info);
        if (rc != PARSE_OK) {
            break;
        }
        FUZZ_ASSERT(info.len > 0 && info.len <= n);
        uint8_t *copy = malloc(info.len);
        memcpy(copy, data + pos, info.len);
        read_as_everything(copy);
        free(copy);
        pos += info.len;
    }
    return 0;
}
