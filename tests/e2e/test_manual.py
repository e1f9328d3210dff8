"""The manual pages cannot drift from the program: every option --help lists is
documented in nutcracker(8) and nothing else is; every key the configuration
parser knows (its key tables in src/conf/conf_pool.c, plus the top-level
global/pools of meitu's layout) is documented in nutcracker.yml(5) with a type,
a default and an example, and nothing else is; each documented example is
accepted by the parser; the checked-in pages are what tools/gen_man.py makes
of man/manual.txt; and groff renders them without a warning."""

import os
import re
import shutil
import subprocess

import pytest

from conftest import NUTCRACKER_BIN, ROOT, TWEMPROXY

pytestmark = pytest.mark.skipif(TWEMPROXY, reason="the manual is ours")

SOURCE = os.path.join(ROOT, "man", "manual.txt")


def manual_pages():
    """{page: [(directive, argument, {type/default/example})]} from the source."""
    pages, page, last = {}, None, None
    with open(SOURCE, encoding="utf-8") as f:
        for line in f:
            m = re.match(r"@(\w+) ?(.*)", line.rstrip("\n"))
            if not m:
                continue
            word, rest = m.groups()
            if word == "page":
                page = rest.split()[0] + "." + rest.split()[1]
                pages[page] = []
            elif word in ("type", "default", "example"):
                last[2][word] = rest
            else:
                last = (word, rest, {})
                pages[page].append(last)
    return pages


def help_options():
    """(short letter or None, long name) of every option --help lists."""
    out = subprocess.run([NUTCRACKER_BIN, "--help"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                         timeout=10).stdout.decode()
    opts = set(re.findall(r"^\s+(?:-(\w), )?--([\w-]+)", out, re.M))
    assert len(opts) >= 18, out
    return {(s or None, l) for s, l in opts}


def parser_keys():
    """The names in the configuration parser's key tables."""
    with open(os.path.join(ROOT, "src", "conf", "conf_pool.c"), encoding="utf-8") as f:
        src = f.read()
    keys = set()
    for table in ("pool_keys", "global_keys"):
        body = re.search(r"struct key_desc %s\[\] = \{(.*?)\n\};" % table, src, re.S)
        assert body, table
        keys |= set(re.findall(r'\{"(\w+)", K_', body.group(1)))
    with open(os.path.join(ROOT, "src", "conf", "conf.c"), encoding="utf-8") as f:
        top = f.read()
    for name in ("global", "pools"):  # meitu's top level
        assert '"%s"' % name in top, name
        keys.add(name)
    assert len(keys) >= 30, keys
    return keys


def test_every_option_is_documented():
    doc = set()
    for word, rest, _ in manual_pages()["nutcracker.8"]:
        if word == "option":
            short, long_ = rest.split()
            doc.add((None if short == "-" else short[1:], long_[2:].split("=")[0]))
    assert doc == help_options(), ("documented, not in --help:", doc - help_options(),
                                   "in --help, not documented:", help_options() - doc)
    page = open(os.path.join(ROOT, "man", "nutcracker.8"), encoding="utf-8").read()
    for short, long_ in help_options():
        assert "\\-\\-" + long_.replace("-", "\\-") in page, long_


def test_every_key_is_documented_with_type_default_and_example():
    entries = [e for e in manual_pages()["nutcracker.yml.5"] if e[0] == "key"]
    doc = [name for _, name, _ in entries]
    assert len(doc) == len(set(doc)), "a key documented twice"
    assert set(doc) == parser_keys(), ("documented, unknown to the parser:", set(doc) - parser_keys(),
                                      "known to the parser, not documented:", parser_keys() - set(doc))
    for _, name, info in entries:
        assert {"type", "default", "example"} <= set(info), (name, info)
        assert info["example"].startswith(name + ":"), (name, info["example"])


def _pem(tmp_path, path):
    """A real file for an example's /etc/nutcracker/x.pem|x.key (-t reads them):
    one self-signed certificate and its key serve as CA, ours and the proxy's."""
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    if not cert.exists():
        subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                        "-subj", "/CN=localhost", "-keyout", str(key), "-out", str(cert)],
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True, timeout=60)
    return str(key if path.endswith(".key") else cert)


