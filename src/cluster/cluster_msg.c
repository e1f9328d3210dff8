#include "cluster/cluster_msg.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "hash/hash.h"
#include "proto/redis_wire.h"

/* Nesting a topology reply needs is 4 (shards > shard > nodes > node); a
 * value nested deeper is skipped up to this depth, then refused. */
#define MSG_MAX_DEPTH 8

const char cluster_msg_asking[] = "*1\r\n$6\r\nASKING\r\n";
const size_t cluster_msg_asking_len = sizeof(cluster_msg_asking) - 1;
const char cluster_msg_readonly[] = "*1\r\n$8\r\nREADONLY\r\n";
const size_t cluster_msg_readonly_len = sizeof(cluster_msg_readonly) - 1;
const char cluster_msg_readwrite[] = "*1\r\n$9\r\nREADWRITE\r\n";
const size_t cluster_msg_readwrite_len = sizeof(cluster_msg_readwrite) - 1;

uint16_t cluster_key_slot(const uint8_t *key, size_t len)
{
    static const char tag[2] = {'{', '}'};
    /* twemproxy's hash_tag rule is redis' own: first '{', next '}', not empty */
    key = hash_tag_apply(key, len, tag, &len);
    return (uint16_t)(hash_crc16_xmodem(key, len) & (CLUSTER_SLOTS - 1));
}

/* ------------------------------------------------------------ a RESP reader */

/* A cursor over one complete reply; the first failure sticks. */
struct rd {
    const uint8_t *p;
    size_t n, pos;
    bool bad;
};

/* The number line after a type byte. */
static int64_t rd_num(struct rd *r)
{
    int64_t v = 0;
    size_t next;
    if (r->bad || redis_wire_num_line(r->p, r->n, r->pos + 1, &v, &next) != PARSE_OK) {
        r->bad = true;
        return 0;
    }
    r->pos = next;
    return v;
}

static char rd_type(const struct rd *r)
{
    return (!r->bad && r->pos < r->n) ? (char)r->p[r->pos] : 0;
}

/* An aggregate's element count (a RESP3 map counts its keys and values). */
static int64_t rd_array(struct rd *r)
{
    char t = rd_type(r);
    if (t != '*' && t != '%') {
        r->bad = true;
        return 0;
    }
    int64_t n = rd_num(r);
    if (n < 0 || (size_t)n > r->n - r->pos) {
        r->bad = true; /* each element takes at least one byte */
        return 0;
    }
    return t == '%' ? 2 * n : n;
}

static int64_t rd_int(struct rd *r)
{
    if (rd_type(r) != ':') {
        r->bad = true;
        return 0;
    }
    return rd_num(r);
}

/* A bulk or simple string; *s points into the reply. */
static void rd_str(struct rd *r, const uint8_t **s, size_t *len)
{
    char t = rd_type(r);
    *s = NULL;
    *len = 0;
    if (t == '+') {
        const uint8_t *cr = memchr(r->p + r->pos, '\r', r->n - r->pos);
        if (cr == NULL || (size_t)(cr - r->p) + 1 >= r->n || cr[1] != '\n') {
            r->bad = true;
            return;
        }
        *s = r->p + r->pos + 1;
        *len = (size_t)(cr - *s);
        r->pos = (size_t)(cr - r->p) + 2;
        return;
    }
    if (t != '$') {
        r->bad = true;
        return;
    }
    int64_t n = rd_num(r);
    if (r->bad || n < 0 || (size_t)n + 2 > r->n - r->pos || r->p[r->pos + (size_t)n] != '\r' ||
        r->p[r->pos + (size_t)n + 1] != '\n') {
        r->bad = true;
        return;
    }
    *s = r->p + r->pos;
    *len = (size_t)n;
    r->pos += (size_t)n + 2;
}

/* Skip a value that is one line: an integer, a null, a boolean, a double,
 * an error. */
static void rd_line_skip(struct rd *r)
{
    const uint8_t *lf = memchr(r->p + r->pos, '\n', r->n - r->pos);
    if (lf == NULL) {
        r->bad = true;
        return;
    }
    r->pos = (size_t)(lf - r->p) + 1;
}

/* Skip one value of any type. */
static void rd_skip(struct rd *r, int depth)
{
    const uint8_t *s;
    size_t len;
    switch (rd_type(r)) {
    case '*':
    case '%': {
        if (depth >= MSG_MAX_DEPTH) {
            r->bad = true;
            return;
        }
        int64_t n = rd_array(r);
        for (int64_t i = 0; i < n && !r->bad; i++) {
            rd_skip(r, depth + 1);
        }
        return;
    }
    case ':':
    case '_':
    case '#':
    case ',':
    case '-':
        rd_line_skip(r);
        return;
    case '+':
    case '$':
        rd_str(r, &s, &len);
        return;
    default:
        r->bad = true;
        return;
    }
}

