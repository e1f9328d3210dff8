"""Failovers that lose no acknowledged write (failover_hold), against real
redis-server and redis-sentinel processes: 3 sentinels (quorum 2,
down-after 1000 ms, failover-timeout 3000 ms), two groups of a master and a
replica, and client threads that write continuously and check every value
they read (failover_util.Writers).

  planned:  SENTINEL FAILOVER sent to each sentinel in turn: the leader's
            promotion of the replica stops the group's writes in the proxy
            until the new master is known, then they go there in order
  crash:    kill -9 of a master with failover_hold_on_crash: requests wait for
            the new master instead of failing
  aborted:  the chosen replica is stopped, the leader gives up after its
            failover-timeout: the writes go on to the old master
  expired:  the same with failover_hold below the failover-timeout: the held
            writes get an error, none goes to a master that may be demoted
  undone:   the promoted replica is made a replica again before the proxy
            hears of the switch; the sentinels promote the old master back
            at a newer epoch: the writes go on to it

Each test prints its figures (lost writes, errors, longest wait) with -s.
"""

import os
import signal
import time

import pytest

from conftest import HOST, TWEMPROXY, Resp, RespError, encode_command, free_port, wait_until
from failover_util import Writers
from liveness_util import crash, forwarded, stop_process

from test_sentinel import (force_failover, keys_of, sentinel_pool, sentinel_view,
                           start_sentinels, wait_sentinels_ready)

pytestmark = pytest.mark.skipif(TWEMPROXY, reason="twemproxy 0.5 has no sentinel support")

GROUPS = ("g0", "g1")
CLIENTS = 4


def report(what, w, px, group="g0"):
    st = px.stats()["alpha"][group]
    print("\n%s: %d requests, %d acknowledged keys, %d errors %s, %d stale reads, longest "
          "request %.0f ms; %s held %d released %d expired %d longest hold %d us"
          % (what, w.ops, w.acked_count(), len(w.errors), sorted({e[3] for e in w.errors}),
             len(w.stale), w.max_latency * 1000, group, st["failover_held"],
             st["failover_released"], st["failover_expired"], st["failover_hold_us"]))


# A replica starts its full sync at once (redis 7 waits 5 s by default for
# more replicas to share a diskless transfer): a master turned replica by a
# failover is ready for the next one sooner.
FAST_SYNC = ["--repl-diskless-sync-delay", "0"]


def in_sync(replica):
    """The replica is linked to its master and not loading a full sync: a
    failover that promotes it loses nothing the master acknowledged."""
    info = replica.client().info("replication")
    return (info.get("role") == "slave" and info.get("master_link_status") == "up"
            and not info.get("master_sync_in_progress"))


class Rig:
    """Two groups, each a master and a replica; three sentinels; the proxy."""

    def __init__(self, env, workers=None, extra_args=(), **pool):
        self.env = env
        self.masters = {g: env.redis(args=FAST_SYNC) for g in GROUPS}
        self.replicas = {g: env.redis(args=FAST_SYNC + ["--replicaof", HOST, str(m.port)])
                         for g, m in self.masters.items()}
        for r in self.replicas.values():
            wait_until(lambda: in_sync(r), what="replica in sync")
        self.sentinels = start_sentinels(env, self.masters)
        for g in GROUPS:
            wait_sentinels_ready(self.sentinels, g, 1)
        global_ = {"worker_processes": workers} if workers else None
        self.px = self.start_proxy(sentinel_pool(GROUPS, self.sentinels, **pool), global_,
                                   extra_args)
        keys = keys_of(GROUPS, 400)
        # the first key of each group tells when the proxy knows its master
        wait_until(lambda: all(self.call("SET", keys[g][0], "x") == b"OK" for g in GROUPS),
                 what="discovery of both masters")
        self.keys = {g: keys[g][1:] for g in GROUPS}
        # each client writes keys of both groups: g1 must not notice g0's failover
        self.by_client = [self.keys["g0"][i::CLIENTS] + self.keys["g1"][i::CLIENTS]
                          for i in range(CLIENTS)]

    def start_proxy(self, pool, global_, extra_args):
        """The proxy serving pool "alpha" (a soak's may be upgraded)."""
        return self.env.proxy({"alpha": pool}, verbose=5, global_=global_, extra_args=extra_args)

    def call(self, *args):
        c = self.px.resp(timeout=5)
        try:
            return c.call(*args)
        finally:
            c.close()

    def server_at(self, port):
        for s in list(self.masters.values()) + list(self.replicas.values()):
            if s.port == port:
                return s
        raise AssertionError("no server on port %d" % port)

    def current_master(self, group):
        """The master the sentinels agree on now: the same address at the same
        config epoch, with no failover in progress. The same address alone is
        not agreement: a failover's leader names its old master in SENTINEL
        MASTER until its +switch-master, the others until they hear of it, while
        the proxy may already have been told the promoted one (the leader's
        GET-MASTER-ADDR-BY-NAME gives it once the replicas are being moved)."""
        def agreed():
            views = [sentinel_view(s, group) for s in self.sentinels if s.alive()]
            if any("failover_in_progress" in v["flags"] for v in views):
                return None
            seen = {(int(v["port"]), v["config-epoch"]) for v in views}
            return seen.pop()[0] if len(seen) == 1 else None
        return self.server_at(wait_until(agreed, timeout=15, what="sentinels to agree on %s" % group))

    def failovers(self, group="g0"):
        return self.px.stats()["alpha"][group]["server_failover"]

    def writers(self):
        return Writers(self.px.port(), self.by_client).start()

    def replica(self, group):
        master = self.current_master(group)
        pair = (self.masters[group], self.replicas[group])
        return pair[1] if pair[0] is master else pair[0]

    def ready_for_failover(self, group):
        """The group's replica (the old master after a failover) is in sync
        with the master and every sentinel sees it: a failover can pick it
        without losing what the master has (a replica still loading its full
        sync would lose it whatever the proxy does)."""
        master = self.current_master(group)
        replica = self.replica(group)
        wait_until(lambda: in_sync(replica), timeout=20, what="%s in sync" % replica.addr)
        # after a full sync a master streams nothing until the replica's first
        # ACK (up to 1 s): only an offset that moves says the stream flows
        mark = master.client().info("replication")["master_repl_offset"]
        wait_until(lambda: replica.client().info("replication")["slave_repl_offset"] > mark,
                 timeout=20, what="%s streaming from %s" % (replica.addr, master.addr))
        wait_sentinels_ready(self.sentinels, group, 1)
        return master


