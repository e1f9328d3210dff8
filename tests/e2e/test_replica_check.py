"""A static master/replica pool asks each replica INFO replication and leaves
out of the reads one that cannot have its master's data (src/proxy/replica_check.h),
against real redis-server processes.

redis answers a read from whatever it holds: a replica restarted without its
data answers nil until its sync with the master is over. These tests make that
sync last (the master waits `repl-diskless-sync-delay` seconds before it sends
its data) and read through the proxy meanwhile.
"""

import json
import os
import signal
import threading
import time
import urllib.request

import pytest
import redis

from conftest import HOST, TWEMPROXY, free_port, wait_until
from liveness_util import Prom, crash, http_get, stop_process
from replica_util import calls, reset_stats, wait_replicated
from test_replica_reads import replica_of, split_pool, start_replicated

pytestmark = pytest.mark.skipif(TWEMPROXY, reason="twemproxy 0.5 has no read/write splitting")

NO_READ = "replica '%s' gets no read"
BACK = "replica '%s' takes reads again"


def log(px):
    with open(px.log) as f:
        return f.read()


def keys_on(replica, replicas, n):
    """n keys the distribution gives replica while every replica takes reads."""
    out, i = [], 0
    while len(out) < n:
        k = "rc-%d-%d" % (replica.port, i)
        if replica_of(k, replicas) is replica:
            out.append(k)
        i += 1
    return out


def write(c, keys, master, replicas):
    """Each key set to "v-<key>" through client c, on every replica too."""
    for k in keys:
        c.set(k, "v-" + k)
    wait_replicated(master, replicas)


def lose_master(master, replicas):
    """SIGKILL master; returns once every replica says its link is down."""
    crash(master)
    for r in replicas:
        wait_until(lambda: r.client().info("replication").get("master_link_status") == "down",
                   "%s to see its master gone" % r.addr)


def slow_full_sync(master, seconds):
    """The master waits this long before it sends a replica its data."""
    master.client().config_set("repl-diskless-sync", "yes")
    master.client().config_set("repl-diskless-sync-delay", str(seconds))


def restart_empty(env, replica, master):
    """SIGKILL replica and start it again on its port, empty, replicating master.
    Its RDB file goes first: a replica keeps the one of its first sync, and
    restarted with it, it resumes replication (PSYNC) instead of a full sync."""
    port = replica.port
    crash(replica)
    rdb = os.path.join(env.tmp, "dump-%d.rdb" % port)
    if os.path.exists(rdb):
        os.remove(rdb)
    return env.redis(port=port, args=["--replicaof", HOST, str(master.port)])


def status_state(mport, name):
    """The state the status page (status.json) gives server name of pool alpha,
    once /metrics gives the same (both read one snapshot of the stats)."""
    def agreed():
        with urllib.request.urlopen("http://%s:%d/status.json" % (HOST, mport), timeout=10) as r:
            doc = json.load(r)
        pool = [p for p in doc["pools"] if p["name"] == "alpha"][0]
        page = [sv["state"] for sv in pool["servers"] if sv["name"] == name][0]
        prom = Prom(http_get(mport, "/metrics")[2])
        return page if prom.state("nutcracker_server_state", pool="alpha", server=name) == page else None
    return wait_until(agreed, "the status page and /metrics to agree on %s" % name)


def sync_state(server):
    info = server.client().info("replication")
    return info.get("master_link_status"), info.get("master_sync_in_progress")


@pytest.mark.parametrize("read_from,workers", [("replica", None), ("prefer_replica", None),
                                              ("replica", 2)], ids=["replica", "prefer_replica", "2_workers"])
