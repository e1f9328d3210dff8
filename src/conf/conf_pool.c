/*
 * conf_pool: the keys of a pool and of meitu's global section. Each key is a
 * row of a table (name, type, where it goes, allowed range) so that defaults,
 * validation and messages stay uniform across keys.
 */
#include <grp.h>
#include <limits.h>
#include <pwd.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "conf/conf_int.h"
#include "core/buf.h"

/* Longest timeout accepted, in ms (about 31 years): any longer is a typo, and
 * it keeps "now + timeout" far from int64 overflow. */
#define MAX_MS 1000000000000LL

enum key_type {
    K_LISTEN,
    K_HASH,
    K_HASH_TAG,
    K_DIST,
    K_TIMEOUT, /* int64 ms, 0 means none (-1) */
    K_INT,
    K_U32,
    K_I64,
    K_LONG,
    K_BOOL,
    K_STR,
    K_SERVERS, /* the lists (set_list) */
    K_SENTINELS,
    K_GROUPS,
    K_WORKERS, /* int or "auto" (-1) */
    K_READ_FROM,
    K_USERS,      /* client_auth: a list of "user password" */
    K_TLS_CLIENT, /* sentinel_tls: true/false, or a mapping of tls_client_keys */
    K_TLS_LISTEN, /* listen_tls: a mapping of tls_listen_keys */
};

struct key_desc {
    const char *name;
    enum key_type type;
    size_t off;
    int64_t min, max;
};

/* Indices into pool_keys for the keys checked after the walk. */
enum {
    KEY_LISTEN,
    KEY_REDIS_AUTH,
    KEY_SERVERS,
    KEY_REDIS,
    KEY_SENTINELS,
    KEY_GROUPS,
    KEY_HEARTBEAT,
    KEY_SENTINEL_AUTH,
    KEY_READ_FROM,
    KEY_FAILOVER_HOLD,
    KEY_HOLD_ON_CRASH,
    KEY_TLS,
    KEY_TLS_CA_FILE,
    KEY_TLS_CA_DIR,
    KEY_TLS_CERT_FILE,
    KEY_TLS_KEY_FILE,
    KEY_TLS_SERVER_NAME,
    KEY_TLS_VERIFY,
    KEY_SENTINEL_TLS,
    KEY_LISTEN_TLS,
    KEY_LISTEN_TLS_ADDR,
    KEY_CLIENT_AUTH,
    KEY_REDIS_CLUSTER,
    KEY_CLUSTER_REFRESH,
    KEY_HASH,
    KEY_HASH_TAG,
    KEY_DIST,
    KEY_REDIS_DB,
    KEY_REPLICA_MAX_DOWN,
    KEY_AUTO_EJECT,
};

