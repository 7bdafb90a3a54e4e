add_test(NAME demo COMMAND ${KW_HARNESS} -- ${CMAKE_CURRENT_SOURCE_DIR}/demo/run-demo
  $<TARGET_FILE:keyward-cli>)
set_tests_properties(demo PROPERTIES TIMEOUT 300
  ENVIRONMENT "KEYWARD_PROVIDER_DIR=$<TARGET_FILE_DIR:keyward-provider>")
