/*
 * sentinel_msg: building the few requests the sentinel client sends and reading
 * the replies it gets (see sentinel_msg.h). Every reader trusts nothing: the
 * spans come from rsp_parse, yet each element's header is checked again, so a
 * reply of the wrong shape is refused here and never reaches a socket address.
 */
#include "sentinel/sentinel_msg.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>

#include "proto/redis_wire.h"

/* Longest text inet_pton is given: an IPv6 address with an IPv4 tail fits. */
#define SENTINEL_IP_MAX 64

/* An array of bulk strings: the only request shape the client needs. */
static int msg_command(struct buf *out, const char *const *argv, int argc)
{
    int rc = redis_wire_num(out, '*', argc);
    for (int i = 0; rc == 0 && i < argc; i++) {
        rc = redis_wire_bulk_str(out, argv[i]);
    }
    return rc;
}

int sentinel_msg_auth(struct buf *out, const char *password)
{
    const char *argv[] = {"AUTH", password};
    return msg_command(out, argv, 2);
}

int sentinel_msg_auth_user(struct buf *out, const char *user, const char *password)
{
    if (user == NULL) {
        return sentinel_msg_auth(out, password);
    }
    const char *argv[] = {"AUTH", user, password};
    return msg_command(out, argv, 3);
}

int sentinel_msg_query(struct buf *out, const char *group)
{
    const char *argv[] = {"SENTINEL", "get-master-addr-by-name", group};
    return msg_command(out, argv, 3);
}

int sentinel_msg_query_epoch(struct buf *out, const char *group)
{
    const char *argv[] = {"SENTINEL", "MASTER", group};
    return msg_command(out, argv, 3);
}

/* The channels of a failover, in the order a leader publishes them. */
static const char *const msg_failover_channels[] = {
    "-sdown",
    "+odown",
    "-odown",
    "+selected-slave",
    "+failover-state-send-slaveof-noone",
    "+promoted-slave",
    "-failover-abort-not-elected",
    "-failover-abort-no-good-slave",
    "-failover-abort-slave-timeout",
};
#define MSG_NFAILOVER (sizeof(msg_failover_channels) / sizeof(msg_failover_channels[0]))

int sentinel_msg_subscribe(struct buf *out, unsigned what)
{
    const char *argv[3 + MSG_NFAILOVER] = {"SUBSCRIBE", SENTINEL_SWITCH_CHANNEL};
    int argc = 2;
    if (what & (SENTINEL_SUB_REPLICAS | SENTINEL_SUB_FAILOVER)) {
        argv[argc++] = SENTINEL_SDOWN_CHANNEL;
    }
    for (size_t i = 0; (what & SENTINEL_SUB_FAILOVER) && i < MSG_NFAILOVER; i++) {
        argv[argc++] = msg_failover_channels[i];
    }
    return msg_command(out, argv, argc);
}

int sentinel_msg_ping(struct buf *out)
{
    const char *argv[] = {"PING"};
    return msg_command(out, argv, 1);
}

int sentinel_msg_role(struct buf *out)
{
    const char *argv[] = {"ROLE"};
    return msg_command(out, argv, 1);
}

int sentinel_msg_query_replicas(struct buf *out, const char *group, bool old_name)
{
    const char *argv[] = {"SENTINEL", old_name ? "SLAVES" : "REPLICAS", group};
    return msg_command(out, argv, 3);
}

/* A bulk or simple string at q[*pos..len): its text, and *pos moved past it.
 * Everything is checked against len, whatever the headers claim. */
static bool msg_str_at(const uint8_t *q, size_t len, size_t *pos, const uint8_t **s, size_t *n)
{
    size_t at = *pos;
    if (at >= len) {
        return false;
    }
    if (q[at] == '+') {
        const uint8_t *cr = memchr(q + at, '\r', len - at);
        size_t end = cr != NULL ? (size_t)(cr - q) : len;
        if (end + 1 >= len || q[end + 1] != '\n') {
            return false;
        }
        *s = q + at + 1;
        *n = end - at - 1;
        *pos = end + 2;
        return true;
    }
    int64_t v;
    size_t next;
    if (q[at] != '$' || redis_wire_num_line(q, len, at + 1, &v, &next) != PARSE_OK || v < 0 ||
        (uint64_t)v > len - next || len - next - (size_t)v < 2 || q[next + (size_t)v] != '\r' ||
        q[next + (size_t)v + 1] != '\n') {
        return false;
    }
    *s = q + next;
    *n = (size_t)v;
    *pos = next + (size_t)v + 2;
    return true;
}