def stats_of(px, group="g0"):
    return px.stats()["alpha"][group]


# The stats are a snapshot the proxy takes every 100 ms (-i 100): counters read
# right after the last request may not have it yet.
SNAPSHOT_WAIT = 0.5


def settled_stats(px, group="g0"):
    """group's stats once the snapshot has seen everything done so far."""
    time.sleep(SNAPSHOT_WAIT)
    return stats_of(px, group)


def log_has(px, text):
    with open(px.log) as f:
        return text in f.read()


def check_no_loss(rig, w, what):
    assert not w.failed, w.failed
    assert w.stale == [], "%s: reads saw acknowledged writes lost: %s" % (what, w.stale[:5])
    for g in GROUPS:
        lost = w.lost_on(rig.current_master(g), rig.keys[g])
        assert lost == [], "%s: acknowledged writes lost on %s: %s" % (what, g, lost[:5])


def aborts_logged(rig):
    """Failovers of g0 that ended without a switch: aborted by their leader, or
    undone (the sentinels name the old master again, at a newer epoch)."""
    with open(rig.px.log) as f:
        log = f.read()
    return (log.count("aborted the failover of group 'g0'")
            + log.count("group 'g0': a sentinel names the master in use"))


def planned_failover(rig, w, s, i):
    """SENTINEL FAILOVER of g0 through sentinel s, until the proxy follows a
    switch. redis-sentinel may abort a failover itself (-failover-abort-slave-
    timeout: the promoted replica did not report its new role within the
    failover-timeout, seen on this loaded 2-core machine), or undo it: a
    sentinel that had not heard of it yet turned the promoted replica back
    into a replica of the old master (+convert-to-slave, seen when a failover
    comes 2 s after the last one), and a failover at the next epoch promoted
    the old master again. Either way the proxy sends the held writes to the
    old master (checked by the caller's no-loss and no-error checks), and the
    failover is asked for again, at most 3 times. Returns the old master and
    how many failovers did not switch."""
    for attempt in range(3):
        old = rig.ready_for_failover("g0")
        assert w.wait_ops(200), w.failed
        before, aborts = rig.failovers(), aborts_logged(rig)
        force_failover(s, "g0")
        wait_until(lambda: rig.failovers() == before + 1 or aborts_logged(rig) > aborts,
                   timeout=20, what="the proxy to follow failover %d" % i)
        if rig.failovers() == before + 1:
            return old, attempt
        # undone: the others may name the demoted replica a little longer
        wait_until(lambda: rig.current_master("g0") is old, timeout=20,
                   what="the sentinels to name %s again" % old.addr)
    raise AssertionError("sentinel %d aborted failover %d three times" % (i, i))


