/*
 * options: twemproxy 0.5's command line, with its messages word for word
 * (checked against Debian's /usr/sbin/nutcracker), so scripts that drive or
 * grep it keep working.
 */
#include "conf/options.h"

#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#define LOG_LEVEL_MAX 11
#define MBUF_MIN      512
#define MBUF_MAX      16777216

enum {
    OPT_METRICS_PORT = 256,
    OPT_METRICS_ADDR,
    OPT_CLIENT_BUFFER,
    OPT_REQUEST_SIZE,
    OPT_BUFFER_LIMIT,
    OPT_EVENT_BACKEND,
};

static const char short_opts[] = "hVtdDv:o:c:s:i:a:p:m:k:";

static const struct option long_opts[] = {
    {"help", no_argument, NULL, 'h'},
    {"version", no_argument, NULL, 'V'},
    {"test-conf", no_argument, NULL, 't'},
    {"daemonize", no_argument, NULL, 'd'},
    {"describe-stats", no_argument, NULL, 'D'},
    {"verbose", required_argument, NULL, 'v'},
    {"output", required_argument, NULL, 'o'},
    {"conf-file", required_argument, NULL, 'c'},
    {"stats-port", required_argument, NULL, 's'},
    {"stats-interval", required_argument, NULL, 'i'},
    {"stats-addr", required_argument, NULL, 'a'},
    {"pid-file", required_argument, NULL, 'p'},
    {"mbuf-size", required_argument, NULL, 'm'},
    /* ours: long options only, so no twemproxy letter changes meaning */
    {"metrics-port", required_argument, NULL, OPT_METRICS_PORT},
    {"metrics-addr", required_argument, NULL, OPT_METRICS_ADDR},
    {"client-buffer-limit", required_argument, NULL, OPT_CLIENT_BUFFER},
    {"request-size-limit", required_argument, NULL, OPT_REQUEST_SIZE},
    {"buffer-limit", required_argument, NULL, OPT_BUFFER_LIMIT},
    {"event-backend", required_argument, NULL, OPT_EVENT_BACKEND},
    {"signal", required_argument, NULL, 'k'},
    {NULL, 0, NULL, 0},
};

void options_usage(FILE *out)
{
    fputs(
        "Usage: nutcracker [-?hVdDt] [-v verbosity level] [-o output file]\n"
        "                  [-c conf file] [-s stats port] [-a stats addr]\n"
        "                  [-i stats interval] [-p pid file] [-m mbuf size]\n"
        "\n"
        "Options:\n"
        "  -h, --help             : this help\n"
        "  -V, --version          : show version and exit\n"
        "  -t, --test-conf        : test configuration for syntax errors and exit\n"
        "  -d, --daemonize        : run as a daemon\n"
        "  -D, --describe-stats   : print stats description and exit\n"
        "  -v, --verbose=N        : set logging level (default: 5, min: 0, max: 11)\n"
        "  -o, --output=S         : set logging file (default: stderr)\n"
        "  -c, --conf-file=S      : set configuration file (default: conf/nutcracker.yml)\n"
        "  -s, --stats-port=N     : set stats monitoring port (default: 22222)\n"
        "  -a, --stats-addr=S     : set stats monitoring ip (default: 0.0.0.0)\n"
        "  -i, --stats-interval=N : set stats aggregation interval in msec (default: 30000 msec)\n"
        "  -p, --pid-file=S       : set pid file (default: off)\n"
        "  -m, --mbuf-size=N      : set size of mbuf chunk in bytes (default: 16384 bytes)\n"
        "      --metrics-port=N   : serve Prometheus metrics on http://addr:N/metrics (default: "
        "off)\n"
        "      --metrics-addr=S   : set metrics ip (default: the stats ip)\n"
        "      --client-buffer-limit=N : bytes of replies and requests in flight one client may "
        "hold before it waits (default: 64m)\n"
        "      --request-size-limit=N : bytes of the largest request (default: 513m)\n"
        "      --buffer-limit=N   : bytes all clients together may hold (default: 1g)\n"
        "      --event-backend=S  : epoll or io_uring (default: epoll; io_uring falls back to "
        "epoll where the kernel has none)\n"
        "  -k, --signal=S         : send reload, reopen, stop or upgrade to the process in the pid "
        "file\n"
        "\n",
        out);
}

