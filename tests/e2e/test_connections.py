"""Client connection handling (SPEC 2 client_connections, 7)."""

import random
import socket
import time

from conftest import HOST, RespError, free_port, mc_pool, port_is_free, redis_pool


def test_client_connections_limit(env):
    """Ours: with client_connections: 2 a third client gets an error and is closed."""
    s = env.redis()
    px = env.proxy({"alpha": redis_pool([s], client_connections=2)})
    px.wait_idle()  # the start-up probe no longer holds a slot
    a, b = px.resp(), px.resp()
    assert a.call("PING") == b"PONG" and b.call("PING") == b"PONG"
    c = px.resp()
    # refused at accept time: the error is the first thing it reads, then the close
    assert c.readline() == b"-ERR max number of clients reached"
    assert c.is_closed()
    # the first two are unaffected, and a slot frees up when one leaves
    assert a.call("SET", "cc:k", "1") == b"OK"
    b.close()
    px.wait_stats(lambda st: st["alpha"]["client_connections"] == 1, "the slot of the client that left")
    assert px.resp().call("PING") == b"PONG"


def test_client_connections_limit_memcache(env):
    """Ours: the limit applies to memcache pools too: the extra client is not served and is closed."""
    m = env.memcached()
    px = env.proxy({"alpha": mc_pool([m], client_connections=1)})
    px.wait_idle()
    a = px.mc()
    assert a.cmd(b"set x 0 0 1", b"1") == b"STORED"
    b = px.mc()
    got = b.readline() + b"\r\n"  # refused at accept time, in memcached's words
    assert got == b"SERVER_ERROR max number of clients reached\r\n", got
    assert b"VALUE" not in got and not got.startswith(b"END"), got
    assert b.is_closed()
    assert a.retrieval(b"get x")[1] == b"VALUE x 0 1\r\n1\r\nEND\r\n"


def test_many_clients(env):
    s = env.redis()
    px = env.proxy({"alpha": redis_pool([s])})
    conns = [px.resp() for _ in range(200)]
    for i, c in enumerate(conns):
        c.send(b"*3\r\n$3\r\nSET\r\n$%d\r\nmc:%d\r\n$1\r\nx\r\n" % (len("mc:%d" % i), i))
    assert all(c.read_reply() == b"OK" for c in conns)
    assert s.client().dbsize() == 200
    for c in conns:
        c.close()
    assert px.resp().call("PING") == b"PONG"


def test_client_disconnect_with_requests_in_flight(env):
    """A client that leaves with pending requests does not disturb the others."""
    s = env.redis()
    px = env.proxy({"alpha": redis_pool([s])})
    other = px.resp()
    assert other.call("SET", "fl", "0") == b"OK"
    for _ in range(20):
        c = px.resp()
        c.send(b"*2\r\n$4\r\nINCR\r\n$2\r\nfl\r\n" * 200)
        c.s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        c.close()  # RST with replies pending
    assert other.call("SET", "fl2", "x") == b"OK"
    assert other.call("GET", "fl2") == b"x"
    assert px.resp().call("PING") == b"PONG"
    assert px.alive()


def test_a_server_down_without_ejection_is_said_once_per_gap_not_per_request(env):
    """A server that stays down in a pool without auto_eject_hosts fails every
    request sent to it, each on a new connection: the warning for each closed
    connection wrote one log line per request (16,809 lines in a second from
    one client, where twemproxy writes none). It is said once per 10 s, with
    the count of those left unsaid."""
    dead = "127.0.0.1:%d" % free_port()  # nothing listens there
    px = env.proxy({"alpha": mc_pool([dead], auto_eject_hosts=False)}, verbose=5)
    c = px.mc()
    for i in range(300):
        assert c.cmd(b"get k%d" % i).startswith(b"SERVER_ERROR"), i
    px.wait_stats(lambda s: s["alpha"]["forward_error"] == 300, "300 requests refused")
    with open(px.log) as f:
        lines = [line for line in f if "connection closed" in line]
    assert 1 <= len(lines) <= 2, lines[:5]


def _free_port_in_the_kernels_outgoing_range():
    """A port nothing listens on, in ip_local_port_range, where the kernel picks
    the source ports of connects (conftest's free_port stays below it). Even:
    connects are given even ports first."""
    with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
        lo, hi = map(int, f.read().split())
    for _ in range(1000):
        port = random.randrange(lo, hi) & ~1
        if port >= lo and port_is_free(port):
            return port
    raise RuntimeError("no free port in the outgoing range")


def test_a_connect_that_meets_itself_is_refused(env):
    """A server down whose port is in the kernel's range for outgoing ports:
    the proxy connects again for each request, and in time the kernel gives a
    socket that very port as its source. That connect meets its own SYN and
    succeeds (TCP's simultaneous open), so each request came back as its own
    reply (h41: `GET key42` answered `*2 $3 GET $5 key42` 185,630 times of
    187,386), and the port stayed taken: redis could not start there. Such a
    connection is refused now, and closed with a reset, so the port is free."""
    port = _free_port_in_the_kernels_outgoing_range()
    px = env.proxy({"alpha": redis_pool(["%s:%d" % (HOST, port)], auto_eject_hosts=False)})
    c = px.resp()
    n, deadline = 0, time.monotonic() + 6
    while time.monotonic() < deadline:
        got = c.call("GET", "k")
        assert isinstance(got, RespError) and "Connection refused" in got.msg, (n, got)
        n += 1
    server = env.redis(port=port)  # free for it, the proxy running
    assert c.call("SET", "k", "v") == b"OK" and server.client().get("k") == b"v"


def test_a_server_connections_without_limit_starts_small_and_serves(env):
    """server_connections: 2147483647 (twemproxy's files may say so for "no
    limit"; it opens connections as needed) set up every connection up front:
    the start failed (ASan: an allocation too large). Ours opens at most 1024 to
    each server per process, says so at the start, and serves."""
    r, m = env.redis(), env.memcached()
    px = env.proxy({"r": redis_pool([r], server_connections=2147483647),
                    "m": mc_pool([m], server_connections=2147483647)})
    with open("/proc/%d/status" % px.proc.pid) as f:
        rss_kb = int([x for x in f if x.startswith("VmRSS:")][0].split()[1])
    assert rss_kb < 64 * 1024, "RSS %d kB" % rss_kb
    for pool in ("r", "m"):
        assert "pool '%s': server_connections 2147483647: at most 1024 connections" % pool in px.log_tail()
    clients = [px.resp("r") for _ in range(20)]
    assert all(c.call("SET", "sc%d" % i, i) == b"OK" for i, c in enumerate(clients))
    assert px.pymc("m").set("sc", b"1", noreply=False) is True
    # one connection per client (each client has its own, up to the bound)
    assert len([c for c in r.client().client_list() if c["cmd"] == "set"]) == 20
