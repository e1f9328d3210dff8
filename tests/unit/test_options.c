/*
 * test_options: the command line (SPEC section 1). The messages are the ones
 * Debian's /usr/sbin/nutcracker 0.5.0 prints, byte for byte.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conf/options.h"
#include "unit.h"

#define MAX_ARGS 40

static struct options opt;
static char *out; /* what options_parse wrote to its err stream */
static size_t outlen;

/* Parses a space-separated command line (after "nutcracker"). */
static int parse(const char *line)
{
    static char buf[1024];
    char *argv[MAX_ARGS + 1];
    int argc = 0;
    snprintf(buf, sizeof(buf), "%s", line);
    argv[argc++] = "nutcracker";
    for (char *t = strtok(buf, " "); t != NULL && argc < MAX_ARGS; t = strtok(NULL, " ")) {
        argv[argc++] = t;
    }
    argv[argc] = NULL;
    free(out);
    out = NULL;
    FILE *f = open_memstream(&out, &outlen);
    int rc = options_parse(&opt, argc, argv, f);
    fclose(f);
    return rc;
}

static char *usage_text(void)
{
    char *u = NULL;
    size_t n = 0;
    FILE *f = open_memstream(&u, &n);
    options_usage(f);
    fclose(f);
    return u;
}

/* The command line must fail with this first line, then the usage. */
static void expect_fail(const char *line, const char *first)
{
    CHECK_EQ_INT(parse(line), -1);
    size_t n = strlen(first);
    if (strncmp(out, first, n) != 0 || out[n] != '\n') {
        fprintf(stderr, "for \"%s\" got: %.*s\n", line, (int)strcspn(out, "\n"), out);
        CHECK(0);
        return;
    }
    char *u = usage_text();
    CHECK(strcmp(out + n + 1, u) == 0);
    free(u);
}

static void test_defaults(void)
{
    CHECK_EQ_INT(parse(""), 0);
    CHECK(!opt.show_help && !opt.show_version && !opt.test_conf);
    CHECK(!opt.daemonize && !opt.describe_stats);
    CHECK_EQ_INT(opt.log_level, 5);
    CHECK(opt.log_file == NULL);
    CHECK(strcmp(opt.conf_file, "conf/nutcracker.yml") == 0);
    CHECK_EQ_INT(opt.stats_port, 22222);
    CHECK(strcmp(opt.stats_addr, "0.0.0.0") == 0);
    CHECK_EQ_INT(opt.stats_interval_ms, 30000);
    CHECK(opt.pid_file == NULL);
    CHECK_EQ_INT(opt.mbuf_size, 16384);
    CHECK(strcmp(opt.event_backend, "epoll") == 0);
    CHECK_EQ_INT(outlen, 0);
}

static void test_short(void)
{
    CHECK_EQ_INT(parse("-t -d -v 7 -o /tmp/log -c x.yml -s 1 -a 127.0.0.1 -i 0 -p /tmp/pid "
                       "-m 512"),
                 0);
    CHECK(opt.test_conf && opt.daemonize && !opt.show_version);
    CHECK_EQ_INT(opt.log_level, 7);
    CHECK(strcmp(opt.log_file, "/tmp/log") == 0);
    CHECK(strcmp(opt.conf_file, "x.yml") == 0);
    CHECK_EQ_INT(opt.stats_port, 1);
    CHECK(strcmp(opt.stats_addr, "127.0.0.1") == 0);
    CHECK_EQ_INT(opt.stats_interval_ms, 0);
    CHECK(strcmp(opt.pid_file, "/tmp/pid") == 0);
    CHECK_EQ_INT(opt.mbuf_size, 512);

    /* clustered flags and attached values, as getopt allows */
    CHECK_EQ_INT(parse("-tdv11 -m16777216 -s65535"), 0);
    CHECK(opt.test_conf && opt.daemonize);
    CHECK_EQ_INT(opt.log_level, 11);
    CHECK_EQ_INT(opt.mbuf_size, 16777216);
    CHECK_EQ_INT(opt.stats_port, 65535);

    /* -h and -D print the version banner first, as twemproxy does */
    CHECK_EQ_INT(parse("-h"), 0);
    CHECK(opt.show_help && opt.show_version);
    CHECK_EQ_INT(parse("-D"), 0);
    CHECK(opt.describe_stats && opt.show_version && !opt.show_help);
    CHECK_EQ_INT(parse("-V"), 0);
    CHECK(opt.show_version && !opt.show_help);

    /* twemproxy accepts levels above 11 and clamps them; decimal, even with a 0 */
    CHECK_EQ_INT(parse("-v 99"), 0);
    CHECK_EQ_INT(opt.log_level, 11);
    CHECK_EQ_INT(parse("-v 011"), 0);
    CHECK_EQ_INT(opt.log_level, 11);
    CHECK_EQ_INT(parse("-v 0"), 0);
    CHECK_EQ_INT(opt.log_level, 0);

    /* operands are ignored, as in twemproxy */
    CHECK_EQ_INT(parse("-t extra -c y.yml"), 0);
    CHECK(opt.test_conf && strcmp(opt.conf_file, "y.yml") == 0);
}