def test_restarted_replica_gets_no_read_until_synced(env, read_from, workers):
    """A replica killed and started again empty: while its full sync waits
    (3 s), the reads of its keys are answered from the other replica with the
    values, never nil; once it is linked to the master it takes them again.
    With two workers each asks for itself: reads through either see no nil."""
    master, replicas = start_replicated(env)
    px = env.proxy({"alpha": split_pool(master, replicas, read_from=read_from)}, verbose=5,
                   global_={"worker_processes": workers} if workers else None)
    c = px.client()
    a, b = replicas
    keys = keys_on(a, replicas, 20)
    write(c, keys, master, replicas)
    slow_full_sync(master, 3)
    reset_stats(master, b)
    replicas[0] = a = restart_empty(env, a, master)
    assert a.client().dbsize() == 0
    reads = 0
    while sync_state(a)[0] != "up":
        for k in keys:
            cl = px.client() if workers else c  # a new connection: any worker
            assert cl.get(k) == ("v-" + k).encode(), (k, sync_state(a))
            reads += 1
        assert c.mget(keys[:5]) == [("v-" + k).encode() for k in keys[:5]]
        time.sleep(0.05)
    assert reads >= len(keys), "the sync was over before any read"
    assert calls(b, "get") == reads and calls(master, "get") == 0
    wait_until(lambda: log(px).count(BACK % a.addr) >= (workers or 1),
               "the replica back in the reads (of every worker)")
    reset_stats(a, b)
    for k in keys:
        assert c.get(k) == ("v-" + k).encode()
    assert calls(a, "get") == len(keys) and calls(b, "get") == 0
    text = log(px)
    assert NO_READ % a.addr in text, text[-2000:]
    assert "not synced with its master since it started" in text or "in a full sync" in text, text[-2000:]


def test_a_reload_keeps_a_syncing_replica_out(env):
    """A reload while a replica syncs: the new configuration's pool starts
    from the check's verdict (it does not give the replica reads until its
    own first answer, nor say again that it left it out), and no read of the
    replica's keys gets nil across the reload."""
    master, replicas = start_replicated(env)
    pools = {"alpha": split_pool(master, replicas, read_from="replica")}
    px = env.proxy(pools, verbose=5)
    c = px.client()
    a, b = replicas
    keys = keys_on(a, replicas, 20)
    write(c, keys, master, replicas)
    slow_full_sync(master, 4)
    replicas[0] = a = restart_empty(env, a, master)
    wait_until(lambda: "still gets no read" in log(px), "the check to see the replica unsynced")
    pools["alpha"] = dict(pools["alpha"], timeout=5000, listen="%s:%d" % (HOST, px.port()))
    assert px.reload(pools)
    reads = 0
    while sync_state(a)[0] != "up":
        for k in keys:
            assert c.get(k) == ("v-" + k).encode(), (k, sync_state(a))
            reads += 1
    assert reads >= len(keys), "the sync was over before any read"
    text = log(px)
    assert text.count(NO_READ % a.addr) == 1, text[-3000:]
    wait_until(lambda: BACK % a.addr in log(px), "the replica back in the reads")


def test_a_replica_that_is_a_master_gets_no_read(env):
    """A server listed as a replica that replicates nothing (role:master) holds
    other data than the master: it gets no read, the other replica takes them."""
    master, replicas = start_replicated(env, nreplicas=1)
    stray = env.redis()
    stray.client().set("k", "stray")
    px = env.proxy({"alpha": split_pool(master, replicas + [stray], read_from="replica")}, verbose=5)
    keys = keys_on(stray, replicas + [stray], 10)
    c = px.client()
    for k in keys:
        assert c.set(k, "master") is True
    wait_replicated(master, replicas)
    # the first answer comes within ms of the start; until then it had reads
    wait_until(lambda: c.get(keys[0]) == b"master", "reads of the stray's keys answered by the replica")
    reset_stats(stray)
    for k in keys:
        assert c.get(k) == b"master"
    assert calls(stray, "get") == 0
    assert NO_READ % stray.addr in log(px)
    assert "a master (role:master), not a replica" in log(px)


