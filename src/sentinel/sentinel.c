/*
 * sentinel: the client state machine (see sentinel.h for the whole picture).
 *
 *   heartbeat ──> link_tick(query) ── closed: connect to sentinels[cur]
 *             │                   ├─ silent too long: fail, cur++, connect
 *             │                   └─ idle: get-master-addr-by-name + MASTER
 *             │                            [+ REPLICAS], every group
 *             └─> link_tick(sub) ──── same, with PING instead of the queries
 *
 *   answer / +switch-master ──> candidate ──> probe: [AUTH] ROLE ──> "master":
 *                                                                   server_set_addr
 *
 * Epochs: right after a failover some sentinels still name the old master, and
 * the old master itself still says "master" until a sentinel demotes it. The
 * config-epoch (SENTINEL MASTER) grows with every failover, so an answer with
 * an older epoch than the master in use is stale and ignored.
 */
#include "sentinel/sentinel.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "net/sock.h"
#include "proto/redis_wire.h"
#include "sentinel/sentinel_conn.h"
#include "sentinel/sentinel_msg.h"

/* How long a sentinel or a candidate master may take to answer, when the
 * heartbeat is shorter: a short heartbeat must not make a sentinel that is a
 * little far away look dead. */
#define SENTINEL_MIN_WAIT_MS 1000

/* Replicas read from one SENTINEL REPLICAS answer: more are left out. */
#define SENTINEL_MAX_REPLICAS 64

enum link_kind { LINK_QUERY, LINK_SUB };

struct sentinel_link {
    struct sentinel_conn conn;
    struct sentinel *sn;
    uint8_t kind;
    bool auth_pending;   /* the reply to AUTH comes before the others */
    bool failing;        /* failed since its last good answer: log quietly */
    uint32_t at;         /* the sentinel it talks to (index into cp->sentinels) */
    uint32_t tries;      /* sentinels tried since the last heartbeat */
    uint32_t waiting;    /* replies still due */
    uint64_t since_ms;   /* when it began waiting for them */
    uint32_t next_reply; /* query link: per_group per group: address, epoch[, replicas] */
    uint32_t per_group;  /* query link: replies per group in this round */
    uint32_t round_ok;   /* query link: usable answers in this round */
    bool old_replicas;   /* query link: this sentinel knows SENTINEL SLAVES only */
    bool ans_ok;         /* query link: the address answer of the current group */
    bool ans_fresh;      /* query link: ... at an epoch not older than the one in use */
    socklen_t ans_len;
    struct sockaddr_storage ans_ss;
};

/* A group's view: the epoch of its master, and a candidate master checked
 * with ROLE on a connection of its own. */
struct sentinel_group {
    struct sentinel_conn conn;
    struct ev_timer timer;
    struct sentinel *sn;
    uint32_t idx;     /* the group's number (the sink's) */
    const char *name; /* the group's name (the sentinels' master name) */
    struct sockaddr_storage ss;
    socklen_t len;
    bool active;
    bool warned;         /* a sentinel's miss for this group was logged loudly already */
    uint32_t skip;       /* replies to AUTH still to come before ROLE's */
    uint64_t epoch;      /* config epoch of the master in use: older views are stale */
    uint64_t cand_epoch; /* the epoch the candidate came with */
};

struct sentinel {
    struct pool_watcher watcher; /* first: the pool stops us through it */
    struct group_sink sink;
    const struct conf_pool *cp;
    struct ev_loop *loop;
    bool replica_reads; /* ask for the groups' replicas, hear of replicas going down */
    uint32_t cur;       /* the sentinel both links use */
    struct sentinel_link query, sub;
    struct sentinel_group *groups; /* same index as cp->servers */
    uint32_t ngroups;
    struct ev_timer heartbeat;
};

static void link_connect(struct sentinel_link *l);

