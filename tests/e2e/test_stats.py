"""Stats port (SPEC 3): one JSON document per connection, twemproxy's shape."""

import time

import pytest

from conftest import placement, redis_pool, spread_keys

POOL_FIELDS = {"client_eof", "client_err", "client_connections", "server_ejects", "forward_error", "fragments"}
SERVER_FIELDS = {"server_eof", "server_err", "server_timedout", "server_connections", "server_ejected_at",
                 "requests", "request_bytes", "responses", "response_bytes", "in_queue", "in_queue_bytes",
                 "out_queue", "out_queue_bytes"}


@pytest.fixture
def two(env):
    servers = env.redises(2)
    px = env.proxy({"alpha": redis_pool(servers)})
    return servers, px


def wait_stats(px, pred, timeout=3.0):
    deadline = time.monotonic() + timeout
    while True:
        st = px.stats()
        if pred(st) or time.monotonic() > deadline:
            return st
        time.sleep(0.05)


def test_stats_document_shape(two):
    servers, px = two
    st = px.stats()
    assert st["service"] == "nutcracker"
    assert st["version"] == "0.5.0"
    for key in ("source", "uptime", "timestamp", "total_connections", "curr_connections"):
        assert key in st, key
    assert isinstance(st["timestamp"], int) and abs(st["timestamp"] - time.time()) < 60
    pool = st["alpha"]
    assert POOL_FIELDS <= set(pool)
    for s in servers:
        assert SERVER_FIELDS <= set(pool[s.addr]), s.addr
    pool_objs = [k for k, v in st.items() if isinstance(v, dict)]
    assert pool_objs == ["alpha"]


def test_stats_count_requests_per_server(two):
    servers, px = two
    keys = spread_keys("st", 40)
    where = placement(keys, servers)
    c = px.resp()
    for k in keys:
        assert c.call("SET", k, "v") == b"OK"
    want = {s.addr: sum(1 for k in keys if where[k] is s) for s in servers}
    st = wait_stats(px, lambda st: all(st["alpha"][a]["requests"] >= n for a, n in want.items()))
    for a, n in want.items():
        assert st["alpha"][a]["requests"] == n, (a, st["alpha"][a])
        assert st["alpha"][a]["responses"] == n
        assert st["alpha"][a]["server_connections"] == (1 if n else 0)


def test_stats_count_client_connections(two):
    servers, px = two
    conns = [px.resp() for _ in range(3)]
    for c in conns:
        assert c.call("PING") == b"PONG"
    st = wait_stats(px, lambda st: st["alpha"]["client_connections"] == 3)
    assert st["alpha"]["client_connections"] == 3
    for c in conns:
        c.close()
    st = wait_stats(px, lambda st: st["alpha"]["client_eof"] >= 3)
    assert st["alpha"]["client_eof"] >= 3
    assert st["alpha"]["client_connections"] == 0


def test_stats_count_fragments(two):
    """Ours: twemproxy never counts fragments."""
    servers, px = two
    keys = spread_keys("fr", 20)
    assert len(set(s.port for s in placement(keys, servers).values())) == 2
    assert px.resp().call("MGET", *keys) == [None] * len(keys)
    st = wait_stats(px, lambda st: st["alpha"]["fragments"] > 0)
    assert st["alpha"]["fragments"] > 0