#define P(f) offsetof(struct conf_pool, f)
static const struct key_desc pool_keys[] = {
    [KEY_LISTEN] = {"listen", K_LISTEN, P(listen), 0, 0},
    [KEY_REDIS_AUTH] = {"redis_auth", K_STR, P(redis_auth), 0, 0},
    [KEY_SERVERS] = {"servers", K_SERVERS, P(servers), 0, 0},
    [KEY_REDIS] = {"redis", K_BOOL, P(redis), 0, 0},
    [KEY_SENTINELS] = {"sentinels", K_SENTINELS, P(sentinels), 0, 0},
    [KEY_GROUPS] = {"groups", K_GROUPS, P(servers), 0, 0},
    [KEY_HEARTBEAT] = {"sentinel_heartbeat", K_I64, P(sentinel_heartbeat_ms), 1, MAX_MS},
    [KEY_SENTINEL_AUTH] = {"sentinel_auth", K_STR, P(sentinel_auth), 0, 0},
    [KEY_READ_FROM] = {"read_from", K_READ_FROM, P(read_from), 0, 0},
    [KEY_FAILOVER_HOLD] = {"failover_hold", K_I64, P(failover_hold_ms), 0, MAX_MS},
    [KEY_HOLD_ON_CRASH] = {"failover_hold_on_crash", K_BOOL, P(failover_hold_on_crash), 0, 0},
    [KEY_TLS] = {"tls", K_BOOL, P(tls.enabled), 0, 0},
    [KEY_TLS_CA_FILE] = {"tls_ca_file", K_STR, P(tls.ca_file), 0, 0},
    [KEY_TLS_CA_DIR] = {"tls_ca_dir", K_STR, P(tls.ca_dir), 0, 0},
    [KEY_TLS_CERT_FILE] = {"tls_cert_file", K_STR, P(tls.cert_file), 0, 0},
    [KEY_TLS_KEY_FILE] = {"tls_key_file", K_STR, P(tls.key_file), 0, 0},
    [KEY_TLS_SERVER_NAME] = {"tls_server_name", K_STR, P(tls.server_name), 0, 0},
    [KEY_TLS_VERIFY] = {"tls_verify", K_BOOL, P(tls.verify), 0, 0},
    [KEY_SENTINEL_TLS] = {"sentinel_tls", K_TLS_CLIENT, P(sentinel_tls), 0, 0},
    [KEY_LISTEN_TLS] = {"listen_tls", K_TLS_LISTEN, P(listen_tls), 0, 0},
    [KEY_LISTEN_TLS_ADDR] = {"listen_tls_addr", K_LISTEN, P(listen_tls_addr), 0, 0},
    [KEY_CLIENT_AUTH] = {"client_auth", K_USERS, P(client_users), 0, 0},
    [KEY_REDIS_CLUSTER] = {"redis_cluster", K_BOOL, P(redis_cluster), 0, 0},
    [KEY_CLUSTER_REFRESH] = {"cluster_refresh", K_I64, P(cluster_refresh_ms), 1, MAX_MS},
    [KEY_HASH] = {"hash", K_HASH, P(hash), 0, 0},
    [KEY_HASH_TAG] = {"hash_tag", K_HASH_TAG, P(hash_tag), 0, 0},
    [KEY_DIST] = {"distribution", K_DIST, P(distribution), 0, 0},
    [KEY_REDIS_DB] = {"redis_db", K_INT, P(redis_db), 0, INT_MAX},
    [KEY_REPLICA_MAX_DOWN] = {"replica_max_link_down", K_I64, P(replica_max_link_down_ms), 0,
                              MAX_MS},
    [KEY_AUTO_EJECT] = {"auto_eject_hosts", K_BOOL, P(auto_eject_hosts), 0, 0},
    {"timeout", K_TIMEOUT, P(timeout_ms), 0, MAX_MS},
    {"backlog", K_INT, P(backlog), 0, INT_MAX},
    {"client_connections", K_U32, P(client_connections), 0, INT_MAX},
    {"tcpkeepalive", K_BOOL, P(tcpkeepalive), 0, 0},
    {"reuseport", K_BOOL, P(reuseport), 0, 0},
    {"preconnect", K_BOOL, P(preconnect), 0, 0},
    {"allow_flush", K_BOOL, P(allow_flush), 0, 0},
    {"server_failure_closes_client", K_BOOL, P(server_failure_closes_client), 0, 0},
    {"reply_batch_wait", K_I64, P(reply_batch_wait_ms), 0, 1000},
    {"server_connections", K_U32, P(server_connections), 1, INT_MAX},
    {"server_retry_timeout", K_I64, P(server_retry_timeout_ms), 0, MAX_MS},
    {"server_failure_limit", K_U32, P(server_failure_limit), 0, INT_MAX},
};
#undef P
#define NPOOL_KEYS (sizeof(pool_keys) / sizeof(pool_keys[0]))

/* The sub-keys of sentinel_tls (the pool's tls_* keys without the prefix) and
 * of listen_tls. */
#define T(f) offsetof(struct conf_tls, f)
static const struct key_desc tls_client_keys[] = {
    {"ca_file", K_STR, T(ca_file), 0, 0},         {"ca_dir", K_STR, T(ca_dir), 0, 0},
    {"cert_file", K_STR, T(cert_file), 0, 0},     {"key_file", K_STR, T(key_file), 0, 0},
    {"server_name", K_STR, T(server_name), 0, 0}, {"verify", K_BOOL, T(verify), 0, 0},
};
static const struct key_desc tls_listen_keys[] = {
    {"cert_file", K_STR, T(cert_file), 0, 0},   {"key_file", K_STR, T(key_file), 0, 0},
    {"ca_file", K_STR, T(ca_file), 0, 0},       {"ca_dir", K_STR, T(ca_dir), 0, 0},
    {"verify_client", K_BOOL, T(verify), 0, 0}, {"protocols", K_STR, T(protocols), 0, 0},
    {"ciphers", K_STR, T(ciphers), 0, 0},       {"ciphersuites", K_STR, T(ciphersuites), 0, 0},
};
#undef T
#define NTLS_CLIENT_KEYS (sizeof(tls_client_keys) / sizeof(tls_client_keys[0]))
#define NTLS_LISTEN_KEYS (sizeof(tls_listen_keys) / sizeof(tls_listen_keys[0]))

#define G(f) offsetof(struct conf_global, f)
enum global_key {
    GKEY_WORKERS,
    GKEY_SHUTDOWN,
    GKEY_OPENFILES,
    GKEY_USER,
    GKEY_GROUP,
    NGLOBAL_KEYS
};
static const struct key_desc global_keys[] = {
    [GKEY_WORKERS] = {"worker_processes", K_WORKERS, G(worker_processes), 0, CONF_MAX_WORKERS},
    [GKEY_SHUTDOWN] = {"worker_shutdown_timeout", K_INT, G(worker_shutdown_timeout), 0,
                       INT_MAX / 1000},
    [GKEY_OPENFILES] = {"max_openfiles", K_LONG, G(max_openfiles), 1, INT_MAX},
    [GKEY_USER] = {"user", K_STR, G(user), 0, 0},
    [GKEY_GROUP] = {"group", K_STR, G(group), 0, 0},
};
#undef G

