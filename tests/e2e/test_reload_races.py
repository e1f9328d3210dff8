"""Reload racing with traffic inside one event-loop turn.

A reload and a client's request can be handled in the same turn of the
proxy's loop. With the proxy stopped (SIGSTOP) the test queues both a
memcached `noreply` write and SIGHUP, so that the next `epoll_wait` returns
them together: the client is handled first (its bytes are queued on the old
server's connection, which waits on the flush list), then the reload retires
the old pool. That pool has no client and no request waiting for a reply (a
`noreply` write has none), yet its connection still has bytes to write: it
must not be freed before they leave (under ASan a use-after-free shows in the
proxy's output and fails the test), and the write must reach the server.
"""

import os
import signal

from conftest import mc_pool, wait_until


def _generation(px):
    return px.stats().get("config_generation")


def test_noreply_write_queued_in_the_reload_turn_reaches_its_server(env):
    old, new = env.memcacheds(2)
    px = env.proxy({"alpha": mc_pool([old])})
    c = px.mc()
    assert c.cmd(b"set warm 0 0 1", b"w") == b"STORED"  # the server connection is up
    assert wait_until(lambda: _generation(px) == 1), "first stats document"

    # the same listen address, another server: the client moves to the new pool,
    # the old pool (and its connection to `old`) is retired
    with open(px.conf, "w") as f:
        f.write("alpha:\n  listen: 127.0.0.1:%d\n  servers:\n   - %s:1\n" % (px.port(), new.addr))
    os.kill(px.proc.pid, signal.SIGSTOP)
    try:
        c.send(b"set raced 0 0 5 noreply\r\nhello\r\n")
        os.kill(px.proc.pid, signal.SIGHUP)
    finally:
        os.kill(px.proc.pid, signal.SIGCONT)

    assert wait_until(lambda: _generation(px) == 2), "the reload to apply"
    # the write was read before the reload: it went to the old server, whole
    direct = old.mc()
    assert wait_until(lambda: direct.retrieval(b"get raced")[0] == [(b"raced", 0, b"hello", [])]), \
        "the noreply write on the old server"
    # and the client, now in the new pool, is served by the new server
    assert c.cmd(b"set after 0 0 1", b"a") == b"STORED"
    assert new.mc().cmd(b"get after") == b"VALUE after 0 1"
    assert px.alive()