def test_a_replica_of_another_master_gets_no_read(env):
    """A server listed as a replica that is linked, but to another master (a
    shard's, an old one left running): its master_replid is not the pool
    master's, so it gets no read and the other replica takes them; made a
    replica of the pool's master, it takes reads again once synced."""
    master, replicas = start_replicated(env, nreplicas=1)
    other, (stray,) = start_replicated(env, nreplicas=1)
    px = env.proxy({"alpha": split_pool(master, replicas + [stray], read_from="replica")}, verbose=5)
    keys = keys_on(stray, replicas + [stray], 10)
    c = px.client()
    for k in keys:
        assert c.set(k, "master") is True
        other.client().set(k, "other")
    wait_replicated(master, replicas)
    wait_replicated(other, [stray])
    wait_until(lambda: NO_READ % stray.addr in log(px), "the replica of another master left out")
    assert "it replicates another master than 'master'" in log(px), log(px)[-2000:]
    reset_stats(stray)
    for k in keys:
        assert c.get(k) == b"master"
    assert calls(stray, "get") == 0

    assert stray.client().replicaof(HOST, master.port)
    wait_until(lambda: BACK % stray.addr in log(px), "the replica back once it follows the master",
               timeout=15)
    reset_stats(stray)
    for k in keys:
        assert c.get(k) == b"master"
    assert calls(stray, "get") == len(keys)


def test_a_replica_pointed_at_another_master_leaves_the_reads_at_once(env):
    """REPLICAOF another master on a replica that serves reads: redis waits
    seconds before the full sync, keeping its old data and replid, then has the
    other master's. The replid check saw it only after that sync: reads got the
    other master's values until the next check (h49). Now the master_host:port it names
    changed, which leaves it out at once; no read sees the other's value."""
    master, replicas = start_replicated(env)
    other = env.redis(args=["--repl-diskless-sync-delay", "3"])  # redis' default is 5
    px = env.proxy({"alpha": split_pool(master, replicas, read_from="replica")}, verbose=5)
    moved = replicas[0]
    keys = keys_on(moved, replicas, 10)
    c = px.client()
    for k in keys:
        assert c.set(k, "master") is True
        other.client().set(k, "other")
    wait_replicated(master, replicas)
    time.sleep(1.5)  # a check round that sees each replica linked to the master's history
    assert moved.client().replicaof(HOST, other.port)
    wrong = 0
    until = time.monotonic() + 8  # past redis' 5 s wait and the full sync
    while time.monotonic() < until:
        wrong += sum(c.get(k) != b"master" for k in keys)
        time.sleep(0.02)
    assert moved.client().get(keys[0]) == b"other", "the replica never synced with the other master"
    assert wrong == 0, "%d reads did not get the master's value" % wrong
    assert "was pointed at another master (%s, not %s)" % (other.addr, master.addr) in log(px), log(px)[-2000:]


def test_replicas_keep_serving_when_the_master_dies(env):
    """A replica whose link to a master that was up is lost still has the data
    of then, and redis serves it (replica-serve-stale-data): the reads go on,
    nothing is left out, with read_from: replica. (The check's connection
    is named in the CLIENT LIST of each replica and of the master, asked for
    its replid.)"""
    master, replicas = start_replicated(env)
    px = env.proxy({"alpha": split_pool(master, replicas, read_from="replica")}, verbose=5)
    for s in replicas + [master]:
        wait_until(lambda: [cl["name"] for cl in s.client().client_list()].count("nutcracker-replica-check")
                   == 1, "%s to list one check connection" % s.addr)
    c = px.client()
    keys = ["dead-%d" % i for i in range(20)]
    write(c, keys, master, replicas)
    lose_master(master, replicas)
    time.sleep(2.5)  # two rounds of the check on each replica
    for k in keys:
        assert c.get(k) == ("v-" + k).encode()
    assert "gets no read" not in log(px)


