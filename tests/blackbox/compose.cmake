# compose.cmake -- docker/ without Docker: the compose file, Dockerfile and
# config templates checked statically (compose_check.py), the check's own
# mutation test, the Dockerfile's build stage replayed on the host, and the
# compose topology run as local processes against the test broker
# (scripts/compose-local.sh, fixture `kafka`; it also scrapes the
# monitoring profile's Prometheus targets at their local addresses).
# KB_PYTHON3: tests/CMakeLists.txt (configuration fails without python3)
add_test(NAME blackbox.compose_check
  COMMAND ${KB_PYTHON3} ${CMAKE_SOURCE_DIR}/tests/blackbox/compose_check.py
          check --kb-bin ${KB_BIN})
add_test(NAME blackbox.compose_check_selftest
  COMMAND ${KB_PYTHON3} ${CMAKE_SOURCE_DIR}/tests/blackbox/compose_check.py
          selftest --kb-bin ${KB_BIN})
add_test(NAME blackbox.docker_build_stage
  COMMAND ${KB_PYTHON3} ${CMAKE_SOURCE_DIR}/tests/blackbox/compose_check.py build)
set_tests_properties(blackbox.compose_check PROPERTIES
  LABELS "blackbox;docker" TIMEOUT 120 ENVIRONMENT "PYTHONDONTWRITEBYTECODE=1")
# About 5 minutes of one core: started first (COST), so that it runs beside
# the other tests instead of after them.
set_tests_properties(blackbox.compose_check_selftest PROPERTIES
  LABELS "blackbox;docker" TIMEOUT 900 COST 400 ENVIRONMENT "PYTHONDONTWRITEBYTECODE=1")
# A from-scratch build of the binary (-j$(nproc)) in a temporary tree.
set_tests_properties(blackbox.docker_build_stage PROPERTIES
  LABELS "blackbox;docker" TIMEOUT 900 ENVIRONMENT "PYTHONDONTWRITEBYTECODE=1")

add_test(NAME kafka.compose_local
  COMMAND bash ${CMAKE_SOURCE_DIR}/scripts/compose-local.sh --bin ${KB_BIN}
          --kafka-dir ${CMAKE_BINARY_DIR}/kafka-test --timeout 150)
# KB_PYTHON3: the interpreter configuration found (python3-yaml and
# python3-prometheus-client for the scrape of prometheus.yml's targets).
set_tests_properties(kafka.compose_local PROPERTIES
  LABELS "kafka;docker;sanitizer" TIMEOUT 300 FIXTURES_REQUIRED kafka
  ENVIRONMENT "PYTHONDONTWRITEBYTECODE=1;KB_PYTHON3=${KB_PYTHON3}")
