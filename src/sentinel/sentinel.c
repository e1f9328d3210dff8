/*
 * sentinel: the client state machine (see sentinel.h for the whole picture);
 * what the subscriptions hear is acted on in sentinel_events.c.
 *
 *   heartbeat ──> link_tick(query) ── closed: connect to sentinels[cur]
 *             │                   ├─ silent too long: fail, cur++, connect
 *             │                   └─ idle: get-master-addr-by-name + MASTER
 *             │                            [+ REPLICAS], every group
 *             └─> link_tick(sub i) ─ one per sentinel i: closed: connect to it;
 *                                    silent too long: fail (again next beat);
 *                                    idle: PING
 *
 *   answer / +switch-master ──> candidate ──> probe: [AUTH] ROLE ──> "master":
 *                                                                   master_found
 *   +selected-slave... (leader) ──> failover_begins(g, planned) ─┐  the pool
 *   +odown / +sdown (majority)  ──> failover_begins(g, down)     ├─ holds g's
 *   -failover-abort-* (leader)  ──> failover_ends(g)             │  requests
 *   answer: master in use at a newer epoch ──> failover_ends(g)  │
 *   -odown / -sdown (no majority left) ──> down_ends(g)          ┘
 *
 * Every sentinel is listened to: the steps of a failover are published only by
 * the sentinel leading it, which may be any of them. The same failover heard
 * from several sentinels begins once (the pool ignores a begin while holding);
 * an event about a master other than the one in use is about a view we do not
 * share and changes nothing; an abort counts only from the sentinel that
 * announced the promotion (another's attempt that lost the election says
 * nothing about the leader's).
 *
 * Epochs: right after a failover some sentinels still name the old master, and
 * the old master itself still says "master" until a sentinel demotes it. The
 * config-epoch (SENTINEL MASTER) grows with every failover, so an answer with
 * an older epoch than the master in use is stale and ignored, and one that
 * names the master in use at a newer epoch says a failover ended on it. A
 * switch heard as a message has no epoch: the query link asks for it at once.
 */
#include "sentinel/sentinel.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "net/sock.h"
#include "proto/redis_wire.h"
#include "sentinel/sentinel_int.h"

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

const char *sentinel_link_peer(const struct sentinel_link *l)
{
    return l->sn->cp->sentinels[l->at].name;
}

/* A reply as printable text for a log line. */
const char *sentinel_reply_text(char *dst, size_t cap, const uint8_t *p, const struct rsp_info *ri)
{
    size_t n = ri->len >= 2 ? ri->len - 2 : ri->len;
    redis_wire_quote(dst, cap, p, n);
    return dst;
}

/* The first look for gr's master is over unless a candidate is being checked
 * (its verdict ends it): a group with no master yet tells the sink, whose
 * requests waited for one (proxy/hold.c) and now fail at once. */
static void look_over(struct sentinel *sn, struct sentinel_group *gr)
{
    struct sockaddr_storage ss;
    socklen_t len;
    if (!gr->looking || gr->active || gr->parked) {
        return;
    }
    gr->looking = false;
    if (!sn->sink.ops->master_get(sn->sink.ctx, gr->idx, &ss, &len)) {
        sn->sink.ops->master_unknown(sn->sink.ctx, gr->idx);
    }
}

static void look_over_all(struct sentinel *sn)
{
    for (uint32_t i = 0; i < sn->ngroups; i++) {
        look_over(sn, &sn->groups[i]);
    }
}

/* Give up on the current sentinel: the query link tries the next one of the
 * list at once, each at most once per heartbeat, so a list of dead sentinels
 * costs a few refused connects a beat, not a busy loop; a subscription stays
 * with its sentinel and tries it again at the next heartbeat. */
