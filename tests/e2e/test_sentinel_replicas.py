"""Reads from the replicas of sentinel groups (SPEC 10, last sentence) against
real redis-server and redis-sentinel processes.

A sentinel pool with `read_from: replica | prefer_replica` asks the sentinels
for each group's replicas (SENTINEL REPLICAS) every heartbeat and sends reads
there; writes go to the group's master.  Where each command ran is read from
the servers themselves: `INFO commandstats`, reset with `CONFIG RESETSTAT`
before each step.  Processes are stopped by pid.
"""

import json
import os
import re
import signal
import socket
import threading
import time

import pytest

from conftest import HOST, TWEMPROXY, Resp, RespError, encode_command, free_port, spread_keys, wait_until
from liveness_util import Prom, http_get, stop_process
from replica_util import calls, replies_across_a_loss, reset_stats, wait_replicated
from test_sentinel import (HEARTBEAT, SentinelCommands, call, force_failover, replica_of, sentinel_pool,
                           start_sentinels, wait_sentinels_ready)

pytestmark = pytest.mark.skipif(TWEMPROXY, reason="twemproxy 0.5 has no sentinel support")

NO_REPLICA = "ERR no replica of group 'g1' is available for this read (read_from: replica)"


def sentinel_replicas(s, group):
    """{"ip:port": (flags, master-link-status)} as one sentinel lists them."""
    c = Resp(port=s.port, timeout=2)
    try:
        out = {}
        for flat in c.call("SENTINEL", "REPLICAS", group):
            d = {flat[i].decode(): flat[i + 1].decode() for i in range(0, len(flat), 2)}
            out["%s:%s" % (d["ip"], d["port"])] = (d["flags"], d.get("master-link-status"))
        return out
    finally:
        c.close()


def sentinel_master(s, group):
    c = Resp(port=s.port, timeout=2)
    try:
        ip, port = c.call("SENTINEL", "get-master-addr-by-name", group)
        return "%s:%s" % (ip.decode(), port.decode())
    finally:
        c.close()


def wait_listed_ok(sentinels, group, replicas):
    """Every sentinel lists these replicas as up and linked."""
    def ok():
        for s in sentinels:
            view = sentinel_replicas(s, group)
            for r in replicas:
                flags, link = view.get(r.addr, ("missing", None))
                if "down" in flags or "disconnected" in flags or link != "ok":
                    return False
        return True
    wait_until(ok, "sentinels to list %s as usable" %
             [r.addr for r in replicas], timeout=30, interval=0.2)


def wait_listed_down(sentinels, group, replica):
    def down():
        return all("s_down" in sentinel_replicas(s, group).get(replica.addr, ("s_down",))[0]
                   for s in sentinels)
    wait_until(down, "sentinels to see %s down" % replica.addr, timeout=15, interval=0.2)


def kill(server):
    """SIGKILL by pid: no goodbye to the sentinels or the proxy."""
    os.kill(server.proc.pid, signal.SIGKILL)
    server.proc.wait(10)


def slow_to_judge(sentinels, group):
    """down-after 60 s: a replica killed stays listed as usable for the test."""
    for s in sentinels:
        c = Resp(port=s.port, timeout=2)
        assert c.call("SENTINEL", "SET", group, "down-after-milliseconds", "60000") == b"OK"
        c.close()


def setup_group(env, nsentinels=1, quorum=1):
    """g1: a master, two replicas, sentinels that list both replicas as usable."""
    m = env.redis()
    r1, r2 = replica_of(env, m), replica_of(env, m)
    sentinels = start_sentinels(env, {"g1": m}, n=nsentinels, quorum=quorum)
    wait_listed_ok(sentinels, "g1", [r1, r2])
    return m, [r1, r2], sentinels


def write_keys(px, master, replicas, n=40, pool=None):
    keys = spread_keys("rk", n)
    for k in keys:
        assert call(px, "SET", k, "v-" + k) == b"OK"
    wait_replicated(master, replicas)
    return keys


def read_all(px, keys, pool=None):
    c = px.resp(pool, timeout=5)
    try:
        return [c.call("GET", k) for k in keys]
    finally:
        c.close()


def all_read(px, keys, pool=None):
    return read_all(px, keys, pool) == [("v-" + k).encode() for k in keys]