void conf_pool_defaults(struct conf_pool *p)
{
    memset(p, 0, sizeof(*p));
    p->hash = HASH_FNV1A_64;
    p->distribution = DIST_KETAMA;
    p->timeout_ms = -1;
    p->backlog = 512;
    p->server_connections = 1;
    p->server_retry_timeout_ms = 30000;
    p->server_failure_limit = 2;
    p->sentinel_heartbeat_ms = 1000;
    p->failover_hold_ms = 5000;
    p->tls.verify = true; /* checking is the default: tls_verify: false is the opt-out */
    p->sentinel_tls.verify = true;
    p->cluster_refresh_ms = 10000;
    p->reply_batch_wait_ms = 1;
    p->replica_max_link_down_ms = -1;
}

void conf_global_defaults(struct conf_global *g)
{
    memset(g, 0, sizeof(*g));
    g->worker_shutdown_timeout = 30;
    g->max_openfiles = 102400;
}

static void err_choices(struct conf_ctx *cx, int line, const char *key, const char *v,
                        const char *what, const char *(*name)(int), int n)
{
    struct buf b;
    buf_init(&b);
    for (int i = 0; i < n; i++) {
        buf_printf(&b, "%s%s", i ? ", " : "", name(i));
    }
    buf_append(&b, "", 1);
    conf_err(cx, line, key, "\"%s\" is not a valid %s (one of %s)", v, what,
             b.data ? (char *)b.data : "");
    buf_free(&b);
}

static const char *hash_name_i(int i)
{
    return hash_name((enum hash_type)i);
}

static const char *dist_name_i(int i)
{
    return dist_name((enum dist_type)i);
}

/* The name a server must have to be the master of its pool (meitu's syntax). */
#define MASTER_NAME "master"

static const char *const read_from_names[READ_FROM_COUNT] = {
    [READ_FROM_NONE] = "",
    [READ_FROM_MASTER] = "master",
    [READ_FROM_REPLICA] = "replica",
    [READ_FROM_PREFER_REPLICA] = "prefer_replica",
};

const char *conf_read_from_name(enum conf_read_from r)
{
    return (unsigned)r < READ_FROM_COUNT ? read_from_names[r] : "";
}

/* Choices offered in messages: every value but READ_FROM_NONE. */
static const char *read_from_name_i(int i)
{
    return read_from_names[i + 1];
}

static void set_read_from(struct conf_ctx *cx, const struct key_desc *k, const char *v, int line,
                          enum conf_read_from *out)
{
    for (int r = READ_FROM_MASTER; r < READ_FROM_COUNT; r++) {
        if (strcmp(v, read_from_names[r]) == 0) {
            *out = (enum conf_read_from)r;
            return;
        }
    }
    err_choices(cx, line, k->name, v, "read_from", read_from_name_i, READ_FROM_COUNT - 1);
}

static int set_number(struct conf_ctx *cx, const struct key_desc *k, const char *v, int line,
                      int64_t *out)
{
    int rc = conf_parse_uint(v, out);
    if (rc == -1) {
        conf_err(cx, line, k->name, "\"%s\" is not a number", v);
        return -1;
    }
    if (rc == 0 && *out == 0 && k->min == 1) {
        conf_err(cx, line, k->name, "directive cannot be 0");
        return -1;
    }
    if (rc != 0 || *out < k->min || *out > k->max) {
        conf_err(cx, line, k->name, "%s is out of range (%lld..%lld)", v, (long long)k->min,
                 (long long)k->max);
        return -1;
    }
    return 0;
}

static void set_int_field(char *f, enum key_type t, int64_t v)
{
    switch (t) {
    case K_INT:
    case K_WORKERS:
        *(int *)f = (int)v;
        break;
    case K_U32:
        *(uint32_t *)f = (uint32_t)v;
        break;
    case K_LONG:
        *(long *)f = (long)v;
        break;
    default: /* K_I64, K_TIMEOUT */
        *(int64_t *)f = v;
        break;
    }
}

