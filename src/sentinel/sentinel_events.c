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

/* The master in use is down for us once a quorum says so (+odown) or a
 * majority of the sentinels listed sees it down each (+sdown): one sentinel
 * cut off from it alone must not stop its group. */
static void sub_master_down(struct sentinel_link *l, struct sentinel_group *pr,
                            const struct sentinel_event *ev)
{
    struct sentinel *sn = l->sn;
    uint32_t n = 0;
    if (ev->kind != SENTINEL_EV_ODOWN) {
        pr->sdown[l->at] = ev->kind == SENTINEL_EV_SDOWN;
        for (uint32_t i = 0; i < sn->cp->nsentinels; i++) {
            n += pr->sdown[i];
        }
        if (ev->kind == SENTINEL_EV_SDOWN_END || n <= sn->cp->nsentinels / 2) {
            return;
        }
    }
    log_notice("pool '%s': sentinel '%s' sees the master %.*s:%d of group '%s' down (%s)",
               sn->cp->name, sentinel_link_peer(l), (int)ev->master.ip_len,
               (const char *)ev->master.ip, ev->master.port, pr->name,
               ev->kind == SENTINEL_EV_ODOWN ? "+odown" : "+sdown of a majority");
    sn->sink.ops->failover_begins(sn->sink.ctx, pr->idx, true);
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
        sub_switch(l, pr, ev);
        return;
    }
    if (ev->replica && ev->kind != SENTINEL_EV_PROMOTING) {
        sub_replica_down(sn, pr, ev);
        return;
    }
    if (!sub_about_master(sn, pr, ev)) {
        return; /* an old master, or one we do not know yet */
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

int sentinel_sub_reply(struct sentinel_link *l, const uint8_t *p)
{
    struct sentinel_event ev;
    char text[128];
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
