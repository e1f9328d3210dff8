"""A client refused for what it sent reads why (client_linger.c).

The proxy closes a client whose request it will not take: a protocol error, or a
request over --request-size-limit.  Closing a socket that still holds bytes the
client sent makes the kernel answer with a reset, which destroys replies the
client has not read yet: a redis-py SET of a value over the limit used to fail
with 'Connection reset by peer' (a memcached value over the limit is no longer
refused: test_memcache_too_large.py), and a pipeline with garbage after it lost even
the replies to its good requests.  redis-server itself resets such clients (seen
by hand with the same bytes); the proxy shuts its write side after the error
and drops what the client still sends until it closes, goes quiet for 5 s,
30 s have passed, or it sent 1 MB more after a protocol error (64 MB, or the rest
of its request, after a refused size).
"""
import socket
import ssl
import subprocess
import time

import pytest

from conftest import HOST, mc_pool, redis_pool, wait_until
from hostile_util import MB, raw_connect
from tls_util import Certs

LIMIT = 16 * MB  # --request-size-limit of this file's proxies
JUNK = b"\x00junk" * 100_000  # 500 KB the proxy refuses at its first byte
LINGER_IDLE_S = 5.0  # CLIENT_LINGER_IDLE_MS


@pytest.fixture(scope="module")
def px(menv):
    r, m = menv.redis(), menv.memcached()
    return menv.proxy({"r": redis_pool([r], timeout=10000), "m": mc_pool([m], timeout=10000)},
                      extra_args=["--request-size-limit=%d" % LIMIT], verbose=6)


def read_to_eof(s, timeout=10.0):
    """Everything the peer sends, then how it ended: 'eof' or 'reset'."""
    s.settimeout(timeout)
    got = b""
    try:
        while True:
            b = s.recv(65536)
            if not b:
                return got, "eof"
            got += b
    except (ConnectionResetError, ssl.SSLError) as e:
        return got + (" <%s>" % e).encode(), "reset"


def test_redis_py_set_over_the_limit_raises_the_proxys_error(px):
    """redis-py with default settings sends the whole 40 MB value before it reads:
    it gets the proxy's error as a ResponseError (not a ConnectionError), and its
    next command on the same client is served (on a new connection)."""
    import redis
    c = px.client("r", socket_timeout=30)
    for i in range(3):
        with pytest.raises(redis.ResponseError, match="request exceeds the proxy's request size limit"):
            c.set("refused:%d" % i, b"v" * (40 * MB))
        assert c.set("after:%d" % i, b"ok") is True
        assert c.get("after:%d" % i) == b"ok"
    assert c.exists("refused:0", "refused:1", "refused:2") == 0
    c.close()


GOOD = {
    "r": (b"*1\r\n$4\r\nPING\r\n*3\r\n$3\r\nSET\r\n$5\r\nref:k\r\n$1\r\nv\r\n*2\r\n$3\r\nGET\r\n$5\r\nref:k\r\n",
          b"+PONG\r\n+OK\r\n$1\r\nv\r\n-ERR Protocol error"),
    "m": (b"set ref:k 0 0 1\r\nv\r\nget ref:k\r\n",
          b"STORED\r\nVALUE ref:k 0 1\r\nv\r\nEND\r\nCLIENT_ERROR "),
}
LOGGED = {  # at -v 6, with the client's address before it
    "r": ": Protocol error: invalid multibulk length: refused, the client closed",
    "m": ": CLIENT_ERROR line too long: refused, the client closed",
}


@pytest.mark.parametrize("pool", ["r", "m"])
def test_pipeline_with_garbage_after_it_gets_every_reply_then_eof(px, pool):
    """Good requests, then 500 KB of garbage in the same send: the replies to the
    good ones, the error for the garbage, then the end of the stream (no reset),
    though the proxy never read most of the garbage.  Ten times: a reset races
    the client's reads, so one lucky run proves nothing."""
    good, want = GOOD[pool]
    for _ in range(10):
        s = raw_connect(px.port(pool))
        s.sendall(good + (b"*x\r\n" if pool == "r" else b"") + JUNK)
        got, how = read_to_eof(s)
        s.close()
        assert got.startswith(want), got[:300]
        assert how == "eof", got[-200:]
    with open(px.log) as f:
        assert LOGGED[pool] in f.read()
    assert px.alive()