static void set_scalar(struct conf_ctx *cx, void *base, const struct key_desc *k, const char *v,
                       int line)
{
    char *f = (char *)base + k->off;
    int64_t n;
    int id;
    switch (k->type) {
    case K_LISTEN:
        conf_listen_parse(cx, (struct conf_addr *)f, v, line);
        break;
    case K_HASH:
        id = hash_from_name(v, strlen(v));
        if (id < 0) {
            err_choices(cx, line, k->name, v, "hash", hash_name_i, HASH_COUNT);
        } else {
            *(enum hash_type *)f = (enum hash_type)id;
        }
        break;
    case K_DIST:
        id = dist_from_name(v, strlen(v));
        if (id < 0) {
            err_choices(cx, line, k->name, v, "distribution", dist_name_i, DIST_COUNT);
        } else {
            *(enum dist_type *)f = (enum dist_type)id;
        }
        break;
    case K_HASH_TAG:
        if (strlen(v) != 2) {
            conf_err(cx, line, k->name, "\"%s\" is not a valid hash tag string with two characters",
                     v);
        } else {
            memcpy(f, v, 2);
            ((struct conf_pool *)base)->has_hash_tag = true;
        }
        break;
    case K_BOOL:
        if (strcmp(v, "true") == 0 || strcmp(v, "false") == 0) {
            *(bool *)f = v[0] == 't';
        } else {
            conf_err(cx, line, k->name, "\"%s\" is not \"true\" or \"false\"", v);
        }
        break;
    case K_STR:
        *(char **)f = conf_strdup(cx, v);
        break;
    case K_READ_FROM:
        set_read_from(cx, k, v, line, (enum conf_read_from *)f);
        break;
    case K_WORKERS:
        if (strcmp(v, "auto") == 0) {
            *(int *)f = -1;
        } else if (conf_parse_uint(v, &n) == -1) {
            conf_err(cx, line, k->name, "\"%s\" is not a number or \"auto\"", v);
        } else if (set_number(cx, k, v, line, &n) == 0) {
            set_int_field(f, k->type, n);
        }
        break;
    default:
        if (set_number(cx, k, v, line, &n) == 0) {
            set_int_field(f, k->type, (k->type == K_TIMEOUT && n == 0) ? -1 : n);
        }
        break;
    }
}

static void conf_server_free(struct conf_server *s)
{
    free(s->pname);
    free(s->name);
    conf_addr_free(&s->addr);
}

static int server_cmp(const void *a, const void *b)
{
    const struct conf_server *x = a, *y = b;
    int c = conf_name_cmp(x->name, y->name);
    /* Equal names are an error reported on the later line: keep file order. */
    return c ? c : (x->line > y->line) - (x->line < y->line);
}

static void conf_sentinel_free(struct conf_sentinel *s)
{
    free(s->name);
    conf_addr_free(&s->addr);
}

/* A cluster's seed may leave out the weight (it places nothing): "host:port
 * [name]" is read as "host:port:1 [name]". */
static char *cluster_seed_text(struct conf_ctx *cx, const char *v)
{
    const char *sp = strchr(v, ' ');
    size_t n = sp ? (size_t)(sp - v) : strlen(v);
    const char *host_end = v[0] == '[' ? memchr(v, ']', n) : v;
    uint32_t colons = 0;
    for (const char *c = host_end ? host_end : v; c < v + n; c++) {
        colons += *c == ':';
    }
    if (v[0] == '/' || colons != 1) {
        return NULL;
    }
    size_t len = strlen(v) + 3;
    char *t = malloc(len);
    if (t == NULL) {
        conf_oom(cx);
        return NULL;
    }
    snprintf(t, len, "%.*s:1%s", (int)n, v, sp ? sp : "");
    return t;
}

static int add_server(struct conf_ctx *cx, struct conf_pool *p, const char *v, int line)
{
    struct conf_server *s = &p->servers[p->nservers];
    char *seed = p->redis_cluster ? cluster_seed_text(cx, v) : NULL;
    int rc = conf_server_parse(cx, s, seed != NULL ? seed : v, line);
    free(seed);
    if (rc != 0) {
        conf_server_free(s);
        memset(s, 0, sizeof(*s));
        return -1;
    }
    p->nservers++;
    return 0;
}

/* A group is a server whose address the sentinels give at run time; its name
 * alone places keys, so it is kept exactly as written. */
static int add_group(struct conf_ctx *cx, struct conf_pool *p, const char *v, int line)
{
    if (strpbrk(v, " \t\r\n") != NULL) {
        /* sentinel messages separate names by spaces: such a name could never match */
        conf_err(cx, line, "groups", "group name \"%s\" contains white space", v);
        return -1;
    }
    struct conf_server *s = &p->servers[p->nservers];
    s->line = line;
    s->weight = 1;
    s->name = conf_strdup(cx, v);
    s->pname = conf_strdup(cx, v);
    if (s->name == NULL || s->pname == NULL) {
        conf_server_free(s);
        memset(s, 0, sizeof(*s));
        return -1;
    }
    p->nservers++;
    return 0;
}

static int add_sentinel(struct conf_ctx *cx, struct conf_pool *p, const char *v, int line)
{
    struct conf_sentinel *s = &p->sentinels[p->nsentinels];
    if (conf_sentinel_parse(cx, s, v, line) != 0) {
        conf_sentinel_free(s);
        memset(s, 0, sizeof(*s));
        return -1;
    }
    p->nsentinels++;
    return 0;
}

/* The storage of a list directive for n items; NULL when it is already taken
 * (servers and groups share it; the post-parse checks report the clash). */
