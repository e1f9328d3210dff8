/*
 * sentinel_events: what the subscription links hear, one link per sentinel
 * (see sentinel.c for the picture): +switch-master names a candidate that the
 * ROLE probe checks; replicas going down stop their reads; the steps of a
 * failover of the master in use begin and end the pool's hold (proxy/hold.h).
 */
#include <string.h>

#include "core/log.h"
#include "sentinel/sentinel_int.h"

/* A replica one sentinel sees down stops getting reads at once; one that
 * answers again waits for the next list (its link to the master may not be
 * up yet, which only SENTINEL REPLICAS says). */
static void sub_replica_down(struct sentinel *sn, struct sentinel_group *pr,
                             const struct sentinel_event *ev)
{
    struct sockaddr_storage ss;
    socklen_t len;
    if (ev->kind == SENTINEL_EV_SDOWN && sentinel_addr(sn, pr, &ev->addr, &ss, &len)) {
        sn->sink.ops->replica_state(sn->sink.ctx, pr->idx, (const struct sockaddr *)&ss, len,
                                    false);
    }
}

static void sub_switch(struct sentinel_link *l, struct sentinel_group *pr,
                       const struct sentinel_event *ev)
{
    struct sentinel *sn = l->sn;
    struct sockaddr_storage ss;
    socklen_t len;
    if (!sentinel_addr(sn, pr, &ev->addr, &ss, &len)) {
        return;
    }
    /* every sentinel announces it: the first one starts the check */
    bool news = !sentinel_master_is(sn, pr, &ss, len);
    log_at(news ? LOG_NOTICE : LOG_INFO,
           "pool '%s': sentinel '%s' announces +switch-master of group '%s' to %.*s:%d",
           sn->cp->name, sentinel_link_peer(l), pr->name, (int)ev->addr.ip_len,
           (const char *)ev->addr.ip, ev->addr.port);
    /* a message carries no epoch: it is checked with ROLE only, and the query
     * asked once it is taken (query_soon) gives the epoch. Guessing one higher
     * would let a late message (a restarted sentinel replays its last switch)
     * outrank every true view. */
    sentinel_candidate(sn, pr, &ss, len, SENTINEL_EPOCH_NONE);
}

/* Whether an event names the master in use of pr (not an old view of it). */
static bool sub_about_master(struct sentinel *sn, struct sentinel_group *pr,
                             const struct sentinel_event *ev)
{
    struct sockaddr_storage ss;
    socklen_t len;
    return sentinel_addr(sn, pr, &ev->master, &ss, &len) && sentinel_master_is(sn, pr, &ss, len);
}

/* What sentinel l said of the master in use (how: the event's words). */
static void sub_log_master(struct sentinel_link *l, const struct sentinel_group *pr,
                           const struct sentinel_event *ev, const char *state, const char *how)
{
    log_notice("pool '%s': sentinel '%s' sees the master %.*s:%d of group '%s' %s (%s)",
               l->sn->cp->name, sentinel_link_peer(l), (int)ev->master.ip_len,
               (const char *)ev->master.ip, ev->master.port, pr->name, state, how);
}

#define SEES_SDOWN 1 /* pr->sdown[i]: sentinel i said +sdown of the master in use */
#define SEES_ODOWN 2 /* ... and +odown (a quorum agreed, as it saw it) */

/* The master in use is down for us once a quorum says so (+odown) or a
 * majority of the sentinels listed sees it down each (+sdown): one sentinel
 * cut off from it alone must not stop its group. When they take that back
 * (-sdown, -odown: a master that stalled a moment, or a sentinel late to see
 * a new master), a hold begun on their word ends, unless a promotion began. */
