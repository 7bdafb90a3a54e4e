# ACME (issuer acme:NAME) end to end against Debian's pebble, which kw-harness
# --pebble starts on loopback next to the test's own swtpm and SoftHSM token.
kw_add_test(test_acme_issue ${CMAKE_CURRENT_SOURCE_DIR}/acme/test_acme_issue.c
  DEVICES --tpm --p11 --pebble)
# what goes wrong: challenges, unreachable servers, server errors, badNonce,
# Retry-After, rate limits, renewal information (acme-proxy in front of pebble)
kw_add_test(test_acme_faults ${CMAKE_CURRENT_SOURCE_DIR}/acme/test_acme_faults.c
  DEVICES --p11 --pebble)
add_dependencies(test_acme_issue keyward-provider)
set_property(TEST test_acme_issue APPEND PROPERTY ENVIRONMENT
  "KW_TEST_PROVIDER_DIR=$<TARGET_FILE_DIR:keyward-provider>")