int sentinel_link_fail(struct sentinel_link *l, const char *why)
{
    struct sentinel *sn = l->sn;
    uint32_t n = sn->cp->nsentinels;
    log_at(l->failing ? LOG_INFO : LOG_WARN, "pool '%s': sentinel '%s' (%s link): %s", sn->cp->name,
           sentinel_link_peer(l), link_name(l), why);
    l->failing = true;
    query_conn_close(sn->loop, &l->conn);
    l->auth_pending = false;
    l->waiting = 0;
    l->again = false; /* a new link asks first thing */
    if (l->kind == LINK_SUB) {
        l->snap_left = 0;
        if (!l->told) {
            l->told = true; /* the first look does not wait for it any longer */
            sentinel_subs_told(sn);
        }
        return -1; /* its own sentinel, again at the next heartbeat */
    }
    if (l->at == sn->cur) {
        sn->cur = (sn->cur + 1) % n;
    }
    /* (tries starts again every heartbeat: a silent sentinel fails only at one,
     * so the first look counts failures in a row, which go round the list) */
    if (++sn->fails_in_row >= n) {
        look_over_all(sn); /* every sentinel tried once, none answered */
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

/* A round of queries, sent now: 0, or -1 when the link failed. */
static int query_ask(struct sentinel_link *l)
{
    link_queue_queries(l);
    if (query_conn_flush(l->sn->loop, &l->conn) != 0) {
        return sentinel_link_fail(l, l->conn.err);
    }
    return 0;
}

/* Ask the query link's sentinel now, not at the next heartbeat. A round
 * queued on a link still connecting is asked after this moment anyway; a
 * round already asked may have been answered before it: another follows. */
static void query_soon(struct sentinel *sn)
{
    struct sentinel_link *l = &sn->query;
    if (l->conn.state != QUERY_CONN_CONNECTED) {
        return;
    }
    if (l->waiting > 0 || l->auth_pending) {
        l->again = true;
        return;
    }
    query_ask(l);
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
        return;
    }
    if (l->sn->sub_what & SENTINEL_SUB_FAILOVER) {
        /* whether this sentinel leads a failover we would not hear begin: asked
         * in the same write as SUBSCRIBE, so no step falls between the two */
        for (uint32_t i = 0; i < l->sn->ngroups; i++) {
            sentinel_msg_query_epoch(&l->conn.out, l->sn->groups[i].name);
        }
        l->snap_left = l->sn->ngroups;
        link_wait(l, l->sn->ngroups);
    }
    sentinel_msg_subscribe(&l->conn.out, l->sn->sub_what);
    link_wait(l, 1);
}

/* Sentinel `at`'s address now (see struct sentinel_peer); false: none known. */
static bool peer_addr(struct sentinel *sn, uint32_t at)
{
    struct sentinel_peer *pe = &sn->peers[at];
    const struct conf_sentinel *cs = &sn->cp->sentinels[at];
    char was[128], to[128];
    int gai = 0;
    int rc = sock_lookup_again(&pe->lookup, cs->addr.host, cs->addr.port, ev_now(sn->loop), &pe->ss,
                               &pe->len, was, sizeof(was), &gai);
    if (rc == SOCK_LOOKUP_FAILED && pe->len != 0) {
        log_warn("pool '%s': sentinel '%s' does not resolve; its last address is used",
                 sn->cp->name, cs->name);
    } else if (rc == SOCK_LOOKUP_MOVED) {
        sock_addr_str((const struct sockaddr *)&pe->ss, pe->len, to, sizeof(to));
        log_notice("pool '%s': sentinel '%s' resolves to %s (was %s)", sn->cp->name, cs->name, to,
                   was);
    }
    return pe->len != 0;
}

static void link_connect(struct sentinel_link *l)
{
    struct sentinel *sn = l->sn;
    if (l->kind == LINK_QUERY) {
        l->at = sn->cur;
    }
    const struct conf_sentinel *cs = &sn->cp->sentinels[l->at];
    l->old_replicas = false; /* a new sentinel: maybe a newer one */
    if (!peer_addr(sn, l->at)) {
        sentinel_link_fail(l, "cannot resolve its address");
        return;
    }
    const struct sentinel_peer *pe = &sn->peers[l->at];
    if (query_conn_open(sn->loop, &l->conn, (const struct sockaddr *)&pe->ss, pe->len) != 0) {
        sentinel_link_fail(l, l->conn.err);
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
        query_conn_close(pr->sn->loop, &pr->conn);
        ev_timer_stop(pr->sn->loop, &pr->timer);
        pr->active = false;
    }
}

/* Said loudly once per candidate: the sentinels name the same one every
 * heartbeat while it is refused (quietly then, at -v 6). */
static void probe_fail(struct sentinel_group *pr, const char *why)
{
    char addr[96];
    bool again =
        pr->refused_len == pr->len && sock_addr_same((const struct sockaddr *)&pr->refused_ss,
                                                     (const struct sockaddr *)&pr->ss, pr->len);
    sock_addr_str((const struct sockaddr *)&pr->ss, pr->len, addr, sizeof(addr));
    log_at(again ? LOG_INFO : LOG_WARN,
           "pool '%s': group '%s': %s is not taken as master: %s (asked again each heartbeat)",
           pr->sn->cp->name, pr->name, addr, why);
    pr->refused_ss = pr->ss;
    pr->refused_len = pr->len;
    probe_stop(pr);
    look_over(pr->sn, pr);
}

static bool subs_all_told(const struct sentinel *sn)
{
    for (uint32_t i = 0; i < sn->cp->nsentinels; i++) {
        if (!sn->subs[i].told) {
            return false;
        }
    }
    return true;
}

void sentinel_subs_told(struct sentinel *sn)
{
    if (!subs_all_told(sn)) {
        return;
    }
    for (uint32_t i = 0; i < sn->ngroups; i++) {
        if (sn->groups[i].parked) {
            sentinel_probe_accept(&sn->groups[i]);
        }
    }
}

void sentinel_probe_accept(struct sentinel_group *pr)
{
    struct sentinel *sn = pr->sn;
    struct sockaddr_storage ss = pr->ss, old;
    socklen_t len = pr->len, old_len = 0;
    char from[96] = "", to[96];
    if (pr->looking && !subs_all_told(sn)) {
        /* a proxy that just started has heard no failover yet: one that began
         * before would send writes to a master about to be made a replica */
        probe_stop(pr);
        pr->parked = true;
        return;
    }
    pr->parked = false;
    bool known = sn->sink.ops->master_get(sn->sink.ctx, pr->idx, &old, &old_len);
    bool leaving =
        !known && pr->pend_by != NO_SENTINEL && pr->pend_len == len &&
        sock_addr_same((const struct sockaddr *)&pr->pend_ss, (const struct sockaddr *)&ss, len);
    uint32_t leader = pr->pend_by;
    if (known) {
        sock_addr_str((const struct sockaddr *)&old, old_len, from, sizeof(from));
    }
    sock_addr_str((const struct sockaddr *)&ss, len, to, sizeof(to));
    probe_stop(pr);
    pr->looking = false;
    pr->refused_len = 0;
    uint64_t before = pr->epoch;
    if (pr->cand_epoch > pr->epoch) {
        pr->epoch = pr->cand_epoch;
    }
    pr->epoch_known = pr->cand_epoch_known;
    pr->pend_by = NO_SENTINEL;
    pr->pend_len = 0;
    if (!sn->sink.ops->master_found(sn->sink.ctx, pr->idx, (const struct sockaddr *)&ss, len,
                                    leaving)) {
        return;
    }
    if (known) {
        pr->left_ss = old;
        pr->left_len = old_len;
        pr->left_epoch = before;
    }
    /* what was said of the old master is not said of the new one */
    pr->promoting_by = leaving ? leader : NO_SENTINEL;
    memset(pr->sdown, 0, sn->cp->nsentinels);
    pr->down_said = false;
    if (known) {
        log_warn("pool '%s': group '%s' master switched from %s to %s", sn->cp->name, pr->name,
                 from, to);
    } else {
        log_notice("pool '%s': group '%s' master is %s", sn->cp->name, pr->name, to);
    }
    if (!pr->epoch_known) {
        /* taken from a message, which has no epoch: until a query gives it, a
         * failover that comes back to this master could not be told apart */
        query_soon(sn);
    }
}

static void probe_verdict(struct sentinel_group *pr, const uint8_t *p)
{
    char text[128], why[160];
    int rc = sentinel_msg_parse_role(p, &pr->conn.ri);
    if (rc == SENTINEL_MSG_OK) {
        sentinel_probe_accept(pr);
        return;
    }
    if (rc == SENTINEL_MSG_NONE) {
        probe_fail(pr, "ROLE says it is not a master");
        return;
    }
    snprintf(why, sizeof(why), "ROLE answered %s",
             sentinel_reply_text(text, sizeof(text), p, &pr->conn.ri));
    probe_fail(pr, why);
}

static void probe_on_io(struct ev_loop *loop, struct ev_io *io, unsigned events)
{
    struct sentinel_group *pr = io->data;
    if (query_conn_io(loop, &pr->conn, events) != 0) {
        probe_fail(pr, pr->conn.err);
        return;
    }
    const uint8_t *p;
    int rc;
    while ((rc = query_conn_next(&pr->conn, &p)) == 1) {
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
                        uint64_t epoch, bool known)
{
    struct sentinel *sn = pr->sn;
    pr->cand_epoch = epoch;
    pr->cand_epoch_known = known;
    pr->ss = *ss;
    pr->len = len;
    pr->active = true;
    pr->parked = false;
    pr->skip = 0;
    if (query_conn_open(sn->loop, &pr->conn, (const struct sockaddr *)ss, len) != 0) {
        probe_fail(pr, pr->conn.err);
        return;
    }
    if (sn->cp->redis_auth != NULL) {
        sentinel_msg_auth_user(&pr->conn.out, sn->cp->redis_auth_user, sn->cp->redis_auth);
        pr->skip = 1;
        if (sn->cp->redis_auth_whole != NULL) {
            /* and as one password, twemproxy's reading: a failed AUTH leaves the
             * other's login in force (the servers' own connections learn which) */
            sentinel_msg_auth(&pr->conn.out, sn->cp->redis_auth_whole);
            pr->skip = 2;
        }
    }
    sentinel_msg_role(&pr->conn.out);
    ev_timer_start(sn->loop, &pr->timer, sentinel_wait_ms(sn));
}

/* Whether group gr's master in use is at ss (the sink knows where it is). */
bool sentinel_master_is(struct sentinel *sn, const struct sentinel_group *gr,
                        const struct sockaddr_storage *ss, socklen_t len)
{
    struct sockaddr_storage cur;
    socklen_t cur_len = 0;
    return sn->sink.ops->master_get(sn->sink.ctx, gr->idx, &cur, &cur_len) && cur_len == len &&
           sock_addr_same((const struct sockaddr *)&cur, (const struct sockaddr *)ss, len);
}

/* A sentinel names the master in use at its config epoch. A newer epoch than
 * the one it had: a failover ended on it again (redis-sentinel can demote the
 * replica it promotes before the switch takes: a sentinel that had not heard
 * of that failover yet turns it back into a replica of our master, which a
 * later failover then promotes again). What waited for the failover goes to
 * it, instead of waiting out failover_hold for a switch that will not come. */
static void master_confirmed(struct sentinel *sn, struct sentinel_group *pr,
                             const struct sockaddr_storage *ss, socklen_t len, uint64_t epoch)
{
    char addr[96];
    bool again = pr->epoch_known && epoch > pr->epoch;
    uint64_t was = pr->epoch;
    pr->epoch = epoch;
    pr->epoch_known = true;
    pr->refused_len = 0; /* a candidate refused before is news again */
    probe_stop(pr);      /* the candidate, if any, lost */
    if (!again) {
        return;
    }
    sock_addr_str((const struct sockaddr *)ss, len, addr, sizeof(addr));
    log_notice("pool '%s': group '%s': a sentinel names the master in use %s again at epoch %llu "
               "(it was %llu): a failover ended on it",
               sn->cp->name, pr->name, addr, (unsigned long long)epoch, (unsigned long long)was);
    sn->sink.ops->failover_ends(sn->sink.ctx, pr->idx, "failover ended on the same master");
}

/* A sentinel's view of gr at a config epoch (SENTINEL_EPOCH_NONE: a message's
 * view, taken as the epoch in use): check the master it names unless that view
 * is older than the one in use, or names the master in use. */
void sentinel_candidate(struct sentinel *sn, struct sentinel_group *pr,
                        const struct sockaddr_storage *ss, socklen_t len, uint64_t epoch)
{
    bool known = epoch != SENTINEL_EPOCH_NONE;
    if (!known) {
        epoch = pr->epoch;
    }
    if (epoch < pr->epoch) {
        log_info("pool '%s': group '%s': a sentinel's view at epoch %llu is older than %llu: "
                 "ignored",
                 sn->cp->name, pr->name, (unsigned long long)epoch, (unsigned long long)pr->epoch);
        return;
    }
    if (known && (pr->active || pr->parked) && pr->cand_epoch_known && epoch < pr->cand_epoch) {
        return; /* the candidate being checked comes from a newer view */
    }
    if (pr->left_len == len && epoch <= pr->left_epoch &&
        sock_addr_same((const struct sockaddr *)&pr->left_ss, (const struct sockaddr *)ss, len)) {
        log_info("pool '%s': group '%s': a sentinel still names the master left at epoch %llu: "
                 "ignored",
                 sn->cp->name, pr->name, (unsigned long long)pr->left_epoch);
        return;
    }
    if (sentinel_master_is(sn, pr, ss, len)) {
        if (known) {
            master_confirmed(sn, pr, ss, len, epoch);
        } else {
            probe_stop(pr); /* a message confirms the master in use */
        }
        return;
    }
    if (pr->active && pr->len == len && memcmp(&pr->ss, ss, len) == 0) {
        if (known && (!pr->cand_epoch_known || epoch > pr->cand_epoch)) {
            pr->cand_epoch = epoch;
            pr->cand_epoch_known = true;
        }
        return;
    }
    probe_stop(pr);
    probe_start(pr, ss, len, epoch, known);
}

/* The address a sentinel gave as a socket address; false after logging why not. */
bool sentinel_addr(struct sentinel *sn, const struct sentinel_group *gr,
                   const struct sentinel_master *m, struct sockaddr_storage *ss, socklen_t *len)
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
    log_at(level, "pool '%s': sentinel '%s' %s group '%s'%s%s", sn->cp->name, sentinel_link_peer(l),
           rc == SENTINEL_MSG_NONE ? "does not know" : "gave no address for", pr->name,
           rc == SENTINEL_MSG_NONE ? "" : ": ",
           rc == SENTINEL_MSG_NONE ? "" : sentinel_reply_text(text, sizeof(text), p, &l->conn.ri));
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
        epoch = SENTINEL_EPOCH_NONE; /* no epoch to compare: believe the address */
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
                 sn->cp->name, sentinel_link_peer(l),
                 sentinel_reply_text(text, sizeof(text), p, &l->conn.ri));
        l->old_replicas = true;
        return;
    }
    if (rc == SENTINEL_MSG_BAD) {
        log_warn("pool '%s': sentinel '%s': group '%s': unreadable replicas: %s", sn->cp->name,
                 sentinel_link_peer(l), pr->name,
                 sentinel_reply_text(text, sizeof(text), p, &l->conn.ri));
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
        return sentinel_link_fail(l, "a reply nothing was asked for");
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
        return sentinel_link_fail(l, "it gave no address for any group");
    }
    l->tries = 0;
    l->failing = false;
    sn->fails_in_row = 0;
    look_over_all(sn); /* a sentinel answered for every group */
    if (l->again) {
        l->again = false;
        return query_ask(l);
    }
    return 0;
}

