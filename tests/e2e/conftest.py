"""End-to-end harness: real redis-server / memcached processes behind the proxy.

Every process a test starts is registered with an Env and stopped by pid when
the Env is finalised (SIGTERM, then SIGKILL).  Ports come from free_port():
random ports below the kernel's ephemeral range, each checked by binding it,
so parallel runs do not collide and no port is used twice in one run (no
TIME_WAIT surprises).  The fixtures: `env` (per test) and `menv` (per module).

The proxy binary is $NUTCRACKER_BIN (default: ./nutcracker at the repo root).
When a test fails, the tail of the log of every proxy alive at that moment is
attached to the report.

Tests never sleep to let something happen: they wait for it with wait_until(),
on an event they can observe (the stats document, refreshed every 100 ms, see
Proxy.wait_stats; a backend's own INFO; a port; a process).  A sleep is only
allowed where a span of time is the behaviour under test, and says so.
"""

import atexit
import hashlib
import math
import os
import random
import re
import resource
import select
import signal
import socket
import struct
import subprocess
import time

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
VECTORS = os.path.join(ROOT, "tests", "vectors")  # the SPEC's test vectors, kept with the tests

NUTCRACKER_BIN = os.path.abspath(os.environ.get("NUTCRACKER_BIN") or os.path.join(ROOT, "nutcracker"))
TWEMPROXY = NUTCRACKER_BIN == "/usr/sbin/nutcracker"
# NUTCRACKER_EVENT_BACKEND=io_uring (make e2e-uring): every proxy the tests spawn runs on that
# event backend (--event-backend); twemproxy has only epoll.
EVENT_BACKEND = "" if TWEMPROXY else os.environ.get("NUTCRACKER_EVENT_BACKEND", "")

HOST = "127.0.0.1"
START_TIMEOUT = 10.0
# ASan/LSan/UBSan reports in the proxy's output fail the test that started it.
SANITIZER_RE = re.compile(r"ERROR: (Address|Leak|Memory|Thread)Sanitizer|runtime error: ")

# --------------------------------------------------------------------------- ports

_rng = random.Random(os.getpid() ^ int(time.time() * 1000))
_PORT_LO, _PORT_HI = 12000, 32000  # below ip_local_port_range (32768-60999)
_used_ports = set()


