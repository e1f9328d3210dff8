"""Sentinel pools (SPEC 9) against real redis-server and redis-sentinel processes.

Each test starts its own masters, replicas and three sentinels (quorum 2) on
free ports of 127.0.0.1 and stops them by pid (Env).  A failover is made the
way it happens in production: a master stops answering (SIGSTOP) and the
sentinels agree it is down; or an operator runs SENTINEL FAILOVER.
"""

import os
import re
import signal
import socket
import threading
import time

import pytest

from conftest import (HOST, TWEMPROXY, Resp, RespError, Server, encode_command, free_port, spread_keys,
                      stop_proc, tail, wait_port, wait_until, Ketama, fnv1a_64)
from liveness_util import stop_process

pytestmark = pytest.mark.skipif(TWEMPROXY, reason="twemproxy 0.5 has no sentinel support")

HEARTBEAT = 200  # ms: the proxy notices a failover quickly


def start_sentinels(env, masters, n=3, quorum=2, password=None, auth_pass=None, master_host=HOST):
    """n redis-sentinel processes monitoring {group: Server}; each gets its own
    writable config file (sentinel rewrites it)."""
    out = []
    for _ in range(n):
        for attempt in range(5):
            port = free_port()
            conf = os.path.join(env.tmp, "sentinel-%d.conf" % port)
            lines = ["port %d" % port, "bind %s" % HOST, "daemonize no", "dir %s" % env.tmp]
            if password:
                lines += ["requirepass %s" % password, "sentinel sentinel-pass %s" % password]
            for name, srv in masters.items():
                lines += ["sentinel monitor %s %s %d %d" % (name, master_host, srv.port, quorum),
                          "sentinel down-after-milliseconds %s 1000" % name,
                          "sentinel failover-timeout %s 3000" % name]
                if auth_pass:
                    lines.append("sentinel auth-pass %s %s" % (name, auth_pass))
            with open(conf, "w") as f:
                f.write("\n".join(lines) + "\n")
            proc, log = env.spawn(["redis-sentinel", conf], "sentinel-%d" % port)
            if wait_port(port, proc):
                out.append(sentinel_quicker(Server("sentinel", port, proc, log, password)))
                break
            stop_proc(proc)
        else:
            raise RuntimeError("redis-sentinel did not start:\n" + tail(log))
    return out


def sentinel_quicker(s):
    """A sentinel that looks at its servers every 200 ms (INFO; default 10 s) and
    says hello to the other sentinels every 500 ms (default 2 s): it learns a
    demoted master's new role, or the other sentinels, in a test's time.  What
    the proxy does with what the sentinels say is the same."""
    c = Resp(port=s.port, timeout=2)
    try:
        if s.password:
            assert c.call("AUTH", s.password) == b"OK"
        assert c.call("SENTINEL", "DEBUG", "info-period", "200", "publish-period", "500") == b"OK"
    finally:
        c.close()
    return s


def sentinel_view(s, group):
    c = Resp(port=s.port, timeout=2)
    try:
        if s.password:
            c.call("AUTH", s.password)
        flat = c.call("SENTINEL", "MASTER", group)
    finally:
        c.close()
    return {flat[i].decode(): flat[i + 1].decode() for i in range(0, len(flat), 2)}


def wait_sentinels_ready(sentinels, group, replicas):
    """Every sentinel knows the others and the group's replicas: a failover can happen."""
    def ready():
        for s in sentinels:
            v = sentinel_view(s, group)
            if int(v["num-other-sentinels"]) < len(sentinels) - 1 or int(v["num-slaves"]) < replicas:
                return False
        return True
    wait_until(ready, "sentinels to see each other and the replicas", timeout=15, interval=0.2)


class SentinelCommands:
    """How many commands a sentinel executed for others since this was made:
    with one sentinel and nobody else asking, the proxy's heartbeat queries.
    Read from INFO stats on a connection of ours (our own INFOs not counted)."""

    def __init__(self, s):
        self.c = Resp(port=s.port, timeout=2)
        if s.password:
            assert self.c.call("AUTH", s.password) == b"OK"
        self.mine = 0
        self.base = self._read()

    def _read(self):
        info = self.c.call("INFO", "stats").decode()
        self.mine += 1  # counted from the next reading on
        return int(info.split("total_commands_processed:")[1].split()[0])

    def others(self):
        return self._read() - self.base - (self.mine - 1)

    def wait(self, n, what):
        return wait_until(lambda: self.others() >= n, "%d commands from the proxy at the sentinel: %s" % (n, what))


