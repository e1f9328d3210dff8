"""Master/worker mode (SPEC 8): global: worker_processes starts that many
workers, each serving every pool on its own SO_REUSEPORT socket; the master
serves only the stats port, whose JSON is twemproxy's layout summed over the
workers; a dead worker is restarted, a dead master takes its workers with it;
SIGHUP reloads every worker in place, SIGTERM stops them all gracefully."""

import os
import signal
import socket
import subprocess
import time

import pytest

from conftest import HOST, NUTCRACKER_BIN, TWEMPROXY, Resp, free_port, wait_port
from liveness_util import Prom, http_get, pid_alive, read_file, start_binary, wait_until

pytestmark = pytest.mark.skipif(TWEMPROXY, reason="twemproxy 0.5 has no worker processes")


def conf_text(listen, servers, workers=2, extra="", pool_extra=""):
    return ("global:\n  worker_processes: %s\n  worker_shutdown_timeout: 5\n%s"
            "pools:\n  alpha:\n    listen: %s\n    redis: true\n%s    servers:\n%s"
            % (workers, extra, listen, pool_extra, "".join("      - %s:1\n" % s.addr for s in servers)))


def start(env, text, port, args=(), workers=2):
    """Start the master; return once `workers` workers each listen on port
    and the master's stats port answers."""
    conf = env.write_conf(text)
    px = start_binary(env, NUTCRACKER_BIN, conf, free_port(), args=["-v", "5"] + list(args),
                      listens={"alpha": ("tcp", port)})
    assert wait_port(port, px.proc), px.log_tail()
    wait_until(lambda: (lambda ws: len(ws) == workers and all(listeners(w, port) for w in ws))(
        children(px.proc.pid)), "%d workers listening on %d" % (workers, port), timeout=10)
    assert wait_port(px.stats_port, px.proc), px.log_tail()
    return px


def children(pid):
    out = []
    for tid in os.listdir("/proc/%d/task" % pid):
        with open("/proc/%d/task/%s/children" % (pid, tid)) as f:
            out += [int(x) for x in f.read().split()]
    return sorted(p for p in out if pid_alive(p))


def request_on_new_connections(port, n, prefix="k"):
    """n SETs, each on a fresh connection (the kernel spreads them over the workers)."""
    for i in range(n):
        c = Resp(port=port, timeout=10)
        assert c.call("SET", "%s%d" % (prefix, i), i) == b"OK"
        c.close()


def setters(server):
    """The backend's connections whose last command was a SET: the proxy's."""
    return [c for c in server.client().client_list() if c["cmd"] == "set"]


def listeners(pid, port):
    return [fd for fd in os.listdir("/proc/%d/fd" % pid) if _is_listener_of(pid, fd, port)]


def test_workers_serve_and_the_stats_port_sums_them(env):
    r = env.redis()
    port = free_port()
    px = start(env, conf_text("%s:%d" % (HOST, port), [r]), port)
    workers = children(px.proc.pid)
    assert len(workers) == 2, px.log_tail()
    request_on_new_connections(port, 60)
    # each worker has its own connection to the backend: both ran SETs (60
    # connects spread by the kernel over two workers: all but certain)
    assert len(setters(r)) == 2
    st = px.wait_stats(lambda s: s["alpha"][r.addr]["requests"] == 60, "the stats port to sum the workers' 60")
    assert st["alpha"][r.addr]["server_connections"] == 2
    assert st["total_connections"] >= 60
    # each worker has its own SO_REUSEPORT listener; the master serves no
    # client but holds those very sockets (so a restarted worker, or the new
    # binary's after an upgrade, serves the same queue: nothing queued is lost)
    mine = [inode(px.proc.pid, fd) for fd in listeners(px.proc.pid, port)]
    theirs = [[inode(w, fd) for fd in listeners(w, port)] for w in workers]
    assert all(len(t) == 1 for t in theirs), theirs
    assert sorted(mine) == sorted(t[0] for t in theirs) and len(set(mine)) == 2, (mine, theirs)
    assert listeners(px.proc.pid, px.stats_port) != []
    assert all(listeners(w, px.stats_port) == [] for w in workers)


