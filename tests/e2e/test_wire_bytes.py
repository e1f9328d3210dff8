"""The exact bytes on both sides of the proxy, with a scripted fake backend
(fakeserver.py) where a real server cannot be made to do what is tested: see
what the proxy sent, answer in 1-byte pieces, answer garbage, half a reply.

- a new server connection starts with AUTH / SELECT (redis_auth, redis_db);
- a request is forwarded byte for byte; pipelines of several clients keep
  each client's order;
- split commands (MGET, DEL, MSET; memcached get): the fragment each server gets;
- a reply in 1-byte pieces reaches the client whole;
- garbage, or half a reply then a close: the client gets the proxy's error,
  the server connection is dropped, the next request works;
- memcached noreply: forwarded, and no reply awaited.
"""

import threading

import pytest

from conftest import TWEMPROXY, Resp, encode_command, mc_pool, placement, redis_pool, spread_keys, wait_until
from fakeserver import CLOSE, FakeServer, drip

PING, PONG = encode_command("PING"), b"+PONG\r\n"


def args_of(req):
    """The arguments of a RESP array request."""
    out, pos = [], req.index(b"\r\n") + 2
    for _ in range(int(req[1:req.index(b"\r\n")])):
        end = req.index(b"\r\n", pos)
        n = int(req[pos + 1:end])
        out.append(req[end + 2:end + 2 + n])
        pos = end + 2 + n + 2
    return out


def bulk(v):
    return b"$-1\r\n" if v is None else b"$%d\r\n%s\r\n" % (len(v), v)


def redis_script(values=None):
    """A well-behaved redis for the commands used here: GET and MGET answer
    values[key] (nil if absent), DEL the number of keys, the rest +OK."""
    values = {} if values is None else values

    def answer(req, conn):
        a = args_of(req)
        cmd = a[0].upper()
        if cmd == b"GET":
            return [bulk(values.get(a[1]))]
        if cmd == b"MGET":
            return [b"*%d\r\n" % (len(a) - 1) + b"".join(bulk(values.get(k)) for k in a[1:])]
        if cmd == b"DEL":
            return [b":%d\r\n" % (len(a) - 1)]
        return [b"+OK\r\n"]
    return answer


@pytest.fixture
def fakes():
    """Start FakeServers with fakes(n, proto, answer); all stopped at the end."""
    started = []

    def start(n=1, proto="redis", answer=None):
        new = [FakeServer(proto, answer).start() for _ in range(n)]
        started.extend(new)
        return new
    yield start
    for f in started:
        f.stop()
    for f in started:
        assert not f.errors, f.errors


def exact(c, want):
    """The client reads exactly `want`, then nothing else: a PING right after
    is answered +PONG (redis) or a version line (memcached) and nothing before it."""
    assert c.readn(len(want)) == want
    assert c.buf == b"", c.buf


def nothing_more_redis(c):
    c.send(PING)
    assert c.readn(len(PONG)) == PONG and c.buf == b""


def split_keys(fs, n_each=2, prefix="w"):
    """Keys in a mixed order with n_each on each fake server (twemproxy's ketama
    over the names host:port); returns (keys, {fake: its keys in that order})."""
    names = [f.addr for f in fs]
    where = placement(spread_keys(prefix, 200), names)
    groups = {name: [k for k, s in where.items() if s == name][:n_each] for name in names}
    keys = [k for i in range(n_each) for name in names for k in groups[name][i:i + 1]]
    return [k.encode() for k in keys], {f: [k.encode() for k in groups[f.addr]] for f in fs}


# --------------------------------------------------------------------------- (a) connection set-up

AUTH = encode_command("AUTH", "s3cret")


@pytest.mark.skipif(TWEMPROXY, reason="twemproxy 0.5 lets clients through without AUTH")
@pytest.mark.parametrize("auth,db,preamble", [
    (None, 0, b""),
    ("s3cret", 0, AUTH),
    (None, 3, encode_command("SELECT", "3")),
    ("s3cret", 12, AUTH + encode_command("SELECT", "12")),
], ids=["nothing", "auth", "select", "auth-then-select"])
def test_new_server_connection_starts_with_auth_and_select(env, fakes, auth, db, preamble):
    """redis_auth / redis_db: the server connection's first bytes are exactly
    AUTH then SELECT, before the client's request; their replies are swallowed."""
    (fs,) = fakes(answer=redis_script({b"k": b"v"}))
    kw = {"redis_db": db} if db else {}
    if auth:
        kw["redis_auth"] = auth
    px = env.proxy({"a": redis_pool([fs.addr], **kw)})
    c = px.resp()
    if auth:
        assert c.call("AUTH", auth) == b"OK"  # the proxy's own answer: nothing sent
    get = encode_command("GET", "k")
    c.send(get)
    exact(c, b"$1\r\nv\r\n")
    nothing_more_redis(c)
    assert [x.received for x in fs.conns] == [preamble + get]


