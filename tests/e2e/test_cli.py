"""Command line (SPEC section 1)."""

import os
import re
import socket

import pytest

from conftest import HOST, TWEMPROXY, Resp, free_port, redis_pool, wait_port, wait_until, yaml_conf
from liveness_util import kill_pid

USAGE_FIRST = "Usage: nutcracker [-?hVdDt]"
LONG_OPTIONS = ["--help", "--version", "--test-conf", "--daemonize", "--describe-stats", "--verbose=N",
                "--output=S", "--conf-file=S", "--stats-port=N", "--stats-addr=S", "--stats-interval=N",
                "--pid-file=S", "--mbuf-size=N"]


def ok_conf(env, port=None):
    return env.write_conf({"alpha": {"listen": "%s:%d" % (HOST, port or free_port()), "redis": True,
                                     "servers": ["%s:%d:1" % (HOST, free_port())]}})


def bad_conf(env):
    return env.write_conf("alpha:\n  listen: %s:%d\n  redis: true\n  nosuchkey: 1\n  servers:\n   - %s:%d:1\n"
                          % (HOST, free_port(), HOST, free_port()))


def test_version_first_line(env):
    rc, out = env.run_proxy(["-V"], timeout=5)
    assert rc == 0
    assert out.splitlines()[0] == "This is nutcracker-0.5.0"


def test_version_long_option(env):
    rc, out = env.run_proxy(["--version"], timeout=5)
    assert rc == 0
    assert out.splitlines()[0] == "This is nutcracker-0.5.0"


@pytest.mark.parametrize("flag", ["-h", "--help"])
def test_help_prints_usage(env, flag):
    rc, out = env.run_proxy([flag], timeout=5)
    assert rc == 0
    assert USAGE_FIRST in out
    for opt in LONG_OPTIONS:
        assert opt in out, opt


def test_describe_stats(env):
    rc, out = env.run_proxy(["-D"], timeout=5)
    assert rc == 0
    for name in ["client_eof", "client_err", "client_connections", "server_ejects", "forward_error",
                 "fragments", "server_eof", "server_err", "server_timedout", "server_connections",
                 "server_ejected_at", "requests", "request_bytes", "responses", "response_bytes",
                 "in_queue", "in_queue_bytes", "out_queue", "out_queue_bytes"]:
        assert re.search(r"^\s+%s\s" % name, out, re.M), name


def test_test_conf_ok(env):
    conf = ok_conf(env)
    rc, out = env.run_proxy(["-t", "-c", conf], timeout=5)
    assert rc == 0
    assert "nutcracker: configuration file '%s' syntax is ok" % conf in out


def test_test_conf_long_option(env):
    conf = ok_conf(env)
    rc, out = env.run_proxy(["--test-conf", "--conf-file=%s" % conf], timeout=5)
    assert rc == 0
    assert "nutcracker: configuration file '%s' syntax is ok" % conf in out


def test_test_conf_invalid(env):
    conf = bad_conf(env)
    rc, out = env.run_proxy(["-t", "-c", conf], timeout=5)
    assert rc == 1
    assert "nutcracker: configuration file '%s' syntax is invalid" % conf in out


def test_test_conf_missing_file(env):
    conf = os.path.join(env.tmp, "does-not-exist.yml")
    rc, out = env.run_proxy(["-t", "-c", conf], timeout=5)
    assert rc == 1
    assert "nutcracker: configuration file '%s' syntax is invalid" % conf in out


def test_test_conf_names_why_a_file_cannot_be_read(env):
    """A directory given as the file: the read's own reason, not "Input/output
    error" (h47)."""
    rc, out = env.run_proxy(["-t", "-c", env.tmp], timeout=5)
    assert rc == 1
    if not TWEMPROXY:
        assert "%s:1: conf: cannot read: Is a directory" % env.tmp in out, out
    assert "nutcracker: configuration file '%s' syntax is invalid" % env.tmp in out


