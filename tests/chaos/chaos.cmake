# chaos.cmake -- the chaos suite's quick mode (tests/chaos/chaos.py --quick):
# >= 1,000 share requests and >= 30 kills (SIGKILL and failpoints), broker
# SIGKILLs, vendor faults, lost answers and a frozen group member, on a
# broker of its own (scripts/kafka.sh, killed on purpose, so never the
# shared `kafka` fixture). A test build is needed: the failpoints. It runs
# alone (RUN_SERIAL): it kills processes on purpose and wants both cores
# for the recovery it measures. The seed is printed; --full is run on demand
# (scripts/chaos.sh --full). Its work directory is fixed so that the cleanup
# step can stop its broker whatever became of the test (a ctest timeout
# kills with SIGKILL, and the broker runs in a session of its own).
add_test(NAME chaos.quick
  COMMAND ${KB_PYTHON3} ${CMAKE_CURRENT_SOURCE_DIR}/chaos/chaos.py --quick
          --workdir ${CMAKE_BINARY_DIR}/chaos-work
          --report ${CMAKE_BINARY_DIR}/chaos-quick.json
  WORKING_DIRECTORY ${CMAKE_CURRENT_SOURCE_DIR}/chaos)
set_tests_properties(chaos.quick PROPERTIES
  LABELS "chaos;kafka" TIMEOUT 1500 RUN_SERIAL TRUE FIXTURES_REQUIRED chaos_broker
  ENVIRONMENT "KB_BIN=${KB_BIN};KB_TEST_TMP=${CMAKE_BINARY_DIR}/chaos-tmp;PYTHONDONTWRITEBYTECODE=1")
add_test(NAME chaos.broker_stop
  COMMAND bash ${CMAKE_SOURCE_DIR}/scripts/kafka.sh stop ${CMAKE_BINARY_DIR}/chaos-work/kafka)
set_tests_properties(chaos.broker_stop PROPERTIES
  LABELS "chaos" TIMEOUT 120 FIXTURES_CLEANUP chaos_broker)
