"""Read/write splitting to redis replicas (SPEC 10) against real redis-server processes.

A pool whose server entry is named `master` is a master and its replicas: each
test starts a master and two replicas (`--replicaof`) on free ports and stops
them by pid.  Where a command went is read from the servers themselves: `INFO
commandstats` (reset with `CONFIG RESETSTAT` before each step) counts what each
server executed, and a replica made writable gets keys the others do not have.
"""

import threading
import time

import pytest

from conftest import HOST, TWEMPROXY, Ketama, RespError, encode_command, fnv1a_64, spread_keys, wait_until
from liveness_util import crash, forwarded, stop_process
from replica_util import calls, replies_across_a_loss, reset_stats, wait_replicated

pytestmark = pytest.mark.skipif(TWEMPROXY, reason="twemproxy 0.5 has no read/write splitting")

NO_REPLICA = "no replica is available for this read (read_from: replica)"


def start_replicated(env, nreplicas=2):
    """A master and nreplicas replicas of it, replication link up."""
    master = env.redis()
    replicas = [env.redis(args=["--replicaof", HOST, str(master.port)]) for _ in range(nreplicas)]
    for r in replicas:
        wait_until(lambda: r.client().info("replication").get("master_link_status") == "up",
                   "replica %s linked to its master" % r.addr, timeout=10)
    return master, replicas


def split_pool(master, replicas, **kw):
    pool = {"redis": True}
    pool.update(kw)
    pool["servers"] = ["%s:1 master" % master.addr] + ["%s:1" % r.addr for r in replicas]
    return pool


def replica_of(key, replicas):
    """The replica twemproxy's fnv1a_64 + ketama puts key on, among the replicas alone."""
    k = Ketama([(r.addr, 1) for r in replicas])
    return replicas[k.index(fnv1a_64(key.encode()))]


def test_info_keyspace_counts_the_dataset_once_and_asks_the_master_alone(env):
    """INFO keyspace in a pool of a master and its replicas: one dataset, as
    DBSIZE says. The proxy added up every server (3 times the keys), and asked
    the replicas each second while a client wanted the figures: a replica
    restarting failed those questions and was ejected for server_retry_timeout
    (h49)."""
    master, replicas = start_replicated(env)
    px = env.proxy({"alpha": split_pool(master, replicas)})
    c = px.client()
    for i in range(7):
        assert c.set("ks%d" % i, i) is True
    wait_replicated(master, replicas)
    assert c.dbsize() == 7
    got = wait_until(lambda: c.info("keyspace").get("db0"), "a keyspace line")
    time.sleep(1.5)  # the figures are asked again every second
    assert c.info("keyspace")["db0"]["keys"] == 7, got


def test_commands_for_every_server_write_at_the_master_alone(env):
    """FLUSHALL, FUNCTION LOAD and FUNCTION FLUSH are writes: in a pool of a master
    and its replicas they go to the master, whose replicas replay them (sent to
    every server too, the replicas answered READONLY and so did the proxy);
    SCRIPT LOAD fills each server's own cache, replicas included, so that
    EVALSHA_RO works where a read goes."""
    master, replicas = start_replicated(env)
    px = env.proxy({"alpha": split_pool(master, replicas, allow_flush=True)})
    c = px.resp()
    lib = "#!lua name=mr\nredis.register_function{function_name='mrget', flags={'no-writes'}, " \
          "callback=function(k) return redis.call('GET', k[1]) end}"
    assert c.call("FUNCTION", "LOAD", lib) == b"mr"
    assert c.call("SET", "fk", "v") == b"OK"
    wait_replicated(master, replicas)
    assert all(r.resp().call("FUNCTION", "LIST")[0][1] == b"mr" for r in replicas)
    assert c.call("FCALL_RO", "mrget", "1", "fk") == b"v"
    sha = c.call("SCRIPT", "LOAD", "return redis.call('GET', KEYS[1])")
    assert all(s.resp().call("SCRIPT", "EXISTS", sha) == [1] for s in [master] + replicas)
    assert c.call("EVALSHA_RO", sha, "1", "fk") == b"v"
    assert c.call("FUNCTION", "FLUSH") == b"OK"
    assert c.call("FLUSHALL") == b"OK"
    wait_replicated(master, replicas)
    assert all(s.resp().call("DBSIZE") == 0 and s.resp().call("FUNCTION", "LIST") == []
               for s in [master] + replicas)


