"""Reload racing with writes that no reply will acknowledge.

A reload and a client's request can be handled in the same turn of the
proxy's loop. With the proxy stopped (SIGSTOP) the test queues both a
memcached `noreply` write and SIGHUP, so that the next `epoll_wait` returns
them together: the client is handled first (its bytes are queued on the old
server's connection, which waits on the flush list), then the reload retires
the old pool. That pool has no client and no request waiting for a reply (a
`noreply` write has none), yet its connection still has bytes to write: it
must not be freed before they leave (under ASan a use-after-free shows in the
proxy's output and fails the test), and the write must reach the server.

The second test makes the same point without depending on the order of one
epoll batch: the old server is stalled, so noreply writes pile up unwritten in
the proxy when the reload retires its pool; they must all arrive once the
server reads again.
"""

import os
import signal

from conftest import Mc, mc_pool, wait_until
from liveness_util import stalled


def old_name(server):
    """The stats key of a server listed as host:port:1 (twemproxy drops port 11211)."""
    return server.addr


def _state(pid):
    with open("/proc/%d/stat" % pid) as f:
        return f.read().rsplit(")", 1)[1].split()[0]


def _generation(px):
    return px.stats().get("config_generation")


def test_noreply_write_queued_in_the_reload_turn_reaches_its_server(env):
    old, new = env.memcacheds(2)
    # a unix socket: a send is in the proxy's receive queue when it returns
    # (loopback TCP may deliver it later, from a softirq, after the signal)
    path = os.path.join(env.tmp, "alpha.sock")
    px = env.proxy({"alpha": mc_pool([old], listen=path)})
    c = Mc(path=path)
    assert c.cmd(b"set warm 0 0 1", b"w") == b"STORED"  # the server connection is up
    wait_until(lambda: _generation(px) == 1, "the first stats document")

    # the same listen address, another server: the client moves to the new pool,
    # the old pool (and its connection to `old`) is retired
    with open(px.conf, "w") as f:
        f.write("alpha:\n  listen: %s\n  servers:\n   - %s:1\n" % (path, new.addr))
    os.kill(px.proc.pid, signal.SIGSTOP)
    try:
        wait_until(lambda: _state(px.proc.pid) == "T", "the proxy to stop")
        c.send(b"set raced 0 0 5 noreply\r\nhello\r\n")
        os.kill(px.proc.pid, signal.SIGHUP)
    finally:
        os.kill(px.proc.pid, signal.SIGCONT)

    wait_until(lambda: _generation(px) == 2, "the reload to apply")
    # one epoll_wait returns both; nearly always the write first (it goes to the
    # old server: the case this test is about), rarely the signal first (then
    # the client is in the new pool already and the write goes to the new
    # server). Either way it reaches exactly one server, whole.
    want = [(b"raced", 0, b"hello", [])]
    found = lambda: [s.port for s in (old, new) if s.mc().retrieval(b"get raced")[0] == want]
    wait_until(lambda: len(found()) == 1, "the noreply write on exactly one server")
    # and the client, now in the new pool, is served by the new server
    assert c.cmd(b"set after 0 0 1", b"a") == b"STORED"
    assert new.mc().cmd(b"get after") == b"VALUE after 0 1"
    assert px.alive()


def test_unwritten_noreply_writes_of_a_retired_pool_all_arrive(env):
    old, new = env.memcacheds(2)
    px = env.proxy({"alpha": mc_pool([old])})
    c = px.mc()
    assert c.cmd(b"set warm 0 0 1", b"w") == b"STORED"
    value = b"v" * 4096
    n = 3000  # 12 MB: more than the kernel buffers between proxy and server hold
    with stalled(old):
        c.send(b"".join(b"set k%d 0 0 %d noreply\r\n%s\r\n" % (i, len(value), value)
                        for i in range(n)))
        # the proxy read them all and could not write them all
        wait_until(lambda: px.stats()["alpha"][old_name(old)]["requests"] >= n + 1,
                   "the proxy to read every write", timeout=20)
        with open(px.conf, "w") as f:
            f.write("alpha:\n  listen: 127.0.0.1:%d\n  servers:\n   - %s:1\n" % (px.port(), new.addr))
        os.kill(px.proc.pid, signal.SIGHUP)
        wait_until(lambda: _generation(px) == 2, "the reload to apply")
    # the retired pool writes what it holds once the server reads, then goes
    direct = old.mc()
    wait_until(lambda: direct.retrieval(b"get k%d" % (n - 1))[0] == [(b"k%d" % (n - 1), 0, value, [])],
               "the last write on the old server", timeout=20)
    missing = [i for i in range(n) if direct.retrieval(b"get k%d" % i)[0] == []]
    assert missing == [], "%d writes lost, the first: k%d" % (len(missing), missing[0])
    assert c.cmd(b"set after 0 0 1", b"a") == b"STORED"
    assert new.mc().cmd(b"get after") == b"VALUE after 0 1"