def test_reads_to_replicas_writes_to_master(env):
    """read_from: replica: every read of a key on g1 goes to one of g1's
    replicas (both get some, a key always the same one), MGET fragments go to
    the replicas, writes go to the master; the stats keep one entry, g1, that
    counts the replicas' traffic too."""
    m, reps, sentinels = setup_group(env)
    px = env.proxy({"alpha": sentinel_pool(["g1"], sentinels, read_from="replica")})
    wait_until(lambda: call(px, "SET", "probe", "x") == b"OK", "discovery of the master", timeout=10)
    keys = write_keys(px, m, reps)
    wait_until(lambda: all_read(px, keys), "reads served by the replicas", timeout=10)

    reset_stats(m, *reps)
    assert all_read(px, keys)
    assert calls(m, "get") == 0
    per = [calls(r, "get") for r in reps]
    assert sum(per) == len(keys) and min(per) > 0, per

    # one key keeps its replica
    reset_stats(*reps)
    for _ in range(10):
        assert call(px, "GET", keys[0]) == ("v-" + keys[0]).encode()
    assert sorted(calls(r, "get") for r in reps) == [0, 10]

    # a split read: fragments to the replicas, the reply in key order
    reset_stats(m, *reps)
    assert call(px, "MGET", *keys[:20]) == [("v-" + k).encode() for k in keys[:20]]
    assert calls(m, "mget") + calls(m, "get") == 0
    assert sum(calls(r, "mget") + calls(r, "get") for r in reps) >= 1

    # writes: the master (a replica would answer READONLY; it runs the
    # replicated SETs, so its own counts prove nothing)
    reset_stats(m, *reps)
    for k in keys[:10]:
        assert call(px, "SET", k, "w") == b"OK"
    assert calls(m, "set") == 10

    # reads at the replicas count as g1's: its requests are every command sent
    # (a snapshot may fall between a request and its response: wait for one that
    # shows every request answered)
    st = wait_until(lambda: (lambda a: a if a["g1"]["requests"] >= 3 * len(keys) and
                             a["g1"]["responses"] == a["g1"]["requests"] else None)(
        px.stats()["alpha"]), "the stats to show the replicas' traffic, all answered", timeout=10)
    assert [k for k, v in st.items() if isinstance(v, dict)] == ["g1"]
    assert st["g1"]["in_queue"] == 0 and st["g1"]["out_queue"] == 0
    assert px.alive()


def test_default_and_master_read_from_masters(env):
    """Without read_from (and with read_from: master) reads stay on the master:
    the behaviour of sentinel pools before replicas."""
    m, reps, sentinels = setup_group(env)
    px = env.proxy({"alpha": sentinel_pool(["g1"], sentinels),
                    "beta": sentinel_pool(["g1"], sentinels, read_from="master")})
    for pool in ("alpha", "beta"):
        wait_until(lambda: px.resp(pool).call("SET", "probe", "x") == b"OK", "discovery", timeout=10)
    keys = write_keys(px, m, reps)
    # heartbeats went by (a pool that would read from the replicas has learnt them)
    SentinelCommands(sentinels[0]).wait(8, "two pools' heartbeats")
    reset_stats(m, *reps)
    assert all_read(px, keys, "alpha") and all_read(px, keys, "beta")
    assert calls(m, "get") == 2 * len(keys)
    assert sum(calls(r, "get") for r in reps) == 0


