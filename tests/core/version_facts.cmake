kw_add_test(test_version_facts ${CMAKE_CURRENT_SOURCE_DIR}/core/cert/test_version_facts.c DEVICES --p11)