/* The text of top-level element i when it is a bulk or simple string. */
static bool msg_elem_str(const uint8_t *p, const struct rsp_info *ri, uint32_t i, const uint8_t **s,
                         size_t *n)
{
    if (i >= ri->elems.n) {
        return false;
    }
    const uint8_t *q = p + ri->elems.v[i].off;
    size_t len = ri->elems.v[i].len;
    if (len < 3) {
        return false;
    }
    if (q[0] == '+') { /* "+text\r\n" */
        *s = q + 1;
        *n = len - 3;
        return true;
    }
    int64_t v;
    size_t next;
    if (q[0] != '$' || redis_wire_num_line(q, len, 1, &v, &next) != PARSE_OK || v < 0 ||
        next + 2 > len || (uint64_t)v != len - next - 2) {
        return false;
    }
    *s = q + next;
    *n = (size_t)v;
    return true;
}

static bool msg_is(const uint8_t *s, size_t n, const char *word)
{
    return n == strlen(word) && memcmp(s, word, n) == 0;
}

/* Digits only, 1..65535: what a sentinel prints for a port. */
static int msg_port(const uint8_t *s, size_t n)
{
    if (n == 0 || n > 5) {
        return -1;
    }
    int v = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9') {
            return -1;
        }
        v = v * 10 + (s[i] - '0');
    }
    return (v >= 1 && v <= 65535) ? v : -1;
}

/* An address must be non-empty printable text without spaces to be worth a look. */
static bool msg_ip_ok(const uint8_t *s, size_t n)
{
    if (n == 0 || n >= SENTINEL_IP_MAX) {
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        if (s[i] <= ' ' || s[i] >= 0x7f) {
            return false;
        }
    }
    return true;
}

int sentinel_msg_parse_master(const uint8_t *p, const struct rsp_info *ri,
                              struct sentinel_master *out)
{
    if ((ri->type == '*' || ri->type == '$') && ri->integer == -1) {
        return SENTINEL_MSG_NONE; /* this sentinel does not monitor the group */
    }
    const uint8_t *port;
    size_t port_len;
    if (ri->type != '*' || ri->elems.n != 2 || !msg_elem_str(p, ri, 0, &out->ip, &out->ip_len) ||
        !msg_elem_str(p, ri, 1, &port, &port_len) || !msg_ip_ok(out->ip, out->ip_len)) {
        return SENTINEL_MSG_BAD;
    }
    out->port = msg_port(port, port_len);
    return out->port > 0 ? SENTINEL_MSG_OK : SENTINEL_MSG_BAD;
}

/* Digits only, within uint64. */
static bool msg_u64(const uint8_t *s, size_t n, uint64_t *out)
{
    uint64_t v = 0;
    if (n == 0 || n > 19) {
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9') {
            return false;
        }
        v = v * 10 + (uint64_t)(s[i] - '0');
    }
    *out = v;
    return true;
}

int sentinel_msg_parse_epoch(const uint8_t *p, const struct rsp_info *ri, uint64_t *epoch)
{
    if (ri->is_error) {
        return SENTINEL_MSG_NONE; /* "ERR No such master with that name" */
    }
    if (ri->type != '*' || ri->elems.n % 2 != 0) {
        return SENTINEL_MSG_BAD;
    }
    for (uint32_t i = 0; i < ri->elems.n; i += 2) {
        const uint8_t *k, *v;
        size_t klen, vlen;
        if (!msg_elem_str(p, ri, i, &k, &klen)) {
            return SENTINEL_MSG_BAD;
        }
        if (msg_is(k, klen, "config-epoch")) {
            bool ok = msg_elem_str(p, ri, i + 1, &v, &vlen) && msg_u64(v, vlen, epoch);
            return ok ? SENTINEL_MSG_OK : SENTINEL_MSG_BAD;
        }
    }
    return SENTINEL_MSG_BAD;
}

