"""Binary upgrade (-k upgrade / SIGUSR2) under continuous load: the binary file
is replaced by a rebuilt copy (a new file at the same path, as dpkg does), the
running proxy starts it with its listening sockets handed over, and the test
checks that no connect was refused, no request went unanswered or was lost
(each INCR client's counter equals the INCRs it saw succeed), the new process
runs the new file, the pid file names it, and the stats counters went on.
Also: a new binary that cannot start leaves the old one serving."""

import os
import re
import shutil
import signal
import socket
import threading
import time

import pytest

from conftest import (EVENT_BACKEND, HOST, NUTCRACKER_BIN, TWEMPROXY, Closed, Resp,
                      encode_command, free_port, mc_pool, redis_pool, stats_json, wait_until,
                      yaml_conf)
from test_stats_metrics import http_get

pytestmark = pytest.mark.skipif(TWEMPROXY, reason="twemproxy has no binary upgrade")

INCR_CLIENTS = 6
CONNECT_CLIENTS = 2
ROUNDS = int(os.environ.get("NC_UPGRADE_ROUNDS", "2"))  # upgrades in a row under the same load


def read_pid(path):
    try:
        with open(path) as f:
            return int(f.read().strip() or 0)
    except (OSError, ValueError):
        return 0


def alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie of ours is gone for this purpose
        with open("/proc/%d/stat" % pid) as f:
            return f.read().split(") ")[1][0] != "Z"
    except OSError:
        return False


class Upgradable:
    """A proxy started from its own copy of the binary, so the file can be replaced,
    on the event backend of the run (make e2e-uring) unless one is given."""

    def __init__(self, env, pools, global_=None, unix=False, backend=None, interval_ms=100):
        self.env = env
        bindir = os.path.join(env.tmp, "sbin")
        os.makedirs(bindir, exist_ok=True)
        self.bin = os.path.join(bindir, "nutcracker")
        shutil.copy(NUTCRACKER_BIN, self.bin)
        self.pidfile = os.path.join(env.tmp, "nutcracker.pid")
        self.log = os.path.join(env.tmp, "nutcracker-upgrade.log")
        self.port = free_port()
        self.mport = free_port()
        self.sport = free_port()
        # a unix socket's path: its listener is handed over like a TCP one
        self.path = os.path.join(env.tmp, "upgrade.sock") if unix else None
        listen = "%s 0666" % self.path if unix else "%s:%d" % (HOST, self.port)
        pools = {k: dict(v, listen=listen) for k, v in pools.items()}
        self.conf = env.write_conf(yaml_conf(pools, global_))
        argv = [self.bin, "-c", self.conf, "-s", str(self.sport), "-a", HOST, "-i", str(interval_ms),
                "-p", self.pidfile, "-o", self.log, "-v", "6", "--metrics-port", str(self.mport)]
        backend = backend or EVENT_BACKEND
        if backend:
            argv.insert(1, "--event-backend=" + backend)
        self.proc, self.out = env.spawn(argv, "nutcracker")
        env.proxy_outputs.append(self.out)
        self.pids = [self.proc.pid]
        wait_until(lambda: read_pid(self.pidfile) == self.proc.pid and self._serves(),
                   lambda: "the proxy to serve; log: " + self.log_tail(), timeout=10)

    def _serves(self):
        try:
            self.connect(timeout=1).close()
            return True
        except OSError:
            return False

    def connect(self, timeout=10):
        if self.path is None:
            return socket.create_connection((HOST, self.port), timeout=timeout)
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(timeout)
        s.connect(self.path)
        return s

    def resp(self):
        return Resp(port=self.port, path=self.path, timeout=10)

    def upgrade_and_wait(self):
        """Upgrade to a new copy of the binary; returns once the old process
        is gone and the new one is in the pid file."""
        old_pid = read_pid(self.pidfile)
        self.replace_binary()
        self.upgrade()
        self.wait_new(old_pid)
        self.pids.append(read_pid(self.pidfile))
        self.wait_gone(old_pid)
        return old_pid

    def wait_new(self, old_pid, timeout=20):
        """Until the pid file names a process other than old_pid."""
        wait_until(lambda: read_pid(self.pidfile) not in (0, old_pid),
                   lambda: "a new pid in the pid file; log: " + self.log_tail(), timeout=timeout)

    def wait_gone(self, old_pid, timeout=20):
        wait_until(lambda: not alive(old_pid),
                   lambda: "the old process %d to exit; log: %s" % (old_pid, self.log_tail()), timeout=timeout)

    def log_tail(self):
        try:
            with open(self.log) as f:
                return "".join(f.readlines()[-40:])
        except OSError:
            return "(no log)"

    def replace_binary(self, content=None):
        """A new file at the same path (a new inode), like a package upgrade."""
        tmp = self.bin + ".dpkg-new"
        if content is None:
            shutil.copy(NUTCRACKER_BIN, tmp)
        else:
            with open(tmp, "w") as f:
                f.write(content)
            os.chmod(tmp, 0o755)
        os.rename(tmp, self.bin)
        return os.stat(self.bin).st_ino

    def upgrade(self):
        r = self.env.run_proxy(["-k", "upgrade", "-p", self.pidfile])
        assert r[0] == 0, r

    def status(self):
        import json
        code, _, body = http_get(self.mport, "/status.json")
        assert code == 200, body
        return json.loads(body)

    def stats(self):
        return stats_json(self.sport)

    def stop_all(self):
        for pid in set(self.pids + [read_pid(self.pidfile)]):
            if pid and alive(pid):
                os.kill(pid, signal.SIGTERM)
        try:
            wait_until(lambda: not any(p and alive(p) for p in self.pids + [read_pid(self.pidfile)]),
                       "every proxy process to stop on SIGTERM", timeout=15)
        finally:  # nothing is left running, and a proxy that would not stop fails the test
            for pid in set(self.pids + [read_pid(self.pidfile)]):
                if pid and alive(pid):
                    os.kill(pid, signal.SIGKILL)


