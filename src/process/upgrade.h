/*
 * upgrade: replacing the running binary without refusing a connection (nginx's
 * USR2, HAProxy's -x; twemproxy has none).
 *
 *   old process                                 new process (same argv, exec'd)
 *   SIGUSR2 / -k upgrade
 *   fork + exec, listening sockets inherited -> takes its listeners from
 *   ($NUTCRACKER_LISTEN_FDS: "fd[@worker],...";   $NUTCRACKER_LISTEN_FDS by address
 *    a socketpair in $NUTCRACKER_UPGRADE_FD)     instead of binding them, starts
 *                           <- "R pid [clients]"  serving, says so; sends MAINPID=
 *   writes pid into the -p file                  and READY=1 to systemd
 *   stops accepting (the sockets stay open
 *   in the new process: no connect is refused),
 *   sends its counters                       ->  adds them to its own (stats go on)
 *   with "clients": hands over each client   ->  serves it from where it was
 *   socket (SCM_RIGHTS) once it has nothing      (client_pass.c), its next
 *   unanswered and nothing unwritten             request read from the socket
 *   otherwise (TLS, io_uring, subscribed, ...):
 *   closes each client once it has nothing
 *   unanswered; exits when none is left or
 *   after worker_shutdown_timeout, sending
 *   its final counters                       ->
 *
 * The frames on the channel are upgrade_chan.c's.
 *
 * If the new binary fails (exec error, bad configuration, exits, or says
 * nothing for UPGRADE_WAIT_MS), the old process kills what is left of it and
 * keeps serving as if nothing happened. In the master/worker mode the master
 * holds one SO_REUSEPORT listener per worker and pool (master.c), hands them
 * all over, and the new master's worker i serves the very socket old worker i
 * served, so no queued connection is lost either; old worker i hands its
 * clients to new worker i (adopt.h), with the same frames.
 */
#ifndef NC_UPGRADE_H
#define NC_UPGRADE_H

#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>

#include "core/buf.h"
#include "event/ev.h"
#include "process/upgrade_chan.h"
#include "stats/snap.h"

#define UPGRADE_ENV_FDS  "NUTCRACKER_LISTEN_FDS"
#define UPGRADE_ENV_CHAN "NUTCRACKER_UPGRADE_FD"
#define UPGRADE_ENV_GEN  "NUTCRACKER_GENERATION"
#define UPGRADE_WAIT_MS  30000

/* A listening socket: inherited, or (a master) bound for worker `worker`. */
struct upgrade_fd {
    int fd;
    int worker; /* -1: the process's own (a single process's pools, stats, metrics) */
    bool taken;
    struct sockaddr_storage sa;
    socklen_t salen;
};

struct upgrade_hooks {
    /* the new process serves: stop accepting, send the counters, finish */
    void (*handed_over)(void *ctx);
    /* new side: a client the old process handed over on fd (now ours), with
     * the state it sent (client_pass.c); NULL: such clients are closed */
    void (*client)(void *ctx, int fd, const uint8_t *state, size_t len);
    /* new side: the old process's counters came (u->base): the stats document
     * of the interval shows them now, not an interval later (NULL: none) */
    void (*counters)(void *ctx);
    void *ctx;
};

struct upgrade {
    /* what an upgrade runs again: the path this binary was started from (after
     * a package upgrade it names the new file) and the same arguments */
    char exe[PATH_MAX];
    char **argv;
    const char *pid_file;
    /* listening sockets: inherited from the replaced process, plus (a master)
     * the ones it bound for its workers */
    struct upgrade_fd *fds;
    uint32_t nfds;
    struct ev_loop *loop;
    struct upgrade_hooks hooks;
    /* the channel from the process this one replaces; -1 on a fresh start */
    int parent;
    uint64_t parent_generation;
    struct ev_io parent_io;
    struct buf parent_in;
    struct stats_snap *base;    /* its counters, the latest it sent */
    struct chan_fds parent_fds; /* client sockets received with its frames */
    /* the master (or single process) we replace; kept in our workers, whose
     * clients come from its workers (adopt.h); 0 on a fresh start */
    pid_t replaced;
    /* an upgrade this process started */
    pid_t child;
    int child_fd;
    struct ev_io child_io;
    struct ev_timer child_timer;
    struct buf child_in;
    bool handed_over;
    bool child_adopts; /* it said it takes our clients over (single process) */
    bool abandoned;    /* we stop before it served: it was told to stop too */
};

/* From the command line and the environment (whose upgrade variables it
 * removes, so no later child sees them). */
void upgrade_init(struct upgrade *u, int argc, char **argv, const char *pid_file);
void upgrade_deinit(struct upgrade *u);
/* Watch the channels on loop; hooks are called there. */
void upgrade_attach(struct upgrade *u, struct ev_loop *loop, const struct upgrade_hooks *hooks);
/* Stop watching (before the loop goes); the descriptors stay. */
void upgrade_detach(struct upgrade *u);
/* Started by an upgrade (the old process is waiting for us). */
bool upgrade_is_child(const struct upgrade *u);

/* A listening socket for worker (-1: the process's own) at sa, or -1. */
int upgrade_take(struct upgrade *u, int worker, const struct sockaddr *sa, socklen_t salen);
/* The same for a host and port (the stats and metrics listeners). */
int upgrade_take_host(struct upgrade *u, int worker, const char *host, int port);
/* Register fd (listening at its own address) for worker. -1 when out of memory. */
int upgrade_add(struct upgrade *u, int fd, int worker);
/* Close and forget the entries keep() refuses (the master's prune), or all
 * untaken ones of worker when keep is NULL. */
void upgrade_close_fds(struct upgrade *u, int worker,
                       bool (*keep)(void *ctx, const struct upgrade_fd *f), void *ctx);
/* Whether a and b are the same listening address (unix sockets by path). */
bool upgrade_addr_same(const struct sockaddr *a, socklen_t alen, const struct sockaddr *b,
                       socklen_t blen);

/* In a forked worker: the master's channels are not ours (their descriptors
 * are closed already); only the listeners stay. */
void upgrade_in_worker(struct upgrade *u);
/* New side: we serve; tell the old process, and whether we take its clients
 * (a single process: the sockets of its idle clients come to us, and they go
 * on without noticing the change of binary). */
void upgrade_serving(struct upgrade *u, bool adopts);

/* Old side: start the new binary with these listening sockets. -1 when an
 * upgrade is already under way or the fork failed. */
int upgrade_start(struct upgrade *u, const struct upgrade_fd *fds, uint32_t n, uint64_t generation);
/* Old side: the new process serves and takes clients over. */
bool upgrade_takes_clients(const struct upgrade *u);
/* Old side: hand client socket fd over with its state (client_export); an
 * enum chan_sent (CHAN_SENT: the caller closes its own descriptor, the
 * connection lives on in the new process). */
int upgrade_pass_client(struct upgrade *u, int fd, const struct buf *state);
/* Old side: send our counters to the new process (it adds the latest it got). */
void upgrade_send_counters(struct upgrade *u, const struct stats_snap *s);
/* A child exited: true when it was the new binary (a failed upgrade unless it
 * had taken over). */
bool upgrade_reap(struct upgrade *u, pid_t pid, int status);

/* This process stops while the new binary it started has not said it serves:
 * that one is told to stop too (SIGTERM), or it would go on serving with no pid
 * file naming it, after a stop. Nothing once the new process took over. */
void upgrade_abandon(struct upgrade *u);

#endif