def test_planned_failover_led_by_each_sentinel(env):
    """SENTINEL FAILOVER of g0 sent to each sentinel in turn (so each leads one)
    while 4 clients write continuously: no acknowledged write is lost, no
    request gets an error, the writes of g0 were held and released, g1 is
    untouched."""
    rig = Rig(env)
    w = rig.writers()
    aborted = 0
    try:
        for i, s in enumerate(rig.sentinels):
            old, n = planned_failover(rig, w, s, i)
            aborted += n
            wait_until(lambda: rig.current_master("g0") is not old, what="the sentinels to agree")
            assert w.wait_ops(200), w.failed  # writes go on, to the new master
            report("planned failover %d (led by sentinel %d)" % (i, i), w, rig.px)
    finally:
        w.stop()
    check_no_loss(rig, w, "planned failovers")
    assert w.errors == [], w.errors[:10]
    time.sleep(SNAPSHOT_WAIT)
    st = rig.px.stats()["alpha"]
    assert st["g0"]["server_failover"] == 3
    assert st["g0"]["failover_held"] > 0
    assert st["g0"]["failover_released"] == st["g0"]["failover_held"]
    assert st["g0"]["failover_expired"] == 0
    assert 0 < st["g0"]["failover_hold_us"] < 5000000
    assert st["g1"]["server_failover"] == 0 and st["g1"]["failover_held"] == 0
    log = open(rig.px.log).read()
    assert log.count("failover begins (a replica is being promoted)") == 3 + aborted, log[-3000:]
    assert "every write the old master acknowledged is on a replica" in log
    assert log.count("held requests go to") >= 3


def test_master_killed_with_hold_on_crash(env):
    """kill -9 of g0's master with failover_hold_on_crash: only a request
    already written to the dead master may get an error (at most one per client
    connection); every other request waits for the new master and is answered
    by it; nothing acknowledged is lost."""
    rig = Rig(env, failover_hold_on_crash=True)
    old = rig.ready_for_failover("g0")
    new = rig.replica("g0")
    w = rig.writers()
    try:
        assert w.wait_ops(500), w.failed
        before = rig.failovers()
        t_kill = time.monotonic()
        os.kill(old.proc.pid, signal.SIGKILL)
        wait_until(lambda: rig.failovers() == before + 1, timeout=30,
                 what="the proxy to follow the failover")
        # (the leader names the new master to queries before SENTINEL MASTER does)
        wait_until(lambda: rig.current_master("g0") is new, what="the sentinels to agree")
        assert w.wait_ops(500), w.failed
        report("kill -9 of the master", w, rig.px)
    finally:
        w.stop()
    check_no_loss(rig, w, "crash")
    # the requests in flight when the master died, no more
    assert len(w.errors) <= CLIENTS, w.errors
    assert all(e[4] - t_kill < 0.5 for e in w.errors), w.errors
    st = settled_stats(rig.px)
    assert st["failover_held"] >= CLIENTS - len(w.errors)
    assert st["failover_released"] == st["failover_held"] and st["failover_expired"] == 0
    assert 500000 < st["failover_hold_us"] < 5000000  # down-after alone is 1000 ms
    assert log_has(rig.px, "failover begins (master unreachable)")


def test_reads_in_flight_wait_for_the_new_master(env):
    """kill -9 of g0's master while requests the proxy already wrote to it wait
    there unanswered (it was stopped first), with failover_hold_on_crash: the
    reads among them (a GET, the g0 part of an MGET over both groups) are sent
    again to the new master and answered with what the old one acknowledged;
    the write among them gets an error, as the old master may have applied it."""
    rig = Rig(env, failover_hold_on_crash=True)
    old = rig.ready_for_failover("g0")
    new = rig.replica("g0")
    k0, k1 = rig.keys["g0"][:2]
    other = rig.keys["g1"][0]
    assert rig.call("MSET", k0, "v0", k1, "v1", other, "w") == b"OK"
    wait_until(lambda: new.client().get(k1) == b"v1", what="the replica to have the values")
    stop_process(old.proc.pid)
    reader, splitter, writer = (rig.px.resp(timeout=30) for _ in range(3))
    try:
        reader.send(encode_command("GET", k0))
        splitter.send(encode_command("MGET", k1, other))
        forwarded(rig.px, "alpha", "g0", 2)
        writer.send(encode_command("SET", k0, "maybe"))
        forwarded(rig.px, "alpha", "g0", 3)
        crash(old)
        err = writer.read_reply()
        assert isinstance(err, RespError), err
        assert reader.read_reply() == b"v0"
        assert splitter.read_reply() == [b"v1", b"w"]
    finally:
        for c in (reader, splitter, writer):
            c.close()
    wait_until(lambda: rig.current_master("g0") is new, what="the sentinels to agree")
    st = settled_stats(rig.px)
    assert st["failover_held"] >= 2 and st["failover_released"] == st["failover_held"]


def check_master_kept(rig, w, master, what):
    """After a failover of g0 that did not switch: the writes go on, to the old
    master, nothing acknowledged is lost, the sentinels name it."""
    assert w.wait_ops(500), w.failed
    report(what, w, rig.px)
    w.stop()
    check_no_loss(rig, w, what)
    assert rig.current_master("g0") is master