struct sentinel_group *sentinel_group_find(struct sentinel *sn, const uint8_t *name, size_t len)
{
    for (uint32_t i = 0; i < sn->ngroups; i++) {
        if (sentinel_msg_name_is(name, len, sn->groups[i].name)) {
            return &sn->groups[i];
        }
    }
    return NULL;
}

static int link_reply(struct sentinel_link *l, const uint8_t *p)
{
    if (l->auth_pending) {
        char text[128];
        l->auth_pending = false;
        if (l->conn.ri.is_error) {
            /* not fatal: a sentinel without a password refuses AUTH and still answers */
            log_warn("pool '%s': sentinel '%s' refused AUTH: %s", l->sn->cp->name,
                     sentinel_link_peer(l),
                     sentinel_reply_text(text, sizeof(text), p, &l->conn.ri));
        }
        return 0;
    }
    return l->kind == LINK_QUERY ? query_reply(l, p) : sentinel_sub_reply(l, p);
}

static void link_on_io(struct ev_loop *loop, struct ev_io *io, unsigned events)
{
    struct sentinel_link *l = io->data;
    if (query_conn_io(loop, &l->conn, events) != 0) {
        sentinel_link_fail(l, l->conn.err);
        return;
    }
    const uint8_t *p;
    int rc;
    while ((rc = query_conn_next(&l->conn, &p)) == 1) {
        if (link_reply(l, p) != 0) {
            return; /* the link was closed (and maybe reopened): its buffer is gone */
        }
    }
    if (rc < 0) {
        sentinel_link_fail(l, l->conn.err);
    }
}

