#include "proto/redis_info.h"

#include <string.h>

#include "proto/redis_wire.h"

/* Longer than any time since the epoch a link could really have been down
 * for: the pre-7 way of saying "never" (the time since the epoch). */
#define INFO_DOWN_NEVER_S 1000000000

struct info_fields {
    int role; /* 0 unseen, 1 slave, 2 master, -1 other */
    int link; /* 0 unseen, 1 up, 2 down, -1 other */
    int sync; /* 0 unseen, 1 not syncing, 2 syncing, -1 other */
    int down; /* 0 unseen, 1 seen (down_s), -1 not a number */
    int64_t down_s;
    const uint8_t *replid;      /* NULL unseen or not 40 hex digits */
    const uint8_t *host, *port; /* master_host, master_port: NULL unseen */
    size_t host_len, port_len;
};

static int info_word(const uint8_t *v, size_t n, const char *a, const char *b)
{
    if (n == strlen(a) && memcmp(v, a, n) == 0) {
        return 1;
    }
    return n == strlen(b) && memcmp(v, b, n) == 0 ? 2 : -1;
}

static bool info_key(const uint8_t *k, size_t n, const char *name)
{
    return n == strlen(name) && memcmp(k, name, n) == 0;
}

static const uint8_t *info_replid(const uint8_t *v, size_t n)
{
    if (n != REDIS_REPLID_LEN) {
        return NULL;
    }
    for (size_t i = 0; i < n; i++) {
        if (!((v[i] >= '0' && v[i] <= '9') || (v[i] >= 'a' && v[i] <= 'f'))) {
            return NULL;
        }
    }
    return v;
}

/* One "key:value" line (no line end); other lines (sections, comments) are skipped. */
static void info_line(struct info_fields *f, const uint8_t *l, size_t n)
{
    const uint8_t *colon = memchr(l, ':', n);
    if (colon == NULL) {
        return;
    }
    size_t kn = (size_t)(colon - l);
    const uint8_t *v = colon + 1;
    size_t vn = n - kn - 1;
    if (info_key(l, kn, "role")) {
        f->role = info_word(v, vn, "slave", "master");
    } else if (info_key(l, kn, "master_link_status")) {
        f->link = info_word(v, vn, "up", "down");
    } else if (info_key(l, kn, "master_sync_in_progress")) {
        f->sync = info_word(v, vn, "0", "1");
    } else if (info_key(l, kn, "master_link_down_since_seconds")) {
        f->down = redis_wire_int_parse(v, vn, &f->down_s) ? 1 : -1;
    } else if (info_key(l, kn, "master_replid")) {
        f->replid = info_replid(v, vn);
    } else if (info_key(l, kn, "master_host")) {
        f->host = v;
        f->host_len = vn;
    } else if (info_key(l, kn, "master_port")) {
        f->port = v;
        f->port_len = vn;
    }
}

/* "host:port" into out, or "" when either is unsaid or the two are too long. */
static void info_master_at(const struct info_fields *f, char *out)
{
    out[0] = '\0';
    if (f->host == NULL || f->port == NULL ||
        f->host_len + 1 + f->port_len >= REDIS_MASTER_AT_MAX) {
        return;
    }
    memcpy(out, f->host, f->host_len);
    out[f->host_len] = ':';
    memcpy(out + f->host_len + 1, f->port, f->port_len);
    out[f->host_len + 1 + f->port_len] = '\0';
}

static enum redis_repl info_verdict(const struct info_fields *f)
{
    if (f->role == 2) {
        return REDIS_REPL_MASTER;
    }
    if (f->role != 1 || f->link <= 0 || f->sync < 0) {
        return REDIS_REPL_UNKNOWN;
    }
    if (f->sync == 2) {
        return REDIS_REPL_SYNCING;
    }
    if (f->link == 1) {
        return REDIS_REPL_LINKED;
    }
    if (f->down != 1) {
        return REDIS_REPL_UNKNOWN; /* a replica whose link is down says since when */
    }
    return f->down_s < 0 || f->down_s >= INFO_DOWN_NEVER_S ? REDIS_REPL_NEVER
                                                           : REDIS_REPL_LINK_LOST;
}

void redis_info_parse(const uint8_t *text, size_t n, struct redis_repl_info *out)
{
    struct info_fields f = {0};
    size_t at = 0;
    while (at < n) {
        const uint8_t *nl = memchr(text + at, '\n', n - at);
        size_t end = nl != NULL ? (size_t)(nl - text) : n;
        size_t len = end - at;
        if (len > 0 && text[at + len - 1] == '\r') {
            len--;
        }
        info_line(&f, text + at, len);
        at = end + 1;
    }
    out->state = info_verdict(&f);
    out->down_s = out->state == REDIS_REPL_LINK_LOST ? f.down_s : -1;
    info_master_at(&f, out->master_at);
    out->replid[0] = '\0';
    if (f.replid != NULL) {
        memcpy(out->replid, f.replid, REDIS_REPLID_LEN);
        out->replid[REDIS_REPLID_LEN] = '\0';
    }
}

enum redis_repl redis_info_repl(const uint8_t *text, size_t n)
{
    struct redis_repl_info info;
    redis_info_parse(text, n, &info);
    return info.state;
}

const char *redis_repl_name(enum redis_repl r)
{
    switch (r) {
    case REDIS_REPL_MASTER:
        return "a master (role:master), not a replica";
    case REDIS_REPL_LINKED:
        return "linked to its master";
    case REDIS_REPL_SYNCING:
        return "in a full sync with its master (master_sync_in_progress:1)";
    case REDIS_REPL_NEVER:
        return "not synced with its master since it started (master_link_down_since_seconds:-1)";
    case REDIS_REPL_LINK_LOST:
        return "serving what it had when its master link went down";
    default:
        return "of unknown replication state";
    }
}
