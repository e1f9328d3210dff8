"""Stats (SPEC 3): the stats port's JSON (layout compared with Debian's
twemproxy, values checked against the traffic sent), -D, our latency keys, and
the Prometheus endpoint (--metrics-port)."""

import contextlib
import json
import os
import re
import signal
import socket
import time

import pytest

from conftest import (HOST, NUTCRACKER_BIN, RespError, encode_command, free_port, mc_pool, placement, recv_all, redis_pool,
                      spread_keys, wait_port, wait_until)
from liveness_util import (COUNTERS, POOL_FIELDS, POOL_LATENCY, POOL_OURS, SERVER_FIELDS, SERVER_LATENCY, TOP_FIELDS, TOP_OURS,
                           TWEMPROXY_BIN, Prom, crash, http_get, keys_by_server, layout_skeleton, ordered,
                           prom_name, raw_stats, run_capture, stalled, start_binary)

needs_twemproxy = pytest.mark.skipif(not os.path.exists(TWEMPROXY_BIN), reason="Debian nutcracker not installed")


def _layout_pools(ports):
    """Pools whose names and servers are out of order in the file (ports: 5 numbers)."""
    return {
        "alpha": {"redis": True, "servers": ["%s:%d:1 srv10" % (HOST, ports[0]), "%s:%d:1 a" % (HOST, ports[1]),
                                             "%s:%d:1 srv2" % (HOST, ports[2])]},
        "zz": {"servers": ["%s:%d:1" % (HOST, ports[3]), "%s:11211:1" % HOST]},
        "b": {"redis": True, "servers": ["%s:%d:1" % (HOST, ports[4])]},
    }


# --------------------------------------------------------------------------- the document

def test_stats_port_sends_one_document_and_closes(env):
    s = env.redis()
    px = env.proxy({"alpha": redis_pool([s])})
    t0 = time.time()
    for _ in range(2):  # every connection gets its own document
        raw = raw_stats(px.stats_port)  # returns only once the proxy closes
        assert raw.endswith(b"}\n") and raw.count(b"\n") == 1, raw[-200:]
        doc = json.loads(raw)
        assert [k for k, _ in ordered(raw)] == TOP_FIELDS + TOP_OURS + ["alpha"]
        assert doc["service"] == "nutcracker"
        assert doc["version"] == "0.5.0"
        assert doc["source"] == socket.gethostname()
        assert type(doc["timestamp"]) is int and abs(doc["timestamp"] - t0) < 5
        assert 0 <= doc["uptime"] < 30


def test_stats_json_stays_valid_with_quotes_in_names(env):
    """Ours: a pool or server name with a double quote or a backslash is escaped
    (twemproxy writes names raw, and its document no longer parses)."""
    s = env.redis()
    name = 'he said "hi" \\ ok'
    px = env.proxy({"'%s'" % name: redis_pool(["%s:1 'm\"x'" % s.addr])})
    doc = json.loads(raw_stats(px.stats_port))
    assert name in doc, list(doc)
    assert [k for k, v in doc[name].items() if isinstance(v, dict)] == ["'m\"x'"]


def test_stats_key_order(env):
    """Top keys, then pools sorted by name (shorter first); in each pool
    twemproxy's fields, our latency keys, then servers sorted by name; in each
    server twemproxy's fields then our server_latency keys."""
    ports = [free_port() for _ in range(5)]
    pools = _layout_pools(ports)
    px = env.proxy(pools)
    doc = ordered(raw_stats(px.stats_port))
    assert [k for k, _ in doc] == TOP_FIELDS + TOP_OURS + ["b", "zz", "alpha"]
    # shorter name first, then bytewise
    want_servers = {"alpha": ["a", "srv2", "srv10"], "zz": ["127.0.0.1", "127.0.0.1:%d" % ports[3]],
                    "b": ["127.0.0.1:%d" % ports[4]]}
    assert [v for _, v in doc[len(TOP_FIELDS):len(TOP_FIELDS) + len(TOP_OURS)]] == [1, 0, "none"]
    pool_keys = POOL_FIELDS + POOL_OURS + POOL_LATENCY
    for name, pool in doc[len(TOP_FIELDS) + len(TOP_OURS):]:
        assert [k for k, _ in pool] == pool_keys + want_servers[name], name
        for sname, server in pool[len(pool_keys):]:
            assert [k for k, _ in server] == SERVER_FIELDS + SERVER_LATENCY, (name, sname)
            assert all(type(v) is int for _, v in server), server
        assert all(type(v) is int for _, v in pool[:len(pool_keys)])


