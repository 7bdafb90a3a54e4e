# keyward CLI end-to-end tests: the real binary against swtpm and SoftHSM.
# Included from tests/CMakeLists.txt (CMAKE_CURRENT_SOURCE_DIR is tests/).
# One program per area so that `ctest -j2` runs them side by side; each gets
# its own devices from kw-harness.
kw_add_test(test_cli_store ${CMAKE_CURRENT_SOURCE_DIR}/cli/test_cli_store.c DEVICES --tpm --p11)
kw_add_test(test_cli_backend ${CMAKE_CURRENT_SOURCE_DIR}/cli/test_cli_backend.c DEVICES --tpm --p11)
kw_add_test(test_cli_cert_tpm ${CMAKE_CURRENT_SOURCE_DIR}/cli/test_cli_cert_tpm.c DEVICES --tpm)
kw_add_test(test_cli_cert_p11 ${CMAKE_CURRENT_SOURCE_DIR}/cli/test_cli_cert_p11.c DEVICES --p11)
kw_add_test(test_cli_errors ${CMAKE_CURRENT_SOURCE_DIR}/cli/test_cli_errors.c DEVICES --tpm --p11)
kw_add_test(test_cli_wrong_key ${CMAKE_CURRENT_SOURCE_DIR}/cli/test_cli_wrong_key.c DEVICES --p11)
kw_add_test(test_cli_keyref ${CMAKE_CURRENT_SOURCE_DIR}/cli/test_cli_keyref.c DEVICES --tpm --p11)
kw_add_test(test_cli_notify ${CMAKE_CURRENT_SOURCE_DIR}/cli/test_cli_notify.c DEVICES --p11)
# deploys all or nothing, their exit code (3), renew --due deploying again, policy set refusals
kw_add_test(test_cli_deploy ${CMAKE_CURRENT_SOURCE_DIR}/cli/test_cli_deploy.c DEVICES --p11)
kw_add_test(test_cli_lifecycle ${CMAKE_CURRENT_SOURCE_DIR}/cli/test_cli_lifecycle.c DEVICES --tpm --p11)
kw_add_test(test_cli_renew ${CMAKE_CURRENT_SOURCE_DIR}/cli/test_cli_renew.c DEVICES --tpm --p11)
kw_add_test(test_cli_policy ${CMAKE_CURRENT_SOURCE_DIR}/cli/test_cli_policy.c DEVICES --tpm --p11)
# issuer "unknown": CSR, merge, pending cancel and renewal; the provider serves the merged chain
kw_add_test(test_cli_merge ${CMAKE_CURRENT_SOURCE_DIR}/cli/test_cli_merge.c DEVICES --tpm --p11)
kw_add_test(test_cli_pending ${CMAKE_CURRENT_SOURCE_DIR}/cli/test_cli_pending.c DEVICES --tpm --p11)
foreach(t test_cli_merge test_cli_pending)
  add_dependencies(${t} keyward-provider)
  set_property(TEST ${t} APPEND PROPERTY ENVIRONMENT
    "KW_TEST_PROVIDER_DIR=$<TARGET_FILE_DIR:keyward-provider>")
endforeach()
# issuer ca:NAME: a local CA whose key stays in its device; intermediates; the provider serves the chain
kw_add_test(test_cli_local_ca ${CMAKE_CURRENT_SOURCE_DIR}/cli/test_cli_local_ca.c DEVICES --tpm --p11)
add_dependencies(test_cli_local_ca keyward-provider)
set_property(TEST test_cli_local_ca APPEND PROPERTY ENVIRONMENT
  "KW_TEST_PROVIDER_DIR=$<TARGET_FILE_DIR:keyward-provider>")
# cert import: PEM / PKCS#12 keys into the TPM (TPM2_Import) and the token (C_CreateObject)
kw_add_test(test_cli_import ${CMAKE_CURRENT_SOURCE_DIR}/cli/test_cli_import.c DEVICES --tpm --p11)
# cert adopt: keys pkcs11-tool / tpm2-openssl made, taken under management untouched
kw_add_test(test_cli_adopt ${CMAKE_CURRENT_SOURCE_DIR}/cli/test_cli_adopt.c DEVICES --tpm --p11)
# cert purge / delete --purge: what each device did to a key (destroyed, revoked, forgotten),
# tried afterwards with copies kept from before (TSS2 file, store copy) and tpm2-tools/tpm2-openssl
kw_add_test(test_cli_purge ${CMAKE_CURRENT_SOURCE_DIR}/cli/test_cli_purge.c DEVICES --tpm --p11)
