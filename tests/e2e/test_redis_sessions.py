"""What a redis connection carries beyond single commands, through a sharded
pool (issue 9): transactions on one server, WATCH, pub/sub across servers,
SCAN walked over every server, the keyless commands answered for the whole
pool (DBSIZE, KEYS, RANDOMKEY, SCRIPT), INFO, CLIENT, inline commands and
RESP3. Where redis itself defines the answer, the same bytes are sent to a
redis-server directly and through the proxy, and the replies compared."""

import os
import signal
import socket
import time

import pytest

from conftest import (HOST, Resp, RespError, encode_command, placement, redis_pool, spread_keys,
                      wait_until)


@pytest.fixture(scope="module")
def rig(menv):
    direct = menv.redis()
    servers = menv.redises(3)
    px = menv.proxy({"alpha": redis_pool(servers, hash_tag='"{}"'),
                     "flushy": redis_pool(servers, hash_tag='"{}"', allow_flush=True)})
    return direct, servers, px


def _clean(direct, servers):
    for s in [direct] + list(servers):
        s.client().flushall()


def _both(rig, commands):
    """The replies of redis itself and of the proxy to the same commands."""
    direct, servers, px = rig
    _clean(direct, servers)
    a, b = direct.resp(), px.resp()
    try:
        return [a.call(*c) for c in commands], [b.call(*c) for c in commands]
    finally:
        a.close()
        b.close()


def _keys_on_different_servers(px, servers, n=2, prefix="k"):
    """n keys the pool places on n different servers."""
    got, seen = [], set()
    for i in range(10000):
        k = "%s%d" % (prefix, i)
        where = placement([k], servers)[k].addr
        if where not in seen:
            seen.add(where)
            got.append(k)
            if len(got) == n:
                return got
    raise AssertionError("no keys on %d servers" % n)


# --------------------------------------------------------------------------- transactions

def test_transaction_on_one_server_same_as_redis(rig):
    cmds = [("MULTI",), ("SET", "{t}a", "1"), ("INCR", "{t}a"), ("GET", "{t}a"), ("LPUSH", "{t}l", "x"),
            ("EXEC",), ("MULTI",), ("EXEC",), ("EXEC",), ("DISCARD",), ("MULTI",), ("MULTI",),
            ("SET", "{t}b", "2"), ("DISCARD",), ("GET", "{t}b"), ("MULTI",), ("WATCH", "{t}a"), ("EXEC",),
            ("MULTI",), ("NOSUCHCOMMAND",), ("SET", "{t}a", "3"), ("EXEC",), ("GET", "{t}a"),
            ("MULTI",), ("PING",), ("UNWATCH",), ("EXEC",)]
    want, got = _both(rig, cmds)
    # the unknown command's text quotes the request: the same
    assert got == want


def test_a_command_redis_refuses_only_when_it_runs_fails_alone_at_exec(rig):
    # MSET without whole pairs passes redis' arity check: queued, and only it
    # fails at EXEC; GET with two keys does not: the transaction aborts
    cmds = [("MULTI",), ("MSET", "{t}a", "1", "{t}b"), ("SET", "{t}c", "1"),
            ("MSETNX", "{t}d", "1", "{t}e"), ("EXEC",), ("GET", "{t}c"), ("MSET", "{t}a", "1", "{t}b"),
            ("MULTI",), ("SET", "{t}c", "2"), ("GET", "{t}a", "{t}b"), ("EXEC",), ("GET", "{t}c")]
    want, got = _both(rig, cmds)
    assert want[4] == [RespError("ERR wrong number of arguments for 'mset' command"), b"OK",
                       RespError("ERR wrong number of arguments for 'msetnx' command")]
    assert want[-1] == b"1"
    assert got == want


def test_transaction_across_servers_is_refused_and_aborted(rig):
    _, servers, px = rig
    a, b = _keys_on_different_servers(px, servers)
    c = px.resp()
    assert c.call("MULTI") == b"OK"
    assert c.call("SET", a, "1") == b"QUEUED"
    err = c.call("SET", b, "2")
    assert isinstance(err, RespError) and err.msg.startswith("CROSSSLOT"), err
    assert c.call("EXEC") == RespError("EXECABORT Transaction discarded because of previous errors.")
    assert c.call("GET", a) is None and c.call("GET", b) is None
    # nothing was left behind on the connection: the next one works
    assert c.call("MULTI") == b"OK" and c.call("SET", a, "x") == b"QUEUED"
    assert c.call("EXEC") == [b"OK"]


def test_watch_sees_another_clients_write(rig):
    _, servers, px = rig
    _clean(rig[0], servers)
    c, other = px.resp(), px.resp()
    assert c.call("SET", "{w}k", "1") == b"OK"
    assert c.call("WATCH", "{w}k") == b"OK"
    assert c.call("GET", "{w}k") == b"1"
    assert other.call("SET", "{w}k", "2") == b"OK"
    assert c.call("MULTI") == b"OK" and c.call("SET", "{w}k", "3") == b"QUEUED"
    assert c.call("EXEC") is None  # the watched key changed: nothing ran
    assert c.call("GET", "{w}k") == b"2"
    # unwatched: the next transaction runs
    assert c.call("WATCH", "{w}k") == b"OK" and c.call("UNWATCH") == b"OK"
    assert other.call("SET", "{w}k", "4") == b"OK"
    assert c.call("MULTI") == b"OK" and c.call("SET", "{w}k", "5") == b"QUEUED"
    assert c.call("EXEC") == [b"OK"]


