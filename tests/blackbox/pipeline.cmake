# pipeline.cmake -- black-box tests of the issuer and importer daemons on a
# real Kafka broker (fixture `kafka`, see kafka.cmake) and the real sandbox:
# end to end, every dead-letter reason, restarts (SIGTERM/SIGKILL), consumer
# group hand-over, issuer dedup, token leak scan, config validation.
# One CTest test per unittest class of test_pipeline.py, so ctest -j can
# overlap them; each test uses its own topics, groups and transactional ids.
# Work directories go to pipeline-tmp/ in the build tree: removed when a test
# passes, kept (with every daemon and sandbox log) when it fails.
# class, expected seconds (CTest starts the long ones first)
set(_kb_pipeline_tests
  TestRestartImporter 75 TestReconcile 60 TestNoPlaintextTokens 55
  TestRestartIssuer 45 TestIssuerDedup 30 TestImporterGroup 32
  TestEndToEnd 18 TestDeadLetters 30 TestConfigValidation 2)
list(LENGTH _kb_pipeline_tests _n)
math(EXPR _last "${_n} - 1")
foreach(_i RANGE 0 ${_last} 2)
  math(EXPR _j "${_i} + 1")
  list(GET _kb_pipeline_tests ${_i} _cls)
  list(GET _kb_pipeline_tests ${_j} _cost)
  add_test(NAME pipeline.${_cls}
    COMMAND ${KB_PYTHON3} -m unittest -v test_pipeline.${_cls}
    WORKING_DIRECTORY ${CMAKE_SOURCE_DIR}/tests/blackbox)
  set_tests_properties(pipeline.${_cls} PROPERTIES
    FIXTURES_REQUIRED kafka LABELS "kafka;blackbox;sanitizer" TIMEOUT 900 COST ${_cost}
    ENVIRONMENT "KB_BIN=${KB_BIN};KB_FORGE=$<TARGET_FILE:kb_forge>;KB_KAFKA_DIR=${CMAKE_BINARY_DIR}/kafka-test;KB_TEST_TMP=${CMAKE_BINARY_DIR}/pipeline-tmp;PYTHONDONTWRITEBYTECODE=1")
endforeach()