@needs_twemproxy
def test_stats_layout_matches_twemproxy(env):
    """Same config in Debian's nutcracker and ours: byte-identical JSON once
    the numbers are blanked and our latency keys removed (same key order,
    same separators such as `"fragments":0, "127.0.0.1:6380": {` and `}},"b": {`)."""
    ports = [free_port() for _ in range(5)]
    docs = {}
    for binary in (TWEMPROXY_BIN, NUTCRACKER_BIN):
        pools = _layout_pools(ports)
        for pool in pools.values():
            pool["listen"] = "%s:%d" % (HOST, free_port())
        conf = env.write_conf(pools)
        sport = free_port()
        px = start_binary(env, binary, conf, sport, name="twemproxy" if binary == TWEMPROXY_BIN else "ours")
        assert wait_port(sport, px.proc), "%s did not start:\n%s" % (binary, px.log_tail())
        docs[binary] = raw_stats(sport)
        px.stop()
    ours, theirs = layout_skeleton(docs[NUTCRACKER_BIN]), layout_skeleton(docs[TWEMPROXY_BIN])
    assert ours == theirs, "\nours:   %s\ntheirs: %s" % (ours, theirs)


@needs_twemproxy
def test_describe_stats_matches_twemproxy():
    rc_t, out_t, err_t = run_capture([TWEMPROXY_BIN, "-D"])
    rc_o, out_o, err_o = run_capture([NUTCRACKER_BIN, "-D"])
    assert (rc_o, out_o) == (rc_t, out_t) == (0, "")
    assert err_o == err_t
    assert "fragments" in err_o and "server_ejected_at" in err_o


# --------------------------------------------------------------------------- values against traffic

def test_counters_match_traffic(env):
    """100 SETs of a known size to one key (redis and memcached pools): that
    server's requests, request_bytes, responses, response_bytes are exact, the
    other server saw nothing, and the queues are empty afterwards."""
    rs, ms = env.redises(2), env.memcacheds(2)
    px = env.proxy({"r": redis_pool(rs), "m": mc_pool(ms)})
    n = 100
    rkey = "cnt:redis"
    rcmd = encode_command("SET", rkey, "x" * 37)
    c = px.resp()
    c.send(rcmd * n)
    assert [c.read_reply() for _ in range(n)] == [b"OK"] * n

    mkey = b"cnt:mc"
    mcmd = b"set %s 0 0 29\r\n%s\r\n" % (mkey, b"y" * 29)
    m = px.mc("m")
    m.send(mcmd * n)
    assert [m.readline() for _ in range(n)] == [b"STORED"] * n

    rt = placement([rkey], rs)[rkey]
    mt = placement([mkey], ms)[mkey]
    st = px.wait_stats(lambda st: st["r"][rt.addr]["responses"] >= n and st["m"][mt.addr]["responses"] >= n)
    for pool, target, servers, req_len, rsp_len in (("r", rt, rs, len(rcmd), len(b"+OK\r\n")),
                                                     ("m", mt, ms, len(mcmd), len(b"STORED\r\n"))):
        got = st[pool][target.addr]
        assert (got["requests"], got["request_bytes"], got["responses"], got["response_bytes"]) == \
            (n, n * req_len, n, n * rsp_len), (pool, got)
        assert (got["in_queue"], got["in_queue_bytes"], got["out_queue"], got["out_queue_bytes"]) == (0, 0, 0, 0), got
        assert got["server_connections"] == 1, got
        for s in servers:
            if s is not target:
                other = st[pool][s.addr]
                assert (other["requests"], other["request_bytes"], other["responses"]) == (0, 0, 0), other
                assert other["server_connections"] == 0, other  # never needed: never connected
        assert st[pool]["fragments"] == 0
        assert st[pool]["forward_error"] == 0


