#!/usr/bin/python3
"""Soak: mixed load plus backend faults against the proxy for SOAK_SECONDS, sampling
the proxy's RSS (VmRSS) and open fd count (/proc/<pid>/fd); fails when either grows
beyond a tolerance after the warm-up, when a request goes unanswered or gets a wrong
answer, or when the proxy dies.  Prints a table of the samples and a summary.

    SOAK_SECONDS=60 /usr/bin/python3 tests/soak/soak.py      (make soak)

Knobs (environment): SOAK_SECONDS (60), SOAK_SAMPLE_SECONDS (5), SOAK_WARMUP_SECONDS
(min(60, max(10, 20% of the run))), SOAK_FAULT_SECONDS (6: one fault per period),
SOAK_RSS_TOL_MB (16; not judged for a sanitizer build, whose quarantine holds freed
memory), SOAK_FD_TOL (16), SOAK_WORKERS (0: one process; N: the master/worker mode with
N workers, RSS and fds summed over master and workers), NUTCRACKER_BIN (./nutcracker).

Load (real clients, tests/e2e/hostile_util.py): redis-py pipelines of SET/GET/MGET/DEL
on a 3-server redis pool and on a pool whose second member is a misbehaving backend
(garbage / half replies / closes), pymemcache on a 2-server memcached pool with
auto_eject_hosts, a client of 256 KB values, and a connection churner.  Faults, in
turn: SIGSTOP a redis / memcached for 1.5 s, SIGKILL one and restart it, SIGTERM one
and restart it, and a configuration reload (SIGHUP with the redis pool's timeout changed):
clients must not notice it.  Everything started is stopped by pid at the end.
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

from conftest import HOST, Env, encode_command, mc_pool, redis_pool, spread_keys, yaml_conf  # noqa: E402
from fakeserver import MisbehavingServer  # noqa: E402
from hostile_util import (MB, SANITIZED, LoadClient, abort, fd_count,  # noqa: E402
                          redis_client, rss_bytes)


def env_num(name, default):
    v = os.environ.get(name)
    return float(v) if v not in (None, "") else default


SECONDS = env_num("SOAK_SECONDS", 60)
SAMPLE = env_num("SOAK_SAMPLE_SECONDS", 5)
WARMUP = env_num("SOAK_WARMUP_SECONDS", min(60.0, max(10.0, 0.2 * SECONDS)))
FAULT_PERIOD = env_num("SOAK_FAULT_SECONDS", 6)
RSS_TOL = env_num("SOAK_RSS_TOL_MB", 16) * MB
FD_TOL = int(env_num("SOAK_FD_TOL", 16))
WORKERS = int(env_num("SOAK_WORKERS", 0))
TIMEOUT_MS = 1000
REPLY_BOUND = TIMEOUT_MS / 1000.0 + 4.0


class BigValues:
    """SET then GET of 256 KB values (own keys), one pair every 200 ms."""

    def __init__(self, port):
        self.port = port
        self.sent = self.answered = 0
        self.failures = []
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        import redis
        rng = random.Random(7)  # value sizes vary by up to 1 KB
        cl = redis_client(self.port, REPLY_BOUND + 5)
        i = 0
        while not self._stop.is_set():
            k = "soak:big:%d" % (i % 8)
            v = (k + "=").encode() + bytes([97 + i % 26]) * (256 * 1024 + rng.randrange(1024))
            for op in ("set", "get"):
                self.sent += 1
                try:
                    r = cl.set(k, v) if op == "set" else cl.get(k)
                    self.answered += 1
                    if op == "set" and r is not True or op == "get" and r not in (v, None) and not (
                            isinstance(r, bytes) and r.startswith((k + "=").encode())):
                        self.failures.append("%s %s -> %r" % (op, k, r if r is None else r[:40]))
                except redis.exceptions.ResponseError as e:
                    self.answered += 1
                    if not str(e).startswith("ERR "):
                        self.failures.append("%s %s: %s" % (op, k, e))
                except Exception as e:
                    self.failures.append("%s %s: %s: %s" % (op, k, type(e).__name__, e))
                    cl.close()
                    cl = redis_client(self.port, REPLY_BOUND + 5)
            i += 1
            self._stop.wait(0.2)
        cl.close()

    def start(self):
        self._t.start()
        return self

    def stop(self):
        self._stop.set()
        self._t.join(REPLY_BOUND * 3 + 10)


class Churner:
    """Opens and drops a connection every 20 ms, alternating pools and ways:
    PING/mn answered then closed; closed at once; half a request then RST."""

    def __init__(self, ports):
        self.ports = ports
        self.opened = self.answered = 0
        self.failures = []
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        i = 0
        while not self._stop.is_set():
            kind = "r" if i % 2 == 0 else "m"
            way = (i // 2) % 3
            try:
                s = socket.create_connection((HOST, self.ports[kind]), timeout=REPLY_BOUND)
                self.opened += 1
                if way == 0:
                    # answered by the proxy itself (memcached's version goes to a server)
                    s.sendall(encode_command("PING") if kind == "r" else b"mn\r\n")
                    b = s.recv(64)
                    if b != (b"+PONG\r\n" if kind == "r" else b"MN\r\n"):
                        self.failures.append("%s ping -> %r" % (kind, b))
                    else:
                        self.answered += 1
                    s.close()
                elif way == 1:
                    s.close()
                else:
                    s.sendall(b"*2\r\n$3\r\nGET\r\n$4\r\nab" if kind == "r" else b"get ab")
                    abort(s)
            except OSError as e:
                self.failures.append("%s: %s" % (kind, e))
            i += 1
            self._stop.wait(0.02)

    def start(self):
        self._t.start()
        return self

    def stop(self):
        self._stop.set()
        self._t.join(REPLY_BOUND * 2 + 10)


def proxy_pids(px):
    """The proxy's processes: itself and, in the master/worker mode, its workers."""
    pids = [px.proc.pid]
    try:
        with open("/proc/%d/task/%d/children" % (px.proc.pid, px.proc.pid)) as f:
            pids += [int(x) for x in f.read().split()]
    except OSError:
        pass
    return pids