class Load:
    """INCR clients on pooled redis-py connections (as applications use them) and
    clients that connect anew for each request; every failure is kept."""

    def __init__(self, port, path=None):
        import redis
        self.port = port
        self.path = path
        self.stop = threading.Event()
        self.errors = []
        self.incrs = [0] * INCR_CLIENTS
        self.connects = [0] * CONNECT_CLIENTS
        where = {"unix_socket_path": path} if path else {"host": HOST, "port": port}
        self.clients = [redis.Redis(socket_timeout=10, **where) for _ in range(INCR_CLIENTS)]
        self.threads = [threading.Thread(target=self._incr, args=(i,)) for i in range(INCR_CLIENTS)]
        self.threads += [threading.Thread(target=self._connect, args=(i,)) for i in range(CONNECT_CLIENTS)]

    def _incr(self, i):
        key = "upgrade:%d" % i
        while not self.stop.is_set():
            try:
                v = self.clients[i].incr(key)
            except Exception as e:  # any failure is a finding
                self.errors.append("incr client %d: %r" % (i, e))
                return
            self.incrs[i] += 1
            if v != self.incrs[i]:
                self.errors.append("incr client %d: %d after %d INCRs" % (i, v, self.incrs[i]))
                return

    def _connect(self, i):
        while not self.stop.is_set():
            try:
                c = Resp(port=self.port, path=self.path, timeout=10)
                reply = c.call("SET", "upgrade:c%d" % i, self.connects[i])
                c.close()
            except Exception as e:
                self.errors.append("connect client %d: %r" % (i, e))
                return
            if reply != b"OK":
                self.errors.append("connect client %d: %r" % (i, reply))
                return
            self.connects[i] += 1

    def start(self):
        for t in self.threads:
            t.start()

    def counts(self):
        """Replies each client has had so far."""
        return list(self.incrs) + list(self.connects)

    def finish(self):
        self.stop.set()
        for t in self.threads:
            t.join(30)

    def total(self):
        return sum(self.incrs) + sum(self.connects)