static uint64_t sentinel_wait_ms(const struct sentinel *sn)
{
    uint64_t hb = (uint64_t)sn->cp->sentinel_heartbeat_ms;
    return hb > SENTINEL_MIN_WAIT_MS ? hb : SENTINEL_MIN_WAIT_MS;
}

static const char *link_name(const struct sentinel_link *l)
{
    return l->kind == LINK_QUERY ? "query" : "subscription";
}

static const char *link_sentinel(const struct sentinel_link *l)
{
    return l->sn->cp->sentinels[l->at].name;
}

/* A reply as printable text for a log line. */
static const char *reply_text(char *dst, size_t cap, const uint8_t *p, const struct rsp_info *ri)
{
    size_t n = ri->len >= 2 ? ri->len - 2 : ri->len;
    redis_wire_quote(dst, cap, p, n);
    return dst;
}

/* Give up on the current sentinel: the next one of the list is tried at once,
 * each at most once per heartbeat, so a list of dead sentinels costs a few
 * refused connects a beat, not a busy loop. */
static int link_fail(struct sentinel_link *l, const char *why)
{
    struct sentinel *sn = l->sn;
    uint32_t n = sn->cp->nsentinels;
    log_at(l->failing ? LOG_INFO : LOG_WARN, "pool '%s': sentinel '%s' (%s link): %s", sn->cp->name,
           link_sentinel(l), link_name(l), why);
    l->failing = true;
    sentinel_conn_close(sn->loop, &l->conn);
    l->auth_pending = false;
    l->waiting = 0;
    if (l->at == sn->cur) {
        sn->cur = (sn->cur + 1) % n;
    }
    if (++l->tries < n) {
        link_connect(l);
    }
    return -1;
}

static void link_wait(struct sentinel_link *l, uint32_t replies)
{
    l->waiting += replies;
    l->since_ms = ev_now(l->sn->loop);
}

static void link_queue_queries(struct sentinel_link *l)
{
    const struct sentinel *sn = l->sn;
    /* the replicas are asked for only when reads go there: a pool reading
     * from its masters costs the sentinels nothing more than before */
    bool replicas = sn->replica_reads;
    for (uint32_t i = 0; i < sn->ngroups; i++) {
        const char *group = sn->groups[i].name;
        sentinel_msg_query(&l->conn.out, group);
        sentinel_msg_query_epoch(&l->conn.out, group);
        if (replicas) {
            sentinel_msg_query_replicas(&l->conn.out, group, l->old_replicas);
        }
    }
    l->next_reply = 0;
    l->round_ok = 0;
    l->per_group = replicas ? 3 : 2;
    link_wait(l, l->per_group * sn->ngroups);
}

/* What a new link says first. */
static void link_queue_hello(struct sentinel_link *l)
{
    const char *auth = l->sn->cp->sentinel_auth;
    l->since_ms = ev_now(l->sn->loop);
    if (auth != NULL) {
        sentinel_msg_auth(&l->conn.out, auth);
        l->auth_pending = true;
    }
    if (l->kind == LINK_QUERY) {
        link_queue_queries(l);
    } else {
        sentinel_msg_subscribe(&l->conn.out, l->sn->replica_reads);
        link_wait(l, 1);
    }
}

static void link_connect(struct sentinel_link *l)
{
    struct sentinel *sn = l->sn;
    const struct conf_sentinel *cs = &sn->cp->sentinels[sn->cur];
    struct sockaddr_storage ss = cs->addr.sa;
    socklen_t len = cs->addr.salen;
    l->at = sn->cur;
    l->old_replicas = false; /* a new sentinel: maybe a newer one */
    /* a name that did not resolve at load time is tried again now */
    if (len == 0 && sock_resolve(cs->addr.host, cs->addr.port, 0, &ss, &len) != 0) {
        link_fail(l, "cannot resolve its address");
        return;
    }
    if (sentinel_conn_open(sn->loop, &l->conn, (const struct sockaddr *)&ss, len) != 0) {
        link_fail(l, l->conn.err);
        return;
    }
    log_info("pool '%s': connecting the %s link to sentinel '%s'", sn->cp->name, link_name(l),
             cs->name);
    link_queue_hello(l);
}

