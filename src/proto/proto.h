/*
 * proto: the contract between the proxy core and a wire protocol (redis, memcache).
 *
 * Every function here is pure: it reads bytes and writes into caller-owned
 * structures or a struct buf, and never does I/O. The core owns sockets and
 * buffers; a protocol only says where a message ends, which keys it carries,
 * how to rebuild it for a subset of its keys, and how to merge the replies.
 *
 * Offsets in struct span are relative to the first byte of the message that was
 * parsed, so they stay valid when the core moves the message bytes elsewhere.
 */
#ifndef NC_PROTO_H
#define NC_PROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"

struct span {
    uint32_t off;
    uint32_t len;
};

/* Growable span array owned by the caller and reused between parses. Parsers
 * grow it with spans_push(); spans_free() releases it. */
struct spans {
    struct span *v;
    uint32_t n;
    uint32_t cap;
};

void spans_init(struct spans *s);
void spans_free(struct spans *s);
/* Room for one more span (out of line: it runs once per vector's growth). */
int spans_grow(struct spans *s);
static inline int spans_push(struct spans *s, uint32_t off, uint32_t len)
{
    if (s->n == s->cap && spans_grow(s) != 0) {
        return -1;
    }
    s->v[s->n].off = off;
    s->v[s->n].len = len;
    s->n++;
    return 0;
}

static inline void spans_reset(struct spans *s)
{
    s->n = 0;
}

enum parse_rc {
    PARSE_OK = 0,    /* one complete message of info->len bytes */
    PARSE_AGAIN = 1, /* incomplete: info->len is a hint of the total bytes needed, 0 if unknown */
    PARSE_ERROR =
        2, /* the stream cannot be resynchronised: info->err says why, close after replying */
    /* refused and too large to hold: answer info->err (unless info->noreply), send
     * info->wire if it is not empty, and drop the message's info->len bytes, those
     * not received yet included; the stream goes on after them */
    PARSE_DROP = 3,
};

/* What the core does with a complete request. */
enum req_route {
    /* forward the bytes unchanged to the one server that holds every key in keys (server 0
     * if there is no key); keys on several servers: refused with a CROSSSLOT error */
    ROUTE_KEY = 0,
    ROUTE_SPLIT,  /* one fragment per server owning some key, replies merged by proto->merge */
    ROUTE_ALL,    /* the same bytes to every server of the pool, replies merged by proto->merge */
    ROUTE_LOCAL,  /* answered by proto->local without any server */
    ROUTE_REJECT, /* answered with the error in info->err; the stream goes on after info->len bytes
                   */
    /* keyless, and any one live server answers it as well as another (memcached version) */
    ROUTE_ANY,
    /* keyless, about the whole dataset (SCAN, KEYS, DBSIZE, RANDOMKEY): forwarded where the
     * pool is one dataset (master/replica, one sentinel group, one server); elsewhere
     * answered with info->err, which the parser fills for that case */
    ROUTE_DATASET,
    /* MULTI, EXEC, DISCARD, WATCH, UNWATCH (info->txn says which): the core keeps the
     * transaction; WATCH's keys are in keys. (A ROUTE_LOCAL request with txn DISCARD and
     * sub UNSUBSCRIBE, redis' RESET, ends the transaction, the WATCHes and every
     * subscription, channels and patterns, before local answers it.) */
    ROUTE_TXN,
    /* SUBSCRIBE, PSUBSCRIBE, UNSUBSCRIBE, PUNSUBSCRIBE (info->sub says which): the channels
     * or patterns are in keys */
    ROUTE_PUBSUB,
};

/* What a ROUTE_TXN request is. */
enum req_txn { TXN_NONE = 0, TXN_MULTI, TXN_EXEC, TXN_DISCARD, TXN_WATCH, TXN_UNWATCH };

/* What a ROUTE_PUBSUB request (or a subscription confirmation, rsp_info.push) is. */
/* SUB_PING marks a PING (a local command): a subscribed client's is answered
 * after the messages its servers sent before it (pubsub_ping). */
enum req_sub {
    SUB_NONE = 0,
    SUB_SUBSCRIBE,
    SUB_PSUBSCRIBE,
    SUB_UNSUBSCRIBE,
    SUB_PUNSUBSCRIBE,
    SUB_PING
};

/* What a reply read on a subscribed server connection is (rsp_parse with a
 * subscription command's id sets rsp_info.push). */