def _companions(name, tmp_path):
    """Keys an example needs beside it to pass -t."""
    if name in ("tls_cert_file", "tls_key_file"):  # both or neither
        return {"tls": "true", "tls_cert_file": "/etc/nutcracker/client.pem",
                "tls_key_file": "/etc/nutcracker/client.key"}
    if name.startswith("tls_"):  # only valid with tls: true
        return {"tls": "true"}
    if name == "listen_tls_addr":
        return {"listen_tls": "{cert_file: /etc/nutcracker/proxy.pem, key_file: /etc/nutcracker/proxy.key}"}
    if name == "cluster_refresh":
        return {"redis_cluster": "true"}
    return {}


def test_examples_are_accepted(tmp_path):
    """Each pool key's example, in a pool that allows it, passes -t."""
    entries = {name: info for word, name, info in manual_pages()["nutcracker.yml.5"] if word == "key"}
    base = {"listen": "127.0.0.1:22121", "redis": "true", "servers": "[127.0.0.1:6379:1]"}
    for name, info in entries.items():
        if name in ("global", "pools"):
            text = "%s\n" % info["example"] if name == "global" else info["example"] + "\n"
            if name == "global":
                text += "pools: {a: {listen: 127.0.0.1:22121, servers: [127.0.0.1:6379:1]}}\n"
        elif name in ("worker_processes", "worker_shutdown_timeout", "max_openfiles", "user", "group"):
            if name in ("user", "group"):
                continue  # the user must exist on this machine
            text = "global: {%s}\npools: {a: {listen: 127.0.0.1:22121, servers: [127.0.0.1:6379:1]}}\n" % \
                info["example"]
        else:
            pool = dict(base)
            if name in ("sentinels", "groups", "sentinel_heartbeat", "sentinel_auth", "failover_hold",
                        "failover_hold_on_crash", "sentinel_tls"):
                pool.pop("servers")
                pool.update(sentinels="[127.0.0.1:26379]", groups="[g]")
            if name in ("read_from", "replica_max_link_down"):
                pool["servers"] = "[127.0.0.1:6379:1 master, 127.0.0.1:6380:1]"
            if name in ("servers", "sentinels", "groups"):
                pool.pop(name, None)
            key, _, value = info["example"].partition(": ")
            pool[key] = value
            pool.update(_companions(name, tmp_path))
            for path in re.findall(r"/etc/nutcracker/[\w.]+", " ".join(pool.values())):
                pool = {k: v.replace(path, _pem(tmp_path, path)) for k, v in pool.items()}
            text = "a:\n" + "".join("  %s: %s\n" % kv for kv in pool.items())
        path = tmp_path / ("%s.yml" % name)
        path.write_text(text)
        r = subprocess.run([NUTCRACKER_BIN, "-t", "-c", str(path)], stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, timeout=10)
        assert r.returncode == 0, (name, text, r.stdout.decode())


def test_pages_are_generated_from_the_source(tmp_path):
    r = subprocess.run(["/usr/bin/python3", os.path.join(ROOT, "tools", "gen_man.py"), SOURCE, str(tmp_path)],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=30)
    assert r.returncode == 0, r.stdout
    for page in ("nutcracker.8", "nutcracker.yml.5"):
        made = (tmp_path / page).read_text(encoding="utf-8")
        kept = open(os.path.join(ROOT, "man", page), encoding="utf-8").read()
        assert made == kept, "man/%s is not what man/manual.txt gives: run make man" % page


@pytest.mark.skipif(not shutil.which("groff"), reason="groff (man-db) is not installed")
def test_pages_render_without_warnings():
    for page in ("nutcracker.8", "nutcracker.yml.5"):
        r = subprocess.run(["groff", "-man", "-ww", "-z", os.path.join(ROOT, "man", page)],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=30)
        assert r.returncode == 0 and r.stdout == b"", (page, r.stdout.decode())
