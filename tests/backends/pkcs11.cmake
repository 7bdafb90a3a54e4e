kw_add_test(test_pkcs11 ${CMAKE_CURRENT_SOURCE_DIR}/backends/test_pkcs11.c DEVICES --p11 INTERNAL)