enum rsp_push {
    PUSH_NONE = 0, /* a plain reply */
    PUSH_MESSAGE,  /* message / pmessage (smessage): relayed as it is */
    PUSH_CONFIRM,  /* subscribe / psubscribe / unsubscribe / punsubscribe: rsp_info.sub says
                      which, rsp_info.chan the channel (len 0 with chan_null: none) */
    PUSH_PONG,     /* a PING's answer in subscribed mode */
};

/* Bounds a parser enforces itself (the core enforces buffer bytes per client). */
#define PROTO_MAX_KEY_LEN_REDIS    (64u * 1024 * 1024)
#define PROTO_MAX_KEY_LEN_MEMCACHE 250u

struct req_info {
    size_t len;        /* bytes of the request (PARSE_OK, ROUTE_REJECT) or hint (PARSE_AGAIN) */
    uint8_t route;     /* enum req_route */
    bool noreply;      /* no response will come from the server: do not wait for one */
    bool quit;         /* close the connection after this request's reply */
    bool empty;        /* ROUTE_LOCAL with nothing to answer (redis `*0`, a blank line):
                          never queued in a transaction nor sent anywhere */
    bool local_only;   /* answered by the proxy only: never queued in a transaction, where
                          a command that changes the client's connection (SELECT, HELLO,
                          AUTH, CLIENT SETNAME) would change the shared server connection,
                          and one that tells of the connection or the proxy (CLIENT ID,
                          CLIENT GETNAME, INFO, COMMAND) would tell of the server's */
    bool late_err;     /* ROUTE_REJECT for what redis finds only when it runs the command
                          (MSET without whole pairs): a transaction queues it, placed by
                          its first key, and EXEC gets redis' error for it alone; as
                          for `refused`, NOAUTH or the subscribed-mode error come first */
    bool refused;      /* ROUTE_REJECT of the proxy's own (unsupported, key too long), not
                          redis' (unknown, arity): redis would have refused a client not
                          logged in, or subscribed, first, so local() does too */
    bool readonly;     /* a read (may go to a replica) */
    bool write;        /* redis: a write (FLUSHALL, FUNCTION LOAD): ROUTE_ALL sends it to a
                          master/replica pool's master alone, whose replicas replay it */
    uint16_t cmd;      /* protocol-specific command id */
    uint16_t named;    /* redis: the command named (a container's subcommand), also when
                          rejected: redis' errors before it runs one name it */
    struct spans keys; /* keys, in request order */
    struct spans args; /* redis: every argument incl. the name; memcache: the command line tokens */
    uint8_t txn;       /* ROUTE_TXN: enum req_txn */
    uint8_t sub;       /* ROUTE_PUBSUB: enum req_sub */
    bool cursor;       /* ROUTE_DATASET walked over the servers with a cursor (SCAN); other
                          ROUTE_DATASET requests go to every server of a sharded pool, merged */
    bool flush;        /* ROUTE_ALL / ROUTE_DATASET that empties the servers (FLUSHDB): only
                          where the pool allows it */
    bool own_conn;     /* ROUTE_ALL on the client's own connection to each server: a shared
                          one waits behind the busy script SCRIPT KILL is meant to stop */
    bool live_only;    /* ROUTE_ALL to the servers not ejected only (memcached's stats: the
                          servers that serve, not an error while one is down) */
    uint32_t seed;     /* set by the core for a merge that picks one reply (RANDOMKEY) */
    bool facts;        /* INFO (ROUTE_ANY): answered by the core from its own figures and a
                          live server's (its version), wrapped by proto->text_reply */
    /* redis: a command that holds its connection until answered (BLPOP, XREAD
     * BLOCK): the core sends it on the client's own server connection, which
     * waits block_ms (its timeout) beyond the pool's timeout, or without end
     * (REDIS_BLOCK_FOREVER, -1: a timeout of 0) */
    bool blocking;
    int64_t block_ms;
    /* An inline request (telnet's "SET k v") rewritten as the request it means: when
     * rewritten, args and keys point into wire.data and wire.len is its length; len is
     * still the input the request took. The request bytes to forward, and the `req`
     * given to local, frag_build, merge and cursor_request, are then wire.data. */
    bool rewritten;
    struct buf wire;
    /* memcached's meta b flag (the key token is base64): the request is rewritten
     * (wire) even when unchanged, and the key is routed by its decoded bytes, as
     * memcached stores it, so that `get` of those bytes finds it. They are the
     * last key_tail bytes of wire, where keys.v[0] points; the request to forward
     * is the rest. 0 otherwise. */
    uint32_t key_tail;
    /* memcached's meta q flag ("say nothing on success"): forwarded without it
     * (rewritten, wire), or where only the server knows what q keeps back with an
     * mn behind it, so that every request has a reply to wait for; what
     * proto->reply_shown leaves of it is passed on */
    bool quiet;
    /* PARSE_AGAIN: info->len is the message's exact length, and should the core not
     * hold that many bytes it may handle the message as PARSE_DROP (err and wire are
     * filled for that): a memcached data block, which memcached itself drops when it
     * is over its item size */
    bool droppable;
    /* PARSE_ERROR: the answer is wire's bytes as they are (none: only the
     * close), not err in the text protocol (a memcached binary request gets a
     * binary error packet) */
    bool err_wire;
    /* memcache, in and out: the first `scanned` bytes hold no line end. A PARSE_AGAIN
     * on a command line not ended yet sets it (every other result clears it), and the
     * caller gives it back with the same bytes and more, so a long line that arrives
     * in many reads is searched once, not once per read; a caller that starts on
     * other bytes must set it to 0 (as req_info_init does) */
    size_t scanned;
    /* redis, in: the client has not logged in yet, so redis' limits for such a client
     * apply (more than 10 arguments, one over 16 KB: a protocol error, and a close) */
    bool unauth;
    /* memcache, in: the connection sent a request before; memcached takes a
     * connection for the binary protocol by its first byte only, and a later line
     * that starts with the binary magic byte is just an unknown command */
    bool mid_stream;
    /* ROUTE_REJECT / PARSE_ERROR / ROUTE_DATASET: message without protocol framing
     * (redis' unknown-command error quotes up to 256 bytes of the request) */
    char err[512];
};