def test_replicas_stale_past_replica_max_link_down_get_no_read(env):
    """With replica_max_link_down: 2000 a replica whose master died serves its
    data of then for about 2 s (redis counts whole seconds; the check asks every
    second), then gets no read: with read_from: replica a read is answered with
    the no-replica error rather than with data that grows older. Its master back,
    the replicas take reads again."""
    master, replicas = start_replicated(env)
    px = env.proxy({"alpha": split_pool(master, replicas, read_from="replica",
                                        replica_max_link_down=2000)}, verbose=5)
    c = px.client()
    keys = ["stale-%d" % i for i in range(20)]
    write(c, keys, master, replicas)
    port = master.port
    lose_master(master, replicas)
    down_at = time.monotonic()
    assert c.get(keys[0]) == ("v-" + keys[0]).encode()  # within the bound: the data of then
    assert "gets no read" not in log(px)
    for r in replicas:
        wait_until(lambda: NO_READ % r.addr in log(px), "%s left out once its link is down 2 s" % r.addr,
                   timeout=10)
    waited = time.monotonic() - down_at
    assert 1.0 <= waited <= 5.0, "left out %.1f s after the link went down" % waited
    assert "its link to its master has been down for 2 s (replica_max_link_down: 2000 ms)" in log(px)
    with pytest.raises(redis.exceptions.ResponseError, match="no replica is available for this read"):
        c.get(keys[0])
    master = env.redis(port=port)  # empty: the replicas sync with it again
    for r in replicas:
        wait_until(lambda: BACK % r.addr in log(px), "%s back once linked again" % r.addr, timeout=15)
    assert c.set(keys[0], "again") is True
    wait_replicated(master, replicas)
    assert c.get(keys[0]) == b"again"


def test_replica_max_link_down_takes_effect_on_reload(env):
    """Replicas serving stale data (no bound) are left out once a reload sets
    replica_max_link_down below how long their link has been down."""
    master, replicas = start_replicated(env)
    pool = split_pool(master, replicas, read_from="prefer_replica")
    px = env.proxy({"alpha": pool}, verbose=5)
    c = px.client()
    keys = ["stale-reload-%d" % i for i in range(10)]
    write(c, keys, master, replicas)
    lose_master(master, replicas)
    time.sleep(2.5)  # two rounds of the check: the link down for 2 s and more, no bound yet
    assert "gets no read" not in log(px)
    assert c.get(keys[0]) == ("v-" + keys[0]).encode()
    listen = "%s:%d" % (HOST, px.port("alpha"))
    assert px.reload({"alpha": dict(pool, listen=listen, replica_max_link_down=1000)})
    for r in replicas:
        wait_until(lambda: NO_READ % r.addr in log(px), "%s left out after the reload" % r.addr, timeout=5)
    assert "(replica_max_link_down: 1000 ms)" in log(px)


def test_a_stalled_replica_is_left_out_of_the_reads(env):
    """A replica that does not answer (SIGSTOP) is left out within about a
    second: the reads of its keys are answered by the other replica at once
    instead of waiting for it, and the status page says "no_reads"; resumed,
    it takes them again."""
    master, replicas = start_replicated(env)
    mport = free_port()
    px = env.proxy({"alpha": split_pool(master, replicas, read_from="replica")}, verbose=5,
                   extra_args=["--metrics-port=%d" % mport, "--metrics-addr=%s" % HOST])
    c = px.client()
    a, b = replicas
    keys = keys_on(a, replicas, 10)
    write(c, keys, master, replicas)
    assert status_state(mport, a.addr) == "live"
    stop_process(a.proc.pid)
    try:
        wait_until(lambda: NO_READ % a.addr in log(px), "the stalled replica left out", timeout=5)
        assert "no answer within 1000 ms" in log(px)
        wait_until(lambda: status_state(mport, a.addr) == "no_reads", "the status page to say no_reads")
        assert status_state(mport, b.addr) == "live"
        for k in keys:
            t0 = time.monotonic()
            assert c.get(k) == ("v-" + k).encode()
            assert time.monotonic() - t0 < 0.5
    finally:
        os.kill(a.proc.pid, signal.SIGCONT)
    wait_until(lambda: BACK % a.addr in log(px), "the resumed replica back in the reads")
    wait_until(lambda: status_state(mport, a.addr) == "live", "the status page to say live again")
    reset_stats(a)
    for k in keys:
        assert c.get(k) == ("v-" + k).encode()
    assert calls(a, "get") == len(keys)


