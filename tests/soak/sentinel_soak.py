#!/usr/bin/python3
"""Sentinel soak: a sentinel pool with failover_hold under writers that see every
lost write, while planned failovers (some with a binary upgrade or a reload in their
middle), reloads, upgrades, SIGUSR1 and stopped sentinels come one after another.
Fails when an acknowledged write is lost (a read from a master shows an older value,
or a master lacks the last one at the end), a client breaks, a write gets an error,
or the proxy's output has a sanitizer report.

    SOAK_SECONDS=180 /usr/bin/python3 tests/soak/sentinel_soak.py   (make soak-sentinel)

Knobs (environment): SOAK_SECONDS (180), SOAK_SEED (1: the order of the actions),
SOAK_WORKERS (0: one process; N: N workers), NUTCRACKER_BIN, NUTCRACKER_EVENT_BACKEND.

Rig (real processes, tests/e2e): 2 groups of a master and a replica, 3 sentinels
(quorum 2), the proxy started from its own copy of the binary so it can be upgraded.
Load: 4 GET-then-SET writers (failover_util.Writers), 4 MULTI/SET/EXEC writers and 2
WATCH counters (WATCH, GET, MULTI, SET n+1, EXEC), each checking every read against the
last acknowledged write, plus 2 side clients
(pipelines, 10-600 KB values, garbage bytes, half requests). Reads go to the masters:
reads from replicas may lag, which is not a loss. Between every 300 writer requests, one
action: 40% a planned failover of a random group (35% with an upgrade in its middle,
35% with a reload), 20% a reload, 20% an upgrade, 10% SIGUSR1, 10% a sentinel stopped
for 0.3-1.5 s. A failover is followed by 3 s of load: redis-sentinel itself can undo a
failover that comes sooner after the last one (+convert-to-slave from a sentinel that
had not heard of it), and the master it demotes flushes what it acknowledged.
"""

import os
import random
import shutil
import signal
import socket
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "e2e"))

from conftest import (HOST, Closed, Env, Resp, RespError, encode_command, recv_all,  # noqa: E402
                      yaml_conf)
from failover_util import Writers  # noqa: E402
from test_failover_hold import GROUPS, Rig  # noqa: E402
from test_sentinel import force_failover  # noqa: E402
from test_upgrade import Upgradable, read_pid  # noqa: E402

SECONDS = float(os.environ.get("SOAK_SECONDS") or 180)
SEED = int(os.environ.get("SOAK_SEED") or 1)
WORKERS = int(os.environ.get("SOAK_WORKERS") or 0)


class Px:
    """The upgradable proxy as Rig sees a proxy."""

    def __init__(self, up):
        self.up = up
        self.log = up.log

    def port(self, pool=None):
        return self.up.port

    def resp(self, pool=None, timeout=10):
        return Resp(port=self.up.port, timeout=timeout)

    def stats(self):
        import json
        s = socket.create_connection((HOST, self.up.sport), timeout=5)
        try:
            return json.loads(recv_all(s))
        finally:
            s.close()


class SoakRig(Rig):
    """Rig's servers and sentinels, with a proxy that can be upgraded."""

    def __init__(self, env):
        Rig.__init__(self, env, workers=WORKERS, timeout=3000)

    def start_proxy(self, pool, global_, extra_args):
        self.pool, self.global_ = pool, global_
        self.up = Upgradable(self.env, {"alpha": pool}, global_=global_)
        return Px(self.up)

    def reload(self, timeout):
        pool = dict(self.pool, timeout=timeout, listen="%s:%d" % (HOST, self.up.port))
        with open(self.up.conf, "w") as f:
            f.write(yaml_conf({"alpha": pool}, self.global_))
        os.kill(read_pid(self.up.pidfile), signal.SIGHUP)


def txn_writer(port, stop, res, i):
    """MULTI SET EXEC, then GET: the value read is the last acknowledged one, or
    one whose EXEC got an error (its outcome is unknown)."""
    c = Resp(port=port, timeout=20)
    key, acked, unknown, n = "{tx%d}k" % i, None, set(), 0
    try:
        while not stop.is_set():
            got = c.call("GET", key)
            if not isinstance(got, RespError):
                v = got.decode() if got is not None else None
                if v != acked and v not in unknown:
                    res["stale"].append((key, v, acked, time.strftime("%H:%M:%S")))
                if v in unknown:
                    acked = v
                    unknown.clear()
            n += 1
            val = "x%d-%d" % (i, n)
            c.send(encode_command("MULTI") + encode_command("SET", key, val) + encode_command("EXEC"))
            r = [c.read_reply() for _ in range(3)]
            if r[2] == [b"OK"]:
                acked = val
                unknown.clear()
                res["ok"] += 1
            else:
                unknown.add(val)
                res["err"].append(repr(r)[:100])
    except Exception as e:  # a client must never break
        res["failed"].append(repr(e))
    finally:
        c.close()