def log_count(px, *texts):
    """Lines of the proxy's log holding every one of texts."""
    with open(px.log, errors="replace") as f:
        return sum(all(t in line for t in texts) for line in f)


def force_failover(s, group):
    """SENTINEL FAILOVER, retried while the sentinel has not yet judged the
    replica it just discovered (NOGOODSLAVE)."""
    def attempt():
        c = Resp(port=s.port, timeout=2)
        try:
            if s.password:
                assert c.call("AUTH", s.password) == b"OK"
            return c.call("SENTINEL", "FAILOVER", group) == b"OK"
        finally:
            c.close()
    wait_until(attempt, "SENTINEL FAILOVER %s" % group, timeout=15, interval=0.2)


def replica_of(env, master, password=None):
    args = ["--replicaof", HOST, str(master.port)]
    if password:
        args += ["--masterauth", password]
    r = env.redis(args=args, password=password)
    wait_until(lambda: r.client().info("replication").get("master_link_status") == "up", "replica link up",
               timeout=10)
    return r


def sentinel_pool(groups, sentinels, **kw):
    pool = {"redis": True, "sentinel_heartbeat": HEARTBEAT, "groups": list(groups),
            "sentinels": [s if isinstance(s, str) else s.addr for s in sentinels]}
    pool.update(kw)
    return pool


def keys_of(groups, n=40):
    """Keys that the proxy places on each group (ketama over the group names)."""
    ring = Ketama([(g, 1) for g in sorted(groups, key=lambda g: (len(g), g))])
    out = {g: [] for g in groups}
    for k in spread_keys("sk", n):
        out[ring.servers[ring.index(fnv1a_64(k.encode()))][0]].append(k)
    return out


def call(px, *args, password=None):
    c = px.resp(timeout=5)
    try:
        if password:
            assert c.call("AUTH", password) == b"OK"
        return c.call(*args)
    finally:
        c.close()


def test_unknown_master_is_an_error_at_once(env):
    """No sentinel answers: the group's requests fail at once with a clear error,
    the group is in the stats under its name with server_failover (and only in
    the sentinel pool)."""
    other = env.redis()
    mport = free_port()
    px = env.proxy({"alpha": sentinel_pool(["g1"], ["%s:%d" % (HOST, free_port())]),
                    "beta": {"redis": True, "servers": ["%s:1" % other.addr]}},
                   extra_args=["--metrics-port", str(mport)])
    c = px.resp("alpha", timeout=3)
    t0 = time.monotonic()
    assert c.call("SET", "k", "v") == RespError("ERR master for group 'g1' is not known yet")
    assert c.call("MGET", "a", "b") == RespError("ERR master for group 'g1' is not known yet")
    assert time.monotonic() - t0 < 1.0
    assert c.call("PING") == b"PONG"  # the connection stays usable
    st = px.stats()
    assert list(st["alpha"]["g1"])[:14] == [
        "server_eof", "server_err", "server_timedout", "server_connections", "server_ejected_at",
        "requests", "request_bytes", "responses", "response_bytes", "in_queue", "in_queue_bytes",
        "out_queue", "out_queue_bytes", "server_failover"]
    assert st["alpha"]["g1"]["server_failover"] == 0
    assert st["alpha"]["g1"]["server_err"] == 0  # not a fault of a server
    assert "server_failover" not in st["beta"][other.addr]
    import urllib.request
    body = urllib.request.urlopen("http://%s:%d/metrics" % (HOST, mport), timeout=5).read().decode()
    assert 'nutcracker_server_failover_total{pool="alpha",server="g1"} 0' in body
    assert 'nutcracker_server_failover_total{pool="beta"' not in body
    assert px.alive()


