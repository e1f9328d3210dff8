#include "stats/metrics.h"

#include <errno.h>
#include <stdio.h>
#include <netdb.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "conf/options.h"
#include "core/log.h"
#include "net/accept.h"
#include "net/sock.h"
#include "stats/histo.h"
#include "stats/metrics_int.h"
#include "stats/reply.h"
#include "stats/snap.h"
#include "stats/stats_fields.h"
#include "stats/status.h"

#define HTTP_MAX_REQUEST 8192
#define HTTP_TIMEOUT_MS  5000
/* Connections reading their request at once, at most. */
#define HTTP_MAX_CONNS 128
/* How long a scraper may take to read a reply (a large /metrics, a slow link). */
#define HTTP_REPLY_MS 30000

/* A rendered document, reused while it is young (reply.h). */
struct render_cache {
    struct reply_doc *doc; /* shared with the replies still writing it */
    uint64_t at_us;        /* when it was rendered (monotonic) */
    uint64_t took_us;      /* and how long that took */
};

struct metrics {
    struct ev_loop *loop;
    struct stats_source src;
    struct ev_io io;
    struct accept_rest rest;   /* out of descriptors: accept again a little later */
    struct reply_port replies; /* answers being written */
    struct render_cache metrics_doc, status_doc;
    struct http_conn *conns; /* requests being read, to close with the port */
    unsigned nconns;
};

/* One scrape in progress: we read the request line, answer, close. */
struct http_conn {
    struct ev_io io;
    struct ev_timer timer;
    struct metrics *m;
    struct http_conn *prev, *next; /* m->conns */
    char req[HTTP_MAX_REQUEST];
    size_t len;
};

struct field_desc {
    const char *name;
    enum stats_kind kind;
    const char *help;
};

#define FIELD_DESC(name, kind, desc) {#name, STATS_##kind, desc},
static const struct field_desc pool_fields[] = {STATS_POOL_FIELDS(FIELD_DESC)};
static const struct field_desc server_fields[] = {STATS_SERVER_FIELDS(FIELD_DESC)};
static const struct field_desc pool_extra_fields[] = {STATS_POOL_EXTRA_FIELDS(FIELD_DESC)};
static const struct field_desc group_fields[] = {STATS_GROUP_FIELDS(FIELD_DESC)};
static const struct field_desc cluster_fields[] = {STATS_CLUSTER_FIELDS(FIELD_DESC)};
#undef FIELD_DESC

void metrics_label_value(struct buf *out, const char *s)
{
    for (; *s; s++) {
        if (*s == '\\' || *s == '"') {
            buf_printf(out, "\\%c", *s);
        } else if (*s == '\n') {
            buf_append_str(out, "\\n");
        } else {
            buf_append(out, s, 1);
        }
    }
}

static void family_head(struct buf *out, const char *metric, const char *suffix,
                        const struct field_desc *f)
{
    const char *type = f->kind == STATS_COUNTER ? "counter" : "gauge";
    buf_printf(out, "# HELP %s%s%s %s\n# TYPE %s%s%s %s\n", metric, f->name, suffix, f->help,
               metric, f->name, suffix, type);
}

static void render_pool_family(const struct stats_snap *s, struct buf *out,
                               const struct field_desc *f, bool extra, int i)
{
    const char *suffix = f->kind == STATS_COUNTER ? "_total" : "";
    family_head(out, "nutcracker_pool_", suffix, f);
    for (uint32_t p = 0; p < s->npools; p++) {
        buf_printf(out, "nutcracker_pool_%s%s{pool=\"", f->name, suffix);
        metrics_label_value(out, s->pools[p].name);
        buf_printf(out, "\"} %lld\n", (long long)(extra ? s->pools[p].x[i] : s->pools[p].v[i]));
    }
}

static void render_pool_fields(const struct stats_snap *s, struct buf *out)
{
    for (int i = 0; i < SP_COUNT; i++) {
        render_pool_family(s, out, &pool_fields[i], false, i);
    }
    for (int i = 0; i < SPX_COUNT; i++) {
        render_pool_family(s, out, &pool_extra_fields[i], true, i);
    }
}

