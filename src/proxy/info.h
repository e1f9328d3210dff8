/*
 * info: INFO answered by the proxy in redis' layout (ready checks read it:
 * ioredis waits for loading:0; redis-cli --stat reads keys, memory, clients
 * and counters from it). The proxy's own figures come from its counters. Each
 * INFO asks one live server "INFO server" first, so the version is the
 * servers' and a ready check passes only when a server answers. The Keyspace
 * section (keys and expires summed over the servers, for the pool's redis_db)
 * is asked in the background, every second for a minute after a client last
 * asked for INFO, never per INFO.
 */
#ifndef NC_INFO_H
#define NC_INFO_H

#include <stdbool.h>
#include <stdint.h>

#include "core/buf.h"
#include "event/ev.h"
#include "proto/proto.h"

struct pool;
struct server;

struct pool_info {
    struct ev_timer timer;
    uint64_t wanted_until_ms; /* keep asking the servers until then */
    char version[32];         /* redis_version, as the first server that answered says */
    char policy[32];          /* maxmemory_policy, as the last server asked for INFO says */
    /* loading and loading_eta_seconds, as the server a client's INFO asked says:
     * a client library (ioredis) waits while it loads instead of meeting -LOADING */
    bool loading;
    char loading_eta[24];
    int64_t keys, expires; /* summed over the servers' last answers */
    int64_t *srv_keys;     /* per server: its last answer (-1: none yet) */
    int64_t *srv_expires;
};

struct client;

/* INFO [section ...] (ROUTE_ANY with info->facts). */
void info_dispatch(struct client *c, const uint8_t *p, const struct req_info *ri);
int info_pool_init(struct pool *p);
void info_pool_free(struct pool *p);

#endif