def test_queue_gauges_with_stalled_backend(env):
    """Requests written to a stalled backend are counted in out_queue /
    out_queue_bytes until answered."""
    s = env.redis()
    px = env.proxy({"alpha": redis_pool([s])})
    c = px.resp()
    assert c.call("SET", "q:k", "v") == b"OK"  # connected before the stall
    cmd = encode_command("GET", "q:k")
    with stalled(s):
        c.send(cmd * 10)
        st = px.wait_stats(lambda st: st["alpha"][s.addr]["out_queue"] >= 10)
        got = st["alpha"][s.addr]
        assert (got["out_queue"], got["out_queue_bytes"], got["in_queue"], got["in_queue_bytes"]) == \
            (10, 10 * len(cmd), 0, 0), got
    assert [c.read_reply() for _ in range(10)] == [b"v"] * 10
    st = px.wait_stats(lambda st: st["alpha"][s.addr]["out_queue"] == 0)
    got = st["alpha"][s.addr]
    assert (got["out_queue"], got["out_queue_bytes"]) == (0, 0), got


def test_fragments_counted(env):
    """Ours (twemproxy never counts it): an MGET over 3 servers counts one
    fragment per server; an MGET whose keys all live on one server counts none."""
    servers = env.redises(3)
    px = env.proxy({"alpha": redis_pool(servers)})
    keys, where, groups = keys_by_server(servers, "fr", 4)
    mixed = [groups[s.addr][i] for i in range(2) for s in servers]
    c = px.resp()
    assert c.call("MGET", *mixed) == [None] * len(mixed)
    st = px.wait_stats(lambda st: st["alpha"]["fragments"] >= 3)
    assert st["alpha"]["fragments"] == 3, st["alpha"]
    for s in servers:
        assert st["alpha"][s.addr]["requests"] == 1, st["alpha"][s.addr]
    one = groups[servers[0].addr][:4]
    assert c.call("MGET", *one) == [None] * 4
    st = px.wait_stats(lambda st: st["alpha"][servers[0].addr]["requests"] >= 2)
    assert st["alpha"][servers[0].addr]["requests"] == 2
    assert st["alpha"]["fragments"] == 3, st["alpha"]


def test_client_connections_and_eof(env):
    """client_connections follows the open clients, client_eof counts the
    ones that closed, curr/total_connections move with them."""
    s = env.redis()
    px = env.proxy({"alpha": redis_pool([s])})
    base = px.wait_idle()
    b = base["alpha"]
    assert b["client_connections"] == 0
    clients = [px.resp() for _ in range(4)]
    for c in clients:
        assert c.call("PING") == b"PONG"
    st = px.wait_stats(lambda st: st["alpha"]["client_connections"] >= 4)
    assert st["alpha"]["client_connections"] == 4, st["alpha"]
    assert st["curr_connections"] - base["curr_connections"] == 4
    assert st["total_connections"] - base["total_connections"] == 4
    assert st["alpha"]["client_eof"] == b["client_eof"]
    for c in clients[:3]:
        c.close()
    st = px.wait_stats(lambda st: st["alpha"]["client_eof"] >= b["client_eof"] + 3)
    assert st["alpha"]["client_eof"] == b["client_eof"] + 3, st["alpha"]
    assert st["alpha"]["client_connections"] == 1, st["alpha"]
    assert st["curr_connections"] - base["curr_connections"] == 1
    assert st["total_connections"] - base["total_connections"] == 4
    assert st["alpha"]["client_err"] == b["client_err"]
    clients[3].close()
    st = px.wait_stats(lambda st: st["alpha"]["client_eof"] >= b["client_eof"] + 4, "the last client's EOF")
    assert (st["alpha"]["client_connections"], st["curr_connections"]) == (0, base["curr_connections"]), st


def _error_traffic(port, refused, stalled_key, slow, split):
    """Requests that fail in the proxy, each on a connection of its own: three
    GETs to a refused server, one that times out, an MGET with a key on the
    refused server; then a QUIT. Returns the replies (None: closed first)."""
    out = []
    for cmd in ([("GET", refused)] * 3 + [("GET", stalled_key)] + [("MGET",) + split] + [("QUIT",)]):
        s = socket.create_connection((HOST, port), timeout=5)
        try:
            with stalled(slow) if cmd[1:] == (stalled_key,) else contextlib.nullcontext():
                s.sendall(encode_command(*cmd))
                out.append(s.recv(4096) or None)
        finally:
            s.close()
    return out


