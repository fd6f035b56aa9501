# dlq.cmake -- black-box tests of `kyc-bridge dlq list|show|redrive`: real dead
# letters from an issuer fed bad share requests on a real Kafka broker
# (fixture `kafka`, see kafka.cmake) and the real sandbox, read back by the
# command. Work directories go to dlq-tmp/ in the build tree (kept when a
# test fails).
add_test(NAME dlq.TestDlq
  COMMAND ${KB_PYTHON3} -m unittest -v test_dlq.TestDlq
  WORKING_DIRECTORY ${CMAKE_SOURCE_DIR}/tests/blackbox)
set_tests_properties(dlq.TestDlq PROPERTIES
  FIXTURES_REQUIRED kafka LABELS "kafka;blackbox;sanitizer" TIMEOUT 600 COST 30
  ENVIRONMENT "KB_BIN=${KB_BIN};KB_KAFKA_DIR=${CMAKE_BINARY_DIR}/kafka-test;KB_TEST_TMP=${CMAKE_BINARY_DIR}/dlq-tmp;PYTHONDONTWRITEBYTECODE=1")

# `kyc-bridge dlq redrive`: an importer lacking its partner dead-letters
# envelopes; after the fix they are redriven (selection, refusals, runs
# killed inside and between transactions and a run stopped then fenced by a
# second one of another consumer group -- the documented test hook
# KB_TEST_REDRIVE_KILL, test builds only -- two dead letters of one input,
# one without source.partition) and imported exactly once.
add_test(NAME dlq.TestRedrive
  COMMAND ${KB_PYTHON3} -m unittest -v test_dlq.TestRedrive
  WORKING_DIRECTORY ${CMAKE_SOURCE_DIR}/tests/blackbox)
set_tests_properties(dlq.TestRedrive PROPERTIES
  FIXTURES_REQUIRED kafka LABELS "kafka;blackbox;sanitizer" TIMEOUT 600 COST 60
  ENVIRONMENT "KB_BIN=${KB_BIN};KB_KAFKA_DIR=${CMAKE_BINARY_DIR}/kafka-test;KB_TEST_TMP=${CMAKE_BINARY_DIR}/dlq-tmp;PYTHONDONTWRITEBYTECODE=1")