def check_all_released(rig, w):
    """No error, no switch, every held request sent on: the stats of g0."""
    assert w.errors == [], w.errors[:10]
    st = settled_stats(rig.px)
    assert st["server_failover"] == 0
    assert st["failover_held"] > 0 and st["failover_released"] == st["failover_held"]
    assert st["failover_expired"] == 0
    return st


def stop_replica_and_fail_over(rig):
    """SIGSTOP g0's replica, then SENTINEL FAILOVER: the leader picks it (it
    looks fine for a while), sends it SLAVEOF NO ONE, which it never runs,
    and gives up after its failover-timeout (3 s) with
    -failover-abort-slave-timeout. Returns the stopped replica."""
    replica = rig.replica("g0")
    os.kill(replica.proc.pid, signal.SIGSTOP)
    force_failover(rig.sentinels[0], "g0")
    return replica


def test_aborted_failover_releases_to_the_old_master(env):
    """The chosen replica is stopped mid-way and the leader aborts: the writes
    held since the promotion began go to the old master, which stays master;
    no error, nothing lost, no switch."""
    rig = Rig(env)
    master = rig.ready_for_failover("g0")
    w = rig.writers()
    replica = None
    try:
        assert w.wait_ops(200), w.failed
        replica = stop_replica_and_fail_over(rig)
        wait_until(lambda: log_has(rig.px, "failover begins"), what="the hold to begin")
        wait_until(lambda: log_has(rig.px, "failover aborted"), timeout=15, what="the abort")
        check_master_kept(rig, w, master, "aborted failover")
    finally:
        w.stop()
        if replica is not None:
            os.kill(replica.proc.pid, signal.SIGCONT)
    st = check_all_released(rig, w)
    assert st["failover_hold_us"] > 2000000  # until the leader's failover-timeout (3 s)
    # the replica never answered: WAIT said what it could not confirm
    assert log_has(rig.px, "no replica confirmed")


def test_proxy_started_during_a_failover_holds_its_writes(env):
    """A proxy that starts while a sentinel is promoting a replica (a new
    process of a binary upgrade, a worker started again, a proxy started then)
    never heard the promotion announced, and the old master still says master
    until the switch. It asks each sentinel whether it leads a failover
    (SENTINEL MASTER's failover-state) before taking a master: the leader says
    so, and the writes wait for the switch instead of going to the old master,
    which would lose them once it is made a replica."""
    rig = Rig(env)
    rig.ready_for_failover("g0")
    replica = rig.replica("g0")
    leader = rig.sentinels[0]
    keys = rig.keys["g0"][:200]
    w = None
    os.kill(replica.proc.pid, signal.SIGSTOP)  # it runs SLAVEOF NO ONE once let go
    try:
        force_failover(leader, "g0")
        wait_until(lambda: sentinel_view(leader, "g0").get("failover-state") == "wait_promotion",
                   what="the leader to wait for the promotion")
        px = env.proxy({"beta": sentinel_pool(GROUPS, rig.sentinels)}, verbose=5)
        w = Writers(px.port(), [keys[i::CLIENTS] for i in range(CLIENTS)]).start()
        wait_until(lambda: px.stats()["beta"]["g0"]["failover_held"] > 0, timeout=3,
                   what="the new proxy to hold its writes")
    finally:
        os.kill(replica.proc.pid, signal.SIGCONT)
    try:
        wait_until(lambda: px.stats()["beta"]["g0"]["server_failover"] == 1, timeout=20,
                   what="the new proxy to follow the switch")
        assert w.wait_ops(300), w.failed
    finally:
        w.stop()
    assert rig.current_master("g0") is replica
    assert w.lost_on(replica, keys) == [] and w.stale == []
    assert w.errors == [], w.errors[:10]
    time.sleep(SNAPSHOT_WAIT)
    st = px.stats()["beta"]["g0"]
    assert st["failover_released"] == st["failover_held"] > 0
    with open(px.log) as f:
        assert "sentinel '%s' leads a failover of group 'g0'" % leader.addr in f.read()


