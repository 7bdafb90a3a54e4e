# keyward OpenSSL provider tests: keyward.so in-process, under real TLS
# servers (openssl s_server / s_client), from threads and forked processes.
# Included from tests/CMakeLists.txt (CMAKE_CURRENT_SOURCE_DIR is tests/).
find_package(Threads REQUIRED)

set(KWP_TESTS test_provider_store test_provider_tls test_provider_concurrency)
kw_add_test(test_provider_store ${CMAKE_CURRENT_SOURCE_DIR}/provider/test_provider_store.c
  DEVICES --tpm --p11)
kw_add_test(test_provider_tls ${CMAKE_CURRENT_SOURCE_DIR}/provider/test_provider_tls.c
  DEVICES --tpm --p11)
# tpm2-abrmd in front of the swtpm: forked children each open the TPM.
kw_add_test(test_provider_concurrency
  ${CMAKE_CURRENT_SOURCE_DIR}/provider/test_provider_concurrency.c DEVICES --abrmd --p11)

foreach(t ${KWP_TESTS})
  target_link_libraries(${t} PRIVATE Threads::Threads)
  add_dependencies(${t} keyward-provider)
  set_property(TEST ${t} APPEND PROPERTY ENVIRONMENT
    "KW_TEST_PROVIDER_DIR=$<TARGET_FILE_DIR:keyward-provider>"
    "KW_TEST_PROVIDER_SOURCE=${CMAKE_CURRENT_SOURCE_DIR}/provider")
  set_property(TEST ${t} APPEND PROPERTY LABELS provider)
endforeach()
