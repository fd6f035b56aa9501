# format.cmake -- the C sources follow .clang-format
# KB_CLANG_FORMAT: tests/CMakeLists.txt (configuration fails without it)
file(GLOB KB_FORMATTED CONFIGURE_DEPENDS
  ${CMAKE_SOURCE_DIR}/bridge/*/*.c ${CMAKE_SOURCE_DIR}/bridge/*/*.h
  ${CMAKE_SOURCE_DIR}/bridge/include/kyc-bridge/*.h
  ${CMAKE_SOURCE_DIR}/tests/unit/*.c ${CMAKE_SOURCE_DIR}/tests/unit/*.h
  ${CMAKE_SOURCE_DIR}/tests/tools/*.c ${CMAKE_SOURCE_DIR}/bench/*.c
  ${CMAKE_SOURCE_DIR}/tests/fuzz/*.c ${CMAKE_SOURCE_DIR}/tests/fuzz/*.h)
add_test(NAME blackbox.clang_format
  COMMAND ${KB_CLANG_FORMAT} --dry-run --Werror ${KB_FORMATTED})
set_tests_properties(blackbox.clang_format PROPERTIES LABELS blackbox TIMEOUT 120)