@pytest.mark.parametrize("failure", ["timed out", "refused"])
def test_a_failed_watch_watches_nothing(env, failure):
    """A WATCH the proxy answers with an error (its server stalled past the
    timeout, or down) watches nothing, as in redis: the client is not tied to
    that server, and its next WATCH, of a key elsewhere, and the transaction
    after it go through (they got -CROSSSLOT until an UNWATCH)."""
    servers = env.redises(2)
    px = env.proxy({"alpha": redis_pool(servers, timeout=300)})
    bad, good = _keys_on_different_servers(px, servers)
    stalled = placement([bad], servers)[bad]
    c = px.resp()
    if failure == "refused":
        stalled.stop()
    else:
        Resp(port=stalled.port).call("CLIENT", "PAUSE", "1500", "ALL")
    err = c.call("WATCH", bad)
    assert isinstance(err, RespError) and err.msg == "ERR Connection " + failure, err
    assert c.call("WATCH", good) == b"OK"
    assert c.call("MULTI") == b"OK" and c.call("SET", good, "1") == b"QUEUED"
    assert c.call("EXEC") == [b"OK"]
    assert c.call("GET", good) == b"1"


def test_an_empty_watched_transaction_answers_as_redis(rig):
    """MULTI + EXEC with nothing queued still checks the watch (a way to ask
    whether a key changed): nil after another client's write, [] without."""
    direct, servers, px = rig
    _clean(direct, servers)
    replies = []
    for port in (direct.port, px.port()):
        c, other = Resp(port=port), Resp(port=port)
        seq = [c.call("SET", "{e}k", "1"), c.call("WATCH", "{e}k"), other.call("SET", "{e}k", "2"),
               c.call("MULTI"), c.call("EXEC"), c.call("WATCH", "{e}k"), c.call("MULTI"), c.call("EXEC"),
               c.call("MULTI"), c.call("EXEC")]
        c.close()
        other.close()
        replies.append(seq)
    assert replies[0] == [b"OK", b"OK", b"OK", b"OK", None, b"OK", b"OK", [], b"OK", []]
    assert replies[1] == replies[0]


def _raw(port, data, want_lines):
    """Send data on a new connection; what came back once want_lines lines did."""
    s = socket.create_connection((HOST, port), timeout=5)
    try:
        s.sendall(data)
        got = b""
        while got.count(b"\r\n") < want_lines:
            chunk = s.recv(65536)
            if not chunk:
                break
            got += chunk
        return got
    finally:
        s.close()


def test_an_empty_request_in_a_transaction_is_skipped_as_redis_skips_it(rig):
    """`*0`, `*-1` and blank lines inside MULTI get no reply and are not queued
    (they were queued, and EXEC then waited for a reply that never came: every
    later reply on that server connection went to the wrong client)."""
    direct, servers, px = rig
    _clean(direct, servers)
    req = b"MULTI\r\n*0\r\nSET {n}a 1\r\n\r\n*-1\r\n   \r\nEXEC\r\nGET {n}a\r\n"
    want = _raw(direct.port, req, 6)
    assert want == b"+OK\r\n+QUEUED\r\n*1\r\n+OK\r\n$1\r\n1\r\n", want
    _clean(direct, servers)
    assert _raw(px.port(), req, 6) == want
    # other clients still get their own replies
    b, c = px.resp(), px.resp()
    assert b.call("SET", "{n}b", "bee") == b"OK" and c.call("GET", "{n}none") is None
    assert b.call("GET", "{n}b") == b"bee"


@pytest.mark.parametrize("cmd", [("SELECT", "0"), ("HELLO", "3"), ("AUTH", "pw"), ("CLIENT", "SETNAME", "x"),
                                 ("CLIENT", "NO-EVICT", "on")])
def test_a_command_that_changes_the_connection_is_refused_in_a_transaction(rig, cmd):
    """Ours: queued, SELECT, HELLO, AUTH or CLIENT SETNAME would run at EXEC on the
    server connection the client shares with others, and change it for all of them
    (another client then read another database, or RESP3 replies): refused, and
    EXEC aborts, as redis does with an error at queue time."""
    direct, servers, px = rig
    _clean(direct, servers)
    c, other = px.resp(), px.resp()
    assert other.call("SET", "{s}k", "v") == b"OK"
    assert c.call("MULTI") == b"OK"
    assert c.call(*cmd) == RespError("ERR Command not allowed inside a transaction through the proxy")
    assert c.call("SET", "{s}k", "w") == b"QUEUED"
    assert c.call("EXEC") == RespError("EXECABORT Transaction discarded because of previous errors.")
    # the shared connection is as it was: same database, RESP2, no name, no flag
    assert other.call("GET", "{s}k") == b"v" and other.call("GET", "{s}none") is None
    for srv in servers:
        for conn in srv.client().client_list():
            assert conn["name"] != "x" and "e" not in conn["flags"] and conn["db"] == "0", conn


@pytest.mark.parametrize("cmd", [("CLIENT", "ID"), ("CLIENT", "GETNAME"), ("CLIENT", "INFO"),
                                 ("CLIENT", "LIST"), ("INFO",),
                                 ("INFO", "server"), ("COMMAND", "COUNT")])
