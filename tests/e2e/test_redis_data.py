"""Payload handling: large values, binary-safe keys and values, key placement of odd keys."""

import os

import pytest

from conftest import placement, redis_pool, spread_keys


@pytest.fixture(scope="module")
def cluster(menv):
    servers = menv.redises(4)
    px = menv.proxy({"alpha": redis_pool(servers)})
    return servers, px


@pytest.mark.parametrize("size", [1 << 20, 20 << 20], ids=["1MB", "20MB"])
def test_large_value_roundtrip(cluster, size):
    servers, px = cluster
    value = os.urandom(size)
    key = "large:%d" % size
    r = px.client(socket_timeout=60)
    assert r.set(key, value)
    assert r.get(key) == value
    owner = placement([key], servers)[key]
    assert owner.client().strlen(key) == size
    assert r.delete(key) == 1


def test_large_values_in_one_mget(cluster):
    servers, px = cluster
    r = px.client(socket_timeout=60)
    vals = {"lm:%d" % i: os.urandom(1 << 20) for i in range(6)}
    assert r.mset(vals)
    assert r.mget(list(vals)) == list(vals.values())


def test_binary_safe_keys_and_values(cluster):
    servers, px = cluster
    r = px.client()
    keys = [b"bin\x00key", b"crlf\r\nkey", b"high\xff\xfe\x80key", b"\xc3\xa9:1", b"$5\r\n*3", bytes(range(1, 64))]
    value = bytes(range(256)) * 8 + b"\r\n\x00"
    for k in keys:
        assert r.set(k, value + k)
    for k in keys:
        assert r.get(k) == value + k
    # every key is stored, byte for byte, on the server twemproxy's hash picks
    # (fnv1a_64 with sign-extended chars for bytes >= 0x80)
    where = placement(keys, servers)
    for k in keys:
        assert where[k].client().get(k) == value + k, k


def test_binary_safe_hash_fields(cluster):
    servers, px = cluster
    r = px.client()
    fields = {b"f\x00": b"\x00\x01", b"f\r\n": b"\r\n\r\n", b"\xff": b""}
    assert r.hset(b"bin:h", mapping=fields) == 3
    assert r.hgetall(b"bin:h") == fields


def test_empty_value(cluster):
    servers, px = cluster
    r = px.client()
    assert r.set("empty:v", b"")
    assert r.get("empty:v") == b""
    assert r.strlen("empty:v") == 0


def test_many_small_keys_spread_like_twemproxy(cluster):
    servers, px = cluster
    for s in servers:
        s.client().flushall()
    r = px.client()
    keys = spread_keys("spread", 400)
    p = r.pipeline(transaction=False)
    for k in keys:
        p.set(k, "1")
    assert all(p.execute())
    where = placement(keys, servers)
    for s in servers:
        stored = set(k.decode() for k in s.client().keys("*"))
        assert stored == set(k for k in keys if where[k] is s)
