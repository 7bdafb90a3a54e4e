kw_add_test(test_tpm2 ${CMAKE_CURRENT_SOURCE_DIR}/backends/test_tpm2.c DEVICES --tpm INTERNAL)
kw_add_test(test_import_wrap ${CMAKE_CURRENT_SOURCE_DIR}/backends/test_import_wrap.c DEVICES --tpm INTERNAL)