def test_a_command_only_the_proxy_answers_is_refused_in_a_transaction(rig, cmd):
    """Queued, these went at EXEC to the shared server connection and told of
    it, not of the client's connection to the proxy: CLIENT ID gave the proxy's
    connection id on the server, CLIENT GETNAME nil after the client's SETNAME,
    CLIENT INFO the server's address and INFO the server's figures. Refused as
    the ones that change the connection are; PING and ECHO are still queued."""
    direct, servers, px = rig
    _clean(direct, servers)
    c = px.resp()
    assert c.call("MULTI") == b"OK"
    assert c.call(*cmd) == RespError("ERR Command not allowed inside a transaction through the proxy")
    assert c.call("EXEC") == RespError("EXECABORT Transaction discarded because of previous errors.")
    assert c.call("MULTI") == b"OK"
    assert c.call("PING") == b"QUEUED" and c.call("ECHO", "e") == b"QUEUED"
    assert c.call("EXEC") == [b"PONG", b"e"]


def test_exec_with_arguments_aborts_the_transaction_as_redis_does(rig):
    """redis refuses EXEC with arguments with EXECABORT and discards the
    transaction (in MULTI or not) and the watch; the proxy kept the transaction
    open, so the next EXEC ran it."""
    cmds = [("MULTI",), ("SET", "{x}a", "1"), ("EXEC", "x"), ("EXEC",), ("GET", "{x}a"),
            ("EXEC", "x"), ("SET", "{x}w", "1"), ("WATCH", "{x}w"), ("EXEC", "x"), ("MULTI",),
            ("SET", "{x}w", "2"), ("EXEC",), ("GET", "{x}w")]
    want, got = _both(rig, cmds)
    assert want[2] == RespError(
        "EXECABORT Transaction discarded because of: wrong number of arguments for 'exec' command")
    assert got == want


def test_hello_auth_without_a_password_knows_only_the_default_user(rig):
    """As redis without a password: the default user logs in with any password,
    and any other user is refused (the proxy took every one)."""
    direct, servers, px = rig
    for port in (direct.port, px.port()):
        c = Resp(port=port)
        assert c.call("HELLO", "2", "AUTH", "nobody", "pw") == RespError(
            "WRONGPASS invalid username-password pair or user is disabled.")
        assert c.call("GET", "{h}none") is None  # the connection goes on, in RESP2
        reply = c.call("HELLO", "3", "AUTH", "default", "anything")
        assert isinstance(reply, dict) and reply[b"proto"] == 3, reply
        c.close()


def test_redis_py_default_pipeline(rig):
    import redis
    _, servers, px = rig
    r = redis.Redis(host=HOST, port=px.port(), decode_responses=True)
    with r.pipeline() as p:
        p.set("{p}a", 1).incr("{p}a").get("{p}a")
        assert p.execute() == [True, 2, "2"]
    a, b = _keys_on_different_servers(px, servers, prefix="q")
    with r.pipeline() as p:
        p.set(a, 1).set(b, 2)
        with pytest.raises(redis.exceptions.ResponseError):
            p.execute()


# --------------------------------------------------------------------------- pub/sub

def test_pubsub_channels_on_every_server(rig):
    _, servers, px = rig
    chans = _keys_on_different_servers(px, servers, n=3, prefix="ch")
    sub, pub = px.resp(), px.resp()
    sub.send(encode_command("SUBSCRIBE", *chans))
    for i, ch in enumerate(chans, 1):
        assert sub.read_reply() == [b"subscribe", ch.encode(), i]
    for ch in chans:
        assert pub.call("PUBLISH", ch, "hello " + ch) == 1
        assert sub.read_reply() == [b"message", ch.encode(), ("hello " + ch).encode()]
    # only (un)subscribe, PING, QUIT, RESET in subscribed mode, as redis says it
    err = sub.call("GET", "x")
    assert isinstance(err, RespError) and "only (P|S)SUBSCRIBE" in err.msg, err
    assert sub.call("PING") == [b"pong", b""]
    sub.send(encode_command("UNSUBSCRIBE"))
    got = sorted(sub.read_reply()[1] for _ in chans)
    assert got == sorted(c.encode() for c in chans)
    assert sub.call("GET", "x") is None  # back to normal


def test_pattern_subscription_hears_every_server(rig):
    _, servers, px = rig
    chans = _keys_on_different_servers(px, servers, n=3, prefix="news.")
    sub, pub = px.resp(), px.resp()
    assert sub.call("PSUBSCRIBE", "news.*") == [b"psubscribe", b"news.*", 1]
    for ch in chans:
        assert pub.call("PUBLISH", ch, "x") == 1
        assert sub.read_reply() == [b"pmessage", b"news.*", ch.encode(), b"x"]
    assert sub.call("PUNSUBSCRIBE", "news.*") == [b"punsubscribe", b"news.*", 0]