/* ------------------------------------------------------------------ probes */

static void probe_stop(struct sentinel_group *pr)
{
    if (pr->active) {
        sentinel_conn_close(pr->sn->loop, &pr->conn);
        ev_timer_stop(pr->sn->loop, &pr->timer);
        pr->active = false;
    }
}

static void probe_fail(struct sentinel_group *pr, const char *why)
{
    char addr[96];
    sock_addr_str((const struct sockaddr *)&pr->ss, pr->len, addr, sizeof(addr));
    log_warn("pool '%s': group '%s': %s is not taken as master: %s (asked again next heartbeat)",
             pr->sn->cp->name, pr->name, addr, why);
    probe_stop(pr);
}

static void probe_accept(struct sentinel_group *pr)
{
    struct sentinel *sn = pr->sn;
    struct sockaddr_storage ss = pr->ss, old;
    socklen_t len = pr->len, old_len = 0;
    char from[96] = "", to[96];
    bool known = sn->sink.ops->master_get(sn->sink.ctx, pr->idx, &old, &old_len);
    if (known) {
        sock_addr_str((const struct sockaddr *)&old, old_len, from, sizeof(from));
    }
    sock_addr_str((const struct sockaddr *)&ss, len, to, sizeof(to));
    probe_stop(pr);
    if (pr->cand_epoch > pr->epoch) {
        pr->epoch = pr->cand_epoch;
    }
    if (!sn->sink.ops->master_found(sn->sink.ctx, pr->idx, (const struct sockaddr *)&ss, len)) {
        return;
    }
    if (known) {
        log_warn("pool '%s': group '%s' master switched from %s to %s", sn->cp->name, pr->name,
                 from, to);
    } else {
        log_notice("pool '%s': group '%s' master is %s", sn->cp->name, pr->name, to);
    }
}

static void probe_verdict(struct sentinel_group *pr, const uint8_t *p)
{
    char text[128], why[160];
    int rc = sentinel_msg_parse_role(p, &pr->conn.ri);
    if (rc == SENTINEL_MSG_OK) {
        probe_accept(pr);
        return;
    }
    if (rc == SENTINEL_MSG_NONE) {
        probe_fail(pr, "ROLE says it is not a master");
        return;
    }
    snprintf(why, sizeof(why), "ROLE answered %s", reply_text(text, sizeof(text), p, &pr->conn.ri));
    probe_fail(pr, why);
}

static void probe_on_io(struct ev_loop *loop, struct ev_io *io, unsigned events)
{
    struct sentinel_group *pr = io->data;
    if (sentinel_conn_io(loop, &pr->conn, events) != 0) {
        probe_fail(pr, pr->conn.err);
        return;
    }
    const uint8_t *p;
    int rc;
    while ((rc = sentinel_conn_next(&pr->conn, &p)) == 1) {
        if (pr->skip > 0) {
            pr->skip--; /* AUTH's reply: a wrong password shows again in ROLE's */
            continue;
        }
        probe_verdict(pr, p);
        return;
    }
    if (rc < 0) {
        probe_fail(pr, pr->conn.err);
    }
}

static void probe_on_timeout(struct ev_loop *loop, struct ev_timer *t)
{
    (void)loop;
    probe_fail(t->data, "no answer in time");
}

static void probe_start(struct sentinel_group *pr, const struct sockaddr_storage *ss, socklen_t len,
                        uint64_t epoch)
{
    struct sentinel *sn = pr->sn;
    pr->cand_epoch = epoch;
    pr->ss = *ss;
    pr->len = len;
    pr->active = true;
    pr->skip = 0;
    if (sentinel_conn_open(sn->loop, &pr->conn, (const struct sockaddr *)ss, len) != 0) {
        probe_fail(pr, pr->conn.err);
        return;
    }
    if (sn->cp->redis_auth != NULL) {
        sentinel_msg_auth_user(&pr->conn.out, sn->cp->redis_auth_user, sn->cp->redis_auth);
        pr->skip = 1;
    }
    sentinel_msg_role(&pr->conn.out);
    ev_timer_start(sn->loop, &pr->timer, sentinel_wait_ms(sn));
}

