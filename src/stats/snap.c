#include "stats/snap.h"

#include <stdlib.h>
#include <string.h>

#include "conf/conf.h"

/*
 * Binary form (all integers LEB128 varints, signed ones zigzagged first):
 *
 *   "NCSN" version SP_COUNT SS_COUNT SPX_COUNT SG_COUNT SC_COUNT  (10 bytes; the counts catch
 *                                       a field list that changed without a version bump)
 *   total_connections curr_connections generation reload_failures last_reload
 *   last_reload_ms npools pool*
 *   pool:    namelen name kind(0 plain|1 sentinel|2 cluster byte) v[SP_COUNT] x[SPX_COUNT]
 *            c[SC_COUNT] histo
 *            listen redis(0|1 byte) mode(byte) nservers server*
 *   server:  namelen name v[SS_COUNT] g[SG_COUNT] histo
 *            addr role(byte) state(byte) failures ejected_until_ms last_error last_error_ms
 *            nreplicas replica*
 *   replica: addr state(byte)
 *   (listen, addr, last_error: namelen name; the bytes are checked against their enums)
 *   histo:  count sum max nnz (gap value)*  -- nonzero buckets only: a
 *           histogram is 4 KB in memory but a few dozen bytes here; bucket =
 *           previous bucket + 1 + gap (the first: gap), value never 0.
 *
 * Everything is canonical (shortest varints, no zero buckets), so a decoded
 * snapshot encodes back to the very same bytes; the fuzzer checks that.
 */

#define SNAP_VERSION 5
#define SNAP_HEADER  10
/* the fewest bytes a pool / server can take: lets the decoder refuse a count
 * the remaining input cannot hold before allocating for it */
#define SNAP_MIN_HISTO   4
#define SNAP_MIN_POOL    (1 + 1 + SP_COUNT + SPX_COUNT + SC_COUNT + SNAP_MIN_HISTO + 3 + 1)
#define SNAP_MIN_SERVER  (1 + SS_COUNT + SG_COUNT + SNAP_MIN_HISTO + 8)
#define SNAP_MIN_REPLICA 2

static const enum stats_kind pool_kinds[] = {
#define STATS_KIND(name, kind, desc) STATS_##kind,
    STATS_POOL_FIELDS(STATS_KIND)};
static const enum stats_kind server_kinds[] = {STATS_SERVER_FIELDS(STATS_KIND)};
static const enum stats_kind pool_extra_kinds[] = {STATS_POOL_EXTRA_FIELDS(STATS_KIND)};
static const enum stats_kind group_kinds[] = {STATS_GROUP_FIELDS(STATS_KIND)};
static const enum stats_kind cluster_kinds[] = {STATS_CLUSTER_FIELDS(STATS_KIND)};
#undef STATS_KIND

/* ---- building ---- */

const char *stats_state_name(unsigned state)
{
    static const char *const names[] = {"live", "failing", "ejected", "no_reads"};
    return state < STATS_STATE_COUNT ? names[state] : "?";
}

const char *stats_role_name(unsigned role)
{
    static const char *const names[] = {"shard", "master", "replica"};
    return role < STATS_ROLE_COUNT ? names[role] : "?";
}

static char *snap_name_dup(const char *s)
{
    if (s == NULL) {
        s = "";
    }
    size_t n = strlen(s) + 1;
    char *d = malloc(n);
    if (d != NULL) {
        memcpy(d, s, n);
    }
    return d;
}

/* calloc that gives NULL without failing for an empty array */
static void *snap_array_alloc(uint32_t n, size_t size, bool *failed)
{
    if (n == 0) {
        return NULL;
    }
    void *p = calloc(n, size);
    if (p == NULL) {
        *failed = true;
    }
    return p;
}

int stats_snap_set_str(char **dst, const char *src)
{
    char *d = snap_name_dup(src);
    if (d == NULL) {
        return -1;
    }
    free(*dst);
    *dst = d;
    return 0;
}

