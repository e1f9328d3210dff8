/*
 * sentinel_msg: what the proxy says to a redis-sentinel (and to a master it
 * checks) and how it reads the answers. Pure: the requests are appended to a
 * struct buf, the replies are read from one complete RESP reply that
 * proto_redis.rsp_parse already framed (its elems spans give the elements).
 * No I/O, no allocation beyond the caller's buffers: the fuzzer drives it alone.
 *
 * The replies read (RESP2):
 *   SENTINEL get-master-addr-by-name g   *2 $ip $port, or a null (group unknown)
 *   SENTINEL MASTER g                    *2N $field $value ... with "config-epoch", the
 *                                        version of the sentinels' view of g: it grows
 *                                        with every failover; on the sentinel leading
 *                                        one, "failover-state" (wait_start,
 *                                        select_slave, send_slaveof_noone,
 *                                        wait_promotion, reconf_slaves, update_config)
 *   a pub/sub push on +switch-master     *3 $message $+switch-master $payload, or
 *                                        *4 $pmessage $pattern $+switch-master $payload
 *                                        payload "<group> <old-ip> <old-port> <new-ip> <new-port>"
 *   a push on +sdown (or -sdown)         payload "slave <ip>:<port> <ip> <port> @ <group> <ip>
 * <port>" for a replica ("master <group> <ip> <port>" otherwise) the pushes of a failover +odown,
 * +selected-slave, +failover-state-send-slaveof-noone, +promoted-slave, -failover-abort-*: the same
 * "instance details" payload (a master's may have more words after its port: "+odown master
 * g 10.0.0.1 6379 #quorum 2/2") ROLE                                 *N $master|$slave|$sentinel
 * ... SENTINEL REPLICAS g (or SLAVES g)    *N of *2M $field $value ...: one flat array per replica
 *                                        with "ip", "port", "flags" (comma list: slave,s_down,
 *                                        o_down,disconnected,...) and "master-link-status" (ok|err)
 *
 * A failover as the sentinel leading it publishes it (redis 7: every step on
 * that sentinel only, then +switch-master on every sentinel):
 *
 *   +try-failover master g ... -> +selected-slave slave r ... @ g ... (the replica chosen)
 *   -> +failover-state-send-slaveof-noone (same) -> [SLAVEOF NO ONE sent to r, next tick]
 *   -> +promoted-slave (r says it is a master) -> +failover-end -> +switch-master g old new
 *   or, at any step, -failover-abort-<why> master g ...
 */
#ifndef NC_SENTINEL_MSG_H
#define NC_SENTINEL_MSG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "core/buf.h"
#include "proto/proto.h"

/* The pub/sub channel sentinels announce a completed failover on. */
#define SENTINEL_SWITCH_CHANNEL "+switch-master"
/* ... and an instance they see down (payload "slave <name> <ip> <port> @ <group> ..."). */
#define SENTINEL_SDOWN_CHANNEL "+sdown"

/* What a subscription listens to besides +switch-master (sentinel_msg_subscribe). */
#define SENTINEL_SUB_REPLICAS 1u /* replicas going down (+sdown): reads from replicas */
#define SENTINEL_SUB_FAILOVER 2u /* masters going down, the steps of a failover: holding */

enum sentinel_msg_rc {
    SENTINEL_MSG_OK = 0,   /* the reply says what was asked: out is filled */
    SENTINEL_MSG_NONE = 1, /* well formed, nothing to apply (null, another channel, not master) */
    SENTINEL_MSG_BAD = -1, /* an error reply, or not the shape this reply must have */
};

/* A master's address as the sentinel wrote it; ip points into the reply. */
struct sentinel_master {
    const uint8_t *ip;
    size_t ip_len;
    int port;
};

/* A +switch-master message; group and the ips point into the reply. */
struct sentinel_switch {
    const uint8_t *group;
    size_t group_len;
    struct sentinel_master from; /* the old master */
    struct sentinel_master to;
};

/* A replica as one entry of SENTINEL REPLICAS lists it; addr.ip points into the reply. */
struct sentinel_replica {
    struct sentinel_master addr;
    /* the sentinel sees it serving: no s_down, o_down or disconnected flag,
     * and its link to the master is "ok" (a replica still syncing is not) */
    bool usable;
};

/* A +sdown / -sdown message about a replica; group and addr.ip point into the reply. */
struct sentinel_sdown {
    const uint8_t *group;
    size_t group_len;
    struct sentinel_master addr;
    bool down; /* +sdown; -sdown: it answers again */
};

