#!/usr/bin/env bash
# kafka_smoke.sh -- the test broker works: no topic auto-creation, keyed
# messages with headers round-trip (plain and transactional), per-key order
# and partitioning hold, read_committed consumers see committed data.
# Usage: kafka_smoke.sh KAFKA_SH BROKER_DIR   (run by CTest as kafka.smoke)
set -euo pipefail

kafka_sh=$1
dir=$2
boot=$(cat "$dir/bootstrap")
run=$$-$RANDOM
topic=kb-smoke-$run
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

fail() {
        echo "FAIL: $*" >&2
        exit 1
}
ok() { echo "ok: $*"; }

# 1. Auto-creation is off: a producer (which asks the broker to create
#    unknown topics) gets nothing delivered and no topic appears.
missing=kb-smoke-missing-$run
if echo "k:v" | timeout 30 kcat -P -b "$boot" -t "$missing" -K: \
        -X message.timeout.ms=1500 2>"$tmp/missing.err"; then
        fail "producing to the missing topic $missing succeeded"
fi
timeout 30 kcat -b "$boot" -L -m 5 >"$tmp/meta.txt"
if grep -qF "topic \"$missing\"" "$tmp/meta.txt"; then
        fail "topic $missing was auto-created"
fi
ok "no auto-creation ($(tr '\n' ' ' <"$tmp/missing.err" | cut -c1-100))"

# 2. An explicit topic with 3 partitions.
"$kafka_sh" topic "$dir" "$topic" 3
timeout 30 kcat -b "$boot" -L -t "$topic" -m 5 >"$tmp/meta.txt"
grep -qF "topic \"$topic\" with 3 partitions:" "$tmp/meta.txt" ||
        fail "topic $topic does not have 3 partitions: $(cat "$tmp/meta.txt")"
ok "topic $topic created with 3 partitions"

# 3. Batch 1: plain idempotent producer. Batch 2: one transaction.
keys="alpha bravo charlie delta echo foxtrot golf hotel"
for k in $keys; do echo "$k:v1-$k"; done >"$tmp/batch1"
for k in $keys; do echo "$k:v2-$k"; done >"$tmp/batch2"
timeout 30 kcat -P -b "$boot" -t "$topic" -K: -H origin=smoke -H batch=1 \
        -X enable.idempotence=true -l "$tmp/batch1" ||
        fail "producing batch 1 failed"
timeout 60 kcat -P -b "$boot" -t "$topic" -K: -H origin=smoke -H batch=2 \
        -X transactional.id="kb-smoke-$run" -l "$tmp/batch2" 2>"$tmp/txn.err" ||
        fail "producing batch 2 in a transaction failed: $(cat "$tmp/txn.err")"
grep -q 'Transaction successfully committed' "$tmp/txn.err" ||
        fail "kcat did not report a committed transaction: $(cat "$tmp/txn.err")"
ok "produced 8 plain + 8 transactional keyed messages with headers"

# 4. Read everything back with a read_committed consumer.
timeout 60 kcat -C -b "$boot" -t "$topic" -o beginning -e -q \
        -X isolation.level=read_committed \
        -f '%p\t%o\t%k\t%s\t%h\n' >"$tmp/got" ||
        fail "consuming failed"
{
        for k in $keys; do printf '%s\tv1-%s\torigin=smoke,batch=1\n' "$k" "$k"; done
        for k in $keys; do printf '%s\tv2-%s\torigin=smoke,batch=2\n' "$k" "$k"; done
} | LC_ALL=C sort >"$tmp/want"
cut -f3- "$tmp/got" | LC_ALL=C sort >"$tmp/got.kvh"
diff -u "$tmp/want" "$tmp/got.kvh" >"$tmp/diff" ||
        fail "read_committed consumer got other messages than produced:
$(cat "$tmp/diff")"
ok "read_committed consumer got exactly the 16 messages, keys, values, headers"

# 5. Same key, same partition; within it, batch 1 before batch 2.
awk -F'\t' '
{
        split($4, v, "-")
        part[$3, v[1]] = $1; off[$3, v[1]] = $2; used[$1] = 1; keys[$3] = 1
}
END {
        bad = 0
        for (k in keys) {
                if (part[k, "v1"] != part[k, "v2"]) {
                        printf "key %s in partitions %s and %s\n", k, part[k, "v1"], part[k, "v2"]
                        bad = 1
                } else if (off[k, "v1"] + 0 >= off[k, "v2"] + 0) {
                        printf "key %s: v1 at offset %s is not before v2 at %s\n", k, off[k, "v1"], off[k, "v2"]
                        bad = 1
                }
        }
        n = 0
        for (p in used) n++
        if (n < 2) {
                printf "all keys landed in one partition\n"
                bad = 1
        }
        exit bad
}' "$tmp/got" >"$tmp/order" || fail "partitioning/order: $(cat "$tmp/order")"
ok "keys keep their partition and order ($(cut -f1 "$tmp/got" | sort -u | wc -l) partitions used)"

