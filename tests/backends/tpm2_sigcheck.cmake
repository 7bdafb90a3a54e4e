kw_add_test(test_tpm2_sigcheck ${CMAKE_CURRENT_SOURCE_DIR}/backends/test_tpm2_sigcheck.c DEVICES --tpm INTERNAL)