def test_transactions_wait_for_the_new_master(env):
    """MULTI ... EXEC during a planned failover: the EXEC (the transaction's
    writes, sent as one MULTI ... EXEC) waits for the switch like a write, and
    runs on the new master; a transaction with WATCH, whose watch was on the
    old master, is answered as aborted (a null EXEC, as when a watched key
    changes) without running; its retry's WATCH, sent during the hold, waits
    for the new master, so the retry runs there (no loop of null EXECs)."""
    rig = Rig(env)
    rig.ready_for_failover("g0")
    replica = rig.replica("g0")
    k1, k2, k3 = rig.keys["g0"][:3]
    c, watcher = rig.px.resp(), rig.px.resp()
    assert watcher.call("WATCH", k3) == b"OK"
    os.kill(replica.proc.pid, signal.SIGSTOP)  # it runs SLAVEOF NO ONE once let go
    try:
        force_failover(rig.sentinels[0], "g0")
        wait_until(lambda: log_has(rig.px, "failover begins"), what="the hold to begin")
        c.send(encode_command("MULTI") + encode_command("SET", k1, "t1") +
               encode_command("INCR", k2) + encode_command("EXEC"))
        for want in (b"OK", b"QUEUED", b"QUEUED"):
            assert c.read_reply() == want
        for cmd in (("MULTI",), ("SET", k3, "w"), ("EXEC",)):
            watcher.send(encode_command(*cmd))
        assert [watcher.read_reply() for _ in range(3)] == [b"OK", b"QUEUED", None]
        wait_until(lambda: stats_of(rig.px)["failover_held"] > 0, what="the EXEC held")
        watcher.send(encode_command("WATCH", k3) + encode_command("MULTI") + encode_command("SET", k3, "w2") +
                     encode_command("EXEC"))
    finally:
        os.kill(replica.proc.pid, signal.SIGCONT)
    assert c.read_reply() == [b"OK", 1]  # once the switch is taken
    assert [watcher.read_reply() for _ in range(4)] == [b"OK", b"OK", b"QUEUED", [b"OK"]]
    wait_until(lambda: rig.failovers() == 1, timeout=20, what="the switch")
    assert rig.current_master("g0") is replica
    r = replica.client()
    assert r.get(k1) == b"t1" and r.get(k2) == b"1" and r.get(k3) == b"w2"
    c.close()
    watcher.close()


def test_watch_after_a_failover_goes_to_the_new_master(env):
    """A client's own connection of an earlier WATCH is open to the old master:
    at the switch it is closed, so the client's next WATCH ... EXEC runs on the
    new master (on the old one, before it is demoted, its write would be
    acknowledged, then dropped)."""
    rig = Rig(env)
    rig.ready_for_failover("g0")
    replica = rig.replica("g0")
    k = rig.keys["g0"][0]
    c = rig.px.resp()
    assert c.call("WATCH", k) == b"OK" and c.call("UNWATCH") == b"OK"  # its connection stays
    force_failover(rig.sentinels[0], "g0")
    wait_until(lambda: rig.failovers() == 1, timeout=20, what="the switch")
    assert c.call("WATCH", k) == b"OK"
    assert c.call("MULTI") == b"OK" and c.call("SET", k, "after") == b"QUEUED"
    assert c.call("EXEC") == [b"OK"]
    assert replica.client().get(k) == b"after"
    c.close()


def test_hold_that_expires_answers_errors(env):
    """failover_hold (1000 ms) below the sentinels' failover-timeout (3000 ms):
    the held writes get an error when it runs out (none of them is sent to
    the old master, which the sentinels might still demote), later writes go
    on to the old master."""
    mport = free_port()
    rig = Rig(env, failover_hold=1000, extra_args=["--metrics-port", str(mport)])
    master = rig.ready_for_failover("g0")
    w = rig.writers()
    replica = None
    try:
        assert w.wait_ops(200), w.failed
        # a writer's first request (or the rig's) may have waited for the
        # master's discovery: held and released then
        before = settled_stats(rig.px)
        released = before["failover_released"]
        replica = stop_replica_and_fail_over(rig)
        wait_until(lambda: stats_of(rig.px)["failover_expired"] > 0, timeout=15,
                 what="the hold to run out")
        assert w.wait_ops(500), w.failed
        report("expired hold", w, rig.px)
        w.stop()
        check_no_loss(rig, w, "expired hold")
        assert rig.current_master("g0") is master
        # read while the chosen replica is still stopped: once it runs again the
        # sentinels' failover may go through, and the group switch
        st = settled_stats(rig.px)
        import urllib.request
        url = "http://%s:%d/metrics" % (HOST, mport)
        body = urllib.request.urlopen(url, timeout=5).read().decode()
    finally:
        w.stop()
        if replica is not None:
            os.kill(replica.proc.pid, signal.SIGCONT)
    msg = "ERR failover of group 'g0' still in progress after failover_hold (1000 ms)"
    assert w.errors and all(e[1] == "SET" and e[3] == msg for e in w.errors), w.errors
    assert st["failover_expired"] == before["failover_expired"] + len(w.errors)
    assert st["failover_released"] == released
    # the hold ends failover_hold after it began: a write held later waits less
    assert 0 < st["failover_hold_us"] <= 1100000
    assert st["server_failover"] == 0
    lab = '{pool="alpha",server="g0"}'
    for line in ("nutcracker_server_failover_expired_total%s %d" % (lab, st["failover_expired"]),
                 "nutcracker_server_failover_held_total%s %d"
                 % (lab, before["failover_held"] + len(w.errors)),
                 "nutcracker_server_failover_released_total%s %d" % (lab, released),
                 "nutcracker_server_failover_hold_us%s %d" % (lab, st["failover_hold_us"]),
                 "# TYPE nutcracker_server_failover_hold_us gauge"):
        assert line in body, line


