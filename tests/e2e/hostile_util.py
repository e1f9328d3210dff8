"""Helpers for the reliability tests: test_memory_bounds.py, test_backend_faults.py,
test_hostile_clients.py, and the soak (tests/soak/soak.py).

- process figures: rss_bytes(), fd_count(), RssSampler (background max-RSS sampling);
- ProbeClient: a well-behaved client (redis-py or pymemcache) doing SET/GET round
  trips on its own keys, timing each and checking every answer;
- LoadClient: a real-client load generator (redis-py pipelines or pymemcache) that
  counts requests sent vs answered, checks every answer is a value of the right key
  or an error reply, and records the slowest reply;
- raw-socket helpers for hostile bytes.

Everything here that starts something (threads) has a stop() that ends it;
processes are started through conftest's Env (stopped by pid).  The misbehaving
backend lives in fakeserver.py.
"""

import collections
import os
import random
import resource
import select
import socket
import threading
import time

from conftest import HOST, NUTCRACKER_BIN

MB = 1 << 20
KB = 1 << 10

# The proxy's documented per-client limits (README "Behaviour worth knowing").
CLIENT_MAX_BUFFER = 64 * MB  # --client-buffer-limit: unread replies before reading pauses
REQUEST_MAX_DEFAULT = 513 * MB  # --request-size-limit: the largest request
CLIENT_MAX_INFLIGHT = 4096  # requests in flight before reading pauses


# --------------------------------------------------------------------------- process figures

def rss_bytes(pid):
    """VmRSS of pid in bytes (0 when the process is gone)."""
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def fd_count(pid):
    """Open file descriptors of pid (ls /proc/pid/fd)."""
    try:
        return len(os.listdir("/proc/%d/fd" % pid))
    except OSError:
        return -1


def mb(n):
    return n / MB


def _sanitized(path):
    try:
        with open(path, "rb") as f:
            return b"__asan_init" in f.read()
    except OSError:
        return False


# Under ASan the allocator keeps freed memory in quarantine (256 MB by default) and
# realloc always copies: RSS says nothing about the proxy's own bounds there.
SANITIZED = os.environ.get("NC_SANITIZED") == "1" or _sanitized(NUTCRACKER_BIN)


def assert_rss_below(rss, bound, what):
    """assert rss < bound, except under a sanitizer build (printed, not asserted)."""
    if SANITIZED:
        print("  (sanitizer build: RSS bound not checked: %s %.1f MB vs %.1f MB)" % (what, mb(rss), mb(bound)))
        return
    assert rss < bound, "%s: RSS %.1f MB > bound %.1f MB" % (what, mb(rss), mb(bound))


def unchanged_for(sample, seconds):
    """A predicate for wait_until: true once sample() has returned the same value
    for `seconds`.  For tests whose behaviour is that something stops (the proxy
    no longer takes a client's bytes): the window is what is tested."""
    state = {"value": object(), "since": 0.0}

    def pred():
        v, now = sample(), time.monotonic()
        if v != state["value"]:
            state["value"], state["since"] = v, now
            return False
        return now - state["since"] >= seconds
    return pred


def raise_nofile(want):
    """Raise this process's RLIMIT_NOFILE soft limit to want (capped by the hard
    limit); returns the new soft limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    cap = hard if hard != resource.RLIM_INFINITY else want
    new = max(soft, min(want, cap))
    if new != soft:
        resource.setrlimit(resource.RLIMIT_NOFILE, (new, hard))
    return new


class RssSampler:
    """Samples a pid's RSS every `interval` s in a thread; .max is the peak seen."""

    def __init__(self, pid, interval=0.05):
        self.pid, self.interval = pid, interval
        self.max = rss_bytes(pid)
        self.samples = 0
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        while not self._stop.is_set():
            v = rss_bytes(self.pid)
            self.samples += 1
            if v > self.max:
                self.max = v
            self._stop.wait(self.interval)  # the sampling period

    def start(self):
        self._t.start()
        return self

    def stop(self):
        self._stop.set()
        self._t.join(5)
        return self.max

    def __enter__(self):
        return self.start()

    def __exit__(self, *a):
        self.stop()


def percentile(values, p):
    if not values:
        return float("nan")
    v = sorted(values)
    i = min(len(v) - 1, max(0, int(round(p / 100.0 * len(v) + 0.5)) - 1))
    return v[i]


def latency_line(name, lat):
    """'name: n=.. p50=..ms p99=..ms max=..ms' for a list of seconds."""
    if not lat:
        return "%s: no samples" % name
    return "%s: n=%d p50=%.2fms p99=%.2fms max=%.2fms" % (
        name, len(lat), 1000 * percentile(lat, 50), 1000 * percentile(lat, 99), 1000 * max(lat))