static void sub_master_down(struct sentinel_link *l, struct sentinel_group *pr,
                            const struct sentinel_event *ev)
{
    struct sentinel *sn = l->sn;
    uint8_t *seen = &pr->sdown[l->at];
    bool said_down = ev->kind == SENTINEL_EV_SDOWN || ev->kind == SENTINEL_EV_ODOWN;
    uint8_t bit = ev->kind == SENTINEL_EV_SDOWN || ev->kind == SENTINEL_EV_SDOWN_END ? SEES_SDOWN
                                                                                     : SEES_ODOWN;
    *seen = said_down ? (uint8_t)(*seen | bit) : (uint8_t)(*seen & ~bit);
    uint32_t n = 0;
    bool odown = false;
    for (uint32_t i = 0; i < sn->cp->nsentinels; i++) {
        n += (pr->sdown[i] & SEES_SDOWN) != 0;
        odown = odown || (pr->sdown[i] & SEES_ODOWN) != 0;
    }
    bool down = odown || n > sn->cp->nsentinels / 2;
    if (said_down && down) {
        sub_log_master(l, pr, ev, "down",
                       ev->kind == SENTINEL_EV_ODOWN ? "+odown" : "+sdown of a majority");
        pr->down_said = true;
        sn->sink.ops->failover_begins(sn->sink.ctx, pr->idx, true);
    } else if (!said_down && pr->down_said && !down && pr->promoting_by == NO_SENTINEL) {
        sub_log_master(l, pr, ev, "up again",
                       ev->kind == SENTINEL_EV_ODOWN_END ? "-odown" : "-sdown");
        pr->down_said = false;
        sn->sink.ops->down_ends(sn->sink.ctx, pr->idx);
    }
}

/* Before a master is known: sentinel l leads a failover away from the one at
 * m. Taking that master (sentinel_probe_accept) begins the hold at once. */
static void sub_pending(struct sentinel_link *l, struct sentinel_group *pr,
                        const struct sentinel_master *m)
{
    struct sentinel *sn = l->sn;
    if (pr->pend_by == l->at || !sentinel_addr(sn, pr, m, &pr->pend_ss, &pr->pend_len)) {
        return;
    }
    log_notice("pool '%s': sentinel '%s' leads a failover of group '%s' away from %.*s:%d: "
               "writes wait for the switch if that master is taken",
               sn->cp->name, sentinel_link_peer(l), pr->name, (int)m->ip_len, (const char *)m->ip,
               m->port);
    pr->pend_by = l->at;
}

static bool sub_master_known(struct sentinel *sn, const struct sentinel_group *pr)
{
    struct sockaddr_storage ss;
    socklen_t len;
    return sn->sink.ops->master_get(sn->sink.ctx, pr->idx, &ss, &len);
}

static void sub_promoting(struct sentinel_link *l, struct sentinel_group *pr,
                          const struct sentinel_event *ev)
{
    struct sentinel *sn = l->sn;
    if (pr->promoting_by != l->at) {
        log_notice("pool '%s': sentinel '%s' leads a failover of group '%s': promoting "
                   "%.*s:%d, replica of %.*s:%d",
                   sn->cp->name, sentinel_link_peer(l), pr->name, (int)ev->addr.ip_len,
                   (const char *)ev->addr.ip, ev->addr.port, (int)ev->master.ip_len,
                   (const char *)ev->master.ip, ev->master.port);
        pr->promoting_by = l->at;
    }
    sn->sink.ops->failover_begins(sn->sink.ctx, pr->idx, false);
}

/* The leader that promoted a replica is the only one that may abort its
 * failover; when we did not hear who (the promotion came before a reload,
 * or while its link was down), an abort only a leader sends will do. */
static void sub_abort(struct sentinel_link *l, struct sentinel_group *pr,
                      const struct sentinel_event *ev)
{
    struct sentinel *sn = l->sn;
    bool leader =
        pr->promoting_by == l->at || (pr->promoting_by == NO_SENTINEL && ev->after_promotion);
    if (!leader) {
        log_info("pool '%s': sentinel '%s' gave up a failover of group '%s' it did not lead",
                 sn->cp->name, sentinel_link_peer(l), pr->name);
        return;
    }
    log_warn("pool '%s': sentinel '%s' aborted the failover of group '%s'", sn->cp->name,
             sentinel_link_peer(l), pr->name);
    pr->promoting_by = NO_SENTINEL;
    sn->sink.ops->failover_ends(sn->sink.ctx, pr->idx, "failover aborted");
}