def grows(load, n):
    before = load.total()
    return wait_until(lambda: load.total() >= before + n or load.errors,
                      "%d more requests served" % n, timeout=10)


@pytest.mark.parametrize("workers,unix", [(0, False), (2, False), (0, True), (2, True)],
                         ids=["single", "workers", "unix-socket", "workers-unix-socket"])
def test_upgrade_under_load(env, workers, unix):
    r = env.redis()
    glob = {"worker_processes": workers, "worker_shutdown_timeout": 10} if workers else None
    px = Upgradable(env, {"alpha": redis_pool([r])}, glob, unix=unix)
    load = Load(px.port, px.path)
    try:
        load.start()
        assert grows(load, 2000) and not load.errors, load.errors
        timings = []
        for rnd in range(ROUNDS):
            old_pid = read_pid(px.pidfile)
            old_ino = os.stat("/proc/%d/exe" % old_pid).st_ino
            new_ino = px.replace_binary()
            assert new_ino != old_ino
            before = load.counts()
            t0 = time.monotonic()
            px.upgrade()
            px.wait_new(old_pid)
            new_pid = read_pid(px.pidfile)
            px.pids.append(new_pid)
            t_ready = time.monotonic() - t0
            px.wait_gone(old_pid)
            timings.append((t_ready, time.monotonic() - t0))
            # every client gets replies after the upgrade began: none is stuck.  The
            # old process can be gone 10 ms after the signal, before each client's
            # thread has run once, so each is given up to 5 s.
            wait_until(lambda: load.errors or all(now > then for now, then in zip(load.counts(), before)),
                       lambda: "every client to get a reply (replies before %s, now %s)"
                       % (before, load.counts()))
            assert grows(load, 1500) and not load.errors, (load.errors, px.log_tail())
            # the new process runs the new file
            assert os.stat("/proc/%d/exe" % new_pid).st_ino == new_ino
        load.finish()
        # nothing failed, nothing was lost
        assert load.errors == [], (load.errors, px.log_tail())
        for i in range(INCR_CLIENTS):
            assert int(r.client().get("upgrade:%d" % i)) == load.incrs[i]
        # stats go on: the new process counts what the old one served too
        served = load.total()
        st = wait_until(lambda: (lambda s: s if s["pools"][0]["servers"][0]["requests"] >= served else None)(
            px.status()), "the stats to count the %d requests served" % served, timeout=10)
        assert st["generation"] == 1 + ROUNDS and st["pid"] == new_pid
        print("\nupgrade (%s): %d upgrades under %d requests (%d INCR on %d pooled clients, %d on new "
              "connections): 0 errors, 0 refused, 0 lost; new binary serving / old gone after %s"
              % ("single process" if not workers else "%d workers" % workers, ROUNDS, served,
                 sum(load.incrs), INCR_CLIENTS, sum(load.connects),
                 ", ".join("%.3f/%.3f s" % t for t in timings)))
    finally:
        load.finish()
        px.stop_all()


@pytest.mark.parametrize("workers,unix,backend",
                         [(0, False, None), (0, True, None), (2, False, None),
                          (0, False, "io_uring"), (2, True, "io_uring")],
                         ids=["tcp", "unix-socket", "workers", "io_uring", "io_uring-workers-unix"])