/* Whether group gr's master in use is at ss (the sink knows where it is). */
static bool sentinel_master_is(struct sentinel *sn, const struct sentinel_group *gr,
                               const struct sockaddr_storage *ss, socklen_t len)
{
    struct sockaddr_storage cur;
    socklen_t cur_len = 0;
    return sn->sink.ops->master_get(sn->sink.ctx, gr->idx, &cur, &cur_len) && cur_len == len &&
           sock_addr_same((const struct sockaddr *)&cur, (const struct sockaddr *)ss, len);
}

/* A sentinel's view of gr at a config epoch: check the master it names unless
 * that view is older than the one in use, or names the master in use. */
static void sentinel_candidate(struct sentinel *sn, struct sentinel_group *pr,
                               const struct sockaddr_storage *ss, socklen_t len, uint64_t epoch)
{
    if (epoch < pr->epoch) {
        log_info("pool '%s': group '%s': a sentinel's view at epoch %llu is older than %llu: "
                 "ignored",
                 sn->cp->name, pr->name, (unsigned long long)epoch, (unsigned long long)pr->epoch);
        return;
    }
    if (sentinel_master_is(sn, pr, ss, len)) {
        pr->epoch = epoch;
        probe_stop(pr); /* the sentinels confirm the master in use */
        return;
    }
    if (pr->active && pr->len == len && memcmp(&pr->ss, ss, len) == 0) {
        pr->cand_epoch = epoch > pr->cand_epoch ? epoch : pr->cand_epoch;
        return;
    }
    probe_stop(pr);
    probe_start(pr, ss, len, epoch);
}

/* The address a sentinel gave as a socket address; false after logging why not. */
static bool sentinel_addr(struct sentinel *sn, const struct sentinel_group *gr,
                          const struct sentinel_master *m, struct sockaddr_storage *ss,
                          socklen_t *len)
{
    if (sentinel_msg_sockaddr(m, ss, len) == 0) {
        return true;
    }
    log_warn("pool '%s': group '%s': the sentinel gave '%.*s', not a numeric address", sn->cp->name,
             gr->name, (int)m->ip_len, (const char *)m->ip);
    return false;
}

/* ------------------------------------------------------------------ replies */

static void query_note_miss(struct sentinel_link *l, struct sentinel_group *pr, const uint8_t *p,
                            int rc)
{
    char text[128];
    struct sentinel *sn = l->sn;
    struct sockaddr_storage cur;
    socklen_t cur_len;
    bool known = sn->sink.ops->master_get(sn->sink.ctx, pr->idx, &cur, &cur_len);
    /* a group with a master in use is served anyway: only say it loudly, once,
     * while it has none (every heartbeat would flood the log) */
    int level = (known || pr->warned) ? LOG_INFO : LOG_WARN;
    pr->warned = true;
    log_at(level, "pool '%s': sentinel '%s' %s group '%s'%s%s", sn->cp->name, link_sentinel(l),
           rc == SENTINEL_MSG_NONE ? "does not know" : "gave no address for", pr->name,
           rc == SENTINEL_MSG_NONE ? "" : ": ",
           rc == SENTINEL_MSG_NONE ? "" : reply_text(text, sizeof(text), p, &l->conn.ri));
}

/* First of a group's answers: keep the address until its epoch comes. */
static void query_address(struct sentinel_link *l, struct sentinel_group *pr, const uint8_t *p)
{
    struct sentinel_master m;
    int rc = sentinel_msg_parse_master(p, &l->conn.ri, &m);
    l->ans_ok = false;
    if (rc != SENTINEL_MSG_OK) {
        query_note_miss(l, pr, p, rc);
        return;
    }
    pr->warned = false;
    l->ans_ok = sentinel_addr(l->sn, pr, &m, &l->ans_ss, &l->ans_len);
}

