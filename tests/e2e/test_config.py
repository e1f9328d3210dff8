"""Configuration file (SPEC section 2): what is accepted, what is refused."""

import os
import re

import pytest

from conftest import HOST, Resp, RespError, free_port, tail


def conf_text(body):
    """body uses {L} for a free listen address and {S}/{S2} for server addresses."""
    return body.format(L="%s:%d" % (HOST, free_port()), S="%s:%d" % (HOST, free_port()),
                       S2="%s:%d" % (HOST, free_port()))


# (id, yaml, line of the problem, key named, what the message must say besides the key)
INVALID = [
    ("unknown_key",
     "alpha:\n"
     "  listen: {L}\n"
     "  redis: true\n"
     "  frobnicate: 1\n"
     "  servers:\n"
     "   - {S}:1\n", 4, "frobnicate", r"unknown"),
    ("bad_hash",
     "alpha:\n"
     "  listen: {L}\n"
     "  redis: true\n"
     "  hash: sha1\n"
     "  servers:\n"
     "   - {S}:1\n", 4, "hash", r"not a valid hash|invalid hash|unknown hash|sha1"),
    ("duplicate_key",
     "alpha:\n"
     "  listen: {L}\n"
     "  timeout: 100\n"
     "  redis: true\n"
     "  timeout: 200\n"
     "  servers:\n"
     "   - {S}:1\n", 5, "timeout", r"duplicate"),
    ("zero_weight",
     "alpha:\n"
     "  listen: {L}\n"
     "  redis: true\n"
     "  servers:\n"
     "   - {S}:1\n"
     "   - {S2}:0\n", 6, "servers", r"zero weight|weight"),
    ("server_connections_zero",
     "alpha:\n"
     "  listen: {L}\n"
     "  redis: true\n"
     "  server_connections: 0\n"
     "  servers:\n"
     "   - {S}:1\n", 4, "server_connections", r"cannot be 0|must be|zero|at least"),
    ("redis_auth_on_memcache_pool",
     "alpha:\n"
     "  listen: {L}\n"
     "  redis_auth: secret\n"
     "  servers:\n"
     "   - {S}:1\n", 3, "redis_auth", r"redis pool|only valid|redis: true|memcache"),
]

IDS = [c[0] for c in INVALID]


def start_and_expect_refusal(env, conf):
    log = os.path.join(env.tmp, "refused.log")
    rc, out = env.run_proxy(["-c", conf, "-o", log, "-s", str(free_port()), "-a", HOST], timeout=10)
    return rc, out + "\n" + (tail(log, 200) if os.path.exists(log) else "")


@pytest.mark.parametrize("case", INVALID, ids=IDS)
def test_invalid_config_is_refused_with_reason(env, case):
    _, body, _, key, reason = case
    conf = env.write_conf(conf_text(body))
    rc, text = start_and_expect_refusal(env, conf)
    assert rc != 0, "proxy started with an invalid config"
    assert key in text, text
    assert re.search(reason, text), text


@pytest.mark.parametrize("case", INVALID, ids=IDS)
def test_invalid_config_fails_test_conf(env, case):
    conf = env.write_conf(conf_text(case[1]))
    rc, out = env.run_proxy(["-t", "-c", conf], timeout=5)
    assert rc == 1
    assert "nutcracker: configuration file '%s' syntax is invalid" % conf in out


@pytest.mark.parametrize("case", INVALID, ids=IDS)
def test_invalid_config_names_file_and_line(env, case):
    """Ours: the refusal names the file and the line of the problem."""
    _, body, line, key, _ = case
    conf = env.write_conf(conf_text(body))
    rc, text = start_and_expect_refusal(env, conf)
    assert rc != 0
    pat = r"%s:%d: %s: \S" % (re.escape(conf), line, re.escape(key))
    assert re.search(pat, text), "expected '%s:%d: %s: ...' in:\n%s" % (conf, line, key, text)


@pytest.mark.parametrize("body,reason", [
    ("alpha:\n  listen: {L}\n  servers:\n   - {S}:1 same\n   - {S2}:1 same\n",
     r"same name"),
    ("alpha:\n  listen: 127.0.0.1:%(p)d\n  servers:\n   - {S}:1\n"
     "beta:\n  listen: 127.0.0.1:%(p)d\n  servers:\n   - {S2}:1\n",
     r"same listen address"),
    ("alpha:\n  listen: {L}\n  redis: yes\n  servers:\n   - {S}:1\n", r"redis"),
    ("alpha:\n  listen: {L}\n  distribution: roundrobin\n  servers:\n   - {S}:1\n", r"distribution"),
    ("alpha:\n  listen: {L}\n  servers:\n   - not-an-address\n", r"servers"),
    ("alpha:\n  listen: {L}\n", r"servers|sequence"),
    ("alpha: [\n", r"."),
], ids=["same_server_name", "same_listen", "bad_bool", "bad_distribution", "bad_server", "no_servers",
        "yaml_syntax"])
def test_other_invalid_configs_refused(env, body, reason):
    conf = env.write_conf(conf_text(body % {"p": free_port()} if "%(p)d" in body else body))
    rc, text = start_and_expect_refusal(env, conf)
    assert rc != 0, "proxy started with an invalid config"
    assert re.search(reason, text), text