def test_clients_keep_their_connection_across_the_upgrade(env, workers, unix, backend):
    """Each client's socket goes to the new binary (in worker mode: old worker
    i's to new worker i) once it has nothing left to answer: a client idle
    across the upgrade, and one in the middle of a pipeline, go on on the same
    connection (answered by the new process: the old one is gone), logged in
    and with their name; a subscribed client cannot travel and is closed
    behind its last reply. On io_uring the ring lets go of each socket first
    (its receive cancelled)."""
    r = env.redis(password="s3cret")
    glob = {"worker_processes": workers, "worker_shutdown_timeout": 10} if workers else None
    px = Upgradable(env, {"alpha": redis_pool([r], redis_auth="s3cret")}, glob, unix=unix,
                    backend=backend)
    idle, busy, sub = px.resp(), px.resp(), px.resp()
    try:
        for c in (idle, busy, sub):
            assert c.call("AUTH", "s3cret") == b"OK"
        assert idle.call("CLIENT", "SETNAME", "keeper") == b"OK"
        assert idle.call("SET", "k", "v") == b"OK"
        assert sub.call("SUBSCRIBE", "news") == [b"subscribe", b"news", 1]
        # a pipeline in flight while the hand-over begins
        busy.send(b"".join(encode_command("INCR", "n") for _ in range(2000)))
        old_pid = px.upgrade_and_wait()
        assert [busy.read_reply() for _ in range(2000)] == list(range(1, 2001))
        assert not alive(old_pid)
        assert idle.call("GET", "k") == b"v"
        assert idle.call("CLIENT", "GETNAME") == b"keeper"
        assert busy.call("INCR", "n") == 2001
        with pytest.raises((Closed, OSError)):
            sub.call("PING")
        # the old process (each old worker) says how its clients went
        with open(px.log) as f:
            counts = re.findall(r"handed over: (\d+) clients went to the new process, (\d+) were "
                                r"closed behind their last reply, (\d+) at the shutdown timeout",
                                f.read())
        assert len(counts) == max(workers, 1), px.log_tail()
        assert [sum(int(c[i]) for c in counts) for i in range(3)] == [2, 1, 0], counts
    finally:
        for c in (idle, busy, sub):
            c.close()
        px.stop_all()


def test_a_memcached_client_handed_over_is_still_past_its_first_request(env):
    """memcached takes a connection for the binary protocol by its first byte only; a
    later line starting with the magic byte is an unknown command (ERROR). A client
    handed to the new binary keeps that: the new process does not take its next
    line for a binary request and close it."""
    m = env.memcached()
    px = Upgradable(env, {"m": mc_pool([m])})
    s = px.connect()
    try:
        s.sendall(b"set k 0 0 1\r\nv\r\n")
        assert recv_all_until(s, b"\r\n") == b"STORED\r\n"
        px.upgrade_and_wait()
        s.sendall(b"\x80" + b"bogus\r\nget k\r\n")
        assert recv_all_until(s, b"END\r\n") == b"ERROR\r\nVALUE k 0 1\r\nv\r\nEND\r\n"
    finally:
        s.close()
        px.stop_all()


def recv_all_until(s, end):
    got = b""
    while not got.endswith(end):
        b = s.recv(4096)
        if not b:
            break
        got += b
    return got


@pytest.mark.parametrize("workers", [0, 2], ids=["single", "workers"])
def test_the_stats_port_shows_the_replaced_process_counts_at_once(env, workers):
    """The new process rendered its stats document when it started, before
    the old one's counters came, and again only an interval (-i, 30 s by
    default) later: meanwhile every counter read 0, which a monitor takes for
    a reset. The document is rendered again as the counters come."""
    r = env.redis()
    glob = {"worker_processes": workers} if workers else None
    px = Upgradable(env, {"alpha": redis_pool([r])}, glob, interval_ms=30000)
    try:
        c = px.resp()
        for i in range(50):
            assert c.call("SET", "k%d" % i, "v") == b"OK"
        c.close()
        # and a failed reload: a counter too, which must not go back to 0
        with open(px.conf) as f:
            good = f.read()
        with open(px.conf, "w") as f:
            f.write("alpha: [\n")
        os.kill(read_pid(px.pidfile), signal.SIGHUP)
        wait_until(lambda: px.status()["reload_failures"] == 1, "the reload to fail")
        with open(px.conf, "w") as f:
            f.write(good)
        px.upgrade_and_wait()
        assert px.status()["reload_failures"] == 1

        def served():
            pool = px.stats()["alpha"]
            return sum(v["requests"] for v in pool.values() if isinstance(v, dict))
        wait_until(lambda: served() >= 50, "the stats port to count the 50 requests the old process served",
                   timeout=5)
    finally:
        px.stop_all()


