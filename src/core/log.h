/*
 * log: twemproxy's log levels (0 emerg .. 11 pverb) and line format
 * "[YYYY-MM-DD HH:MM:SS.mmm] file.c:line message". One logger per process:
 * it is process-wide state by nature (signals change its level, SIGHUP reopens it).
 */
#ifndef NC_LOG_H
#define NC_LOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

enum log_level {
    LOG_EMERG = 0,
    LOG_ALERT,
    LOG_CRIT,
    LOG_ERR,
    LOG_WARN,
    LOG_NOTICE,
    LOG_INFO,
    LOG_DEBUG,
    LOG_VERB,
    LOG_VVERB,
    LOG_VVVERB,
    LOG_PVERB,
    LOG_LEVEL_MAX = LOG_PVERB
};

int log_init(int level, const char *path);
void log_deinit(void);
int log_reopen(void);
/* Make the log file uid:gid's, before a privilege drop (so SIGHUP can reopen it). */
int log_chown(uid_t uid, gid_t gid);
void log_level_up(void);
void log_level_down(void);
int log_loggable(int level);
void log_write(const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Async-signal-safe: a fixed message with no formatting (used by the crash handler). */
void log_write_raw(const char *msg);
int log_fd(void);

#define log_at(lvl, ...)                                                                           \
    do {                                                                                           \
        if (log_loggable(lvl)) {                                                                   \
            log_write(__FILE__, __LINE__, __VA_ARGS__);                                            \
        }                                                                                          \
    } while (0)

/* A line that may come many times a second (a shortage, a refusal): written
 * at most once per gap, saying how many were left unwritten since. */
struct log_gap {
    uint64_t next_ms;
    uint64_t quiet; /* lines not written since the last one */
};

/* Whether the line is due at now_ms. When it is, *quiet is the number of lines
 * skipped since the last one written, and the next is due gap_ms later. */
bool log_gap_due(struct log_gap *g, uint64_t now_ms, uint64_t gap_ms, uint64_t *quiet);
/* The end of such a line in buf: " (N more times since the last line)", or ""
 * when none was skipped. Returns buf. */
const char *log_gap_more(char *buf, size_t len, uint64_t quiet);

/* Whatever the level (twemproxy logs signals this way: an operator sees them). */
#define log_always(...) log_write(__FILE__, __LINE__, __VA_ARGS__)

#define log_error(...)  log_at(LOG_ERR, __VA_ARGS__)
#define log_warn(...)   log_at(LOG_WARN, __VA_ARGS__)
#define log_notice(...) log_at(LOG_NOTICE, __VA_ARGS__)
#define log_info(...)   log_at(LOG_INFO, __VA_ARGS__)
#define log_debug(...)  log_at(LOG_DEBUG, __VA_ARGS__)
#define log_verb(...)   log_at(LOG_VERB, __VA_ARGS__)

#endif
