# keyward TLS server end-to-end tests: Debian's nginx and haproxy sign their
# handshakes in the TPM (behind tpm2-abrmd, as /dev/tpmrm0 would be) and in a
# SoftHSM token through keyward's provider; curl and openssl s_client check.
# Included from tests/CMakeLists.txt (CMAKE_CURRENT_SOURCE_DIR is tests/).
set(KW_TLS_DIR ${CMAKE_CURRENT_SOURCE_DIR}/tls)
foreach(server nginx haproxy)
  kw_add_test(test_tls_${server} ${KW_TLS_DIR}/test_tls_${server}.c DEVICES --abrmd --p11)
  target_sources(test_tls_${server} PRIVATE ${KW_TLS_DIR}/tls_server.c
    ${KW_TLS_DIR}/tls_checks.c ${KW_TLS_DIR}/tls_proc.c)
  add_dependencies(test_tls_${server} keyward-provider keyward-cli)
  set_property(TEST test_tls_${server} APPEND PROPERTY ENVIRONMENT
    "KW_TEST_PROVIDER_DIR=$<TARGET_FILE_DIR:keyward-provider>"
    "KW_TEST_TLS_CLIENT=${KW_TLS_DIR}/tls-client")
endforeach()

# The certificate file those servers read, as `keyward cert export` writes it.
kw_add_test(test_tls_cert_file ${KW_TLS_DIR}/test_tls_cert_file.c DEVICES --p11)

# A renewal by `keyward renew --due` (the timer's job) that nginx picks up
# through the certificate's deploy files and its reload hook.
kw_add_test(test_tls_renew_hook ${KW_TLS_DIR}/test_tls_renew_hook.c DEVICES --abrmd --p11)
target_sources(test_tls_renew_hook PRIVATE ${KW_TLS_DIR}/tls_server.c
  ${KW_TLS_DIR}/tls_checks.c ${KW_TLS_DIR}/tls_proc.c)
add_dependencies(test_tls_renew_hook keyward-provider keyward-cli)
set_property(TEST test_tls_renew_hook APPEND PROPERTY ENVIRONMENT
  "KW_TEST_PROVIDER_DIR=$<TARGET_FILE_DIR:keyward-provider>"
  "KW_TEST_TLS_CLIENT=${KW_TLS_DIR}/tls-client")

# Unprivileged servers: nginx and haproxy workers as www-data sign through
# keyward agent, started from the units the build configures (dist/systemd).
kw_add_test(test_tls_agent ${KW_TLS_DIR}/test_tls_agent.c DEVICES --abrmd --p11)
target_sources(test_tls_agent PRIVATE ${KW_TLS_DIR}/tls_server.c
  ${KW_TLS_DIR}/tls_checks.c ${KW_TLS_DIR}/tls_proc.c)
add_dependencies(test_tls_agent keyward-provider keyward-cli)
set_property(TEST test_tls_agent APPEND PROPERTY ENVIRONMENT
  "KW_TEST_PROVIDER_DIR=$<TARGET_FILE_DIR:keyward-provider>"
  "KW_TEST_TLS_CLIENT=${KW_TLS_DIR}/tls-client"
  "KW_TEST_UNIT_DIR=${PROJECT_BINARY_DIR}/dist/systemd")
