#!/bin/bash
# kafka-console-producer.sh as in Kafka's distribution: org.apache.kafka.tools.ConsoleProducer
exec "$(dirname "$0")/kafka-run-class.sh" org.apache.kafka.tools.ConsoleProducer "$@"
