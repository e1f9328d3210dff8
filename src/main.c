/*
 * nutcracker: a redis and memcached sharding proxy, twemproxy 0.5 compatible.
 *
 *   client                        proxy                                   servers
 *   ------   bytes   +-----------------------------------------------+
 *            ------> | proxy/client.c  read into client->in          |
 *                    | proto           req_parse: length, keys, route|
 *                    | proxy/router.c  local answer | error | forward|
 *                    |   route.c: the target of the keys (CROSSSLOT  |
 *                    |   when they are on two shards); a split is    |
 *                    |   rebuilt per target by proto frag_build      |
 *                    |   req on the client's queue (cqueue.c) and    |
 *                    |   on the connection's (sconn.c)               |  one write per
 *                    | proxy.c before sleeping: sconn_flush -------------> connection per
 *                    |                                               |  loop turn
 *                    | proxy/sconn.c  read into sconn->in  <-------------- responses
 *                    |   rsp_parse, pop the oldest req (FIFO)        |
 *                    | proxy/req.c    req_complete: cqueue_reply puts|
 *            <------ |   it out if it is the oldest, else keeps it;  |
 *                    |   fragments merged by proto merge             |
 *                    | before sleeping: client_flush                 |
 *                    +-----------------------------------------------+
 *
 * docs/architecture.md tells the layers, and who owns which buffer and connection.
 */
#include <errno.h>
#include <execinfo.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "conf/conf.h"
#include "conf/options.h"
#include "core/log.h"
#include "process/instance.h"
#include "process/master.h"
#include "process/notify.h"
#include "process/privileges.h"
#include "process/signals.h"
#include "process/upgrade.h"
#include "proxy/memlimit.h"
#include "stats/stats.h"

static void print_banner(void)
{
    fprintf(stderr, "This is nutcracker-%s\nasync event backend: epoll\n\n", NC_VERSION);
}

/* Append the decimal form of v to dst at *n (async-signal-safe: no stdio). */
static void crash_put_int(char *dst, size_t *n, int v)
{
    char tmp[12];
    int k = 0;
    do {
        tmp[k++] = (char)('0' + v % 10);
        v /= 10;
    } while (v > 0 && k < (int)sizeof(tmp));
    while (k > 0) {
        dst[(*n)++] = tmp[--k];
    }
}

static void crash_put_str(char *dst, size_t *n, const char *s)
{
    while (*s != '\0') {
        dst[(*n)++] = *s++;
    }
}

/* twemproxy's way: the backtrace, then "signal 11 (SIGSEGV) received, core
 * dumping", then the default action (a core where the system keeps them). */
static void on_crash(int sig)
{
    void *frames[64];
    char msg[128];
    size_t n = 0;
    int depth = backtrace(frames, 64);
    backtrace_symbols_fd(frames, depth, log_fd());
    crash_put_str(msg, &n, "[.......................] signal ");
    crash_put_int(msg, &n, sig);
    crash_put_str(msg, &n, " (");
    crash_put_str(msg, &n, signal_name(sig));
    crash_put_str(msg, &n, ") received, core dumping\n");
    msg[n] = '\0';
    log_write_raw(msg);
    signal(sig, SIG_DFL);
    raise(sig);
}

static void install_crash_handlers(void)
{
    signal(SIGPIPE, SIG_IGN);
    signal(SIGSEGV, on_crash);
    signal(SIGBUS, on_crash);
    signal(SIGFPE, on_crash);
    signal(SIGILL, on_crash);
    signal(SIGABRT, on_crash);
}

/* A configuration that cannot start the proxy is also told in the log file:
 * a daemon's (or a binary upgrade's new process's) stderr may go nowhere, and
 * the old process of an upgrade says "see its log". */
static void load_conf_log(const struct options *o, const struct conf_errors *errs)
{
    if (o->test_conf || o->log_file == NULL || log_init(o->log_level, o->log_file) != 0) {
        return;
    }
    for (uint32_t i = 0; i < errs->n; i++) {
        log_error("%s", errs->msgs[i]);
    }
    log_error("configuration file '%s' syntax is invalid", o->conf_file);
    log_deinit();
}

