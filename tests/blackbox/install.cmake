# install.cmake -- `cmake --install` gives a usable library: a program built
# with only the installed header and pkg-config seals and opens an envelope,
# and the shared library exports the public API and nothing else.
add_test(NAME blackbox.install
  COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/blackbox/install_check.sh
          ${CMAKE_BINARY_DIR} ${CMAKE_CURRENT_BINARY_DIR}/install-check)
set_tests_properties(blackbox.install PROPERTIES LABELS blackbox TIMEOUT 120)
