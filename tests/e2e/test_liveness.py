"""Liveness (SPEC 7): timeouts, failure accounting, ejection and return,
reconnects, preconnect, several connections per server."""

import threading
import time

import pytest

from conftest import RespError, encode_command, mc_pool, placement, redis_pool
from liveness_util import crash, keys_by_server, stalled, wait_until

TIMED_OUT = RespError("ERR Connection timed out")


def _is_conn_error(r):
    return isinstance(r, RespError) and r.msg.startswith("ERR ")


# --------------------------------------------------------------------------- timeouts

def test_timeout_redis_stalled_backend(env):
    """timeout: 300 and a SIGSTOPped redis: -ERR Connection timed out well
    within 3 s, every pending request on that connection gets an error,
    server_timedout counts it, and the proxy serves again after SIGCONT."""
    s = env.redis()
    px = env.proxy({"alpha": redis_pool([s], timeout=300)})
    c = px.resp(timeout=10)
    assert c.call("SET", "to:k", "v1") == b"OK"
    with stalled(s):
        t0 = time.monotonic()
        r = c.call("GET", "to:k")
        dt = time.monotonic() - t0
        assert r == TIMED_OUT, r
        assert 0.2 <= dt < 3.0, dt
        st = px.wait_stats(lambda st: st["alpha"][s.addr]["server_timedout"] >= 1)
        assert st["alpha"][s.addr]["server_timedout"] == 1, st["alpha"][s.addr]

        # a pipelined batch on the (new) connection: all of it is answered with errors
        t0 = time.monotonic()
        replies = c.pipeline([("GET", "to:k"), ("GET", "to:other"), ("SET", "to:k", "v2"), ("INCR", "to:n")])
        dt = time.monotonic() - t0
        assert replies[0] == TIMED_OUT, replies
        assert all(_is_conn_error(r) for r in replies), replies
        assert dt < 3.0, dt
        st = px.wait_stats(lambda st: st["alpha"][s.addr]["server_timedout"] >= 2)
        assert st["alpha"][s.addr]["server_timedout"] >= 2, st["alpha"][s.addr]
    # resumed: served again (the backend may still execute the abandoned SET)
    assert c.call("GET", "to:k") in (b"v1", b"v2")
    assert c.call("SET", "to:k", "v3") == b"OK"
    assert c.call("GET", "to:k") == b"v3"
    assert s.resp().call("GET", "to:k") == b"v3"


def test_timeout_memcache_stalled_backend(env):
    """The same for a memcached pool: SERVER_ERROR Connection timed out."""
    s = env.memcached()
    px = env.proxy({"alpha": mc_pool([s], timeout=300)})
    c = px.mc(timeout=10)
    assert c.cmd(b"set to:k 0 0 2", b"v1") == b"STORED"
    with stalled(s):
        t0 = time.monotonic()
        line = c.cmd(b"get to:k")
        dt = time.monotonic() - t0
        assert line == b"SERVER_ERROR Connection timed out", line
        assert 0.2 <= dt < 3.0, dt
        st = px.wait_stats(lambda st: st["alpha"][s.addr]["server_timedout"] >= 1)
        assert st["alpha"][s.addr]["server_timedout"] == 1, st["alpha"][s.addr]

        t0 = time.monotonic()
        c.send(b"get to:k\r\nget to:other\r\nset to:k 0 0 2\r\nv2\r\nincr to:n 1\r\n")
        lines = [c.readline() for _ in range(4)]
        dt = time.monotonic() - t0
        assert lines[0] == b"SERVER_ERROR Connection timed out", lines
        assert all(l.startswith(b"SERVER_ERROR ") for l in lines), lines
        assert dt < 3.0, dt
    items, _ = c.retrieval(b"get to:k")
    assert [(k, d) for k, _, d, _ in items] in ([(b"to:k", b"v1")], [(b"to:k", b"v2")])
    assert c.cmd(b"set to:k 0 0 2", b"v3") == b"STORED"
    items, _ = c.retrieval(b"get to:k")
    assert [(k, d) for k, _, d, _ in items] == [(b"to:k", b"v3")]


# --------------------------------------------------------------------------- failures and ejection

def _set_all(c, keys, value):
    replies = c.pipeline([("SET", k, value) for k in keys])
    assert replies == [b"OK"] * len(keys), replies


