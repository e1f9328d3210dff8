"""Keyless commands about the whole dataset (SCAN, KEYS, RANDOMKEY, DBSIZE): forwarded
where the pool is one dataset (one server; a master and its replicas); where the keys
are sharded over several servers, SCAN walks them one after the other and the others
are asked of every server and merged. The client sees one dataset either way."""

import pytest

from conftest import TWEMPROXY, redis_pool, spread_keys
from replica_util import wait_replicated
from test_replica_reads import split_pool, start_replicated

pytestmark = pytest.mark.skipif(TWEMPROXY, reason="twemproxy refuses them in every pool")

KEYS = spread_keys("ds", 60)


def scan_all(c, *opts):
    """Every key SCAN returns, following the cursor to 0."""
    seen, cursor, rounds = [], b"0", 0
    while True:
        cursor, batch = c.call("SCAN", cursor, *opts)
        seen.extend(k.decode() for k in batch)
        rounds += 1
        if cursor == b"0":
            return seen, rounds


def check_dataset(c, keys):
    seen, rounds = scan_all(c, "COUNT", "10")
    assert sorted(set(seen)) == sorted(keys) and rounds > 1  # the cursor was followed
    match, _ = scan_all(c, "MATCH", keys[0], "COUNT", "1000")
    assert match == [keys[0]]
    assert sorted(k.decode() for k in c.call("KEYS", "ds:*")) == sorted(keys)
    assert c.call("DBSIZE") == len(keys)
    assert c.call("RANDOMKEY").decode() in keys


def test_one_server_pool_scans_every_key(env):
    s = env.redis()
    px = env.proxy({"alpha": redis_pool([s])})
    c = px.resp()
    for k in KEYS:
        assert c.call("SET", k, "v") == b"OK"
    check_dataset(c, KEYS)


def test_master_replica_pool_scans_every_key(env):
    master, replicas = start_replicated(env)
    px = env.proxy({"alpha": split_pool(master, replicas)})
    c = px.resp()
    for k in KEYS:
        assert c.call("SET", k, "v") == b"OK"
    wait_replicated(master, replicas)
    check_dataset(c, KEYS)


def test_sharded_pool_scans_every_key(env):
    servers = env.redises(3)
    px = env.proxy({"alpha": redis_pool(servers)})
    c = px.resp()
    for k in KEYS:
        assert c.call("SET", k, "v") == b"OK"
    assert all(s.client().dbsize() > 0 for s in servers)  # KEYS differ in content: spread
    check_dataset(c, KEYS)
    assert c.call("SET", "ds:after", "1") == b"OK"  # the connection goes on
