"""systemd's notify protocol (sd_notify without libsystemd): the test listens on
a unix datagram socket given as $NOTIFY_SOCKET, as systemd does for a
Type=notify service, and checks what the proxy says and when: READY=1 once
every listener accepts, RELOADING=1 then READY=1 around a reload with the
configuration generation in STATUS=, STOPPING=1 on SIGTERM; in worker mode the
master (the main pid) says it once every worker serves."""

import os
import signal
import socket
import struct
import time

import pytest

from conftest import HOST, NUTCRACKER_BIN, TWEMPROXY, free_port, redis_pool, wait_until, yaml_conf

pytestmark = pytest.mark.skipif(TWEMPROXY, reason="twemproxy has no notify support")


class Notify:
    """The service manager's end: datagrams with the sender's credentials."""

    def __init__(self, path):
        self.path = path
        self.s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.s.bind(path)
        self.s.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
        self.got = []  # (pid, {key: value}) in arrival order

    def _read(self, timeout):
        self.s.settimeout(timeout)
        try:
            data, anc, _, _ = self.s.recvmsg(4096, socket.CMSG_SPACE(12))
        except socket.timeout:
            return False
        pid = None
        for level, kind, payload in anc:
            if level == socket.SOL_SOCKET and kind == socket.SCM_CREDENTIALS:
                pid = struct.unpack("iII", payload[:12])[0]
        fields = dict(line.split("=", 1) for line in data.decode().splitlines() if "=" in line)
        self.got.append((pid, fields))
        return True

    def wait_for(self, key, value=None, timeout=10.0, after=0):
        """The first message (index >= after) with key (= value): (index, pid, fields)."""
        deadline = time.monotonic() + timeout
        while True:
            for i in range(after, len(self.got)):
                pid, f = self.got[i]
                if key in f and (value is None or f[key] == value):
                    return i, pid, f
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError("no %s=%s from the proxy; got %r" % (key, value, self.got))
            self._read(left)

    def close(self):
        self.s.close()


def start(env, pools, global_=None, extra=()):
    """The proxy with $NOTIFY_SOCKET set; no waiting for its ports (READY=1 is the wait)."""
    path = os.path.join(env.tmp, "notify-%d.sock" % free_port())
    n = Notify(path)
    pools = {k: dict(v, listen=v.get("listen") or "%s:%d" % (HOST, free_port())) for k, v in pools.items()}
    conf = env.write_conf(yaml_conf(pools, global_))
    log = os.path.join(env.tmp, "nutcracker-%d.log" % free_port())
    argv = [NUTCRACKER_BIN, "-c", conf, "-s", str(free_port()), "-a", HOST, "-i", "100", "-o", log,
            "-v", "6"] + list(extra)
    proc, out = env.spawn(argv, "nutcracker", env=dict(os.environ, NOTIFY_SOCKET=path))
    env.proxy_outputs.append(out)
    ports = [int(p["listen"].rsplit(":", 1)[1]) for p in pools.values()]
    return n, proc, conf, ports, log


def connects(port):
    try:
        socket.create_connection((HOST, port), timeout=1).close()
        return True
    except OSError:
        return False


def test_ready_reload_and_stop(env):
    r = env.redis()
    n, proc, conf, ports, log = start(env, {"alpha": redis_pool([r]), "beta": redis_pool([r])})
    try:
        i, pid, f = n.wait_for("READY", "1")
        # ready means serving: every listener accepts the moment READY=1 arrives
        assert pid == proc.pid
        assert all(connects(p) for p in ports)
        assert "configuration generation 1 loaded at" in f["STATUS"] and "2 pools" in f["STATUS"], f

        proc.send_signal(signal.SIGHUP)
        j, pid, f = n.wait_for("RELOADING", "1", after=i + 1)
        assert pid == proc.pid and int(f["MONOTONIC_USEC"]) > 0, f
        k, _, f = n.wait_for("READY", "1", after=j + 1)
        assert "configuration generation 2 reloaded at" in f["STATUS"], f

        # a broken file: the reload ends (READY=1) and the status says it failed
        with open(conf, "a") as fh:
            fh.write("gamma: [\n")
        proc.send_signal(signal.SIGHUP)
        j, _, _ = n.wait_for("RELOADING", "1", after=k + 1)
        k, _, f = n.wait_for("READY", "1", after=j + 1)
        assert "configuration generation 2 running; the last reload failed" in f["STATUS"], f

        proc.send_signal(signal.SIGTERM)
        _, pid, f = n.wait_for("STOPPING", "1", after=k + 1)
        assert pid == proc.pid
        assert proc.wait(10) == 0
    finally:
        n.close()


