kw_add_test(test_pkcs11 ${CMAKE_CURRENT_SOURCE_DIR}/backends/test_pkcs11.c DEVICES --p11 INTERNAL)
# key_import into both devices (TPM2_Import, C_CreateObject), read back from the devices
kw_add_test(test_import ${CMAKE_CURRENT_SOURCE_DIR}/backends/test_import.c DEVICES --tpm --p11 INTERNAL)
