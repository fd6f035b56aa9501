# keys_cli.cmake -- keygen and inspect through the real binary, against the
# committed envelope v1 vectors
add_test(NAME blackbox.keys_cli
  COMMAND ${KB_PYTHON3} ${CMAKE_SOURCE_DIR}/tests/blackbox/keys_cli.py
          ${KB_BIN} ${CMAKE_SOURCE_DIR}/tests/vectors/envelope-v1)
set_tests_properties(blackbox.keys_cli PROPERTIES
  LABELS "blackbox;keys;sanitizer" TIMEOUT 180)
# An independent pure-Python reader written from docs/envelope.md must reach
# the same result as the C library on every committed vector.
add_test(NAME blackbox.envelope_v1_ref
  COMMAND ${KB_PYTHON3} ${CMAKE_SOURCE_DIR}/tests/blackbox/envelope_v1_ref.py
          ${CMAKE_SOURCE_DIR}/tests/vectors/envelope-v1)
set_tests_properties(blackbox.envelope_v1_ref PROPERTIES
  LABELS "blackbox;vectors" TIMEOUT 120)