/* The states of a failover (SENTINEL MASTER's failover-state) after the
 * leader chose a replica: +selected-slave, the first step a subscription
 * hears, was published already. */
static const char *const msg_promoting_states[] = {
    "send_slaveof_noone",
    "wait_promotion",
    "reconf_slaves",
    "update_config",
};

static bool msg_promoting(const uint8_t *s, size_t n)
{
    for (size_t i = 0; i < sizeof(msg_promoting_states) / sizeof(msg_promoting_states[0]); i++) {
        if (msg_is(s, n, msg_promoting_states[i])) {
            return true;
        }
    }
    return false;
}

int sentinel_msg_parse_failover(const uint8_t *p, const struct rsp_info *ri,
                                struct sentinel_failover *out)
{
    const uint8_t *port = NULL;
    size_t port_len = 0;
    out->master.ip = NULL;
    out->master.ip_len = 0;
    out->epoch = 0;
    out->epoch_known = false;
    out->promoting = false;
    if (ri->is_error) {
        return SENTINEL_MSG_NONE; /* an unknown group, or a sentinel that refuses */
    }
    if (ri->type != '*' || ri->elems.n % 2 != 0) {
        return SENTINEL_MSG_BAD;
    }
    for (uint32_t i = 0; i < ri->elems.n; i += 2) {
        const uint8_t *k, *v;
        size_t klen, vlen;
        if (!msg_elem_str(p, ri, i, &k, &klen) || !msg_elem_str(p, ri, i + 1, &v, &vlen)) {
            return SENTINEL_MSG_BAD;
        }
        if (msg_is(k, klen, "ip")) {
            out->master.ip = v;
            out->master.ip_len = vlen;
        } else if (msg_is(k, klen, "port")) {
            port = v;
            port_len = vlen;
        } else if (msg_is(k, klen, "failover-state")) {
            out->promoting = msg_promoting(v, vlen);
        } else if (msg_is(k, klen, "config-epoch")) {
            out->epoch_known = msg_u64(v, vlen, &out->epoch);
        }
    }
    if (out->master.ip == NULL || !msg_ip_ok(out->master.ip, out->master.ip_len) || port == NULL ||
        (out->master.port = msg_port(port, port_len)) < 0) {
        return SENTINEL_MSG_BAD;
    }
    return SENTINEL_MSG_OK;
}

/* True when the comma-separated list s[0..n) has exactly the item word. */
static bool msg_list_has(const uint8_t *s, size_t n, const char *word)
{
    size_t wlen = strlen(word), start = 0;
    while (start <= n) {
        const uint8_t *comma = memchr(s + start, ',', n - start);
        size_t end = comma != NULL ? (size_t)(comma - s) : n;
        if (end - start == wlen && memcmp(s + start, word, wlen) == 0) {
            return true;
        }
        start = end + 1;
    }
    return false;
}

/* One replica's flat "*2M $field $value ..." array, the whole of q[0..len). */
static int msg_replica(const uint8_t *q, size_t len, struct sentinel_replica *out)
{
    int64_t count;
    size_t pos;
    if (len < 4 || q[0] != '*' || redis_wire_num_line(q, len, 1, &count, &pos) != PARSE_OK ||
        count < 0 || count % 2 != 0) {
        return SENTINEL_MSG_BAD;
    }
    const uint8_t *port = NULL, *flags = NULL, *link = NULL;
    size_t port_len = 0, flags_len = 0, link_len = 0;
    out->addr.ip = NULL;
    out->addr.ip_len = 0;
    for (int64_t i = 0; i < count; i += 2) {
        const uint8_t *k, *v;
        size_t klen, vlen;
        if (!msg_str_at(q, len, &pos, &k, &klen) || !msg_str_at(q, len, &pos, &v, &vlen)) {
            return SENTINEL_MSG_BAD;
        }
        if (msg_is(k, klen, "ip")) {
            out->addr.ip = v;
            out->addr.ip_len = vlen;
        } else if (msg_is(k, klen, "port")) {
            port = v;
            port_len = vlen;
        } else if (msg_is(k, klen, "flags")) {
            flags = v;
            flags_len = vlen;
        } else if (msg_is(k, klen, "master-link-status")) {
            link = v;
            link_len = vlen;
        }
    }
    if (pos != len || out->addr.ip == NULL || !msg_ip_ok(out->addr.ip, out->addr.ip_len) ||
        port == NULL || (out->addr.port = msg_port(port, port_len)) < 0) {
        return SENTINEL_MSG_BAD;
    }
    /* no flags or no link status: nothing says it serves, so it is not used */
    out->usable = flags != NULL && link != NULL && msg_is(link, link_len, "ok") &&
                  !msg_list_has(flags, flags_len, "s_down") &&
                  !msg_list_has(flags, flags_len, "o_down") &&
                  !msg_list_has(flags, flags_len, "disconnected");
    return SENTINEL_MSG_OK;
}