def test_test_conf_lists_every_problem_with_file_and_line(env):
    """Ours: -t prints each problem as file:line: key: what is wrong."""
    conf = env.write_conf(
        "alpha:\n"                                   # 1
        "  listen: %s:%d\n"                          # 2
        "  redis: true\n"                            # 3
        "  nosuchkey: 1\n"                           # 4
        "  hash: nosuchhash\n"                       # 5
        "  servers:\n"                               # 6
        "   - %s:%d:1\n"                             # 7
        "beta:\n"                                    # 8
        "  listen: %s:%d\n"                          # 9
        "  server_connections: 0\n"                  # 10
        "  servers:\n"                               # 11
        "   - %s:%d:1\n"                             # 12
        % (HOST, free_port(), HOST, free_port(), HOST, free_port(), HOST, free_port()))
    rc, out = env.run_proxy(["-t", "-c", conf], timeout=5)
    assert rc == 1
    assert "syntax is invalid" in out
    for line, key in [(4, "nosuchkey"), (5, "hash"), (10, "server_connections")]:
        pat = r"%s:%d: %s: \S" % (re.escape(conf), line, re.escape(key))
        assert re.search(pat, out), "no '%s:%d: %s: ...' line in:\n%s" % (conf, line, key, out)


@pytest.mark.parametrize("args,message", [
    (["-s", "70000"], "nutcracker: option -s value 70000 is not a valid port"),
    (["--stats-port=70000"], "nutcracker: option -s value 70000 is not a valid port"),
    (["-s", "abc"], "nutcracker: option -s requires a number"),
    (["-i", "abc"], "nutcracker: option -i requires a number"),
    (["-v", "abc"], "nutcracker: option -v requires a number"),
    (["-m", "100"], "nutcracker: mbuf chunk size must be between 512 and 16777216 bytes"),
    (["-m", "99999999"], "nutcracker: mbuf chunk size must be between 512 and 16777216 bytes"),
    (["-Z"], "nutcracker: invalid option -- 'Z'"),
])
def test_bad_option_value(env, args, message):
    conf = ok_conf(env)
    rc, out = env.run_proxy(args + ["-c", conf], timeout=5)
    assert rc == 1
    assert out.splitlines()[0] == message
    assert USAGE_FIRST in out


@pytest.mark.parametrize("trouble", ["pid file", "listen address", "none", "none with workers"])
def test_daemonize_exits_once_the_daemon_serves_or_failed(env, tmp_path, trouble):
    """-d: the launching process exits 0 once the daemon serves (its listeners
    answer at once), and 1 when the daemon stopped before: with a pid file that
    cannot be written or a listen address in use it exited 0, as twemproxy does,
    and the error was in the log alone (h47)."""
    if TWEMPROXY:
        pytest.skip("twemproxy exits 0 at once")
    r = env.redis()
    port = free_port()
    taken = None
    if trouble == "listen address":
        taken = socket.socket()
        taken.bind((HOST, port))
        taken.listen(1)
    glob = {"worker_processes": 2} if trouble == "none with workers" else None
    conf = env.write_conf(yaml_conf({"alpha": redis_pool([r], listen="%s:%d" % (HOST, port))}, glob))
    pidfile = str(tmp_path / ("nope" if trouble == "pid file" else "") / "nc.pid")
    log = str(tmp_path / "nc.log")
    rc, out = env.run_proxy(["-d", "-c", conf, "-p", pidfile, "-o", log, "-s", str(free_port()), "-a", HOST],
                            timeout=10)
    try:
        if trouble.startswith("none"):
            assert rc == 0, out
            c = Resp(port=port, timeout=5)  # no waiting: it serves already
            assert c.call("SET", "k", "v") == b"OK"
            c.close()
        else:
            assert rc == 1, out
            assert "the daemon stopped before it served" in out, out
            why = "opening pid file" if trouble == "pid file" else "Address already in use"
            assert why in open(log).read()
    finally:
        if taken is not None:
            taken.close()
        if os.path.exists(pidfile):
            kill_pid(int(open(pidfile).read()))


def test_daemonize_writes_pid_of_running_daemon(env, tmp_path):
    r = env.redis()
    port = free_port()
    conf = env.write_conf({"alpha": redis_pool([r], listen="%s:%d" % (HOST, port))})
    pidfile = str(tmp_path / "nc.pid")
    log = str(tmp_path / "nc.log")
    rc, out = env.run_proxy(["-d", "-c", conf, "-p", pidfile, "-o", log, "-s", str(free_port()), "-a", HOST],
                            timeout=10)
    assert rc == 0, out
    pid = None
    try:
        pid = wait_until(lambda: int(open(pidfile).read().strip()), "a pid in the pid file")
        os.kill(pid, 0)  # the daemon is running
        assert wait_port(port), "daemon does not listen"
        c = Resp(port=port)
        assert c.call("PING") == b"PONG"
        c.close()
    finally:
        if pid:
            kill_pid(pid)