@pytest.mark.parametrize("before,after,reuseport", [(2, 0, False), (2, 0, True), (4, 0, True), (0, 2, True)],
                         ids=["2-workers-to-one", "2-workers-to-one-reuseport", "4-workers-to-one-reuseport",
                              "one-to-2-workers-reuseport"])
def test_an_upgrade_that_changes_worker_processes_serves_every_connect(env, before, after, reuseport):
    """An upgrade whose file changes worker_processes. From workers to one
    process, the new process bound a socket of its own (refused without
    reuseport) and left the old workers' sockets open, unserved, in the same
    SO_REUSEPORT group: 2 connects in 3 hung for ever (h46). Now the single
    process takes the first worker's socket and closes the others; a master
    replacing a single process takes its socket as its first worker's."""
    r = env.redis()
    pool = redis_pool([r], reuseport=True) if reuseport else redis_pool([r])

    def glob(n):
        return {"worker_processes": n, "worker_shutdown_timeout": 5} if n else None
    px = Upgradable(env, {"alpha": pool}, glob(before))
    try:
        with open(px.conf, "w") as f:
            f.write(yaml_conf({"alpha": dict(pool, listen="%s:%d" % (HOST, px.port))}, glob(after)))
        px.upgrade_and_wait()
        hung = 0
        for i in range(30):
            c = Resp(port=px.port, timeout=3)
            try:
                assert c.call("SET", "k%d" % i, i) == b"OK"
            except OSError:
                hung += 1
            c.close()
        assert hung == 0, "%d of 30 connects got no reply; log: %s" % (hung, px.log_tail())
    finally:
        px.stop_all()


def test_a_client_in_a_transaction_travels_once_it_ends(env):
    """A client in the middle of WATCH ... EXEC when the hand-over begins is
    kept until its transaction ends, then handed over like any other: a WATCH
    retry loop goes on on the same connection, in the new binary. So does a
    client that watched keys before (its idle WATCH connection closes here)."""
    r = env.redis()
    px = Upgradable(env, {"alpha": redis_pool([r])})
    w, done = px.resp(), px.resp()
    try:
        assert done.call("WATCH", "d") == b"OK" and done.call("UNWATCH") == b"OK"
        assert w.call("WATCH", "w") == b"OK"
        old_pid = read_pid(px.pidfile)
        px.replace_binary()
        px.upgrade()
        px.wait_new(old_pid)
        assert w.call("GET", "w") is None
        w.send(encode_command("MULTI") + encode_command("SET", "w", "1") + encode_command("EXEC"))
        assert [w.read_reply() for _ in range(3)] == [b"OK", b"QUEUED", [b"OK"]]
        px.pids.append(read_pid(px.pidfile))
        px.wait_gone(old_pid)
        assert w.call("GET", "w") == b"1"  # the same connection, answered by the new process
        assert done.call("GET", "w") == b"1"
        with open(px.log) as f:
            assert "handed over: 2 clients went to the new process, 0 were closed" in f.read(), px.log_tail()
    finally:
        w.close()
        done.close()
        px.stop_all()


