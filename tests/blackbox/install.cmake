# install.cmake -- `cmake --install` gives a usable library: a program built
# with only the installed header and pkg-config seals and opens an envelope;
# the shared library exports the public API and nothing else; its NEEDED
# list is exactly libsodium, libjson-c and libc (no librdkafka, libcurl,
# libmicrohttpd, libcrypto/libssl); kycbridge.pc's Requires.private is
# exactly libsodium and json-c, and `pkg-config --static --libs` links a
# fully static consumer of the library's objects. The script also proves
# its NEEDED and Requires checks refuse a decoy that breaks them.
add_test(NAME blackbox.install
  COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/blackbox/install_check.sh
          ${CMAKE_BINARY_DIR} ${CMAKE_CURRENT_BINARY_DIR}/install-check)
set_tests_properties(blackbox.install PROPERTIES LABELS blackbox TIMEOUT 120)