def port_is_free(port):
    """True when nothing is bound to 127.0.0.1:port or 0.0.0.0:port."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        s.bind((HOST, port))
        return True
    except OSError:
        return False
    finally:
        s.close()


def free_port():
    """A port nothing is bound to, never handed out before in this run.
    Random picks (not a sequence) keep parallel runs from marching into each
    other's ports; a port taken between the check and its use makes the
    starter retry with another (Env.redis, Env.memcached, Env.proxy)."""
    for _ in range(1000):
        p = _rng.randrange(_PORT_LO, _PORT_HI)
        if p in _used_ports:
            continue
        _used_ports.add(p)
        if port_is_free(p):
            return p
    raise RuntimeError("no free port")


def wait_until(pred, what, timeout=5.0, interval=0.02):
    """The one way the tests wait: poll pred() every `interval` s until it
    returns something true, and return that.  An exception in pred counts as
    "not yet" (a server restarting, a port not open yet).  After `timeout` s
    raise AssertionError naming `what` and pred's last value (or exception):
    a wait that runs out is a failed test, never a silent False.  `what` is a
    string, or a function whose answer (a log tail, say) is read only then."""
    if not (isinstance(what, str) or callable(what)):
        raise TypeError("wait_until: `what` says what is awaited; the timeout is timeout=")
    deadline = time.monotonic() + timeout
    while True:
        try:
            last = pred()
            if last:
                return last
        except Exception as e:  # reported with the timeout
            last = e
        if time.monotonic() >= deadline:
            raise AssertionError("timed out after %.1fs waiting for %s (last: %r)"
                                 % (timeout, what() if callable(what) else what, last))
        time.sleep(interval)


def _accepts(connect, proc):
    """For wait_port/wait_unix: "up" once connect() works, "exited" if proc ended first."""
    if proc is not None and proc.poll() is not None:
        return "exited"
    connect()
    return "up"


def wait_port(port, proc=None, timeout=START_TIMEOUT, host=HOST):
    """True once host:port accepts a TCP connection; False if proc exits first
    or the time runs out (callers retry on another port or report)."""
    try:
        return wait_until(lambda: _accepts(lambda: socket.create_connection((host, port), timeout=0.5).close(),
                                           proc), "port %d" % port, timeout) == "up"
    except AssertionError:
        return False


def wait_unix(path, proc=None, timeout=START_TIMEOUT):
    def connect():
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            s.connect(path)
        finally:
            s.close()
    try:
        return wait_until(lambda: _accepts(connect, proc), "unix socket %s" % path, timeout) == "up"
    except AssertionError:
        return False


def tail(path, n=60):
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError:
        return "(no file %s)" % path
    lines = data.decode("utf-8", "replace").splitlines()
    return "\n".join(lines[-n:])


# --------------------------------------------------------------------------- processes

_ALL_PROCS = set()


def _kill_everything():
    for p in list(_ALL_PROCS):
        try:
            p.kill()
            p.wait(5)
        except Exception:
            pass


atexit.register(_kill_everything)


def stop_proc(p, timeout=5.0):
    """Stop one process we started, by its pid: SIGTERM, then SIGKILL."""
    if p.poll() is None:
        try:
            p.send_signal(_stop_signal(p))
            p.wait(timeout)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait(timeout)
        except ProcessLookupError:
            pass
    _ALL_PROCS.discard(p)


def _stop_signal(p):
    """memcached keeps nothing and takes up to a second to notice SIGTERM (its
    clock ticks once a second): SIGKILL it.  Everything else gets SIGTERM, so a
    proxy exits through its own shutdown path (and the sanitizers report)."""
    return signal.SIGKILL if os.path.basename(str(p.args[0])) == "memcached" else signal.SIGTERM


def stop_procs(procs, timeout=5.0):
    """Stop several processes by pid at once."""
    for p in procs:
        if p.poll() is None:
            try:
                p.send_signal(_stop_signal(p))
            except ProcessLookupError:
                pass
    deadline = time.monotonic() + timeout
    for p in procs:
        try:
            p.wait(max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait(timeout)
        _ALL_PROCS.discard(p)


class Server:
    """A redis-server or memcached we started."""

    def __init__(self, kind, port, proc, logpath, password=None):
        self.kind, self.port, self.proc, self.log, self.password = kind, port, proc, logpath, password

    @property
    def addr(self):
        return "%s:%d" % (HOST, self.port)

    def client(self, db=0, **kw):
        import redis
        assert self.kind == "redis"
        return redis.Redis(host=HOST, port=self.port, db=db, password=self.password,
                           socket_timeout=10, **kw)

    def resp(self):
        c = Resp(port=self.port)
        if self.password:
            assert c.call("AUTH", self.password) == b"OK"
        return c

    def mc(self):
        return Mc(port=self.port)

    def stop(self):
        stop_proc(self.proc)

    def alive(self):
        return self.proc.poll() is None


def recv_all(sock):
    """Everything the peer sends until it closes."""
    data = b""
    while True:
        b = sock.recv(65536)
        if not b:
            return data
        data += b


def stats_json(port):
    """The JSON document of the stats port at port."""
    import json
    s = socket.create_connection((HOST, port), timeout=5)
    try:
        return json.loads(recv_all(s))
    finally:
        s.close()


class Proxy:
    def __init__(self, proc, conf, log, out, stats_port, listens):
        self.proc, self.conf, self.log, self.out = proc, conf, log, out
        self.stats_port = stats_port
        self.listens = listens  # pool name -> ("tcp", port) | ("unix", path)
        self.probed = set()  # pools whose port Env.proxy connected to once, to see it is up

    def port(self, pool=None):
        pool = pool or next(iter(self.listens))
        kind, where = self.listens[pool]
        assert kind == "tcp"
        return where

    def client(self, pool=None, **kw):
        import redis
        kw.setdefault("socket_timeout", 10)
        return redis.Redis(host=HOST, port=self.port(pool), **kw)

    def resp(self, pool=None, timeout=10):
        return Resp(port=self.port(pool), timeout=timeout)

    def mc(self, pool=None, timeout=10):
        return Mc(port=self.port(pool), timeout=timeout)

    def pymc(self, pool=None, **kw):
        from pymemcache.client.base import Client
        kw.setdefault("timeout", 10)
        kw.setdefault("connect_timeout", 5)
        return Client((HOST, self.port(pool)), **kw)

    def log_tail(self, n=60):
        return "--- %s\n%s\n--- stdout/stderr\n%s" % (self.log, tail(self.log, n), tail(self.out, 20))

    def stats(self):
        return stats_json(self.stats_port)

    def alive(self):
        return self.proc.poll() is None

    def stop(self):
        stop_proc(self.proc)
        _LIVE_PROXIES.discard(self)

    def wait_stats(self, pred, what="the stats to match", timeout=5.0):
        """The stats document once pred(doc) holds.  The proxy runs with -i 100:
        the document is refreshed every 100 ms, so this is how a test waits for
        any event the proxy counts (a request forwarded: `requests`, `out_queue`;
        a client seen: `client_connections`; a reload: `config_generation`)."""
        last = [None]

        def probe():
            last[0] = self.stats()
            return last[0] if pred(last[0]) else None
        try:
            return wait_until(probe, what, timeout)
        except AssertionError as e:
            raise AssertionError("%s; last stats: %s" % (e, last[0])) from None

    def wait_idle(self):
        """Stats once the readiness probe of Env.proxy (one connect and close per
        pool) has been seen and counted: no client connected, one EOF each."""
        return self.wait_stats(lambda st: all(st[p]["client_connections"] == 0 and st[p]["client_eof"] >= 1
                                              for p in self.probed),
                               "the start-up probes to be counted as closed")

    def wait_reloaded(self, generation, timeout=10.0):
        """Stats once config_generation reaches `generation` (in the worker mode:
        once every worker applied it)."""
        return self.wait_stats(lambda st: st["config_generation"] >= generation,
                               "config_generation %d" % generation, timeout)

    def reload(self, conf=None, global_=None, timeout=10.0):
        """Write conf (pools dict or YAML text) to the proxy's file when given,
        SIGHUP, and wait for the outcome in the stats: True when applied
        (config_generation + 1, last_reload "ok"), False when refused
        (reload_failures moved, config_generation unchanged)."""
        before = self.stats()
        if conf is not None:
            with open(self.conf, "w") as f:
                f.write(conf if isinstance(conf, str) else yaml_conf(conf, global_))
        os.kill(self.proc.pid, signal.SIGHUP)
        gen, fails = before["config_generation"], before["reload_failures"]
        st = self.wait_stats(lambda st: st["config_generation"] > gen or st["reload_failures"] > fails,
                             "the outcome of the reload (generation %d, failures %d before)" % (gen, fails),
                             timeout)
        if st["reload_failures"] > fails:
            assert st["config_generation"] == gen and st["last_reload"] == "failed", st
            return False
        assert st["config_generation"] == gen + 1 and st["last_reload"] == "ok", st
        return True


_LIVE_PROXIES = set()


class _PortRace(Exception):
    pass


def yaml_conf(pools, global_=None):
    """pools: {name: {key: value}} -> twemproxy YAML.  Strings are written as
    they are (quote them yourself where YAML needs it); lists become '- item'.
    With global_ ({key: value}), meitu's layout: global: and pools: at the top."""
    if global_ is not None:
        head = "global:\n" + "".join("  %s: %s\n" % kv for kv in global_.items()) + "pools:\n"
        return head + "".join("  " + line + "\n" for line in yaml_conf(pools).splitlines())
    out = []
    for name, pool in pools.items():
        out.append("%s:" % name)
        for k, v in pool.items():
            if isinstance(v, (list, tuple)):
                out.append("  %s:" % k)
                out.extend("   - %s" % s for s in v)
            elif isinstance(v, bool):
                out.append("  %s: %s" % (k, "true" if v else "false"))
            else:
                out.append("  %s: %s" % (k, v))
    return "\n".join(out) + "\n"