static void sub_event(struct sentinel_link *l, const struct sentinel_event *ev)
{
    struct sentinel *sn = l->sn;
    struct sentinel_group *pr = sentinel_group_find(sn, ev->group, ev->group_len);
    if (pr == NULL) {
        return;
    }
    if (ev->kind == SENTINEL_EV_SWITCH) {
        pr->pend_by = NO_SENTINEL; /* that failover is over */
        sub_switch(l, pr, ev);
        return;
    }
    if (ev->replica && ev->kind != SENTINEL_EV_PROMOTING) {
        sub_replica_down(sn, pr, ev);
        return;
    }
    if (!sub_master_known(sn, pr)) {
        if (ev->kind == SENTINEL_EV_PROMOTING) {
            sub_pending(l, pr, &ev->master);
        } else if (ev->kind == SENTINEL_EV_ABORT && pr->pend_by == l->at) {
            pr->pend_by = NO_SENTINEL;
        }
        return;
    }
    if (!sub_about_master(sn, pr, ev)) {
        return; /* an old master */
    }
    switch (ev->kind) {
    case SENTINEL_EV_PROMOTING:
        sub_promoting(l, pr, ev);
        break;
    case SENTINEL_EV_ABORT:
        sub_abort(l, pr, ev);
        break;
    default:
        sub_master_down(l, pr, ev);
        break;
    }
}

/* One answer of a new subscription link's SENTINEL MASTER for each group, in
 * order, asked with its SUBSCRIBE: a failover its sentinel leads past the
 * choice of a replica began before we listened, and its first step (the one
 * that begins a hold) will not be heard. The master in use being failed over
 * begins the hold now; with none known yet, it is remembered for when that
 * master is taken. The view is also a candidate like a query's: the first
 * look takes the newest view of all the sentinels, not the one the query link
 * asked, which may not have heard of the last switch yet while the old master
 * still says master. Once answered for every group, the first look may end. */
static int sub_snapshot(struct sentinel_link *l, const uint8_t *p)
{
    struct sentinel *sn = l->sn;
    struct sentinel_group *pr = &sn->groups[sn->ngroups - l->snap_left];
    struct sentinel_failover f;
    struct sockaddr_storage ss;
    socklen_t len;
    l->snap_left--;
    if (l->waiting > 0) {
        l->waiting--;
    }
    if (sentinel_msg_parse_failover(p, &l->conn.ri, &f) == SENTINEL_MSG_OK &&
        sentinel_addr(sn, pr, &f.master, &ss, &len)) {
        if (f.promoting && sentinel_master_is(sn, pr, &ss, len)) {
            log_notice("pool '%s': sentinel '%s' leads a failover of group '%s' begun before "
                       "it was listened to",
                       sn->cp->name, sentinel_link_peer(l), pr->name);
            pr->promoting_by = l->at;
            sn->sink.ops->failover_begins(sn->sink.ctx, pr->idx, false);
        } else if (f.promoting && !sub_master_known(sn, pr)) {
            sub_pending(l, pr, &f.master);
        }
        if (f.epoch_known) {
            sentinel_candidate(sn, pr, &ss, len, f.epoch);
        }
    }
    if (l->snap_left == 0 && !l->told) {
        l->told = true;
        sentinel_subs_told(sn);
    }
    return 0;
}

int sentinel_sub_reply(struct sentinel_link *l, const uint8_t *p)
{
    struct sentinel_event ev;
    char text[128];
    if (l->snap_left > 0) {
        return sub_snapshot(l, p);
    }
    int rc = sentinel_msg_parse_event(p, &l->conn.ri, &ev);
    if (rc == SENTINEL_MSG_BAD) {
        return sentinel_link_fail(l, sentinel_reply_text(text, sizeof(text), p, &l->conn.ri));
    }
    if (l->waiting > 0) { /* any message shows the sentinel is alive */
        l->waiting--;
    }
    l->tries = 0;
    l->failing = false;
    if (rc == SENTINEL_MSG_OK) {
        sub_event(l, &ev);
    }
    return 0;
}