@pytest.mark.parametrize("interval", ["30000", "0"])
def test_the_stats_port_counts_within_a_second_whatever_the_interval(env, interval):
    """The workers publish their counters at least every second and the master
    sums them for each reader of the stats port: with -i 30000 a request showed
    up to 30 s late, and with -i 0 the master spun in one turn of its loop, its
    stats port dead and SIGTERM not heard (h47)."""
    r = env.redis()
    port = free_port()
    px = start(env, conf_text("%s:%d" % (HOST, port), [r]), port, args=["-i", interval])
    for total in (20, 40):
        request_on_new_connections(port, 20)
        px.wait_stats(lambda s: s["alpha"][r.addr]["requests"] == total,
                      "the stats port to show %d requests" % total, timeout=3)
    px.proc.send_signal(signal.SIGTERM)
    assert px.proc.wait(10) == 0


def test_client_ids_are_unique_across_workers(env):
    """CLIENT ID (and HELLO's id) names one client of the proxy whichever worker
    accepted it: 60 connections open at once, spread by the kernel over two
    workers, get 60 different ids, from both workers (worker w numbers w+1,
    w+1+1024, ...)."""
    r = env.redis()
    port = free_port()
    px = start(env, conf_text("%s:%d" % (HOST, port), [r]), port)
    conns = [Resp(port=port, timeout=10) for _ in range(60)]
    ids = [c.call("CLIENT", "ID") for c in conns]
    hello = conns[0].call("HELLO", "2")
    for c in conns:
        c.close()
    assert all(isinstance(i, int) and i > 0 for i in ids), ids
    assert len(set(ids)) == 60, sorted(ids)
    assert {(i - 1) % 1024 for i in ids} == {0, 1}, sorted(ids)
    assert hello[hello.index(b"id") + 1] == ids[0]
    assert px.proc.poll() is None


def inode(pid, fd):
    return os.readlink("/proc/%d/fd/%s" % (pid, fd))


def _is_listener_of(pid, fd, port):
    """True when pid's fd is a TCP socket listening on port."""
    try:
        link = os.readlink("/proc/%d/fd/%s" % (pid, fd))
    except OSError:
        return False
    if not link.startswith("socket:["):
        return False
    inode = link[8:-1]
    for line in open("/proc/net/tcp").read().splitlines()[1:]:
        f = line.split()
        if f[9] == inode and f[3] == "0A" and f[1].endswith(":%04X" % port):
            return True
    return False


def test_a_killed_worker_is_restarted_and_counters_keep_going(env):
    r = env.redis()
    port = free_port()
    px = start(env, conf_text("%s:%d" % (HOST, port), [r]), port)
    before = children(px.proc.pid)
    request_on_new_connections(port, 20)
    px.wait_stats(lambda s: s["alpha"][r.addr]["requests"] == 20, "20 requests counted")
    os.kill(before[0], signal.SIGKILL)
    wait_until(lambda: (lambda c: len(c) == 2 and before[0] not in c and c)(children(px.proc.pid)),
               "the killed worker to be replaced", timeout=10)
    assert "killed by signal 9" in read_file(px.log)
    # the service goes on; the dead worker's counts are kept in the sums
    request_on_new_connections(port, 20, prefix="again")
    px.wait_stats(lambda s: s["alpha"][r.addr]["requests"] >= 40, "the dead worker's 20 requests kept in the sums")


def test_sigterm_stops_master_and_workers(env):
    r = env.redis()
    port = free_port()
    pidfile = os.path.join(env.tmp, "w.pid")
    px = start(env, conf_text("%s:%d" % (HOST, port), [r]), port, args=["-p", pidfile])
    workers = children(px.proc.pid)
    c = Resp(port=port, timeout=10)
    assert c.call("SET", "a", "1") == b"OK"
    px.proc.send_signal(signal.SIGTERM)
    assert px.proc.wait(10) == 0
    assert not any(pid_alive(w) for w in workers)
    assert not os.path.exists(pidfile)


def test_a_dead_master_takes_its_workers(env):
    r = env.redis()
    port = free_port()
    px = start(env, conf_text("%s:%d" % (HOST, port), [r]), port)
    workers = children(px.proc.pid)
    px.proc.kill()
    px.proc.wait(5)
    wait_until(lambda: not any(pid_alive(w) for w in workers), "the workers to follow their dead master")


