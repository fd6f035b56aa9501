# ops.cmake -- black-box tests of a daemon's operations endpoints
# (metrics.listen: /livez, /readyz, /metrics) on a real issuer, a real
# Kafka broker (fixture `kafka`, see kafka.cmake) and the sandbox. One
# CTest test per unittest class of test_ops.py; each uses its own topics,
# groups and transactional ids. Work directories go to ops-tmp/ in the
# build tree: removed when a test passes, kept when it fails.
# class, expected seconds (CTest starts the long ones first)
set(_kb_ops_tests TestOpsEndpoints 40 TestReadyzBrokerLoss 45 TestParser 1
  TestMetricsHelpers 1)
list(LENGTH _kb_ops_tests _n)
math(EXPR _last "${_n} - 1")
foreach(_i RANGE 0 ${_last} 2)
  math(EXPR _j "${_i} + 1")
  list(GET _kb_ops_tests ${_i} _cls)
  list(GET _kb_ops_tests ${_j} _cost)
  add_test(NAME ops.${_cls}
    COMMAND ${KB_PYTHON3} -m unittest -v test_ops.${_cls}
    WORKING_DIRECTORY ${CMAKE_SOURCE_DIR}/tests/blackbox)
  set_tests_properties(ops.${_cls} PROPERTIES
    FIXTURES_REQUIRED kafka LABELS "kafka;blackbox;sanitizer" TIMEOUT 600 COST ${_cost}
    ENVIRONMENT "KB_BIN=${KB_BIN};KB_KAFKA_DIR=${CMAKE_BINARY_DIR}/kafka-test;KB_TEST_TMP=${CMAKE_BINARY_DIR}/ops-tmp;PYTHONDONTWRITEBYTECODE=1")
endforeach()