static void options_defaults(struct options *o)
{
    memset(o, 0, sizeof(*o));
    o->log_level = 5;
    o->conf_file = "conf/nutcracker.yml";
    o->stats_port = 22222;
    o->stats_addr = "0.0.0.0";
    o->stats_interval_ms = 30000;
    o->mbuf_size = 16384;
    o->client_buffer_limit = (size_t)64 << 20;
    /* a 512 MB value, redis' largest (proto-max-bulk-len), and its command */
    o->request_size_limit = (size_t)513 << 20;
    o->buffer_limit = (size_t)1 << 30;
    o->event_backend = "epoll";
}

/* twemproxy's nc_atoi: decimal digits only, -1 for anything else or > INT_MAX. */
static int atoi_strict(const char *s)
{
    long v = 0;
    if (s == NULL || *s == '\0') {
        return -1;
    }
    for (; *s != '\0'; s++) {
        if (*s < '0' || *s > '9') {
            return -1;
        }
        v = v * 10 + (*s - '0');
        if (v > INT_MAX) {
            return -1;
        }
    }
    return (int)v;
}

/* getopt said '?': a missing argument (optopt is the option) or an unknown
 * option. twemproxy words the first by what the option expects. */
static void bad_option(FILE *err, char **argv)
{
    switch (optopt) {
    case 'o':
    case 'c':
    case 'p':
        fprintf(err, "nutcracker: option -%c requires a file name\n", optopt);
        break;
    case 'm':
    case 'v':
    case 's':
    case 'i':
        fprintf(err, "nutcracker: option -%c requires a number\n", optopt);
        break;
    case 'a':
        fprintf(err, "nutcracker: option -%c requires a string\n", optopt);
        break;
    case 0:
        /* An unknown long option: twemproxy prints optopt, a NUL; name it. */
        fprintf(err, "nutcracker: invalid option -- '%s'\n", argv[optind - 1]);
        break;
    default:
        fprintf(err, "nutcracker: invalid option -- '%c'\n", optopt);
        break;
    }
}

/* An option with a numeric value; returns 0, or -1 after printing why not. */
static int set_number(struct options *o, int c, const char *arg, FILE *err)
{
    int v = atoi_strict(arg);
    if (c == 'm' && v <= 0) {
        fprintf(err, "nutcracker: option -m requires a non-zero number\n");
        return -1;
    }
    if (v < 0) {
        fprintf(err, "nutcracker: option -%c requires a number\n", c);
        return -1;
    }
    switch (c) {
    case 'v':
        /* Above the top level means the top level, as in twemproxy. */
        o->log_level = v > LOG_LEVEL_MAX ? LOG_LEVEL_MAX : v;
        return 0;
    case 's':
        if (v < 1 || v > 65535) {
            fprintf(err, "nutcracker: option -s value %d is not a valid port\n", v);
            return -1;
        }
        o->stats_port = v;
        return 0;
    case 'i':
        o->stats_interval_ms = v;
        return 0;
    default: /* 'm' */
        if (v < MBUF_MIN || v > MBUF_MAX) {
            fprintf(err, "nutcracker: mbuf chunk size must be between %d and %d bytes\n", MBUF_MIN,
                    MBUF_MAX);
            return -1;
        }
        o->mbuf_size = (size_t)v;
        return 0;
    }
}