static void *list_storage(struct conf_ctx *cx, struct conf_pool *p, enum key_type t, size_t n)
{
    void **slot = t == K_SENTINELS ? (void **)&p->sentinels : (void **)&p->servers;
    size_t size = t == K_SENTINELS ? sizeof(*p->sentinels) : sizeof(*p->servers);
    if (t == K_USERS) {
        slot = (void **)&p->client_users;
        size = sizeof(*p->client_users);
    }
    if (*slot != NULL) {
        return NULL;
    }
    *slot = calloc(n, size);
    if (*slot == NULL) {
        conf_oom(cx);
    }
    return *slot;
}

static void set_list(struct conf_ctx *cx, struct conf_pool *p, const struct key_desc *k,
                     yaml_node_t *seq, int line)
{
    const char *key = k->name;
    if (seq->type == YAML_SCALAR_NODE && seq->data.scalar.length == 0) {
        conf_err(cx, line, key, "directive has no %s", key);
        return;
    }
    if (seq->type != YAML_SEQUENCE_NODE) {
        conf_err(cx, line, key, "directive needs a list of %s, not %s", key, conf_node_kind(seq));
        return;
    }
    size_t n = (size_t)(seq->data.sequence.items.top - seq->data.sequence.items.start);
    if (n == 0) {
        conf_err(cx, line, key, "directive has no %s", key);
        return;
    }
    if (list_storage(cx, p, k->type, n) == NULL) {
        return;
    }
    int (*add)(struct conf_ctx *, struct conf_pool *, const char *, int) = add_sentinel;
    if (k->type == K_SERVERS) {
        add = add_server;
    } else if (k->type == K_GROUPS) {
        add = add_group;
    } else if (k->type == K_USERS) {
        add = conf_user_add;
    }
    for (yaml_node_item_t *it = seq->data.sequence.items.start; it < seq->data.sequence.items.top;
         it++) {
        yaml_node_t *item = conf_node(cx, *it, line, key);
        const char *v = item ? conf_scalar(cx, item, key) : NULL;
        if (v != NULL) {
            add(cx, p, v, conf_line(item));
        }
    }
}

static void check_servers(struct conf_ctx *cx, struct conf_pool *p)
{
    if (p->nservers == 0) {
        return;
    }
    const char *what = p->sentinels != NULL ? "groups" : "servers";
    qsort(p->servers, p->nservers, sizeof(*p->servers), server_cmp);
    for (uint32_t i = 1; i < p->nservers; i++) {
        if (conf_name_cmp(p->servers[i - 1].name, p->servers[i].name) == 0) {
            conf_err(cx, p->servers[i].line, what, "pool '%s' has %s with same name '%s'", p->name,
                     what, p->servers[i].name);
        }
    }
}

/* twemproxy-163, where sentinels come from, has only redis pools, so its own
 * files (README example, conf/nutcracker.yml) never say "redis: true": a pool
 * with sentinels or groups is a redis pool without saying so, and one that
 * says "redis: false" is refused. Runs before every check that reads p->redis. */
static void resolve_redis(struct conf_ctx *cx, struct conf_pool *p, const int *lines)
{
    int key = lines[KEY_SENTINELS] != 0 ? KEY_SENTINELS : KEY_GROUPS;
    if (lines[key] == 0) {
        return;
    }
    if (lines[KEY_REDIS] != 0 && !p->redis) {
        conf_err(cx, lines[KEY_REDIS], "redis",
                 "directive must be true in a pool with %s (sentinel pools are redis pools; "
                 "leave it out or say true)",
                 pool_keys[key].name);
    }
    /* the file is refused if it said false: judging the other keys as the
     * redis pool it has to be reports only the cause, not its echoes */
    p->redis = true;
}

/* andyqzb's sentinel fork lists servers beside the sentinels, each named
 * after its sentinel master, its address a first guess: here each is a group
 * of that name with its weight, its address the sentinels' (as in the fork,
 * the name places keys). */
static void servers_as_groups(struct conf_ctx *cx, struct conf_pool *p)
{
    for (uint32_t i = 0; i < p->nservers; i++) {
        struct conf_server *s = &p->servers[i];
        if (!s->named) {
            conf_err(cx, s->line, "servers",
                     "\"%s\" has no name: in a pool with sentinels a server is named after its "
                     "sentinel master (or list the names under groups)",
                     s->pname);
            continue;
        }
        char *pname = conf_strdup(cx, s->name);
        if (pname == NULL) {
            return;
        }
        free(s->pname);
        s->pname = pname;
        conf_addr_free(&s->addr);
        memset(&s->addr, 0, sizeof(s->addr));
    }
}

/* A pool without sentinels holds a server's requests while it cannot be
 * reached (a restart) only when failover_hold_on_crash says so: by default a
 * dead server's requests fail at once, as twemproxy's do. Ejection answers a
 * dead server's keys elsewhere instead, so the two do not go together. */
