"""The proxy's redis command table (src/proto/redis_cmds.def, generated from redis'
COMMAND) read as data, so tests can iterate over it instead of keeping their own lists."""

import os
import re

from conftest import ROOT

DEF = os.path.join(ROOT, "src", "proto", "redis_cmds.def")
_CMD = re.compile(r'REDIS_CMD\((\w+), "([^"]+)", (-?\d+), ([^,]+), (-?\d+), (-?\d+), (-?\d+), '
                  r'(\w+), (\d+), (\d+), (\w+)\)')
_SPEC = re.compile(r'REDIS_KEYSPEC\((NULL|"[^"]*"), (-?\d+), (\w+), (-?\d+), (-?\d+), (-?\d+), '
                   r'(-?\d+), (-?\d+)\)')


class Command:
    def __init__(self, m, specs):
        self.name, self.arity = m.group(2), int(m.group(3))
        self.flags = set(re.findall(r"F\((\w+)\)", m.group(4)))
        self.kind, self.handling = m.group(8), m.group(11)
        s0, n = int(m.group(9)), int(m.group(10))
        self.specs = specs[s0:s0 + n] if n else []

    @property
    def supported(self):
        return not self.handling.startswith("REJECT") and self.handling not in ("SUBCMD",)

    @property
    def multikey(self):
        """Can a request of it carry more than one key?"""
        if self.kind != "SPECS" or len(self.specs) > 1:
            return True
        return any(s["find"] == "KEYNUM" or s["lastkey"] != 0 or s["keyword"] for s in self.specs)


def commands():
    specs, rows = [], []
    with open(DEF) as f:
        text = f.read()
    for m in _SPEC.finditer(text):
        kw = None if m.group(1) == "NULL" else m.group(1).strip('"')
        specs.append({"keyword": kw, "begin": int(m.group(2)), "find": m.group(3),
                      "lastkey": int(m.group(4))})
    for m in _CMD.finditer(text):
        rows.append(Command(m, specs))
    return rows
