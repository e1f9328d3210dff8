"""redis ACL users (issue 13): redis_auth "user password" logs the proxy in to
servers whose default user is off; client_auth lists the logins the proxy
accepts from its clients (AUTH user pass, AUTH pass for the default user,
HELLO 2 AUTH user pass), passwords possibly given as sha256:<hex>, with redis'
own error texts; every command but AUTH, HELLO and QUIT gets -NOAUTH before."""
import hashlib
import socket

import pytest

from conftest import Closed, Resp, RespError, encode_command, redis_pool, wait_until
from hostile_util import raw_connect, recv_rest

WRONGPASS = "WRONGPASS invalid username-password pair or user is disabled."
NOAUTH = "NOAUTH Authentication required."


def acl_redis(env):
    """A redis whose only user is app/apppw (the default user is off)."""
    return env.redis(args=["--user", "app", "on", ">apppw", "~*", "&*", "+@all", "--user", "default", "off"])


@pytest.fixture
def acl_proxy(env):
    r = acl_redis(env)
    bob = hashlib.sha256(b"bob's secret").hexdigest()
    px = env.proxy({"alpha": redis_pool([r], redis_auth='"app apppw"',
                                        client_auth=["alice s3cret", "bob sha256:" + bob, "defpass"])})
    return px, r


def test_servers_get_auth_user_password(acl_proxy):
    px, r = acl_proxy
    c = px.resp()
    assert c.call("AUTH", "alice", "s3cret") == b"OK"
    assert c.call("SET", "k", "v") == b"OK"
    # it reached the server, which only app can use
    import redis
    direct = redis.Redis(host="127.0.0.1", port=r.port, username="app", password="apppw")
    assert direct.get("k") == b"v"


def test_noauth_before_login_for_everything_but_auth_hello_quit(env, acl_proxy):
    px, _ = acl_proxy
    c = px.resp()
    # the same bytes as redis (Debian's 7.0) with a password, before AUTH
    direct = Resp(port=env.redis(password="pw").port)
    for cmd in (("GET", "k"), ("PING",), ("SET", "k", "v"), ("MGET", "a", "b"), ("SELECT", "0"),
                ("HELLO", "2"), ("HELLO", "3")):
        want = direct.call(*cmd)
        assert isinstance(want, RespError), (cmd, want)
        assert c.call(*cmd) == want, cmd
    assert str(want).startswith("NOAUTH HELLO must be called"), want
    assert c.call("QUIT") == b"OK"


@pytest.mark.parametrize("args", [
    ("AUTH", "alice", "s3cret"),
    ("AUTH", "bob", "bob's secret"),  # stored as sha256:<hex>
    ("AUTH", "defpass"),  # the default user's password
    ("AUTH", "default", "defpass"),
])
def test_logins_accepted(acl_proxy, args):
    px, _ = acl_proxy
    c = px.resp()
    assert c.call(*args) == b"OK"
    assert c.call("SET", "a", "1") == b"OK" and c.call("GET", "a") == b"1"


@pytest.mark.parametrize("args", [
    ("AUTH", "alice", "wrong"),
    ("AUTH", "nobody", "s3cret"),
    ("AUTH", "s3cret"),  # alice's password is not the default user's
    ("AUTH", "bob", "sha256:" + hashlib.sha256(b"bob's secret").hexdigest()),  # the hash is no password
    ("HELLO", "2", "AUTH", "alice", "wrong"),
])
def test_wrong_logins_get_wrongpass(acl_proxy, args):
    px, _ = acl_proxy
    c = px.resp()
    assert c.call(*args) == RespError(WRONGPASS)
    assert c.call("GET", "a") == RespError(NOAUTH)


def test_refused_logins_are_counted_and_said_once_per_gap(acl_proxy):
    px, _ = acl_proxy
    c = px.resp()
    for _ in range(5):
        assert c.call("AUTH", "mallory", "guess") == RespError(WRONGPASS)
    assert c.call("HELLO", "2", "AUTH", "alice", "nope") == RespError(WRONGPASS)
    assert c.call("AUTH", "alice", "s3cret") == b"OK"  # a good login is no failure
    port = c.s.getsockname()[1]
    px.wait_stats(lambda s: s["alpha"]["auth_failed"] == 6, "six refused logins counted")
    with open(px.log) as f:
        lines = [line for line in f if "login refused" in line]
    # the first one is said, with who and from where; the rest wait for the gap
    assert len(lines) == 1, lines
    assert "pool 'alpha': login refused for user 'mallory' from 127.0.0.1:%d" % port in lines[0], lines