int sentinel_msg_parse_replicas(const uint8_t *p, const struct rsp_info *ri,
                                struct sentinel_replica *out, uint32_t cap, uint32_t *n)
{
    *n = 0;
    if (ri->is_error) {
        return SENTINEL_MSG_NONE;
    }
    if (ri->type != '*' || ri->integer < 0) {
        return SENTINEL_MSG_BAD;
    }
    for (uint32_t i = 0; i < ri->elems.n; i++) {
        struct sentinel_replica r;
        if (msg_replica(p + ri->elems.v[i].off, ri->elems.v[i].len, &r) != SENTINEL_MSG_OK) {
            *n = 0;
            return SENTINEL_MSG_BAD;
        }
        if (*n < cap) {
            out[(*n)++] = r;
        }
    }
    return SENTINEL_MSG_OK;
}

/* Cut the next space-separated token of s[*pos..n); false when it is empty. */
static bool msg_token(const uint8_t *s, size_t n, size_t *pos, const uint8_t **tok, size_t *len)
{
    size_t start = *pos;
    const uint8_t *sp = memchr(s + start, ' ', n - start);
    size_t end = sp ? (size_t)(sp - s) : n;
    *tok = s + start;
    *len = end - start;
    *pos = sp ? end + 1 : n;
    return *len > 0;
}

/* "<group> <old-ip> <old-port> <new-ip> <new-port>", nothing more. */
static int msg_switch_payload(const uint8_t *s, size_t n, struct sentinel_switch *out)
{
    const uint8_t *tok[5];
    size_t len[5], pos = 0;
    for (int i = 0; i < 5; i++) {
        if (pos >= n || !msg_token(s, n, &pos, &tok[i], &len[i])) {
            return SENTINEL_MSG_BAD;
        }
    }
    if (pos != n || s[n - 1] == ' ' || msg_port(tok[2], len[2]) < 0 || !msg_ip_ok(tok[1], len[1]) ||
        !msg_ip_ok(tok[3], len[3])) {
        return SENTINEL_MSG_BAD;
    }
    out->group = tok[0];
    out->group_len = len[0];
    out->from = (struct sentinel_master){tok[1], len[1], msg_port(tok[2], len[2])};
    out->to.ip = tok[3];
    out->to.ip_len = len[3];
    out->to.port = msg_port(tok[4], len[4]);
    return out->to.port > 0 ? SENTINEL_MSG_OK : SENTINEL_MSG_BAD;
}

/* A pub/sub message: its channel and payload; NONE for anything else. */
static int msg_pubsub(const uint8_t *p, const struct rsp_info *ri, const uint8_t **chan,
                      size_t *chan_len, const uint8_t **payload, size_t *payload_len)
{
    const uint8_t *kind;
    size_t kind_len;
    if (ri->type != '*' || !msg_elem_str(p, ri, 0, &kind, &kind_len)) {
        return SENTINEL_MSG_BAD;
    }
    uint32_t at; /* index of the channel */
    if (ri->elems.n == 3 && msg_is(kind, kind_len, "message")) {
        at = 1;
    } else if (ri->elems.n == 4 && msg_is(kind, kind_len, "pmessage")) {
        at = 2;
    } else {
        return SENTINEL_MSG_NONE; /* subscribe confirmations, pong */
    }
    if (!msg_elem_str(p, ri, at, chan, chan_len) ||
        !msg_elem_str(p, ri, at + 1, payload, payload_len)) {
        return SENTINEL_MSG_BAD;
    }
    return SENTINEL_MSG_OK;
}

