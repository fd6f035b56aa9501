# demo.cmake -- `kyc-bridge demo` both ways: embedded mock cluster, and the
# real test broker (fixture `kafka`). The checker asserts the last line, the
# exit status and, on the real broker, the records themselves.
add_test(NAME blackbox.demo_embedded
  COMMAND ${KB_PYTHON3} ${CMAKE_CURRENT_SOURCE_DIR}/blackbox/demo_check.py --count 7)
# also label "asan": scripts/test.sh runs it in the sanitizer build, where it
# drives the issuer, importers, pipeline and sandbox under ASan+LSan+UBSan
set_tests_properties(blackbox.demo_embedded PROPERTIES LABELS "blackbox;asan"
  TIMEOUT 180 ENVIRONMENT "KB_BIN=${KB_BIN}")
add_test(NAME kafka.demo_real_broker
  COMMAND ${KB_PYTHON3} ${CMAKE_CURRENT_SOURCE_DIR}/blackbox/demo_check.py --count 9
          --kafka-dir ${CMAKE_BINARY_DIR}/kafka-test)
set_tests_properties(kafka.demo_real_broker PROPERTIES LABELS "kafka;asan"
  TIMEOUT 240 FIXTURES_REQUIRED kafka ENVIRONMENT "KB_BIN=${KB_BIN}")
add_test(NAME blackbox.demo_keep
  COMMAND ${KB_PYTHON3} ${CMAKE_CURRENT_SOURCE_DIR}/blackbox/demo_check.py --count 4 --keep)
set_tests_properties(blackbox.demo_keep PROPERTIES LABELS blackbox
  TIMEOUT 240 ENVIRONMENT "KB_BIN=${KB_BIN}")
