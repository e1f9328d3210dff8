"""Memory stays bounded under hostile clients (SPEC 7: "memory stays bounded under any
input"; README: a request larger than --request-size-limit is refused with an error and
the client closed (a memcached value: dropped as it comes, the client goes on); a client that does not read its replies is not read from while it
holds more than 64 MB of replies or 4096 requests in flight).  The proxy of these tests
refuses requests over 64 MB (the default is 513 MB, so that any value redis takes
passes), which keeps the RSS bounds small enough to mean something.

Bounds are computed from those documented limits and the proxy's RSS before the test
(VmRSS in /proc/<pid>/status); each test also checks that without the limit the same
traffic would need far more than the bound, so the bound means something.
"""

import socket
import threading
import time

import pytest

from conftest import HOST, encode_command, mc_pool, placement, redis_pool, spread_keys, wait_until
from hostile_util import (CLIENT_MAX_BUFFER, CLIENT_MAX_INFLIGHT, MB, REQUEST_MAX_DEFAULT, SANITIZED,
                          ProbeClient, RssSampler, abort,
                          assert_rss_below, fd_count, mb, raise_nofile, raw_connect, rss_bytes,
                          send_until_closed, unchanged_for)
from liveness_util import stalled

REQUEST_MAX = CLIENT_MAX_BUFFER  # this file's --request-size-limit
SLACK = 40 * MB  # allocator rounding, the buffer pool, kernel-side timing: generous on purpose
VALUE_SIZE = 1024
NKEYS = 8  # divides the 1000 GETs of each _Pipeliner chunk
NREQ = 200_000


@pytest.fixture(scope="module")
def backends(menv):
    return menv.redis(), menv.memcached()


@pytest.fixture
def proxy(env, backends):
    r, m = backends
    return env.proxy({"r": redis_pool([r], timeout=5000), "m": mc_pool([m], timeout=5000)},
                     extra_args=["--request-size-limit=%d" % REQUEST_MAX])


def _values():
    """NKEYS keys with distinct 1 KB values, and the exact RESP reply of each GET."""
    keys = ["mb:k%02d" % j for j in range(NKEYS)]
    vals = [bytes([65 + j]) * (VALUE_SIZE - 8) + b"%08d" % j for j in range(NKEYS)]
    replies = [b"$%d\r\n%s\r\n" % (len(v), v) for v in vals]
    return keys, vals, replies


def _queued(server_stats):
    """Request bytes the proxy holds for a server (not yet written, or not yet answered)."""
    return server_stats["in_queue_bytes"] + server_stats["out_queue_bytes"]


def _reply_bound(base):
    """RSS the proxy may reach with one client that stopped reading: its base, the
    64 MB of unread replies, the replies of the 4096 requests in flight, slack."""
    return base + CLIENT_MAX_BUFFER + CLIENT_MAX_INFLIGHT * (VALUE_SIZE + 16) + SLACK


