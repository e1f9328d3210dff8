"""Commands the proxy answers itself, AUTH and redis_db (SPEC 5.2, 5.3, section 2)."""

import re

import pytest

from conftest import Resp, RespError, encode_command, redis_commands_list, redis_pool

PASSWORD = "s3cret-pw"


@pytest.fixture(scope="module")
def plain(menv):
    servers = menv.redises(2)
    px = menv.proxy({"alpha": redis_pool(servers), "db3": redis_pool(servers, redis_db=3)})
    return servers, px


@pytest.fixture(scope="module")
def authed(menv):
    servers = menv.redises(2, password=PASSWORD)
    px = menv.proxy({"alpha": redis_pool(servers, redis_auth=PASSWORD)})
    return servers, px


def test_ping(plain):
    _, px = plain
    c = px.resp()
    assert c.call("PING") == b"PONG"
    assert px.client().ping() is True


def test_ping_with_message_echoes_it(plain):
    """Ours: PING msg replies like redis does (bulk msg)."""
    _, px = plain
    c = px.resp()
    assert c.call("PING", "hello there") == b"hello there"
    assert c.call("PING") == b"PONG"


def test_echo(plain):
    """Ours: ECHO is not in twemproxy's command list."""
    _, px = plain
    c = px.resp()
    assert c.call("ECHO", "abc\r\ndef") == b"abc\r\ndef"
    assert c.call("PING") == b"PONG"


def test_quit_flushes_pending_replies_then_closes(plain):
    _, px = plain
    c = px.resp()
    c.send(encode_command("SET", "quit:k", "1") + encode_command("GET", "quit:k") + encode_command("QUIT")
           + encode_command("SET", "quit:after", "1"))
    assert c.read_reply() == b"OK"
    assert c.read_reply() == b"1"
    rest = c.read_available(1.0)
    assert rest in (b"", b"+OK\r\n"), rest
    assert c.is_closed()
    servers, _ = plain
    assert all(s.client().get("quit:after") is None for s in servers), "command after QUIT was executed"


def test_quit_answers_ok(plain):
    """Ours: QUIT answers +OK before closing, like redis."""
    _, px = plain
    c = px.resp()
    assert c.call("QUIT") == b"OK"
    assert c.is_closed()


def test_select_matching_db_is_ok(plain):
    """Ours: SELECT n is +OK when n is the pool's redis_db."""
    _, px = plain
    c = px.resp("alpha")
    assert c.call("SELECT", "0") == b"OK"
    c3 = px.resp("db3")
    assert c3.call("SELECT", "3") == b"OK"
    assert c3.call("PING") == b"PONG"


def test_select_other_db_is_an_error(plain):
    """Ours: SELECT of another db is refused with an error; the connection stays usable."""
    _, px = plain
    c = px.resp("alpha")
    r = c.call("SELECT", "1")
    assert isinstance(r, RespError) and r.msg.startswith("ERR"), r
    assert c.call("PING") == b"PONG"


def test_hello_answers_resp2(plain):
    """Ours: HELLO / HELLO 2 answer a RESP2 HELLO reply."""
    _, px = plain
    c = px.resp()
    for args in (("HELLO",), ("HELLO", "2")):
        r = c.call(*args)
        assert isinstance(r, list) and len(r) % 2 == 0, r
        fields = dict(zip(r[::2], r[1::2]))
        assert fields.get(b"proto") == 2, r
        assert b"server" in fields and b"version" in fields, r
    assert c.call("PING") == b"PONG"


def test_hello_3_switches_to_resp3(plain):
    """HELLO 3 answers the map redis 7 sends (the proxy's name and version), the client
    then gets RESP3 answers (a null is `_`), HELLO 2 switches back; other versions
    keep redis' NOPROTO."""
    _, px = plain
    c = px.resp()
    c.send(encode_command("HELLO", "3", "SETNAME", "me"))
    assert c.readline() == b"%7"
    fields = {}
    for _ in range(7):
        k = c.read_reply()
        fields[k] = c.read_reply()
    assert list(fields) == [b"server", b"version", b"proto", b"id", b"mode", b"role", b"modules"]
    assert fields[b"proto"] == 3 and fields[b"mode"] == b"standalone", fields
    assert c.call("CLIENT", "GETNAME") == b"me"
    c.send(encode_command("CLIENT", "SETNAME", ""))
    assert c.read_reply() == b"OK"
    c.send(encode_command("CLIENT", "GETNAME"))
    assert c.readline() == b"_"
    r = c.call("HELLO", "2")
    assert dict(zip(r[::2], r[1::2]))[b"proto"] == 2, r
    assert c.call("CLIENT", "GETNAME") is None
    r = c.call("HELLO", "4")
    assert r == RespError("NOPROTO unsupported protocol version"), r
    assert c.call("PING") == b"PONG"


def test_command_count(plain):
    """Ours: COMMAND COUNT is answered (twemproxy closes the connection)."""
    _, px = plain
    c = px.resp()
    n = c.call("COMMAND", "COUNT")
    assert isinstance(n, int) and n >= len(redis_commands_list()), n
    assert c.call("PING") == b"PONG"