static void snap_replicas_free(struct stats_server_snap *sv)
{
    for (uint32_t k = 0; sv->replicas != NULL && k < sv->nreplicas; k++) {
        free(sv->replicas[k].addr);
    }
    free(sv->replicas);
    sv->replicas = NULL;
    sv->nreplicas = 0;
}

const struct histo *stats_server_lat(const struct stats_server_snap *s)
{
    static const struct histo none;
    return s->lat != NULL ? s->lat : &none;
}

struct histo *stats_server_lat_mut(struct stats_server_snap *s)
{
    if (s->lat == NULL) {
        s->lat = calloc(1, sizeof(*s->lat));
    }
    return s->lat;
}

static void snap_server_free(struct stats_server_snap *sv)
{
    free(sv->lat);
    free(sv->name);
    free(sv->addr);
    free(sv->last_error);
    snap_replicas_free(sv);
}

void stats_snap_free(struct stats_snap *s)
{
    if (s == NULL) {
        return;
    }
    for (uint32_t i = 0; s->pools != NULL && i < s->npools; i++) {
        struct stats_pool_snap *p = &s->pools[i];
        for (uint32_t j = 0; p->servers != NULL && j < p->nservers; j++) {
            snap_server_free(&p->servers[j]);
        }
        free(p->servers);
        free(p->name);
        free(p->listen);
    }
    free(s->pools);
    free(s->workers);
    free(s);
}

static uint8_t snap_mode_of(const struct conf_pool *cp)
{
    if (cp->redis_cluster) {
        return STATS_CLUSTER;
    }
    if (cp->nsentinels > 0) {
        return STATS_SENTINEL;
    }
    return cp->read_from != READ_FROM_NONE ? STATS_MASTER_REPLICA : STATS_PLAIN;
}

/* A server's name, address and role from the file; false when out of memory. */
static bool snap_server_of_conf(struct stats_server_snap *ss, const struct conf_pool *cp,
                                uint32_t j)
{
    ss->name = snap_name_dup(cp->servers[j].name);
    /* a sentinel group's address is the master the sentinels name: runtime data */
    ss->addr = snap_name_dup(cp->nsentinels > 0 ? "" : cp->servers[j].addr.text);
    ss->last_error = snap_name_dup("");
    if (cp->read_from != READ_FROM_NONE && cp->nsentinels == 0) {
        ss->role = j == cp->master ? STATS_MASTER : STATS_REPLICA;
    }
    return ss->name != NULL && ss->addr != NULL && ss->last_error != NULL;
}

struct stats_snap *stats_snap_of_conf(const struct conf *conf)
{
    struct stats_snap *s = calloc(1, sizeof(*s));
    if (s == NULL) {
        return NULL;
    }
    bool failed = false;
    s->pools = snap_array_alloc(conf->npools, sizeof(*s->pools), &failed);
    s->npools = failed ? 0 : conf->npools;
    for (uint32_t i = 0; i < s->npools && !failed; i++) {
        const struct conf_pool *cp = &conf->pools[i];
        struct stats_pool_snap *ps = &s->pools[i];
        ps->name = snap_name_dup(cp->name);
        ps->listen = snap_name_dup(cp->listen.text);
        ps->group_fields = cp->nsentinels > 0 || (!cp->redis_cluster && cp->failover_hold_on_crash);
        ps->cluster = cp->redis_cluster;
        ps->redis = cp->redis;
        ps->mode = snap_mode_of(cp);
        ps->servers = snap_array_alloc(cp->nservers, sizeof(*ps->servers), &failed);
        ps->nservers = failed ? 0 : cp->nservers;
        failed |= ps->name == NULL || ps->listen == NULL;
        for (uint32_t j = 0; j < ps->nservers && !failed; j++) {
            failed |= !snap_server_of_conf(&ps->servers[j], cp, j);
        }
    }
    if (failed) {
        stats_snap_free(s);
        return NULL;
    }
    return s;
}

/* ---- summing ---- */