def test_sighup_reloads_every_worker_in_place(env):
    r1, r2 = env.redis(), env.redis()
    port = free_port()
    listen = "%s:%d" % (HOST, port)
    px = start(env, conf_text(listen, [r1]), port)
    conns = [Resp(port=port, timeout=10) for _ in range(8)]  # spread over both workers
    for i, c in enumerate(conns):
        assert c.call("SET", "before%d" % i, i) == b"OK"
    assert px.reload(conf_text(listen, [r2]))  # config_generation moves once both workers applied it
    for i, c in enumerate(conns):  # the same connections, now routed to r2
        assert c.call("SET", "after%d" % i, i) == b"OK"
    assert all(r2.client().get("after%d" % i) == str(i).encode() for i in range(8))
    assert r1.client().get("after0") is None
    # an invalid file: the master says so, the workers are not touched
    assert not px.reload(conf_text(listen, [r1]).replace("redis: true", "redis: maybe"))
    assert "the running configuration stays" in read_file(px.log)
    assert conns[0].call("SET", "still", "r2") == b"OK"
    assert r2.client().get("still") == b"r2"


def test_a_taken_listen_address_fails_the_start(env):
    r = env.redis()
    taken = socket.socket()
    taken.bind((HOST, 0))
    taken.listen(1)
    try:
        port = taken.getsockname()[1]
        conf = env.write_conf(conf_text("%s:%d" % (HOST, port), [r]))
        px = start_binary(env, NUTCRACKER_BIN, conf, free_port(), listens={"alpha": ("tcp", port)})
        assert px.proc.wait(15) == 1
    finally:
        taken.close()
    # the master binds every worker's listener before it starts one: it says
    # which address, and starts no worker
    log = read_file(px.log)
    assert "failed to listen on '%s:%d'" % (HOST, port) in log, px.log_tail()
    assert "worker 0 started" not in log, px.log_tail()


def test_auto_starts_one_worker_per_cpu(env):
    r = env.redis()
    port = free_port()
    px = start(env, conf_text("%s:%d" % (HOST, port), [r], workers="auto"), port, workers=os.cpu_count())
    assert len(children(px.proc.pid)) == os.cpu_count()


def test_dash_k_signals_the_process_in_the_pid_file(env):
    """-k reload|reopen|stop -p FILE: reload applies the file, reopen starts a
    new log at the path after a rename, stop ends master and workers."""
    r1, r2 = env.redis(), env.redis()
    port = free_port()
    listen = "%s:%d" % (HOST, port)
    pidfile = os.path.join(env.tmp, "k.pid")
    px = start(env, conf_text(listen, [r1]), port, args=["-p", pidfile])
    workers = children(px.proc.pid)
    c = Resp(port=port, timeout=10)
    with open(px.conf, "w") as f:
        f.write(conf_text(listen, [r2]))
    rc, out = env.run_proxy(["-k", "reload", "-p", pidfile])
    assert rc == 0, out
    px.wait_reloaded(2)
    assert c.call("SET", "via", "k") == b"OK"
    assert r2.client().get("via") == b"k"
    os.rename(px.log, px.log + ".1")
    assert env.run_proxy(["-k", "reopen", "-p", pidfile])[0] == 0
    wait_until(lambda: os.path.exists(px.log), "the log reopened at its path")
    assert env.run_proxy(["-k", "stop", "-p", pidfile])[0] == 0
    assert px.proc.wait(10) == 0
    assert not any(pid_alive(w) for w in workers)
    rc, out = env.run_proxy(["-k", "stop", "-p", os.path.join(env.tmp, "none.pid")])
    assert rc == 1 and "none.pid" in out
    # a stale pid file naming another program's process: not signalled
    other = subprocess.Popen(["sleep", "30"])
    try:
        with open(pidfile, "w") as f:
            f.write("%d\n" % other.pid)
        rc, out = env.run_proxy(["-k", "stop", "-p", pidfile])
        assert rc == 1 and "is 'sleep'" in out and "stale pid file" in out, out
        time.sleep(0.2)
        assert other.poll() is None, "the other program was signalled"
    finally:
        other.kill()
        other.wait()