def test_replica_down_then_all_down(env):
    """A replica killed and seen down by the sentinels gets no read (the other
    takes them all); with both down, prefer_replica reads from the master and
    replica answers an error naming the group."""
    m, reps, sentinels = setup_group(env)
    # a short retry: a dead replica still in use would fail reads again and again
    fast = {"server_retry_timeout": 100}
    mport = free_port()
    px = env.proxy({"alpha": sentinel_pool(["g1"], sentinels, read_from="replica", **fast),
                    "beta": sentinel_pool(["g1"], sentinels, read_from="prefer_replica", **fast)},
                   extra_args=["--metrics-port=%d" % mport, "--metrics-addr=%s" % HOST])

    def states():
        """The replicas' states in /metrics (a replica listed down gets no read: ejected)."""
        prom = Prom(http_get(mport, "/metrics")[2])
        return [prom.state("nutcracker_replica_state", pool="alpha", server="g1", replica=r.addr)
                for r in reps]
    wait_until(lambda: call(px, "SET", "probe", "x") == b"OK", "discovery of the master", timeout=10)
    keys = write_keys(px, m, reps)
    for pool in ("alpha", "beta"):
        wait_until(lambda: all_read(px, keys, pool), "reads served by the replicas", timeout=10)
    r1, r2 = reps
    reset_stats(r1)
    all_read(px, keys, "alpha")
    assert calls(r1, "get") > 0  # r1 served its share before
    wait_until(lambda: states() == ["live", "live"], lambda: "both replicas live: %s" % states())
    doc = json.loads(http_get(mport, "/status.json")[2])
    (g1,) = [p for p in doc["pools"] if p["name"] == "alpha"][0]["servers"]
    assert sorted(r["addr"] for r in g1["replicas"]) == sorted(r.addr for r in reps), g1["replicas"]

    kill(r1)
    wait_listed_down(sentinels, "g1", r1)
    wait_until(lambda: states() == ["ejected", "live"], lambda: "r1 ejected: %s" % states())
    for pool in ("alpha", "beta"):
        wait_until(lambda: all_read(px, keys, pool), "reads without r1 (%s)" % pool, timeout=10)
    reset_stats(m, r2)
    for _ in range(3):
        # the behaviour under test: a window past server_retry_timeout (100 ms),
        # after which only the sentinels' word keeps r1 out
        time.sleep(0.3)
        assert all_read(px, keys, "alpha") and all_read(px, keys, "beta")
    assert calls(r2, "get") == 3 * 2 * len(keys)
    assert calls(m, "get") == 0

    kill(r2)
    wait_listed_down(sentinels, "g1", r2)
    wait_until(lambda: read_all(px, keys[:1], "alpha") == [RespError(NO_REPLICA)],
               "read_from replica to refuse reads", timeout=10)
    assert read_all(px, keys, "alpha") == [RespError(NO_REPLICA)] * len(keys)
    wait_until(lambda: all_read(px, keys, "beta"), "prefer_replica reads on the master", timeout=10)
    reset_stats(m)
    assert all_read(px, keys, "beta")
    assert calls(m, "get") == len(keys)
    # writes never depended on the replicas
    assert call(px, "SET", keys[0], "w") == b"OK" and m.client().get(keys[0]) == b"w"
    assert px.alive()


def test_read_in_flight_on_a_lost_replica_goes_to_the_master(env):
    """g1 with one replica, prefer_replica: the replica is stopped with a GET
    and the g1 fragment of an MGET written to it, then killed (the sentinels
    slow to notice): both reads are sent again to g1's master and answered
    with its values, not with the connection's error."""
    m = env.redis()
    rep = replica_of(env, m)
    sentinels = start_sentinels(env, {"g1": m}, n=1, quorum=1)
    wait_listed_ok(sentinels, "g1", [rep])
    slow_to_judge(sentinels, "g1")
    px = env.proxy({"alpha": sentinel_pool(["g1"], sentinels, read_from="prefer_replica",
                                           server_failure_limit=1000, timeout=30000)})
    wait_until(lambda: call(px, "SET", "probe", "x") == b"OK", "discovery of the master", timeout=10)
    assert call(px, "MSET", "k", "master", "k2", "m2") == b"OK"
    wait_replicated(m, [rep])
    rep.client().config_set("replica-read-only", "no")
    rep.client().set("k", "replica")  # where a read was answered shows in its value
    wait_until(lambda: call(px, "GET", "k") == b"replica", "reads served by the replica", timeout=10)
    stop_process(rep.proc.pid)
    got = replies_across_a_loss(px, "alpha", "g1", lambda: kill(rep), ("GET", "k"), ("MGET", "k2", "k"))
    assert got == [b"master", [b"m2", b"master"]]
    assert call(px, "GET", "k2") == b"m2"
    assert px.alive()


