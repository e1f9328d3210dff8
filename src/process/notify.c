#include "process/notify.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "core/log.h"
#include "stats/snap.h"

/* $NOTIFY_SOCKET: a path, or "@name" for the abstract namespace. */
static socklen_t notify_addr(const char *where, struct sockaddr_un *sa)
{
    size_t n = strlen(where);
    if (n < 2 || n >= sizeof(sa->sun_path) || (where[0] != '/' && where[0] != '@')) {
        return 0;
    }
    memset(sa, 0, sizeof(*sa));
    sa->sun_family = AF_UNIX;
    memcpy(sa->sun_path, where, n);
    if (where[0] == '@') {
        sa->sun_path[0] = '\0';
        return (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n);
    }
    return (socklen_t)sizeof(*sa);
}

/* The first READY=1 to the starter of a daemon (NOTIFY_READY_FD_ENV); the
 * variable goes with it, so a binary upgrade's new process does not see it. */
static void notify_starter(const char *msg)
{
    const char *v = getenv(NOTIFY_READY_FD_ENV);
    if (v == NULL || strstr(msg, "READY=1") == NULL) {
        return;
    }
    int fd = atoi(v);
    unsetenv(NOTIFY_READY_FD_ENV);
    struct stat st;
    if (fd > STDERR_FILENO && fstat(fd, &st) == 0 && S_ISFIFO(st.st_mode)) {
        ssize_t w = write(fd, "R", 1);
        (void)w; /* the starter gone: nobody to tell */
        close(fd);
    }
}

int notify_send(const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (n >= 0) {
        notify_starter(msg);
    }
    const char *where = getenv("NOTIFY_SOCKET");
    if (where == NULL || where[0] == '\0') {
        return 0;
    }
    struct sockaddr_un sa;
    socklen_t salen = notify_addr(where, &sa);
    if (salen == 0 || n < 0) {
        log_debug("NOTIFY_SOCKET '%s' is not a unix socket address", where);
        return -1;
    }
    int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        return -1;
    }
    size_t len = (size_t)n < sizeof(msg) ? (size_t)n : sizeof(msg) - 1;
    ssize_t w = sendto(fd, msg, len, MSG_NOSIGNAL, (const struct sockaddr *)&sa, salen);
    int err = errno;
    close(fd);
    if (w != (ssize_t)len) {
        log_warn("cannot notify the service manager at '%s': %s", where, strerror(err));
        return -1;
    }
    return 0;
}

void notify_status_text(char *out, size_t len, uint64_t generation, int last_reload,
                        int64_t when_ms, uint32_t npools, int nworkers)
{
    const char *what = last_reload == STATS_RELOAD_OK       ? "reloaded"
                       : last_reload == STATS_RELOAD_FAILED ? "running; the last reload failed"
                                                            : "loaded";
    time_t t = (time_t)(when_ms / 1000);
    struct tm tm;
    char stamp[32] = "?";
    if (localtime_r(&t, &tm) != NULL) {
        strftime(stamp, sizeof(stamp), "%Y-%m-%d %H:%M:%S", &tm);
    }
    int n = snprintf(out, len, "configuration generation %llu %s at %s, %u pools",
                     (unsigned long long)generation, what, stamp, npools);
    if (nworkers > 0 && n > 0 && (size_t)n < len) {
        snprintf(out + n, len - (size_t)n, ", %d workers", nworkers);
    }
}

uint64_t notify_monotonic_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}