/* Wrapping, not undefined, should a counter ever overflow. */
static int64_t snap_sum(int64_t a, int64_t b)
{
    return (int64_t)((uint64_t)a + (uint64_t)b);
}

static void snap_fields_add(int64_t *into, const int64_t *from, const enum stats_kind *kinds, int n,
                            bool counters_only)
{
    for (int i = 0; i < n; i++) {
        switch (kinds[i]) {
        case STATS_COUNTER:
            into[i] = snap_sum(into[i], from[i]);
            break;
        case STATS_GAUGE:
            if (!counters_only) {
                into[i] = snap_sum(into[i], from[i]);
            }
            break;
        case STATS_TIMESTAMP:
        case STATS_MAX:
            if (from[i] > into[i]) {
                into[i] = from[i];
            }
            break;
        }
    }
}

/* Workers normally share the master's layout, so the same index is tried
 * first and the linear search only runs when a reload moved things. */
static struct stats_pool_snap *snap_pool_find(struct stats_snap *s, uint32_t hint, const char *name)
{
    if (hint < s->npools && strcmp(s->pools[hint].name, name) == 0) {
        return &s->pools[hint];
    }
    for (uint32_t i = 0; i < s->npools; i++) {
        if (strcmp(s->pools[i].name, name) == 0) {
            return &s->pools[i];
        }
    }
    return NULL;
}

static struct stats_server_snap *snap_server_find(struct stats_pool_snap *p, uint32_t hint,
                                                  const char *name)
{
    if (hint < p->nservers && strcmp(p->servers[hint].name, name) == 0) {
        return &p->servers[hint];
    }
    for (uint32_t i = 0; i < p->nservers; i++) {
        if (strcmp(p->servers[i].name, name) == 0) {
            return &p->servers[i];
        }
    }
    return NULL;
}

static void snap_replicas_copy(struct stats_server_snap *into, const struct stats_server_snap *from)
{
    into->replicas = calloc(from->nreplicas, sizeof(*into->replicas));
    if (into->replicas == NULL) {
        return;
    }
    into->nreplicas = from->nreplicas;
    for (uint32_t k = 0; k < from->nreplicas; k++) {
        into->replicas[k].addr = snap_name_dup(from->replicas[k].addr);
        into->replicas[k].state = from->replicas[k].state;
        if (into->replicas[k].addr == NULL) {
            snap_replicas_free(into);
            return;
        }
    }
}

/* Each worker has its own view of a server's health: show the worst. */
static void snap_status_add(struct stats_server_snap *into, const struct stats_server_snap *from)
{
    if (from->state > into->state) {
        into->state = from->state;
    }
    if (from->failures > into->failures) {
        into->failures = from->failures;
    }
    if (from->ejected_until_ms > into->ejected_until_ms) {
        into->ejected_until_ms = from->ejected_until_ms;
    }
    if (from->last_error_ms > into->last_error_ms && from->last_error != NULL &&
        stats_snap_set_str(&into->last_error, from->last_error) == 0) {
        into->last_error_ms = from->last_error_ms;
    }
    if ((into->addr == NULL || into->addr[0] == '\0') && from->addr != NULL && from->addr[0]) {
        stats_snap_set_str(&into->addr, from->addr);
    }
    if (into->nreplicas == 0 && from->nreplicas > 0) {
        snap_replicas_copy(into, from);
    }
}

struct stats_server_snap *stats_pool_snap_add_server(struct stats_pool_snap *p, const char *name)
{
    struct stats_server_snap *v = realloc(p->servers, (p->nservers + 1) * sizeof(*v));
    if (v == NULL) {
        return NULL;
    }
    p->servers = v;
    struct stats_server_snap *s = &v[p->nservers];
    memset(s, 0, sizeof(*s));
    s->name = snap_name_dup(name);
    s->addr = snap_name_dup(name); /* a node is named host:port */
    s->last_error = snap_name_dup("");
    if (s->name == NULL || s->addr == NULL || s->last_error == NULL) {
        free(s->name);
        free(s->addr);
        free(s->last_error);
        return NULL;
    }
    p->nservers++;
    return s;
}

