/*
 * signals: the signals a nutcracker process acts on, one switch for the single
 * process, the master and the workers. They are blocked and read from a
 * signalfd on the event loop, so an action runs like any other event (no
 * async-signal-safety to worry about), and each is logged as twemproxy logs
 * it: "signal 1 (SIGHUP) received, ..." (operators grep for the names).
 *
 *   SIGINT, SIGTERM   stop (gracefully)
 *   SIGHUP            reopen the log file, then reload the configuration
 *   SIGUSR1           reopen the log file
 *   SIGTTIN, SIGTTOU  log level up, down
 *   SIGUSR2           binary upgrade (a worker: hand over to the new one)
 *   SIGCHLD           a worker or the new binary exited
 */
#ifndef NC_SIGNALS_H
#define NC_SIGNALS_H

#include <stdbool.h>

#include "event/ev.h"

struct signal_actions {
    void (*stop)(void *ctx);
    void (*reload)(void *ctx);
    void (*reopen)(void *ctx);         /* NULL: reopening the log is all */
    void (*level)(void *ctx, int sig); /* after the level changed; NULL: nothing more */
    void (*child)(void *ctx);          /* NULL: SIGCHLD is not watched */
    void (*upgrade)(void *ctx);        /* SIGUSR2 */
    void *ctx;
};

struct signals {
    struct ev_io io;
    struct signal_actions act;
};

/* Block the signals and watch them on loop; -1 (errno set) on failure. */
int signals_open(struct signals *sg, struct ev_loop *loop, const struct signal_actions *act);
void signals_close(struct signals *sg, struct ev_loop *loop);
/* "SIGHUP" for SIGHUP, "signal" for one without a name here. Async-signal-safe. */
const char *signal_name(int sig);

#endif