def test_error_counters_as_twemproxy_counts_them(env):
    """forward_error counts each client request the proxy answers with an
    error of its own instead of a server's reply (a refused connection, a
    timeout, a split request with a failed fragment: once), whenever the
    failure comes; client_eof + client_err count each closed client (QUIT
    included). The same traffic through Debian's nutcracker gives the same
    figures (it closes the client whose MGET failed: client_err there)."""
    live, dead, slow = env.redises(3)
    keys = spread_keys("ec", 200)
    where = placement(keys, [live, dead, slow])
    refused = [k for k in keys if where[k] is dead][0]
    stalled_key = [k for k in keys if where[k] is slow][0]
    split = (refused, [k for k in keys if where[k] is live][0])
    crash(dead)
    binaries = [NUTCRACKER_BIN] + ([TWEMPROXY_BIN] if os.path.exists(TWEMPROXY_BIN) else [])
    for binary in binaries:
        port, sport = free_port(), free_port()
        conf = env.write_conf({"alpha": redis_pool([live, dead, slow], timeout=300,
                                                   listen="%s:%d" % (HOST, port))})
        px = start_binary(env, binary, conf, sport, name="twemproxy" if binary == TWEMPROXY_BIN else "ours")
        assert wait_port(port, px.proc), px.log_tail()
        replies = _error_traffic(port, refused, stalled_key, slow, split)
        assert replies[:3] == [b"-ERR Connection refused\r\n"] * 3, (binary, replies)
        assert replies[3] == b"-ERR Connection timed out\r\n", (binary, replies)
        assert replies[4] == b"-ERR Connection refused\r\n", (binary, replies)

        def counted():
            a = px.stats()["alpha"]
            return (a["forward_error"], a["client_eof"] + a["client_err"], a["client_connections"])
        # 6 clients, and wait_port's probe connection
        wait_until(lambda: counted() == (5, 7, 0), lambda: "%s: (forward_error, closed clients, open "
                   "clients) (5, 7, 0): %s" % (binary, counted()))
        px.stop()


def test_latency_keys_sane(env):
    """Our latency keys: zero before traffic, then ordered p50 <= p90 <= p99
    <= p999, consistent with max, positive and below 10 s."""
    servers = env.redises(2)
    px = env.proxy({"alpha": redis_pool(servers)})
    st = px.stats()
    assert all(st["alpha"][k] == 0 for k in POOL_LATENCY), st["alpha"]
    key = "lat:k"
    target = placement([key], servers)[key]
    c = px.resp()
    for i in range(200):
        assert c.call("SET", key, str(i)) == b"OK"
    st = px.wait_stats(lambda st: st["alpha"]["latency_max_us"] > 0 and
                    st["alpha"][target.addr]["server_latency_max_us"] > 0)

    def check(vals, label):
        p50, p90, p99, p999, mx = vals
        assert 0 < p50 <= p90 <= p99 <= p999, (label, vals)
        assert 0 < mx < 10_000_000 and p999 < 10_000_000, (label, vals)
        assert p50 <= mx * 1.1 + 1, (label, vals)  # quantiles are bucket bounds: within 1/16

    check([st["alpha"][k] for k in POOL_LATENCY], "pool")
    check([st["alpha"][target.addr][k] for k in SERVER_LATENCY], target.addr)
    other = [s for s in servers if s is not target][0]
    assert all(st["alpha"][other.addr][k] == 0 for k in SERVER_LATENCY), st["alpha"][other.addr]


# --------------------------------------------------------------------------- Prometheus

def _metrics_proxy(env, pools, args):
    mport = free_port()
    px = env.proxy(pools, extra_args=args(mport))
    assert wait_port(mport, px.proc, timeout=5), \
        "no metrics listener on %d\n%s" % (mport, px.log_tail())
    return px, mport