@pytest.mark.parametrize("hold", [None, 0])
def test_discovery_and_failover(env, hold):
    """Keys land on the masters the sentinels name; when one stops answering, the
    proxy follows the sentinels to the promoted replica: the read in flight is
    answered by the new master (failover_hold, the default 5000 ms, keeps it;
    with 0 it gets an error), writes then succeed there, server_failover counts
    it, and the other group (whose name is a prefix) does not move."""
    m1, m2 = env.redis(), env.redis()
    r2 = replica_of(env, m2)
    sentinels = start_sentinels(env, {"cache": m1, "cache2": m2})
    extra = {} if hold is None else {"failover_hold": hold}
    px = env.proxy({"alpha": sentinel_pool(["cache", "cache2"], sentinels, **extra)})
    keys = keys_of(["cache", "cache2"])
    k1, k2 = keys["cache"][0], keys["cache2"][0]
    wait_until(lambda: call(px, "SET", k1, "a") == b"OK" and call(px, "SET", k2, "b") == b"OK",
               "discovery of both masters", timeout=10)
    for k in keys["cache"][:5] + keys["cache2"][:5]:
        assert call(px, "SET", k, k) == b"OK"
    for k in keys["cache"][:5]:
        assert m1.client().get(k) == k.encode()
    for k in keys["cache2"][:5]:
        assert m2.client().get(k) == k.encode()
    # the replica has them (the read in flight below is answered by it once promoted)
    wait_until(lambda: r2.client().get(k2) == k2.encode(), "the replica to have %s" % k2)
    wait_sentinels_ready(sentinels, "cache2", 1)

    inflight = px.resp(timeout=30)
    stop_process(m2.proc.pid)
    try:
        t0 = time.monotonic()
        inflight.send(b"*2\r\n$3\r\nGET\r\n$%d\r\n%s\r\n" % (len(k2), k2.encode()))
        px.wait_stats(lambda st: st["alpha"]["cache2"]["out_queue"] >= 1, "the GET written to the stopped master")
        # the behaviour under test: no answer while the master is stopped and not yet replaced
        assert inflight.read_available(0.3) == b""
        reply = inflight.read_reply()
        switched = time.monotonic() - t0
        if hold is None:
            assert reply == k2.encode(), reply  # the value the replica had from the old master
        else:
            assert isinstance(reply, RespError) and "master switched" in reply.msg, reply
        assert switched < 15, switched
        wait_until(lambda: call(px, "SET", k2, "after") == b"OK", "writes on the new master", timeout=10)
        assert r2.client().get(k2) == b"after"
        assert r2.client().execute_command("ROLE")[0] == b"master"
        assert inflight.call("GET", k2) == b"after"  # the client's connection goes on
        wait_until(lambda: px.stats()["alpha"]["cache2"]["server_failover"] == 1, "server_failover in stats",
                   timeout=10)
        assert px.stats()["alpha"]["cache"]["server_failover"] == 0
        # the group whose name is a prefix of the failed one stays on its master
        assert call(px, "SET", k1, "still") == b"OK"
        assert m1.client().get(k1) == b"still"
    finally:
        os.kill(m2.proc.pid, signal.SIGCONT)
    assert px.alive()


def test_switch_message_alone_exact_group(env):
    """With a heartbeat far too long to matter, the +switch-master message alone
    moves the group; the group whose name is a prefix of it stays put."""
    m1, m2 = env.redis(), env.redis()
    r2 = replica_of(env, m2)
    (s,) = start_sentinels(env, {"g": m1, "g2": m2}, n=1, quorum=1)
    px = env.proxy({"alpha": sentinel_pool(["g", "g2"], [s], sentinel_heartbeat=60000)},
                   verbose=5)
    keys = keys_of(["g", "g2"])
    k1, k2 = keys["g"][0], keys["g2"][0]
    wait_until(lambda: call(px, "SET", k1, "a") == b"OK" and call(px, "SET", k2, "b") == b"OK", "discovery",
               timeout=10)
    wait_sentinels_ready([s], "g2", 1)
    force_failover(s, "g2")
    wait_until(lambda: px.stats()["alpha"]["g2"]["server_failover"] == 1, "the switch of g2", timeout=10)
    assert call(px, "SET", k2, "c") == b"OK" and r2.client().get(k2) == b"c"
    assert call(px, "SET", k1, "d") == b"OK"
    assert m1.client().get(k1) == b"d"
    assert px.stats()["alpha"]["g"]["server_failover"] == 0
    assert "+switch-master of group 'g2'" in tail(px.log, 100)