static void query_epoch(struct sentinel_link *l, struct sentinel_group *pr, const uint8_t *p)
{
    uint64_t epoch;
    l->ans_fresh = false;
    if (!l->ans_ok) {
        return;
    }
    l->round_ok++;
    if (sentinel_msg_parse_epoch(p, &l->conn.ri, &epoch) != SENTINEL_MSG_OK) {
        epoch = pr->epoch; /* no epoch to compare: believe the address */
    }
    l->ans_fresh = epoch >= pr->epoch;
    sentinel_candidate(l->sn, pr, &l->ans_ss, l->ans_len, epoch);
}

/* Third answer: the group's replicas, from a sentinel whose view of the group
 * is not older than the master in use (a lagging one would list the new
 * master as a replica). */
static void query_replicas(struct sentinel_link *l, struct sentinel_group *pr, const uint8_t *p)
{
    struct sentinel_replica rep[SENTINEL_MAX_REPLICAS];
    struct replica_addr addrs[SENTINEL_MAX_REPLICAS];
    struct sentinel *sn = l->sn;
    uint32_t n = 0, k = 0;
    char text[128];
    int rc = sentinel_msg_parse_replicas(p, &l->conn.ri, rep, SENTINEL_MAX_REPLICAS, &n);
    if (rc == SENTINEL_MSG_NONE && !l->old_replicas && l->ans_ok) {
        /* it knows the group but not the subcommand: a sentinel before redis 5 */
        log_info("pool '%s': sentinel '%s' refused SENTINEL REPLICAS (%s): asking SLAVES",
                 sn->cp->name, link_sentinel(l), reply_text(text, sizeof(text), p, &l->conn.ri));
        l->old_replicas = true;
        return;
    }
    if (rc == SENTINEL_MSG_BAD) {
        log_warn("pool '%s': sentinel '%s': group '%s': unreadable replicas: %s", sn->cp->name,
                 link_sentinel(l), pr->name, reply_text(text, sizeof(text), p, &l->conn.ri));
        return;
    }
    if (rc != SENTINEL_MSG_OK || !l->ans_fresh) {
        return; /* keep what a better answer said */
    }
    for (uint32_t i = 0; i < n; i++) {
        struct sentinel_master m = rep[i].addr;
        if (sentinel_addr(sn, pr, &m, &addrs[k].ss, &addrs[k].len)) {
            addrs[k++].usable = rep[i].usable;
        }
    }
    sn->sink.ops->replicas_listed(sn->sink.ctx, pr->idx, addrs, k);
}

static int query_reply(struct sentinel_link *l, const uint8_t *p)
{
    struct sentinel *sn = l->sn;
    if (l->waiting == 0) {
        return link_fail(l, "a reply nothing was asked for");
    }
    uint32_t i = l->next_reply++;
    struct sentinel_group *pr = &sn->groups[i / l->per_group];
    l->waiting--;
    switch (i % l->per_group) {
    case 0:
        query_address(l, pr, p);
        break;
    case 1:
        query_epoch(l, pr, p);
        break;
    default:
        query_replicas(l, pr, p);
        break;
    }
    if (l->waiting > 0) {
        return 0;
    }
    if (l->round_ok == 0) {
        /* maybe a sentinel restarted without its configuration: ask another */
        return link_fail(l, "it gave no address for any group");
    }
    l->tries = 0;
    l->failing = false;
    return 0;
}

static struct sentinel_group *sentinel_group_find(struct sentinel *sn, const uint8_t *name,
                                                  size_t len)
{
    for (uint32_t i = 0; i < sn->ngroups; i++) {
        if (sentinel_msg_name_is(name, len, sn->groups[i].name)) {
            return &sn->groups[i];
        }
    }
    return NULL;
}

