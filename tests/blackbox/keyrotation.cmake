# keyrotation.cmake -- the box key rotation runbook of docs/operations.md
# exercised on a real issuer and importer, a real Kafka broker (fixture
# `kafka`, see kafka.cmake) and the sandbox (test_keyrotation.py). Work
# directories go to keyrotation-tmp/ in the build tree: removed when the
# test passes, kept when it fails.
add_test(NAME keyrotation.TestKeyRotation
  COMMAND ${KB_PYTHON3} -m unittest -v test_keyrotation.TestKeyRotation
  WORKING_DIRECTORY ${CMAKE_SOURCE_DIR}/tests/blackbox)
set_tests_properties(keyrotation.TestKeyRotation PROPERTIES
  FIXTURES_REQUIRED kafka LABELS "kafka;blackbox;sanitizer" TIMEOUT 600 COST 60
  ENVIRONMENT "KB_BIN=${KB_BIN};KB_KAFKA_DIR=${CMAKE_BINARY_DIR}/kafka-test;KB_TEST_TMP=${CMAKE_BINARY_DIR}/keyrotation-tmp;PYTHONDONTWRITEBYTECODE=1")