void metrics_server_labels(struct buf *out, const struct stats_pool_snap *p,
                           const struct stats_server_snap *s)
{
    buf_append_str(out, "{pool=\"");
    metrics_label_value(out, p->name);
    buf_append_str(out, "\",server=\"");
    metrics_label_value(out, s->name);
    buf_append_str(out, "\"");
}

/* The metric name of a server field: nutcracker_server_x, or nutcracker_x for
 * twemproxy's names that already start with server_. */
static const char *server_metric_prefix(const struct field_desc *f)
{
    return strncmp(f->name, "server_", 7) == 0 ? "nutcracker_" : "nutcracker_server_";
}

/* Cluster pools only, like the stats keys; no family at all without them. */
static void render_cluster_fields(const struct stats_snap *s, struct buf *out)
{
    for (int i = 0; i < SC_COUNT; i++) {
        const struct field_desc *f = &cluster_fields[i];
        const char *suffix = f->kind == STATS_COUNTER ? "_total" : "";
        bool head = false;
        for (uint32_t p = 0; p < s->npools; p++) {
            if (!s->pools[p].cluster) {
                continue;
            }
            if (!head) {
                family_head(out, "nutcracker_pool_", suffix, f);
                head = true;
            }
            buf_printf(out, "nutcracker_pool_%s%s{pool=\"", f->name, suffix);
            metrics_label_value(out, s->pools[p].name);
            buf_printf(out, "\"} %lld\n", (long long)s->pools[p].c[i]);
        }
    }
}

static void render_server_fields(const struct stats_snap *s, struct buf *out)
{
    for (int i = 0; i < SS_COUNT; i++) {
        const char *suffix = server_fields[i].kind == STATS_COUNTER ? "_total" : "";
        const char *prefix = server_metric_prefix(&server_fields[i]);
        family_head(out, prefix, suffix, &server_fields[i]);
        for (uint32_t p = 0; p < s->npools; p++) {
            const struct stats_pool_snap *pool = &s->pools[p];
            for (uint32_t j = 0; j < pool->nservers; j++) {
                buf_printf(out, "%s%s%s", prefix, server_fields[i].name, suffix);
                metrics_server_labels(out, pool, &pool->servers[j]);
                buf_printf(out, "} %lld\n", (long long)pool->servers[j].v[i]);
            }
        }
    }
}

/* Pools with group fields only, like the stats keys; no family at all without them. */
static void render_group_fields(const struct stats_snap *s, struct buf *out)
{
    for (int i = 0; i < SG_COUNT; i++) {
        const struct field_desc *f = &group_fields[i];
        const char *suffix = f->kind == STATS_COUNTER ? "_total" : "";
        const char *prefix = server_metric_prefix(f);
        bool head = false;
        for (uint32_t p = 0; p < s->npools; p++) {
            const struct stats_pool_snap *pool = &s->pools[p];
            for (uint32_t j = 0; pool->group_fields && j < pool->nservers; j++) {
                if (!head) {
                    family_head(out, prefix, suffix, f);
                    head = true;
                }
                buf_printf(out, "%s%s%s", prefix, f->name, suffix);
                metrics_server_labels(out, pool, &pool->servers[j]);
                buf_printf(out, "} %lld\n", (long long)pool->servers[j].g[i]);
            }
        }
    }
}

static void render_summary(struct buf *out, const char *name, const struct buf *labels,
                           const struct histo *h)
{
    static const double qs[] = {0.5, 0.9, 0.99, 0.999};
    for (size_t i = 0; i < sizeof(qs) / sizeof(qs[0]); i++) {
        buf_printf(out, "%s{%.*s,quantile=\"%g\"} %.6f\n", name, (int)labels->len,
                   (const char *)labels->data, qs[i], (double)histo_quantile(h, qs[i]) / 1e6);
    }
    buf_printf(out, "%s_sum{%.*s} %.6f\n", name, (int)labels->len, (const char *)labels->data,
               (double)h->sum / 1e6);
    buf_printf(out, "%s_count{%.*s} %llu\n", name, (int)labels->len, (const char *)labels->data,
               (unsigned long long)h->count);
}

