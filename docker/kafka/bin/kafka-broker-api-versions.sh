#!/bin/bash
# kafka-broker-api-versions.sh as in Kafka's distribution: org.apache.kafka.tools.BrokerApiVersionsCommand
exec "$(dirname "$0")/kafka-run-class.sh" org.apache.kafka.tools.BrokerApiVersionsCommand "$@"