static struct conf *load_conf(const struct options *o)
{
    const char *path = o->conf_file;
    struct conf_errors errs;
    conf_errors_init(&errs);
    struct conf *conf = conf_load(path, &errs);
    for (uint32_t i = 0; i < errs.n; i++) {
        fprintf(stderr, "%s\n", errs.msgs[i]);
    }
    if (conf == NULL) {
        load_conf_log(o, &errs);
        fprintf(stderr, "nutcracker: configuration file '%s' syntax is invalid\n", path);
    } else if (o->test_conf) {
        fprintf(stderr, "nutcracker: configuration file '%s' syntax is ok\n", path);
    }
    conf_errors_free(&errs);
    return conf;
}

/* The starter of a daemon: exit 0 once the daemon serves (its first READY=1,
 * notify.h), 1 when it stopped before (the pipe closed: the reason is in its
 * log), so an init script or a shell sees a start that failed. Twemproxy exits
 * 0 at once, whatever comes next. A daemon still starting after a minute is
 * left to it. */
static int daemon_starter_wait(int fd)
{
    struct pollfd pfd = {.fd = fd, .events = POLLIN};
    int rc;
    do {
        rc = poll(&pfd, 1, 60000);
    } while (rc < 0 && errno == EINTR);
    char c;
    if (rc == 0 || (rc > 0 && read(fd, &c, 1) == 1)) {
        return 0;
    }
    fprintf(stderr, "nutcracker: the daemon stopped before it served: its log says why\n");
    return 1;
}

static int daemonize(void)
{
    int ready[2];
    if (pipe2(ready, O_CLOEXEC) != 0) {
        return -1;
    }
    pid_t pid = fork();
    if (pid < 0) {
        return -1;
    }
    if (pid > 0) {
        close(ready[1]);
        _exit(daemon_starter_wait(ready[0]));
    }
    close(ready[0]);
    char fd_text[16];
    snprintf(fd_text, sizeof(fd_text), "%d", ready[1]);
    setenv(NOTIFY_READY_FD_ENV, fd_text, 1);
    if (setsid() < 0) {
        return -1;
    }
    signal(SIGHUP, SIG_IGN);
    pid = fork(); /* the session leader exits so we can never regain a terminal */
    if (pid < 0) {
        return -1;
    }
    if (pid > 0) {
        _exit(0);
    }
    /* no longer a session leader: SIGHUP means "reopen the log" again (signalfd) */
    signal(SIGHUP, SIG_DFL);
    umask(0);
    int fd = open("/dev/null", O_RDWR);
    if (fd >= 0) {
        dup2(fd, STDIN_FILENO);
        dup2(fd, STDOUT_FILENO);
        if (log_fd() != STDERR_FILENO) {
            dup2(fd, STDERR_FILENO);
        }
        if (fd > STDERR_FILENO) {
            close(fd);
        }
    }
    return 0;
}

/* A process's command name (/proc/PID/comm), "" when it cannot be read. */
static void proc_comm(const char *pid, char *out, size_t cap)
{
    char path[64];
    snprintf(path, sizeof(path), "/proc/%s/comm", pid);
    out[0] = '\0';
    FILE *f = fopen(path, "r");
    if (f != NULL) {
        if (fgets(out, (int)cap, f) == NULL) {
            out[0] = '\0';
        }
        out[strcspn(out, "\n")] = '\0';
        fclose(f);
    }
}

/* A process's state letter (/proc/PID/stat), '?' when it cannot be read. */
static char proc_state(long pid)
{
    char path[64], line[512];
    snprintf(path, sizeof(path), "/proc/%ld/stat", pid);
    FILE *f = fopen(path, "r");
    char state = '?';
    if (f != NULL) {
        if (fgets(line, sizeof(line), f) != NULL) {
            const char *end = strrchr(line, ')'); /* (the name may hold spaces) */
            if (end != NULL && end[1] == ' ' && end[2] != '\0') {
                state = end[2];
            }
        }
        fclose(f);
    }
    return state;
}