static void render_latency(const struct stats_snap *s, struct buf *out)
{
    struct buf labels;
    buf_init(&labels);
    buf_append_str(out, "# HELP nutcracker_request_latency_seconds time from request parsed to "
                        "reply ready, as the client sees it\n"
                        "# TYPE nutcracker_request_latency_seconds summary\n");
    for (uint32_t p = 0; p < s->npools; p++) {
        buf_reset(&labels);
        buf_append_str(&labels, "pool=\"");
        metrics_label_value(&labels, s->pools[p].name);
        buf_append_str(&labels, "\"");
        render_summary(out, "nutcracker_request_latency_seconds", &labels, &s->pools[p].lat);
    }
    buf_append_str(out, "# HELP nutcracker_server_latency_seconds time from request queued to "
                        "response, per backend\n"
                        "# TYPE nutcracker_server_latency_seconds summary\n");
    for (uint32_t p = 0; p < s->npools; p++) {
        const struct stats_pool_snap *pool = &s->pools[p];
        for (uint32_t j = 0; j < pool->nservers; j++) {
            buf_reset(&labels);
            buf_append_str(&labels, "pool=\"");
            metrics_label_value(&labels, pool->name);
            buf_append_str(&labels, "\",server=\"");
            metrics_label_value(&labels, pool->servers[j].name);
            buf_append_str(&labels, "\"");
            render_summary(out, "nutcracker_server_latency_seconds", &labels,
                           stats_server_lat(&pool->servers[j]));
        }
    }
    buf_free(&labels);
}

void metrics_render(const struct stats_source *src, struct buf *out)
{
    struct stats_snap *s = src->collect(src->ctx);
    if (s == NULL) {
        /* a scrape that shows no families is read as "no data", not as zeros */
        buf_append_str(out, "# out of memory: no metrics this time\n");
        return;
    }
    buf_printf(out,
               "# HELP nutcracker_info build information\n# TYPE nutcracker_info gauge\n"
               "nutcracker_info{version=\"%s\"} 1\n"
               "# HELP nutcracker_uptime_seconds seconds since start\n"
               "# TYPE nutcracker_uptime_seconds gauge\nnutcracker_uptime_seconds %lld\n"
               "# HELP nutcracker_connections_total connections ever opened\n"
               "# TYPE nutcracker_connections_total counter\nnutcracker_connections_total %llu\n"
               /* not nutcracker_connections: a counter family X owns the sample X_total
                * (OpenMetrics), and parsers saw two families of one name */
               "# HELP nutcracker_curr_connections open connections\n"
               "# TYPE nutcracker_curr_connections gauge\nnutcracker_curr_connections %llu\n"
               "# HELP nutcracker_config_generation configuration generation in force (1 at "
               "start, +1 per applied reload or binary upgrade)\n"
               "# TYPE nutcracker_config_generation gauge\nnutcracker_config_generation %llu\n"
               "# HELP nutcracker_reload_failures_total reloads that failed and changed nothing\n"
               "# TYPE nutcracker_reload_failures_total counter\n"
               "nutcracker_reload_failures_total %llu\n"
               "# HELP nutcracker_last_reload_success 1 unless the last reload failed\n"
               "# TYPE nutcracker_last_reload_success gauge\nnutcracker_last_reload_success %d\n",
               NC_VERSION, (long long)(time(NULL) - src->start_time),
               (unsigned long long)s->total_connections, (unsigned long long)s->curr_connections,
               (unsigned long long)s->generation, (unsigned long long)s->reload_failures,
               s->last_reload != STATS_RELOAD_FAILED);
    render_pool_fields(s, out);
    render_cluster_fields(s, out);
    render_server_fields(s, out);
    render_group_fields(s, out);
    metrics_render_state(s, out);
    render_latency(s, out);
    stats_snap_free(s);
}

