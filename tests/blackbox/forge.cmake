# forge.cmake -- kb_forge: seals arbitrary envelopes for the pipeline tests
# (a token minted for another application, a key the importer lacks).
add_executable(kb_forge ${CMAKE_SOURCE_DIR}/tests/tools/forge.c)
target_link_libraries(kb_forge PRIVATE kb_all)
