/*
 * conf_addr: listen and server addresses, parsed the way twemproxy 0.5 parses
 * them (split from the right, so "::1:6379:1" works unbracketed) and resolved
 * once at load time.
 */
#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>

#include "conf/conf_int.h"
#include "net/sock.h"

#define SERVER_FMT "\"hostname:port:weight [name]\""
#define LISTEN_FMT "\"hostname:port\""

/* Memcached's default port: twemproxy leaves it out of default server names. */
#define MEMCACHED_PORT 11211

static int parse_port(const char *s, size_t len)
{
    char tmp[8];
    int64_t v;
    if (len == 0 || len >= sizeof(tmp)) {
        return -1;
    }
    memcpy(tmp, s, len);
    tmp[len] = '\0';
    if (conf_parse_uint(tmp, &v) != 0 || v < 1 || v > 65535) {
        return -1;
    }
    return (int)v;
}

static int set_unix(struct conf_ctx *cx, struct conf_addr *a, const char *path, size_t len,
                    int line, const char *key)
{
    struct sockaddr_un *sun = (struct sockaddr_un *)&a->sa;
    if (len >= sizeof(sun->sun_path)) {
        conf_err(cx, line, key, "unix socket path \"%.*s\" is too long (max %zu bytes)", (int)len,
                 path, sizeof(sun->sun_path) - 1);
        return -1;
    }
    a->path = conf_strndup(cx, path, len);
    a->text = conf_strndup(cx, path, len);
    if (a->path == NULL || a->text == NULL) {
        return -1;
    }
    sun->sun_family = AF_UNIX;
    memcpy(sun->sun_path, path, len);
    sun->sun_path[len] = '\0';
    a->salen = (socklen_t)sizeof(*sun);
    return 0;
}

/* Fills a->sa from host and port; returns 0 or a getaddrinfo error code. */
static int resolve(struct conf_ctx *cx, struct conf_addr *a)
{
    unsigned flags = (cx->flags & CONF_F_NUMERIC_ONLY) ? SOCK_RESOLVE_NUMERIC : 0;
    return sock_resolve(a->host, a->port, flags, &a->sa, &a->salen);
}

/* host:port from s[0..len), with an optional [] around an IPv6 host. */
static int set_tcp(struct conf_ctx *cx, struct conf_addr *a, const char *s, size_t len)
{
    const char *colon = NULL;
    for (size_t i = len; i > 0; i--) {
        if (s[i - 1] == ':') {
            colon = s + i - 1;
            break;
        }
    }
    if (colon == NULL || colon == s) {
        return -1; /* bad format */
    }
    a->port = parse_port(colon + 1, len - (size_t)(colon + 1 - s));
    if (a->port < 0) {
        return -2; /* bad port */
    }
    const char *h = s;
    size_t hlen = (size_t)(colon - s);
    if (hlen > 2 && h[0] == '[' && h[hlen - 1] == ']') {
        h++;
        hlen -= 2;
    }
    a->host = conf_strndup(cx, h, hlen);
    a->text = conf_strndup(cx, s, len);
    return (a->host == NULL || a->text == NULL) ? -3 : 0;
}

/* A host with a colon can only be an IPv6 address (with its zone, as in
 * "fe80::1%eth0"): in "127.0.0.1:26379" a number is one too many (a weight
 * given to a sentinel), and no lookup at connect time would resolve it.
 * (Servers keep twemproxy's reading, which takes "127.0.0.1:6384:1:2" as host
 * "127.0.0.1:6384": their names place keys.) */
static bool host_plausible(const struct conf_addr *a)
{
    const char *h = a->host;
    if (h == NULL || strchr(h, ':') == NULL) {
        return true;
    }
    size_t n = strcspn(h, "%");
    char tmp[INET6_ADDRSTRLEN];
    struct in6_addr a6;
    if (n >= sizeof(tmp)) {
        return false;
    }
    memcpy(tmp, h, n);
    tmp[n] = '\0';
    return inet_pton(AF_INET6, tmp, &a6) == 1;
}

/* "0666": up to four octal digits, nothing else. */
static int parse_perm(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 5) {
        return -1;
    }
    int v = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '7') {
            return -1;
        }
        v = v * 8 + (s[i] - '0');
    }
    return v <= 07777 ? v : -1;
}

