"""Operations (SPEC 1, 7, 8): log format and level, signals (SIGTTIN/SIGTTOU,
SIGHUP/SIGUSR1 reopen, SIGTERM/SIGINT graceful exit), pid file, -d, and a
second instance refused."""

import datetime
import os
import re
import signal
import subprocess
import threading
import time

import pytest

from conftest import HOST, NUTCRACKER_BIN, Resp, RespError, encode_command, free_port, redis_pool, wait_port
from liveness_util import (LOG_LINE, forwarded, kill_pid, log_lines, pid_alive, pid_is_nutcracker, read_file,
                           stalled, wait_until)
from hostile_util import raw_connect


def _lines_matching(path, needle):
    return [l for l in log_lines(path) if needle in l]


def _wait_line(path, needle, timeout=3.0):
    return wait_until(lambda: _lines_matching(path, needle), "%r in %s" % (needle, path), timeout)


def test_log_file_line_format(env):
    """-o file -v 11: every line is `[YYYY-MM-DD HH:MM:SS.mmm] file.c:NN message`
    with the current local time; nothing goes to stderr."""
    s = env.redis()
    dead = free_port()
    px = env.proxy({"alpha": redis_pool([s]), "beta": redis_pool(["%s:%d:1" % (HOST, dead)])}, verbose=11)
    c = px.resp()
    assert c.call("SET", "log:k", "v") == b"OK"
    assert c.call("GET", "log:k") == b"v"
    assert isinstance(px.resp("beta").call("GET", "log:k"), RespError)
    c.close()
    os.kill(px.proc.pid, signal.SIGTTOU)
    assert _wait_line(px.log, "down log level to 10"), px.log_tail()
    px.stop()
    lines = log_lines(px.log)
    assert len(lines) >= 3, lines
    bad = [l for l in lines if not LOG_LINE.match(l)]
    assert not bad, bad[:10]
    now = datetime.datetime.now()
    for l in (lines[0], lines[-1]):
        ts = datetime.datetime.strptime(LOG_LINE.match(l).group(1), "%Y-%m-%d %H:%M:%S")
        assert abs((now - ts).total_seconds()) < 60, l
    assert read_file(px.out) == "", read_file(px.out)


def test_sigttin_sigttou_change_log_level(env):
    """SIGTTIN raises the level ("up log level to N"), SIGTTOU lowers it, and
    the new level takes effect: a refused backend connect is not logged at
    -v 2 and is logged after three SIGTTINs (level 5)."""
    dead = free_port()
    px = env.proxy({"alpha": redis_pool(["%s:%d:1" % (HOST, dead)])}, verbose=2)
    c = px.resp()
    # the refused connect is logged (or not) before the error reply is sent: no wait
    assert isinstance(c.call("GET", "lv:k"), RespError)
    assert _lines_matching(px.log, str(dead)) == [], px.log_tail()
    for level in (3, 4, 5):
        os.kill(px.proc.pid, signal.SIGTTIN)
        assert _wait_line(px.log, "up log level to %d" % level), px.log_tail()
    assert isinstance(c.call("GET", "lv:k"), RespError)
    assert _wait_line(px.log, str(dead)), "refused connect not logged at level 5\n" + px.log_tail()
    os.kill(px.proc.pid, signal.SIGTTOU)
    assert _wait_line(px.log, "down log level to 4"), px.log_tail()
    lines = [l for l in log_lines(px.log) if "log level to" in l]
    assert [l.split("log level to ")[1] for l in lines] == ["3", "4", "5", "4"], lines
    assert all(LOG_LINE.match(l) for l in lines), lines


