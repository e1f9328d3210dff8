"""Every multi-key command of the command table, in a 3-server pool: keys on several
servers are refused with CROSSSLOT and change nothing anywhere; keys that share a hash
tag run, and every key they write is where the proxy looks for it.

The commands come from the table itself (src/proto/redis_cmds.def via redis_table.py):
a multi-key command added by a new redis makes test_every_multikey_command_has_an_example
fail until it gets an example here. Split commands (MGET, MSET, DEL...) are not refused
but split; test_redis_multikey.py covers them.
"""

import hashlib

import pytest

from conftest import TWEMPROXY, Ketama, RespError, placement, redis_pool
from redis_table import commands

pytestmark = pytest.mark.skipif(TWEMPROXY, reason="twemproxy sends these to the first key's server")

CROSSSLOT = RespError("CROSSSLOT Keys in request don't hash to the same server")

SCRIPT_W = "redis.call('set', KEYS[1], 'x') return redis.call('set', KEYS[2], 'y')"
SCRIPT_R = "return redis.call('mget', KEYS[1], KEYS[2])"
LIBRARY = ("#!lua name=mklib\n"
           "redis.register_function('mk_w', function(keys, args) redis.call('set', keys[1], 'x') "
           "return redis.call('set', keys[2], 'y') end)\n"
           "redis.register_function{function_name='mk_r', callback=function(keys, args) "
           "return redis.call('mget', keys[1], keys[2]) end, flags={'no-writes'}}")
GEO = ["GEOADD", "{0}", "13.361389", "38.115556", "Palermo", "15.087269", "37.502669", "Catania"]
SHA_W = hashlib.sha1(SCRIPT_W.encode()).hexdigest()
SHA_R = hashlib.sha1(SCRIPT_R.encode()).hexdigest()


def ex(nkeys, cmd, setup=(), writes=()):
    """An example: nkeys keys ({0}, {1}...), single-key setup requests sent through the
    proxy, the command, and the keys it must leave written."""
    return {"n": nkeys, "setup": [list(s) for s in setup], "cmd": list(cmd), "writes": list(writes)}


