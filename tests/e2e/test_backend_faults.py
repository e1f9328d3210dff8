"""Continuous load from several real clients while backends fail (SPEC 5.4, 7):
redis-servers and memcacheds are SIGKILLed, SIGTERMed, SIGSTOPped and restarted,
and a misbehaving backend answers garbage or closes mid-reply.

One scenario (module fixture, ~12 s of load) and one test per property:
the proxy does not crash; every request gets an answer (a value or an error reply);
every answer comes within `timeout` + slack; the faults did produce errors (the
scenario tested something); service recovers once the backends are back.
"""

import os
import signal
import time

import pytest

from conftest import mc_pool, placement, redis_pool, spread_keys, wait_until
from hostile_util import LoadClient, MisbehavingServer, exc_text, redis_client

TIMEOUT_MS = 1000
SLACK = 2.5  # seconds: a shared 2-core machine, Python clients
REPLY_BOUND = TIMEOUT_MS / 1000.0 + SLACK
LOAD_SECONDS = 12.0


def _keys(prefix, n=32):
    return spread_keys(prefix, n)


class Scenario:
    pass


def _restart(env, srv):
    """Start the same kind of server again on the same port."""
    if srv.kind == "redis":
        return env.redis(port=srv.port)
    return env.memcached(port=srv.port)


@pytest.fixture(scope="module")
def scenario(menv):
    env = menv
    rs = env.redises(3)
    ms = env.memcacheds(2)
    r_ok, m_ok = env.redis(), env.memcached()
    bad_r = MisbehavingServer("redis", seed=11).start()
    bad_m = MisbehavingServer("memcache", seed=12).start()
    try:
        px = env.proxy({
            "r": redis_pool(rs, timeout=TIMEOUT_MS),
            "m": mc_pool(ms, timeout=TIMEOUT_MS, auto_eject_hosts=True, server_failure_limit=2,
                         server_retry_timeout=1000),
            "rbad": redis_pool([r_ok, bad_r.addr], timeout=TIMEOUT_MS),
            "mbad": mc_pool([m_ok, bad_m.addr], timeout=TIMEOUT_MS),
        })
        sock_timeout = REPLY_BOUND + 5  # a late answer is measured, not cut off
        clients = [
            LoadClient(px.port("r"), "redis", _keys("fr1"), sock_timeout, seed=1, name="r-1"),
            LoadClient(px.port("r"), "redis", _keys("fr2"), sock_timeout, seed=2, name="r-2"),
            LoadClient(px.port("m"), "mc", _keys("fm1"), sock_timeout, seed=3, name="m-1"),
            LoadClient(px.port("rbad"), "redis", _keys("fb1"), sock_timeout, seed=4, name="rbad-1"),
            LoadClient(px.port("mbad"), "mc", _keys("fb2"), sock_timeout, seed=5, name="mbad-1"),
        ]
        stopped = set()

        def stop(srv):
            os.kill(srv.proc.pid, signal.SIGSTOP)
            stopped.add(srv)

        def cont(srv):
            os.kill(srv.proc.pid, signal.SIGCONT)
            stopped.discard(srv)

        def kill(srv, sig=signal.SIGKILL):
            srv.proc.send_signal(sig)
            srv.proc.wait(10)

        # (at second, action, description)
        plan = [
            (1.0, lambda: stop(rs[0]), "SIGSTOP redis 0"),
            (3.0, lambda: cont(rs[0]), "SIGCONT redis 0"),
            (3.5, lambda: kill(rs[1]), "SIGKILL redis 1"),
            (5.5, lambda: rs.__setitem__(1, _restart(env, rs[1])), "restart redis 1"),
            (6.0, lambda: stop(ms[0]), "SIGSTOP memcached 0"),
            (6.5, lambda: kill(ms[1]), "SIGKILL memcached 1"),
            (8.0, lambda: cont(ms[0]), "SIGCONT memcached 0"),
            (8.5, lambda: ms.__setitem__(1, _restart(env, ms[1])), "restart memcached 1"),
            (9.0, lambda: kill(rs[2], signal.SIGTERM), "SIGTERM redis 2"),
            (9.5, lambda: stop(rs[0]), "SIGSTOP redis 0"),
            (10.5, lambda: cont(rs[0]), "SIGCONT redis 0"),
            (10.5, lambda: rs.__setitem__(2, _restart(env, rs[2])), "restart redis 2"),
        ]
        alive_during = []
        for c in clients:
            c.start()
        t0 = time.monotonic()
        try:
            for at, action, what in plan:
                time.sleep(max(0.0, t0 + at - time.monotonic()))
                action()
                alive_during.append((what, px.alive()))
            time.sleep(max(0.0, t0 + LOAD_SECONDS - time.monotonic()))
        finally:
            for srv in list(stopped):
                cont(srv)
            for c in clients:
                c.stop()
            for c in clients:
                c.join()
        sc = Scenario()
        sc.env, sc.px, sc.clients, sc.alive_during = env, px, clients, alive_during
        sc.rs, sc.ms, sc.r_ok, sc.m_ok, sc.bad_r, sc.bad_m = rs, ms, r_ok, m_ok, bad_r, bad_m
        print("\n[backend faults] %.1fs of load, reply bound %.1fs" % (time.monotonic() - t0, REPLY_BOUND))
        for c in clients:
            print("  " + c.summary())
        print("  misbehaving redis served %s, memcached %s" % (dict(bad_r.served), dict(bad_m.served)))
        yield sc
    finally:
        bad_r.stop()
        bad_m.stop()