def _assert_on(servers_by_addr, where, keys, value):
    """Each key holds value on the backend `where` names, read directly."""
    wrong = {}
    for k in keys:
        got = servers_by_addr[where[k].addr].resp().call("GET", k)
        if got != value:
            wrong[k] = (where[k].addr, got)
    assert not wrong, "keys not where expected (key: (server, value there)): %r" % wrong


def test_auto_eject_and_return(env):
    """auto_eject_hosts with server_failure_limit 2: a dead backend's keys fail
    with a connection error until it is ejected, then go to the other servers
    (whose own keys stay where they are); server_ejects / server_ejected_at are
    reported; restarted on its port, the backend gets its keys back after
    server_retry_timeout."""
    servers = env.redises(3)
    a, b, c3 = servers
    by_addr = {s.addr: s for s in servers}
    px = env.proxy({"alpha": redis_pool(servers, auto_eject_hosts=True, server_failure_limit=2,
                                        server_retry_timeout=1500)})
    keys, where, groups = keys_by_server(servers, "ej", 20)
    dead_keys = groups[c3.addr]

    cl = px.resp(timeout=10)
    _set_all(cl, keys, "v1")
    _assert_on(by_addr, where, keys, b"v1")

    t_kill = time.time()
    crash(c3)
    errors = []
    for _ in range(10):
        r = cl.call("SET", dead_keys[0], "v2")
        if r == b"OK":
            break
        errors.append(r)
    t_ejected = time.monotonic()
    assert r == b"OK", "never ejected; replies: %r" % errors
    assert 1 <= len(errors) <= 2, errors
    assert all(isinstance(e, RespError) and e.msg.startswith("ERR Connection") for e in errors), errors

    # ejected: every key works; the dead server's keys moved, no other key moved
    # (ketama over the two live servers keeps a's and b's keys where they were)
    after = placement(keys, [a, b])
    _set_all(cl, keys, "v3")
    _assert_on(by_addr, after, keys, b"v3")

    st = px.wait_stats(lambda st: st["alpha"]["server_ejects"] >= 1)
    assert st["alpha"]["server_ejects"] == 1, st["alpha"]
    ejected_at = st["alpha"][c3.addr]["server_ejected_at"]
    assert (t_kill - 2) * 1e6 <= ejected_at <= (time.time() + 2) * 1e6, (ejected_at, t_kill)
    assert st["alpha"][a.addr]["server_ejected_at"] == 0
    assert st["alpha"][b.addr]["server_ejected_at"] == 0

    # back on the same port: after server_retry_timeout its keys return to it
    c3b = env.redis(port=c3.port)
    by_addr[c3b.addr] = c3b

    def set_lands_on_c3b():
        assert cl.call("SET", dead_keys[0], "v4") == b"OK"
        return c3b.resp().call("GET", dead_keys[0]) == b"v4" and time.monotonic()
    back = wait_until(set_lands_on_c3b, "the restarted server to get its keys back", timeout=10)
    assert back - t_ejected >= 1.0, "returned before server_retry_timeout: %.3f s" % (back - t_ejected)
    _set_all(cl, keys, "v5")
    _assert_on(by_addr, where, keys, b"v5")


@pytest.mark.parametrize("auto_eject", [True, False], ids=["auto_eject", "no_eject"])
def test_all_servers_down_error_at_once(env, auto_eject):
    """Every backend dead (and, with auto_eject, ejected): each request gets
    an error at once, never a hang."""
    servers = env.redises(2)
    px = env.proxy({"alpha": redis_pool(servers, auto_eject_hosts=auto_eject, server_failure_limit=1,
                                        server_retry_timeout=30000)})
    keys, where, groups = keys_by_server(servers, "down", 5)
    first = [groups[s.addr][0] for s in servers]
    cl = px.resp(timeout=10)
    assert cl.call("SET", first[0], "x") == b"OK"
    for s in servers:
        crash(s)
    for k in first + keys[:6]:
        t0 = time.monotonic()
        r = cl.call("GET", k)
        dt = time.monotonic() - t0
        assert _is_conn_error(r), (k, r)
        assert dt < 2.0, (k, dt)
    t0 = time.monotonic()
    r = cl.call("MGET", *keys[:10])
    assert isinstance(r, RespError), r
    assert time.monotonic() - t0 < 2.0
    if auto_eject:
        st = px.wait_stats(lambda st: st["alpha"]["server_ejects"] >= 2)
        assert st["alpha"]["server_ejects"] == 2, st["alpha"]
        assert all(st["alpha"][s.addr]["server_ejected_at"] > 0 for s in servers), st["alpha"]
    else:
        st = px.stats()
        assert st["alpha"]["server_ejects"] == 0, st["alpha"]