@pytest.mark.parametrize("sig", [signal.SIGHUP, signal.SIGUSR1], ids=["SIGHUP", "SIGUSR1"])
def test_signal_reopens_log_file(env, sig):
    """Rename the log (as logrotate does): lines keep going to the renamed
    file until the signal; after it a new file at the original path gets them."""
    s = env.redis()
    px = env.proxy({"alpha": redis_pool([s])}, verbose=5)
    wait_until(lambda: os.path.exists(px.log), "the log file")
    rotated = px.log + ".1"
    os.rename(px.log, rotated)
    os.kill(px.proc.pid, signal.SIGTTIN)
    assert _wait_line(rotated, "up log level to 6"), read_file(rotated)
    assert not os.path.exists(px.log)
    os.kill(px.proc.pid, sig)
    wait_until(lambda: os.path.exists(px.log), "the log file reopened at its path")
    os.kill(px.proc.pid, signal.SIGTTOU)
    assert _wait_line(px.log, "down log level to 5"), read_file(px.log)
    assert _lines_matching(rotated, "down log level") == []
    assert all(LOG_LINE.match(l) for l in log_lines(px.log)), log_lines(px.log)
    assert px.resp().call("PING") == b"PONG"


@pytest.mark.parametrize("sig,interval", [(signal.SIGTERM, "100"), (signal.SIGINT, "100"),
                                          (signal.SIGTERM, "30000")],
                         ids=["SIGTERM", "SIGINT", "SIGTERM-stats-interval-30s"])
def test_shutdown_signal_exits_0_and_removes_pid_file(env, sig, interval):
    """SIGTERM / SIGINT with no request in flight: exit 0 within 5 s (whatever
    the stats interval -i, which must not delay it) and the pid file is gone."""
    s = env.redis()
    pidfile = os.path.join(env.tmp, "nc.pid")
    px = env.proxy({"alpha": redis_pool([s])}, extra_args=["-p", pidfile, "-i", interval])
    wait_until(lambda: read_file(pidfile), "the pid file")
    assert read_file(pidfile).strip() == str(px.proc.pid)
    c = px.resp()
    assert c.call("SET", "x", "1") == b"OK"  # answered: nothing in flight from here on
    c.close()
    os.kill(px.proc.pid, sig)
    try:
        rc = px.proc.wait(5)
    except subprocess.TimeoutExpired:
        pytest.fail("still running 5 s after %s\n%s" % (sig.name, px.log_tail()))
    assert rc == 0
    assert not os.path.exists(pidfile)


