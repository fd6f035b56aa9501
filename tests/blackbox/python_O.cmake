# python_O.cmake -- the black-box checks still fail under `python3 -O`, which
# strips every assert statement: they check with explicit code instead
# (kbharness.check, envelope_v1_ref.need, readme_check.check). Two checks
# are run with -O on an input made to fail only the checks that used to be
# asserts, and must still fail:
#   - envelope_v1_ref.py on a copy of the vectors whose unknown.sign.key (a
#     key no opener uses, only the key self-check reads it) has a wrong key_id;
#   - readme_check.py on a copy of README.md whose example config uses an
#     option the table lacks.
# Included from tests/CMakeLists.txt, this file registers the test; run with
# `cmake -P` (which is what the test does), it is the test.
if(NOT CMAKE_SCRIPT_MODE_FILE)
  add_test(NAME blackbox.checks_survive_python_O
    COMMAND ${CMAKE_COMMAND} -DPY=${KB_PYTHON3} -DSRC=${CMAKE_SOURCE_DIR}
            -DKB_BIN=${KB_BIN} -DWORK=${CMAKE_CURRENT_BINARY_DIR}/python-O
            -P ${CMAKE_CURRENT_LIST_FILE})
  set_tests_properties(blackbox.checks_survive_python_O PROPERTIES
    LABELS blackbox TIMEOUT 120 ENVIRONMENT "PYTHONDONTWRITEBYTECODE=1")
  return()
endif()

file(REMOVE_RECURSE ${WORK})
file(MAKE_DIRECTORY ${WORK})

# kb_expect_fail(NAME WANT CMD...): CMD must exit non-zero and print WANT.
function(kb_expect_fail name want)
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE rc OUTPUT_VARIABLE out
                  ERROR_VARIABLE out)
  if(rc EQUAL 0)
    message(FATAL_ERROR "${name}: passed under python -O on a bad input:\n${out}")
  endif()
  string(FIND "${out}" "${want}" at)
  if(at EQUAL -1)
    message(FATAL_ERROR "${name}: exit ${rc} without '${want}':\n${out}")
  endif()
  message(STATUS "${name}: refused under python -O, as it must be (${want})")
endfunction()

# The untouched inputs pass under -O: a failure below is the tampering's.
execute_process(COMMAND ${PY} -O ${SRC}/tests/blackbox/envelope_v1_ref.py
                        ${SRC}/tests/vectors/envelope-v1
                RESULT_VARIABLE rc OUTPUT_QUIET ERROR_QUIET)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "envelope_v1_ref.py -O fails on the committed vectors")
endif()

file(COPY ${SRC}/tests/vectors/envelope-v1 DESTINATION ${WORK})
set(key ${WORK}/envelope-v1/unknown.sign.key)
file(READ ${key} text)
string(REGEX REPLACE "\nkey_id=[0-9a-f]+\n" "\nkey_id=0123456789abcdef\n" bad "${text}")
if(bad STREQUAL text)
  message(FATAL_ERROR "could not tamper with ${key}")
endif()
file(WRITE ${key} "${bad}")
kb_expect_fail(envelope_v1_ref "unknown.sign.key: wrong key_id"
  ${PY} -O ${SRC}/tests/blackbox/envelope_v1_ref.py ${WORK}/envelope-v1)

file(READ ${SRC}/README.md readme)
file(WRITE ${WORK}/README.md "${readme}\n```\nkb_no_such_option = 1\n```\n")
kb_expect_fail(readme_check "unknown option kb_no_such_option"
  ${CMAKE_COMMAND} -E env KB_BIN=${KB_BIN}
  ${PY} -O ${SRC}/tests/blackbox/readme_check.py ${WORK}/README.md)

file(REMOVE_RECURSE ${WORK})
