"""Byte streams for test_differential.py: each is sent as it is to a real server and,
on another connection, through a one-server pool of the proxy; the replies must be the
same bytes unless test_differential.py lists the case as a deliberate difference.

Cases are (id, bytes). Each runs on a fresh connection after both servers were flushed.
"""

K250 = b"k" * 250
K251 = b"k" * 251
BIN = bytes(range(1, 32)).replace(b"\n", b"").replace(b"\r", b"").replace(b" ", b"") + b"\x7f\x80\xff"

MC = [
    # valid requests
    ("set-get", b"set k 0 0 1\r\na\r\nget k\r\n"),
    ("set-flags-exptime", b"set k 42 100 3\r\nabc\r\nget k\r\n"),
    ("get-miss", b"get nope\r\n"),
    ("get-multi", b"set a 0 0 1\r\n1\r\nset b 0 0 1\r\n2\r\nget a nope b a\r\n"),
    ("gets", b"set k 0 0 1\r\na\r\ngets k\r\n"),
    ("add", b"add k 0 0 1\r\na\r\nadd k 0 0 1\r\nb\r\nget k\r\n"),
    ("replace", b"replace k 0 0 1\r\na\r\nset k 0 0 1\r\nb\r\nreplace k 0 0 1\r\nc\r\nget k\r\n"),
    ("append-prepend", b"set k 0 0 1\r\nb\r\nappend k 0 0 1\r\nc\r\nprepend k 0 0 1\r\na\r\nget k\r\n"),
    ("append-miss", b"append k 0 0 1\r\na\r\n"),
    ("cas-miss", b"cas k 0 0 1 12345\r\na\r\n"),
    ("cas-exists", b"set k 0 0 1\r\na\r\ncas k 0 0 1 999999\r\nb\r\n"),
    ("incr-decr", b"set n 0 0 2\r\n10\r\nincr n 5\r\ndecr n 3\r\ndecr n 100\r\nincr nope 1\r\n"),
    ("incr-wrap", b"set n 0 0 20\r\n18446744073709551615\r\nincr n 1\r\n"),
    ("incr-nonnumeric", b"set n 0 0 1\r\nx\r\nincr n 1\r\n"),
    # numbers as memcached's strtoull/strtol read them: white space before, white
    # space and anything after, "-0"; a tab, bare CR, vertical tab are token bytes
    ("number-space-after", b"set a 0 0 1\t\r\nx\r\nget a\r\nset n 0 0 1\r\n5\r\nincr n 1\t\r\n"
     b"incr n 1\rX\r\ndecr n \t1\r\nincr n \x0b2\r\ntouch a 5\t\r\ngat 5\t a\r\n"),
    ("number-minus-zero", b"set a -0 0 1\r\nx\r\nset b 0 0 -0\r\n\r\nget a b\r\nincr a -0\r\n"
     b"set c 0 0 +1\r\ny\r\nget c\r\n"),
    ("number-still-refused", b"set a 0 0 1\r\n7\r\nincr a -1\r\nincr a 1x\r\ntouch a -\r\ntouch a \t\r\n"
     b"incr a 18446744073709551616\r\nincr a 1\x00x\r\ntouch a 1\x00\r\nget a\r\n"),
    ("number-cr-in-line", b"set a 0 0\r 1\r\nx\r\nget a\r\ncas a 0 0 1 1\t\r\ny\r\nms b 1\t\r\nz\r\n"
     b"mg b v\r\nflush_all 0\t\r\n"),
    ("delete", b"set k 0 0 1\r\na\r\ndelete k\r\ndelete k\r\n"),
    ("delete-0", b"set k 0 0 1\r\na\r\ndelete k 0\r\n"),
    ("touch", b"set k 0 0 1\r\na\r\ntouch k 10\r\ntouch nope 10\r\n"),
    ("gat", b"set k 0 0 1\r\na\r\ngat 100 k nope\r\n"),
    ("gats-miss", b"gats 100 nope\r\n"),
    ("meta-set-get", b"ms k 1\r\na\r\nmg k v\r\nmg k s f t\r\nmg nope v\r\n"),
    ("meta-delete-arith", b"ms n 1\r\n5\r\nma n\r\nma n MD D2\r\nmg n v\r\nmd n\r\nmd n\r\n"),
    ("meta-debug", b"ms k 1\r\na\r\nme nope\r\n"),
    ("flush_all", b"set k 0 0 1\r\na\r\nflush_all\r\nget k\r\n"),
    ("flush_all-delay", b"flush_all 0\r\n"),
    ("version", b"version\r\n"),
    ("version-extra", b"version x y\r\n"),
    ("verbosity", b"verbosity 1\r\nverbosity 0\r\n"),
    ("pipeline", b"set a 0 0 1\r\n1\r\nget a\r\nincr a 1\r\nget a\r\ndelete a\r\nget a\r\n"),
    # noreply
    ("noreply-set", b"set k 0 0 1 noreply\r\na\r\nget k\r\n"),
    ("noreply-all", b"set n 0 0 1 noreply\r\n1\r\nadd n 0 0 1 noreply\r\n2\r\n"
                    b"replace n 0 0 1 noreply\r\n3\r\nappend n 0 0 1 noreply\r\n4\r\n"
                    b"prepend n 0 0 1 noreply\r\n5\r\nincr n 1 noreply\r\ndecr n 1 noreply\r\n"
                    b"touch n 10 noreply\r\nget n\r\ndelete n noreply\r\nget n\r\n"),
    ("noreply-flush-verbosity", b"flush_all noreply\r\nverbosity 1 noreply\r\nverbosity 0 noreply\r\n"),
    ("noreply-bad-number", b"incr k x noreply\r\n"),
    ("noreply-word-not-noreply", b"set k 0 0 1 foo\r\na\r\nget k\r\n"),
    ("noreply-errors", b"incr k x noreply\r\ntouch k x noreply\r\ndelete k x noreply\r\n"
                       b"flush_all x noreply\r\nset k 0 0 noreply\r\nincr " + K251 + b" 1 noreply\r\n"
                       b"get k\r\n"),
    ("noreply-bad-chunk", b"set k 0 0 1 noreply\r\nab\r\nget k\r\n"),
    ("noreply-count-error", b"incr k 1 2 noreply\r\nset k 0 0 noreply\r\n"),
    # wrong arity and extra tokens
    ("set-missing", b"set k 0 0\r\n"),
    ("set-extra", b"set k 0 0 1 noreply extra\r\na\r\n"),
    ("cas-missing", b"cas k 0 0 1\r\na\r\n"),
    ("get-nokey", b"get\r\n"),
    ("gets-nokey", b"gets\r\n"),
    ("gat-nokey", b"gat 10\r\n"),
    ("incr-missing", b"incr k\r\n"),
    ("incr-extra", b"incr k 1 2 3\r\n"),
    ("incr-extra-bad", b"incr k x y z\r\n"),
    ("touch-missing", b"touch k\r\n"),
    ("touch-extra", b"touch k 1 2 3\r\n"),
    ("delete-nokey", b"delete\r\n"),
    ("delete-extra", b"delete k 0 noreply x\r\n"),
    ("delete-word", b"delete k x\r\n"),
    ("delete-5", b"delete k 5\r\n"),
    # a key over 250 bytes: the words after it are judged first (h48)
    ("delete-long-5", b"delete " + b"k" * 251 + b" 5\r\n"),
    ("delete-long-0", b"delete " + b"k" * 251 + b" 0\r\n"),
    ("delete-long-noreply", b"delete " + b"k" * 251 + b" noreply\r\nget k\r\n"),
    ("delete-key-noreply", b"set noreply 0 0 1\r\na\r\ndelete noreply\r\ndelete noreply\r\n"),
    ("delete-0-noreply", b"set k 0 0 1\r\na\r\ndelete k 0 noreply\r\nget k\r\n"),
    ("flush_all-extra", b"flush_all 0 noreply x\r\n"),
    ("flush_all-bad", b"flush_all x\r\n"),
    ("verbosity-none", b"verbosity\r\n"),
    ("verbosity-word", b"verbosity foo\r\n"),
    ("verbosity-three", b"verbosity foo bar my\r\n"),
    ("verbosity-two", b"verbosity 1 2\r\n"),
    ("verbosity-1-word", b"verbosity 1 foo\r\n"),
    ("verbosity-noreply-only", b"verbosity noreply\r\n"),
    ("verbosity-negative", b"verbosity -1\r\n"),
    ("verbosity-minus-zero", b"verbosity -0\r\n"),
    ("verbosity-plus", b"verbosity +1\r\n"),
    ("verbosity-huge", b"verbosity 99999999999999999999\r\n"),
    ("verbosity-2-32", b"verbosity 4294967296\r\n"),
    ("verbosity-word-noreply", b"verbosity foo noreply\r\n"),
    ("verbosity-tab", b"verbosity 1\t\r\n"),
    ("verbosity-4", b"verbosity 1 2 3 4\r\n"),
    # bad numbers and lengths
    ("set-bad-flags", b"set k x 0 1\r\na\r\n"),
    ("set-negative-flags", b"set k -1 0 1\r\na\r\n"),
    ("set-huge-flags", b"set k 4294967296 0 1\r\na\r\n"),
    ("set-bad-exptime", b"set k 0 x 1\r\na\r\n"),
    ("set-negative-exptime", b"set k 0 -1 1\r\na\r\nget k\r\n"),
    ("set-bad-length", b"set k 0 0 x\r\na\r\n"),
    ("set-negative-length", b"set k 0 0 -1\r\n"),
    ("set-huge-length", b"set k 0 0 99999999999999999999\r\n"),
    # over memcached's int: its format error, and what follows is read as commands
    ("set-length-over-int", b"set k 0 0 2147483646\r\nget k\r\n"),
    ("ms-length-over-int", b"ms k 3000000000\r\nmg k v\r\n"),
    # quiet meta requests: only what memcached itself shows
    ("meta-quiet", b"ms k 1 q\r\na\r\nmg k v q\r\nmg nokey v q\r\nmd nokey q\r\nma k q\r\nmn\r\n"),
    ("meta-quiet-twice", b"mg k v q q\r\nmd k q T0 qq\r\nmn\r\n"),
    # a quiet ma that creates its key (N): memcached shows that reply, q or not
    ("meta-quiet-vivify", b"ma k q N0 J5 v\r\nma k q N0 v\r\nma k2 q N30 O7 k\r\n"
                          b"ma k2 N0 q\r\nmg k2 v t\r\nmn\r\n"),
    ("meta-quiet-vivify-b64", b"ma Zm9v b q N0 k v\r\nma Zm9v b q N0 k v\r\nmg foo v\r\n"),
    ("meta-quiet-vivify-errors", b"ms k 1\r\nx\r\nma k q N0\r\nma k q N0 q\r\nma k q N0 Mx\r\n"),
    ("set-short-data", b"set k 0 0 1\r\nab\r\n"),
    ("set-long-length", b"set k 0 0 2\r\na\r\n\r\n"),
    ("set-bad-chunk", b"set k 0 0 1\r\nabc\r\nget k\r\n"),
    ("set-data-lf", b"set k 0 0 1\r\na\nget k\r\n"),
    ("incr-bad", b"incr k x\r\n"),
    ("incr-negative", b"incr k -1\r\n"),
    ("incr-huge", b"incr k 18446744073709551616\r\n"),
    ("touch-bad", b"touch k x\r\n"),
    ("gat-bad", b"gat x k\r\n"),
    ("cas-bad", b"cas k 0 0 1 x\r\na\r\n"),
    # lines: empty, LF only, CR inside, leading spaces, case
    ("empty-line", b"\r\n"),
    ("empty-lf", b"\n"),
    ("spaces-only", b"   \r\n"),
    ("lf-only", b"set k 0 0 1\na\r\nget k\n"),
    ("leading-spaces", b"  get k\r\n"),
    ("double-spaces", b"set  k  0  0  1\r\na\r\nget   k\r\n"),
    ("upper-case", b"GET k\r\n"),
    ("mixed-case", b"Set k 0 0 1\r\na\r\n"),
    ("unknown", b"bogus\r\n"),
    ("unknown-args", b"bogus a b c\r\n"),
    ("one-letter", b"g\r\n"),
    ("tab-in-key", b"set a\tb 0 0 1\r\na\r\nget a\tb\r\n"),
    # keys: 250 / 251 bytes, binary bytes
    ("key-250", b"set " + K250 + b" 0 0 1\r\na\r\nget " + K250 + b"\r\n"),
    ("key-251-get", b"get " + K251 + b"\r\n"),
    ("key-251-set", b"set " + K251 + b" 0 0 1\r\na\r\n"),
    ("key-251-multi", b"get a " + K251 + b" b\r\n"),
    ("key-251-delete", b"delete " + K251 + b"\r\n"),
    ("key-251-incr", b"incr " + K251 + b" 1\r\n"),
    ("key-251-touch", b"touch " + K251 + b" 1\r\n"),
    ("key-binary", b"set " + BIN + b" 0 0 1\r\na\r\nget " + BIN + b"\r\n"),
    ("key-utf8", "set clé 0 0 1\r\na\r\nget clé\r\n".encode()),
    # meta errors
    ("mg-nokey", b"mg\r\n"),
    ("ms-nolength", b"ms k\r\n"),
    ("ms-bad-length", b"ms k x\r\na\r\n"),
    # a refused header's data block: memcached reads (and drops) an ms's when the
    # line was good up to its length, the other storage commands' never (the
    # block is the next command line, here a get that finds nothing)
    ("ms-bad-flag-after-length", b"ms k 9 Mx\r\nget other\r\nmg k v\r\n"),
    ("ms-dup-flag-after-length", b"ms k 9 q q\r\nget other\r\nmn\r\n"),
    ("ms-opaque-too-long", b"ms k 9 O" + b"o" * 40 + b"\r\nget other\r\nmn\r\n"),
    ("ms-key-251", b"ms " + K251 + b" 9\r\nget other\r\n"),
    ("set-bad-flags-block-runs", b"set k x 0 9\r\nget other\r\nget k\r\n"),
    ("set-bad-flags-noreply", b"set k x 0 9 noreply\r\nget other\r\nget k\r\n"),
    ("cas-bad-unique", b"cas k 0 0 9 x\r\nget other\r\n"),
    ("cas-missing-block-runs", b"cas k 0 0 9\r\nget other\r\nget k\r\n"),
    ("append-extra-token", b"append k 0 0 9 noreply x\r\nget other\r\n"),
    ("mg-dup-flag", b"mg k v v\r\n"),
    ("mg-key-251", b"mg " + K251 + b" v\r\n"),
    ("me-nokey", b"me\r\n"),
    # stats whose answers do not change from one run to the next
    ("stats-reset", b"stats reset\r\n"),
    ("stats-detail", b"stats detail on\r\nstats detail off\r\nstats detail\r\nstats detail x\r\n"),
    ("stats-unknown", b"stats foo\r\nstats foo bar\r\n"),
    ("stats-cachedump-bad", b"stats cachedump 300 0\r\nstats cachedump x 0\r\nstats cachedump 1\r\n"),
    ("stats-cachedump-empty", b"stats cachedump 1 0\r\n"),
    ("stats-sizes", b"stats sizes\r\n"),
    # many tokens
    ("get-100-keys", b"get " + b" ".join(b"k%d" % i for i in range(100)) + b"\r\n"),
    ("set-25-tokens", b"set k 0 0 1 " + b" ".join(b"x" for _ in range(20)) + b"\r\na\r\n"),
    # a binary protocol magic byte after a text request (memcached decides on a connection's
    # first byte only)
    ("binary-byte-mid-stream", b"get a\r\n\x80bogus\r\n"),
    # a refused header's block is the next line, here a pickled value (0x80 first)
    ("set-bad-flags-binary-block", b"set k x 0 5\r\n\x80\x04abc\r\nget k\r\n"),
    # pipelined mixes
    ("mix-errors", b"set a 0 0 1\r\n1\r\nbogus\r\nget a\r\nincr a x\r\nget a\r\n\r\nget a\r\n"),
    ("mix-noreply", b"set a 0 0 1 noreply\r\n1\r\nget a\r\ndelete a noreply\r\nget a\r\n"),
    ("quit", b"set a 0 0 1\r\n1\r\nget a\r\nquit\r\nget a\r\n"),
    ("quit-args", b"quit now\r\n"),
]

