"""Pipelining: many requests in flight on one client connection are answered in
order, also across servers, with split commands in the stream, and with
several connections per server (SPEC 7)."""

import hashlib
import random
import threading
import time

import pytest

from conftest import encode_command, placement, redis_pool, spread_keys


def _k(prefix, n):
    # hex digests spread over the continuum better than "p:1", "p:2", ...
    return "%s:%s" % (prefix, hashlib.md5(b"%d" % n).hexdigest()[:10])


def mixed_commands(n, seed, prefix="p"):
    """Reads and writes on overlapping keys: the replies depend on the order of execution."""
    rnd = random.Random(seed)
    cmds = []
    for i in range(n):
        k = _k(prefix, rnd.randrange(200))
        op = rnd.randrange(9)
        if op == 0:
            cmds.append(("SET", k, "v%d" % i))
        elif op == 1:
            cmds.append(("GET", k))
        elif op == 2:
            cmds.append(("INCR", "%s:n:%d" % (prefix, rnd.randrange(20))))
        elif op == 3:
            cmds.append(("RPUSH", "%s:l:%d" % (prefix, rnd.randrange(10)), "e%d" % i))
        elif op == 4:
            cmds.append(("LLEN", "%s:l:%d" % (prefix, rnd.randrange(10))))
        elif op == 5:
            cmds.append(("MGET",) + tuple(_k(prefix, rnd.randrange(200)) for _ in range(rnd.randrange(1, 8))))
        elif op == 6:
            args = []
            for _ in range(rnd.randrange(1, 5)):
                args += [_k(prefix, rnd.randrange(200)), "m%d" % i]
            cmds.append(("MSET",) + tuple(args))
        elif op == 7:
            cmds.append(("DEL",) + tuple(_k(prefix, rnd.randrange(200)) for _ in range(rnd.randrange(1, 4))))
        else:
            cmds.append(("APPEND", k, "a"))
    return cmds


@pytest.fixture(scope="module")
def setup(menv):
    direct = menv.redis()
    servers = menv.redises(4)
    px = menv.proxy({"one": redis_pool(servers), "many": redis_pool(servers, server_connections=4)})
    return direct, servers, px


@pytest.fixture
def fresh(setup):
    direct, servers, px = setup
    for s in [direct] + servers:
        s.client().flushall()
    return setup


def order_only_commands(n, seed, prefix):
    """Commands whose replies do not depend on the order in which they run:
    reads of preloaded keys and writes of keys used once.  With several
    connections per server requests may run in any order, but the replies
    must still come back in request order."""
    rnd = random.Random(seed)
    preload = {_k(prefix + "pre", i): "pre%d" % i for i in range(100)}
    cmds = []
    for i in range(n):
        op = rnd.randrange(5)
        if op == 0:
            cmds.append(("SET", _k(prefix + "w", i), "w%d" % i))
        elif op == 1:
            cmds.append(("GET", _k(prefix + "pre", rnd.randrange(120))))
        elif op == 2:
            cmds.append(("MGET",) + tuple(_k(prefix + "pre", rnd.randrange(120)) for _ in range(rnd.randrange(1, 8))))
        elif op == 3:
            cmds.append(("INCRBY", _k(prefix + "i", i), str(i)))
        else:
            cmds.append(("STRLEN", _k(prefix + "pre", rnd.randrange(120))))
    return preload, cmds


def test_1000_pipelined_commands_in_one_write(fresh):
    direct, servers, px = fresh
    cmds = mixed_commands(1000, seed=7, prefix="one")
    want = direct.resp().pipeline(cmds)
    c = px.resp("one")
    got = c.pipeline(cmds)  # all 1000 requests are sent before any reply is read
    assert got == want
    assert all(s.client().dbsize() > 0 for s in servers)


def test_1000_pipelined_commands_several_server_connections(fresh):
    direct, servers, px = fresh
    preload, cmds = order_only_commands(1000, seed=8, prefix="many")
    for r in (direct.client(), px.client("many")):
        r.mset(preload)
    want = direct.resp().pipeline(cmds)
    got = px.resp("many").pipeline(cmds)
    assert got == want


def test_redis_py_pipeline(fresh):
    direct, servers, px = fresh
    cmds = mixed_commands(1000, seed=11, prefix="rp")
    results = []
    for r in (direct.client(), px.client("one")):
        p = r.pipeline(transaction=False)
        for c in cmds:
            p.execute_command(*c)
        results.append(p.execute(raise_on_error=False))
    assert results[1] == results[0]
    # the keys really are spread over the 4 servers
    assert all(s.client().dbsize() > 0 for s in servers)