static int listen_unix(struct conf_ctx *cx, struct conf_addr *a, const char *text, int line)
{
    const char *sp = strchr(text, ' ');
    size_t plen = sp ? (size_t)(sp - text) : strlen(text);
    if (set_unix(cx, a, text, plen, line, "listen") != 0) {
        return -1;
    }
    if (sp == NULL) {
        return 0;
    }
    while (*sp == ' ') {
        sp++;
    }
    a->perm = parse_perm(sp);
    if (a->perm < 0) {
        a->perm = 0;
        conf_err(cx, line, "listen", "\"%s\" has an invalid permission \"%s\" (octal, e.g. 0666)",
                 text, sp);
        return -1;
    }
    return 0;
}

int conf_listen_parse(struct conf_ctx *cx, struct conf_addr *a, const char *text, int line)
{
    if (text[0] == '/') {
        return listen_unix(cx, a, text, line);
    }
    int rc = set_tcp(cx, a, text, strlen(text));
    if (rc == 0 && !host_plausible(a)) {
        rc = -1;
    }
    if (rc == -1) {
        conf_err(cx, line, "listen", "\"%s\" has an invalid " LISTEN_FMT " format string", text);
    } else if (rc == -2) {
        conf_err(cx, line, "listen", "\"%s\" has an invalid port in " LISTEN_FMT " format string",
                 text);
    }
    if (rc != 0) {
        return -1;
    }
    rc = resolve(cx, a);
    if (rc == EAI_NONAME && (cx->flags & CONF_F_NUMERIC_ONLY)) {
        return 0;
    }
    if (rc != 0) {
        conf_err(cx, line, "listen", "cannot resolve \"%s\" (%s)", a->host, gai_strerror(rc));
        return -1;
    }
    return 0;
}

/* The name twemproxy gives a server written without one (checked against the
 * stats of Debian's nutcracker 0.5.0): "host:port", just "host" for port
 * 11211, and "path:" for a unix socket. */
static char *default_name(struct conf_ctx *cx, const struct conf_addr *a)
{
    if (a->path != NULL) {
        size_t n = strlen(a->path);
        char *s = conf_strndup(cx, a->path, n + 1);
        if (s != NULL) {
            s[n] = ':';
        }
        return s;
    }
    if (a->port == MEMCACHED_PORT) {
        return conf_strndup(cx, a->text, (size_t)(strrchr(a->text, ':') - a->text));
    }
    return conf_strdup(cx, a->text);
}

static int server_weight(struct conf_ctx *cx, struct conf_server *s, const char *w,
                         const char *text, int line)
{
    int64_t v;
    if (strpbrk(w, " \t") != NULL) {
        conf_err(cx, line, "servers",
                 "\"%s\" has a name with a space or a tab in " SERVER_FMT
                 " format string (the name is one word)",
                 text);
        return -1;
    }
    if (conf_parse_uint(w, &v) != 0 || v > INT32_MAX) {
        conf_err(cx, line, "servers",
                 "\"%s\" has an invalid weight in " SERVER_FMT " format string", text);
        return -1;
    }
    if (v == 0) {
        conf_err(cx, line, "servers", "\"%s\" has a zero weight in " SERVER_FMT " format string",
                 text);
        return -1;
    }
    s->weight = (uint32_t)v;
    return 0;
}

/* "ADDR:WEIGHT" where ADDR is host:port or /path. */
static int server_addr(struct conf_ctx *cx, struct conf_server *s, const char *spec,
                       const char *text, int line)
{
    const char *colon = strrchr(spec, ':');
    size_t alen = colon ? (size_t)(colon - spec) : 0;
    int rc = -1;
    if (alen == 0) {
        rc = -1;
    } else if (spec[0] == '/') {
        if (server_weight(cx, s, colon + 1, text, line) != 0) {
            return -1;
        }
        return set_unix(cx, &s->addr, spec, alen, line, "servers");
    } else {
        if (server_weight(cx, s, colon + 1, text, line) != 0) {
            return -1;
        }
        rc = set_tcp(cx, &s->addr, spec, alen);
    }
    if (rc == -1) {
        conf_err(cx, line, "servers",
                 "\"%s\" has an invalid " SERVER_FMT
                 " or \"/path/unix_socket:weight [name]\" format string",
                 text);
    } else if (rc == -2) {
        conf_err(cx, line, "servers", "\"%s\" has an invalid port in " SERVER_FMT " format string",
                 text);
    }
    if (rc != 0) {
        return -1;
    }
    /* Not resolving is no error: twemproxy resolves servers when it connects,
     * so a backend missing from DNS at start must not stop the proxy. */
    if (resolve(cx, &s->addr) != 0) {
        s->addr.salen = 0;
    }
    return 0;
}