void stats_snap_add(struct stats_snap *into, const struct stats_snap *from, bool counters_only)
{
    into->total_connections += from->total_connections;
    /* a file every worker refused is one failed reload, not one per worker */
    if (from->reload_failures > into->reload_failures) {
        into->reload_failures = from->reload_failures;
    }
    if (!counters_only) {
        into->curr_connections += from->curr_connections;
        if (into->generation == 0 || from->generation < into->generation) {
            into->generation = from->generation;
        }
        if (from->last_reload > into->last_reload) {
            into->last_reload = from->last_reload;
        }
        if (from->last_reload_ms > into->last_reload_ms) {
            into->last_reload_ms = from->last_reload_ms;
        }
    }
    for (uint32_t i = 0; i < from->npools; i++) {
        const struct stats_pool_snap *fp = &from->pools[i];
        struct stats_pool_snap *ip = snap_pool_find(into, i, fp->name);
        if (ip == NULL) {
            continue;
        }
        snap_fields_add(ip->v, fp->v, pool_kinds, SP_COUNT, counters_only);
        snap_fields_add(ip->x, fp->x, pool_extra_kinds, SPX_COUNT, counters_only);
        snap_fields_add(ip->c, fp->c, cluster_kinds, SC_COUNT, counters_only);
        histo_merge(&ip->lat, &fp->lat);
        for (uint32_t j = 0; j < fp->nservers; j++) {
            const struct stats_server_snap *fs = &fp->servers[j];
            struct stats_server_snap *is = snap_server_find(ip, j, fs->name);
            if (is == NULL && ip->cluster && fp->cluster) {
                is = stats_pool_snap_add_server(ip, fs->name); /* a node learned at run time */
            }
            if (is == NULL) {
                continue;
            }
            snap_fields_add(is->v, fs->v, server_kinds, SS_COUNT, counters_only);
            snap_fields_add(is->g, fs->g, group_kinds, SG_COUNT, counters_only);
            if (fs->lat != NULL && fs->lat->count != 0 && stats_server_lat_mut(is) != NULL) {
                histo_merge(is->lat, fs->lat);
            }
            if (!counters_only) {
                snap_status_add(is, fs);
            }
        }
    }
}

/* ---- encoding ---- */

static uint64_t snap_zigzag(int64_t v)
{
    return v < 0 ? ~((uint64_t)v << 1) : (uint64_t)v << 1;
}

static int64_t snap_unzigzag(uint64_t z)
{
    int64_t h = (int64_t)(z >> 1);
    return (z & 1) ? -h - 1 : h;
}

/* The output and whether any append failed: appends are plain statements so
 * their order is the statement order (operands of | are unsequenced). */
struct snap_writer {
    struct buf *out;
    int rc;
};

static void snap_put_varint(struct snap_writer *w, uint64_t v)
{
    uint8_t tmp[10];
    size_t n = 0;
    do {
        uint8_t b = v & 0x7f;
        v >>= 7;
        tmp[n++] = v ? (uint8_t)(b | 0x80) : b;
    } while (v);
    w->rc |= buf_append(w->out, tmp, n);
}

static void snap_put_byte(struct snap_writer *w, uint8_t b)
{
    w->rc |= buf_append(w->out, &b, 1);
}

static void snap_put_name(struct snap_writer *w, const char *name)
{
    name = name != NULL ? name : "";
    size_t n = strlen(name);
    snap_put_varint(w, n);
    w->rc |= buf_append(w->out, name, n);
}