def test_writes_go_to_master_and_reads_to_replicas(env):
    master, replicas = start_replicated(env)
    px = env.proxy({"alpha": split_pool(master, replicas)})
    c = px.client()
    keys = spread_keys("rw", 40)
    reset_stats(master, *replicas)
    for k in keys:
        assert c.set(k, "v-" + k) is True  # a replica would answer -READONLY
    assert calls(master, "set") == len(keys)
    wait_replicated(master, replicas)

    reset_stats(master, *replicas)
    for k in keys:
        assert c.get(k) == ("v-" + k).encode()
    assert calls(master, "get") == 0
    # each read went to the replica ketama picks among the replicas
    for r in replicas:
        want = sum(1 for k in keys if replica_of(k, replicas) is r)
        assert want > 0
        assert calls(r, "get") == want
    # local commands stay local, on no server at all
    assert c.ping() is True
    assert calls(master, "ping") + sum(calls(r, "ping") for r in replicas) == 0


def test_reads_are_served_by_the_replica(env):
    """A value that exists only on a replica is what the proxy reads."""
    master, replicas = start_replicated(env, nreplicas=1)
    px = env.proxy({"alpha": split_pool(master, replicas)})
    r = replicas[0]
    r.client().config_set("replica-read-only", "no")
    r.client().set("only-here", "replica")
    c = px.client()
    assert c.get("only-here") == b"replica"
    assert c.hgetall("nothing") == {}
    assert c.exists("only-here") == 1
    # a write still goes to the master, which then replicates over the replica's key
    assert c.set("only-here", "master") is True
    assert master.client().get("only-here") == b"master"


def test_multi_key_reads_split_over_replicas_writes_to_master(env):
    master, replicas = start_replicated(env)
    px = env.proxy({"alpha": split_pool(master, replicas)})
    c = px.client()
    keys = spread_keys("mk", 20)
    reset_stats(master, *replicas)
    assert c.mset({k: "v-" + k for k in keys}) is True
    # one MSET, unsplit: every key belongs to the master
    assert calls(master, "mset") == 1
    wait_replicated(master, replicas)

    reset_stats(master, *replicas)
    assert c.mget(keys) == [("v-" + k).encode() for k in keys]
    assert calls(master, "mget") == 0
    assert [calls(r, "mget") for r in replicas] == [1, 1]  # one fragment each

    reset_stats(master, *replicas)
    assert c.delete(*keys) == len(keys)
    assert calls(master, "del") == 1
    assert master.client().dbsize() == 0


def test_read_from_master_keeps_reads_on_master(env):
    master, replicas = start_replicated(env)
    px = env.proxy({"alpha": split_pool(master, replicas, read_from="master")})
    c = px.client()
    keys = spread_keys("rm", 20)
    for k in keys:
        c.set(k, k)
    reset_stats(master, *replicas)
    for k in keys:
        assert c.get(k) == k.encode()
    assert c.mget(keys) == [k.encode() for k in keys]
    assert calls(master, "get") == len(keys)
    assert calls(master, "mget") == 1
    assert sum(calls(r, "get") + calls(r, "mget") for r in replicas) == 0


def _kill_replicas(replicas):
    for r in replicas:
        r.proc.kill()
        r.proc.wait(5)


