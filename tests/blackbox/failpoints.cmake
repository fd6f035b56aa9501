# failpoints.cmake -- failpoints (docs/failpoints.md) from outside:
# - blackbox.failpoints_release_absent: a KB_BUILD_TESTS=OFF build of the
#   same sources (failpoints-release/ in the build tree, incremental after
#   the first run) has no failpoint name, no KB_FAILPOINTS and no
#   kb_failpoint* symbol in its kyc-bridge nor in the libraries that hold
#   spots; this build's kyc-bridge has them all (the control).
# - failpoints.TestIssuerCommitCrash: the issuer with
#   txn.before_commit=crash@1 on the real broker (fixture `kafka`) and the
#   sandbox dies by SIGKILL at its first commit, says which failpoint, and
#   once restarted without failpoints publishes each request exactly once.
add_test(NAME blackbox.failpoints_release_absent
  COMMAND ${KB_PYTHON3} -m unittest -v test_failpoints.TestReleaseBuild
  WORKING_DIRECTORY ${CMAKE_SOURCE_DIR}/tests/blackbox)
set_tests_properties(blackbox.failpoints_release_absent PROPERTIES
  LABELS blackbox TIMEOUT 900 COST 60
  ENVIRONMENT "KB_BIN=${KB_BIN};KB_SOURCE_DIR=${CMAKE_SOURCE_DIR};KB_RELEASE_DIR=${CMAKE_BINARY_DIR}/failpoints-release;KB_CMAKE=${CMAKE_COMMAND};KB_CMAKE_GENERATOR=${CMAKE_GENERATOR};KB_CC=${CMAKE_C_COMPILER};KB_BUILD_TYPE=${CMAKE_BUILD_TYPE};PYTHONDONTWRITEBYTECODE=1")

# - failpoints.TestWatchdog: a commit held past its watchdog limit by
#   txn.before_commit=delay ends the issuer (exit status 1, the call named)
#   at the limit; restarted, it publishes each request exactly once.
# - failpoints.TestBrokerFreezeMidTransaction: a broker of the test's own
#   frozen (SIGSTOP) with the issuer's transaction open: the transactional
#   calls return within their timeouts (exit status 1, the watchdog silent);
#   after the broker's return a restart publishes each request once.
# (class, cost) pairs
set(_kb_fp_tests TestIssuerCommitCrash 30 TestWatchdog 40
  TestBrokerFreezeMidTransaction 60)
list(LENGTH _kb_fp_tests _n)
math(EXPR _last "${_n} - 1")
foreach(_i RANGE 0 ${_last} 2)
  math(EXPR _j "${_i} + 1")
  list(GET _kb_fp_tests ${_i} _cls)
  list(GET _kb_fp_tests ${_j} _cost)
  add_test(NAME failpoints.${_cls}
    COMMAND ${KB_PYTHON3} -m unittest -v test_failpoints.${_cls}
    WORKING_DIRECTORY ${CMAKE_SOURCE_DIR}/tests/blackbox)
  set_tests_properties(failpoints.${_cls} PROPERTIES
    FIXTURES_REQUIRED kafka LABELS "kafka;blackbox;sanitizer" TIMEOUT 600 COST ${_cost}
    ENVIRONMENT "KB_BIN=${KB_BIN};KB_KAFKA_DIR=${CMAKE_BINARY_DIR}/kafka-test;KB_TEST_TMP=${CMAKE_BINARY_DIR}/failpoints-tmp;PYTHONDONTWRITEBYTECODE=1")
endforeach()
