# keys_cli.cmake -- keygen and inspect through the real binary, against the
# committed envelope v1 vectors
find_program(KB_PYTHON3 python3)
if(KB_PYTHON3)
  add_test(NAME blackbox.keys_cli
    COMMAND ${KB_PYTHON3} ${CMAKE_SOURCE_DIR}/tests/blackbox/keys_cli.py
            ${KB_BIN} ${CMAKE_SOURCE_DIR}/tests/vectors/envelope-v1)
  set_tests_properties(blackbox.keys_cli PROPERTIES
    LABELS "blackbox;keys" TIMEOUT 180)
endif()
