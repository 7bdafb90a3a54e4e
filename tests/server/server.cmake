# keyward serve end-to-end tests: the management API over HTTPS, driven with
# curl and openssl s_client the way remote automation would, its TLS key in
# the SoftHSM token or the TPM (behind tpm2-abrmd, as /dev/tpmrm0 would be:
# the server holds its key's connection while API calls use the TPM too).
# Included from tests/CMakeLists.txt (CMAKE_CURRENT_SOURCE_DIR is tests/).
set(KW_SERVER_TESTS test_server_auth test_server_api test_server_limits test_server_mgmt_cli
  test_server_tls
  test_mgmt_core)
foreach(t ${KW_SERVER_TESTS})
  kw_add_test(${t} ${CMAKE_CURRENT_SOURCE_DIR}/server/${t}.c DEVICES --p11)
endforeach()
kw_add_test(test_server_key ${CMAKE_CURRENT_SOURCE_DIR}/server/test_server_key.c
  DEVICES --abrmd --p11)
foreach(t ${KW_SERVER_TESTS} test_server_key)
  add_dependencies(${t} keyward-provider keyward-cli)
  set_property(TEST ${t} APPEND PROPERTY ENVIRONMENT
    "KW_TEST_PROVIDER_DIR=$<TARGET_FILE_DIR:keyward-provider>")
  set_property(TEST ${t} APPEND PROPERTY LABELS server)
endforeach()