struct rsp_info {
    size_t len;         /* bytes of the complete response, or a hint with PARSE_AGAIN */
    bool is_error;      /* redis '-' reply; memcache ERROR / CLIENT_ERROR / SERVER_ERROR */
    char type;          /* redis: the RESP type byte; memcache: 0 */
    int64_t integer;    /* redis ':' value, or element count of '*' */
    struct spans elems; /* redis top-level array elements (off/len of each whole element);
                           memcache get/gets: one span per VALUE block (header+data+CRLF);
                           memcache stats: one span per line before END (CRLF included) */
    struct spans ekeys; /* memcache get/gets: the key of each VALUE block (same index as elems) */
    uint8_t push;       /* enum rsp_push (subscribed connections only) */
    uint8_t sub;        /* PUSH_CONFIRM: enum req_sub */
    bool chan_null;     /* PUSH_CONFIRM without a channel (UNSUBSCRIBE with none left) */
    struct span chan;   /* PUSH_CONFIRM: the channel or pattern */
    int64_t count;      /* PUSH_CONFIRM: the server's subscription count */
    char err[160];
};

/* Per-client state a protocol needs for local answers (AUTH, SELECT, HELLO, CLIENT,
 * PING in subscribed mode). */
struct local_ctx {
    /* non-NULL: clients must log in; the pool password (redis_auth), or "" when
     * login decides (client_auth users) */
    const char *auth;
    size_t auth_len;
    int db;              /* pool redis_db */
    bool authed;         /* in/out: the client has authenticated */
    const char *version; /* proxy version for VERSION / HELLO / INFO-like answers */
    int resp;            /* in/out: the protocol version the client speaks (2; HELLO 3: 3) */
    uint64_t id;         /* CLIENT ID */
    struct buf name;     /* in/out: CLIENT SETNAME, HELLO SETNAME (the client owns it) */
    /* out: the client_auth user it logged in as ("default" for AUTH password), which
     * a reload that drops the user logs out (the client owns it); empty otherwise */
    struct buf user;
    const char *addr;  /* CLIENT INFO: the peer, "ip:port" */
    const char *laddr; /* CLIENT INFO: the local end */
    bool subscribed;   /* PING answers as in subscribed mode */
    bool no_evict;     /* CLIENT NO-EVICT on: shown in CLIENT INFO's flags (RESET keeps it) */
    /* out: logins refused since the caller last cleared it (a wrong password or
     * user), and the user the last of them named, printable ("default" when
     * none was), for the caller's count and log line */
    uint32_t refused;
    char refused_user[64];
    /* client_auth: whether user (NULL: "default") and pw are a login the proxy
     * accepts; NULL: auth is the one password */
    bool (*login)(const void *ctx, const uint8_t *user, size_t ulen, const uint8_t *pw,
                  size_t plen);
    const void *login_ctx;
};

