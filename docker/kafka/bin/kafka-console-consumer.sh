#!/bin/bash
# kafka-console-consumer.sh as in Kafka's distribution: org.apache.kafka.tools.consumer.ConsoleConsumer
exec "$(dirname "$0")/kafka-run-class.sh" org.apache.kafka.tools.consumer.ConsoleConsumer "$@"