def test_command_info_matches_the_servers(plain):
    """Each command the proxy lists is described as its server describes it:
    arity, flags in redis' order, first/last key and step (the first six fields;
    redis 7 adds ACL categories, tips, key specs and subcommands after them).
    A subcommand's full name is found by COMMAND INFO, not by a request."""
    servers, px = plain
    c, direct = px.resp(), servers[0].resp()
    names = c.call("COMMAND", "LIST")
    assert len(names) > 150, names
    for name in names + [b"client|id", b"CONFIG|GET"]:
        mine, theirs = c.call("COMMAND", "INFO", name)[0], direct.call("COMMAND", "INFO", name)[0]
        if theirs is None:
            continue  # newer than this server (client|setinfo on redis 7.0)
        if mine is None:
            assert name == b"CONFIG|GET", name  # refused by the proxy: no entry
            continue
        assert mine[:6] == theirs[:6], (name, mine, theirs[:6])
    r = c.call("client|id")
    assert r == RespError("ERR unknown command 'client|id', with args beginning with: "), r


def test_command_list_filters_as_its_server_does(plain):
    """COMMAND LIST names the commands and subcommands the proxy serves; with
    FILTERBY ACLCAT, PATTERN or MODULE it keeps what the server keeps of them,
    and a malformed filter gets the server's error."""
    servers, px = plain
    c, direct = px.resp(), servers[0].resp()
    ours = set(c.call("COMMAND", "LIST"))
    assert b"get" in ours and b"object|encoding" in ours and b"config|get" not in ours
    newer = {b"client|setinfo", b"client|no-touch"}  # redis 7.2's, answered by the proxy
    assert ours - newer <= set(direct.call("COMMAND", "LIST"))
    for filt in (("ACLCAT", "list"), ("ACLCAT", "HyperLogLog"), ("ACLCAT", "keyspace"), ("ACLCAT", "nope"),
                 ("PATTERN", "l*"), ("PATTERN", "*|*"), ("PATTERN", "[gs]et?*"), ("PATTERN", "X*"),
                 ("MODULE", "fakemod")):
        mine = c.call("COMMAND", "LIST", "FILTERBY", *filt)
        theirs = direct.call("COMMAND", "LIST", "FILTERBY", *filt)
        assert set(mine) - newer == set(theirs) & ours, (filt, mine, theirs)
    for bad in (("bogus",), ("FILTERBY", "NAME", "x"), ("FILTERBY", "PATTERN")):
        assert c.call("COMMAND", "LIST", *bad) == direct.call("COMMAND", "LIST", *bad), bad


def test_redis_db_selects_db_on_backends(plain):
    servers, px = plain
    for s in servers:
        s.client().flushall()
    r = px.client("db3")
    keys = ["db:%d" % i for i in range(30)]
    for k in keys:
        assert r.set(k, k)
    in_db3 = set()
    for s in servers:
        assert s.client(db=0).dbsize() == 0
        in_db3 |= set(k.decode() for k in s.client(db=3).keys("*"))
    assert in_db3 == set(keys)
    assert r.get("db:7") == b"db:7"
    assert r.mget(keys[:5]) == [k.encode() for k in keys[:5]]
    assert px.client("alpha").get("db:7") is None


def test_auth_required_before_commands(authed):
    _, px = authed
    c = px.resp()
    r = c.call("GET", "a")
    assert isinstance(r, RespError) and r.msg.startswith("NOAUTH Authentication required"), r


def test_auth_wrong_password(authed):
    _, px = authed
    c = px.resp()
    r = c.call("AUTH", "wrong")
    assert isinstance(r, RespError) and r.msg.startswith("ERR invalid password"), r


def test_auth_then_commands_reach_password_protected_backends(authed):
    servers, px = authed
    c = px.resp()
    assert c.call("AUTH", PASSWORD) == b"OK"
    keys = ["auth:%d" % i for i in range(20)]
    args = []
    for k in keys:
        args += [k, "v" + k]
    assert c.call("MSET", *args) == b"OK"
    assert c.call("MGET", *keys) == [("v" + k).encode() for k in keys]
    found = set()
    for s in servers:
        found |= set(k.decode() for k in s.client().keys("auth:*"))
    assert found == set(keys)


def test_auth_with_redis_py(authed):
    _, px = authed
    r = px.client(password=PASSWORD)
    assert r.set("auth:py", "1")
    assert r.incr("auth:py") == 2


def test_auth_without_redis_auth_configured(plain):
    _, px = plain
    c = px.resp()
    r = c.call("AUTH", "x")
    assert r == RespError("ERR Client sent AUTH, but no password is set")
    assert c.call("PING") == b"PONG"


def test_client_info_flags_as_redis_shows_them(plain, menv):
    """CLIENT INFO's flags: P while subscribed, e after CLIENT NO-EVICT on (kept
    by RESET, as redis 7.0 keeps it), N for none; the proxy showed N or P only.
    A subscriber's refusal names a refused container's subcommand as redis does."""
    _, px = plain
    direct = menv.redis()
    seq = [("CLIENT", "INFO"), ("CLIENT", "NO-EVICT", "on"), ("CLIENT", "INFO"), ("RESET",),
           ("CLIENT", "INFO"), ("SUBSCRIBE", "c"), ("CONFIG", "GET", "maxmemory"), ("UNSUBSCRIBE",),
           ("CLIENT", "NO-EVICT", "off"), ("CLIENT", "INFO")]
    got = []
    for port in (direct.port, px.port("alpha")):
        c = Resp(port=port)
        c.send(b"".join(encode_command(*cmd) for cmd in seq))
        replies = [c.read_reply() for _ in seq]
        c.close()
        got.append([re.search(rb"flags=(\w+)", r).group(1) if isinstance(r, bytes) and b"flags=" in r
                    else r for r in replies])
    assert got[0][0] == b"N" and got[0][2] == b"e" and got[0][4] == b"e"  # redis itself
    assert got[1] == got[0]