class Env:
    """Starts processes and stops all of them, by pid, in finish()."""

    def __init__(self, tmpdir):
        self.tmp = str(tmpdir)
        self.procs = []
        self.proxy_outputs = []
        self.n = 0

    def _path(self, name):
        self.n += 1
        return os.path.join(self.tmp, "%02d-%s" % (self.n, name))

    def spawn(self, argv, name, **kw):
        out = self._path(name + ".out")
        if EVENT_BACKEND and argv and argv[0] == NUTCRACKER_BIN:
            argv = [argv[0], "--event-backend=" + EVENT_BACKEND] + list(argv[1:])
        with open(out, "wb") as f:
            p = subprocess.Popen(argv, stdout=f, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                 cwd=self.tmp, **kw)
        _ALL_PROCS.add(p)
        self.procs.append(p)
        return p, out

    # -- redis ---------------------------------------------------------------
    def redis(self, args=(), password=None, port=None):
        for attempt in range(5):
            p_ = port or free_port()
            # no 5 s wait for more replicas before a full sync (redis 7's default): a replica
            # (or a demoted master after a failover) syncs at once
            argv = ["redis-server", "--port", str(p_), "--bind", HOST, "--save", "", "--appendonly", "no",
                    "--daemonize", "no", "--dir", self.tmp, "--dbfilename", "dump-%d.rdb" % p_,
                    "--repl-diskless-sync-delay", "0"]
            if password:
                argv += ["--requirepass", password]
            argv += list(args)
            proc, out = self.spawn(argv, "redis-%d" % p_)
            if wait_port(p_, proc):
                return Server("redis", p_, proc, out, password)
            stop_proc(proc)
            if port is not None:
                break
        raise RuntimeError("redis-server did not start:\n" + tail(out))

    def redises(self, n, **kw):
        return [self.redis(**kw) for _ in range(n)]

    # -- redis-sentinel ------------------------------------------------------
    def sentinel(self, masters, down_after_ms=1000, failover_timeout_ms=3000, password=None):
        """Start a redis-sentinel monitoring {group name: Server} (quorum 1)."""
        for attempt in range(5):
            p_ = free_port()
            conf = self._path("sentinel-%d.conf" % p_)
            lines = ["port %d" % p_, "bind %s" % HOST, "daemonize no", "dir %s" % self.tmp]
            if password:
                lines.append("requirepass %s" % password)
            for name, srv in masters.items():
                lines += ["sentinel monitor %s %s %d 1" % (name, HOST, srv.port),
                          "sentinel down-after-milliseconds %s %d" % (name, down_after_ms),
                          "sentinel failover-timeout %s %d" % (name, failover_timeout_ms)]
                if srv.password:
                    lines.append("sentinel auth-pass %s %s" % (name, srv.password))
            with open(conf, "w") as f:
                f.write("\n".join(lines) + "\n")
            proc, out = self.spawn(["redis-sentinel", conf], "sentinel-%d" % p_)
            if wait_port(p_, proc):
                return Server("sentinel", p_, proc, out, password)
            stop_proc(proc)
        raise RuntimeError("redis-sentinel did not start:\n" + tail(out))

    # -- memcached -----------------------------------------------------------
    def memcached(self, args=(), port=None):
        for attempt in range(5):
            p_ = port or free_port()
            argv = ["memcached", "-l", HOST, "-p", str(p_), "-U", "0", "-t", "1", "-m", "64"] + list(args)
            if os.geteuid() == 0:
                argv += ["-u", "root"]
            proc, out = self.spawn(argv, "memcached-%d" % p_)
            if wait_port(p_, proc):
                return Server("memcached", p_, proc, out)
            stop_proc(proc)
            if port is not None:
                break
        raise RuntimeError("memcached did not start:\n" + tail(out))

    def memcacheds(self, n, **kw):
        return [self.memcached(**kw) for _ in range(n)]

    # -- proxy ---------------------------------------------------------------
    def write_conf(self, pools_or_text, name="nutcracker.yml"):
        path = self._path(name)
        text = pools_or_text if isinstance(pools_or_text, str) else yaml_conf(pools_or_text)
        with open(path, "w") as f:
            f.write(text)
        return path

    def run_proxy(self, args, timeout=20, **kw):
        """Run the binary to completion: (exit code, stdout+stderr text)."""
        r = subprocess.run([NUTCRACKER_BIN] + list(args), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, timeout=timeout, cwd=kw.pop("cwd", self.tmp), **kw)
        out = r.stdout.decode("utf-8", "replace")
        assert not SANITIZER_RE.search(out), out
        return r.returncode, out

    def proxy(self, pools, extra_args=(), wait=True, stats_port=None, verbose=4, global_=None,
              nofile=None):
        """Start the proxy.  pools: {name: {key: value}}; a pool without
        'listen' gets a free TCP port.  Returns a Proxy; the listen ports are
        waited for (unless wait=False).  If a port picked here was taken in
        the meantime (another run), it retries with new ports.  nofile: the
        open files limit it starts with (soft and hard)."""
        for attempt in range(3):
            try:
                return self._proxy(pools, extra_args, wait, stats_port, verbose, global_, nofile)
            except _PortRace:
                if attempt == 2:
                    raise RuntimeError("proxy: ports kept being taken")

    def _proxy(self, pools, extra_args, wait, stats_port, verbose, global_=None, nofile=None):
        own_ports = stats_port is None and all("listen" not in p for p in pools.values())
        pools = {k: dict(v) for k, v in pools.items()}
        listens = {}
        for name, pool in pools.items():
            if "listen" not in pool:
                pool["listen"] = "%s:%d" % (HOST, free_port())
            lv = str(pool["listen"]).split()[0]
            if lv.startswith("/"):
                listens[name] = ("unix", lv)
            else:
                listens[name] = ("tcp", int(lv.rsplit(":", 1)[1]))
        conf = self.write_conf(yaml_conf(pools, global_))
        log = self._path("nutcracker.log")
        sport = stats_port or free_port()
        argv = [NUTCRACKER_BIN, "-c", conf, "-s", str(sport), "-a", HOST, "-i", "100", "-v", str(verbose),
                "-o", log] + list(extra_args)
        kw = {}
        if nofile is not None:
            kw["preexec_fn"] = lambda: resource.setrlimit(resource.RLIMIT_NOFILE, (nofile, nofile))
        proc, out = self.spawn(argv, "nutcracker", **kw)
        self.proxy_outputs.append(out)
        px = Proxy(proc, conf, log, out, sport, listens)
        _LIVE_PROXIES.add(px)
        if wait:
            for name, (kind, where) in listens.items():
                ok = wait_port(where, proc) if kind == "tcp" else wait_unix(where, proc)
                if not ok:
                    msg = "proxy did not listen on %s (exit %s)\n%s" % (where, proc.poll(), px.log_tail())
                    px.stop()
                    if own_ports and "already in use" in msg:
                        raise _PortRace(msg)
                    raise RuntimeError(msg)
                px.probed.add(name)
        return px

    def finish(self):
        """Stop everything; then report sanitizer findings in the proxy's output."""
        stop_procs(list(reversed(self.procs)))
        for px in list(_LIVE_PROXIES):
            if px.proc in self.procs:
                _LIVE_PROXIES.discard(px)
        self.procs = []
        found = []
        for out in self.proxy_outputs:
            text = tail(out, 400)
            if SANITIZER_RE.search(text):
                found.append("%s:\n%s" % (out, text))
        self.proxy_outputs = []
        return found