def test_pubsub_introspection_says_what_one_redis_would(rig):
    """PUBSUB CHANNELS, NUMSUB and NUMPAT through a sharded pool are asked of
    every server, where the subscriptions are (a channel at its home, a pattern
    on every server), and answer as one redis with the same subscribers does:
    the channels once each, a pattern counted once (h69: refused before)."""
    direct, servers, px = rig
    chans = _keys_on_different_servers(px, servers, n=3, prefix="room.")
    d = direct.resp()
    subs = []
    for port in (px.port("alpha"), direct.port):
        sub, sub2 = Resp(port=port), Resp(port=port)
        sub.send(encode_command("SUBSCRIBE", *chans) + encode_command("PSUBSCRIBE", "room.*", "other.*"))
        sub2.send(encode_command("SUBSCRIBE", chans[0]) + encode_command("PSUBSCRIBE", "room.*"))
        for _ in range(len(chans) + 2):
            sub.read_reply()
        sub2.read_reply(), sub2.read_reply()
        subs += [sub, sub2]
    c = px.resp("alpha")
    for args in (("CHANNELS",), ("CHANNELS", "room.*"), ("CHANNELS", "nothing*")):
        assert sorted(c.call("PUBSUB", *args)) == sorted(d.call("PUBSUB", *args)), args
    numsub = ("NUMSUB", chans[0], chans[1], "room.none")
    assert c.call("PUBSUB", *numsub) == d.call("PUBSUB", *numsub) == [
        chans[0].encode(), 2, chans[1].encode(), 1, b"room.none", 0]
    assert c.call("PUBSUB", "NUMPAT") == d.call("PUBSUB", "NUMPAT") == 2
    assert c.call("PUBSUB", "NUMSUB") == []
    assert isinstance(c.call("PUBSUB", "HELP"), list)
    err = c.call("PUBSUB", "SHARDCHANNELS")
    assert isinstance(err, RespError) and "pubsub|shardchannels" in err.msg, err
    for sub in subs:
        sub.close()


def test_keyevent_channels_hear_every_server(rig):
    """Each server publishes its own keys' keyspace and keyevent notifications:
    a SUBSCRIBE to __keyevent@0__:set or :expired through a sharded pool is made
    on every server, as a pattern is (h70: 5 of 15 expiries, those of the one
    server the channel's name is placed on); a PUBLISH to it is heard once."""
    direct, servers, px = rig
    for s in servers:
        s.client().config_set("notify-keyspace-events", "KEx$")
    try:
        sub, c = px.resp("alpha"), px.resp("alpha")
        sub.send(encode_command("SUBSCRIBE", "__keyevent@0__:set", "__keyevent@0__:expired"))
        assert sub.read_reply() == [b"subscribe", b"__keyevent@0__:set", 1]
        assert sub.read_reply() == [b"subscribe", b"__keyevent@0__:expired", 2]
        keys = _keys_on_different_servers(px, servers, n=3, prefix="kev") + ["kev-a", "kev-b", "kev-c"]
        for k in keys:
            assert c.call("SET", k, "v", "PX", "30") == b"OK"
        assert c.call("PUBLISH", "__keyevent@0__:set", "by-hand") == 1
        got = [sub.read_reply() for _ in range(2 * len(keys) + 1)]
        assert sorted(m[2] for m in got if m[1] == b"__keyevent@0__:set") == sorted(
            [k.encode() for k in keys] + [b"by-hand"]), got
        assert sorted(m[2] for m in got if m[1] == b"__keyevent@0__:expired") == sorted(
            k.encode() for k in keys), got
        assert sub.call("UNSUBSCRIBE", "__keyevent@0__:set") == [b"unsubscribe", b"__keyevent@0__:set", 1]
    finally:
        for s in servers:
            s.client().config_set("notify-keyspace-events", "")


def test_script_kill_with_a_server_down(env):
    """A server that cannot be asked runs no script of the proxy's to kill: the
    server that killed one still makes SCRIPT KILL +OK (h70: the proxy answered
    the down server's connection error, though the script was killed)."""
    live, dead = env.redises(2)
    px = env.proxy({"alpha": redis_pool([live, dead])})
    live.client().config_set("busy-reply-threshold", 100)
    dead.proc.kill()
    dead.proc.wait()
    c, killer = px.resp(), px.resp()
    k = next(k for k in ("s%d" % i for i in range(1000)) if placement([k], [live, dead])[k] is live)
    c.send(encode_command("EVAL", "while true do end", "1", k))
    wait_until(lambda: isinstance(live.resp().call("PING"), RespError), "the server busy")
    assert killer.call("SCRIPT", "KILL") == b"OK"
    err = c.read_reply()
    assert isinstance(err, RespError) and "killed by user" in err.msg, err
    err = killer.call("SCRIPT", "KILL")  # the dead one might run one: its error says why not
    assert isinstance(err, RespError) and "refused" in err.msg.lower(), err


def test_pubsub_server_lost_ends_the_client(env):
    """The subscriber is closed, so its library subscribes again; no error
    reply comes first (it answered no request: RESP3 clients such as
    node-redis and ioredis broke on it)."""
    s = env.redis()
    other = env.redis()
    px = env.proxy({"alpha": redis_pool([s, other])})
    ch = _keys_on_different_servers(px, [s, other], n=1, prefix="lost")[0]
    home = placement([ch], [s, other])[ch]
    sub = px.resp()
    assert sub.call("SUBSCRIBE", ch) == [b"subscribe", ch.encode(), 1]
    home.stop()
    assert sub.is_closed()
    # a SUBSCRIBE while the server is down: the close alone, as from redis
    # itself (ioredis, told an error, never subscribed again)
    down = px.resp()
    down.send(encode_command("SUBSCRIBE", ch))
    assert down.is_closed()