/* A replica one sentinel sees down stops getting reads at once; one that
 * answers again waits for the next list (its link to the master may not be
 * up yet, which only SENTINEL REPLICAS says). */
static void sub_sdown(struct sentinel_link *l, const uint8_t *p)
{
    struct sentinel *sn = l->sn;
    struct sentinel_sdown sd;
    struct sockaddr_storage ss;
    socklen_t len;
    if (sentinel_msg_parse_sdown(p, &l->conn.ri, &sd) != SENTINEL_MSG_OK || !sd.down) {
        return;
    }
    struct sentinel_group *pr = sentinel_group_find(sn, sd.group, sd.group_len);
    if (pr != NULL && sentinel_addr(sn, pr, &sd.addr, &ss, &len)) {
        sn->sink.ops->replica_state(sn->sink.ctx, pr->idx, (const struct sockaddr *)&ss, len,
                                    false);
    }
}

static int sub_reply(struct sentinel_link *l, const uint8_t *p)
{
    struct sentinel *sn = l->sn;
    struct sentinel_switch sw;
    char text[128];
    int rc = sentinel_msg_parse_switch(p, &l->conn.ri, &sw);
    if (rc == SENTINEL_MSG_BAD) {
        return link_fail(l, reply_text(text, sizeof(text), p, &l->conn.ri));
    }
    if (l->waiting > 0) { /* any message shows the sentinel is alive */
        l->waiting--;
    }
    l->tries = 0;
    l->failing = false;
    if (rc == SENTINEL_MSG_NONE) {
        sub_sdown(l, p);
        return 0;
    }
    struct sentinel_group *pr =
        rc == SENTINEL_MSG_OK ? sentinel_group_find(sn, sw.group, sw.group_len) : NULL;
    struct sockaddr_storage ss;
    socklen_t len;
    if (pr == NULL || !sentinel_addr(sn, pr, &sw.to, &ss, &len)) {
        return 0;
    }
    log_notice("pool '%s': sentinel '%s' announces +switch-master of group '%s' to %.*s:%d",
               sn->cp->name, link_sentinel(l), pr->name, (int)sw.to.ip_len, (const char *)sw.to.ip,
               sw.to.port);
    /* a message carries no epoch: it is checked with ROLE only, and the next
     * query raises the epoch. Guessing one higher would let a late message
     * (a restarted sentinel replays its last switch) outrank every true view. */
    sentinel_candidate(sn, pr, &ss, len, pr->epoch);
    return 0;
}

static int link_reply(struct sentinel_link *l, const uint8_t *p)
{
    if (l->auth_pending) {
        char text[128];
        l->auth_pending = false;
        if (l->conn.ri.is_error) {
            /* not fatal: a sentinel without a password refuses AUTH and still answers */
            log_warn("pool '%s': sentinel '%s' refused AUTH: %s", l->sn->cp->name, link_sentinel(l),
                     reply_text(text, sizeof(text), p, &l->conn.ri));
        }
        return 0;
    }
    return l->kind == LINK_QUERY ? query_reply(l, p) : sub_reply(l, p);
}

static void link_on_io(struct ev_loop *loop, struct ev_io *io, unsigned events)
{
    struct sentinel_link *l = io->data;
    if (sentinel_conn_io(loop, &l->conn, events) != 0) {
        link_fail(l, l->conn.err);
        return;
    }
    const uint8_t *p;
    int rc;
    while ((rc = sentinel_conn_next(&l->conn, &p)) == 1) {
        if (link_reply(l, p) != 0) {
            return; /* the link was closed (and maybe reopened): its buffer is gone */
        }
    }
    if (rc < 0) {
        link_fail(l, l->conn.err);
    }
}

/* ------------------------------------------------------------------ heartbeat */

