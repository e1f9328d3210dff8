#include "core/log.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

/* The process's logger: the only process-wide mutable state (signals change its
 * level and reopen its file). */
static struct {
    int level;
    int fd;
    const char *path; /* NULL: stderr */
} logger = {LOG_NOTICE, STDERR_FILENO, NULL};

static int log_open(const char *path)
{
    if (path == NULL) {
        return STDERR_FILENO;
    }
    return open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
}

int log_init(int level, const char *path)
{
    logger.level = level < 0 ? 0 : (level > LOG_LEVEL_MAX ? LOG_LEVEL_MAX : level);
    logger.path = path;
    int fd = log_open(path);
    if (fd < 0) {
        fprintf(stderr, "nutcracker: opening log file '%s' failed: %s\n", path, strerror(errno));
        return -1;
    }
    logger.fd = fd;
    return 0;
}

void log_deinit(void)
{
    if (logger.fd > STDERR_FILENO) {
        close(logger.fd);
    }
    logger.fd = STDERR_FILENO;
}

int log_reopen(void)
{
    if (logger.path == NULL) {
        return 0;
    }
    int fd = log_open(logger.path);
    if (fd < 0) {
        log_error("reopening log file '%s' failed: %s", logger.path, strerror(errno));
        return -1;
    }
    if (logger.fd > STDERR_FILENO) {
        close(logger.fd);
    }
    logger.fd = fd;
    return 0;
}

/* A proxy that drops root keeps writing to the file it opened as root, but its
 * SIGHUP reopen runs as the new user: the file must be that user's (nginx
 * gives its logs to the worker user the same way). */
int log_chown(uid_t uid, gid_t gid)
{
    if (logger.path == NULL || logger.fd <= STDERR_FILENO) {
        return 0;
    }
    if (fchown(logger.fd, uid, gid) != 0) {
        log_warn("giving log file '%s' to uid %d gid %d failed: %s", logger.path, (int)uid,
                 (int)gid, strerror(errno));
        return -1;
    }
    return 0;
}

void log_level_up(void)
{
    if (logger.level < LOG_LEVEL_MAX) {
        logger.level++;
    }
    log_write(__FILE__, __LINE__, "up log level to %d", logger.level);
}

void log_level_down(void)
{
    if (logger.level > 0) {
        logger.level--;
    }
    log_write(__FILE__, __LINE__, "down log level to %d", logger.level);
}

bool log_gap_due(struct log_gap *g, uint64_t now_ms, uint64_t gap_ms, uint64_t *quiet)
{
    if (now_ms < g->next_ms) {
        g->quiet++;
        return false;
    }
    *quiet = g->quiet;
    g->quiet = 0;
    g->next_ms = now_ms + gap_ms;
    return true;
}

const char *log_gap_more(char *buf, size_t len, uint64_t quiet)
{
    buf[0] = '\0';
    if (quiet > 0) {
        snprintf(buf, len, " (%llu more times since the last line)", (unsigned long long)quiet);
    }
    return buf;
}

int log_loggable(int level)
{
    return level <= logger.level;
}

int log_fd(void)
{
    return logger.fd;
}

void log_write(const char *file, int line, const char *fmt, ...)
{
    char msg[4096];
    struct timeval tv;
    struct tm tm;
    gettimeofday(&tv, NULL);
    localtime_r(&tv.tv_sec, &tm);
    const char *base = strrchr(file, '/');
    base = base ? base + 1 : file;
    size_t n = strftime(msg, sizeof(msg), "[%Y-%m-%d %H:%M:%S", &tm);
    n += (size_t)snprintf(msg + n, sizeof(msg) - n, ".%03ld] %s:%d ", (long)tv.tv_usec / 1000, base,
                          line);
    va_list ap;
    va_start(ap, fmt);
    int w = vsnprintf(msg + n, sizeof(msg) - n - 1, fmt, ap);
    va_end(ap);
    if (w > 0) {
        n += (size_t)w < sizeof(msg) - n - 1 ? (size_t)w : sizeof(msg) - n - 2;
    }
    msg[n++] = '\n';
    ssize_t unused = write(logger.fd, msg, n);
    (void)unused;
}

void log_write_raw(const char *msg)
{
    ssize_t unused = write(logger.fd, msg, strlen(msg));
    (void)unused;
}
