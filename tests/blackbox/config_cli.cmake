# config_cli.cmake -- black-box test of `kyc-bridge config` (exit codes, file:line messages)
add_test(NAME blackbox.config_cli
  COMMAND ${KB_BASH} ${CMAKE_SOURCE_DIR}/tests/blackbox/config_cli.sh ${KB_BIN})
set_tests_properties(blackbox.config_cli PROPERTIES
  LABELS "blackbox;config;sanitizer" TIMEOUT 120)