static void check_restart_hold(struct conf_ctx *cx, const struct conf_pool *p, const int *lines)
{
    if (lines[KEY_FAILOVER_HOLD] != 0 && lines[KEY_HOLD_ON_CRASH] == 0) {
        conf_err(cx, lines[KEY_FAILOVER_HOLD], "failover_hold",
                 "directive is only valid in a pool with sentinels, or with "
                 "failover_hold_on_crash: true");
    }
    if (p->failover_hold_on_crash && p->auto_eject_hosts) {
        conf_err(cx, lines[KEY_HOLD_ON_CRASH], "failover_hold_on_crash",
                 "directive cannot be true with auto_eject_hosts: true on line %d (an ejected "
                 "server's keys go to other servers instead of waiting for it)",
                 lines[KEY_AUTO_EJECT]);
    }
}

/* The keys that belong together in a sentinel pool (SPEC 9): sentinels and
 * groups come as a pair and replace servers (or servers named after the
 * sentinels' masters: servers_as_groups); redis only (resolve_redis). */
static void check_sentinel_keys(struct conf_ctx *cx, struct conf_pool *p, const int *lines)
{
    static const int only_with[] = {KEY_GROUPS, KEY_HEARTBEAT, KEY_SENTINEL_AUTH, KEY_SENTINEL_TLS};
    if (lines[KEY_SENTINELS] == 0) {
        for (size_t i = 0; i < sizeof(only_with) / sizeof(only_with[0]); i++) {
            int k = only_with[i];
            if (lines[k] != 0) {
                conf_err(cx, lines[k], pool_keys[k].name,
                         "directive is only valid in a pool with sentinels");
            }
        }
        check_restart_hold(cx, p, lines);
        return;
    }
    if (lines[KEY_SERVERS] != 0 && lines[KEY_GROUPS] == 0) {
        servers_as_groups(cx, p);
        return;
    }
    if (lines[KEY_SERVERS] != 0) {
        conf_err(cx, lines[KEY_SERVERS], "servers",
                 "directive cannot be used in a pool with sentinels and groups (its groups are "
                 "the servers)");
    }
    if (lines[KEY_GROUPS] == 0) {
        conf_err(cx, p->line, "groups", "directive is missing in pool '%s' (it has sentinels)",
                 p->name);
    }
}

/* A redis pool (not a sentinel one) with a server named "master" is a master
 * and its replicas (SPEC 10); read_from makes sense there, and in a sentinel
 * pool, whose groups' replicas the sentinels list. Runs after the servers are
 * sorted, since the master is found by its index. */
static void check_read_from(struct conf_ctx *cx, struct conf_pool *p, const int *lines)
{
    int line = lines[KEY_READ_FROM];
    enum conf_read_from given = p->read_from;
    p->read_from = READ_FROM_NONE;
    if (lines[KEY_SENTINELS] != 0 || p->redis_cluster) {
        /* a group named "master" is just a group; reads stay on the masters
         * unless read_from says otherwise (the behaviour before replicas) */
        if (line != 0 && p->redis) {
            p->read_from = given;
        }
        return;
    }
    if (!p->redis) {
        if (line != 0) {
            conf_err(cx, line, "read_from", "directive is only valid for a redis pool");
        }
        return;
    }
    for (uint32_t i = 0; i < p->nservers; i++) {
        if (strcmp(p->servers[i].name, MASTER_NAME) == 0) {
            p->master = i;
            p->read_from = line != 0 ? given : READ_FROM_REPLICA;
            return;
        }
    }
    if (line != 0) {
        conf_err(cx, line, "read_from",
                 "directive needs a server named '" MASTER_NAME "' in pool '%s' (the master; the "
                 "other servers are its replicas)",
                 p->name);
    }
}

/* replica_max_link_down bounds how stale a static pool's or a cluster shard's
 * replica may be (the replica check reads its link's state); a sentinel
 * group's replica already gets no read while its link is down (README). */
static void check_replica_max_link_down(struct conf_ctx *cx, struct conf_pool *p, const int *lines)
{
    int line = lines[KEY_REPLICA_MAX_DOWN];
    if (line == 0) {
        return;
    }
    if (lines[KEY_SENTINELS] != 0) {
        conf_err(cx, line, "replica_max_link_down",
                 "directive is only valid in a pool with a server named '" MASTER_NAME
                 "' (a sentinel group's replica gets no read while its link to its master is "
                 "down)");
    } else if (p->redis_cluster) {
        if (!conf_reads_replicas(p->read_from)) {
            conf_err(cx, line, "replica_max_link_down",
                     "directive needs read_from: replica or prefer_replica in cluster pool '%s' "
                     "(its reads go to the masters)",
                     p->name);
        }
    } else if (!p->redis) {
        conf_err(cx, line, "replica_max_link_down", "directive is only valid for a redis pool");
    } else if (p->read_from == READ_FROM_NONE) {
        conf_err(cx, line, "replica_max_link_down",
                 "directive needs a server named '" MASTER_NAME "' in pool '%s' (the master; the "
                 "other servers are its replicas)",
                 p->name);
    }
}

static const struct key_desc *key_find(const struct key_desc *keys, size_t n, const char *name)
{
    for (size_t i = 0; i < n; i++) {
        if (strcmp(keys[i].name, name) == 0) {
            return &keys[i];
        }
    }
    return NULL;
}