def test_every_pool_key_accepted(env):
    r = env.redis()
    port = free_port()
    conf = env.write_conf(
        "alpha:\n"
        "  listen: %s:%d\n"
        "  hash: murmur\n"
        "  hash_tag: \"{}\"\n"
        "  distribution: modula\n"
        "  timeout: 4000\n"
        "  backlog: 128\n"
        "  client_connections: 100\n"
        "  redis: true\n"
        "  tcpkeepalive: true\n"
        "  redis_db: 0\n"
        "  preconnect: true\n"
        "  auto_eject_hosts: true\n"
        "  server_connections: 2\n"
        "  server_retry_timeout: 2000\n"
        "  server_failure_limit: 3\n"
        "  servers:\n"
        "   - %s:1 one\n"
        "beta:\n"
        "  listen: %s:%d\n"
        "  redis: true\n"
        "  redis_auth: pw\n"
        "  servers:\n"
        "   - %s:1\n" % (HOST, port, r.addr, HOST, free_port(), r.addr))
    rc, out = env.run_proxy(["-t", "-c", conf], timeout=5)
    assert rc == 0, out
    assert "syntax is ok" in out


@pytest.mark.parametrize("hash_name", ["one_at_a_time", "md5", "crc16", "crc32", "crc32a", "fnv1_64", "fnv1a_64",
                                       "fnv1_32", "fnv1a_32", "hsieh", "murmur", "jenkins"])
@pytest.mark.parametrize("dist", ["ketama", "modula", "random"])
def test_hash_and_distribution_names_accepted(env, hash_name, dist):
    conf = env.write_conf("alpha:\n  listen: %s:%d\n  hash: %s\n  distribution: %s\n  servers:\n   - %s:%d:1\n"
                          % (HOST, free_port(), hash_name, dist, HOST, free_port()))
    rc, out = env.run_proxy(["-t", "-c", conf], timeout=5)
    assert rc == 0, out


def test_unix_socket_listen_with_permission(env, tmp_path):
    r = env.redis()
    sock = str(tmp_path / "nc.sock")
    px = env.proxy({"alpha": {"listen": "%s 0600" % sock, "redis": True, "servers": ["%s:1" % r.addr]}})
    assert oct(os.stat(sock).st_mode & 0o777) == oct(0o600)
    c = Resp(path=sock)
    assert c.call("SET", "unix:k", "v") == b"OK"
    assert c.call("GET", "unix:k") == b"v"
    assert r.client().get("unix:k") == b"v"
    assert px.alive()


def test_unix_socket_listen_other_permission(env, tmp_path):
    r = env.redis()
    sock = str(tmp_path / "nc2.sock")
    env.proxy({"alpha": {"listen": "%s 0640" % sock, "redis": True, "servers": ["%s:1" % r.addr]}})
    assert oct(os.stat(sock).st_mode & 0o777) == oct(0o640)
    import redis
    c = redis.Redis(unix_socket_path=sock, socket_timeout=5)
    assert c.set("unix:k2", "v2")
    assert c.get("unix:k2") == b"v2"


def test_unix_socket_stale_path_is_replaced(env, tmp_path):
    """The listen path is unlinked before bind, so a stale file does not stop the proxy."""
    r = env.redis()
    sock = str(tmp_path / "stale.sock")
    with open(sock, "w") as f:
        f.write("stale")
    env.proxy({"alpha": {"listen": "%s 0600" % sock, "redis": True, "servers": ["%s:1" % r.addr]}})
    c = Resp(path=sock)
    assert c.call("PING") == b"PONG"


def test_reuseport_lets_two_proxies_share_a_listen_port(env):
    """SPEC 2: reuseport sets SO_REUSEPORT on the listen socket (unknown to Debian's 0.5.0 build)."""
    r = env.redis()
    listen = "%s:%d" % (HOST, free_port())
    pool = {"alpha": {"listen": listen, "redis": True, "reuseport": True, "servers": ["%s:1" % r.addr]}}
    a = env.proxy(pool)
    b = env.proxy(pool)
    assert a.alive() and b.alive()
    c = a.resp()
    assert c.call("PING") == b"PONG"


def test_a_server_not_in_dns_at_start_is_an_error_per_request_not_at_start(env):
    """As twemproxy: a server name that does not resolve does not stop the proxy;
    it is looked up again at each connect, its requests get an error meanwhile, the
    other servers serve, and the log names the cause."""
    r = env.redis()
    px = env.proxy({"alpha": {"redis": True, "distribution": "modula", "hash": "fnv1a_64",
                              "servers": ["no-such-host.invalid:6379:1 gone", "%s:1 here" % r.addr]}})
    c = px.resp()
    got = {c.call("SET", "k%d" % i, "v") for i in range(20)}  # modula: both servers get keys
    assert got == {b"OK", RespError("ERR Host is down")}, got  # twemproxy 0.5's words
    assert px.alive()
    with open(px.log) as f:
        assert "connect to server 'gone' failed: its host name does not resolve" in f.read(), px.log_tail()


@pytest.mark.parametrize("workers", [0, 2])
def test_reload_sets_the_unix_listen_mode_and_clears_it(env, tmp_path, workers):
    """A kept unix listener takes each reload's mode; with none written it gets the mode a
    fresh start gives it (what the umask lets through), not the one the file had."""
    r = env.redis()
    sock = str(tmp_path / "mode.sock")
    servers = ["%s:1" % r.addr]
    g = {"worker_processes": workers}
    px = env.proxy({"alpha": {"listen": sock, "redis": True, "servers": servers}}, global_=g)
    fresh = os.stat(sock).st_mode & 0o777
    assert fresh != 0o600
    for listen, mode in (("%s 0600" % sock, 0o600), (sock, fresh), ("%s 0640" % sock, 0o640),
                         (sock, fresh)):
        assert px.reload({"alpha": {"listen": listen, "redis": True, "servers": servers}}, global_=g)
        assert oct(os.stat(sock).st_mode & 0o777) == oct(mode), listen
        assert Resp(path=sock).call("PING") == b"PONG"
