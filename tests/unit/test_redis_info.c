/*
 * test_redis_info: what INFO replication says of a replica's data
 * (proto/redis_info.c). The texts are redis 7.0.15's own, captured from a
 * replica started before its master (never linked), linked, after its master
 * was killed (link lost), and from the master; the syncing one is the never
 * text with master_sync_in_progress:1 (what redis says during a transfer).
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "proto/redis_info.h"
#include "unit.h"

static const char info_never[] = "# Replication\r\n"
                                 "role:slave\r\n"
                                 "master_host:127.0.0.1\r\n"
                                 "master_port:27111\r\n"
                                 "master_link_status:down\r\n"
                                 "master_last_io_seconds_ago:-1\r\n"
                                 "master_sync_in_progress:0\r\n"
                                 "slave_read_repl_offset:0\r\n"
                                 "slave_repl_offset:0\r\n"
                                 "master_link_down_since_seconds:-1\r\n"
                                 "slave_priority:100\r\n"
                                 "slave_read_only:1\r\n"
                                 "replica_announced:1\r\n"
                                 "connected_slaves:0\r\n"
                                 "master_failover_state:no-failover\r\n"
                                 "master_replid:cb0c76dcbab2b967c725bd2a77ad360729a951df\r\n"
                                 "master_replid2:0000000000000000000000000000000000000000\r\n"
                                 "master_repl_offset:0\r\n"
                                 "second_repl_offset:-1\r\n"
                                 "repl_backlog_active:0\r\n"
                                 "repl_backlog_size:1048576\r\n"
                                 "repl_backlog_first_byte_offset:0\r\n"
                                 "repl_backlog_histlen:0\r\n";

static const char info_linked[] = "# Replication\r\n"
                                  "role:slave\r\n"
                                  "master_host:127.0.0.1\r\n"
                                  "master_port:27111\r\n"
                                  "master_link_status:up\r\n"
                                  "master_last_io_seconds_ago:0\r\n"
                                  "master_sync_in_progress:0\r\n"
                                  "slave_read_repl_offset:0\r\n"
                                  "slave_repl_offset:0\r\n"
                                  "slave_priority:100\r\n"
                                  "slave_read_only:1\r\n"
                                  "replica_announced:1\r\n"
                                  "connected_slaves:0\r\n"
                                  "master_failover_state:no-failover\r\n"
                                  "master_replid:b611ae92584bbff4750063327a05d2b755de0e8d\r\n"
                                  "master_replid2:cb0c76dcbab2b967c725bd2a77ad360729a951df\r\n"
                                  "master_repl_offset:0\r\n"
                                  "second_repl_offset:1\r\n"
                                  "repl_backlog_active:1\r\n"
                                  "repl_backlog_size:1048576\r\n"
                                  "repl_backlog_first_byte_offset:1\r\n"
                                  "repl_backlog_histlen:0\r\n";

static const char info_master[] = "# Replication\r\n"
                                  "role:master\r\n"
                                  "connected_slaves:1\r\n"
                                  "slave0:ip=127.0.0.1,port=27112,state=online,offset=0,lag=0\r\n"
                                  "master_failover_state:no-failover\r\n"
                                  "master_replid:b611ae92584bbff4750063327a05d2b755de0e8d\r\n"
                                  "master_replid2:cb0c76dcbab2b967c725bd2a77ad360729a951df\r\n"
                                  "master_repl_offset:0\r\n"
                                  "second_repl_offset:1\r\n"
                                  "repl_backlog_active:1\r\n"
                                  "repl_backlog_size:1048576\r\n"
                                  "repl_backlog_first_byte_offset:1\r\n"
                                  "repl_backlog_histlen:0\r\n";

static const char info_lost[] = "# Replication\r\n"
                                "role:slave\r\n"
                                "master_host:127.0.0.1\r\n"
                                "master_port:27111\r\n"
                                "master_link_status:down\r\n"
                                "master_last_io_seconds_ago:-1\r\n"
                                "master_sync_in_progress:0\r\n"
                                "slave_read_repl_offset:0\r\n"
                                "slave_repl_offset:0\r\n"
                                "master_link_down_since_seconds:1\r\n"
                                "slave_priority:100\r\n"
                                "slave_read_only:1\r\n"
                                "replica_announced:1\r\n"
                                "connected_slaves:0\r\n"
                                "master_failover_state:no-failover\r\n"
                                "master_replid:b611ae92584bbff4750063327a05d2b755de0e8d\r\n"
                                "master_replid2:cb0c76dcbab2b967c725bd2a77ad360729a951df\r\n"
                                "master_repl_offset:0\r\n"
                                "second_repl_offset:1\r\n"
                                "repl_backlog_active:1\r\n"
                                "repl_backlog_size:1048576\r\n"
                                "repl_backlog_first_byte_offset:1\r\n"
                                "repl_backlog_histlen:0\r\n";

static enum redis_repl repl_of(const char *text)
{
    return redis_info_repl((const uint8_t *)text, strlen(text));
}

/* text with the line of `key` replaced by `line` (or removed when line is ""),
 * in out[4096]; its length. */