static void parse_map(struct conf_ctx *cx, void *base, const struct key_desc *keys, size_t nkeys,
                      yaml_node_t *map, int *lines, const char *what);

/* sentinel_tls: true|false (then the pool's tls_* keys apply), or a mapping;
 * listen_tls: a mapping. */
static void set_tls(struct conf_ctx *cx, const struct key_desc *k, struct conf_tls *t,
                    yaml_node_t *vn, int line)
{
    bool listen = k->type == K_TLS_LISTEN;
    t->line = line;
    if (vn->type == YAML_MAPPING_NODE) {
        int sub[NTLS_LISTEN_KEYS > NTLS_CLIENT_KEYS ? NTLS_LISTEN_KEYS : NTLS_CLIENT_KEYS] = {0};
        parse_map(cx, t, listen ? tls_listen_keys : tls_client_keys,
                  listen ? NTLS_LISTEN_KEYS : NTLS_CLIENT_KEYS, vn, sub, k->name);
        t->enabled = true;
        t->is_map = true;
        return;
    }
    const char *v = conf_scalar(cx, vn, k->name);
    if (v != NULL && !listen && (strcmp(v, "true") == 0 || strcmp(v, "false") == 0)) {
        t->enabled = v[0] == 't';
    } else if (v != NULL) {
        conf_err(cx, line, k->name, "directive needs %s, not \"%s\"",
                 listen ? "a mapping (cert_file, key_file, ...)" : "true, false or a mapping", v);
    }
}

/* Walks a mapping of directives; lines[i] gets the line of keys[i] (0: absent). */
static void parse_map(struct conf_ctx *cx, void *base, const struct key_desc *keys, size_t nkeys,
                      yaml_node_t *map, int *lines, const char *what)
{
    for (yaml_node_pair_t *pr = map->data.mapping.pairs.start; pr < map->data.mapping.pairs.top;
         pr++) {
        yaml_node_t *kn = conf_node(cx, pr->key, conf_line(map), what);
        const char *name = kn ? conf_scalar(cx, kn, what) : NULL;
        if (name == NULL) {
            continue;
        }
        int line = conf_line(kn);
        yaml_node_t *vn = conf_node(cx, pr->value, line, name);
        const struct key_desc *k = key_find(keys, nkeys, name);
        if (k == NULL) {
            conf_err(cx, line, name, "directive is unknown");
            continue;
        }
        if (lines[k - keys] != 0) {
            conf_err(cx, line, name, "directive is a duplicate (first on line %d)",
                     lines[k - keys]);
            continue;
        }
        lines[k - keys] = line;
        if (vn == NULL) {
            continue;
        }
        if (k->type == K_SERVERS || k->type == K_SENTINELS || k->type == K_GROUPS ||
            k->type == K_USERS) {
            set_list(cx, base, k, vn, line);
            continue;
        }
        if (k->type == K_TLS_CLIENT || k->type == K_TLS_LISTEN) {
            set_tls(cx, k, (struct conf_tls *)((char *)base + k->off), vn, line);
            continue;
        }
        const char *v = conf_scalar(cx, vn, name);
        if (v != NULL) {
            set_scalar(cx, base, k, v, conf_line(vn));
        }
    }
}

/* Whether the pool says redis_cluster: true, looked up before the walk: the
 * servers are read differently in a cluster pool, whatever the key order. */
static bool says_cluster(struct conf_ctx *cx, yaml_node_t *map)
{
    for (yaml_node_pair_t *pr = map->data.mapping.pairs.start; pr < map->data.mapping.pairs.top;
         pr++) {
        yaml_node_t *k = yaml_document_get_node(cx->doc, pr->key);
        yaml_node_t *v = yaml_document_get_node(cx->doc, pr->value);
        if (k != NULL && v != NULL && k->type == YAML_SCALAR_NODE && v->type == YAML_SCALAR_NODE &&
            strcmp((const char *)k->data.scalar.value, "redis_cluster") == 0 &&
            strcmp((const char *)v->data.scalar.value, "true") == 0) {
            return true;
        }
    }
    return false;
}

/* A redis_cluster pool (README, Redis Cluster): the cluster places keys, so the
 * keys that place them are refused where they are; it is a redis pool; the
 * cluster serves database 0 only; sentinels have no place in it. */