def test_sigterm_answers_in_flight_requests(env):
    """SIGTERM while a pipelined batch waits on a stalled backend (its first
    requests sent on, the rest read and held back by the client's window of
    requests in flight): the proxy stays up until the backend answers, every
    request the client sent is answered, in order, then it exits 0 and removes
    its pid file."""
    s = env.redis()
    pidfile = os.path.join(env.tmp, "nc.pid")
    px = env.proxy({"alpha": redis_pool([s])}, extra_args=["-p", pidfile])
    c = px.resp(timeout=15)
    assert c.call("SET", "gr:0", "x") == b"OK"
    n = 400
    cmds = []
    for i in range(n // 2):
        cmds += [("SET", "gr:%d" % i, "v%d" % i), ("GET", "gr:%d" % i)]
    with stalled(s):
        c.send(b"".join(encode_command(*cmd) for cmd in cmds))
        forwarded(px, "alpha", s, 16)
        time.sleep(0.2)  # (the rest read into the proxy, beside the window)
        os.kill(px.proc.pid, signal.SIGTERM)
        # SIGTERM handled: the listener is closed; the process must stay for the replies
        wait_until(lambda: not wait_port(px.port(), timeout=0), "the proxy to stop accepting on SIGTERM")
        assert px.proc.poll() is None, "exited with requests in flight"
    # every reply arrives after SIGCONT: an exit in between would cut them off
    replies = [c.read_reply() for _ in cmds]
    want = []
    for i in range(n // 2):
        want += [b"OK", b"v%d" % i]
    assert replies == want
    try:
        rc = px.proc.wait(10)
    except subprocess.TimeoutExpired:
        pytest.fail("still running 10 s after SIGTERM with its requests answered")
    assert rc == 0
    assert not os.path.exists(pidfile)


def test_sigterm_delivers_replies_to_a_client_that_keeps_sending(env):
    """A client pipelines INCRs and GETs of a 100 KB value (more replies than the
    socket buffers hold), reads nothing yet, and keeps sending a PING every
    20 ms; SIGTERM comes. The proxy stops reading it, answers what it read and
    must keep the socket until the replies are delivered: closing it with the
    PINGs unread made the kernel reset the connection and destroy the replies
    still in the socket (hundreds of INCRs ran whose replies never came). The
    client reads later: every reply of what ran, then the end of the stream."""
    s = env.redis()
    assert s.client().set("big", b"x" * 100000) is True
    px = env.proxy({"alpha": redis_pool([s])})
    sock = raw_connect(px.port(), timeout=30)
    n = 2000
    cmds = [("GET", "big") if i % 20 == 19 else ("INCR", "ctr") for i in range(n)]
    sock.sendall(b"".join(encode_command(*cmd) for cmd in cmds))
    stop = threading.Event()

    def pings():
        while not stop.is_set():
            try:
                sock.sendall(encode_command("PING"))
            except OSError:
                return
            time.sleep(0.02)
    t = threading.Thread(target=pings, daemon=True)
    t.start()
    wait_until(lambda: int(s.client().get("ctr") or 0) > 0, "the pipeline to reach the server")
    os.kill(px.proc.pid, signal.SIGTERM)
    time.sleep(1.5)  # the client reads late
    got = b""
    try:
        while True:
            b = sock.recv(1 << 20)
            if not b:
                break
            got += b
    except ConnectionResetError:
        pytest.fail("reset after %d bytes" % len(got))
    finally:
        stop.set()
        t.join(5)
        sock.close()
    ran = int(s.client().get("ctr"))
    incrs = len(re.findall(rb"^:\d+\r$", got, re.M))
    assert incrs == ran, "INCRs that ran: %d, replies delivered: %d" % (ran, incrs)
    assert px.proc.wait(15) == 0


# --------------------------------------------------------------------------- daemon, pid file, second instance

def _conf(env, s, listen_port):
    return env.write_conf({"alpha": redis_pool([s], listen="%s:%d" % (HOST, listen_port))})


@pytest.fixture
def daemon(env):
    """A proxy started with -d: launcher exit code and output, the daemon's pid
    (from the pid file), listen port, log and pid file.  The daemon is not our
    child: it is stopped by its pid at the end."""
    s = env.redis()
    port, sport = free_port(), free_port()
    conf = _conf(env, s, port)
    pidfile = os.path.join(env.tmp, "daemon.pid")
    log = os.path.join(env.tmp, "daemon.log")
    launcher, out = env.spawn([NUTCRACKER_BIN, "-d", "-c", conf, "-s", str(sport), "-a", HOST, "-p", pidfile,
                               "-o", log, "-v", "5"], "daemon-launcher")
    d = {"launcher": launcher, "out": out, "pidfile": pidfile, "log": log, "port": port, "pid": None}
    try:
        rc = launcher.wait(5)
    except subprocess.TimeoutExpired:
        rc = None
    d["rc"] = rc
    try:
        d["pid"] = int(wait_until(lambda: int(read_file(pidfile)), "a pid in the pid file"))
    except AssertionError:
        pass  # the tests report it
    yield d
    pid = d["pid"]
    if pid is not None and pid_is_nutcracker(pid):
        kill_pid(pid)


def test_daemonize(daemon):
    """-d: the launching process exits 0 once the daemon serves; the daemon (pid in the pid
    file, no newline) keeps serving with its stdio on /dev/null."""
    assert daemon["rc"] == 0, "launcher exit %r: %s" % (daemon["rc"], read_file(daemon["out"]))
    content = read_file(daemon["pidfile"])
    assert content is not None, "no pid file\n" + (read_file(daemon["log"]) or "")
    pid = daemon["pid"]
    assert content == str(pid)
    assert pid != daemon["launcher"].pid and pid_alive(pid)
    assert pid_is_nutcracker(pid)
    assert wait_port(daemon["port"]), read_file(daemon["log"])
    c = Resp(port=daemon["port"])
    assert c.call("SET", "d:k", "v") == b"OK"
    assert c.call("GET", "d:k") == b"v"
    c.close()
    for fd in (0, 1, 2):
        assert os.readlink("/proc/%d/fd/%d" % (pid, fd)) == "/dev/null", fd


def test_daemon_signals(daemon):
    """A daemon handles the signals as the foreground process does: SIGHUP
    reopens its log file, SIGTERM stops it within 5 s and removes the pid file."""
    pid, log = daemon["pid"], daemon["log"]
    assert pid is not None and pid_alive(pid), read_file(daemon["log"])
    assert wait_port(daemon["port"])
    os.rename(log, log + ".1")
    os.kill(pid, signal.SIGHUP)
    wait_until(lambda: os.path.exists(log), "SIGHUP to reopen the log at its path")
    os.kill(pid, signal.SIGTTIN)
    wait_until(lambda: _lines_matching(log, "up log level to 6") or _lines_matching(log + ".1", "up log level to 6"),
               "the SIGTTIN line in the log")
    assert _lines_matching(log, "up log level to 6"), "SIGHUP did not reopen the log\n" + (read_file(log + ".1") or "")
    os.kill(pid, signal.SIGTERM)
    wait_until(lambda: not pid_alive(pid), "the daemon to exit on SIGTERM")
    assert not os.path.exists(daemon["pidfile"]), "pid file left behind"


def test_second_instance_same_pid_file_refused(env):
    """A second instance given the pid file of a running one exits != 0 with a
    message naming the pid file; the first keeps running and keeps its file."""
    s = env.redis()
    pidfile = os.path.join(env.tmp, "one.pid")
    first = env.proxy({"alpha": redis_pool([s])}, extra_args=["-p", pidfile])
    wait_until(lambda: read_file(pidfile), "the pid file")
    conf = _conf(env, s, free_port())
    r = subprocess.run([NUTCRACKER_BIN, "-c", conf, "-s", str(free_port()), "-a", HOST, "-p", pidfile],
                       stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=10,
                       cwd=env.tmp)
    msg = r.stdout.decode("utf-8", "replace")
    assert r.returncode != 0, msg
    assert pidfile in msg, msg
    assert first.alive()
    assert read_file(pidfile).strip() == str(first.proc.pid)
    assert first.resp().call("PING") == b"PONG"


def _state(pid):
    with open("/proc/%d/stat" % pid) as f:
        return f.read().rsplit(")", 1)[1].split()[0]


@pytest.mark.parametrize("stale", ["zombie", "other_process"])
def test_a_stale_pid_file_does_not_stop_a_start(env, stale):
    """A pid file left by a proxy killed -9 names either a proxy its parent has
    not reaped yet (a zombie: a container's init may take a second to reap a
    daemon), or, once reaped, any process given the number since. Neither is a
    running proxy: the start goes on and the pid file gets its pid, as
    twemproxy's restart scripts expect (a refusal here stopped them)."""
    s = env.redis()
    pidfile = os.path.join(env.tmp, "stale.pid")
    if stale == "zombie":
        old = subprocess.Popen([NUTCRACKER_BIN, "-c", _conf(env, s, free_port()), "-s", str(free_port()),
                                "-a", HOST], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL, cwd=env.tmp)
        os.kill(old.pid, signal.SIGKILL)
        wait_until(lambda: _state(old.pid) == "Z", "the killed proxy to be a zombie")
    else:
        old = subprocess.Popen(["sleep", "30"])
    try:
        with open(pidfile, "w") as f:
            f.write("%d\n" % old.pid)
        px = env.proxy({"alpha": redis_pool([s])}, extra_args=["-p", pidfile])
        wait_until(lambda: read_file(pidfile).strip() == str(px.proc.pid), "the new pid in the pid file")
        assert px.resp().call("PING") == b"PONG"
    finally:
        old.kill()
        old.wait()


def test_second_instance_same_listen_address_refused(env):
    """A second instance on a listen address in use exits != 0 and says which address."""
    s = env.redis()
    first = env.proxy({"alpha": redis_pool([s])})
    port = first.port()
    conf = _conf(env, s, port)
    r = subprocess.run([NUTCRACKER_BIN, "-c", conf, "-s", str(free_port()), "-a", HOST],
                       stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=10,
                       cwd=env.tmp)
    msg = r.stdout.decode("utf-8", "replace")
    assert r.returncode != 0, msg
    assert "%s:%d" % (HOST, port) in msg, msg
    assert first.alive()
    assert first.resp().call("PING") == b"PONG"