static void link_tick(struct sentinel_link *l)
{
    struct sentinel *sn = l->sn;
    l->tries = 0;
    if (l->conn.state == SENTINEL_CONN_CLOSED) {
        link_connect(l);
        return;
    }
    if (l->conn.state == SENTINEL_CONN_CONNECTING || l->waiting > 0 || l->auth_pending) {
        if (ev_now(sn->loop) - l->since_ms >= sentinel_wait_ms(sn)) {
            link_fail(l, "no answer in time");
        }
        return;
    }
    if (l->kind == LINK_QUERY) {
        link_queue_queries(l);
    } else {
        sentinel_msg_ping(&l->conn.out);
        link_wait(l, 1);
    }
    if (sentinel_conn_flush(sn->loop, &l->conn) != 0) {
        link_fail(l, l->conn.err);
    }
}

static void sentinel_on_heartbeat(struct ev_loop *loop, struct ev_timer *t)
{
    struct sentinel *sn = t->data;
    link_tick(&sn->query);
    link_tick(&sn->sub);
    ev_timer_start(loop, t, (uint64_t)sn->cp->sentinel_heartbeat_ms);
}

static void link_init(struct sentinel_link *l, struct sentinel *sn, enum link_kind kind)
{
    memset(l, 0, sizeof(*l));
    sentinel_conn_init(&l->conn, link_on_io, l);
    sentinel_conn_tls(&l->conn, sn->cp->sentinel_tls.ctx, sn->cp->sentinel_tls.server_name);
    l->sn = sn;
    l->kind = (uint8_t)kind;
}

static void sentinel_watcher_stop(struct pool_watcher *w)
{
    sentinel_destroy((struct sentinel *)w);
}

struct sentinel *sentinel_create(struct ev_loop *loop, const struct conf_pool *cp,
                                 struct group_sink sink)
{
    struct sentinel *sn = calloc(1, sizeof(*sn));
    if (sn == NULL) {
        return NULL;
    }
    sn->watcher.stop = sentinel_watcher_stop;
    sn->sink = sink;
    sn->cp = cp;
    sn->loop = loop;
    sn->replica_reads =
        cp->read_from == READ_FROM_REPLICA || cp->read_from == READ_FROM_PREFER_REPLICA;
    sn->ngroups = cp->nservers;
    sn->groups = calloc(cp->nservers ? cp->nservers : 1, sizeof(*sn->groups));
    if (sn->groups == NULL) {
        free(sn);
        return NULL;
    }
    for (uint32_t i = 0; i < sn->ngroups; i++) {
        struct sentinel_group *pr = &sn->groups[i];
        sentinel_conn_init(&pr->conn, probe_on_io, pr);
        sentinel_conn_tls(&pr->conn, cp->tls.ctx, cp->tls.server_name); /* masters: the pool's */
        ev_timer_init(&pr->timer, probe_on_timeout, pr);
        pr->sn = sn;
        pr->idx = i;
        pr->name = cp->servers[i].name;
    }
    link_init(&sn->query, sn, LINK_QUERY);
    link_init(&sn->sub, sn, LINK_SUB);
    ev_timer_init(&sn->heartbeat, sentinel_on_heartbeat, sn);
    link_connect(&sn->query);
    link_connect(&sn->sub);
    ev_timer_start(sn->loop, &sn->heartbeat, (uint64_t)cp->sentinel_heartbeat_ms);
    return sn;
}

struct pool_watcher *sentinel_watcher(struct sentinel *sn)
{
    return &sn->watcher;
}

void sentinel_destroy(struct sentinel *sn)
{
    if (sn == NULL) {
        return;
    }
    ev_timer_stop(sn->loop, &sn->heartbeat);
    sentinel_conn_free(sn->loop, &sn->query.conn);
    sentinel_conn_free(sn->loop, &sn->sub.conn);
    for (uint32_t i = 0; i < sn->ngroups; i++) {
        probe_stop(&sn->groups[i]);
        sentinel_conn_free(sn->loop, &sn->groups[i].conn);
    }
    free(sn->groups);
    free(sn);
}