int sentinel_msg_parse_switch(const uint8_t *p, const struct rsp_info *ri,
                              struct sentinel_switch *out)
{
    const uint8_t *chan, *payload;
    size_t chan_len, payload_len;
    int rc = msg_pubsub(p, ri, &chan, &chan_len, &payload, &payload_len);
    if (rc != SENTINEL_MSG_OK) {
        return rc;
    }
    if (!msg_is(chan, chan_len, SENTINEL_SWITCH_CHANNEL)) {
        return SENTINEL_MSG_NONE;
    }
    return msg_switch_payload(payload, payload_len, out);
}

/* "master <group> <ip> <port> [more]" or "slave <ip>:<port> <ip> <port> @ <group>
 * <master-ip> <master-port>" (exactly): the instance details of an event. A
 * sentinel's own instance, or anything else: false. */
static bool msg_instance(const uint8_t *s, size_t n, struct sentinel_event *ev)
{
    const uint8_t *tok[8];
    size_t len[8], pos = 0;
    int ntok = 0;
    while (ntok < 8 && pos < n) {
        if (!msg_token(s, n, &pos, &tok[ntok], &len[ntok])) {
            return false; /* two spaces in a row, or one at the start */
        }
        ntok++;
    }
    if (ntok >= 4 && msg_is(tok[0], len[0], "master")) {
        ev->replica = false;
        ev->group = tok[1];
        ev->group_len = len[1];
        ev->addr = (struct sentinel_master){tok[2], len[2], msg_port(tok[3], len[3])};
        ev->master = ev->addr;
        return msg_ip_ok(tok[2], len[2]) && ev->addr.port > 0;
    }
    if (ntok != 8 || pos != n || s[n - 1] == ' ' || !msg_is(tok[0], len[0], "slave") ||
        !msg_is(tok[4], len[4], "@")) {
        return false;
    }
    ev->replica = true;
    ev->group = tok[5];
    ev->group_len = len[5];
    ev->addr = (struct sentinel_master){tok[2], len[2], msg_port(tok[3], len[3])};
    ev->master = (struct sentinel_master){tok[6], len[6], msg_port(tok[7], len[7])};
    return msg_ip_ok(tok[2], len[2]) && msg_ip_ok(tok[6], len[6]) && ev->addr.port > 0 &&
           ev->master.port > 0;
}

/* The event a channel carries; 0 for a channel of no interest. */
static uint8_t msg_event_kind(const uint8_t *chan, size_t n)
{
    static const struct {
        const char *chan;
        uint8_t kind;
    } kinds[] = {
        {SENTINEL_SDOWN_CHANNEL, SENTINEL_EV_SDOWN},
        {"-sdown", SENTINEL_EV_SDOWN_END},
        {"+odown", SENTINEL_EV_ODOWN},
        {"-odown", SENTINEL_EV_ODOWN_END},
        {"+selected-slave", SENTINEL_EV_PROMOTING},
        {"+failover-state-send-slaveof-noone", SENTINEL_EV_PROMOTING},
        {"+promoted-slave", SENTINEL_EV_PROMOTING},
    };
    for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++) {
        if (msg_is(chan, n, kinds[i].chan)) {
            return kinds[i].kind;
        }
    }
    static const char abort_prefix[] = "-failover-abort-";
    size_t plen = sizeof(abort_prefix) - 1;
    return n > plen && memcmp(chan, abort_prefix, plen) == 0 ? SENTINEL_EV_ABORT : 0;
}

