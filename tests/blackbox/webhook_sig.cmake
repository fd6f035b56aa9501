# webhook_sig.cmake -- the committed webhook vectors, checked with the vendor's own Python sample
add_test(NAME blackbox.webhook_sig_vectors
  COMMAND ${KB_PYTHON3} ${CMAKE_SOURCE_DIR}/tests/blackbox/webhook_sig_check.py
          check ${CMAKE_SOURCE_DIR}/tests/vectors/webhook/vectors.jsonl)
add_test(NAME blackbox.canon_float_vectors
  COMMAND ${KB_PYTHON3} ${CMAKE_SOURCE_DIR}/tests/vectors/canon/gen_floats.py
          --check ${CMAKE_SOURCE_DIR}/tests/vectors/canon/floats.txt)
set_tests_properties(blackbox.webhook_sig_vectors blackbox.canon_float_vectors
  PROPERTIES LABELS "blackbox;vectors" TIMEOUT 60)