static void snap_put_histo(struct snap_writer *w, const struct histo *h)
{
    uint64_t nnz = 0;
    for (uint32_t i = 0; i < HISTO_BUCKETS; i++) {
        nnz += h->b[i] != 0;
    }
    snap_put_varint(w, h->count);
    snap_put_varint(w, h->sum);
    snap_put_varint(w, h->max);
    snap_put_varint(w, nnz);
    uint32_t next = 0; /* the first bucket the next gap counts from */
    for (uint32_t i = 0; i < HISTO_BUCKETS; i++) {
        if (h->b[i] != 0) {
            snap_put_varint(w, i - next);
            snap_put_varint(w, h->b[i]);
            next = i + 1;
        }
    }
}

static const uint8_t snap_header[SNAP_HEADER] = {
    'N', 'C', 'S', 'N', SNAP_VERSION, SP_COUNT, SS_COUNT, SPX_COUNT, SG_COUNT, SC_COUNT};

static void snap_put_server(struct snap_writer *w, const struct stats_server_snap *sv)
{
    snap_put_name(w, sv->name);
    for (int f = 0; f < SS_COUNT; f++) {
        snap_put_varint(w, snap_zigzag(sv->v[f]));
    }
    for (int f = 0; f < SG_COUNT; f++) {
        snap_put_varint(w, snap_zigzag(sv->g[f]));
    }
    snap_put_histo(w, stats_server_lat(sv));
    snap_put_name(w, sv->addr);
    snap_put_byte(w, sv->role);
    snap_put_byte(w, sv->state);
    snap_put_varint(w, sv->failures);
    snap_put_varint(w, snap_zigzag(sv->ejected_until_ms));
    snap_put_name(w, sv->last_error);
    snap_put_varint(w, snap_zigzag(sv->last_error_ms));
    snap_put_varint(w, sv->nreplicas);
    for (uint32_t k = 0; k < sv->nreplicas; k++) {
        snap_put_name(w, sv->replicas[k].addr);
        snap_put_byte(w, sv->replicas[k].state);
    }
}

static void snap_put_pool(struct snap_writer *w, const struct stats_pool_snap *p)
{
    snap_put_name(w, p->name);
    snap_put_byte(w, p->cluster ? 2 : p->group_fields ? 1 : 0);
    for (int f = 0; f < SP_COUNT; f++) {
        snap_put_varint(w, snap_zigzag(p->v[f]));
    }
    for (int f = 0; f < SPX_COUNT; f++) {
        snap_put_varint(w, snap_zigzag(p->x[f]));
    }
    for (int f = 0; f < SC_COUNT; f++) {
        snap_put_varint(w, snap_zigzag(p->c[f]));
    }
    snap_put_histo(w, &p->lat);
    snap_put_name(w, p->listen);
    snap_put_byte(w, p->redis ? 1 : 0);
    snap_put_byte(w, p->mode);
    snap_put_varint(w, p->nservers);
    for (uint32_t j = 0; j < p->nservers && w->rc == 0; j++) {
        snap_put_server(w, &p->servers[j]);
    }
}

int stats_snap_encode(const struct stats_snap *s, struct buf *out)
{
    struct snap_writer w = {out, buf_append(out, snap_header, sizeof(snap_header))};
    snap_put_varint(&w, s->total_connections);
    snap_put_varint(&w, s->curr_connections);
    snap_put_varint(&w, s->generation);
    snap_put_varint(&w, s->reload_failures);
    snap_put_varint(&w, s->last_reload);
    snap_put_varint(&w, snap_zigzag(s->last_reload_ms));
    snap_put_varint(&w, s->npools);
    for (uint32_t i = 0; i < s->npools && w.rc == 0; i++) {
        snap_put_pool(&w, &s->pools[i]);
    }
    return w.rc ? -1 : 0;
}

/* ---- decoding ---- */

/* A cursor over untrusted bytes: every read checks what is left, and the
 * first failure sticks so callers test once at the end of a record. */
struct snap_reader {
    const uint8_t *p;
    size_t left;
    bool bad;
};