SETS = [["SADD", "{1}", "a", "b"], ["SADD", "{2}", "a"]]
ZSETS = [["ZADD", "{1}", "1", "a", "2", "b"], ["ZADD", "{2}", "1", "a"]]
EXAMPLES = {
    "bitop": ex(3, ["BITOP", "AND", "{0}", "{1}", "{2}"], [["SET", "{1}", "a"], ["SET", "{2}", "b"]], [0]),
    # blocking ones, with something there to pop (they answer at once)
    "blmove": ex(2, ["BLMOVE", "{0}", "{1}", "LEFT", "RIGHT", "0"], [["RPUSH", "{0}", "a", "b"]], [0, 1]),
    "blmpop": ex(2, ["BLMPOP", "0", "2", "{0}", "{1}", "LEFT"], [["RPUSH", "{0}", "a"], ["RPUSH", "{1}", "b"]],
                 [1]),
    "blpop": ex(2, ["BLPOP", "{0}", "{1}", "0"], [["RPUSH", "{0}", "a"], ["RPUSH", "{1}", "b"]], [1]),
    "brpop": ex(2, ["BRPOP", "{0}", "{1}", "0"], [["RPUSH", "{0}", "a"], ["RPUSH", "{1}", "b"]], [1]),
    "brpoplpush": ex(2, ["BRPOPLPUSH", "{0}", "{1}", "0"], [["RPUSH", "{0}", "a", "b"]], [0, 1]),
    "bzmpop": ex(2, ["BZMPOP", "0", "2", "{0}", "{1}", "MIN"], [["ZADD", "{0}", "1", "a"], ["ZADD", "{1}", "1", "b"]],
                 [1]),
    "bzpopmax": ex(2, ["BZPOPMAX", "{0}", "{1}", "0"], [["ZADD", "{0}", "1", "a"], ["ZADD", "{1}", "1", "b"]], [1]),
    "bzpopmin": ex(2, ["BZPOPMIN", "{0}", "{1}", "0"], [["ZADD", "{0}", "1", "a"], ["ZADD", "{1}", "1", "b"]], [1]),
    "copy": ex(2, ["COPY", "{0}", "{1}"], [["SET", "{0}", "v"]], [0, 1]),
    "eval": ex(2, ["EVAL", SCRIPT_W, "2", "{0}", "{1}"], [], [0, 1]),
    "eval_ro": ex(2, ["EVAL_RO", SCRIPT_R, "2", "{0}", "{1}"], [["SET", "{0}", "a"]]),
    "evalsha": ex(2, ["EVALSHA", SHA_W, "2", "{0}", "{1}"], [], [0, 1]),
    "evalsha_ro": ex(2, ["EVALSHA_RO", SHA_R, "2", "{0}", "{1}"], [["SET", "{1}", "b"]]),
    "fcall": ex(2, ["FCALL", "mk_w", "2", "{0}", "{1}"], [], [0, 1]),
    "fcall_ro": ex(2, ["FCALL_RO", "mk_r", "2", "{0}", "{1}"], [["SET", "{0}", "a"]]),
    "georadius": ex(2, ["GEORADIUS", "{0}", "15", "37", "200", "km", "STORE", "{1}"], [GEO], [1]),
    "georadius storedist": ex(2, ["GEORADIUS", "{0}", "15", "37", "200", "km", "STOREDIST", "{1}"],
                              [GEO], [1]),
    "georadiusbymember": ex(2, ["GEORADIUSBYMEMBER", "{0}", "Palermo", "200", "km", "STORE", "{1}"],
                            [GEO], [1]),
    "geosearchstore": ex(2, ["GEOSEARCHSTORE", "{1}", "{0}", "FROMLONLAT", "15", "37", "BYRADIUS",
                             "200", "km"], [GEO], [1]),
    "lcs": ex(2, ["LCS", "{0}", "{1}"], [["SET", "{0}", "ohmytext"], ["SET", "{1}", "mynewtext"]]),
    "lmove": ex(2, ["LMOVE", "{0}", "{1}", "LEFT", "RIGHT"], [["RPUSH", "{0}", "a", "b"]], [0, 1]),
    "lmpop": ex(2, ["LMPOP", "2", "{0}", "{1}", "LEFT"], [["RPUSH", "{0}", "a"], ["RPUSH", "{1}", "b"]],
                [1]),
    "msetnx": ex(2, ["MSETNX", "{0}", "a", "{1}", "b"], [], [0, 1]),
    "pfcount": ex(2, ["PFCOUNT", "{0}", "{1}"], [["PFADD", "{0}", "a"], ["PFADD", "{1}", "b"]]),
    "pfmerge": ex(3, ["PFMERGE", "{0}", "{1}", "{2}"], [["PFADD", "{1}", "a"], ["PFADD", "{2}", "b"]],
                  [0]),
    "rename": ex(2, ["RENAME", "{0}", "{1}"], [["SET", "{0}", "v"]], [1]),
    "renamenx": ex(2, ["RENAMENX", "{0}", "{1}"], [["SET", "{0}", "v"]], [1]),
    "rpoplpush": ex(2, ["RPOPLPUSH", "{0}", "{1}"], [["RPUSH", "{0}", "a", "b"]], [0, 1]),
    "sdiff": ex(3, ["SDIFF", "{1}", "{2}"], SETS),
    "sinter": ex(3, ["SINTER", "{1}", "{2}"], SETS),
    "sunion": ex(3, ["SUNION", "{1}", "{2}"], SETS),
    "sintercard": ex(3, ["SINTERCARD", "2", "{1}", "{2}"], SETS),
    "sdiffstore": ex(3, ["SDIFFSTORE", "{0}", "{1}", "{2}"], SETS, [0]),
    "sinterstore": ex(3, ["SINTERSTORE", "{0}", "{1}", "{2}"], SETS, [0]),
    "sunionstore": ex(3, ["SUNIONSTORE", "{0}", "{1}", "{2}"], SETS, [0]),
    "smove": ex(2, ["SMOVE", "{0}", "{1}", "a"], [["SADD", "{0}", "a", "b"]], [0, 1]),
    "sort": ex(2, ["SORT", "{0}", "STORE", "{1}"], [["RPUSH", "{0}", "3", "1", "2"]], [1]),
    "sort store last": ex(3, ["SORT", "{0}", "STORE", "{2}", "LIMIT", "0", "2", "store", "{1}"],
                          [["RPUSH", "{0}", "3", "1", "2"]], [1]),
    "xread": ex(2, ["XREAD", "COUNT", "1", "STREAMS", "{0}", "{1}", "0", "0"],
                [["XADD", "{0}", "*", "f", "v"], ["XADD", "{1}", "*", "f", "v"]]),
    "xreadgroup": ex(2, ["XREADGROUP", "GROUP", "g", "c", "STREAMS", "{0}", "{1}", ">", ">"],
                     [["XGROUP", "CREATE", "{0}", "g", "0", "MKSTREAM"],
                      ["XGROUP", "CREATE", "{1}", "g", "0", "MKSTREAM"],
                      ["XADD", "{0}", "*", "f", "v"], ["XADD", "{1}", "*", "f", "v"]], [0, 1]),
    "zdiff": ex(3, ["ZDIFF", "2", "{1}", "{2}"], ZSETS),
    "zinter": ex(3, ["ZINTER", "2", "{1}", "{2}"], ZSETS),
    "zunion": ex(3, ["ZUNION", "2", "{1}", "{2}"], ZSETS),
    "zintercard": ex(3, ["ZINTERCARD", "2", "{1}", "{2}"], ZSETS),
    "zdiffstore": ex(3, ["ZDIFFSTORE", "{0}", "2", "{1}", "{2}"], ZSETS, [0]),
    "zinterstore": ex(3, ["ZINTERSTORE", "{0}", "2", "{1}", "{2}"], ZSETS, [0]),
    "zunionstore": ex(3, ["ZUNIONSTORE", "{0}", "2", "{1}", "{2}"], ZSETS, [0]),
    "zmpop": ex(2, ["ZMPOP", "2", "{0}", "{1}", "MIN"], [["ZADD", "{0}", "1", "a"], ["ZADD", "{1}", "1", "b"]],
                [1]),
    "zrangestore": ex(3, ["ZRANGESTORE", "{0}", "{1}", "0", "-1"], ZSETS, [0]),
}


