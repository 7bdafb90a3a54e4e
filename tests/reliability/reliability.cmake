# keyward reliability: crash consistency (SIGKILL anywhere), keyward doctor,
# device faults, concurrency. Included from tests/CMakeLists.txt
# (CMAKE_CURRENT_SOURCE_DIR is tests/).
# kw-rel-sign: the provider in a process of its own, as a server uses it.
add_executable(kw-rel-sign ${CMAKE_CURRENT_SOURCE_DIR}/reliability/kw_rel_sign.c)
target_link_libraries(kw-rel-sign PRIVATE PkgConfig::CRYPTO)

# the TPM behind tpm2-abrmd, as /dev/tpmrm0 would be: a killed client's
# objects are flushed
kw_add_test(test_rel_crash ${CMAKE_CURRENT_SOURCE_DIR}/reliability/test_rel_crash.c
  DEVICES --abrmd --p11)
kw_add_test(test_rel_doctor ${CMAKE_CURRENT_SOURCE_DIR}/reliability/test_rel_doctor.c
  DEVICES --tpm --p11)
# swtpm killed and restarted, token moved away, PIN changed, token full
kw_add_test(test_rel_faults ${CMAKE_CURRENT_SOURCE_DIR}/reliability/test_rel_faults.c
  DEVICES --tpm --p11)
# 8 processes for KW_REL_DURATION seconds (default 30)
kw_add_test(test_rel_concurrency ${CMAKE_CURRENT_SOURCE_DIR}/reliability/test_rel_concurrency.c
  DEVICES --abrmd --p11)

# key-making commands and doctor --repair, renew --due twice at once
# (p11-barrier.so, tests/backends/pkcs11_parallel.cmake, holds a renewal)
kw_add_test(test_rel_locks ${CMAKE_CURRENT_SOURCE_DIR}/reliability/test_rel_locks.c
  DEVICES --tpm --p11)
add_dependencies(test_rel_locks p11-barrier)
set_property(TEST test_rel_locks APPEND PROPERTY ENVIRONMENT
  "KW_TEST_P11_BARRIER=$<TARGET_FILE:p11-barrier>")

foreach(t test_rel_crash test_rel_doctor test_rel_faults test_rel_concurrency test_rel_locks)
  add_dependencies(${t} keyward-provider kw-rel-sign keyward-cli)
  set_property(TEST ${t} APPEND PROPERTY ENVIRONMENT
    "KW_TEST_PROVIDER_DIR=$<TARGET_FILE_DIR:keyward-provider>"
    "KW_TEST_REL_SIGNER=$<TARGET_FILE:kw-rel-sign>")
  set_property(TEST ${t} APPEND PROPERTY LABELS reliability)
endforeach()
