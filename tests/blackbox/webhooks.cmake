# webhooks.cmake -- black-box tests of the webhook intake and the issuer's
# sharing rules: the sandbox's real signed deliveries, through a recording
# proxy, into a real issuer (and importer) on a real Kafka broker (fixture
# `kafka`, see kafka.cmake). TestWebhookOutage also starts a broker of its
# own (scripts/kafka.sh, under webhooks-tmp/) and stops it; the shared one
# is never stopped. One CTest test per unittest class of test_webhooks.py;
# each uses its own topics, groups and transactional ids. Work directories
# go to webhooks-tmp/ in the build tree: removed when a test passes, kept
# (with every daemon and sandbox log) when it fails.
# class, expected seconds (CTest starts the long ones first)
set(_kb_webhooks_tests
  TestWebhookRules 40 TestWebhookOutage 45 TestWebhookRotation 30
  TestWebhookRefusals 20 TestWebhookShutdown 20 TestWebhookConfig 5)
list(LENGTH _kb_webhooks_tests _n)
math(EXPR _last "${_n} - 1")
foreach(_i RANGE 0 ${_last} 2)
  math(EXPR _j "${_i} + 1")
  list(GET _kb_webhooks_tests ${_i} _cls)
  list(GET _kb_webhooks_tests ${_j} _cost)
  add_test(NAME webhooks.${_cls}
    COMMAND ${KB_PYTHON3} -m unittest -v test_webhooks.${_cls}
    WORKING_DIRECTORY ${CMAKE_SOURCE_DIR}/tests/blackbox)
  set_tests_properties(webhooks.${_cls} PROPERTIES
    FIXTURES_REQUIRED kafka LABELS "kafka;blackbox;sanitizer" TIMEOUT 600 COST ${_cost}
    ENVIRONMENT "KB_BIN=${KB_BIN};KB_KAFKA_DIR=${CMAKE_BINARY_DIR}/kafka-test;KB_TEST_TMP=${CMAKE_BINARY_DIR}/webhooks-tmp;PYTHONDONTWRITEBYTECODE=1")
endforeach()