static size_t edit(const char *text, const char *key, const char *line, char *out)
{
    size_t n = 0;
    const char *p = text;
    while (*p != '\0') {
        const char *end = strstr(p, "\r\n");
        size_t len = end != NULL ? (size_t)(end - p) + 2 : strlen(p);
        bool match = strncmp(p, key, strlen(key)) == 0 && p[strlen(key)] == ':';
        const char *src = match ? line : p;
        size_t sn = match ? strlen(line) : len;
        if (n + sn < 4096) {
            memcpy(out + n, src, sn);
            n += sn;
        }
        p += len;
    }
    return n;
}

static enum redis_repl repl_with(const char *text, const char *key, const char *line)
{
    char out[4096];
    size_t n = edit(text, key, line, out);
    return redis_info_repl((const uint8_t *)out, n);
}

/* The master_replid text gives (key replaced by line unless key is NULL). */
static bool replid_is(const char *text, const char *key, const char *line, const char *want)
{
    char out[4096];
    size_t n = key != NULL ? edit(text, key, line, out) : strlen(text);
    struct redis_repl_info info;
    redis_info_parse((const uint8_t *)(key != NULL ? out : text), n, &info);
    return strcmp(info.replid, want) == 0 &&
           info.state == redis_info_repl((const uint8_t *)(key != NULL ? out : text), n);
}

/* A master and its linked replica (and one whose link was lost) name the same
 * history; one never linked names its own. Anything but 40 lowercase hex
 * digits is no replid. */
static void test_replid(void)
{
    const char *linked = "b611ae92584bbff4750063327a05d2b755de0e8d";
    CHECK(replid_is(info_master, NULL, NULL, linked));
    CHECK(replid_is(info_linked, NULL, NULL, linked));
    CHECK(replid_is(info_lost, NULL, NULL, linked));
    CHECK(replid_is(info_never, NULL, NULL, "cb0c76dcbab2b967c725bd2a77ad360729a951df"));
    CHECK(replid_is(info_linked, "master_replid", "", "")); /* master_replid2 is not it */
    CHECK(replid_is(info_linked, "master_replid",
                    "master_replid:b611ae92584bbff4750063327a05d2b755de0e8\r\n", ""));
    CHECK(replid_is(info_linked, "master_replid",
                    "master_replid:b611ae92584bbff4750063327a05d2b755de0e8dd\r\n", ""));
    CHECK(replid_is(info_linked, "master_replid",
                    "master_replid:B611AE92584BBFF4750063327A05D2B755DE0E8D\r\n", ""));
    CHECK(replid_is(info_linked, "master_replid",
                    "master_replid:b611ae92584bbff4750063327a05d2b755de0e8g\r\n", ""));
}

/* The seconds a lost link has been down (-1 for any other state). */
static int64_t down_of(const char *text, const char *key, const char *line)
{
    char out[4096];
    size_t n = key != NULL ? edit(text, key, line, out) : strlen(text);
    struct redis_repl_info info;
    redis_info_parse((const uint8_t *)(key != NULL ? out : text), n, &info);
    return info.down_s;
}

static void test_down_seconds(void)
{
    CHECK_EQ_INT(down_of(info_lost, NULL, NULL), 1);
    CHECK_EQ_INT(down_of(info_lost, "master_link_down_since_seconds",
                         "master_link_down_since_seconds:3600\r\n"),
                 3600);
    CHECK_EQ_INT(down_of(info_linked, NULL, NULL), -1);
    CHECK_EQ_INT(down_of(info_never, NULL, NULL), -1);
    CHECK_EQ_INT(down_of(info_master, NULL, NULL), -1);
    CHECK_EQ_INT(down_of(info_never, "master_sync_in_progress", "master_sync_in_progress:1\r\n"),
                 -1);
}

static void test_captured(void)
{
    CHECK_EQ_INT(repl_of(info_never), REDIS_REPL_NEVER);
    CHECK_EQ_INT(repl_of(info_linked), REDIS_REPL_LINKED);
    CHECK_EQ_INT(repl_of(info_lost), REDIS_REPL_LINK_LOST);
    CHECK_EQ_INT(repl_of(info_master), REDIS_REPL_MASTER);
    CHECK_EQ_INT(repl_with(info_never, "master_sync_in_progress", "master_sync_in_progress:1\r\n"),
                 REDIS_REPL_SYNCING);
}

