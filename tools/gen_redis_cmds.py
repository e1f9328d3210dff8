#!/usr/bin/env python3
"""Generate src/proto/redis_cmds.def from a live redis-server's COMMAND reply.

The generated file is checked in: nothing runs this script at build time. Re-run it
when the supported redis version changes:

    redis-server --port 7800 --save '' --daemonize no &
    python3 tools/gen_redis_cmds.py --port 7800 -o src/proto/redis_cmds.def

Redis knows arity, flags and where the keys of every command are (its key specs, the
9th element of each COMMAND entry); this script adds the one thing redis cannot know:
how a proxy handles each command (POLICY below), and the few subcommands of later redis
versions that clients send (NEWER).
"""

import argparse
import socket
import sys

# ---- how the proxy handles commands (the only hand-written data) ----------------

# name (subcommands as "container|sub") -> handling (enum redis_handling, REDIS_H_ in C).
# Anything not listed is decided by redis' own flags and key specs (handling() below).
POLICY = {
    # answered by the proxy itself; LOCAL_STATE ones change the client's connection
    # (database, protocol, login, name, flags): queued in a transaction they would
    # change the shared server connection instead, so there they are refused
    "ping": "LOCAL", "echo": "LOCAL", "quit": "LOCAL", "select": "LOCAL_STATE",
    "hello": "LOCAL_STATE", "command": "LOCAL", "auth": "LOCAL_STATE", "reset": "LOCAL",
    # the proxy's figures, answered once a live server said its version (ROUTE_ANY, facts)
    "info": "FACTS",
    # the client's own connection to the proxy; NO-EVICT is flagged admin by redis but
    # only ever concerns the connection that sends it
    "client|setname": "LOCAL_STATE", "client|getname": "LOCAL", "client|setinfo": "LOCAL_STATE",
    "client|id": "LOCAL", "client|info": "LOCAL", "client|no-evict": "LOCAL_STATE",
    # CLIENT LIST lists the proxy's clients as far as one knows them: itself (RQ finds
    # its own address there by the name it set)
    "client|list": "LOCAL",
    "client|no-touch": "LOCAL_STATE", "client|reply": "LOCAL_STATE", "client|help": "LOCAL",
    # split by key, the replies merged
    "mget": "SPLIT_ARRAY",  # one array, values in the original key order
    "del": "SPLIT_SUM",     # integer replies summed
    "unlink": "SPLIT_SUM",
    "touch": "SPLIT_SUM",
    "exists": "SPLIT_SUM",
    "mset": "SPLIT_OK",     # every fragment answers +OK
    # connection state the core keeps: a transaction, subscriptions
    "multi": "TXN", "exec": "TXN", "discard": "TXN", "watch": "TXN", "unwatch": "TXN",
    "subscribe": "PUBSUB", "psubscribe": "PUBSUB", "unsubscribe": "PUBSUB",
    "punsubscribe": "PUBSUB",
    # a message goes where its channel is placed (the channel is routed as a key)
    "publish": "CHANNEL", "spublish": "CHANNEL",
    # keyless, and any live server knows the answer
    "time": "ANY", "lastsave": "ANY",
    # keyless, twemproxy forwards them anyway (to the first server)
    "lolwut": "KEYLESS",
    # keyless, about the whole dataset: walked with a cursor, or asked of every server
    # of a sharded pool and merged
    "scan": "DATASET_SCAN", "keys": "DATASET_CONCAT", "dbsize": "DATASET_SUM",
    "randomkey": "DATASET_PICK",
    # to every server, merged
    "script|load": "ALL_SAME", "script|exists": "ALL_AND", "script|flush": "ALL_OK",
    "flushdb": "FLUSH", "flushall": "FLUSH",
    # functions: loaded, restored and deleted on every server (FCALL then runs wherever
    # its keys are), listed and dumped where every server must answer alike; flushed
    # like the data (allow_flush). STATS concerns one server's running script.
    "function|load": "ALL_SAME", "function|restore": "ALL_SAME",
    "function|delete": "ALL_SAME", "function|list": "ALL_SAME", "function|dump": "ALL_SAME",
    "function|flush": "FLUSH", "function|help": "ANY",
    # a runaway script: killed where it runs, asked over a connection of the client's
    # own to every server (the shared one waits behind the script)
    "script|kill": "ALL_KILL", "function|kill": "ALL_KILL",
    # what the pool's subscriptions are, asked where they are made (every shard's
    # master): a channel's subscribers are at its home, a pattern's on every shard of
    # a sharded pool (at one master of a cluster): the channels are the union, each
    # count the largest any server gives (summed, a pattern would count once a shard)
    "pubsub|channels": "DATASET_UNION", "pubsub|numsub": "DATASET_MAX_PAIRS",
    "pubsub|numpat": "DATASET_MAX", "pubsub|help": "ANY",
    # flagged blocking, but they block only with a BLOCK option (then as BLPOP)
    "xread": "KEY_BLOCK_OPT", "xreadgroup": "KEY_BLOCK_OPT",
    # keyed, but they operate on the server rather than on the key
    "migrate": "REJECT_ADMIN",
}
# Subcommands of later redis versions that clients send at connect (redis-py 5, node-redis,
# go-redis: CLIENT SETINFO), in the shape COMMAND gives them; added only when the server
# the table is generated from does not know them.
NEWER = {
    "client": [
        ["client|setinfo", 4, ["noscript", "loading", "stale"], 0, 0, 0,
         ["@slow", "@connection"], [], [], []],  # redis 7.2
        ["client|no-touch", 3, ["noscript", "loading", "stale"], 0, 0, 0,
         ["@slow", "@connection"], [], [], []],  # redis 7.2
    ],
}
# Key specs redis itself cannot describe ("unknown"): SORT finds its STORE key with
# code (the proxy does the same, SORT in redis_cmd.c); the other unknown specs of
# SORT/SORT_RO are the BY/GET patterns, keys made from values at run time, which
# COMMAND GETKEYS does not list either and nothing can route by.
CUSTOM_KEYS = {"sort": "SORT"}
# Key specs redis describes, but not as it runs the command: GEORADIUS* name the
# first STORE and the first STOREDIST key, while the command writes the last of
# them (each takes the argument after it). COMMAND GETKEYS answers with the specs;
# routing finds the key the command writes (GEO in redis_cmd.c).
WRITES_LAST_KEYS = {"georadius": "GEO", "georadiusbymember": "GEO"}
ADDED = []  # the NEWER entries the table got, named in its header
PATTERN_SPECS = {"sort", "sort_ro"}
CUSTOM_FLAGS = {}  # CUSTOM_KEYS kind -> the flags of the key spec its code stands for
# redis' key-spec flags, in the order COMMAND GETKEYSANDFLAGS names them
KEY_FLAGS = ["RO", "RW", "OW", "RM", "access", "update", "insert", "delete", "not_key",
             "incomplete", "variable_flags"]

