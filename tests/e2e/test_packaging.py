"""What `make install` and the systemd unit promise: PREFIX and DESTDIR are
honoured (binary, both manual pages, the example configuration, the unit with
the installed binary's path); the Makefile appends CFLAGS/CPPFLAGS/LDFLAGS
given to it (dpkg's hardening flags) instead of dropping its own; the unit is
valid for systemd (systemd-analyze verify) and has what the service needs.
The .deb itself is built and installed over Debian's package by make deb-test."""

import os
import re
import shutil
import subprocess

import pytest

from conftest import ROOT, TWEMPROXY

pytestmark = pytest.mark.skipif(TWEMPROXY, reason="packaging is ours")


def make(*args, **kw):
    r = subprocess.run(["make", "--no-print-directory"] + list(args), cwd=ROOT, stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, timeout=600, **kw)
    return r.returncode, r.stdout.decode()


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    dest = tmp_path_factory.mktemp("destdir")
    build = tmp_path_factory.mktemp("build")
    rc, out = make("install", "DESTDIR=%s" % dest, "PREFIX=/opt/nc", "BUILD=%s" % build)
    assert rc == 0, out
    return str(dest)


def test_install_honours_prefix_and_destdir(installed):
    files = sorted(os.path.relpath(os.path.join(d, f), installed)
                   for d, _, fs in os.walk(installed) for f in fs)
    assert files == ["opt/nc/lib/systemd/system/nutcracker.service", "opt/nc/sbin/nutcracker",
                     "opt/nc/share/doc/nutcracker/examples/nutcracker.yml",
                     "opt/nc/share/man/man5/nutcracker.yml.5", "opt/nc/share/man/man8/nutcracker.8"], files
    binary = os.path.join(installed, "opt/nc/sbin/nutcracker")
    assert os.access(binary, os.X_OK)
    out = subprocess.run([binary, "-V"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT).stdout.decode()
    assert out.startswith("This is nutcracker-"), out
    # the example is a valid configuration
    example = os.path.join(installed, "opt/nc/share/doc/nutcracker/examples/nutcracker.yml")
    r = subprocess.run([binary, "-t", "-c", example], stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    assert r.returncode == 0, r.stdout
    unit = open(os.path.join(installed, "opt/nc/lib/systemd/system/nutcracker.service")).read()
    assert "ExecStart=/opt/nc/sbin/nutcracker -c /etc/nutcracker/nutcracker.yml" in unit
    assert "@SBINDIR@" not in unit


def test_flags_from_the_environment_are_appended(tmp_path):
    env = dict(os.environ, CFLAGS="-DNC_FROM_ENV_CFLAGS", CPPFLAGS="-DNC_FROM_ENV_CPPFLAGS",
               LDFLAGS="-Wl,-z,relro")
    rc, out = make("-n", "-B", "BUILD=%s" % tmp_path, "%s/nutcracker" % tmp_path, env=env)
    assert rc == 0, out
    compiles = [l for l in out.splitlines() if " -c -o " in l]
    assert compiles, out
    for line in compiles:
        # ours (warnings as errors, C11) and theirs (hardening), ours first
        assert "-Werror" in line and "-std=c11" in line, line
        assert "-DNC_FROM_ENV_CFLAGS" in line and "-DNC_FROM_ENV_CPPFLAGS" in line, line
        assert line.index("-std=c11") < line.index("-DNC_FROM_ENV_CFLAGS"), line
    link = [l for l in out.splitlines() if re.search(r"-o \S*nutcracker ", l)]
    assert link and "-Wl,-z,relro" in link[0], out
    # the sanitizer build adds its flags to the same (overridden) CFLAGS
    rc, out = make("-n", "-B", "BUILD=%s" % tmp_path, "SAN=1", "%s/src/main.o" % tmp_path, env=env)
    line = [l for l in out.splitlines() if " -c -o " in l][0]
    assert "-fsanitize=address,undefined" in line and "-DNC_FROM_ENV_CFLAGS" in line, line


def unit_settings(installed):
    unit = open(os.path.join(installed, "opt/nc/lib/systemd/system/nutcracker.service")).read()
    settings = {}
    for line in unit.splitlines():
        if "=" in line and not line.startswith("#"):
            k, v = line.split("=", 1)
            settings.setdefault(k, []).append(v)
    return settings


def test_unit_has_what_the_service_needs(installed):
    s = unit_settings(installed)
    assert s["Type"] == ["notify"] and s["NotifyAccess"] == ["all"]
    start = s["ExecStart"][0]
    for arg in ("-c /etc/nutcracker/nutcracker.yml", "-o /var/log/nutcracker/nutcracker.log",
                "-p /run/nutcracker/nutcracker.pid", "-a 127.0.0.1"):
        assert arg in start, start
    assert start.endswith("$DAEMON_OPTS")  # the admin's options win
    assert s["ExecReload"][0].startswith("/opt/nc/sbin/nutcracker -t -c /etc/nutcracker/nutcracker.yml")
    assert s["ExecReload"][1] == "/bin/kill -HUP $MAINPID"
    assert s["ConditionPathExists"] == ["/etc/nutcracker/nutcracker.yml"]
    assert s["CapabilityBoundingSet"] == ["CAP_NET_BIND_SERVICE"]
    for k, v in (("NoNewPrivileges", "yes"), ("ProtectSystem", "strict"), ("User", "nutcracker"),
                 ("RuntimeDirectory", "nutcracker"), ("ReadWritePaths", "/var/log/nutcracker")):
        assert s[k] == [v], (k, s.get(k))
    assert int(s["LimitNOFILE"][0]) >= 102400
    assert s["ExecStop"] == ["/bin/kill -TERM $MAINPID"] and s["KillMode"] == ["mixed"]


@pytest.mark.skipif(not shutil.which("systemd-analyze"), reason="no systemd-analyze")
def test_unit_verifies(installed):
    unit = os.path.join(installed, "opt/nc/lib/systemd/system/nutcracker.service")
    # its Documentation= pages are looked up with man: point it at the installed ones
    env = dict(os.environ, MANPATH=os.path.join(installed, "opt/nc/share/man"))
    r = subprocess.run(["systemd-analyze", "verify", unit], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       env=env, timeout=60)
    out = r.stdout.decode()
    # the binary path under DESTDIR does not exist as /opt/nc/sbin/nutcracker: that one complaint only
    problems = [l for l in out.splitlines() if l.strip() and "/opt/nc/sbin/nutcracker" not in l]
    assert problems == [], out