def promoted(sub):
    """Whether the sentinel behind pubsub sub published +promoted-slave."""
    m = sub.get_message(timeout=0.1)
    return m is not None and m["type"] == "message"


def test_undone_failover_releases_to_the_old_master(env):
    """What redis-sentinel does when one sentinel has not heard of a failover
    yet (+convert-to-slave, seen in this module's planned failovers): the
    replica the leader just promoted is made a replica of the old master again
    before the switch reaches the proxy. The proxy does not take it (ROLE
    says slave); the sentinels see their new master report a replica, fail it
    over and promote the old master again at a newer epoch: that ends the
    hold, the held writes go to the old master. No error, nothing lost, no
    switch. The proxy is paused (SIGSTOP) from before the failover until the
    replica is demoted, so that it cannot take the replica in between: on its
    resumption it hears the whole failover at once, with its clients' writes."""
    rig = Rig(env, failover_hold=15000)
    master = rig.ready_for_failover("g0")
    replica = rig.replica("g0")
    leader = rig.sentinels[0]
    import redis
    sub = redis.Redis(host=HOST, port=leader.port, socket_timeout=10).pubsub()
    sub.subscribe("+promoted-slave")
    wait_until(lambda: sub.get_message(timeout=0.1) is not None, what="the subscription")
    w = rig.writers()
    paused = False
    try:
        assert w.wait_ops(200), w.failed
        os.kill(rig.px.proc.pid, signal.SIGSTOP)
        paused = True
        force_failover(leader, "g0")
        wait_until(lambda: promoted(sub), timeout=15, what="the promotion")
        assert replica.client().replicaof(HOST, master.port)
        os.kill(rig.px.proc.pid, signal.SIGCONT)
        paused = False
        wait_until(lambda: log_has(rig.px, "a sentinel names the master in use"), timeout=30,
                   what="the sentinels to promote the old master again")
        check_master_kept(rig, w, master, "undone failover")
    finally:
        if paused:
            os.kill(rig.px.proc.pid, signal.SIGCONT)
        w.stop()
        sub.close()
    check_all_released(rig, w)
    log = open(rig.px.log).read()
    assert "ROLE says it is not a master" in log, log[-3000:]
    assert "failover ended on the same master after" in log, log[-3000:]


def test_planned_failover_in_worker_mode(env):
    """Two worker processes, each with its own sentinel client and hold: a
    planned failover loses nothing and shows no error; the stats port sums
    the workers' failover counters."""
    rig = Rig(env, workers=2)
    w = rig.writers()
    try:
        rig.ready_for_failover("g0")
        assert w.wait_ops(300), w.failed
        force_failover(rig.sentinels[1], "g0")
        wait_until(lambda: rig.failovers() == 2, timeout=20, what="both workers to switch")
        assert w.wait_ops(300), w.failed
        report("planned failover, 2 workers", w, rig.px)
    finally:
        w.stop()
    check_no_loss(rig, w, "worker mode")
    assert w.errors == [], w.errors[:10]
    st = settled_stats(rig.px)
    assert st["failover_held"] >= CLIENTS and st["failover_released"] == st["failover_held"]


def test_reload_during_a_hold(env):
    """SIGHUP while writes are held (the chosen replica stopped, the leader
    not yet given up): the new pool takes the group over with what it holds,
    its own sentinel client hears the leader's abort, and the writes go on to
    the old master: no error, nothing lost."""
    rig = Rig(env)
    master = rig.ready_for_failover("g0")
    w = rig.writers()
    replica = None
    try:
        assert w.wait_ops(200), w.failed
        # a writer's first request may have waited for the master's discovery
        released = settled_stats(rig.px)["failover_released"]
        replica = stop_replica_and_fail_over(rig)
        wait_until(lambda: stats_of(rig.px)["failover_held"] > 0, what="writes held")
        with open(rig.px.conf) as f:
            text = f.read()
        with open(rig.px.conf, "w") as f:
            f.write(text.replace("  redis: true\n", "  redis: true\n  backlog: 256\n"))
        os.kill(rig.px.proc.pid, signal.SIGHUP)
        wait_until(lambda: rig.px.stats()["config_generation"] == 2, what="the reload")
        assert stats_of(rig.px)["failover_released"] == released  # still held
        wait_until(lambda: log_has(rig.px, "failover aborted"), timeout=15, what="the abort")
        assert w.wait_ops(500), w.failed
        report("reload during a hold", w, rig.px)
        w.stop()
        check_no_loss(rig, w, "reload during a hold")
        assert rig.current_master("g0") is master
    finally:
        w.stop()
        if replica is not None:
            os.kill(replica.proc.pid, signal.SIGCONT)
    assert w.errors == [], w.errors[:10]
    st = settled_stats(rig.px)
    assert st["failover_held"] > 0 and st["failover_released"] == st["failover_held"]
    assert log_has(rig.px, "takes over from pool 'alpha': 4 clients, 2 of 2 servers kept")