def test_proxy_survives_backend_faults(scenario):
    assert all(alive for _, alive in scenario.alive_during), scenario.alive_during
    assert scenario.px.alive()
    assert scenario.px.stats()["curr_connections"] >= 0


def test_every_request_gets_an_answer(scenario):
    for c in scenario.clients:
        assert c.sent > 100, "%s sent only %d requests" % (c.name, c.sent)
        assert not c.failures, "%s: %s" % (c.name, c.failures[:5])
        assert c.answered == c.sent, "%s: %d sent, %d answered" % (c.name, c.sent, c.answered)


def test_every_answer_within_timeout_plus_slack(scenario):
    for c in scenario.clients:
        assert c.max_latency <= REPLY_BOUND, "%s: slowest answer %.2fs > %.2fs" % (
            c.name, c.max_latency, REPLY_BOUND)


def test_faults_were_answered_with_errors(scenario):
    """The faults did reach the clients, as error replies naming them."""
    by = {c.name: c.errors for c in scenario.clients}
    r_errs = by["r-1"] + by["r-2"]
    assert r_errs["ERR Connection timed out"] > 0, r_errs
    assert r_errs["ERR Connection refused"] > 0, r_errs
    assert sum(by["m-1"].values()) > 0, by["m-1"]
    assert sum(by["rbad-1"].values()) > 0 and sum(by["mbad-1"].values()) > 0, by
    assert scenario.bad_r.served and scenario.bad_m.served


def _redis_round(port, keys):
    import redis
    cl = redis_client(port, REPLY_BOUND)
    out = {}
    try:
        for k in keys:
            try:
                v = ("%s=recovered" % k).encode()
                out[k] = cl.set(k, v) is True and cl.get(k) == v
            except redis.exceptions.ResponseError as e:
                out[k] = "error: %s" % e
    finally:
        cl.close()
    return out


def _mc_round(port, keys):
    from pymemcache.client.base import Client
    from pymemcache.exceptions import MemcacheServerError
    cl = Client(("127.0.0.1", port), timeout=REPLY_BOUND, connect_timeout=REPLY_BOUND)
    out = {}
    try:
        for k in keys:
            try:
                v = ("%s=recovered" % k).encode()
                out[k] = cl.set(k, v, noreply=False) is True and cl.get(k) == v
            except MemcacheServerError as e:
                out[k] = "error: %s" % exc_text(e)
    finally:
        cl.close()
    return out


def test_service_recovers_after_backends_return(scenario):
    px = scenario.px
    rkeys = _keys("fr1") + _keys("fr2")
    mkeys = _keys("fm1")
    last = {}

    def all_ok():
        last["r"] = _redis_round(px.port("r"), rkeys)
        last["m"] = _mc_round(px.port("m"), mkeys)
        return all(v is True for v in last["r"].values()) and all(v is True for v in last["m"].values())

    assert wait_until(all_ok, timeout=15, interval=0.3), {
        p: {k: v for k, v in d.items() if v is not True} for p, d in last.items()}

    # pools with a misbehaving member: keys of the real server work, the others
    # get an error reply (never a hang or a closed client connection)
    bkeys = _keys("fb1")
    where = placement(bkeys, [scenario.r_ok.addr, scenario.bad_r.addr])
    res = _redis_round(px.port("rbad"), bkeys)
    for k in bkeys:
        if where[k] == scenario.r_ok.addr:
            assert res[k] is True, (k, res[k])
        else:
            assert isinstance(res[k], str) and res[k].startswith("error: ERR "), (k, res[k])
    mkeys2 = _keys("fb2")
    where = placement(mkeys2, [scenario.m_ok.addr, scenario.bad_m.addr])
    res = _mc_round(px.port("mbad"), mkeys2)
    for k in mkeys2:
        if where[k] == scenario.m_ok.addr:
            assert res[k] is True, (k, res[k])
        else:
            assert isinstance(res[k], str) and res[k].startswith("error: "), (k, res[k])
    assert px.alive()