/* A byte count with an optional k/m/g suffix (powers of 1024), at least 64k. */
static int set_bytes(struct options *o, int c, const char *arg, FILE *err)
{
    char *end = NULL;
    errno = 0;
    unsigned long long v = strtoull(arg, &end, 10);
    unsigned shift = 0;
    if (end != arg && *end != '\0' && end[1] == '\0') {
        const char *u = strchr("kmg", end[0] | 0x20);
        shift = u ? (unsigned)(u - "kmg" + 1) * 10 : 64;
        end++;
    }
    const char *name = c == OPT_CLIENT_BUFFER  ? "client-buffer-limit"
                       : c == OPT_REQUEST_SIZE ? "request-size-limit"
                                               : "buffer-limit";
    if (errno != 0 || end == arg || *end != '\0' || arg[0] == '-' || shift >= 64 ||
        v > (ULLONG_MAX >> shift) || (v << shift) < 65536) {
        fprintf(err, "nutcracker: option --%s value %s is not a byte count >= 64k\n", name, arg);
        return -1;
    }
    if (c == OPT_CLIENT_BUFFER) {
        o->client_buffer_limit = (size_t)(v << shift);
    } else if (c == OPT_REQUEST_SIZE) {
        o->request_size_limit = (size_t)(v << shift);
    } else {
        o->buffer_limit = (size_t)(v << shift);
    }
    return 0;
}

/* Our options without a letter (twemproxy has none of them). */
static int set_long_only(struct options *o, int c, FILE *err, char **argv)
{
    switch (c) {
    case OPT_METRICS_PORT: {
        int v = atoi_strict(optarg);
        if (v < 1 || v > 65535) {
            fprintf(err, "nutcracker: option --metrics-port value %s is not a valid port\n",
                    optarg);
            return -1;
        }
        o->metrics_port = v;
        return 0;
    }
    case OPT_METRICS_ADDR:
        o->metrics_addr = optarg;
        return 0;
    case OPT_CLIENT_BUFFER:
    case OPT_REQUEST_SIZE:
    case OPT_BUFFER_LIMIT:
        return set_bytes(o, c, optarg, err);
    case OPT_EVENT_BACKEND:
        if (strcmp(optarg, "epoll") != 0 && strcmp(optarg, "io_uring") != 0) {
            fprintf(err, "nutcracker: option --event-backend value %s is not epoll or io_uring\n",
                    optarg);
            return -1;
        }
        o->event_backend = optarg;
        return 0;
    default:
        bad_option(err, argv);
        return -1;
    }
}

static int set_option(struct options *o, int c, FILE *err, char **argv)
{
    switch (c) {
    case 'h':
        /* twemproxy's -h and -D print the version banner first. */
        o->show_help = o->show_version = true;
        return 0;
    case 'V':
        o->show_version = true;
        return 0;
    case 't':
        o->test_conf = true;
        return 0;
    case 'd':
        o->daemonize = true;
        return 0;
    case 'D':
        o->describe_stats = o->show_version = true;
        return 0;
    case 'o':
        o->log_file = optarg;
        return 0;
    case 'c':
        o->conf_file = optarg;
        return 0;
    case 'a':
        o->stats_addr = optarg;
        return 0;
    case 'p':
        o->pid_file = optarg;
        return 0;
    case 'k':
        if (strcmp(optarg, "reload") != 0 && strcmp(optarg, "reopen") != 0 &&
            strcmp(optarg, "stop") != 0 && strcmp(optarg, "upgrade") != 0) {
            fprintf(err, "nutcracker: option -k value %s is not reload, reopen, stop or upgrade\n",
                    optarg);
            return -1;
        }
        o->signal_name = optarg;
        return 0;
    case 'v':
    case 's':
    case 'i':
    case 'm':
        return set_number(o, c, optarg, err);
    default:
        return set_long_only(o, c, err, argv);
    }
}

int options_parse(struct options *o, int argc, char **argv, FILE *err)
{
    options_defaults(o);
    /* 0 (not 1) makes glibc forget the state of an earlier scan entirely, so
     * a test or a reload can parse again. Errors are ours, in twemproxy's words. */
    optind = 0;
    opterr = 0;
    for (;;) {
        int c = getopt_long(argc, argv, short_opts, long_opts, NULL);
        if (c == -1) {
            return 0;
        }
        if (set_option(o, c, err, argv) != 0) {
            options_usage(err);
            return -1;
        }
    }
}
