#!/bin/bash
# kafka-run-class.sh CLASS [ARG...] -- run a Kafka class with the image's
# JRE and /opt/kafka/libs, as Kafka's own script does (the subset of its
# environment this stand-in honours: KAFKA_HEAP_OPTS, KAFKA_JVM_PERFORMANCE_OPTS,
# KAFKA_OPTS, KAFKA_LOG4J_OPTS, LOG_DIR).
base=/opt/kafka
[ $# -ge 1 ] || { echo "usage: kafka-run-class.sh CLASS [ARG...]" >&2; exit 1; }
heap=${KAFKA_HEAP_OPTS:--Xmx256M}
perf=${KAFKA_JVM_PERFORMANCE_OPTS:--XX:+UseSerialGC -XX:TieredStopAtLevel=1 -XX:-UsePerfData -Djava.awt.headless=true}
log4j=${KAFKA_LOG4J_OPTS:--Dlog4j2.configurationFile=$base/config/tools-log4j2.properties}
logdir=${LOG_DIR:-/tmp}
# shellcheck disable=SC2086 # option lists split on purpose
exec java $heap $perf $log4j -Dkafka.logs.dir="$logdir" ${KAFKA_OPTS:-} \
        -cp "$base/libs/*" "$@"
