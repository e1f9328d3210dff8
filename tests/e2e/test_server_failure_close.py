"""`server_failure_closes_client: true`: a request whose server fails (cannot
be reached, is lost, times out) closes its client once the replies before it
are written, where twemproxy (and a pool without the key) answers an error in
its place. redis-py raises an error reply as `ResponseError`, which job queues
(RQ, Celery) treat as fatal; a closed connection is a `ConnectionError`, which
they retry, as when redis itself is down. Each case beside the same pool
without the key, and where it applies beside the dead redis reached directly."""

import threading
import time

import pytest
import redis
from pymemcache.exceptions import MemcacheServerError, MemcacheUnexpectedCloseError

from conftest import HOST, RespError, encode_command, free_port, mc_pool, placement, redis_pool, wait_until
from liveness_util import forwarded, stalled, stop_process

TIMEOUT_MS = 300


def _key_on(servers, addr, prefix):
    for i in range(1000):
        k = "%s%d" % (prefix, i)
        where = placement([k], servers)[k]
        if getattr(where, "addr", where) == addr:
            return k
    raise AssertionError("no key of %s on %s" % (prefix, addr))


@pytest.fixture
def down(env):
    """A pool with the key and one without, over the same two servers: a live
    redis and a port nothing listens on."""
    live = env.redis()
    dead = "%s:%d" % (HOST, free_port())
    servers = [live.addr, dead]
    px = env.proxy({
        "close": redis_pool(servers, server_failure_closes_client=True, timeout=TIMEOUT_MS),
        "error": redis_pool(servers, timeout=TIMEOUT_MS),
    })
    return live, dead, servers, px


def test_a_request_to_a_down_server_closes_its_client_as_redis_down_does(down):
    live, dead, servers, px = down
    key = _key_on(servers, dead, "d")
    with pytest.raises(redis.ConnectionError):
        redis.Redis(host=HOST, port=int(dead.split(":")[1]), socket_timeout=5).get(key)
    with pytest.raises(redis.ConnectionError):
        px.client("close").get(key)
    with pytest.raises(redis.ResponseError, match="Connection refused"):
        px.client("error").get(key)  # twemproxy's answer, the default
    c = px.resp("close")
    c.send(encode_command("GET", key) * 5)
    assert c.is_closed()  # no error reply before the close
    e = px.resp("error")
    e.send(encode_command("GET", key) * 5)
    assert [e.read_reply() for _ in range(5)] == [RespError("ERR Connection refused")] * 5
    # forward_error: once per client closed (2), once per error reply (1 + 5)
    st = px.wait_stats(lambda st: st["error"]["forward_error"] == 6, "the error replies counted")
    assert st["close"]["forward_error"] == 2


def test_no_reply_after_the_failed_one_reaches_the_client(down, env):
    """GET a (live), GET b (its server down), GET c (live) in one write: the
    client reads a's value, then the close. c's reply would be taken for b's."""
    live, dead, servers, px = down
    a, c_ = _key_on(servers, live.addr, "a"), _key_on(servers, live.addr, "c")
    b = _key_on(servers, dead, "b")
    live.client().mset({a: "va", c_: "vc"})
    c = px.resp("close")
    c.send(encode_command("GET", a) + encode_command("GET", b) + encode_command("GET", c_))
    assert c.read_reply() == b"va"
    assert c.is_closed()
    e = px.resp("error")
    e.send(encode_command("GET", a) + encode_command("GET", b) + encode_command("GET", c_))
    got = [e.read_reply(), e.read_reply(), e.read_reply()]
    assert got == [b"va", RespError("ERR Connection refused"), b"vc"]


def test_a_reply_that_came_after_a_timed_out_request_is_not_written(env):
    """The failure comes after the requests behind it were answered: GET a on a
    stalled server times out after c (another server) answered; the client gets
    the close alone, not c's value."""
    rs = env.redises(2)
    px = env.proxy({"p": redis_pool(rs, server_failure_closes_client=True, timeout=TIMEOUT_MS)})
    slow, fast = rs
    a, c_ = _key_on(rs, slow.addr, "a"), _key_on(rs, fast.addr, "c")
    fast.client().set(c_, "vc")
    c = px.resp("p")
    with stalled(slow):
        c.send(encode_command("GET", a) + encode_command("GET", c_))
        forwarded(px, "p", slow)
        assert c.is_closed(timeout=5)
    px.wait_stats(lambda st: st["p"]["forward_error"] == 1 and st["p"][slow.addr]["server_timedout"] == 1,
                  "the timeout counted")
    assert px.client("p").get(c_) == b"vc"  # the pool serves new clients