def _server_entry(s):
    """Server object or "host:port" -> "host:port:1"; other strings as they are."""
    if not isinstance(s, str):
        return "%s:1" % s.addr
    return s + ":1" if s.count(":") == 1 and " " not in s else s


def redis_pool(servers, **kw):
    """A redis pool dict for Env.proxy(); servers are Server objects or strings."""
    pool = {"redis": True}
    pool.update(kw)
    pool["servers"] = [_server_entry(s) for s in servers]
    return pool


def mc_pool(servers, **kw):
    pool = {}
    pool.update(kw)
    pool["servers"] = [_server_entry(s) for s in servers]
    return pool


@pytest.fixture
def env(tmp_path):
    e = Env(tmp_path)
    yield e
    found = e.finish()
    if found:
        pytest.fail("sanitizer report in proxy output:\n" + "\n".join(found), pytrace=False)


@pytest.fixture(scope="module")
def menv(tmp_path_factory):
    """Module-scoped Env for backends shared by the tests of one file."""
    e = Env(tmp_path_factory.mktemp("m"))
    yield e
    found = e.finish()
    if found:
        pytest.fail("sanitizer report in proxy output:\n" + "\n".join(found), pytrace=False)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    if rep.failed and call.when in ("setup", "call"):
        for px in list(_LIVE_PROXIES):
            rep.sections.append(("proxy log tail (%s)" % px.log, px.log_tail()))


