#!/bin/bash
# /etc/kafka/docker/run -- the launcher of kyc-bridge-kafka:local (the
# offline stand-in for apache/kafka): the official image's way of
# configuring a broker from the environment, for a single node.
#
# Every variable KAFKA_NAME=value (except the JVM/logging ones below) becomes
# the broker property name.in.lower.case=value: "_" -> ".", "__" -> "_",
# "___" -> "-" (KAFKA_NODE_ID -> node.id, KAFKA_LOG_DIRS -> log.dirs). None
# set: the official image's default single-node KRaft config (localhost).
# CLUSTER_ID: the cluster id the storage is formatted with, once (a log
# directory that holds meta.properties is left as it is, also one formatted
# with another id: the broker then refuses it, as the official image does).
# Then runs the broker in the foreground (exec; logs on stdout).
set -euo pipefail
props=/opt/kafka/config/server.properties
skip=" KAFKA_VERSION KAFKA_HEAP_OPTS KAFKA_LOG4J_OPTS KAFKA_OPTS KAFKA_JMX_OPTS KAFKA_JVM_PERFORMANCE_OPTS KAFKA_GC_LOG_OPTS KAFKA_LOG4J_ROOT_LOGLEVEL KAFKA_LOG4J_LOGGERS KAFKA_TOOLS_LOG4J_LOGLEVEL KAFKA_JMX_HOSTNAME KAFKA_JMX_PORT "
say() { echo "kafka-launch: $*" >&2; }

tmp=$(mktemp)
n=0
while IFS='=' read -r -d '' name value; do
        case $name in KAFKA_*) ;; *) continue ;; esac
        case $skip in *" $name "*) continue ;; esac
        key=${name#KAFKA_}
        key=${key,,}
        key=${key//___/$'\x01'}
        key=${key//__/$'\x02'}
        key=${key//_/.}
        key=${key//$'\x01'/-}
        key=${key//$'\x02'/_}
        printf '%s=%s\n' "$key" "$value" >>"$tmp"
        n=$((n + 1))
done < <(env -0)
if [ "$n" -eq 0 ]; then
        say "no KAFKA_* variables: the default single-node configuration (localhost:9092)"
        cat >"$tmp" <<'PROPS'
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@localhost:9093
listeners=PLAINTEXT://:9092,CONTROLLER://:9093
advertised.listeners=PLAINTEXT://localhost:9092
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
log.dirs=/tmp/kraft-combined-logs
num.partitions=1
offsets.topic.replication.factor=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
PROPS
fi
{
        echo "# written by /etc/kafka/docker/run from the KAFKA_* environment"
        LC_ALL=C sort "$tmp"
} >"$props"
rm -f "$tmp"

logdirs=$(sed -n 's/^log\.dirs=//p' "$props")
[ -n "$logdirs" ] || logdirs=$(sed -n 's/^log\.dir=//p' "$props")
[ -n "$logdirs" ] || { say "no log.dirs (KAFKA_LOG_DIRS) in the configuration"; exit 1; }
first=${logdirs%%,*}
for d in ${logdirs//,/ }; do
        mkdir -p "$d" 2>/dev/null || true
        if ! [ -d "$d" ] || ! [ -w "$d" ]; then
                say "$d is not a writable directory for uid $(id -u) (a volume made by another image? docker compose down -v)"
                exit 1
        fi
done
cluster_id=${CLUSTER_ID:-5L6g3nShT-eMCtK--X86sw}
if [ -f "$first/meta.properties" ]; then
        say "storage in $first already formatted (cluster $(sed -n 's/^cluster\.id=//p' "$first/meta.properties"))"
else
        say "formatting the storage in $logdirs for cluster $cluster_id"
        KAFKA_LOG4J_OPTS=${KAFKA_LOG4J_OPTS:--Dlog4j2.configurationFile=/opt/kafka/config/tools-log4j2.properties} \
                /opt/kafka/bin/kafka-storage.sh format --cluster-id "$cluster_id" \
                --config "$props" --ignore-formatted
fi
exec /opt/kafka/bin/kafka-server-start.sh "$props"
