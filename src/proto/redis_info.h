/*
 * redis_info: what a server's INFO replication text says of its replication,
 * reduced to what decides whether a replica's data is its master's. Pure (no
 * I/O): unit-tested and fuzzed. The fields read (redis 2.8 to 8):
 *
 *   role:slave | role:master
 *   master_link_status:up | down
 *   master_sync_in_progress:0 | 1
 *   master_link_down_since_seconds:N   (link down only; -1 from redis 7 when
 *       the link was never up since the server started or was made a replica;
 *       before 7 the same case gives the time since the epoch)
 *   master_replid:40 hex digits        (redis 4 and later: the replication
 *       history a server holds. A master's; a replica once linked takes its
 *       master's, so every server of one chain says the same, and a master
 *       made of a replica, or restarted without its data, starts a new one)
 */
#ifndef NC_PROTO_REDIS_INFO_H
#define NC_PROTO_REDIS_INFO_H

#include <stddef.h>
#include <stdint.h>

enum redis_repl {
    REDIS_REPL_UNKNOWN = 0, /* not the INFO replication text of a redis server */
    REDIS_REPL_MASTER,      /* role:master: it replicates nothing */
    REDIS_REPL_LINKED,      /* a replica whose link to its master is up */
    REDIS_REPL_SYNCING,     /* a full sync is on: it will load its master's data */
    REDIS_REPL_NEVER,       /* link down, never up since it started or became a replica */
    REDIS_REPL_LINK_LOST,   /* link down after it was up: the data of then */
};

#define REDIS_REPLID_LEN 40

/* "master_host:master_port" as a replica says it, at most this long. */
#define REDIS_MASTER_AT_MAX 300

struct redis_repl_info {
    enum redis_repl state;
    char replid[REDIS_REPLID_LEN + 1]; /* master_replid; "" unsaid or malformed */
    int64_t down_s; /* REDIS_REPL_LINK_LOST: seconds the link has been down; else -1 */
    char master_at[REDIS_MASTER_AT_MAX]; /* a replica's master_host:master_port; "" unsaid */
};

/* What text[0..n) (an INFO reply's payload) says of the server's replication. */
void redis_info_parse(const uint8_t *text, size_t n, struct redis_repl_info *out);
/* Its state alone. */
enum redis_repl redis_info_repl(const uint8_t *text, size_t n);
/* "linked", "syncing", ...: for log lines. */
const char *redis_repl_name(enum redis_repl r);

#endif