def test_hello_2_auth(acl_proxy):
    px, _ = acl_proxy
    c = px.resp()
    reply = c.call("HELLO", "2", "AUTH", "alice", "s3cret")
    assert isinstance(reply, list) and reply[0] == b"server", reply
    assert c.call("GET", "nothing") is None


def test_hello_3_auth(acl_proxy):
    px, _ = acl_proxy
    c = px.resp()
    reply = c.call("HELLO", "3", "AUTH", "alice", "s3cret")
    assert isinstance(reply, dict) and reply[b"proto"] == 3, reply
    assert c.call("SET", "h3", "1") == b"OK" and c.call("GET", "h3") == b"1"
    bad = px.resp()
    reply = bad.call("HELLO", "3", "AUTH", "alice", "nope")
    assert isinstance(reply, RespError) and reply.msg.startswith("WRONGPASS"), reply
    assert isinstance(bad.call("GET", "h3"), RespError)  # still not logged in


def test_redis_py_with_username(acl_proxy):
    px, _ = acl_proxy
    c = px.client(username="alice", password="s3cret")
    assert c.set("x", "1") and c.get("x") == b"1"
    bad = px.client(username="alice", password="nope")
    import redis
    # what redis-py raises for redis' own WRONGPASS at connect
    with pytest.raises(redis.exceptions.ResponseError, match="^" + WRONGPASS + "$"):
        bad.get("x")


def test_redis_auth_user_alone_is_the_clients_login(env):
    """Without client_auth, clients log in with redis_auth's user and password."""
    r = acl_redis(env)
    px = env.proxy({"alpha": redis_pool([r], redis_auth='"app apppw"')})
    c = px.resp()
    assert c.call("GET", "k") == RespError(NOAUTH)
    assert c.call("AUTH", "apppw") == RespError(WRONGPASS)  # that is the default user's
    assert c.call("AUTH", "app", "apppw") == b"OK"
    assert c.call("SET", "k", "v") == b"OK"


def test_a_single_password_keeps_twemproxys_texts(env):
    r = env.redis(password="pw")
    px = env.proxy({"alpha": redis_pool([r], redis_auth="pw")})
    c = px.resp()
    assert c.call("AUTH", "bad") == RespError("ERR invalid password")
    assert c.call("AUTH", "pw") == b"OK"
    assert c.call("SET", "k", "v") == b"OK"


def test_client_auth_is_only_for_redis_pools(env):
    path = env.write_conf("alpha:\n  listen: 127.0.0.1:22121\n  client_auth:\n   - a b\n  servers:\n"
                          "   - 127.0.0.1:11211:1\n")
    rc, out = env.run_proxy(["-t", "-c", path])
    assert rc == 1 and "nutcracker.yml:3: client_auth: directive is only valid for a redis pool" in out, out


def acl_log_auth_failures(direct):
    """Failed logins the server recorded (ACL LOG entries of reason auth, counts summed)."""
    return sum(int(e["count"]) for e in direct.acl_log() if e["reason"] == "auth")


def reconnect_then_get(direct, c, times=3):
    """The server drops the proxy's connections `times` times; each time the next GET
    makes a new one (and logs in again)."""
    import time
    for _ in range(times):
        direct.client_kill_filter(_type="normal", skipme=True)
        time.sleep(0.1)
        got = c.call("GET", "k")
        if got != b"v":  # the drop seen only when the GET went out: the next one reconnects
            assert isinstance(got, RespError), got
            assert c.call("GET", "k") == b"v"


def test_redis_auth_with_a_space_is_also_one_password_as_twemproxy_reads_it(env):
    """twemproxy sends redis_auth "pass word" as one password: a server with that
    requirepass takes the proxy's connections, and clients log in with AUTH
    "pass word" as they did through twemproxy. The server's answer is learned
    once: later connections send only the login it took."""
    r = env.redis(password="pass word")
    px = env.proxy({"alpha": redis_pool([r], redis_auth='"pass word"')}, verbose=5)
    c = px.resp()
    assert c.call("GET", "k") == RespError(NOAUTH)
    assert c.call("AUTH", "pass word") == b"OK"
    assert c.call("SET", "k", "v") == b"OK"
    direct = r.client()
    assert direct.get("k") == b"v"
    # the first connection tried AUTH pass word too: one failure, and never again
    assert acl_log_auth_failures(direct) == 1
    reconnect_then_get(direct, c)
    assert acl_log_auth_failures(direct) == 1
    with open(px.log) as f:
        log = f.read()
    assert log.count("takes redis_auth as one password with a space in it") == 1, px.log_tail()
    assert "refused connection set-up" not in log, px.log_tail()
    # AUTH pass word (user "pass") is still a login, as with an ACL user
    assert px.resp().call("AUTH", "pass", "word") == b"OK"