@pytest.mark.parametrize("how", ["stopped", "gone"])
def test_a_server_whose_channels_the_subscriber_left_no_longer_holds_it(env, how):
    """A subscriber that left every channel of a server keeps its other
    subscriptions when that server stops answering or goes away, and its PING
    is answered without it, as from redis. The proxy waited for that server to
    answer the PING (for ever without `timeout:`), and closed the client when
    the server was lost."""
    servers = env.redises(2)
    px = env.proxy({"alpha": redis_pool(servers)})
    stay, leave = _keys_on_different_servers(px, servers, n=2, prefix="ch")
    left = placement([leave], servers)[leave]
    sub, pub = px.resp(), px.resp()
    sub.send(encode_command("SUBSCRIBE", stay, leave))
    assert [sub.read_reply() for _ in range(2)] == [[b"subscribe", stay.encode(), 1],
                                                    [b"subscribe", leave.encode(), 2]]
    assert sub.call("UNSUBSCRIBE", leave) == [b"unsubscribe", leave.encode(), 1]
    if how == "stopped":
        os.kill(left.proc.pid, signal.SIGSTOP)
    else:
        left.stop()
    try:
        sub.settimeout(5)
        assert sub.call("PING", "x") == [b"pong", b"x"]
        assert pub.call("PUBLISH", stay, "m") == 1
        assert sub.read_reply() == [b"message", stay.encode(), b"m"]
        assert sub.call("PING") == [b"pong", b""]
    finally:
        if how == "stopped":
            os.kill(left.proc.pid, signal.SIGCONT)


# --------------------------------------------------------------------------- keyless, whole pool

def test_scan_walks_every_server_once(rig):
    _, servers, px = rig
    _clean(rig[0], servers)
    c = px.client()
    names = spread_keys("scan", 500)  # alike names would crowd one server
    for i in range(0, 500, 100):
        c.mset({n: "v" for n in names[i:i + 100]})
    assert all(s.client().dbsize() > 50 for s in servers)  # spread
    seen = list(c.scan_iter(match="scan:*", count=37))
    assert len(seen) == 500 and sorted(seen) == sorted(n.encode() for n in names)
    assert list(c.scan_iter(match="nothing:*")) == []
    r = px.resp()
    assert r.call("SCAN", "notanumber") == RespError("ERR invalid cursor")
    # redis reads the cursor with strtoull: "" and "+0" start, leading blanks and
    # 2^64 do not; the proxy's pool-wide cursor is read the same way
    first = servers[0].resp()
    for cursor in ("", "+0", "-0", " 0", "18446744073709551616", "+", "0x0", "1 "):
        want = first.call("SCAN", cursor, "MATCH", "nothing:*")
        got = r.call("SCAN", cursor, "MATCH", "nothing:*")
        assert isinstance(got, RespError) == isinstance(want, RespError), (cursor, want, got)
        assert got == want or not isinstance(want, RespError), (cursor, want, got)
    assert r.call("SCAN", "", "COUNT", "1000")[1] != []  # "" is 0: the walk starts


def test_dbsize_keys_randomkey_summed_over_servers(rig):
    _, servers, px = rig
    _clean(rig[0], servers)
    c = px.client()
    c.mset({"d%d" % i: "v" for i in range(60)})
    assert c.dbsize() == 60
    assert sorted(c.keys("d*")) == sorted(("d%d" % i).encode() for i in range(60))
    assert c.randomkey() in {("d%d" % i).encode() for i in range(60)}
    _clean(rig[0], servers)
    assert c.randomkey() is None and c.dbsize() == 0


def test_scripts_on_every_server(rig):
    _, servers, px = rig
    c = px.resp()
    for s in servers:
        s.client().script_flush()
    sha = c.call("SCRIPT", "LOAD", "return 7")
    assert isinstance(sha, bytes) and len(sha) == 40
    assert all(s.client().script_exists(sha.decode()) == [True] for s in servers)
    assert c.call("SCRIPT", "EXISTS", sha, "0" * 40) == [1, 0]
    for k in _keys_on_different_servers(px, servers, n=3, prefix="e"):
        assert c.call("EVALSHA", sha, "1", k) == 7
    assert c.call("SCRIPT", "FLUSH") == b"OK"
    assert c.call("SCRIPT", "EXISTS", sha) == [0]


LIB = ("#!lua name=plib\nredis.register_function{function_name='pget', flags={'no-writes'}, "
       "callback=function(keys) return redis.call('GET', keys[1]) end}")


def test_functions_on_every_server(rig):
    """FUNCTION LOAD, RESTORE and DELETE go to every server, so FCALL runs wherever its
    keys are; LIST and DUMP answer when every server answers alike (as direct redis);
    FUNCTION FLUSH, like FLUSHALL, needs allow_flush (redis' own test suite sends
    FLUSHALL and FUNCTION FLUSH before every file)."""
    direct, servers, px = rig
    for s in [direct] + list(servers):
        s.client().function_flush()
    c, d = px.resp("flushy"), direct.resp()
    for conn in (c, d):
        assert conn.call("FUNCTION", "LOAD", LIB) == b"plib"
        assert "already exists" in conn.call("FUNCTION", "LOAD", LIB).msg
    assert all(s.resp().call("FUNCTION", "LIST") == d.call("FUNCTION", "LIST") for s in servers)
    for i, k in enumerate(_keys_on_different_servers(px, servers, n=3, prefix="f")):
        assert c.call("SET", k, "v%d" % i) == b"OK"
        assert c.call("FCALL", "pget", "1", k) == b"v%d" % i
        assert c.call("FCALL_RO", "pget", "1", k) == b"v%d" % i
    assert c.call("FUNCTION", "LIST") == d.call("FUNCTION", "LIST")
    dump = c.call("FUNCTION", "DUMP")
    assert dump == d.call("FUNCTION", "DUMP")
    for conn in (c, d):
        assert conn.call("FUNCTION", "DELETE", "plib") == b"OK"
        assert conn.call("FUNCTION", "DELETE", "plib").msg == "ERR Library not found"
        assert conn.call("FUNCTION", "RESTORE", dump) == b"OK"
        assert conn.call("FUNCTION", "LIST", "LIBRARYNAME", "plib")[0][1] == b"plib"
    servers[0].client().function_delete("plib")  # the servers disagree now
    err = c.call("FUNCTION", "LIST")
    assert isinstance(err, RespError) and "the servers disagree on function|list" in err.msg, err
    err = px.resp("alpha").call("FUNCTION", "FLUSH")
    assert isinstance(err, RespError) and "allow_flush" in err.msg, err
    assert c.call("FUNCTION", "FLUSH") == b"OK"
    assert all(s.resp().call("FUNCTION", "LIST") == [] for s in servers)
    assert isinstance(c.call("FUNCTION", "HELP"), list)