def test_prometheus_metrics(env):
    """--metrics-port: GET /metrics answers the Prometheus text format with
    the same counters as the JSON (request count matches the traffic) and
    latency summaries; / is the status page, other paths get 404."""
    servers = env.redises(2)
    px, mport = _metrics_proxy(env, {"alpha": redis_pool(servers)},
                               lambda p: ["--metrics-port=%d" % p, "--metrics-addr=%s" % HOST])
    key = "prom:k"
    target = placement([key], servers)[key]
    other = [s for s in servers if s is not target][0]
    n = 100
    c = px.resp()
    c.send(encode_command("SET", key, "v") * n)
    assert [c.read_reply() for _ in range(n)] == [b"OK"] * n
    st = px.wait_stats(lambda st: st["alpha"][target.addr]["responses"] >= n)

    status, headers, body = http_get(mport, "/metrics")
    assert status == 200, body[:300]
    assert headers.get("content-type", "").startswith("text/plain"), headers
    prom = Prom(body)
    # a counter family X owns the sample X_total (OpenMetrics): no other family is named X
    clash = [n for n, t in prom.types.items() if t == "counter" and n[:-len("_total")] in prom.types]
    assert clash == [], clash
    assert prom.types.get("nutcracker_curr_connections") == "gauge"
    pool = {"pool": "alpha"}
    for f in POOL_FIELDS:
        name = prom_name(f, True)
        assert prom.types.get(name) == ("counter" if f in COUNTERS else "gauge"), name
        assert prom.get(name, **pool) == st["alpha"][f], (name, prom.family(name))
    for s in servers:
        lab = {"pool": "alpha", "server": s.addr}
        for f in SERVER_FIELDS:
            name = prom_name(f, False)
            assert prom.types.get(name) == ("counter" if f in COUNTERS else "gauge"), name
            assert prom.get(name, **lab) == st["alpha"][s.addr][f], (name, prom.family(name))
    assert prom.get("nutcracker_server_requests_total", pool="alpha", server=target.addr) == n
    assert prom.get("nutcracker_server_requests_total", pool="alpha", server=other.addr) == 0
    assert prom.get("nutcracker_server_response_bytes_total", pool="alpha", server=target.addr) == 5 * n

    for fam, labels, count in (("nutcracker_request_latency_seconds", pool, n),
                               ("nutcracker_server_latency_seconds", {"pool": "alpha", "server": target.addr}, n),
                               ("nutcracker_server_latency_seconds", {"pool": "alpha", "server": other.addr}, 0)):
        assert prom.types.get(fam) == "summary", fam
        qs = [prom.get(fam, quantile=q, **labels) for q in ("0.5", "0.9", "0.99", "0.999")]
        assert None not in qs, (fam, labels, prom.family(fam))
        assert prom.get(fam + "_count", **labels) == count, (fam, labels)
        total = prom.get(fam + "_sum", **labels)
        if count:
            assert 0 < qs[0] <= qs[1] <= qs[2] <= qs[3] < 10, (fam, qs)
            assert 0 < total < 10 * count, (fam, total)
        else:
            assert qs == [0, 0, 0, 0] and total == 0, (fam, qs, total)

    status, _, _ = http_get(mport, "/other")
    assert status == 404
    status, headers, body = http_get(mport, "/")
    assert status == 200 and headers.get("content-type", "").startswith("text/html"), headers
    assert px.alive()