NAME_MAX = 40  # REDIS_CMD_NAME_MAX in src/proto/redis_cmd.h


# ---- a minimal RESP2 client ---------------------------------------------------------

class Resp:
    def __init__(self, host, port):
        self.sock = socket.create_connection((host, port), timeout=10)
        self.buf = b""

    def call(self, *args):
        out = b"*%d\r\n" % len(args)
        for a in args:
            a = a.encode() if isinstance(a, str) else a
            out += b"$%d\r\n%s\r\n" % (len(a), a)
        self.sock.sendall(out)
        return self.read()

    def line(self):
        while b"\r\n" not in self.buf:
            chunk = self.sock.recv(1 << 16)
            if not chunk:
                raise EOFError("server closed the connection")
            self.buf += chunk
        ln, self.buf = self.buf.split(b"\r\n", 1)
        return ln

    def exact(self, n):
        while len(self.buf) < n + 2:
            chunk = self.sock.recv(1 << 16)
            if not chunk:
                raise EOFError("server closed the connection")
            self.buf += chunk
        data, self.buf = self.buf[:n], self.buf[n + 2:]
        return data

    def read(self):
        ln = self.line()
        kind, rest = ln[:1], ln[1:]
        if kind == b"+":
            return rest.decode()
        if kind == b"-":
            raise RuntimeError(rest.decode())
        if kind == b":":
            return int(rest)
        if kind == b"$":
            n = int(rest)
            return None if n < 0 else self.exact(n).decode()
        if kind == b"*":
            n = int(rest)
            return None if n < 0 else [self.read() for _ in range(n)]
        raise RuntimeError("unexpected reply %r" % ln)