/* Whether a process named theirs may be a proxy: named as this binary (ours)
 * or nutcracker... (a new binary of an upgrade may be named otherwise than
 * the running one), or either name unknown. The number in a stale pid file
 * may be any process's now. */
static bool comm_is_proxy(const char *theirs, const char *ours)
{
    return theirs[0] == '\0' || ours[0] == '\0' || strcmp(theirs, ours) == 0 ||
           strncmp(theirs, "nutcracker", 10) == 0;
}

/* Whether a live process of a pid file is a proxy still running: not a
 * zombie (killed, its parent has not reaped it yet: a container's init may
 * take a second) and named as one (comm_is_proxy). */
static bool proc_is_proxy(long pid)
{
    char state = proc_state(pid);
    if (state == 'Z' || state == 'X') {
        return false;
    }
    char num[32], theirs[64], ours[64];
    snprintf(num, sizeof(num), "%ld", pid);
    proc_comm(num, theirs, sizeof(theirs));
    proc_comm("self", ours, sizeof(ours));
    return comm_is_proxy(theirs, ours);
}

/* Write the pid file; refuse when it names a proxy that is still running
 * (proc_is_proxy), where twemproxy overwrites it: two proxies on one pid
 * file lose track of one of them. */
static int pidfile_create(const char *path)
{
    FILE *f = fopen(path, "r");
    if (f != NULL) {
        long old = 0;
        int got = fscanf(f, "%ld", &old);
        fclose(f);
        if (got == 1 && old > 0 && old != (long)getpid() && kill((pid_t)old, 0) == 0) {
            if (proc_is_proxy(old)) {
                log_error("pid file '%s' belongs to running process %ld: is another "
                          "nutcracker running?",
                          path, old);
                return -1;
            }
            log_info("pid file '%s' names process %ld, which is not a running proxy: "
                     "overwritten",
                     path, old);
        }
    }
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) {
        log_error("opening pid file '%s' failed: %s", path, strerror(errno));
        return -1;
    }
    char buf[32];
    int n = snprintf(buf, sizeof(buf), "%d", (int)getpid());
    ssize_t w = write(fd, buf, (size_t)n);
    close(fd);
    return w == n ? 0 : -1;
}

/* Remove the pid file unless it names another process: after a binary
 * upgrade it names the new one. */
static void pidfile_remove(const char *path)
{
    FILE *f = fopen(path, "r");
    long pid = 0;
    if (f == NULL) {
        return;
    }
    int got = fscanf(f, "%ld", &pid);
    fclose(f);
    if (got != 1 || pid == (long)getpid()) {
        unlink(path);
    }
}

/* -k: signal the running proxy named by the pid file, as nginx -s does, once
 * the pid is seen to be a proxy (named as this binary, or nutcracker...): a
 * stale pid file may name any process. */
static int signal_running(const struct options *o)
{
    static const struct {
        const char *name;
        int sig;
    } sigs[] = {{"reload", SIGHUP}, {"reopen", SIGUSR1}, {"stop", SIGTERM}, {"upgrade", SIGUSR2}};
    if (o->pid_file == NULL) {
        fprintf(stderr, "nutcracker: -k %s needs the pid file of the running proxy (-p)\n",
                o->signal_name);
        return 1;
    }
    FILE *f = fopen(o->pid_file, "r");
    long pid = 0;
    if (f == NULL || fscanf(f, "%ld", &pid) != 1 || pid <= 0) {
        fprintf(stderr, "nutcracker: no pid in pid file '%s'%s%s\n", o->pid_file,
                f == NULL ? ": " : "", f == NULL ? strerror(errno) : "");
        if (f != NULL) {
            fclose(f);
        }
        return 1;
    }
    fclose(f);
    char num[32], theirs[64], ours[64];
    snprintf(num, sizeof(num), "%ld", pid);
    proc_comm(num, theirs, sizeof(theirs));
    proc_comm("self", ours, sizeof(ours));
    if (!comm_is_proxy(theirs, ours)) {
        fprintf(stderr,
                "nutcracker: process %ld of pid file '%s' is '%s', not '%s': a stale pid file? "
                "not signalled\n",
                pid, o->pid_file, theirs, ours);
        return 1;
    }
    for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++) {
        if (strcmp(sigs[i].name, o->signal_name) == 0 && kill((pid_t)pid, sigs[i].sig) != 0) {
            fprintf(stderr, "nutcracker: cannot signal process %ld: %s\n", pid, strerror(errno));
            return 1;
        }
    }
    return 0;
}

