# keyward agent: unprivileged clients sign through the agent (kw_key and the
# provider), per-certificate access lists, bad input, restarts, fork.
# Included from tests/CMakeLists.txt (CMAKE_CURRENT_SOURCE_DIR is tests/).
find_package(Threads REQUIRED)
kw_add_test(test_agent ${CMAKE_CURRENT_SOURCE_DIR}/agent/test_agent.c DEVICES --tpm --p11
  INTERNAL)
target_link_libraries(test_agent PRIVATE Threads::Threads)
add_dependencies(test_agent keyward-provider keyward-cli)
set_property(TEST test_agent APPEND PROPERTY ENVIRONMENT
  "KW_TEST_PROVIDER_DIR=$<TARGET_FILE_DIR:keyward-provider>")
