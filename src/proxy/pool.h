/*
 * pool: the runtime side of one configured server pool: its servers, the
 * distribution over the live ones, its listener and its counters. A pool keeps a
 * reference on the configuration generation it was built from.
 */
#ifndef NC_POOL_H
#define NC_POOL_H

#include <stdint.h>

#include "conf/conf.h"
#include "event/ev.h"
#include "hash/dist.h"
#include "proto/proto.h"
#include "stats/histo.h"
#include "stats/stats_fields.h"

struct instance;
struct server;
struct sentinel;

struct listener {
    struct ev_io io;
    struct pool *pool;
    struct ev_timer pause; /* out of descriptors: accept again a little later */
};

struct pool {
    struct instance *inst;
    struct conf *conf; /* reference on the generation */
    const struct conf_pool *cp;
    const struct proto *proto;
    uint32_t idx;
    struct server *servers;
    uint32_t nservers;
    struct dist dist;
    struct dist_node *nodes; /* scratch for dist rebuilds */
    struct listener listener;
    uint32_t nclients;
    struct client *clients;      /* every open client of the pool */
    struct ev_timer retry_timer; /* next ejected server to bring back */
    struct sentinel *sentinel;   /* a pool with sentinels: where its groups' masters are */
    /* a pool a reload replaced: on the instance's retired list until idle */
    struct pool *next_retired;
    uint64_t retire_deadline_ms;
    int64_t stats[SP_COUNT];
    int64_t xstats[SPX_COUNT]; /* ours, after twemproxy's */
    struct histo lat_request;  /* parse to reply, as the client sees it (us) */
};

struct pool *pool_create(struct instance *in, struct conf *conf, uint32_t idx);
void pool_destroy(struct pool *p);
int pool_listen(struct pool *p);
/* The server for a key (hash_tag, hash, distribution); NULL when none is live. */
struct server *pool_route(struct pool *p, const uint8_t *key, size_t len);
/* The key's hash as the pool places it (hash_tag applied, then hash), and the
 * server for a key of that hash and length: a caller that needs the hash too
 * computes it once. */
uint32_t pool_key_hash(const struct pool *p, const uint8_t *key, size_t len);
struct server *pool_route_hashed(struct pool *p, uint32_t hash, size_t len);
/* Rebuild the distribution after a server left or came back. */
void pool_rebuild(struct pool *p);
void pool_eject(struct pool *p, struct server *s);
/* Stop accepting, let every client finish its pending replies, then close. */
void pool_drain(struct pool *p);

#endif
