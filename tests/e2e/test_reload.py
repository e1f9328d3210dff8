"""Reload without loss (SPEC 11): SIGHUP applies the configuration file again
while clients stay connected.  Clients of a pool whose listen address remains
keep their connection and are routed by the new definition from their next
request; requests in flight finish on the servers they went to; clients of a
removed pool get their pending replies, then a close; connections to servers
that did not change are kept; an invalid file changes nothing."""

import os
import signal
import socket
import threading

import pytest

from conftest import HOST, TWEMPROXY, RespError, encode_command, free_port, mc_pool, redis_pool, wait_port
from liveness_util import Prom, forwarded, http_get, stalled, wait_until


def listen_addr():
    return "%s:%d" % (HOST, free_port())


def proxy_conns(admin):
    """The connections of admin's server other than admin's own: the proxy's."""
    me = str(admin.client_id())
    return [c["addr"] for c in admin.client_list() if c["id"] != me]


def connections_received(server):
    return int(server.client().info("stats")["total_connections_received"])


def reload_figures(px, mport):
    """(config_generation, reload_failures, last_reload) from the stats JSON,
    checked against the same three in /metrics (a /metrics rendered in over
    200 us, as under the sanitizers, may be served again for ten times that:
    it is asked until it is younger than the reload)."""
    st = px.stats()
    figures = (st["config_generation"], st["reload_failures"], st["last_reload"])
    prom = wait_until(lambda: (lambda p: p if p.get("nutcracker_config_generation") == figures[0] else None)(
        Prom(http_get(mport, "/metrics")[2])), "/metrics to show generation %d" % figures[0], timeout=2)
    assert (prom.get("nutcracker_config_generation"), prom.get("nutcracker_reload_failures_total"),
            prom.get("nutcracker_last_reload_success")) == (figures[0], figures[1], figures[2] != "failed"), \
        (figures, prom.family("nutcracker_config_generation"))
    assert (prom.types["nutcracker_config_generation"], prom.types["nutcracker_reload_failures_total"],
            prom.types["nutcracker_last_reload_success"]) == ("gauge", "counter", "gauge")
    return figures


@pytest.mark.skipif(TWEMPROXY, reason="twemproxy 0.5 has no reload")
def test_reload_outcome_in_stats_and_metrics(env):
    """config_generation starts at 1 and moves by one per applied reload (a
    SIGHUP with the file unchanged is one too); a refused file counts in
    reload_failures, sets last_reload to "failed" and leaves the generation;
    the next good reload sets it back to "ok" and the failure count stays."""
    r1, r2 = env.redis(), env.redis()
    la, mport = listen_addr(), free_port()
    px = env.proxy({"a": redis_pool([r1], listen=la)}, extra_args=["--metrics-port=%d" % mport])
    assert wait_port(mport, px.proc)
    assert reload_figures(px, mport) == (1, 0, "none")
    assert px.reload({"a": redis_pool([r2], listen=la)})
    assert reload_figures(px, mport) == (2, 0, "ok")
    assert not px.reload("a:\n  listen: %s\n  redis: maybe\n  servers:\n   - %s:1\n" % (la, r1.addr))
    assert reload_figures(px, mport) == (2, 1, "failed")
    assert px.resp("a").call("SET", "k", "r2") == b"OK"  # still on generation 2's servers
    assert r2.client().get("k") == b"r2"
    assert px.reload({"a": redis_pool([r1], listen=la)})
    assert reload_figures(px, mport) == (3, 1, "ok")
    assert px.reload()  # the same file again: applied, a new generation
    assert reload_figures(px, mport) == (4, 1, "ok")


def test_a_reload_that_asks_for_workers_says_it_stays_one_process(env):
    """worker_processes added by a reload to a single process: applied silently,
    the proxy still one process (h46); now the log says it takes a restart or
    an upgrade, as a master's does for a change of its worker count."""
    r = env.redis()
    la = listen_addr()
    px = env.proxy({"a": redis_pool([r], listen=la)})
    assert px.reload({"a": redis_pool([r], listen=la)}, global_={"worker_processes": 2})
    wait_until(lambda: "worker_processes changes only with a restart or a binary upgrade: staying one "
               "process" in px.log_tail(), "the warning in the log")
    assert open("/proc/%d/task/%d/children" % (px.proc.pid, px.proc.pid)).read().split() == []
    assert px.resp("a").call("SET", "k", "v") == b"OK"