def buffer_limited_rig(env, limit, failover_timeout_ms):
    """A rig whose proxy has --buffer-limit=limit, g0 ready for a failover that
    the sentinels' leader gives up after failover_timeout_ms."""
    rig = Rig(env, extra_args=["--buffer-limit=%d" % limit])
    rig.ready_for_failover("g0")
    for s in rig.sentinels:
        c = Resp(port=s.port, timeout=2)
        assert c.call("SENTINEL", "SET", "g0", "failover-timeout", str(failover_timeout_ms)) == b"OK"
        c.close()
    return rig


def test_held_requests_count_against_the_buffer_limit(env):
    """Held requests keep their bytes, and those count against --buffer-limit:
    4 clients each pipeline 12 SETs of 1 MB to g0 during a hold (48 MB, the
    limit is 24 MB): the oldest held ones are answered with an error, the
    others go to the old master once the failover is aborted, in order."""
    mb = 1 << 20
    # the 48 MB must reach the proxy before the leader gives up (then what is
    # not held yet goes to the old master at once): 4.5 s, below failover_hold
    rig = buffer_limited_rig(env, 24 * mb, 4500)
    key = rig.keys["g0"][0]
    # a request made while the proxy looked for g0's master at start was held
    # and released then: count from here
    before = settled_stats(rig.px)
    replica = stop_replica_and_fail_over(rig)
    try:
        wait_until(lambda: log_has(rig.px, "failover begins"), what="the hold to begin")
        clients = [Resp(port=rig.px.port(), timeout=30) for _ in range(4)]
        for i, c in enumerate(clients):
            c.send(b"".join(encode_command("SET", key, b"%d-%d-" % (i, n) + b"v" * mb)
                            for n in range(12)))
        wait_until(lambda: stats_of(rig.px)["failover_expired"] > 0, what="held requests shed")
        replies = [[c.read_reply() for _ in range(12)] for c in clients]
    finally:
        os.kill(replica.proc.pid, signal.SIGCONT)
    shed = RespError("ERR held request over the proxy's buffer limit")
    errors = sum(r.count(shed) for r in replies)
    for r in replies:
        # the oldest go first: a client's errors come before its successes
        assert all(x in (shed, b"OK") for x in r), r
        assert r == sorted(r, key=lambda x: x == b"OK"), r
    print("\nbuffer limit during a hold: %d of 48 held SETs of 1 MB shed, %d sent on" %
          (errors, 48 - errors))
    assert 24 <= errors < 48
    released = before["failover_released"] + 48 - errors
    wait_until(lambda: stats_of(rig.px)["failover_released"] == released,
               what=lambda: "failover_released %d (stats: %s)" % (released, stats_of(rig.px)))
    assert stats_of(rig.px)["failover_expired"] == before["failover_expired"] + errors
    assert rig.px.alive()


