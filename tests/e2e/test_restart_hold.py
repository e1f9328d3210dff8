"""A server restart behind a pool without sentinels (`failover_hold_on_crash`).

By default (twemproxy's way) a request for a server that cannot be reached is
answered `-ERR Connection refused` at once.  With `failover_hold_on_crash: true`
the proxy holds it instead, tries the server every 50 ms, and sends what waited,
in order, once it is back; `failover_hold` ms after the hold began what still
waits gets an error.  Each test restarts a real redis-server or memcached on
the same port.
"""

import time

from conftest import encode_command, mc_pool, redis_pool, wait_until


def _held(px, pool, name):
    return px.stats()[pool][name]


def _hold_pool(servers, hold_ms=5000, **kw):
    return redis_pool(servers, failover_hold_on_crash=True, failover_hold=hold_ms, **kw)


def _wait_held(px, pool, name, n):
    px.wait_stats(lambda d: d[pool][name]["failover_held"] >= n,
                  "%d requests held for %s" % (n, name))


def test_requests_for_a_restarting_server_wait_for_it_and_run_in_order(env):
    r = env.redis()
    px = env.proxy({"a": _hold_pool([r])})
    c = px.resp()
    assert c.call("SET", "k", "1") == b"OK"
    port = r.port
    r.stop()
    # a pipeline meets the dead server: nothing answered while it is down
    c.send(b"".join(encode_command(*a) for a in
                    [("SET", "k", "10"), ("INCR", "k"), ("APPEND", "log", "a"), ("GET", "k")]))
    other = px.resp()
    other.send(encode_command("APPEND", "log", "b"))
    _wait_held(px, "a", r.addr, 5)
    assert c.read_available(wait=0.3) == b""
    assert other.read_available(wait=0.1) == b""
    env.redis(port=port)
    assert [c.read_reply() for _ in range(4)] == [b"OK", 11, 1, b"11"]
    assert other.read_reply() == 2
    assert c.call("GET", "log") == b"ab"  # the two clients' requests in the order they came
    st = px.stats()["a"][r.addr]
    assert st["failover_held"] == 5 and st["failover_released"] == 5, st
    assert st["failover_expired"] == 0 and st["failover_hold_us"] > 0, st


def test_a_server_that_stays_down_gets_an_error_after_failover_hold(env):
    r = env.redis()
    px = env.proxy({"a": _hold_pool([r], hold_ms=400)})
    c = px.resp()
    assert c.call("PING") == b"PONG"
    r.stop()
    t0 = time.monotonic()
    c.send(encode_command("GET", "k"))
    reply = c.read_reply()
    waited = time.monotonic() - t0
    assert str(reply) == "ERR server '%s' unreachable for failover_hold (400 ms)" % r.addr, reply
    assert 0.35 <= waited < 3.0, waited
    st = px.stats()["a"][r.addr]
    assert st["failover_expired"] == 1 and st["failover_released"] == 0, st
    # the next request begins a new hold: a server back within it serves it
    c.send(encode_command("SET", "k", "v"))
    _wait_held(px, "a", r.addr, 2)
    env.redis(port=r.port)
    assert c.read_reply() == b"OK"
    assert c.call("GET", "k") == b"v"


def test_other_servers_of_the_pool_go_on_while_one_restarts(env):
    r1, r2 = env.redises(2)
    px = env.proxy({"a": _hold_pool([r1, r2], hash="md5", distribution="ketama")})
    c = px.client()
    keys = ["k%d" % i for i in range(64)]
    for k in keys:
        c.set(k, "v")
    on_r1 = [k for k in keys if r1.client().exists(k)]
    on_r2 = [k for k in keys if r2.client().exists(k)]
    assert on_r1 and on_r2
    r1.stop()
    waiting = px.resp()
    waiting.send(encode_command("SET", on_r1[0], "w"))
    _wait_held(px, "a", r1.addr, 1)
    t0 = time.monotonic()
    assert [c.get(k) for k in on_r2] == [b"v"] * len(on_r2)  # not held behind r1
    assert time.monotonic() - t0 < 1.0
    env.redis(port=r1.port)
    assert waiting.read_reply() == b"OK"
    assert r1.client().get(on_r1[0]) == b"w"


def test_without_the_key_a_dead_server_is_refused_at_once(env):
    r = env.redis()
    px = env.proxy({"a": redis_pool([r])})
    c = px.resp()
    assert c.call("PING") == b"PONG"
    r.stop()
    t0 = time.monotonic()
    assert str(c.call("GET", "k")) == "ERR Connection refused"
    assert time.monotonic() - t0 < 1.0
    st = px.stats()["a"][r.addr]
    assert "failover_held" not in st  # twemproxy's keys only