static void check_cluster_keys(struct conf_ctx *cx, struct conf_pool *p, const int *lines)
{
    static const int placing[] = {KEY_HASH, KEY_HASH_TAG, KEY_DIST};
    if (!p->redis_cluster) {
        if (lines[KEY_CLUSTER_REFRESH] != 0) {
            conf_err(cx, lines[KEY_CLUSTER_REFRESH], "cluster_refresh",
                     "directive is only valid in a pool with redis_cluster: true");
        }
        return;
    }
    for (size_t i = 0; i < sizeof(placing) / sizeof(placing[0]); i++) {
        int k = placing[i];
        if (lines[k] != 0) {
            conf_err(cx, lines[k], pool_keys[k].name,
                     "directive is not allowed in a redis_cluster pool (the cluster places keys: "
                     "CRC16 of the key, or of its {tag}, mod 16384)");
        }
    }
    if (lines[KEY_REDIS] != 0 && !p->redis) {
        conf_err(cx, lines[KEY_REDIS], "redis",
                 "directive must be true in a redis_cluster pool (leave it out or say true)");
    }
    p->redis = true;
    static const int sentinel_keys[] = {KEY_SENTINELS, KEY_GROUPS, KEY_HEARTBEAT,
                                        KEY_SENTINEL_AUTH};
    for (size_t i = 0; i < sizeof(sentinel_keys) / sizeof(sentinel_keys[0]); i++) {
        int k = sentinel_keys[i];
        if (lines[k] != 0) {
            conf_err(cx, lines[k], pool_keys[k].name,
                     "directive cannot be used in a redis_cluster pool (the cluster fails over "
                     "itself)");
        }
    }
    if (p->redis_db != 0) {
        conf_err(cx, lines[KEY_REDIS_DB], "redis_db",
                 "directive must be 0 in a redis_cluster pool (a cluster has database 0 only)");
    }
    if (lines[KEY_HOLD_ON_CRASH] != 0) {
        conf_err(cx, lines[KEY_HOLD_ON_CRASH], "failover_hold_on_crash",
                 "directive is not used in a redis_cluster pool (requests for a master that "
                 "fails are always held, up to failover_hold)");
    }
}

int conf_pool_parse(struct conf_ctx *cx, struct conf_pool *p, yaml_node_t *map)
{
    int lines[NPOOL_KEYS] = {0};
    p->redis_cluster = says_cluster(cx, map);
    parse_map(cx, p, pool_keys, NPOOL_KEYS, map, lines, p->name);
    if (lines[KEY_LISTEN] == 0) {
        conf_err(cx, p->line, "listen", "directive is missing in pool '%s'", p->name);
    }
    if (lines[KEY_SERVERS] == 0 && lines[KEY_SENTINELS] == 0) {
        conf_err(cx, p->line, "servers", "directive is missing in pool '%s'", p->name);
    }
    check_cluster_keys(cx, p, lines);
    resolve_redis(cx, p, lines);
    if (!p->redis_cluster) {
        check_sentinel_keys(cx, p, lines);
    }
    if (p->redis_auth != NULL && !p->redis) {
        conf_err(cx, lines[KEY_REDIS_AUTH], "redis_auth",
                 "directive is only valid for a redis pool");
    }
    check_servers(cx, p);
    check_read_from(cx, p, lines);
    check_replica_max_link_down(cx, p, lines);
    conf_tls_check(cx, p, lines + KEY_TLS);
    conf_auth_check(cx, p, lines[KEY_REDIS_AUTH], lines[KEY_CLIENT_AUTH]);
    return lines[KEY_LISTEN];
}

void conf_pool_free(struct conf_pool *p)
{
    free(p->name);
    conf_addr_free(&p->listen);
    free(p->redis_auth);
    for (uint32_t i = 0; i < p->nservers; i++) {
        conf_server_free(&p->servers[i]);
    }
    free(p->servers);
    for (uint32_t i = 0; i < p->nsentinels; i++) {
        conf_sentinel_free(&p->sentinels[i]);
    }
    free(p->sentinels);
    free(p->sentinel_auth);
    free(p->redis_auth_user);
    free(p->redis_auth_whole);
    conf_addr_free(&p->listen_tls_addr);
    conf_tls_free(&p->tls);
    conf_tls_free(&p->sentinel_tls);
    conf_tls_free(&p->listen_tls);
    for (uint32_t i = 0; i < p->nclient_users; i++) {
        free(p->client_users[i].name);
    }
    free(p->client_users);
}

/* user/group name accounts of this machine: a proxy started as root looks them
 * up after binding (privileges.c), too late to say which line named them, and
 * -t would pass a file whose start fails. Not root, they are not used. */
static void global_check_accounts(struct conf_ctx *cx, const struct conf_global *g,
                                  const int *lines)
{
    if (geteuid() != 0) {
        return;
    }
    if (g->user != NULL && getpwnam(g->user) == NULL) {
        conf_err(cx, lines[GKEY_USER], "user", "no user \"%s\" on this system", g->user);
    }
    if (g->group != NULL && getgrnam(g->group) == NULL) {
        conf_err(cx, lines[GKEY_GROUP], "group", "no group \"%s\" on this system", g->group);
    }
}

void conf_global_parse(struct conf_ctx *cx, struct conf_global *g, yaml_node_t *map)
{
    int lines[NGLOBAL_KEYS] = {0};
    parse_map(cx, g, global_keys, NGLOBAL_KEYS, map, lines, "global");
    global_check_accounts(cx, g, lines);
}

void conf_global_free(struct conf_global *g)
{
    free(g->user);
    free(g->group);
}