static bool word_is(const uint8_t *s, size_t n, const char *w)
{
    return s != NULL && n == strlen(w) && memcmp(s, w, n) == 0;
}

/* ------------------------------------------------------------ the topology */

void cluster_topo_init(struct cluster_topo *t)
{
    memset(t, 0, sizeof(*t));
}

void cluster_topo_reset(struct cluster_topo *t)
{
    t->nnodes = t->nranges = t->nshards = 0;
    t->err[0] = '\0';
}

void cluster_topo_free(struct cluster_topo *t)
{
    free(t->nodes);
    free(t->ranges);
    cluster_topo_init(t);
}

int cluster_topo_master(const struct cluster_topo *t, uint32_t shard)
{
    for (uint32_t i = 0; i < t->nnodes; i++) {
        if (t->nodes[i].shard == shard && t->nodes[i].master) {
            return (int)i;
        }
    }
    return -1;
}

static int topo_fail(struct cluster_topo *t, const char *why)
{
    snprintf(t->err, sizeof(t->err), "%s", why);
    return -1;
}

static struct cluster_topo_node *topo_node_add(struct cluster_topo *t)
{
    if (t->nnodes >= CLUSTER_MAX_NODES) {
        return NULL;
    }
    if (t->nnodes == t->cnodes) {
        uint32_t c = t->cnodes ? t->cnodes * 2 : 16;
        void *v = realloc(t->nodes, c * sizeof(*t->nodes));
        if (v == NULL) {
            return NULL;
        }
        t->nodes = v;
        t->cnodes = c;
    }
    struct cluster_topo_node *n = &t->nodes[t->nnodes++];
    memset(n, 0, sizeof(*n));
    return n;
}

static int topo_range_add(struct cluster_topo *t, int64_t start, int64_t end, uint32_t shard)
{
    if (start < 0 || end < start || end >= (int64_t)CLUSTER_SLOTS) {
        return topo_fail(t, "slot range out of 0..16383");
    }
    if (t->nranges >= CLUSTER_SLOTS) {
        return topo_fail(t, "too many slot ranges");
    }
    if (t->nranges == t->cranges) {
        uint32_t c = t->cranges ? t->cranges * 2 : 16;
        void *v = realloc(t->ranges, c * sizeof(*t->ranges));
        if (v == NULL) {
            return topo_fail(t, "out of memory");
        }
        t->ranges = v;
        t->cranges = c;
    }
    t->ranges[t->nranges++] = (struct cluster_topo_range){(uint16_t)start, (uint16_t)end, shard};
    return 0;
}

static bool msg_host_set(struct cluster_node_addr *a, const uint8_t *s, size_t n)
{
    if (s == NULL || n > CLUSTER_HOST_MAX) {
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        if (s[i] <= ' ' || s[i] >= 0x7f) {
            return false; /* it goes into logs and stats names */
        }
    }
    memcpy(a->host, s, n);
    a->host[n] = '\0';
    return true;
}

/* A node's id, kept when it is one (printable, at most CLUSTER_ID_MAX). */
static void msg_id_set(char *id, const uint8_t *s, size_t n)
{
    id[0] = '\0';
    if (s == NULL || n == 0 || n > CLUSTER_ID_MAX) {
        return;
    }
    for (size_t i = 0; i < n; i++) {
        if (s[i] <= ' ' || s[i] >= 0x7f) {
            return;
        }
    }
    memcpy(id, s, n);
    id[n] = '\0';
}