/* What a pub/sub message of a sentinel says happened (sentinel_msg_parse_event). */
enum sentinel_event_kind {
    SENTINEL_EV_SWITCH = 1, /* +switch-master: the group's master is now `addr` */
    SENTINEL_EV_SDOWN,      /* +sdown: this sentinel sees the instance down */
    SENTINEL_EV_SDOWN_END,  /* -sdown: ... answering again */
    SENTINEL_EV_ODOWN,      /* +odown: a quorum of sentinels sees the master down */
    SENTINEL_EV_ODOWN_END,  /* -odown: ... no longer */
    SENTINEL_EV_PROMOTING,  /* +selected-slave, +failover-state-send-slaveof-noone,
                               +promoted-slave: the leader is promoting replica `addr` */
    SENTINEL_EV_ABORT,      /* -failover-abort-*: the leader gave the failover up */
};

/* One event about a group; group and the ips point into the message. */
struct sentinel_event {
    uint8_t kind;
    bool replica; /* the instance is a replica of the group (else its master) */
    /* ABORT: -failover-abort-slave-timeout, the one abort that comes after a
     * replica was chosen (so only from the sentinel that chose it) */
    bool after_promotion;
    const uint8_t *group;
    size_t group_len;
    struct sentinel_master addr;   /* the instance (SWITCH: the new master) */
    struct sentinel_master master; /* the group's master the event is about (SWITCH: the old one) */
};

/* Requests. Each returns 0, or -1 when out of memory. */
int sentinel_msg_auth(struct buf *out, const char *password);
/* AUTH user password (redis ACL), or AUTH password when user is NULL. */
int sentinel_msg_auth_user(struct buf *out, const char *user, const char *password);
int sentinel_msg_query(struct buf *out, const char *group);
int sentinel_msg_query_epoch(struct buf *out, const char *group);
/* SUBSCRIBE to +switch-master and what `what` (SENTINEL_SUB_*) asks for. */
int sentinel_msg_subscribe(struct buf *out, unsigned what);
int sentinel_msg_ping(struct buf *out);
int sentinel_msg_role(struct buf *out);
/* SENTINEL REPLICAS <group>; old_name: SENTINEL SLAVES, for sentinels before
 * redis 5 (which know no other name). */
int sentinel_msg_query_replicas(struct buf *out, const char *group, bool old_name);

/* Replies: p is the first byte of one complete reply, ri what rsp_parse said of it. */
int sentinel_msg_parse_master(const uint8_t *p, const struct rsp_info *ri,
                              struct sentinel_master *out);
int sentinel_msg_parse_switch(const uint8_t *p, const struct rsp_info *ri,
                              struct sentinel_switch *out);
/* OK for a +sdown or -sdown message about a replica; NONE for any other
 * message, channel or instance type. */
int sentinel_msg_parse_sdown(const uint8_t *p, const struct rsp_info *ri,
                             struct sentinel_sdown *out);
/* Any message of a subscription: OK with ev filled for the events above; NONE
 * for anything else (confirmations, pongs, other channels, sentinels' own
 * instances, instance details that do not read as such); BAD when it is no
 * pub/sub message or a +switch-master payload is malformed. */
int sentinel_msg_parse_event(const uint8_t *p, const struct rsp_info *ri,
                             struct sentinel_event *ev);
/* The config-epoch field of a SENTINEL MASTER reply; NONE for an error reply
 * (the sentinel does not monitor the group). */
int sentinel_msg_parse_epoch(const uint8_t *p, const struct rsp_info *ri, uint64_t *epoch);
/* What a SENTINEL MASTER reply says of a group: the master the sentinel names
 * (ip points into the reply) at its config-epoch (epoch_known false without
 * one), and whether that sentinel leads a failover of it past the choice of a
 * replica (its failover-state), whose first steps a subscription made now has
 * missed. NONE for an error reply; BAD without a valid ip and port. */
struct sentinel_failover {
    struct sentinel_master master;
    uint64_t epoch;
    bool epoch_known;
    bool promoting;
};
int sentinel_msg_parse_failover(const uint8_t *p, const struct rsp_info *ri,
                                struct sentinel_failover *out);
/* SENTINEL_MSG_OK when the server says it is a master. */
int sentinel_msg_parse_role(const uint8_t *p, const struct rsp_info *ri);

/* A SENTINEL REPLICAS reply: OK with out[0..*n) filled in the sentinel's order
 * (at most cap entries: the rest are left out), NONE for an error reply (an
 * unknown group, or a sentinel that does not know the subcommand), BAD when an
 * entry is not a flat field/value array of strings or lacks a valid ip or port. */
int sentinel_msg_parse_replicas(const uint8_t *p, const struct rsp_info *ri,
                                struct sentinel_replica *out, uint32_t cap, uint32_t *n);

/* Exact match of a group name from a message with a configured one: a prefix
 * is a different group ("cache" is not "cache2"). */
bool sentinel_msg_name_is(const uint8_t *name, size_t len, const char *group);

/* A numeric IPv4 or IPv6 address and a port into a socket address; -1 when ip
 * is not a numeric address (sentinels report addresses, not names, unless
 * told to announce hostnames, which is not supported). */
int sentinel_msg_sockaddr(const struct sentinel_master *m, struct sockaddr_storage *ss,
                          socklen_t *len);

#endif
