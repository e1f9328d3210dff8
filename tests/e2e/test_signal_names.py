"""Signals are logged by name, as twemproxy logs them ("signal 1 (SIGHUP)
received, ..."): operators and twemproxy's own tests grep the log for HUP,
TTIN, TTOU, SEGV. The log is what these tests are about, so they read it."""

import os
import re
import signal

from conftest import redis_pool, wait_until


def _log(px):
    with open(px.log, errors="replace") as f:
        return f.read()


def _logged(px, pattern):
    return wait_until(lambda: re.search(pattern, _log(px), re.M), "log line /%s/" % pattern)


def test_each_signal_is_logged_with_its_name(env):
    s = env.redis()
    px = env.proxy({"alpha": redis_pool([s])}, verbose=5)
    expected = [
        (signal.SIGHUP, r"signal 1 \(SIGHUP\) received, reopening log file and reloading"),
        (signal.SIGUSR1, r"signal 10 \(SIGUSR1\) received, reopening log file$"),
        (signal.SIGTTIN, r"signal 21 \(SIGTTIN\) received, up logging level$"),
        (signal.SIGTTOU, r"signal 22 \(SIGTTOU\) received, down logging level$"),
    ]
    for sig, pattern in expected:
        os.kill(px.proc.pid, sig)
        assert _logged(px, pattern), "%s not logged:\n%s" % (sig.name, _log(px)[-2000:])
    # the level changes are logged as twemproxy words them too
    assert re.search(r"up log level to 6$", _log(px), re.M)
    assert re.search(r"down log level to 5$", _log(px), re.M)
    os.kill(px.proc.pid, signal.SIGTERM)
    assert px.proc.wait(10) == 0
    assert re.search(r"signal 15 \(SIGTERM\) received, exiting$", _log(px), re.M)


def test_sigint_is_logged(env):
    s = env.redis()
    px = env.proxy({"alpha": redis_pool([s])})
    os.kill(px.proc.pid, signal.SIGINT)
    assert px.proc.wait(10) == 0
    assert re.search(r"signal 2 \(SIGINT\) received, exiting$", _log(px), re.M)


def test_sigsegv_logs_a_backtrace_and_dies_of_it(env):
    s = env.redis()
    px = env.proxy({"alpha": redis_pool([s])})
    os.kill(px.proc.pid, signal.SIGSEGV)
    assert px.proc.wait(10) == -signal.SIGSEGV
    text = _log(px)
    assert re.search(r"^\[\.+\] signal 11 \(SIGSEGV\) received, core dumping$", text, re.M), text[-2000:]
    # the backtrace comes before it, frame by frame (backtrace_symbols_fd lines)
    before = text[:text.index("signal 11 (SIGSEGV)")]
    assert re.search(r"nutcracker\(.*\)\[0x[0-9a-f]+\]", before), before[-2000:]


def test_worker_mode_passes_signals_on_and_logs_them(env):
    s = env.redis()
    px = env.proxy({"alpha": redis_pool([s])}, global_={"worker_processes": 2})
    os.kill(px.proc.pid, signal.SIGTTIN)
    # the master and each of the two workers log it
    wait_until(lambda: len(re.findall(r"signal 21 \(SIGTTIN\) received", _log(px))) == 3,
               "the master and both workers to log SIGTTIN")
