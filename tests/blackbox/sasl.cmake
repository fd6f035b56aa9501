# sasl.cmake -- the daemons on a broker that wants SASL_SSL and ACLs
# (test_sasl.py, docs/kafka-security.md).
#
# Fixture `kafka_sasl`: a broker of its own, scripts/kafka.sh start
# ${CMAKE_BINARY_DIR}/kafka-sasl-test --sasl-ssl (Kafka 4: a SASL_SSL
# listener on 127.0.0.1 with SCRAM-SHA-512 and PLAIN over TLS, a CA and
# certificates made by openssl, StandardAuthorizer, users admin/issuer/
# importer). Its set-up also lists the ACLs once with kafka-acls, which
# fetches the Kafka tools' jars (scripts/kafka.sh acl) before the tests need
# them. Fixture `kafka_sasl_scram`: the same with --kafka-version
# ${KB_SASL_SCRAM_KAFKA} (Kafka 3.9 accepts the SCRAM of librdkafka before
# 2.6.1, Kafka 4 does not), in kafka-sasl-scram-test. The shared plaintext
# broker (fixture `kafka`) is not touched.
#
#   sasl.pipeline_scram  issuer + importer over SCRAM-SHA-512, with ACLs,
#                        on the Kafka 3.9 broker
#   sasl.pipeline_plain  the same over PLAIN (over TLS), on Kafka 4
#   sasl.scram_kafka4    SCRAM-SHA-512 on Kafka 4: the pipeline passes with
#                        librdkafka >= 2.6.1; with an older one (Debian 12:
#                        2.0.2) the broker refuses the login and the issuer
#                        stops within 20 s, saying so
#   sasl.listener        no plaintext or TLS-only client gets in
#   sasl.acl_denials     an issuer or importer denied a topic, its group,
#                        its transactional id, or logged in as the other
#                        daemon, stops within 20 s with an error naming the
#                        authorization failure, what and whom it refused
#   sasl.wrong_password  a refused login (wrong password, unknown user)
#                        stops the daemon the same way
#   sasl.no_broker_sigterm  nothing listens at the broker address: the
#                        start waits (bounded) and a SIGTERM stops it at once
# Work directories go to sasl-tmp/ in the build tree (kept when a test fails).

set(_kb_sasl_dir ${CMAKE_BINARY_DIR}/kafka-sasl-test)
set(_kb_sasl_scram_dir ${CMAKE_BINARY_DIR}/kafka-sasl-scram-test)
set(_kb_sasl_sh ${CMAKE_SOURCE_DIR}/scripts/kafka.sh)
set(KB_SASL_SCRAM_KAFKA 3.9.1)

add_test(NAME sasl.start
  COMMAND bash -c "bash \"$0\" start \"$1\" --sasl-ssl && bash \"$0\" acl \"$1\" --list >/dev/null"
          ${_kb_sasl_sh} ${_kb_sasl_dir})
set_tests_properties(sasl.start PROPERTIES
  FIXTURES_SETUP kafka_sasl LABELS "kafka;sasl;sanitizer" TIMEOUT 900)

add_test(NAME sasl.stop COMMAND bash ${_kb_sasl_sh} stop ${_kb_sasl_dir})
set_tests_properties(sasl.stop PROPERTIES
  FIXTURES_CLEANUP kafka_sasl LABELS "kafka;sasl;sanitizer" TIMEOUT 60)

add_test(NAME sasl.start_scram
  COMMAND bash ${_kb_sasl_sh} start ${_kb_sasl_scram_dir} --sasl-ssl
          --kafka-version ${KB_SASL_SCRAM_KAFKA})
set_tests_properties(sasl.start_scram PROPERTIES
  FIXTURES_SETUP kafka_sasl_scram LABELS "kafka;sasl;sanitizer" TIMEOUT 900)

add_test(NAME sasl.stop_scram COMMAND bash ${_kb_sasl_sh} stop ${_kb_sasl_scram_dir})
set_tests_properties(sasl.stop_scram PROPERTIES
  FIXTURES_CLEANUP kafka_sasl_scram LABELS "kafka;sasl;sanitizer" TIMEOUT 60)

# name, unittest id, fixture, expected seconds
set(_kb_sasl_tests
  pipeline_scram TestSaslScram.test_scram scram 25
  pipeline_plain TestSaslPipeline.test_plain default 20
  scram_kafka4 TestSaslPipeline.test_scram_kafka4 default 8
  listener TestSaslPipeline.test_listener_wants_tls_and_sasl default 3
  acl_denials TestSaslDenials.test_acl_denials default 25
  wrong_password TestSaslDenials.test_wrong_password default 8
  no_broker_sigterm TestSaslDenials.test_no_broker_sigterm default 5)
list(LENGTH _kb_sasl_tests _n)
math(EXPR _last "${_n} - 1")
foreach(_i RANGE 0 ${_last} 4)
  math(EXPR _j "${_i} + 1")
  math(EXPR _k "${_i} + 2")
  math(EXPR _l "${_i} + 3")
  list(GET _kb_sasl_tests ${_i} _name)
  list(GET _kb_sasl_tests ${_j} _id)
  list(GET _kb_sasl_tests ${_k} _which)
  list(GET _kb_sasl_tests ${_l} _cost)
  if(_which STREQUAL "scram")
    set(_fixture kafka_sasl_scram)
    set(_dir ${_kb_sasl_scram_dir})
  else()
    set(_fixture kafka_sasl)
    set(_dir ${_kb_sasl_dir})
  endif()
  add_test(NAME sasl.${_name}
    COMMAND ${KB_PYTHON3} -m unittest -v test_sasl.${_id}
    WORKING_DIRECTORY ${CMAKE_SOURCE_DIR}/tests/blackbox)
  set_tests_properties(sasl.${_name} PROPERTIES
    FIXTURES_REQUIRED ${_fixture} LABELS "kafka;blackbox;sasl;sanitizer" TIMEOUT 300 COST ${_cost}
    ENVIRONMENT "KB_BIN=${KB_BIN};KB_SASL_KAFKA_DIR=${_dir};KB_TEST_TMP=${CMAKE_BINARY_DIR}/sasl-tmp;PYTHONDONTWRITEBYTECODE=1")
endforeach()