def test_preconnect_sends_the_set_up_without_a_client(env, fakes):
    (fs,) = fakes(answer=redis_script())
    preamble = AUTH + encode_command("SELECT", "5")
    env.proxy({"a": redis_pool([fs.addr], redis_auth="s3cret", redis_db=5, preconnect=True)})
    assert fs.wait_received(preamble) == preamble
    assert len(fs.conns) == 1


# --------------------------------------------------------------------------- (b) forwarded unchanged

ODD = [
    # odd but valid: a mixed-case name, a key with spaces, a value holding CRLF, NUL and 0xff
    b"*3\r\n$3\r\nsEt\r\n$5\r\nk e y\r\n$7\r\n\x00\r\n\xff\xfe\r\n\r\n",
    encode_command("SET", "empty", b""),
    encode_command("get", "k e y"),
    encode_command("GET", "\u00e9t\u00e9".encode()),
    encode_command("SET", "big", bytes(range(256)) * 400),
    encode_command("HSET", "h", "f\r\n", "v\r\n"),
]


def test_requests_are_forwarded_byte_for_byte(env, fakes):
    (fs,) = fakes(answer=redis_script({b"k e y": b"\x00\r\n\xff\xfe\r\n"}))
    px = env.proxy({"a": redis_pool([fs.addr])})
    c = px.resp()
    c.send(b"".join(ODD))
    exact(c, b"+OK\r\n+OK\r\n" + bulk(b"\x00\r\n\xff\xfe\r\n") + b"$-1\r\n+OK\r\n+OK\r\n")
    assert fs.requests() == ODD