def test_prometheus_server_states(env):
    """/metrics says what the status page says of each server: its address and
    role (nutcracker_server_info), its state as a one-hot gauge, its failures in
    a row. A server killed goes live -> failing (one failure) -> ejected
    (server_failure_limit 2); a master/replica pool shows its roles, and its
    replica that cannot be reached as no_reads."""
    live, dead = env.redises(2)
    replica_port = free_port()  # nothing listens there
    pools = {"alpha": redis_pool([live, dead], auto_eject_hosts=True, server_failure_limit=2,
                                 server_retry_timeout=60000),
             "split": redis_pool(["%s:1 master" % live.addr, "%s:%d:1" % (HOST, replica_port)])}
    px, mport = _metrics_proxy(env, pools, lambda p: ["--metrics-port=%d" % p, "--metrics-addr=%s" % HOST])

    def metrics():
        return Prom(http_get(mport, "/metrics")[2])

    def state(server, pool="alpha"):
        return metrics().state("nutcracker_server_state", pool=pool, server=server)

    prom = metrics()
    assert prom.types.get("nutcracker_server_state") == "gauge"
    assert prom.types.get("nutcracker_server_consecutive_failures") == "gauge"
    assert len(prom.family("nutcracker_server_info")) == 4
    for s in (live, dead):
        assert prom.get("nutcracker_server_info", pool="alpha", server=s.addr, addr=s.addr, role="shard") == 1
    replica = "%s:%d" % (HOST, replica_port)
    assert prom.get("nutcracker_server_info", pool="split", server="master", addr=live.addr, role="master") == 1
    assert prom.get("nutcracker_server_info", pool="split", server=replica, addr=replica, role="replica") == 1
    assert state(live.addr) == state(dead.addr) == state("master", "split") == "live"
    wait_until(lambda: state(replica, "split") == "no_reads", "the unreachable replica left out of reads")
    assert "nutcracker_worker_up" not in prom.types  # workers only

    key = [k for k, s in placement(spread_keys("st", 50), [live, dead]).items() if s is dead][0]
    crash(dead)
    c = px.resp()
    assert isinstance(c.call("GET", key), RespError)
    wait_until(lambda: state(dead.addr) == "failing", "one failure: failing")
    assert metrics().get("nutcracker_server_consecutive_failures", pool="alpha", server=dead.addr) == 1
    assert isinstance(c.call("GET", key), RespError)
    wait_until(lambda: state(dead.addr) == "ejected", "two failures: ejected")
    assert metrics().get("nutcracker_server_consecutive_failures", pool="alpha", server=dead.addr) == 2
    assert state(live.addr) == "live"
    assert metrics().get("nutcracker_server_consecutive_failures", pool="alpha", server=live.addr) == 0
    assert px.alive()


def test_prometheus_default_addr_is_stats_addr(env):
    """Without --metrics-addr the metrics listener binds the stats address (-a)."""
    s = env.redis()
    mport = free_port()
    px = env.proxy({"alpha": redis_pool([s])}, extra_args=["-a", "127.0.0.2", "--metrics-port=%d" % mport])
    assert wait_port(mport, px.proc, host="127.0.0.2"), px.log_tail()
    status, _, body = http_get(mport, "/metrics", host="127.0.0.2")
    assert status == 200 and "nutcracker_pool_client_connections" in body
    with pytest.raises(OSError):
        socket.create_connection((HOST, mport), timeout=2).close()


def test_stats_times_are_those_of_the_request(env):
    """uptime and timestamp are computed for each request, as twemproxy does:
    with -i 30000 they were up to 30 s old, and a monitor checking freshness
    saw a stall."""
    s = env.redis()
    px = env.proxy({"alpha": redis_pool([s])}, extra_args=["-i", "30000"])
    first = px.stats()
    time.sleep(2.1)
    second = px.stats()
    assert second["timestamp"] - first["timestamp"] >= 2, (first["timestamp"], second["timestamp"])
    assert second["uptime"] - first["uptime"] >= 2
    assert abs(second["timestamp"] - time.time()) < 2


@pytest.mark.parametrize("interval", ["30000", "0"])
def test_stats_counters_are_those_of_the_request(env, interval):
    """twemproxy's stats port gives the counters of the moment it is read (its
    aggregator sums them for each reader). Ours gave those of its last render,
    every -i ms: with Debian's -i 30000 a monitor polling every 10 s saw flat
    lines, then a jump (h47). And -i 0 hung the proxy: its render timer ran
    again and again in one turn of the loop, which served nothing more and did
    not stop on SIGTERM (h47)."""
    s = env.redis()
    px = env.proxy({"alpha": redis_pool([s])}, extra_args=["-i", interval])
    c = px.resp()
    for total in (10, 20, 30):
        for i in range(10):
            assert c.call("SET", "k%d" % i, "v") == b"OK"
        st = px.stats()
        assert (st["alpha"][s.addr]["requests"], st["alpha"]["client_connections"]) == (total, 1), st
    px.proc.send_signal(signal.SIGTERM)
    assert px.proc.wait(5) == 0


