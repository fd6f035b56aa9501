# docker.cmake -- the docker-compose topology for real (test_docker.py):
# a dockerd of the test's own under the build tree (scripts/docker-env.sh:
# data root build/docker-test, stopped at the end), Debian base images from
# debootstrap, Compose v2 from the Go module proxy, every image built
# (the offline Kafka stand-in through docker/docker-compose.offline.yml),
# `compose up` of the whole topology, checks from outside the containers,
# a second `up` after `down`, and `down -v`. Caches (debootstrap tarball,
# Go module cache, Maven jars) live outside the build tree and are reused.
# Where dockerd cannot run the test fails and says so. It runs alone
# (RUN_SERIAL): building images takes both cores for a minute or two, and
# the timing-sensitive suites must not share them with it.
add_test(NAME docker.compose_up
  COMMAND ${KB_PYTHON3} -m unittest -v test_docker.TestDockerCompose
  WORKING_DIRECTORY ${CMAKE_SOURCE_DIR}/tests/blackbox)
set_tests_properties(docker.compose_up PROPERTIES
  LABELS "docker" TIMEOUT 1800 RUN_SERIAL TRUE
  ENVIRONMENT "KB_BUILD_DIR=${CMAKE_BINARY_DIR};PYTHONDONTWRITEBYTECODE=1")
# Whatever happens to the test (a failure, ctest's timeout killing it), the
# engine is stopped afterwards: containers, mounts, bridges and cgroups go
# with it (a no-op when it is not running).
add_test(NAME docker.engine_stop
  COMMAND bash ${CMAKE_SOURCE_DIR}/scripts/docker-env.sh dockerd stop
          ${CMAKE_BINARY_DIR}/docker-test)
set_tests_properties(docker.compose_up PROPERTIES FIXTURES_REQUIRED docker_engine)
set_tests_properties(docker.engine_stop PROPERTIES
  LABELS "docker" TIMEOUT 300 FIXTURES_CLEANUP docker_engine)
# The engine script on its own, with an empty engine of its own
# (build/docker-life): a hung dockerd replaced at start, a crashed engine's
# containerd, shims, container processes, mounts and bridges cleaned up.
add_test(NAME docker.engine_lifecycle
  COMMAND ${KB_PYTHON3} -m unittest -v test_docker.TestEngineLifecycle
  WORKING_DIRECTORY ${CMAKE_SOURCE_DIR}/tests/blackbox)
set_tests_properties(docker.engine_lifecycle PROPERTIES
  LABELS "docker" TIMEOUT 600 RUN_SERIAL TRUE
  FIXTURES_REQUIRED docker_life
  ENVIRONMENT "KB_BUILD_DIR=${CMAKE_BINARY_DIR};PYTHONDONTWRITEBYTECODE=1")
add_test(NAME docker.life_stop
  COMMAND bash ${CMAKE_SOURCE_DIR}/scripts/docker-env.sh dockerd stop
          ${CMAKE_BINARY_DIR}/docker-life)
set_tests_properties(docker.life_stop PROPERTIES
  LABELS "docker" TIMEOUT 300 FIXTURES_CLEANUP docker_life)