static uint64_t snap_get_varint(struct snap_reader *r)
{
    uint64_t v = 0;
    for (unsigned i = 0; i < 10; i++) {
        if (r->bad || r->left == 0) {
            r->bad = true;
            return 0;
        }
        uint8_t b = *r->p++;
        r->left--;
        /* the tenth byte holds bit 63 only; a last byte of 0 after others
         * would be an overlong (non-canonical) form */
        if ((i == 9 && b > 1) || (i > 0 && b == 0)) {
            r->bad = true;
            return 0;
        }
        v |= (uint64_t)(b & 0x7f) << (7 * i);
        if (!(b & 0x80)) {
            return v;
        }
    }
    r->bad = true;
    return 0;
}

/* A count of items each at least min bytes long that the input can hold. */
static uint32_t snap_get_count(struct snap_reader *r, size_t min)
{
    uint64_t n = snap_get_varint(r);
    if (r->bad || n > UINT32_MAX || n > r->left / min) {
        r->bad = true;
        return 0;
    }
    return (uint32_t)n;
}

static char *snap_get_name(struct snap_reader *r)
{
    uint64_t n = snap_get_varint(r);
    /* names are C strings matched with strcmp: no NUL inside */
    if (r->bad || n > r->left || memchr(r->p, '\0', (size_t)n) != NULL) {
        r->bad = true;
        return NULL;
    }
    char *s = malloc((size_t)n + 1);
    if (s == NULL) {
        r->bad = true;
        return NULL;
    }
    memcpy(s, r->p, (size_t)n);
    s[n] = '\0';
    r->p += n;
    r->left -= (size_t)n;
    return s;
}

/* The nnz buckets of a histogram whose count, sum and max were read. */
static void snap_get_buckets(struct snap_reader *r, struct histo *h, uint64_t nnz)
{
    if (r->bad || nnz > HISTO_BUCKETS) {
        r->bad = true;
        return;
    }
    uint64_t next = 0;
    for (uint64_t i = 0; i < nnz && !r->bad; i++) {
        uint64_t gap = snap_get_varint(r);
        uint64_t v = snap_get_varint(r);
        if (r->bad || gap >= HISTO_BUCKETS - next || v == 0) {
            r->bad = true;
            return;
        }
        h->b[next + gap] = v;
        next += gap + 1;
    }
}

static void snap_get_histo(struct snap_reader *r, struct histo *h)
{
    h->count = snap_get_varint(r);
    h->sum = snap_get_varint(r);
    h->max = snap_get_varint(r);
    snap_get_buckets(r, h, snap_get_varint(r));
}

/* A server's: made only when something was recorded (most are empty). */
static void snap_get_server_histo(struct snap_reader *r, struct stats_server_snap *s)
{
    uint64_t count = snap_get_varint(r);
    uint64_t sum = snap_get_varint(r);
    uint64_t max = snap_get_varint(r);
    uint64_t nnz = snap_get_varint(r);
    if (count == 0 && sum == 0 && max == 0 && nnz == 0) {
        return;
    }
    struct histo *h = r->bad ? NULL : stats_server_lat_mut(s);
    if (h == NULL) {
        r->bad = true;
        return;
    }
    h->count = count;
    h->sum = sum;
    h->max = max;
    snap_get_buckets(r, h, nnz);
}

/* One byte that must be below limit. */
static uint8_t snap_get_byte(struct snap_reader *r, uint8_t limit)
{
    if (r->bad || r->left == 0 || *r->p >= limit) {
        r->bad = true;
        return 0;
    }
    r->left--;
    return *r->p++;
}

static void snap_get_replicas(struct snap_reader *r, struct stats_server_snap *s)
{
    uint32_t n = snap_get_count(r, SNAP_MIN_REPLICA);
    if (r->bad || n == 0) {
        return;
    }
    s->replicas = calloc(n, sizeof(*s->replicas));
    if (s->replicas == NULL) {
        r->bad = true;
        return;
    }
    s->nreplicas = n;
    for (uint32_t k = 0; k < n && !r->bad; k++) {
        s->replicas[k].addr = snap_get_name(r);
        s->replicas[k].state = snap_get_byte(r, STATS_STATE_COUNT);
    }
}