def test_subscribers_of_a_switched_master_are_ended_not_left_deaf(env):
    """At a switch, a subscription on the old master would hear nothing more
    (PUBLISH goes to the new master): its client kept waiting, silently, until
    sentinel happened to kill the pub/sub clients of the demoted node (10 s; as
    long as a partition lasts). Now it is ended with the reason, as when its
    connection fails, and its library subscribes again; subscribers of the
    group that did not move keep hearing."""
    m1, m2 = env.redis(), env.redis()
    replica_of(env, m2)
    (s,) = start_sentinels(env, {"g": m1, "g2": m2}, n=1, quorum=1)
    px = env.proxy({"alpha": sentinel_pool(["g", "g2"], [s])})
    keys = keys_of(["g", "g2"])
    ch1, ch2 = keys["g"][0], keys["g2"][0]
    wait_until(lambda: call(px, "SET", ch1, "a") == b"OK" and call(px, "SET", ch2, "b") == b"OK", "discovery",
               timeout=10)
    wait_sentinels_ready([s], "g2", 1)
    moved, stays = px.resp(timeout=10), px.resp(timeout=10)
    assert moved.call("SUBSCRIBE", ch2) == [b"subscribe", ch2.encode(), 1]
    assert stays.call("SUBSCRIBE", ch1) == [b"subscribe", ch1.encode(), 1]
    stop_process(m2.proc.pid)  # it cannot be told to drop its subscribers: only the proxy can
    try:
        wait_until(lambda: px.stats()["alpha"]["g2"]["server_failover"] == 1, "the switch of g2", timeout=15)
        assert moved.is_closed()  # its library subscribes again, on the new master
        assert call(px, "PUBLISH", ch1, "still") == 1
        assert stays.read_reply() == [b"message", ch1.encode(), b"still"]
    finally:
        os.kill(m2.proc.pid, signal.SIGCONT)


def test_a_blocked_pop_on_a_switched_master_is_ended(env):
    """A BLPOP waiting on the old master would wait there for a push that now
    goes to the new one: at the switch the client's connection closes (its own
    connection to the old master first, so that pops nothing for it), as a
    consumer's connection to a master that fails closes, and its next BLPOP,
    on a new connection, waits on the new master and gets the push."""
    m1 = env.redis()
    replica_of(env, m1)
    (s,) = start_sentinels(env, {"g": m1}, n=1, quorum=1)
    px = env.proxy({"alpha": sentinel_pool(["g"], [s])})
    wait_until(lambda: call(px, "SET", "x", "1") == b"OK", "discovery", timeout=10)
    wait_sentinels_ready([s], "g", 1)
    c = px.resp(timeout=15)
    c.send(encode_command("BLPOP", "jobs", "0"))
    wait_until(lambda: m1.client().info("clients")["blocked_clients"] == 1, "blocked on the master")
    stop_process(m1.proc.pid)
    try:
        assert c.is_closed(timeout=15)
        assert px.stats()["alpha"]["g"]["server_failover"] == 1
        c = px.resp(timeout=15)
        c.send(encode_command("BLPOP", "jobs", "0"))
        time.sleep(0.3)
        assert call(px, "RPUSH", "jobs", "j1") == 1
        assert c.read_reply() == [b"jobs", b"j1"]
    finally:
        os.kill(m1.proc.pid, signal.SIGCONT)


def test_rotation_passwords_and_all_sentinels_down(env):
    """Sentinels and masters with passwords; the first sentinel listed is dead and
    the second dies: the proxy rotates past both and follows a SENTINEL FAILOVER
    made on another; with every sentinel down it keeps serving the last master."""
    pw, spw = "mpw", "spw"
    m = env.redis(password=pw)
    r = replica_of(env, m, password=pw)
    sentinels = start_sentinels(env, {"grp": m}, password=spw, auth_pass=pw)
    dead = "%s:%d" % (HOST, free_port())
    px = env.proxy({"alpha": sentinel_pool(["grp"], [dead] + sentinels, redis_auth=pw,
                                           sentinel_auth=spw)}, verbose=6)
    wait_until(lambda: call(px, "SET", "k", "v1", password=pw) == b"OK", "discovery", timeout=10)
    assert m.client().get("k") == b"v1"
    wait_sentinels_ready(sentinels, "grp", 1)

    sentinels[0].stop()  # the one the proxy talks to now (the dead one came first)
    force_failover(sentinels[1], "grp")
    # (a write alone proves nothing: before the promotion it replicates to r)
    wait_until(lambda: px.stats()["alpha"]["grp"]["server_failover"] == 1, "the proxy to follow the failover",
               timeout=10)
    assert r.client().execute_command("ROLE")[0] == b"master"
    assert call(px, "SET", "k", "v2", password=pw) == b"OK" and r.client().get("k") == b"v2"

    for s in sentinels[1:]:
        s.stop()
    # the proxy found every sentinel down (each refused connect is logged at -v 6) ...
    for s in sentinels:
        wait_until(lambda: log_count(px, "sentinel '%s'" % s.addr, "Connection refused"),
                   "a refused connect to sentinel %s" % s.addr)
    # ... and keeps serving the last master, heartbeat after failed heartbeat
    for i in range(5):
        refused = log_count(px, "Connection refused")
        assert call(px, "SET", "k%d" % i, "v", password=pw) == b"OK"
        assert r.client().get("k%d" % i) == b"v"
        wait_until(lambda: log_count(px, "Connection refused") > refused, "another heartbeat without sentinels")
    assert px.alive()


