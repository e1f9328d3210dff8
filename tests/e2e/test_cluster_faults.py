"""A Redis Cluster changing under a continuous pipelined load through the
proxy (cluster_util.Load: every error reply and every acknowledged write lost
is counted): a third of the slots resharded, a master killed (its replica
promoted), a node added and the cluster rebalanced, the whole cluster
restarted; and a replica cut from its live master, which reads leave past
replica_max_link_down.  Each test has its own cluster: they take it apart."""

import os
import signal
import sys
import time

from cluster_util import NODE_TIMEOUT_MS, Cluster, Load, _cluster_port, key_slot
from conftest import HOST, Resp, RespError, encode_command, wait_port, wait_until
from liveness_util import crash, forwarded, stop_process


def start(env, n=6, verbose=4, **pool):
    cl = Cluster(env, n).create(replicas=1)
    conf = {"redis_cluster": True, "timeout": 2000,
            "servers": ["%s:%d" % (HOST, x.port) for x in cl.nodes[:3]]}
    conf.update(pool)
    px = env.proxy({"cl": conf}, verbose=verbose)
    px.wait_stats(lambda s: s["cl"]["cluster_nodes"] == n, "the map")
    return cl, px


def replica_get(node, key):
    """GET asked of a replica itself (READONLY on the connection)."""
    c = Resp(port=node.port, timeout=5)
    try:
        assert c.call("READONLY") == b"OK"
        return c.call("GET", key)
    finally:
        c.close()


def report(what, load, px):
    st = px.stats()["cl"]
    sys.stderr.write("\n%s: %d requests, %d error replies, %d stale reads; moved %d ask %d tryagain %d "
                     "cluster_down %d held %d longest hold %.0f ms expired %d refresh %d\n"
                     % (what, load.ops, len(load.errors), len(load.stale), st["moved"], st["ask"],
                        st["tryagain"], st["cluster_down"], st["cluster_held"],
                        st["cluster_hold_us"] / 1000.0, st["cluster_expired"], st["cluster_refresh"]))
    return st


def is_connection_error(msg):
    """The error a request gets when its server connection breaks: the
    system's text for it (refused, reset, closed, broken pipe), as twemproxy."""
    return any(w in msg for w in ("Connection", "closed", "reset", "Broken pipe"))