def test_an_acl_login_with_a_space_fails_once_at_most_per_server(env):
    """redis_auth "app apppw" to an ACL user: the first connection's second try (the
    whole as the default user's password) fails once; reconnections send only the
    login the server took, so its failed-login count does not grow."""
    r = acl_redis(env)
    px = env.proxy({"alpha": redis_pool([r], redis_auth='"app apppw"')})
    c = px.resp()
    assert c.call("AUTH", "app", "apppw") == b"OK"
    assert c.call("SET", "k", "v") == b"OK"
    import redis
    direct = redis.Redis(host="127.0.0.1", port=r.port, username="app", password="apppw")
    first = acl_log_auth_failures(direct)
    assert first == 1, first  # AUTH "app apppw" for the default user (off), once
    reconnect_then_get(direct, c)
    assert acl_log_auth_failures(direct) == first
    with open(px.log) as f:
        assert "refused connection set-up" not in f.read(), px.log_tail()


def test_a_failed_login_leaves_the_earlier_one_in_force(acl_proxy):
    """As redis: a wrong AUTH (or HELLO AUTH) after a good one answers WRONGPASS
    and the client stays logged in (it was logged out: NOAUTH for what followed)."""
    px, r = acl_proxy
    for port in (r.port, px.port()):
        c = Resp(port=port)
        user, pw = ("app", "apppw") if port == r.port else ("alice", "s3cret")
        assert c.call("AUTH", user, pw) == b"OK"
        assert c.call("AUTH", user, "wrong") == RespError(WRONGPASS)
        assert c.call("SET", "after", "1") == b"OK"
        assert c.call("HELLO", "2", "AUTH", user, "wrong") == RespError(WRONGPASS)
        assert c.call("GET", "after") == b"1"
        c.close()


