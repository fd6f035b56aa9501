#!/bin/bash
# kafka-topics.sh as in Kafka's distribution: org.apache.kafka.tools.TopicCommand
exec "$(dirname "$0")/kafka-run-class.sh" org.apache.kafka.tools.TopicCommand "$@"