/* switches: read +switch-master too (else it is NONE, like any other channel). */
static int msg_event(const uint8_t *p, const struct rsp_info *ri, struct sentinel_event *ev,
                     bool switches)
{
    const uint8_t *chan, *payload;
    size_t chan_len, payload_len;
    int rc = msg_pubsub(p, ri, &chan, &chan_len, &payload, &payload_len);
    if (rc != SENTINEL_MSG_OK) {
        return rc;
    }
    memset(ev, 0, sizeof(*ev));
    if (switches && msg_is(chan, chan_len, SENTINEL_SWITCH_CHANNEL)) {
        struct sentinel_switch sw;
        rc = msg_switch_payload(payload, payload_len, &sw);
        if (rc == SENTINEL_MSG_OK) {
            ev->kind = SENTINEL_EV_SWITCH;
            ev->group = sw.group;
            ev->group_len = sw.group_len;
            ev->addr = sw.to;
            ev->master = sw.from;
        }
        return rc;
    }
    ev->kind = msg_event_kind(chan, chan_len);
    if (ev->kind == 0 || !msg_instance(payload, payload_len, ev)) {
        return SENTINEL_MSG_NONE;
    }
    ev->after_promotion = msg_is(chan, chan_len, "-failover-abort-slave-timeout");
    /* a master is promoted from none of its replicas; a quorum judges masters only */
    bool replica_event = ev->kind == SENTINEL_EV_PROMOTING;
    bool either = ev->kind == SENTINEL_EV_SDOWN || ev->kind == SENTINEL_EV_SDOWN_END;
    return (either || ev->replica == replica_event) ? SENTINEL_MSG_OK : SENTINEL_MSG_NONE;
}

int sentinel_msg_parse_event(const uint8_t *p, const struct rsp_info *ri, struct sentinel_event *ev)
{
    return msg_event(p, ri, ev, true);
}

int sentinel_msg_parse_sdown(const uint8_t *p, const struct rsp_info *ri,
                             struct sentinel_sdown *out)
{
    struct sentinel_event ev;
    int rc = msg_event(p, ri, &ev, false);
    if (rc != SENTINEL_MSG_OK || !ev.replica ||
        (ev.kind != SENTINEL_EV_SDOWN && ev.kind != SENTINEL_EV_SDOWN_END)) {
        return rc == SENTINEL_MSG_OK ? SENTINEL_MSG_NONE : rc;
    }
    out->group = ev.group;
    out->group_len = ev.group_len;
    out->addr = ev.addr;
    out->down = ev.kind == SENTINEL_EV_SDOWN;
    return SENTINEL_MSG_OK;
}

int sentinel_msg_parse_role(const uint8_t *p, const struct rsp_info *ri)
{
    const uint8_t *role;
    size_t len;
    if (ri->type != '*' || !msg_elem_str(p, ri, 0, &role, &len)) {
        return SENTINEL_MSG_BAD;
    }
    return msg_is(role, len, "master") ? SENTINEL_MSG_OK : SENTINEL_MSG_NONE;
}

bool sentinel_msg_name_is(const uint8_t *name, size_t len, const char *group)
{
    return len == strlen(group) && memcmp(name, group, len) == 0;
}

int sentinel_msg_sockaddr(const struct sentinel_master *m, struct sockaddr_storage *ss,
                          socklen_t *len)
{
    char ip[SENTINEL_IP_MAX];
    if (!msg_ip_ok(m->ip, m->ip_len) || m->port < 1 || m->port > 65535) {
        return -1;
    }
    memcpy(ip, m->ip, m->ip_len);
    ip[m->ip_len] = '\0';
    memset(ss, 0, sizeof(*ss));
    if (memchr(ip, ':', m->ip_len) != NULL) {
        struct sockaddr_in6 *a = (struct sockaddr_in6 *)ss;
        if (inet_pton(AF_INET6, ip, &a->sin6_addr) != 1) {
            return -1;
        }
        a->sin6_family = AF_INET6;
        a->sin6_port = htons((uint16_t)m->port);
        *len = sizeof(*a);
        return 0;
    }
    struct sockaddr_in *a = (struct sockaddr_in *)ss;
    if (inet_pton(AF_INET, ip, &a->sin_addr) != 1) {
        return -1;
    }
    a->sin_family = AF_INET;
    a->sin_port = htons((uint16_t)m->port);
    *len = sizeof(*a);
    return 0;
}