def test_a_refused_client_that_stays_open_is_closed_once_quiet(px):
    """After the error and the end of the stream, a client that neither closes nor
    sends is still held (lingering) a second later, and closed once it has been
    quiet for 5 s: the pool's client count comes back to where it was."""
    def clients():
        return px.stats()["r"]["client_connections"]
    time.sleep(0.3)  # the stats are refreshed every 100 ms: earlier tests' clients gone from them
    base = clients()
    s = raw_connect(px.port("r"))
    s.sendall(b"*x\r\n" + JUNK)
    s.settimeout(10)
    got = b""
    while not got.endswith(b"\r\n"):
        got += s.recv(4096)
    assert got.startswith(b"-ERR Protocol error"), got
    assert s.recv(4096) == b""  # the proxy's write side is shut
    t0 = time.monotonic()
    time.sleep(1.0)
    assert clients() == base + 1, "the refused client should still be lingering"
    wait_until(lambda: clients() == base, "the lingering client closed", timeout=LINGER_IDLE_S + 5)
    took = time.monotonic() - t0
    s.close()
    print("\n[linger] closed %.1fs after the error" % took)
    assert took > LINGER_IDLE_S - 2.0, "closed after %.1fs, before the idle time" % took


@pytest.mark.parametrize("chunk", [b"A" * 16383 + b"\n", b"payload"], ids=["16k", "7"])
@pytest.mark.parametrize("seq", [b"\x00", b"*\x00", b"$\x00"])
def test_a_refused_client_that_sends_without_end_is_reset_and_reads_why(px, seq, chunk):
    """redis' own test suite ("Protocol desync regression"): after a protocol
    error, the client writes without end until a write fails, then reads; it
    fails past 30 s. redis resets it at once; the proxy, once its error is
    delivered and the client has sent 1 MB more (what it may have pipelined
    behind the error), does the same: the write fails and the error is there to
    read. With 64 MB, redis' own 7-byte writes took the whole 30 s."""
    s = raw_connect(px.port("r"))
    s.sendall(seq)
    sent, t0 = 0, time.monotonic()
    with pytest.raises((ConnectionResetError, BrokenPipeError)):
        while time.monotonic() - t0 < 20:
            s.sendall(chunk)
            sent += len(chunk)
    took = time.monotonic() - t0
    assert s.recv(4096).startswith(b"-ERR Protocol error")
    s.close()
    assert MB < sent < 32 * MB and took < 10, (sent, took)


def test_a_lingering_client_does_not_hold_up_shutdown(menv):
    """SIGTERM with a refused client lingering: the proxy exits at once, not after
    the client's idle time."""
    r = menv.redis()
    px = menv.proxy({"r": redis_pool([r])})
    s = raw_connect(px.port("r"))
    s.sendall(b"*x\r\n" + JUNK)
    got, how = read_to_eof(s)
    assert got.startswith(b"-ERR Protocol error") and how == "eof", got[:200]
    t0 = time.monotonic()
    px.proc.terminate()
    px.proc.wait(timeout=10)
    took = time.monotonic() - t0
    s.close()
    assert took < LINGER_IDLE_S - 2.0, "exit took %.1fs" % took


@pytest.fixture(scope="module")
def certs(tmp_path_factory):
    return Certs(tmp_path_factory.mktemp("certs"))


def test_tls_client_reads_its_replies_and_the_error_too(menv, certs):
    """The same over a TLS listener: the replies, the error, then close_notify."""
    r = menv.redis()
    px = menv.proxy({"r": redis_pool([r], listen_tls=certs.listen_tls())})
    good, want = GOOD["r"]
    ctx = certs.client_ctx()
    for _ in range(5):
        raw = socket.create_connection((HOST, px.port("r")), timeout=10)
        s = ctx.wrap_socket(raw, server_hostname="localhost")
        s.sendall(good + b"*x\r\n" + JUNK)
        got, how = read_to_eof(s)
        s.close()
        assert got.startswith(want), got[:300]
        assert how == "eof", got[-200:]
    out = subprocess.run(["redis-cli", "--tls", "--cacert", certs.crt("ca"), "-p", str(px.port("r")), "ping"],
                         capture_output=True, timeout=10)
    assert out.stdout == b"PONG\n", out
