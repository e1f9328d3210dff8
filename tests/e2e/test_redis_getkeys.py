"""Every key of every request, as redis finds it: the proxy's command table against a
live redis-server's COMMAND GETKEYS.

The proxy answers COMMAND GETKEYS itself, from the same table and code its parser
routes by (redis_cmd_keys), so asking both sides the same question compares the keys
the proxy routes by with the keys redis will touch. The corpus is
tests/fixtures/redis-getkeys-corpus.txt; tests/vectors/redis-getkeys.tsv is what
redis answered when it was generated (the unit test reads it), checked here to still
be what the installed redis-server answers.
"""

import os

import pytest

from conftest import ROOT, TWEMPROXY, RespError, redis_pool
from redis_table import commands

pytestmark = pytest.mark.skipif(TWEMPROXY, reason="twemproxy answers no COMMAND GETKEYS")

CORPUS = os.path.join(ROOT, "tests", "fixtures", "redis-getkeys-corpus.txt")
VECTORS = os.path.join(ROOT, "tests", "vectors", "redis-getkeys.tsv")


def corpus():
    with open(CORPUS) as f:
        return [ln.rstrip("\n") for ln in f if ln.strip() and not ln.startswith("#")]


def vectors():
    out = {}
    with open(VECTORS) as f:
        for ln in f:
            if ln.startswith("#"):
                continue
            req, keys = ln.rstrip("\n").split("\t")
            out[req] = keys.split(" ") if keys else []
    return out


@pytest.fixture(scope="module")
def pair(menv):
    s = menv.redis()
    px = menv.proxy({"alpha": redis_pool([s])})
    return s.resp(), px.resp()


def getkeys(conn, line):
    r = conn.call("COMMAND", "GETKEYS", *line.split(" "))
    return r if isinstance(r, RespError) else [k.decode() for k in r]


def test_vectors_are_what_redis_answers(pair):
    """The checked-in vectors cover the whole corpus and agree with the live server."""
    direct, _ = pair
    vec = vectors()
    lines = corpus()
    assert sorted(vec) == sorted(lines), "regenerate: python3 tools/gen_redis_getkeys.py --port N"
    wrong = {ln: (vec[ln], getkeys(direct, ln)) for ln in lines if getkeys(direct, ln) != vec[ln]}
    assert not wrong, wrong


def test_proxy_finds_the_keys_redis_finds(pair):
    direct, proxied = pair
    refused = {c.name for c in commands() if c.handling.startswith("REJECT")}
    diffs = {}
    for ln in corpus():
        want, got = getkeys(direct, ln), getkeys(proxied, ln)
        if ln.split(" ")[0].lower() in refused:
            # deliberate: the proxy refuses these commands (blocking, transactions,
            # admin), so it names no keys for them
            want = RespError("ERR Invalid command specified")
        if got != want:
            diffs[ln] = (want, got)
    assert not diffs, diffs


def test_proxy_gives_the_key_flags_redis_gives(pair):
    """COMMAND GETKEYSANDFLAGS: each key with the flags (RW, access, ...) of the key
    spec that found it, as redis gives them, over the whole corpus."""
    direct, proxied = pair
    refused = {c.name for c in commands() if c.handling.startswith("REJECT")}
    diffs = {}
    # where redis' spec says variable_flags, what the request does decides
    variable = ["SET k v", "SET k v get", "SET k v XX", "BITFIELD k GET u8 0", "BITFIELD k SET u8 0 1",
                "BITFIELD k GET u8 0 OVERFLOW SAT", "BITFIELD k GET u8", "BITFIELD k INCRBY u8 0 1 GET u8 0",
                "BITFIELD k", "BITFIELD_RO k GET u8 0"]
    for ln in corpus() + variable:
        if ln.split(" ")[0].lower() in refused:
            continue  # named no keys, as above
        want = direct.call("COMMAND", "GETKEYSANDFLAGS", *ln.split(" "))
        got = proxied.call("COMMAND", "GETKEYSANDFLAGS", *ln.split(" "))
        if got != want:
            diffs[ln] = (want, got)
    assert not diffs, diffs
    assert proxied.call("COMMAND", "GETKEYSANDFLAGS", "LMOVE", "a", "b", "left", "left") == [
        [b"a", [b"RW", b"access", b"delete"]], [b"b", [b"RW", b"insert"]]]


def test_corpus_covers_every_multikey_command():
    """A multi-key command added to the table (a new redis) must get a corpus line."""
    names = {ln.split(" ")[0].lower() for ln in corpus()}
    missing = sorted(c.name for c in commands() if c.multikey and c.name not in names)
    assert not missing, missing


@pytest.mark.parametrize("req", [
    "PING", "PING x", "GET", "GET a b", "EVAL s 0", "EVAL s 0 x", "FCALL f 0", "ZUNION 3 a",
    "SINTERCARD 0 a", "LMPOP 0 a LEFT", "OBJECT ENCODING", "SCAN 0", "KEYS *", "DBSIZE x",
    "RANDOMKEY x", "LOLWUT VERSION", "XREAD COUNT 1 2 3", "EVAL s x k",
])
def test_answers_without_keys_match_redis(pair, req):
    """Requests without keys: the same answer (error or empty list) as redis."""
    direct, proxied = pair
    assert getkeys(proxied, req) == getkeys(direct, req)


@pytest.mark.parametrize("req", ["MSET a b c", "MSETNX a b c d e", "MSET a", "MSET a b c d"])
def test_getkeys_checks_only_the_tables_arity(pair, req):
    """MSET a b c cannot run (a key without its value), but redis' GETKEYS checks the
    command's arity alone and names a and c; the proxy answered that the number of
    arguments is invalid. GETKEYSANDFLAGS too."""
    direct, proxied = pair
    assert getkeys(proxied, req) == getkeys(direct, req)
    args = req.split(" ")
    assert proxied.call("COMMAND", "GETKEYSANDFLAGS", *args) == direct.call("COMMAND", "GETKEYSANDFLAGS", *args)


# Deliberate: where one key spec of a request finds nothing, redis' GETKEYS refuses the
# whole request, but the command may still run and write the keys the other specs
# found (PFMERGE d writes d). The proxy keeps those keys, so it routes by them.
PARTIAL = [("PFMERGE d", ["d"]), ("ZUNIONSTORE d 0 a", ["d"]), ("ZDIFFSTORE d 9 a", ["d"])]


@pytest.mark.parametrize("req,keys", PARTIAL, ids=[r for r, _ in PARTIAL])
def test_keys_of_requests_getkeys_refuses(pair, req, keys):
    direct, proxied = pair
    assert getkeys(direct, req) == RespError("ERR Invalid arguments specified for command")
    assert getkeys(proxied, req) == keys


def test_pfmerge_without_sources_writes_its_key(pair):
    """Why PARTIAL keeps keys: redis runs `PFMERGE d` and creates d."""
    direct, _ = pair
    direct.call("DEL", "gk:pf")
    assert direct.call("PFMERGE", "gk:pf") == b"OK"
    assert direct.call("EXISTS", "gk:pf") == 1