def test_a_reload_from_a_fifo_is_refused_without_blocking(env):
    """The configuration path replaced by a FIFO (or a pipe's /dev/fd/N given at the
    start): opening it to reload would block until someone writes to it, the event
    loop with it (no client served, no SIGTERM heard). A reload reads regular files
    only: it is refused at once, the proxy serves on and stops on SIGTERM."""
    r = env.redis()
    la = listen_addr()
    px = env.proxy({"a": redis_pool([r], listen=la)})
    c = px.resp("a")
    assert c.call("SET", "fifo", "1") == b"OK"
    os.remove(px.conf)
    os.mkfifo(px.conf)
    assert not px.reload()
    assert "not a regular file: a reload reads files only" in px.log_tail()
    assert c.call("GET", "fifo") == b"1"
    px.proc.send_signal(signal.SIGTERM)
    assert px.proc.wait(timeout=10) == 0


def test_client_keeps_its_connection_and_follows_the_new_servers(env):
    r1, r2 = env.redis(), env.redis()
    listen = listen_addr()
    px = env.proxy({"a": redis_pool([r1], listen=listen)}, verbose=5)
    c = px.resp("a")
    assert c.call("SET", "before", "1") == b"OK"
    assert px.reload({"a": redis_pool([r2], listen=listen)})
    # the same socket: a closed one would fail here
    assert c.call("SET", "after", "2") == b"OK"
    assert r1.client().get("before") == b"1" and r1.client().get("after") is None
    assert r2.client().get("after") == b"2"
    assert c.call("GET", "before") is None  # routed to r2 now
    assert px.alive()


def retired(px, n):
    """Wait until the log says n retired pools finished their work (and were freed)."""
    def count():
        with open(px.log, errors="replace") as f:
            return f.read().count("finished its work") >= n
    wait_until(count, px.log_tail)


def test_subscriptions_watch_and_transaction_follow_kept_servers(env):
    """A client's own server connections (SUBSCRIBE, WATCH) and its transaction go
    on across reloads that keep their server: the messages still come, the watch
    still holds, EXEC runs what MULTI queued. (They once stayed tied to the
    retired pool's servers, freed with it: sanitizers saw the next message read
    freed memory.)"""
    r = env.redis()
    listen = listen_addr()
    px = env.proxy({"a": redis_pool([r], listen=listen)}, verbose=5)
    sub, tx = px.resp("a"), px.resp("a")
    sub.send(encode_command("SUBSCRIBE", "ch"))
    assert sub.read_reply() == [b"subscribe", b"ch", 1]
    assert tx.call("WATCH", "w") == b"OK"
    assert tx.call("MULTI") == b"OK"
    assert tx.call("SET", "queued", "1") == b"QUEUED"
    for gen in range(3):  # a changed timeout: a new pool, the same server kept
        assert px.reload({"a": redis_pool([r], listen=listen, timeout=1000 + gen)})
        retired(px, gen + 1)
        assert r.client().publish("ch", "m%d" % gen) == 1
        assert sub.read_reply() == [b"message", b"ch", b"m%d" % gen]
    assert tx.call("EXEC") == [b"OK"]
    assert r.client().get("queued") == b"1"
    assert tx.call("WATCH", "w") == b"OK"
    r.client().set("w", "changed")  # the watch holds: EXEC refuses
    assert px.reload({"a": redis_pool([r], listen=listen, timeout=999)})
    retired(px, 4)
    assert tx.call("MULTI") == b"OK" and tx.call("SET", "queued", "2") == b"QUEUED"
    assert tx.call("EXEC") is None
    sub.send(encode_command("UNSUBSCRIBE", "ch"))
    assert sub.read_reply() == [b"unsubscribe", b"ch", 0]
    assert sub.call("PING") == b"PONG"
    assert px.alive()


