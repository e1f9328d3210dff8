"""TLS on both legs (issue 13) against real redis-server --tls-port, with
certificates made by openssl req: plain client -> TLS servers, TLS clients ->
plain servers, both, mutual TLS, certificate failures (wrong CA, expired, name
mismatch, a server that is not TLS, a handshake that stalls) answered as
errors naming the TLS problem, garbage instead of a ClientHello, session
resumption, memcached over TLS, worker mode."""
import os
import re
import socket
import ssl
import struct
import subprocess
import threading
import time
from types import SimpleNamespace

import pytest

from conftest import (HOST, NUTCRACKER_BIN, SANITIZER_RE, Resp, RespError, free_port, mc_pool, redis_pool,
                      wait_port, wait_until)
from tls_util import Certs, peer_der, tls_args, tls_client, tls_direct, tls_redis


@pytest.fixture(scope="module")
def certs(tmp_path_factory):
    return Certs(tmp_path_factory.mktemp("certs"))


def server_tls(certs, **kw):
    """The pool keys of TLS servers checked against the test CA."""
    d = {"tls": True, "tls_ca_file": certs.crt("ca")}
    d.update(kw)
    return d


def test_plain_clients_to_tls_only_servers(env, certs):
    servers = [tls_redis(env, certs) for _ in range(2)]
    px = env.proxy({"alpha": redis_pool(servers, **server_tls(certs))})
    c = px.client()
    # keys unlike each other (fnv1a_64 keeps similar short keys close on the ring)
    keys = [os.urandom(8).hex() for i in range(100)]
    for i, k in enumerate(keys):
        assert c.set(k, "v%d" % i)
    assert c.mget(keys) == [b"v%d" % i for i in range(100)]
    # the keys really are on both TLS servers
    counts = [tls_direct(certs, s, cert=None).dbsize() for s in servers]
    assert all(n > 0 for n in counts) and sum(counts) == 100, counts
    out = subprocess.run(["redis-cli", "-p", str(px.port()), "get", keys[7]], capture_output=True, timeout=10)
    assert out.stdout == b"v7\n"


def test_tls_clients_to_plain_servers(env, certs):
    r = env.redis()
    px = env.proxy({"alpha": redis_pool([r], listen_tls=certs.listen_tls())})
    port = px.port()
    out = subprocess.run(["redis-cli", "--tls", "--cacert", certs.crt("ca"), "-p", str(port), "set", "a", "1"],
                         capture_output=True, timeout=10)
    assert out.stdout == b"OK\n", out
    c = tls_client(certs, port)
    assert c.get("a") == b"1"
    # a value larger than a TLS record and than the proxy's chunks, both ways
    big = os.urandom(3 << 20)
    assert c.set("big", big)
    assert c.get("big") == big
    # a deep pipeline: replies arrive in many records, decrypted bytes are drained
    p = c.pipeline(transaction=False)
    for i in range(2000):
        p.set("p%d" % i, "x" * (i % 300))
    for i in range(2000):
        p.get("p%d" % i)
    res = p.execute()
    assert res[:2000] == [True] * 2000
    assert res[2000:] == [b"x" * (i % 300) for i in range(2000)]
    assert r.client().get("a") == b"1"  # it reached the plain server


def test_tls_both_legs_and_plain_beside_tls(env, certs):
    srv = tls_redis(env, certs)
    tport = free_port()
    px = env.proxy({"alpha": redis_pool([srv], listen_tls=certs.listen_tls(),
                                        listen_tls_addr="%s:%d" % (HOST, tport), **server_tls(certs))})
    plain = px.client()
    assert plain.set("x", "plain")
    secure = tls_client(certs, tport)
    assert secure.get("x") == b"plain"
    assert secure.set("y", "tls")
    assert plain.get("y") == b"tls"
    # the plain port does not speak TLS, the TLS port does not speak plain text
    with pytest.raises((ssl.SSLError, ConnectionError, OSError)):
        peer_der(certs, px.port())
    s = Resp(port=tport, timeout=5)
    s.send(b"PING\r\n")
    assert s.is_closed()
    assert plain.ping() and secure.ping()


