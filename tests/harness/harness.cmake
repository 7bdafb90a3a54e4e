add_test(NAME harness COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/harness/test-harness)
set_tests_properties(harness PROPERTIES TIMEOUT 120)
