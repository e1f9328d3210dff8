"""--event-backend: epoll (default) or io_uring, the same behaviour on both.

The whole suite runs on io_uring with `make e2e-uring`; these tests check the
option itself and the cases where a readiness backend differs from another one:
bytes left unread after a read slice (level-triggered), a client that stops
reading (write readiness armed and disarmed), descriptors closed and reused,
more connections receiving at once than io_uring's receive ring has buffers.
"""

import os
import signal
import socket
import threading

import pytest

from conftest import HOST, TWEMPROXY, Resp, encode_command, mc_pool, redis_pool, wait_until
from liveness_util import stop_process

pytestmark = pytest.mark.skipif(TWEMPROXY, reason="ours only: twemproxy has epoll alone")

BACKENDS = ["epoll", "io_uring"]


def uring_disabled():
    try:
        with open("/proc/sys/kernel/io_uring_disabled") as f:
            return f.read().strip() == "2"
    except OSError:
        return False  # older kernels have no switch: io_uring is on when built in


def test_unknown_backend_refused(env):
    rc, out = env.run_proxy(["--event-backend=kqueue", "-t"], timeout=5)
    assert rc == 1
    assert "nutcracker: option --event-backend value kqueue is not epoll or io_uring" in out
    assert "Usage: nutcracker" in out


def test_help_names_the_option(env):
    rc, out = env.run_proxy(["-h"], timeout=5)
    assert rc == 0
    assert "--event-backend=S" in out


def test_io_uring_used_or_fallback_logged(env):
    r = env.redis()
    px = env.proxy({"alpha": redis_pool([r])}, extra_args=["--event-backend=io_uring"], verbose=5)
    c = px.resp()
    assert c.call("SET", "k", "v") == b"OK"
    assert c.call("GET", "k") == b"v"
    with open(px.log) as f:
        log = f.read()
    warned = "event backend io_uring unavailable here" in log
    assert warned == uring_disabled(), log
    assert ("event backend io_uring\n" in log) != warned, log  # the log names the one in use


@pytest.mark.parametrize("backend", BACKENDS)
def test_large_pipeline_and_values(env, backend):
    """More bytes than one read slice takes, in both directions."""
    rs = [env.redis(), env.redis()]
    px = env.proxy({"alpha": redis_pool(rs)}, extra_args=["--event-backend=" + backend])
    c = px.resp(timeout=30)
    value = b"x" * 10000
    n = 1500
    assert c.pipeline([("SET", "k%d" % i, value + b"%d" % i) for i in range(n)]) == [b"OK"] * n
    got = c.pipeline([("GET", "k%d" % i) for i in range(n)])
    assert got == [value + b"%d" % i for i in range(n)]
    big = os.urandom(4 << 20)
    assert c.call("SET", "big", big) == b"OK"
    assert c.call("GET", "big") == big


@pytest.mark.parametrize("backend", BACKENDS)
def test_client_that_stops_reading(env, backend):
    """Replies pile up while the client does not read; all arrive once it does."""
    r = env.redis()
    px = env.proxy({"alpha": redis_pool([r])}, extra_args=["--event-backend=" + backend])
    c = px.resp(timeout=30)
    value = b"v" * 100000
    assert c.call("SET", "big", value) == b"OK"
    n = 200
    c.send(b"".join(encode_command("GET", "big") for _ in range(n)))
    # the server answering all n means the proxy read them all and met a full socket to
    # the client (20 MB of replies), so it waits for write readiness now
    sr = Resp(port=r.port)

    def served():
        info = sr.call("INFO", "stats").decode()
        stats = dict(l.split(":", 1) for l in info.split("\r\n") if ":" in l)
        return int(stats["total_commands_processed"]) >= n + 1
    wait_until(served, "the server to answer every GET", timeout=20)
    other = px.resp()
    assert other.call("PING") == b"PONG"  # the loop is not stuck on the slow client
    for _ in range(n):
        assert c.read_reply() == value


@pytest.mark.parametrize("backend", BACKENDS)
def test_connections_closed_and_reused(env, backend):
    """Descriptors closed and opened again, clients and servers: nothing stale."""
    ms = env.memcacheds(2)
    r = env.redis()
    px = env.proxy({"alpha": redis_pool([r]), "beta": mc_pool(ms)},
                   extra_args=["--event-backend=" + backend])
    for i in range(60):
        c = px.resp("alpha")
        assert c.call("SET", "k", str(i)) == b"OK"
        c.close()
        m = px.mc("beta")
        assert m.cmd(b"set m%d 0 0 1" % i, b"x") == b"STORED"
        m.close()
    wait_until(lambda: px.stats()["alpha"]["client_connections"] == 0, "the clients to be gone")
    c = px.resp("alpha")
    assert c.call("GET", "k") == b"59"
    m = px.mc("beta")
    items, _ = m.retrieval(b"get " + b" ".join(b"m%d" % i for i in range(60)))
    assert len(items) == 60


def read_write_calls(pid):
    """read() and write() calls the process made so far (/proc/PID/io: syscr, syscw;
    ring operations and send()/recv() do not count)."""
    with open("/proc/%d/io" % pid) as f:
        fields = dict(line.split(": ", 1) for line in f.read().splitlines())
    return int(fields["syscr"]) + int(fields["syscw"])