def test_redis_cli_tls_with_client_certificate_both_ways(env, certs):
    """Mutual TLS: the servers require a client certificate (tls_cert_file /
    tls_key_file), and the listener requires one of its clients (verify_client)."""
    srv = tls_redis(env, certs, auth_clients="yes")
    bare = env.proxy({"bare": redis_pool([srv], **server_tls(certs))})
    # TLS 1.3: the server refuses the missing certificate after the handshake, in an
    # alert; a request written after it closed meets its reset, and the alert read
    # after that reset is the reason given all the same (each try: a new connection)
    c = bare.resp()
    errs = [str(c.call("GET", "k")) for _ in range(20)]
    assert set(errs) == {"ERR TLS error from server: tlsv13 alert certificate required"}, errs
    px = env.proxy({"alpha": redis_pool([srv], listen_tls=certs.listen_tls(ca_file=certs.crt("ca"),
                                                                               verify_client="true"),
                                        tls_cert_file=certs.crt("client"), tls_key_file=certs.key("client"),
                                        **server_tls(certs))})
    port = px.port()
    base = ["redis-cli", "--tls", "--cacert", certs.crt("ca"), "-p", str(port)]
    out = subprocess.run(base + ["--cert", certs.crt("client"), "--key", certs.key("client"), "set", "m", "tls"],
                         capture_output=True, timeout=10)
    assert out.stdout == b"OK\n", out
    assert tls_client(certs, port, cert="client").get("m") == b"tls"
    # without a certificate the handshake is refused: that client alone goes
    import redis
    with pytest.raises((ssl.SSLError, redis.exceptions.ConnectionError, OSError)):
        c = tls_client(certs, port)
        c.get("m")
    assert tls_client(certs, port, cert="client").get("m") == b"tls"


@pytest.mark.parametrize("case,expect", [
    ("wrong_ca", "certificate verify failed: self-signed certificate in certificate chain"),
    ("expired", "certificate verify failed: certificate has expired"),
    ("name", "certificate verify failed: hostname mismatch"),
    ("ip_entry", "certificate verify failed: IP address mismatch"),
])
def test_certificate_failures_answer_an_error_naming_the_problem(env, certs, case, expect):
    name = {"wrong_ca": "server", "expired": "expired", "name": "server", "ip_entry": "dnsonly"}[case]
    srv = tls_redis(env, certs, name=name)
    kw = server_tls(certs)
    if case == "wrong_ca":
        kw["tls_ca_file"] = certs.crt("otherca")
    if case == "name":
        kw["tls_server_name"] = "wrong.example"  # SNI and the name checked
    px = env.proxy({"alpha": redis_pool([srv], timeout=2000, server_failure_limit=10, **kw)})
    c = px.resp()
    err = c.call("GET", "k")
    assert isinstance(err, RespError) and str(err) == "ERR TLS handshake with server failed: " + expect, err
    # the proxy keeps serving: local answers, and the next request tries again
    assert c.call("PING") == b"PONG"
    assert isinstance(c.call("GET", "k"), RespError)
    st = px.wait_stats(lambda st: st["alpha"][srv.addr]["server_err"] >= 2, "the failures counted")
    assert st["alpha"][srv.addr]["server_connections"] == 0
    assert px.alive()


def test_name_checks_pass_with_the_right_name_and_can_be_turned_off(env, certs):
    srv = tls_redis(env, certs, name="dnsonly")
    ok = env.proxy({"sni": redis_pool([srv], **server_tls(certs, tls_server_name="localhost"))})
    assert ok.client().set("a", "1")
    other = tls_redis(env, certs, name="untrusted")
    off = env.proxy({"off": redis_pool([other], **server_tls(certs, tls_verify="false"))})
    assert off.client().set("a", "2")


def test_ejection_after_tls_failures(env, certs):
    bad = tls_redis(env, certs, name="untrusted")
    good = tls_redis(env, certs)
    px = env.proxy({"alpha": redis_pool([bad, good], auto_eject_hosts=True, server_failure_limit=2,
                                        server_retry_timeout=60000, timeout=2000, **server_tls(certs))})
    c = px.resp()
    # keys unlike each other, so both servers get some (fnv1a_64 keeps "e1", "e2"... close)
    replies = [c.call("SET", os.urandom(8).hex(), i) for i in range(200)]
    errors = [str(r) for r in replies if isinstance(r, RespError)]
    # the bad server's keys failed twice with the TLS reason, then it left the distribution
    assert errors == ["ERR TLS handshake with server failed: certificate verify failed: "
                      "unable to get local issuer certificate"] * 2, errors
    px.wait_stats(lambda st: st["alpha"]["server_ejects"] == 1 and st["alpha"][bad.addr]["server_err"] == 2,
                  "the ejection and its failures counted")


