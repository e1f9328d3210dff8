/*
 * sentinel_int: what the two halves of the sentinel client share (not part of
 * its API, see sentinel.h): sentinel.c runs the links, the queries and the
 * ROLE probes; sentinel_events.c acts on what the subscriptions hear.
 */
#ifndef NC_SENTINEL_INT_H
#define NC_SENTINEL_INT_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#include "sentinel/sentinel.h"
#include "net/sock.h"
#include "proxy/query_conn.h"
#include "sentinel/sentinel_msg.h"

/* How long a sentinel or a candidate master may take to answer, when the
 * heartbeat is shorter: a short heartbeat must not make a sentinel that is a
 * little far away look dead. */
#define SENTINEL_MIN_WAIT_MS 1000

/* Replicas read from one SENTINEL REPLICAS answer: more are left out. */
#define SENTINEL_MAX_REPLICAS 64

/* The epoch of a view heard as a message (+switch-master carries none). */
#define SENTINEL_EPOCH_NONE UINT64_MAX

enum link_kind { LINK_QUERY, LINK_SUB };

#define NO_SENTINEL UINT32_MAX

struct sentinel_link {
    struct query_conn conn;
    struct sentinel *sn;
    uint8_t kind;
    bool auth_pending;   /* the reply to AUTH comes before the others */
    bool failing;        /* failed since its last good answer: log quietly */
    uint32_t at;         /* the sentinel it talks to (index into cp->sentinels) */
    uint32_t tries;      /* query link: sentinels tried since the last heartbeat */
    uint32_t waiting;    /* replies still due */
    uint64_t since_ms;   /* when it began waiting for them */
    uint32_t next_reply; /* query link: per_group per group: address, epoch[, replicas] */
    uint32_t per_group;  /* query link: replies per group in this round */
    uint32_t round_ok;   /* query link: usable answers in this round */
    bool old_replicas;   /* query link: this sentinel knows SENTINEL SLAVES only */
    bool again;          /* query link: ask again once this round is answered */
    uint32_t snap_left;  /* sub link: SENTINEL MASTER answers still due (see sub_snapshot) */
    bool told;           /* sub link: said whether it leads a failover, or failed trying */
    bool ans_ok;         /* query link: the address answer of the current group */
    bool ans_fresh;      /* query link: ... at an epoch not older than the one in use */
    socklen_t ans_len;
    struct sockaddr_storage ans_ss;
};

/* A group's view: the epoch of its master, and a candidate master checked
 * with ROLE on a connection of its own. */
struct sentinel_group {
    struct query_conn conn;
    struct ev_timer timer;
    struct sentinel *sn;
    uint32_t idx;     /* the group's number (the sink's) */
    const char *name; /* the group's name (the sentinels' master name) */
    struct sockaddr_storage ss;
    socklen_t len;
    bool active;
    bool warned;         /* a sentinel's miss for this group was logged loudly already */
    bool looking;        /* the first look for a master is not over (see look_over) */
    uint32_t skip;       /* replies to AUTH still to come before ROLE's */
    uint64_t epoch;      /* config epoch of the master in use: older views are stale */
    uint64_t cand_epoch; /* the epoch the candidate came with */
    /* epoch is a sentinel's answer for the master in use (false after a switch
     * heard as a message: it is still the old master's until the next query);
     * cand_epoch_known: the same for the candidate */
    bool epoch_known;
    bool cand_epoch_known;
    /* the master we left at the last switch, and the epoch we knew then: a view
     * naming it again at no newer epoch is a sentinel that has not heard of
     * the switch yet (its ROLE may still say master for a while) */
    struct sockaddr_storage left_ss;
    socklen_t left_len;
    uint64_t left_epoch;
    /* the last candidate refused (its refusals are logged loudly once) */
    struct sockaddr_storage refused_ss;
    socklen_t refused_len;
    uint32_t
        promoting_by; /* the sentinel promoting a replica of the master in use, or NO_SENTINEL */
    /* before a master is known: the sentinel that leads a failover of the
     * master at pend_ss (NO_SENTINEL: none heard of); taking that master
     * begins the hold at once */
    uint32_t pend_by;
    struct sockaddr_storage pend_ss;
    socklen_t pend_len;
    /* the first look's candidate said master, and waits until every
     * subscription has said whether its sentinel leads a failover */
    bool parked;
    uint8_t *sdown; /* per sentinel: it sees the master in use down (+sdown, +odown) */
    bool down_said; /* the sink was told the master in use is down (failover_begins) */
};

/* Where a sentinel is: its address, which follows its host name (struct
 * sock_lookup: looked up again before a connect). */
struct sentinel_peer {
    struct sockaddr_storage ss;
    socklen_t len; /* 0: none known yet */
    struct sock_lookup lookup;
};

struct sentinel {
    struct pool_watcher watcher; /* first: the pool stops us through it */
    struct group_sink sink;
    const struct conf_pool *cp;
    struct ev_loop *loop;
    bool replica_reads;    /* ask for the groups' replicas, hear of replicas going down */
    unsigned sub_what;     /* what the subscriptions listen to (SENTINEL_SUB_*) */
    uint32_t cur;          /* the sentinel the query link uses */
    uint32_t fails_in_row; /* the query link's failures since a sentinel last answered */
    struct sentinel_link query;
    struct sentinel_link *subs;    /* one per sentinel, same index as cp->sentinels */
    struct sentinel_peer *peers;   /* the same */
    struct sentinel_group *groups; /* same index as cp->servers */
    uint32_t ngroups;
    struct ev_timer heartbeat;
};

/* The name of the sentinel l talks to (logs). */
const char *sentinel_link_peer(const struct sentinel_link *l);
/* A reply as printable text for a log line. */
const char *sentinel_reply_text(char *dst, size_t cap, const uint8_t *p, const struct rsp_info *ri);
/* Give up on l's sentinel for now (see sentinel.c); returns -1. */
int sentinel_link_fail(struct sentinel_link *l, const char *why);
/* Whether group gr's master in use is at ss. */
bool sentinel_master_is(struct sentinel *sn, const struct sentinel_group *gr,
                        const struct sockaddr_storage *ss, socklen_t len);
/* A sentinel's view of pr at a config epoch (SENTINEL_EPOCH_NONE: from a
 * message): checked with ROLE unless stale. */
void sentinel_candidate(struct sentinel *sn, struct sentinel_group *pr,
                        const struct sockaddr_storage *ss, socklen_t len, uint64_t epoch);
/* The address a sentinel gave as a socket address; false after logging why not. */
bool sentinel_addr(struct sentinel *sn, const struct sentinel_group *gr,
                   const struct sentinel_master *m, struct sockaddr_storage *ss, socklen_t *len);
/* The group of that exact name, or NULL. */
struct sentinel_group *sentinel_group_find(struct sentinel *sn, const uint8_t *name, size_t len);

/* A candidate that said master is taken (sentinel.c): passed on to the sink. */
void sentinel_probe_accept(struct sentinel_group *pr);
/* Every subscription link has said whether its sentinel leads a failover (or
 * failed): the first look's parked candidates are taken. */
void sentinel_subs_told(struct sentinel *sn);

/* One message a subscription link read: 0, or -1 when the link was closed. */
int sentinel_sub_reply(struct sentinel_link *l, const uint8_t *p);

#endif