def total(fn, pids):
    n = 0
    for p in pids:
        try:
            n += fn(p)
        except (OSError, ValueError):
            pass
    return n


def reload_conf(px, pools, n):
    """Rewrite the file with the redis pool's timeout changed and SIGHUP the proxy."""
    pools = {k: dict(v) for k, v in pools.items()}
    for name, pool in pools.items():
        pool["listen"] = "%s:%d" % (HOST, px.port(name))
    pools["r"]["timeout"] = TIMEOUT_MS + (n % 2)
    with open(px.conf, "w") as f:
        f.write(yaml_conf(pools, {"worker_processes": WORKERS} if WORKERS else None))
    os.kill(px.proc.pid, signal.SIGHUP)


def proxy_stat(px, key):
    try:
        return px.stats()[key]
    except Exception:
        return -1


def main():
    tmp = tempfile.mkdtemp(prefix="nutcracker-soak-")
    env = Env(tmp)
    bad = MisbehavingServer("redis", seed=99).start()
    stopped = set()
    ok = False
    try:
        rs = env.redises(3)
        ms = env.memcacheds(2)
        r_ok = env.redis()
        pools = {
            "r": redis_pool(rs, timeout=TIMEOUT_MS),
            "m": mc_pool(ms, timeout=TIMEOUT_MS, auto_eject_hosts=True, server_failure_limit=2,
                         server_retry_timeout=1000),
            "rbad": redis_pool([r_ok, bad.addr], timeout=TIMEOUT_MS),
        }
        px = env.proxy(pools, global_={"worker_processes": WORKERS} if WORKERS else None)
        if WORKERS:
            time.sleep(1.0)  # the workers bind after the master started
        pids = proxy_pids(px)
        sock_timeout = REPLY_BOUND + 5
        loads = [
            LoadClient(px.port("r"), "redis", spread_keys("soak:r1", 64), sock_timeout, seed=1, name="r-1"),
            LoadClient(px.port("r"), "redis", spread_keys("soak:r2", 64), sock_timeout, seed=2, name="r-2",
                       depth=32, pace=0.01),
            LoadClient(px.port("m"), "mc", spread_keys("soak:m1", 64), sock_timeout, seed=3, name="m-1"),
            LoadClient(px.port("rbad"), "redis", spread_keys("soak:b1", 32), sock_timeout, seed=4,
                       name="rbad-1", pace=0.02),
        ]
        big = BigValues(px.port("r"))
        churn = Churner({"r": px.port("r"), "m": px.port("m")})

        def restart(lst, i):
            old = lst[i]
            lst[i] = env.redis(port=old.port) if old.kind == "redis" else env.memcached(port=old.port)

        faults = [
            ("SIGSTOP redis", lambda n: rs[n % 3], "stop"),
            ("SIGKILL+restart redis", lambda n: rs[n % 3], "kill"),
            ("SIGSTOP memcached", lambda n: ms[n % 2], "stop"),
            ("SIGKILL+restart memcached", lambda n: ms[n % 2], "kill"),
            ("SIGTERM+restart redis", lambda n: rs[n % 3], "term"),
            ("reload", None, "reload"),
        ]

        print("soak: %s for %ds (warm-up %ds, sample every %ds, a fault every %ds); proxy pids %s; logs in %s"
              % (px.proc.args[0], SECONDS, WARMUP, SAMPLE, FAULT_PERIOD, pids, tmp), flush=True)
        print("%7s %8s %5s %6s %9s %8s  %s" % ("t(s)", "rss(MB)", "fds", "conns", "requests", "errors", "fault"),
              flush=True)
        for c in loads:
            c.start()
        big.start()
        churn.start()
        samples = []
        t0 = time.monotonic()
        next_sample = t0 + SAMPLE
        next_fault = t0 + 2.0
        nfault = 0
        current = "-"
        undo = None  # (time, callable)
        while True:
            now = time.monotonic()
            if now - t0 >= SECONDS:
                break
            if undo and now >= undo[0]:
                undo[1]()
                undo = None
                current = "-"
            if undo is None and now >= next_fault and now - t0 < SECONDS - 3:
                name, pick, how = faults[nfault % len(faults)]
                if how == "reload":
                    reload_conf(px, pools, nfault)
                    current = name
                    nfault += 1
                    next_fault = now + FAULT_PERIOD
                    undo = (now + 1.5, lambda: None)
                    continue
                srv = pick(nfault)  # the servers rotate: 5 faults, 3 redis, 2 memcached
                lst, idx = (rs, rs.index(srv)) if srv in rs else (ms, ms.index(srv))
                if how == "stop":
                    os.kill(srv.proc.pid, signal.SIGSTOP)
                    stopped.add(srv)

                    def _cont(srv=srv):
                        os.kill(srv.proc.pid, signal.SIGCONT)
                        stopped.discard(srv)
                    undo = (now + 1.5, _cont)
                else:
                    srv.proc.send_signal(signal.SIGKILL if how == "kill" else signal.SIGTERM)
                    srv.proc.wait(10)
                    undo = (now + 1.5, lambda lst=lst, idx=idx: restart(lst, idx))
                current = "%s :%d" % (name, srv.port)
                nfault += 1
                next_fault = now + FAULT_PERIOD
            if now >= next_sample:
                if not px.alive():
                    break
                sent = sum(c.sent for c in loads) + big.sent
                errs = sum(sum(c.errors.values()) for c in loads)
                s = (now - t0, total(rss_bytes, pids), total(fd_count, pids), proxy_stat(px, "curr_connections"),
                     sent, errs, current)
                samples.append(s)
                print("%7.1f %8.1f %5d %6d %9d %8d  %s" % (s[0], s[1] / MB, s[2], s[3], s[4], s[5], s[6]),
                      flush=True)
                next_sample += SAMPLE
            time.sleep(0.05)
        if undo:
            undo[1]()
        for srv in list(stopped):
            os.kill(srv.proc.pid, signal.SIGCONT)
            stopped.discard(srv)
        for c in loads:
            c.stop()
        big.stop()
        churn.stop()
        for c in loads:
            c.join()
        alive = px.alive()
        try:
            st = px.stats()
            proxy_lat = {p: (st[p].get("latency_p99_us"), st[p].get("latency_max_us")) for p in ("r", "m", "rbad")}
        except Exception as e:
            proxy_lat = "stats unavailable: %s" % e
        time.sleep(2.0)  # let closed connections settle
        idle_rss, idle_fds = total(rss_bytes, pids), total(fd_count, pids)
        if WORKERS and sorted(proxy_pids(px)) != sorted(pids):
            problems_early = ["the workers changed during the run: %s -> %s" % (pids, proxy_pids(px))]
        else:
            problems_early = []

        # ---------------------------------------------------------------- verdict
        problems = list(problems_early)
        if not alive or not px.alive():
            problems.append("the proxy died")
        for c in loads:
            if c.answered != c.sent or c.failures:
                problems.append("%s: sent %d answered %d, failures %s" % (c.name, c.sent, c.answered,
                                                                          c.failures[:3]))
            if c.max_latency > REPLY_BOUND:
                problems.append("%s: slowest answer %.2fs > %.1fs" % (c.name, c.max_latency, REPLY_BOUND))
        if big.failures or big.answered != big.sent:
            problems.append("big values: sent %d answered %d, %s" % (big.sent, big.answered, big.failures[:3]))
        if churn.failures:
            problems.append("churn: %s" % churn.failures[:3])
        warm = [s for s in samples if s[0] <= WARMUP]
        later = [s for s in samples if s[0] > WARMUP]
        if not warm or not later:
            problems.append("too few samples for a verdict (run longer than the warm-up)")
        else:
            rss_base, fd_base = max(s[1] for s in warm), max(s[2] for s in warm)
            rss_max, fd_max = max(s[1] for s in later), max(s[2] for s in later)
            if SANITIZED:
                print("(sanitizer build: its allocator's quarantine holds freed memory, so RSS "
                      "growth is printed below, not judged)")
            elif rss_max > rss_base + RSS_TOL:
                problems.append("RSS grew after the warm-up: %.1f MB -> %.1f MB (tolerance %.0f MB)"
                                % (rss_base / MB, rss_max / MB, RSS_TOL / MB))
            if fd_max > fd_base + FD_TOL:
                problems.append("open fds grew after the warm-up: %d -> %d (tolerance %d)" % (fd_base, fd_max,
                                                                                              FD_TOL))
            # a straight line through the post-warm-up RSS samples, for the record
            n = len(later)
            if n >= 2:
                mx = sum(s[0] for s in later) / n
                my = sum(s[1] for s in later) / n
                den = sum((s[0] - mx) ** 2 for s in later) or 1.0
                slope = sum((s[0] - mx) * (s[1] - my) for s in later) / den
            else:
                slope = 0.0
        print("\nsummary: %d s, %d samples, %d faults" % (SECONDS, len(samples), nfault))
        for c in loads:
            print("  " + c.summary())
        print("  proxy's own request latency (p99 us, max us) per pool: %s" % (proxy_lat,))
        print("  big values: sent=%d answered=%d failures=%d" % (big.sent, big.answered, len(big.failures)))
        print("  churn: connections=%d answered pings=%d failures=%d" % (churn.opened, churn.answered,
                                                                          len(churn.failures)))
        if warm and later:
            print("  RSS: warm-up max %.1f MB, after warm-up max %.1f MB, min %.1f MB, trend %+.2f MB/min; "
                  "idle after load %.1f MB" % (rss_base / MB, rss_max / MB, min(s[1] for s in later) / MB,
                                               slope * 60 / MB, idle_rss / MB))
            print("  fds: warm-up max %d, after warm-up max %d, min %d; idle after load %d"
                  % (fd_base, fd_max, min(s[2] for s in later), idle_fds))
        if problems:
            print("\nSOAK FAILED:\n  " + "\n  ".join(problems))
        else:
            print("\nSOAK PASSED")
            ok = True
    finally:
        for srv in list(stopped):
            try:
                os.kill(srv.proc.pid, signal.SIGCONT)
            except ProcessLookupError:
                pass
        bad.stop()
        found = env.finish()
        if found:
            print("sanitizer report in proxy output:\n" + "\n".join(found))
            ok = False
        if ok:
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            print("logs kept in %s" % tmp)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