def test_read_in_flight_on_a_lost_replica_goes_to_another_replica(env):
    """g1 with two replicas, read_from: replica: the replica that serves "k"
    is stopped with a GET written to it, then killed (the sentinels slow to
    notice): the GET is sent again to the other replica and answered with its
    value, not with the connection's error, and the master is not asked."""
    m, reps, sentinels = setup_group(env)
    slow_to_judge(sentinels, "g1")
    px = env.proxy({"alpha": sentinel_pool(["g1"], sentinels, read_from="replica",
                                           server_failure_limit=1000, timeout=30000)})
    wait_until(lambda: call(px, "SET", "k", "master") == b"OK", "discovery of the master", timeout=10)
    wait_replicated(m, reps)
    for i, r in enumerate(reps):  # where a read was answered shows in its value
        r.client().config_set("replica-read-only", "no")
        r.client().set("k", "replica%d" % i)
    got = wait_until(lambda: (lambda v: v if v in (b"replica0", b"replica1") else None)(call(px, "GET", "k")),
                     "reads served by a replica", timeout=10)
    victim = reps[int(got[-1:])]
    other = reps[1 - reps.index(victim)]
    reset_stats(m, other)
    stop_process(victim.proc.pid)
    got, = replies_across_a_loss(px, "alpha", "g1", lambda: kill(victim), ("GET", "k"))
    assert got == b"replica%d" % reps.index(other)
    assert calls(other, "get") == 1 and calls(m, "get") == 0
    assert px.alive()


def test_replica_connection_failures_before_the_sentinels_notice(env):
    """Sentinels slow to judge (down-after 60 s) still list a dead replica as
    usable: after server_failure_limit failed connections the proxy stops
    sending it reads on its own, without touching the group's master."""
    m, reps, sentinels = setup_group(env)
    slow_to_judge(sentinels, "g1")
    px = env.proxy({"alpha": sentinel_pool(["g1"], sentinels, read_from="replica",
                                           server_failure_limit=1,
                                           server_retry_timeout=60000)})
    wait_until(lambda: call(px, "SET", "probe", "x") == b"OK", "discovery of the master", timeout=10)
    keys = write_keys(px, m, reps)
    wait_until(lambda: all_read(px, keys), "reads served by the replicas", timeout=10)
    r1, r2 = reps
    kill(r1)
    wait_until(lambda: all_read(px, keys), "reads to leave the dead replica", timeout=10)
    assert "s_down" not in sentinel_replicas(sentinels[0], "g1")[r1.addr][0]
    reset_stats(m, r2)
    assert all_read(px, keys)
    assert calls(r2, "get") == len(keys) and calls(m, "get") == 0
    st = px.stats()["alpha"]
    assert st["g1"]["server_ejected_at"] == 0  # the group itself was never ejected
    assert call(px, "SET", keys[0], "w") == b"OK"


def test_failover_moves_writes_and_reads(env):
    """After SENTINEL FAILOVER, writes go to the promoted replica and reads to
    the new replica set (the old master, demoted, and the other replica), never
    to the new master."""
    m, reps, sentinels = setup_group(env, nsentinels=3, quorum=2)
    px = env.proxy({"alpha": sentinel_pool(["g1"], sentinels, read_from="replica")})
    wait_until(lambda: call(px, "SET", "probe", "x") == b"OK", "discovery of the master", timeout=10)
    keys = write_keys(px, m, reps)
    wait_until(lambda: all_read(px, keys), "reads served by the replicas", timeout=10)
    wait_sentinels_ready(sentinels, "g1", 2)

    force_failover(sentinels[0], "g1")
    wait_until(lambda: sentinel_master(sentinels[0], "g1") != m.addr, "the sentinels to promote a replica",
               timeout=15)
    new_addr = sentinel_master(sentinels[0], "g1")
    (new,) = [r for r in reps if r.addr == new_addr]
    (other,) = [r for r in reps if r is not new]
    wait_until(lambda: px.stats()["alpha"]["g1"]["server_failover"] == 1, "the proxy to follow the failover",
               timeout=15)
    wait_listed_ok(sentinels[:1], "g1", [m, other])
    wait_replicated(new, [m, other])
    wait_until(lambda: all_read(px, keys), "reads on the new replica set", timeout=15)

    def spread():
        reset_stats(m, new, other)
        ok = all_read(px, keys)
        return ok and calls(m, "get") > 0 and calls(other, "get") > 0
    wait_until(spread, "reads on both the old master and the other replica", timeout=15)

    reset_stats(m, new, other)
    assert all_read(px, keys)
    assert calls(new, "get") == 0
    assert calls(m, "get") + calls(other, "get") == len(keys)
    reset_stats(m, new, other)
    for k in keys[:10]:
        assert call(px, "SET", k, "after") == b"OK"
    assert calls(new, "set") == 10  # the others only replicate them
    assert new.client().execute_command("ROLE")[0] == b"master"
    assert px.alive()