# --------------------------------------------------------------------------- well-behaved probe

class ProbeClient:
    """A well-behaved client measured while something else goes on: sequential
    SET then GET of its own keys through a real client library; every answer must
    be exactly right.  Latencies (seconds, per round trip) go to a named phase:
    probe.phase("before") ... probe.phase("during")."""

    def __init__(self, port, proto="redis", prefix="probe", timeout=10.0, pace=0.0):
        self.port, self.proto, self.prefix, self.timeout, self.pace = port, proto, prefix, timeout, pace
        self.lat = collections.defaultdict(list)
        self.errors = []
        self.ops = 0
        self._phase = "before"
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._run, daemon=True)

    def phase(self, name):
        self._phase = name

    def _client(self):
        if self.proto == "redis":
            import redis
            return redis.Redis(host=HOST, port=self.port, socket_timeout=self.timeout,
                               socket_connect_timeout=self.timeout, single_connection_client=True)
        from pymemcache.client.base import Client
        return Client((HOST, self.port), timeout=self.timeout, connect_timeout=self.timeout)

    def _run(self):
        cl = None
        i = 0
        while not self._stop.is_set():
            key = "%s:%d" % (self.prefix, i % 64)
            val = ("%s=%d" % (key, i)).encode()
            try:
                if cl is None:
                    cl = self._client()
                t0 = time.monotonic()
                if self.proto == "redis":
                    ok = cl.set(key, val)
                    got = cl.get(key)
                else:
                    ok = cl.set(key, val, noreply=False)
                    got = cl.get(key)
                dt = time.monotonic() - t0
                self.lat[self._phase].append(dt / 2)
                self.ops += 2
                if ok is not True or got != val:
                    self.errors.append("%s: set -> %r, get -> %r (want %r)" % (key, ok, got, val))
            except Exception as e:  # every failure is recorded, the probe goes on
                self.errors.append("%s: %s: %s" % (key, type(e).__name__, e))
                try:
                    cl.close()
                except Exception:
                    pass
                cl = None
                self._stop.wait(0.05)  # the client's back-off before it reconnects
            i += 1
            if self.pace:
                self._stop.wait(self.pace)  # the client's pace
        if cl is not None:
            try:
                cl.close()
            except Exception:
                pass

    def start(self):
        self._t.start()
        return self

    def stop(self):
        self._stop.set()
        self._t.join(self.timeout * 3 + 5)
        assert not self._t.is_alive(), "probe client thread did not stop"

    def report(self):
        return "; ".join(latency_line("probe %s" % k, v) for k, v in self.lat.items())


# --------------------------------------------------------------------------- load client

def raw_error_parser():
    """redis-py's parser, except that an error reply keeps its text as sent
    ("ERR Connection refused", not "Connection refused"), so the tests can tell the
    proxy's "-ERR <reason>" from any other error line."""
    from redis.connection import PythonParser
    from redis.exceptions import ResponseError

    class RawErrorParser(PythonParser):
        def parse_error(self, response):
            return ResponseError(response)

    return RawErrorParser


def redis_client(port, timeout):
    """A redis-py client on port whose error replies keep their full text."""
    import redis
    pool = redis.ConnectionPool(host=HOST, port=port, socket_timeout=timeout, socket_connect_timeout=timeout,
                                parser_class=raw_error_parser())
    return redis.Redis(connection_pool=pool)


def close_client(cl):
    """Close a redis-py or pymemcache client and its sockets (a redis-py client
    given its own pool keeps the pool's connections open on close())."""
    try:
        cl.close()
        pool = getattr(cl, "connection_pool", None)
        if pool is not None:
            pool.disconnect()
    except Exception:
        pass


def exc_text(e):
    """The text of a pymemcache error (its argument may be bytes)."""
    a = e.args[0] if e.args else ""
    if isinstance(a, bytes):
        a = a.decode("utf-8", "replace")
    return str(a).strip()