def pytest_report_header(config):
    return "nutcracker under test: %s%s%s" % (NUTCRACKER_BIN, " (Debian twemproxy)" if TWEMPROXY else "",
                                               ", event backend " + EVENT_BACKEND if EVENT_BACKEND else "")


# --------------------------------------------------------------------------- RESP client

class RespError(Exception):
    def __init__(self, msg):
        super().__init__(msg)
        self.msg = msg

    def __eq__(self, other):
        return isinstance(other, RespError) and other.msg == self.msg

    def __hash__(self):
        return hash(self.msg)

    def __repr__(self):
        return "RespError(%r)" % self.msg


class Closed(Exception):
    pass


def encode_command(*args):
    out = [b"*%d\r\n" % len(args)]
    for a in args:
        if isinstance(a, str):
            a = a.encode()
        elif isinstance(a, int):
            a = str(a).encode()
        out.append(b"$%d\r\n%s\r\n" % (len(a), a))
    return b"".join(out)


class _Sock:
    def __init__(self, port=None, path=None, timeout=10, host=HOST):
        if path:
            self.s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            self.s.settimeout(timeout)
            self.s.connect(path)
        else:
            self.s = socket.create_connection((host, port), timeout=timeout)
        self.s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1) if not path else None
        self.buf = b""

    def settimeout(self, t):
        self.s.settimeout(t)

    def send(self, data):
        self.s.sendall(data)

    def _fill(self):
        try:
            b = self.s.recv(1 << 20)
        except ConnectionResetError:
            b = b""
        if not b:
            raise Closed("connection closed by peer")
        self.buf += b

    def readline(self):
        while True:
            i = self.buf.find(b"\r\n")
            if i >= 0:
                line, self.buf = self.buf[:i], self.buf[i + 2:]
                return line
            self._fill()

    def readn(self, n):
        while len(self.buf) < n:
            self._fill()
        d, self.buf = self.buf[:n], self.buf[n:]
        return d

    def is_closed(self, timeout=3.0):
        """True when the peer closes within timeout and sends nothing more."""
        if self.buf:
            return False
        self.s.settimeout(timeout)
        try:
            b = self.s.recv(65536)
        except socket.timeout:
            return False
        except ConnectionResetError:
            return True
        if b:
            self.buf += b
            return False
        return True

    def read_available(self, wait=0.3):
        """Whatever arrives within `wait` seconds (for 'no reply' checks)."""
        end = time.monotonic() + wait
        data = self.buf
        self.buf = b""
        while True:
            left = end - time.monotonic()
            if left <= 0:
                return data
            r, _, _ = select.select([self.s], [], [], left)
            if not r:
                return data
            try:
                b = self.s.recv(65536)
            except ConnectionResetError:
                return data
            if not b:
                return data
            data += b

    def close(self):
        self.s.close()