class ListingSentinel:
    """A fake sentinel whose view is a lagging one's right after a failover: it
    names `master` and lists `master` itself among the replicas, all usable.
    old: like a sentinel before redis 5, it knows SENTINEL SLAVES only."""

    def __init__(self, master, replicas, old=False):
        self.master, self.replicas, self.old = master, replicas, old
        self.asked = []  # the replica subcommands it got
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((HOST, 0))
        self.sock.listen(16)
        self.addr = "%s:%d" % (HOST, self.sock.getsockname()[1])
        threading.Thread(target=self._accept, daemon=True).start()

    @staticmethod
    def _bulk(s):
        return b"$%d\r\n%s\r\n" % (len(s), s.encode())

    def _replica(self, srv):
        host, port = srv.addr.split(":")
        fields = ["name", srv.addr, "ip", host, "port", port, "flags", "slave",
                  "master-link-status", "ok"]
        return b"*%d\r\n" % len(fields) + b"".join(self._bulk(f) for f in fields)

    def _answers(self, data):
        out = b""
        for m in re.finditer(rb"get-master-addr-by-name|\$6\r\nMASTER|\$8\r\nREPLICAS|"
                             rb"\$6\r\nSLAVES|SUBSCRIBE|PING", data):
            w = m.group(0)
            if w.startswith(b"get"):
                host, port = self.master.addr.split(":")
                out += b"*2\r\n" + self._bulk(host) + self._bulk(port)
            elif w.endswith(b"MASTER"):
                out += b"*2\r\n" + self._bulk("config-epoch") + self._bulk("0")
            elif w.endswith(b"REPLICAS") or w.endswith(b"SLAVES"):
                self.asked.append(w.split(b"\n")[1].decode())
                if self.old and w.endswith(b"REPLICAS"):
                    out += b"-ERR Unknown sentinel subcommand 'replicas'\r\n"
                    continue
                out += b"*%d\r\n" % len(self.replicas) + b"".join(
                    self._replica(r) for r in self.replicas)
            elif w == b"SUBSCRIBE":
                out += b"*3\r\n$9\r\nsubscribe\r\n$14\r\n+switch-master\r\n:1\r\n"
            else:
                out += b"*2\r\n$4\r\npong\r\n$0\r\n\r\n"
        return out

    def _accept(self):
        while True:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(c,), daemon=True).start()

    def _serve(self, c):
        while True:
            try:
                data = c.recv(65536)
                if not data:
                    return
                c.sendall(self._answers(data))
            except OSError:
                return

    def close(self):
        self.sock.close()


@pytest.mark.parametrize("old", [False, True], ids=["replicas", "slaves"])
def test_master_listed_as_replica_gets_no_read(env, old):
    """A sentinel that lists the group's master among its replicas (a lagging
    view right after a failover) does not make the master take reads: they go
    to the true replica only. A sentinel that refuses SENTINEL REPLICAS (before
    redis 5) is asked SENTINEL SLAVES instead."""
    m = env.redis()
    r = replica_of(env, m)
    fake = ListingSentinel(m, [m, r], old=old)
    try:
        px = env.proxy({"alpha": sentinel_pool(["g1"], [fake.addr], read_from="replica")})
        wait_until(lambda: call(px, "SET", "probe", "x") == b"OK", "discovery of the master", timeout=10)
        keys = write_keys(px, m, [r])
        wait_until(lambda: all_read(px, keys), "reads served by the replica", timeout=10)
        reset_stats(m, r)
        assert all_read(px, keys)
        assert calls(m, "get") == 0
        assert calls(r, "get") == len(keys)
        if old:
            assert fake.asked[0] == "REPLICAS" and set(fake.asked[1:]) == {"SLAVES"}
        else:
            assert set(fake.asked) == {"REPLICAS"}
        assert px.alive()
    finally:
        fake.close()