# ---- from COMMAND entries to table rows ---------------------------------------------

def pairs(flat):
    """RESP2 renders maps as flat [k, v, k, v...] arrays."""
    return dict(zip(flat[0::2], flat[1::2]))


def key_specs(entry):
    """(keys kind, [spec rows]) from redis' key specs; exits on a spec it cannot carry."""
    name, raw_specs = entry[0], entry[8] if len(entry) > 8 else []
    kind, rows = "SPECS", []
    for raw in raw_specs:
        spec = pairs(raw)
        flags = set(spec["flags"])
        bs, fk = pairs(spec["begin_search"]), pairs(spec["find_keys"])
        if "not_key" in flags:  # a channel (SPUBLISH...), not a key
            continue
        if flags - set(KEY_FLAGS):
            sys.exit("%s: key spec flags not in KEY_FLAGS: %r" % (name, flags - set(KEY_FLAGS)))
        if bs["type"] == "unknown" or fk["type"] == "unknown":
            if name in CUSTOM_KEYS and "OW" in flags:
                kind = CUSTOM_KEYS[name]
                CUSTOM_FLAGS[kind] = key_flags(flags)
            elif name in PATTERN_SPECS and "RO" in flags:
                pass
            else:
                sys.exit("%s: key spec redis cannot describe: %r" % (name, spec))
            continue
        bss, fks = pairs(bs["spec"]), pairs(fk["spec"])
        if bs["type"] == "index":
            keyword, begin = None, bss["index"]
        elif bs["type"] == "keyword":
            keyword, begin = bss["keyword"], bss["startfrom"]
        else:
            sys.exit("%s: begin_search %r not handled" % (name, bs))
        if fk["type"] == "range":
            row = ("RANGE", fks["lastkey"], fks["keystep"], fks["limit"], 0, 0)
        elif fk["type"] == "keynum":
            row = ("KEYNUM", 0, fks["keystep"], 0, fks["keynumidx"], fks["firstkey"])
        else:
            sys.exit("%s: find_keys %r not handled" % (name, fk))
        if any(not -128 <= v <= 127 for v in (begin,) + row[1:]):
            sys.exit("%s: key spec numbers do not fit the C table: %r" % (name, spec))
        if name in WRITES_LAST_KEYS and keyword is not None:
            kind = WRITES_LAST_KEYS[name]
            CUSTOM_FLAGS[kind] = key_flags(flags)
        rows.append((keyword, begin) + row + (key_flags(flags),))
    return kind, rows


def key_flags(flags):
    return "|".join("K(%s)" % cname(f) for f in KEY_FLAGS if f in flags) or "0"


def handling(entry, has_keys, has_supported_sub):
    name, flags = entry[0], entry[2]
    if len(entry) > 9 and entry[9]:  # a container: the subcommand decides
        return "SUBCMD" if has_supported_sub else "REJECT_NOKEY"
    if name in POLICY:
        return POLICY[name]
    if "admin" in flags or "asking" in flags:
        return "REJECT_ADMIN"
    if "pubsub" in flags:
        return "REJECT_PUBSUB"
    if "blocking" in flags:
        return "KEY_BLOCKING" if has_keys else "REJECT_BLOCKING"
    if not has_keys:
        return "REJECT_NOKEY"
    return "KEY"


def rows_of(entry, rows, flagset, aclset):
    name = entry[0].lower()
    entry = [name] + list(entry[1:])
    kind, specs = key_specs(entry)
    subs = list(entry[9]) if len(entry) > 9 and entry[9] else []
    known = {sub[0] for sub in subs}
    newer = [sub for sub in NEWER.get(name, []) if sub[0] not in known]
    ADDED.extend(sub[0] for sub in newer)
    subs += newer
    local = POLICY.get(name) == "LOCAL"
    sub_supported = False
    if subs and not local:  # COMMAND's subcommands are answered locally as a whole
        for sub in subs:
            rows_of(sub, rows, flagset, aclset)
            sub_supported |= not rows[-1]["handling"].startswith("REJECT")
    if subs and local:
        entry = entry[:9]
    flagset.update(entry[2])
    acl = sorted(c.lstrip("@") for c in entry[6])
    aclset.update(acl)
    rows.append({
        "name": name, "arity": entry[1], "flags": sorted(entry[2]), "acl": acl,
        "first": entry[3], "last": entry[4], "step": entry[5],
        "kind": kind, "specs": specs,
        "handling": handling(entry, bool(specs) or kind != "SPECS", sub_supported),
    })