/* One node of CLUSTER SHARDS: a flat map of fields. */
static int shards_node(struct rd *r, struct cluster_topo *t, uint32_t shard)
{
    int64_t n = rd_array(r);
    struct cluster_topo_node *node = topo_node_add(t);
    const uint8_t *ip = NULL, *endpoint = NULL;
    size_t ip_len = 0, endpoint_len = 0;
    int64_t port = -1, tls_port = -1;
    if (node == NULL) {
        return topo_fail(t, "too many nodes");
    }
    node->shard = shard;
    for (int64_t i = 0; i + 1 < n && !r->bad; i += 2) {
        const uint8_t *k, *v;
        size_t kl, vl;
        rd_str(r, &k, &kl);
        if (word_is(k, kl, "port")) {
            port = rd_int(r);
        } else if (word_is(k, kl, "tls-port")) {
            tls_port = rd_int(r);
        } else if (word_is(k, kl, "ip")) {
            rd_str(r, &ip, &ip_len);
        } else if (word_is(k, kl, "id")) {
            rd_str(r, &v, &vl);
            msg_id_set(node->id, v, vl);
        } else if (word_is(k, kl, "endpoint")) {
            rd_str(r, &endpoint, &endpoint_len);
        } else if (word_is(k, kl, "role")) {
            rd_str(r, &v, &vl);
            node->master = word_is(v, vl, "master");
        } else if (word_is(k, kl, "health")) {
            rd_str(r, &v, &vl);
            node->failed = word_is(v, vl, "failed") || word_is(v, vl, "fail");
            node->loading = word_is(v, vl, "loading");
        } else {
            rd_skip(r, 3);
        }
    }
    if (r->bad || (n & 1) != 0) {
        return topo_fail(t, "a node is not a map of fields");
    }
    /* with tls-cluster, tls-port is the TLS one and port (if any) the plain
     * one; without it, port is the only one said */
    int64_t want = t->tls_ports && tls_port > 0 ? tls_port : port;
    if (want <= 0) {
        t->nnodes--; /* nothing to connect to: a node that failed with no address left */
        return 0;
    }
    if (want > 65535) {
        return topo_fail(t, "a node has no valid port");
    }
    node->addr.port = (uint16_t)want;
    /* the endpoint is what clients are told to use (an announced address or
     * hostname); ip is the node's own; empty: the host of the node asked */
    bool use_endpoint =
        endpoint != NULL && endpoint_len > 0 && !word_is(endpoint, endpoint_len, "?");
    if (!msg_host_set(&node->addr, use_endpoint ? endpoint : ip,
                      use_endpoint ? endpoint_len : ip_len)) {
        return topo_fail(t, "a node has no valid address");
    }
    return 0;
}

static int shards_slots(struct rd *r, struct cluster_topo *t, uint32_t shard)
{
    int64_t n = rd_array(r);
    if (r->bad || (n & 1) != 0) {
        return topo_fail(t, "slots is not a list of start end pairs");
    }
    for (int64_t i = 0; i < n; i += 2) {
        int64_t a = rd_int(r);
        int64_t b = rd_int(r);
        if (r->bad) {
            return topo_fail(t, "slots is not a list of integers");
        }
        if (topo_range_add(t, a, b, shard) != 0) {
            return -1;
        }
    }
    return 0;
}

static int shards_one(struct rd *r, struct cluster_topo *t, uint32_t shard)
{
    int64_t n = rd_array(r);
    if (r->bad || (n & 1) != 0) {
        return topo_fail(t, "a shard is not a map of fields");
    }
    for (int64_t i = 0; i < n; i += 2) {
        const uint8_t *k;
        size_t kl;
        rd_str(r, &k, &kl);
        if (r->bad) {
            return topo_fail(t, "a shard's field name is not a string");
        }
        if (word_is(k, kl, "slots")) {
            if (shards_slots(r, t, shard) != 0) {
                return -1;
            }
        } else if (word_is(k, kl, "nodes")) {
            int64_t m = rd_array(r);
            for (int64_t j = 0; j < m && !r->bad; j++) {
                if (shards_node(r, t, shard) != 0) {
                    return -1;
                }
            }
        } else {
            rd_skip(r, 2);
        }
        if (r->bad) {
            return topo_fail(t, "a shard's field is malformed");
        }
    }
    return 0;
}

/* Ranges of a shard without a master node cannot be served: dropped. */
static void topo_drop_masterless(struct cluster_topo *t)
{
    uint32_t k = 0;
    for (uint32_t i = 0; i < t->nranges; i++) {
        if (cluster_topo_master(t, t->ranges[i].shard) >= 0) {
            t->ranges[k++] = t->ranges[i];
        }
    }
    t->nranges = k;
}

/* A master of no slot is taken for none, as by a client reading CLUSTER
 * SLOTS (which lists no such node): it serves nothing, and a node just
 * made a replica is listed so by the other nodes until gossip tells them
 * (about a second after CLUSTER REPLICATE; every node says cluster_state:ok
 * meanwhile). Sent a write meant for every master, it answers READONLY. */
