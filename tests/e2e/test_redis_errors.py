"""Errors (SPEC 5.4, 7): bad requests, backends down, timeouts, backend error replies."""

import pytest

from conftest import HOST, RespError, encode_command, free_port, placement, redis_pool, spread_keys, wait_until


def is_err(r, prefix="ERR"):
    return isinstance(r, RespError) and r.msg.startswith(prefix)


@pytest.fixture(scope="module")
def one(menv):
    s = menv.redis()
    px = menv.proxy({"alpha": redis_pool([s])})
    return s, px


# ----------------------------------------------------------------- bad requests

def test_unsupported_command_is_not_forwarded(one):
    """An admin command sent through the proxy never reaches a backend."""
    s, px = one
    before = s.client().config_get("maxmemory")["maxmemory"]
    c = px.resp()
    r = c.call("CONFIG", "SET", "maxmemory", "12345678")
    assert r != b"OK", r
    assert s.client().config_get("maxmemory")["maxmemory"] == before


def test_unsupported_command_gets_error_and_connection_stays(one):
    """Ours: twemproxy closes the connection without a reply."""
    s, px = one
    c = px.resp()
    r = c.call("SLAVEOF", "NO", "ONE")
    assert is_err(r), r
    assert c.call("SET", "after:keys", "1") == b"OK"
    assert c.call("GET", "after:keys") == b"1"


def test_unsupported_command_error_in_a_pipeline_keeps_order(one):
    """Ours: the error takes the place of the reply; the requests around it are answered."""
    s, px = one
    c = px.resp()
    rs = c.pipeline([("SET", "pe:1", "a"), ("SHUTDOWN", "NOSAVE"), ("GET", "pe:1"), ("CONFIG", "GET", "maxmemory"),
                     ("PING",)])
    assert rs[0] == b"OK" and is_err(rs[1]) and rs[2] == b"a" and is_err(rs[3]) and rs[4] == b"PONG", rs


@pytest.mark.parametrize("args", [("GET",), ("SET", "k"), ("MSET", "a", "1", "b"), ("HGET", "h"), ("DEL",),
                                  ("MGET",)], ids=lambda a: " ".join(a))
def test_wrong_number_of_arguments(one, args):
    """Ours: a clear error, and the connection stays usable."""
    s, px = one
    c = px.resp()
    r = c.call(*args)
    assert is_err(r), r
    assert c.call("PING") == b"PONG"


def test_inline_commands_are_served(one):
    """Ours: inline commands (telnet, redis-benchmark's PING_INLINE) are split as redis
    splits them, quotes included, and served like their RESP form; unbalanced quotes
    get redis' error and the connection is closed, as redis does (twemproxy closes the
    connection on any inline command)."""
    s, px = one
    c = px.resp()
    c.send(b'SET inl "a b\\x41"\r\nGET inl\nPING\r\n\r\n')
    assert c.read_reply() == b"OK"
    assert c.read_reply() == b"a bA"
    assert c.read_reply() == b"PONG"
    assert c.call("GET", "inl") == b"a bA"
    c.send(b'GET "inl\r\n')
    assert c.read_reply() == RespError("ERR Protocol error: unbalanced quotes in request")
    assert c.is_closed()


MALFORMED = [
    b"*2\r\n$3\r\nGET\r\n$abc\r\n",
    b"*x\r\n",
    b"*1\r\n:5\r\n",
    b"*2\r\n$3\r\nGET\r\n$3\r\nfooXY\r\n",
]


@pytest.mark.parametrize("data", MALFORMED, ids=["bad-bulk-len", "bad-multibulk-len", "not-a-bulk", "bad-terminator"])
def test_malformed_request_closes_connection(one, data):
    s, px = one
    c = px.resp()
    c.send(data)
    c.read_available(0.5)
    assert c.is_closed(5)
    assert px.resp().call("PING") == b"PONG"  # the proxy itself is fine