def cname(s):
    return s.upper().replace("|", "_").replace("-", "_")


def render(rows, flags, acls, version):
    out = [
        "/* GENERATED by tools/gen_redis_cmds.py from redis-server %s COMMAND: do not edit. */"
        % version,
        "/*",
    ]
    if ADDED:
        out.append(" * Added from later redis versions (NEWER in the script): %s." % ", ".join(ADDED))
    out += [
        " * X-macro data, sorted by name (bytewise); REDIS_SLOTS/REDIS_SLOT at the end place",
        " * every name in the lookup's hash table.",
        " * REDIS_FLAG(ID, \"name\")",
        " * REDIS_ACLCAT(ID, \"name\"): redis' ACL categories (without the @)",
        " * REDIS_CMD(ID, \"name\", arity, flags, first, last, step, keys kind, first key spec,"
        " key specs, handling)",
        " * REDIS_KEYSPEC(keyword, begin, find, lastkey, keystep, limit, keynumidx, firstkey)",
        " *   redis' key specs, in command order; each command's are at [first key spec,",
        " *   first key spec + key specs). keyword NULL: the keys begin at argument `begin`;",
        " *   else after `keyword`, searched from `begin` (< 0: from the end, backwards).",
        " * REDIS_CMD_ACL(ID, categories): each command's ACL categories (COMMAND LIST's",
        " *   FILTERBY ACLCAT), apart from the table a request's lookup reads.",
        " * REDIS_KEYFLAG(ID, \"name\"): redis' key-spec flags, in redis' order;",
        " *   REDIS_KEYSPEC_FLAGS(flags): each key spec's, in key spec order;",
        " *   REDIS_CUSTOM_KEY_FLAGS(kind, flags): those of the keys a kind's code finds",
        " *   (COMMAND GETKEYSANDFLAGS).",
        " */",
        "#ifdef REDIS_FLAG",
    ]
    for f in flags:
        out.append("REDIS_FLAG(%s, \"%s\")" % (cname(f), f))
    out += ["#endif", "", "#ifdef REDIS_ACLCAT"]
    for a in acls:
        out.append("REDIS_ACLCAT(%s, \"%s\")" % (cname(a), a))
    out += ["#endif", "", "#ifdef REDIS_CMD"]
    rows = sorted(rows, key=lambda r: r["name"].encode())
    specs, spec_flags, at = [], [], 0
    for r in rows:
        fl = "|".join("F(%s)" % cname(f) for f in r["flags"]) or "0"
        out.append("REDIS_CMD(%s, \"%s\", %d, %s, %d, %d, %d, %s, %d, %d, %s)" % (
            cname(r["name"]), r["name"], r["arity"], fl, r["first"], r["last"], r["step"],
            r["kind"], at if r["specs"] else 0, len(r["specs"]), r["handling"]))
        for sp in r["specs"]:
            keyword = "\"%s\"" % sp[0].lower() if sp[0] else "NULL"
            specs.append("REDIS_KEYSPEC(%s, %d, %s, %d, %d, %d, %d, %d) /* %d %s */" % (
                (keyword,) + sp[1:-1] + (at, r["name"])))
            spec_flags.append("REDIS_KEYSPEC_FLAGS(%s) /* %d %s */" % (sp[-1], at, r["name"]))
            at += 1
    out += ["#endif", "", "#ifdef REDIS_KEYSPEC"] + specs + ["#endif", ""]
    out += ["#ifdef REDIS_KEYFLAG"]
    out += ["REDIS_KEYFLAG(%s, \"%s\")" % (cname(f), f) for f in KEY_FLAGS]
    out += ["#endif", "", "#ifdef REDIS_KEYSPEC_FLAGS"] + spec_flags + ["#endif", ""]
    out += ["#ifdef REDIS_CUSTOM_KEY_FLAGS"]
    out += ["REDIS_CUSTOM_KEY_FLAGS(%s, %s)" % kv for kv in sorted(CUSTOM_FLAGS.items())]
    out += ["#endif", ""]
    out += ["#ifdef REDIS_CMD_ACL"]
    for r in rows:
        out.append("REDIS_CMD_ACL(%s, %s)" % (
            cname(r["name"]), "|".join("A(%s)" % cname(a) for a in r["acl"]) or "0"))
    out += ["#endif", ""]
    out += render_slots([r["name"] for r in rows])
    return "\n".join(out)


