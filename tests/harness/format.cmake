add_test(NAME format COMMAND ${PROJECT_SOURCE_DIR}/ci/format-check)