@pytest.fixture(scope="module")
def pool(menv):
    servers = menv.redises(3)
    for s in servers:  # scripts and functions live on every server, as an operator would load them
        c = s.resp()
        assert c.call("SCRIPT", "LOAD", SCRIPT_W).decode() == SHA_W
        assert c.call("SCRIPT", "LOAD", SCRIPT_R).decode() == SHA_R
        assert c.call("FUNCTION", "LOAD", LIBRARY) == b"mklib"
    px = menv.proxy({"alpha": redis_pool(servers, hash_tag='"{}"')})
    return servers, px


@pytest.fixture
def clean(pool):
    servers, px = pool
    for s in servers:
        assert s.resp().call("FLUSHALL") == b"OK"
    return pool


def spread_keys_for(name, n, servers):
    """n keys of which key i lands on server i % 3: on as many servers as there are keys."""
    picked = []
    cands = ["mk:%s:%s" % (name.replace(" ", "_"), hashlib.md5(b"%d" % i).hexdigest()[:8]) for i in range(400)]
    where = placement(cands, servers, hash_tag="{}")
    for i in range(n):
        want = servers[i % len(servers)]
        picked.append(next(k for k in cands if where[k] is want and k not in picked))
    return picked


def fill(args, keys):
    """Put the keys in place of "{0}", "{1}"... (whole arguments only)."""
    slots = {"{%d}" % i: k for i, k in enumerate(keys)}
    return [slots.get(a, a) for a in args]


def snapshot(servers):
    """Every key of every server with its DUMP: any change shows."""
    out = {}
    for s in servers:
        c = s.resp()
        out[s.port] = {k: c.call("DUMP", k) for k in c.call("KEYS", "*")}
    return out


def run_setup(px, example, keys):
    c = px.resp()
    for req in example["setup"]:
        r = c.call(*fill(req, keys))
        assert not isinstance(r, RespError), (req, r)