@pytest.mark.parametrize("auto_eject", [True, False], ids=["auto_eject", "no_auto_eject"])
def test_prefer_replica_falls_back_to_master(env, auto_eject):
    """A failing replica holds no key of its own, so it is taken out of the reads
    whether or not auto_eject_hosts is set."""
    master, replicas = start_replicated(env)
    px = env.proxy({"alpha": split_pool(master, replicas, read_from="prefer_replica",
                                        auto_eject_hosts=auto_eject, server_failure_limit=1,
                                        server_retry_timeout=60000)})
    r = px.resp()
    assert r.call("SET", "k", "v") == b"OK"
    wait_replicated(master, replicas)
    reset_stats(master, *replicas)
    assert r.call("GET", "k") == b"v"
    assert calls(master, "get") == 0  # replicas first while they live

    _kill_replicas(replicas)
    # the first reads find a replica dead (answered with its error) and eject it
    wait_until(lambda: r.call("GET", "k") == b"v", "reads answered by the master", timeout=10)
    reset_stats(master)
    for _ in range(10):
        assert r.call("GET", "k") == b"v"
        assert r.call("MGET", "k", "nope") == [b"v", None]
    assert calls(master, "get") == 10
    assert calls(master, "mget") == 10
    assert r.call("SET", "k", "w") == b"OK"


def test_prefer_replica_reads_see_no_error_from_a_dead_replica(env):
    """With the replica gone and a failure limit that never ejects it, every
    read still gets the master's answer: one whose connection to the replica
    is refused (or lost before it was written) goes to the master at once."""
    master, replicas = start_replicated(env, nreplicas=1)
    px = env.proxy({"alpha": split_pool(master, replicas, read_from="prefer_replica",
                                        server_failure_limit=1000, server_retry_timeout=60000)})
    r = px.resp()
    assert r.call("SET", "k", "v") == b"OK"
    wait_replicated(master, replicas)
    _kill_replicas(replicas)
    reset_stats(master)
    for _ in range(10):
        assert r.call("GET", "k") == b"v"
        assert r.call("MGET", "k", "nope") == [b"v", None]
    assert calls(master, "get") == 10 and calls(master, "mget") == 10


@pytest.mark.parametrize("read_from", ["prefer_replica", "replica"])
def test_read_in_flight_on_a_lost_replica(env, read_from):
    """The only replica is stopped with a GET and an MGET already written to
    it, then killed: with prefer_replica they are sent again to the master (a
    read repeats nothing) and answered with its values; with replica (no other
    replica to ask) they get the connection's error. A read whose client
    pipelined a write after it (run by the master already) gets the error
    either way: sent again, it would read that later write."""
    master, replicas = start_replicated(env, nreplicas=1)
    rep = replicas[0]
    px = env.proxy({"alpha": split_pool(master, replicas, read_from=read_from,
                                        server_failure_limit=1000, timeout=30000)})
    c = px.resp()
    assert c.call("MSET", "k", "master", "k2", "m2", "k3", "before") == b"OK"
    wait_replicated(master, replicas)
    rep.client().config_set("replica-read-only", "no")
    rep.client().set("k", "replica")  # where a read was answered shows in its value
    assert c.call("GET", "k") == b"replica"
    stop_process(rep.proc.pid)
    getter, mgetter, piper = (px.resp(timeout=30) for _ in range(3))
    try:
        getter.send(encode_command("GET", "k"))
        mgetter.send(encode_command("MGET", "k2", "k"))
        piper.send(encode_command("GET", "k3") + encode_command("SET", "k3", "after"))
        forwarded(px, "alpha", rep, 3)
        wait_until(lambda: master.client().get("k3") == b"after", "the pipelined SET to run", timeout=5)
        crash(rep)
        got, mgot = getter.read_reply(), mgetter.read_reply()
        pgot, pset = piper.read_reply(), piper.read_reply()
    finally:
        for x in (getter, mgetter, piper):
            x.close()
    if read_from == "prefer_replica":
        assert got == b"master" and mgot == [b"m2", b"master"]
    else:
        assert isinstance(got, RespError) and isinstance(mgot, RespError), (got, mgot)
    assert isinstance(pgot, RespError) and pset == b"OK", (pgot, pset)
    assert c.call("SET", "k", "after") == b"OK"