class LoadClient:
    """Load through a real client library, counting requests sent vs answered.

    redis: redis-py pipelines of `depth` commands (SET, GET, MGET, DEL) with
    raise_on_error=False, so each command's answer is a value or a ResponseError.
    memcached: pymemcache set / get / get_many / delete, one request at a time.

    An answer is correct when it is a value of the key asked for (values are
    "<key>=<seq>..."), a miss (backends restart empty, ejection rehashes), or an
    error reply from the proxy ("ERR ..." / "SERVER_ERROR ...").  No answer within
    `reply_timeout` (socket timeout), a closed connection or a wrong answer is a
    failure.  Figures: sent, answered, errors by message, slowest batch."""

    def __init__(self, port, proto, keys, reply_timeout, depth=8, value_size=64, seed=0, name=None,
                 ops=("set", "get", "mget", "del"), pace=0.002):
        self.port, self.proto, self.keys = port, proto, list(keys)
        self.reply_timeout, self.depth, self.value_size = reply_timeout, depth, value_size
        self.rng = random.Random(seed)
        self.name = name or "%s-%d" % (proto, port)
        self.ops = ops
        self.pace = pace  # seconds between batches: keeps the load modest on a shared machine
        self.sent = 0
        self.answered = 0
        self.ok = 0
        self.errors = collections.Counter()
        self.failures = []
        self.max_latency = 0.0
        self.latencies = []
        self.connects = 0
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._run, daemon=True)
        self._seq = 0

    # -- helpers
    def _value(self, key):
        self._seq += 1
        v = ("%s=%d=" % (key, self._seq)).encode()
        return v + b"v" * max(0, self.value_size - len(v))

    def _fail(self, msg):
        if len(self.failures) < 50:
            self.failures.append(msg)
        else:
            self.failures[-1] = "... %s" % msg

    def _check_value(self, key, v):
        if v is None:
            return True
        if isinstance(v, (bytes, bytearray)) and v.startswith(key.encode() + b"="):
            return True
        self._fail("%s: answer %r is not a value of this key" % (key, v[:80] if isinstance(v, bytes) else v))
        return False

    def _client(self):
        self.connects += 1
        if self.proto == "redis":
            return redis_client(self.port, self.reply_timeout)
        from pymemcache.client.base import Client
        return Client((HOST, self.port), timeout=self.reply_timeout, connect_timeout=self.reply_timeout)

    # -- redis
    def _redis_batch(self, cl):
        import redis
        pipe = cl.pipeline(transaction=False)
        plan = []
        for _ in range(self.depth):
            op = self.rng.choice(self.ops)
            if op == "set":
                k = self.rng.choice(self.keys)
                pipe.set(k, self._value(k))
                plan.append((op, [k]))
            elif op == "get":
                k = self.rng.choice(self.keys)
                pipe.get(k)
                plan.append((op, [k]))
            elif op == "mget":
                ks = self.rng.sample(self.keys, min(4, len(self.keys)))
                pipe.mget(ks)
                plan.append((op, ks))
            else:
                k = self.rng.choice(self.keys)
                pipe.delete(k)
                plan.append((op, [k]))
        t0 = time.monotonic()
        self.sent += len(plan)
        try:
            res = pipe.execute(raise_on_error=False)
        except (redis.exceptions.TimeoutError, redis.exceptions.ConnectionError) as e:
            self._fail("batch of %d: %s: %s after %.2fs" % (len(plan), type(e).__name__, e,
                                                               time.monotonic() - t0))
            return False
        dt = time.monotonic() - t0
        self.latencies.append(dt)
        self.max_latency = max(self.max_latency, dt)
        if len(res) != len(plan):
            self._fail("batch of %d got %d answers" % (len(plan), len(res)))
            return False
        for (op, ks), r in zip(plan, res):
            self.answered += 1
            if isinstance(r, redis.exceptions.ResponseError):
                msg = str(r)
                self.errors[msg] += 1
                if not msg.startswith("ERR "):
                    self._fail("%s %s: unexpected error reply %r" % (op, ks[0], msg))
                continue
            if isinstance(r, Exception):
                self._fail("%s %s: %r" % (op, ks[0], r))
                continue
            good = True
            if op == "set":
                good = r is True
                if not good:
                    self._fail("set %s -> %r" % (ks[0], r))
            elif op == "get":
                good = self._check_value(ks[0], r)
            elif op == "mget":
                if not isinstance(r, list) or len(r) != len(ks):
                    self._fail("mget %s -> %r" % (ks, r))
                    good = False
                else:
                    good = all(self._check_value(k, v) for k, v in zip(ks, r))
            else:
                good = isinstance(r, int) and r in (0, 1)
                if not good:
                    self._fail("del %s -> %r" % (ks[0], r))
            if good:
                self.ok += 1
        return True

    # -- memcached
    def _mc_one(self, cl):
        from pymemcache.exceptions import (MemcacheClientError, MemcacheServerError,
                                           MemcacheUnexpectedCloseError, MemcacheUnknownError)
        op = self.rng.choice([o for o in self.ops if o in ("set", "get", "mget", "del")])
        k = self.rng.choice(self.keys)
        t0 = time.monotonic()
        self.sent += 1
        try:
            if op == "set":
                r = cl.set(k, self._value(k), noreply=False)
                good = r is True
            elif op == "get":
                r = cl.get(k)
                good = self._check_value(k, r)
            elif op == "mget":
                ks = self.rng.sample(self.keys, min(4, len(self.keys)))
                r = cl.get_many(ks)
                good = isinstance(r, dict) and set(r) <= set(ks) and all(
                    self._check_value(kk, v) for kk, v in r.items())
            else:
                r = cl.delete(k, noreply=False)
                good = r in (True, False)
            self.answered += 1
            if good:
                self.ok += 1
            elif op in ("set", "del", "mget"):
                self._fail("%s %s -> %r" % (op, k, r))
        except MemcacheServerError as e:  # SERVER_ERROR <reason>: an answer
            self.answered += 1
            self.errors["SERVER_ERROR " + exc_text(e)] += 1
        except (MemcacheClientError, MemcacheUnknownError) as e:
            self.answered += 1
            self._fail("%s %s: unexpected answer %s: %s" % (op, k, type(e).__name__, e))
            return False
        except (socket.timeout, MemcacheUnexpectedCloseError, OSError) as e:
            self._fail("%s %s: %s: %s after %.2fs" % (op, k, type(e).__name__, e, time.monotonic() - t0))
            return False
        dt = time.monotonic() - t0
        self.latencies.append(dt)
        self.max_latency = max(self.max_latency, dt)
        return True

    def _run(self):
        cl = None
        while not self._stop.is_set():
            try:
                if cl is None:
                    cl = self._client()
                good = self._redis_batch(cl) if self.proto == "redis" else self._mc_one(cl)
            except Exception as e:  # a bug in the client side must not hang the test
                self._fail("client exception %s: %s" % (type(e).__name__, e))
                good = False
            if not good:
                close_client(cl)
                cl = None
                self._stop.wait(0.05)  # the client's back-off before it reconnects
            elif self.pace:
                self._stop.wait(self.pace)  # the client's pace
        if cl is not None:
            close_client(cl)

    def start(self):
        self._t.start()
        return self

    def stop(self):
        self._stop.set()

    def join(self):
        self._t.join(self.reply_timeout * 2 + 10)
        assert not self._t.is_alive(), "%s: load thread did not stop" % self.name

    def summary(self):
        return "%-10s sent=%d answered=%d ok=%d errors=%d max_reply=%.2fs p99=%.1fms connects=%d %s" % (
            self.name, self.sent, self.answered, self.ok, sum(self.errors.values()), self.max_latency,
            1000 * percentile(self.latencies, 99), self.connects,
            dict(self.errors.most_common(4)))