static void topo_demote_slotless(struct cluster_topo *t)
{
    /* shards: at most one per range (CLUSTER SLOTS), so fewer than 16384 */
    uint8_t serves[CLUSTER_SLOTS / 8] = {0};
    for (uint32_t i = 0; i < t->nranges; i++) {
        uint32_t sh = t->ranges[i].shard;
        serves[sh / 8] |= (uint8_t)(1u << (sh % 8));
    }
    for (uint32_t i = 0; i < t->nnodes; i++) {
        uint32_t sh = t->nodes[i].shard;
        bool any = sh < CLUSTER_SLOTS && (serves[sh / 8] >> (sh % 8) & 1u) != 0;
        t->nodes[i].master = t->nodes[i].master && any;
    }
}

static int topo_end(struct rd *r, struct cluster_topo *t)
{
    if (r->bad || r->pos != r->n) {
        return topo_fail(t, "not a complete reply");
    }
    topo_drop_masterless(t);
    topo_demote_slotless(t);
    return 0;
}

static int topo_begin(struct rd *r, struct cluster_topo *t, int64_t *n)
{
    cluster_topo_reset(t);
    if (rd_type(r) == '-') {
        return topo_fail(t, "an error reply");
    }
    *n = rd_array(r);
    return r->bad ? topo_fail(t, "not an array") : 0;
}

int cluster_msg_parse_shards(const uint8_t *p, size_t len, struct cluster_topo *t)
{
    struct rd r = {p, len, 0, false};
    int64_t n;
    if (topo_begin(&r, t, &n) != 0) {
        return -1;
    }
    for (int64_t i = 0; i < n; i++) {
        if (t->nshards >= CLUSTER_MAX_NODES) {
            return topo_fail(t, "too many shards");
        }
        if (shards_one(&r, t, t->nshards++) != 0) {
            return -1;
        }
    }
    return topo_end(&r, t);
}

/* One node of a CLUSTER SLOTS range: *[ip port id? metadata?]. */
static int slots_node(struct rd *r, struct cluster_topo *t, uint32_t shard, bool master)
{
    int64_t n = rd_array(r);
    const uint8_t *ip;
    size_t ip_len;
    if (r->bad || n < 2) {
        return topo_fail(t, "a node is not [ip port ...]");
    }
    rd_str(r, &ip, &ip_len);
    int64_t port = rd_int(r);
    const uint8_t *id = NULL;
    size_t id_len = 0;
    if (n > 2) {
        rd_str(r, &id, &id_len);
    }
    for (int64_t i = 3; i < n; i++) {
        rd_skip(r, 4);
    }
    struct cluster_topo_node *node = topo_node_add(t);
    if (node == NULL) {
        return topo_fail(t, "too many nodes");
    }
    msg_id_set(node->id, id, id_len);
    if (r->bad || port <= 0 || port > 65535 || !msg_host_set(&node->addr, ip, ip_len)) {
        return topo_fail(t, "a node has no valid address");
    }
    node->addr.port = (uint16_t)port;
    node->shard = shard;
    node->master = master;
    return 0;
}

int cluster_msg_parse_slots(const uint8_t *p, size_t len, struct cluster_topo *t)
{
    struct rd r = {p, len, 0, false};
    int64_t n;
    if (topo_begin(&r, t, &n) != 0) {
        return -1;
    }
    for (int64_t i = 0; i < n; i++) {
        int64_t m = rd_array(&r);
        if (r.bad || m < 3) {
            return topo_fail(t, "a range is not [start end master ...]");
        }
        int64_t a = rd_int(&r);
        int64_t b = rd_int(&r);
        /* one shard per range: CLUSTER SLOTS repeats a node for each of its
         * ranges, and the caller finds nodes by address */
        uint32_t shard = t->nshards++;
        if (r.bad || topo_range_add(t, a, b, shard) != 0) {
            return r.bad ? topo_fail(t, "a range's bounds are not integers") : -1;
        }
        for (int64_t j = 2; j < m; j++) {
            if (slots_node(&r, t, shard, j == 2) != 0) {
                return -1;
            }
        }
    }
    return topo_end(&r, t);
}

bool cluster_msg_unknown_subcommand(const uint8_t *p, size_t len)
{
    static const char a[] = "unknown subcommand";
    if (len < 1 || p[0] != '-') {
        return false;
    }
    for (size_t i = 0; i + sizeof(a) - 1 <= len; i++) {
        if (strncasecmp((const char *)p + i, a, sizeof(a) - 1) == 0) {
            return true;
        }
    }
    return false;
}

/* ------------------------------------------------------------ redirections */

static bool msg_prefix(const uint8_t *p, size_t len, const char *w)
{
    size_t n = strlen(w);
    return len >= n && memcmp(p, w, n) == 0 && (len == n || p[n] == ' ' || p[n] == '\r');
}