static void snap_get_server(struct snap_reader *r, struct stats_server_snap *s)
{
    s->name = snap_get_name(r);
    for (int f = 0; f < SS_COUNT; f++) {
        s->v[f] = snap_unzigzag(snap_get_varint(r));
    }
    for (int f = 0; f < SG_COUNT; f++) {
        s->g[f] = snap_unzigzag(snap_get_varint(r));
    }
    snap_get_server_histo(r, s);
    s->addr = snap_get_name(r);
    s->role = snap_get_byte(r, STATS_ROLE_COUNT);
    s->state = snap_get_byte(r, STATS_STATE_COUNT);
    uint64_t failures = snap_get_varint(r);
    r->bad |= failures > UINT32_MAX;
    s->failures = (uint32_t)failures;
    s->ejected_until_ms = snap_unzigzag(snap_get_varint(r));
    s->last_error = snap_get_name(r);
    s->last_error_ms = snap_unzigzag(snap_get_varint(r));
    snap_get_replicas(r, s);
}

static void snap_get_pool(struct snap_reader *r, struct stats_pool_snap *p)
{
    p->name = snap_get_name(r);
    if (r->bad || r->left == 0 || *r->p > 2) {
        r->bad = true;
        return;
    }
    p->group_fields = *r->p == 1;
    p->cluster = *r->p == 2;
    r->p++;
    r->left--;
    for (int f = 0; f < SP_COUNT; f++) {
        p->v[f] = snap_unzigzag(snap_get_varint(r));
    }
    for (int f = 0; f < SPX_COUNT; f++) {
        p->x[f] = snap_unzigzag(snap_get_varint(r));
    }
    for (int f = 0; f < SC_COUNT; f++) {
        p->c[f] = snap_unzigzag(snap_get_varint(r));
    }
    snap_get_histo(r, &p->lat);
    p->listen = snap_get_name(r);
    p->redis = snap_get_byte(r, 2) == 1;
    p->mode = snap_get_byte(r, STATS_MODE_COUNT);
    uint32_t n = snap_get_count(r, SNAP_MIN_SERVER);
    if (r->bad || n == 0) {
        return;
    }
    p->servers = calloc(n, sizeof(*p->servers));
    if (p->servers == NULL) {
        r->bad = true;
        return;
    }
    p->nservers = n;
    for (uint32_t j = 0; j < n && !r->bad; j++) {
        snap_get_server(r, &p->servers[j]);
    }
}

struct stats_snap *stats_snap_decode(const uint8_t *p, size_t len)
{
    if (p == NULL || len < SNAP_HEADER || memcmp(p, snap_header, SNAP_HEADER) != 0) {
        return NULL;
    }
    struct stats_snap *s = calloc(1, sizeof(*s));
    if (s == NULL) {
        return NULL;
    }
    struct snap_reader r = {p + SNAP_HEADER, len - SNAP_HEADER, false};
    s->total_connections = snap_get_varint(&r);
    s->curr_connections = snap_get_varint(&r);
    s->generation = snap_get_varint(&r);
    s->reload_failures = snap_get_varint(&r);
    uint64_t last = snap_get_varint(&r);
    r.bad |= last > STATS_RELOAD_FAILED;
    s->last_reload = (uint8_t)last;
    s->last_reload_ms = snap_unzigzag(snap_get_varint(&r));
    uint32_t n = snap_get_count(&r, SNAP_MIN_POOL);
    if (!r.bad && n > 0) {
        s->pools = calloc(n, sizeof(*s->pools));
        r.bad = s->pools == NULL;
        s->npools = r.bad ? 0 : n;
    }
    for (uint32_t i = 0; i < s->npools && !r.bad; i++) {
        snap_get_pool(&r, &s->pools[i]);
    }
    if (r.bad || r.left != 0) {
        stats_snap_free(s);
        return NULL;
    }
    return s;
}