/* Raise the descriptor limit toward max_openfiles (as far as the hard limit allows
 * without privileges): a proxy's capacity is its descriptors. */
static void raise_nofile(long want)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || (rlim_t)want <= rl.rlim_cur) {
        return;
    }
    struct rlimit nrl = rl;
    nrl.rlim_cur = (rlim_t)want;
    if (nrl.rlim_max < nrl.rlim_cur) {
        nrl.rlim_max = nrl.rlim_cur;
    }
    if (setrlimit(RLIMIT_NOFILE, &nrl) != 0) {
        nrl.rlim_cur = rl.rlim_max;
        nrl.rlim_max = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &nrl);
    }
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
        log_info("open files limit is %llu", (unsigned long long)rl.rlim_cur);
    }
}

static int run_single(const struct options *o, struct conf *conf, struct upgrade *up)
{
    struct instance in;
    int rc = 1;
    if (instance_init(&in, o, conf, up->parent_generation + 1, -1, NULL, up) == 0 &&
        privileges_drop(&conf->global) == 0) {
        instance_ready(&in);
        rc = instance_run(&in) == 0 ? 0 : 1;
    }
    instance_deinit(&in);
    return rc;
}

static int run(const struct options *o, struct conf *conf, struct upgrade *up)
{
    if (log_init(o->log_level, o->log_file) != 0) {
        return 1;
    }
    /* a new binary of an upgrade has nothing to detach from, and its pid file
     * is written by the process it replaces once it serves */
    bool upgrading = upgrade_is_child(up);
    if (o->daemonize && !upgrading && daemonize() != 0) {
        log_error("daemonize failed: %s", strerror(errno));
        return 1;
    }
    install_crash_handlers();
    memlimit_tune_allocator();
    raise_nofile(conf->global.max_openfiles);
    if (o->pid_file != NULL && !upgrading && pidfile_create(o->pid_file) != 0) {
        return 1;
    }
    log_notice("nutcracker-%s started on pid %d%s", NC_VERSION, (int)getpid(),
               upgrading ? " (binary upgrade)" : "");
    int rc;
    int nworkers = master_workers(&conf->global);
    if (nworkers > 0) {
        rc = master_run(o, conf, nworkers, up);
    } else {
        rc = run_single(o, conf, up);
    }
    if (o->pid_file != NULL) {
        pidfile_remove(o->pid_file);
    }
    log_notice("nutcracker-%s stopped", NC_VERSION);
    log_deinit();
    return rc;
}

int main(int argc, char **argv)
{
    struct options o;
    if (options_parse(&o, argc, argv, stderr) != 0) {
        return 1;
    }
    if (o.show_version || o.show_help || o.describe_stats) {
        print_banner();
        if (o.show_help) {
            options_usage(stderr);
        } else if (o.describe_stats) {
            stats_describe(stderr);
        }
        return 0;
    }
    if (o.signal_name != NULL) {
        return signal_running(&o);
    }
    struct conf *conf = load_conf(&o);
    if (o.test_conf || conf == NULL) {
        if (conf != NULL) {
            conf_unref(conf);
            return 0;
        }
        return 1;
    }
    struct upgrade up;
    upgrade_init(&up, argc, argv, o.pid_file);
    int rc = run(&o, conf, &up);
    upgrade_deinit(&up);
    conf_unref(conf);
    return rc;
}