def test_a_large_request_before_login_is_refused_at_once(acl_proxy):
    """Before a login, redis refuses a bulk over 16 KB and closes; the proxy read
    the whole request first (200 MB from anyone who can connect) to answer
    NOAUTH. Now it refuses as soon as the size is known, in redis' words."""
    px, r = acl_proxy
    for port in (r.port, px.port()):
        s = raw_connect(port, timeout=10)
        s.sendall(b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$209715200\r\n" + b"x" * 65536)
        got, closed = recv_rest(s)
        s.close()
        assert closed and got == b"-ERR Protocol error: unauthenticated bulk length\r\n", (port, got)
    c = px.resp()  # small requests before a login still get NOAUTH
    assert c.call("GET", "k") == RespError(NOAUTH)


def test_a_server_refusing_the_pools_login_is_named_in_the_error(env):
    """redis_auth the server refuses: the connection cannot serve, and the client
    (logged in to the proxy) gets an error that says so, not the server's -NOAUTH
    to each request passed on; the server's errors are counted."""
    r = acl_redis(env)
    px = env.proxy({"alpha": redis_pool([r], redis_auth='"app wrongpw"')})
    c = px.resp()
    assert c.call("AUTH", "app", "wrongpw") == b"OK"  # the proxy's own login
    got = c.call("GET", "k")
    assert got == RespError("ERR server '%s' refused the pool's redis_auth: %s" % (r.addr, WRONGPASS)), got
    px.wait_stats(lambda st: st["alpha"][r.addr]["server_err"] >= 1, "the server's error counted")


def test_a_server_without_a_password_takes_the_pool_with_redis_auth(env):
    """twemproxy's way: redis_auth set, the server has no password (its AUTH error
    says so): the connection serves."""
    r = env.redis()
    px = env.proxy({"alpha": redis_pool([r], redis_auth="pw")})
    c = px.resp()
    assert c.call("AUTH", "pw") == b"OK"
    assert c.call("SET", "k", "v") == b"OK" and c.call("GET", "k") == b"v"


def test_before_a_login_redis_order_of_errors(env):
    """Before a login redis reports an unknown command and a wrong number of
    arguments, then NOAUTH for everything else, including what it would refuse
    only when running it: so does the proxy, which answered its own refusals
    (CONFIG, XREAD BLOCK, SHUTDOWN) first, telling a stranger what it serves.
    EXEC refused says EXECABORT and why (it said NOAUTH alone)."""
    r = env.redis(args=["--requirepass", "pw"])
    px = env.proxy({"alpha": redis_pool([r], redis_auth="pw")})
    cases = [("FOO", "x"), ("GET",), ("CONFIG",), ("CONFIG", "GET", "x"), ("XREAD", "BLOCK", "0", "STREAMS", "s", "$"),
             ("SHUTDOWN",), ("GET", "k"), ("EXEC",)]
    for cmd in cases:
        want = Resp(port=r.port).call(*cmd)
        got = Resp(port=px.port()).call(*cmd)
        assert got == want, (cmd[0], cmd[1:2], want, got)
    want_noauth = [cmd[:2] for cmd in cases if Resp(port=r.port).call(*cmd) == RespError(NOAUTH)]
    assert len(want_noauth) == 4, want_noauth  # the case list still covers the order


def _exchange(port, data):
    """Send data on a fresh connection; everything read until the peer closes or
    stays silent for 0.5 s, and whether it closed."""
    s = raw_connect(port, timeout=0.5)
    s.sendall(data)
    try:
        return recv_rest(s)
    finally:
        s.close()


@pytest.mark.parametrize("name,args", [
    ("bulk-16384", ["SET", "k", "x" * 16384]),
    ("bulk-16385", ["SET", "k", "x" * 16385]),
    ("two-args-near-16k", ["SET", "k" * 500, "x" * 16200]),
    ("10-args", ["DEL"] + ["k%d" % i for i in range(9)]),
    ("11-args", ["DEL"] + ["k%d" % i for i in range(10)]),
    ("13-args", ["MSET"] + ["k"] * 12),
])
def test_before_a_login_redis_limits_each_argument_and_the_count(env, name, args):
    """Before a login redis refuses more than 10 arguments, or one over 16 KB, with a
    protocol error and a close; the proxy refused a whole request over about 16 KB
    instead (NOAUTH for 13 small arguments, a refusal for two of 8 KB)."""
    r = env.redis(args=["--requirepass", "pw"])
    px = env.proxy({"alpha": redis_pool([r], redis_auth="pw")})
    data = encode_command(*args)
    assert _exchange(px.port(), data) == _exchange(r.port, data)


def test_replies_left_unread_before_a_login_close_the_client(env):
    """A client that never logs in nor reads, sending requests: the proxy kept its
    NOAUTH replies up to --client-buffer-limit (64 MB a client). It is closed once
    some 17 KB wait unwritten, as redis closes it (CVE-2025-21605); one that reads
    its replies is not."""
    r = env.redis(args=["--requirepass", "pw"])
    px = env.proxy({"alpha": redis_pool([r], redis_auth="pw")})
    s = raw_connect(px.port(), timeout=5)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sent = 0
    try:
        while sent < 64 << 20:
            s.sendall(b"PING\r\n" * 4096)
            sent += 6 * 4096
    except OSError:
        pass  # reset once closed, or the send buffer full and the timeout out
    assert sent < 64 << 20, "never closed"
    wait_until(lambda: px.stats()["alpha"]["client_connections"] == 0, "the client closed")
    s.close()
    reader = px.resp()  # a client reading its replies is served: 10,000 NOAUTHs
    reader.send(b"PING\r\n" * 10000)
    for _ in range(10000):
        assert reader.read_reply() == RespError(NOAUTH)
    assert reader.call("AUTH", "pw") == b"OK"


def test_a_user_dropped_from_client_auth_is_logged_out_by_the_reload(env):
    """As redis' ACL DELUSER closes the user's connections: a reload that drops a
    client_auth user closes the connections logged in as that user (they went on);
    a user still listed, even with another password, stays logged in, as in redis."""
    r = acl_redis(env)
    px = env.proxy({"alpha": redis_pool([r], redis_auth='"app apppw"',
                                        client_auth=["alice s3cret", "carol pw1", "defpass"])},
                   verbose=5)
    alice, carol, default = px.resp(), px.resp(), px.resp()
    assert alice.call("AUTH", "alice", "s3cret") == b"OK"
    assert carol.call("AUTH", "carol", "pw1") == b"OK"
    assert default.call("AUTH", "defpass") == b"OK"
    assert alice.call("SET", "k", "1") == b"OK"
    pool = redis_pool([r], redis_auth='"app apppw"', client_auth=["carol pw2", "defpass"])
    pool["listen"] = "127.0.0.1:%d" % px.port()
    assert px.reload({"alpha": pool})
    with pytest.raises((Closed, OSError)):
        alice.call("GET", "k")
    assert carol.call("GET", "k") == b"1"
    assert default.call("GET", "k") == b"1"
    again = px.resp()
    assert again.call("AUTH", "alice", "s3cret") == RespError(WRONGPASS)
    assert "logged in as 'alice', whom client_auth no longer lists: closed" in open(px.log).read()