def test_memcached_requests_wait_for_a_restarting_memcached(env):
    m = env.memcached()
    px = env.proxy({"m": mc_pool([m], failover_hold_on_crash=True)})
    c = px.mc()
    assert c.cmd(b"set k 0 0 1", b"a") == b"STORED"
    m.stop()
    c.send(b"set k 0 0 1\r\nb\r\nget k\r\n")
    _wait_held(px, "m", m.addr, 2)
    env.memcached(port=m.port)
    assert c.readline() == b"STORED"
    assert c.read_values()[0] == [(b"k", 0, b"b", [])]


def test_held_requests_are_tried_every_50ms_not_once_each(env):
    """While the server is down, connects are the hold's retries, not one per
    request of clients that keep sending."""
    r = env.redis()
    px = env.proxy({"a": _hold_pool([r], hold_ms=1000)})
    clients = [px.resp() for _ in range(20)]
    for c in clients:
        assert c.call("PING") == b"PONG"
    before = px.stats()["a"][r.addr]["server_err"]
    r.stop()
    t0 = time.monotonic()
    for i, c in enumerate(clients):
        c.send(b"".join(encode_command("INCR", "n%d" % i) for _ in range(50)))
    _wait_held(px, "a", r.addr, 1000)
    wait_until(lambda: px.stats()["a"][r.addr]["failover_expired"] == 1000, "the hold to expire",
               timeout=5)
    took = time.monotonic() - t0
    errs = px.stats()["a"][r.addr]["server_err"] - before
    # one connect each 50 ms, and the first refusal: far from one per request
    assert errs <= took * 1000 / 50 + 5, (errs, took)


def _master_replica(env):
    """A master, its replica, and a pool with reads to the replica that holds."""
    from test_replica_reads import split_pool, start_replicated
    master, (replica,) = start_replicated(env, nreplicas=1)
    px = env.proxy({"a": split_pool(master, [replica], read_from="replica",
                                    failover_hold_on_crash=True)})
    return master, replica, px


def test_a_master_restart_holds_its_writes_while_reads_go_to_the_replica(env):
    """A pool with a server named master: its writes wait for it; a replica's
    reads are not held (they have the master and other replicas)."""
    master, replica, px = _master_replica(env)
    c = px.resp()
    assert c.call("SET", "k", "v") == b"OK"
    wait_until(lambda: replica.client().get("k") == b"v", "k on the replica")
    master.stop()
    w = px.resp()
    w.send(encode_command("SET", "k", "w"))
    _wait_held(px, "a", "master", 1)
    assert c.call("GET", "k") == b"v"  # the replica answers while the master is away
    env.redis(port=master.port)
    assert w.read_reply() == b"OK"
    assert master.client().get("k") == b"w"


def test_what_waited_goes_once_the_restarted_redis_has_loaded_its_data(env):
    """A restarted redis accepts connections while it loads its data and
    answers -LOADING; clients of redis itself wait for the load as they
    reconnect (ioredis' ready check). The held requests wait for it too."""
    r = env.redis()
    c = r.client()
    for i in range(0, 8000, 1000):
        c.mset({"load%d" % k: "v" for k in range(i, i + 1000)})
    c.save()
    port = r.port
    px = env.proxy({"a": _hold_pool([r], hold_ms=30000)})
    w = px.resp()
    assert w.call("PING") == b"PONG"
    r.stop()
    w.send(encode_command("GET", "load7"))
    _wait_held(px, "a", r.addr, 1)
    r = env.redis(args=["--key-load-delay", "100", "--loading-process-events-interval-bytes", "1024"],
                  port=port)
    assert r.client().info("persistence")["loading"] == 1, "loaded too fast for this test"
    assert w.read_reply() == b"v"
    assert r.client().info("persistence")["loading"] == 0