class Resp(_Sock):
    """Minimal RESP2 client that keeps errors as values (RespError)."""

    def read_reply(self):
        line = self.readline()
        t, rest = line[:1], line[1:]
        if t == b"+":
            return rest
        if t == b"-":
            return RespError(rest.decode("utf-8", "replace"))
        if t == b":":
            return int(rest)
        if t == b"$":
            n = int(rest)
            if n < 0:
                return None
            d = self.readn(n + 2)
            assert d[-2:] == b"\r\n", "bad bulk terminator"
            return d[:-2]
        if t in (b"*", b"~", b">"):  # array; RESP3 set, push
            n = int(rest)
            if n < 0:
                return None
            return [self.read_reply() for _ in range(n)]
        return self._read_resp3(t, rest, line)

    def _read_resp3(self, t, rest, line):
        """RESP3 types (after HELLO 3): maps as dicts, verbatim strings and blob
        errors as their text, doubles and big numbers as text, nulls as None."""
        if t == b"%":
            n = int(rest)
            return {self._key(self.read_reply()): self.read_reply() for _ in range(n)}
        if t == b"_":
            return None
        if t == b"#":
            return rest == b"t"
        if t in (b",", b"("):
            return rest
        if t in (b"=", b"!"):
            d = self.readn(int(rest) + 2)[:-2]
            return d[4:] if t == b"=" else RespError(d.decode("utf-8", "replace"))
        raise AssertionError("unexpected RESP line %r" % line)

    @staticmethod
    def _key(k):
        return tuple(k) if isinstance(k, list) else k

    def call(self, *args):
        self.send(encode_command(*args))
        return self.read_reply()

    def pipeline(self, commands):
        self.send(b"".join(encode_command(*c) for c in commands))
        return [self.read_reply() for _ in commands]


