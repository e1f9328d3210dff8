/*
 * options: the command line, twemproxy 0.5 compatible (SPEC section 1).
 */
#ifndef NC_OPTIONS_H
#define NC_OPTIONS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#define NC_VERSION "0.5.0"

struct options {
    bool show_help;
    bool show_version;
    bool test_conf;
    bool daemonize;
    bool describe_stats;
    int log_level;              /* 0..11, default 5 */
    const char *log_file;       /* NULL: stderr */
    const char *conf_file;      /* default conf/nutcracker.yml */
    int stats_port;             /* default 22222 */
    const char *stats_addr;     /* default 0.0.0.0 */
    int stats_interval_ms;      /* default 30000 */
    const char *pid_file;       /* NULL: none */
    size_t mbuf_size;           /* default 16384, 512..16777216 */
    int metrics_port;           /* ours: Prometheus /metrics port, 0 = off */
    const char *metrics_addr;   /* ours: NULL = stats_addr */
    size_t client_buffer_limit; /* ours: a client's replies and requests in flight, 64 MiB */
    size_t request_size_limit;  /* ours: bytes of the largest request, default 513 MiB */
    size_t buffer_limit;        /* ours: bytes all clients may hold, default 1 GiB */
    const char *signal_name;    /* ours (-k): reload|reopen|stop|upgrade for the -p process */
    const char *event_backend;  /* ours: "epoll" (default) or "io_uring" */
};

/* Parse argv. Returns 0 on success; on a bad option prints the message and the usage
 * to err and returns -1 (the caller exits 1). As in twemproxy, -h and -D also set
 * show_version (they print the "This is nutcracker-X" banner first), -v above 11
 * means 11, and operands that are not options are ignored. Strings point into argv.
 * Can be called again (getopt's state is reset). */
int options_parse(struct options *o, int argc, char **argv, FILE *err);
/* The "Usage: ..." and "Options: ..." block, ending with a blank line, without
 * the version banner that twemproxy prints before it for -h. */
void options_usage(FILE *out);

#endif
