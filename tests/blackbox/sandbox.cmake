# sandbox.cmake -- black-box tests of `kyc-bridge sandbox` over HTTP (Python 3 stdlib)
find_package(Python3 COMPONENTS Interpreter)
if(Python3_Interpreter_FOUND)
  add_test(NAME blackbox.sandbox
    COMMAND ${Python3_EXECUTABLE} ${CMAKE_SOURCE_DIR}/tests/blackbox/test_sandbox.py
            --kb-bin ${KB_BIN})
  set_tests_properties(blackbox.sandbox PROPERTIES
    LABELS blackbox TIMEOUT 300 ENVIRONMENT "PYTHONDONTWRITEBYTECODE=1")
else()
  message(WARNING "python3 not found: blackbox.sandbox is not registered")
endif()