def test_subscriber_of_a_server_the_reload_drops_is_closed(env):
    """Its subscriptions cannot follow a server the new pool does not have: the
    client is closed, as if that server had closed, and subscribes again; other
    clients go on on the new servers."""
    r1, r2 = env.redis(), env.redis()
    listen = listen_addr()
    px = env.proxy({"a": redis_pool([r1], listen=listen)}, verbose=5)
    sub, plain = px.resp("a"), px.resp("a")
    sub.send(encode_command("SUBSCRIBE", "ch"))
    assert sub.read_reply() == [b"subscribe", b"ch", 1]
    assert plain.call("SET", "k", "1") == b"OK"
    assert px.reload({"a": redis_pool([r2], listen=listen)})
    sub.s.settimeout(5)
    assert sub.s.recv(100) == b"", "the subscriber of a dropped server was not closed"
    retired(px, 1)
    assert plain.call("SET", "k", "2") == b"OK"
    assert r2.client().get("k") == b"2"
    again = px.resp("a")
    again.send(encode_command("SUBSCRIBE", "ch"))
    assert again.read_reply() == [b"subscribe", b"ch", 1]
    assert r2.client().publish("ch", "hi") == 1
    assert again.read_reply() == [b"message", b"ch", b"hi"]
    assert px.alive()


def test_client_that_once_watched_a_dropped_server_goes_on(env):
    """An earlier WATCH's connection to a server the reload drops is let go; the
    client itself goes on in the new pool (a watch still held would close it)."""
    r1, r2 = env.redis(), env.redis()
    listen = listen_addr()
    px = env.proxy({"a": redis_pool([r1], listen=listen)}, verbose=5)
    c = px.resp("a")
    assert c.call("WATCH", "k") == b"OK"
    assert c.call("UNWATCH") == b"OK"
    assert px.reload({"a": redis_pool([r2], listen=listen)})
    retired(px, 1)
    assert c.call("SET", "k", "on-r2") == b"OK"
    assert r2.client().get("k") == b"on-r2"
    assert c.call("WATCH", "k") == b"OK"  # a new watch, on r2
    assert c.call("MULTI") == b"OK" and c.call("INCR", "n") == b"QUEUED"
    assert c.call("EXEC") == [1]
    assert px.alive()


def test_requests_in_flight_finish_on_the_server_they_went_to(env):
    r1, r2 = env.redis(), env.redis()
    listen = listen_addr()
    px = env.proxy({"a": redis_pool([r1], listen=listen)}, verbose=5)
    c = px.resp("a", timeout=20)
    assert c.call("PING") == b"PONG"
    with stalled(r1):
        c.send(encode_command("SET", "inflight", "old") + encode_command("INCR", "counter"))
        forwarded(px, "a", r1, 2)  # both on the wire to r1, which does not answer
        assert px.reload({"a": redis_pool([r2], listen=listen)})
    assert c.read_reply() == b"OK"
    assert c.read_reply() == 1
    admin = r1.client()
    assert admin.get("inflight") == b"old" and admin.get("counter") == b"1"
    assert c.call("SET", "next", "new") == b"OK"
    assert r2.client().get("next") == b"new"
    # the retired pool finished its work: its connection to r1 is closed
    wait_until(lambda: proxy_conns(admin) == [], "the retired pool to close its connection to r1")


def test_removed_pool_answers_pending_requests_then_closes(env):
    r = env.redis()
    la, lb = listen_addr(), listen_addr()
    px = env.proxy({"a": redis_pool([r], listen=la), "b": redis_pool([r], listen=lb)}, verbose=5)
    cb = px.resp("b", timeout=20)
    assert cb.call("SET", "k", "v") == b"OK"
    with stalled(r):
        cb.send(encode_command("GET", "k"))
        forwarded(px, "b", r)  # on the wire to the stalled server when the pool goes
        assert px.reload({"a": redis_pool([r], listen=la)})
    assert cb.read_reply() == b"v"
    cb.s.settimeout(5)
    assert cb.s.recv(100) == b"", "client of a removed pool not closed after its reply"
    try:
        socket.create_connection((HOST, px.port("b")), timeout=2).close()
        refused = False
    except OSError:
        refused = True
    assert refused, "the removed pool's address still accepts connections"
    assert px.resp("a").call("GET", "k") == b"v"


