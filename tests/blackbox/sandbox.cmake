# sandbox.cmake -- black-box tests of `kyc-bridge sandbox` over HTTP (Python 3 stdlib)
add_test(NAME blackbox.sandbox
  COMMAND ${KB_PYTHON3} ${CMAKE_SOURCE_DIR}/tests/blackbox/test_sandbox.py
          --kb-bin ${KB_BIN})
set_tests_properties(blackbox.sandbox PROPERTIES
  LABELS "blackbox;sanitizer" TIMEOUT 300 ENVIRONMENT "PYTHONDONTWRITEBYTECODE=1")
