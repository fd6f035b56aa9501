# trace.cmake -- black-box test of the W3C trace context through the issuer
# and importer daemons on a real Kafka broker (fixture `kafka`, see
# kafka.cmake) and the real sandbox behind a recording proxy: traceparent
# carried or started, tracestate and kb-requested-at carried, vendor calls,
# log lines and dead letters (test_trace.py). Work directories go to
# trace-tmp/ in the build tree (kept when the test fails).
add_test(NAME pipeline.TestTrace
  COMMAND ${KB_PYTHON3} -m unittest -v test_trace.TestTrace
  WORKING_DIRECTORY ${CMAKE_SOURCE_DIR}/tests/blackbox)
set_tests_properties(pipeline.TestTrace PROPERTIES
  FIXTURES_REQUIRED kafka LABELS "kafka;blackbox;sanitizer" TIMEOUT 600 COST 25
  ENVIRONMENT "KB_BIN=${KB_BIN};KB_FORGE=$<TARGET_FILE:kb_forge>;KB_KAFKA_DIR=${CMAKE_BINARY_DIR}/kafka-test;KB_TEST_TMP=${CMAKE_BINARY_DIR}/trace-tmp;PYTHONDONTWRITEBYTECODE=1")