@pytest.mark.parametrize("data", MALFORMED, ids=["bad-bulk-len", "bad-multibulk-len", "not-a-bulk", "bad-terminator"])
def test_malformed_request_gets_error_before_close(one, data):
    """Ours: a protocol error reply comes before the close."""
    s, px = one
    c = px.resp()
    c.send(data)
    got = c.read_available(1.0)
    assert got.startswith(b"-ERR"), got
    assert c.is_closed(5)


def test_a_bad_byte_after_a_pause_is_answered_at_once_as_redis_does(one):
    # a request sent in two writes, the second one wrong where a '$' must be:
    # redis answers when it comes, not once the 15 arguments still due could be in
    s, px = one
    got = []
    for target in (s, px):
        c = target.resp()
        c.send(b"*16\r\n$3\r\nGET\r\n")
        assert c.read_available(0.3) == b""
        c.send(b"X\r\n")
        got.append(c.read_available(2.0))
        assert c.is_closed(5)
    assert got[0] == b"-ERR Protocol error: expected '$', got 'X'\r\n"
    assert got[1] == got[0]


def test_error_after_good_pipelined_requests(one):
    """Ours: replies to the requests before a malformed one are still delivered
    (twemproxy drops them and closes)."""
    s, px = one
    c = px.resp()
    c.send(b"*3\r\n$3\r\nSET\r\n$2\r\nmk\r\n$1\r\nv\r\n*2\r\n$3\r\nGET\r\n$2\r\nmk\r\n*2\r\n$3\r\nGET\r\n$abc\r\n")
    assert c.read_reply() == b"OK"
    assert c.read_reply() == b"v"
    c.read_available(0.5)
    assert c.is_closed(5)


# ----------------------------------------------------------------- backends down

@pytest.fixture
def half_dead(env):
    """Two-server pool; the second server's port has nothing listening."""
    live = env.redis()
    dead_addr = "%s:%d" % (HOST, free_port())
    px = env.proxy({"alpha": redis_pool([live, dead_addr])})
    names = [live.addr, dead_addr]
    keys = spread_keys("hd", 200)
    where = placement(keys, names)
    on_live = [k for k in keys if where[k] == live.addr]
    on_dead = [k for k in keys if where[k] == dead_addr]
    assert on_live and on_dead
    return live, px, on_live, on_dead


def test_key_on_dead_server_gets_connection_refused(half_dead):
    live, px, on_live, on_dead = half_dead
    c = px.resp()
    r = c.call("SET", on_dead[0], "x")
    assert r == RespError("ERR Connection refused"), r
    assert c.call("GET", on_dead[1]) == RespError("ERR Connection refused")
    # the same client connection keeps working for keys on the live server
    assert c.call("SET", on_live[0], "y") == b"OK"
    assert c.call("GET", on_live[0]) == b"y"
    assert live.client().get(on_live[0]) == b"y"


@pytest.mark.parametrize("cmd", ["MGET", "DEL", "MSET", "TOUCH"])
def test_split_command_with_one_server_down_is_an_error(half_dead, cmd):
    """The whole reply is one error (twemproxy closes the connection on MGET)."""
    live, px, on_live, on_dead = half_dead
    c = px.resp()
    keys = [on_live[0], on_dead[0], on_live[1]]
    if cmd == "MSET":
        args = []
        for k in keys:
            args += [k, "v"]
    else:
        args = keys
    r = c.call(cmd, *args)
    assert is_err(r), r
    assert c.call("SET", on_live[2], "z") == b"OK"


def test_backend_restart(env):
    a, b = env.redises(2)
    px = env.proxy({"alpha": redis_pool([a, b])})
    keys = spread_keys("rs", 100)
    where = placement(keys, [a, b])
    ka = [k for k in keys if where[k] is a]
    kb = [k for k in keys if where[k] is b]
    assert ka and len(kb) >= 3
    c = px.resp()
    assert c.call("SET", kb[0], "1") == b"OK"
    b.stop()
    r = c.call("GET", kb[0])
    assert is_err(r), r
    r = c.call("GET", kb[1])
    assert r == RespError("ERR Connection refused"), r
    assert c.call("SET", ka[0], "ok") == b"OK"
    b2 = env.redis(port=b.port)   # the same address comes back, empty
    wait_until(lambda: c.call("SET", kb[2], "back") == b"OK", "SET to work on the restarted server")
    assert b2.client().get(kb[2]) == b"back"


