/*
 * conf: the YAML configuration as an immutable, reference-counted value.
 *
 * conf_load() parses and validates a whole file and returns a complete
 * generation or nothing: a reload builds a new generation next to the running
 * one and swaps it whole (nginx's cycle). Runtime objects that outlive one
 * request keep a reference (conf_ref) instead of raw pointers into a generation
 * they do not hold.
 */
#ifndef NC_CONF_H
#define NC_CONF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "hash/dist.h"
#include "hash/hash.h"

struct tls_ctx;

struct conf_addr {
    char *text; /* as written: "127.0.0.1:22121" or "/tmp/x.sock" */
    char *host; /* NULL for a unix socket */
    int port;
    char *path;                 /* unix socket path, NULL for TCP */
    int perm;                   /* unix listen socket mode (octal in the file), 0 if unset */
    struct sockaddr_storage sa; /* resolved at load time */
    socklen_t salen;
};

struct conf_server {
    char *pname; /* "host:port:weight" as twemproxy prints it */
    char *name;  /* ketama point name and stats key */
    struct conf_addr addr;
    uint32_t weight;
    int line;
    bool named; /* the name was written, not made from the address */
};

/* A redis-sentinel a pool asks for the masters of its groups (SPEC 9). */
struct conf_sentinel {
    char *name; /* the given name, else "host:port" (logs only) */
    struct conf_addr addr;
    int line;
};

/* Where reads go in a redis pool whose server named "master" is the master and
 * whose other servers are its replicas (SPEC 10). */
enum conf_read_from {
    READ_FROM_NONE = 0,       /* no server named master: plain sharding */
    READ_FROM_MASTER,         /* reads to the master too */
    READ_FROM_REPLICA,        /* reads to the live replicas only (meitu's behaviour) */
    READ_FROM_PREFER_REPLICA, /* the live replicas, else the master */
    READ_FROM_COUNT
};

/* Whether reads may go to replicas (replica or prefer_replica). */
static inline bool conf_reads_replicas(enum conf_read_from rf)
{
    return rf == READ_FROM_REPLICA || rf == READ_FROM_PREFER_REPLICA;
}

/* TLS of one side of a pool (README, "TLS"): what the file says, and the
 * context loaded from its files with the generation, so that every reload
 * reads the certificate files again even when the YAML did not change. */
struct conf_tls {
    bool enabled;
    bool is_map; /* sentinel_tls given as a mapping (else it takes the pool's tls_* keys) */
    char *ca_file;
    char *ca_dir;
    char *cert_file;
    char *key_file;
    char *server_name; /* connections we make: the name checked and sent as SNI */
    bool verify;       /* connections we make: check the peer (default true); a listener:
                        * verify_client, a client certificate is required */
    char *protocols;   /* a listener's: "TLSv1.2 TLSv1.3" */
    char *ciphers;
    char *ciphersuites;
    int line;
    struct tls_ctx *ctx; /* NULL: off, or files not read (CONF_F_NO_FILES) */
};

/* A login the proxy accepts from clients (client_auth): the password is kept
 * as its SHA-256 only. */
struct conf_user {
    char *name;
    uint8_t sha256[32];
    int line;
};