def _libs(listing):
    """FUNCTION LIST's libraries as {name: sorted function names} (RESP2 arrays)."""
    out = {}
    for lib in listing:
        f = dict(zip(lib[::2], lib[1::2]))
        out[f[b"library_name"]] = sorted(dict(zip(fn[::2], fn[1::2]))[b"name"] for fn in f[b"functions"])
    return out


def test_function_list_and_dump_of_many_libraries(rig):
    """Each server lists its libraries, and a library's functions, in its own
    dictionaries' order (a random hash seed per process), and FUNCTION DUMP
    writes them in that order: LIST (RESP2, RESP3, WITHCODE) and DUMP are
    answered when every server holds the same libraries, whatever the order
    (h69: with 2 libraries or functions or more, the servers "disagreed"), and a
    dump restores elsewhere. A library missing on one server is still a
    disagreement, and the error shows where the replies differ."""
    direct, servers, px = rig
    for s in [direct] + list(servers):
        s.client().function_flush()
    c = px.resp("flushy")
    want = {}
    for i in range(6):
        names = ["l%df%d" % (i, j) for j in range(4)]
        code = "#!lua name=lib%d\n" % i + "".join(
            "redis.register_function('%s', function(k) return %d end)\n" % (n, j) for j, n in enumerate(names))
        assert c.call("FUNCTION", "LOAD", code) == b"lib%d" % i
        want[b"lib%d" % i] = sorted(n.encode() for n in names)
    orders = {tuple(_libs(s.resp().call("FUNCTION", "LIST")).keys()) for s in servers}
    assert len(orders) > 1, "every server listed the libraries in one order: %r" % orders
    assert _libs(c.call("FUNCTION", "LIST")) == want
    withcode = c.call("FUNCTION", "LIST", "WITHCODE")
    assert len(withcode) == 6 and all(b"library_code" in lib for lib in withcode)
    c3 = px.resp("flushy")
    assert c3.call("HELLO", "3")[b"proto"] == 3
    assert sorted(lib[b"library_name"] for lib in c3.call("FUNCTION", "LIST")) == sorted(want)
    dump = c.call("FUNCTION", "DUMP")
    d = direct.resp()
    assert d.call("FUNCTION", "RESTORE", dump) == b"OK"
    assert _libs(d.call("FUNCTION", "LIST")) == want
    assert c.call("FCALL", "l3f2", "0") == 2
    servers[1].client().function_delete("lib4")
    for sub in ("LIST", "DUMP"):
        err = c.call("FUNCTION", sub)
        assert isinstance(err, RespError) and "the servers disagree on function|%s" % sub.lower() in err.msg, err
    err = c.call("FUNCTION", "LIST", "LIBRARYNAME", "lib2")
    assert _libs(err) == {b"lib2": want[b"lib2"]}, err
    assert c.call("FUNCTION", "FLUSH") == b"OK"


def test_script_kill_stops_a_runaway_script(rig):
    """SCRIPT KILL and FUNCTION KILL go to every server over connections of the
    client's own (the shared one waits behind the script) and answer +OK from
    the server that killed it, NOTBUSY when none runs one (h69: refused; the
    BUSY error tells the client to send SCRIPT KILL, and through the proxy no
    one could). The script's client gets redis' error and the server serves on."""
    direct, servers, px = rig
    for s in servers:
        s.client().config_set("busy-reply-threshold", 100)
    try:
        c, killer, other = px.resp("alpha"), px.resp("alpha"), px.resp("alpha")
        k = _keys_on_different_servers(px, servers, n=1, prefix="spin")[0]
        home = placement([k], servers)[k]
        assert killer.call("SCRIPT", "KILL") == RespError("NOTBUSY No scripts in execution right now.")
        c.send(encode_command("EVAL", "while true do end", "1", k))
        wait_until(lambda: isinstance(home.resp().call("GET", "x"), RespError), "the server busy")
        other.send(encode_command("SET", k, "after"))  # waits behind the script
        assert killer.call("SCRIPT", "KILL") == b"OK"
        err = c.read_reply()
        assert isinstance(err, RespError) and "killed by user" in err.msg, err
        assert other.read_reply() == b"OK"
        assert c.call("GET", k) == b"after"
        lib = ("#!lua name=spinlib\nredis.register_function{function_name='spin', flags={'no-writes'}, "
               "callback=function(keys) while true do end end}")
        assert c.call("FUNCTION", "LOAD", "REPLACE", lib) == b"spinlib"
        c.send(encode_command("FCALL", "spin", "1", k))
        wait_until(lambda: isinstance(home.resp().call("GET", "x"), RespError), "the server busy")
        assert killer.call("FUNCTION", "KILL") == b"OK"
        err = c.read_reply()
        assert isinstance(err, RespError) and "killed by user" in err.msg, err
        assert killer.call("FUNCTION", "KILL") == RespError("NOTBUSY No scripts in execution right now.")
        assert c.call("FUNCTION", "DELETE", "spinlib") == b"OK"
    finally:
        for s in servers:
            s.client().config_set("busy-reply-threshold", 5000)