def test_auto_eject_moves_keys_to_live_servers(env):
    live = env.redis()
    dead_addr = "%s:%d" % (HOST, free_port())
    px = env.proxy({"alpha": redis_pool([live, dead_addr], auto_eject_hosts=True, server_failure_limit=2,
                                        server_retry_timeout=60000)})
    keys = spread_keys("ej", 100)
    on_dead = [k for k, s in placement(keys, [live.addr, dead_addr]).items() if s == dead_addr]
    assert len(on_dead) >= 6
    c = px.resp()
    replies = [c.call("SET", on_dead[i % len(on_dead)], "v") for i in range(6)]
    assert is_err(replies[0]), replies
    assert replies[-1] == b"OK", replies     # ejected: the key now maps to the live server
    assert live.client().get(on_dead[5 % len(on_dead)]) == b"v"
    st = px.wait_stats(lambda st: st["alpha"][dead_addr]["server_ejected_at"] > 0, "server_ejected_at")
    assert st["alpha"]["server_ejects"] >= 1


def test_timeout_gives_timed_out_error(env):
    s = env.redis()
    px = env.proxy({"alpha": redis_pool([s], timeout=300)})
    c = px.resp()
    assert c.call("SET", "to:k", "1") == b"OK"
    admin = s.resp()
    assert admin.call("CLIENT", "PAUSE", "1500", "ALL") == b"OK"
    r = c.call("GET", "to:k")   # without the timeout this would answer "1" when the pause ends
    assert r == RespError("ERR Connection timed out"), r
    admin.call("CLIENT", "UNPAUSE")
    wait_until(lambda: c.call("GET", "to:k") == b"1", "GET to be answered again after UNPAUSE")


# ----------------------------------------------------------------- backend error replies

def test_backend_oom_error_passes_through(one):
    """Ours: twemproxy counts -OOM as a server failure and answers -ERR Invalid argument."""
    s, px = one
    admin = s.resp()
    c = px.resp()
    direct = s.resp()
    try:
        assert admin.call("CONFIG", "SET", "maxmemory", "1") == b"OK"
        want = direct.call("SET", "oom:k", "v")
        assert is_err(want, "OOM"), want
        assert c.call("SET", "oom:k", "v") == want
    finally:
        admin.call("CONFIG", "SET", "maxmemory", "0")
    assert c.call("SET", "oom:k", "v") == b"OK"


def test_readonly_replica_error_passes_through(env):
    s = env.redis()
    px = env.proxy({"alpha": redis_pool([s])})
    admin = s.resp()
    assert admin.call("REPLICAOF", HOST, str(free_port())) == b"OK"   # a master that does not exist
    try:
        want = s.resp().call("SET", "ro:k", "v")
        assert is_err(want, "READONLY"), want
        assert px.resp().call("SET", "ro:k", "v") == want
    finally:
        admin.call("REPLICAOF", "NO", "ONE")


def test_backend_busy_error_passes_through(env):
    """Ours: -BUSY from a backend running a long script reaches the client as it is."""
    s = env.redis()
    px = env.proxy({"alpha": redis_pool([s])})
    admin = s.resp()
    assert admin.call("CONFIG", "SET", "busy-reply-threshold", "100") == b"OK"
    runner = s.resp()
    runner.send(encode_command("EVAL", "while true do end", "0"))
    try:
        # the backend itself says BUSY once the script ran past the threshold
        wait_until(lambda: is_err(s.resp().call("GET", "busy:k"), "BUSY"), "the backend to answer BUSY")
        r = px.resp().call("GET", "busy:k")
        assert is_err(r, "BUSY"), r
    finally:
        killer = s.resp()
        killer.call("SCRIPT", "KILL")
        runner.read_reply()
