# readme.cmake -- the README's configuration reference equals the option table
add_test(NAME blackbox.readme_options
  COMMAND ${KB_PYTHON3} ${CMAKE_CURRENT_SOURCE_DIR}/blackbox/readme_check.py
          ${CMAKE_SOURCE_DIR}/README.md)
set_tests_properties(blackbox.readme_options PROPERTIES LABELS blackbox
  TIMEOUT 60 ENVIRONMENT "KB_BIN=${KB_BIN}")