def test_server_that_is_not_tls(env, certs):
    plain = env.redis()
    px = env.proxy({"alpha": redis_pool([plain], timeout=500, **server_tls(certs))})
    err = px.resp().call("GET", "k")
    # redis reads the ClientHello as an inline command: it answers an error when the
    # random bytes hold a newline (not TLS: the handshake fails), else waits for one
    assert isinstance(err, RespError), err
    assert (str(err).startswith("ERR TLS handshake with server failed: ") or
            str(err) == "ERR Connection timed out in the TLS handshake"), err


def test_stalled_server_handshake_ends_at_the_pool_timeout(env, certs):
    """A server that accepts (the kernel's backlog) and never answers the ClientHello."""
    lsock = socket.socket()
    lsock.bind((HOST, 0))
    lsock.listen(16)
    try:
        addr = "%s:%d" % lsock.getsockname()
        px = env.proxy({"alpha": redis_pool([addr], timeout=300, **server_tls(certs))})
        c = px.resp()
        t0 = time.monotonic()
        err = c.call("GET", "k")
        took = time.monotonic() - t0
        assert isinstance(err, RespError) and str(err) == "ERR Connection timed out in the TLS handshake", err
        assert 0.25 <= took < 2.0, took
        px.wait_stats(lambda st: st["alpha"][addr]["server_timedout"] >= 1, "the timeout counted")
    finally:
        lsock.close()


def test_garbage_and_silence_instead_of_a_client_hello(env, certs):
    r = env.redis()
    px = env.proxy({"alpha": redis_pool([r], listen_tls=certs.listen_tls())})
    port = px.port()
    silent = socket.create_connection((HOST, port))  # never says anything
    garbage = Resp(port=port, timeout=5)
    garbage.send(b"*1\r\n$4\r\nPING\r\n")
    assert garbage.is_closed()  # that client only: closed
    # another TLS client is served while the silent one holds its handshake open
    c = tls_client(certs, port)
    assert c.set("k", "v") and c.get("k") == b"v"
    # c and the silent one stay connected, the bad handshake is counted
    px.wait_stats(lambda st: st["alpha"]["client_err"] >= 1 and st["alpha"]["client_connections"] >= 2,
                  "the bad handshake counted, the other two connected")
    silent.close()
    assert px.alive()


def test_clients_that_reset_mid_handshake_are_logged_with_their_address(env, certs):
    """The address comes from accept: a client gone before the proxy reads its
    hello is still named (getpeername fails once the peer has reset)."""
    r = env.redis()
    px = env.proxy({"alpha": redis_pool([r], listen_tls=certs.listen_tls())}, verbose=6)
    port = px.port()
    n = 60
    for _ in range(n):
        s = socket.create_connection((HOST, port))
        s.sendall(b"\x16\x03\x01\x00\x10" + b"\x01" * 8)  # half a ClientHello
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        s.close()  # a reset
    px.wait_stats(lambda st: st["alpha"]["client_err"] >= n, "every reset handshake counted")
    lines = [ln for ln in open(px.log).read().splitlines() if "TLS handshake failed" in ln]
    assert len(lines) >= n, lines[:5]  # and the start-up probe's connection
    unnamed = [ln for ln in lines if not re.search(r"client %s:\d+: " % re.escape(HOST), ln)]
    assert unnamed == [], unnamed[:5]
    assert px.alive()


def test_sessions_are_resumed_on_reconnect(env, certs):
    srv = tls_redis(env, certs)
    px = env.proxy({"alpha": redis_pool([srv], **server_tls(certs))}, verbose=6)
    c = px.client()
    assert c.set("a", "1")
    direct = tls_direct(certs, srv)
    for n in range(2):
        # the server closes the proxy's connection; the next request reconnects
        killed = direct.client_kill_filter(_type="normal", skipme=True)
        assert killed >= 1
        wait_until(lambda: c.get("a") == b"1", "a reconnection")
    wait_until(lambda: "handshake done, session resumed" in open(px.log).read(), "a resumed session in the log")


def test_memcached_pool_over_tls(env, certs):
    from pymemcache.client.base import Client
    m = env.memcached()
    px = env.proxy({"mc": mc_pool([m], listen_tls=certs.listen_tls())})
    ctx = certs.client_ctx()
    c = Client((HOST, px.port()), tls_context=ctx, timeout=10)
    c.set("k", b"v" * 10000)
    assert c.get("k") == b"v" * 10000
    assert c.get_many(["k", "nope"]) == {"k": b"v" * 10000}