def test_flushdb_needs_allow_flush(rig):
    _, servers, px = rig
    c = px.resp("alpha")
    err = c.call("FLUSHDB")
    assert isinstance(err, RespError) and "allow_flush" in err.msg, err
    f = px.resp("flushy")
    assert f.call("SET", "gone", "1") == b"OK"
    assert f.call("FLUSHALL") == b"OK"
    assert f.call("DBSIZE") == 0


def test_time_and_lastsave_from_a_server(rig):
    _, _, px = rig
    c = px.resp()
    t = c.call("TIME")
    assert isinstance(t, list) and abs(int(t[0]) - time.time()) < 30
    assert isinstance(c.call("LASTSAVE"), int)


# --------------------------------------------------------------------------- local answers

def test_info_sections_and_keyspace(rig):
    _, servers, px = rig
    _clean(rig[0], servers)
    c = px.client()
    c.mset({"i%d" % i: "v" for i in range(30)})
    info = c.info()
    assert info["loading"] == 0 and info["redis_mode"] == "proxy"
    assert info["redis_version"] == servers[0].client().info("server")["redis_version"]
    wait_until(lambda: c.info("keyspace").get("db0", {}).get("keys") == 30, "the keyspace summed")
    assert set(c.info("server")) >= {"redis_version", "process_id", "uptime_in_seconds"}
    assert "connected_clients" in c.info("clients")
    # the servers' eviction policy, learned with the version (Sidekiq warns unless noeviction)
    assert info["maxmemory_policy"] == servers[0].client().info("memory")["maxmemory_policy"]
    assert c.info("memory")["maxmemory_policy"] == "noeviction"


def test_client_name_id_info(rig):
    _, _, px = rig
    c = px.resp()
    assert c.call("CLIENT", "GETNAME") is None
    assert c.call("CLIENT", "SETNAME", "worker-1") == b"OK"
    assert c.call("CLIENT", "GETNAME") == b"worker-1"
    assert isinstance(c.call("CLIENT", "ID"), int)
    info = c.call("CLIENT", "INFO")
    assert b"name=worker-1" in info, info
    err = c.call("CLIENT", "SETNAME", "has space")
    assert isinstance(err, RespError), err


def test_client_list_shows_the_client_itself(rig):
    """CLIENT LIST answers with the client's own line (its CLIENT INFO), so a
    worker finds its address by the name it set, as RQ's does at start (it
    refused, and RQ's workers exited); its options are checked as redis does
    and filter that line."""
    direct, _, px = rig
    import redis
    r = redis.Redis(port=px.port())
    assert r.client_setname("rq:worker:w1") is True
    mine = [c["addr"] for c in r.client_list() if c["name"] == "rq:worker:w1"]
    assert len(mine) == 1 and mine[0].startswith("127.0.0.1:"), mine
    c = px.resp()
    me = c.call("CLIENT", "ID")
    assert c.call("CLIENT", "LIST").startswith(b"id=%d " % me)
    assert b"cmd=client|list" in c.call("CLIENT", "LIST")
    assert c.call("CLIENT", "LIST", "ID", "1", str(me)).startswith(b"id=%d " % me)
    assert c.call("CLIENT", "LIST", "TYPE", "Normal").startswith(b"id=%d " % me)
    for args in (("TYPE", "pubsub"), ("TYPE", "master"), ("ID", "0"), ("ID", "-1")):
        assert c.call("CLIENT", "LIST", *args) == b"", args
    d = direct.resp()
    for args in (("TYPE", "bogus"), ("ID", "abc"), ("ID", "1", "x"), ("TYPE",), ("ID",), ("foo",)):
        want = d.call("CLIENT", "LIST", *args)
        assert isinstance(want, RespError) and c.call("CLIENT", "LIST", *args) == want, (args, want)


def test_inline_commands_same_as_redis(rig):
    direct, servers, px = rig
    _clean(direct, servers)
    stream = b'PING\r\nSET k "two words"\r\nGET k\r\nset q\r\n\r\nECHO \'it\\\'s\'\r\nEXISTS k\r\n'
    outs = []
    for port in (direct.port, px.port()):
        s = socket.create_connection((HOST, port), timeout=5)
        s.sendall(stream)
        data = b""
        while data.count(b"\r\n") < 7:
            data += s.recv(65536)
        outs.append(data)
        s.close()
    assert outs[1] == outs[0]


def _resp3_raw(sock):
    """The exact bytes of one RESP3 reply (any type, attributes included)."""
    out = b""

    def line():
        nonlocal out
        while True:
            i = sock.buf.find(b"\r\n")
            if i >= 0:
                ln, sock.buf = sock.buf[:i], sock.buf[i + 2:]
                out += ln + b"\r\n"
                return ln
            sock._fill()

    def value():
        nonlocal out
        ln = line()
        t, rest = ln[:1], ln[1:]
        if t in b"$=!" and rest != b"-1":
            out += sock.readn(int(rest) + 2)
        elif t in b"*~>" and rest != b"-1":
            for _ in range(int(rest)):
                value()
        elif t in b"%|":
            for _ in range(2 * int(rest)):
                value()
            if t == b"|":
                value()
    value()
    return out


