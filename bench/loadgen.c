/*
 * loadgen: an open-loop load generator for latency under a fixed request rate
 * (redis-benchmark and memcaslap only measure at saturation). Requests are due
 * at fixed intervals; each one's latency runs from the moment it was due, not
 * from when a connection was free to send it, so a stall is counted in full
 * for every request it delayed (no coordinated omission).
 *
 *   loadgen -p PORT [-c CONNS] [-r RATE] [-d SECONDS] [-w WARMUP] [-k KEYS] [-m MODE]
 *
 * MODE: get | set (redis), mc (memcached, 9 gets per set). RATE 0: saturation,
 * every connection keeps one request in flight. Prints one line of key=value:
 * achieved rate, requests, errors, latency percentiles in microseconds.
 * A tool for bench/, not part of the product: one thread, one request in
 * flight per connection, requests small enough for one write.
 */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAXCONN 1024
#define RBUF    65536

enum mode { MODE_GET, MODE_SET, MODE_MC };

struct conn {
    int fd;
    bool busy;
    bool is_set;     /* mc: the request in flight is a set */
    uint64_t due_ns; /* when the request in flight was due */
    size_t len;      /* bytes in buf */
    char buf[RBUF];
};

struct gen {
    enum mode mode;
    int nconn;
    uint64_t keys;
    uint64_t seq;        /* requests sent, for the 9:1 mix */
    uint64_t count_from; /* due times before this are warm-up: not recorded */
    uint32_t *lat;       /* recorded latencies, microseconds */
    size_t nlat, lat_cap;
    uint64_t errors;
    uint64_t *backlog; /* due times waiting for a free connection (a ring) */
    size_t bl_head, bl_len, bl_cap;
    struct conn *idle[MAXCONN];
    int nidle;
};

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void die(const char *what)
{
    fprintf(stderr, "loadgen: %s: %s\n", what, strerror(errno));
    exit(2);
}

static int conn_open(const char *host, int port)
{
    struct sockaddr_in sa = {0};
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)port);
    if (inet_pton(AF_INET, host, &sa.sin_addr) != 1) {
        errno = EINVAL;
        die(host);
    }
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
        die("connect");
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    return fd;
}

static int request_build(struct gen *g, struct conn *c, char *out)
{
    uint64_t key = (uint64_t)rand() % g->keys;
    static const char value[] = "vvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvv";
    c->is_set = g->mode == MODE_SET || (g->mode == MODE_MC && g->seq % 10 == 9);
    g->seq++;
    if (g->mode == MODE_MC) {
        if (c->is_set) {
            return sprintf(out, "set key:%08llu 0 0 64\r\n%s\r\n", (unsigned long long)key, value);
        }
        return sprintf(out, "get key:%08llu\r\n", (unsigned long long)key);
    }
    if (c->is_set) {
        return sprintf(out, "*3\r\n$3\r\nSET\r\n$12\r\nkey:%08llu\r\n$64\r\n%s\r\n",
                       (unsigned long long)key, value);
    }
    return sprintf(out, "*2\r\n$3\r\nGET\r\n$12\r\nkey:%08llu\r\n", (unsigned long long)key);
}

static void request_send(struct gen *g, struct conn *c, uint64_t due)
{
    char req[256];
    int n = request_build(g, c, req);
    if (write(c->fd, req, (size_t)n) != n) {
        die("write (a request must go in one write)");
    }
    c->busy = true;
    c->due_ns = due;
}

/* Length of one whole reply at the start of p[0..n), 0 if incomplete; *err
 * when it is an error reply. */
static size_t reply_len_redis(const char *p, size_t n, bool *err)
{
    const char *eol = memmem(p, n, "\r\n", 2);
    if (eol == NULL) {
        return 0;
    }
    size_t line = (size_t)(eol - p) + 2;
    *err = p[0] == '-';
    if (p[0] != '$') {
        return line;
    }
    long len = strtol(p + 1, NULL, 10);
    if (len < 0) {
        return line;
    }
    return n >= line + (size_t)len + 2 ? line + (size_t)len + 2 : 0;
}

