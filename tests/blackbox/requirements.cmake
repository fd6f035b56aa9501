# requirements.cmake -- without python3 the test suite is not configured at
# all (tests/CMakeLists.txt stops with a message saying what to do), rather
# than configured with fewer tests. The test configures a scratch tree with
# Python hidden (CMAKE_DISABLE_FIND_PACKAGE_Python3) and requires that
# failure and that message; and the same tree with -DKB_BUILD_TESTS=OFF,
# which must configure.
# Included from tests/CMakeLists.txt, this file registers the test; run with
# `cmake -P` (which is what the test does), it is the test.
if(NOT CMAKE_SCRIPT_MODE_FILE)
  add_test(NAME blackbox.tests_require_python
    COMMAND ${CMAKE_COMMAND} -DSRC=${CMAKE_SOURCE_DIR} -DGEN=${CMAKE_GENERATOR}
            -DCC=${CMAKE_C_COMPILER}
            -DWORK=${CMAKE_CURRENT_BINARY_DIR}/require-python
            -P ${CMAKE_CURRENT_LIST_FILE})
  set_tests_properties(blackbox.tests_require_python PROPERTIES
    LABELS blackbox TIMEOUT 120)
  return()
endif()

set(want "python3 is required for the test suite")
file(REMOVE_RECURSE ${WORK})
execute_process(COMMAND ${CMAKE_COMMAND} -S ${SRC} -B ${WORK} -G ${GEN}
                        -DCMAKE_C_COMPILER=${CC}
                        -DCMAKE_DISABLE_FIND_PACKAGE_Python3=ON
                RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE out)
if(rc EQUAL 0)
  message(FATAL_ERROR "the tests were configured without python3:\n${out}")
endif()
string(FIND "${out}" "${want}" at)
if(at EQUAL -1)
  message(FATAL_ERROR "configuration failed, but without '${want}':\n${out}")
endif()
message(STATUS "without python3: configuration refused ('${want}')")

file(REMOVE_RECURSE ${WORK})
execute_process(COMMAND ${CMAKE_COMMAND} -S ${SRC} -B ${WORK} -G ${GEN}
                        -DCMAKE_C_COMPILER=${CC}
                        -DCMAKE_DISABLE_FIND_PACKAGE_Python3=ON
                        -DKB_BUILD_TESTS=OFF
                RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE out)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "without python3 and with -DKB_BUILD_TESTS=OFF the "
                      "configuration must work:\n${out}")
endif()
message(STATUS "without python3, -DKB_BUILD_TESTS=OFF: configured")
file(REMOVE_RECURSE ${WORK})
