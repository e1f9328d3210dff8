"""Key placement bit for bit like twemproxy: vectors/placement.tsv (SPEC 4).

Server names (and so ketama points) include the port, so the vectors are only
valid with backends on 127.0.0.1:7401-7404.  This is the one module that uses
fixed ports; it is skipped when any of them is busy.
"""

import re
from collections import defaultdict

import pytest

from conftest import VECTORS, port_is_free, read_placement_vectors

PORTS = (7401, 7402, 7403, 7404)


def configs():
    """config id -> pool settings, parsed from the '# config X:' lines."""
    out = {}
    with open("%s/placement.tsv" % VECTORS, encoding="utf-8") as f:
        for line in f:
            m = re.match(r"# config (\w): (.*)$", line.rstrip("\n"))
            if not m:
                continue
            pool = {"redis": True}
            body = m.group(2)
            servers = re.search(r"servers: (.*)$", body).group(1).split(", ")
            for part in body[:body.index("servers:")].split(";"):
                part = part.strip()
                if part:
                    k, v = part.split(": ", 1)
                    pool[k] = v
            pool["servers"] = servers
            out[m.group(1)] = pool
    return out


CONFIGS = configs()
ROWS = defaultdict(list)
for _cfg, _key, _server in read_placement_vectors():
    ROWS[_cfg].append((_key, _server))


@pytest.fixture(scope="module")
def fixed_backends(menv):
    busy = [p for p in PORTS if not port_is_free(p)]
    if busy:
        pytest.skip("placement vectors need 127.0.0.1:7401-7404 free; busy: %s" % busy)
    try:
        return {p: menv.redis(port=p) for p in PORTS}
    except RuntimeError as e:
        pytest.skip("could not start redis on 7401-7404: %s" % e)


def test_vectors_have_four_configs():
    assert sorted(CONFIGS) == ["A", "B", "C", "D"]
    assert all(len(ROWS[c]) >= 40 for c in CONFIGS)


@pytest.mark.parametrize("cfg", sorted(CONFIGS))
def test_placement_matches_twemproxy(env, fixed_backends, cfg):
    for s in fixed_backends.values():
        s.client().flushall()
    px = env.proxy({"alpha": CONFIGS[cfg]})
    c = px.resp()
    for key, _ in ROWS[cfg]:
        assert c.call("SET", key, "v") == b"OK"
    got = {}
    for port, s in fixed_backends.items():
        for k in s.client().keys("*"):
            assert k.decode() not in got, "key on two servers"
            got[k.decode("utf-8")] = port
    wrong = []
    for key, server in ROWS[cfg]:
        want_port = int(server.split()[0].split(":")[1])
        if got.get(key) != want_port:
            wrong.append((key, want_port, got.get(key)))
    assert not wrong, "(key, expected port, actual port): %r" % wrong
    # and reads find them again through the proxy
    for key, _ in ROWS[cfg][:10]:
        assert c.call("GET", key) == b"v"