def test_a_check_the_acl_user_may_not_make_keeps_the_reads(env):
    """The pool's ACL user may not run INFO: the proxy cannot tell whether the
    replica has the master's data, says so once, and its reads go on as without
    the check."""
    master, replicas = start_replicated(env, nreplicas=1)
    for s in [master] + replicas:
        assert s.client().acl_setuser("px", enabled=True, passwords=["+pw"], keys=["*"],
                                      commands=["+@all", "-info"])
    px = env.proxy({"alpha": split_pool(master, replicas, read_from="replica", redis_auth="px pw")},
                   verbose=5)
    wait_until(lambda: "cannot tell whether replica '%s'" % replicas[0].addr in log(px),
               "the proxy to say it cannot check")
    assert "NOPERM" in log(px)
    c = px.client(username="px", password="pw")
    assert c.set("k", "v") is True
    wait_replicated(master, replicas)
    reset_stats(replicas[0])
    assert c.get("k") == b"v"
    assert calls(replicas[0], "get") == 1
    time.sleep(1.2)  # another round: still one warning, still reads
    assert log(px).count("cannot tell whether replica") == 1
    assert "gets no read" not in log(px)


def test_reads_see_no_nil_while_a_replica_restarts_under_load(env):
    """Four clients read while one replica is killed and started again empty
    with a sync that lasts: no read gets nil or an error. The killed replica's
    ejection is short (300 ms): without the check it takes reads again as soon
    as it accepts connections, empty."""
    master, replicas = start_replicated(env)
    px = env.proxy({"alpha": split_pool(master, replicas, read_from="replica", timeout=10000,
                                        server_failure_limit=2, server_retry_timeout=300)}, verbose=5)
    # half on each replica (similar short keys can all hash to one of two)
    keys = keys_on(replicas[0], replicas, 50) + keys_on(replicas[1], replicas, 50)
    c = px.client()
    write(c, keys, master, replicas)
    slow_full_sync(master, 2)
    stop, bad, served = threading.Event(), [], [0]

    def reads(i):
        cl = px.client()
        n = i
        while not stop.is_set():
            k = keys[n % len(keys)]
            n += 3
            try:
                v = cl.get(k)
            except Exception as e:
                bad.append(repr(e))
                return
            if v != ("v-" + k).encode():
                bad.append((k, v))
            served[0] += 1

    threads = [threading.Thread(target=reads, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    try:
        wait_until(lambda: served[0] > 200 or bad, "reads going on")
        replicas[0] = restart_empty(env, replicas[0], master)
        wait_until(lambda: sync_state(replicas[0])[0] == "up", "the replica synced again", timeout=15)
        reset_stats(replicas[0])
        wait_until(lambda: calls(replicas[0], "get") > 0 or bad, "reads on the restarted replica")
    finally:
        stop.set()
        for t in threads:
            t.join(30)
    assert bad == [], bad[:5]
    print("\nreplica restarted under load: %d reads, none nil" % served[0])


@pytest.fixture(scope="module")
def certs(tmp_path_factory):
    from tls_util import Certs
    return Certs(tmp_path_factory.mktemp("certs"))


def test_the_check_speaks_tls_to_tls_servers(env, certs):
    """Servers that speak TLS only: the check asks them over TLS (the pool's
    tls_* keys), tells the linked replica from a stray master, and the reads
    go to the replica."""
    from tls_util import tls_direct, tls_redis
    master = tls_redis(env, certs)
    replica = tls_redis(env, certs, args=["--tls-replication", "yes", "--replicaof", HOST, str(master.port)])
    stray = tls_redis(env, certs)
    wait_until(lambda: tls_direct(certs, replica).info("replication").get("master_link_status") == "up",
               "the TLS replica linked")
    pool = split_pool(master, [replica, stray], read_from="replica", tls=True, tls_ca_file=certs.crt("ca"))
    px = env.proxy({"alpha": pool}, verbose=5)
    wait_until(lambda: NO_READ % stray.addr in log(px), "the stray TLS master left out")
    assert "a master (role:master), not a replica" in log(px)
    assert NO_READ % replica.addr not in log(px)
    c = px.client()
    keys = keys_on(stray, [replica, stray], 5)
    for k in keys:
        assert c.set(k, "tls") is True
    wait_until(lambda: all(tls_direct(certs, replica).get(k) == b"tls" for k in keys), "replicated")
    for k in keys:
        assert c.get(k) == b"tls"