def test_a_client_closed_for_failures_is_counted_and_logged_once(env):
    """GET a waits on a stalled server while 5 GETs to another server are on
    the wire there; that server is killed: 5 requests fail behind the
    unanswered first one, then it times out. One client closed: one
    forward_error, one log line."""
    rs = env.redises(2)
    px = env.proxy({"p": redis_pool(rs, server_failure_closes_client=True, timeout=1000)},
                   verbose=6)
    slow, dying = rs
    a, b = _key_on(rs, slow.addr, "a"), _key_on(rs, dying.addr, "b")
    c = px.resp("p")
    with stalled(slow):
        stop_process(dying.proc.pid)
        c.send(encode_command("GET", a) + encode_command("GET", b) * 5)
        forwarded(px, "p", dying, 5)
        dying.proc.kill()
        dying.proc.wait()
        assert c.is_closed(timeout=5)
    st = px.wait_stats(lambda st: st["p"][slow.addr]["server_timedout"] == 1, "the timeout counted")
    assert st["p"]["forward_error"] == 1
    with open(px.log) as f:
        assert f.read().count("ended without the server's answer") == 1


def test_a_memcached_client_gets_a_close_not_a_server_error(env):
    live = env.memcached()
    dead = "%s:%d" % (HOST, free_port())
    servers = [live.addr, dead]
    px = env.proxy({"close": mc_pool(servers, server_failure_closes_client=True),
                    "error": mc_pool(servers)})
    key = _key_on(servers, dead, "m")
    with pytest.raises(MemcacheServerError, match="Connection refused"):
        px.pymc("error").get(key)  # SERVER_ERROR Connection refused
    with pytest.raises((MemcacheUnexpectedCloseError, ConnectionResetError)):
        px.pymc("close").get(key)  # as from a memcached that went away
    c = px.mc("close")
    # a noreply request has no reply to fail (it is dropped, as before): the
    # client is closed at the next one that has
    c.send(b"set %s 0 0 1 noreply\r\nx\r\nget %s\r\n" % (key.encode(), key.encode()))
    assert c.is_closed()


class Worker(threading.Thread):
    """RQ's loop in short: wait for a job with a blocking pop; on a lost
    connection sleep and send a heartbeat (EXPIRE), then wait again; any other
    error ends the worker, as an unhandled exception ends an RQ worker."""

    def __init__(self, port):
        super().__init__(daemon=True)
        self.r = redis.Redis(host=HOST, port=port, socket_timeout=10)
        self.done, self.lost, self.fatal = [], 0, None
        self.stop = threading.Event()

    def run(self):
        try:
            while not self.stop.is_set():
                try:
                    job = self.r.blpop("{q}jobs", timeout=1)
                    if job is not None:
                        self.done.append(job[1])
                        self.r.incr("{q}done")
                except redis.ConnectionError:
                    self.lost += 1
                    time.sleep(0.2)
                    try:
                        self.r.expire("{q}worker", 30)
                    except redis.ConnectionError:
                        pass
        except Exception as e:  # noqa: BLE001 (what ends the worker is recorded)
            self.fatal = e


@pytest.mark.parametrize("closes", [True, False], ids=["closes", "default"])
def test_a_worker_survives_its_redis_restarting(env, closes):
    """redis killed and started again on its port while a worker waits for jobs:
    with the key the worker sees lost connections only and runs every job
    pushed after the restart; without it, the heartbeat sent while redis is
    down gets `-ERR Connection refused`, a ResponseError, and the worker ends."""
    srv = env.redis()
    px = env.proxy({"p": redis_pool([srv], server_failure_closes_client=closes, timeout=500)})
    w = Worker(px.port("p"))
    w.start()
    producer = px.client("p")
    try:
        producer.rpush("{q}jobs", *["a%d" % i for i in range(10)])
        wait_until(lambda: len(w.done) == 10, "the first jobs run")
        port = srv.port
        srv.proc.kill()
        srv.proc.wait()
        wait_until(lambda: w.lost >= 2 or w.fatal is not None, "the worker sees redis gone", timeout=10)
        time.sleep(0.5)  # a heartbeat or two while it is down
        srv = env.redis(port=port)
        if not closes:
            wait_until(lambda: w.fatal is not None, "the worker ends")
            assert isinstance(w.fatal, redis.ResponseError) and "Connection refused" in str(w.fatal)
            return
        wait_until(lambda: producer.rpush("{q}jobs", *["b%d" % i for i in range(10)]), "redis back")
        wait_until(lambda: len(w.done) == 20, "the jobs pushed after the restart run", timeout=10)
        assert w.fatal is None and w.is_alive()
        assert w.done == [b"a%d" % i for i in range(10)] + [b"b%d" % i for i in range(10)]
    finally:
        w.stop.set()
        w.join(5)