def test_backend_restart_reconnects_without_auto_eject(env):
    """No auto_eject: a backend that dies is counted (server_eof for the
    connection it closed, server_err for the refused connect), requests fail
    while it is down, and once it is back the next request succeeds."""
    s = env.redis()
    px = env.proxy({"alpha": redis_pool([s])})
    cl = px.resp(timeout=10)
    assert cl.call("SET", "rc:k", "v1") == b"OK"
    crash(s)
    st = px.wait_stats(lambda st: st["alpha"][s.addr]["server_eof"] >= 1)
    assert st["alpha"][s.addr]["server_eof"] == 1, st["alpha"][s.addr]
    r = cl.call("GET", "rc:k")
    assert isinstance(r, RespError) and r.msg.startswith("ERR Connection"), r
    st = px.wait_stats(lambda st: st["alpha"][s.addr]["server_err"] >= 1)
    assert st["alpha"][s.addr]["server_err"] >= 1, st["alpha"][s.addr]
    assert st["alpha"][s.addr]["server_connections"] == 0, st["alpha"][s.addr]

    s2 = env.redis(port=s.port)
    assert cl.call("SET", "rc:k", "v2") == b"OK"
    assert s2.resp().call("GET", "rc:k") == b"v2"
    assert cl.call("GET", "rc:k") == b"v2"
    assert px.stats()["alpha"]["server_ejects"] == 0


# --------------------------------------------------------------------------- connections

def _backend_clients(s):
    info = s.resp().call("INFO", "clients").decode()
    return int(info.split("connected_clients:")[1].split()[0])


def test_preconnect_connects_at_start(env):
    """preconnect: true connects to every server at start, without traffic
    (one connection each); a pool without it stays unconnected."""
    servers = env.redises(3)
    others = env.redises(2)
    px = env.proxy({"pre": redis_pool(servers, preconnect=True), "lazy": redis_pool(others)})
    # the backends see the proxy's connection (plus the one asking)
    for s in servers:
        wait_until(lambda: _backend_clients(s) == 2, "%s to see the proxy's preconnection" % s.addr)
    st = px.wait_stats(lambda st: all(st["pre"][s.addr]["server_connections"] >= 1 for s in servers),
                       "the preconnections counted")
    for s in servers:
        assert st["pre"][s.addr]["server_connections"] == 1, (s.addr, st["pre"][s.addr])
        assert st["pre"][s.addr]["requests"] == 0, st["pre"][s.addr]
        # the backend sees it too: the proxy's connection plus the one asking
        assert _backend_clients(s) == 2
    for s in others:
        assert st["lazy"][s.addr]["server_connections"] == 0, st["lazy"][s.addr]
        assert _backend_clients(s) == 1


def test_server_connections_pipelined_in_order(env):
    """server_connections: 3; several clients each pipelining 500 SET/GET on
    a few keys: every reply in order, and at most 3 connections per server."""
    servers = env.redises(2)
    px = env.proxy({"alpha": redis_pool(servers, server_connections=3)})
    nclients, n = 6, 250
    results, errors = {}, []

    def run(i):
        try:
            c = px.resp(timeout=20)
            ckeys = keys_by_server(servers, "sc%d" % i, 4)[0]
            cmds = []
            for j in range(n):
                key = ckeys[j % len(ckeys)]
                cmds.append(("SET", key, "%d-%d" % (i, j)))
                cmds.append(("GET", key))
            c.send(b"".join(encode_command(*cmd) for cmd in cmds))
            results[i] = [c.read_reply() for _ in cmds]
            c.close()
        except Exception as e:  # reported below
            errors.append((i, repr(e)))

    threads = [threading.Thread(target=run, args=(i,)) for i in range(nclients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors, errors
    for i in range(nclients):
        want = []
        for j in range(n):
            want += [b"OK", ("%d-%d" % (i, j)).encode()]
        got = results[i]
        bad = [(k, got[k], want[k]) for k in range(len(want)) if got[k] != want[k]]
        assert not bad, "client %d: first mismatches (index, got, want): %r" % (i, bad[:5])
    st = px.wait_stats(lambda st: sum(st["alpha"][s.addr]["responses"] for s in servers) == nclients * 2 * n,
                       "every response counted")
    for s in servers:
        conns = st["alpha"][s.addr]["server_connections"]
        assert 1 <= conns <= 3, (s.addr, st["alpha"][s.addr])
        assert _backend_clients(s) - 1 <= 3