static size_t reply_len_mc(const char *p, size_t n, bool is_set, bool *err)
{
    size_t off = 0;
    for (;;) {
        const char *eol = memmem(p + off, n - off, "\r\n", 2);
        if (eol == NULL) {
            return 0;
        }
        size_t line = (size_t)(eol - (p + off)) + 2;
        if (line >= 6 && memcmp(p + off, "VALUE ", 6) == 0 && !is_set) {
            const char *sp = memrchr(p + off, ' ', line - 2);
            size_t skip = line + (size_t)strtoul(sp + 1, NULL, 10) + 2;
            if (off + skip > n) {
                return 0;
            }
            off += skip;
            continue;
        }
        bool end = memcmp(p + off, is_set ? "STORED\r\n" : "END\r\n", line) == 0;
        *err = !end;
        return off + line;
    }
}

static void latency_record(struct gen *g, uint64_t due, uint64_t now)
{
    if (due < g->count_from) {
        return;
    }
    if (g->nlat == g->lat_cap) {
        g->lat_cap = g->lat_cap ? g->lat_cap * 2 : 65536;
        g->lat = realloc(g->lat, g->lat_cap * sizeof(*g->lat));
        if (g->lat == NULL) {
            die("realloc");
        }
    }
    uint64_t us = (now - due) / 1000u;
    g->lat[g->nlat++] = us > UINT32_MAX ? UINT32_MAX : (uint32_t)us;
}

/* A reply finished on c: record it and give c the next request due, if any. */
static void conn_done(struct gen *g, struct conn *c, uint64_t now, bool saturate)
{
    latency_record(g, c->due_ns, now);
    c->busy = false;
    if (saturate) {
        request_send(g, c, now);
    } else if (g->bl_len > 0) {
        uint64_t due = g->backlog[g->bl_head];
        g->bl_head = (g->bl_head + 1) % g->bl_cap;
        g->bl_len--;
        request_send(g, c, due);
    } else {
        g->idle[g->nidle++] = c;
    }
}

static int conn_read(struct gen *g, struct conn *c, bool saturate)
{
    ssize_t r = read(c->fd, c->buf + c->len, RBUF - c->len);
    if (r <= 0) {
        return -1;
    }
    c->len += (size_t)r;
    uint64_t now = now_ns();
    for (;;) {
        bool err = false;
        size_t n = g->mode == MODE_MC ? reply_len_mc(c->buf, c->len, c->is_set, &err)
                                      : reply_len_redis(c->buf, c->len, &err);
        if (n == 0 || !c->busy) {
            return c->len == RBUF ? -1 : 0;
        }
        g->errors += err;
        memmove(c->buf, c->buf + n, c->len - n);
        c->len -= n;
        conn_done(g, c, now, saturate);
    }
}

static void backlog_push(struct gen *g, uint64_t due)
{
    if (g->bl_len == g->bl_cap) {
        size_t cap = g->bl_cap ? g->bl_cap * 2 : 4096;
        uint64_t *b = malloc(cap * sizeof(*b));
        if (b == NULL) {
            die("malloc");
        }
        for (size_t i = 0; i < g->bl_len; i++) {
            b[i] = g->backlog[(g->bl_head + i) % g->bl_cap];
        }
        free(g->backlog);
        g->backlog = b;
        g->bl_head = 0;
        g->bl_cap = cap;
    }
    g->backlog[(g->bl_head + g->bl_len) % g->bl_cap] = due;
    g->bl_len++;
}

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return (x > y) - (x < y);
}

static uint32_t pct(const struct gen *g, double q)
{
    if (g->nlat == 0) {
        return 0;
    }
    size_t i = (size_t)(q * (double)(g->nlat - 1) + 0.5);
    return g->lat[i];
}

static void usage(void)
{
    fputs("usage: loadgen -p PORT [-h HOST] [-c CONNS] [-r RATE] [-d SECONDS] [-w WARMUP]\n"
          "               [-k KEYS] [-m get|set|mc]\n",
          stderr);
    exit(2);
}

struct args {
    const char *host;
    int port, conns;
    double rate, secs, warm;
};