static void test_long(void)
{
    CHECK_EQ_INT(parse("--help --version --test-conf --daemonize --describe-stats --verbose=3 "
                       "--output=l --conf-file=c.yml --stats-port=2 --stats-addr=::1 "
                       "--stats-interval=7 --pid-file=p --mbuf-size=1024"),
                 0);
    CHECK(opt.show_help && opt.show_version && opt.test_conf);
    CHECK(opt.daemonize && opt.describe_stats);
    CHECK_EQ_INT(opt.log_level, 3);
    CHECK(strcmp(opt.log_file, "l") == 0);
    CHECK(strcmp(opt.conf_file, "c.yml") == 0);
    CHECK_EQ_INT(opt.stats_port, 2);
    CHECK(strcmp(opt.stats_addr, "::1") == 0);
    CHECK_EQ_INT(opt.stats_interval_ms, 7);
    CHECK(strcmp(opt.pid_file, "p") == 0);
    CHECK_EQ_INT(opt.mbuf_size, 1024);

    /* separate values and unambiguous abbreviations (getopt_long) */
    CHECK_EQ_INT(parse("--conf-file other.yml --verb 4"), 0);
    CHECK(strcmp(opt.conf_file, "other.yml") == 0);
    CHECK_EQ_INT(opt.log_level, 4);
}

static void test_errors(void)
{
    expect_fail("-s 70000", "nutcracker: option -s value 70000 is not a valid port");
    expect_fail("-s 65536", "nutcracker: option -s value 65536 is not a valid port");
    expect_fail("-s 0", "nutcracker: option -s value 0 is not a valid port");
    expect_fail("-s -1", "nutcracker: option -s requires a number");
    expect_fail("-s x", "nutcracker: option -s requires a number");
    expect_fail("-s 1x", "nutcracker: option -s requires a number");
    expect_fail("-s", "nutcracker: option -s requires a number");
    expect_fail("-v -1", "nutcracker: option -v requires a number");
    expect_fail("-v x", "nutcracker: option -v requires a number");
    expect_fail("-v", "nutcracker: option -v requires a number");
    expect_fail("--verbose", "nutcracker: option -v requires a number");
    expect_fail("-i x", "nutcracker: option -i requires a number");
    expect_fail("-i -5", "nutcracker: option -i requires a number");
    expect_fail("-i 2147483648", "nutcracker: option -i requires a number");
    expect_fail("-i", "nutcracker: option -i requires a number");
    expect_fail("-m 1", "nutcracker: mbuf chunk size must be between 512 and 16777216 bytes");
    expect_fail("-m 511", "nutcracker: mbuf chunk size must be between 512 and 16777216 bytes");
    expect_fail("-m 16777217",
                "nutcracker: mbuf chunk size must be between 512 and 16777216 bytes");
    expect_fail("-m 0", "nutcracker: option -m requires a non-zero number");
    expect_fail("-m x", "nutcracker: option -m requires a non-zero number");
    expect_fail("--mbuf-size=abc", "nutcracker: option -m requires a non-zero number");
    expect_fail("-m", "nutcracker: option -m requires a number");
    expect_fail("-c", "nutcracker: option -c requires a file name");
    expect_fail("--conf-file", "nutcracker: option -c requires a file name");
    expect_fail("-o", "nutcracker: option -o requires a file name");
    expect_fail("-p", "nutcracker: option -p requires a file name");
    expect_fail("-a", "nutcracker: option -a requires a string");
    expect_fail("--stats-addr", "nutcracker: option -a requires a string");
    expect_fail("-x", "nutcracker: invalid option -- 'x'");
    expect_fail("-?", "nutcracker: invalid option -- '?'");
    expect_fail("--help=3", "nutcracker: invalid option -- 'h'");
    /* twemproxy prints a NUL here; we name the option */
    expect_fail("--metrics-port 0",
                "nutcracker: option --metrics-port value 0 is not a valid port");
    expect_fail("--bogus", "nutcracker: invalid option -- '--bogus'");
    expect_fail("--ver", "nutcracker: invalid option -- '--ver'"); /* ambiguous */
    /* the first bad option stops the parse */
    expect_fail("-v 3 -s 0 -m 1", "nutcracker: option -s value 0 is not a valid port");
}

