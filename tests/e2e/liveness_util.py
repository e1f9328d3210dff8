"""Helpers for the liveness / stats / operations tests (test_liveness.py,
test_stats_metrics.py, test_signals.py).

Everything that starts a process goes through conftest's Env (so it is stopped
by pid when the test ends); the few processes that escape it (a daemonized
proxy, a SIGSTOPped backend) have their own clean-up here.
"""

import contextlib
import hashlib
import json
import os
import re
import signal
import socket
import subprocess

from conftest import HOST, NUTCRACKER_BIN, Proxy, placement, recv_all, wait_until

TWEMPROXY_BIN = "/usr/sbin/nutcracker"

# twemproxy's field order (SPEC 3 and `nutcracker -D`)
POOL_FIELDS = ["client_eof", "client_err", "client_connections", "server_ejects", "forward_error", "fragments"]
SERVER_FIELDS = ["server_eof", "server_err", "server_timedout", "server_connections", "server_ejected_at",
                 "requests", "request_bytes", "responses", "response_bytes", "in_queue", "in_queue_bytes",
                 "out_queue", "out_queue_bytes"]
TOP_FIELDS = ["service", "source", "version", "uptime", "timestamp", "total_connections", "curr_connections"]
# ours adds these after twemproxy's own keys
TOP_OURS = ["config_generation", "reload_failures", "last_reload"]
POOL_OURS = ["cross_server_refused", "auth_failed"]
POOL_LATENCY = ["latency_p50_us", "latency_p90_us", "latency_p99_us", "latency_p999_us", "latency_max_us"]
SERVER_LATENCY = ["server_" + k for k in POOL_LATENCY]

COUNTERS = {"client_eof", "client_err", "server_ejects", "forward_error", "fragments", "server_eof",
            "server_err", "server_timedout", "requests", "request_bytes", "responses", "response_bytes"}

LOG_LINE = re.compile(r"^\[(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d)\.\d{3}\] [A-Za-z0-9_.-]+\.c:\d+ \S.*$")


# --------------------------------------------------------------------------- stats

def raw_stats(port, host=HOST, timeout=5.0):
    """Connect to the stats port, send nothing, read until the proxy closes."""
    s = socket.create_connection((host, port), timeout=timeout)
    try:
        return recv_all(s)
    finally:
        s.close()


def ordered(raw):
    """The stats document as nested lists of (key, value) pairs, in document order."""
    return json.loads(raw, object_pairs_hook=lambda pairs: pairs)


def layout_skeleton(raw):
    """The stats text with every number replaced by 0 and our extra keys
    removed: what must be identical to twemproxy's output."""
    text = raw.decode()
    text = re.sub(r', "(?:server_)?latency_[a-z0-9]+_us":-?\d+', "", text)
    text = re.sub(r', "(?:%s)":(?:-?\d+|"[a-z]*")' % "|".join(TOP_OURS + POOL_OURS), "", text)
    return re.sub(r'("[^"]*":)-?\d+', r"\g<1>0", text)


# --------------------------------------------------------------------------- processes

def thread_states(pid):
    """The state letter of each thread of pid (R, S, T for stopped, ...)."""
    out = []
    for tid in os.listdir("/proc/%d/task" % pid):
        with open("/proc/%d/task/%s/stat" % (pid, tid)) as f:
            out.append(f.read().rsplit(")", 1)[1].split()[0])
    return out


def stop_process(pid):
    """SIGSTOP pid and return once every thread of it is stopped: a stop
    signal takes effect as each thread next leaves the kernel, not at kill()."""
    os.kill(pid, signal.SIGSTOP)
    wait_until(lambda: all(st == "T" for st in thread_states(pid)), "pid %d stopped" % pid)


@contextlib.contextmanager
def stalled(server):
    """SIGSTOP a backend for the duration of the block (SIGCONT on the way out).
    A test that expects something of the stall must first wait until the proxy
    has really written its request there: see forwarded()."""
    stop_process(server.proc.pid)
    try:
        yield
    finally:
        if server.proc.poll() is None:
            os.kill(server.proc.pid, signal.SIGCONT)


def forwarded(px, pool, server, n=1, timeout=5.0):
    """Wait until the proxy has written n requests to server (name or Server)
    that are still unanswered (its out_queue gauge): with the server stalled,
    they are on the wire, not in the proxy.  Returns the stats."""
    name = server if isinstance(server, str) else server.addr
    return px.wait_stats(lambda st: st[pool][name]["out_queue"] >= n,
                         "%d request(s) written to %s and unanswered" % (n, name), timeout)


def crash(server):
    """Kill a backend the hard way (SIGKILL) and reap it."""
    if server.proc.poll() is None:
        server.proc.kill()
        server.proc.wait(10)


def start_binary(env, binary, conf, stats_port, args=(), name="proxy", listens=None):
    """Start any nutcracker binary (ours or Debian's) under env's control."""
    log = os.path.join(env.tmp, "%s-%d.log" % (name, stats_port))
    argv = [binary, "-c", conf, "-s", str(stats_port), "-a", HOST, "-i", "100", "-o", log] + list(args)
    proc, out = env.spawn(argv, name)
    return Proxy(proc, conf, log, out, stats_port, listens or {})


