#include "process/signals.h"

#include <signal.h>
#include <string.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include "core/log.h"

static const struct {
    int sig;
    const char *name;
} signal_names[] = {
    {SIGHUP, "SIGHUP"},   {SIGINT, "SIGINT"},   {SIGQUIT, "SIGQUIT"}, {SIGILL, "SIGILL"},
    {SIGABRT, "SIGABRT"}, {SIGBUS, "SIGBUS"},   {SIGFPE, "SIGFPE"},   {SIGKILL, "SIGKILL"},
    {SIGUSR1, "SIGUSR1"}, {SIGSEGV, "SIGSEGV"}, {SIGUSR2, "SIGUSR2"}, {SIGPIPE, "SIGPIPE"},
    {SIGALRM, "SIGALRM"}, {SIGTERM, "SIGTERM"}, {SIGCHLD, "SIGCHLD"}, {SIGTTIN, "SIGTTIN"},
    {SIGTTOU, "SIGTTOU"},
};

const char *signal_name(int sig)
{
    for (size_t i = 0; i < sizeof(signal_names) / sizeof(signal_names[0]); i++) {
        if (signal_names[i].sig == sig) {
            return signal_names[i].name;
        }
    }
    return "signal";
}

static void signals_log(int sig, const char *action)
{
    log_always("signal %d (%s) received%s", sig, signal_name(sig), action);
}

static void signals_act(const struct signal_actions *a, int sig)
{
    switch (sig) {
    case SIGINT:
    case SIGTERM:
        signals_log(sig, ", exiting");
        a->stop(a->ctx);
        break;
    case SIGHUP:
        signals_log(sig, ", reopening log file and reloading the configuration");
        log_reopen();
        a->reload(a->ctx);
        break;
    case SIGUSR1:
        signals_log(sig, ", reopening log file");
        log_reopen();
        if (a->reopen != NULL) {
            a->reopen(a->ctx);
        }
        break;
    case SIGTTIN:
    case SIGTTOU:
        signals_log(sig, sig == SIGTTIN ? ", up logging level" : ", down logging level");
        sig == SIGTTIN ? log_level_up() : log_level_down();
        if (a->level != NULL) {
            a->level(a->ctx, sig);
        }
        break;
    case SIGUSR2:
        signals_log(sig, ", binary upgrade");
        a->upgrade(a->ctx);
        break;
    case SIGCHLD:
        a->child(a->ctx);
        break;
    default:
        break;
    }
}

static void signals_on_read(struct ev_loop *loop, struct ev_io *io, unsigned events)
{
    struct signals *sg = io->data;
    struct signalfd_siginfo si;
    (void)loop;
    (void)events;
    while (read(io->fd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
        signals_act(&sg->act, (int)si.ssi_signo);
    }
}

int signals_open(struct signals *sg, struct ev_loop *loop, const struct signal_actions *act)
{
    static const int sigs[] = {SIGINT, SIGTERM, SIGHUP, SIGUSR1, SIGUSR2, SIGTTIN, SIGTTOU};
    sigset_t set;
    sigemptyset(&set);
    for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++) {
        sigaddset(&set, sigs[i]);
    }
    if (act->child != NULL) {
        sigaddset(&set, SIGCHLD); /* a worker's death is an event like the others */
    }
    sg->act = *act;
    ev_io_init(&sg->io, -1, signals_on_read, sg);
    if (sigprocmask(SIG_BLOCK, &set, NULL) != 0) {
        return -1;
    }
    int fd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
    if (fd < 0) {
        return -1;
    }
    ev_io_init(&sg->io, fd, signals_on_read, sg);
    return ev_io_set(loop, &sg->io, EV_READ);
}

void signals_close(struct signals *sg, struct ev_loop *loop)
{
    if (sg->io.fd >= 0) {
        ev_io_stop(loop, &sg->io);
        close(sg->io.fd);
        sg->io.fd = -1;
    }
}
