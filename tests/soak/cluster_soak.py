#!/usr/bin/python3
"""Cluster soak: a redis_cluster pool under pipelined writers that see every lost
write, while slots move (some with a binary upgrade or a reload in the middle of the
move), planned failovers (CLUSTER FAILOVER, some with an upgrade or a reload in their
middle), reloads, upgrades and SIGUSR1 come one after another. Fails when an
acknowledged write is lost (a read through the proxy shows an older value, or a
master lacks the last one at the end), a client breaks, a writer gets an error reply,
or the proxy's output has a sanitizer report.

    SOAK_SECONDS=180 /usr/bin/python3 tests/soak/cluster_soak.py   (make soak-cluster)

Knobs (environment): SOAK_SECONDS (180), SOAK_SEED (1: the order of the actions),
SOAK_WORKERS (0: one process; N: N workers), NUTCRACKER_BIN, NUTCRACKER_EVENT_BACKEND.

Rig (real processes, tests/e2e): 3 masters and 3 replicas (redis-cli --cluster
create), the proxy started from its own copy of the binary so it can be upgraded.
Load: 4 pipelined writers (cluster_util.Load: SETs, GETs and a split MSET per
pipeline), 4 MULTI/SET/EXEC writers, 2 WATCH counters and 2 side clients
(sentinel_soak's; the side clients are counted only). A transaction follows
redirections as one request (README), so an error reply to one fails the soak as a
writer's does; a watched one whose slot moved answers nil and is tried again, so an
error reply to a WATCH counter fails the soak too, as a stale read of it does. Between every
2,000 writer requests, one action: 35% 1-3 slots of the writers' keys moved to
another master (a third of them with an upgrade, a third with a reload between
MIGRATING and the end of the move), 25% a planned failover of a random master (the
same thirds; 3 s of load follow it), 15% a reload, 15% an upgrade, 10% SIGUSR1.
"""

import os
import random
import signal
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "e2e"))
sys.path.insert(0, HERE)

from cluster_util import Cluster, Load, key_slot  # noqa: E402
from conftest import HOST, wait_until, yaml_conf  # noqa: E402
from sentinel_soak import print_summaries, side_load, soak_main, txn_writer, watch_writer  # noqa: E402
from test_upgrade import Upgradable, read_pid  # noqa: E402

SECONDS = float(os.environ.get("SOAK_SECONDS") or 180)
SEED = int(os.environ.get("SOAK_SEED") or 1)
WORKERS = int(os.environ.get("SOAK_WORKERS") or 0)


class ClusterRig:
    def __init__(self, env):
        self.env = env
        self.cl = Cluster(env, 6).create(replicas=1)
        self.cl.wait_replicas_synced()
        self.pool = {"redis_cluster": True, "timeout": 3000, "failover_hold": 10000,
                     "servers": ["%s:%d" % (HOST, x.port) for x in self.cl.nodes[:3]]}
        self.global_ = {"worker_processes": WORKERS} if WORKERS else None
        self.up = Upgradable(env, {"cl": self.pool}, global_=self.global_)

    def reload(self, timeout):
        pool = dict(self.pool, timeout=timeout, listen="%s:%d" % (HOST, self.up.port))
        with open(self.up.conf, "w") as f:
            f.write(yaml_conf({"cl": pool}, self.global_))
        os.kill(read_pid(self.up.pidfile), signal.SIGHUP)

    def middle(self, rnd, actions, what):
        """An upgrade, a reload or nothing while the cluster changes."""
        b = rnd.random()
        if b < 1 / 3.0:
            self.up.upgrade_and_wait()
            actions[what + "+upgrade"] += 1
        elif b < 2 / 3.0:
            self.reload(rnd.choice([2500, 3000, 3500]))
            actions[what + "+reload"] += 1
        else:
            actions[what] += 1

    def move_slots(self, rnd, slots, actions):
        cl = self.cl
        slot = rnd.choice(slots)
        src = cl.master_of(slot)
        dst = rnd.choice([m for m in cl.masters() if m.port != src.port])
        moving = sorted({slot} | {s for s in rnd.sample(slots, rnd.randint(0, 2))
                                  if cl.master_of(s).port == src.port})
        src_id, dst_id = cl.node_id(src), cl.node_id(dst)
        for s in moving:
            assert cl.call(dst, "CLUSTER", "SETSLOT", s, "IMPORTING", src_id) == b"OK"
            assert cl.call(src, "CLUSTER", "SETSLOT", s, "MIGRATING", dst_id) == b"OK"
        self.middle(rnd, actions, "move")
        for s in moving:
            cl.migrate_keys(src, dst, s)
            cl.finish_move(s, dst)
        cl.wait_ok()
        # gossip settles: a manual failover of dst soon after can lose a slot it
        # just took (its replica promoted without it), in redis itself
        time.sleep(1)

    def failover(self, rnd, actions):
        cl = self.cl
        cl.wait_replicas_synced()
        master = rnd.choice(cl.masters())
        heir = cl.replicas_of(master)[0]
        assert cl.call(heir, "CLUSTER", "FAILOVER") == b"OK"
        time.sleep(rnd.uniform(0, 0.5))
        self.middle(rnd, actions, "failover")
        wait_until(lambda: cl.call(heir, "ROLE")[0] == b"master", "the replica promoted", timeout=20)
        cl.wait_ok()
        # a replica asked again within its last election's retry time (2 node
        # timeouts) may take over without a new epoch, and be undone: redis' own
        time.sleep(3)