def _unread_scrape(port, request):
    """A scraper that asks, then never reads: its receive window as small as
    the kernel allows, so the reply cannot all leave."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1)
    s.connect((HOST, port))
    s.sendall(request)
    return s


def test_scrapers_that_do_not_read_hold_up_no_client(env):
    """A stats or /metrics reply larger than the socket takes, to a scraper that
    does not read: the proxy wrote it with a blocking write and a send timeout,
    so every pool stood still for seconds per such scraper (5 of them: 30 s).
    Now the reply waits for its reader alone; a client is answered at once."""
    s = env.redis()
    dead = ["127.0.0.1:%d:1 dead%d" % (1, i) for i in range(1500)]  # never connected to: no traffic
    mport = free_port()
    px = env.proxy({"alpha": redis_pool([s]), "big": redis_pool(dead)},
                   extra_args=["--metrics-port=%d" % mport, "--metrics-addr=%s" % HOST])
    assert wait_port(mport, px.proc, timeout=5)
    c = px.resp(timeout=10)
    assert c.call("SET", "k", "v") == b"OK"
    stuck = [_unread_scrape(mport, b"GET /metrics HTTP/1.0\r\n\r\n") for _ in range(3)]
    stuck += [_unread_scrape(px.stats_port, b"") for _ in range(3)]
    try:
        worst = 0.0
        for _ in range(20):
            t0 = time.monotonic()
            assert c.call("GET", "k") == b"v"
            worst = max(worst, time.monotonic() - t0)
            time.sleep(0.1)
        assert worst < 0.5, "a GET waited %.2f s behind the scrapers" % worst
        status, _, body = http_get(mport, "/metrics")  # another scraper is answered whole
        assert status == 200 and "dead1499" in body and body.endswith("\n")
    finally:
        for x in stuck:
            x.close()
    assert px.alive()


def test_a_metrics_answer_larger_than_the_socket_takes_reaches_a_reader_whole(env):
    """/metrics of a large pool does not fit in the socket at once: the rest
    goes as the scraper reads. The HTTP connection's read watcher was stopped
    after the answer's write watcher had started on the same socket, which took
    the socket out of the loop: the answer stopped where the first write ended
    and the connection closed 30 s later with the document cut."""
    with open("/proc/sys/net/ipv4/tcp_wmem") as f:
        send_max = int(f.read().split()[2])  # the most a socket's send buffer takes
    dead = ["127.0.0.1:%d:1 dead%d" % (1, i) for i in range(3000)]  # never connected to
    px, mport = _metrics_proxy(env, {"big": redis_pool(dead)},
                               lambda p: ["--metrics-port=%d" % p, "--metrics-addr=%s" % HOST])
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.settimeout(10)
    s.connect((HOST, mport))
    s.sendall(b"GET /metrics HTTP/1.0\r\n\r\n")
    time.sleep(0.3)  # the proxy's first write has ended on a full socket
    got = recv_all(s)
    s.close()
    head, _, body = got.partition(b"\r\n\r\n")
    length = int(re.search(rb"Content-Length: (\d+)", head).group(1))
    assert length > send_max, "the document (%d bytes) fits in one write" % length
    assert len(body) == length and body.endswith(b"\n")


def _http_raw(port, data):
    s = socket.create_connection((HOST, port), timeout=5)
    s.sendall(data)
    got = recv_all(s)
    s.close()
    return got


def test_metrics_port_speaks_http_methods_as_http_says(env):
    """HEAD gets GET's headers and no body (it got a 404 with one); another
    method gets 405 with Allow; a line that is no HTTP/1.x request line gets
    400 (it got 404, and HTTP/9.9 was served)."""
    s = env.redis()
    px, mport = _metrics_proxy(env, {"alpha": redis_pool([s])},
                               lambda p: ["--metrics-port=%d" % p, "--metrics-addr=%s" % HOST])
    get = _http_raw(mport, b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
    head = _http_raw(mport, b"HEAD /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
    assert get.startswith(b"HTTP/1.0 200 OK\r\n") and head.startswith(b"HTTP/1.0 200 OK\r\n")
    assert head.endswith(b"\r\n\r\n") and b"nutcracker_" not in head
    assert re.search(rb"Content-Length: (\d+)", head).group(1) == re.search(rb"Content-Length: (\d+)", get).group(1)
    post = _http_raw(mport, b"POST /metrics HTTP/1.1\r\nContent-Length: 0\r\n\r\n")
    assert post.startswith(b"HTTP/1.0 405 Method Not Allowed\r\n") and b"Allow: GET, HEAD\r\n" in post
    for bad in (b"BLAH\r\n\r\n", b"GET /metrics HTTP/9.9\r\n\r\n", b"GET metrics HTTP/1.1\r\n\r\n"):
        assert _http_raw(mport, bad).startswith(b"HTTP/1.0 400 Bad Request\r\n"), bad
    assert _http_raw(mport, b"GET /status.json?x=1 HTTP/1.0\r\n\r\n").startswith(b"HTTP/1.0 200 OK\r\n")
    assert _http_raw(mport, b"GET /nope HTTP/1.0\r\n\r\n").startswith(b"HTTP/1.0 404 Not Found\r\n")


def test_idle_connections_to_the_metrics_port_are_capped(env):
    """Connections that never send a request held a descriptor each for 5 s,
    without limit: under a low descriptor limit the proxy's clients found none
    left. Past 128 reading at once, a new one is closed at once."""
    s = env.redis()
    px, mport = _metrics_proxy(env, {"alpha": redis_pool([s])},
                               lambda p: ["--metrics-port=%d" % p, "--metrics-addr=%s" % HOST])
    idle = [socket.create_connection((HOST, mport), timeout=5) for _ in range(128)]
    try:
        extra = socket.create_connection((HOST, mport), timeout=2)  # (not the 5 s timeout's close)
        assert extra.recv(100) == b""  # closed unanswered, at once
        extra.close()
        c = px.resp()
        assert c.call("SET", "k", "v") == b"OK"
    finally:
        for x in idle:
            x.close()
    wait_until(lambda: http_get(mport, "/metrics")[0] == 200, "a scrape answered once they closed")


def test_metrics_port_reads_requests_as_rfc_9112_says(env):
    """A target in the absolute form is served (a server MUST accept it), an
    empty line before the request line is ignored (SHOULD), and a NUL byte
    gets its 400 at once (it was answered by the 5 s timeout's close)."""
    s = env.redis()
    px, mport = _metrics_proxy(env, {"alpha": redis_pool([s])},
                               lambda p: ["--metrics-port=%d" % p, "--metrics-addr=%s" % HOST])
    for req in (b"GET http://%s:%d/metrics HTTP/1.1\r\nHost: x\r\n\r\n" % (HOST.encode(), mport),
                b"GET HTTP://x/metrics?y=1 HTTP/1.0\r\n\r\n",
                b"\r\nGET /metrics HTTP/1.0\r\n\r\n"):
        got = _http_raw(mport, req)
        assert got.startswith(b"HTTP/1.0 200 OK\r\n") and b"nutcracker_pool_" in got, (req, got[:80])
    assert _http_raw(mport, b"GET http://x HTTP/1.0\r\n\r\n").startswith(b"HTTP/1.0 200 OK\r\n")  # the page
    for bad in (b"GET /met\0rics HTTP/1.0\r\n", b"\0\0\0", b"GET ftp://x/metrics HTTP/1.0\r\n\r\n"):
        t0 = time.monotonic()
        assert _http_raw(mport, bad).startswith(b"HTTP/1.0 400 Bad Request\r\n"), bad
        assert time.monotonic() - t0 < 2, bad


def test_a_peer_that_sends_more_than_it_is_read_gets_its_whole_answer(env):
    """The metrics port reads 8 KB of a request; a request with a 1 MB header
    is answered from them, and the stats port reads nothing: a client that
    sends "stats" there is answered too. Closed with those bytes unread, the
    socket was reset, and the reset made the client's kernel drop the answer
    it had not read yet (5 scrapes in 20 got 200 OK and no body). The write
    side is shut and what the peer still sends is dropped until it closes."""
    s = env.redis()
    px, mport = _metrics_proxy(env, {"alpha": redis_pool([s])},
                               lambda p: ["--metrics-port=%d" % p, "--metrics-addr=%s" % HOST])
    big = b"GET /metrics HTTP/1.0\r\nX-Big: " + b"a" * (1 << 20) + b"\r\n\r\n"
    for _ in range(10):
        got = _http_raw(mport, big)
        head, _, body = got.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.0 200 OK\r\n"), got[:80]
        assert len(body) == int(re.search(rb"Content-Length: (\d+)", head).group(1)) > 0
    for _ in range(10):
        doc = _http_raw(px.stats_port, b"stats\r\n" * 1000)
        assert json.loads(doc)["service"] == "nutcracker"
