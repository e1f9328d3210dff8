"""meitu's layout (global: + pools:) with the global keys that change how the
process runs: user/group drop root after binding (an unknown user is fatal),
and worker_processes 0 is one process (the worker mode has test_workers.py)."""

import os
import pwd
import shutil
import signal
import subprocess
import tempfile

import pytest
import redis

from conftest import HOST, NUTCRACKER_BIN, free_port, wait_port, wait_until
from liveness_util import read_file


def _meitu_conf(env, backend, listen_port, glob):
    lines = ["global:"] + ["  %s: %s" % kv for kv in glob.items()]
    lines += ["pools:", "  alpha:", "    listen: %s:%d" % (HOST, listen_port), "    redis: true",
              "    servers:", "     - %s:%d:1" % (HOST, backend.port)]
    return env.write_conf("\n".join(lines) + "\n")


def _start(env, conf, log=None):
    log = log or env._path("nutcracker.log")
    argv = [NUTCRACKER_BIN, "-c", conf, "-s", str(free_port()), "-a", HOST, "-v", "5", "-o", log]
    proc, _ = env.spawn(argv, "nutcracker")
    return proc, log


def _uid(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("Uid:"):
                return int(line.split()[1])
    raise AssertionError("no Uid line")


@pytest.mark.skipif(os.geteuid() != 0, reason="dropping privileges needs root")
def test_user_drops_root_after_binding_and_still_serves(env):
    nobody = pwd.getpwnam("nobody").pw_uid
    backend = env.redis()
    port = free_port()
    proc, log = _start(env, _meitu_conf(env, backend, port, {"user": "nobody"}))
    assert wait_port(port, proc)
    wait_until(lambda: _uid(proc.pid) == nobody, "the proxy to run as nobody")
    r = redis.Redis(host=HOST, port=port)
    assert r.set("g:k", "v") is True
    assert r.get("g:k") == b"v"


@pytest.mark.skipif(os.geteuid() != 0, reason="dropping privileges needs root")
def test_a_proxy_that_dropped_root_can_still_reopen_its_log(env):
    """The log file opened as root becomes the user's at the drop, so a SIGHUP
    (logrotate's postrotate, or an operator's) reopens it instead of logging
    "Permission denied" and writing on to the old descriptor."""
    nobody = pwd.getpwnam("nobody").pw_uid
    logdir = tempfile.mkdtemp(prefix="nc-drop-")  # pytest's own tmp is root's only
    try:
        os.chmod(logdir, 0o755)
        log = os.path.join(logdir, "nutcracker.log")
        backend = env.redis()
        port = free_port()
        conf = os.path.join(logdir, "nutcracker.yml")  # SIGHUP also rereads it, as nobody
        shutil.copy(_meitu_conf(env, backend, port, {"user": "nobody"}), conf)
        os.chmod(conf, 0o644)
        proc, _ = _start(env, conf, log)
        assert wait_port(port, proc)
        wait_until(lambda: _uid(proc.pid) == nobody, "the proxy to run as nobody")
        assert os.stat(log).st_uid == nobody
        os.kill(proc.pid, signal.SIGHUP)
        os.kill(proc.pid, signal.SIGTTIN)
        wait_until(lambda: "up log level to 6" in read_file(log), "the level change in the log")
        assert "failed" not in read_file(log) and "denied" not in read_file(log), read_file(log)
        assert redis.Redis(host=HOST, port=port).ping() is True
    finally:
        shutil.rmtree(logdir, ignore_errors=True)


@pytest.mark.skipif(os.geteuid() != 0, reason="dropping privileges needs root")
def test_unknown_user_is_fatal(env):
    """An account the system does not have is a configuration error naming its
    file and line, for -t as at start (it was found only after binding)."""
    backend = env.redis()
    port = free_port()
    conf = _meitu_conf(env, backend, port, {"user": "no-such-user-nc", "group": "no-such-grp-nc"})
    t = subprocess.run([NUTCRACKER_BIN, "-t", "-c", conf], capture_output=True, text=True,
                       timeout=10)
    assert t.returncode != 0
    for line, what in ((2, 'user: no user "no-such-user-nc"'),
                       (3, 'group: no group "no-such-grp-nc"')):
        assert "%s:%d: %s on this system" % (conf, line, what) in t.stderr, t.stderr
    proc, log = _start(env, conf)
    assert proc.wait(timeout=10) != 0
    with open(log) as f:
        assert '%s:2: user: no user "no-such-user-nc" on this system' % conf in f.read()


def test_worker_processes_zero_is_one_process(env):
    """worker_processes: 0 (the default) serves from the process itself, no children."""
    backend = env.redis()
    port = free_port()
    proc, log = _start(env, _meitu_conf(env, backend, port, {"worker_processes": 0}))
    assert wait_port(port, proc)
    assert redis.Redis(host=HOST, port=port).ping() is True
    with open("/proc/%d/task/%d/children" % (proc.pid, proc.pid)) as f:
        assert f.read().split() == []