def test_no_ready_when_a_listener_cannot_be_bound(env):
    """READY=1 is never sent for a proxy that could not bind (systemd then
    fails the start instead of believing it)."""
    r = env.redis()
    taken = socket.socket()
    taken.bind((HOST, 0))
    taken.listen(1)
    try:
        port = taken.getsockname()[1]
        n, proc, _, _, _ = start(env, {"alpha": redis_pool([r], listen="%s:%d" % (HOST, port))})
        assert proc.wait(10) == 1
        n._read(0.2)
        assert not any("READY" in f for _, f in n.got), n.got
        n.close()
    finally:
        taken.close()


def test_worker_mode_master_says_ready_once_workers_serve(env):
    r = env.redis()
    n, proc, _, ports, _ = start(env, {"alpha": redis_pool([r])},
                                 global_={"worker_processes": 2})
    try:
        _, pid, f = n.wait_for("READY", "1")
        assert pid == proc.pid  # the master: systemd's main pid
        assert connects(ports[0])
        assert "2 workers" in f["STATUS"], f
        # only the master talks to the service manager
        assert {p for p, _ in n.got} == {proc.pid}
        proc.send_signal(signal.SIGHUP)
        i, _, _ = n.wait_for("RELOADING", "1")
        _, _, f = n.wait_for("READY", "1", after=i + 1)
        assert "generation 2" in f["STATUS"], f
    finally:
        n.close()


def test_abstract_notify_socket(env):
    """$NOTIFY_SOCKET may name an abstract socket (@name), as systemd can."""
    r = env.redis()
    name = "nutcracker-test-%d-%d" % (os.getpid(), free_port())
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    s.bind("\0" + name)
    s.settimeout(10)
    try:
        pools = {"alpha": redis_pool([r], listen="%s:%d" % (HOST, free_port()))}
        conf = env.write_conf(yaml_conf(pools))
        proc, _ = env.spawn([NUTCRACKER_BIN, "-c", conf, "-s", str(free_port()), "-a", HOST],
                            "nutcracker", env=dict(os.environ, NOTIFY_SOCKET="@" + name))
        data = s.recv(4096).decode()
        assert "READY=1" in data.splitlines(), data
        assert proc.poll() is None
    finally:
        s.close()


@pytest.mark.parametrize("workers", [0, 2], ids=["single", "workers"])
def test_upgrade_hands_the_main_pid_over(env, workers):
    """After -k upgrade the new process says MAINPID=<itself> and READY=1 (with
    NotifyAccess=all systemd takes it as the main process), and the old one
    says nothing more once it has handed over."""
    r = env.redis()
    pidfile = os.path.join(env.tmp, "nc.pid")
    n, proc, _, ports, log = start(env, {"alpha": redis_pool([r])},
                                   global_={"worker_processes": workers} if workers else None,
                                   extra=["-p", pidfile])
    new = None
    try:
        i, _, _ = n.wait_for("READY", "1")
        code, out = env.run_proxy(["-k", "upgrade", "-p", pidfile])
        assert code == 0, out
        j, pid, f = n.wait_for("MAINPID", after=i + 1)
        new = int(f["MAINPID"])
        assert new != proc.pid and pid == new and f.get("READY") == "1", (pid, f)
        assert "configuration generation 2 loaded at" in f["STATUS"], f
        wait_until(lambda: proc.poll() is not None, lambda: "the old process to exit; log: " + open(log).read()[-2000:],
                   timeout=20)
        n._read(0.3)
        assert [p for p, _ in n.got[j + 1:]] == [], n.got[j + 1:]
        assert connects(ports[0])
        os.kill(new, signal.SIGTERM)
        _, pid, _ = n.wait_for("STOPPING", "1", after=j + 1)
        assert pid == new
        wait_until(lambda: not running(new), "the new process to stop", timeout=10)
    finally:
        n.close()
        if new and running(new):
            try:
                os.kill(new, signal.SIGKILL)
            except ProcessLookupError:
                pass


def running(pid):
    """True while pid runs (a zombie counts as gone)."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().split(") ")[1][0] != "Z"
    except OSError:
        return False