/* Before redis 7 a link never up says the time since the epoch. */
static void test_old_never(void)
{
    CHECK_EQ_INT(repl_with(info_never, "master_link_down_since_seconds",
                           "master_link_down_since_seconds:1764680000\r\n"),
                 REDIS_REPL_NEVER);
    CHECK_EQ_INT(repl_with(info_never, "master_link_down_since_seconds",
                           "master_link_down_since_seconds:86400\r\n"),
                 REDIS_REPL_LINK_LOST);
    CHECK_EQ_INT(repl_with(info_never, "master_link_down_since_seconds",
                           "master_link_down_since_seconds:0\r\n"),
                 REDIS_REPL_LINK_LOST);
}

/* What is missing or not understood says nothing: unknown, never a verdict. */
static void test_unknown(void)
{
    CHECK_EQ_INT(repl_of(""), REDIS_REPL_UNKNOWN);
    CHECK_EQ_INT(repl_of("# Replication\r\n"), REDIS_REPL_UNKNOWN);
    CHECK_EQ_INT(repl_with(info_linked, "role", "role:sentinel\r\n"), REDIS_REPL_UNKNOWN);
    CHECK_EQ_INT(repl_with(info_linked, "role", ""), REDIS_REPL_UNKNOWN);
    CHECK_EQ_INT(repl_with(info_linked, "master_link_status", ""), REDIS_REPL_UNKNOWN);
    CHECK_EQ_INT(repl_with(info_linked, "master_link_status", "master_link_status:maybe\r\n"),
                 REDIS_REPL_UNKNOWN);
    CHECK_EQ_INT(repl_with(info_never, "master_sync_in_progress", "master_sync_in_progress:2\r\n"),
                 REDIS_REPL_UNKNOWN);
    /* link down without since when, or with no number */
    CHECK_EQ_INT(repl_with(info_never, "master_link_down_since_seconds", ""), REDIS_REPL_UNKNOWN);
    CHECK_EQ_INT(repl_with(info_never, "master_link_down_since_seconds",
                           "master_link_down_since_seconds:soon\r\n"),
                 REDIS_REPL_UNKNOWN);
    /* values are whole: no prefix match */
    CHECK_EQ_INT(repl_with(info_linked, "role", "role:slaves\r\n"), REDIS_REPL_UNKNOWN);
    CHECK_EQ_INT(repl_with(info_linked, "master_link_status", "master_link_status:up \r\n"),
                 REDIS_REPL_UNKNOWN);
}

/* Line ends: LF alone, no end on the last line; keys are whole words. */
static void test_lines(void)
{
    CHECK_EQ_INT(repl_of("role:slave\nmaster_link_status:up\nmaster_sync_in_progress:0"),
                 REDIS_REPL_LINKED);
    CHECK_EQ_INT(repl_of("role:master"), REDIS_REPL_MASTER);
    CHECK_EQ_INT(repl_of("xrole:master\r\n"), REDIS_REPL_UNKNOWN);
    CHECK_EQ_INT(repl_of("role:slave\r\nmaster_link_status:up\r\n"), REDIS_REPL_LINKED);
    /* sync in progress wins over the link's status */
    CHECK_EQ_INT(repl_of("role:slave\r\nmaster_link_status:up\r\nmaster_sync_in_progress:1\r\n"),
                 REDIS_REPL_SYNCING);
    CHECK(strlen(redis_repl_name(REDIS_REPL_NEVER)) > 0);
    CHECK(strlen(redis_repl_name((enum redis_repl)99)) > 0);
}

/* A replica's master_host:master_port, as it says them (h49: a replica
 * pointed at another master is told by them before its data changes). */
static void test_master_at(void)
{
    struct redis_repl_info info;
    redis_info_parse((const uint8_t *)info_linked, strlen(info_linked), &info);
    CHECK(strcmp(info.master_at, "127.0.0.1:27111") == 0);
    redis_info_parse((const uint8_t *)info_master, strlen(info_master), &info);
    CHECK(strcmp(info.master_at, "") == 0);
    const char *host_only = "role:slave\r\nmaster_host:10.0.0.1\r\n";
    redis_info_parse((const uint8_t *)host_only, strlen(host_only), &info);
    CHECK(strcmp(info.master_at, "") == 0);
    char big[700] = "role:slave\r\nmaster_port:1\r\nmaster_host:";
    memset(big + strlen(big), 'h', 400);
    redis_info_parse((const uint8_t *)big, strlen(big), &info);
    CHECK(strcmp(info.master_at, "") == 0); /* too long to keep: unsaid */
}

int main(void)
{
    test_master_at();
    test_captured();
    test_down_seconds();
    test_old_never();
    test_unknown();
    test_lines();
    test_replid();
    UNIT_DONE("test_redis_info");
}
