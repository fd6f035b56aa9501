# valgrind.cmake -- the end-to-end pipeline test with every kyc-bridge
# process (sandbox, issuer, importers) under valgrind memcheck: 0 errors,
# nothing definitely or indirectly lost (valgrind_e2e.py).
# Not in a sanitizer build: valgrind cannot run ASan binaries.
if(KB_SANITIZE)
  return()
endif()
add_test(NAME valgrind.e2e
  COMMAND ${KB_PYTHON3} ${CMAKE_CURRENT_SOURCE_DIR}/blackbox/valgrind_e2e.py
  WORKING_DIRECTORY ${CMAKE_CURRENT_SOURCE_DIR}/blackbox)
set_tests_properties(valgrind.e2e PROPERTIES
  FIXTURES_REQUIRED kafka LABELS "valgrind;kafka;blackbox" TIMEOUT 900 COST 60
  ENVIRONMENT "KB_BIN=${KB_BIN};KB_FORGE=$<TARGET_FILE:kb_forge>;KB_KAFKA_DIR=${CMAKE_BINARY_DIR}/kafka-test;KB_TEST_TMP=${CMAKE_BINARY_DIR}/pipeline-tmp;PYTHONDONTWRITEBYTECODE=1")