/* The request is done with; keep_fd: its socket goes on (to the reply). */
static void http_close(struct http_conn *h, bool keep_fd)
{
    struct metrics *m = h->m;
    ev_io_stop(m->loop, &h->io);
    ev_timer_stop(m->loop, &h->timer);
    if (!keep_fd) {
        close(h->io.fd);
    }
    if (h->prev != NULL) {
        h->prev->next = h->next;
    } else {
        m->conns = h->next;
    }
    if (h->next != NULL) {
        h->next->prev = h->prev;
    }
    m->nconns--;
    free(h);
}

/* The path of a request target: the origin form ("/metrics?x") as it is, the
 * absolute form ("http://host:port/metrics", RFC 9112 3.2.2) after its
 * authority ("/" when none follows). false for any other form. */
static bool http_target_path(const char *t, const char **path)
{
    if (t[0] == '/') {
        *path = t;
        return true;
    }
    size_t scheme = strncasecmp(t, "http://", 7) == 0    ? 7
                    : strncasecmp(t, "https://", 8) == 0 ? 8
                                                         : 0;
    if (scheme == 0) {
        return false;
    }
    const char *rest = t + scheme + strcspn(t + scheme, "/? ");
    *path = *rest == '/' ? rest : "/";
    return true;
}

/* The request line: "METHOD target HTTP/1.x". Its target's path (before any
 * query) in *path, *plen; the method in *head (HEAD) and *get (GET or HEAD).
 * false when the line is not one. */
static bool http_request_line(const char *req, const char **path, size_t *plen, bool *get,
                              bool *head)
{
    const char *sp1 = strchr(req, ' ');
    const char *end = req + strcspn(req, "\r\n");
    const char *sp2 =
        sp1 != NULL && sp1 < end ? memchr(sp1 + 1, ' ', (size_t)(end - sp1 - 1)) : NULL;
    if (sp2 == NULL || sp1 == req || sp2 == sp1 + 1 || !http_target_path(sp1 + 1, path) ||
        (size_t)(end - sp2 - 1) != 8 || strncmp(sp2 + 1, "HTTP/1.", 7) != 0 ||
        (sp2[8] != '0' && sp2[8] != '1')) {
        return false;
    }
    size_t mlen = (size_t)(sp1 - req);
    *head = mlen == 4 && strncmp(req, "HEAD", 4) == 0;
    *get = *head || (mlen == 3 && strncmp(req, "GET", 3) == 0);
    *plen = strcspn(*path, "? ");
    return true;
}

static bool http_path_is(const char *path, size_t plen, const char *want)
{
    return plen == strlen(want) && strncmp(path, want, plen) == 0;
}

static void http_status_json(const struct stats_source *src, struct buf *out)
{
    struct stats_snap *s = src->collect(src->ctx);
    if (s == NULL) {
        buf_append_str(out, "{\"error\":\"out of memory\"}\n");
        return;
    }
    status_render_json(s, src->start_time, out);
    stats_snap_free(s);
}

/* The document render writes, rendered now or less than its youth ago (the
 * cache's reference: a reply takes its own); NULL when out of memory. */
static struct reply_doc *render_cached(struct render_cache *rc, const struct stats_source *src,
                                       void (*render)(const struct stats_source *, struct buf *))
{
    uint64_t start = reply_clock_us();
    if (rc->doc != NULL && reply_render_young(start, rc->at_us, rc->took_us)) {
        return rc->doc;
    }
    if (rc->doc == NULL || rc->doc->refs > 1) {
        reply_doc_put(rc->doc); /* the replies writing it keep it */
        rc->doc = reply_doc_new();
        if (rc->doc == NULL) {
            return NULL;
        }
    }
    buf_reset(&rc->doc->buf);
    render(src, &rc->doc->buf);
    rc->at_us = start;
    rc->took_us = reply_clock_us() - start;
    return rc->doc;
}

