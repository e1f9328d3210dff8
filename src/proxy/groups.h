/*
 * groups: a sentinel pool's groups, as the sentinel client (sentinel/, a layer
 * above) talks to them: where a group's master is, which replicas it has,
 * whether one of them is up, and when a failover of its master begins and ends
 * (the pool holds the group's requests meanwhile: proxy/hold.h). A callback
 * table implemented by the pool, so the sentinel client knows no pool and a
 * unit test can give it a sink of its own. Groups are numbered as the pool's
 * servers (conf_pool.servers, sorted).
 */
#ifndef NC_GROUPS_H
#define NC_GROUPS_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

struct pool;

/* One replica as the sentinels list it. */
struct replica_addr {
    struct sockaddr_storage ss;
    socklen_t len;
    bool usable; /* the sentinels see it up and linked to its master */
};

struct group_sink_ops {
    /* The master group g uses now; false when none is known yet. */
    bool (*master_get)(void *ctx, uint32_t g, struct sockaddr_storage *ss, socklen_t *len);
    /* g's master is at sa (it said so itself, with ROLE): requests go there from
     * now on. Returns true when that moved g (false: it was there already).
     * leaving: a sentinel leads a failover away from it that began before we
     * listened, which failover_begins would have said. */
    bool (*master_found)(void *ctx, uint32_t g, const struct sockaddr *sa, socklen_t len,
                         bool leaving);
    /* Every replica the sentinels list now for g (n may be 0). */
    void (*replicas_listed)(void *ctx, uint32_t g, const struct replica_addr *v, uint32_t n);
    /* The replica of g at sa went down (+sdown) or came back (-sdown). */
    void (*replica_state)(void *ctx, uint32_t g, const struct sockaddr *sa, socklen_t len,
                          bool usable);
    /* A failover of g's master in use began: the sentinel leading it is promoting
     * one of its replicas (down false), or the sentinels see that master down
     * (down true). Said again for every step heard, from every sentinel. */
    void (*failover_begins)(void *ctx, uint32_t g, bool down);
    /* g's failover is over and g keeps its master (why says how): the sentinel
     * that began it gave it up (-failover-abort-*), or the sentinels name that
     * master again at a newer epoch. A switch ends one through master_found. */
    void (*failover_ends)(void *ctx, uint32_t g, const char *why);
    /* The sentinels took back what made g's master down (their -sdown and
     * -odown), and no replica of it is being promoted: a hold begun on their
     * word alone ends (one that saw the master fail itself, or a promotion,
     * goes on). */
    void (*down_ends)(void *ctx, uint32_t g);
    /* The first look for g's master is over with none found (every sentinel
     * tried, or the one answering named no master that said so itself): its
     * requests stop waiting for one and fail at once until one is found. */
    void (*master_unknown)(void *ctx, uint32_t g);
};

struct group_sink {
    const struct group_sink_ops *ops;
    void *ctx;
};

/* The sink of pool p (a sentinel pool). */
struct group_sink pool_group_sink(struct pool *p);

#endif