struct conf_pool {
    char *name;
    int line;
    struct conf_addr listen;
    enum hash_type hash;
    char hash_tag[2];
    bool has_hash_tag;
    enum dist_type distribution;
    int64_t timeout_ms; /* -1: none (0 in the file also means none) */
    int backlog;
    uint32_t client_connections; /* 0: unlimited */
    bool redis;
    bool tcpkeepalive;
    bool reuseport;
    bool preconnect;
    bool auto_eject_hosts;
    bool allow_flush; /* ours: FLUSHDB/FLUSHALL may go to every server of a redis pool */
    /* ours: a request its server fails (unreachable, lost, timed out) closes
     * its client after the replies before it, where twemproxy answers an error
     * in its place: clients retry a lost connection, not an error reply */
    bool server_failure_closes_client;
    /* ours: ms the replies to one read of a client may wait for each other, to
     * leave in one write (client.c; 0: each goes out as soon as it can) */
    int64_t reply_batch_wait_ms;
    char *redis_auth;      /* NULL: none; the password of "user password" */
    char *redis_auth_user; /* the user of redis_auth "user password", else NULL */
    /* redis_auth as written when it has a space: to twemproxy one password */
    char *redis_auth_whole;
    int redis_db;
    uint32_t server_connections;
    int64_t server_retry_timeout_ms;
    uint32_t server_failure_limit;
    /* sorted by name (shorter first, then bytewise). In a sentinel pool these are
     * the groups: name = group name, weight 1, no address (it is runtime data). */
    struct conf_server *servers;
    uint32_t nservers;
    struct conf_sentinel *sentinels; /* file order; NULL: not a sentinel pool */
    uint32_t nsentinels;
    int64_t sentinel_heartbeat_ms;
    char *sentinel_auth; /* NULL: the sentinels need no password */
    /* how long a group's requests may wait in the proxy for a failover to end
     * (0: never held); a crash (master unreachable) holds them only with
     * failover_hold_on_crash, which in a pool without sentinels holds a
     * server's requests while it cannot be reached (a restart) */
    int64_t failover_hold_ms;
    bool failover_hold_on_crash;
    /* where reads go: READ_FROM_NONE in a plain pool; in a pool with a server
     * named "master" (master = its index) or in a sentinel pool that sets
     * read_from, the master or the replicas (SPEC 10) */
    enum conf_read_from read_from;
    uint32_t master;
    /* ms a static pool's replica may serve reads after its link to the master
     * went down (redis' master_link_down_since_seconds); -1: no bound */
    int64_t replica_max_link_down_ms;
    struct conf_tls tls;              /* tls, tls_*: the servers speak TLS */
    struct conf_tls sentinel_tls;     /* the sentinels speak TLS */
    struct conf_tls listen_tls;       /* clients speak TLS: on listen, or on listen_tls_addr */
    struct conf_addr listen_tls_addr; /* unset: host and path NULL */
    /* the logins clients may give (client_auth; else the user of redis_auth
     * "user password"); none: redis_auth alone is the password, as in twemproxy */
    struct conf_user *client_users;
    uint32_t nclient_users;
    /* a Redis Cluster behind the pool: servers are seed nodes, keys go to the
     * slot CRC16 gives them (hash, distribution, hash_tag are refused) */
    bool redis_cluster;
    int64_t cluster_refresh_ms; /* how often the slot map is asked for anyway */
};

/* worker_processes at most (a worker's number is below it: CLIENT ID uses that) */
#define CONF_MAX_WORKERS 1024

struct conf_global {
    int worker_processes;        /* 0: single process; -1: auto */
    int worker_shutdown_timeout; /* seconds */
    long max_openfiles;
    char *user;
    char *group;
};

struct conf {
    char *path;
    struct conf_global global;
    struct conf_pool *pools; /* sorted by name like servers */
    uint32_t npools;
    unsigned refs;
};

/* Every problem found, each "file:line: key: what is wrong". */
struct conf_errors {
    char **msgs;
    uint32_t n;
};

/* Load and validate a whole file. Returns NULL when any problem was found; the
 * problems are appended to errs (which may be NULL). Server hostnames that do
 * not resolve are not errors (twemproxy resolves them at connect time): their
 * conf_addr.salen is 0 and the connecting code must resolve host itself. */
struct conf *conf_load(const char *path, struct conf_errors *errs);
/* The same for a reload: path must name a regular file. A FIFO (or a pipe's
 * /dev/fd/N, given at the start) would block the reading process until
 * someone writes to it, and no signal would be heard meanwhile. */
struct conf *conf_reload(const char *path, struct conf_errors *errs);

/* Resolve numeric addresses only: no DNS, no /etc/hosts (fuzzing, unit tests).
 * Names are then left unresolved (salen 0), listen ones included. */
#define CONF_F_NUMERIC_ONLY 1u
/* Read no certificate file (fuzzing, unit tests): TLS contexts stay NULL. */
#define CONF_F_NO_FILES 2u

/* The same from bytes in memory; name is used in messages and as conf->path. */
struct conf *conf_load_buf(const char *name, const char *data, size_t len,
                           struct conf_errors *errs);
struct conf *conf_load_buf_flags(const char *name, const char *data, size_t len, unsigned flags,
                                 struct conf_errors *errs);
struct conf *conf_ref(struct conf *c);
/* Whether user (NULL: "default") and pw are a login of cp->client_users. */
bool conf_user_check(const struct conf_pool *cp, const uint8_t *user, size_t ulen,
                     const uint8_t *pw, size_t plen);
/* Whether cp->client_users has an entry for user, whatever its password. */
bool conf_user_listed(const struct conf_pool *cp, const uint8_t *user, size_t ulen);
/* "master", "replica", "prefer_replica" ("" for READ_FROM_NONE). */
const char *conf_read_from_name(enum conf_read_from r);
void conf_unref(struct conf *c);
void conf_errors_init(struct conf_errors *e);
void conf_errors_free(struct conf_errors *e);

#endif