def watch_writer(port, stop, res, i):
    """An optimistic counter (WATCH, GET, MULTI, SET n+1, EXEC, retried on a nil
    EXEC): the value read is the last acknowledged one (or one whose EXEC got an
    error), so no increment is lost or applied twice. A connection closed in the
    middle (an upgrade lets a client in a transaction go after 1 s) is made
    again, as a client's pool does, and counted."""
    c = Resp(port=port, timeout=20)
    key, acked, unknown = "{wc%d}n" % i, 0, set()
    try:
        while not stop.is_set():
            if c is None:
                c = Resp(port=port, timeout=20)
            try:
                c.send(encode_command("WATCH", key) + encode_command("GET", key))
                r = [c.read_reply() for _ in range(2)]
            except (Closed, OSError):
                res["closed"] += 1
                c = None
                continue
            if isinstance(r[0], RespError) or isinstance(r[1], RespError):
                res["err"].append(repr(r)[:100])
                try:
                    c.call("UNWATCH")  # as a client library resets a failed transaction
                except (Closed, OSError):
                    c = None
                continue
            n = int(r[1] or 0)
            if n != acked and n not in unknown:
                res["stale"].append((key, n, acked, time.strftime("%H:%M:%S")))
            if n in unknown:
                acked = n
                unknown.clear()
            try:
                c.send(encode_command("MULTI") + encode_command("SET", key, n + 1) + encode_command("EXEC"))
                r = [c.read_reply() for _ in range(3)]
            except (Closed, OSError):  # (its outcome is unknown if the EXEC was sent)
                res["closed"] += 1
                unknown.add(n + 1)
                c = None
                continue
            if r[2] == [b"OK"]:
                acked = n + 1
                unknown.clear()
                res["ok"] += 1
            elif r[2] is None:
                res["nil"] += 1
            else:
                unknown.add(n + 1)
                res["err"].append(repr(r)[:100])
    except Exception as e:  # a client must never break
        res["failed"].append(repr(e))
    finally:
        if c is not None:
            c.close()


def print_summaries(tres, wres, counts):
    """The transaction writers', WATCH counters' and side clients' figures."""
    print("transactions: %d acknowledged, %d errors %s, %d stale reads %s" % (
        tres["ok"], len(tres["err"]), sorted(set(tres["err"]))[:3], len(tres["stale"]), tres["stale"][:3]))
    print(watch_summary(wres))
    print("side clients: %d ok, %d errors %s" % (counts["ok"], counts["err"], sorted(counts["msgs"])[:3]))


def watch_summary(res):
    return ("WATCH counters: %d increments, %d nil EXECs (tried again), %d connections closed, %d errors %s, "
            "%d stale reads %s" % (res["ok"], res["nil"], res["closed"], len(res["err"]), sorted(set(res["err"]))[:3],
                                   len(res["stale"]), res["stale"][:3]))


def side_load(port, stop, counts, seed):
    """Pipelines, transactions, pub/sub, large values and rude clients: their
    answers are not checked, only counted."""
    import redis
    rnd = random.Random(seed)
    r = redis.Redis(host=HOST, port=port, socket_timeout=15)
    while not stop.is_set():
        try:
            a = rnd.random()
            if a < 0.4:
                p = r.pipeline(transaction=False)
                for _ in range(rnd.randint(1, 40)):
                    k = "side%d" % rnd.randint(0, 300)
                    rnd.choice([lambda: p.set(k, "v" * rnd.randint(0, 2000)), lambda: p.get(k),
                                lambda: p.incr("n" + k), lambda: p.mget(["side%d" % i for i in range(5)])])()
                p.execute(raise_on_error=False)
            elif a < 0.6:
                with r.pipeline(transaction=True) as p:
                    p.set("{t}a", "1")
                    p.incr("{t}b")
                    p.execute()
            elif a < 0.7:
                ps = r.pubsub()
                ps.subscribe("ch")
                r.publish("ch", "m")
                ps.get_message(timeout=0.1)
                ps.close()
            elif a < 0.8:
                r.set("big%d" % rnd.randint(0, 5), os.urandom(rnd.randint(10000, 600000)))
            else:
                s = socket.create_connection((HOST, port), timeout=2)
                s.sendall(rnd.choice([os.urandom(200), b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$100000\r\nab",
                                      b"*2\r\n$3\r\nGET\r\n$2\r\nk1\r\n" * 2000]))
                s.close()
            counts["ok"] += 1
        except Exception as e:
            counts["err"] += 1
            counts["msgs"].add(repr(e)[:120])
            time.sleep(0.05)


