"""Hostile clients (SPEC 7): slow and never-reading readers, half-closed sockets,
connection storms, random bytes on many connections, on both pools.  The proxy
stays up and a well-behaved client measured at the same time (ProbeClient: redis-py /
pymemcache, sequential SET+GET on its own keys) keeps getting every answer right,
without waiting behind the hostile ones: its latency during the hostile phase is
bounded by its own latency before it (measured in the same test, so a loaded
machine moves the bound with it) plus a margin for the hostile threads, which
share the machine and this Python process with the probe.
"""

import random
import socket
import threading
import time

import pytest

from conftest import HOST, Mc, Resp, RespError, encode_command, mc_pool, redis_pool, wait_until
from hostile_util import (CLIENT_MAX_INFLIGHT, MB, ProbeClient, RssSampler, abort, assert_rss_below, fd_count,
                          mb, percentile, raw_connect, rss_bytes)
from hostile_util import unchanged_for
from liveness_util import stalled

SAMPLES = 100  # probe round trips measured in each phase, at least
CLIENT_LIMIT = 4 * MB  # --client-buffer-limit of this file's proxy: small, so RSS bounds mean something
SLACK = 40 * MB  # allocator rounding, the buffer pool, kernel-side timing (as in test_memory_bounds)


@pytest.fixture(scope="module")
def px(menv):
    rs = menv.redises(2)
    ms = menv.memcacheds(2)
    return menv.proxy({"r": redis_pool(rs, timeout=5000), "m": mc_pool(ms, timeout=5000)},
                      extra_args=["--client-buffer-limit=%d" % CLIENT_LIMIT])


def _probes(px):
    return [ProbeClient(px.port("r"), "redis", prefix="hp-r", pace=0.002).start(),
            ProbeClient(px.port("m"), "mc", prefix="hp-m", pace=0.002).start()]


def _enough(probes, phase):
    wait_until(lambda: all(len(p.lat[phase]) >= SAMPLES for p in probes),
               "%d probe round trips %s the hostile phase" % (SAMPLES, phase), timeout=30)


def _during(probes):
    """The baseline: SAMPLES round trips of each probe; then the hostile phase starts."""
    _enough(probes, "before")
    for p in probes:
        p.phase("during")


def _finish(probes, what):
    """Stop the probes: every answer right, and latency within the bounds."""
    for p in probes:
        p.stop()
    print("\n[%s] %s" % (what, " | ".join("%s %s" % (p.proto, p.report()) for p in probes)))
    for p in probes:
        assert p.lat["before"] and p.lat["during"], "%s probe made no requests in a phase" % p.proto
        assert not p.errors, "%s probe: %s" % (p.proto, p.errors[:5])
        before, during = p.lat["before"], p.lat["during"]
        # the median: hostile clients may slow a well-behaved one down, but it is
        # never queued behind them (that would be seconds: the pool timeout is 5 s)
        p50_b, p50_d = percentile(before, 50), percentile(during, 50)
        assert p50_d <= 10 * p50_b + 0.1, "%s probe: median %.1fms during, %.1fms before" % (
            p.proto, 1000 * p50_d, 1000 * p50_b)
        assert max(during) <= 20 * max(before) + 2.0, "%s probe: slowest %.2fs during, %.2fs before" % (
            p.proto, max(during), max(before))


def _held_bound(base, nclients, reply_len):
    """RSS the proxy may reach with nclients that do not read (fast enough): each
    holds at most the client buffer limit plus the replies of its requests in
    flight (at most CLIENT_MAX_INFLIGHT, README), as in test_memory_bounds."""
    return base + nclients * (CLIENT_LIMIT + CLIENT_MAX_INFLIGHT * reply_len) + SLACK


# --------------------------------------------------------------------------- slow readers

def _reader(port, payload, stop, rate_bytes, counts, idx):
    """Send payload (a pipeline) from one thread; read rate_bytes per 10 ms (0: never
    read; the pace is the client's behaviour).  counts[idx]: bytes read so far."""
    s = raw_connect(port, timeout=10)
    s.setblocking(False)
    pending = payload
    try:
        while not stop.is_set():
            if pending:
                try:
                    n = s.send(pending)
                    pending = pending[n:]
                except BlockingIOError:
                    pass
            if rate_bytes:
                try:
                    b = s.recv(rate_bytes)
                    if not b:
                        break
                    counts[idx] += len(b)
                except BlockingIOError:
                    pass
            stop.wait(0.01)
    except OSError:
        pass
    abort(s)


