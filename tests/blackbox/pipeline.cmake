# pipeline.cmake -- black-box tests of the issuer and importer daemons on a
# real Kafka broker (fixture `kafka`, see kafka.cmake) and the real sandbox:
# end to end, every dead-letter reason, restarts (SIGTERM/SIGKILL), consumer
# group hand-over, issuer dedup, token leak scan, config validation.
# One CTest test per unittest class of test_pipeline.py, so ctest -j can
# overlap them; each test uses its own topics, groups and transactional ids.
# Work directories go to pipeline-tmp/ in the build tree: removed when a test
# passes, kept (with every daemon and sandbox log) when it fails.
# class, expected seconds (CTest starts the long ones first)
kb_kafka_classes(SUITE pipeline MODULE test_pipeline TMP pipeline-tmp TIMEOUT 900
  ENV "KB_FORGE=$<TARGET_FILE:kb_forge>"
  CLASSES TestRestartImporter 75 TestReconcile 60 TestNoPlaintextTokens 55
  TestRestartIssuer 45 TestIssuerDedup 30 TestImporterGroup 32
  TestEndToEnd 18 TestDeadLetters 30 TestConfigValidation 2 TestStopMidRebalance 10)
