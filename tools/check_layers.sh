#!/usr/bin/env bash
# make layers: the folders of src/ form one-way layers, and a few invariants
# have one owner each (docs/architecture.md). A file may include headers of its
# own layer and of the layers below, never above:
#
#   core event hash net  <  proto  <  conf  <  stats  <  cluster  <  proxy  <  sentinel  <  process
#   <  main.c
#
# Exits 1 and names each offending line.
set -u
cd "$(dirname "$0")/.."

rank() {
    case "$1" in
    core | event | hash | net) echo 0 ;;
    proto) echo 1 ;;
    conf) echo 2 ;;
    stats) echo 3 ;;
    cluster) echo 4 ;;
    proxy) echo 5 ;;
    sentinel) echo 6 ;;
    process) echo 7 ;;
    main) echo 8 ;;
    *) echo -1 ;;
    esac
}

fail=0
while IFS= read -r file; do
    dir=${file#src/}
    case "$dir" in
    */*) dir=${dir%%/*} ;;
    *) dir=main ;;
    esac
    mine=$(rank "$dir")
    if [ "$mine" -lt 0 ]; then
        echo "$file: folder '$dir' has no layer in tools/check_layers.sh"
        fail=1
        continue
    fi
    while IFS=: read -r line inc; do
        target=${inc%%/*}
        theirs=$(rank "$target")
        if [ "$theirs" -lt 0 ] || [ "$theirs" -gt "$mine" ]; then
            echo "$file:$line: includes \"$inc\": $target is above $dir"
            fail=1
        fi
    done < <(grep -n '^#include "' "$file" | sed -E 's/^([0-9]+):#include "([^"]+)".*/\1:\2/')
done < <(find src -name '*.[ch]' | sort)

# One owner per invariant: these fields are written in the named file only.
owner() { # pattern, owner file, what
    local hits
    hits=$(grep -rnE "$1" src --include='*.c' | grep -v "^$2:" || true)
    if [ -n "$hits" ]; then
        echo "$hits" | sed "s|\$|   <- $3 belongs to $2|"
        fail=1
    fi
}
owner '(health|->health)\.(failures|ejected|retry_at_ms) *([-+*/]?=[^=]|\+\+|--)' \
    src/proxy/health.c "a server's health"
owner '\bq(->|\.)(head|tail|n|pending_bytes|inflight_bytes) *([-+]?=[^=]|\+\+|--)' \
    src/proxy/cqueue.c "a client's request queue"
owner 'dirty_sconns *=[^=]|dirty_(prev|next) *=[^=]' src/proxy/sconn.c "the server flush list"
owner '(->|\.)held *=[^=]' src/proxy/hold.c "a request held for a failover"

if [ "$fail" -eq 0 ]; then
    echo "layers: every include goes down, every invariant has its owner"
fi
exit "$fail"