class Mc(_Sock):
    """Raw memcached ASCII client."""

    def cmd(self, line, data=None):
        """Send one command line (+ data block), return its first reply line."""
        self.send(line + b"\r\n" + (data + b"\r\n" if data is not None else b""))
        return self.readline()

    def retrieval(self, line):
        """Send a get-like command; return (list of (key, flags, data, extra), raw bytes)."""
        self.send(line + b"\r\n")
        return self.read_values()

    def read_values(self):
        items, raw = [], b""
        while True:
            l = self.readline()
            raw += l + b"\r\n"
            if l == b"END":
                return items, raw
            parts = l.split()
            if not parts or parts[0] != b"VALUE":
                raise AssertionError("unexpected line in retrieval reply: %r (so far %r)" % (l, raw))
            n = int(parts[3])
            d = self.readn(n + 2)
            raw += d
            items.append((parts[1], int(parts[2]), d[:-2], parts[4:]))


# --------------------------------------------------------------------------- placement model

def _signed_byte_u32(b):
    return (b - 256) & 0xFFFFFFFF if b >= 0x80 else b


def fnv1a_64(key):
    """twemproxy's hash_fnv1a_64: 32-bit state, chars sign-extended."""
    h = 0xCBF29CE484222325 & 0xFFFFFFFF
    for b in key:
        h ^= _signed_byte_u32(b)
        h = (h * (0x100000001B3 & 0xFFFFFFFF)) & 0xFFFFFFFF
    return h


def hash_tag_key(key, tag):
    if tag:
        a, b = tag.encode() if isinstance(tag, str) else tag
        i = key.find(bytes([a]))
        if i >= 0:
            j = key.find(bytes([b]), i + 1)
            if j > i + 1:
                return key[i + 1:j]
    return key


class Ketama:
    """twemproxy's ketama continuum for servers [(name, weight)], all live."""

    def __init__(self, servers):
        total = sum(w for _, w in servers)
        pts = []
        for idx, (name, w) in enumerate(servers):
            pct = struct.unpack("f", struct.pack("f", w / total))[0]
            npts = int(math.floor(_f32(_f32(_f32(_f32(pct * 160) / 4) * len(servers)) + 1e-10))) * 4
            for i in range(npts // 4):
                d = hashlib.md5(("%s-%d" % (name, i)).encode()).digest()
                for a in range(4):
                    pts.append((struct.unpack("<I", d[4 * a:4 * a + 4])[0], idx))
        pts.sort(key=lambda x: x[0])
        self.points = pts
        self.servers = servers

    def index(self, h):
        import bisect
        i = bisect.bisect_left(self.points, (h, -1))
        if i == len(self.points):
            i = 0
        return self.points[i][1]


def _f32(x):
    return struct.unpack("f", struct.pack("f", x))[0]


def placement(keys, servers, hash_tag=None):
    """Map each key to the server (Server objects or 'host:port' names) that
    twemproxy's fnv1a_64 + ketama with equal weights picks."""
    names = [s if isinstance(s, str) else s.addr for s in servers]
    k = Ketama([(n, 1) for n in names])
    out = {}
    for key in keys:
        kb = key.encode() if isinstance(key, str) else key
        out[key] = servers[k.index(fnv1a_64(hash_tag_key(kb, hash_tag)))]
    return out


def spread_keys(prefix, n):
    """n keys that spread over the continuum whatever the ports: fnv1a_64 (32-bit)
    maps sequential names like "k:1", "k:2" to neighbouring points."""
    return ["%s:%s" % (prefix, hashlib.md5(b"%d" % i).hexdigest()[:12]) for i in range(n)]


def read_placement_vectors():
    rows = []
    with open(os.path.join(VECTORS, "placement.tsv"), encoding="utf-8") as f:
        for line in f:
            line = line.rstrip("\n")
            if not line or line.startswith("#") or line.startswith("config\t"):
                continue
            cfg, key, server = line.split("\t")
            rows.append((cfg, key, server))
    return rows


def redis_commands_list():
    with open(os.path.join(VECTORS, "redis-commands.txt")) as f:
        return [l.strip() for l in f if l.strip() and not l.startswith("#")]