/* The body for a GET of path (in body, or *shared: a rendered document the
 * replies share) and its content type; NULL type: not found. *status is
 * changed when no document could be made. */
static const char *http_route(struct http_conn *h, const char *path, size_t plen, struct buf *body,
                              struct reply_doc **shared, const char **status)
{
    bool metrics = http_path_is(path, plen, "/metrics");
    if (metrics || http_path_is(path, plen, "/status.json")) {
        *shared = metrics ? render_cached(&h->m->metrics_doc, &h->m->src, metrics_render)
                          : render_cached(&h->m->status_doc, &h->m->src, http_status_json);
        if (*shared == NULL) {
            *status = "500 Internal Server Error"; /* (a scraper must not read it as metrics) */
            buf_append_str(body, "out of memory\n");
            return "text/plain";
        }
        return metrics ? "text/plain; version=0.0.4" : "application/json";
    }
    if (http_path_is(path, plen, "/")) {
        buf_append_str(body, status_html);
        return "text/html; charset=utf-8";
    }
    buf_append_str(body, "not found: GET / (status page), /status.json or /metrics\n");
    return NULL;
}

static void http_answer(struct http_conn *h)
{
    if (!reply_port_open(&h->m->replies)) {
        http_close(h, false); /* too many answers wait already: not even rendered */
        return;
    }
    struct buf body, doc;
    buf_init(&body);
    buf_init(&doc);
    struct reply_doc *shared = NULL; /* (not copied for each scraper) */
    const char *path, *type = "text/plain", *status = "200 OK", *allow = "";
    size_t plen;
    bool get = false, head = false;
    const char *line = h->req + strspn(h->req, "\r\n"); /* empty lines before it: ignored */
    if (!http_request_line(line, &path, &plen, &get, &head)) {
        status = "400 Bad Request";
        buf_append_str(&body, "bad request: GET / (status page), /status.json or /metrics\n");
    } else if (!get) {
        status = "405 Method Not Allowed";
        allow = "Allow: GET, HEAD\r\n";
        buf_append_str(&body, "only GET and HEAD are served here\n");
    } else if ((type = http_route(h, path, plen, &body, &shared, &status)) == NULL) {
        status = "404 Not Found";
        type = "text/plain";
    }
    buf_printf(&doc,
               "HTTP/1.0 %s\r\nContent-Type: %s\r\n%sCache-Control: no-store\r\n"
               "Content-Length: %zu\r\nConnection: close\r\n\r\n",
               status, type, allow, shared != NULL ? shared->buf.len : body.len);
    int rc = head || shared != NULL ? 0 : buf_append(&doc, body.data, body.len);
    buf_free(&body);
    if (shared != NULL && !head) {
        shared->refs++; /* the reply's, dropped when it ends (HEAD: the headers alone) */
    } else {
        shared = NULL;
    }
    if (rc != 0) {
        buf_free(&doc);
        http_close(h, false); /* out of memory: no answer rather than a short one */
        return;
    }
    struct metrics *m = h->m;
    int fd = h->io.fd;
    /* the request's watcher stops first: stopped after the reply's had started
     * on the same socket, it took the socket out of the loop, and an answer
     * that did not go in one write stopped there */
    http_close(h, true);
    reply_send_doc(m->loop, &m->replies, fd, &doc, shared, HTTP_REPLY_MS);
}

static void http_on_read(struct ev_loop *loop, struct ev_io *io, unsigned events)
{
    struct http_conn *h = io->data;
    (void)loop;
    (void)events;
    ssize_t n = read(io->fd, h->req + h->len, sizeof(h->req) - 1 - h->len);
    if (n <= 0) {
        if (n == 0 || (errno != EAGAIN && errno != EINTR)) {
            http_close(h, false);
        }
        return;
    }
    h->len += (size_t)n;
    h->req[h->len] = '\0';
    /* a NUL byte ends the text the checks below read: answered now (400 when
     * it cuts the request line), not after the timeout */
    bool nul = memchr(h->req + h->len - (size_t)n, '\0', (size_t)n) != NULL;
    if (nul || strstr(h->req, "\r\n\r\n") != NULL || strstr(h->req, "\n\n") != NULL ||
        h->len == sizeof(h->req) - 1) {
        http_answer(h);
    }
}