def test_a_scrape_half_sent_at_the_hand_over_is_closed_with_the_metrics_port(env):
    """The old process closes its metrics port when the new one serves; a
    scraper that had sent half a request then kept its connection, watched by
    the old process's loop with the port's memory gone: its 5 s timeout used
    that memory (under AddressSanitizer: heap-use-after-free, the old process
    killed while it still had a client waiting). Now it is closed with the port."""
    from liveness_util import stop_process
    r = env.redis()
    px = Upgradable(env, {"alpha": redis_pool([r])})
    w = px.resp()
    half = socket.create_connection((HOST, px.mport), timeout=10)
    try:
        half.sendall(b"GET /metr")
        assert w.call("SET", "w", "0") == b"OK"
        stop_process(r.proc.pid)  # the old process keeps a client waiting for its reply
        w.send(encode_command("GET", "w"))
        old_pid = read_pid(px.pidfile)
        px.replace_binary()
        px.upgrade()
        px.wait_new(old_pid)
        assert half.recv(100) == b""  # closed by the old process as its port closed
        time.sleep(5.5)  # past the half request's timeout
        assert alive(old_pid), px.log_tail()
        os.kill(r.proc.pid, signal.SIGCONT)
        assert w.read_reply() == b"0"
        px.pids.append(read_pid(px.pidfile))
        px.wait_gone(old_pid)
        assert px.proc.wait(5) == 0, px.log_tail()  # the old process exited cleanly
    finally:
        os.kill(r.proc.pid, signal.SIGCONT)
        half.close()
        w.close()
        px.stop_all()


def test_a_refused_client_does_not_hold_up_the_upgrade(env):
    """A client refused for a protocol error lingers (its error and the end of
    the stream read, its socket still open): the old process closes it when the
    hand-over begins, counted among those closed behind their last reply, and
    exits before the client's 5 s of lingering are over; an idle client
    travels as usual."""
    r = env.redis()
    px = Upgradable(env, {"alpha": redis_pool([r])})
    idle = px.resp()
    refused = px.connect()
    try:
        assert idle.call("SET", "k", "v") == b"OK"
        refused.sendall(b"*x\r\n" + b"junk" * 100000)
        got = b""
        while not got.endswith(b"\r\n"):
            got += refused.recv(4096)
        assert got.startswith(b"-ERR Protocol error") and refused.recv(4096) == b"", got
        t0 = time.monotonic()
        px.upgrade_and_wait()
        took = time.monotonic() - t0
        assert idle.call("GET", "k") == b"v"
        with open(px.log) as f:
            counts = re.findall(r"handed over: (\d+) clients went to the new process, (\d+) were "
                                r"closed behind their last reply, (\d+) at the shutdown timeout", f.read())
        assert counts == [("1", "1", "0")], px.log_tail()
        assert took < 4.5, "the old process took %.1fs" % took
    finally:
        idle.close()
        refused.close()
        px.stop_all()


def test_a_client_pipelining_without_pause_is_let_go_behind_its_replies(env):
    """A client that never has nothing unanswered cannot go to the new binary.
    It kept the old process until worker_shutdown_timeout (30 s), then was
    closed with thousands of requests run and unanswered. A second into the
    hand-over it is now let go: no longer read, its replies written and
    delivered, then the end of the stream; every INCR that ran was answered."""
    r = env.redis()
    px = Upgradable(env, {"alpha": redis_pool([r])})
    s = socket.create_connection((HOST, px.port), timeout=30)
    stop = threading.Event()
    got = bytearray()

    def send():
        batch = encode_command("INCR", "nonstop") * 50
        while not stop.is_set():
            try:
                s.sendall(batch)
            except OSError:
                return

    def read():
        while True:
            try:
                b = s.recv(1 << 16)
            except OSError:
                return
            if not b:
                return
            got.extend(b)
    threads = [threading.Thread(target=send, daemon=True), threading.Thread(target=read, daemon=True)]
    try:
        for t in threads:
            t.start()
        wait_until(lambda: len(got) > 1000, "replies flowing")
        old_pid = read_pid(px.pidfile)
        t0 = time.monotonic()
        px.replace_binary()
        px.upgrade()
        px.wait_new(old_pid)
        px.pids.append(read_pid(px.pidfile))
        px.wait_gone(old_pid, timeout=25)
        assert time.monotonic() - t0 < 10, "the old process waited for its shutdown timeout"
        # let go, its stream has ended; but a sender thread the scheduler paused
        # long enough leaves nothing unanswered, and the client travels to the new
        # process: the end of our stream ends it there, behind its replies
        stop.set()
        try:
            s.shutdown(socket.SHUT_WR)
        except OSError:
            pass
        threads[1].join(10)
        assert not threads[1].is_alive(), "no end of the stream"
        assert got.count(b":") == int(r.client().get("nonstop")), "INCRs run and unanswered"
    finally:
        stop.set()
        s.close()
        px.stop_all()


