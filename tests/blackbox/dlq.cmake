# dlq.cmake -- black-box test of `kyc-bridge dlq list|show`: real dead
# letters from an issuer fed bad share requests on a real Kafka broker
# (fixture `kafka`, see kafka.cmake) and the real sandbox, read back by the
# command. Work directories go to dlq-tmp/ in the build tree (kept when a
# test fails).
add_test(NAME dlq.TestDlq
  COMMAND ${KB_PYTHON3} -m unittest -v test_dlq.TestDlq
  WORKING_DIRECTORY ${CMAKE_SOURCE_DIR}/tests/blackbox)
set_tests_properties(dlq.TestDlq PROPERTIES
  FIXTURES_REQUIRED kafka LABELS "kafka;blackbox" TIMEOUT 600 COST 30
  ENVIRONMENT "KB_BIN=${KB_BIN};KB_KAFKA_DIR=${CMAKE_BINARY_DIR}/kafka-test;KB_TEST_TMP=${CMAKE_BINARY_DIR}/dlq-tmp;PYTHONDONTWRITEBYTECODE=1")
