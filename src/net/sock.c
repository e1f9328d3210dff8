#include "net/sock.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

int sock_set_nodelay(int fd)
{
    int on = 1;
    return setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof(on));
}

int sock_set_keepalive(int fd)
{
    int on = 1;
    return setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &on, sizeof(on));
}

int sock_listen(const struct sockaddr *sa, socklen_t salen, int backlog, bool reuseport, int perm)
{
    int fd = socket(sa->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        return -1;
    }
    int on = 1;
    if (sa->sa_family == AF_UNIX) {
        unlink(((const struct sockaddr_un *)sa)->sun_path);
    } else {
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on));
        if (reuseport && setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &on, sizeof(on)) < 0) {
            goto fail;
        }
    }
    if (bind(fd, sa, salen) < 0 || listen(fd, backlog) < 0) {
        goto fail;
    }
    if (sa->sa_family == AF_UNIX && perm != 0 &&
        chmod(((const struct sockaddr_un *)sa)->sun_path, (mode_t)perm) < 0) {
        goto fail;
    }
    return fd;
fail:;
    int saved = errno;
    close(fd);
    errno = saved;
    return -1;
}

int sock_path_probe(const char *path)
{
    struct sockaddr_un un;
    struct stat st;
    if (strlen(path) >= sizeof(un.sun_path)) {
        errno = ENAMETOOLONG;
        return -1;
    }
    if (stat(path, &st) == 0 && S_ISDIR(st.st_mode)) {
        errno = EISDIR;
        return -1;
    }
    char dir[sizeof(un.sun_path)];
    const char *slash = strrchr(path, '/');
    if (slash == NULL) {
        snprintf(dir, sizeof(dir), ".");
    } else {
        snprintf(dir, sizeof(dir), "%.*s", slash == path ? 1 : (int)(slash - path), path);
    }
    return access(dir, W_OK | X_OK);
}

int sock_bind_probe(const struct sockaddr *sa, socklen_t salen)
{
    int fd = socket(sa->sa_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int on = 1;
    if (fd < 0) {
        return -1;
    }
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on));
    setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &on, sizeof(on));
    int rc = bind(fd, sa, salen);
    int saved = errno;
    close(fd);
    errno = saved;
    return rc;
}

int sock_connect(const struct sockaddr *sa, socklen_t salen, bool *in_progress)
{
    int fd = socket(sa->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        return -1;
    }
    *in_progress = false;
    if (connect(fd, sa, salen) == 0) {
        return fd;
    }
    if (errno == EINPROGRESS) {
        *in_progress = true;
        return fd;
    }
    int saved = errno;
    close(fd);
    errno = saved;
    return -1;
}

bool sock_host_is_numeric(const char *host)
{
    struct in6_addr a;
    return inet_pton(AF_INET, host, &a) == 1 || inet_pton(AF_INET6, host, &a) == 1;
}

bool sock_err_is_shortage(int err)
{
    return err == EMFILE || err == ENFILE || err == ENOBUFS || err == ENOMEM ||
           err == EADDRNOTAVAIL;
}

int sock_error(int fd)
{
    int err = 0;
    socklen_t len = sizeof(err);
    if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0) {
        return errno;
    }
    return err;
}

bool sock_is_self(int fd, const struct sockaddr *peer, socklen_t len)
{
    struct sockaddr_storage local;
    socklen_t llen = sizeof(local);
    if (peer->sa_family == AF_UNIX || getsockname(fd, (struct sockaddr *)&local, &llen) < 0 ||
        llen != len) {
        return false;
    }
    return sock_addr_same((const struct sockaddr *)&local, peer, len);
}

void sock_set_reset_on_close(int fd)
{
    struct linger l = {.l_onoff = 1, .l_linger = 0};
    (void)setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof(l));
}