class FakeSentinel:
    """A listener that misbehaves like a broken sentinel: 'silent' never answers,
    'garbage' answers bytes that are not RESP, 'wrong' answers RESP of the wrong
    shape. Threads in this process: closed by close(), nothing to kill."""

    def __init__(self, mode, stale=None):
        self.mode = mode
        self.stale = stale  # mode 'stale': the master it keeps naming, at config-epoch 0
        self.queries = 0  # get-master-addr-by-name received
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((HOST, 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.conns = []
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def addr(self):
        return "%s:%d" % (HOST, self.port)

    def _accept(self):
        while True:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            self.conns.append(c)
            threading.Thread(target=self._serve, args=(c,), daemon=True).start()

    def _stale_answers(self, data):
        out = b""
        for m in re.finditer(rb"get-master-addr-by-name|\$6\r\nMASTER|SUBSCRIBE|PING", data):
            w = m.group(0)
            if w.startswith(b"get"):
                host, port = self.stale.addr.split(":")
                out += b"*2\r\n$%d\r\n%s\r\n$%d\r\n%s\r\n" % (len(host), host.encode(), len(port),
                                                              port.encode())
            elif w.endswith(b"MASTER"):
                out += b"*2\r\n$12\r\nconfig-epoch\r\n$1\r\n0\r\n"
            elif w == b"SUBSCRIBE":
                out += b"*3\r\n$9\r\nsubscribe\r\n$14\r\n+switch-master\r\n:1\r\n"
            else:
                out += b"*2\r\n$4\r\npong\r\n$0\r\n\r\n"
        return out

    def _serve(self, c):
        answer = {"silent": None, "garbage": b"%not resp\r\n", "wrong": b"*1\r\n:5\r\n",
                  "stale": None}[self.mode]
        while True:
            try:
                data = c.recv(65536)
            except OSError:
                return
            if not data:
                return
            self.queries += data.count(b"get-master-addr-by-name")
            if self.mode == "stale":
                try:
                    c.sendall(self._stale_answers(data))
                except OSError:
                    return
            elif answer:
                try:
                    c.sendall(answer * data.count(b"*"))
                except OSError:
                    return

    def close(self):
        self.sock.close()
        for c in self.conns:
            c.close()


def test_broken_sentinels_are_rotated_past(env):
    """A silent, a garbage-speaking and a wrong-answering sentinel come first in
    the list: the proxy gives each up and learns the master from the real one.
    A request sent meanwhile waits for that master (failover_hold) instead of
    failing."""
    m = env.redis()
    (real,) = start_sentinels(env, {"grp": m}, n=1, quorum=1)
    fakes = [FakeSentinel(mode) for mode in ("silent", "garbage", "wrong")]
    try:
        px = env.proxy({"alpha": sentinel_pool(["grp"], [f.addr for f in fakes] + [real.addr])},
                       verbose=6)
        c = px.resp(timeout=8)
        t0 = time.monotonic()
        assert c.call("SET", "k", "v") == b"OK"
        waited = time.monotonic() - t0
        assert m.client().get("k") == b"v"
        # the silent sentinel alone takes a second to be given up: the SET waited for it
        assert waited > 0.5, waited
        # (the stats are a snapshot taken every 100 ms)
        wait_until(lambda: px.stats()["alpha"]["grp"]["failover_released"] == 1, "stats", timeout=3)
        assert px.stats()["alpha"]["grp"]["failover_held"] == 1
        assert "requests wait up to 5000 ms for the sentinels to name a master" in tail(px.log, 200)
        log = tail(px.log, 200)
        for f in fakes:
            assert "sentinel '%s'" % f.addr in log, f.mode
        assert "no answer in time" in log
        assert px.alive()
    finally:
        for f in fakes:
            f.close()


def test_subscribe_and_watch_wait_for_the_first_look(env):
    """SUBSCRIBE and WATCH open a connection of the client's own to the
    group's master: sent while the sentinels' first look is not over (a silent
    sentinel makes it last a second), they wait for it instead of failing."""
    m = env.redis()
    (real,) = start_sentinels(env, {"grp": m}, n=1, quorum=1)
    silent = FakeSentinel("silent")
    try:
        px = env.proxy({"alpha": sentinel_pool(["grp"], [silent.addr, real.addr])})
        sub, w = px.resp(timeout=8), px.resp(timeout=8)
        t0 = time.monotonic()
        sub.send(encode_command("SUBSCRIBE", "news"))
        w.send(encode_command("WATCH", "k") + encode_command("MULTI") + encode_command("SET", "k", "v") +
               encode_command("EXEC"))
        assert sub.read_reply() == [b"subscribe", b"news", 1]
        assert [w.read_reply() for _ in range(4)] == [b"OK", b"OK", b"QUEUED", [b"OK"]]
        assert time.monotonic() - t0 > 0.5  # (they did wait for the first look)
        assert m.client().get("k") == b"v"
        assert m.client().publish("news", "hi") == 1
        assert sub.read_reply() == [b"message", b"news", b"hi"]
        # once the master is known, nothing waits
        t1 = time.monotonic()
        assert px.resp(timeout=8).call("WATCH", "k2") == b"OK"
        assert px.resp(timeout=8).call("SUBSCRIBE", "other") == [b"subscribe", b"other", 1]
        assert time.monotonic() - t1 < 0.5
    finally:
        silent.close()


def test_first_look_without_master(env):
    """The sentinels' first look ends with no master (the only answering one
    is silent, the other refuses): what waited gets the "not known yet" error,
    later requests get it at once. With failover_hold 0 nothing waits."""
    silent = FakeSentinel("silent")
    try:
        px = env.proxy({"alpha": sentinel_pool(["grp"], [silent.addr, "%s:%d" % (HOST, free_port())]),
                        "beta": sentinel_pool(["grp"], [silent.addr], failover_hold=0)})
        err = RespError("ERR master for group 'grp' is not known yet")
        a, b = px.resp("alpha", timeout=8), px.resp("beta", timeout=8)
        t0 = time.monotonic()
        assert b.call("GET", "k") == err  # beta: at once
        assert time.monotonic() - t0 < 0.5
        assert a.call("GET", "k") == err  # alpha: once the silent sentinel is given up
        assert time.monotonic() - t0 > 0.5
        t1 = time.monotonic()
        assert a.call("SET", "k", "v") == err
        assert time.monotonic() - t1 < 0.5
        wait_until(lambda: px.stats()["alpha"]["grp"]["failover_expired"] == 1, "stats", timeout=3)
        assert px.stats()["alpha"]["grp"]["failover_held"] == 1
        assert "no sentinel named a master: 1 held requests answered with an error" in tail(px.log, 200)
        assert px.alive()
    finally:
        silent.close()


def test_first_look_ends_when_every_sentinel_is_silent(env):
    """Every sentinel stopped (SIGSTOP: it accepts connections and answers
    nothing) as the proxy starts: once each was silent for a heartbeat, the
    first look is over and what waited gets "not known yet". It waited the
    whole failover_hold (20 s here): a failure count started again each
    heartbeat, so the list never counted as tried."""
    m = env.redis()
    sentinels = start_sentinels(env, {"grp": m}, n=2, quorum=1)
    for s in sentinels:
        stop_process(s.proc.pid)
    try:
        px = env.proxy({"alpha": sentinel_pool(["grp"], sentinels, failover_hold=20000)})
        c = px.resp(timeout=30)
        t0 = time.monotonic()
        assert c.call("GET", "k") == RespError("ERR master for group 'grp' is not known yet")
        waited = time.monotonic() - t0
        assert waited < 8, "waited %.1f s" % waited
    finally:
        for s in sentinels:
            os.kill(s.proc.pid, signal.SIGCONT)


def test_stale_sentinel_is_not_believed(env):
    """After a failover, a sentinel that still has the old view (an older
    config-epoch) names a server that says it is a master: the proxy stays on
    the master the up-to-date sentinel gave."""
    m = env.redis()
    r = replica_of(env, m)
    other = env.redis()  # a standalone master the stale sentinel names
    (s,) = start_sentinels(env, {"grp": m}, n=1, quorum=1)
    stale = FakeSentinel("stale", stale=other)
    try:
        px = env.proxy({"alpha": sentinel_pool(["grp"], [s, stale])}, verbose=6)
        wait_until(lambda: call(px, "SET", "k", "1") == b"OK" and m.client().get("k") == b"1", "discovery",
                   timeout=10)
        wait_sentinels_ready([s], "grp", 1)
        force_failover(s, "grp")
        # (a write alone proves nothing: before the promotion it replicates to r)
        wait_until(lambda: px.stats()["alpha"]["grp"]["server_failover"] == 1, "the switch", timeout=10)
        assert call(px, "SET", "k", "2") == b"OK" and r.client().get("k") == b"2"
        SentinelCommands(s).wait(4, "queries after the switch confirm the new epoch")
        s.stop()  # only the stale one is left
        wait_until(lambda: "older than" in tail(px.log, 50), "the stale view to be seen", timeout=10)
        for i in range(5):
            asked = stale.queries
            assert call(px, "SET", "k", str(i)) == b"OK"
            assert r.client().get("k") == str(i).encode()
            wait_until(lambda: stale.queries > asked, "another heartbeat asking the stale sentinel")
        assert other.client().dbsize() == 0
        assert px.stats()["alpha"]["grp"]["server_failover"] == 1
    finally:
        stale.close()


def test_andyqzb_layout_servers_named_after_masters(env):
    """andyqzb's sentinel fork (twemproxy's tests/test_system/test_sentinel.py)
    lists servers named after the sentinels' masters, with an address that is a
    first guess, and writes sentinels as servers (host:port:weight name). The
    same file works here: each server is the group of its name, at the address
    the sentinels give (the written one is a dead port here), and keys are
    placed as the groups layout places them."""
    m1, m2 = env.redis(), env.redis()
    sentinels = start_sentinels(env, {"server1": m1, "server2": m2})
    dead = free_port()
    pool = {"redis": True, "sentinel_heartbeat": HEARTBEAT,
            "servers": ["%s:%d:1 server1" % (HOST, dead), "%s:%d:1 server2" % (HOST, dead)],
            "sentinels": ["%s:1 sentinel-%d" % (s.addr, i) for i, s in enumerate(sentinels)]}
    px = env.proxy({"alpha": pool})
    keys = keys_of(["server1", "server2"], n=20)
    k1, k2 = keys["server1"][0], keys["server2"][0]
    wait_until(lambda: call(px, "SET", k1, "a") == b"OK" and call(px, "SET", k2, "b") == b"OK",
               "discovery of both masters", timeout=10)
    for k in keys["server1"] + keys["server2"]:
        assert call(px, "SET", k, k) == b"OK"
    assert all(m1.client().get(k) == k.encode() for k in keys["server1"])
    assert all(m2.client().get(k) == k.encode() for k in keys["server2"])
    assert set(px.stats()["alpha"]) >= {"server1", "server2"}


def test_ipv6_master(env):
    """A sentinel that names an IPv6 master: the proxy connects to it over IPv6."""
    m = env.redis(args=["--bind", "127.0.0.1 ::1"])
    (s,) = start_sentinels(env, {"grp": m}, n=1, quorum=1, master_host="::1")
    px = env.proxy({"alpha": sentinel_pool(["grp"], [s])})
    wait_until(lambda: call(px, "SET", "k6", "v6") == b"OK", "discovery", timeout=10)
    assert m.client().get("k6") == b"v6"
    # the proxy's connection (the one that ran SET) came over IPv6
    clients = [(c["addr"], c["cmd"]) for c in m.client().client_list()]
    assert any(a.startswith("[::1]:") and cmd == "set" for a, cmd in clients), clients


def test_config_errors_are_reported(env):
    path = env.write_conf("alpha:\n  listen: 127.0.0.1:22121\n  redis: true\n"
                          "  groups:\n   - g1\n  servers:\n   - 127.0.0.1:6379:1\n"
                          "beta:\n  listen: 127.0.0.1:22122\n  groups:\n   - g1\n"
                          "  servers:\n   - 127.0.0.1:6379:1\n")
    rc, out = env.run_proxy(["-t", "-c", path])
    assert rc == 1
    assert "%s:4: groups: directive is only valid in a pool with sentinels" % path in out
    assert "%s:10: groups: directive is only valid in a pool with sentinels" % path in out
