"""Multi-key commands split across 4 servers and merged (SPEC 5.1).

Backends run on free ports; where each key must land is computed with the
fnv1a_64 + ketama model in conftest.py, which is first checked against
config A of vectors/placement.tsv (those vectors use fixed ports; the model
lets this module use any ports).
"""

import hashlib

import pytest

from conftest import placement, read_placement_vectors, redis_pool, spread_keys

# fnv1a_64 (reduced to 32 bits) maps "key:0".."key:9" to neighbouring points,
# so use keys with more entropy to spread over whatever ports this run has.
KEYS = ["key:%s" % hashlib.md5(b"%d" % i).hexdigest()[:12] for i in range(200)]


@pytest.fixture(scope="module")
def cluster(menv):
    rows = [r for r in read_placement_vectors() if r[0] == "A"]
    names = ["127.0.0.1:%d" % p for p in (7401, 7402, 7403, 7404)]
    model = placement([k for _, k, _ in rows], names)
    bad = [(k, s) for _, k, s in rows if s.rsplit(":", 1)[0] != model[k]]
    assert not bad, "harness placement model disagrees with placement.tsv config A: %r" % bad

    servers = menv.redises(4)
    px = menv.proxy({
        "plain": redis_pool(servers),
        "tagged": redis_pool(servers, hash_tag='"{}"'),
    })
    where = placement(KEYS, servers)
    assert len(set(s.port for s in where.values())) == 4, "test keys do not cover all 4 servers"
    return servers, px, where


@pytest.fixture
def clean(cluster):
    servers, px, where = cluster
    for s in servers:
        s.client().flushall()
    return cluster


def backend_keys(servers):
    return {s.port: set(k.decode() for k in s.client().keys("*")) for s in servers}


def expected_keys(servers, where, keys):
    out = {s.port: set() for s in servers}
    for k in keys:
        out[where[k].port].add(k)
    return out


def test_mset_places_every_key_on_its_server(clean):
    servers, px, where = clean
    c = px.resp()
    args = []
    for k in KEYS:
        args += [k, "v-" + k]
    assert c.call("MSET", *args) == b"OK"
    assert backend_keys(servers) == expected_keys(servers, where, KEYS)
    for k in KEYS[:20]:
        assert where[k].client().get(k) == ("v-" + k).encode()


def test_mget_in_key_order_with_misses_and_duplicates(clean):
    servers, px, where = clean
    present = KEYS[:120]
    for k in present:
        where[k].client().set(k, "val:" + k)  # written directly on the server the key belongs to
    query = []
    for i, k in enumerate(KEYS[:160]):
        query.append(k)
        if i % 7 == 0:
            query.append(KEYS[i // 2])     # duplicate of an earlier key
        if i % 11 == 0:
            query.append("missing:%d" % i)
    want = [("val:" + k).encode() if k in present else None for k in query]
    c = px.resp()
    assert c.call("MGET", *query) == want


def test_mget_with_redis_py(clean):
    servers, px, where = clean
    r = px.client()
    assert r.mset({k: k.upper() for k in KEYS[:50]})
    assert r.mget(KEYS[:50] + ["nope", KEYS[0]]) == [k.upper().encode() for k in KEYS[:50]] + [None, KEYS[0].upper().encode()]
    assert backend_keys(servers) == expected_keys(servers, where, KEYS[:50])


@pytest.mark.parametrize("cmd", ["DEL", "UNLINK"])
def test_delete_sums_counts_and_removes_from_each_server(clean, cmd):
    servers, px, where = clean
    for k in KEYS[:60]:
        where[k].client().set(k, "x")
    c = px.resp()
    args = KEYS[:40] + ["gone:1", "gone:2", KEYS[3], KEYS[17]]
    assert c.call(cmd, *args) == 40
    assert backend_keys(servers) == expected_keys(servers, where, KEYS[40:60])
    assert c.call(cmd, *KEYS[:40]) == 0


def test_touch_sums_counts(clean):
    servers, px, where = clean
    for k in KEYS[:30]:
        where[k].client().set(k, "x")
    c = px.resp()
    args = KEYS[:30] + ["gone:1", "gone:2"]
    # redis counts every existing key argument
    assert c.call("TOUCH", *args) == 30
    assert c.call("TOUCH", "gone:3") == 0


def test_exists_single_key(clean):
    servers, px, where = clean
    where[KEYS[5]].client().set(KEYS[5], "x")
    c = px.resp()
    assert c.call("EXISTS", KEYS[5]) == 1
    assert c.call("EXISTS", KEYS[6]) == 0


def test_exists_multi_key_is_split_and_summed(clean):
    """Ours: twemproxy sends EXISTS whole to the first key's server."""
    servers, px, where = clean
    on = {}
    for k in KEYS:
        on.setdefault(where[k].port, k)
    keys = list(on.values())           # one key on each of the 4 servers
    for k in keys:
        where[k].client().set(k, "x")
    c = px.resp()
    assert c.call("EXISTS", *keys) == 4
    assert c.call("EXISTS", *(keys + ["gone:1", keys[2]])) == 5   # duplicates count, like redis


def test_large_mget_spread_over_servers(clean):
    servers, px, where = clean
    keys = spread_keys("big", 1000)
    r = px.client()
    r.mset({k: "%s=%d" % (k, i) for i, k in enumerate(keys)})
    assert r.mget(keys) == [("%s=%d" % (k, i)).encode() for i, k in enumerate(keys)]
    counts = [s.client().dbsize() for s in servers]
    assert sum(counts) == 1000 and all(n > 0 for n in counts)


def test_hash_tag_keeps_tagged_keys_together(clean):
    servers, px, where = clean
    c = px.resp("tagged")
    tags = ["u" + hashlib.md5(b"%d" % i).hexdigest()[:8] for i in range(12)]
    keys = ["{%s}:%s" % (t, f) for t in tags for f in ("name", "mail", "age")]
    args = []
    for k in keys:
        args += [k, k]
    assert c.call("MSET", *args) == b"OK"
    tag_server = placement(tags, servers)
    want = {s.port: set() for s in servers}
    for t in tags:
        want[tag_server[t].port].update("{%s}:%s" % (t, f) for f in ("name", "mail", "age"))
    assert backend_keys(servers) == want
    assert len([p for p, ks in want.items() if ks]) > 1, "tags should spread over several servers"
    # a multi-key command inside one tag goes to that one server
    t = tags[0]
    assert c.call("RPUSH", "{%s}:list" % t, "a") == 1
    assert c.call("RPOPLPUSH", "{%s}:list" % t, "{%s}:other" % t) == b"a"
    assert tag_server[t].client().lrange("{%s}:other" % t, 0, -1) == [b"a"]


def test_hash_tag_without_closing_char_uses_whole_key(clean):
    servers, px, where = clean
    c = px.resp("tagged")
    for k in ["{open:%d" % i for i in range(20)] + ["{}:%d" % i for i in range(20)]:
        assert c.call("SET", k, "v") == b"OK"
        want = placement([k], servers)[k]          # empty or unclosed tag: the whole key is hashed
        assert want.client().get(k) == b"v", k
