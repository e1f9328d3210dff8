"""The proxy out of file descriptors (its RLIMIT_NOFILE reached): the clients it
has are served, a listener rests instead of spinning on the failed accept, the
log says so once, no server is ejected for it, and everything works again once
descriptors are free."""

import os
import re
import resource
import socket
import time

from conftest import HOST, RespError, recv_all, redis_pool, wait_until

SPARE = 4  # descriptors the proxy may still open once its limit is lowered


def fds_open(pid):
    return len(os.listdir("/proc/%d/fd" % pid))


def cpu_ticks(pid):
    fields = open("/proc/%d/stat" % pid).read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])  # utime + stime


def exhaust(px):
    """Lower the proxy's descriptor limit to what it has open plus SPARE, then
    connect clients until it can accept no more: it holds SPARE of them and
    the rest wait in its listen backlog. Returns every socket opened."""
    pid = px.proc.pid
    limit = fds_open(pid) + SPARE
    hard = resource.prlimit(pid, resource.RLIMIT_NOFILE)[1]
    resource.prlimit(pid, resource.RLIMIT_NOFILE, (limit, hard))
    fillers = [socket.create_connection((HOST, px.port()), timeout=5) for _ in range(SPARE + 8)]
    wait_until(lambda: fds_open(pid) >= limit, "the proxy to use every descriptor it may")
    return fillers


def log_count(px, pattern):
    return len(re.findall(pattern, open(px.log).read()))


def test_out_of_descriptors_a_waiting_stats_poll_does_not_spin_the_proxy(env):
    s = env.redis()
    px = env.proxy({"alpha": redis_pool([s])})
    px.wait_idle()
    early = px.resp()
    assert early.call("SET", "fd:k", "v") == b"OK"
    fillers = exhaust(px)
    # a monitoring poll now waits in the stats port's backlog: before, the loop
    # woke for it again and again (100% CPU) until a descriptor was free
    poll = socket.create_connection((HOST, px.stats_port), timeout=5)
    time.sleep(0.3)
    before = cpu_ticks(px.proc.pid)
    time.sleep(1.0)
    spent = cpu_ticks(px.proc.pid) - before
    assert spent < 20, "the proxy spent %d ticks of 10 ms in 1 s while short of descriptors" % spent
    # the clients it has are served all the while
    assert early.call("GET", "fd:k") == b"v"
    for f in fillers:
        f.close()
    # once descriptors are free, the waiting poll gets its document and new clients are taken
    poll.settimeout(5)
    assert b'"alpha"' in recv_all(poll)
    assert px.resp().call("GET", "fd:k") == b"v"
    # each listener said it once: the next line is due 10 s later, with a count
    assert log_count(px, r"accept on '[^']+' \(pool 'alpha'\) failed: Too many open files") == 1, px.log_tail()
    assert log_count(px, r"accept on the stats port failed: Too many open files") == 1, px.log_tail()


def test_out_of_descriptors_no_server_is_ejected(env):
    s = env.redis()
    px = env.proxy({"alpha": redis_pool([s], auto_eject_hosts=True, server_failure_limit=1,
                                        server_retry_timeout=30000, timeout=2000)})
    px.wait_idle()
    c = px.resp()
    assert c.call("SET", "fd:k", "v") == b"OK"
    fillers = exhaust(px)
    # the server drops the proxy's connection: reconnecting needs a descriptor,
    # and a backlogged client takes the one the close gave back
    limit = resource.prlimit(px.proc.pid, resource.RLIMIT_NOFILE)[0]
    s.client().client_kill_filter(_type="normal", skipme=True)
    time.sleep(0.3)
    wait_until(lambda: fds_open(px.proc.pid) >= limit, "the proxy to use every descriptor again")
    for _ in range(5):
        got = c.call("GET", "fd:k")
        # the process's own shortage, not "no server is available": the server was not blamed
        assert got == RespError("ERR Too many open files"), got
    for f in fillers:
        f.close()
    # the server is still in the pool: before, it was ejected for server_retry_timeout (30 s)
    wait_until(lambda: c.call("GET", "fd:k") == b"v", "the GET to be served again", timeout=3)
    st = px.stats()
    assert st["alpha"]["server_ejects"] == 0, st
    assert log_count(px, r"connect to server '[^']+' failed: Too many open files") == 1, px.log_tail()


def served(sock, reply, timeout):
    """Whether sock has its reply within timeout."""
    sock.settimeout(timeout)
    try:
        return sock.recv(64) == reply
    except socket.timeout:
        return False


def test_descriptors_the_servers_need_are_kept_from_clients(env):
    """Near its open files limit the proxy keeps what its pool's servers need
    (and a spare) from clients: a server whose connection drops is connected
    again for the clients it serves, where every descriptor went to clients and
    they got "Too many open files" until some left (twemproxy keeps them too).
    Clients past the cap wait in the backlog, served once others leave."""
    s1, s2 = env.redis(), env.redis()
    px = env.proxy({"alpha": redis_pool([s1, s2])}, global_={"max_openfiles": 64}, nofile=64)
    c = px.resp()
    keys = ["fd-%d-%s" % (i, "x" * (i % 7)) for i in range(200)]
    for k in keys:
        assert c.call("SET", k, k) == b"OK"
    assert s1.client().dbsize() > 0 and s2.client().dbsize() > 0
    fillers = [socket.create_connection((HOST, px.port()), timeout=5) for _ in range(80)]
    for f in fillers:
        f.sendall(b"PING\r\n")
    time.sleep(1.0)
    ok = [f for f in fillers if served(f, b"+PONG\r\n", 0.05)]
    waiting = [f for f in fillers if f not in ok]
    assert ok and waiting, (len(ok), len(waiting))
    assert fds_open(px.proc.pid) < 64
    # both servers drop the proxy's connections: it connects again
    for s in (s1, s2):
        s.client().client_kill_filter(_type="normal", skipme=True)
    time.sleep(0.2)
    assert [c.call("GET", k) for k in keys] == [k.encode() for k in keys]
    assert log_count(px, r"kept for server connections") == 1, px.log_tail()
    # the waiting clients are taken once served ones leave
    for f in ok:
        f.close()
    for f in waiting[:len(ok) - 2]:
        assert served(f, b"+PONG\r\n", 5)
    for f in waiting:
        f.close()