/* "<slot> <host>:<port>" of a MOVED / ASK. */
static bool msg_target(const uint8_t *s, size_t n, struct cluster_redirect *out)
{
    size_t i = 0;
    uint32_t slot = 0;
    if (n == 0 || s[0] < '0' || s[0] > '9') {
        return false;
    }
    while (i < n && s[i] >= '0' && s[i] <= '9') {
        slot = slot * 10 + (uint32_t)(s[i++] - '0');
        if (slot >= CLUSTER_SLOTS || i > 5) {
            return false;
        }
    }
    if (i >= n || s[i] != ' ') {
        return false;
    }
    const uint8_t *addr = s + i + 1;
    size_t alen = n - i - 1;
    const uint8_t *colon = NULL;
    for (size_t k = 0; k < alen; k++) {
        colon = addr[k] == ':' ? addr + k : colon; /* the last one: IPv6 has more */
    }
    int64_t port;
    if (colon == NULL ||
        !redis_wire_int_parse(colon + 1, alen - (size_t)(colon + 1 - addr), &port) || port <= 0 ||
        port > 65535 || !msg_host_set(&out->to, addr, (size_t)(colon - addr))) {
        return false;
    }
    out->slot = (uint16_t)slot;
    out->to.port = (uint16_t)port;
    return true;
}

bool cluster_msg_execabort(const uint8_t *p, size_t len)
{
    static const char word[] = "-EXECABORT";
    return len >= sizeof(word) - 1 && memcmp(p, word, sizeof(word) - 1) == 0;
}

/* Which CLUSTERDOWN: the whole cluster refuses, or only this slot (no node
 * serves it), or only writes (the cluster is down, reads allowed). Any other
 * text is taken as the whole cluster down (what older nodes say). */
static int msg_down_kind(const uint8_t *p, size_t len)
{
    static const char ro[] = "only accepts read commands";
    if (msg_prefix(p, len, "CLUSTERDOWN Hash slot not served")) {
        return CLUSTER_REPLY_UNSERVED;
    }
    if (len >= sizeof(ro) - 1 && memcmp(p + len - (sizeof(ro) - 1), ro, sizeof(ro) - 1) == 0) {
        return CLUSTER_REPLY_DOWN_RO;
    }
    return CLUSTER_REPLY_DOWN;
}

int cluster_msg_redirect(const uint8_t *p, size_t len, struct cluster_redirect *out)
{
    memset(out, 0, sizeof(*out));
    if (len < 3 || p[0] != '-' || p[len - 2] != '\r' || p[len - 1] != '\n') {
        return CLUSTER_REPLY_OTHER;
    }
    p++;
    len -= 3; /* the text between '-' and CRLF */
    if (msg_prefix(p, len, "TRYAGAIN")) {
        out->kind = CLUSTER_REPLY_TRYAGAIN;
    } else if (msg_prefix(p, len, "CLUSTERDOWN")) {
        out->kind = msg_down_kind(p, len);
    } else if (msg_prefix(p, len, "MOVED") && len > 6 && msg_target(p + 6, len - 6, out)) {
        out->kind = CLUSTER_REPLY_MOVED;
    } else if (msg_prefix(p, len, "ASK") && len > 4 && msg_target(p + 4, len - 4, out)) {
        out->kind = CLUSTER_REPLY_ASK;
    }
    return out->kind;
}

int cluster_msg_sockaddr(const struct cluster_node_addr *a, struct sockaddr_storage *ss,
                         socklen_t *len)
{
    memset(ss, 0, sizeof(*ss));
    struct sockaddr_in *v4 = (struct sockaddr_in *)ss;
    struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)ss;
    if (inet_pton(AF_INET, a->host, &v4->sin_addr) == 1) {
        v4->sin_family = AF_INET;
        v4->sin_port = htons(a->port);
        *len = sizeof(*v4);
        return 0;
    }
    if (inet_pton(AF_INET6, a->host, &v6->sin6_addr) == 1) {
        v6->sin6_family = AF_INET6;
        v6->sin6_port = htons(a->port);
        *len = sizeof(*v6);
        return 0;
    }
    return -1;
}

int cluster_msg_shards_request(struct buf *out)
{
    return buf_append_str(out, "*2\r\n$7\r\nCLUSTER\r\n$6\r\nSHARDS\r\n");
}

int cluster_msg_slots_request(struct buf *out)
{
    return buf_append_str(out, "*2\r\n$7\r\nCLUSTER\r\n$5\r\nSLOTS\r\n");
}
