# kafka.cmake -- a real Apache Kafka broker (KRaft, single node) as a CTest fixture
#
# How a suite uses it:
#   set_tests_properties(my.test PROPERTIES FIXTURES_REQUIRED kafka ...)
#   then read the broker's address (one line, 127.0.0.1:PORT) from
#     ${CMAKE_BINARY_DIR}/kafka-test/bootstrap
#   and create the topics the test needs (auto-creation is off), with names
#   unique to the test, since every suite of a ctest run shares the broker:
#     ${CMAKE_SOURCE_DIR}/scripts/kafka.sh topic ${CMAKE_BINARY_DIR}/kafka-test NAME:PARTS [NAME:PARTS...]
# Use the literal paths above: suites are included in alphabetical order, so
# the variables set below do not exist yet in a suite included before this one.
#
# CTest runs kafka.start before any test that requires the fixture and
# kafka.stop after the last of them, also under ctest -j (and with -R/-L
# selecting only some of them). If kafka.start fails, those tests are not run
# and ctest fails. The broker keeps its log in kafka-test/logs/server.log.
# Transactions work on this single node (replication factor 1 everywhere).
#
# The first kafka.start on a machine fetches ~45 MB of jars with Maven
# (scripts/kafka.sh fetch; cached in ~/.cache/kyc-bridge), hence its timeout.

set(KB_KAFKA_DIR ${CMAKE_BINARY_DIR}/kafka-test)
set(KB_KAFKA_SH ${CMAKE_SOURCE_DIR}/scripts/kafka.sh)

add_test(NAME kafka.start COMMAND bash ${KB_KAFKA_SH} start ${KB_KAFKA_DIR})
set_tests_properties(kafka.start PROPERTIES
  FIXTURES_SETUP kafka LABELS "kafka" TIMEOUT 600)

add_test(NAME kafka.stop COMMAND bash ${KB_KAFKA_SH} stop ${KB_KAFKA_DIR})
set_tests_properties(kafka.stop PROPERTIES
  FIXTURES_CLEANUP kafka LABELS "kafka" TIMEOUT 60)

add_test(NAME kafka.smoke
  COMMAND bash ${CMAKE_CURRENT_LIST_DIR}/kafka_smoke.sh ${KB_KAFKA_SH} ${KB_KAFKA_DIR})
set_tests_properties(kafka.smoke PROPERTIES
  FIXTURES_REQUIRED kafka LABELS "kafka;blackbox" TIMEOUT 120)