def test_reshard_a_third_of_the_slots_under_load(env):
    cl, px = start(env)
    load = Load(px.port("cl"), clients=4, keys=300, pipeline=20, multi=True).start()
    load.wait_ops(2000)
    src = cl.master_of(0)
    dst = next(m for m in cl.masters() if m.port != src.port)
    cl.reshard(src, dst, 16384 // 3)
    load.wait_ops(2000)
    load.stop()
    report("reshard 5461 slots", load, px)
    assert not load.broken, load.broken
    assert load.errors == [], load.errors[:10]
    assert load.stale == [], load.stale[:10]
    assert load.verify(cl.direct_get) == []
    c = px.resp()
    assert load.verify(lambda k: c.call("GET", k)) == []
    st = px.stats()["cl"]
    assert st["moved"] + st["ask"] > 0 and st["forward_error"] == 0


def test_master_killed_under_load(env):
    """Only requests already written to the dead master may fail; every
    other request is answered once its replica took over."""
    cl, px = start(env)
    cl.wait_replicas_synced()
    load = Load(px.port("cl"), clients=4, keys=300, pipeline=20).start()
    load.wait_ops(2000)
    victim = cl.master_of(key_slot("load:0:0"))
    heir = cl.replica_of(victim)
    victim.proc.kill()
    wait_until(lambda: cl.call(heir, "ROLE")[0] == b"master", "the replica promoted", timeout=15)
    load.wait_ops(3000, timeout=30)
    load.stop()
    st = report("master killed", load, px)
    assert not load.broken, load.broken
    # what may fail: requests out at the master when it died (at most a
    # pipeline per client), with the connection's error
    assert len(load.errors) <= 4 * 20, load.errors[:10]
    for kind, key, msg in load.errors:
        assert is_connection_error(msg), msg
    lost = load.verify(lambda k: cl.call(cl.master_of(key_slot(k)), "GET", k))
    sys.stderr.write("acknowledged writes lost (asynchronous replication): %d\n" % len(lost))
    assert st["cluster_expired"] == 0
    assert st["cluster_held"] > 0


def test_a_stopped_master_is_left_for_its_heir_as_soon_as_the_map_names_it(env):
    """A master that stops answering (SIGSTOP: connecting still succeeds) timed
    out request after request (its reads taken back and sent there again),
    and the map was not asked again until the next cluster_refresh (10 s):
    the clients stood still that long after the cluster had promoted its
    replica. Now a timeout marks the node: its requests wait, one at a time
    finds out whether it answers, and the map is asked every 100 ms until it
    names the heir, which serves them."""
    timeout_ms = 300
    cl, px = start(env, timeout=timeout_ms, failover_hold=15000, verbose=5)
    cl.wait_replicas_synced()
    load = Load(px.port("cl"), clients=4, keys=300, pipeline=20).start()
    load.wait_ops(2000)
    victim = cl.master_of(key_slot("load:0:0"))
    heir = cl.replica_of(victim)
    t0 = time.monotonic()
    stop_process(victim.proc.pid)
    try:
        wait_until(lambda: cl.call(heir, "ROLE")[0] == b"master", "the replica promoted", timeout=15,
                   interval=0.05)
        # every client has keys at the stopped master in each pipeline: the
        # load goes on only once the heir serves them
        load.wait_ops(1000, timeout=3)
        stalled_s = time.monotonic() - t0
    finally:
        os.kill(victim.proc.pid, signal.SIGCONT)
    load.stop()
    st = report("master stopped", load, px)
    assert not load.broken, load.broken
    for kind, key, msg in load.errors:
        assert "timed out" in msg, msg
    # what may fail: the requests out at the master when it stopped (at most a
    # pipeline per client), then one at a time per timeout while it is stopped
    bound = 4 * 20 + int(stalled_s * 1000 / timeout_ms) + 2
    assert len(load.errors) <= bound, (len(load.errors), bound, stalled_s)
    assert st["cluster_expired"] == 0
    with open(px.log) as f:
        assert "cluster node '%s:%d' did not answer within timeout" % (HOST, victim.port) in f.read()


def test_a_watch_of_a_killed_masters_key_waits_for_its_heir(env):
    """While a master cannot be reached its requests wait until the map names
    its successor; a WATCH of its keys waits with them. It failed at once, and
    a client retrying its transaction sent thousands of WATCHes (each one a new
    connection) in the seconds before the promotion."""
    cl, px = start(env)
    cl.wait_replicas_synced()
    key = "watched"
    victim = cl.master_of(key_slot(key))
    heir = cl.replica_of(victim)
    c = px.resp()
    assert c.call("SET", key, "0") == b"OK"
    cl.wait_replicas_synced()
    victim.proc.kill()
    errors, tries, done = [], 0, None
    deadline = time.time() + 20
    while done is None and time.time() < deadline:
        tries += 1
        reply = c.call("WATCH", key)
        if isinstance(reply, RespError):
            errors.append(reply.msg)
            continue
        assert reply == b"OK"
        assert c.call("MULTI") == b"OK" and c.call("INCR", key) == b"QUEUED"
        done = c.call("EXEC")
    assert cl.call(heir, "ROLE")[0] == b"master"
    sys.stderr.write("\n%d WATCHes, errors: %s\n" % (tries, errors))
    # the first may fail: it is what tells the proxy that the node is gone
    assert len(errors) <= 1, errors
    assert all(is_connection_error(e) for e in errors), errors
    assert done == [1]


def test_a_consumer_blocked_at_a_killed_master_pops_from_its_heir(env):
    """A job-queue consumer blocked in BLPOP when its master dies has its
    connection closed, as its connection to the master would (the pop may
    have happened there: it is not sent again); its next BLPOP waits for the
    heir and pops what is pushed there. One sent while the master is down
    waits in the pool's hold: a stop then closes it at once, rather than send
    it once the heir serves."""
    cl, px = start(env, failover_hold=20000)
    cl.wait_replicas_synced()
    key = "jobs"
    victim = cl.master_of(key_slot(key))
    heir = cl.replica_of(victim)
    consumer, pusher = px.resp(timeout=30), px.resp(timeout=30)
    consumer.send(encode_command("BLPOP", key, "0"))
    wait_until(lambda: int(cl.info(victim).get("cluster_state") == "ok") and
               b"blocked_clients:1" in cl.call(victim, "INFO", "clients"), "blocked at the master")
    victim.proc.kill()
    assert consumer.is_closed(timeout=10)
    consumer = px.resp(timeout=30)
    consumer.send(encode_command("BLPOP", key, "0"))
    wait_until(lambda: cl.call(heir, "ROLE")[0] == b"master", "the replica promoted", timeout=15)
    wait_until(lambda: b"blocked_clients:1" in cl.call(heir, "INFO", "clients"), "blocked at the heir")
    assert pusher.call("RPUSH", key, "job1") == 1
    assert consumer.read_reply() == [key.encode(), b"job1"]
    # held while its master is down, then a stop
    victim = heir
    late = px.resp(timeout=10)
    victim.proc.kill()
    late.send(encode_command("BLPOP", key, "0"))
    px.wait_stats(lambda s: s["cl"]["cluster_held"] >= 1, "the BLPOP held")
    t0 = time.monotonic()
    px.proc.send_signal(signal.SIGTERM)
    assert late.is_closed(timeout=5)
    assert time.monotonic() - t0 < 2
    px.proc.wait(10)


def test_master_demoted_again_redirects_reads(env):
    """A replica taken over (a manual failover), then given back: the node is a
    replica again before the proxy's map says so. A read the map still sends it
    must come back redirected (MOVED) to the master, not be answered from the
    replica's data: connections say READONLY only to replicas that take reads
    (read_from), and a node that becomes a master is told READWRITE."""
    cl, px = start(env, cluster_refresh=600000)  # the map changes by MOVED only
    cl.wait_replicas_synced()
    key = "demote:k"
    m = cl.master_of(key_slot(key))
    r = cl.replica_of(m)
    c = px.resp()
    assert c.call("SET", key, "1") == b"OK"
    for node in (r, m):
        if node is m:
            # a master votes for a shard's replica once per 2 node timeouts: the
            # second failover asked sooner would wait for votes and time out
            time.sleep(2 * NODE_TIMEOUT_MS / 1000.0 + 0.5)
        assert cl.call(node, "CLUSTER", "FAILOVER") == b"OK"
        wait_until(lambda: cl.call(node, "ROLE")[0] == b"master", "the replica promoted", timeout=15)
        cl.wait_ok()
        cl.wait_replicas_synced()
        if node is r:
            assert c.call("GET", key) == b"1"  # through a MOVED: the proxy reads r as the master
            px.wait_stats(lambda s: s["cl"]["moved"] >= 1 and s["cl"]["cluster_refresh"] >= 2,
                          "the map to name r")  # (the refresh a MOVED asks for)
    moved = px.stats()["cl"]["moved"]
    assert cl.call(m, "SET", key, "2") == b"OK"
    assert c.call("GET", key) == b"2"
    px.wait_stats(lambda s: s["cl"]["moved"] > moved, "the read redirected by the demoted node")


def test_read_in_flight_on_a_killed_master(env):
    """A GET the proxy already wrote to a master that dies before answering
    (stopped, then killed) is sent again once its replica took over and is
    answered with the value; a SET written there with it gets an error (the
    old master may have applied it)."""
    cl, px = start(env)
    cl.wait_replicas_synced()
    c = px.resp(timeout=30)
    assert c.call("SET", "inflight:k", "v1") == b"OK"
    victim = cl.master_of(key_slot("inflight:k"))
    heir = cl.replica_of(victim)
    assert cl.call(victim, "WAIT", 1, 5000) == 1
    # the replica has the value, asked of it: WAIT once said 1 to a replica just
    # fully synced whose replication stream had not started (redis 7.0 streams
    # nothing to it before its first REPLCONF ACK), and the heir then had no key
    wait_until(lambda: replica_get(heir, "inflight:k") == b"v1", "the replica to have the value")
    name = "%s:%d" % (HOST, victim.port)
    stop_process(victim.proc.pid)
    reader, writer = c, px.resp(timeout=30)
    try:
        reader.send(encode_command("GET", "inflight:k"))
        forwarded(px, "cl", name, 1)
        writer.send(encode_command("SET", "inflight:k", "maybe"))
        forwarded(px, "cl", name, 2)
        crash(victim)
        err = writer.read_reply()
        assert isinstance(err, RespError), err
        assert reader.read_reply() == b"v1"
    finally:
        writer.close()
    assert cl.call(heir, "ROLE")[0] == b"master"
    assert px.stats()["cl"]["cluster_held"] >= 1


def test_node_added_and_rebalanced_under_load(env):
    cl, px = start(env)
    load = Load(px.port("cl"), clients=3, keys=200, pipeline=20, multi=True).start()
    load.wait_ops(1000)
    new = cl.add_node()
    cl.rebalance()
    load.wait_ops(1000)
    load.stop()
    report("node added + rebalance", load, px)
    assert not load.broken, load.broken
    assert load.errors == [], load.errors[:10]
    assert load.stale == [], load.stale[:10]
    assert load.verify(cl.direct_get) == []
    px.wait_stats(lambda s: "%s:%d" % (HOST, new.port) in s["cl"], "the new node in the stats")
    px.wait_stats(lambda s: s["cl"]["%s:%d" % (HOST, new.port)]["requests"] > 0, "requests at the new node")


def test_whole_cluster_restarted(env):
    """Every node stopped and started again on its ports (nodes.conf kept):
    requests made meanwhile wait (failover_hold) and are answered after."""
    cl, px = start(env, failover_hold=20000)
    c = px.resp()
    assert c.call("SET", "restart:k", "1") == b"OK"
    cl.wait_replicas_synced()
    for n in cl.nodes:
        cl.call(n, "SAVE")
    ports = [n.port for n in cl.nodes]
    for n in cl.nodes:
        n.stop()
    c.send(b"*2\r\n$3\r\nGET\r\n$9\r\nrestart:k\r\n")
    px.wait_stats(lambda s: s["cl"]["cluster_held"] >= 1, "the request held")
    cl.nodes = [cl.start_node(port=p) for p in ports]
    cl.wait_ok(timeout=30)
    assert c.read_reply() == b"1"
    assert c.call("SET", "restart:k", "2") == b"OK"
    assert cl.direct_get("restart:k") == b"2"


def test_replica_whose_link_stays_down_gets_no_read_past_replica_max_link_down(env):
    """read_from: replica with replica_max_link_down: 2000.  A replica's link to its
    live master is cut (the master drops its replica connection and takes no new
    one): no failover, the replica keeps serving what it had.  A write through the
    proxy reaches the master only; reads of it go to the replica at first (stale: the
    old value, as redis' replica-serve-stale-data does), and once the link has been
    down past the bound they go to the master (the new value); the log says why.  The
    link back up, the replica takes reads again."""
    cl, px = start(env, verbose=5, read_from="replica", replica_max_link_down=2000, cluster_refresh=500)
    cl.wait_replicas_synced()
    key = "stale:k"
    master = cl.master_of(key_slot(key))
    replica = cl.replica_of(master)
    name = "%s:%d" % (HOST, replica.port)
    c = px.resp()
    assert c.call("SET", key, "old") == b"OK"
    wait_until(lambda: c.call("GET", key) == b"old", "the value read back")

    def reads_at_replica():
        return px.stats()["cl"][name]["requests"]

    n = reads_at_replica()
    assert c.call("GET", key) == b"old"
    wait_until(lambda: reads_at_replica() > n, "the read at the replica")
    # the master takes no new connection: the replica's reconnects are refused at
    # their first PING (no sync starts), while the connections already open (the
    # proxy's, this one) go on
    ctl = Resp(port=master.port, timeout=5)
    maxclients = ctl.call("CONFIG", "GET", "maxclients")[1]
    assert ctl.call("CONFIG", "SET", "maxclients", "1") == b"OK"
    try:
        assert ctl.call("CLIENT", "KILL", "TYPE", "replica") >= 1
        assert c.call("SET", key, "new") == b"OK"
        assert c.call("GET", key) == b"old"  # the replica's data of before the cut
        t0 = time.monotonic()
        wait_until(lambda: c.call("GET", key) == b"new", "reads at the master", timeout=10, interval=0.05)
        took = time.monotonic() - t0
        # none reaches the replica: it still has "old" (its request count is no proof:
        # the cluster refresh's CLUSTER SHARDS goes to it too)
        for _ in range(20):
            assert c.call("GET", key) == b"new"
        with open(px.log) as f:
            log = f.read()
        assert "replica '%s' gets no read: its link to its master has been down for" % name in log, log[-2000:]
        assert "full sync" not in log, log[-2000:]
    finally:
        ctl.call("CONFIG", "SET", "maxclients", maxclients)
        ctl.close()
    print("\n[cluster replica link down] reads left the replica %.1fs after the cut" % took)
    # redis counts whole seconds: 2 s down is said 1 s after the cut at the earliest
    assert took >= 1.0, "the replica lost its reads before the bound (%.1fs)" % took
    cl.wait_replicas_synced()
    wait_until(lambda: "replica '%s' takes reads again" % name in open(px.log).read(), "the replica back")
    n = reads_at_replica()
    assert c.call("GET", key) == b"new"
    wait_until(lambda: reads_at_replica() > n, "reads at the replica again")


def test_a_node_removed_from_the_cluster_is_never_asked_for_the_map(env):
    """A node the proxy learned, then removed from the cluster and made a cluster of
    its own (a machine reused): with every real node down, the proxy asked it for
    the map, took its every slot and sent every request there, for good. Once a map
    is known, only its nodes and the seeds are asked: the requests wait for the
    real cluster, and the stranger gets none. The connections to it close once the
    map has dropped it (they stayed open)."""
    cl = Cluster(env, 3).create(replicas=0)
    seeds = ["%s:%d" % (HOST, x.port) for x in cl.nodes[:2]]
    px = env.proxy({"cl": {"redis_cluster": True, "timeout": 1000, "failover_hold": 1500,
                           "cluster_refresh": 200, "servers": seeds}}, verbose=6)
    px.wait_stats(lambda s: s["cl"]["cluster_nodes"] == 3, "the map")
    home = cl.master_of(key_slot("hijack"))
    stranger = cl.add_node()
    cl.move_slot(key_slot("hijack"), stranger)
    name = "%s:%d" % (HOST, stranger.port)
    px.wait_stats(lambda s: s["cl"]["cluster_nodes"] == 4 and name in s["cl"], "the new node in the map")
    c = px.resp()
    assert c.call("SET", "hijack", "1") == b"OK"
    cl.move_slot(key_slot("hijack"), home)
    # the cluster forgets it (a master without slots, it may have turned replica);
    # it forgets the cluster and takes every slot
    sid = cl.node_id(stranger)
    assert cl.call(stranger, "CLUSTER", "RESET", "HARD") == b"OK"
    assert cl.call(stranger, "FLUSHALL") == b"OK"
    for n in cl.nodes[:3]:
        assert cl.call(n, "CLUSTER", "FORGET", sid) == b"OK"
    # at once: a refresh may ask it before the map leaves it out
    assert cl.call(stranger, "CLUSTER", "ADDSLOTSRANGE", "0", "16383") == b"OK"
    px.wait_stats(lambda s: s["cl"]["cluster_nodes"] == 3, "the map without it")
    assert c.call("GET", "hijack") == b"1"
    # and the proxy's connections to it close (those of the stats' asking included)
    wait_until(lambda: cl.info_clients(stranger) == "1", "the proxy's connections to the removed node to close")
    for n in cl.nodes[:3]:
        n.stop()
    time.sleep(1)  # rounds of asking for the map (every 100 ms), every real node down
    for key in ("hijack", "other", "{x}y"):
        r = c.call("SET", key, "2")
        assert isinstance(r, RespError), (key, r)
    assert cl.call(stranger, "DBSIZE") == 0


def test_nodes_that_left_make_room_for_new_ones(env):
    """A node whose address changes again and again (a container restarted
    with a new IP each time) is a new node for the proxy at each address, and
    a pool has room for 512 nodes. Past that, a new node takes the place of one
    that left the cluster: the slots it serves are served. (Before, it was
    not used, and its slots had no node: every request for them failed.) Here
    one node announces 520 addresses nothing listens on, then one it listens
    on, while the proxy asks for the map every few ms."""
    port = _cluster_port()
    d = os.path.join(env.tmp, "node-%d" % port)
    os.makedirs(d)
    last_ip = "127.0.1.1"
    proc, out = env.spawn(["redis-server", "--port", str(port), "--bind", HOST, last_ip,
                           "--cluster-enabled", "yes", "--cluster-config-file", os.path.join(d, "nodes.conf"),
                           "--save", "", "--appendonly", "no", "--dir", d], "node-%d" % port)
    assert wait_port(port, proc)
    node = Resp(port=port, timeout=5)
    assert node.call("CLUSTER", "ADDSLOTSRANGE", "0", "16383") == b"OK"
    wait_until(lambda: b"cluster_state:ok" in node.call("CLUSTER", "INFO"), "the slots served")
    px = env.proxy({"cl": {"redis_cluster": True, "servers": ["%s:%d" % (HOST, port)],
                           "cluster_refresh": 1, "failover_hold": 10000}}, verbose=5)
    px.wait_stats(lambda s: s["cl"]["cluster_nodes"] == 1, "the map")
    c = px.resp(timeout=15)
    assert c.call("SET", "k", "before") == b"OK"
    log = open(px.log, "rb")
    seen = b""
    for k in range(520):
        ip = "127.0.%d.%d" % (2 + k // 250, 1 + k % 250)
        assert node.call("CONFIG", "SET", "cluster-announce-ip", ip) == b"OK"
        want = ("'%s:%d'" % (ip, port)).encode()
        end = time.monotonic() + 5
        while want not in seen:
            assert time.monotonic() < end, "the proxy did not learn %s" % ip
            time.sleep(0.002)
            seen = seen[-4096:] + log.read()
    assert node.call("CONFIG", "SET", "cluster-announce-ip", last_ip) == b"OK"
    assert c.call("GET", "k") == b"before"
    assert c.call("SET", "k", "after") == b"OK"
    assert node.call("GET", "k") == b"after"
    text = open(px.log, "rb").read().decode(errors="replace")
    assert "takes the place of" in text
    assert "'%s:%d' takes the place of" % (last_ip, port) in text
    assert "is not used" not in text


def test_a_node_that_failed_with_no_address_left_does_not_block_the_map(env):
    """An empty master dies and a fresh node takes its address: the cluster
    keeps the old one as "master,fail,noaddr", with no port in CLUSTER SHARDS,
    until every node FORGETs it. The map stands without it (h42: every map was
    refused, so ours followed no change, a failover included)."""
    cl = Cluster(env, 3).create(replicas=0)
    ghost = cl.add_node()
    old_id = cl.node_id(ghost)
    ghost.proc.kill()
    ghost.proc.wait()
    cl.nodes.remove(ghost)

    def flags_of_old(m):  # CLUSTER NODES: id addr flags ...
        lines = cl.call(m, "CLUSTER", "NODES").decode().splitlines()
        return [ln.split()[2].split(",") for ln in lines if ln.startswith(old_id)][0]

    wait_until(lambda: all("fail" in flags_of_old(m) for m in cl.nodes), "the dead node flagged failed",
               timeout=20)
    os.unlink(os.path.join(env.tmp, "node-%d" % ghost.port, "nodes.conf"))
    fresh = cl.start_node(port=ghost.port)
    cl.call(cl.nodes[0], "CLUSTER", "MEET", HOST, str(fresh.port))
    wait_until(lambda: "noaddr" in flags_of_old(cl.nodes[0]), "the old node left with no address", timeout=20)
    shards = cl.call(cl.nodes[0], "CLUSTER", "SHARDS")
    assert old_id.encode() in repr(shards).encode(), shards
    px = env.proxy({"cl": {"redis_cluster": True, "timeout": 2000,
                           "servers": ["%s:%d" % (HOST, cl.nodes[0].port)]}})
    c = px.resp()
    keys = ["g%d" % i for i in range(30)]
    wait_until(lambda: c.call("SET", "probe", "1") == b"OK", "the slot map with the ghost in it")
    for k in keys:
        assert c.call("SET", k, k) == b"OK"
    assert c.call("MGET", *keys) == [k.encode() for k in keys]
    px.wait_stats(lambda st: st["cl"]["cluster_refresh"] >= 1, "the map counted as learnt")


def test_a_node_just_made_a_replica_gets_nothing_meant_for_every_master(env):
    """For about a second after CLUSTER REPLICATE (and after "cluster create")
    the other nodes still list the new replica as a master, of no slot, while
    each says cluster_state:ok. A write meant for every master (FUNCTION LOAD)
    sent there too got READONLY (the CI's cluster test did, once); the proxy
    takes the masters that serve slots, as a client reading CLUSTER SLOTS
    does. Here the replica is stopped before it tells anyone, so the seed's
    view stays stale: FUNCTION LOAD, DBSIZE and SCAN are answered by the three
    masters, none waits for the stopped node."""
    cl = Cluster(env, 3).create(replicas=0)
    late = cl.add_node()
    seed = cl.nodes[0]
    assert cl.call(late, "CLUSTER", "REPLICATE", cl.node_id(seed)) == b"OK"
    os.kill(late.proc.pid, signal.SIGSTOP)
    try:
        flags = [ln.split()[2] for ln in cl.call(seed, "CLUSTER", "NODES").decode().splitlines()
                 if ":%d@" % late.port in ln]
        assert flags == ["master"], "the seed already knew it as a replica: %r" % flags
        px = env.proxy({"cl": {"redis_cluster": True, "timeout": 1000,
                               "servers": ["%s:%d" % (HOST, seed.port)]}})
        px.wait_stats(lambda s: s["cl"]["cluster_nodes"] == 4, "the map with the stopped node")
        c = px.resp()
        lib = "#!lua name=rlib\nredis.register_function('rget', function(k) return redis.call('GET', k[1]) end)"
        assert c.call("FUNCTION", "LOAD", lib) == b"rlib"
        assert c.call("MSET", *[x for i in range(30) for x in ("r%d" % i, "v")]) == b"OK"
        assert c.call("DBSIZE") == 30
        seen, cursor = set(), b"0"
        for _ in range(100):
            cursor, batch = c.call("SCAN", cursor, "COUNT", "100")
            seen.update(batch)
            if cursor == b"0":
                break
        assert seen == {b"r%d" % i for i in range(30)}
        assert c.call("FCALL", "rget", "1", "r7") == b"v"
    finally:
        os.kill(late.proc.pid, signal.SIGCONT)


def test_keyspace_subscribers_subscribe_again_when_the_masters_change(env):
    """A keyspace subscription is made on every master; after a CLUSTER FAILOVER
    the demoted master only replays the new one's deletes and the new master's
    own expiries would never be heard (h70): once the map shows other masters,
    the subscriber is closed, and subscribed again it hears every master."""
    cl, px = start(env, cluster_refresh=300)
    for n in cl.nodes:
        assert cl.call(n, "CONFIG", "SET", "notify-keyspace-events", "Ex") == b"OK"
    sub = px.resp()
    assert sub.call("SUBSCRIBE", "__keyevent@0__:expired") == [b"subscribe", b"__keyevent@0__:expired", 1]
    cl.wait_replicas_synced()
    master = cl.master_of(key_slot("fo0"))
    heir = cl.replica_of(master)
    assert cl.call(heir, "CLUSTER", "FAILOVER") == b"OK"
    wait_until(lambda: cl.call(heir, "ROLE")[0] == b"master", "the replica promoted")
    assert sub.is_closed(timeout=10), "the subscriber was not closed when the masters changed"
    # every node agrees, and the proxy has a map taken since (a node that had not
    # heard of the failover yet would change the masters back and forth)
    cl.wait_ok()
    seen = px.stats()["cl"]["cluster_refresh"]
    px.wait_stats(lambda st: st["cl"]["cluster_refresh"] >= seen + 2, "two maps since every node agreed")
    sub = px.resp()
    assert sub.call("SUBSCRIBE", "__keyevent@0__:expired") == [b"subscribe", b"__keyevent@0__:expired", 1]
    c = px.resp()
    keys = ["fo%d" % i for i in range(30)]
    assert any(cl.master_of(key_slot(k)).port == heir.port for k in keys)
    for k in keys:
        assert c.call("SET", k, "v", "PX", "30") == b"OK"
    got = sorted(sub.read_reply()[2] for _ in keys)
    assert got == sorted(k.encode() for k in keys)


def test_a_subscription_made_while_a_master_is_dead_goes_to_one_that_answers(env):
    """The cluster hands every PUBLISH to every node, so a subscription may live
    on any master. A SUBSCRIBE whose slot's master was killed and not yet
    replaced (a pattern's too, when that master came first) went to it and
    closed its client at once, which redis-py retried in a loop until the map
    named the heir (h70: 16 closes in 3.2 s). Now it is made on a master that
    answers, hears what is published once the heir serves, and its
    UNSUBSCRIBE goes where it was made."""
    cl, px = start(env, failover_hold=20000)
    cl.wait_replicas_synced()
    chan = "news"
    victim = cl.master_of(key_slot(chan))
    heir = cl.replica_of(victim)
    victim.proc.kill()
    held = px.resp(timeout=30)
    held.send(encode_command("GET", chan))  # held for the heir: the proxy knows the node is gone
    px.wait_stats(lambda s: s["cl"]["cluster_held"] >= 1, "the GET held")
    sub = px.resp(timeout=10)
    assert sub.call("SUBSCRIBE", chan) == [b"subscribe", chan.encode(), 1]
    assert sub.call("PSUBSCRIBE", "new*") == [b"psubscribe", b"new*", 2]
    assert held.read_reply() is None  # the heir serves
    assert cl.call(heir, "ROLE")[0] == b"master"
    c = px.resp()
    c.call("PUBLISH", chan, "hi")  # (counts the heir's own subscribers only)
    got = sorted([sub.read_reply(), sub.read_reply()])
    assert got == [[b"message", chan.encode(), b"hi"], [b"pmessage", b"new*", chan.encode(), b"hi"]]
    assert sub.call("UNSUBSCRIBE", chan) == [b"unsubscribe", chan.encode(), 1]
    assert sub.call("PUNSUBSCRIBE", "new*") == [b"punsubscribe", b"new*", 0]
    c.call("PUBLISH", chan, "again")
    assert sub.call("PING") == b"PONG"  # not subscribed anywhere: no message, a plain PONG


def test_requests_for_every_master_wait_for_a_dead_masters_heir(env):
    """Requests for one key wait while their master is dead and not replaced;
    those for every master (SCRIPT LOAD, DBSIZE, PUBSUB NUMSUB, a keyspace
    SUBSCRIBE) failed at once with the dead node's connection error (h70).
    Now they wait too (failover_hold) and are answered by the heir."""
    cl, px = start(env, failover_hold=20000)
    c = px.resp(timeout=30)
    assert c.call("SET", "k", "v") == b"OK"
    cl.wait_replicas_synced()
    victim = cl.master_of(key_slot("k"))
    heir = cl.replica_of(victim)
    # (the heir has the key before its master dies: a link just made may not
    # have streamed it yet, and the GET below would read nil from the heir)
    r = Resp(port=heir.port, timeout=5)
    assert r.call("READONLY") == b"OK"
    wait_until(lambda: r.call("GET", "k") == b"v", "k on the heir")
    r.close()
    victim.proc.kill()
    held = px.resp(timeout=30)
    held.send(encode_command("GET", "k"))  # held for the heir: the proxy knows the node is gone
    px.wait_stats(lambda s: s["cl"]["cluster_held"] >= 1, "the GET held")
    sha = c.call("SCRIPT", "LOAD", "return 1")
    assert cl.call(heir, "ROLE")[0] == b"master"
    assert held.read_reply() == b"v"
    assert sha == b"e0e1f9fabfc9d4800c877a703b823ac0578ff8db"
    assert c.call("SCRIPT", "EXISTS", sha) == [1]
    assert c.call("DBSIZE") == 1
    assert c.call("PUBSUB", "NUMSUB", "x") == [b"x", 0]
    sub = px.resp(timeout=30)
    assert sub.call("SUBSCRIBE", "__keyevent@0__:expired") == [b"subscribe", b"__keyevent@0__:expired", 1]
