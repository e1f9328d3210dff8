/*
 * cluster_msg: what the proxy reads from and says to a Redis Cluster node,
 * as pure functions over buffers (no I/O, no state): the slot of a key, the
 * topology a node describes (CLUSTER SHARDS, or CLUSTER SLOTS on servers
 * before 7.0), and the error replies that redirect or delay a command.
 *
 *   slot of a key     CRC16 (XMODEM) of the key, or of the part between the
 *                     first '{' and the next '}' when that part is not empty,
 *                     mod 16384: redis' own rule, whatever the pool's hash_tag
 *   CLUSTER SHARDS    *N of shards, each a flat map: "slots" -> *2K of integers
 *                     (start end pairs), "nodes" -> *M of flat maps with "ip",
 *                     "endpoint", "port", "role" (master|replica), "health"
 *                     (online|failed|loading), ...
 *   CLUSTER SLOTS     *N of ranges: start end *[ip port id ...] (master) then
 *                     *[ip port id ...] per replica
 *   -MOVED <slot> <host>:<port>   the slot lives there now: update the map
 *   -ASK <slot> <host>:<port>     this key is being moved there: ASKING + the
 *                                 command, once, there
 *   -TRYAGAIN ...      a multi-key command while its slot is half moved
 *   -CLUSTERDOWN ...   the cluster cannot serve (a failover, uncovered slots)
 *
 * An address as a node writes it may be empty ("" in old servers: the node
 * asked) or "?" (unknown endpoint): the caller decides what that means.
 */
#ifndef NC_CLUSTER_MSG_H
#define NC_CLUSTER_MSG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "core/buf.h"

#define CLUSTER_SLOTS 16384u
/* More nodes than this in one topology are refused: no real cluster has them
 * (redis suggests 1000 at most), a hostile reply could claim millions. */
#define CLUSTER_MAX_NODES 1024u
/* Longest host text kept (an IPv6 address is 45, a hostname may be longer). */
#define CLUSTER_HOST_MAX 255
/* A node's id: 40 hex digits as redis makes them (longer ones are not kept). */
#define CLUSTER_ID_MAX 40

/* The slot of a key (redis' keyHashSlot). */
uint16_t cluster_key_slot(const uint8_t *key, size_t len);

struct cluster_node_addr {
    char host[CLUSTER_HOST_MAX + 1]; /* "" : the node that answered */
    uint16_t port;
};

struct cluster_topo_node {
    struct cluster_node_addr addr;
    char id[CLUSTER_ID_MAX + 1]; /* "": not said (CLUSTER SLOTS before redis 4) */
    uint32_t shard;              /* index of its shard */
    bool master;                 /* the shard's master (one per shard), if it has slots */
    bool failed;                 /* health "failed" (CLUSTER SHARDS only) */
    bool loading;                /* health "loading": a replica still syncing */
};

struct cluster_topo_range {
    uint16_t start, end; /* inclusive */
    uint32_t shard;
};

/* A node's view of the cluster. Shards with no master node listed are
 * dropped (their slots are uncovered); a master listed with no slot is not
 * taken for one (a node made a replica a moment ago is listed so). */
struct cluster_topo {
    struct cluster_topo_node *nodes;
    uint32_t nnodes, cnodes;
    struct cluster_topo_range *ranges;
    uint32_t nranges, cranges;
    uint32_t nshards;
    bool tls_ports; /* set by its owner, kept by a reset: CLUSTER SHARDS' tls-port is wanted */
    char err[160];  /* why a parse failed */
};

void cluster_topo_init(struct cluster_topo *t);
void cluster_topo_reset(struct cluster_topo *t);
void cluster_topo_free(struct cluster_topo *t);
/* The shard's master node, or -1. */
int cluster_topo_master(const struct cluster_topo *t, uint32_t shard);

/* Parse one complete RESP2 reply p[0..len) to CLUSTER SHARDS / CLUSTER SLOTS
 * into t (reset first): 0, or -1 with t->err (not the shape it must have, an
 * error reply, a slot out of range, too many nodes, out of memory). With
 * t->tls_ports, a node's tls-port is taken when it has one, else its port. A
 * node of CLUSTER SHARDS with no port of the kind wanted (a failed "noaddr"
 * node has none; a TLS-only node when t->tls_ports is off) is left out, as if
 * not listed: nothing could connect to it. An empty address is kept: it means
 * the host of the node asked. */
int cluster_msg_parse_shards(const uint8_t *p, size_t len, struct cluster_topo *t);
int cluster_msg_parse_slots(const uint8_t *p, size_t len, struct cluster_topo *t);
/* An error reply that says the server knows no CLUSTER SHARDS (before 7.0). */
bool cluster_msg_unknown_subcommand(const uint8_t *p, size_t len);

enum cluster_redirect_kind {
    CLUSTER_REPLY_OTHER = 0, /* anything else: the client's reply */
    CLUSTER_REPLY_MOVED,
    CLUSTER_REPLY_ASK,
    CLUSTER_REPLY_TRYAGAIN,
    CLUSTER_REPLY_DOWN,     /* CLUSTERDOWN The cluster is down: every slot */
    CLUSTER_REPLY_UNSERVED, /* CLUSTERDOWN Hash slot not served: this slot */
    CLUSTER_REPLY_DOWN_RO,  /* CLUSTERDOWN ... only accepts read commands: writes */
};

struct cluster_redirect {
    uint8_t kind;  /* enum cluster_redirect_kind */
    uint16_t slot; /* MOVED / ASK */
    struct cluster_node_addr to;
};

/* What an error reply p[0..len) ("-...\r\n") says. A malformed MOVED / ASK is
 * CLUSTER_REPLY_OTHER: the client sees it as it came. */
int cluster_msg_redirect(const uint8_t *p, size_t len, struct cluster_redirect *out);
/* Whether p[0..len) is redis' answer to EXEC after a command it refused to queue. */
bool cluster_msg_execabort(const uint8_t *p, size_t len);

/* A socket address for a numeric host (IPv4 or IPv6): 0, or -1 (a name). */
int cluster_msg_sockaddr(const struct cluster_node_addr *a, struct sockaddr_storage *ss,
                         socklen_t *len);

/* The requests: CLUSTER SHARDS, CLUSTER SLOTS, ASKING, READONLY. */
int cluster_msg_shards_request(struct buf *out);
int cluster_msg_slots_request(struct buf *out);
extern const char cluster_msg_asking[]; /* "*1\r\n$6\r\nASKING\r\n" */
extern const size_t cluster_msg_asking_len;
extern const char cluster_msg_readonly[]; /* "*1\r\n$8\r\nREADONLY\r\n" */
extern const size_t cluster_msg_readonly_len;
extern const char cluster_msg_readwrite[]; /* "*1\r\n$9\r\nREADWRITE\r\n" */
extern const size_t cluster_msg_readwrite_len;

#endif