def test_metrics_port_of_the_master_sums_the_workers(env):
    import urllib.request
    r = env.redis()
    port, mport = free_port(), free_port()
    px = start(env, conf_text("%s:%d" % (HOST, port), [r]), port, args=["--metrics-port", str(mport)])
    request_on_new_connections(port, 30)
    line = 'nutcracker_server_requests_total{pool="alpha",server="%s"} 30' % r.addr

    def scrape():
        return urllib.request.urlopen("http://%s:%d/metrics" % (HOST, mport), timeout=5).read().decode()
    wait_until(lambda: line in scrape(), line)
    assert 'nutcracker_server_connections{pool="alpha",server="%s"} 2' % r.addr in scrape()

    # each worker: up, and how often the master started it again
    def workers():
        prom = Prom(scrape())
        assert prom.types["nutcracker_worker_up"] == "gauge"
        assert prom.types["nutcracker_worker_restarts_total"] == "counter"
        return {w: (prom.get("nutcracker_worker_up", worker=w),
                    prom.get("nutcracker_worker_restarts_total", worker=w)) for w in ("0", "1")}
    assert workers() == {"0": (1, 0), "1": (1, 0)}
    victim = children(px.proc.pid)[0]
    os.kill(victim, signal.SIGKILL)
    wait_until(lambda: sorted(workers().values()) == [(1, 0), (1, 1)],
               lambda: "one worker restarted once: %s" % workers())
    assert victim not in children(px.proc.pid)


def test_reload_outcome_in_stats_and_metrics(env):
    """config_generation moves by one per applied reload once every worker
    applied it; a file the master refuses counts once in reload_failures, sets
    last_reload to "failed" and leaves the generation; /metrics says the same."""
    r1, r2 = env.redis(), env.redis()
    port, mport = free_port(), free_port()
    listen = "%s:%d" % (HOST, port)
    px = start(env, conf_text(listen, [r1]), port, args=["--metrics-port", str(mport)])

    def figures():
        st = px.stats()
        prom = Prom(http_get(mport, "/metrics")[2])
        got = (st["config_generation"], st["reload_failures"], st["last_reload"])
        assert (prom.get("nutcracker_config_generation"), prom.get("nutcracker_reload_failures_total"),
                prom.get("nutcracker_last_reload_success")) == (got[0], got[1], got[2] != "failed"), got
        return got

    assert figures() == (1, 0, "none")
    assert px.reload(conf_text(listen, [r2]))
    assert figures() == (2, 0, "ok")
    conns = [Resp(port=port, timeout=10) for _ in range(8)]  # spread over both workers
    assert all(c.call("SET", "w%d" % i, i) == b"OK" for i, c in enumerate(conns))
    assert all(r2.client().get("w%d" % i) == str(i).encode() for i in range(8))
    assert not px.reload(conf_text(listen, [r1]).replace("redis: true", "redis: maybe"))
    assert figures() == (2, 1, "failed")
    assert px.reload(conf_text(listen, [r1]))
    assert figures() == (3, 1, "ok")
    assert all(c.call("SET", "again%d" % i, i) == b"OK" for i, c in enumerate(conns))
    assert all(r1.client().get("again%d" % i) == str(i).encode() for i in range(8))


def _reload_with_a_taken_address(env):
    """Two workers; then a reload adding pool 'beta' on an address another
    socket holds: every worker refuses it.  Returns (px, port, the socket)."""
    r = env.redis()
    port = free_port()
    listen = "%s:%d" % (HOST, port)
    px = start(env, conf_text(listen, [r]), port)
    taken = socket.socket()
    taken.bind((HOST, 0))
    taken.listen(1)
    busy = "%s:%d" % (HOST, taken.getsockname()[1])
    beta = "  beta:\n    listen: %s\n    redis: true\n    servers:\n      - %s:1\n" % (busy, r.addr)
    assert not px.reload(conf_text(listen, [r]) + beta)
    return px, port, taken


def test_a_listen_address_in_use_changes_nothing(env):
    px, port, taken = _reload_with_a_taken_address(env)
    try:
        st = px.stats()
        assert [k for k, v in st.items() if isinstance(v, dict)] == ["alpha"], "pool beta never came to be"
        assert (st["config_generation"], st["reload_failures"], st["last_reload"]) == (1, 1, "failed")
    finally:
        taken.close()