def test_slow_and_never_reading_clients_do_not_disturb_a_well_behaved_one(px):
    value = b"s" * 4096
    assert px.client("r").set("slow:v", value) is True
    assert px.pymc("m").set("slow:v", value, noreply=False) is True
    rget = encode_command("GET", "slow:v")
    mget = b"get slow:v\r\n"
    pid = px.proc.pid
    base = rss_bytes(pid)
    probes = _probes(px)
    _during(probes)
    stop = threading.Event()
    # (port, pipeline, bytes read per 10 ms): 3 slow redis, 1 slow memcached, 2 that never read
    plan = [(px.port("r"), rget * 5000, 16384)] * 3 + [(px.port("m"), mget * 5000, 16384)] + \
           [(px.port("r"), rget * 30000, 0), (px.port("m"), mget * 30000, 0)]
    counts = [0] * len(plan)
    threads = [threading.Thread(target=_reader, args=(port, pl, stop, rate, counts, i), daemon=True)
               for i, (port, pl, rate) in enumerate(plan)]
    reply_len = len(b"VALUE slow:v 0 4096\r\n\r\nEND\r\n") + len(value)  # the larger of the two
    bound = _held_bound(base, len(plan), reply_len)
    unbounded = sum(len(pl) // len(rget if port == px.port("r") else mget) for port, pl, _ in plan) * len(value)
    assert unbounded > bound + 64 * MB, "test parameters do not make the bound meaningful"
    with RssSampler(pid) as smp:
        for t in threads:
            t.start()
        # the hostile phase lasts until the slow readers got 1 MB each and the probes measured it
        wait_until(lambda: all(c >= MB for c in counts[:4]) or not all(t.is_alive() for t in threads[:4]),
                   "the slow readers to get 1 MB each", timeout=30)
        _enough(probes, "during")
        stop.set()
        for t in threads:
            t.join(10)
    print("\n[slow readers] RSS base %.1f MB, peak with 6 slow/never-reading clients %.1f MB (bound %.1f MB, "
          "unbounded %.1f MB); slow readers got %s bytes" % (mb(base), mb(smp.max), mb(bound), mb(unbounded),
                                                               counts[:4]))
    _finish(probes, "slow readers")
    assert all(c > 0 for c in counts[:4]), counts
    assert_rss_below(smp.max, bound, "6 slow or never-reading clients")
    assert px.alive()


def test_clients_that_leave_large_replies_unread_queue_little_ahead_of_others(env):
    """20 clients each pipeline 1000 GETs of a 100 KB value and never read, on a
    pool of one server (--client-buffer-limit 16 MB). The server connection is
    shared: what the proxy has sent on for them and not yet had answered, another
    client of the server waits behind. A client's requests go on only while those
    in flight are expected to bring under 4 MB: at most 42 GETs each at any moment,
    sampled from the stats port. Before, up to its whole limit could be on its way
    (160 GETs each here; 640 with the default 64 MB: 20 clients kept a client of
    the same server waiting seconds)."""
    r = env.redis()
    px = env.proxy({"r": redis_pool([r], timeout=5000)}, extra_args=["--client-buffer-limit=16m"])
    value = b"u" * (100 * 1000)
    assert r.client().set("nr:big", value) is True
    nclients, depth = 20, 1000
    per_client = 4 * MB // len(value) + 1  # (the last one may pass the bound)
    probe = ProbeClient(px.port("r"), "redis", prefix="nr-probe", pace=0.002).start()
    wait_until(lambda: len(probe.lat["before"]) >= SAMPLES, "probe round trips before", timeout=30)
    probe.phase("during")
    socks, peak = [], 0

    def queued():
        st = px.stats()["r"][r.addr]
        return st["in_queue"] + st["out_queue"]
    try:
        for _ in range(nclients):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
            s.settimeout(10)
            s.connect((HOST, px.port("r")))
            s.sendall(encode_command("GET", "nr:big") * depth)
            socks.append(s)
            peak = max(peak, queued())
        # until the proxy has taken what it will: nothing left in flight for a second
        deadline = time.monotonic() + 30
        calm_since = None
        while time.monotonic() < deadline:
            q = queued()
            peak = max(peak, q)
            calm_since = (calm_since or time.monotonic()) if q <= 1 else None
            if calm_since is not None and time.monotonic() - calm_since >= 1.0:
                break
            time.sleep(0.005)
        probe.stop()
        print("\n[clients leaving 100 KB replies unread] %d clients x %d GETs: at most %d in flight to the "
              "server (bound %d); %s" % (nclients, depth, peak, nclients * per_client + 1, probe.report()))
        assert peak <= nclients * per_client + 1  # (+ the probe's)
        assert not probe.errors, probe.errors[:5]
        # once they read, every reply comes, in order
        want = b"$%d\r\n%s\r\n" % (len(value), value) * depth
        for s in socks[:2]:
            got = bytearray()
            while len(got) < len(want):
                b = s.recv(1 << 20)
                assert b, "closed after %d bytes" % len(got)
                got += b
            assert got == want
    finally:
        for s in socks:
            abort(s)
    assert px.alive()


# --------------------------------------------------------------------------- half-closed

@pytest.mark.parametrize("partial_tail", [False, True], ids=["whole", "partial-tail"])
def test_half_closed_redis_client_gets_every_reply(px, partial_tail):
    """A pipeline then shutdown(SHUT_WR): every reply arrives, in order, then EOF.
    With partial_tail the pipeline ends with half a request (never completed)."""
    n = 1000
    s = Resp(port=px.port("r"), timeout=10)
    cmds = []
    for i in range(n):
        cmds.append(("SET", "hc:%d" % i, "v%d" % i))
        cmds.append(("GET", "hc:%d" % i))
    data = b"".join(encode_command(*c) for c in cmds)
    if partial_tail:
        data += b"*2\r\n$3\r\nGET\r\n$4\r\nhc"
    s.send(data)
    s.s.shutdown(socket.SHUT_WR)
    replies = [s.read_reply() for _ in cmds]
    want = []
    for i in range(n):
        want += [b"OK", b"v%d" % i]
    assert replies == want
    # after the last reply the proxy closes (an error for the cut request is allowed first)
    rest = s.read_available(wait=5.0)
    assert rest == b"" or rest.startswith(b"-ERR "), rest
    assert s.is_closed(timeout=5.0)
    s.close()


@pytest.mark.parametrize("partial_tail", [False, True], ids=["whole", "partial-tail"])
def test_half_closed_memcached_client_gets_every_reply(px, partial_tail):
    n = 500
    s = Mc(port=px.port("m"), timeout=10)
    data = b"".join(b"set hc:%d 0 0 %d\r\nv%d\r\nget hc:%d\r\n" % (i, len(b"v%d" % i), i, i) for i in range(n))
    if partial_tail:
        data += b"set hc:x 0 0 10\r\nabc"
    s.send(data)
    s.s.shutdown(socket.SHUT_WR)
    for i in range(n):
        assert s.readline() == b"STORED", i
        items, _ = s.read_values()
        assert items == [(b"hc:%d" % i, 0, b"v%d" % i, [])], (i, items)
    rest = s.read_available(wait=5.0)
    assert rest == b"" or rest.startswith((b"CLIENT_ERROR", b"SERVER_ERROR", b"ERROR")), rest
    assert s.is_closed(timeout=5.0)
    s.close()


# --------------------------------------------------------------------------- connection storm

STORM = 3000


def test_connection_storm_leaves_no_connection_or_fd_behind(px):
    """3000 connections opened and dropped in batches of 100, four ways in turn:
    closed at once; PING sent and closed unread; PING answered then closed; half a
    request then RST.  Both pools.  Afterwards the proxy's client count and fd count
    are back where they were."""
    pid = px.proc.pid
    probes = _probes(px)
    _during(probes)  # the probes' connections (client and server side) exist from here on
    fds_base = fd_count(pid)
    conns_base = px.stats()["curr_connections"]
    ping_r, ping_m = encode_command("PING"), b"mn\r\n"  # both answered by the proxy itself
    answered = bad = 0
    t0 = time.monotonic()
    for b0 in range(0, STORM, 100):
        batch = []
        for i in range(b0, b0 + 100):
            pool = "r" if i % 2 == 0 else "m"
            try:
                batch.append((i, pool, socket.create_connection((HOST, px.port(pool)), timeout=5)))
            except OSError:
                bad += 1
        for i, pool, s in batch:
            way = (i // 2) % 4
            ping = ping_r if pool == "r" else ping_m
            try:
                if way == 0:
                    s.close()
                elif way == 1:
                    s.sendall(ping)
                    s.close()
                elif way == 2:
                    s.sendall(ping)
                    b = s.recv(64)
                    ok = b == (b"+PONG\r\n" if pool == "r" else b"MN\r\n")
                    answered += ok
                    bad += not ok
                    s.close()
                else:
                    s.sendall(b"*3\r\n$3\r\nSET\r\n$1\r\nk" if pool == "r" else b"set k 0 0 10\r\nab")
                    abort(s)
            except OSError:
                bad += 1
                s.close()
    storm_s = time.monotonic() - t0
    after = {}

    def settled():
        after["conns"] = px.stats()["curr_connections"]
        after["fds"] = fd_count(pid)
        return after["conns"] <= conns_base and after["fds"] <= fds_base

    # the probes still run: their connections are in both figures, before and after
    wait_until(settled, "fds and connections back to %d and %d (before the storm)" % (fds_base, conns_base),
               timeout=10, interval=0.2)
    print("\n[storm] %d connections in %.1fs; proxy fds %d -> %d, curr_connections %d -> %d"
          % (STORM, storm_s, fds_base, after["fds"], conns_base, after["conns"]))
    _finish(probes, "storm")
    assert bad == 0 and answered == STORM // 4, (bad, answered)
    assert px.alive()


# --------------------------------------------------------------------------- random bytes

NGARBAGE = 2000
MC_LINES = (b"ERROR", b"CLIENT_ERROR", b"SERVER_ERROR", b"END", b"STORED", b"NOT_STORED", b"EXISTS",
            b"NOT_FOUND", b"DELETED", b"TOUCHED", b"OK", b"VERSION", b"EN", b"HD", b"NF", b"NS", b"MN")


def _garbage(rng, pool):
    kind = rng.randrange(4)
    n = rng.randrange(1, 16384)
    if kind == 0:  # plain random bytes
        return bytes(rng.getrandbits(8) for _ in range(n))
    if kind == 1:  # a valid start, then random bytes
        head = b"*3\r\n$3\r\nSET\r\n" if pool == "r" else b"set k 0 0 5\r\n"
        return head + bytes(rng.getrandbits(8) for _ in range(n))
    if kind == 2:  # random printable lines
        return b"".join(bytes(rng.randrange(32, 127) for _ in range(rng.randrange(0, 40))) + b"\r\n"
                        for _ in range(rng.randrange(1, 50)))
    toks = [b"*", b"$", b"\r\n", b"-1", b"3", b"GET", b"SET", b"get ", b"set ", b"0", b"99999", b"gr:k", b" ",
            b"\n", b"mg ", b"ms "]
    return b"".join(rng.choice(toks) for _ in range(rng.randrange(1, 300)))


def _resp_ok(data):
    """data parses as whole RESP replies whose errors are the proxy's '-ERR ...'."""
    r = Resp.__new__(Resp)
    r.buf = data
    r.s = None

    def fill():
        raise EOFError
    r._fill = fill
    try:
        while r.buf:
            v = r.read_reply()
            if isinstance(v, RespError) and not v.msg.startswith("ERR "):
                return "error reply %r" % v.msg
    except EOFError:
        return "truncated reply %r" % r.buf[:80]
    except AssertionError as e:
        return str(e)
    return None


def _mc_ok(data):
    """Every memcached reply line is a known one (VALUE data blocks skipped)."""
    while data:
        i = data.find(b"\r\n")
        if i < 0:
            return "unterminated line %r" % data[:80]
        line, data = data[:i], data[i + 2:]
        if line.startswith(b"VALUE "):
            n = int(line.split()[3])
            data = data[n + 2:]
        elif not (line.startswith(MC_LINES) or line.isdigit()):
            return "unexpected line %r" % line[:80]
    return None


def _garbage_worker(px, seeds, results):
    for seed in seeds:
        rng = random.Random(seed)
        pool = "r" if seed % 2 == 0 else "m"
        data = _garbage(rng, pool)
        s = raw_connect(px.port(pool), timeout=5)
        got, how = b"", "timeout"
        try:
            s.sendall(data)
            if seed % 5 == 4:  # one in five: drop the connection with RST, read nothing
                abort(s)
                results[seed] = (pool, "rst", b"")
                continue
            s.shutdown(socket.SHUT_WR)
            while True:
                b = s.recv(65536)
                if not b:
                    how = "eof"
                    break
                got += b
        except socket.timeout:
            pass
        except (ConnectionResetError, BrokenPipeError):
            how = "reset"
        s.close()
        results[seed] = (pool, how, got)


def test_random_bytes_on_many_connections_get_only_errors_and_a_close(px):
    """2000 connections (both pools, 4 at a time) send seeded random garbage, then
    half-close (or RST, one in five).  Each half-closed one gets only well-formed
    replies (errors are the proxy's) and is closed by the proxy; the proxy stays up."""
    probes = _probes(px)
    _during(probes)
    results = {}
    seeds = list(range(1000, 1000 + NGARBAGE))
    workers = [threading.Thread(target=_garbage_worker, args=(px, seeds[i::4], results), daemon=True)
               for i in range(4)]
    t0 = time.monotonic()
    for w in workers:
        w.start()
    for w in workers:
        w.join(60)
    took = time.monotonic() - t0
    summary = {}
    problems = []
    for seed, (pool, how, got) in sorted(results.items()):
        summary[(pool, how)] = summary.get((pool, how), 0) + 1
        if how == "rst":
            continue
        if how not in ("eof", "reset"):
            problems.append((seed, pool, "not closed by the proxy"))
            continue
        err = _resp_ok(got) if pool == "r" else _mc_ok(got)
        if err:
            problems.append((seed, pool, err))
    print("\n[garbage] %d connections in %.1fs: %s" % (len(results), took, summary))
    _finish(probes, "garbage")
    assert len(results) == NGARBAGE
    assert not problems, problems[:10]
    assert px.alive()


# --------------------------------------------------------------------------- vanishing clients

def test_clients_vanishing_with_requests_in_flight_do_not_desync_others(menv):
    """Clients send GETs of a 100 KB value, split MGETs and a large SET to a stalled
    backend and disconnect; a client queued behind them gets its own answers once
    the backend resumes (the orphans' responses are read and dropped). A new
    client has 16 requests in flight at first (its window grows with its
    replies): the proxy reads the rest of an orphan, and sees it gone, once
    those are answered."""
    r, m = menv.redis(), menv.memcached()
    px = menv.proxy({"r": redis_pool([r], timeout=10000), "m": mc_pool([m], timeout=10000)})
    c = px.resp("r")
    assert c.call("SET", "vq:a", "A") == b"OK" and c.call("SET", "vq:b", "B" * 100000) == b"OK"
    mc = px.mc("m")
    assert mc.cmd(b"set vq:a 0 0 1", b"A") == b"STORED"
    assert mc.cmd(b"set vq:b 0 0 100000", b"B" * 100000) == b"STORED"
    st0 = px.stats()
    with stalled(r), stalled(m):
        for i in range(10):
            s = raw_connect(px.port("r"))
            s.sendall(encode_command("GET", "vq:b") * 100 + encode_command("MGET", "vq:a", "vq:b") * 20 +
                      encode_command("SET", "vq:x%d" % i, "y" * 70000))
            (abort if i % 2 else socket.socket.close)(s)
            s = raw_connect(px.port("m"))
            s.sendall(b"get vq:b\r\n" * 100 + b"get vq:a vq:b\r\n" * 20)
            (abort if i % 2 else socket.socket.close)(s)
        # the orphans' first requests queued for the stalled backends ...
        def sent():
            st = px.stats()
            return st["r"][r.addr]["requests"], st["m"][m.addr]["requests"]
        wait_until(unchanged_for(sent, 0.5), "the orphans' requests queued", 10, 0.05)
        queued = dict(zip(("r", "m"), sent()))
        assert queued["r"] > st0["r"][r.addr]["requests"] and queued["m"] > st0["m"][m.addr]["requests"]
        rb = px.resp("r")
        rb.send(encode_command("GET", "vq:a") + encode_command("MGET", "vq:b", "vq:a"))
        mb_ = px.mc("m")
        mb_.send(b"get vq:a\r\nget vq:b vq:a\r\n")
        # ... then the well-behaved clients' two requests queued behind theirs
        px.wait_stats(lambda st: st["r"][r.addr]["requests"] >= queued["r"] + 2 and
                      st["m"][m.addr]["requests"] >= queued["m"] + 2, "the two clients' requests queued")
    assert rb.read_reply() == b"A"
    assert rb.read_reply() == [b"B" * 100000, b"A"]
    assert rb.call("GET", "vq:a") == b"A"
    assert mb_.read_values()[0] == [(b"vq:a", 0, b"A", [])]
    assert mb_.read_values()[0] == [(b"vq:b", 0, b"B" * 100000, []), (b"vq:a", 0, b"A", [])]
    assert mb_.retrieval(b"get vq:a")[0] == [(b"vq:a", 0, b"A", [])]
    # every orphan seen gone, its responses dropped
    px.wait_stats(lambda st: all(st[p]["client_eof"] + st[p]["client_err"] >=
                                 st0[p]["client_eof"] + st0[p]["client_err"] + 10 for p in ("r", "m")),
                  "the 20 orphans seen gone")
    assert rb.call("GET", "vq:a") == b"A" and mb_.retrieval(b"get vq:a")[0] == [(b"vq:a", 0, b"A", [])]
    assert px.alive()


# --------------------------------------------------------------------------- byte at a time

def test_clients_sending_one_byte_at_a_time_are_answered(px):
    """50 connections (both pools) drip a SET + GET pipeline one byte per round (every
    2 ms), all interleaved; each gets exactly its answers."""
    probes = _probes(px)
    _during(probes)
    conns = []
    for i in range(50):
        pool = "r" if i % 2 == 0 else "m"
        val = b"drip%d" % i
        if pool == "r":
            data = encode_command("SET", "drip:%d" % i, val) + encode_command("GET", "drip:%d" % i)
            want = b"+OK\r\n$%d\r\n%s\r\n" % (len(val), val)
        else:
            data = b"set drip:%d 0 0 %d\r\n%s\r\nget drip:%d\r\n" % (i, len(val), val, i)
            want = b"STORED\r\nVALUE drip:%d 0 %d\r\n%s\r\nEND\r\n" % (i, len(val), val)
        s = raw_connect(px.port(pool))
        conns.append([s, data, want, b""])
    t0 = time.monotonic()
    pos = 0
    while any(pos < len(c[1]) for c in conns) and time.monotonic() - t0 < 10:
        for c in conns:
            if pos < len(c[1]):
                c[0].sendall(c[1][pos:pos + 1])
        pos += 1
        time.sleep(0.002)  # the behaviour under test: one byte per round, every 2 ms
    deadline = time.monotonic() + 10
    for c in conns:
        c[0].settimeout(max(0.1, deadline - time.monotonic()))
        try:
            while len(c[3]) < len(c[2]):
                b = c[0].recv(4096)
                if not b:
                    break
                c[3] += b
        except socket.timeout:
            pass
        c[0].close()
    _finish(probes, "byte at a time")
    wrong = [(c[1][:30], c[3]) for c in conns if c[3] != c[2]]
    assert not wrong, wrong[:5]
    assert px.alive()


def _exchange(port, data):
    """Send data on a new connection: (every byte answered within 1 s, closed by the far end)."""
    s = socket.create_connection((HOST, port), timeout=5)
    s.sendall(data)
    s.settimeout(1)
    got, closed = b"", False
    try:
        while True:
            b = s.recv(65536)
            if not b:
                closed = True
                break
            got += b
    except socket.timeout:
        pass
    except ConnectionResetError:
        closed = True
    s.close()
    return got, closed


WEB_REDIS = [b"POST / HTTP/1.1\r\nHost: localhost\r\nContent-Length: 20\r\n\r\nSET web:pwned 1\r\n",
             b"Host: x\r\nSET web:pwned 1\r\n", b"*2\r\n$4\r\npost\r\n$1\r\n/\r\nSET web:pwned 1\r\n",
             b"GET / HTTP/1.1\r\nPING\r\n", b"posts\r\nPING\r\n"]
WEB_MC = [b"POST / HTTP/1.1\r\nHost: x\r\n\r\nset web:pwned 0 0 1\r\n1\r\n",
          b"GET /index.html HTTP/1.0\r\nset web:pwned 0 0 1\r\n1\r\n",
          b"get web:pwned HTTP/1.1\r\nversion\r\n", b"Host: x\r\nversion\r\n"]


def test_a_web_request_is_closed_unanswered_as_the_servers_do(menv):
    """A page in a browser can post to a local port: its body would be run as
    commands (cross-protocol scripting). Redis closes at a POST or Host:
    command, memcached at a line that names no command and ends in HTTP/..,
    without a word and running nothing after; the proxy answered the errors and
    ran the body (h50). The same bytes to the server and through the proxy."""
    r, m = menv.redis(), menv.memcached()
    p = menv.proxy({"r": redis_pool([r]), "m": mc_pool([m])})
    for data in WEB_REDIS:
        direct = _exchange(r.port, data)
        assert _exchange(p.port("r"), data) == direct, data
        assert r.client().get("web:pwned") is None, data
    for data in WEB_MC:
        direct = _exchange(m.port, data)
        assert _exchange(p.port("m"), data) == direct, data
        assert m.mc().retrieval(b"get web:pwned")[0] == [], data