static void args_parse(int argc, char **argv, struct args *a, struct gen *g)
{
    int opt;
    while ((opt = getopt(argc, argv, "h:p:c:r:d:w:k:m:")) != -1) {
        switch (opt) {
        case 'h':
            a->host = optarg;
            break;
        case 'p':
            a->port = atoi(optarg);
            break;
        case 'c':
            a->conns = atoi(optarg);
            break;
        case 'r':
            a->rate = atof(optarg);
            break;
        case 'd':
            a->secs = atof(optarg);
            break;
        case 'w':
            a->warm = atof(optarg);
            break;
        case 'k':
            g->keys = strtoull(optarg, NULL, 10);
            break;
        case 'm':
            g->mode = strcmp(optarg, "set") == 0  ? MODE_SET
                      : strcmp(optarg, "mc") == 0 ? MODE_MC
                                                  : MODE_GET;
            break;
        default:
            usage();
        }
    }
    if (a->port <= 0 || a->conns < 1 || a->conns > MAXCONN || a->secs <= 0 || g->keys == 0) {
        usage();
    }
}

static void run(struct gen *g, struct conn *cs, int ep, const struct args *a)
{
    bool saturate = a->rate <= 0;
    uint64_t start = now_ns(), end = start + (uint64_t)(a->secs * 1e9);
    uint64_t interval = saturate ? 0 : (uint64_t)(1e9 / a->rate), next = start;
    g->count_from = start + (uint64_t)(a->warm * 1e9);
    for (int i = 0; saturate && i < g->nconn; i++) {
        request_send(g, &cs[i], start);
    }
    uint64_t now = start;
    while (now < end + 2000000000u) {
        while (!saturate && next <= now && next < end) {
            if (g->nidle > 0) {
                request_send(g, g->idle[--g->nidle], next);
            } else {
                backlog_push(g, next);
            }
            next += interval;
        }
        if (now >= end && (saturate || (g->nidle == g->nconn && g->bl_len == 0))) {
            break;
        }
        uint64_t wait = saturate || next >= end ? 1000000u : next - now;
        struct timespec ts = {(time_t)(wait / 1000000000u), (long)(wait % 1000000000u)};
        struct epoll_event evs[MAXCONN];
        int n = epoll_pwait2(ep, evs, MAXCONN, &ts, NULL);
        if (n < 0 && errno != EINTR) {
            die("epoll_pwait2");
        }
        for (int i = 0; i < n; i++) {
            if (conn_read(g, evs[i].data.ptr, saturate && now_ns() < end) != 0) {
                errno = EPIPE;
                die("connection lost");
            }
        }
        now = now_ns();
    }
}

int main(int argc, char **argv)
{
    struct args a = {"127.0.0.1", 0, 50, 0, 5, 1};
    static struct gen g;
    g.keys = 100000;
    args_parse(argc, argv, &a, &g);
    g.nconn = a.conns;
    struct conn *cs = calloc((size_t)a.conns, sizeof(*cs));
    int ep = epoll_create1(0);
    if (cs == NULL || ep < 0) {
        die("setup");
    }
    for (int i = 0; i < a.conns; i++) {
        cs[i].fd = conn_open(a.host, a.port);
        struct epoll_event ev = {.events = EPOLLIN, .data.ptr = &cs[i]};
        epoll_ctl(ep, EPOLL_CTL_ADD, cs[i].fd, &ev);
        g.idle[g.nidle++] = &cs[i];
    }
    if (a.rate <= 0) {
        g.nidle = 0;
    }
    run(&g, cs, ep, &a);
    qsort(g.lat, g.nlat, sizeof(*g.lat), cmp_u32);
    double counted = a.secs - a.warm;
    printf("rate=%.0f achieved=%.0f requests=%zu errors=%llu p50_us=%u p99_us=%u p999_us=%u "
           "max_us=%u\n",
           a.rate, counted > 0 ? (double)g.nlat / counted : 0.0, g.nlat,
           (unsigned long long)g.errors, pct(&g, 0.5), pct(&g, 0.99), pct(&g, 0.999),
           g.nlat ? g.lat[g.nlat - 1] : 0);
    return 0;
}