@pytest.mark.parametrize("read_from", ["replica", "prefer_replica"])
def test_read_in_flight_on_a_lost_replica_goes_to_another_replica(env, read_from):
    """Two replicas: the one that serves "k" is stopped with a GET and an MGET
    written to it, then killed: both reads are sent again to the other replica
    (not to the master, with either read_from) and answered with its values.
    Each replica holds its own value of "k", so the answer says who gave it.
    The lost replica's request counters keep the reads it was sent: counters
    never go down (they did, and Prometheus read it as a reset)."""
    master, replicas = start_replicated(env, nreplicas=2)
    victim = replica_of("k", replicas)
    other = next(r for r in replicas if r is not victim)
    k2 = next(k for k in ("%d:k2" % i for i in range(1000)) if replica_of(k, replicas) is victim)
    px = env.proxy({"alpha": split_pool(master, replicas, read_from=read_from,
                                        server_failure_limit=1000, timeout=30000)})
    c = px.resp()
    assert c.call("MSET", "k", "master", k2, "m2") == b"OK"
    wait_replicated(master, replicas)
    for r in replicas:
        r.client().config_set("replica-read-only", "no")
        r.client().set("k", "victim" if r is victim else "other")
    assert c.call("GET", "k") == b"victim"
    assert c.call("MGET", k2, "k") == [b"m2", b"victim"]
    reset_stats(master, other)
    stop_process(victim.proc.pid)
    sent = {}

    def lose():
        sent.update(px.stats()["alpha"][victim.addr])
        crash(victim)
    got = replies_across_a_loss(px, "alpha", victim, lose, ("GET", "k"), ("MGET", k2, "k"))
    assert got == [b"other", [b"m2", b"other"]]
    after = px.wait_stats(lambda st: st["alpha"][other.addr]["responses"] >= 2)["alpha"][victim.addr]
    assert after["requests"] >= sent["requests"] and after["request_bytes"] >= sent["request_bytes"], \
        (sent, after)
    assert calls(other, "get") == 1 and calls(other, "mget") == 1
    assert calls(master, "get") == 0 and calls(master, "mget") == 0
    assert c.call("SET", "k", "after") == b"OK"


@pytest.mark.parametrize("read_from", ["replica", "prefer_replica"])
def test_read_in_flight_when_every_replica_is_lost(env, read_from):
    """Both replicas die while a GET waits on one of them: it is sent again
    once, to the other (refused), and then with prefer_replica to the master,
    with replica answered with an error: a read does not go round dead
    replicas, and the client gets its answer."""
    master, replicas = start_replicated(env, nreplicas=2)
    victim = replica_of("k", replicas)
    other = next(r for r in replicas if r is not victim)
    px = env.proxy({"alpha": split_pool(master, replicas, read_from=read_from,
                                        server_failure_limit=1000, timeout=30000)})
    c = px.resp()
    assert c.call("SET", "k", "master") == b"OK"
    wait_replicated(master, replicas)
    assert c.call("GET", "k") == b"master"
    crash(other)
    stop_process(victim.proc.pid)
    got, = replies_across_a_loss(px, "alpha", victim, lambda: crash(victim), ("GET", "k"))
    if read_from == "prefer_replica":
        assert got == b"master"
    else:
        assert isinstance(got, RespError), got
    assert c.call("SET", "k", "after") == b"OK"


