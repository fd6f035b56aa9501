# status_updates.cmake -- black-box tests of the importer's status updates
# (test_status_updates.py): an In Review import approved and declined by
# the partner through the sandbox's real signed webhooks into the
# importer's intake, late redeliveries of older statuses (also after a
# restart), a session the bridge did not import. Real Kafka broker (fixture
# `kafka`, see kafka.cmake), real sandbox. Work directories go to
# status-tmp/ in the build tree: removed when a test passes, kept (with
# every daemon and sandbox log) when it fails.
# class, expected seconds (CTest starts the long ones first)
kb_kafka_classes(SUITE status_updates MODULE test_status_updates TMP status-tmp
  CLASSES TestStatusUpdates 40)