int conf_server_parse(struct conf_ctx *cx, struct conf_server *s, const char *text, int line)
{
    memset(s, 0, sizeof(*s));
    s->line = line;
    const char *sp = strrchr(text, ' ');
    size_t slen = sp ? (size_t)(sp - text) : strlen(text);
    char *spec = conf_strndup(cx, text, slen);
    if (spec == NULL) {
        return -1;
    }
    int rc = server_addr(cx, s, spec, text, line);
    if (rc == 0) {
        s->pname = spec;
        spec = NULL;
        s->named = sp && sp[1] != '\0';
        s->name = s->named ? conf_strdup(cx, sp + 1) : default_name(cx, &s->addr);
        if (s->name == NULL) {
            rc = -1;
        }
    }
    free(spec);
    return rc;
}

#define SENTINEL_FMT "\"hostname:port [name]\""

/* Where "host:port:weight" ends its "host:port" (at the last colon before the
 * digits), or len when it does not end in ":digits". */
static size_t weight_cut(const char *s, size_t len)
{
    size_t i = len;
    while (i > 0 && s[i - 1] >= '0' && s[i - 1] <= '9') {
        i--;
    }
    return i < len && i > 1 && s[i - 1] == ':' ? i - 1 : len;
}

/* A sentinel's address; one written as a server is, "host:port:weight" (so
 * andyqzb's sentinel fork writes them), has its weight left out: it means
 * nothing for a sentinel. */
static int sentinel_addr(struct conf_ctx *cx, struct conf_addr *a, const char *text, size_t alen)
{
    int rc = set_tcp(cx, a, text, alen);
    if (rc == 0 && !host_plausible(a)) {
        size_t cut = weight_cut(text, alen);
        conf_addr_free(a);
        memset(a, 0, sizeof(*a));
        rc = cut < alen ? set_tcp(cx, a, text, cut) : -1;
        if (rc == 0 && !host_plausible(a)) {
            rc = -1;
        }
    }
    return rc;
}

int conf_sentinel_parse(struct conf_ctx *cx, struct conf_sentinel *s, const char *text, int line)
{
    memset(s, 0, sizeof(*s));
    s->line = line;
    const char *sp = strchr(text, ' ');
    size_t alen = sp ? (size_t)(sp - text) : strlen(text);
    int rc = sentinel_addr(cx, &s->addr, text, alen);
    if (rc == -1) {
        conf_err(cx, line, "sentinels", "\"%s\" has an invalid " SENTINEL_FMT " format string",
                 text);
    } else if (rc == -2) {
        conf_err(cx, line, "sentinels",
                 "\"%s\" has an invalid port in " SENTINEL_FMT " format string", text);
    }
    if (rc != 0) {
        return -1;
    }
    /* like servers: a name missing from DNS now is tried again at each connect */
    if (resolve(cx, &s->addr) != 0) {
        s->addr.salen = 0;
    }
    while (sp != NULL && *sp == ' ') {
        sp++;
    }
    s->name = conf_strdup(cx, (sp && *sp) ? sp : s->addr.text);
    return s->name ? 0 : -1;
}

void conf_addr_free(struct conf_addr *a)
{
    free(a->text);
    free(a->host);
    free(a->path);
    a->text = a->host = a->path = NULL;
}

static int kind(const struct conf_addr *a)
{
    if (a->path != NULL) {
        return 0;
    }
    return a->salen > 0 ? 1 : 2;
}

static int inet_cmp(const struct sockaddr_storage *x, const struct sockaddr_storage *y)
{
    if (x->ss_family != y->ss_family) {
        return x->ss_family < y->ss_family ? -1 : 1;
    }
    if (x->ss_family == AF_INET) {
        const struct sockaddr_in *a = (const void *)x, *b = (const void *)y;
        int c = memcmp(&a->sin_addr, &b->sin_addr, sizeof(a->sin_addr));
        return c ? c : memcmp(&a->sin_port, &b->sin_port, sizeof(a->sin_port));
    }
    if (x->ss_family == AF_INET6) {
        const struct sockaddr_in6 *a = (const void *)x, *b = (const void *)y;
        int c = memcmp(&a->sin6_addr, &b->sin6_addr, sizeof(a->sin6_addr));
        return c ? c : memcmp(&a->sin6_port, &b->sin6_port, sizeof(a->sin6_port));
    }
    return 0;
}

int conf_addr_cmp(const struct conf_addr *a, const struct conf_addr *b)
{
    int ka = kind(a), kb = kind(b);
    if (ka != kb) {
        return ka < kb ? -1 : 1;
    }
    switch (ka) {
    case 0:
        return strcmp(a->path, b->path);
    case 1:
        return inet_cmp(&a->sa, &b->sa);
    default: {
        int c = strcmp(a->host, b->host);
        return c ? c : (a->port > b->port) - (a->port < b->port);
    }
    }
}
