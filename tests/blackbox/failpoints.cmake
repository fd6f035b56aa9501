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
kb_kafka_classes(SUITE failpoints MODULE test_failpoints TMP failpoints-tmp
  CLASSES TestIssuerCommitCrash 30 TestWatchdog 40 TestBrokerFreezeMidTransaction 60)