class _Pipeliner:
    """Sends NREQ GETs (keys in turn) on a raw socket from a thread, without reading."""

    def __init__(self, sock, keys):
        self.sock, self.keys = sock, keys
        self.sent = 0
        self.error = None
        self.t = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        per = 1000
        chunk = b"".join(encode_command("GET", self.keys[i % len(self.keys)]) for i in range(per))
        try:
            for _ in range(NREQ // per):  # NKEYS divides 1000: the key cycle restarts each chunk
                self.sock.sendall(chunk)
                self.sent += per
        except OSError as e:
            self.error = e

    def start(self):
        self.t.start()
        return self


class _OrderedReader:
    """Checks a stream of GET replies against the expected cycle of replies."""

    def __init__(self, replies):
        self.cycle = b"".join(replies)
        self.period = len(self.cycle)
        self.total = NREQ // len(replies) * self.period
        self.got = 0
        self.mismatch = None

    def feed(self, data):
        off = self.got % self.period
        n = len(data)
        want = (self.cycle * ((off + n) // self.period + 1))[off:off + n]
        if self.mismatch is None and data != want:
            i = next(i for i in range(n) if data[i] != want[i])
            self.mismatch = "reply stream differs at byte %d: got %r want %r" % (
                self.got + i, data[i:i + 40], want[i:i + 40])
        self.got += n


def _wait_stalled(pid, pipeliner, limit=20.0):
    """Wait until the proxy stopped taking requests: RSS (in MB) and the bytes
    the pipeliner got out both unchanged for a second (or the pipeliner finished)."""
    try:
        wait_until(unchanged_for(lambda: (pipeliner.sent, rss_bytes(pid) >> 20), 1.0),
                   "the proxy to stop taking the requests of a client that does not read", limit, 0.1)
        return True
    except AssertionError:
        return False


def test_client_not_reading_its_replies_keeps_rss_bounded_then_gets_every_reply_in_order(proxy, backends):
    keys, vals, replies = _values()
    c = proxy.client("r")
    for k, v in zip(keys, vals):
        assert c.set(k, v) is True
    pid = proxy.proc.pid
    base = rss_bytes(pid)
    bound = _reply_bound(base)
    unbounded = NREQ * len(replies[0])
    assert unbounded > bound + 64 * MB, "test parameters do not make the bound meaningful"

    s = raw_connect(proxy.port("r"), timeout=30)
    sampler = RssSampler(pid).start()
    pip = _Pipeliner(s, keys).start()
    paused = _wait_stalled(pid, pip)
    peak_paused = sampler.max

    # another client is served normally meanwhile
    other = proxy.client("r", socket_timeout=5)
    for i in range(50):
        assert other.set("mb:other:%d" % i, b"o%d" % i) is True
        assert other.get("mb:other:%d" % i) == b"o%d" % i
    forwarded = proxy.stats()["r"][backends[0].addr]["requests"]

    reader = _OrderedReader(replies)
    t0 = time.monotonic()
    s.settimeout(10)
    try:
        while reader.got < reader.total and time.monotonic() - t0 < 60:
            b = s.recv(1 << 20)
            if not b:
                break
            reader.feed(b)
    except socket.timeout:
        pass  # reported below as missing replies
    pip.t.join(30)
    sampler.stop()
    print("\n[unread replies] base RSS %.1f MB, RSS while paused %.1f MB, peak %.1f MB (bound %.1f MB, "
          "unbounded would be %.1f MB); proxy had forwarded %d of %d GETs while paused; read back in %.1fs"
          % (mb(base), mb(peak_paused), mb(sampler.max), mb(bound), mb(unbounded), forwarded, NREQ,
             time.monotonic() - t0))
    s.close()
    assert paused, "the proxy kept taking requests from a client that does not read"
    assert forwarded < NREQ, "no backpressure: every GET was forwarded"
    assert_rss_below(peak_paused, bound, "while the client did not read")
    assert pip.error is None and pip.sent == NREQ
    assert reader.mismatch is None, reader.mismatch
    assert reader.got == reader.total, "got %d of %d reply bytes" % (reader.got, reader.total)
    assert proxy.alive()


def test_a_new_client_pipelining_large_replies_it_does_not_read_stays_near_its_limit(env, backends):
    """A client's first pipeline: before any reply tells their size, the proxy
    sends at most a window of 16 requests, which grows by two with each reply,
    so the bytes bound applies from the first replies on. It sent 4096 at once:
    a pipeline of GETs of a 256 KB value, not read, pinned 1 GB in the proxy
    (with --client-buffer-limit=8m), and those replies, queued on the shared
    server connection, held every other client's replies behind them."""
    r, _ = backends
    limit = 8 * MB
    px = env.proxy({"r": redis_pool([r], timeout=5000)},
                   extra_args=["--client-buffer-limit=%d" % limit])
    size, n = 256 * 1024, 3000
    value = b"v" * size
    assert px.client("r").set("mb:big", value) is True
    pid = px.proc.pid
    base = rss_bytes(pid)
    bound = base + limit + 16 * size + SLACK
    assert n * size > bound + 256 * MB, "test parameters do not make the bound meaningful"
    s = raw_connect(px.port("r"), timeout=30)
    sampler = RssSampler(pid).start()
    s.sendall(encode_command("GET", "mb:big") * n)  # fits the socket buffers: it returns
    wait_until(unchanged_for(lambda: rss_bytes(pid) >> 20, 1.0), "the proxy to stop", 20, 0.1)
    peak_paused = sampler.max
    other = px.client("r", socket_timeout=2)
    assert other.get("mb:big") == value  # served meanwhile, not behind the unread ones
    reply = b"$%d\r\n%s\r\n" % (size, value)
    got, s_total = 0, n * len(reply)
    s.settimeout(10)
    while got < s_total:
        b = s.recv(1 << 20)
        assert b, "connection closed after %d of %d bytes" % (got, s_total)
        off = got % len(reply)
        want = (reply * (len(b) // len(reply) + 2))[off:off + len(b)]
        assert b == want, "reply stream differs after %d bytes" % got
        got += len(b)
    sampler.stop()
    s.close()
    print("\n[first pipeline, 256 KB replies] base %.1f MB, paused %.1f MB (bound %.1f MB)"
          % (mb(base), mb(peak_paused), mb(bound)))
    assert got == s_total
    assert_rss_below(peak_paused, bound, "a new client's unread pipeline of large replies")


def test_slow_reader_that_keeps_pipelining_keeps_rss_bounded(proxy):
    """A client that reads, but slower than the proxy answers, while it keeps
    pipelining: the unread replies never exceed 64 MB, so RSS must stay under the
    same bound all along (not grow with the bytes the client has been sent)."""
    keys, vals, replies = _values()
    c = proxy.client("r")
    for k, v in zip(keys, vals):
        assert c.set(k, v) is True
    pid = proxy.proc.pid
    base = rss_bytes(pid)
    bound = _reply_bound(base)

    s = raw_connect(proxy.port("r"), timeout=30)
    sampler = RssSampler(pid).start()
    pip = _Pipeliner(s, keys).start()
    reader = _OrderedReader(replies)
    t0 = time.monotonic()
    s.settimeout(10)
    try:
        while reader.got < reader.total and time.monotonic() - t0 < 60:
            b = s.recv(64 * 1024)
            if not b:
                break
            reader.feed(b)
            time.sleep(0.001)  # the behaviour under test: ~ 50 MB/s, slower than the proxy answers
    except socket.timeout:
        pass  # reported below as missing replies
    pip.t.join(30)
    sampler.stop()
    s.close()
    print("\n[slow reader] base RSS %.1f MB, peak %.1f MB (bound %.1f MB), %.1f MB read in %.1fs"
          % (mb(base), mb(sampler.max), mb(bound), mb(reader.got), time.monotonic() - t0))
    assert reader.mismatch is None, reader.mismatch
    assert reader.got == reader.total, "got %d of %d reply bytes" % (reader.got, reader.total)
    assert_rss_below(sampler.max, bound, "peak while a slow reader caught up")


MC_TOO_LARGE = b"SERVER_ERROR object too large for cache\r\n"
ENDLESS = [
    # (pool, head, what the answer must start with, how the connection ends)
    ("r", b"*2\r\n$3\r\nGET\r\n$999999999\r\n", b"-ERR ", "closed"),
    ("r", b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$%d\r\n" % (REQUEST_MAX + 1),
     b"-ERR request exceeds the proxy's request size limit\r\n", "closed"),
    ("r", b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$%d\r\n" % (REQUEST_MAX - 1024), b"-ERR Protocol error",
     "closed"),
    ("r", b"GET ", b"-ERR ", "closed"),  # an inline command that never ends
    ("r", b"*2\r\n$3\r\nGET\r\n$", b"-ERR Protocol error", "closed"),  # a length that never ends
    # a memcached value over the limit is dropped as it comes, as memcached drops
    # one over its item size: the connection stays (longer than this test sends)...
    ("m", b"set k 0 0 999999999\r\n", MC_TOO_LARGE, "limit"),
    # ... and once the value's bytes are over, the x that follow are a line too long
    ("m", b"set k 0 0 %d\r\n" % (REQUEST_MAX + 1), MC_TOO_LARGE + b"CLIENT_ERROR line too long\r\n",
     "closed"),
    # a get line that never ends: as long as memcached's may be, up to the limit
    ("m", b"get ", b"SERVER_ERROR request exceeds the proxy's request size limit\r\n", "closed"),
    ("m", b"gex ", b"CLIENT_ERROR line too long\r\n", "closed"),  # any other line: 2048 bytes
]


@pytest.mark.parametrize("pool,head,answer,ends", ENDLESS, ids=[
    "redis-bulk-999999999", "redis-bulk-64MB+1", "redis-bulk-64MB-1K-overrun", "redis-endless-inline",
    "redis-endless-length", "mc-set-999999999", "mc-set-64MB+1", "mc-endless-get-line",
    "mc-endless-line"])
def test_endless_request_gets_an_error_and_is_closed_rss_bounded(proxy, pool, head, answer, ends):
    """The header (or line) is followed by 'x' forever: the client gets an error and
    is closed after at most the 64 MB request limit plus what sits in socket buffers
    (a memcached value over the limit: its bytes are dropped as they come), RSS stays
    under the limit plus slack, and a client of each pool is served meanwhile."""
    pid = proxy.proc.pid
    base = rss_bytes(pid)
    bound = base + REQUEST_MAX + SLACK
    probes = [ProbeClient(proxy.port("r"), "redis", prefix="probe-r").start(),
              ProbeClient(proxy.port("m"), "mc", prefix="probe-m").start()]
    with RssSampler(pid) as smp:
        s = raw_connect(proxy.port(pool), timeout=10)
        sent, got, how = send_until_closed(s, head, b"x" * 65536, max_bytes=REQUEST_MAX + 64 * MB,
                                           max_seconds=30)
        s.close()
    for p in probes:
        p.stop()
    print("\n[endless %s %r] sent %.1f MB, answer %r, %s; RSS base %.1f MB peak %.1f MB (bound %.1f MB)"
          % (pool, head[:30], mb(sent), got[:80], how, mb(base), mb(smp.max), mb(bound)))
    assert got.startswith(answer), got[:200]
    assert how == ends, "the connection ended by %r" % how
    if b"request size limit" in answer:
        with open(proxy.log) as f:
            assert "is over --request-size-limit (%d): refused" % REQUEST_MAX in f.read()
    assert_rss_below(smp.max, bound, "peak during the endless request")
    for p in probes:
        assert p.ops > 0 and not p.errors, p.errors[:5]
    assert proxy.alive()


@pytest.mark.parametrize("pool", ["r", "m"])
def test_512mb_value_is_refused_rss_bounded(proxy, pool):
    """SET of a 512 MB value, sent in full as a client would: refused with an error
    as soon as the header is seen (over this proxy's 64 MB --request-size-limit), RSS
    not near 512 MB. redis: the connection closed. memcached: the value dropped as it
    comes, as memcached drops one over its item size, and the connection goes on."""
    size = 512 * MB
    pid = proxy.proc.pid
    base = rss_bytes(pid)
    bound = base + REQUEST_MAX + SLACK
    with RssSampler(pid) as smp:
        s = raw_connect(proxy.port(pool), timeout=10)
        if pool == "r":
            head = b"*3\r\n$3\r\nSET\r\n$6\r\nbig512\r\n$%d\r\n" % size
            sent, got, how = send_until_closed(s, head, b"v" * (1 << 20), max_bytes=size + 2, max_seconds=30)
            assert got.startswith(b"-ERR request exceeds the proxy's request size limit\r\n"), got[:200]
            assert how == "closed"
        else:
            s.settimeout(60)
            s.sendall(b"set big512 0 0 1\r\nA\r\nset big512 0 0 %d\r\n" % size)
            chunk = b"v" * MB
            for _ in range(size // MB):
                s.sendall(chunk)
            s.sendall(b"\r\nget big512\r\n")
            sent, got, how = size, b"", "open"
            while not got.endswith(b"END\r\n"):
                b = s.recv(4096)
                assert b, got
                got += b
            # memcached's answer, and its delete of the value the set failed to replace
            assert got == b"STORED\r\nSERVER_ERROR object too large for cache\r\nEND\r\n", got
        s.close()
    print("\n[512 MB %s] sent %.1f MB, answer %r, connection %s; RSS base %.1f MB peak %.1f MB"
          % (pool, mb(sent), got[:80], how, mb(base), mb(smp.max)))
    assert_rss_below(smp.max, bound, "peak during the 512 MB request")
    # and the pool still works
    if pool == "r":
        assert proxy.client("r").ping() is True
    else:
        assert proxy.pymc("m").set("after512", b"ok", noreply=False) is True


NIDLE = 10_000


def test_10000_idle_connections_cost_little_and_all_still_work(env, backends):
    r, m = backends
    px = env.proxy({"r": redis_pool([r], backlog=1024)})  # started first: it raises its own limit
    raise_nofile(NIDLE + 2000)
    pid = px.proc.pid
    port = px.port("r")
    assert px.client("r").set("idle:k", b"v") is True
    base = rss_bytes(pid)
    socks = []
    try:
        t0 = time.monotonic()
        for _ in range(NIDLE):
            socks.append(socket.create_connection((HOST, port), timeout=10))
        connect_s = time.monotonic() - t0
        px.wait_stats(lambda st: st["curr_connections"] >= NIDLE, "%d connections counted" % NIDLE, timeout=15)
        idle = rss_bytes(pid)
        per_conn = (idle - base) / NIDLE
        # every connection works: one PING each, written to all then read from all
        ping = encode_command("PING")
        for s in socks:
            s.sendall(ping)
        bad = 0
        for s in socks:
            data = b""
            while len(data) < 7:
                b = s.recv(64)
                if not b:
                    break
                data += b
            bad += data != b"+PONG\r\n"
        used = rss_bytes(pid)
        sample = socks[::100]
        for s in sample:
            s.sendall(encode_command("GET", "idle:k"))
        sample_ok = sum(s.recv(64) == b"$1\r\nv\r\n" for s in sample)
        print("\n[10000 idle] connected in %.1fs; RSS base %.1f MB, idle %.1f MB (%.0f bytes per connection), "
              "after a PING on each %.1f MB; fds %d"
              % (connect_s, mb(base), mb(idle), per_conn, mb(used), fd_count(pid)))
        assert bad == 0, "%d connections did not answer PING" % bad
        assert sample_ok == len(sample)
        assert_rss_below(idle, 150 * MB, "10000 idle connections")
        assert_rss_below(used, 150 * MB, "10000 connections after a PING each")
    finally:
        for s in socks:
            abort(s)
    assert px.alive()


def test_requests_queued_for_a_stalled_backend_count_against_the_client_limit(env, backends):
    """A client pipelines 200 SETs of 1 MB to a SIGSTOPped backend (no `timeout:`,
    twemproxy's default).  The proxy holds those requests for the client, so they
    must count against the 64 MB per-client limit (--client-buffer-limit: "bytes one
    client may hold in the proxy"): RSS stays under it plus slack, instead of
    growing to the 200 MB the client sent.  Once the backend resumes, all 200 are
    answered."""
    r = env.redis()
    px = env.proxy({"r": redis_pool([r])})
    pid = px.proc.pid
    n, size = 200, MB
    assert n * size > CLIENT_MAX_BUFFER + SLACK + 64 * MB, "test parameters do not make the bound meaningful"
    base = rss_bytes(pid)
    bound = base + CLIENT_MAX_BUFFER + SLACK
    one = encode_command("SET", "stalled:big", b"q" * size)
    s = raw_connect(px.port("r"), timeout=30)
    sender = threading.Thread(target=lambda: [s.sendall(one) for _ in range(n)], daemon=True)
    with stalled(r), RssSampler(pid) as smp:
        sender.start()
        # until the proxy stops taking the client's bytes (or has them all): what it
        # queued for the server and its RSS unchanged for 1.5 s
        wait_until(unchanged_for(lambda: (_queued(px.stats()["r"][r.addr]), rss_bytes(pid) >> 20), 1.5),
                   "the proxy to stop taking the client's requests", timeout=20, interval=0.1)
        held = rss_bytes(pid)
    sender.join(60)
    got = b""
    want = b"+OK\r\n" * n
    deadline = time.monotonic() + 60
    while len(got) < len(want) and time.monotonic() < deadline:
        b = s.recv(65536)
        if not b:
            break
        got += b
    s.close()
    print("\n[stalled backend] %d x %d MB SETs queued: RSS base %.1f MB, while stalled %.1f MB, peak %.1f MB "
          "(bound %.1f MB); %d of %d answered after SIGCONT" % (n, size // MB, mb(base), mb(held), mb(smp.max),
                                                              mb(bound), got.count(b"+OK\r\n"), n))
    assert got == want
    assert_rss_below(smp.max, bound, "peak with requests queued for a stalled backend")


def test_clients_leaving_requests_for_a_stalled_backend_stay_within_the_global_limit(env):
    """--buffer-limit (README: "when all clients together hold more than it the
    largest are closed") with 12 clients, one after the other, each sending 60 SETs
    of 1 MB (under the per-client 64 MB) to a SIGSTOPped backend, then closing.
    Together they hand the proxy 720 MB; RSS must stay under the global limit plus
    one client's limit plus slack.  The backend resumes: the proxy still answers."""
    limit = 256 * MB
    r = env.redis()
    px = env.proxy({"r": redis_pool([r])}, extra_args=["--buffer-limit=%d" % limit])
    pid = px.proc.pid
    nclients, n, size = 12, 60, MB
    bound = rss_bytes(pid) + limit + CLIENT_MAX_BUFFER + SLACK
    assert nclients * n * size > bound + 64 * MB, "test parameters do not make the bound meaningful"
    one = encode_command("SET", "left:big", b"l" * size)
    with stalled(r), RssSampler(pid) as smp:
        for i in range(nclients):
            s = raw_connect(px.port("r"), timeout=10)
            try:
                for _ in range(n):
                    s.sendall(one)
            except OSError:
                pass  # closed by the proxy for the global limit: allowed
            s.close()
        # until the proxy has taken in what it will: what it queued and its RSS unchanged for a second
        wait_until(unchanged_for(lambda: (_queued(px.stats()["r"][r.addr]), rss_bytes(pid) >> 20), 1.0),
                   "the proxy to take in what it will", timeout=20, interval=0.1)
    c = px.resp("r", timeout=30)
    assert c.call("PING") == b"PONG"
    assert c.call("SET", "left:after", "ok") == b"OK"
    print("\n[clients left requests for a stalled backend] %d x %d x %d MB, --buffer-limit %d MB: "
          "RSS peak %.1f MB (bound %.1f MB), %.1f MB once the backend resumed"
          % (nclients, n, size // MB, limit // MB, mb(smp.max), mb(bound), mb(rss_bytes(pid))))
    assert px.alive()
    assert_rss_below(smp.max, bound, "peak with requests left for a stalled backend")


def _send_all_then_read(s, data, upto, chunk=MB):
    """Send data whole (a send error ends it: the peer may close once it has answered),
    then read until EOF, `upto` bytes or a pause of 5 s. Returns (bytes sent, bytes read)."""
    sent = 0
    try:
        for i in range(0, len(data), chunk):
            s.sendall(data[i:i + chunk])
            sent += len(data[i:i + chunk])
    except OSError:
        pass
    s.settimeout(5)
    got = b""
    try:
        while len(got) < upto:
            b = s.recv(65536)
            if not b:
                break
            got += b
    except socket.timeout:
        pass
    except OSError as e:
        got += b"<%s>" % type(e).__name__.encode()
    return sent, got


@pytest.mark.parametrize("pool", ["r", "m"])
def test_a_request_over_what_the_buffer_limit_leaves_is_answered_with_an_error(env, pool):
    """A 100 MB SET is under --request-size-limit (513 MB) but over --buffer-limit
    (64 MB here): once its buffer is over the limit it is refused with an error the
    client reads, behind the answer of the SET it pipelined before (a reset in the
    middle of the send, before: the client never learned why). redis: the client is
    closed (the rest of the command cannot be skipped for sure); memcached: the value
    is dropped as it comes, with memcached's own answer to a value it has no memory
    for, and the connection goes on. The value reaches no server; another client is
    served meanwhile."""
    r, m = env.redis(), env.memcached()
    px = env.proxy({"r": redis_pool([r], timeout=5000), "m": mc_pool([m], timeout=5000)},
                   extra_args=["--buffer-limit=64m"])
    size = 100 * MB
    value = b"v" * size
    probe = ProbeClient(px.port(pool), "redis" if pool == "r" else "mc", prefix="probe-" + pool).start()
    s = raw_connect(px.port(pool), timeout=30)
    if pool == "r":
        data = (encode_command("SET", "bl:before", "1") + b"*3\r\n$3\r\nSET\r\n$6\r\nbl:big\r\n$%d\r\n" % size
                + value + b"\r\n" + encode_command("GET", "bl:before"))
        want = b"+OK\r\n-ERR request exceeds the proxy's buffer limit\r\n"
    else:
        data = (b"set bl:before 0 0 1\r\n1\r\nset bl:big 0 0 %d\r\n" % size + value +
                b"\r\nget bl:before bl:big\r\n")
        want = b"STORED\r\nSERVER_ERROR out of memory storing object\r\nVALUE bl:before 0 1\r\n1\r\nEND\r\n"
    # redis: read until the close; memcached: the answers the connection goes on with
    sent, got = _send_all_then_read(s, data, upto=len(want) + 1 if pool == "r" else len(want))
    s.close()
    probe.stop()
    print("\n[over the buffer limit, %s] sent %.1f MB of %.1f MB, answer %r" % (pool, mb(sent), mb(len(data)), got[:120]))
    assert got == want
    if pool == "r":
        assert r.client().get("bl:before") == b"1" and r.client().exists("bl:big") == 0
    else:
        assert px.pymc("m").get("bl:big") is None
    with open(px.log) as f:
        assert "is over what --buffer-limit leaves: refused" in f.read()
    assert probe.ops > 0 and not probe.errors, probe.errors[:5]
    assert px.alive()


def test_a_client_that_sends_on_and_never_reads_is_closed_at_the_buffer_limit(env):
    """A client pipelines GETs without end and never reads. Once over its limit
    (--client-buffer-limit, 4 MB here) with its replies unread, its requests are no
    longer sent on, but still read (a client that sends its whole pipeline before it
    reads must be able to finish), with no bound of its own: --buffer-limit (32 MB
    here) lets it go once it holds the most. It is closed (its next send fails)
    after about the limit; RSS stays under the limit plus slack, and another client
    is served meanwhile. (Before, it was no longer read from at its limit: a
    pipeline sent whole over it hung.)"""
    r = env.redis()
    limit = 32 * MB
    px = env.proxy({"r": redis_pool([r], timeout=5000)},
                   extra_args=["--client-buffer-limit=4m", "--buffer-limit=%d" % limit])
    assert r.client().set("nl:v", b"w" * 10000) is True
    pid = px.proc.pid
    base = rss_bytes(pid)
    probe = ProbeClient(px.port("r"), "redis", prefix="nl-probe").start()
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
    s.settimeout(30)
    s.connect((HOST, px.port("r")))
    chunk = encode_command("GET", "nl:v") * 10000
    sent, how = 0, "not closed"
    with RssSampler(pid) as smp:
        try:
            while sent < 4 * limit:
                s.sendall(chunk)
                sent += len(chunk)
        except OSError as e:
            how = type(e).__name__
    abort(s)
    probe.stop()
    print("\n[never reads, sends on] sent %.1f MB, ended by %s; RSS base %.1f MB peak %.1f MB; %s"
          % (mb(sent), how, mb(base), mb(smp.max), probe.report()))
    assert how in ("ConnectionResetError", "BrokenPipeError"), how
    assert sent < 2 * limit
    with open(px.log) as f:
        assert "over the buffer limit %d: closing client" % limit in f.read()
    assert_rss_below(smp.max, base + limit + SLACK, "a client sending without end")
    assert probe.ops > 0 and not probe.errors, probe.errors[:5]
    assert px.alive()


def test_a_subscriber_that_reads_nothing_is_left_to_the_servers_limit(env):
    """A subscriber reads nothing while 200 MB of 100 KB messages are published to its
    channel. Once it leaves --client-buffer-limit (16 MB here) of them unwritten, the
    proxy stops reading its subscribed connection: the messages wait at redis, whose
    own limit for a subscriber (client-output-buffer-limit pubsub, 32 MB) ends that
    connection, and its loss closes the subscriber, as redis directly closes such a
    subscriber. It gets the messages before that, in order; the proxy's RSS stays
    near the client limit (before, it held every message, up to --buffer-limit); the
    publisher goes on."""
    r = env.redis()
    px = env.proxy({"r": redis_pool([r], timeout=5000)}, extra_args=["--client-buffer-limit=16m"])
    pid = px.proc.pid
    base = rss_bytes(pid)
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
    s.settimeout(30)
    s.connect((HOST, px.port("r")))
    s.sendall(encode_command("SUBSCRIBE", "flood"))
    confirm = b"*3\r\n$9\r\nsubscribe\r\n$5\r\nflood\r\n:1\r\n"
    got = bytearray()
    while len(got) < len(confirm):
        got += s.recv(4096)
    assert bytes(got) == confirm
    pub = px.client("r")
    n, size = 2000, 100 * 1000
    heard = 0
    with RssSampler(pid) as smp:
        for i in range(0, n, 20):
            p = pub.pipeline(transaction=False)
            for j in range(i, i + 20):
                p.publish("flood", b"%08d" % j + b"m" * (size - 8))
            heard += sum(p.execute())
    # the subscriber reads now: the messages it was given, in order, then the close
    got, ended = bytearray(), "open"
    try:
        while True:
            b = s.recv(1 << 20)
            if not b:
                ended = "closed"
                break
            got += b
    except OSError as e:
        ended = type(e).__name__
    s.close()
    head = b"*3\r\n$7\r\nmessage\r\n$5\r\nflood\r\n$%d\r\n" % size
    one = len(head) + size + 2
    nmsg = len(got) // one
    for j in range(nmsg):
        m = got[j * one:(j + 1) * one]
        assert m.startswith(head + b"%08d" % j), "message %d out of order" % j
    print("\n[subscriber reading nothing] %d of %d messages published were heard; it got %d in order, then %s; "
          "RSS base %.1f MB, peak %.1f MB" % (heard, n, nmsg, ended, mb(base), mb(smp.max)))
    assert ended == "closed"
    assert 0 < nmsg < n
    assert_rss_below(smp.max, base + 16 * MB + SLACK, "a subscriber reading nothing")
    assert pub.ping() is True
    assert px.alive()


def test_values_redis_takes_pass_the_default_request_size_limit(env):
    """The largest request is its own limit (--request-size-limit, 513 MB by default:
    a 512 MB value, redis' largest, and its command), not --client-buffer-limit,
    which only pauses reading: with --client-buffer-limit=1m a 100 MB value is set and
    read back, an 80 MB MSET over two servers goes through (twemproxy's own suite
    sends one: test_mget_large_binary), and so does a 200 MB memcached value (memcached
    takes up to 1 GB with -I; the proxy refused more than 128 MB before).  The
    buffers that carried them are given back once done: RSS returns near its base.
    A request of more than 513 MB is refused as soon as its size is known."""
    rs = env.redises(2)
    m = env.memcached(args=["-I", "256m", "-m", "1024"])
    px = env.proxy({"r": redis_pool(rs, timeout=10000), "m": mc_pool([m], timeout=10000)},
                   extra_args=["--client-buffer-limit=1m"])
    pid = px.proc.pid
    base = rss_bytes(pid)
    c = px.client("r", socket_timeout=60)
    big = b"".join(bytes([65 + i]) * MB for i in range(100))
    assert c.set("mb:big100", big) is True
    assert c.get("mb:big100") == big
    # five keys on each server (the ports, so the placement, change every run)
    where = placement(spread_keys("mb:mset80", 200), rs)
    keys = [k for r in rs for k in [k for k in where if where[k] is r][:5]]
    vals = {k: bytes([97 + i]) * (8 * MB) for i, k in enumerate(keys)}
    assert c.mset(vals) is True
    held = [r.client().exists(*keys) for r in rs]
    assert sum(held) == 10 and min(held) > 0, "the MSET should span both servers: %r" % held
    assert c.mget(keys) == [vals[k] for k in keys]
    mc_value = b"m" * (200 * MB)
    mcc = px.pymc("m", timeout=60)
    assert mcc.set("mb:big200", mc_value, noreply=False) is True
    assert mcc.get("mb:big200") == mc_value
    del mc_value
    mcc.close()
    c.close()
    if not SANITIZED:  # ASan keeps freed memory in its quarantine
        wait_until(lambda: rss_bytes(pid) < base + SLACK, "RSS back near its base (%.1f MB)" % mb(base),
                   timeout=10)
    # two values of 300 MB: each one redis would take, together over the limit,
    # refused when the second one's length is read
    s = raw_connect(px.port("r"), timeout=30)
    v300 = 300 * MB
    s.sendall(b"*5\r\n$4\r\nMSET\r\n$1\r\na\r\n$%d\r\n" % v300 + b"a" * v300 +
              b"\r\n$1\r\nb\r\n$%d\r\n" % v300)
    assert s.recv(200) == b"-ERR request exceeds the proxy's request size limit\r\n"
    s.close()
    with open(px.log) as f:
        assert "is over --request-size-limit (%d): refused" % REQUEST_MAX_DEFAULT in f.read()
    assert px.alive()


def test_errors_of_failed_connections_do_not_open_a_clients_window(env):
    """A client pipelines GETs of a 256 KB value and does not read, while its
    server is stopped (timeout: 300 ms): the requests in flight time out, again
    and again, answered with the proxy's error. Once the server is back, the
    client gets no more requests sent than its buffer limit holds replies of.
    The proxy took those short errors for the size of its replies to come:
    it sent thousands more (1 GB of replies) past the limit, queued on the
    server connection that every other client shares."""
    r = env.redis()
    limit, size, n = 8 * MB, 256 * 1024, 3000
    px = env.proxy({"r": redis_pool([r], timeout=300)}, extra_args=["--client-buffer-limit=%d" % limit])
    assert px.client("r").set("mb:big", b"v" * size) is True
    s = raw_connect(px.port("r"), timeout=30)
    with stalled(r):
        s.sendall(encode_command("GET", "mb:big") * n)  # fits the socket buffers: it returns
        px.wait_stats(lambda st: st["r"][r.addr]["server_timedout"] >= 4, "timeouts", timeout=10)
        before = px.stats()["r"][r.addr]["requests"]
    wait_until(unchanged_for(lambda: px.stats()["r"][r.addr]["requests"], 1.0), "the proxy to stop", 20, 0.1)
    sent = px.stats()["r"][r.addr]["requests"] - before
    s.close()
    print("\n[timeouts, then the server back] requests sent to it after: %d (%d fit the limit)"
          % (sent, limit // size))
    # the replies that fit, and the first window of 16 sent before any reply
    assert sent <= limit // size + 16 + 16, sent


def minor_faults(pid):
    return int(open("/proc/%d/stat" % pid).read().rsplit(")", 1)[1].split()[7])


@pytest.mark.skipif(SANITIZED, reason="ASan's allocator is not glibc's")
def test_large_multi_gets_reuse_their_buffers(env):
    """A get of 50 values of 100 KB over 4 memcached needs four 5 MB buffers
    (the servers' replies, the fragments, the merged reply, the client's
    output): freed to the system after each call, they faulted in fresh pages
    for the next one, 4,900 page faults a call (15 ms of CPU against
    twemproxy's 2.2). They stay for reuse until the once-a-second give-back."""
    px = env.proxy({"m": mc_pool(env.memcacheds(4))})
    c = px.pymc()
    keys = ["big:%d" % i for i in range(50)]
    value = b"v" * 100000
    for k in keys:
        assert c.set(k, value, noreply=False)
    for _ in range(3):
        c.get_many(keys)
    before = minor_faults(px.proc.pid)
    for _ in range(20):
        got = c.get_many(keys)
        assert len(got) == 50 and all(v == value for v in got.values())
    faults = (minor_faults(px.proc.pid) - before) / 20
    assert faults < 1000, "%.0f page faults per get of 5 MB" % faults