def test_unchanged_servers_keep_their_connections(env):
    r1, r2, r3 = env.redis(), env.redis(), env.redis()
    la = listen_addr()
    pools = {"a": redis_pool([r1, r2], listen=la)}
    px = env.proxy(pools, verbose=5)
    c = px.resp("a")
    for i in range(40):  # enough keys to reach both servers
        assert c.call("SET", "k%d" % i, i) == b"OK"
    before = connections_received(r1), connections_received(r2)
    pools["b"] = redis_pool([r3], listen=listen_addr())
    px.listens["b"] = ("tcp", int(pools["b"]["listen"].rsplit(":", 1)[1]))
    assert px.reload(pools)
    for i in range(40):
        assert c.call("GET", "k%d" % i) == str(i).encode()
    assert px.resp("b").call("SET", "new", "pool") == b"OK"
    assert r3.client().get("new") == b"pool"
    # +1: the INFO connection of connections_received itself
    assert (connections_received(r1), connections_received(r2)) == (before[0] + 1, before[1] + 1)
    # a changed connection setting (redis_db) means new connections
    pools["a"] = redis_pool([r1, r2], listen=la, redis_db=3)
    assert px.reload(pools)
    assert c.call("SET", "db3", "x") == b"OK"
    assert r1.client(db=3).get("db3") == b"x" or r2.client(db=3).get("db3") == b"x"
    assert connections_received(r1) + connections_received(r2) > before[0] + before[1] + 4


def test_invalid_file_changes_nothing_and_names_the_line(env):
    r1, r2 = env.redis(), env.redis()
    la = listen_addr()
    px = env.proxy({"a": redis_pool([r1], listen=la)}, verbose=5)
    c = px.resp("a")
    bad = "a:\n  listen: %s\n  redis: true\n  hashh: fnv1a_64\n  servers:\n   - %s:1\n" % (la, r2.addr)
    assert not px.reload(bad)
    with open(px.log, errors="replace") as f:
        text = f.read()
    assert "%s:4: " % px.conf in text and "hashh" in text, px.log_tail()
    assert c.call("SET", "still", "r1") == b"OK"
    assert r1.client().get("still") == b"r1" and r2.client().get("still") is None


def test_listen_address_in_use_changes_nothing(env):
    r = env.redis()
    la = listen_addr()
    px = env.proxy({"a": redis_pool([r], listen=la)}, verbose=5)
    taken = socket.socket()
    taken.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    taken.bind((HOST, 0))
    taken.listen(1)
    try:
        busy = "%s:%d" % (HOST, taken.getsockname()[1])
        assert not px.reload({"a": redis_pool([r], listen=la), "b": redis_pool([r], listen=busy)})
        assert "cannot set up pool 'b'" in open(px.log, errors="replace").read()
    finally:
        taken.close()
    assert px.resp("a").call("PING") == b"PONG"
    assert list(px.stats().get("b", {})) == []  # pool b never came to be


def test_stats_follow_the_new_pools_and_keep_counters(env):
    r = env.redis()
    la = listen_addr()
    px = env.proxy({"a": redis_pool([r], listen=la), "gone": redis_pool([r], listen=listen_addr())}, verbose=5)
    c = px.resp("a")
    for _ in range(5):
        assert c.call("PING") == b"PONG"
        assert c.call("SET", "x", "1") == b"OK"
    # stats are snapshots taken every -i (100 ms)
    st = px.wait_stats(lambda s: s["a"][r.addr]["requests"] == 5, "5 requests counted")
    assert "gone" in st, st
    assert px.reload({"a": redis_pool([r], listen=la), "fresh": redis_pool([r], listen=listen_addr())})
    assert c.call("SET", "x", "2") == b"OK"
    st = px.wait_stats(lambda s: "fresh" in s and s["a"][r.addr]["requests"] == 6,
                       "the kept pool's counters to go on from 5")
    assert "gone" not in st
    assert st["a"]["client_connections"] == 1


def test_memcached_pool_reload(env):
    m1, m2 = env.memcached(), env.memcached()
    la = listen_addr()
    px = env.proxy({"m": mc_pool([m1], listen=la)}, verbose=5)
    c = px.mc("m")
    assert c.cmd(b"set a 0 0 1", b"1") == b"STORED"
    assert px.reload({"m": mc_pool([m2], listen=la)})
    assert c.cmd(b"set b 0 0 1", b"2") == b"STORED"
    assert m2.mc().cmd(b"get b") == b"VALUE b 0 1"
    assert m1.mc().cmd(b"get b") == b"END"


