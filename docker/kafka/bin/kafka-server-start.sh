#!/bin/bash
# kafka-server-start.sh PROPERTIES as in Kafka's distribution: kafka.Kafka,
# logging to stdout (config/log4j2.properties), heap 512 MB unless
# KAFKA_HEAP_OPTS says otherwise.
[ $# -ge 1 ] || { echo "usage: kafka-server-start.sh server.properties [--override property=value]*" >&2; exit 1; }
export KAFKA_HEAP_OPTS=${KAFKA_HEAP_OPTS:--Xms128M -Xmx512M}
export KAFKA_LOG4J_OPTS=${KAFKA_LOG4J_OPTS:--Dlog4j2.configurationFile=/opt/kafka/config/log4j2.properties}
exec "$(dirname "$0")/kafka-run-class.sh" kafka.Kafka "$@"
