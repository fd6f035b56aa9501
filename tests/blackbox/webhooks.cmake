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
kb_kafka_classes(SUITE webhooks MODULE test_webhooks TMP webhooks-tmp
  CLASSES TestWebhookRules 40 TestWebhookOutage 45 TestWebhookRotation 30
  TestWebhookRefusals 20 TestWebhookShutdown 20 TestWebhookConfig 5)