def test_protocol_change_closes_old_clients_after_their_replies(env):
    """Same listen address, redis -> memcached: a redis client cannot speak to
    the new pool, so it is let go after its replies; new clients get memcached."""
    r, m = env.redis(), env.memcached()
    la = listen_addr()
    px = env.proxy({"p": redis_pool([r], listen=la)}, verbose=5)
    c = px.resp("p")
    assert c.call("PING") == b"PONG"
    assert px.reload({"p": mc_pool([m], listen=la)})
    c.s.settimeout(5)
    assert c.s.recv(100) == b""
    assert px.mc("p").cmd(b"set k 0 0 1", b"x") == b"STORED"


@pytest.mark.parametrize("workers", [0, 2], ids=["one_process", "two_workers"])
def test_reloads_under_load_lose_nothing(env, workers):
    """Clients hammer SET/GET on kept connections and on fresh ones while the
    file is reloaded again and again (a timeout and a second pool come and go,
    keys stay put): every request is answered correctly, no connect refused.
    With workers, the master passes each reload to every worker."""
    r1, r2 = env.redis(), env.redis()
    la, lb = listen_addr(), listen_addr()
    plain = {"a": redis_pool([r1, r2], listen=la)}
    other = {"a": redis_pool([r1, r2], listen=la, timeout=3000), "b": redis_pool([r1], listen=lb)}
    glob = {"worker_processes": workers} if workers else None
    px = env.proxy(plain, verbose=5, global_=glob)
    stop, errors, done = threading.Event(), [], [0]

    def worker(n):
        from conftest import Resp
        c = Resp(port=px.port("a"), timeout=10)
        i = 0
        while not stop.is_set():
            try:
                if i % 50 == 0:  # a fresh connection now and then
                    c.close()
                    c = Resp(port=px.port("a"), timeout=10)
                key, val = "w%d:%d" % (n, i % 97), "v%d" % i
                got = c.pipeline([("SET", key, val), ("GET", key)])
                if got != [b"OK", val.encode()]:
                    errors.append((key, got))
                done[0] += 1
            except (OSError, AssertionError, RespError) as e:
                errors.append(repr(e))
            i += 1
        c.close()

    def more_done(n=20):
        # each reload happens under load: the clients got n more answers since the last one
        start = done[0]
        wait_until(lambda: done[0] >= start + n or errors, "%d more SET+GET pairs answered" % n, timeout=10)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    try:
        for k in range(6):
            more_done()
            assert px.reload(other if k % 2 == 0 else plain, glob)
        more_done()
    finally:
        stop.set()
        for t in threads:
            t.join(20)
    print("\n[reloads under load, %d workers] 6 reloads, %d SET+GET pairs, %d errors"
          % (workers, done[0], len(errors)))
    assert errors == []
    assert done[0] > 100
    assert px.alive()


def test_sentinel_pool_reload_keeps_the_master_connection(env):
    """A sentinel pool reloaded with a new heartbeat: the group keeps the master
    address the sentinels gave it and its connection; requests go on at once."""
    from test_sentinel import sentinel_pool, start_sentinels
    m = env.redis()
    sentinels = start_sentinels(env, {"g": m}, n=1, quorum=1)
    la = listen_addr()
    px = env.proxy({"s": sentinel_pool(["g"], sentinels, listen=la)}, verbose=5)
    c = px.resp("s")
    wait_until(lambda: c.call("SET", "k", "1") == b"OK", "the group's master known", timeout=10)
    def setters():  # ids of the master's connections whose last command was a SET
        return sorted(cl["id"] for cl in m.client().client_list() if cl["cmd"] == "set")
    before = setters()
    assert len(before) == 1
    assert px.reload({"s": sentinel_pool(["g"], sentinels, listen=la, sentinel_heartbeat=500)})
    assert c.call("SET", "k", "2") == b"OK"  # no wait for the sentinels: the address was kept
    assert m.client().get("k") == b"2"
    assert setters() == before, "the proxy's connection to the master was not kept"
