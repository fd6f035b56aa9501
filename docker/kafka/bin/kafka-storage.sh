#!/bin/bash
# kafka-storage.sh as in Kafka's distribution: kafka.tools.StorageTool
exec "$(dirname "$0")/kafka-run-class.sh" kafka.tools.StorageTool "$@"