bool sock_addr_same(const struct sockaddr *a, const struct sockaddr *b, socklen_t len)
{
    if (a->sa_family != b->sa_family) {
        return false;
    }
    if (a->sa_family == AF_INET) {
        const struct sockaddr_in *x = (const void *)a, *y = (const void *)b;
        return x->sin_port == y->sin_port && x->sin_addr.s_addr == y->sin_addr.s_addr;
    }
    if (a->sa_family == AF_INET6) {
        const struct sockaddr_in6 *x = (const void *)a, *y = (const void *)b;
        return x->sin6_port == y->sin6_port &&
               memcmp(&x->sin6_addr, &y->sin6_addr, sizeof(x->sin6_addr)) == 0 &&
               x->sin6_scope_id == y->sin6_scope_id;
    }
    return memcmp(a, b, len) == 0;
}

const char *sock_addr_str(const struct sockaddr *sa, socklen_t salen, char *out, size_t outlen)
{
    char host[INET6_ADDRSTRLEN];
    (void)salen;
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
        inet_ntop(AF_INET, &in->sin_addr, host, sizeof(host));
        snprintf(out, outlen, "%s:%u", host, ntohs(in->sin_port));
    } else if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
        inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof(host));
        snprintf(out, outlen, "[%s]:%u", host, ntohs(in6->sin6_port));
    } else if (sa->sa_family == AF_UNIX) {
        snprintf(out, outlen, "%s", ((const struct sockaddr_un *)sa)->sun_path);
    } else {
        snprintf(out, outlen, "?");
    }
    return out;
}

void sock_lookup_init(struct sock_lookup *l, const char *host, socklen_t len, uint64_t now_ms)
{
    l->by_name = host != NULL && !sock_host_is_numeric(host);
    l->failed = false;
    l->next_ms = len != 0 ? now_ms + SOCK_LOOKUP_GAP_MS : 0; /* else: at once */
}

int sock_lookup_again(struct sock_lookup *l, const char *host, int port, uint64_t now_ms,
                      struct sockaddr_storage *ss, socklen_t *len, char *was, size_t waslen,
                      int *gai)
{
    if (!l->by_name || now_ms < l->next_ms) {
        return SOCK_LOOKUP_KEPT;
    }
    l->next_ms = now_ms + SOCK_LOOKUP_GAP_MS;
    struct sockaddr_storage got;
    socklen_t got_len = 0;
    *gai = sock_resolve(host, port, 0, &got, &got_len);
    if (*gai != 0) {
        bool first = !l->failed;
        l->failed = true;
        return first ? SOCK_LOOKUP_FAILED : SOCK_LOOKUP_KEPT;
    }
    l->failed = false;
    if (*len == got_len &&
        sock_addr_same((const struct sockaddr *)ss, (const struct sockaddr *)&got, got_len)) {
        return SOCK_LOOKUP_KEPT;
    }
    snprintf(was, waslen, "nothing");
    if (*len != 0) {
        sock_addr_str((const struct sockaddr *)ss, *len, was, waslen);
    }
    *ss = got;
    *len = got_len;
    return SOCK_LOOKUP_MOVED;
}

int sock_resolve(const char *host, int port, unsigned flags, struct sockaddr_storage *ss,
                 socklen_t *len)
{
    struct addrinfo hints, *res = NULL;
    char sport[16];
    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_NUMERICSERV;
    if (flags & SOCK_RESOLVE_PASSIVE) {
        hints.ai_flags |= AI_PASSIVE;
    }
    if (flags & SOCK_RESOLVE_NUMERIC) {
        hints.ai_flags |= AI_NUMERICHOST;
    }
    snprintf(sport, sizeof(sport), "%d", port);
    if (host == NULL && !(flags & SOCK_RESOLVE_PASSIVE)) {
        return EAI_NONAME;
    }
    int rc = getaddrinfo(host, sport, &hints, &res);
    if (rc != 0) {
        return rc;
    }
    if (res->ai_addrlen > sizeof(*ss)) {
        freeaddrinfo(res);
        return EAI_FAMILY;
    }
    memcpy(ss, res->ai_addr, res->ai_addrlen);
    *len = res->ai_addrlen;
    freeaddrinfo(res);
    return 0;
}