@pytest.mark.parametrize("backend", BACKENDS)
def test_bytes_move_through_the_ring_on_io_uring(env, backend):
    """On io_uring the bytes of clients and of servers move in ring operations
    submitted with the wait: no read() or write() per request. On epoll each
    request costs at least four (client read, server write, server read, client
    write)."""
    if backend == "io_uring" and uring_disabled():
        pytest.skip("io_uring is disabled on this machine")
    rs = [env.redis(), env.redis()]
    ms = env.memcacheds(2)
    px = env.proxy({"alpha": redis_pool(rs), "beta": mc_pool(ms)},
                   extra_args=["--event-backend=" + backend])
    c = px.resp("alpha")
    m = px.mc("beta")
    n = 200
    keys = ["k%d" % i for i in range(n)]
    for k in keys[:20]:  # every server connected before counting
        assert c.call("SET", k, "w") == b"OK"
        assert m.cmd(b"set " + k.encode() + b" 0 0 1", b"w") == b"STORED"
    before = read_write_calls(px.proc.pid)
    for k in keys:
        assert c.call("SET", k, "v") == b"OK"
        assert c.call("GET", k) == b"v"
        assert m.cmd(b"set " + k.encode() + b" 0 0 1", b"x") == b"STORED"
    calls = read_write_calls(px.proc.pid) - before
    if backend == "epoll":
        assert calls >= 4 * 3 * n, calls
    else:
        assert calls < n / 10, calls


@pytest.mark.parametrize("backend", BACKENDS)
def test_more_clients_sending_than_receive_buffers(env, backend):
    """300 clients send large pipelines while the proxy is stopped, so that on
    io_uring, once it runs again, more connections have bytes waiting than its
    shared receive ring has buffers (256), and a --client-buffer-limit small
    enough that clients stop and start reading. Every reply arrives, in order,
    to every client."""
    rs = [env.redis(), env.redis()]
    px = env.proxy({"alpha": redis_pool(rs)},
                   extra_args=["--event-backend=" + backend, "--client-buffer-limit=65536"])
    sizes = [10, 5000, 40000]
    nclients, nkeys = 300, 12
    socks = [socket.create_connection((HOST, px.port()), timeout=60) for _ in range(nclients)]
    wait_until(lambda: px.stats()["alpha"]["client_connections"] == nclients,
               "every client accepted")
    errors = []
    wants, senders = [], []
    stop_process(px.proc.pid)
    try:
        for n, s in enumerate(socks):
            vals = [os.urandom(sizes[(n + i) % 3]) for i in range(nkeys)]
            keys = [b"many:%d:%d" % (n, i) for i in range(nkeys)]
            out = b"".join(encode_command("SET", k, v) for k, v in zip(keys, vals))
            out += b"".join(encode_command("GET", k) for k in keys)
            wants.append(b"+OK\r\n" * nkeys + b"".join(b"$%d\r\n%s\r\n" % (len(v), v)
                                                       for v in vals))
            t = threading.Thread(target=s.sendall, args=(out,))
            t.start()
            senders.append(t)
    finally:
        os.kill(px.proc.pid, signal.SIGCONT)

    def receive(n):
        got = bytearray()
        try:
            while len(got) < len(wants[n]):
                d = socks[n].recv(1 << 20)
                if not d:
                    break
                got += d
        except OSError as e:
            errors.append((n, repr(e)))
        if bytes(got) != wants[n]:
            errors.append((n, len(got), len(wants[n])))

    readers = [threading.Thread(target=receive, args=(n,)) for n in range(nclients)]
    for t in readers:
        t.start()
    for t in readers + senders:
        t.join()
    for s in socks:
        s.close()
    assert errors == []
    assert px.resp().call("PING") == b"PONG"


@pytest.mark.parametrize("client", [False, True])
@pytest.mark.parametrize("workers", [0, 2])
@pytest.mark.parametrize("backend", BACKENDS)
def test_a_stopped_proxy_leaves_its_ports_at_once(env, backend, workers, client):
    """Once the process is gone its ports are free: a connect is refused and a
    restart can bind them. On io_uring a listener's armed poll held the socket
    until the kernel tore the ring down, after the exit: 45 of 50 connects right
    after a stop were accepted (and then dropped)."""
    r = env.redis()
    ms = env.memcacheds(1)
    px = env.proxy({"alpha": redis_pool([r]), "beta": mc_pool(ms)},
                   extra_args=["--event-backend=" + backend],
                   global_={"worker_processes": workers} if workers else None)
    c, m = px.resp("alpha"), px.mc("beta")
    assert c.call("SET", "k", "v") == b"OK"
    assert m.cmd(b"set m 0 0 1", b"x") == b"STORED"
    if not client:  # gone before the stop, or still connected at it
        c.close()
        m.close()
        wait_until(lambda: px.stats()["alpha"]["client_connections"] + px.stats()["beta"]["client_connections"] == 0,
                   "the clients to be gone")
    ports = [px.port("alpha"), px.port("beta"), px.stats_port]
    px.proc.send_signal(signal.SIGTERM)
    assert px.proc.wait(timeout=20) == 0
    for port in ports:
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection((HOST, port), timeout=2).close()
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((HOST, port))  # what a restart does; EADDRINUSE while a listener lives
            s.listen(1)
        finally:
            s.close()