static void http_on_timeout(struct ev_loop *loop, struct ev_timer *t)
{
    (void)loop;
    http_close(t->data, false);
}

static void metrics_on_accept(struct ev_loop *loop, struct ev_io *io, unsigned events)
{
    struct metrics *m = io->data;
    (void)events;
    for (;;) {
        int fd = accept_next(loop, &m->rest, SOCK_NONBLOCK | SOCK_CLOEXEC, "the metrics port", NULL,
                             NULL);
        if (fd < 0) {
            return;
        }
        /* connections that send nothing hold a descriptor each until their
         * timeout: past this many, a new one is closed at once (the
         * proxy's clients need descriptors more than the metrics port) */
        struct http_conn *h = m->nconns < HTTP_MAX_CONNS ? calloc(1, sizeof(*h)) : NULL;
        if (h == NULL) {
            close(fd);
            continue;
        }
        h->m = m;
        h->next = m->conns;
        if (m->conns != NULL) {
            m->conns->prev = h;
        }
        m->conns = h;
        m->nconns++;
        ev_io_init(&h->io, fd, http_on_read, h);
        ev_timer_init(&h->timer, http_on_timeout, h);
        ev_io_set(loop, &h->io, EV_READ);
        ev_timer_start(loop, &h->timer, HTTP_TIMEOUT_MS);
    }
}

struct metrics *metrics_create(struct ev_loop *loop, const char *addr, int port,
                               const struct stats_source *src)
{
    return metrics_create_on(loop, addr, port, src, -1);
}

int metrics_fd(const struct metrics *m)
{
    return m->io.fd;
}

static int metrics_bind(const char *addr, int port)
{
    struct sockaddr_storage ss;
    socklen_t len;
    int rc = sock_resolve(addr, port, SOCK_RESOLVE_PASSIVE, &ss, &len);
    if (rc != 0) {
        log_error("metrics address '%s' is invalid: %s", addr, gai_strerror(rc));
        return -1;
    }
    /* as the stats port's: a burst of scrapers (or HTTP_MAX_CONNS idle ones
     * and more) waits in the queue to be accepted, or closed, not in SYN
     * retries a second apart */
    int fd = sock_listen((const struct sockaddr *)&ss, len, 512, false, 0);
    if (fd < 0) {
        log_error("failed to listen on metrics '%s:%d': %s", addr, port, strerror(errno));
    }
    return fd;
}

struct metrics *metrics_create_on(struct ev_loop *loop, const char *addr, int port,
                                  const struct stats_source *src, int fd)
{
    if (fd < 0 && (fd = metrics_bind(addr, port)) < 0) {
        return NULL;
    }
    struct metrics *m = calloc(1, sizeof(*m));
    if (m == NULL) {
        close(fd);
        return NULL;
    }
    m->loop = loop;
    m->src = *src;
    ev_io_init(&m->io, fd, metrics_on_accept, m);
    accept_rest_init(&m->rest, &m->io);
    ev_io_set(loop, &m->io, EV_READ);
    log_notice("metrics on http://%s:%d/metrics, status page on http://%s:%d/", addr, port, addr,
               port);
    return m;
}

void metrics_destroy(struct metrics *m)
{
    if (m == NULL) {
        return;
    }
    ev_io_stop(m->loop, &m->io);
    accept_rest_stop(m->loop, &m->rest);
    reply_port_close(m->loop, &m->replies);
    while (m->conns != NULL) {
        http_close(m->conns, false); /* (their watchers would outlive m) */
    }
    close(m->io.fd);
    reply_doc_put(m->metrics_doc.doc);
    reply_doc_put(m->status_doc.doc);
    free(m);
}