def test_a_pipeline_sent_whole_before_its_replies_are_read(fresh):
    """redis-py sends a whole pipeline before it reads a reply. Here it carries 100 MB
    of values and asks 100 MB back: more than the kernel's socket buffers hold
    either way, and more than --client-buffer-limit (64 MB), so the proxy must read
    on while the client's replies wait unread (a client whose writes stopped would
    never read them; past 64 MB it hung, where redis and twemproxy go on). Replies
    equal redis' own."""
    direct, servers, px = fresh
    n, size = 2500, 40 * 1000
    cmds = []
    for i in range(n):
        k = _k("whole", i)
        cmds.append(("SET", k, b"%06d" % i * (size // 6)))
        cmds.append(("GET", k))
    results = []
    for r in (direct.client(), px.client("one", socket_timeout=60)):
        p = r.pipeline(transaction=False)
        for c in cmds:
            p.execute_command(*c)
        results.append(p.execute())
    assert results[1] == results[0]
    assert results[1][1::2] == [c[2] for c in cmds[0::2]]


def test_byte_at_a_time_requests(fresh):
    """Requests split at every byte boundary are reassembled."""
    direct, servers, px = fresh
    cmds = mixed_commands(30, seed=3, prefix="b")
    want = direct.resp().pipeline(cmds)
    c = px.resp("one")
    data = b"".join(encode_command(*x) for x in cmds)
    for i in range(len(data)):
        c.send(data[i:i + 1])
    assert [c.read_reply() for _ in cmds] == want


def test_concurrent_pipelining_clients(fresh):
    direct, servers, px = fresh
    errors = []

    def worker(n):
        try:
            prefix = "c%d" % n    # disjoint keys per client: replies are deterministic
            cmds = mixed_commands(400, seed=100 + n, prefix=prefix)
            got = px.resp("one").pipeline(cmds)
            want = direct.resp().pipeline(cmds)
            if got != want:
                errors.append("client %d: replies differ" % n)
        except Exception as e:  # noqa: BLE001
            errors.append("client %d: %r" % (n, e))

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors


def test_concurrent_clients_several_server_connections(fresh):
    direct, servers, px = fresh
    errors = []
    loads = [order_only_commands(300, seed=200 + n, prefix="cc%d" % n) for n in range(8)]
    for preload, _ in loads:
        direct.client().mset(preload)
        px.client("many").mset(preload)
    wants = [direct.resp().pipeline(cmds) for _, cmds in loads]

    def worker(n):
        try:
            if px.resp("many").pipeline(loads[n][1]) != wants[n]:
                errors.append("client %d: replies differ" % n)
        except Exception as e:  # noqa: BLE001
            errors.append("client %d: %r" % (n, e))

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors


# ------------------------------------------------- replies of one read, one write
# A pipeline's requests go to several servers; the replies that are ready wait
# for the rest of their read (pool key reply_batch_wait, default 1 ms) so that
# they leave in one write. CLIENT PAUSE on a server makes its reply late by a
# known time.

@pytest.fixture(scope="module")
def batch(menv):
    servers = menv.redises(2)
    px = menv.proxy({"wait": redis_pool(servers, reply_batch_wait=1000),
                     "default": redis_pool(servers),
                     "nowait": redis_pool(servers, reply_batch_wait=0)})
    def key_on(server, prefix):  # placement depends on the servers' ports, picked at random
        return next(k for k in spread_keys(prefix, 1000) if placement([k], servers)[k] is server)

    keys = [key_on(servers[0], "b"), key_on(servers[1], "b"), key_on(servers[0], "big")]
    servers[0].client().set(keys[0], "a")
    servers[1].client().set(keys[1], "b")
    servers[0].client().set(keys[2], "x" * 100000)
    return servers, px, keys


def _pause(server, ms):
    assert server.client().execute_command("CLIENT", "PAUSE", ms, "ALL")


def _first_bytes(c, data):
    """Send data; the first bytes that come back and how long they took."""
    c.call("PING")  # the connection is up before the clock starts
    t0 = time.monotonic()
    c.send(data)
    c.settimeout(10)
    got = c.s.recv(1 << 20)
    return got, time.monotonic() - t0


def test_replies_of_one_read_leave_in_one_write(batch):
    servers, px, (ka, kb, big) = batch
    c = px.resp("wait")
    _pause(servers[1], 300)
    got, took = _first_bytes(c, encode_command("GET", ka) + encode_command("GET", kb))
    # the reply from the first server waited for the second's: both in one write
    assert got == b"$1\r\na\r\n$1\r\nb\r\n", got
    assert took >= 0.2, took


@pytest.mark.parametrize("pool", ["default", "nowait"])
def test_a_ready_reply_waits_at_most_reply_batch_wait(batch, pool):
    servers, px, (ka, kb, big) = batch
    c = px.resp(pool)
    _pause(servers[1], 1000)
    got, took = _first_bytes(c, encode_command("GET", ka) + encode_command("GET", kb))
    assert got == b"$1\r\na\r\n", got  # not held until the paused server answers
    assert took < 0.5, took
    assert c.read_reply() == b"b"


def test_replies_wait_only_for_requests_of_their_own_read(batch):
    servers, px, (ka, kb, big) = batch
    c = px.resp("wait")
    _pause(servers[0], 300)
    _pause(servers[1], 1500)
    c.call("PING")
    t0 = time.monotonic()
    c.send(encode_command("GET", ka))
    time.sleep(0.1)  # a read of its own
    c.send(encode_command("GET", kb))
    assert c.read_reply() == b"a"
    took = time.monotonic() - t0
    assert took < 1.0, took  # written when its server answered, not with the later read's
    assert c.read_reply() == b"b"


def test_a_large_reply_does_not_wait(batch):
    servers, px, (ka, kb, big) = batch
    c = px.resp("wait")
    _pause(servers[1], 1000)
    got, took = _first_bytes(c, encode_command("GET", big) + encode_command("GET", kb))
    assert got.startswith(b"$100000\r\nxxx"), got[:20]
    assert took < 0.5, took
    c.buf = got
    assert c.read_reply() == b"x" * 100000
    assert c.read_reply() == b"b"