def test_a_user_that_may_not_ping_is_released_too(env):
    """The proxy asks a restarted redis PING before it sends what waited; an
    ACL user without +ping gets -NOPERM, which says the server serves."""
    acl = ["--user", "app", "on", ">pw", "~*", "+get", "+set", "--user", "default", "off"]
    r = env.redis(args=acl)
    px = env.proxy({"a": _hold_pool([r], redis_auth="app pw")})
    c = px.resp()
    assert c.call("AUTH", "app", "pw") == b"OK"  # (the pool's user: twemproxy's redis_auth)
    assert c.call("SET", "k", "v") == b"OK"
    port = r.port
    r.stop()
    c.send(encode_command("GET", "k"))
    _wait_held(px, "a", r.addr, 1)
    t0 = time.monotonic()
    env.redis(args=acl, port=port)
    assert c.read_reply() is None  # (redis restarted without its data)
    assert time.monotonic() - t0 < 2.0
    assert px.stats()["a"][r.addr]["failover_released"] == 1


def test_memcached_noreply_requests_wait_too(env):
    """pymemcache sends set with noreply by default: those wait with the rest
    (they were dropped, h73), in order with the client's other requests."""
    m = env.memcached()
    px = env.proxy({"m": mc_pool([m], failover_hold_on_crash=True)})
    c = px.pymc()
    assert c.set("k", "0") is True
    m.stop()
    mc = px.mc()
    # (a noreply request that is the first to meet the dead server has no reply
    # to carry the refusal, nor a place in the hold: a get finds it first)
    mc.send(b"get z\r\n")
    _wait_held(px, "m", m.addr, 1)
    mc.send(b"set a 0 0 1 noreply\r\n1\r\nset b 0 0 1\r\n2\r\nget a b\r\n")
    _wait_held(px, "m", m.addr, 4)
    m2 = env.memcached(port=m.port)
    assert mc.read_values()[0] == []
    assert mc.readline() == b"STORED"
    items, _ = mc.read_values()
    assert [(k, v) for k, _, v, _ in items] == [(b"a", b"1"), (b"b", b"2")]
    # the same through pymemcache's defaults, many at once
    keys = ["n%d" % i for i in range(200)]
    held = px.stats()["m"][m.addr]["failover_held"]
    m2.stop()
    mc.send(b"get k\r\n")
    _wait_held(px, "m", m.addr, held + 1)
    for k in keys:
        c.set(k, "v")  # noreply: returns at once
    _wait_held(px, "m", m.addr, held + 1 + len(keys))
    env.memcached(port=m.port)
    assert mc.read_values()[0] == []
    assert c.get_many(keys) == {k: b"v" for k in keys}


def test_a_replica_read_behind_the_clients_held_write_waits_for_it(env):
    """A pool with a master: a client's read after its own held write goes
    with it, to the master, not to a replica that lacks it (h73)."""
    master, replica, px = _master_replica(env)
    c = px.resp()
    assert c.call("SET", "k", "1") == b"OK"
    wait_until(lambda: replica.client().get("k") == b"1", "k on the replica")
    master.stop()
    c.send(encode_command("SET", "k", "2"))
    _wait_held(px, "a", "master", 1)
    c.send(encode_command("GET", "k"))  # (before: the replica answered "1" at once)
    _wait_held(px, "a", "master", 2)
    env.redis(port=master.port)
    assert c.read_reply() == b"OK"
    assert c.read_reply() == b"2"


def test_blocking_subscribe_and_watch_wait_for_a_restarting_server(env):
    """BLPOP, SUBSCRIBE and WATCH need a connection of their client's own,
    which the hold cannot carry: while the server is held for they wait before
    they are routed, and go once it is back (they got an error or a close)."""
    r = env.redis()
    px = env.proxy({"a": _hold_pool([r])})
    c = px.resp()
    assert c.call("PING") == b"PONG"
    r.stop()
    c.send(encode_command("GET", "k"))  # meets the refusal: the hold begins
    _wait_held(px, "a", r.addr, 1)
    b, s, w = px.resp(), px.resp(), px.resp()
    b.send(encode_command("BLPOP", "q", "0"))
    s.send(encode_command("SUBSCRIBE", "ch"))
    w.send(encode_command("WATCH", "k"))
    time.sleep(0.3)
    assert b.read_available(0.05) == s.read_available(0.05) == w.read_available(0.05) == b""
    r = env.redis(port=r.port)
    assert c.read_reply() is None
    assert s.read_reply() == [b"subscribe", b"ch", 1]
    assert w.read_reply() == b"OK"
    r.client().rpush("q", "x")
    assert b.read_reply() == [b"q", b"x"]
    r.client().publish("ch", "m")
    assert s.read_reply() == [b"message", b"ch", b"m"]
    assert w.call("MULTI") == b"OK" and w.call("SET", "k", "1") == b"QUEUED"
    assert w.call("EXEC") == [b"OK"]