def test_held_requests_that_fit_the_buffer_limit_are_all_sent_on(env):
    """Held SETs of 100 KB just over 8 MB in all, the limit 8.5 MB: held, they
    fit. They go to the old master when the failover is aborted. Queued request
    by request, the connection's buffer rounded up to 9 MB, the buffers passed
    the limit and the connection with all of them was reset: each got an error."""
    mib = 1 << 20
    rig = buffer_limited_rig(env, 8 * mib + mib // 2, 3000)
    key = rig.keys["g0"][0]
    sets, total = [], 0
    while total <= 8 * mib:
        sets.append(encode_command("SET", key, b"%03d-" % len(sets) + b"v" * 100000))
        total += len(sets[-1])
    n = len(sets)
    before = settled_stats(rig.px)
    replica = stop_replica_and_fail_over(rig)
    try:
        wait_until(lambda: log_has(rig.px, "failover begins"), what="the hold to begin")
        # a new client has at most 16 requests in flight: 10 each
        clients = [Resp(port=rig.px.port(), timeout=30) for _ in range((n + 9) // 10)]
        for i, c in enumerate(clients):
            c.send(b"".join(sets[i * 10:i * 10 + 10]))
        wait_until(lambda: stats_of(rig.px)["failover_held"] == before["failover_held"] + n,
                   what="%d held" % n)
        wait_until(lambda: log_has(rig.px, "failover aborted"), timeout=15, what="the abort")
        replies = [c.read_reply() for i, c in enumerate(clients) for _ in sets[i * 10:i * 10 + 10]]
    finally:
        os.kill(replica.proc.pid, signal.SIGCONT)
    assert replies == [b"OK"] * n, [r for r in replies if r != b"OK"][:3]
    assert log_has(rig.px, "%d held requests go to" % n)
    assert not log_has(rig.px, "over the buffer limit")
    # each client's SETs in its order: the value left is one client's last
    lasts = [b"%03d-" % (min(i * 10 + 10, n) - 1) + b"v" * 100000 for i in range(len(clients))]
    assert clients[0].call("GET", key) in lasts
    wait_until(lambda: stats_of(rig.px)["failover_released"] == before["failover_released"] + n,
               what="%d released" % n)
    assert stats_of(rig.px)["failover_expired"] == before["failover_expired"]


def test_every_sentinel_down_serves_on(env):
    """Every sentinel stops for 5 s while clients write: the groups keep their
    masters, no request gets an error (the subscriptions are retried every
    heartbeat)."""
    rig = Rig(env)
    w = rig.writers()
    try:
        assert w.wait_ops(300), w.failed
        stopped = time.monotonic()
        for s in rig.sentinels:
            s.stop()
        for s in rig.sentinels:
            wait_until(lambda: log_has(rig.px, "sentinel '%s' (subscription link)" % s.addr),
                     what="the subscription to %s to fail" % s.addr)
        while time.monotonic() - stopped < 5:  # the outage lasts 5 s, writes go on
            assert w.wait_ops(200), w.failed
        report("every sentinel down", w, rig.px)
    finally:
        w.stop()
    assert not w.failed and w.stale == [] and w.errors == [], (w.failed, w.stale, w.errors)
    for g in GROUPS:
        assert w.lost_on(rig.masters[g], rig.keys[g]) == []


def sentinels_set(rig, group, option, value):
    """SENTINEL SET on every sentinel of the rig."""
    for s in rig.sentinels:
        sc = Resp(port=s.port, timeout=5)
        assert sc.call("SENTINEL", "SET", group, option, value) == b"OK"
        sc.close()


def test_a_hold_on_the_sentinels_word_ends_when_they_take_it_back(env):
    """failover_hold_on_crash: a majority of sentinels says +sdown of a master
    that only stalled, then -sdown when it answers again, and no failover
    comes (quorum 3 with one sentinel stopped: no +odown). The requests held
    meanwhile go to that master at once, not at the end of failover_hold (h44:
    every client waited the whole 6 s)."""
    rig = Rig(env, failover_hold_on_crash=True, failover_hold=6000)
    master = rig.ready_for_failover("g0")
    sentinels_set(rig, "g0", "quorum", "3")
    stop_process(rig.sentinels[2].proc.pid)
    key = rig.keys["g0"][0]
    c = rig.px.resp(timeout=15)
    try:
        stop_process(master.proc.pid)
        wait_until(lambda: log_has(rig.px, "failover begins (master unreachable)"), timeout=10,
                   what="the hold begun on two sentinels' +sdown")
        t0 = time.monotonic()
        c.send(encode_command("SET", key, "after"))
        time.sleep(0.3)
        os.kill(master.proc.pid, signal.SIGCONT)
        assert c.read_reply() == b"OK"
        waited = time.monotonic() - t0
    finally:
        os.kill(master.proc.pid, signal.SIGCONT)
        os.kill(rig.sentinels[2].proc.pid, signal.SIGCONT)
        c.close()
    assert log_has(rig.px, "the sentinels see the master up again"), rig.px.log_tail()
    # -sdown comes within about a second of the master answering; failover_hold is 6 s
    assert waited < 3.5, waited
    assert rig.call("GET", key) == b"after"
    assert stats_of(rig.px)["failover_expired"] == 0


def test_a_master_restarted_before_the_sentinels_see_it_down_gets_what_waited(env):
    """failover_hold_on_crash: a master restarted in well under the sentinels'
    down-after-milliseconds starts no failover. The requests that met its
    refusal waited until failover_hold and got an error (nothing said it was
    back); now the proxy tries it every 50 ms and sends them once it answers."""
    rig = Rig(env, failover_hold_on_crash=True, failover_hold=8000)
    master = rig.ready_for_failover("g0")
    sentinels_set(rig, "g0", "down-after-milliseconds", "30000")
    key = rig.keys["g0"][0]
    c = rig.px.resp(timeout=15)
    try:
        assert c.call("SET", key, "before") == b"OK"
        master.stop()
        t0 = time.monotonic()
        c.send(encode_command("SET", key, "after"))
        wait_until(lambda: log_has(rig.px, "failover begins (master unreachable)"), timeout=5,
                   what="the hold begun on the refusal")
        time.sleep(0.3)
        env.redis(args=FAST_SYNC, port=master.port)
        assert c.read_reply() == b"OK"
        waited = time.monotonic() - t0
    finally:
        c.close()
    assert waited < 3.0, waited
    assert log_has(rig.px, "the master answers again, no failover began"), rig.px.log_tail()
    assert rig.call("GET", key) == b"after"
    assert rig.failovers() == 0
    st = stats_of(rig.px)
    assert st["failover_expired"] == 0 and st["failover_released"] >= 1, st
