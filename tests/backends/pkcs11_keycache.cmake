kw_add_test(test_pkcs11_keycache ${CMAKE_CURRENT_SOURCE_DIR}/backends/test_pkcs11_keycache.c DEVICES --p11 INTERNAL)
