kw_add_test(test_import_wipe ${CMAKE_CURRENT_SOURCE_DIR}/core/cert/test_import_wipe.c DEVICES --tpm --p11 INTERNAL)