/* Which fragment carries original key i and at which position among that fragment's keys. */
struct frag_map {
    uint32_t frag;
    uint32_t pos;
};

/* A complete fragment response. */
struct frag_rsp {
    const uint8_t *p;
    size_t len;
    const struct rsp_info *info;
};

struct proto {
    const char *name;
    /* Parse one request at the start of p[0..n). Fills info (info->keys/args are reset first). */
    int (*req_parse)(const uint8_t *p, size_t n, struct req_info *info);
    /* Parse one response at the start of p[0..n) to a request whose command id is cmd. */
    int (*rsp_parse)(const uint8_t *p, size_t n, uint16_t cmd, struct rsp_info *info);
    /* Append to out the request `req` (as parsed into info) restricted to the keys whose
     * indexes into info->keys are idx[0..nidx). */
    int (*frag_build)(struct buf *out, const uint8_t *req, const struct req_info *info,
                      const uint32_t *idx, uint32_t nidx);
    /* Append to out the client's reply for a split (map has info->keys.n entries) or an
     * ALL request (map NULL), given every fragment's complete response. */
    int (*merge)(struct buf *out, const uint8_t *req, const struct req_info *info,
                 const struct frag_map *map, const struct frag_rsp *rsps, uint32_t nrsps);
    /* Append an error reply carrying msg (redis "-ERR msg", memcache "SERVER_ERROR msg"). */
    int (*error_reply)(struct buf *out, const char *msg);
    /* Called for ROUTE_LOCAL, and for every request while lc->auth is set and !lc->authed
     * or while lc->subscribed (a RESP2 subscriber may send only a few commands).
     * Returns 1 when it appended the reply to out (answered), 0 to forward as routed. */
    int (*local)(struct buf *out, const uint8_t *req, const struct req_info *info,
                 struct local_ctx *lc);
    /* Append the requests a new server connection sends first (redis AUTH, SELECT;
     * with resp 3, HELLO 3); returns how many replies they produce (which the core
     * swallows), or -1. */
    int (*conn_init)(struct buf *out, const char *auth, size_t auth_len, int db, int resp);
    /* How many bytes of the reply rsp[0..len) to a quiet request (req_info.quiet) of
     * command cmd its client sees: 0 for a reply it asked not to see (memcached: a miss
     * of mg, the success of ms, md, ma), less than len where the proxy asked for more
     * than the client did. NULL where no request is quiet. */
    size_t (*reply_shown)(uint16_t cmd, const uint8_t *rsp, size_t len);
    /* The rest is for redis only (NULL in memcache). */
    /* Append a request of the core's own (MULTI, EXEC, UNWATCH, SUBSCRIBE of some
     * channels, INFO keyspace): argc arguments, the name first. */
    int (*build)(struct buf *out, uint32_t argc, const uint8_t *const *argv, const size_t *lens);
    /* ROUTE_DATASET with info->cursor: append the request with its cursor argument
     * replaced by cursor. */
    int (*cursor_request)(struct buf *out, const uint8_t *req, const struct req_info *info,
                          uint64_t cursor);
    /* The cursor a cursor reply (SCAN's) carries: 0, or -1 when it is not one. */
    int (*cursor_get)(const uint8_t *rsp, const struct rsp_info *ri, uint64_t *cursor);
    /* Append the cursor reply rsp with its cursor replaced by cursor. */
    int (*cursor_reply)(struct buf *out, const uint8_t *rsp, const struct rsp_info *ri,
                        uint64_t cursor);
    /* Append text (INFO's) as a reply: RESP2 bulk string, RESP3 verbatim "txt". */
    int (*text_reply)(struct buf *out, const uint8_t *text, size_t len, int resp);
    /* Append a subscription confirmation as the client expects it: kind (enum req_sub),
     * the channel (NULL: none), the client's own subscription count, its protocol. */
    int (*sub_reply)(struct buf *out, uint8_t kind, const uint8_t *chan, size_t len, int64_t count,
                     int resp);
};

extern const struct proto proto_redis;
extern const struct proto proto_memcache;

void req_info_init(struct req_info *info);
void req_info_free(struct req_info *info);
void rsp_info_init(struct rsp_info *info);
void rsp_info_free(struct rsp_info *info);
/* Empty info for the next parse, keeping its span arrays. */
void rsp_info_reset(struct rsp_info *info);

#endif
