# ops.cmake -- black-box tests of a daemon's operations endpoints
# (metrics.listen: /livez, /readyz, /metrics) on a real issuer, a real
# Kafka broker (fixture `kafka`, see kafka.cmake) and the sandbox. One
# CTest test per unittest class of test_ops.py; each uses its own topics,
# groups and transactional ids. Work directories go to ops-tmp/ in the
# build tree: removed when a test passes, kept when it fails.
# class, expected seconds (CTest starts the long ones first)
kb_kafka_classes(SUITE ops MODULE test_ops TMP ops-tmp
  CLASSES TestOpsEndpoints 40 TestReadyzBrokerLoss 45 TestParser 1 TestMetricsHelpers 1)
