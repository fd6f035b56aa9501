# status_updates.cmake -- black-box tests of the importer's status updates
# (test_status_updates.py): an In Review import approved and declined by
# the partner through the sandbox's real signed webhooks into the
# importer's intake, late redeliveries of older statuses (also after a
# restart), a session the bridge did not import. Real Kafka broker (fixture
# `kafka`, see kafka.cmake), real sandbox. Work directories go to
# status-tmp/ in the build tree: removed when a test passes, kept (with
# every daemon and sandbox log) when it fails.
# class, expected seconds (CTest starts the long ones first)
set(_kb_status_tests TestStatusUpdates 40)
list(LENGTH _kb_status_tests _n)
math(EXPR _last "${_n} - 1")
foreach(_i RANGE 0 ${_last} 2)
  math(EXPR _j "${_i} + 1")
  list(GET _kb_status_tests ${_i} _cls)
  list(GET _kb_status_tests ${_j} _cost)
  add_test(NAME status_updates.${_cls}
    COMMAND ${KB_PYTHON3} -m unittest -v test_status_updates.${_cls}
    WORKING_DIRECTORY ${CMAKE_SOURCE_DIR}/tests/blackbox)
  set_tests_properties(status_updates.${_cls} PROPERTIES
    FIXTURES_REQUIRED kafka LABELS "kafka;blackbox;sanitizer" TIMEOUT 600 COST ${_cost}
    ENVIRONMENT "KB_BIN=${KB_BIN};KB_KAFKA_DIR=${CMAKE_BINARY_DIR}/kafka-test;KB_TEST_TMP=${CMAKE_BINARY_DIR}/status-tmp;PYTHONDONTWRITEBYTECODE=1")
endforeach()