def test_resp3_big_numbers_of_scripts_pass_as_redis_writes_them(rig):
    """redis 7 writes the big number a script returns as it is (CR and LF as
    spaces): the proxy took such a line for a broken reply and closed the server
    connection, answering an error to every request on it, other clients' too."""
    direct, servers, px = rig
    values = ["123\\r\\n123", "12 34", "abc", "", "+5", "1.5", "-7"]
    script = [("EVAL", "return {big_number='%s'}" % v, "0") for v in values]
    other = px.resp()
    other.call("HELLO", "3")
    other.send(b"".join(encode_command("GET", "{b}k") for _ in range(2000)))
    got = {}
    for name, conn in (("direct", direct.resp()), ("proxy", px.resp())):
        conn.call("HELLO", "3")
        conn.send(b"".join(encode_command(*c) for c in script))
        got[name] = conn.readn(sum(len(b"(%s\r\n" % v.replace("\\r\\n", "  ").encode())
                                   for v in values))
    assert got["proxy"] == got["direct"], got
    assert got["proxy"].startswith(b"(123  123\r\n(12 34\r\n"), got
    assert [other.read_reply() for _ in range(2000)] == [None] * 2000


def test_resp3_hello_and_replies(rig):
    direct, servers, px = rig
    _clean(direct, servers)
    cmds = [("HSET", "h", "a", "1"), ("HGETALL", "h"), ("SADD", "s", "x"), ("SMEMBERS", "s"),
            ("ZADD", "z", "1.5", "m"), ("ZSCORE", "z", "m"), ("GET", "missing"),
            ("MGET", "h", "missing", "s"), ("EXISTS", "h", "s", "nope"), ("CLIENT", "GETNAME")]
    outs = []
    for port in (direct.port, px.port()):
        c = Resp(port=port)
        c.send(encode_command("HELLO", "3"))
        hello = _resp3_raw(c)
        assert hello.startswith(b"%") and b"proto\r\n:3\r\n" in hello, hello
        outs.append([(_resp3_raw(c) if not c.send(encode_command(*cmd)) else None) for cmd in cmds])
        c.close()
    assert outs[1] == outs[0]


def test_a_push_no_request_asked_for_is_not_taken_for_a_reply(env):
    """A client of redis itself may send its CLIENT TRACKING invalidations to
    another connection (REDIRECT id), the proxy's RESP3 connection among them:
    redis then pushes `>2 invalidate` there. The proxy handed the push to the
    client whose GET waited on the connection, and that GET's value to the
    next client's GET (k1's value for k2)."""
    r = env.redis()
    px = env.proxy({"one": redis_pool([r])})
    direct = r.client()
    direct.set("k1", "v1")
    direct.set("k2", "v2")
    a, b = px.resp(), px.resp()
    for c in (a, b):
        c.send(encode_command("HELLO", "3"))
        _resp3_raw(c)
    assert a.call("GET", "k1") == b"v1"
    ids = [cl["id"] for cl in direct.client_list() if cl.get("resp") == "3"]
    assert len(ids) == 1, direct.client_list()  # the proxy's one RESP3 connection
    tracker = r.resp()
    assert tracker.call("CLIENT", "TRACKING", "on", "REDIRECT", ids[0], "BCAST") == b"OK"
    # redis busy for 300 ms, then a write it invalidates on the proxy's connection,
    # ahead of the two GETs sent meanwhile
    busy = ("local t0 = redis.call('time') while true do local t = redis.call('time') "
            "if (t[1] - t0[1]) * 1000000 + t[2] - t0[2] > 300000 then break end end "
            "redis.call('set', 'k9', 'x') return 1")
    tracker.send(encode_command("EVAL", busy, "0"))
    time.sleep(0.1)
    a.send(encode_command("GET", "k1"))
    b.send(encode_command("GET", "k2"))
    assert tracker.read_reply() == 1
    assert _resp3_raw(a) == b"$2\r\nv1\r\n"
    assert _resp3_raw(b) == b"$2\r\nv2\r\n"
    assert a.call("GET", "k1") == b"v1" and b.call("GET", "k2") == b"v2"
    assert a.read_available(0.2) == b"" and b.read_available(0.2) == b""
    tracker.close()


def test_info_says_loading_while_the_server_loads(env):
    """ioredis (BullMQ) reads INFO's loading when it connects and waits while
    redis loads its data set; the proxy always said loading:0, and the first
    commands met -LOADING (h72). Now INFO says what the server it asked says,
    with its loading_eta_seconds, as redis directly."""
    r = env.redis()
    c = r.client()
    for i in range(0, 20000, 1000):
        c.mset({"load%d" % k: "v" for k in range(i, i + 1000)})
    c.save()
    port = r.port
    r.stop()
    # about 4 s to load, answering INFO meanwhile
    r = env.redis(args=["--key-load-delay", "100", "--loading-process-events-interval-bytes", "1024"],
                  port=port)
    px = env.proxy({"alpha": redis_pool([r])})
    direct, through = r.client().info("persistence"), px.client().info("persistence")
    assert direct["loading"] == 1, "loaded too fast for this test: %r" % direct
    assert through["loading"] == 1 and "loading_eta_seconds" in through
    wait_until(lambda: r.client().info("persistence")["loading"] == 0, "loaded", timeout=30)
    assert px.client().info("persistence")["loading"] == 0
    assert px.client().get("load7") == b"v"