def test_worker_mode_serves_tls_and_rotates(env, certs, tmp_path):
    crt, key = str(tmp_path / "live.crt"), str(tmp_path / "live.key")
    _install(certs, "server", crt, key)
    r = env.redis()
    port = free_port()
    lt = "{cert_file: %s, key_file: %s}" % (crt, key)
    px = env.proxy({"alpha": redis_pool([r], listen="%s:%d" % (HOST, port), listen_tls=lt)},
                   global_={"worker_processes": 2})
    for i in range(10):
        assert tls_client(certs, port).set("w%d" % i, i)
    _install(certs, "server2", crt, key)
    assert px.reload()
    # every worker loaded the new files: each new connection gets the new certificate
    for i in range(10):
        assert peer_der(certs, port) == certs.der("server2")


def _install(certs, name, crt, key):
    """Replace the files a configuration names (what a certificate rotation does)."""
    for src, dst in ((certs.crt(name), crt), (certs.key(name), key)):
        with open(src, "rb") as f:
            data = f.read()
        with open(dst + ".tmp", "wb") as f:
            f.write(data)
        os.replace(dst + ".tmp", dst)


def test_rotation_under_load_drops_no_connection(env, certs, tmp_path):
    crt, key = str(tmp_path / "live.crt"), str(tmp_path / "live.key")
    _install(certs, "server", crt, key)
    srv = tls_redis(env, certs)
    lt = "{cert_file: %s, key_file: %s}" % (crt, key)
    px = env.proxy({"alpha": redis_pool([srv], listen_tls=lt, **server_tls(certs))})
    port = px.port()
    assert peer_der(certs, port) == certs.der("server")
    stop = threading.Event()
    errors, done = [], [0] * 8

    def load(i):
        c = tls_client(certs, port)  # one connection each, for the whole test
        try:
            n = 0
            while not stop.is_set():
                c.set("r%d" % i, n)
                assert c.get("r%d" % i) == str(n).encode()
                n += 1
                done[i] = n
        except Exception as e:  # any error is a dropped or broken connection
            errors.append(repr(e))

    threads = [threading.Thread(target=load, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    try:
        wait_until(lambda: all(done), "every load client to be running")
        assert px.wait_stats(lambda st: st["alpha"]["client_connections"] >= 8, "the 8 clients")
        for k in range(4):
            _install(certs, "server2" if k % 2 == 0 else "server", crt, key)
            before = list(done)
            assert px.reload()
            assert peer_der(certs, port) == certs.der("server2" if k % 2 == 0 else "server")
            wait_until(lambda: all(d > b for d, b in zip(done, before)), "every client to go on after the reload")
        # every load client is still connected (probes come and go beside them)
        assert px.wait_stats(lambda st: st["alpha"]["client_connections"] >= 8, "the 8 clients")
    finally:
        stop.set()
        for t in threads:
            t.join(20)
    assert errors == []


def test_bad_rotation_keeps_the_running_certificate(env, certs, tmp_path):
    crt, key = str(tmp_path / "live.crt"), str(tmp_path / "live.key")
    _install(certs, "server", crt, key)
    r = env.redis()
    lt = "{cert_file: %s, key_file: %s}" % (crt, key)
    px = env.proxy({"alpha": redis_pool([r], listen_tls=lt)})
    port = px.port()
    held = tls_client(certs, port)
    assert held.set("a", "1")
    # a key that does not match the certificate
    with open(certs.key("server2"), "rb") as f, open(key, "wb") as g:
        g.write(f.read())
    assert not px.reload()
    log = open(px.log).read()
    assert "%s: does not match the certificate in %s" % (key, crt) in log, log[-2000:]
    # an unreadable file
    os.unlink(crt)
    assert not px.reload()
    assert "%s: No such file or directory" % crt in open(px.log).read()
    assert held.get("a") == b"1"
    assert peer_der(certs, port) == certs.der("server")
    assert px.stats()["reload_failures"] == 2


def test_sentinel_over_tls(env, certs):
    master = tls_redis(env, certs)
    sport = free_port()
    conf = os.path.join(env.tmp, "sentinel-tls.conf")
    with open(conf, "w") as f:
        f.write("\n".join([
            "port 0", "tls-port %d" % sport, "bind %s" % HOST, "daemonize no", "dir %s" % env.tmp,
            "tls-cert-file %s" % certs.crt("server"), "tls-key-file %s" % certs.key("server"),
            "tls-ca-cert-file %s" % certs.crt("ca"), "tls-auth-clients no", "tls-replication yes",
            "sentinel monitor g1 %s %d 1" % (HOST, master.port)]) + "\n")
    proc, out = env.spawn(["redis-sentinel", conf], "sentinel-tls")
    from conftest import wait_port
    assert wait_port(sport, proc)
    px = env.proxy({"alpha": {"sentinels": ["%s:%d" % (HOST, sport)], "groups": ["g1"],
                              "sentinel_tls": True, "timeout": 2000, **server_tls(certs)}})
    c = px.client()
    wait_until(lambda: c.set("s", "1"), "the group's master to be known over TLS")
    assert tls_direct(certs, master, cert=None).get("s") == b"1"


def test_tls_config_errors_are_reported_with_file_and_line(env, certs):
    cases = [
        ("  tls_ca_file: %s\n" % certs.crt("ca"), "3: tls_ca_file: directive is only valid with tls: true"),
        ("  listen_tls: {cert_file: %s}\n" % certs.crt("server"),
         "3: listen_tls: cert_file and key_file are required"),
        ("  listen_tls_addr: 127.0.0.1:1\n", "3: listen_tls_addr: directive needs listen_tls"),
        ("  tls: true\n  tls_ca_file: /nonexistent/ca.pem\n",
         "3: tls: /nonexistent/ca.pem: No such file or directory"),
        ("  listen_tls: {cert_file: %s, key_file: %s}\n" % (certs.crt("server"), certs.key("client")),
         "3: listen_tls: %s: does not match the certificate in %s" % (certs.key("client"), certs.crt("server"))),
        ("  listen_tls: {cert_file: %s, key_file: %s, protocols: TLSv9}\n" % (certs.crt("server"),
                                                                            certs.key("server")),
         "3: listen_tls: protocols \"TLSv9\" is not a list of TLSv1, TLSv1.1, TLSv1.2, TLSv1.3"),
        ("  client_auth:\n   - app sha256:12zz\n", "4: client_auth: \"sha256:12zz\" is not sha256: followed by"),
        ("  sentinel_tls: true\n", "3: sentinel_tls: directive is only valid in a pool with sentinels"),
    ]
    for extra, expect in cases:
        path = os.path.join(env.tmp, "bad.yml")
        with open(path, "w") as f:
            f.write("alpha:\n  listen: 127.0.0.1:22121\n" + extra + "  redis: true\n  servers:\n   - 127.0.0.1:6379:1\n")
        rc, out = env.run_proxy(["-t", "-c", path])
        assert rc == 1 and ("bad.yml:" + expect) in out, (extra, out)


def _bad_tls_yml(env, name, cert, key):
    path = os.path.join(env.tmp, name)
    with open(path, "w") as f:
        f.write("alpha:\n  listen: 127.0.0.1:22121\n  listen_tls: {cert_file: %s, key_file: %s}\n"
                "  redis: true\n  servers:\n   - 127.0.0.1:6379:1\n" % (cert, key))
    return path


def test_unusable_certificate_files_are_named_with_the_cause(env, certs):
    """OpenSSL's first reason (the cause), not its last ("PEM lib")."""
    garbage = os.path.join(env.tmp, "garbage.pem")
    with open(garbage, "w") as f:
        f.write("garbage\n")
    rsa = os.path.join(env.tmp, "rsa.key")
    subprocess.run(["openssl", "genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048",
                    "-out", rsa], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    cases = [
        (garbage, certs.key("server"), "%s: not a PEM certificate (no start line)" % garbage),
        (certs.key("server"), certs.key("server"),
         "%s: not a PEM certificate (no start line)" % certs.key("server")),
        (certs.crt("server"), garbage, "%s: not a PEM private key (" % garbage),
        (certs.crt("server"), rsa, "%s: does not match the certificate in %s (the key's type is not "
         "the certificate's)" % (rsa, certs.crt("server"))),
    ]
    for cert, key, expect in cases:
        rc, out = env.run_proxy(["-t", "-c", _bad_tls_yml(env, "bad.yml", cert, key)])
        assert rc == 1 and "bad.yml:3: listen_tls: " + expect in out, (cert, key, out)
        assert "PEM lib" not in out, out


def test_an_encrypted_key_is_refused_without_a_prompt(env, certs, tmp_path):
    """OpenSSL's default is to ask for the passphrase on the terminal or stdin,
    and the proxy (a reload too) would wait there: stdin here is a pipe that
    stays open, as under a terminal multiplexer."""
    enc = str(tmp_path / "enc.key")
    subprocess.run(["openssl", "pkey", "-in", certs.key("server"), "-aes256", "-passout", "pass:secret",
                    "-out", enc], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    conf = _bad_tls_yml(env, "enc.yml", certs.crt("server"), enc)
    p = subprocess.Popen([NUTCRACKER_BIN, "-t", "-c", conf], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT, cwd=env.tmp, start_new_session=True)
    try:
        p.wait(timeout=10)  # stdin still open: a prompt would wait on it
    except subprocess.TimeoutExpired:
        p.kill()
        p.wait()
        pytest.fail("nutcracker -t waited on stdin for a passphrase")
    finally:
        p.stdin.close()
    text = p.stdout.read().decode()
    p.stdout.close()
    assert p.returncode == 1, text
    assert "enc.yml:3: listen_tls: %s: the key is encrypted: a passphrase is not supported" % enc in text, text
    assert "pass phrase" not in text and not SANITIZER_RE.search(text), text


def test_a_cluster_that_speaks_tls_only(env, certs):
    """port 0, tls-port and tls-cluster: CLUSTER SHARDS says each node's
    tls-port and no port; a pool with tls takes the tls-port (h42: no map was
    ever learnt, every request answered 'the slot map is not known yet')."""
    from cluster_util import _cluster_port
    nodes = []
    for _ in range(3):
        p = _cluster_port()
        d = os.path.join(env.tmp, "tls-node-%d" % p)
        os.makedirs(d, exist_ok=True)
        argv = ["redis-server", "--port", "0", "--tls-port", str(p), "--bind", HOST, "--tls-cluster", "yes",
                "--tls-replication", "yes", "--cluster-enabled", "yes", "--cluster-config-file",
                os.path.join(d, "nodes.conf"), "--save", "", "--appendonly", "no", "--dir", d,
                "--daemonize", "no"] + tls_args(certs)
        proc, out = env.spawn(argv, "tls-node-%d" % p)
        assert wait_port(p, proc), out
        nodes.append(p)
    r = subprocess.run(["redis-cli", "--tls", "--cacert", certs.crt("ca"), "--cluster", "create"] +
                       ["%s:%d" % (HOST, p) for p in nodes] + ["--cluster-yes"],
                       stdin=subprocess.DEVNULL, capture_output=True, timeout=60)
    assert r.returncode == 0, r.stdout.decode() + r.stderr.decode()
    px = env.proxy({"cl": {"redis_cluster": True, "servers": ["%s:%d" % (HOST, nodes[0])],
                           **server_tls(certs)}})
    c = px.resp()
    wait_until(lambda: c.call("SET", "probe", "1") == b"OK", "the slot map over TLS")
    keys = ["k%d" % i for i in range(30)]  # slots on all three masters
    for k in keys:
        assert c.call("SET", k, k) == b"OK"
    assert c.call("MGET", *keys) == [k.encode() for k in keys]
    # every master got some of them, straight from each
    assert all(tls_direct(certs, SimpleNamespace(port=p), cert=None).dbsize() > 0 for p in nodes)


def test_shutdown_does_not_wait_for_a_silent_handshake(env, certs):
    r = env.redis()
    px = env.proxy({"alpha": redis_pool([r], listen_tls=certs.listen_tls())})
    silent = socket.create_connection((HOST, px.port()))
    c = tls_client(certs, px.port())
    assert c.set("k", "v")
    px.wait_stats(lambda st: st["alpha"]["client_connections"] >= 2, "both clients connected")
    t0 = time.monotonic()
    px.proc.terminate()
    px.proc.wait(timeout=8)  # the handshake bound is 10 s: the drain must not wait for it
    assert time.monotonic() - t0 < 5
    silent.close()


def test_replica_reads_over_tls(env, certs):
    """A master and its replica (replicating over TLS), both TLS-only: writes go to the
    master, reads to the replica, every leg encrypted."""
    master = tls_redis(env, certs)
    replica = tls_redis(env, certs, args=["--tls-replication", "yes", "--replicaof", HOST, str(master.port)])
    px = env.proxy({"alpha": redis_pool(["%s:1 master" % master.addr, "%s:1 r1" % replica.addr],
                                        read_from="replica", **server_tls(certs))})
    c = px.client()
    assert c.set("rk", "v1")
    wait_until(lambda: c.get("rk") == b"v1", "the write to reach the replica and be read there")
    st = px.wait_stats(lambda st: st["alpha"]["r1"]["requests"] >= 1, "a read counted on the replica")
    assert st["alpha"]["master"]["requests"] >= 1


def test_small_chunks_drain_what_tls_holds_decrypted(env, certs):
    """With -m 512 every read takes less than a TLS record (16 KB): the rest waits
    decrypted inside OpenSSL, where no readiness event announces it."""
    srv = tls_redis(env, certs)
    px = env.proxy({"alpha": redis_pool([srv], listen_tls=certs.listen_tls(), **server_tls(certs))},
                   extra_args=["-m", "512"])
    c = tls_client(certs, px.port())
    big = os.urandom(300000)
    assert c.set("big", big) and c.get("big") == big
    p = c.pipeline(transaction=False)
    for i in range(500):
        p.set("s%d" % i, str(i) * 50)
        p.get("s%d" % i)
    res = p.execute()
    assert res[1::2] == [(str(i) * 50).encode() for i in range(500)]


def test_a_rotation_to_an_expired_certificate_is_said_in_the_log(env, certs, tmp_path):
    """An expired certificate is served as it is (every client that checks it
    refuses it): the log said nothing, and each client's failed handshake was
    the first sign. Start and reload now name the file and the date."""
    crt, key = str(tmp_path / "live.crt"), str(tmp_path / "live.key")
    _install(certs, "server", crt, key)
    r = env.redis()
    px = env.proxy({"alpha": redis_pool([r], listen_tls="{cert_file: %s, key_file: %s}" % (crt, key))})
    assert "the certificate expired" not in open(px.log).read()
    _install(certs, "expired", crt, key)
    assert px.reload()
    log = open(px.log).read()
    assert re.search(r"listen_tls: %s: the certificate expired on \d{4}-\d\d-\d\d [0-9:]+ UTC: clients that "
                     r"check it refuse it" % re.escape(crt), log), log[-2000:]
    ctx = ssl.create_default_context()
    ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
    with ctx.wrap_socket(socket.create_connection((HOST, px.port()), timeout=5)) as s:
        assert s.getpeercert(binary_form=True) == certs.der("expired")  # served as it is


def test_a_burst_of_handshakes_completes_beside_plain_clients(env, certs):
    """400 TLS clients start their handshakes at once: the proxy takes 16
    handshake steps a loop turn and the rest in the next turns, in order
    (a first step costs about a millisecond of CPU: taken all at once, a burst
    stalled every other client for as long). Every handshake completes and
    every client is answered; a plain client of the same pool is answered
    throughout."""
    r = env.redis()
    tport = free_port()
    px = env.proxy({"alpha": redis_pool([r], listen_tls=certs.listen_tls(), listen_tls_addr="%s:%d" % (HOST, tport))})
    plain = Resp(port=px.port(), timeout=10)
    assert plain.call("SET", "k", "v") == b"OK"
    ctx = ssl.create_default_context(cafile=certs.crt("ca"))
    n, pending, done = 400, [], []
    for _ in range(n):
        s = socket.create_connection((HOST, tport), timeout=10)
        s.setblocking(False)
        pending.append(ctx.wrap_socket(s, server_hostname="localhost", do_handshake_on_connect=False))
    served, deadline = 0, time.monotonic() + 30
    while pending:
        assert time.monotonic() < deadline, "%d handshakes not done" % len(pending)
        still = []
        for s in pending:
            try:
                s.do_handshake()
                done.append(s)
            except (ssl.SSLWantReadError, ssl.SSLWantWriteError):
                still.append(s)
        pending = still
        assert plain.call("GET", "k") == b"v"
        served += 1
    for s in done:
        s.setblocking(True)
        s.sendall(b"*1\r\n$4\r\nPING\r\n")
    assert [s.recv(64) for s in done] == [b"+PONG\r\n"] * n
    for s in done:
        s.close()
    print("\n%d handshakes; the plain client was answered %d times meanwhile" % (n, served))