def act(rig, rnd, slots, actions):
    a = rnd.random()
    if a < 0.35:
        rig.move_slots(rnd, slots, actions)
    elif a < 0.6:
        rig.failover(rnd, actions)
    elif a < 0.75:
        rig.reload(rnd.choice([2500, 3000, 3500]))
        actions["reload"] += 1
    elif a < 0.9:
        rig.up.upgrade_and_wait()
        actions["upgrade"] += 1
    else:
        os.kill(read_pid(rig.up.pidfile), signal.SIGUSR1)
        actions["usr1"] += 1


def run(env, problems):
    rig = ClusterRig(env)
    port = rig.up.port
    load = Load(port, clients=4, keys=200, pipeline=20, prefix="soak", multi=True).start()
    stop = threading.Event()
    counts = {"ok": 0, "err": 0, "msgs": set()}
    tres = {"ok": 0, "err": [], "stale": [], "failed": []}
    threads = [threading.Thread(target=side_load, args=(port, stop, counts, i), daemon=True) for i in range(2)]
    threads += [threading.Thread(target=txn_writer, args=(port, stop, tres, i), daemon=True) for i in range(4)]
    wres = {"ok": 0, "nil": 0, "closed": 0, "err": [], "stale": [], "failed": []}
    threads += [threading.Thread(target=watch_writer, args=(port, stop, wres, i), daemon=True) for i in range(2)]
    for t in threads:
        t.start()
    slots = sorted({key_slot(k) for keys in load.keys for k in keys} |
                   {key_slot("{tx%d}k" % i) for i in range(4)} | {key_slot("{wc%d}n" % i) for i in range(2)})
    rnd = random.Random(SEED)
    actions = dict.fromkeys(["move", "move+upgrade", "move+reload", "failover", "failover+upgrade",
                             "failover+reload", "reload", "upgrade", "usr1"], 0)
    t_end = time.time() + SECONDS
    try:
        while time.time() < t_end and not load.broken:
            load.wait_ops(2000, timeout=60)
            act(rig, rnd, slots, actions)
        load.wait_ops(2000, timeout=60)
    except AssertionError as e:
        problems.append("the writers stalled or broke: %s" % (e,))
    finally:
        stop.set()
        load.stop()
        for t in threads:
            t.join(20)
        rig.up.stop_all()
    print("actions: %s" % actions)
    print("writers: %d requests, %d error replies %s, %d stale reads" % (
        load.ops, len(load.errors), sorted({e[2] for e in load.errors})[:5], len(load.stale)))
    print_summaries(tres, wres, counts)
    for what, v in (("writer broke", load.broken), ("transaction writer failed", tres["failed"]),
                    ("stale reads (acknowledged writes lost)", load.stale[:5]),
                    ("transaction stale reads", tres["stale"][:5]), ("writer error replies", load.errors[:5]),
                    ("transaction errors", tres["err"][:5]), ("WATCH writer failed", wres["failed"]),
                    ("WATCH counter stale reads", wres["stale"][:5]), ("WATCH writer errors", wres["err"][:5])):
        if v:
            problems.append("%s: %s" % (what, v))
    lost = load.verify(rig.cl.direct_get)
    if lost:
        problems.append("%d acknowledged writes missing on the masters: %s" % (len(lost), lost[:5]))


if __name__ == "__main__":
    sys.exit(soak_main(run, "cluster"))