static void test_metrics_options(void)
{
    CHECK_EQ_INT(parse("--metrics-port 9121 --metrics-addr 127.0.0.1"), 0);
    CHECK_EQ_INT(opt.metrics_port, 9121);
    CHECK(opt.metrics_addr != NULL && strcmp(opt.metrics_addr, "127.0.0.1") == 0);
    CHECK_EQ_INT(parse("-v 4"), 0);
    CHECK_EQ_INT(opt.metrics_port, 0);
    CHECK(opt.metrics_addr == NULL);
    CHECK_EQ_INT(opt.client_buffer_limit, 64 << 20);
    CHECK_EQ_INT(opt.buffer_limit, 1 << 30);
    CHECK_EQ_INT(opt.request_size_limit, 513 << 20);
    CHECK_EQ_INT(parse("--client-buffer-limit 8m --buffer-limit=2G --request-size-limit=1g"), 0);
    CHECK_EQ_INT(opt.client_buffer_limit, 8 << 20);
    CHECK_EQ_INT(opt.buffer_limit, 2LL << 30);
    CHECK_EQ_INT(opt.request_size_limit, 1 << 30);
    CHECK_EQ_INT(parse("--client-buffer-limit 65536"), 0);
    CHECK_EQ_INT(opt.client_buffer_limit, 65536);
    expect_fail("--client-buffer-limit 1k",
                "nutcracker: option --client-buffer-limit value 1k is not a byte count >= 64k");
    expect_fail("--request-size-limit 100",
                "nutcracker: option --request-size-limit value 100 is not a byte count >= 64k");
    expect_fail("--buffer-limit 12x",
                "nutcracker: option --buffer-limit value 12x is not a byte count >= 64k");
    expect_fail("--buffer-limit -5m",
                "nutcracker: option --buffer-limit value -5m is not a byte count >= 64k");
}

static void test_signal_option(void)
{
    CHECK_EQ_INT(parse("-v 4"), 0);
    CHECK(opt.signal_name == NULL);
    CHECK_EQ_INT(parse("-k reload -p /tmp/x.pid"), 0);
    CHECK(opt.signal_name != NULL && strcmp(opt.signal_name, "reload") == 0);
    CHECK_EQ_INT(parse("--signal=stop"), 0);
    CHECK(strcmp(opt.signal_name, "stop") == 0);
    CHECK_EQ_INT(parse("-k reopen"), 0);
    expect_fail("-k restart",
                "nutcracker: option -k value restart is not reload, reopen, stop or upgrade");
}

static void test_event_backend(void)
{
    CHECK_EQ_INT(parse("-v 4"), 0);
    CHECK(strcmp(opt.event_backend, "epoll") == 0);
    CHECK_EQ_INT(parse("--event-backend=io_uring"), 0);
    CHECK(strcmp(opt.event_backend, "io_uring") == 0);
    CHECK_EQ_INT(parse("--event-backend epoll"), 0);
    CHECK(strcmp(opt.event_backend, "epoll") == 0);
    expect_fail("--event-backend=select",
                "nutcracker: option --event-backend value select is not epoll or io_uring");
}

static void test_usage(void)
{
    char *u = usage_text();
    static const char want[] =
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
        "  -i, --stats-interval=N : set stats aggregation interval in msec (default: 30000 "
        "msec)\n"
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
        "\n";
    CHECK(strcmp(u, want) == 0);
    free(u);
}

int main(void)
{
    test_defaults();
    test_short();
    test_long();
    test_errors();
    test_signal_option();
    test_event_backend();
    test_usage();
    test_metrics_options();
    /* parsing again after everything above still starts from the defaults */
    test_defaults();
    free(out);
    UNIT_DONE("test_options");
}