def test_pipelines_of_several_clients_keep_each_clients_order(env, fakes):
    """4 clients pipeline 100 GETs each at the same time over one server
    connection: each client's requests arrive in its order, byte for byte, and
    each gets exactly its answers (the fake answers every key with its name)."""
    (fs,) = fakes(answer=lambda req, conn: [bulk(b"=" + args_of(req)[1])])
    px = env.proxy({"a": redis_pool([fs.addr])})
    n, results = 100, {}

    def client(i):
        c = Resp(port=px.port("a"), timeout=10)
        reqs = [encode_command("GET", "c%d:%d" % (i, j)) for j in range(n)]
        c.send(b"".join(reqs))
        results[i] = (reqs, c.readn(sum(len(bulk(b"=c%d:%d" % (i, j))) for j in range(n))))
        c.close()

    threads = [threading.Thread(target=client, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(20)
    got = fs.requests()
    assert sorted(results) == [0, 1, 2, 3], "a client thread failed"
    assert len(fs.conns) == 1 and len(got) == 4 * n
    for i, (reqs, replies) in results.items():
        assert [r for r in got if args_of(r)[1].startswith(b"c%d:" % i)] == reqs
        assert replies == b"".join(bulk(b"=c%d:%d" % (i, j)) for j in range(n))


# --------------------------------------------------------------------------- (c) split commands

@pytest.fixture
def two(env, fakes):
    fs = fakes(2, answer=None)
    values = {}
    for f in fs:
        f.answer = redis_script(values)
    px = env.proxy({"a": redis_pool([f.addr for f in fs])})
    keys, groups = split_keys(fs)
    values.update({k: b"v-" + k for k in keys})
    return fs, px, keys, groups


def test_mget_fragments_and_merged_reply(two):
    fs, px, keys, groups = two
    c = px.resp()
    c.send(encode_command("MGET", *keys))
    exact(c, b"*%d\r\n" % len(keys) + b"".join(bulk(b"v-" + k) for k in keys))
    for f in fs:
        assert f.requests() == [encode_command("MGET", *groups[f])], f.addr


def test_mget_on_one_server_is_forwarded_unchanged(two):
    fs, px, keys, groups = two
    one = groups[fs[0]]
    req = b"*%d\r\n$4\r\nmGeT\r\n" % (len(one) + 1) + b"".join(bulk(k) for k in one)
    c = px.resp()
    c.send(req)
    exact(c, b"*%d\r\n" % len(one) + b"".join(bulk(b"v-" + k) for k in one))
    assert fs[0].requests() == [req] and fs[1].requests() == []


def test_del_fragments_and_summed_reply(two):
    fs, px, keys, groups = two
    c = px.resp()
    c.send(encode_command("DEL", *keys))
    exact(c, b":%d\r\n" % len(keys))
    for f in fs:
        assert f.requests() == [encode_command("DEL", *groups[f])], f.addr


def test_mset_fragments_keep_key_value_pairs(two):
    fs, px, keys, groups = two
    pairs = [x for k in keys for x in (k, b"val of " + k)]
    c = px.resp()
    c.send(encode_command("MSET", *pairs))
    exact(c, b"+OK\r\n")
    for f in fs:
        want = [x for k in groups[f] for x in (k, b"val of " + k)]
        assert f.requests() == [encode_command("MSET", *want)], f.addr


# --------------------------------------------------------------------------- (d) replies in pieces

DRIPPED = [
    (encode_command("GET", "k"), b"$11\r\nhello world\r\n"),
    (encode_command("LRANGE", "l", "0", "-1"), b"*3\r\n$1\r\na\r\n$0\r\n\r\n$2\r\nbc\r\n"),
    (encode_command("INCR", "n"), b":12345\r\n"),
    (encode_command("HGET", "h", "f"), b"$-1\r\n"),
    (encode_command("LPUSH", "k", "v"), b"-WRONGTYPE Operation against a key holding the wrong kind of value\r\n"),
]


def test_a_reply_in_one_byte_pieces_reaches_the_client_whole(env, fakes):
    replies = dict(DRIPPED)
    (fs,) = fakes(answer=lambda req, conn: drip(replies[req], 0.002))
    px = env.proxy({"a": redis_pool([fs.addr])})
    c = px.resp()
    for req, rsp in DRIPPED:
        c.send(req)
        exact(c, rsp)
    c.send(b"".join(req for req, _ in DRIPPED))  # pipelined, each reply dripped in turn
    exact(c, b"".join(rsp for _, rsp in DRIPPED))


def test_split_reply_fragments_in_pieces_are_merged(env, fakes):
    fs = fakes(2)
    keys, groups = split_keys(fs)
    for f in fs:
        f.answer = lambda req, conn: drip(b"*%d\r\n" % (len(args_of(req)) - 1) +
                                          b"".join(bulk(k.upper()) for k in args_of(req)[1:]), 0.001)
    px = env.proxy({"a": redis_pool([f.addr for f in fs])})
    c = px.resp()
    c.send(encode_command("MGET", *keys))
    exact(c, b"*%d\r\n" % len(keys) + b"".join(bulk(k.upper()) for k in keys))


def test_memcached_value_in_one_byte_pieces(env, fakes):
    (fs,) = fakes(proto="memcache", answer=lambda req, conn: drip(b"VALUE k 7 5\r\nhello\r\nEND\r\n", 0.002))
    px = env.proxy({"m": mc_pool([fs.addr])})
    c = px.mc()
    c.send(b"get k\r\n")
    exact(c, b"VALUE k 7 5\r\nhello\r\nEND\r\n")
    assert fs.requests() == [b"get k\r\n"]


# --------------------------------------------------------------------------- (e, f) broken servers

def first_connection(bad, good):
    """A script: the first connection answers with `bad`, later ones with `good`."""
    return lambda req, conn: bad(req) if conn.index == 0 else good(req, conn)


@pytest.mark.parametrize("bad,error", [
    (lambda req: [b"@garbage\r\n"], b"-ERR bad response from server: unknown reply type\r\n"),
    (lambda req: [b":12x\r\n"], b"-ERR bad response from server: malformed line\r\n"),
    (lambda req: [b"$10\r\nabc", CLOSE], b"-ERR Connection closed by server\r\n"),
    (lambda req: [CLOSE], b"-ERR Connection closed by server\r\n"),
], ids=["garbage", "bad-integer", "half-then-close", "close"])
def test_broken_reply_gets_an_error_and_a_new_connection(env, fakes, bad, error):
    """The client gets the proxy's error for each request pending on the broken
    connection (in order, after the good reply before them), the connection is
    dropped, and the next request goes out on a new one and is answered."""
    values = {b"a": b"A", b"b": b"B"}
    good = redis_script(values)
    calls = []

    def script(req, conn):
        calls.append(req)
        if conn.index == 0 and len(calls) == 2:  # the second request on the first connection
            return bad(req)
        return good(req, conn)
    (fs,) = fakes(answer=script)
    px = env.proxy({"a": redis_pool([fs.addr])})
    c = px.resp(timeout=5)
    c.send(encode_command("GET", "a") + encode_command("GET", "b") + encode_command("GET", "b"))
    exact(c, bulk(b"A") + error + error)
    wait_until(lambda: fs.conns[0].closed_by_peer or fs.conns[0].closed_by_us, "the broken connection to end")
    assert c.call("GET", "a") == b"A"
    assert len(fs.conns) == 2 and fs.conns[1].requests == [encode_command("GET", "a")]
    st = px.wait_stats(lambda st: st["a"][fs.addr]["server_err"] + st["a"][fs.addr]["server_eof"] >= 1,
                       "the broken connection counted")
    assert st["a"][fs.addr]["server_connections"] == 1


def test_a_split_command_with_a_broken_fragment_is_one_error(env, fakes):
    """One server answers its MGET fragment, the other half of it then closes:
    the client gets one error in place of the whole reply, then is served on."""
    fs = fakes(2)
    keys, groups = split_keys(fs)
    values = {k: b"v" for k in keys}
    fs[0].answer = redis_script(values)
    fs[1].answer = first_connection(lambda req: [b"*2\r\n$1\r\nv\r\n", CLOSE], redis_script(values))
    px = env.proxy({"a": redis_pool([f.addr for f in fs])})
    c = px.resp(timeout=5)
    c.send(encode_command("MGET", *keys))
    exact(c, b"-ERR Connection closed by server\r\n")
    assert c.call("MGET", *keys) == [b"v"] * len(keys)


@pytest.mark.parametrize("bad,error", [
    (lambda req: [b"@garbage\r\n"],
     b"SERVER_ERROR bad response from server: unexpected line in a retrieval response\r\n"),
    (lambda req: [b"VALUE k 0 10\r\nabc", CLOSE], b"SERVER_ERROR Connection closed by server\r\n"),
], ids=["garbage", "half-then-close"])
def test_memcached_broken_reply_gets_an_error(env, fakes, bad, error):
    ok = lambda req, conn: [b"VALUE k 0 1\r\nv\r\nEND\r\n"]  # noqa: E731
    (fs,) = fakes(proto="memcache", answer=first_connection(bad, ok))
    px = env.proxy({"m": mc_pool([fs.addr])})
    c = px.mc(timeout=5)
    c.send(b"get k\r\n")
    exact(c, error)
    c.send(b"get k\r\n")
    exact(c, b"VALUE k 0 1\r\nv\r\nEND\r\n")
    assert len(fs.conns) == 2


# --------------------------------------------------------------------------- (g) memcached

def mc_values(values):
    """get/gets: a VALUE block per key it has (misses left out), then END."""
    def answer(req, conn):
        words = req.split()
        return [b"".join(b"VALUE %s 0 %d\r\n%s\r\n" % (k, len(values[k]), values[k])
                         for k in words[1:] if k in values) + b"END\r\n"]
    return answer


def test_memcached_multiget_fragments_and_merged_reply(env, fakes):
    fs = fakes(2, proto="memcache")
    keys, groups = split_keys(fs, n_each=3, prefix="m")
    values = {k: b"val-" + k for k in keys[1:]}  # the first key is a miss
    for f in fs:
        f.answer = mc_values(values)
    px = env.proxy({"m": mc_pool([f.addr for f in fs])})
    c = px.mc()
    c.send(b"get " + b" ".join(keys) + b"\r\n")
    exact(c, b"".join(b"VALUE %s 0 %d\r\n%s\r\n" % (k, len(values[k]), values[k]) for k in keys[1:]) + b"END\r\n")
    for f in fs:
        assert f.requests() == [b"get " + b" ".join(groups[f]) + b"\r\n"], f.addr


def test_memcached_noreply_is_forwarded_and_not_waited_for(env, fakes):
    """A noreply storage command reaches the server byte for byte and gets no
    answer; the get after it is answered with exactly its own reply."""
    def script(req, conn):
        if b"noreply" in req.split(b"\r\n")[0]:
            return []
        return [b"VALUE k 0 1\r\nv\r\nEND\r\n"]
    (fs,) = fakes(proto="memcache", answer=script)
    px = env.proxy({"m": mc_pool([fs.addr], timeout=2000)})
    c = px.mc()
    reqs = [b"set k 0 0 1 noreply\r\nv\r\n", b"delete other noreply\r\n", b"incr n 5 noreply\r\n", b"get k\r\n"]
    c.send(b"".join(reqs))
    exact(c, b"VALUE k 0 1\r\nv\r\nEND\r\n")
    assert fs.requests() == reqs
    st = px.wait_stats(lambda st: st["m"][fs.addr]["requests"] == 4, "the 4 requests counted")
    assert st["m"][fs.addr]["server_timedout"] == 0 and st["m"][fs.addr]["out_queue"] == 0
