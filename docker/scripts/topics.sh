#!/usr/bin/env bash
# topics.sh -- the `topics` job: create every topic of config/topics.txt
#
# Runs in the apache/kafka image (kafka-topics.sh from $KAFKA_BIN) or, via
# scripts/compose-local.sh, on the host with the same Kafka tools. Idempotent:
# a topic that exists is left alone, but its partition count must match.
#
# Environment:
#   KAFKA_BOOTSTRAP     broker address (required), e.g. kafka:9092
#   KAFKA_BIN           directory of the Kafka command-line tools (/opt/kafka/bin)
#   KAFKA_REPLICATION   replication factor of new topics (default 1)
#   KAFKA_TOOL_CONFIG   optional client properties file for TLS/SASL
#                       (passed as --command-config)
set -euo pipefail
kb_prog=topics
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"

: "${KAFKA_BOOTSTRAP:?KAFKA_BOOTSTRAP is not set}"
kbin=${KAFKA_BIN:-/opt/kafka/bin}
list=$(dirname "$0")/../config/topics.txt
replication=${KAFKA_REPLICATION:-1}
cfg=()
[ -z "${KAFKA_TOOL_CONFIG:-}" ] || cfg=(--command-config "$KAFKA_TOOL_CONFIG")

[ -r "$list" ] || kb_die "$list not readable"
topics() {
        "$kbin/kafka-topics.sh" --bootstrap-server "$KAFKA_BOOTSTRAP" "${cfg[@]}" "$@"
}

n=0
while read -r name parts rest; do
        case $name in '' | '#'*) continue ;; esac
        [[ $parts =~ ^[1-9][0-9]*$ ]] || kb_die "$list: $name: bad partition count '$parts'"
        args=(--create --if-not-exists --topic "$name" --partitions "$parts"
                --replication-factor "$replication")
        for c in $rest; do
                args+=(--config "$c")
        done
        topics "${args[@]}" >/dev/null
        # --if-not-exists says nothing about an existing topic's shape.
        got=$(topics --describe --topic "$name" | grep -c 'Partition: ' || true)
        [ "$got" = "$parts" ] ||
                kb_die "topic $name has $got partitions, $list wants $parts"
        kb_say "$name: $parts partition(s)${rest:+, $rest}"
        n=$((n + 1))
done <"$list"
kb_say "$n topics ready on $KAFKA_BOOTSTRAP"
