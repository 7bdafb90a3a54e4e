# Revocable TPM keys: PolicyNV on a counter of their own; a purge ends every copy
kw_add_test(test_tpm2_revocable ${CMAKE_CURRENT_SOURCE_DIR}/backends/test_tpm2_revocable.c DEVICES --tpm INTERNAL)
