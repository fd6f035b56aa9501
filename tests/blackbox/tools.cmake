# tools.cmake -- test tooling programs (built, never registered as tests)
#
# kb_mkvectors writes a fresh set of envelope v1 test vectors into a new
# directory. The committed set in tests/vectors/envelope-v1/ was made with it
# once; the tests only read the committed files. See that directory's README.
add_executable(kb_mkvectors ${CMAKE_SOURCE_DIR}/tests/tools/mkvectors.c)
target_link_libraries(kb_mkvectors PRIVATE kb_all)