def test_reload_keeps_and_then_drops_the_replicas(env):
    """SIGHUP: a client keeps reading from the replicas through a reload that
    keeps the group (its replicas go along, no request lost, gauges back to
    0); a reload to read_from: master sends its reads to the master and closes
    the replicas' connections once idle."""
    m, reps, sentinels = setup_group(env)
    listen = "%s:%d" % (HOST, free_port())
    pool = sentinel_pool(["g1"], sentinels, read_from="replica", listen=listen)
    px = env.proxy({"alpha": pool}, verbose=5)
    wait_until(lambda: call(px, "SET", "probe", "x") == b"OK", "discovery of the master", timeout=10)
    keys = write_keys(px, m, reps)
    wait_until(lambda: all_read(px, keys), "reads served by the replicas", timeout=10)
    c = px.resp(timeout=10)
    # a pipeline in flight while the reload happens
    c.send(b"".join(encode_command("GET", k) for k in keys))
    assert px.reload({"alpha": dict(pool, sentinel_heartbeat=HEARTBEAT + 50)})
    assert [c.read_reply() for _ in keys] == [("v-" + k).encode() for k in keys]
    reset_stats(m, *reps)
    assert [c.call("GET", k) for k in keys] == [("v-" + k).encode() for k in keys]
    assert calls(m, "get") == 0 and sum(calls(r, "get") for r in reps) == len(keys)
    wait_until(lambda: px.stats()["alpha"]["g1"]["server_connections"] == 3,
               "one connection each to the master and the two replicas", timeout=10)

    assert px.reload({"alpha": dict(pool, read_from="master")})
    reset_stats(m, *reps)
    assert [c.call("GET", k) for k in keys] == [("v-" + k).encode() for k in keys]
    assert calls(m, "get") == len(keys) and sum(calls(r, "get") for r in reps) == 0
    wait_until(lambda: px.stats()["alpha"]["g1"]["server_connections"] == 1, "the replicas' connections to close",
               timeout=10)
    st = px.stats()["alpha"]["g1"]
    assert st["in_queue"] == 0 and st["out_queue"] == 0
    assert px.alive()


def test_restarted_replica_gets_no_read_until_synced(env):
    """A group's replica killed and started again empty, its full sync made
    to last (3 s): the sentinels, which look at a replica every 10 s by
    default, still list it as usable, but the proxy asks the replica itself
    (replica_check) and its keys are read from the other replica, never nil;
    once it is linked to the master it takes reads again."""
    m, reps, sentinels = setup_group(env)
    for s in sentinels:  # redis-sentinel's default: INFO to each replica every 10 s
        c = Resp(port=s.port, timeout=2)
        assert c.call("SENTINEL", "DEBUG", "info-period", "10000") == b"OK"
        c.close()
    px = env.proxy({"alpha": sentinel_pool(["g1"], sentinels, read_from="replica")}, verbose=5)
    wait_until(lambda: call(px, "SET", "probe", "x") == b"OK", "discovery of the master", timeout=10)
    keys = write_keys(px, m, reps)
    wait_until(lambda: all_read(px, keys), "reads served by the replicas", timeout=10)
    r1, r2 = reps
    m.client().config_set("repl-diskless-sync", "yes")
    m.client().config_set("repl-diskless-sync-delay", "3")
    port = r1.port
    kill(r1)
    rdb = os.path.join(env.tmp, "dump-%d.rdb" % port)
    if os.path.exists(rdb):
        os.remove(rdb)  # with it, the replica would resume by PSYNC with its data
    r1 = env.redis(port=port, args=["--replicaof", HOST, str(m.port)])
    assert r1.client().dbsize() == 0
    reset_stats(m)
    reads = 0
    while r1.client().info("replication").get("master_link_status") != "up":
        got = read_all(px, keys)
        assert got == [("v-" + k).encode() for k in keys], [k for k, v in zip(keys, got) if v is None]
        reads += len(keys)
    assert reads > 0 and calls(m, "get") == 0
    with open(px.log) as f:
        assert "replica 'g1 replica %s' gets no read" % r1.addr in f.read()
    reset_stats(r1)
    wait_until(lambda: all_read(px, keys) and calls(r1, "get") > 0, "reads on the synced replica again")