# RESP arrays of bulk strings.
def resp(*args):
    out = b"*%d\r\n" % len(args)
    for a in args:
        a = a if isinstance(a, bytes) else str(a).encode()
        out += b"$%d\r\n%s\r\n" % (len(a), a)
    return out


RD = [
    ("set-get", resp("SET", "k", "v") + resp("GET", "k")),
    ("lower-case", resp("set", "k", "v") + resp("get", "k")),
    ("mixed-case", resp("SeT", "k", "v") + resp("gEt", "k")),
    ("get-miss", resp("GET", "nope")),
    ("binary-key", resp("SET", BIN + b"\r\n\x00", "v") + resp("GET", BIN + b"\r\n\x00")),
    ("binary-value", resp("SET", "k", b"\x00\r\n\xff") + resp("GET", "k")),
    ("empty-key", resp("SET", "", "v") + resp("GET", "")),
    ("mset-mget", resp("MSET", "a", "1", "b", "2") + resp("MGET", "a", "nope", "b")),
    ("del-exists", resp("SET", "a", "1") + resp("EXISTS", "a", "a", "b") + resp("DEL", "a", "b")),
    ("incr", resp("INCR", "n") + resp("INCRBY", "n", "x") + resp("INCRBY", "n", "9223372036854775807")),
    ("wrongtype", resp("LPUSH", "l", "a") + resp("GET", "l")),
    ("hash", resp("HSET", "h", "f", "v") + resp("HGETALL", "h") + resp("HGET", "h", "nope")),
    ("eval", resp("EVAL", "return {KEYS[1], ARGV[1]}", "1", "k", "a")),
    ("eval-numkeys-word", resp("EVAL", "return 1", "x", "k")),
    ("eval-numkeys-negative", resp("EVAL", "return 1", "-1", "k")),
    ("eval-numkeys-big", resp("EVAL", "return 1", "5", "k")),
    ("zunionstore-numkeys", resp("ZUNIONSTORE", "d", "5", "a") + resp("ZUNIONSTORE", "d", "0", "a")),
    ("sintercard-numkeys", resp("SINTERCARD", "x", "a") + resp("SINTERCARD", "9", "a")),
    ("lmpop-numkeys", resp("LMPOP", "0", "a", "LEFT") + resp("LMPOP", "9", "a", "LEFT")),
    ("xread-unbalanced", resp("XREAD", "STREAMS", "a", "b", "c")),
    ("xread-nostreams", resp("XREAD", "COUNT", "1", "2", "3")),
    ("georadius-store-nokey", resp("GEORADIUS", "g", "15", "37", "200", "km", "STORE")),
    ("sort-store", resp("RPUSH", "l", "2", "1") + resp("SORT", "l", "STORE", "d") + resp("LRANGE", "d", "0", "-1")),
    ("sort-syntax", resp("SORT", "l", "FOO")),
    ("pfmerge-nosource", resp("PFMERGE", "d") + resp("EXISTS", "d")),
    ("scan-keys-dbsize", resp("SET", "a", "1") + resp("SCAN", "0") + resp("KEYS", "*") + resp("DBSIZE")
     + resp("RANDOMKEY")),
    # wrong arity, unknown commands
    ("arity-get", resp("GET")),
    ("arity-get-extra", resp("GET", "a", "b")),
    ("arity-set", resp("SET", "k")),
    ("arity-mset", resp("MSET", "a", "1", "b")),
    ("arity-object", resp("OBJECT")),
    ("arity-object-encoding", resp("OBJECT", "ENCODING")),
    ("unknown", resp("FOOBAR", "x")),
    ("unknown-subcommand", resp("OBJECT", "FOO", "k")),
    ("unknown-subcommand-lower", resp("xinfo", "bar")),
    ("unknown-noargs", resp("FOOBAR")),
    ("unknown-long", resp("N" * 200, "a" * 100, "b" * 100, "c")),
    ("unknown-many-args", resp("FOO", *["arg%d" % i for i in range(40)])),
    ("unknown-binary", resp(b"F\x00O\r\nO", b"x\x00y", b"\r\n")),
    ("syntax-set", resp("SET", "k", "v", "FOO")),
    # local answers
    ("ping", resp("PING")),
    ("ping-msg", resp("PING", "hello")),
    ("ping-extra", resp("PING", "a", "b")),
    ("echo", resp("ECHO", "hi")),
    ("echo-arity", resp("ECHO")),
    ("select-0", resp("SELECT", "0")),
    ("select-1", resp("SELECT", "1")),
    ("select-word", resp("SELECT", "x")),
    ("auth-nopass", resp("AUTH", "x")),
    ("hello-2", resp("HELLO", "2")),
    ("hello-3", resp("HELLO", "3")),
    ("hello-9", resp("HELLO", "9")),
    ("quit", resp("SET", "a", "1") + resp("QUIT") + resp("GET", "a")),
    # blocking: on the client's own server connection, and their timeouts run out
    ("blocking", resp("BLPOP", "l", "0.05") + resp("RPUSH", "l", "x") + resp("BLPOP", "l", "0")),
    ("xread-block", resp("XREAD", "BLOCK", "10", "STREAMS", "s", "$")),
    # refused by the proxy
    ("multi", resp("MULTI") + resp("SET", "k", "v") + resp("INCR", "n") + resp("GET", "k")
     + resp("EXEC")),
    ("multi-error", resp("MULTI") + resp("SET", "k") + resp("INCR", "n") + resp("EXEC")),
    ("multi-discard", resp("MULTI") + resp("SET", "k", "v") + resp("DISCARD") + resp("GET", "k")),
    ("exec-alone", resp("EXEC")),
    ("watch", resp("WATCH", "k") + resp("MULTI") + resp("SET", "k", "1") + resp("EXEC")),
    ("subscribe", resp("SUBSCRIBE", "c", "d") + resp("GET", "k") + resp("UNSUBSCRIBE", "c")
     + resp("PING") + resp("UNSUBSCRIBE")),
    ("subscribed-exec", resp("SUBSCRIBE", "c") + resp("EXEC") + resp("EXEC", "x") + resp("UNSUBSCRIBE")),
    # redis names the command it will not run while subscribed: one the proxy refuses
    # too (a container's subcommand as object|help), and MSET without whole pairs,
    # whose arity redis' table takes (the pairs are checked only when it runs)
    ("subscribed-refused", resp("SUBSCRIBE", "c") + resp("OBJECT", "HELP") + resp("MEMORY", "DOCTOR")
     + resp("BLPOP", "a", "0") + resp("WAIT", "0", "0") + resp("MSET", "a", "1", "b")
     + resp("MSETNX", "a", "1", "b") + resp("CONFIG", "GET", "maxmemory") + resp("PUBSUB", "CHANNELS")
     + resp("UNSUBSCRIBE")),
    ("config", resp("CONFIG", "GET", "maxmemory")),
    ("info", resp("INFO", "server")),
    ("flushall", resp("FLUSHALL")),
    ("command-count", resp("COMMAND", "COUNT")),
    # the client's own connection
    ("client-name", resp("CLIENT", "GETNAME") + resp("CLIENT", "SETNAME", "me") + resp("CLIENT", "GETNAME")
     + resp("CLIENT", "SETNAME", "a b") + resp("CLIENT", "SETNAME", "") + resp("CLIENT", "GETNAME")),
    ("client-flags", resp("CLIENT", "NO-EVICT", "on") + resp("CLIENT", "NO-EVICT", "x")
     + resp("CLIENT", "REPLY", "ON") + resp("CLIENT", "REPLY", "x")),
    ("client-setinfo", resp("CLIENT", "SETINFO", "lib-name", "redis-py")),
    ("client-id", resp("CLIENT", "ID")),
    # a subcommand's full name is no command's name, and no key is found through it
    ("subcommand-full-name", resp("client|id") + resp("OBJECT|ENCODING", "k")
     + resp("COMMAND", "GETKEYS", "object|encoding", "k") + resp("xgroup|destroy", "k", "g")),
    ("reset", resp("CLIENT", "SETNAME", "me") + resp("RESET") + resp("CLIENT", "GETNAME")),
    ("hello-setname", resp("HELLO", "2", "SETNAME", "a b") + resp("HELLO", "3", "SETNAME") + resp("HELLO", "x")),
    # framing: empty arrays, blank lines, inline commands
    ("empty-array", b"*0\r\n" + resp("PING")),
    ("null-array", b"*-1\r\n" + resp("PING")),
    ("blank-line", b"\r\n" + resp("PING")),
    ("blank-lf", b"\n" + resp("PING")),
    ("inline-ping", b"PING\r\n"),
    ("inline-get", b"SET k v\r\nGET k\r\n"),
    ("inline-quotes", b"SET k \"a b\"\r\n" + resp("GET", "k")),
    ("inline-lf", b"echo hi\nSET k v\nGET k\n"),
    ("inline-blanks", b"  \r\n\n \t\x0b\r\n  GET   k  \r\nPING\rPING\r\n"),
    ("inline-escapes", b"SET k \"\\x41\\x4g\\n\\r\\t\\b\\a\\q\\\\\\\"\"\r\n" + resp("GET", "k")),
    ("inline-single-quotes", b"SET k 'a\\'b\\n'\r\n" + resp("GET", "k")),
    ("inline-quote-mid-arg", b"SET k a\"b c\"\r\n" + resp("GET", "k") + b"SET k x'y z'\r\n" + resp("GET", "k")),
    ("inline-vt-ff", b"SET k a\x0bb\r\n" + resp("GET", "k") + b"\x0bset\x0ck\x0cv\r\n"),
    ("inline-empty-args", b"SET \"\" ''\r\n" + resp("GET", "") + b"\"\" \r\n"),
    ("inline-mget-del", b"MSET a 1 b 2\r\nMGET a nope b\r\nDEL a b c\r\nEXISTS a b\r\n"),
    ("inline-local", b"ECHO \"x y\"\r\nPING hi\r\nSELECT 0\r\nCOMMAND GETKEYS SET k v\r\n"),
    ("inline-errors", b"GET\r\nFOO a 'b c'\r\nGET a b\r\n"),
    ("inline-binary", b"SET k \"\\x00\\xff\\r\\n\"\r\n" + resp("GET", "k")),
    ("inline-unbalanced", b"SET k v\r\nGET \"k\r\nPING\r\n"),
    ("inline-unbalanced-single", b"GET 'k\r\n"),
    ("inline-quote-then-text", b"SET \"k\"v x\r\n"),
    ("inline-nul", b"GET a\x00b\r\n"),
    ("inline-after-resp", resp("SET", "k", "v") + b"GET k\r\n" + resp("GET", "k")),
    # protocol errors: the server closes after its error
    ("bad-multibulk", b"*abc\r\n"),
    ("bad-multibulk-big", b"*1048577\r\n"),
    ("bad-bulk-length", b"*1\r\n$x\r\n"),
    ("negative-bulk", b"*1\r\n$-1\r\n"),
    ("huge-bulk", b"*1\r\n$536870913\r\n"),
    ("bulk-no-dollar", b"*1\r\n:3\r\n"),
    ("bulk-no-crlf", b"*1\r\n$3\r\nGETX\r\n"),
    ("pipeline-then-error", resp("SET", "a", "1") + resp("GET", "a") + b"*1\r\n$x\r\n"),
]