def test_a_new_process_refusing_the_configuration_says_why_in_the_log(env):
    """The old process logs "see its log" when the new one exits before
    serving; the new one wrote the configuration's errors to its stderr only,
    which a daemon's leads nowhere. They are in the log file now."""
    r = env.redis()
    px = Upgradable(env, {"alpha": redis_pool([r])})
    try:
        old_pid = read_pid(px.pidfile)
        with open(px.conf, "a") as f:
            f.write("  tiemout: 400\n")
        px.upgrade()
        wait_until(lambda: "binary upgrade failed" in px.log_tail(), lambda: "the failure logged; log: " + px.log_tail(),
                   timeout=10)
        with open(px.log) as f:
            log = f.read()
        assert "tiemout: directive is unknown" in log, log[-2000:]
        assert read_pid(px.pidfile) == old_pid and alive(old_pid)
    finally:
        px.stop_all()


def test_a_new_binary_that_fails_leaves_the_old_serving(env):
    r = env.redis()
    px = Upgradable(env, {"alpha": redis_pool([r])})
    try:
        old_pid = read_pid(px.pidfile)
        c = Resp(port=px.port)
        assert c.call("SET", "k", "before") == b"OK"
        px.replace_binary("#!/bin/sh\nexit 3\n")
        px.upgrade()
        wait_until(lambda: "binary upgrade failed" in px.log_tail(), lambda: "the failure logged; log: " + px.log_tail(),
                   timeout=10)
        assert read_pid(px.pidfile) == old_pid and alive(old_pid)
        # the same connection and new ones keep working, the stats port too
        assert c.call("GET", "k") == b"before"
        assert Resp(port=px.port).call("SET", "k", "after") == b"OK"
        assert px.status()["pid"] == old_pid
        # and a good binary afterwards takes over
        px.replace_binary()
        px.upgrade()
        px.wait_new(old_pid, timeout=10)
        px.pids.append(read_pid(px.pidfile))
        px.wait_gone(old_pid, timeout=10)
        assert Resp(port=px.port).call("GET", "k") == b"after"
    finally:
        px.stop_all()


@pytest.mark.parametrize("workers", [0, 2])
def test_a_stop_right_after_an_upgrade_stops_the_new_process_too(env, workers):
    """SIGTERM a moment after SIGUSR2, before the new process says it serves: the
    old one stopped and the new one served on, named by no pid file, so a stop
    left a proxy running. Now the old one tells the new one to stop too."""
    r = env.redis()
    px = Upgradable(env, {"alpha": redis_pool([r])}, global_={"worker_processes": workers} if workers else None)
    try:
        old_pid = read_pid(px.pidfile)
        px.replace_binary()
        os.kill(old_pid, signal.SIGUSR2)
        os.kill(old_pid, signal.SIGTERM)
        wait_until(lambda: "started '" in px.log_tail(), lambda: "the upgrade to start; log: " + px.log_tail(),
                   timeout=10)
        m = re.search(r"started '[^']*' as pid (\d+)", px.log_tail())
        new_pid = int(m.group(1))
        px.pids.append(new_pid)
        px.wait_gone(old_pid, timeout=15)
        wait_until(lambda: not alive(new_pid), lambda: "the new process %d to stop; log: %s" % (new_pid, px.log_tail()),
                   timeout=15)
        with pytest.raises(OSError):
            px.connect(timeout=1).close()
        assert "binary upgrade abandoned" in px.log_tail(), px.log_tail()
    finally:
        px.stop_all()