# --------------------------------------------------------------------------- raw sockets

def raw_connect(port, timeout=10.0):
    s = socket.create_connection((HOST, port), timeout=timeout)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s


def recv_until(s, suffix):
    """Every byte s receives up to and including suffix (which ends them);
    fails if the connection closes first."""
    got = b""
    while not got.endswith(suffix):
        b = s.recv(65536)
        assert b, "the connection closed; got %r" % got[-300:]
        got += b
    return got


def recv_rest(s):
    """Every byte s receives until the peer closes (or resets) or its timeout
    passes in silence: (the bytes, whether it closed)."""
    got = b""
    try:
        while True:
            b = s.recv(65536)
            if not b:
                return got, True
            got += b
    except (ConnectionResetError, BrokenPipeError):
        return got, True
    except socket.timeout:
        return got, False


def abort(s):
    """Close with RST (SO_LINGER 0): no TIME_WAIT left behind."""
    try:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    except OSError:
        pass
    s.close()


def send_until_closed(s, head, filler, max_bytes, max_seconds):
    """Send head then filler over and over (non-blocking) until the peer closes,
    max_bytes were sent or max_seconds passed; collect what the peer answers.
    Returns (bytes sent, bytes received, how it ended: 'closed' | 'limit')."""
    s.setblocking(False)
    sent, got = 0, b""
    pending = head
    deadline = time.monotonic() + max_seconds
    closed = False
    while time.monotonic() < deadline and sent < max_bytes:
        r, w, _ = select.select([s], [s] if pending or filler else [], [], 0.2)
        if r:
            try:
                b = s.recv(65536)
            except (ConnectionResetError, BrokenPipeError):
                b = b""
            if not b:
                closed = True
                break
            got += b
        if w:
            try:
                n = s.send(pending or filler)
                sent += n
                pending = (pending or filler)[n:]
            except BlockingIOError:
                pass
            except (ConnectionResetError, BrokenPipeError):
                closed = True
                break
    # whatever is still on its way (the error reply), then EOF
    s.setblocking(True)
    s.settimeout(min(5.0, max(0.5, deadline - time.monotonic())))
    rest, eof = recv_rest(s)
    return sent, got + rest, "closed" if closed or eof else "limit"