def act(rig, rnd, actions):
    a = rnd.random()
    if a < 0.4:
        g = rnd.choice(GROUPS)
        rig.ready_for_failover(g)
        force_failover(rnd.choice(rig.sentinels), g)
        b = rnd.random()
        time.sleep(rnd.uniform(0, 0.6))
        if b < 0.35:
            rig.up.upgrade_and_wait()
            actions["failover+upgrade"] += 1
        elif b < 0.7:
            rig.reload(rnd.choice([2500, 3000, 3500]))
            actions["failover+reload"] += 1
        else:
            actions["failover"] += 1
        rig.current_master(g)
        time.sleep(3)
    elif a < 0.6:
        rig.reload(rnd.choice([2500, 3000, 3500]))
        actions["reload"] += 1
    elif a < 0.8:
        rig.up.upgrade_and_wait()
        actions["upgrade"] += 1
    elif a < 0.9:
        os.kill(read_pid(rig.up.pidfile), signal.SIGUSR1)
        actions["usr1"] += 1
    else:
        s = rnd.choice(rig.sentinels)
        os.kill(s.proc.pid, signal.SIGSTOP)
        try:
            time.sleep(rnd.uniform(0.3, 1.5))
        finally:
            os.kill(s.proc.pid, signal.SIGCONT)
        actions["sentinel-stop"] += 1


def run(env, problems):
    rig = SoakRig(env)
    w = Writers(rig.up.port, rig.by_client).start()
    stop = threading.Event()
    counts = {"ok": 0, "err": 0, "msgs": set()}
    tres = {"ok": 0, "err": [], "stale": [], "failed": []}
    threads = [threading.Thread(target=side_load, args=(rig.up.port, stop, counts, i), daemon=True)
               for i in range(2)]
    threads += [threading.Thread(target=txn_writer, args=(rig.up.port, stop, tres, i), daemon=True)
                for i in range(4)]
    wres = {"ok": 0, "nil": 0, "closed": 0, "err": [], "stale": [], "failed": []}
    threads += [threading.Thread(target=watch_writer, args=(rig.up.port, stop, wres, i), daemon=True)
                for i in range(2)]
    for t in threads:
        t.start()
    rnd = random.Random(SEED)
    actions = dict.fromkeys(["failover", "failover+upgrade", "failover+reload", "reload", "upgrade",
                             "usr1", "sentinel-stop"], 0)
    t_end = time.time() + SECONDS
    try:
        while time.time() < t_end:
            if not w.wait_ops(300, timeout=60):
                problems.append("the writers stalled: %s" % (w.failed,))
                break
            act(rig, rnd, actions)
        w.wait_ops(300, timeout=60)
    finally:
        stop.set()
        w.stop()
        for t in threads:
            t.join(20)
        rig.up.stop_all()
    print("actions: %s" % actions)
    print("writers: %d requests, %d errors %s, %d stale reads" % (
        w.ops, len(w.errors), sorted({e[3] for e in w.errors})[:5], len(w.stale)))
    print_summaries(tres, wres, counts)
    for what, v in (("writer failed", w.failed), ("transaction writer failed", tres["failed"]),
                    ("stale reads (acknowledged writes lost)", w.stale[:5]),
                    ("transaction stale reads", tres["stale"][:5]),
                    ("write errors", w.errors[:5]), ("transaction errors", tres["err"][:5]),
                    ("WATCH writer failed", wres["failed"]), ("WATCH counter stale reads", wres["stale"][:5]),
                    ("WATCH writer errors", wres["err"][:5])):
        if v:
            problems.append("%s: %s" % (what, v))
    for g in GROUPS:
        lost = w.lost_on(rig.current_master(g), rig.keys[g])
        if lost:
            problems.append("%s: %d acknowledged writes missing on the master: %s" % (g, len(lost), lost[:5]))


def soak_main(run, name):
    """Run run(env, problems) in a temporary directory; 0 when it found nothing."""
    tmp = tempfile.mkdtemp(prefix="nutcracker-%s-soak-" % name)
    env = Env(tmp)
    problems = []
    try:
        run(env, problems)
    except Exception as e:
        problems.append("the soak broke: %r" % (e,))
    finally:
        problems += ["sanitizer report in proxy output:\n" + f for f in env.finish()]
    if problems:
        print("\nSOAK FAILED:\n  " + "\n  ".join(problems))
        print("logs kept in %s" % tmp)
        return 1
    print("\nSOAK PASSED")
    shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(soak_main(run, "sentinel"))