/* ------------------------------------------------------------------ heartbeat */

static void link_tick(struct sentinel_link *l)
{
    struct sentinel *sn = l->sn;
    l->tries = 0;
    if (l->conn.state == QUERY_CONN_CLOSED) {
        link_connect(l);
        return;
    }
    if (l->conn.state == QUERY_CONN_CONNECTING || l->waiting > 0 || l->auth_pending) {
        if (ev_now(sn->loop) - l->since_ms >= sentinel_wait_ms(sn)) {
            sentinel_link_fail(l, "no answer in time");
        }
        return;
    }
    if (l->kind == LINK_QUERY) {
        link_queue_queries(l);
    } else {
        sentinel_msg_ping(&l->conn.out);
        link_wait(l, 1);
    }
    if (query_conn_flush(sn->loop, &l->conn) != 0) {
        sentinel_link_fail(l, l->conn.err);
    }
}

static void sentinel_on_heartbeat(struct ev_loop *loop, struct ev_timer *t)
{
    struct sentinel *sn = t->data;
    link_tick(&sn->query);
    for (uint32_t i = 0; i < sn->cp->nsentinels; i++) {
        link_tick(&sn->subs[i]);
    }
    ev_timer_start(loop, t, (uint64_t)sn->cp->sentinel_heartbeat_ms);
}

