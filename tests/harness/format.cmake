add_test(NAME format COMMAND ${PROJECT_SOURCE_DIR}/ci/format-check)
add_test(NAME layers COMMAND ${PROJECT_SOURCE_DIR}/ci/layer-check)
