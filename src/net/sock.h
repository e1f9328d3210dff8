/*
 * sock: thin wrappers over the socket calls the proxy needs, each returning
 * -1 with errno set on failure so callers can report strerror(errno).
 */
#ifndef NC_SOCK_H
#define NC_SOCK_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

int sock_set_nodelay(int fd);
int sock_set_keepalive(int fd);
/* Bind and listen; for AF_UNIX the path is unlinked first and chmod'ed to perm when perm != 0. */
int sock_listen(const struct sockaddr *sa, socklen_t salen, int backlog, bool reuseport, int perm);
/* Whether a socket with SO_REUSEPORT could bind sa now (bound, then closed at
 * once, never listening: no connection can land on it). 0, or -1 with errno. */
int sock_bind_probe(const struct sockaddr *sa, socklen_t salen);
/* Whether a unix socket could be bound at path (its listener unlinks what is
 * there first): its directory exists and may be written, and path is no
 * directory. 0, or -1 with errno set. */
int sock_path_probe(const char *path);
/* Start a non-blocking connect; *in_progress is set when it completes later. */
int sock_connect(const struct sockaddr *sa, socklen_t salen, bool *in_progress);
/* Flags of sock_resolve. */
#define SOCK_RESOLVE_PASSIVE 1u /* an address to listen on */
#define SOCK_RESOLVE_NUMERIC 2u /* numeric hosts only: no DNS, no /etc/hosts */

/* Resolve host:port (blocking getaddrinfo, the first answer, as twemproxy takes
 * it): the one resolver of the program. Returns 0, or a getaddrinfo error code
 * (gai_strerror() says it). */
int sock_resolve(const char *host, int port, unsigned flags, struct sockaddr_storage *ss,
                 socklen_t *len);
/* Whether host is an IPv4 or IPv6 address rather than a name to look up. */
bool sock_host_is_numeric(const char *host);

/* A peer the configuration names by a host name (a server, a sentinel) follows
 * its name: looked up again before a connect, at most every SOCK_LOOKUP_GAP_MS
 * (the lookup blocks the loop); one that fails keeps the last address. */
struct sock_lookup {
    bool by_name;     /* a name, not an address or a unix socket: looked up again */
    bool failed;      /* the last lookup failed (said once) */
    uint64_t next_ms; /* no lookup before then */
};
#define SOCK_LOOKUP_GAP_MS 1000
enum { SOCK_LOOKUP_KEPT, SOCK_LOOKUP_MOVED, SOCK_LOOKUP_FAILED };
/* l for host (NULL: a unix socket), whose address of len bytes (0: it did not
 * resolve) was looked up at now_ms. */
void sock_lookup_init(struct sock_lookup *l, const char *host, socklen_t len, uint64_t now_ms);
/* Look host:port up again into *ss, *len when due. MOVED: it names another
 * address now (was: the old one as text, "nothing" if none); FAILED: the lookup
 * failed, the first time since one worked (*gai: its code), the last address
 * kept; KEPT: anything else. */
int sock_lookup_again(struct sock_lookup *l, const char *host, int port, uint64_t now_ms,
                      struct sockaddr_storage *ss, socklen_t *len, char *was, size_t waslen,
                      int *gai);
/* Whether err says this process ran out (descriptors, kernel or local memory,
 * local ports) rather than that the peer failed: no peer is to blame for it. */
bool sock_err_is_shortage(int err);
/* The pending error of a socket after a non-blocking connect (0 = connected). */
int sock_error(int fd);
/* Whether connected socket fd, whose peer (getpeername) is peer of len bytes,
 * is connected to itself: a connect to a port of this host with nothing
 * listening, given that same port as its source, meets its own SYN (TCP's
 * simultaneous open) and succeeds; what it sends then comes back as the
 * answer. */
bool sock_is_self(int fd, const struct sockaddr *peer, socklen_t len);
/* Make fd's close a reset (SO_LINGER 0): no TIME_WAIT keeps its address, which
 * for a socket connected to itself is the port a server is yet to listen on. */
void sock_set_reset_on_close(int fd);
/* Whether two socket addresses of len bytes name the same endpoint (family,
 * address, port; padding ignored). */
bool sock_addr_same(const struct sockaddr *a, const struct sockaddr *b, socklen_t len);
/* "host:port" or "path" of a socket address, for logs. */
const char *sock_addr_str(const struct sockaddr *sa, socklen_t salen, char *out, size_t outlen);

#endif
