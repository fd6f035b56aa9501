#!/usr/bin/env bash
# watch.sh -- the `watch` service: print what comes out of the bridge
#
# One kafka-console-consumer.sh per topic of WATCH_TOPICS, from the beginning,
# reading committed records only (--isolation-level read_committed: the
# daemons write in transactions, and an aborted attempt must not show), with
# the consumer group protocol of KIP-848 (group.protocol=consumer; with the
# classic one, Kafka 4's console consumer prints an advert for it on each
# start, a line per topic in the output a person reads).
# Each line: TOPIC, the record key, a tab, the record (JSON). Runs until
# stopped (Ctrl-C, docker compose stop watch). This is what a partner's own
# consumer group would read.
#
# Environment:
#   KAFKA_BOOTSTRAP    broker address (required)
#   WATCH_TOPICS       topics to follow, space-separated (required): the
#                      importer's output and both dead-letter topics
#   KAFKA_BIN          directory of the Kafka tools (default /opt/kafka/bin)
#   KAFKA_TOOL_CONFIG  optional client properties file (--command-config)
set -euo pipefail
kb_prog=watch
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"

: "${KAFKA_BOOTSTRAP:?KAFKA_BOOTSTRAP is not set}"
: "${WATCH_TOPICS:?WATCH_TOPICS is not set}"
kbin=${KAFKA_BIN:-/opt/kafka/bin}
cfg=()
[ -z "${KAFKA_TOOL_CONFIG:-}" ] || cfg=(--command-config "$KAFKA_TOOL_CONFIG")

# Stop every consumer with us (they are in our process group).
trap 'trap "" TERM INT; kill -TERM 0 2>/dev/null; exit 0' TERM INT

width=0
for t in $WATCH_TOPICS; do
        [ "${#t}" -le "$width" ] || width=${#t}
done
for t in $WATCH_TOPICS; do
        "$kbin/kafka-console-consumer.sh" --bootstrap-server "$KAFKA_BOOTSTRAP" \
                "${cfg[@]}" --topic "$t" --from-beginning \
                --isolation-level read_committed \
                --command-property group.protocol=consumer \
                --formatter-property print.key=true |
                while IFS= read -r line; do
                        printf '%-*s %s\n' "$width" "$t" "$line"
                done &
done
kb_say "following $WATCH_TOPICS on $KAFKA_BOOTSTRAP (read_committed)"
# A consumer that ends (broker gone for good, bad option) ends the watch.
wait -n || true
kb_die "a consumer stopped"