def test_every_multikey_command_has_an_example():
    # WATCH's keys pick a transaction's server: the transaction tests cover it
    table = {c.name for c in commands()
             if c.supported and c.multikey and not c.handling.startswith("SPLIT")
             and c.handling != "TXN"}
    covered = {name.split(" ")[0] for name in EXAMPLES}
    assert table - covered == set(), "multi-key commands without an example"
    assert covered - table == set(), "examples of commands the table does not list as multi-key"


@pytest.mark.parametrize("name", sorted(EXAMPLES))
def test_keys_on_several_servers_are_refused(clean, name):
    servers, px = clean
    example = EXAMPLES[name]
    keys = spread_keys_for(name, example["n"], servers)
    run_setup(px, example, keys)
    before = snapshot(servers)
    c = px.resp()
    assert c.call(*fill(example["cmd"], keys)) == CROSSSLOT
    assert c.call("PING") == b"PONG"  # the connection goes on
    assert snapshot(servers) == before


@pytest.mark.parametrize("name", sorted(EXAMPLES))
def test_keys_with_one_hash_tag_run_where_they_are_read(clean, name):
    servers, px = clean
    example = EXAMPLES[name]
    tag = "{mk-%s}" % name.replace(" ", "-")
    keys = ["%s%d" % (tag, i) for i in range(example["n"])]
    home = placement([keys[0]], servers, hash_tag="{}")[keys[0]]
    run_setup(px, example, keys)
    c = px.resp()
    r = c.call(*fill(example["cmd"], keys))
    assert not isinstance(r, RespError), r
    for i in example["writes"]:
        assert c.call("EXISTS", keys[i]) == 1, "%s not found through the proxy" % keys[i]
    for s in servers:
        found = {k.decode() for k in s.resp().call("KEYS", "*")}
        if s is home:
            assert {keys[i] for i in example["writes"]} <= found
        else:
            assert not found, "keys on a server that does not own the tag: %r" % found


@pytest.mark.parametrize("cmd", ["GEORADIUS {0} 15 37 200 km", "GEORADIUSBYMEMBER {0} Palermo 200 km"])
def test_a_georadius_with_two_stores_is_routed_by_the_one_it_writes(clean, cmd):
    """redis writes the last STORE or STOREDIST key (its key specs, and COMMAND
    GETKEYS, name the first): with the source and the last one on one server and
    the first elsewhere, the command runs where it writes, and nothing is written
    on a server that does not own it (it was routed by the first STORE)."""
    servers, px = clean
    src, first, last = spread_keys_for("geo2 " + cmd.split()[0], 3, servers)
    last = next(k for k in spread_keys_for("geo2b " + cmd.split()[0], 9, servers)
                if placement([k], servers, hash_tag="{}")[k] is placement([src], servers, hash_tag="{}")[src])
    run_setup(px, {"setup": [GEO]}, [src])
    c = px.resp()
    args = fill(cmd.split(), [src]) + ["STORE", first, "STOREDIST", last]
    assert c.call(*args) == 2
    assert c.call("EXISTS", last) == 1 and c.call("EXISTS", first) == 0
    home = placement([src], servers, hash_tag="{}")[src]
    assert home.resp().call("EXISTS", last) == 1
    # COMMAND GETKEYS still says what redis says
    direct = home.resp().call("COMMAND", "GETKEYS", *args)
    assert c.call("COMMAND", "GETKEYS", *args) == direct == [src.encode(), first.encode(), last.encode()]


@pytest.mark.parametrize("dist", ["ketama", "modula"])
def test_the_empty_key_goes_where_twemproxy_puts_it(env, dist):
    """twemproxy hashes an empty key to 0 and the distribution places that hash:
    ketama at its lowest point's server, modula at the first server in name
    order (the proxy took server 0 for both)."""
    servers = [env.redis() for _ in range(3)]
    px = env.proxy({"alpha": redis_pool(servers, distribution=dist)})
    c = px.resp()
    assert c.call("SET", "", "empty") == b"OK"
    if dist == "ketama":
        want = servers[Ketama([(s.addr, 1) for s in servers]).index(0)]
    else:
        want = min(servers, key=lambda s: s.addr)  # servers are sorted by name, as twemproxy does
    held = [s for s in servers if s.resp().call("EXISTS", "") == 1]
    assert held == [want], [s.port for s in held]
    assert c.call("GET", "") == b"empty"