def test_a_unix_listen_that_cannot_be_bound_changes_nothing(env):
    """A reload moving pool alpha to a unix socket in a directory that does not
    exist: a unix path is worker 0's alone to bind, so the other worker would apply
    the file worker 0 refused, retire its pool and close its clients. The master
    refuses it first: every client keeps being served on the old address, the
    generation stays, the log names the path."""
    r = env.redis()
    port = free_port()
    listen = "%s:%d" % (HOST, port)
    px = start(env, conf_text(listen, [r]), port)
    conns = [Resp(port=port, timeout=10) for _ in range(12)]
    assert all(c.call("PING") == b"PONG" for c in conns)
    bad = "/nonexistent-%d/alpha.sock" % port
    assert not px.reload(conf_text(bad, [r]))
    assert "cannot listen on '%s' for pool 'alpha'" % bad in px.log_tail()
    st = px.stats()
    assert (st["config_generation"], st["reload_failures"], st["last_reload"]) == (1, 1, "failed")
    assert all(c.call("SET", "unix%d" % i, i) == b"OK" for i, c in enumerate(conns))
    request_on_new_connections(port, 8, prefix="after-unix")
    for c in conns:
        c.close()


def test_a_worker_dying_after_a_refused_reload_is_replaced(env):
    px, port, taken = _reload_with_a_taken_address(env)
    try:
        before = children(px.proc.pid)
        os.kill(before[0], signal.SIGKILL)
        wait_until(lambda: (lambda ws: len(ws) == 2 and before[0] not in ws and all(listeners(w, port) for w in ws))(
            children(px.proc.pid)), "a new worker listening in place of the killed one", timeout=2)
    finally:
        taken.close()


def _served_by(pid, port, client_port):
    """Whether pid holds the proxy's end of the connection from client_port."""
    inodes = set()
    for line in open("/proc/net/tcp").read().splitlines()[1:]:
        f = line.split()
        if f[1].endswith(":%04X" % port) and f[2].endswith(":%04X" % client_port):
            inodes.add("socket:[%s]" % f[9])
    for fd in os.listdir("/proc/%d/fd" % pid):
        try:
            if os.readlink("/proc/%d/fd/%s" % (pid, fd)) in inodes:
                return True
        except OSError:
            pass
    return False


def test_a_worker_that_keeps_dying_leaves_new_connections_to_the_others(env):
    """The master keeps a dead worker's sockets for the worker it starts again,
    so its queue is served, not reset; but a worker that keeps dying waits up to
    10 s for its restart, and the kernel went on queueing new connections there:
    about one in N hung that long. Once its restart is delayed, its sockets
    leave their SO_REUSEPORT groups and the other workers take every new
    connection; the restarted worker's sockets join again."""
    r = env.redis()
    port = free_port()
    px = start(env, conf_text("%s:%d" % (HOST, port), [r]), port)
    stable = children(px.proc.pid)[1]
    for _ in range(4):  # back-offs of 100, 200, 400, 800 ms
        victim = next(p for p in children(px.proc.pid) if p != stable)
        os.kill(victim, signal.SIGKILL)
        wait_until(lambda: (lambda c: len(c) == 2 and victim not in c)(children(px.proc.pid)),
                   "the killed worker to be replaced", timeout=10)
    victim = next(p for p in children(px.proc.pid) if p != stable)
    os.kill(victim, signal.SIGKILL)  # restarted in 1600 ms
    wait_until(lambda: children(px.proc.pid) == [stable], "the worker gone")
    # (the earlier restarts paused them too: this one's line, not theirs; a
    # connection that came before it may have been queued on the dead one's
    # socket, and the pause resets those)
    wait_until(lambda: "restarts in 1600 ms; the other workers take its new TCP connections meanwhile"
               in read_file(px.log), "the master to pause its sockets")
    for i in range(20):
        c = Resp(port=port, timeout=1)  # (its 1.6 s wait would time this out)
        assert c.call("SET", "nw%d" % i, "1") == b"OK", i
        c.close()
    wait_until(lambda: len(children(px.proc.pid)) == 2, "the worker restarted", timeout=10)
    new = next(p for p in children(px.proc.pid) if p != stable)
    wait_until(lambda: listeners(new, port), "the restarted worker listening")
    served_by_new = 0
    for i in range(40):  # the kernel spreads new connections over both again
        c = Resp(port=port, timeout=5)
        assert c.call("SET", "again%d" % i, "1") == b"OK"
        served_by_new += _served_by(new, port, c.s.getsockname()[1])
        c.close()
    assert served_by_new > 0