def pid_alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # a zombie is not alive for our purposes
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def pid_is_nutcracker(pid, binary=NUTCRACKER_BIN):
    try:
        with open("/proc/%d/cmdline" % pid, "rb") as f:
            argv0 = f.read().split(b"\0")[0].decode()
    except OSError:
        return False
    return os.path.realpath(argv0) == os.path.realpath(binary)


def kill_pid(pid, timeout=5.0):
    """Stop a process we started but do not parent (a daemon): SIGTERM, then SIGKILL."""
    if not pid_alive(pid):
        return
    os.kill(pid, signal.SIGTERM)
    try:
        wait_until(lambda: not pid_alive(pid), "pid %d to exit on SIGTERM" % pid, timeout)
    except AssertionError:
        os.kill(pid, signal.SIGKILL)
        wait_until(lambda: not pid_alive(pid), "pid %d to exit on SIGKILL" % pid, timeout)


def read_file(path):
    try:
        with open(path, "rb") as f:
            return f.read().decode("utf-8", "replace")
    except OSError:
        return None


def log_lines(path):
    return (read_file(path) or "").splitlines()


def run_capture(argv, timeout=20, cwd=None):
    """Run to completion: (exit code, stdout, stderr) as text."""
    r = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       timeout=timeout, cwd=cwd)
    return r.returncode, r.stdout.decode("utf-8", "replace"), r.stderr.decode("utf-8", "replace")


# --------------------------------------------------------------------------- placement

def keys_by_server(servers, prefix, per_server):
    """Keys grouped by the server twemproxy puts them on, at least per_server
    for each server: (all keys, {key: server}, {server addr: [keys]}).
    Key names are spread with md5: fnv1a_64 (reduced to 32 bits) maps
    sequential names like "k:1", "k:2" to neighbouring continuum points."""
    groups = {s.addr: [] for s in servers}
    keys, where = [], {}
    i = 0
    while any(len(g) < per_server for g in groups.values()):
        assert i < 100000, "cannot find keys for every server"
        batch = ["%s:%s" % (prefix, hashlib.md5(b"%d" % j).hexdigest()[:10]) for j in range(i, i + 64)]
        i += 64
        for k, srv in placement(batch, servers).items():
            if len(groups[srv.addr]) < per_server:
                groups[srv.addr].append(k)
                keys.append(k)
                where[k] = srv
    return keys, where, groups


# --------------------------------------------------------------------------- HTTP / Prometheus

def http_get(port, path, host=HOST, timeout=5.0):
    """(status code, {header: value}, body text) of one HTTP/1.0 GET."""
    s = socket.create_connection((host, port), timeout=timeout)
    try:
        s.sendall(("GET %s HTTP/1.0\r\nHost: %s:%d\r\n\r\n" % (path, host, port)).encode())
        data = recv_all(s)
    finally:
        s.close()
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {}
    for l in lines[1:]:
        k, _, v = l.partition(":")
        headers[k.strip().lower()] = v.strip()
    return status, headers, body.decode()


_SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$')
_LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"(?:,|$)')


class Prom:
    """A parsed Prometheus text exposition."""

    def __init__(self, text):
        self.types, self.helps, self.samples = {}, {}, {}
        for line in text.splitlines():
            if not line.strip():
                continue
            if line.startswith("# TYPE "):
                _, _, name, typ = line.split(" ", 3)
                self.types[name] = typ
                continue
            if line.startswith("# HELP "):
                _, _, name, help_ = (line.split(" ", 3) + [""])[:4]
                self.helps[name] = help_
                continue
            if line.startswith("#"):
                continue
            m = _SAMPLE.match(line)
            assert m, "not a Prometheus sample line: %r" % line
            name, labels, value = m.group(1), m.group(2) or "", m.group(3)
            lab = dict(_LABEL.findall(labels))
            key = (name, tuple(sorted(lab.items())))
            assert key not in self.samples, "duplicate sample %r" % line
            self.samples[key] = float(value)

    def get(self, name, **labels):
        return self.samples.get((name, tuple(sorted(labels.items()))))

    def family(self, name):
        return {k[1]: v for k, v in self.samples.items() if k[0] == name}

    def state(self, name, **labels):
        """The state label of the one-hot gauge name (nutcracker_server_state,
        nutcracker_replica_state) whose value is 1 for labels; every state has a
        sample and exactly one is 1."""
        want = set(labels.items())
        found = {dict(k)["state"]: v for k, v in self.family(name).items() if want <= set(k)}
        assert set(found) == {"live", "failing", "ejected", "no_reads"}, (name, labels, found)
        ones = [st for st, v in found.items() if v == 1]
        assert len(ones) == 1 and sum(found.values()) == 1, (name, labels, found)
        return ones[0]


def prom_name(field, pool_level):
    """Our Prometheus family name for a twemproxy stats field."""
    suffix = "_total" if field in COUNTERS else ""
    if pool_level:
        return "nutcracker_pool_%s%s" % (field, suffix)
    base = field[len("server_"):] if field.startswith("server_") else field
    return "nutcracker_server_%s%s" % (base, suffix)