static void link_init(struct sentinel_link *l, struct sentinel *sn, enum link_kind kind)
{
    memset(l, 0, sizeof(*l));
    query_conn_init(&l->conn, link_on_io, l);
    query_conn_tls(&l->conn, sn->cp->sentinel_tls.ctx, sn->cp->sentinel_tls.server_name);
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
    sn->replica_reads = conf_reads_replicas(cp->read_from);
    sn->sub_what = (sn->replica_reads ? SENTINEL_SUB_REPLICAS : 0) |
                   (cp->failover_hold_ms > 0 ? SENTINEL_SUB_FAILOVER : 0);
    sn->ngroups = cp->nservers;
    sn->groups = calloc(cp->nservers ? cp->nservers : 1, sizeof(*sn->groups));
    sn->subs = calloc(cp->nsentinels ? cp->nsentinels : 1, sizeof(*sn->subs));
    sn->peers = calloc(cp->nsentinels ? cp->nsentinels : 1, sizeof(*sn->peers));
    if (sn->groups == NULL || sn->subs == NULL || sn->peers == NULL) {
        sentinel_destroy(sn);
        return NULL;
    }
    for (uint32_t i = 0; i < cp->nsentinels; i++) {
        const struct conf_addr *a = &cp->sentinels[i].addr;
        struct sentinel_peer *pe = &sn->peers[i];
        pe->ss = a->sa; /* as loaded */
        pe->len = a->salen;
        sock_lookup_init(&pe->lookup, a->host, pe->len, ev_now(loop));
    }
    link_init(&sn->query, sn, LINK_QUERY);
    for (uint32_t i = 0; i < cp->nsentinels; i++) {
        link_init(&sn->subs[i], sn, LINK_SUB);
        sn->subs[i].at = i;
        /* without holding, nothing waits for what a sentinel leads */
        sn->subs[i].told = !(sn->sub_what & SENTINEL_SUB_FAILOVER) || sn->ngroups == 0;
    }
    ev_timer_init(&sn->heartbeat, sentinel_on_heartbeat, sn);
    for (uint32_t i = 0; i < sn->ngroups; i++) {
        struct sentinel_group *pr = &sn->groups[i];
        query_conn_init(&pr->conn, probe_on_io, pr);
        query_conn_tls(&pr->conn, cp->tls.ctx, cp->tls.server_name); /* masters: the pool's */
        ev_timer_init(&pr->timer, probe_on_timeout, pr);
        pr->sn = sn;
        pr->idx = i;
        pr->name = cp->servers[i].name;
        pr->promoting_by = NO_SENTINEL;
        pr->pend_by = NO_SENTINEL;
        pr->looking = true;
        pr->sdown = calloc(cp->nsentinels ? cp->nsentinels : 1, 1);
        if (pr->sdown == NULL) {
            sentinel_destroy(sn);
            return NULL;
        }
    }
    link_connect(&sn->query);
    for (uint32_t i = 0; i < cp->nsentinels; i++) {
        link_connect(&sn->subs[i]);
    }
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
    query_conn_free(sn->loop, &sn->query.conn);
    for (uint32_t i = 0; sn->subs != NULL && i < sn->cp->nsentinels; i++) {
        query_conn_free(sn->loop, &sn->subs[i].conn);
    }
    for (uint32_t i = 0; sn->groups != NULL && i < sn->ngroups; i++) {
        if (sn->groups[i].sn != NULL) { /* initialised */
            probe_stop(&sn->groups[i]);
            query_conn_free(sn->loop, &sn->groups[i].conn);
        }
        free(sn->groups[i].sdown);
    }
    free(sn->subs);
    free(sn->peers);
    free(sn->groups);
    free(sn);
}