def test_reads_get_no_error_while_replicas_die_in_turn(env):
    """Four clients pipeline GETs and MGETs while each replica in turn is
    killed (SIGKILL, mid-load) and restarted, the other one live: no read gets
    an error (those in flight on the killed one, and those sent to it before
    it is ejected, go to the other replica) and none gets another key's value
    or nil (a restarted replica gets no read until it is linked to its master
    again: replica_check); the master gets no read (read_from: replica)."""
    master, replicas = start_replicated(env, nreplicas=2)
    px = env.proxy({"alpha": split_pool(master, replicas, read_from="replica", server_failure_limit=2,
                                        server_retry_timeout=300, timeout=10000)})
    keys = spread_keys("turn", 200)
    c = px.client()
    for k in keys:
        c.set(k, "v-" + k)
    wait_replicated(master, replicas)
    reset_stats(master)
    stop, errors, wrong, served = threading.Event(), [], [], [0]

    def reads(i):
        cl = px.client()
        n = i
        while not stop.is_set():
            ks = [keys[(n + j * 7) % len(keys)] for j in range(8)]
            n += 1
            p = cl.pipeline(transaction=False)
            for k in ks[:6]:
                p.get(k)
            p.mget(ks[6:])
            try:
                out = p.execute(raise_on_error=False)
            except Exception as e:  # the connection itself: a finding too
                errors.append(repr(e))
                return
            got = out[:6] + (out[6] if isinstance(out[6], list) else [out[6]] * 2)
            for k, v in zip(ks, got):
                if isinstance(v, Exception):
                    errors.append("%s: %r" % (k, v))
                elif v != ("v-" + k).encode():
                    wrong.append((k, v))
            served[0] += len(ks)

    threads = [threading.Thread(target=reads, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    try:
        for rnd in range(4):
            i = rnd % 2
            before = served[0]
            wait_until(lambda: served[0] > before + 500 or errors, "reads going on")
            port = replicas[i].port
            crash(replicas[i])
            time.sleep(0.4)  # ejected after two failures, tried again every 300 ms
            replicas[i] = env.redis(port=port, args=["--replicaof", HOST, str(master.port)])
            wait_until(lambda: replicas[i].client().info("replication").get("master_link_status") == "up",
                       "the replica linked again", timeout=10)
            # one replica down at a time: the next is killed once this one takes reads again
            wait_until(lambda: calls(replicas[i], "get") > 0, "reads on the restarted replica", timeout=10)
    finally:
        stop.set()
        for t in threads:
            t.join(30)
    assert errors == [] and wrong == [], (errors[:5], wrong[:5])
    assert served[0] > 2000, served
    assert calls(master, "get") == 0 and calls(master, "mget") == 0
    print("\nreplicas killed in turn: 4 kills under %d reads, 0 errors" % served[0])


def test_replica_back_after_retry_timeout_takes_reads_again(env):
    master, replicas = start_replicated(env, nreplicas=1)
    px = env.proxy({"alpha": split_pool(master, replicas, read_from="prefer_replica",
                                        auto_eject_hosts=True, server_failure_limit=1,
                                        server_retry_timeout=300)})
    r = px.resp()
    assert r.call("SET", "k", "v") == b"OK"
    port = replicas[0].port
    _kill_replicas(replicas)
    wait_until(lambda: r.call("GET", "k") == b"v", "reads answered by the master", timeout=10)
    back = env.redis(port=port, args=["--replicaof", HOST, str(master.port)])
    wait_until(lambda: back.client().get("k") == b"v", "the replica synced again", timeout=10)
    reset_stats(back)
    wait_until(lambda: r.call("GET", "k") == b"v" and calls(back, "get") > 0, "reads on the replica again",
               timeout=10)
    reset_stats(master, back)
    for _ in range(5):
        assert r.call("GET", "k") == b"v"
    assert calls(master, "get") == 0 and calls(back, "get") == 5


def test_replica_only_reads_fail_when_no_replica_lives(env):
    master, replicas = start_replicated(env)
    px = env.proxy({"alpha": split_pool(master, replicas, read_from="replica",
                                        auto_eject_hosts=True, server_failure_limit=1,
                                        server_retry_timeout=60000)})
    r = px.resp()
    assert r.call("SET", "k", "v") == b"OK"
    _kill_replicas(replicas)
    wait_until(lambda: getattr(r.call("GET", "k"), "msg", None) == "ERR " + NO_REPLICA,
               "reads refused without replicas", timeout=10)
    reset_stats(master)
    got = r.call("MGET", "k", "k2")
    assert getattr(got, "msg", None) == "ERR " + NO_REPLICA
    assert calls(master, "get") == 0 and calls(master, "mget") == 0
    # writes are unaffected, and the connection stays usable
    assert r.call("SET", "k", "w") == b"OK"
    assert r.call("PING") == b"PONG"


def test_master_is_never_ejected(env):
    master, replicas = start_replicated(env)
    px = env.proxy({"alpha": split_pool(master, replicas, auto_eject_hosts=True,
                                        server_failure_limit=1, server_retry_timeout=60000)})
    r = px.resp()
    assert r.call("SET", "k", "v") == b"OK"
    port = master.port
    master.proc.kill()
    master.proc.wait(5)
    for _ in range(5):
        got = r.call("SET", "k", "v")
        assert getattr(got, "msg", "").startswith("ERR "), got
        assert "no server" not in got.msg  # the master stays in the pool
    stats = px.wait_stats(lambda st: st["alpha"]["master"]["server_err"] + st["alpha"]["master"]["server_eof"] >= 5,
                          "the 5 failures counted")["alpha"]
    assert stats["server_ejects"] == 0
    assert stats["master"]["server_ejected_at"] == 0
    # back on the same port: writes work at once, not after server_retry_timeout
    env.redis(port=port)
    wait_until(lambda: r.call("SET", "k", "back") == b"OK", "writes to the master again", timeout=5)


def test_stats_list_master_and_replicas_as_servers(env):
    master, replicas = start_replicated(env)
    px = env.proxy({"alpha": split_pool(master, replicas)})
    r = px.resp()
    for i in range(6):
        assert r.call("SET", "s%d" % i, "x") == b"OK"
    wait_replicated(master, replicas)
    for i in range(6):
        assert r.call("GET", "s%d" % i) == b"x"

    def counted():
        pool = px.stats()["alpha"]
        names = ["master"] + [x.addr for x in replicas]
        if any(n not in pool for n in names):
            return None
        return (pool["master"]["requests"],
                sum(pool[x.addr]["requests"] for x in replicas))
    assert wait_until(lambda: counted() == (6, 6), "per-server request counters", timeout=5)


def test_pool_without_master_still_shards(env):
    """No server named master: reads and writes go where twemproxy puts them."""
    servers = [env.redis() for _ in range(3)]
    px = env.proxy({"alpha": {"redis": True, "servers": ["%s:1" % s.addr for s in servers]}})
    c = px.client()
    keys = spread_keys("plain", 30)
    k = Ketama([(s.addr, 1) for s in servers])
    for key in keys:
        c.set(key, key)
    for key in keys:
        owner = servers[k.index(fnv1a_64(key.encode()))]
        assert owner.client().get(key) == key.encode()
        assert c.get(key) == key.encode()


def test_reload_changes_where_reads_go(env):
    """SIGHUP with a new read_from: the same client's next reads follow it."""
    master, replicas = start_replicated(env)
    pools = {"alpha": split_pool(master, replicas, read_from="master")}
    px = env.proxy(pools)
    r = px.resp()
    assert r.call("SET", "k", "v") == b"OK"
    wait_replicated(master, replicas)
    reset_stats(master, *replicas)
    assert r.call("GET", "k") == b"v"
    assert calls(master, "get") == 1

    pools["alpha"] = dict(pools["alpha"], read_from="replica", listen="%s:%d" % (HOST, px.port()))
    assert px.reload(pools)
    reset_stats(master, *replicas)  # the reload applied: the next read goes to a replica
    assert r.call("GET", "k") == b"v"
    assert calls(master, "get") == 0 and sum(calls(x, "get") for x in replicas) == 1
    assert r.call("SET", "k", "w") == b"OK"
    assert master.client().get("k") == b"w"


@pytest.mark.parametrize("body,needle", [
    ("alpha:\n  listen: {L}\n  redis: true\n  read_from: replica\n  servers:\n   - {S}:1\n",
     "t.yml:4: read_from: directive needs a server named 'master'"),
    ("alpha:\n  listen: {L}\n  servers:\n   - {S}:1 master\n  read_from: master\n",
     "t.yml:5: read_from: directive is only valid for a redis pool"),
    ("alpha:\n  listen: {L}\n  redis: true\n  servers:\n   - {S}:1 master\n  read_from: nearest\n",
     "t.yml:6: read_from: \"nearest\" is not a valid read_from (one of master, replica, "
     "prefer_replica)"),
    # sentinel pools take read_from (their groups' replicas), but only valid values
    ("alpha:\n  listen: {L}\n  redis: true\n  groups:\n   - g\n  sentinels:\n   - {S}\n"
     "  read_from: nearest\n",
     "t.yml:8: read_from: \"nearest\" is not a valid read_from"),
])
def test_read_from_config_errors(env, body, needle):
    from conftest import free_port
    text = body.format(L="%s:%d" % (HOST, free_port()), S="%s:%d" % (HOST, free_port()))
    conf = env.write_conf(text, name="t.yml")
    rc, out = env.run_proxy(["-t", "-c", conf], timeout=5)
    assert rc != 0
    assert needle.replace("t.yml", conf) in out, out


def test_read_from_accepted_with_master(env):
    master, replicas = start_replicated(env, nreplicas=1)
    for v in ("master", "replica", "prefer_replica"):
        conf = env.write_conf({"alpha": dict(split_pool(master, replicas, read_from=v),
                                             listen="%s:1" % HOST)})
        rc, out = env.run_proxy(["-t", "-c", conf], timeout=5)
        assert rc == 0, out


def test_reads_after_watch_and_cursors_go_to_the_master(env):
    """A read between WATCH and EXEC decides what EXEC writes: served by a
    lagging replica, it made a check-and-set overwrite another client's
    acknowledged update (the watch, on the master, saw no change after it). A
    SCAN cursor (also HSCAN, SSCAN, ZSCAN) is one node's own: carried on by
    another replica once its replica died, keys were skipped and repeated.
    Both go to the master; other reads still go to the replicas."""
    master, replicas = start_replicated(env, nreplicas=1)
    px = env.proxy({"alpha": split_pool(master, replicas)})
    r = replicas[0]
    r.client().config_set("replica-read-only", "no")
    master.client().set("cas", "100")
    wait_replicated(master, [r])
    r.client().set("cas", "stale")  # what a replica that lags would answer
    r.client().set("only-r", "replica")
    w = px.resp()
    assert w.call("WATCH", "cas") == b"OK"
    assert w.call("GET", "cas") == b"100"  # the master's, as the watch sees it
    assert w.call("MULTI") == b"OK" and w.call("SET", "cas", "110") == b"QUEUED"
    assert w.call("EXEC") == [b"OK"]
    assert w.call("GET", "only-r") == b"replica"  # the watch is over: reads go to the replica again
    c = px.client()
    reset_stats(master, r)
    master.client().hset("h", mapping={"f%d" % i: i for i in range(300)})  # a hashtable, not a listpack
    assert dict(c.hscan_iter("h")) == {("f%d" % i).encode(): str(i).encode() for i in range(300)}
    assert c.scan(0, count=1000)[0] is not None
    assert calls(r, "hscan") == 0 and calls(r, "scan") == 0
    assert calls(master, "hscan") > 0 and calls(master, "scan") == 1
    assert c.get("only-r") == b"replica"  # a plain read: the replica's