# ---- the name lookup: an open-addressing table generated with the commands ------
#
# cmd_hash is the same function as cmd_hash() in src/proto/redis_cmd.c: the name's
# bytes with bit 0x20 set (so any letter case hashes alike) taken 8 at a time,
# little-endian, each word mixed in with one multiplication. A lookup is one hash,
# then at most SLOT_PROBES slots (linear probing) and one name comparison.

M64 = (1 << 64) - 1
HASH_K = 0xFF51AFD7ED558CCD
HASH_LEN = 0x9E3779B97F4A7C15
SLOT_BITS = 11  # 2048 slots for ~380 names: short probes


def cmd_hash(name, seed):
    data = name.encode()
    h = (seed ^ (len(data) * HASH_LEN)) & M64
    i = 0
    while i + 8 <= len(data):
        w = int.from_bytes(data[i:i + 8], "little") | 0x2020202020202020
        h = ((h ^ w) * HASH_K) & M64
        i += 8
    tail = data[i:]
    w = int.from_bytes(tail, "little") | (0x2020202020202020 & ((1 << (8 * len(tail))) - 1))
    h = ((h ^ w) * HASH_K) & M64
    return h ^ (h >> 32)


def slot_table(names):
    """(seed, probes, {slot: name}): the seed among the first thousand whose table
    has the shortest longest probe sequence (then the fewest probes in all)."""
    best = None
    mask = (1 << SLOT_BITS) - 1
    for seed in range(1, 1001):
        slots, longest, total = {}, 0, 0
        for name in names:
            i = cmd_hash(name, seed) & mask
            d = 1
            while i in slots:
                i, d = (i + 1) & mask, d + 1
            slots[i] = name
            longest, total = max(longest, d), total + d
        if best is None or (longest, total) < best[:2]:
            best = (longest, total, seed, slots)
    return best[2], best[0], best[3]


def render_slots(names):
    seed, probes, slots = slot_table(names)
    out = ["/* REDIS_SLOTS(bits, seed, probes): the name lookup's table (tools/gen_redis_cmds.py,",
           " * cmd_hash); REDIS_SLOT(slot, ID): where each name is. */",
           "#ifdef REDIS_SLOTS",
           "REDIS_SLOTS(%d, %d, %d)" % (SLOT_BITS, seed, probes),
           "#endif", "", "#ifdef REDIS_SLOT"]
    out += ["REDIS_SLOT(%d, %s)" % (i, cname(slots[i])) for i in sorted(slots)]
    return out + ["#endif", ""]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("-o", "--output", default="-")
    args = ap.parse_args()

    r = Resp(args.host, args.port)
    info = r.call("INFO", "server")
    version = next((ln.split(":", 1)[1].strip() for ln in info.splitlines()
                    if ln.startswith("redis_version:")), "unknown")
    rows, flagset, aclset = [], set(), set()
    for entry in r.call("COMMAND"):
        rows_of(entry, rows, flagset, aclset)
    names = {r["name"] for r in rows}
    for must in set(POLICY) | set(CUSTOM_KEYS) | set(WRITES_LAST_KEYS):
        if must not in names:
            sys.exit("redis %s does not know '%s'" % (version, must))
    longest = max(rows, key=lambda r: len(r["name"]))["name"]
    if len(longest) > NAME_MAX:
        sys.exit("'%s' is longer than REDIS_CMD_NAME_MAX in redis_cmd.h" % longest)
    flags = sorted(flagset)
    if len(flags) > 32:
        sys.exit("more than 32 flags: the C table keeps them in a uint32_t")
    acls = sorted(aclset)
    if len(acls) > 32:
        sys.exit("more than 32 ACL categories: the C table keeps them in a uint32_t")
    text = render(rows, flags, acls, version)
    if args.output == "-":
        sys.stdout.write(text)
    else:
        with open(args.output, "w") as f:
            f.write(text)


if __name__ == "__main__":
    main()
